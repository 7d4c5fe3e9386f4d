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
///
/// Each invocation that runs suites owns one directory, `target/xtask/runs/<run id>/`, and
/// writes every report there; nothing else writes into it and no other invocation deletes
/// it while it runs. `target/xtask/latest` names the newest invocation's directory, and the
/// stable paths (`target/xtask/junit.xml`, `run.json`, `junit/`, `logs/`) lead through it.
#[derive(Clone, Debug)]
pub struct Layout {
    pub root: PathBuf,
    /// This invocation's directory name below `target/xtask/runs`: its start time, process
    /// id and a random part, so it is unique across PID namespaces sharing a checkout and
    /// sorts by start time.
    pub run_id: String,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout {
            root: root.into(),
            run_id: new_run_id(),
        }
    }

    pub fn manifest(&self) -> PathBuf {
        self.root.join("Cargo.toml")
    }

    /// `target/xtask`: everything a run leaves behind.
    pub fn out_dir(&self) -> PathBuf {
        self.root.join("target").join("xtask")
    }

    /// Every invocation's own directory is below this one.
    pub fn runs_dir(&self) -> PathBuf {
        self.out_dir().join("runs")
    }

    /// This invocation's directory: all its reports, logs and working files.
    pub fn run_dir(&self) -> PathBuf {
        self.runs_dir().join(&self.run_id)
    }

    /// The link to the newest invocation's directory.
    pub fn latest(&self) -> PathBuf {
        self.out_dir().join("latest")
    }

    /// The merged report of this invocation.
    pub fn junit_report(&self) -> PathBuf {
        self.run_dir().join("junit.xml")
    }

    /// One report per suite.
    pub fn junit_dir(&self) -> PathBuf {
        self.run_dir().join("junit")
    }

    pub fn suite_junit(&self, suite: &str) -> PathBuf {
        self.junit_dir().join(format!("{suite}.xml"))
    }

    /// The record of this invocation.
    pub fn run_record(&self) -> PathBuf {
        self.run_dir().join("run.json")
    }

    /// The page of this invocation: `report.html`, self-contained.
    pub fn html_report(&self) -> PathBuf {
        self.run_dir().join("report.html")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.run_dir().join("logs")
    }

    /// The suite's log, written as the suite runs.
    pub fn suite_log(&self, suite: &str) -> PathBuf {
        self.logs_dir().join(format!("{suite}.log"))
    }

    /// Working files (pytest's own XML, which holds unmasked output); removed at the end.
    pub fn work_dir(&self) -> PathBuf {
        self.run_dir().join("work")
    }

    /// pytest's own `--junitxml` output, read back into the model.
    pub fn raw_junit(&self, suite: &str) -> PathBuf {
        self.work_dir().join(format!("{suite}.pytest.xml"))
    }

    /// The directory of the xtask's pytest plugin (`_xtask_progress.py`), appended to the
    /// pytest step's PYTHONPATH.
    pub fn progress_plugin_dir(&self) -> PathBuf {
        self.work_dir().join("xtask_progress")
    }

    /// Where the progress plugin records the test that is running in `suite`.
    pub fn progress_file(&self, suite: &str) -> PathBuf {
        self.work_dir().join(format!("{suite}.progress"))
    }

    /// Environments the xtask builds and owns, reused across runs while their inputs hold.
    pub fn envs_dir(&self) -> PathBuf {
        self.out_dir().join("envs")
    }

    /// Tools the xtask installs for itself (a pinned uv).
    pub fn tools_dir(&self) -> PathBuf {
        self.out_dir().join("tools")
    }

    /// `path` relative to the root when it is below it, for messages and reports.
    pub fn display<'a>(&self, path: &'a Path) -> std::borrow::Cow<'a, str> {
        display(&self.root, path)
    }
}

/// `path` relative to `root` when it is below it, for messages and reports.
pub fn display<'a>(root: &Path, path: &'a Path) -> std::borrow::Cow<'a, str> {
    match path.strip_prefix(root) {
        Ok(rel) => rel.to_string_lossy().into_owned().into(),
        Err(_) => path.to_string_lossy(),
    }
}

/// `20261201T140601Z-12345-9f3a1c`: start time, process id, and 24 random bits.
fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(now.timestamp_nanos_opt().unwrap_or_default() as u128);
    hasher.write_u32(std::process::id());
    format!(
        "{}-{}-{:06x}",
        now.format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id(),
        hasher.finish() & 0xff_ffff
    )
}

/// Writes `contents` to `path` through a temporary file and a rename, so that a reader
/// never sees half a file, and names the file when it fails.
pub fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = temporary_beside(path)?;
    std::fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

fn temporary_beside(path: &Path) -> anyhow::Result<PathBuf> {
    let dir = path.parent().expect("report paths have a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Unique per call: two threads (two suites) writing the same file at once must not
    // share, and so remove, each other's temporary file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.{}.{n}.tmp",
        path.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    Ok(tmp)
}
