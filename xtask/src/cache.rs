//! The result cache: a suite whose inputs are exactly what they were in a run where it
//! passed is not run again; its result is that run's, marked cached (the terminal's
//! `CACHED` line, the JUnit property `cached-from`, the record's `cached`).
//!
//! A suite's inputs ([`Inputs`], each a name and a digest):
//! - `file:PATH`: every file under its `dir` and its `pythonpath` entries (what git lists:
//!   tracked, and untracked but not ignored; outside a git work tree, every file but those
//!   in hidden directories), its environment's lock, pyproject and requirements files,
//!   `conftest.py` and pytest's configuration files (`pytest.ini`, `.pytest.ini`,
//!   `pyproject.toml`, `tox.ini`, `setup.cfg`) in every directory from its `dir` up to the
//!   root (absent ones too: adding one changes the key), and the files its `inputs` globs
//!   match. Never `__pycache__`, `.pytest_cache` or `target/xtask`: what runs write.
//! - `manifest:suite`, `manifest:settings`: its manifest entry, and the manifest's settings
//!   for every suite (everything in the table but the suites).
//! - `env:NAME`: every variable pytest gets from the xtask (its `env`, PYTHONPATH, ...) and,
//!   from the caller's environment, those that change how Python or pytest behave
//!   (`PYTHON*`, `PYTEST_*`, `LANG`, `LC_*`, `TZ`) and those its `inputs-env` names. Digests,
//!   never values.
//! - `pytest:argv`, `run:timeout`: the pytest command (markers, paths, the arguments after
//!   `--`, `--no-capture`) and the timeout.
//! - `environment:*`: its environment's identity, read once it is ready: what it is built
//!   from (uv's version, the lock), the interpreter, every installed distribution, and
//!   its scripts (`bin/`, with their sizes).
//! - `xtask:version`: the xtask's version and its pytest plugin.
//!
//! The key is the SHA-256 of all of them. File contents are hashed with a stat cache
//! (`xtask_data::file_hashes`), so an unchanged file is not read again.
//!
//! Never replayed, and never stored: a suite with services, prerequisites or `requires-env`,
//! `cache = false`, and any suite of a run with `--no-cache`, `--rerun` or `--partition`.
//! Only a suite that passed with no test passing only on a retry is stored, and only when
//! its files are the same after it ran as before. Entries live in `target/xtask/cache/`,
//! one file per suite and key, written whole (a second invocation at the same time reads
//! the old entry or the new one, never half of one), checked on reading (a damaged entry
//! is removed with a warning, never trusted), and the oldest go beyond [`MAX_BYTES`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::file_hashes::{bytes_hash, written_by_runs, FileHashes, Listing};
use crate::manifest::Suite;
use crate::model::{CachedFrom, SuiteResult};
use crate::paths::Layout;
use crate::plan::SuitePlan;
use crate::report::run_record::{RunRecord, SuiteRecord};

/// The format of an entry: an entry of another format is a miss.
const FORMAT: u32 = 1;
/// The cache's size beyond which the least recently used entries are removed.
pub const MAX_BYTES: u64 = 256 << 20;
/// The most entries kept per suite (other branches, other arguments).
const MAX_PER_SUITE: usize = 16;
/// pytest's configuration files, looked for from a suite's directory up to the root.
const CONFIG_FILES: [&str; 6] = [
    "conftest.py",
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
];
/// The caller's variables that are inputs of every suite, by prefix (`LC_`) or name.
const VARIABLE_PREFIXES: [&str; 3] = ["PYTHON", "PYTEST_", "LC_"];
const VARIABLE_NAMES: [&str; 2] = ["LANG", "TZ"];

/// A suite's inputs: name (`file:shared/x.py`, `env:PATH`, ...) to digest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs(pub BTreeMap<String, String>);

impl Inputs {
    /// The cache key: the SHA-256 of every input, in order.
    pub fn key(&self) -> String {
        let mut text = String::new();
        for (name, digest) in &self.0 {
            text.push_str(name);
            text.push('\0');
            text.push_str(digest);
            text.push('\n');
        }
        bytes_hash(text.as_bytes())
    }

    /// The inputs known before the environment is ready (all but `environment:*`).
    fn early(&self) -> Inputs {
        Inputs(
            self.0
                .iter()
                .filter(|(name, _)| !name.starts_with("environment:"))
                .map(|(n, d)| (n.clone(), d.clone()))
                .collect(),
        )
    }
}

