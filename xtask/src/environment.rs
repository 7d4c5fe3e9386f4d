//! The Python environments the suites run in: owned by the xtask under
//! `target/xtask/envs/`, built once, and reused across runs while their inputs hold.
//!
//! - A project suite gets an environment of its own per directory and extras, synced from
//!   its lock (a uv workspace member's is the workspace root's) with `uv sync --locked`
//!   (exact: nothing else stays installed) into
//!   `UV_PROJECT_ENVIRONMENT`, so two suites on one project never uninstall each other's
//!   packages and the developer's own `.venv` is left alone.
//! - No-project suites with the same requirements (the list, or the file's contents) share
//!   one environment, made fresh by `uv venv` (no system site-packages) and `uv pip install`.
//!
//! Each environment holds a record of its inputs (`xtask-inputs.json`). When it matches
//! what the inputs are now, no uv process runs at all; any change (lock, pyproject,
//! requirements, `.python-version`, `UV_PYTHON`, the interpreter, uv's version, the
//! environment deleted by hand) builds it again. Each environment has a lock file: held
//! shared while a pytest or a service runs in it, exclusive while it is built. So suites
//! and invocations that share it build it once, and an invocation whose inputs differ
//! (another checkout of the files) waits for the others' suites to end before rebuilding
//! it under them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use serde_json::{json, Value};

use crate::facts::{digest, Facts};
use crate::invocation::Invocation;
use crate::manifest::{Environment, Suite};
use crate::paths::Layout;
use crate::process;

/// How an environment's lock is held: see [`EnvPlan::lock`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    Shared,
    Exclusive,
}

