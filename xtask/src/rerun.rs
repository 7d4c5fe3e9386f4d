//! `--rerun [latest|RUN_ID|PATH]`: what of an earlier run to run again, read from its
//! record, and how the chain stands afterwards.
//!
//! Each suite of the source run, by how it ended:
//! - `failed`: its tests that failed or errored, and the tests added since: the suite runs
//!   in its own environment as usual, and the xtask's pytest plugin deselects the tests the
//!   source run recorded as passed or skipped (`DESELECT_ENV`). A test added since is one
//!   the record does not name, so it runs; a failed test whose node id pytest no longer
//!   collects is reported.
//! - any outcome that means it did not run to its end (an environment error, a timeout, an
//!   interrupt, a service error, a crash, a collection error...): the whole suite.
//! - `passed` or `no-tests`: nothing, unless one of its Python or pytest configuration files
//!   changed since the source run started (by modification time), which may have added
//!   tests: then it runs with what passed deselected, so only those tests run. That check
//!   costs one walk of its test paths and no pytest process; a test generated from a data
//!   file that changed is not seen by it.
//!
//! A suite the manifest no longer has is reported, never dropped silently.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::manifest::{Manifest, Suite};
use crate::model::{CaseStatus, SuiteResult};
use crate::paths::Layout;
use crate::report::run_record::{RerunOf, RunRecord, SuiteRecord, TestOutcome};

/// The variable naming the file of node ids the plugin deselects.
pub const DESELECT_ENV: &str = "XTASK_RERUN_DESELECT";

/// What to run again of one suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// It did not run to its end (`outcome`): all of it.
    Whole { outcome: String },
    /// All but `done` (its tests that passed or were skipped): its `failing` tests and any
    /// added since.
    AllBut {
        done: Vec<String>,
        failing: Vec<String>,
    },
}

/// A rerun, planned from its source's record.
#[derive(Clone, Debug)]
pub struct Rerun {
    pub source: RerunOf,
    /// The suites to run again, in the source's order.
    pub suites: Vec<(String, What)>,
    /// Every test node id the source recorded, by suite: what is new is not among them.
    pub known: HashMap<String, HashSet<String>>,
}

/// The run.json `spec` names (`latest`, a run id, a run.json or its directory, an archive:
/// as for `trace` and `replay`, through `run_archive::find_record`), resolved: `latest` leads to another
/// run tomorrow, and the rerun's record names the run's own directory.
pub fn find(layout: &Layout, spec: &str) -> Result<PathBuf, Error> {
    let path = crate::run_archive::find_record(layout, spec)
        .and_then(|path| {
            if path.is_file() {
                Ok(path)
            } else {
                Err(Error::Usage(format!(
                    "there is no run record at {}",
                    path.display()
                )))
            }
        })
        .map_err(|err| Error::Usage(format!("--rerun {spec}: {err}")))?;
    Ok(std::fs::canonicalize(&path).unwrap_or(path))
}

/// Reads the record at `path` through its types (`run_record::load`): a run that finished.
pub fn read(path: &Path) -> Result<RunRecord, Error> {
    let record = crate::report::run_record::load(path)
        .map_err(|err| Error::Usage(format!("--rerun: {err}")))?;
    if record.status == crate::report::run_record::Status::Running {
        return Err(Error::Usage(format!(
            "--rerun: the run {} is still running, or was killed before it ended ({} says `running`); rerun a run that finished",
            record.run_id,
            path.display()
        )));
    }
    Ok(record)
}

/// The records of a rerun chain, oldest first, ending with `newest` (read from `path`):
/// each rerun's record names its source, followed while its run.json is still there.
pub fn chain(newest: RunRecord, path: &Path) -> Vec<(PathBuf, RunRecord)> {
    let mut chain = vec![(path.to_path_buf(), newest)];
    while chain.len() < MAX_CHAIN {
        let Some(of) = chain.last().and_then(|(_, r)| r.rerun_of.clone()) else {
            break;
        };
        if chain.iter().any(|(_, r)| r.run_id == of.run_id) {
            break;
        }
        match read(&of.path) {
            Ok(record) => chain.push((of.path, record)),
            // Pruned or moved: what it knew reruns again, never less.
            Err(_) => break,
        }
    }
    chain.reverse();
    chain
}

/// How far back a chain is followed.
const MAX_CHAIN: usize = 100;

