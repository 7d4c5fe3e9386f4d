//! The suite manifest: `[workspace.metadata.xtask]` in the root `Cargo.toml`, read from the
//! file itself (no `cargo metadata`), so that editing it needs no rebuild.
//!
//! What TOML may say is the serde schema in `raw`; this module turns it into the model the
//! rest of the crate uses and checks everything serde cannot (names, durations, paths,
//! references between entries), in one place. Every problem points at its value:
//! `Cargo.toml:LINE:COLUMN: workspace.metadata.xtask.suites[2].timeout: what is wrong`.

pub mod raw;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::paths::Layout;
pub use raw::{prerequisite_keys, runs_keys, service_keys, suite_keys, top_keys};
use raw::{RawDuration, RawPrerequisite, RawRuns, RawService, RawSize, RawSuite, RawTop};

pub const TABLE: &str = "[workspace.metadata.xtask]";
/// The key path of the manifest's table, as problems name it.
const PATH: &str = "workspace.metadata.xtask";
/// The group of the smoke suites: left out of `test` unless named, run by `smoke`.
pub const SMOKE_GROUP: &str = "smoke";
/// How long a service gets to become ready when it sets no `deadline`.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
/// How long a prerequisite check may take when it sets no `timeout`.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Replaced by the service's port in its `command`, `env`, `ready` and `export`.
pub const PORT_PLACEHOLDER: &str = "{port}";
/// The most retries a suite may ask for: a test that fails more often is not flaky.
pub const MAX_RETRIES: u32 = 10;
/// How long a suite may run when neither the manifest nor `--timeout` says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub suites: Vec<Suite>,
    /// Names of environment variables whose values are masked everywhere, on top of the
    /// names that look secret (see `redact`).
    pub secrets: Vec<String>,
    /// The groups `cargo xtask ci` runs (`ci-groups`); every group when absent.
    pub ci_groups: Option<Vec<String>>,
    /// Long-running programs suites need (`[workspace.metadata.xtask.services.NAME]`).
    pub services: Vec<Service>,
    /// What must already be available for a suite to run (`...prerequisites.NAME`).
    pub prerequisites: Vec<Prerequisite>,
    /// Which finished runs `target/xtask/runs/` keeps (`[workspace.metadata.xtask.runs]`).
    pub runs: Retention,
}

/// Which finished runs are kept under `target/xtask/runs/`: the newest `keep`, of those
/// only the ones younger than `max_age`, and of those only the newest that fit in
/// `max_size` together. A run still running and the one `latest` leads to are always kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub keep: usize,
    pub max_age: Option<Duration>,
    /// Bytes.
    pub max_size: Option<u64>,
}

/// How many finished runs are kept when the manifest does not say (`runs.keep`).
pub const DEFAULT_KEEP_RUNS: usize = 10;

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep: DEFAULT_KEEP_RUNS,
            max_age: None,
            max_size: None,
        }
    }
}

/// A program the xtask starts for the suites that name it, and stops after them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    /// argv; `{port}` is replaced by the service's port.
    pub command: Vec<String>,
    /// Where it runs, relative to the repository root.
    pub dir: String,
    /// The suite whose environment it runs in (its `bin` first on PATH, `VIRTUAL_ENV` set).
    pub environment: Option<String>,
    pub env: BTreeMap<String, String>,
    pub ready: Ready,
    /// How long it gets to become ready.
    pub deadline: Duration,
    /// Variables given to the suites that need it (`BACKEND_URL = "http://127.0.0.1:{port}"`).
    pub export: BTreeMap<String, String>,
    /// A fixed port instead of a free one chosen by the xtask.
    pub port: Option<u16>,
}

/// When a service is ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ready {
    /// This URL answers with a 2xx status.
    Http(String),
    /// Its port accepts a TCP connection.
    Tcp,
}

/// Something a suite needs that the xtask checks but does not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prerequisite {
    pub name: String,
    pub check: Check,
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// The variable is set and not empty (its value is never shown).
    Env(String),
    /// `host:port` accepts a TCP connection.
    Tcp(String),
    /// The URL answers with a 2xx status.
    Http(String),
    /// The command exits 0.
    Command(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suite {
    pub name: String,
    pub group: String,
    /// Relative to the repository root.
    pub dir: String,
    pub environment: Environment,
    /// Relative to the repository root.
    pub pythonpath: Vec<String>,
    /// pytest's `-m` expression; `None` selects every test.
    pub markers: Option<String>,
    /// Relative to `dir`; empty means pytest's own discovery.
    pub paths: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// The suite's own `timeout`, else the manifest's, else `DEFAULT_TIMEOUT`.
    pub timeout: Duration,
    /// Environment variables the suite needs (API keys of a smoke test); when one is unset
    /// or empty the suite is not run and ends `prerequisite-unavailable`.
    pub requires_env: Vec<String>,
    /// The services it needs started (names of `services`).
    pub services: Vec<String>,
    /// The prerequisites it needs available (names of `prerequisites`).
    pub prerequisites: Vec<String>,
    /// How many times a failed test is run again (`retries`; `--retries` overrides).
    pub retries: u32,
    /// Into how many slices, run at once in its one environment, its tests are cut
    /// (`split`; `--split` overrides).
    pub split: Split,
    /// What the result cache may do with it, and what it hashes beyond the usual inputs.
    pub cache: CacheSettings,
}

/// A suite's result-cache settings (`cache`, `inputs`, `inputs-env`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// `cache = false`: always run it.
    pub enabled: bool,
    /// More input files, as globs relative to the root (data its tests read).
    pub inputs: Vec<String>,
    /// More input variables, by name (read by its tests from the caller's environment).
    pub inputs_env: Vec<String>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            enabled: true,
            inputs: Vec::new(),
            inputs_env: Vec::new(),
        }
    }
}

/// The most slices `split` may ask for: as many as `--partition hash:K/N` allows.
pub const MAX_SPLIT: u32 = 256;

/// `split`: how many pytest processes share one suite's tests, at once, in its one
/// environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// This many slices (1: not split).
    Count(u32),
    /// Split when the recorded durations say the suite would leave cores idle at the end
    /// of the run (see `decide_splits` in the plan module).
    Auto,
}

impl Default for Split {
    fn default() -> Self {
        Split::Count(1)
    }
}

impl Split {
    /// `--split`: `N` (1 to [`MAX_SPLIT`]) or `auto`.
    pub fn parse(text: &str) -> Result<Split, String> {
        if text == "auto" {
            return Ok(Split::Auto);
        }
        match text.parse::<u32>() {
            Ok(n) if (1..=MAX_SPLIT).contains(&n) => Ok(Split::Count(n)),
            _ => Err(format!(
                "`{text}` is not a split: use a number of slices from 1 to {}, or `auto`",
                MAX_SPLIT
            )),
        }
    }
}

/// How a suite's Python environment is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Environment {
    /// The project itself, from its `uv.lock` (`uv sync --locked`), with these optional
    /// extras and dependency groups (PEP 735; uv follows `include-group`), and the
    /// project's default groups (`[tool.uv] default-groups`, else `dev`) unless
    /// `default_groups` is false.
    Project {
        extras: Vec<String>,
        groups: Vec<String>,
        default_groups: bool,
    },
    /// No project install: only these requirements, and those of a requirements file
    /// (relative to the repository root, installed as `uv pip install -r FILE` run there).
    Requirements {
        requirements: Vec<String>,
        file: Option<String>,
    },
}

impl Environment {
    /// The project with these extras, its default groups and no other.
    pub fn project(extras: &[&str]) -> Environment {
        Environment::Project {
            extras: extras.iter().map(|e| e.to_string()).collect(),
            groups: vec![],
            default_groups: true,
        }
    }

    /// What a project's `uv sync` or `uv run` installs of it: `--extra E`, `--group G`,
    /// `--no-default-groups`; nothing for a no-project environment.
    pub fn uv_selection(&self) -> Vec<String> {
        let Environment::Project {
            extras,
            groups,
            default_groups,
        } = self
        else {
            return vec![];
        };
        let mut args = Vec::new();
        for extra in extras {
            args.extend(["--extra".to_string(), extra.clone()]);
        }
        for group in groups {
            args.extend(["--group".to_string(), group.clone()]);
        }
        if !default_groups {
            args.push("--no-default-groups".into());
        }
        args
    }
}

/// Everything wrong with a manifest, so that one edit can fix it all. Each problem reads
/// `FILE:LINE:COLUMN: KEY PATH: what is wrong; how to fix it`.
#[derive(Debug)]
pub struct ManifestError {
    pub file: PathBuf,
    pub problems: Vec<String>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid suite manifest {TABLE} in {}:",
            self.file.display()
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        write!(f, "Fix the entries above (docs/manifest.md, \"Adding a suite\", describes every key); nothing was run.")
    }
}

impl std::error::Error for ManifestError {}

/// One thing wrong, where it was written: `at` is a byte range of the file, `path` the key
/// path (with the suite's name when there is one).
#[derive(Debug)]
struct Problem {
    at: Range<usize>,
    path: String,
    message: String,
}

impl Manifest {
    /// Reads the manifest of the repository at `layout.root`: its `Cargo.toml`.
    pub fn load(layout: &Layout) -> Result<Manifest, ManifestError> {
        let file = layout.manifest();
        let text = std::fs::read_to_string(&file).map_err(|err| ManifestError {
            problems: vec![format!(
                "{}: cannot be read: {err}; `cargo xtask` runs from a Cargo workspace whose root Cargo.toml holds the manifest",
                file.display()
            )],
            file: file.clone(),
        })?;
        Manifest::from_toml(&text, &file, &layout.root)
    }

