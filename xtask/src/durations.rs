//! Recorded test durations, for `--partition durations:K/N` and the slices of a split
//! suite (both balanced by them).
//!
//! Where they come from, first found wins: `--durations FILE`; the repository's
//! `.xtask/durations.json` (committed, or restored by a pipeline; `cargo xtask durations`
//! writes it from run records); the kept runs' records (each suite's newest whole run). A named or conventional file that
//! cannot be read is an error naming it, never a silent hash split: slices computed from
//! different durations on different machines would run tests twice or not at all.
//!
//! The assignment itself is made by the xtask's pytest plugin over the tests pytest
//! collected (`_durations_slices` in pytest_plugin.py), from the file [`prepare`] writes
//! for each suite: so a test added since the durations were recorded is placed too (at
//! the median of the known durations), and a test since removed takes no room. The plan
//! only says which slice and where the durations are ([`crate::plan::SuitePlan::set_partition`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::paths::Layout;
use crate::plan::{PartitionMode, SuitePlan};
use crate::report::run_record::RunRecord;

/// The durations file a repository commits or a pipeline restores, relative to the root.
pub const DEFAULT_FILE: &str = ".xtask/durations.json";

/// The variable naming the file of one suite's durations the plugin balances slices by.
pub const PARTITION_DURATIONS_ENV: &str = "XTASK_PARTITION_DURATIONS";

const VERSION: u32 = 1;

/// Per suite, each test's duration in seconds by its node id relative to the suite's
/// directory (as in run.json).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Durations {
    pub version: u32,
    pub suites: BTreeMap<String, BTreeMap<String, f64>>,
}

/// Where a run's durations were read from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub durations: Durations,
    pub source: PathBuf,
}

impl Default for Durations {
    fn default() -> Durations {
        Durations::new()
    }
}

impl Durations {
    pub fn new() -> Durations {
        Durations {
            version: VERSION,
            suites: BTreeMap::new(),
        }
    }

    /// The durations of every test that ran to an outcome in `record` (not the stand-ins
    /// for a suite that did not run, not the tests pytest never started).
    pub fn from_record(record: &RunRecord) -> Durations {
        let mut durations = Durations::new();
        durations.add_record(record);
        durations
    }

    /// Adds `record`'s durations, replacing those of the same tests.
    pub fn add_record(&mut self, record: &RunRecord) {
        for suite in &record.suites {
            for test in &suite.tests {
                let (Some(node_id), Some(secs)) = (&test.node_id, test.duration_secs) else {
                    continue;
                };
                if test.synthetic || !secs.is_finite() || secs < 0.0 {
                    continue;
                }
                self.suites
                    .entry(suite.name.clone())
                    .or_default()
                    .insert(node_id.clone(), secs);
            }
        }
    }

    /// Reads a durations file; what is wrong with it is an error naming it and the fix.
    pub fn read(path: &Path) -> Result<Durations, Error> {
        let fix = "write it again with `cargo xtask durations -o FILE` after a run, or delete it";
        let text = std::fs::read_to_string(path).map_err(|err| {
            Error::Usage(format!(
                "cannot read the durations file {}: {err} ({fix})",
                path.display()
            ))
        })?;
        let durations: Durations = serde_json::from_str(&text).map_err(|err| {
            Error::Usage(format!(
                "the durations file {} is not a durations file: {err}; it holds \
                 {{\"version\": {VERSION}, \"suites\": {{SUITE: {{NODE_ID: SECONDS}}}}}} ({fix})",
                path.display()
            ))
        })?;
        if durations.version != VERSION {
            return Err(Error::Usage(format!(
                "the durations file {} has version {}; this xtask reads version {VERSION} ({fix})",
                path.display(),
                durations.version
            )));
        }
        for (suite, tests) in &durations.suites {
            if let Some((node_id, secs)) =
                tests.iter().find(|(_, s)| !(s.is_finite() && **s >= 0.0))
            {
                return Err(Error::Usage(format!(
                    "the durations file {}: suite `{suite}`, test `{node_id}` has duration {secs}; \
                     durations are seconds >= 0 ({fix})",
                    path.display()
                )));
            }
        }
        Ok(durations)
    }

    /// Writes the file, sorted, one test a line (diffs of a committed file stay readable).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|err| anyhow::anyhow!("creating {}: {err}", dir.display()))?;
        }
        crate::paths::write_atomically(path, text.as_bytes())
    }
}

/// The durations file to use without the latest run: `explicit` (relative to the current
/// directory), else the repository's `.xtask/durations.json` when it exists.
pub fn file(layout: &Layout, explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => {
            let conventional = layout.root.join(DEFAULT_FILE);
            conventional.exists().then_some(conventional)
        }
    }
}

