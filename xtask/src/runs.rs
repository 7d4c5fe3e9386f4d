//! Per-invocation directories under `target/xtask/runs/`.
//!
//! An invocation that runs suites creates its own directory, holds an exclusive lock on its
//! `.lock` file for as long as it lives (the kernel drops the lock when the process dies,
//! however it dies, in whatever PID namespace), points `target/xtask/latest` at it, and
//! writes every report inside it. A later invocation that finds a directory whose lock it
//! can take knows its owner is gone: it ends the processes that owner left behind, removes
//! its working files, and keeps its reports until they are among the oldest.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::paths::Layout;
use crate::process;

/// Finished invocations whose directories are kept (besides the live ones).
pub const KEEP_FINISHED: usize = 10;

/// The names below `target/xtask` that lead through `latest` into the newest invocation.
pub const STABLE: &[&str] = &["junit.xml", "run.json", "report.html", "junit", "logs"];

/// This invocation's directory, locked while the value lives.
pub struct RunDir {
    _lock: File,
    /// Problems with the stable links; the run goes on, and ends with an internal error.
    pub problems: Vec<String>,
}

impl RunDir {
    /// Creates and locks this invocation's directory, cleans up after dead invocations, and
    /// points `latest` and the stable paths at this one.
    pub fn open(layout: &Layout) -> anyhow::Result<RunDir> {
        let dir = layout.run_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let lock_path = dir.join(".lock");
        let lock = File::create(&lock_path)
            .with_context(|| format!("creating {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("locking {}", lock_path.display()))?;
        clean_up_dead_runs(layout);
        let mut problems = Vec::new();
        if let Err(err) = point_latest_here(layout) {
            problems.push(format!("{err:#}"));
        }
        for name in STABLE {
            if let Err(err) = stable_link(layout, name) {
                problems.push(format!("{err:#}"));
            }
        }
        Ok(RunDir {
            _lock: lock,
            problems,
        })
    }
}

/// The run.json that `run` names: `latest`, a run id (a directory under
/// `target/xtask/runs/`), a run.json, or a run directory (relative paths from the current
/// directory). Nothing by that name is a usage error that says where runs are listed.
pub fn find_record(layout: &Layout, run: &str) -> Result<PathBuf, crate::error::Error> {
    use crate::error::Error;
    if run == "latest" {
        let latest = layout.latest();
        if std::fs::symlink_metadata(&latest).is_err() {
            return Err(Error::Usage(format!(
                "there is no latest run: {} does not exist (no `cargo xtask test` or `ci` \
                 has run in this checkout)",
                latest.display()
            )));
        }
        return Ok(latest.join("run.json"));
    }
    let by_id = layout.runs_dir().join(run);
    if !run.is_empty() && !run.contains('/') && by_id.is_dir() {
        return Ok(by_id.join("run.json"));
    }
    let path = Path::new(run);
    if path.is_dir() {
        return Ok(path.join("run.json"));
    }
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    Err(Error::Usage(format!(
        "no run `{run}`: it is neither a run id under {} nor a run.json or run directory \
         (`cargo xtask runs` lists the kept runs)",
        layout.runs_dir().display()
    )))
}

/// The file in which the process layer records the process groups this invocation starts.
pub fn processes_file(layout: &Layout) -> PathBuf {
    layout.run_dir().join("processes")
}

/// Whether the invocation that owns `dir` is still running.
pub fn is_live(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(".lock")) else {
        // No lock file: an older layout, or a directory whose creation was cut short.
        return false;
    };
    match file.try_lock() {
        Ok(()) => false,
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(std::fs::TryLockError::Error(_)) => false,
    }
}

fn clean_up_dead_runs(layout: &Layout) {
    let Ok(entries) = std::fs::read_dir(layout.runs_dir()) else {
        return;
    };
    let latest = std::fs::read_link(layout.latest()).ok();
    let mut finished: Vec<PathBuf> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == layout.run_id || name.starts_with('.') || is_live(&path) {
            continue;
        }
        let processes = path.join("processes");
        if processes.exists() {
            process::sweep(&name, &processes);
            let _ = std::fs::remove_file(&processes);
        }
        let _ = std::fs::remove_dir_all(path.join("work"));
        if !path.join("run.json").exists() && !path.join(".lock").exists() {
            // Not an invocation directory of this layout (e.g. `runs/<pid>` of an older one).
            let _ = std::fs::remove_dir_all(&path);
            continue;
        }
        finished.push(path);
    }
    finished.sort();
    let excess = finished.len().saturating_sub(KEEP_FINISHED);
    for path in finished.into_iter().take(excess) {
        let is_latest = latest
            .as_ref()
            .is_some_and(|l| path.file_name() == l.file_name());
        if !is_latest {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// `latest` -> `runs/<run id>`, switched in one rename so a reader never sees it missing.
fn point_latest_here(layout: &Layout) -> anyhow::Result<()> {
    let target = Path::new("runs").join(&layout.run_id);
    let tmp = layout.out_dir().join(format!(".latest.{}", layout.run_id));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp)
        .with_context(|| format!("creating the link {}", tmp.display()))?;
    std::fs::rename(&tmp, layout.latest()).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!(
            "pointing {} at {}: remove whatever is at that path",
            layout.latest().display(),
            target.display()
        )
    })
}