/// One cached result, as stored.
#[derive(Serialize, Deserialize)]
pub struct Entry {
    pub format: u32,
    pub suite: String,
    pub key: String,
    /// The run it comes from.
    pub run_id: String,
    pub started_at: String,
    pub duration_secs: f64,
    pub inputs: Inputs,
    /// The suite as that run's record has it (masked).
    pub record: SuiteRecord,
}

/// What a look-up found.
pub enum Lookup {
    /// Replay this result.
    Hit(Box<SuiteResult>),
    /// Run it (and store its result if it passes).
    Miss,
}

/// The cache of one invocation: the suites it may replay, their inputs, and the stat cache.
pub struct Cache {
    root: PathBuf,
    dir: PathBuf,
    /// This invocation's run directory, as it appears in pytest's variables: written
    /// `<run>` in the inputs, so that they are the same from run to run.
    run_dir: String,
    hashes: Mutex<FileHashes>,
    /// The inputs known before the environments are ready, of the suites that may be
    /// replayed, by name.
    early: HashMap<String, Inputs>,
    /// Every input of the suites looked up and not found, by name: stored if they pass.
    missed: Mutex<HashMap<String, Inputs>>,
    /// The suites whose inputs could not be hashed, with why.
    unhashable: HashMap<String, String>,
    /// What went wrong reading the cache (a damaged entry), said once the run is over.
    pub warnings: Mutex<Vec<String>>,
}

/// Why a suite is never cached, or `None` when it may be.
pub fn never_cached(suite: &Suite) -> Option<&'static str> {
    if !suite.cache.enabled {
        Some("its manifest entry says `cache = false`")
    } else if !suite.services.is_empty() {
        Some("it needs services, whose state is not an input")
    } else if !suite.prerequisites.is_empty() || !suite.requires_env.is_empty() {
        Some("it has prerequisites, whose state is not an input")
    } else {
        None
    }
}