    /// Reads and validates the manifest in `text`, the contents of `file` (named in every
    /// problem); directories are checked below `root`.
    pub fn from_toml(text: &str, file: &Path, root: &Path) -> Result<Manifest, ManifestError> {
        let problems = match DeTable::parse(text) {
            Ok(document) => match read(document.get_ref(), root) {
                Ok(manifest) => return Ok(manifest),
                Err(problems) => problems,
            },
            Err(err) => vec![Problem {
                at: err.span().unwrap_or(0..0),
                path: String::new(),
                message: format!("{}; the file is not valid TOML", err.message().trim_end()),
            }],
        };
        Err(render(file, text, problems))
    }
}

/// The problems in the order of the file, each as `FILE:LINE:COLUMN: PATH: MESSAGE`.
fn render(file: &Path, text: &str, mut problems: Vec<Problem>) -> ManifestError {
    problems.sort_by_key(|p| p.at.start);
    let problems = problems
        .into_iter()
        .map(|problem| {
            let (line, column) = line_column(text, problem.at.start);
            let path = if problem.path.is_empty() {
                String::new()
            } else {
                format!(" {}:", problem.path)
            };
            format!(
                "{}:{line}:{column}:{path} {}",
                file.display(),
                problem.message
            )
        })
        .collect();
    ManifestError {
        file: file.to_path_buf(),
        problems,
    }
}

/// The 1-based line and column (in characters, as editors count) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

impl Manifest {
    /// The groups, in the order they first appear.
    pub fn groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = Vec::new();
        for suite in &self.suites {
            if !groups.contains(&suite.group.as_str()) {
                groups.push(&suite.group);
            }
        }
        groups
    }

    pub fn suites_in_group<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a Suite> + 'a {
        self.suites.iter().filter(move |s| s.group == group)
    }
}

#[cfg(test)]
impl Manifest {
    /// Suites named `(name, group)`, each a locked project in `.`, for unit tests.
    pub fn for_tests(suites: &[(&str, &str)]) -> Manifest {
        let suite = |(name, group): &(&str, &str)| Suite {
            name: name.to_string(),
            group: group.to_string(),
            dir: ".".into(),
            environment: Environment::project(&[]),
            pythonpath: vec![],
            markers: None,
            paths: vec![],
            env: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT,
            requires_env: vec![],
            services: vec![],
            prerequisites: vec![],
            retries: 0,
            split: Split::default(),
            cache: CacheSettings::default(),
        };
        Manifest {
            suites: suites.iter().map(suite).collect(),
            secrets: vec![],
            ci_groups: None,
            services: vec![],
            prerequisites: vec![],
            runs: Retention::default(),
        }
    }
}

/// The manifest in a parsed `Cargo.toml`, or everything wrong with it.
fn read(document: &DeTable<'_>, root: &Path) -> Result<Manifest, Vec<Problem>> {
    let mut problems = Vec::new();
    let Some(value) = find_table(document, &mut problems) else {
        return Err(problems);
    };
    let Some(table) = value.get_ref().as_table() else {
        problems.push(Problem {
            at: value.span(),
            path: PATH.into(),
            message: format!(
                "must be a table, found {}; write it as {TABLE}",
                a(value.get_ref())
            ),
        });
        return Err(problems);
    };
    let top = deserialize::<RawTop>(value, PATH, "", &mut problems);
    let mut entry = Entry::new(PATH.into(), String::new(), root, &mut problems);
    let default_timeout = top
        .as_ref()
        .and_then(|top| top.timeout.as_ref())
        .map_or(DEFAULT_TIMEOUT, |t| {
            entry.duration("timeout", t, DEFAULT_TIMEOUT)
        });
    let secrets = match top.as_ref().and_then(|top| top.secrets.as_ref()) {
        None => Vec::new(),
        Some(names) => entry.env_names("secrets", names),
    };
    let runs = match top.as_ref().and_then(|top| top.runs.as_ref()) {
        None => Retention::default(),
        Some(raw) => {
            Entry::new(format!("{PATH}.runs"), String::new(), root, &mut problems).retention(raw)
        }
    };

    let services: Vec<(Service, Option<Range<usize>>)> =
        named_entries(table, "services", &mut problems)
            .into_iter()
            .filter_map(|(name, prefix, value)| {
                let raw = deserialize::<RawService>(value, &prefix, "", &mut problems)?;
                Entry::new(prefix, String::new(), root, &mut problems).service(
                    name,
                    raw,
                    value.span(),
                )
            })
            .collect();
    let prerequisites: Vec<Prerequisite> = named_entries(table, "prerequisites", &mut problems)
        .into_iter()
        .filter_map(|(name, prefix, value)| {
            let raw = deserialize::<RawPrerequisite>(value, &prefix, "", &mut problems)?;
            Entry::new(prefix, String::new(), root, &mut problems).prerequisite(
                name,
                raw,
                value.span(),
            )
        })
        .collect();
    let known = Known {
        services: services.iter().map(|(s, _)| s.name.as_str()).collect(),
        prerequisites: prerequisites.iter().map(|p| p.name.as_str()).collect(),
    };

    let mut suites: Vec<(Suite, Place, Range<usize>)> = Vec::new();
    for (index, item) in suite_entries(table, value.span(), &mut problems)
        .iter()
        .enumerate()
    {
        let prefix = format!("{PATH}.suites[{index}]");
        let name = item
            .get_ref()
            .get("name")
            .and_then(|n| n.get_ref().as_str());
        let label = name.map_or_else(String::new, |name| format!(" (suite `{name}`)"));
        let Some(raw) = deserialize::<RawSuite>(item, &prefix, &label, &mut problems) else {
            continue;
        };
        let mut entry = Entry::new(prefix, label, root, &mut problems);
        if let Some((suite, name_at)) = entry.suite(raw, item.span(), default_timeout, &known) {
            suites.push((suite, entry.place, name_at));
        }
    }

    // References between entries, and names that must be unique.
    for (service, environment_at) in &services {
        if let (Some(env), Some(at)) = (&service.environment, environment_at) {
            if !suites.iter().any(|(s, ..)| &s.name == env) {
                problems.push(Problem {
                    at: at.clone(),
                    path: format!("{PATH}.services.{}.environment", segment(&service.name)),
                    message: format!("there is no suite `{env}` whose environment it could run in; name a suite of this manifest"),
                });
            }
        }
    }
    let mut names = BTreeSet::new();
    let groups: BTreeSet<&str> = suites.iter().map(|(s, ..)| s.group.as_str()).collect();
    for (suite, entry, name_at) in &suites {
        if !names.insert(suite.name.as_str()) {
            problems.push(entry.problem_at(
                "name",
                name_at.clone(),
                "the name is used by more than one suite; names must be unique",
            ));
        }
        if groups.contains(suite.name.as_str()) {
            problems.push(entry.problem_at("name", name_at.clone(), format_args!(
                "`{}` is also a group name, so `cargo xtask test {}` would be ambiguous; rename the suite or the group",
                suite.name, suite.name
            )));
        }
    }
    let ci_groups = top
        .as_ref()
        .and_then(|top| top.ci_groups.as_ref())
        .map(|listed| {
            for group in listed
                .iter()
                .filter(|g| !groups.contains(g.get_ref().as_str()))
            {
                problems.push(Problem {
                    at: group.span(),
                    path: format!("{PATH}.ci-groups"),
                    message: format!(
                        "there is no group `{}`; the groups are {}",
                        group.get_ref(),
                        groups.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
            listed.iter().map(|g| g.get_ref().clone()).collect()
        });

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Manifest {
        suites: suites.into_iter().map(|(s, ..)| s).collect(),
        secrets,
        ci_groups,
        services: services.into_iter().map(|(s, _)| s).collect(),
        prerequisites,
        runs,
    })
}

const NO_SUITES: &str = "no suites: add a [[workspace.metadata.xtask.suites]] entry per suite";

/// The `[[workspace.metadata.xtask.suites]]` entries; none, with the problem, when there is
/// no entry or `suites` is not an array. `at` is the manifest table's place.
fn suite_entries<'t, 'i>(
    table: &'t DeTable<'i>,
    at: Range<usize>,
    problems: &mut Vec<Problem>,
) -> &'t [Spanned<DeValue<'i>>] {
    let path = format!("{PATH}.suites");
    let (at, path, message) = match table.get("suites") {
        None => (at, PATH.to_string(), NO_SUITES.to_string()),
        Some(entries) => match entries.get_ref() {
            DeValue::Array(items) if !items.is_empty() => return items,
            DeValue::Array(_) => (entries.span(), path, NO_SUITES.to_string()),
            other => (
                entries.span(),
                path,
                format!(
                    "must be an array of tables ([[workspace.metadata.xtask.suites]]), found {}",
                    a(other)
                ),
            ),
        },
    };
    problems.push(Problem { at, path, message });
    &[]
}

/// `workspace.metadata.xtask` in the document, or the problem that it is not there.
fn find_table<'d, 'i>(
    document: &'d DeTable<'i>,
    problems: &mut Vec<Problem>,
) -> Option<&'d Spanned<DeValue<'i>>> {
    let mut table = document;
    let mut at = 0..0;
    let mut path = String::new();
    for key in ["workspace", "metadata", "xtask"] {
        path = if path.is_empty() {
            key.into()
        } else {
            format!("{path}.{key}")
        };
        let value = table.get(key);
        match value.map(|v| (v, v.get_ref())) {
            Some((value, _)) if key == "xtask" => return Some(value),
            Some((value, DeValue::Table(inner))) => {
                at = value.span();
                table = inner;
            }
            Some((value, other)) => {
                problems.push(Problem {
                    at: value.span(),
                    path,
                    message: format!("must be a table, found {}", a(other)),
                });
                return None;
            }
            None => break,
        }
    }
    problems.push(Problem {
        at,
        path: String::new(),
        message: format!("there is no {TABLE} table; add one with a [[workspace.metadata.xtask.suites]] entry per suite (`cargo xtask init` guesses one)"),
    });
    None
}

/// Reads one value into its serde type; serde's complaint (a wrong type, an unknown key with
/// the keys allowed) becomes a problem at the key it is about.
fn deserialize<T: DeserializeOwned>(
    value: &Spanned<DeValue<'_>>,
    prefix: &str,
    label: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    T::deserialize(ValueDeserializer::from(value.clone()))
        .map_err(|err| {
            let at = err.span().unwrap_or_else(|| value.span());
            problems.push(Problem {
                path: format!("{}{label}", key_path(value, at.start, prefix)),
                at,
                message: in_toml_words(err.message().trim_end()),
            });
        })
        .ok()
}

/// serde's words for types, in TOML's: "expected a sequence" is "expected an array".
fn in_toml_words(message: &str) -> String {
    [
        ("a sequence", "an array"),
        ("sequence", "array"),
        ("a map", "a table"),
        ("map", "table"),
        ("i64", "a whole number"),
        ("u64", "a whole number"),
        ("a borrowed string", "a string"),
        ("a boolean", "true or false"),
    ]
    .iter()
    .fold(message.to_owned(), |text, (serde, toml)| {
        text.replace(&format!("expected {serde}"), &format!("expected {toml}"))
            .replace(
                &format!("invalid type: {serde}"),
                &format!("invalid type: {toml}"),
            )
    })
}

/// The path of the innermost key or item inside `value` written at byte `at`.
fn key_path(value: &Spanned<DeValue<'_>>, at: usize, prefix: &str) -> String {
    fn search(value: &DeValue<'_>, at: usize, path: &str, best: &mut Option<(usize, String)>) {
        let consider = |span: Range<usize>, path: &str, best: &mut Option<(usize, String)>| {
            let holds = span.contains(&at) || span.start == at;
            if holds && best.as_ref().is_none_or(|(len, _)| span.len() <= *len) {
                *best = Some((span.len(), path.to_owned()));
            }
        };
        match value {
            DeValue::Table(table) => {
                for (key, value) in table.iter() {
                    let path = format!("{path}.{}", segment(key.get_ref()));
                    consider(key.span(), &path, best);
                    consider(value.span(), &path, best);
                    search(value.get_ref(), at, &path, best);
                }
            }
            DeValue::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    let path = format!("{path}[{index}]");
                    consider(item.span(), &path, best);
                    search(item.get_ref(), at, &path, best);
                }
            }
            _ => {}
        }
    }
    let mut best = None;
    search(value.get_ref(), at, prefix, &mut best);
    best.map_or_else(|| prefix.to_owned(), |(_, path)| path)
}

