//! The run record through the real binary with real uv and pytest: every test of a run,
//! its attempts with real starts, every step and the worker that ran each suite, valid
//! against the generated schema; and `--rerun` chains built on it.

mod common;

use common::*;
use xtask::exit_codes;
use xtask::report::run_record::{RunRecord, SuiteRecord, TestOutcome, TestRecord};

/// The invocation's run.json, through the record's own types.
fn typed_record(fixture: &Fixture) -> RunRecord {
    serde_json::from_str(&fixture.read("target/xtask/run.json"))
        .expect("run.json reads as a RunRecord")
}

fn suite<'a>(record: &'a RunRecord, name: &str) -> &'a SuiteRecord {
    record
        .suites
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("run.json has no suite {name}"))
}

fn test<'a>(suite: &'a SuiteRecord, node_id: &str) -> &'a TestRecord {
    let found: Vec<&TestRecord> = suite
        .tests
        .iter()
        .filter(|t| t.node_id.as_deref() == Some(node_id))
        .collect();
    assert_eq!(found.len(), 1, "{node_id} in {:#?}", suite.tests);
    found[0]
}

/// The 1-based line of `needle` in the fixture's file `rel`.
fn line_of(fixture: &Fixture, rel: &str, needle: &str) -> u64 {
    let text = fixture.read(rel);
    let at = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{rel} has no {needle:?}"));
    at as u64 + 1
}

