//! Per-invocation directories under `target/xtask/runs/`.
//!
//! An invocation that runs suites creates its own directory, holds an exclusive lock on its
//! `.lock` file for as long as it lives (the kernel drops the lock when the process dies,
//! however it dies, in whatever PID namespace), points `target/xtask/latest` at it, and
//! writes every report inside it. A later invocation that finds a directory whose lock it
//! can take knows its owner is gone: it ends the processes that owner left behind, removes
//! its working files, and keeps its reports as long as the manifest's retention says
//! (`[workspace.metadata.xtask.runs]`: how many, how old, how large in all).
//!
//! Two invocations may start at once and prune together. A directory appears under `runs/`
//! only with its lock already held (it is made and locked under a hidden name, then
//! renamed), so a pruner never mistakes a starting invocation for a dead one; each removal
//! checks again, just before it, that the directory's lock is free and that `latest` does
//! not lead to it.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::manifest::Retention;
use crate::paths::Layout;
use crate::process;

/// Finished invocations whose directories are kept (besides the live ones) when the
/// manifest does not say (`runs.keep`).
pub const KEEP_FINISHED: usize = crate::manifest::DEFAULT_KEEP_RUNS;

/// The prefix of a directory being made, hidden from pruning and listing until renamed.
const MAKING: &str = ".new-";

/// The names below `target/xtask` that lead through `latest` into the newest invocation.
pub const STABLE: &[&str] = &["junit.xml", "run.json", "report.html", "junit", "logs"];

/// This invocation's directory, locked while the value lives.
pub struct RunDir {
    _lock: File,
    /// Problems with the stable links; the run goes on, and ends with an internal error.
    pub problems: Vec<String>,
}