/// A key as it is written in a dotted path: bare when TOML allows, else quoted.
fn segment(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// "a string", "an array", ... for messages.
fn a(value: &DeValue<'_>) -> String {
    let kind = value.type_str();
    let article = if kind.starts_with(['a', 'i']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

/// The named tables of `[workspace.metadata.xtask.KEY.NAME]`, names checked: (name, path,
/// table).
fn named_entries<'t, 'i>(
    table: &'t DeTable<'i>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Vec<(&'t str, String, &'t Spanned<DeValue<'i>>)> {
    let Some(value) = table.get(key) else {
        return Vec::new();
    };
    let Some(entries) = value.get_ref().as_table() else {
        problems.push(Problem {
            at: value.span(),
            path: format!("{PATH}.{key}"),
            message: format!(
                "must be a table of named tables ([workspace.metadata.xtask.{key}.NAME]), found {}",
                a(value.get_ref())
            ),
        });
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|(name, value)| {
            let path = format!("{PATH}.{key}.{}", segment(name.get_ref()));
            if !plain_name(name.get_ref()) {
                problems.push(Problem {
                    at: name.span(),
                    path,
                    message: format!(
                        "`{}` must use only letters, digits, `-` and `_`; rename it",
                        name.get_ref()
                    ),
                });
                return None;
            }
            Some((name.get_ref().as_ref(), path, value))
        })
        .collect()
}

fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The names suites may refer to.
struct Known<'m> {
    services: Vec<&'m str>,
    prerequisites: Vec<&'m str>,
}

/// Where an entry is: its key path and, for a suite, its name.
#[derive(Clone, Debug)]
struct Place {
    prefix: String,
    /// ` (suite `NAME`)`, or empty.
    label: String,
}

impl Place {
    fn problem_at(&self, key: &str, at: Range<usize>, message: impl fmt::Display) -> Problem {
        Problem {
            at,
            path: format!("{}.{key}{}", self.prefix, self.label),
            message: message.to_string(),
        }
    }
}

/// One table being checked and turned into the model.
struct Entry<'p> {
    place: Place,
    root: &'p Path,
    problems: &'p mut Vec<Problem>,
}

impl<'p> Entry<'p> {
    fn new(prefix: String, label: String, root: &'p Path, problems: &'p mut Vec<Problem>) -> Self {
        Entry {
            place: Place { prefix, label },
            root,
            problems,
        }
    }

    fn problem(&mut self, key: &str, at: Range<usize>, message: impl fmt::Display) {
        self.problems.push(self.place.problem_at(key, at, message));
    }

    /// A suite; with the place of its name, for the checks across suites.
    fn suite(
        &mut self,
        raw: RawSuite,
        at: Range<usize>,
        default_timeout: Duration,
        known: &Known,
    ) -> Option<(Suite, Range<usize>)> {
        let before = self.problems.len();
        let name = self.identifier("name", raw.name.as_ref(), &at);
        let group = self.identifier("group", raw.group.as_ref(), &at);
        let dir = self.required("dir", raw.dir.as_ref(), &at);
        if let Some(dir) = dir {
            self.existing_dir("dir", dir);
        }
        let environment = self.environment(&raw, dir.map(|d| d.get_ref().as_str()), &at);
        let pythonpath = raw.pythonpath.unwrap_or_default();
        for entry in &pythonpath {
            self.existing_dir("pythonpath", entry);
        }
        let markers = raw.markers.filter(|m| !m.trim().is_empty());
        let paths = raw.paths.unwrap_or_default();
        if let Some(dir) = dir.filter(|d| self.root.join(d.get_ref()).is_dir()) {
            let dir = dir.get_ref();
            for path in &paths {
                if Path::new(path.get_ref()).is_absolute() {
                    self.problem(
                        "paths",
                        path.span(),
                        format_args!("`{path}` must be relative to the suite's `dir` ({dir})"),
                    );
                } else if !self.root.join(dir).join(path.get_ref()).exists() {
                    self.problem("paths", path.span(), format_args!("`{path}` does not exist in `{dir}`; paths are relative to the suite's `dir`"));
                }
            }
        }
        let env = self.env_table("env", raw.env.as_ref());
        let timeout = match &raw.timeout {
            None => default_timeout,
            Some(t) => self.duration("timeout", t, default_timeout),
        };
        let requires_env = match &raw.requires_env {
            None => Vec::new(),
            Some(names) => self.env_names("requires-env", names),
        };
        let services = self.references(
            "services",
            raw.services.as_ref(),
            &known.services,
            "service",
        );
        let prerequisites = self.references(
            "prerequisites",
            raw.prerequisites.as_ref(),
            &known.prerequisites,
            "prerequisite",
        );
        let retries = match &raw.retries {
            None => 0,
            Some(n) => match u32::try_from(*n.get_ref()) {
                Ok(n) if n <= MAX_RETRIES => n,
                _ => {
                    self.problem(
                        "retries",
                        n.span(),
                        format_args!(
                            "must be a whole number from 0 to {MAX_RETRIES}, found {}",
                            n.get_ref()
                        ),
                    );
                    0
                }
            },
        };
        let split = match raw.split.as_ref() {
            None => Split::default(),
            Some(split) => {
                let text = match split.get_ref() {
                    raw::RawSplit::Text(text) => text.clone(),
                    raw::RawSplit::Count(n) => n.to_string(),
                };
                Split::parse(&text).unwrap_or_else(|why| {
                    self.problem("split", split.span(), why);
                    Split::default()
                })
            }
        };
        let inputs = raw.inputs.unwrap_or_default();
        for glob in &inputs {
            self.input_glob(glob);
        }
        let cache = CacheSettings {
            enabled: raw.cache.as_ref().is_none_or(|c| *c.get_ref()),
            inputs: strings(inputs),
            inputs_env: match &raw.inputs_env {
                None => Vec::new(),
                Some(names) => self.env_names("inputs-env", names),
            },
        };
        if self.problems.len() > before {
            return None;
        }
        let name_at = raw.name.as_ref().map(|n| n.span())?;
        Some((
            Suite {
                name: name?,
                group: group?,
                dir: dir?.get_ref().clone(),
                environment: environment?,
                pythonpath: strings(pythonpath),
                markers,
                paths: strings(paths),
                env,
                timeout,
                requires_env,
                services,
                prerequisites,
                retries,
                split,
                cache,
            },
            name_at,
        ))
    }

    /// Names of services or prerequisites, each declared in the manifest.
    fn references(
        &mut self,
        key: &str,
        names: Option<&raw::Strings>,
        declared: &[&str],
        what: &str,
    ) -> Vec<String> {
        let names = names.map(Vec::as_slice).unwrap_or_default();
        for name in names
            .iter()
            .filter(|n| !declared.contains(&n.get_ref().as_str()))
        {
            self.problem(
                key,
                name.span(),
                format_args!("there is no {what} `{name}`; declare it as [workspace.metadata.xtask.{key}.{name}]"),
            );
        }
        names.iter().map(|n| n.get_ref().clone()).collect()
    }

    fn required<'v>(
        &mut self,
        key: &str,
        value: Option<&'v Spanned<String>>,
        entry_at: &Range<usize>,
    ) -> Option<&'v Spanned<String>> {
        if value.is_none() {
            self.problem(
                key,
                entry_at.clone(),
                "missing; every suite needs `name`, `group` and `dir`",
            );
        }
        value
    }

    /// Names end up in file names and subcommand names, so keep them plain.
    fn identifier(
        &mut self,
        key: &str,
        value: Option<&Spanned<String>>,
        entry_at: &Range<usize>,
    ) -> Option<String> {
        let value = self.required(key, value, entry_at)?;
        let text = value.get_ref();
        let plain = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            && !text.starts_with(['-', '.']);
        if !plain {
            self.problem(
                key,
                value.span(),
                format_args!(
                    "`{text}` must be non-empty and use only letters, digits, `-`, `_` and `.`"
                ),
            );
            return None;
        }
        Some(text.clone())
    }

    fn existing_dir(&mut self, key: &str, path: &Spanned<String>) {
        if self.relative_inside(key, path) && !self.root.join(path.get_ref()).is_dir() {
            self.problem(
                key,
                path.span(),
                format_args!(
                    "directory `{path}` does not exist (paths are relative to the repository root)"
                ),
            );
        }
    }

    /// Whether `path` is relative and stays inside the repository; a problem otherwise.
    /// An `inputs` glob: relative to the root, inside it, and a pattern `glob` can read.
    fn input_glob(&mut self, glob: &Spanned<String>) {
        if !self.relative_inside("inputs", glob) {
            return;
        }
        if let Err(err) = glob::Pattern::new(glob.get_ref()) {
            self.problem(
                "inputs",
                glob.span(),
                format_args!(
                    "`{glob}` is not a glob ({}, at character {}); use `*`, `?`, `[..]` and `**` for any directories",
                    err.msg,
                    err.pos + 1
                ),
            );
        }
    }

    fn relative_inside(&mut self, key: &str, path: &Spanned<String>) -> bool {
        let text = path.get_ref();
        let escapes = Path::new(text)
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
        let why = if text.trim().is_empty() {
            "must not be empty (use \".\" for the repository root)".to_string()
        } else if Path::new(text).is_absolute() {
            format!("`{text}` must be relative to the repository root")
        } else if escapes {
            format!("`{text}` leaves the repository (`..`); give a path inside it")
        } else {
            return true;
        };
        self.problem(key, path.span(), why);
        false
    }

    fn environment(
        &mut self,
        raw: &RawSuite,
        dir: Option<&str>,
        entry_at: &Range<usize>,
    ) -> Option<Environment> {
        let project_key = [
            ("extras", raw.extras.as_ref().map(|e| e.span())),
            ("groups", raw.groups.as_ref().map(|g| g.span())),
            (
                "default-groups",
                raw.default_groups.as_ref().map(|d| d.span()),
            ),
        ]
        .into_iter()
        .find_map(|(key, span)| Some((key, span?)));
        let no_project = raw.requirements.is_some() || raw.requirements_file.is_some();
        if project_key.is_some() == no_project {
            let (key, found, at) = match &project_key {
                Some((key, at)) => (
                    *key,
                    format!("`{key}` together with `requirements`/`requirements-file`"),
                    at.clone(),
                ),
                None => ("extras", "none of them".to_string(), entry_at.clone()),
            };
            self.problem(
                key,
                at,
                format_args!("give either `extras` and/or `groups` (install the project) or `requirements` and/or `requirements-file` (no project install); found {found}"),
            );
            return None;
        }
        if project_key.is_some() {
            let groups = raw.groups.as_ref().map_or(&[][..], |g| g.get_ref());
            let extras = raw.extras.as_ref().map_or(&[][..], |e| e.get_ref());
            // Names as PEP 685 and PEP 735 write them; anything else (a blank, `--frozen`)
            // would reach `uv sync` as something other than a name.
            for (key, names, span, table) in [
                (
                    "extras",
                    extras,
                    raw.extras.as_ref().map(|e| e.span()),
                    "[project.optional-dependencies]",
                ),
                (
                    "groups",
                    groups,
                    raw.groups.as_ref().map(|g| g.span()),
                    "[dependency-groups]",
                ),
            ] {
                if let Some(bad) = names.iter().find(|n| !is_dependency_name(n)) {
                    self.problem(
                        key,
                        span.unwrap_or_else(|| entry_at.clone()),
                        format_args!("`{bad}` is not a name of the project's {table}: letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit"),
                    );
                    return None;
                }
            }
            return Some(Environment::Project {
                extras: raw.extras.as_ref().map_or(vec![], |e| e.get_ref().clone()),
                groups: groups.to_vec(),
                default_groups: raw.default_groups.as_ref().is_none_or(|d| *d.get_ref()),
            });
        }
        let requirements: &[Spanned<String>] =
            raw.requirements.as_ref().map_or(&[], |r| r.get_ref());
        for local in requirements.iter().filter(|r| is_local_path(r.get_ref())) {
            let text = local.get_ref();
            if !self.root.join(text).exists() {
                let hint = dir
                    .map(|dir| Path::new(dir).join(text.trim().trim_start_matches("./")))
                    .filter(|in_dir| self.root.join(in_dir).exists())
                    .map(|in_dir| {
                        format!(
                            " (it is in the suite's `dir`: write `{}`)",
                            in_dir.display()
                        )
                    })
                    .unwrap_or_default();
                self.problem(
                    "requirements",
                    local.span(),
                    format_args!("`{text}` does not exist; a local path is relative to the repository root, as `uv pip install {text}` run there reads it{hint}"),
                );
            }
        }
        if let Some(file) = &raw.requirements_file {
            if self.relative_inside("requirements-file", file)
                && !self.root.join(file.get_ref()).is_file()
            {
                self.problem(
                    "requirements-file",
                    file.span(),
                    format_args!("`{file}` does not exist; it is relative to the repository root, as `uv pip install -r {file}` run there reads it"),
                );
                return None;
            }
        }
        if requirements.is_empty() && raw.requirements_file.is_none() {
            let at = raw
                .requirements
                .as_ref()
                .map_or(entry_at.clone(), |r| r.span());
            self.problem(
                "requirements",
                at,
                "must list at least one requirement (pytest, at least), or give a `requirements-file`",
            );
            return None;
        }
        Some(Environment::Requirements {
            requirements: requirements.iter().map(|r| r.get_ref().clone()).collect(),
            file: raw.requirements_file.as_ref().map(|f| f.get_ref().clone()),
        })
    }

    fn env_table(&mut self, key: &str, table: Option<&raw::EnvTable>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for (name, value) in table.map(|t| t.get_ref().iter()).into_iter().flatten() {
            if !valid_env_name(name.get_ref()) {
                self.problem(
                    key,
                    name.span(),
                    format_args!("`{name}` is not a valid environment variable name"),
                );
            } else if name.get_ref() == "PYTHONPATH" {
                self.problem(
                    key,
                    name.span(),
                    "set PYTHONPATH with the `pythonpath` key, not `env`",
                );
            } else {
                env.insert(name.get_ref().clone(), value.get_ref().clone());
            }
        }
        env
    }

    fn duration(&mut self, key: &str, value: &Spanned<RawDuration>, default: Duration) -> Duration {
        let parsed = match value.get_ref() {
            RawDuration::Text(text) => parse_duration(text),
            RawDuration::Seconds(secs) => match u64::try_from(*secs) {
                Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
                _ => Err(format!(
                    "`{secs}` is not a positive whole number of seconds"
                )),
            },
        };
        parsed.unwrap_or_else(|why| {
            self.problem(key, value.span(), why);
            default
        })
    }

    /// `[workspace.metadata.xtask.runs]`; a bad value is a problem and its default is used.
    fn retention(&mut self, raw: &RawRuns) -> Retention {
        let mut retention = Retention::default();
        if let Some(keep) = &raw.keep {
            match usize::try_from(*keep.get_ref()) {
                Ok(keep) => retention.keep = keep,
                Err(_) => self.problem(
                    "keep",
                    keep.span(),
                    format_args!(
                        "`{}` is not a number of runs: use a whole number, 0 or more (default {DEFAULT_KEEP_RUNS})",
                        keep.get_ref()
                    ),
                ),
            }
        }
        if let Some(age) = &raw.max_age {
            let parsed = match age.get_ref() {
                RawDuration::Text(text) => parse_age(text),
                RawDuration::Seconds(secs) => match u64::try_from(*secs) {
                    Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
                    _ => Err(format!(
                        "`{secs}` is not a positive whole number of seconds"
                    )),
                },
            };
            match parsed {
                Ok(age) => retention.max_age = Some(age),
                Err(why) => self.problem("max-age", age.span(), why),
            }
        }
        if let Some(size) = &raw.max_size {
            let parsed = match size.get_ref() {
                RawSize::Text(text) => parse_size(text),
                RawSize::Bytes(bytes) => u64::try_from(*bytes)
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or_else(|| format!("`{bytes}` is not a positive whole number of bytes")),
            };
            match parsed {
                Ok(size) => retention.max_size = Some(size),
                Err(why) => self.problem("max-size", size.span(), why),
            }
        }
        retention
    }

    fn env_names(&mut self, key: &str, names: &raw::Strings) -> Vec<String> {
        let mut valid = Vec::new();
        for name in names {
            if valid_env_name(name.get_ref()) {
                valid.push(name.get_ref().clone());
            } else {
                self.problem(
                    key,
                    name.span(),
                    format_args!("`{name}` is not a valid environment variable name"),
                );
            }
        }
        valid
    }

    fn argv(
        &mut self,
        key: &str,
        argv: Option<&Spanned<Vec<String>>>,
        entry_at: Range<usize>,
        what: &str,
    ) -> Option<Vec<String>> {
        match argv {
            Some(argv) if argv.get_ref().first().is_some_and(|p| !p.is_empty()) => {
                Some(argv.get_ref().clone())
            }
            Some(argv) => {
                self.problem(
                    key,
                    argv.span(),
                    "must be a non-empty array: the program and its arguments",
                );
                None
            }
            None => {
                self.problem(key, entry_at, what);
                None
            }
        }
    }

    /// A service; with the place of its `environment`, checked once the suites are known.
    fn service(
        &mut self,
        name: &str,
        raw: RawService,
        entry_at: Range<usize>,
    ) -> Option<(Service, Option<Range<usize>>)> {
        let before = self.problems.len();
        let command = self.argv(
            "command",
            raw.command.as_ref(),
            entry_at,
            "missing; a service needs a `command` (argv, with `{port}` for its port)",
        );
        let dir = match &raw.dir {
            Some(dir) => {
                self.existing_dir("dir", dir);
                dir.get_ref().clone()
            }
            None => ".".into(),
        };
        let env = self.env_table("env", raw.env.as_ref());
        let export = self.env_table("export", raw.export.as_ref());
        let ready = match &raw.ready {
            None => Some(Ready::Tcp),
            Some(ready) => match (&ready.get_ref().http, ready.get_ref().tcp) {
                (Some(url), None) if url.starts_with("http://") => Some(Ready::Http(url.clone())),
                (None, Some(true)) => Some(Ready::Tcp),
                _ => {
                    self.problem("ready", ready.span(), "must be { http = \"http://127.0.0.1:{port}/health\" } (a URL that answers 2xx) or { tcp = true } (its port accepts)");
                    None
                }
            },
        };
        let deadline = raw.deadline.as_ref().map_or(DEFAULT_DEADLINE, |d| {
            self.duration("deadline", d, DEFAULT_DEADLINE)
        });
        let port = match &raw.port {
            None => None,
            Some(port) => match u16::try_from(*port.get_ref()) {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    self.problem(
                        "port",
                        port.span(),
                        "must be a port number (1 to 65535); leave it out to get a free port",
                    );
                    None
                }
            },
        };
        if self.problems.len() > before {
            return None;
        }
        Some((
            Service {
                name: name.to_string(),
                command: command?,
                dir,
                environment: raw.environment.as_ref().map(|e| e.get_ref().clone()),
                env,
                ready: ready?,
                deadline,
                export,
                port,
            },
            raw.environment.as_ref().map(|e| e.span()),
        ))
    }

    fn prerequisite(
        &mut self,
        name: &str,
        raw: RawPrerequisite,
        entry_at: Range<usize>,
    ) -> Option<Prerequisite> {
        let before = self.problems.len();
        let strings = [("env", &raw.env), ("tcp", &raw.tcp), ("http", &raw.http)];
        let mut given: Vec<(&str, Range<usize>)> = strings
            .iter()
            .filter_map(|(key, value)| value.as_ref().map(|v| (*key, v.span())))
            .collect();
        if let Some(command) = &raw.command {
            given.push(("command", command.span()));
        }
        given.sort_by_key(|(_, at)| at.start);
        let check = match given.as_slice() {
            [("command", _)] => self
                .argv(
                    "command",
                    raw.command.as_ref(),
                    entry_at.clone(),
                    "missing; give the program and its arguments",
                )
                .map(Check::Command),
            [_] => {
                let (key, value) = strings
                    .iter()
                    .find_map(|(key, value)| value.as_ref().map(|v| (*key, v)))
                    .expect("one of them is given");
                let text = value.get_ref();
                let (ok, why) = match key {
                    "env" => (
                        valid_env_name(text),
                        format!("`{text}` is not a valid environment variable name"),
                    ),
                    "tcp" => (
                        text.rsplit_once(':')
                            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()),
                        format!("`{text}` must be `host:port`"),
                    ),
                    _ => (
                        text.starts_with("http://"),
                        format!("`{text}` must be an http:// URL"),
                    ),
                };
                if ok {
                    Some(match key {
                        "env" => Check::Env(text.clone()),
                        "tcp" => Check::Tcp(text.clone()),
                        _ => Check::Http(text.clone()),
                    })
                } else {
                    self.problem(key, value.span(), why);
                    None
                }
            }
            _ => {
                let found = if given.is_empty() {
                    "none".to_string()
                } else {
                    given.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                };
                let (key, at) = given.get(1).cloned().unwrap_or(("env", entry_at));
                self.problem(
                    key,
                    at,
                    format_args!(
                        "give exactly one of `env`, `tcp`, `http` or `command`; found {found}"
                    ),
                );
                None
            }
        };
        let timeout = raw.timeout.as_ref().map_or(DEFAULT_CHECK_TIMEOUT, |t| {
            self.duration("timeout", t, DEFAULT_CHECK_TIMEOUT)
        });
        if self.problems.len() > before {
            return None;
        }
        Some(Prerequisite {
            name: name.to_string(),
            check: check?,
            timeout,
        })
    }
}