/// An environment's lock, held until dropped.
#[derive(Debug)]
pub struct Lease(#[allow(dead_code)] std::fs::File);

/// The record of an environment's inputs, inside the environment.
pub const INPUTS_FILE: &str = "xtask-inputs.json";

/// One environment a suite needs, with the commands that build it.
#[derive(Clone, Debug)]
pub struct EnvPlan {
    /// Unique per distinct environment: suites with the same key share it.
    pub key: String,
    pub path: PathBuf,
    /// The commands that build it, in order (run only when its inputs changed).
    pub build: Vec<Invocation>,
    /// Checks that pytest is importable in it without the suite's directory on `sys.path`.
    pub probe: Invocation,
    /// The files whose contents are inputs, relative to the repository root.
    /// Each named by its role (`uv.lock`, `requirements-file`), not its place: suites in
    /// other directories that share an environment have the same inputs.
    input_files: Vec<(&'static str, PathBuf)>,
    /// Everything else that is an input (the kind, extras, requirements).
    input_words: Vec<String>,
}

impl EnvPlan {
    pub fn python(&self) -> PathBuf {
        self.path.join("bin").join("python")
    }

    pub fn bin(&self) -> PathBuf {
        self.path.join("bin")
    }

    /// The lock file of this environment: shared by everything using it, exclusive to
    /// build it.
    pub fn lock_path(&self) -> PathBuf {
        self.path.with_extension("lock")
    }

    /// Waits for the environment's lock, shared (to use it: a pytest or a service running
    /// in it) or exclusive (to build it, which waits for every user, in this invocation or
    /// another, to let go). `None` when `deadline` passed or the run was interrupted first.
    pub fn lock(&self, use_: Use, deadline: Option<Instant>) -> anyhow::Result<Option<Lease>> {
        let path = self.lock_path();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        loop {
            let tried = match use_ {
                Use::Shared => file.try_lock_shared(),
                Use::Exclusive => file.try_lock(),
            };
            match tried {
                Ok(()) => return Ok(Some(Lease(file))),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(err)) => {
                    return Err(err).with_context(|| format!("locking {}", path.display()))
                }
            }
            if process::interrupted() || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the inputs are now. `uv_version` is uv's own `--version` line.
    pub fn inputs(&self, root: &Path, uv_version: &str) -> Value {
        let files: serde_json::Map<String, Value> = self
            .input_files
            .iter()
            .map(|(role, rel)| {
                let digest = std::fs::read(root.join(rel)).ok().map(|b| digest(&b));
                (role.to_string(), json!(digest))
            })
            .collect();
        json!({
            "words": self.input_words,
            "files": files,
            "uv": uv_version,
            "UV_PYTHON": std::env::var("UV_PYTHON").ok(),
        })
    }

    /// The files whose contents are inputs (its lock, pyproject, requirements file), relative
    /// to the repository root.
    pub fn input_paths(&self) -> impl Iterator<Item = &Path> {
        self.input_files.iter().map(|(_, path)| path.as_path())
    }

    /// Whether the environment on disk was built from exactly `inputs` and is still whole.
    pub fn is_current(&self, inputs: &Value) -> bool {
        let Ok(text) = std::fs::read_to_string(self.path.join(INPUTS_FILE)) else {
            return false;
        };
        let Ok(recorded) = serde_json::from_str::<Value>(&text) else {
            return false;
        };
        recorded.get("inputs") == Some(inputs)
            && recorded.get("interpreter") == Some(&interpreter_identity(&self.python()))
            && self.bin().join("pytest").is_file()
    }

    /// Records that the environment was built from `inputs` and pytest imports in it.
    pub fn record(&self, inputs: &Value) -> anyhow::Result<()> {
        let record = json!({
            "inputs": inputs,
            "interpreter": interpreter_identity(&self.python()),
            "built_at": crate::model::now().to_rfc3339(),
        });
        crate::paths::write_atomically(
            &self.path.join(INPUTS_FILE),
            serde_json::to_string_pretty(&record)?.as_bytes(),
        )
    }

    /// Removes what the build left, so that a failed build is never taken for a good one.
    pub fn discard_record(&self) {
        let _ = std::fs::remove_file(self.path.join(INPUTS_FILE));
    }

    /// What a build runs, in order: the build commands, then the check that pytest imports.
    pub fn build_steps(&self) -> impl Iterator<Item = (BuildStep, &Invocation)> {
        let builds = self.build.iter().map(|b| (BuildStep::Build, b));
        builds.chain([(BuildStep::Probe, &self.probe)])
    }

    /// The build every caller does (a run, `doctor`), the caller holding the exclusive lock:
    /// nothing when the environment is current for `inputs`; else its record is removed
    /// (a failed build is never taken for a good one), each step is run by `run` until one
    /// fails (`Ok(false)`), and `inputs` are recorded when every step succeeded.
    pub fn build_if_stale<'a>(
        &'a self,
        inputs: &Value,
        mut run: impl FnMut(BuildStep, &'a Invocation) -> anyhow::Result<bool>,
    ) -> anyhow::Result<Built> {
        if self.is_current(inputs) {
            return Ok(Built::Current);
        }
        self.discard_record();
        for (step, invocation) in self.build_steps() {
            if !run(step, invocation)? {
                return Ok(Built::Failed);
            }
        }
        self.record(inputs)
            .with_context(|| format!("recording the inputs of {}", self.path.display()))?;
        Ok(Built::Built)
    }
}

/// One command of a build: see [`EnvPlan::build_steps`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildStep {
    /// `uv sync`, or `uv venv` and `uv pip install`.
    Build,
    /// `python -I -c "import pytest"`: the environment is usable by a suite.
    Probe,
}

/// What [`EnvPlan::build_if_stale`] came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Built {
    /// Built from exactly these inputs before: no command ran.
    Current,
    /// Built now, and recorded.
    Built,
    /// A step failed (or was stopped): nothing recorded.
    Failed,
}

/// The base interpreter the environment's `python` leads to, and its size and mtime, so
/// that an interpreter replaced in place (a new patch release) rebuilds the environment.
pub fn interpreter_identity(python: &Path) -> Value {
    let Ok(real) = std::fs::canonicalize(python) else {
        return Value::Null;
    };
    let meta = std::fs::metadata(&real).ok();
    let mtime = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos().to_string());
    json!({ "path": real, "len": meta.map(|m| m.len()), "mtime": mtime })
}