/// `target/xtask/<name>` -> `latest/<name>`. Earlier versions of the xtask wrote real files
/// there; those are replaced. Anything else in the way is left alone and reported.
fn stable_link(layout: &Layout, name: &str) -> anyhow::Result<()> {
    let path = layout.out_dir().join(name);
    let target = Path::new("latest").join(name);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            if std::fs::read_link(&path).ok().as_deref() == Some(target.as_path()) {
                return Ok(());
            }
            std::fs::remove_file(&path).with_context(|| format!("replacing {}", path.display()))?;
        }
        Ok(meta) if meta.is_file() && name.contains('.') => {
            std::fs::remove_file(&path).with_context(|| format!("replacing {}", path.display()))?;
        }
        Ok(meta) if meta.is_dir() && !name.contains('.') && holds_only_reports(&path) => {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("replacing {}", path.display()))?;
        }
        Ok(meta) => anyhow::bail!(
            "{} is a {} the xtask did not make, so it cannot lead to this run's {name}; \
             this run's reports are in {}. Remove it and run again",
            path.display(),
            if meta.is_dir() { "directory" } else { "file" },
            layout.run_dir().display()
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("inspecting {}", path.display())),
    }
    // Through a temporary link and a rename: two invocations starting at once both succeed.
    let tmp = layout.out_dir().join(format!(".{name}.{}", layout.run_id));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp).with_context(|| {
        format!(
            "creating the link {} -> {}",
            tmp.display(),
            target.display()
        )
    })?;
    std::fs::rename(&tmp, &path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!(
            "creating the link {} -> {}",
            path.display(),
            target.display()
        )
    })
}

/// An older xtask's `junit/` or `logs/`: only report files, no subdirectories.
fn holds_only_reports(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().all(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            e.file_type().is_ok_and(|t| t.is_file())
                && (name.ends_with(".xml") || name.ends_with(".log") || name.ends_with(".tmp"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> Layout {
        let root = std::env::temp_dir().join(format!("xtask-runs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Layout::new(root)
    }

    #[test]
    fn an_invocation_points_latest_and_the_stable_paths_at_its_own_directory() {
        let layout = scratch("latest");
        let run = RunDir::open(&layout).unwrap();
        assert!(run.problems.is_empty(), "{:?}", run.problems);
        std::fs::write(layout.run_record(), "{}").unwrap();
        let through_stable = layout.out_dir().join("run.json");
        assert_eq!(std::fs::read_to_string(through_stable).unwrap(), "{}");
        assert!(
            is_live(&layout.run_dir()),
            "the lock is held while the RunDir lives"
        );
        drop(run);
        assert!(!is_live(&layout.run_dir()));
        std::fs::remove_dir_all(&layout.root).unwrap();
    }

    #[test]
    fn a_live_invocations_directory_is_never_pruned_and_a_dead_ones_work_is_removed() {
        let first = scratch("prune");
        let live = RunDir::open(&first).unwrap();
        std::fs::create_dir_all(first.work_dir()).unwrap();
        let dead = Layout::new(&first.root);
        std::fs::create_dir_all(dead.work_dir()).unwrap();
        std::fs::write(dead.run_dir().join(".lock"), "").unwrap();
        let second = Layout::new(&first.root);
        let _second = RunDir::open(&second).unwrap();
        assert!(
            first.work_dir().is_dir(),
            "the live invocation keeps its work dir"
        );
        assert!(!dead.work_dir().exists(), "the dead one's work dir is gone");
        assert!(dead.run_dir().exists(), "its reports are kept");
        drop(live);
        std::fs::remove_dir_all(&first.root).unwrap();
    }

    #[test]
    fn something_else_in_a_stable_place_is_reported_not_removed() {
        let layout = scratch("blocked");
        std::fs::create_dir_all(layout.out_dir().join("logs/mine")).unwrap();
        std::fs::create_dir_all(layout.out_dir().join("junit.xml")).unwrap();
        let run = RunDir::open(&layout).unwrap();
        assert_eq!(run.problems.len(), 2, "{:?}", run.problems);
        assert!(
            run.problems[0].contains("junit.xml is a directory"),
            "{:?}",
            run.problems
        );
        assert!(layout.out_dir().join("logs/mine").is_dir());
        std::fs::remove_dir_all(&layout.root).unwrap();
    }
}