fn strings(spanned: Vec<Spanned<String>>) -> Vec<String> {
    spanned.into_iter().map(Spanned::into_inner).collect()
}

/// A timeout: a duration string (`"10m"`) or a whole number of seconds.
/// `90`, `90s`, `10m` or `1h`: a positive whole number of seconds, minutes or hours.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("`{text}` is not a duration: use a whole number with `s`, `m` or `h` (`90s`, `10m`, `1h`)")),
    };
    // A number too large for u64 seconds is longer than any run anyway: it saturates, and
    // the deadline it gives is "never" (see `process::deadline_after`).
    let number = if !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
        && number.parse::<u64>().is_err()
    {
        u64::MAX.to_string()
    } else {
        number.to_string()
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n.saturating_mul(seconds_per))),
        _ => Err(format!("`{text}` is not a duration: use a positive whole number with `s`, `m` or `h` (`90s`, `10m`, `1h`)")),
    }
}

/// How old a kept run may be: `30d`, `12h`, `90m`, `3600s` (or a bare number of seconds).
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "`{text}` is not an age: use a positive whole number with `d`, `h`, `m` or `s` (`30d`, `12h`)"
        )
    };
    let trimmed = text.trim();
    match trimmed.strip_suffix('d') {
        Some(days) if !days.is_empty() && days.chars().all(|c| c.is_ascii_digit()) => {
            match days.parse::<u64>() {
                Ok(0) => Err(bad()),
                // More days than u64 seconds hold: no run is that old.
                Ok(days) => Ok(Duration::from_secs(days.saturating_mul(86_400))),
                Err(_) => Ok(Duration::MAX),
            }
        }
        Some(_) => Err(bad()),
        None => parse_duration(trimmed).map_err(|_| bad()),
    }
}

