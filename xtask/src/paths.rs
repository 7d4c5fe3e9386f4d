//! Where things are: the repository root and everything the xtask writes below it.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Overrides the repository root (used by the tests to run on fixture repositories).
pub const ROOT_ENV: &str = "XTASK_ROOT";

/// The repository root: `$XTASK_ROOT` when set, else the parent of this crate's directory,
/// so that `cargo xtask` works from any directory of the workspace.
pub fn project_root() -> PathBuf {
    match std::env::var_os(ROOT_ENV) {
        Some(root) if !root.is_empty() => PathBuf::from(root),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the xtask crate lives in a subdirectory of the repository")
            .to_path_buf(),
    }
}

/// Every path the xtask reads or writes, derived from the repository root.
#[derive(Clone, Debug)]
pub struct Layout {
    pub root: PathBuf,
    /// This invocation's private directory name below `target/xtask/runs`: its process id,
    /// so that two invocations at once never write the same working file.
    pub run_id: String,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout {
            root: root.into(),
            run_id: std::process::id().to_string(),
        }
    }

    pub fn manifest(&self) -> PathBuf {
        self.root.join("Cargo.toml")
    }

    /// `target/xtask`: everything a run leaves behind.
    pub fn out_dir(&self) -> PathBuf {
        self.root.join("target").join("xtask")
    }

    /// The merged report of the whole invocation.
    pub fn junit_report(&self) -> PathBuf {
        self.out_dir().join("junit.xml")
    }

    /// One report per suite.
    pub fn junit_dir(&self) -> PathBuf {
        self.out_dir().join("junit")
    }

    pub fn suite_junit(&self, suite: &str) -> PathBuf {
        self.junit_dir().join(format!("{suite}.xml"))
    }

    /// The record of the latest invocation.
    pub fn run_record(&self) -> PathBuf {
        self.out_dir().join("run.json")
    }

    /// Where each invocation's working files go while it runs.
    pub fn runs_dir(&self) -> PathBuf {
        self.out_dir().join("runs")
    }

    /// This invocation's working files; removed when it ends.
    pub fn run_dir(&self) -> PathBuf {
        self.runs_dir().join(&self.run_id)
    }

    /// pytest's own `--junitxml` output, before we rewrite it.
    pub fn raw_junit(&self, suite: &str) -> PathBuf {
        self.run_dir().join("pytest").join(format!("{suite}.xml"))
    }

    /// The suite's log while it runs; published to `suite_log` when the suite ends.
    pub fn live_log(&self, suite: &str) -> PathBuf {
        self.run_dir().join("logs").join(format!("{suite}.log"))
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.out_dir().join("logs")
    }

    pub fn suite_log(&self, suite: &str) -> PathBuf {
        self.logs_dir().join(format!("{suite}.log"))
    }

    /// Tools the xtask installs for itself (a pinned uv).
    pub fn tools_dir(&self) -> PathBuf {
        self.out_dir().join("tools")
    }

    /// `path` relative to the root when it is below it, for messages and reports.
    pub fn display<'a>(&self, path: &'a Path) -> std::borrow::Cow<'a, str> {
        match path.strip_prefix(&self.root) {
            Ok(rel) => rel.to_string_lossy().into_owned().into(),
            Err(_) => path.to_string_lossy(),
        }
    }
}

/// Writes `contents` to `path` through a temporary file and a rename, so that a reader
/// never sees half a file, and names the file when it fails.
pub fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = temporary_beside(path)?;
    std::fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Puts the finished file `from` at `path` in one rename (a hard link when possible, so
/// even a log of many megabytes costs nothing).
pub fn publish(from: &Path, path: &Path) -> anyhow::Result<()> {
    let tmp = temporary_beside(path)?;
    if std::fs::hard_link(from, &tmp).is_err() {
        std::fs::copy(from, &tmp)
            .with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

fn temporary_beside(path: &Path) -> anyhow::Result<PathBuf> {
    let dir = path.parent().expect("report paths have a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    Ok(tmp)
}
