//! What the world says, read once before planning: the variables the suites require, which
//! paths named after `--` exist, which `uv.lock` each project is built from, the contents
//! of the files that key an environment, and which module names are the repository's own.
//! `plan`, `environment::plan_env` and `classify` decide from these facts alone, so they
//! can be tested with facts made by hand and no file on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::hash::Hasher;
use std::path::{Path, PathBuf};

use crate::manifest::{Environment, Suite};
use crate::uv_workspace::ProjectLock;

/// The facts plans are made from. Anything not gathered is taken as absent: a variable
/// unset, a path that does not exist, a project without a lock, a file that cannot be read.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The suites' `requires-env` variables that are set (empty or not).
    vars: BTreeMap<String, OsString>,
    /// Paths relative to the repository root (or absolute, as given) that exist.
    existing: BTreeSet<PathBuf>,
    /// Per project directory (a suite's `dir`), the lock it is built from.
    locks: BTreeMap<String, ProjectLock>,
    /// Per file relative to the root, the digest of its contents (only readable files).
    digests: BTreeMap<PathBuf, String>,
}

impl Facts {
    /// Reads what planning `suites` with the arguments after `--` (`pytest_args`) needs.
    pub fn gather(root: &Path, suites: &[&Suite], pytest_args: &[String]) -> Facts {
        let mut facts = Facts::default();
        for suite in suites {
            for name in &suite.requires_env {
                if let Some(value) = std::env::var_os(name) {
                    facts.vars.insert(name.clone(), value);
                }
            }
            // Every argument that could be a path or node id, in the suite's directory and
            // below the root: `plan::narrow` then decides which are paths.
            for arg in pytest_args.iter().filter(|a| !a.starts_with('-')) {
                let path = Path::new(arg.split("::").next().unwrap_or(arg));
                for candidate in [Path::new(&suite.dir).join(path), path.to_path_buf()] {
                    if root.join(&candidate).exists() {
                        facts.existing.insert(candidate);
                    }
                }
            }
            // A no-project suite's directory may hold a project too (`doctor` checks its lock).
            if let Some(lock) = crate::uv_workspace::lock_of(root, &suite.dir) {
                facts.locks.insert(suite.dir.clone(), lock);
            }
            if let Environment::Requirements { file, .. } = &suite.environment {
                let python_version = Path::new(&suite.dir).join(".python-version");
                for rel in file.iter().map(PathBuf::from).chain([python_version]) {
                    if let Ok(bytes) = std::fs::read(root.join(&rel)) {
                        facts.digests.insert(rel, digest(&bytes));
                    }
                }
            }
        }
        facts
    }

    /// The value of a variable, when it was set.
    pub fn var(&self, name: &str) -> Option<&OsStr> {
        self.vars.get(name).map(OsString::as_os_str)
    }

    /// Whether `path` (relative to the root) exists.
    pub fn exists(&self, path: &Path) -> bool {
        self.existing.contains(path)
    }

    /// The lock the project in `dir` is built from (see [`crate::uv_workspace::lock_of`]).
    pub fn lock(&self, dir: &str) -> Option<&ProjectLock> {
        self.locks.get(dir)
    }

    /// The digest of a file's contents (relative to the root), when it could be read.
    pub fn digest(&self, path: &Path) -> Option<&str> {
        self.digests.get(path).map(String::as_str)
    }

    /// With the variable `name` set to `value` (facts made by hand, for tests).
    pub fn with_var(mut self, name: &str, value: &str) -> Facts {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// With `path` existing.
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Facts {
        self.existing.insert(path.into());
        self
    }

    /// With the project in `dir` built from `lock`.
    pub fn with_lock(mut self, dir: &str, lock: ProjectLock) -> Facts {
        self.locks.insert(dir.into(), lock);
        self
    }

    /// With the file `path` holding `contents`.
    pub fn with_file(mut self, path: impl Into<PathBuf>, contents: &[u8]) -> Facts {
        self.digests.insert(path.into(), digest(contents));
        self
    }
}

/// A stable 64-bit digest (FNV-1a): a change detector, not a security boundary.
pub fn digest(bytes: &[u8]) -> String {
    let mut hasher = Fnv(0xcbf2_9ce4_8422_2325);
    hasher.write(bytes);
    format!("{:016x}", hasher.finish())
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Which of some top-level module names are the repository's own code for one suite.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnModules(BTreeSet<String>);

impl OwnModules {
    /// Those of `names` that are the repository's own code: something Python could import
    /// under that name (a `name.py`, a package with `__init__.py`, or a directory holding
    /// Python files, a namespace package), found on the suite's `pythonpath` or anywhere in
    /// its directory (searched through, as pytest puts test directories on `sys.path`), and
    /// not a directory of data files that happens to share the name (`tests/fixtures/yaml/`).
    pub fn find(suite_dir: &Path, pythonpath: &[PathBuf], names: &[String]) -> OwnModules {
        let own = names.iter().filter(|name| {
            let here = |dir: &Path| importable(dir, name);
            pythonpath.iter().any(|dir| here(dir)) || find_in_tree(suite_dir, &here, 6)
        });
        OwnModules(own.cloned().collect())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }
}

impl<'a> FromIterator<&'a str> for OwnModules {
    fn from_iter<I: IntoIterator<Item = &'a str>>(names: I) -> OwnModules {
        OwnModules(names.into_iter().map(String::from).collect())
    }
}

/// Whether `dir` holds a module `name` that Python could import.
fn importable(dir: &Path, name: &str) -> bool {
    if dir.join(format!("{name}.py")).is_file() {
        return true;
    }
    let package = dir.join(name);
    package.is_dir() && (package.join("__init__.py").is_file() || holds_python(&package, 3))
}

/// Whether `dir`, or a directory below it (to `depth` levels), holds a `.py` file.
fn holds_python(dir: &Path, depth: usize) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_file() => path.extension().is_some_and(|e| e == "py"),
            Ok(t) if t.is_dir() => depth > 0 && holds_python(&path, depth - 1),
            _ => false,
        }
    })
}