/// Why a run uses no cache at all, or `None` when it may.
pub fn run_without_cache(args: &crate::flags::RunArgs) -> Option<&'static str> {
    if args.no_cache {
        Some("--no-cache")
    } else if args.rerun.is_some() {
        Some("--rerun runs only what failed")
    } else if args.partition.is_some() {
        Some("--partition runs a slice of each suite")
    } else {
        None
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Cache {
    pub fn dir(layout: &Layout) -> PathBuf {
        layout.out_dir().join("cache")
    }

    fn stat_file(dir: &Path) -> PathBuf {
        dir.join("file-hashes")
    }

    fn suite_dir(&self, suite: &str) -> PathBuf {
        self.dir.join("suites").join(suite)
    }

    /// The cache for `plans`, with the early inputs of those that may be replayed hashed.
    pub fn open(layout: &Layout, plans: &[SuitePlan]) -> Cache {
        let dir = Cache::dir(layout);
        let eligible: Vec<&SuitePlan> = plans
            .iter()
            .filter(|p| p.blocked.is_none() && never_cached(&p.suite).is_none())
            .collect();
        let load = || {
            std::fs::read_to_string(Cache::stat_file(&dir))
                .map(|text| FileHashes::parse(&text))
                .unwrap_or_default()
        };
        // The files the stat cache knows are checked while git lists the tree: for a
        // warm tree they are the same files, and the two take about as long.
        let (hashes, listing) = if eligible.is_empty() {
            (load(), None)
        } else {
            std::thread::scope(|scope| {
                let checked = scope.spawn(|| {
                    let mut hashes = load();
                    hashes.prestat(&layout.root);
                    hashes
                });
                let listing = listing(&layout.root, &layout.out_dir());
                (checked.join().unwrap_or_default(), Some(listing))
            })
        };
        let mut cache = Cache {
            root: layout.root.clone(),
            dir: dir.clone(),
            run_dir: layout.run_dir().to_string_lossy().into_owned(),
            hashes: Mutex::new(hashes),
            early: HashMap::new(),
            missed: Mutex::new(HashMap::new()),
            unhashable: HashMap::new(),
            warnings: Mutex::new(Vec::new()),
        };
        let Some(listing) = listing else {
            return cache;
        };
        let manifest = manifest_table(layout);
        for plan in eligible {
            match cache.early_inputs(plan, &listing, manifest.as_ref()) {
                Ok(inputs) => {
                    cache.early.insert(plan.suite.name.clone(), inputs);
                }
                Err(why) => {
                    cache.unhashable.insert(plan.suite.name.clone(), why);
                }
            }
        }
        // What `prestat` found holds for this moment only: the check after the suites ran
        // (`store`) takes every stat again.
        lock(&cache.hashes).forget_prestat();
        cache
    }

    /// Why `suite` could not be hashed by this invocation (it runs, and is not stored).
    pub fn unhashable(&self, suite: &str) -> Option<&str> {
        self.unhashable.get(suite).map(String::as_str)
    }

    /// Every input of `plan` but its environment's; or why they cannot be known: a file
    /// whose name is not UTF-8 (it could not be told apart from another), or an interrupt
    /// while hashing.
    fn early_inputs(
        &self,
        plan: &SuitePlan,
        listing: &Listing,
        manifest: Option<&Value>,
    ) -> Result<Inputs, String> {
        let suite = &plan.suite;
        let mut files: Vec<String> = Vec::new();
        for dir in std::iter::once(&suite.dir).chain(&suite.pythonpath) {
            files.extend(listing.files_of(&self.root, dir));
        }
        files.extend(
            plan.env
                .input_paths()
                .map(|p| p.to_string_lossy().replace('\\', "/")),
        );
        files.extend(config_files_above(&suite.dir));
        for glob in &suite.cache.inputs {
            files.extend(glob_files(&self.root, glob, &listing.excluded));
        }
        let files =
            lock(&self.hashes).file_inputs(&self.root, files, &crate::process::interrupted)?;
        let mut inputs: BTreeMap<String, String> = files.into_iter().collect();
        let entry = manifest.and_then(|t| {
            t.get("suites")?
                .as_array()?
                .iter()
                .find(|s| s.get("name").and_then(Value::as_str) == Some(&suite.name))
                .cloned()
        });
        let settings = manifest.map(|t| {
            let mut t = t.clone();
            if let Some(map) = t.as_object_mut() {
                map.remove("suites");
            }
            t
        });
        inputs.insert("manifest:suite".into(), json_digest(&entry));
        inputs.insert("manifest:settings".into(), json_digest(&settings));
        for (name, value) in self.variables(plan) {
            let digest = match value {
                Some(value) => bytes_hash(format!("{name}={value}").as_bytes()),
                None => "unset".to_string(),
            };
            inputs.insert(format!("env:{name}"), digest);
        }
        let argv: Vec<String> = plan
            .test
            .argv
            .iter()
            // Where pytest writes its report is this run's.
            .filter(|a| !a.starts_with("--junitxml="))
            .map(|a| self.normalized(a))
            .collect();
        inputs.insert("pytest:argv".into(), bytes_hash(argv.join("\0").as_bytes()));
        inputs.insert("run:timeout".into(), plan.timeout.as_millis().to_string());
        inputs.insert("xtask:version".into(), xtask_version());
        Ok(Inputs(inputs))
    }

    /// `text` with this run's directory written `<run>`.
    fn normalized(&self, text: &str) -> String {
        text.replace(&self.run_dir, "<run>")
    }

    /// The variables that are inputs of `plan`, with their values as pytest gets them
    /// (`None`: unset).
    fn variables(&self, plan: &SuitePlan) -> BTreeMap<String, Option<String>> {
        let mut vars: BTreeMap<String, Option<String>> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
            .filter(|(k, _)| {
                VARIABLE_PREFIXES.iter().any(|p| k.starts_with(p))
                    || VARIABLE_NAMES.contains(&k.as_str())
                    || plan.suite.cache.inputs_env.contains(k)
            })
            .map(|(k, v)| (k, Some(v)))
            .collect();
        for name in &plan.suite.cache.inputs_env {
            vars.entry(name.clone()).or_insert(None);
        }
        for name in &plan.test.env_remove {
            vars.insert(name.clone(), None);
        }
        for (name, value) in &plan.test.env {
            // The durations a split suite's slices are dealt by decide which slice runs a
            // test, never which tests run.
            if name == crate::durations::PARTITION_DURATIONS_ENV {
                continue;
            }
            vars.insert(name.clone(), Some(self.normalized(value)));
        }
        vars
    }

    /// The inputs of `plan`'s ready environment.
    fn environment_inputs(plan: &SuitePlan, root: &Path, uv_version: &str) -> Inputs {
        let env = &plan.env;
        let mut inputs = BTreeMap::new();
        inputs.insert(
            "environment:inputs".into(),
            json_digest(&env.inputs(root, uv_version)),
        );
        inputs.insert(
            "environment:interpreter".into(),
            json_digest(&crate::environment::interpreter_identity(&env.python())),
        );
        inputs.insert(
            "environment:packages".into(),
            installed(&env.path).join(" "),
        );
        inputs.insert(
            "environment:scripts".into(),
            bytes_hash(scripts(&env.bin()).join("\n").as_bytes()),
        );
        Inputs(inputs)
    }

    /// Every input of `plan` now, its environment being ready; `None` when it is not one
    /// this cache may replay.
    pub fn inputs(&self, plan: &SuitePlan, uv_version: &str) -> Option<Inputs> {
        let mut inputs = self.early.get(&plan.suite.name)?.clone();
        inputs
            .0
            .extend(Cache::environment_inputs(plan, &self.root, uv_version).0);
        Some(inputs)
    }

    /// Looks `plan` up, its environment being ready: its result when its inputs are those
    /// of a stored entry.
    pub fn look_up(&self, plan: &SuitePlan, uv_version: &str) -> Lookup {
        let Some(inputs) = self.inputs(plan, uv_version) else {
            return Lookup::Miss;
        };
        let key = inputs.key();
        let path = self.suite_dir(&plan.suite.name).join(format!("{key}.json"));
        let found = match std::fs::read(&path) {
            Ok(bytes) => Some(read_entry(&bytes, &plan.suite.name, &key)),
            Err(_) => None,
        };
        match found {
            Some(Ok(entry)) => {
                // Used now: the last to be removed when the cache is full.
                let _ = std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                match replayed(&entry) {
                    Ok(result) => return Lookup::Hit(Box::new(result)),
                    Err(why) => self.damaged(&path, &why),
                }
            }
            Some(Err(why)) => self.damaged(&path, &why),
            None => {}
        }
        lock(&self.missed).insert(plan.suite.name.clone(), inputs);
        Lookup::Miss
    }

    /// Every input file of the suites it may replay, relative to the root, sorted.
    pub fn input_files(&self) -> Vec<String> {
        let mut files: Vec<String> = self
            .early
            .values()
            .flat_map(|inputs| inputs.0.keys())
            .filter_map(|name| name.strip_prefix("file:"))
            .map(str::to_string)
            .collect();
        files.sort();
        files.dedup();
        files
    }

    /// How many files were read (not served by the stat cache) so far.
    pub fn files_read(&self) -> usize {
        lock(&self.hashes).read
    }

    /// Saves the stat cache (what [`Cache::store`] does after a run).
    pub fn save_hashes(&self) -> anyhow::Result<()> {
        let text = lock(&self.hashes).to_text();
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        crate::paths::write_atomically(&Cache::stat_file(&self.dir), text.as_bytes())
    }

    /// The readable entry of `suite` for `key`, if any.
    pub fn entry(&self, suite: &str, key: &str) -> Option<Entry> {
        let path = self.suite_dir(suite).join(format!("{key}.json"));
        read_entry(&std::fs::read(path).ok()?, suite, key).ok()
    }

    /// The most recently used readable entry of `suite`, if any.
    pub fn newest(&self, suite: &str) -> Option<Entry> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> =
            std::fs::read_dir(self.suite_dir(suite))
                .ok()?
                .flatten()
                .filter_map(|f| Some((f.metadata().ok()?.modified().ok()?, f.path())))
                .collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.0));
        files.into_iter().find_map(|(_, path)| {
            let key = path.file_stem()?.to_str()?.to_string();
            read_entry(&std::fs::read(&path).ok()?, suite, &key).ok()
        })
    }

    fn damaged(&self, path: &Path, why: &str) {
        let _ = std::fs::remove_file(path);
        lock(&self.warnings).push(format!(
            "the result cache's entry {} could not be used ({why}); it was removed and the suite ran",
            crate::paths::display(&self.root, path)
        ));
    }

    /// Stores the suites of `record` that passed and may be replayed, when their files are
    /// what they were before they ran; then saves the stat cache and keeps the cache within
    /// its bounds. Returns what could not be done, as warnings.
    pub fn store(
        &self,
        layout: &Layout,
        plans: &[SuitePlan],
        results: &[SuiteResult],
        record: &RunRecord,
    ) -> Vec<String> {
        let mut warnings = std::mem::take(&mut *lock(&self.warnings));
        let missed = std::mem::take(&mut *lock(&self.missed));
        let storable: Vec<(&SuitePlan, &Inputs)> = plans
            .iter()
            .zip(results)
            .filter(|(_, r)| r.outcome == crate::outcome::Outcome::Passed && r.cached.is_none())
            .filter(|(_, r)| r.counts().flaky == 0)
            .filter_map(|(p, _)| Some((p, missed.get(&p.suite.name)?)))
            .collect();
        if !storable.is_empty() {
            let listing = listing(&layout.root, &layout.out_dir());
            let manifest = manifest_table(layout);
            for (plan, inputs) in storable {
                let name = &plan.suite.name;
                let Some(suite) = record.suites.iter().find(|s| s.name == *name) else {
                    continue;
                };
                let after = match self.early_inputs(plan, &listing, manifest.as_ref()) {
                    Ok(after) => after,
                    Err(why) => {
                        warnings.push(format!("suite `{name}` was not cached: {why}"));
                        continue;
                    }
                };
                if after != inputs.early() {
                    warnings.push(format!(
                        "suite `{name}` was not cached: {} changed while it ran",
                        first_difference(&inputs.early(), &after)
                    ));
                    continue;
                }
                let key = inputs.key();
                let entry = Entry {
                    format: FORMAT,
                    suite: name.clone(),
                    key: key.clone(),
                    run_id: record.run_id.clone(),
                    started_at: suite.started_at.clone(),
                    duration_secs: suite.duration_secs,
                    inputs: inputs.clone(),
                    record: suite.clone(),
                };
                let path = self.suite_dir(name).join(format!("{key}.json"));
                let written = serde_json::to_vec(&entry)
                    .map_err(anyhow::Error::from)
                    .and_then(|bytes| {
                        std::fs::create_dir_all(self.suite_dir(name))?;
                        crate::paths::write_atomically(&path, &bytes)
                    });
                if let Err(err) = written {
                    warnings.push(format!(
                        "suite `{name}` was not cached: writing {}: {err:#}",
                        crate::paths::display(&self.root, &path)
                    ));
                }
            }
        }
        if let Err(err) = self.save_hashes() {
            warnings.push(format!(
                "the result cache's file hashes could not be saved ({err:#}); the next run reads every input again"
            ));
        }
        prune(&self.dir.join("suites"), MAX_BYTES, MAX_PER_SUITE);
        warnings
    }
}