/// What a chain of records says of one suite: how it ended last, when that run started,
/// and which of its tests passed and failed at their last run.
struct Known<'a> {
    last: &'a SuiteRecord,
    since: &'a str,
    done: Vec<String>,
    failing: Vec<String>,
    /// A failure with no node id in its last run.
    unnamed_failure: bool,
    seen: HashSet<String>,
}

/// What of the `chain`'s suites (oldest record first) to run again with `manifest`;
/// `changed(suite, since)` says whether a suite's test files changed since its last run
/// started. Writes the notes a person needs (a suite no longer in the manifest) to `notes`.
pub fn plan(
    chain: &[(PathBuf, RunRecord)],
    manifest: &Manifest,
    changed: &dyn Fn(&Suite, &str) -> bool,
    notes: &mut Vec<String>,
) -> Rerun {
    let mut known: Vec<(String, Known)> = Vec::new();
    for (_, record) in chain {
        let gone: HashSet<&str> = record
            .rerun_of
            .iter()
            .flat_map(|of| of.gone.iter().map(String::as_str))
            .collect();
        for suite in &record.suites {
            let at = match known.iter().position(|(n, _)| *n == suite.name) {
                Some(at) => at,
                None => {
                    known.push((
                        suite.name.clone(),
                        Known {
                            last: suite,
                            since: &record.started_at,
                            done: Vec::new(),
                            failing: Vec::new(),
                            unnamed_failure: false,
                            seen: HashSet::new(),
                        },
                    ));
                    known.len() - 1
                }
            };
            let k = &mut known[at].1;
            k.last = suite;
            k.since = &record.started_at;
            k.unnamed_failure = false;
            k.failing
                .retain(|id| !gone.contains(format!("{}: {id}", suite.name).as_str()));
            for t in &suite.tests {
                let failed = matches!(t.outcome, TestOutcome::Failed | TestOutcome::Error);
                let Some(id) = &t.node_id else {
                    k.unnamed_failure |= failed && !t.synthetic;
                    continue;
                };
                k.seen.insert(id.clone());
                k.done.retain(|d| d != id);
                k.failing.retain(|f| f != id);
                if failed {
                    k.failing.push(id.clone());
                } else {
                    k.done.push(id.clone());
                }
            }
        }
    }
    let mut suites = Vec::new();
    let mut removed = Vec::new();
    for (name, k) in &known {
        let what = match k.last.outcome.as_str() {
            "passed" | "no-tests" => None,
            "failed" if !k.unnamed_failure && !k.failing.is_empty() => Some(What::AllBut {
                done: k.done.clone(),
                failing: k.failing.clone(),
            }),
            other => Some(What::Whole {
                outcome: other.to_string(),
            }),
        };
        let Some(suite) = manifest.suites.iter().find(|s| s.name == *name) else {
            if let Some(what) = what {
                removed.push(name.clone());
                notes.push(format!(
                    "suite `{name}` ({}) is no longer in the manifest: not rerun",
                    describe(&what),
                ));
            }
            continue;
        };
        match what {
            Some(what) => suites.push((name.clone(), what)),
            None if changed(suite, k.since) => {
                notes.push(format!(
                    "suite `{name}` passed, but its test files changed since: its tests added since run"
                ));
                suites.push((
                    name.clone(),
                    What::AllBut {
                        done: k.done.clone(),
                        failing: Vec::new(),
                    },
                ))
            }
            None => {}
        }
    }
    let (path, newest) = chain.last().expect("a chain has its newest record");
    Rerun {
        source: RerunOf {
            run_id: newest.run_id.clone(),
            path: path.clone(),
            removed_suites: removed,
            ..RerunOf::default()
        },
        suites,
        known: known.into_iter().map(|(n, k)| (n, k.seen)).collect(),
    }
}

fn describe(what: &What) -> String {
    match what {
        What::Whole { outcome } => format!("it ended {outcome}"),
        What::AllBut { failing, .. } => format!("{} failing test(s)", failing.len()),
    }
}