/// The environment `suite` runs in, and how to build it with `uv`, from the lock and the
/// files `facts` found.
pub fn plan_env(suite: &Suite, layout: &Layout, uv: &Path, facts: &Facts) -> EnvPlan {
    let uv = uv.to_string_lossy().into_owned();
    let dir = Path::new(&suite.dir);
    let python_version = dir.join(".python-version");
    let (kind, mut words, mut files) = match &suite.environment {
        Environment::Project {
            extras,
            groups,
            default_groups,
        } => {
            let mut words = vec![format!("project:{}", suite.dir)];
            words.extend(extras.iter().map(|e| format!("extra:{e}")));
            words.extend(groups.iter().map(|g| format!("group:{g}")));
            if !default_groups {
                words.push("no-default-groups".into());
            }
            let mut files = vec![("pyproject.toml", dir.join("pyproject.toml"))];
            // A uv workspace member is built from the workspace root's lock, and the root's
            // pyproject.toml (its members, its sources) shapes what that lock resolves.
            match facts.lock(&suite.dir) {
                Some(lock) => {
                    if let Some(pyproject) = lock.workspace_pyproject() {
                        files.push(("workspace pyproject.toml", pyproject.into()));
                    }
                    files.push(("uv.lock", lock.lock.clone().into()));
                }
                None => files.push(("uv.lock", dir.join("uv.lock"))),
            }
            ("project", words, files)
        }
        Environment::Requirements { requirements, file } => {
            let words = requirements.iter().map(|r| format!("with:{r}")).collect();
            // Keyed by the file's contents, not its place: equal files share one environment.
            let files = file
                .iter()
                .map(|f| ("requirements-file", PathBuf::from(f)))
                .collect();
            ("requirements", words, files)
        }
    };
    files.push((".python-version", python_version));
    // Keyed by what determines the contents, so suites that need the same share it.
    let mut key_source = kind.to_string();
    for word in &words {
        key_source.push('\n');
        key_source.push_str(word);
    }
    if kind == "requirements" {
        // The requirements file's contents and the `.python-version` uv reads in the
        // suite's directory decide what is installed into which interpreter.
        for (role, file) in &files {
            let digest = facts.digest(file).unwrap_or("none");
            key_source.push_str(&format!("\n{role}:{digest}"));
        }
    }
    let slug: String = match &suite.environment {
        Environment::Project { .. } => suite
            .dir
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect(),
        _ => "requirements".into(),
    };
    let key = format!("{slug}-{}", &digest(key_source.as_bytes())[..12]);
    let path = layout.envs_dir().join(&key);
    let path_text = path.to_string_lossy().into_owned();
    let python = path
        .join("bin")
        .join("python")
        .to_string_lossy()
        .into_owned();

    let at =
        |argv: Vec<String>, env: Vec<(String, String)>| Invocation::new(argv, &layout.root, env);
    let build = match &suite.environment {
        Environment::Project { .. } => {
            let mut argv = vec![
                uv.clone(),
                "sync".into(),
                "--directory".into(),
                suite.dir.clone(),
                "--locked".into(),
            ];
            argv.extend(suite.environment.uv_selection());
            vec![at(
                argv,
                vec![("UV_PROJECT_ENVIRONMENT".into(), path_text.clone())],
            )]
        }
        Environment::Requirements { requirements, file } => {
            let venv = vec![
                uv.clone(),
                "venv".into(),
                "--directory".into(),
                suite.dir.clone(),
                "--clear".into(),
                "--quiet".into(),
                path_text.clone(),
            ];
            // From the repository root, as `uv pip install -r FILE` run there reads FILE and
            // the relative paths inside it.
            let mut install = vec![
                uv.clone(),
                "pip".into(),
                "install".into(),
                "--python".into(),
                python.clone(),
            ];
            install.extend(requirements.iter().cloned());
            if let Some(file) = file {
                install.extend(["--requirements".into(), file.clone()]);
            }
            vec![at(venv, vec![]), at(install, vec![])]
        }
    };
    // `-I`: neither the current directory nor PYTHONPATH comes first on `sys.path`, so a
    // module of the suite named like a standard one (`math.py`) cannot break the check.
    let probe = at(
        vec![python, "-I".into(), "-c".into(), "import pytest".into()],
        vec![],
    );
    words.insert(0, format!("kind:{kind}"));
    EnvPlan {
        key,
        path,
        build,
        probe,
        input_files: files,
        input_words: words,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    fn suite(name: &str, dir: &str, environment: Environment) -> Suite {
        let mut suite = Manifest::for_tests(&[(name, "g")]).suites.remove(0);
        suite.dir = dir.into();
        suite.environment = environment;
        suite
    }

    #[test]
    fn a_project_suite_syncs_its_own_environment_per_extras() {
        let layout = Layout::new("/repo");
        let test = plan_env(
            &suite("a", "pkg", Environment::project(&["test"])),
            &layout,
            Path::new("/bin/uv"),
            &Facts::default(),
        );
        let dev = plan_env(
            &suite("b", "pkg", Environment::project(&["dev"])),
            &layout,
            Path::new("/bin/uv"),
            &Facts::default(),
        );
        assert_ne!(test.path, dev.path, "other extras, other environment");
        assert!(test.path.starts_with("/repo/target/xtask/envs"));
        assert_eq!(
            test.build[0].argv,
            [
                "/bin/uv",
                "sync",
                "--directory",
                "pkg",
                "--locked",
                "--extra",
                "test"
            ]
        );
        assert_eq!(
            test.build[0].env,
            [(
                "UV_PROJECT_ENVIRONMENT".to_string(),
                test.path.to_string_lossy().into_owned()
            )]
        );
        assert_eq!(test.probe.argv[1..], ["-I", "-c", "import pytest"]);
    }

    #[test]
    fn no_project_suites_with_the_same_requirements_share_one_environment() {
        let layout = Layout::new("/repo");
        let reqs = || Environment::Requirements {
            requirements: vec!["pytest==9.2.0".into()],
            file: None,
        };
        let one = plan_env(
            &suite("a", "x", reqs()),
            &layout,
            Path::new("uv"),
            &Facts::default(),
        );
        let two = plan_env(
            &suite("b", "y", reqs()),
            &layout,
            Path::new("uv"),
            &Facts::default(),
        );
        let other = plan_env(
            &suite(
                "c",
                "x",
                Environment::Requirements {
                    requirements: vec!["pytest==9.1.0".into()],
                    file: None,
                },
            ),
            &layout,
            Path::new("uv"),
            &Facts::default(),
        );
        assert_eq!(one.key, two.key);
        let root = Path::new("/repo");
        assert_eq!(
            one.inputs(root, "uv 1"),
            two.inputs(root, "uv 1"),
            "one environment, one record: suites in other directories agree on it"
        );
        assert_ne!(one.key, other.key);
        assert_eq!(one.build.len(), 2);
        assert_eq!(one.build[0].argv[1], "venv");
        assert_eq!(one.build[1].argv[1..3], ["pip", "install"]);
        assert_eq!(one.build[1].argv.last().unwrap(), "pytest==9.2.0");
    }

    #[test]
    fn the_environment_is_planned_from_the_facts_alone() {
        let layout = Layout::new("/nowhere");
        let reqs = Environment::Requirements {
            requirements: vec![],
            file: Some("reqs.txt".into()),
        };
        let key = |facts: &Facts| {
            plan_env(
                &suite("r", "x", reqs.clone()),
                &layout,
                Path::new("uv"),
                facts,
            )
            .key
        };
        let one = Facts::default().with_file("reqs.txt", b"pytest==9.2.0\n");
        let same = Facts::default().with_file("reqs.txt", b"pytest==9.2.0\n");
        let other = Facts::default().with_file("reqs.txt", b"pytest==9.1.0\n");
        let pinned = one.clone().with_file("x/.python-version", b"3.12\n");
        assert_eq!(key(&one), key(&same), "keyed by the file's contents");
        assert_ne!(key(&one), key(&other));
        assert_ne!(key(&one), key(&pinned), "and by the interpreter uv picks");
        assert_ne!(
            key(&one),
            key(&Facts::default()),
            "an unreadable file is its own key"
        );

        // A workspace member's inputs are the workspace's lock and pyproject.toml.
        let member = Facts::default().with_lock(
            "ws/a",
            crate::uv_workspace::ProjectLock {
                lock: "ws/uv.lock".into(),
                workspace_root: Some("ws".into()),
            },
        );
        let project = Environment::project(&[]);
        let env = plan_env(
            &suite("a", "ws/a", project.clone()),
            &layout,
            Path::new("uv"),
            &member,
        );
        let roles: Vec<_> = env
            .input_files
            .iter()
            .map(|(r, p)| (*r, p.to_str().unwrap()))
            .collect();
        assert_eq!(
            roles,
            [
                ("pyproject.toml", "ws/a/pyproject.toml"),
                ("workspace pyproject.toml", "ws/pyproject.toml"),
                ("uv.lock", "ws/uv.lock"),
                (".python-version", "ws/a/.python-version"),
            ]
        );
        let alone = plan_env(
            &suite("a", "ws/a", project),
            &layout,
            Path::new("uv"),
            &Facts::default(),
        );
        assert_eq!(
            alone.input_files[1],
            ("uv.lock", PathBuf::from("ws/a/uv.lock"))
        );
    }

    #[test]
    fn inputs_change_with_the_lock_and_with_uv() {
        let root = std::env::temp_dir().join(format!("xtask-env-{}", std::process::id()));
        std::fs::create_dir_all(root.join("pkg")).unwrap();
        std::fs::write(root.join("pkg/uv.lock"), "one").unwrap();
        let layout = Layout::new(&root);
        let env = plan_env(
            &suite("a", "pkg", Environment::project(&[])),
            &layout,
            Path::new("uv"),
            &Facts::default(),
        );
        let before = env.inputs(&root, "uv 0.13.8");
        assert_eq!(before, env.inputs(&root, "uv 0.13.8"));
        assert_ne!(before, env.inputs(&root, "uv 0.13.9"));
        std::fs::write(root.join("pkg/uv.lock"), "two").unwrap();
        assert_ne!(before, env.inputs(&root, "uv 0.13.8"));
        assert!(!env.is_current(&before), "never built");
        std::fs::remove_dir_all(root).unwrap();
    }
}