/// What `old` and `new` first differ in, for people: `shared/x.py`, `the variable FOO`.
pub fn first_difference(old: &Inputs, new: &Inputs) -> String {
    differences(old, new)
        .into_iter()
        .next()
        .map_or_else(|| "nothing".to_string(), |d| d.subject)
}

/// One input that differs between two sets.
pub struct Difference {
    /// What it is, for people: `shared/x.py`, `the variable FOO`.
    pub subject: String,
    /// `changed`, `added`, `removed`, or for the packages which ones.
    pub how: String,
}

/// Every input that differs between `old` and `new`, in the order of their names.
pub fn differences(old: &Inputs, new: &Inputs) -> Vec<Difference> {
    let mut names: Vec<&String> = old.0.keys().chain(new.0.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let (before, after) = (old.0.get(name), new.0.get(name));
        if before == after {
            continue;
        }
        let how = match (before, after) {
            (None, _) => "added".to_string(),
            (_, None) => "removed".to_string(),
            (Some(b), Some(a)) if name == "environment:packages" => packages_changed(b, a),
            (Some(b), Some(_)) if b == "missing" => "added".to_string(),
            (Some(_), Some(a)) if a == "missing" => "removed".to_string(),
            _ => "changed".to_string(),
        };
        out.push(Difference {
            subject: subject(name),
            how,
        });
    }
    out
}

