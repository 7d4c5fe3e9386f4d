//! The xtask against the commands it replaces: on a copy of this repository, each suite's
//! per-test ids, outcomes and counts (deselected included) through `cargo xtask ci` equal
//! those of the plain `uv run ... pytest` command a person would write for it by hand (the
//! one `cargo xtask bench` times and README.md shows).

mod common;

use std::collections::BTreeSet;

use common::*;
use quick_junit::{NonSuccessKind, Report, TestCaseStatus};
use serde_json::Value;
use xtask::exit_codes;

/// Every test case of a report as (classname, name, status).
fn cases(report: &Report) -> BTreeSet<(String, String, &'static str)> {
    report
        .test_suites
        .iter()
        .flat_map(|s| s.test_cases.iter())
        .map(|case| {
            let status = match &case.status {
                TestCaseStatus::Success { .. } => "passed",
                TestCaseStatus::NonSuccess {
                    kind: NonSuccessKind::Failure,
                    ..
                } => "failed",
                TestCaseStatus::NonSuccess {
                    kind: NonSuccessKind::Error,
                    ..
                } => "error",
                TestCaseStatus::Skipped { .. } => "skipped",
            };
            let classname = case.classname.as_ref().map_or("", |c| c.as_str());
            (classname.to_string(), case.name.to_string(), status)
        })
        .collect()
}

/// pytest's own report, as it writes it: quick-junit cannot read it whole (several status
/// elements, a bare root), so it is normalised the way a consumer sees it.
fn hand_report(path: &std::path::Path) -> Report {
    let xml = std::fs::read_to_string(path).unwrap();
    Report::deserialize_from_str(&xml)
        .unwrap_or_else(|e| panic!("reading pytest's own {}: {e}", path.display()))
}

#[test]
fn each_suite_gives_what_its_hand_written_command_gives() {
    let fixture = Fixture::this_repository("hand");
    // The smoke suites need a running backend (or keys, a broker): no hand-written command
    // of one of them runs alone.
    let run = fixture.run(&["ci", "--exclude", "smoke"]);
    assert_eq!(
        exit_codes::name(run.code),
        "OK",
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let record: Value = serde_json::from_str(&fixture.read("target/xtask/run.json")).unwrap();
    let manifest = xtask::manifest::Manifest::load(&xtask::paths::Layout::new(&fixture.root))
        .expect("the manifest of this repository");
    let junit_dir = fixture.path("hand-junit");
    std::fs::create_dir_all(&junit_dir).unwrap();
    let suites: Vec<_> = manifest
        .suites
        .iter()
        .filter(|s| s.group != xtask::manifest::SMOKE_GROUP)
        .collect();
    assert_eq!(suites.len(), 5);
    for suite in suites {
        let hand = xtask::commands::bench::hand_command(
            suite,
            &fixture.root,
            &uv().to_string_lossy(),
            &junit_dir,
        );
        let output = hand.command().output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{}: the hand-written command failed:\n{stdout}\n{}",
            suite.name,
            String::from_utf8_lossy(&output.stderr)
        );

        let theirs = cases(&hand_report(&junit_dir.join(format!("{}.xml", suite.name))));
        let ours = cases(&read_report(
            &fixture.path(&format!("target/xtask/junit/{}.xml", suite.name)),
        ));
        assert!(!ours.is_empty(), "{}", suite.name);
        assert_eq!(
            ours, theirs,
            "{}: the same tests, ids and outcomes",
            suite.name
        );

        let summary = pytest_summary(&stdout);
        let counts = &record["suites"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == suite.name.as_str())
            .unwrap()["counts"];
        for what in ["passed", "failed", "skipped", "deselected"] {
            assert_eq!(
                counts[what].as_u64().unwrap() as usize,
                count(&summary, what),
                "{}: {what} ({summary:?})",
                suite.name
            );
        }
    }
}