impl RunDir {
    /// Creates and locks this invocation's directory, cleans up after dead invocations
    /// (pruning finished runs as `retention` says; with none, as when the manifest cannot
    /// be read, no finished run is removed), and points `latest` and the stable paths at
    /// this one.
    pub fn open(layout: &Layout, retention: Option<&Retention>) -> anyhow::Result<RunDir> {
        let lock = make_locked(layout)?;
        clean_up_dead_runs(layout, retention);
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

/// This invocation's directory, made and locked under a hidden name and then renamed into
/// place: whoever lists `runs/` sees it locked from the start. Returns the held lock.
fn make_locked(layout: &Layout) -> anyhow::Result<File> {
    let dir = layout.run_dir();
    let making = layout.runs_dir().join(format!("{MAKING}{}", layout.run_id));
    std::fs::create_dir_all(&making).with_context(|| format!("creating {}", making.display()))?;
    let lock_path = making.join(".lock");
    let lock =
        File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    if std::fs::rename(&making, &dir).is_err() {
        // Something made the directory first (it is this invocation's own id, so nobody
        // else's): lock it where it is.
        let _ = std::fs::remove_dir_all(&making);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let lock_path = dir.join(".lock");
        let lock = File::create(&lock_path)
            .with_context(|| format!("creating {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("locking {}", lock_path.display()))?;
        return Ok(lock);
    }
    Ok(lock)
}

/// Whether `latest` leads to the directory `name` now.
fn is_latest(layout: &Layout, name: &std::ffi::OsStr) -> bool {
    std::fs::read_link(layout.latest())
        .ok()
        .is_some_and(|l| l.file_name() == Some(name))
}

/// Removes a finished run's directory, unless by now it is live or `latest` leads to it.
fn remove_finished(layout: &Layout, path: &Path) {
    let Some(name) = path.file_name() else {
        return;
    };
    if is_latest(layout, name) || is_live(path) {
        return;
    }
    let _ = std::fs::remove_dir_all(path);
}

/// A hidden directory an invocation died making is removed once it is surely not being
/// made: its lock is free and it is older than any invocation takes to rename it.
fn remove_abandoned(path: &Path) {
    let old = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|at| at.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(600));
    if old && !is_live(path) {
        let _ = std::fs::remove_dir_all(path);
    }
}

fn clean_up_dead_runs(layout: &Layout, retention: Option<&Retention>) {
    let Ok(entries) = std::fs::read_dir(layout.runs_dir()) else {
        return;
    };
    let mut finished: Vec<PathBuf> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(MAKING) && !name.ends_with(&layout.run_id) {
            remove_abandoned(&path);
            continue;
        }
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
    let Some(retention) = retention else {
        return;
    };
    // Newest first: run ids start with their start time.
    finished.sort();
    finished.reverse();
    let now = std::time::SystemTime::now();
    let mut kept = 0usize;
    let mut size = 0u64;
    let mut pruning = false;
    for path in finished {
        let name = path.file_name().unwrap_or_default().to_owned();
        if is_latest(layout, &name) {
            // Kept whatever it costs, and it counts among the kept.
            kept += 1;
            if retention.max_size.is_some() {
                size = size.saturating_add(disk_size(&path));
            }
            continue;
        }
        let too_old = retention.max_age.is_some_and(|max| {
            started(&path).is_some_and(|at| now.duration_since(at).is_ok_and(|age| age > max))
        });
        pruning = pruning || kept >= retention.keep || too_old;
        if !pruning {
            if let Some(max) = retention.max_size {
                let with = size.saturating_add(disk_size(&path));
                // The newest runs that fit together; everything older goes.
                pruning = with > max;
                size = with;
            }
        }
        if pruning {
            remove_finished(layout, &path);
        } else {
            kept += 1;
        }
    }
}

/// When the run in `dir` started: from its id (`20261201T140601.123Z-...`), else the
/// directory's modification time.
fn started(dir: &Path) -> Option<std::time::SystemTime> {
    let name = dir.file_name()?.to_string_lossy().into_owned();
    let stamp = name.split('-').next().unwrap_or_default();
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.3fZ")
        .ok()
        .map(|at| std::time::SystemTime::from(at.and_utc()))
        .or_else(|| std::fs::metadata(dir).and_then(|m| m.modified()).ok())
}

/// The bytes of the files below `dir` (links not followed).
fn disk_size(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => todo.push(entry.path()),
                Ok(meta) => total = total.saturating_add(meta.len()),
                Err(_) => {}
            }
        }
    }
    total
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
    use std::time::Duration;