fn packages_changed(before: &str, after: &str) -> String {
    let b: Vec<&str> = before.split(' ').filter(|s| !s.is_empty()).collect();
    let a: Vec<&str> = after.split(' ').filter(|s| !s.is_empty()).collect();
    let added: Vec<&str> = a.iter().filter(|p| !b.contains(p)).copied().collect();
    let removed: Vec<&str> = b.iter().filter(|p| !a.contains(p)).copied().collect();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("now {}", added.join(", ")));
    }
    if !removed.is_empty() {
        parts.push(format!("was {}", removed.join(", ")));
    }
    format!("changed ({})", parts.join("; "))
}

/// An input's name, for people.
fn subject(name: &str) -> String {
    let (kind, rest) = name.split_once(':').unwrap_or((name, ""));
    match (kind, rest) {
        ("file", path) => crate::changes::shown(path),
        ("env", var) => format!("the variable {var}"),
        ("manifest", "suite") => "its entry in Cargo.toml".into(),
        ("manifest", _) => "the manifest's settings for all suites".into(),
        ("pytest", _) => {
            "the pytest command (markers, paths, arguments after `--`, --no-capture)".into()
        }
        ("run", "timeout") => "the timeout".into(),
        ("environment", "inputs") => {
            "what its environment is built from (the lock, requirements, uv's version)".into()
        }
        ("environment", "interpreter") => "the Python interpreter".into(),
        ("environment", "packages") => "the installed packages".into(),
        ("environment", "scripts") => "its environment's scripts (bin/)".into(),
        ("xtask", _) => "the xtask itself (a new version)".into(),
        _ => name.to_string(),
    }
}