/// The durations a run balances its slices by: from [`file`], else from the record store
/// ([`from_store`]), else none (every test then counts the same). A file named or found
/// that cannot be read is an error.
pub fn load(layout: &Layout, explicit: Option<&Path>) -> Result<Option<Loaded>, Error> {
    if let Some(path) = file(layout, explicit) {
        let durations = Durations::read(&path)?;
        return Ok(Some(Loaded {
            durations,
            source: path,
        }));
    }
    Ok(from_store(layout).map(|(durations, runs)| Loaded {
        durations,
        source: runs.first().cloned().unwrap_or_default(),
    }))
}

/// From the kept runs (target/xtask/runs/), each suite's durations from the newest run
/// that ran the whole of it: finished, not a `--partition` slice, not a `--rerun` (a slice
/// run must not change the durations the next slice is dealt by). With the run.json files
/// read, newest first; `None` when no kept run has any.
pub fn from_store(layout: &Layout) -> Option<(Durations, Vec<PathBuf>)> {
    from_store_for(layout, None)
}

/// [`from_store`], of the suites named in `wanted` only (every suite: `None`), reading no
/// older run once each of them has its durations (a run.json of 20,000 tests is megabytes).
fn from_store_for(layout: &Layout, wanted: Option<&[&str]>) -> Option<(Durations, Vec<PathBuf>)> {
    use crate::report::run_record::Status;
    let mut runs: Vec<PathBuf> = std::fs::read_dir(layout.runs_dir())
        .ok()?
        .flatten()
        .map(|entry| entry.path().join("run.json"))
        .filter(|path| path.is_file())
        .collect();
    // Run ids start with their UTC start time: by name is by age.
    runs.sort();
    runs.reverse();
    let mut durations = Durations::new();
    let mut used = Vec::new();
    for path in runs {
        let Ok(record) = crate::report::run_record::load(&path) else {
            continue;
        };
        let partitioned = record
            .invocation
            .iter()
            .any(|arg| arg.starts_with("--partition"));
        if record.status != Status::Finished || partitioned || record.rerun_of.is_some() {
            continue;
        }
        let mut took = false;
        for (suite, tests) in Durations::from_record(&record).suites {
            let is_wanted = wanted.is_none_or(|w| w.contains(&suite.as_str()));
            if is_wanted && !tests.is_empty() && !durations.suites.contains_key(&suite) {
                durations.suites.insert(suite, tests);
                took = true;
            }
        }
        if took {
            used.push(path);
        }
        if wanted.is_some_and(|w| w.iter().all(|s| durations.suites.contains_key(*s))) {
            break;
        }
    }
    (!used.is_empty()).then_some((durations, used))
}

/// With a `durations:K/N` partition, writes `plan`'s suite's durations (node id -> seconds,
/// relative to its directory; empty when none are known) where the plugin reads them.
pub fn prepare(
    layout: &Layout,
    loaded: Option<&Loaded>,
    plan: &mut SuitePlan,
) -> anyhow::Result<()> {
    let Some(partition) = plan.partition else {
        return Ok(());
    };
    if partition.mode != PartitionMode::Durations {
        return Ok(());
    }
    let empty = BTreeMap::new();
    let tests = loaded
        .and_then(|l| l.durations.suites.get(&plan.suite.name))
        .unwrap_or(&empty);
    hand_to_plugin(layout, "partition", tests, plan)
}

/// For each suite that runs split (`slices > 1`, decided before: [`crate::plan::decide_splits`])
/// and has recorded durations (`.xtask/durations.json`, else the kept runs, as [`load`]),
/// writes them where the plugin reads them, which then balances the suite's slices by them
/// (`_file_slots` in pytest_plugin.py); a split suite without stays balanced by file size.
/// Nothing here can run a test twice or never (every slice of one run reads the same
/// file), so a durations file that cannot be read, or cannot be written for the plugin, is
/// a warning on stderr and the suite's slices are balanced by size.
pub fn prepare_splits(layout: &Layout, plans: &mut [SuitePlan]) {
    if !plans.iter().any(|plan| plan.slices > 1) {
        return;
    }
    let split: Vec<&str> = plans
        .iter()
        .filter(|plan| plan.slices > 1)
        .map(|plan| plan.suite.name.as_str())
        .collect();
    let durations = match file(layout, None) {
        Some(path) => match Durations::read(&path) {
            Ok(durations) => durations,
            Err(err) => {
                eprintln!("xtask: warning: {err}; split suites are balanced by file size");
                return;
            }
        },
        None => match from_store_for(layout, Some(&split)) {
            Some((durations, _)) => durations,
            None => return,
        },
    };
    for plan in plans.iter_mut().filter(|plan| plan.slices > 1) {
        let Some(tests) = durations
            .suites
            .get(&plan.suite.name)
            .filter(|tests| !tests.is_empty())
        else {
            continue;
        };
        if let Err(err) = hand_to_plugin(layout, "split", tests, plan) {
            eprintln!(
                "xtask: warning: writing suite `{}`'s durations for its slices: {err:#}; they are balanced by file size",
                plan.suite.name
            );
        }
    }
}