    fn scratch(name: &str) -> Layout {
        let root = std::env::temp_dir().join(format!("xtask-runs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Layout::new(root)
    }

    #[test]
    fn an_invocation_points_latest_and_the_stable_paths_at_its_own_directory() {
        let layout = scratch("latest");
        let run = RunDir::open(&layout, Some(&Retention::default())).unwrap();
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
        let live = RunDir::open(&first, Some(&Retention::default())).unwrap();
        std::fs::create_dir_all(first.work_dir()).unwrap();
        let dead = Layout::new(&first.root);
        std::fs::create_dir_all(dead.work_dir()).unwrap();
        std::fs::write(dead.run_dir().join(".lock"), "").unwrap();
        let second = Layout::new(&first.root);
        let _second = RunDir::open(&second, Some(&Retention::default())).unwrap();
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
        let run = RunDir::open(&layout, Some(&Retention::default())).unwrap();
        assert_eq!(run.problems.len(), 2, "{:?}", run.problems);
        assert!(
            run.problems[0].contains("junit.xml is a directory"),
            "{:?}",
            run.problems
        );
        assert!(layout.out_dir().join("logs/mine").is_dir());
        std::fs::remove_dir_all(&layout.root).unwrap();
    }

    /// A finished run `id` (its lock free) holding `bytes` of reports.
    fn finished(layout: &Layout, id: &str, bytes: usize) -> PathBuf {
        let dir = layout.runs_dir().join(id);
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::fs::write(dir.join(".lock"), "").unwrap();
        std::fs::write(dir.join("run.json"), "{}").unwrap();
        std::fs::write(dir.join("logs/a.log"), vec![b'x'; bytes]).unwrap();
        dir
    }

    fn ids(layout: &Layout) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(layout.runs_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        ids.sort();
        ids
    }

    fn point_latest(layout: &Layout, id: &str) {
        let _ = std::fs::remove_file(layout.latest());
        std::os::unix::fs::symlink(Path::new("runs").join(id), layout.latest()).unwrap();
    }

    #[test]
    fn finished_runs_are_kept_by_count_age_and_size_and_latest_always() {
        let layout = scratch("retention");
        let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
        let id = |days_ago: i64, n: u32| {
            let at = now - chrono::Duration::days(days_ago);
            format!("{}-{n}-aaaaaa", at.format("%Y%m%dT%H%M%S%.3fZ"))
        };
        let old = [id(40, 1), id(30, 2), id(3, 3), id(2, 4), id(1, 5)];
        for id in &old {
            finished(&layout, id, 1000);
        }
        // `latest` leads to the oldest: it is kept whatever the limits say.
        point_latest(&layout, old[0].as_str());

        // By count: the newest three, and latest.
        let keep_three = Retention {
            keep: 3,
            max_age: None,
            max_size: None,
        };
        clean_up_dead_runs(&layout, Some(&keep_three));
        assert_eq!(
            ids(&layout),
            [
                old[0].as_str(),
                old[2].as_str(),
                old[3].as_str(),
                old[4].as_str()
            ]
        );

        // By age: none older than 35 days... but latest.
        for id in &old {
            finished(&layout, id, 1000);
        }
        let a_month = Retention {
            keep: 10,
            max_age: Some(Duration::from_secs(35 * 86_400)),
            max_size: None,
        };
        clean_up_dead_runs(&layout, Some(&a_month));
        assert_eq!(ids(&layout), old);
        let a_week = Retention {
            max_age: Some(Duration::from_secs(7 * 86_400)),
            ..a_month
        };
        clean_up_dead_runs(&layout, Some(&a_week));
        assert_eq!(
            ids(&layout),
            [
                old[0].as_str(),
                old[2].as_str(),
                old[3].as_str(),
                old[4].as_str()
            ]
        );

        // By size: the newest that fit together (latest counted), everything older gone.
        point_latest(&layout, old[4].as_str());
        finished(&layout, old[3].as_str(), 5000);
        let small = Retention {
            keep: 10,
            max_age: None,
            max_size: Some(4000),
        };
        clean_up_dead_runs(&layout, Some(&small));
        assert_eq!(
            ids(&layout),
            [old[4].as_str()],
            "the 5000 bytes of {} do not fit",
            old[3]
        );

        // Without a retention (the manifest could not be read) nothing finished is removed.
        for id in &old {
            finished(&layout, id, 1000);
        }
        clean_up_dead_runs(&layout, None);
        assert_eq!(ids(&layout), old);
        std::fs::remove_dir_all(&layout.root).unwrap();
    }

    #[test]
    fn a_live_run_is_kept_whatever_the_limits_and_counts_for_nothing() {
        let layout = scratch("retention-live");
        let other = Layout::new(&layout.root);
        let live = RunDir::open(&other, Some(&Retention::default())).unwrap();
        std::fs::write(other.run_record(), "{}").unwrap();
        let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
        let old = format!(
            "{}-1-aaaaaa",
            (now - chrono::Duration::days(9)).format("%Y%m%dT%H%M%S%.3fZ")
        );
        finished(&layout, &old, 10);
        let nothing = Retention {
            keep: 0,
            max_age: Some(Duration::from_secs(1)),
            max_size: Some(1),
        };
        let _this = RunDir::open(&layout, Some(&nothing)).unwrap();
        assert_eq!(ids(&layout).len(), 2, "{:?}", ids(&layout));
        assert!(other.run_dir().join("run.json").is_file());
        assert!(!layout.runs_dir().join(&old).exists());
        drop(live);
        std::fs::remove_dir_all(&layout.root).unwrap();
    }
}