/// The entry in `bytes`, checked to be the one asked for.
fn read_entry(bytes: &[u8], suite: &str, key: &str) -> Result<Entry, String> {
    let entry: Entry =
        serde_json::from_slice(bytes).map_err(|err| format!("it is not an entry: {err}"))?;
    if entry.format != FORMAT {
        return Err(format!("it is of format {}, not {FORMAT}", entry.format));
    }
    if entry.suite != suite || entry.key != key || entry.inputs.key() != key {
        return Err("its suite or key is not the one its name says".into());
    }
    if entry.record.outcome != crate::outcome::Outcome::Passed.name() {
        return Err(format!(
            "its result is `{}`, not passed",
            entry.record.outcome
        ));
    }
    Ok(entry)
}

/// The result `entry` holds, marked cached.
fn replayed(entry: &Entry) -> Result<SuiteResult, String> {
    let mut result =
        crate::report::record::result(&entry.record, None).map_err(|err| format!("{err:#}"))?;
    // This run's steps and times are its own; the tests' starts were that run's.
    result.steps.clear();
    for case in &mut result.cases {
        for attempt in &mut case.attempts {
            attempt.started = None;
        }
    }
    result.cached = Some(CachedFrom {
        run_id: entry.run_id.clone(),
        started_at: entry.started_at.clone(),
        duration: Duration::try_from_secs_f64(entry.duration_secs).unwrap_or_default(),
        key: entry.key.clone(),
    });
    Ok(result)
}

/// The xtask's version, and its pytest plugin (which shapes every result).
fn xtask_version() -> String {
    format!(
        "{} plugin:{}",
        env!("CARGO_PKG_VERSION"),
        &bytes_hash(crate::progress::PLUGIN_SOURCE.as_bytes())[..16]
    )
}

fn json_digest<T: Serialize>(value: &T) -> String {
    bytes_hash(&serde_json::to_vec(value).unwrap_or_default())
}

/// `[workspace.metadata.xtask]` of the root Cargo.toml, as JSON.
fn manifest_table(layout: &Layout) -> Option<Value> {
    crate::changes::table(&std::fs::read_to_string(layout.manifest()).ok()?)
}

/// The configuration files pytest may read for a suite in `dir`, in every directory from
/// it up to the root (relative to the root).
fn config_files_above(dir: &str) -> Vec<String> {
    let mut dirs = vec![String::new()];
    let mut prefix = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty() && *p != ".") {
        prefix.push_str(part);
        prefix.push('/');
        dirs.push(prefix.clone());
    }
    dirs.iter()
        .flat_map(|d| CONFIG_FILES.iter().map(move |f| format!("{d}{f}")))
        .collect()
}

/// Every distribution installed in the environment at `env` (`name-version` of each
/// `.dist-info`) and each `.pth` file with its digest, sorted.
fn installed(env: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let lib = env.join("lib");
    let Ok(pythons) = std::fs::read_dir(&lib) else {
        return out;
    };
    for python in pythons.flatten() {
        let site = python.path().join("site-packages");
        let Ok(entries) = std::fs::read_dir(&site) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(dist) = name.strip_suffix(".dist-info") {
                out.push(dist.to_string());
            } else if name.ends_with(".pth") {
                let digest = std::fs::read(entry.path())
                    .map(|b| bytes_hash(&b))
                    .unwrap_or_default();
                out.push(format!("{name}:{}", &digest[..digest.len().min(16)]));
            }
        }
    }
    out.sort();
    out
}