#[test]
fn the_record_holds_every_test_with_its_attempts_steps_and_worker() {
    let fixture = Fixture::new("record", "record-every-test");
    let run = fixture.run(&["test", "--retries", "1", "--jobs", "2"]);
    assert_code(&run, exit_codes::TESTS_FAILED);
    assert_valid_run_record(&fixture.path("target/xtask/run.json"));
    let record = typed_record(&fixture);
    assert_eq!(record.schema_version, 2);
    assert_eq!(record.jobs, Some(2));
    let run_secs = record.duration_secs.unwrap();
    // What the suites start after: finding uv, git and the environments.
    let end = |offset: f64, duration: f64| offset + duration;

    let mixed = suite(&record, "mixed");
    let file = "suites/mixed/tests/test_mixed.py";
    let expected = [
        ("tests/test_mixed.py::test_passes", TestOutcome::Passed, 1),
        ("tests/test_mixed.py::test_fails", TestOutcome::Failed, 2),
        (
            "tests/test_mixed.py::test_fails_once",
            TestOutcome::Flaky,
            2,
        ),
        ("tests/test_mixed.py::test_skipped", TestOutcome::Skipped, 1),
        ("tests/test_mixed.py::test_errors", TestOutcome::Error, 2),
        ("tests/test_mixed.py::test_param[a]", TestOutcome::Passed, 1),
        ("tests/test_mixed.py::test_param[b]", TestOutcome::Passed, 1),
        (
            "tests/test_mixed.py::TestKind::test_method",
            TestOutcome::Passed,
            1,
        ),
    ];
    assert_eq!(mixed.tests.len(), expected.len(), "{:#?}", mixed.tests);
    for (node_id, outcome, attempts) in expected {
        let t = test(mixed, node_id);
        assert_eq!(t.outcome, outcome, "{t:#?}");
        assert_eq!(t.attempts.len(), attempts, "{t:#?}");
        assert_eq!(t.file.as_deref(), Some(file), "{t:#?}");
        assert!(!t.synthetic);
        let def = node_id.rsplit("::").next().unwrap();
        let def = def.split('[').next().unwrap();
        assert_eq!(
            t.line,
            Some(line_of(&fixture, file, &format!("def {def}("))),
            "{t:#?}"
        );
    }
    assert_eq!(
        test(mixed, "tests/test_mixed.py::test_passes")
            .duration_secs
            .map(|d| d >= 0.05),
        Some(true)
    );
    let fails = test(mixed, "tests/test_mixed.py::test_fails");
    assert!(fails
        .attempts
        .iter()
        .all(|a| a.outcome == TestOutcome::Failed));
    assert!(
        fails.attempts[0]
            .message
            .as_deref()
            .unwrap()
            .contains("one is not two"),
        "{fails:#?}"
    );
    assert!(fails.attempts[0]
        .details
        .as_deref()
        .unwrap()
        .contains("assert 1 == 2"));
    let flaky = test(mixed, "tests/test_mixed.py::test_fails_once");
    assert_eq!(flaky.attempts[0].outcome, TestOutcome::Failed);
    assert_eq!(flaky.attempts[1].outcome, TestOutcome::Passed);
    let errors = test(mixed, "tests/test_mixed.py::test_errors");
    assert!(
        errors.attempts[0]
            .message
            .as_deref()
            .unwrap_or("")
            .contains("the fixture breaks")
            || errors.attempts[0]
                .details
                .as_deref()
                .unwrap_or("")
                .contains("the fixture breaks"),
        "{errors:#?}"
    );
    assert_eq!(
        test(mixed, "tests/test_mixed.py::test_skipped").attempts[0]
            .message
            .as_deref(),
        Some("not today")
    );

    // Real starts: every attempt has one, inside its suite, the first attempts in the
    // order pytest ran them and every retry after them all.
    let suite_end = end(mixed.started_offset_secs, mixed.duration_secs);
    let mut firsts = Vec::new();
    let mut last_first: f64 = 0.0;
    for t in &mixed.tests {
        for (n, attempt) in t.attempts.iter().enumerate() {
            let at = attempt
                .started_offset_secs
                .unwrap_or_else(|| panic!("no start: {t:#?}"));
            assert!(
                at >= mixed.started_offset_secs && at <= suite_end,
                "{at} outside the suite ({} + {}): {t:#?}",
                mixed.started_offset_secs,
                mixed.duration_secs
            );
            if n == 0 {
                firsts.push(at);
                last_first = last_first.max(at);
            }
        }
    }
    assert!(firsts.windows(2).all(|w| w[0] <= w[1]), "{firsts:?}");
    for t in mixed.tests.iter().filter(|t| t.attempts.len() > 1) {
        assert!(
            t.attempts[1].started_offset_secs.unwrap() > last_first,
            "{t:#?}"
        );
    }

    // Every step, in order, each inside the suite and the run.
    let steps: Vec<&str> = mixed.commands.iter().map(|c| c.step.as_str()).collect();
    assert_eq!(steps.last(), Some(&"retry"), "{steps:?}");
    assert!(
        steps.contains(&"environment") && steps.contains(&"pytest"),
        "{steps:?}"
    );
    for pair in mixed.commands.windows(2) {
        assert!(
            pair[0].started_offset_secs <= pair[1].started_offset_secs,
            "{:#?}",
            mixed.commands
        );
    }
    for command in &mixed.commands {
        assert!(
            command.started_offset_secs >= mixed.started_offset_secs
                && end(command.started_offset_secs, command.duration_secs) <= suite_end + 0.01,
            "{command:#?} outside the suite"
        );
    }

    // Both suites ran, each on a lane of the pool, inside the run.
    let calm = suite(&record, "calm");
    assert_eq!(calm.tests.len(), 2);
    assert!(calm.tests.iter().all(|t| t.outcome == TestOutcome::Passed));
    for s in [mixed, calm] {
        assert!(
            s.worker.is_some_and(|w| w < 2),
            "{}: {:?}",
            s.name,
            s.worker
        );
        assert!(s.started_offset_secs >= 0.0);
        assert!(
            end(s.started_offset_secs, s.duration_secs) <= run_secs + 0.5,
            "{}",
            s.name
        );
    }
    assert!(record.services.is_empty());
    assert!(record.rerun_of.is_none());
}

#[test]
fn a_suite_that_did_not_run_has_a_synthetic_test_and_no_worker_lost() {
    let fixture = Fixture::new("record", "record-env-error");
    // An environment that cannot be built: the suite never reaches pytest.
    fixture.edit(
        "Cargo.toml",
        r#"name = "calm"
group = "record"
dir = "suites/calm"
requirements = ["pytest==9.2.0"]"#,
        r#"name = "calm"
group = "record"
dir = "suites/calm"
requirements = ["pytest==9.2.0", "no-such-package-xtask-record==1"]"#,
    );
    let run = fixture.run(&["test", "calm"]);
    assert_code(&run, exit_codes::ENVIRONMENT_ERROR);
    assert_valid_run_record(&fixture.path("target/xtask/run.json"));
    let record = typed_record(&fixture);
    let calm = suite(&record, "calm");
    assert_eq!(calm.tests.len(), 1, "{:#?}", calm.tests);
    let t = &calm.tests[0];
    assert!(t.synthetic && t.node_id.is_none(), "{t:#?}");
    assert_eq!(t.outcome, TestOutcome::Error);
    assert_eq!(t.attempts[0].started_offset_secs, None);
    assert_eq!(calm.worker, Some(0));
    assert_eq!(calm.commands[0].step, "environment");
}