/// How a split suite's slices are dealt, for its log: by the durations [`prepare_splits`]
/// gave it, else by size.
pub fn split_dealing(plan: &SuitePlan) -> &'static str {
    let by_durations = plan
        .test
        .env
        .iter()
        .any(|(key, _)| key == PARTITION_DURATIONS_ENV);
    if by_durations {
        "whole test files, balanced by recorded durations"
    } else {
        "whole test files, balanced by size"
    }
}

/// Writes `tests` (node id -> seconds) to the run's work directory and names the file to
/// the plugin in `plan`'s environment.
fn hand_to_plugin(
    layout: &Layout,
    purpose: &str,
    tests: &BTreeMap<String, f64>,
    plan: &mut SuitePlan,
) -> anyhow::Result<()> {
    let path = layout
        .work_dir()
        .join(format!("{purpose}-durations-{}.json", plan.suite.name));
    std::fs::create_dir_all(layout.work_dir())
        .map_err(|err| anyhow::anyhow!("creating {}: {err}", layout.work_dir().display()))?;
    crate::paths::write_atomically(&path, serde_json::to_string(tests)?.as_bytes())?;
    plan.test.env.push((
        PARTITION_DURATIONS_ENV.to_string(),
        path.to_string_lossy().into_owned(),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_durations_file_round_trips_and_bad_ones_name_the_file() {
        let dir = std::env::temp_dir().join(format!("xtask-durations-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("d.json");
        let mut durations = Durations::new();
        durations
            .suites
            .entry("s".into())
            .or_default()
            .insert("tests/test_a.py::test_x".into(), 1.5);
        durations.write(&path).unwrap();
        assert_eq!(Durations::read(&path).unwrap(), durations);

        for bad in [
            "{",
            "[]",
            r#"{"version": 2, "suites": {}}"#,
            r#"{"version": 1, "suites": {"s": {"t": -1}}}"#,
        ] {
            std::fs::write(&path, bad).unwrap();
            let err = Durations::read(&path).unwrap_err().to_string();
            assert!(err.contains(&path.display().to_string()), "{bad}: {err}");
        }
        let missing = dir.join("missing.json");
        let err = Durations::read(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_split_suites_with_recorded_durations_get_them_and_a_bad_file_gets_none() {
        let root =
            std::env::temp_dir().join(format!("xtask-split-durations-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let layout = Layout::new(&root);
        let manifest = crate::manifest::Manifest::for_tests(&[("a", "g"), ("b", "g"), ("c", "g")]);
        let plans = || -> Vec<SuitePlan> {
            let mut plans: Vec<SuitePlan> = manifest
                .suites
                .iter()
                .map(|suite| {
                    crate::plan::plan_run(
                        suite,
                        &layout,
                        Path::new("uv"),
                        &crate::facts::Facts::default(),
                        &crate::plan::RunOptions::default(),
                    )
                })
                .collect();
            // a and b split, c whole.
            plans[0].slices = 2;
            plans[1].slices = 2;
            plans
        };
        let handed = |plans: &[SuitePlan]| -> Vec<&'static str> {
            plans.iter().map(split_dealing).collect()
        };
        let by_size = "whole test files, balanced by size";
        let by_durations = "whole test files, balanced by recorded durations";

        let mut durations = Durations::new();
        for suite in ["a", "c"] {
            durations
                .suites
                .entry(suite.into())
                .or_default()
                .insert("tests/test_x.py::test_y".into(), 0.5);
        }
        durations.write(&root.join(DEFAULT_FILE)).unwrap();
        let mut split = plans();
        prepare_splits(&layout, &mut split);
        // b has no durations; c is not split.
        assert_eq!(handed(&split), [by_durations, by_size, by_size]);
        let file = &split[0]
            .test
            .env
            .iter()
            .find(|(key, _)| key == PARTITION_DURATIONS_ENV)
            .unwrap()
            .1;
        let written: BTreeMap<String, f64> =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert_eq!(written, durations.suites["a"]);

        // A file that cannot be read leaves every slice dealt by size.
        std::fs::write(root.join(DEFAULT_FILE), "{").unwrap();
        let mut split = plans();
        prepare_splits(&layout, &mut split);
        assert_eq!(handed(&split), [by_size, by_size, by_size]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