/// The files of the tree at `root`: what git lists (tracked, and untracked but not
/// ignored), or when git cannot say (not a work tree, no git) every file but those in
/// hidden directories; never what runs write (`out_dir`).
fn listing(root: &Path, out_dir: &Path) -> Listing {
    let excluded = out_dir
        .strip_prefix(root)
        .map(|p| format!("{}/", p.to_string_lossy()))
        .unwrap_or_default();
    let answer = crate::changes::git(
        root,
        &[
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
    );
    match answer {
        Ok(answer) if answer.success() => Listing::from_git(&answer.stdout, excluded),
        _ => Listing::walked(root, excluded),
    }
}

/// Each file of the environment's `bin/` (its `pytest` script among them) with its size,
/// sorted: a script replaced or removed by hand is another environment.
fn scripts(bin: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(bin)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| {
            let size = std::fs::metadata(entry.path()).map_or(-1, |m| m.len() as i128);
            format!("{}:{size}", entry.file_name().to_string_lossy())
        })
        .collect();
    out.sort();
    out
}

/// The files an `inputs` glob matches, relative to the root (all files, ignored by git or
/// not, but never what runs write).
fn glob_files(root: &Path, glob: &str, excluded: &str) -> Vec<String> {
    let pattern = root.join(glob);
    let Ok(paths) = glob::glob(&pattern.to_string_lossy()) else {
        return Vec::new();
    };
    paths
        .flatten()
        .filter(|p| p.is_file())
        .filter_map(|p| {
            let rel = p.strip_prefix(root).ok()?.to_string_lossy().into_owned();
            (!written_by_runs(&rel, excluded)).then_some(rel)
        })
        .collect()
}

/// Removes the least recently used entries of `dir` (`SUITE/KEY.json`) beyond `max_bytes`
/// in all, or beyond `per_suite` for one suite; and temporary files left by an invocation
/// that was killed while writing.
fn prune(dir: &Path, max_bytes: u64, per_suite: usize) {
    let Ok(suites) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<(std::time::SystemTime, u64, PathBuf, String)> = Vec::new();
    for suite in suites.flatten() {
        let name = suite.file_name().to_string_lossy().into_owned();
        let Ok(files) = std::fs::read_dir(suite.path()) else {
            continue;
        };
        for file in files.flatten() {
            let Ok(meta) = file.metadata() else { continue };
            let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            entries.push((modified, meta.len(), file.path(), name.clone()));
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut total = 0u64;
    let mut per: HashMap<String, usize> = HashMap::new();
    for (_, len, path, suite) in entries {
        let count = per.entry(suite).or_default();
        total = total.saturating_add(len);
        *count += 1;
        if total > max_bytes || *count > per_suite {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_files_are_looked_for_from_the_root_to_the_suite() {
        let files = config_files_above("shared/guardrail");
        assert!(files.contains(&"conftest.py".to_string()));
        assert!(files.contains(&"shared/conftest.py".to_string()));
        assert!(files.contains(&"shared/guardrail/pytest.ini".to_string()));
        assert_eq!(config_files_above(".").len(), CONFIG_FILES.len());
    }

    #[test]
    fn differences_name_each_input_and_how_it_changed() {
        let old = Inputs(BTreeMap::from([
            ("file:a.py".to_string(), "1".to_string()),
            ("file:conftest.py".to_string(), "missing".to_string()),
            ("env:FOO".to_string(), "x".to_string()),
            ("environment:packages".to_string(), "a-1 b-1".to_string()),
        ]));
        let new = Inputs(BTreeMap::from([
            ("file:a.py".to_string(), "2".to_string()),
            ("file:conftest.py".to_string(), "3".to_string()),
            ("env:FOO".to_string(), "x".to_string()),
            ("environment:packages".to_string(), "a-2 b-1".to_string()),
        ]));
        let found: Vec<(String, String)> = differences(&old, &new)
            .into_iter()
            .map(|d| (d.subject, d.how))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "the installed packages".into(),
                    "changed (now a-2; was a-1)".into()
                ),
                ("a.py".into(), "changed".into()),
                ("conftest.py".into(), "added".into()),
            ]
        );
        assert_ne!(old.key(), new.key());
    }
}