fn find_in_tree(dir: &Path, here: &impl Fn(&Path) -> bool, depth: usize) -> bool {
    if here(dir) {
        return true;
    }
    if depth == 0 {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let skip = name.starts_with('.') || name == "__pycache__" || name == "node_modules";
        !skip
            && entry.file_type().is_ok_and(|t| t.is_dir())
            && find_in_tree(&entry.path(), here, depth - 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    #[test]
    fn only_importable_things_are_own_modules() {
        let dir = temp("own");
        let path_dir = temp("own-path");
        write(
            &dir,
            &[
                ("tests/fixtures/yaml/config.yaml", "a: 1"),
                ("tests/fixtures/yaml/deeper/more.yaml", "b: 2"),
                ("pkg/__init__.py", ""),
                ("nspace/inner/mod.py", ""),
                ("single.py", ""),
            ],
        );
        write(&path_dir, &[("onpath.py", "")]);
        let names = [
            "yaml", "pkg", "nspace", "single", "fixtures", "missing", "onpath",
        ]
        .map(String::from);
        let own = OwnModules::find(&dir, std::slice::from_ref(&path_dir), &names);
        let expected: OwnModules = ["pkg", "nspace", "single", "onpath"].into_iter().collect();
        // A directory of data files is no module, all the way down.
        assert_eq!(own, expected);
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&path_dir).unwrap();
    }

    #[test]
    fn gathering_reads_variables_paths_locks_and_requirements() {
        let root = temp("facts");
        write(
            &root,
            &[
                ("proj/uv.lock", ""),
                ("proj/tests/test_a.py", ""),
                ("reqs/requirements.txt", "pytest\n"),
                ("reqs/.python-version", "3.12\n"),
            ],
        );
        let mut manifest = Manifest::for_tests(&[("p", "g"), ("r", "g")]);
        manifest.suites[0].dir = "proj".into();
        manifest.suites[0].environment = Environment::project(&[]);
        manifest.suites[0].requires_env = vec!["PATH".into(), "XTASK_FACTS_SURELY_UNSET".into()];
        manifest.suites[1].dir = "reqs".into();
        manifest.suites[1].environment = Environment::Requirements {
            requirements: vec![],
            file: Some("reqs/requirements.txt".into()),
        };
        let suites: Vec<&Suite> = manifest.suites.iter().collect();
        let args = ["-k", "tests/test_a.py::test_x", "proj/tests", "nowhere"].map(String::from);
        let facts = Facts::gather(&root, &suites, &args);
        assert_eq!(facts.var("PATH"), std::env::var_os("PATH").as_deref());
        assert_eq!(facts.var("XTASK_FACTS_SURELY_UNSET"), None);
        assert!(facts.exists(Path::new("proj/tests/test_a.py")));
        assert!(facts.exists(Path::new("proj/tests")));
        assert!(
            !facts.exists(Path::new("tests/test_a.py")),
            "not below the root"
        );
        assert!(!facts.exists(Path::new("nowhere")));
        assert_eq!(facts.lock("proj").unwrap().lock, "proj/uv.lock");
        assert_eq!(facts.lock("reqs"), None, "no lock of its own, no workspace");
        assert_eq!(
            facts.digest(Path::new("reqs/requirements.txt")),
            Some(digest(b"pytest\n").as_str())
        );
        assert_eq!(
            facts.digest(Path::new("reqs/.python-version")),
            Some(digest(b"3.12\n").as_str())
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