/// Whether a Python or pytest configuration file of `suite` (in its directory, or below
/// its test paths) was modified at or after `since`.
pub fn changed_since(root: &Path, suite: &Suite, since: &str) -> bool {
    let since = chrono::DateTime::parse_from_rfc3339(since)
        .map(std::time::SystemTime::from)
        .unwrap_or(std::time::UNIX_EPOCH);
    let dir = root.join(&suite.dir);
    let relevant = |path: &Path| {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name.ends_with(".py")
            || matches!(
                name,
                "pytest.ini" | "pyproject.toml" | "setup.cfg" | "tox.ini"
            )
    };
    let newer = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|m| m >= since)
    };
    // The suite's own directory, not below it: conftest.py, pytest's configuration.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() && relevant(&path) && newer(&path) {
                return true;
            }
        }
    }
    let mut todo: Vec<PathBuf> = if suite.paths.is_empty() {
        vec![dir.clone()]
    } else {
        suite.paths.iter().map(|p| dir.join(p)).collect()
    };
    while let Some(path) = todo.pop() {
        if path.is_file() {
            if relevant(&path) && newer(&path) {
                return true;
            }
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == "__pycache__" || name == "target" {
                continue;
            }
            todo.push(entry.path());
        }
    }
    false
}

/// How the chain stands after the rerun: what became of the failing tests of the source,
/// and of the suites that did not run to their end; `lines` to print.
pub fn outcome(rerun: &Rerun, ran: &[(&str, &SuiteResult)], lines: &mut Vec<String>) -> RerunOf {
    let mut of = rerun.source.clone();
    for (name, what) in &rerun.suites {
        let Some((_, result)) = ran.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let now: HashMap<&str, CaseStatus> = result
            .cases
            .iter()
            .filter_map(|c| Some((c.node_id.as_deref()?, c.status())))
            .collect();
        let known = rerun.known.get(name);
        of.new_tests += now
            .keys()
            .filter(|id| known.is_none_or(|k| !k.contains(**id)))
            .count();
        match what {
            What::Whole { outcome } => {
                of.whole_suites += 1;
                if matches!(
                    result.outcome,
                    crate::outcome::Outcome::Passed | crate::outcome::Outcome::Failed
                ) {
                    of.whole_suites_ran += 1;
                } else {
                    lines.push(format!(
                        "suite `{name}` ended {} again (it ended {outcome} in {})",
                        result.outcome.name(),
                        rerun.source.run_id
                    ));
                }
            }
            What::AllBut { failing, .. } => {
                // Whether pytest ran to its end: only then is a test it did not run gone.
                let finished = matches!(
                    result.outcome,
                    crate::outcome::Outcome::Passed
                        | crate::outcome::Outcome::Failed
                        | crate::outcome::Outcome::NoTests
                );
                for id in failing {
                    of.failing += 1;
                    match now.get(id.as_str()) {
                        Some(CaseStatus::Passed | CaseStatus::Skipped) => of.now_pass += 1,
                        Some(CaseStatus::Failed | CaseStatus::Error) => of.still_fail += 1,
                        None if finished => {
                            lines.push(format!(
                                "`{id}` of suite `{name}` failed in {} and no longer exists: pytest did not collect it",
                                rerun.source.run_id
                            ));
                            of.gone.push(format!("{name}: {id}"));
                        }
                        None => of.not_run += 1,
                    }
                }
            }
        }
    }
    lines.push(summary(&of));
    of
}