/// A size: `500MB`, `2GB`, `1GiB`, `800KB` or a bare number of bytes (`B` too). KB, MB, GB
/// and TB are powers of 1000, KiB, MiB, GiB and TiB of 1024; units in any case.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "`{text}` is not a size: use a positive whole number with `B`, `KB`, `MB`, `GB`, `TB` (or `KiB`, `MiB`, `GiB`, `TiB`), such as `500MB`"
        )
    };
    let trimmed = text.trim();
    let at = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(at);
    let per: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000_u64.pow(2),
        "gb" => 1000_u64.pow(3),
        "tb" => 1000_u64.pow(4),
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    if number.is_empty() || number.bytes().all(|b| b == b'0') {
        return Err(bad());
    }
    // More bytes than u64 holds: no limit a disk reaches.
    Ok(number
        .parse::<u64>()
        .unwrap_or(u64::MAX)
        .saturating_mul(per))
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A name as an extra or a dependency group is written (PEP 508's name rule).
fn is_dependency_name(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    name.starts_with(alnum)
        && name.ends_with(alnum)
        && name
            .chars()
            .all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

/// A requirement that names a local path (`./pkg`, `../lib`), not a package.
fn is_local_path(requirement: &str) -> bool {
    let requirement = requirement.trim();
    requirement.starts_with("./") || requirement.starts_with("../") || requirement == "."
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The xtask crate's own directory serves as the root: `tests/fixtures/basic/libs/...` exist.
    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    const ALPHA: &str = "tests/fixtures/basic/libs/alpha";

    /// A suite entry: alpha's keys with `changes` applied (a key with the value "" is left out).
    fn suite(changes: &[(&str, &str)]) -> String {
        let alpha_dir = format!("\"{ALPHA}\"");
        let mut keys: Vec<(&str, &str)> = vec![
            ("name", "\"alpha\""),
            ("group", "\"first\""),
            ("dir", &alpha_dir),
            ("extras", "[\"test\"]"),
        ];
        for (key, value) in changes {
            match keys.iter_mut().find(|(k, _)| k == key) {
                Some(entry) => entry.1 = value,
                None => keys.push((key, value)),
            }
        }
        let lines: String = keys
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        format!("[[workspace.metadata.xtask.suites]]\n{lines}")
    }

    /// A beta suite without a project install.
    fn beta() -> String {
        suite(&[
            ("name", "\"beta\""),
            ("group", "\"second\""),
            ("dir", "\"tests/fixtures/basic/libs/beta\""),
            ("extras", ""),
            ("requirements", "[\"pytest==9.2.0\"]"),
        ])
    }

    /// A Cargo.toml: a package table (accepted, not ours), the manifest's own keys, entries.
    fn cargo_toml(top: &str, entries: &[String]) -> String {
        format!(
            "[package]\nname = \"x\"\n\n[workspace.metadata.xtask]\n{top}\n{}",
            entries.join("\n")
        )
    }

    fn load(text: &str) -> Manifest {
        Manifest::from_toml(text, Path::new("Cargo.toml"), root()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn problems(text: &str) -> Vec<String> {
        match Manifest::from_toml(text, Path::new("Cargo.toml"), root()) {
            Ok(_) => panic!("the manifest should be rejected:\n{text}"),
            Err(err) => {
                assert_eq!(err.file, Path::new("Cargo.toml"));
                err.problems
            }
        }
    }

    #[test]
    fn timeouts_secrets_and_prerequisites_are_read_with_their_defaults() {
        let text = cargo_toml(
            "timeout = \"10m\"\nsecrets = [\"DB_URL\"]",
            &[
                suite(&[("timeout", "90"), ("requires-env", "[\"OPENAI_API_KEY\"]")]),
                beta(),
            ],
        );
        let manifest = load(&text);
        assert_eq!(manifest.secrets, ["DB_URL"]);
        assert_eq!(manifest.suites[0].timeout, Duration::from_secs(90));
        assert_eq!(manifest.suites[0].requires_env, ["OPENAI_API_KEY"]);
        assert_eq!(manifest.suites[1].timeout, Duration::from_secs(600));
        assert!(manifest.suites[1].requires_env.is_empty());

        let manifest = load(&cargo_toml("", &[suite(&[])]));
        assert_eq!(manifest.suites[0].timeout, DEFAULT_TIMEOUT);
        assert!(manifest.secrets.is_empty());
    }

    #[test]
    fn bad_timeouts_secrets_and_prerequisites_are_named_where_they_are_written() {
        let text = cargo_toml(
            "timeout = \"soon\"\nsecrets = [\"DB_URL\", \"NOT VALID\"]",
            &[suite(&[
                ("timeout", "0"),
                ("requires-env", "[\"NOT VALID\"]"),
            ])],
        );
        assert_eq!(
            problems(&text),
            [
                "Cargo.toml:5:11: workspace.metadata.xtask.timeout: `soon` is not a duration: use a whole number with `s`, `m` or `h` (`90s`, `10m`, `1h`)",
                "Cargo.toml:6:22: workspace.metadata.xtask.secrets: `NOT VALID` is not a valid environment variable name",
                "Cargo.toml:12:11: workspace.metadata.xtask.suites[0].timeout (suite `alpha`): `0` is not a positive whole number of seconds",
                "Cargo.toml:13:17: workspace.metadata.xtask.suites[0].requires-env (suite `alpha`): `NOT VALID` is not a valid environment variable name",
            ]
        );
    }

    #[test]
    fn the_runs_kept_are_read_with_their_defaults() {
        let manifest = load(&cargo_toml(
            "runs = { keep = 3, max-age = \"2d\", max-size = \"1GiB\" }",
            &[suite(&[])],
        ));
        assert_eq!(
            manifest.runs,
            Retention {
                keep: 3,
                max_age: Some(Duration::from_secs(2 * 86_400)),
                max_size: Some(1 << 30),
            }
        );
        let manifest = load(&cargo_toml(
            "[workspace.metadata.xtask.runs]\nkeep = 0\nmax-age = 3600\nmax-size = 500",
            &[suite(&[])],
        ));
        assert_eq!(
            manifest.runs,
            Retention {
                keep: 0,
                max_age: Some(Duration::from_secs(3600)),
                max_size: Some(500),
            }
        );
        assert_eq!(
            load(&cargo_toml("", &[suite(&[])])).runs,
            Retention {
                keep: DEFAULT_KEEP_RUNS,
                max_age: None,
                max_size: None,
            }
        );
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("2 kib"), Ok(2048));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3600)));
    }

    #[test]
    fn bad_retention_values_are_named_where_they_are_written() {
        let text = cargo_toml(
            "[workspace.metadata.xtask.runs]\nkeep = -1\nmax-age = \"a week\"\nmax-size = \"5 parsecs\"\n",
            &[suite(&[])],
        );
        assert_eq!(
            problems(&text),
            [
                "Cargo.toml:6:8: workspace.metadata.xtask.runs.keep: `-1` is not a number of runs: use a whole number, 0 or more (default 10)",
                "Cargo.toml:7:11: workspace.metadata.xtask.runs.max-age: `a week` is not an age: use a positive whole number with `d`, `h`, `m` or `s` (`30d`, `12h`)",
                "Cargo.toml:8:12: workspace.metadata.xtask.runs.max-size: `5 parsecs` is not a size: use a positive whole number with `B`, `KB`, `MB`, `GB`, `TB` (or `KiB`, `MiB`, `GiB`, `TiB`), such as `500MB`",
            ]
        );
        let text = cargo_toml(
            "[workspace.metadata.xtask.runs]\nkeep-days = 3\n",
            &[suite(&[])],
        );
        assert_eq!(
            problems(&text),
            ["Cargo.toml:6:1: workspace.metadata.xtask.runs.keep-days: unknown field `keep-days`, expected one of `keep`, `max-age`, `max-size`"]
        );
    }

    #[test]
    fn a_valid_manifest_reads_every_key() {
        let text = cargo_toml(
            "",
            &[
                suite(&[
                    ("pythonpath", "[\"tests/fixtures/basic/libs\"]"),
                    ("markers", "\"not integration\""),
                    ("paths", "[\"tests\"]"),
                    ("env", "{ MODE = \"x\" }"),
                    ("retries", "2"),
                    ("split", "4"),
                ]),
                beta(),
            ],
        );
        let manifest = load(&text);
        assert_eq!(manifest.suites[0].split, Split::Count(4));
        assert_eq!(manifest.suites[1].split, Split::Count(1));
        assert_eq!(manifest.groups(), ["first", "second"]);
        let alpha = &manifest.suites[0];
        assert_eq!(alpha.environment, Environment::project(&["test"]));
        assert_eq!(alpha.pythonpath, ["tests/fixtures/basic/libs"]);
        assert_eq!(alpha.paths, ["tests"]);
        assert_eq!(alpha.retries, 2);
        assert_eq!(alpha.markers.as_deref(), Some("not integration"));
        assert_eq!(alpha.env.get("MODE").map(String::as_str), Some("x"));
        assert_eq!(
            manifest.suites[1].environment,
            Environment::Requirements {
                requirements: vec!["pytest==9.2.0".into()],
                file: None,
            }
        );
        assert_eq!(manifest.suites[1].markers, None);
    }

    /// The rest of Cargo.toml is cargo's: any table and key is left alone.
    #[test]
    fn the_rest_of_cargo_toml_is_not_ours_to_check() {
        let text = format!(
            "[workspace]\nmembers = [\"xtask\"]\nodd = {{ any = 1 }}\n\n[workspace.metadata.other]\nx = 1\n\n[profile.dev]\nopt-level = 1\n\n{}",
            cargo_toml("", &[suite(&[])])
        );
        assert_eq!(load(&text).suites.len(), 1);
    }

    #[test]
    fn unknown_keys_are_named_with_the_keys_allowed() {
        let text = cargo_toml(
            "defaults = {}",
            &[suite(&[("extra", "[\"test\"]")]), beta()],
        );
        assert_eq!(
            problems(&text),
            [
                format!("Cargo.toml:5:1: workspace.metadata.xtask.defaults: unknown field `defaults`, expected one of {}", quoted(top_keys())),
                format!("Cargo.toml:11:1: workspace.metadata.xtask.suites[0].extra (suite `alpha`): unknown field `extra`, expected one of {}", quoted(suite_keys())),
            ]
        );
    }

    fn quoted(keys: &[&str]) -> String {
        keys.iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    #[test]
    fn missing_directories_are_named() {
        let text = cargo_toml(
            "",
            &[suite(&[
                ("dir", "\"no/such/dir\""),
                ("pythonpath", "[\".\", \"nowhere\"]"),
            ])],
        );
        assert_eq!(
            problems(&text),
            [
                "Cargo.toml:9:7: workspace.metadata.xtask.suites[0].dir (suite `alpha`): directory `no/such/dir` does not exist (paths are relative to the repository root)",
                "Cargo.toml:11:20: workspace.metadata.xtask.suites[0].pythonpath (suite `alpha`): directory `nowhere` does not exist (paths are relative to the repository root)",
            ]
        );
        let text = cargo_toml("", &[suite(&[("paths", "[\"tests\", \"spec\"]")])]);
        assert_eq!(
            problems(&text),
            [format!("Cargo.toml:11:19: workspace.metadata.xtask.suites[0].paths (suite `alpha`): `spec` does not exist in `{ALPHA}`; paths are relative to the suite's `dir`")]
        );
    }

    #[test]
    fn duplicate_names_and_names_shared_with_groups_are_errors() {
        let text = cargo_toml(
            "",
            &[suite(&[]), suite(&[]), suite(&[("name", "\"first\"")])],
        );
        assert_eq!(
            problems(&text),
            [
                "Cargo.toml:13:8: workspace.metadata.xtask.suites[1].name (suite `alpha`): the name is used by more than one suite; names must be unique",
                "Cargo.toml:19:8: workspace.metadata.xtask.suites[2].name (suite `first`): `first` is also a group name, so `cargo xtask test first` would be ambiguous; rename the suite or the group",
            ]
        );
    }

    #[test]
    fn exactly_one_way_to_make_the_environment() {
        let both = problems(&cargo_toml(
            "",
            &[suite(&[("requirements", "[\"pytest\"]")])],
        ));
        assert_eq!(both, ["Cargo.toml:10:10: workspace.metadata.xtask.suites[0].extras (suite `alpha`): give either `extras` and/or `groups` (install the project) or `requirements` and/or `requirements-file` (no project install); found `extras` together with `requirements`/`requirements-file`"]);

        // Dependency groups install the project too: not with `requirements`.
        let groups = problems(&cargo_toml(
            "",
            &[suite(&[
                ("extras", ""),
                ("groups", "[\"test\"]"),
                ("requirements", "[\"pytest\"]"),
            ])],
        ));
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert!(
            groups[0].contains("suites[0].groups (suite `alpha`): give either")
                && groups[0]
                    .ends_with("found `groups` together with `requirements`/`requirements-file`"),
            "{groups:?}"
        );
        let blank = problems(&cargo_toml(
            "",
            &[suite(&[("extras", ""), ("groups", "[\" \"]")])],
        ));
        assert_eq!(blank.len(), 1, "{blank:?}");
        assert!(
            blank[0].contains("suites[0].groups (suite `alpha`): ` ` is not a name of the project's [dependency-groups]"),
            "{blank:?}"
        );
        // An option where a name belongs never reaches uv.
        let option = problems(&cargo_toml("", &[suite(&[("extras", "[\"--frozen\"]")])]));
        assert!(
            option.len() == 1
                && option[0].contains("suites[0].extras (suite `alpha`): `--frozen` is not a name of the project's [project.optional-dependencies]"),
            "{option:?}"
        );
        let wrong = problems(&cargo_toml("", &[suite(&[("default-groups", "\"no\"")])]));
        assert!(
            wrong.len() == 1 && wrong[0].contains("suites[0].default-groups (suite `alpha`): invalid type: string \"no\", expected true or false"),
            "{wrong:?}"
        );
        let only_groups = load(&cargo_toml(
            "",
            &[suite(&[
                ("extras", ""),
                ("groups", "[\"test\"]"),
                ("default-groups", "false"),
            ])],
        ));
        assert_eq!(
            only_groups.suites[0].environment.uv_selection(),
            ["--group", "test", "--no-default-groups"]
        );

        let none = problems(&cargo_toml("", &[suite(&[("extras", "")])]));
        assert_eq!(none.len(), 1, "{none:?}");
        assert!(
            none[0].starts_with("Cargo.toml:6:1: workspace.metadata.xtask.suites[0].extras (suite `alpha`): give either")
                && none[0].ends_with("found none of them"),
            "{none:?}"
        );

        let empty = problems(&cargo_toml(
            "",
            &[suite(&[("extras", ""), ("requirements", "[]")])],
        ));
        assert_eq!(empty, ["Cargo.toml:10:16: workspace.metadata.xtask.suites[0].requirements (suite `alpha`): must list at least one requirement (pytest, at least), or give a `requirements-file`"]);

        let file = problems(&cargo_toml(
            "",
            &[suite(&[
                ("extras", ""),
                ("requirements-file", "\"req.txt\""),
            ])],
        ));
        assert_eq!(file, ["Cargo.toml:10:21: workspace.metadata.xtask.suites[0].requirements-file (suite `alpha`): `req.txt` does not exist; it is relative to the repository root, as `uv pip install -r req.txt` run there reads it"]);

        // A local path in `requirements` is read from the root; one written from the
        // suite's directory is named, with the path that would work.
        let local = problems(&cargo_toml(
            "",
            &[suite(&[
                ("extras", ""),
                ("requirements", "[\"pytest\", \"./pyproject.toml\"]"),
            ])],
        ));
        assert_eq!(local.len(), 1, "{local:?}");
        assert!(
            local[0].starts_with("Cargo.toml:10:27: workspace.metadata.xtask.suites[0].requirements (suite `alpha`): `./pyproject.toml` does not exist; a local path is relative to the repository root")
                && local[0].ends_with(&format!("write `{ALPHA}/pyproject.toml`)")),
            "{local:?}"
        );
        let from_root = format!("[\"pytest\", \"./{ALPHA}\"]");
        load(&cargo_toml(
            "",
            &[suite(&[("extras", ""), ("requirements", &from_root)])],
        ));
    }

    /// A value of the wrong type is serde's to name (one per table: the rest of that table
    /// is not read); a missing key, or a name a file cannot carry, is ours.
    #[test]
    fn wrong_types_and_missing_keys_say_what_is_expected() {
        let text = cargo_toml(
            "",
            &[
                suite(&[("name", ""), ("extras", "\"test\"")]),
                suite(&[("markers", "3")]),
                suite(&[("env", "{ A = 1 }")]),
                suite(&[("retries", "\"twice\"")]),
                suite(&[("name", "")]),
                suite(&[("name", "\"bad name\""), ("dir", "\"/abs\"")]),
                suite(&[
                    ("name", "\"c\""),
                    ("retries", "11"),
                    ("env", "{ PYTHONPATH = \"x\" }"),
                ]),
            ],
        );
        assert_eq!(
            problems(&text),
            [
                "Cargo.toml:9:10: workspace.metadata.xtask.suites[0].extras: invalid type: string \"test\", expected an array",
                "Cargo.toml:16:11: workspace.metadata.xtask.suites[1].markers (suite `alpha`): invalid type: integer `3`, expected a string",
                "Cargo.toml:23:13: workspace.metadata.xtask.suites[2].env.A (suite `alpha`): invalid type: integer `1`, expected a string",
                "Cargo.toml:30:11: workspace.metadata.xtask.suites[3].retries (suite `alpha`): invalid type: string \"twice\", expected a whole number",
                "Cargo.toml:32:1: workspace.metadata.xtask.suites[4].name: missing; every suite needs `name`, `group` and `dir`",
                "Cargo.toml:38:8: workspace.metadata.xtask.suites[5].name (suite `bad name`): `bad name` must be non-empty and use only letters, digits, `-`, `_` and `.`",
                "Cargo.toml:40:7: workspace.metadata.xtask.suites[5].dir (suite `bad name`): `/abs` must be relative to the repository root",
                "Cargo.toml:48:11: workspace.metadata.xtask.suites[6].retries (suite `c`): must be a whole number from 0 to 10, found 11",
                "Cargo.toml:49:9: workspace.metadata.xtask.suites[6].env (suite `c`): set PYTHONPATH with the `pythonpath` key, not `env`",
            ]
        );
    }

    #[test]
    fn split_is_a_number_of_slices_or_auto() {
        let text = cargo_toml("", &[suite(&[("split", "\"auto\"")])]);
        assert_eq!(load(&text).suites[0].split, Split::Auto);
        for (bad, found) in [("0", "`0`"), ("257", "`257`"), ("\"half\"", "`half`")] {
            let text = cargo_toml("", &[suite(&[("split", bad)])]);
            let problems = problems(&text);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].contains("suites[0].split (suite `alpha`): ")
                    && problems[0].contains(found)
                    && problems[0].contains("from 1 to 256, or `auto`"),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn malformed_tables_and_env_entries_are_named() {
        assert_eq!(
            problems("[workspace.metadata]\nxtask = []\n"),
            ["Cargo.toml:2:9: workspace.metadata.xtask: must be a table, found an array; write it as [workspace.metadata.xtask]"]
        );
        assert_eq!(
            problems("[workspace.metadata.xtask]\nsuites = [\"guardrail\"]\n"),
            ["Cargo.toml:2:11: workspace.metadata.xtask.suites[0]: invalid type: string \"guardrail\", expected a suite table ([[workspace.metadata.xtask.suites]])"]
        );
        let env = problems(&cargo_toml("", &[suite(&[("env", "[\"A=1\"]")])]));
        assert_eq!(env, ["Cargo.toml:11:7: workspace.metadata.xtask.suites[0].env (suite `alpha`): invalid type: array, expected a table"]);
        let names = problems(&cargo_toml(
            "",
            &[suite(&[("env", "{ 1A = \"x\", A-B = \"y\" }")])],
        ));
        assert_eq!(
            names,
            [
                "Cargo.toml:11:9: workspace.metadata.xtask.suites[0].env (suite `alpha`): `1A` is not a valid environment variable name",
                "Cargo.toml:11:19: workspace.metadata.xtask.suites[0].env (suite `alpha`): `A-B` is not a valid environment variable name",
            ]
        );
    }

    #[test]
    fn a_requirements_file_is_relative_to_the_root_and_combines_with_requirements() {
        let file = format!("{ALPHA}/pyproject.toml");
        let quoted_file = format!("\"{file}\"");
        let text = cargo_toml(
            "",
            &[suite(&[
                ("extras", ""),
                ("requirements-file", &quoted_file),
                ("requirements", "[\"pytest==9.2.0\"]"),
            ])],
        );
        assert_eq!(
            load(&text).suites[0].environment,
            Environment::Requirements {
                requirements: vec!["pytest==9.2.0".into()],
                file: Some(file)
            }
        );
        // Relative to the suite's directory is not where it is looked for.
        let text = cargo_toml(
            "",
            &[suite(&[
                ("extras", ""),
                ("requirements-file", "\"pyproject.toml\""),
            ])],
        );
        let problems = problems(&text);
        assert!(
            problems[0].contains("it is relative to the repository root"),
            "{problems:?}"
        );
    }

    #[test]
    fn paths_that_leave_the_repository_or_are_absolute_or_empty_are_rejected() {
        for (key, value, says) in [
            ("dir", "\"\"", "must not be empty"),
            ("dir", "\"../elsewhere\"", "leaves the repository"),
            (
                "dir",
                "\"/abs/dir\"",
                "must be relative to the repository root",
            ),
            ("pythonpath", "[\"../up\"]", "leaves the repository"),
            (
                "requirements-file",
                "\"/etc/requirements.txt\"",
                "must be relative",
            ),
            (
                "paths",
                "[\"/abs/tests\"]",
                "must be relative to the suite's `dir`",
            ),
        ] {
            let text = cargo_toml(
                "",
                &[suite(&[
                    ("extras", ""),
                    ("requirements", "[\"pytest\"]"),
                    (key, value),
                ])],
            );
            let problems = problems(&text);
            assert!(
                problems.iter().any(|p| p.contains(&format!(
                    "workspace.metadata.xtask.suites[0].{key} (suite `alpha`): "
                )) && p.contains(says)),
                "{key}: {problems:?}"
            );
        }
    }

    #[test]
    fn services_and_prerequisites_are_read_and_checked() {
        let services = format!(
            "[workspace.metadata.xtask.services.api]\ncommand = [\"uvicorn\", \"app:app\", \"--port\", \"{{port}}\"]\ndir = \"{ALPHA}\"\nenvironment = \"alpha\"\nready = {{ http = \"http://127.0.0.1:{{port}}/health\" }}\ndeadline = \"2m\"\nexport = {{ API_URL = \"http://127.0.0.1:{{port}}\" }}\n\n[workspace.metadata.xtask.prerequisites]\nkey = {{ env = \"OPENAI_API_KEY\" }}\nbroker = {{ tcp = \"127.0.0.1:9092\", timeout = 2 }}\nprobe = {{ command = [\"true\"] }}\n"
        );
        let text = cargo_toml(
            "",
            &[
                suite(&[
                    ("group", "\"smoke\""),
                    ("services", "[\"api\"]"),
                    ("prerequisites", "[\"key\", \"broker\"]"),
                ]),
                services,
            ],
        );
        let manifest = load(&text);
        let api = &manifest.services[0];
        assert_eq!(
            api.ready,
            Ready::Http("http://127.0.0.1:{port}/health".into())
        );
        assert_eq!(api.deadline, Duration::from_secs(120));
        assert_eq!(api.environment.as_deref(), Some("alpha"));
        assert_eq!(api.export["API_URL"], "http://127.0.0.1:{port}");
        assert_eq!(manifest.prerequisites.len(), 3);
        let broker = manifest
            .prerequisites
            .iter()
            .find(|p| p.name == "broker")
            .unwrap();
        assert_eq!(broker.check, Check::Tcp("127.0.0.1:9092".into()));
        assert_eq!(broker.timeout, Duration::from_secs(2));
        assert_eq!(manifest.suites[0].services, ["api"]);

        let text = cargo_toml(
            "",
            &[
                suite(&[("services", "[\"missing\"]"), ("prerequisites", "[\"gone\"]")]),
                "[workspace.metadata.xtask.services.api]\ncommand = []\nready = { tcp = false }\nenvironment = \"nope\"\nport = 70000\n".into(),
                "[workspace.metadata.xtask.services.web]\nready = { https = \"x\" }\n".into(),
                "[workspace.metadata.xtask.services.\"bad name\"]\ncommand = [\"x\"]\n".into(),
                "[workspace.metadata.xtask.prerequisites]\nboth = { env = \"A\", tcp = \"h:1\" }\nbadtcp = { tcp = \"nohost\" }\nnone = {}\n".into(),
            ],
        );
        assert_eq!(
            problems(&text),
            [
                "Cargo.toml:11:13: workspace.metadata.xtask.suites[0].services (suite `alpha`): there is no service `missing`; declare it as [workspace.metadata.xtask.services.missing]",
                "Cargo.toml:12:18: workspace.metadata.xtask.suites[0].prerequisites (suite `alpha`): there is no prerequisite `gone`; declare it as [workspace.metadata.xtask.prerequisites.gone]",
                "Cargo.toml:15:11: workspace.metadata.xtask.services.api.command: must be a non-empty array: the program and its arguments",
                "Cargo.toml:16:9: workspace.metadata.xtask.services.api.ready: must be { http = \"http://127.0.0.1:{port}/health\" } (a URL that answers 2xx) or { tcp = true } (its port accepts)",
                "Cargo.toml:18:8: workspace.metadata.xtask.services.api.port: must be a port number (1 to 65535); leave it out to get a free port",
                "Cargo.toml:21:11: workspace.metadata.xtask.services.web.ready.https: unknown field `https`, expected `http` or `tcp`",
                "Cargo.toml:23:36: workspace.metadata.xtask.services.\"bad name\": `bad name` must use only letters, digits, `-` and `_`; rename it",
                "Cargo.toml:27:27: workspace.metadata.xtask.prerequisites.both.tcp: give exactly one of `env`, `tcp`, `http` or `command`; found env, tcp",
                "Cargo.toml:28:18: workspace.metadata.xtask.prerequisites.badtcp.tcp: `nohost` must be `host:port`",
                "Cargo.toml:29:8: workspace.metadata.xtask.prerequisites.none.env: give exactly one of `env`, `tcp`, `http` or `command`; found none",
            ]
        );
        // A service's `environment` names a suite; checked once every suite is read.
        let text = cargo_toml("", &[suite(&[]), "[workspace.metadata.xtask.services.api]\ncommand = [\"x\"]\nenvironment = \"nope\"\n".into()]);
        assert_eq!(
            problems(&text),
            ["Cargo.toml:14:15: workspace.metadata.xtask.services.api.environment: there is no suite `nope` whose environment it could run in; name a suite of this manifest"]
        );
    }

    #[test]
    fn ci_groups_name_existing_groups() {
        let manifest = load(&cargo_toml("ci-groups = [\"first\"]", &[suite(&[])]));
        assert_eq!(manifest.ci_groups, Some(vec!["first".to_string()]));
        assert_eq!(
            problems(&cargo_toml("ci-groups = [\"first\", \"nope\"]", &[suite(&[])])),
            ["Cargo.toml:5:23: workspace.metadata.xtask.ci-groups: there is no group `nope`; the groups are first"]
        );
    }

    #[test]
    fn an_empty_or_missing_manifest_or_broken_toml_is_an_error() {
        assert_eq!(
            problems(&cargo_toml("", &[])),
            ["Cargo.toml:4:1: workspace.metadata.xtask: no suites: add a [[workspace.metadata.xtask.suites]] entry per suite"]
        );
        assert_eq!(
            problems("[workspace.metadata.xtask]\nsuites = 1\n"),
            ["Cargo.toml:2:10: workspace.metadata.xtask.suites: must be an array of tables ([[workspace.metadata.xtask.suites]]), found an integer"]
        );
        assert_eq!(
            problems("[package]\nname = \"x\"\n\n[workspace]\nmembers = []\n"),
            ["Cargo.toml:4:1: there is no [workspace.metadata.xtask] table; add one with a [[workspace.metadata.xtask.suites]] entry per suite (`cargo xtask init` guesses one)"]
        );
        assert_eq!(
            problems("[workspace]\nmembers = [\n"),
            ["Cargo.toml:2:12: unclosed array, expected `]`; the file is not valid TOML"]
        );
    }

    #[test]
    fn the_error_names_the_file_and_how_to_fix_it() {
        let err = Manifest::from_toml(
            &cargo_toml("", &[suite(&[("retries", "-1")])]),
            Path::new("/repo/Cargo.toml"),
            root(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("invalid suite manifest [workspace.metadata.xtask] in /repo/Cargo.toml:\n  - /repo/Cargo.toml:11:11: workspace.metadata.xtask.suites[0].retries (suite `alpha`): must be a whole number from 0 to 10, found -1\n"), "{text}");
        assert!(text.ends_with("nothing was run."));
    }

    #[test]
    fn lines_and_columns_count_characters_from_one() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é = 1\nx", 5), (1, 5));
        assert_eq!(line_column("ab", 99), (1, 3));
        assert_eq!(
            line_column("é", 1),
            (1, 1),
            "inside a character: at its start"
        );
    }

    #[test]
    fn the_repositorys_own_manifest_is_valid() {
        let layout = Layout::new(root().parent().unwrap());
        let manifest = Manifest::load(&layout).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            manifest.groups(),
            ["shared", "version-a", "version-b", SMOKE_GROUP]
        );
        assert_eq!(manifest.suites.len(), 8);
        assert_eq!(manifest.services.len(), 1);
    }
}