/// "3 of 5 failing tests now pass; 2 still fail", and the rest of how the chain stands.
pub fn summary(of: &RerunOf) -> String {
    let mut parts = Vec::new();
    if of.failing > 0 {
        parts.push(format!(
            "{} of {} failing test(s) now pass; {} still fail",
            of.now_pass, of.failing, of.still_fail
        ));
    }
    if !of.gone.is_empty() {
        parts.push(format!("{} no longer exist", of.gone.len()));
    }
    if of.not_run > 0 {
        parts.push(format!("{} did not run", of.not_run));
    }
    if of.whole_suites > 0 {
        parts.push(format!(
            "{} of {} suite(s) that did not run to their end now did",
            of.whole_suites_ran, of.whole_suites
        ));
    }
    if of.new_tests > 0 {
        parts.push(format!("{} test(s) added since ran", of.new_tests));
    }
    if !of.removed_suites.is_empty() {
        parts.push(format!(
            "{} suite(s) no longer in the manifest",
            of.removed_suites.len()
        ));
    }
    if parts.is_empty() {
        parts.push("nothing failing was left to run".to_string());
    }
    format!("rerun of {}: {}", of.run_id, parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A finished record of `suites`: (name, outcome, [(node id, outcome)]).
    type Suites<'a> = [(&'a str, &'a str, &'a [(&'a str, &'a str)])];

    fn record(id: &str, of: Option<&str>, suites: &Suites<'_>) -> RunRecord {
        let suites: Vec<_> = suites
            .iter()
            .map(|(name, outcome, tests)| {
                json!({
                    "name": name, "group": "g", "dir": ".", "outcome": outcome,
                    "counts": {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "deselected": 0, "flaky": 0},
                    "started_at": "2026-12-06T00:00:00+00:00", "started_offset_secs": 0.0,
                    "duration_secs": 1.0, "timeout_secs": 60,
                    "environment": {"path": "e", "key": "k"}, "cwd": "/r", "env": {},
                    "env_removed": [], "commands": [], "log": "l", "junit": "j",
                    "tests": tests.iter().map(|(id, outcome)| json!({
                        "node_id": id, "classname": "c", "name": id, "outcome": outcome,
                        "synthetic": false,
                        "attempts": [{"outcome": outcome}],
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::from_value(json!({
            "schema_version": 4, "xtask_version": "0", "invocation": [], "run_id": id,
            "started_at": "2026-12-06T00:00:00+00:00", "root": "/r", "status": "finished",
            "pid": 1, "outcome": "failed", "suites": suites, "services": [],
            "rerun_of": of.map(|of| json!({"run_id": of, "path": of, "failing": 0, "now_pass": 0,
                "still_fail": 0, "not_run": 0, "gone": [], "whole_suites": 0,
                "whole_suites_ran": 0, "new_tests": 0, "removed_suites": []})),
        }))
        .unwrap()
    }

    #[test]
    fn each_suite_reruns_by_how_it_ended_across_the_chain() {
        let manifest = Manifest::for_tests(&[("a", "g"), ("b", "g"), ("c", "g"), ("d", "g")]);
        let first = record(
            "1",
            None,
            &[
                (
                    "a",
                    "failed",
                    &[("t::x", "failed"), ("t::y", "passed"), ("t::z", "error")],
                ),
                ("b", "timeout", &[]),
                ("c", "passed", &[("t::p", "passed")]),
                ("gone", "failed", &[("t::q", "failed")]),
            ],
        );
        let chain = vec![(PathBuf::from("1"), first.clone())];
        let mut notes = Vec::new();
        let unchanged = |_: &Suite, _: &str| false;
        let rerun = plan(&chain, &manifest, &unchanged, &mut notes);
        assert_eq!(
            rerun.suites,
            [
                (
                    "a".to_string(),
                    What::AllBut {
                        done: vec!["t::y".into()],
                        failing: vec!["t::x".into(), "t::z".into()]
                    }
                ),
                (
                    "b".to_string(),
                    What::Whole {
                        outcome: "timeout".into()
                    }
                ),
            ]
        );
        assert_eq!(rerun.source.removed_suites, ["gone"]);
        assert_eq!(
            notes,
            ["suite `gone` (1 failing test(s)) is no longer in the manifest: not rerun"]
        );
        // A passed suite whose files changed runs what it does not know.
        let changed = |s: &Suite, _: &str| s.name == "c";
        let rerun = plan(&chain, &manifest, &changed, &mut Vec::new());
        assert!(rerun.suites.contains(&(
            "c".to_string(),
            What::AllBut {
                done: vec!["t::p".into()],
                failing: vec![]
            }
        )));

        // The rerun ran `a`'s two failures: x passed, z still errors. The next link reruns
        // z alone and knows y and x passed.
        let second = record(
            "2",
            Some("1"),
            &[
                ("a", "failed", &[("t::x", "passed"), ("t::z", "error")]),
                ("b", "passed", &[("t::b", "passed")]),
            ],
        );
        let chain = vec![(PathBuf::from("1"), first), (PathBuf::from("2"), second)];
        let rerun = plan(&chain, &manifest, &unchanged, &mut Vec::new());
        assert_eq!(
            rerun.suites,
            [(
                "a".to_string(),
                What::AllBut {
                    done: vec!["t::y".into(), "t::x".into()],
                    failing: vec!["t::z".into()]
                }
            )]
        );
        assert_eq!(rerun.source.run_id, "2");
    }
}
