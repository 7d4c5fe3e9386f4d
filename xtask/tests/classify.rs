//! The classifier's rules, each through the real binary with real uv and pytest on a copy of
//! `tests/fixtures/classify`: a suite ends with the outcome a person would name, from
//! pytest's report, then its exit status, then its output, and its JUnit counts are pytest's.

mod common;

use common::*;
use serde_json::Value;
use xtask::exit_codes;

/// Suite `name` of the newest run.json.
fn suite_of(fixture: &Fixture, name: &str) -> Value {
    suite_record(&record(fixture), name).clone()
}

/// Runs suite `name` alone (with `args` after `--`) and checks how it ended: its outcome in
/// run.json, the exit code, the words of its detail, and its JUnit counts against pytest's
/// own summary line when pytest printed one. Returns the detail.
fn check(
    fixture: &Fixture,
    name: &str,
    args: &[&str],
    outcome: &str,
    code: u8,
    words: &[&str],
) -> String {
    let mut argv = vec!["test", name];
    if !args.is_empty() {
        argv.push("--");
        argv.extend(args);
    }
    let run = fixture.run(&argv);
    assert_code(&run, code);
    let record = suite_of(fixture, name);
    assert_eq!(record["outcome"], outcome, "{record:#}");
    let detail = record["detail"].as_str().unwrap_or_default().to_string();
    for word in words {
        assert!(
            detail.contains(word),
            "{word:?} not in the detail: {detail}"
        );
    }
    let log = fixture.read(record["log"].as_str().unwrap());
    let report = read_report(&fixture.path(&format!("target/xtask/junit/{name}.xml")));
    let suite = common::suite(&report, name);
    // The xtask's own stand-in case (named after the outcome) is not pytest's.
    let pytest_cases: Vec<&quick_junit::TestCase> = suite
        .test_cases
        .iter()
        .filter(|c| c.name.as_str() != outcome || c.classname.as_deref() != Some(name))
        .collect();
    let printed_summary = log
        .lines()
        .any(|l| l.starts_with('=') && l.contains(" in ") && l.trim_end().ends_with('='));
    if printed_summary {
        let summary = pytest_summary(&log);
        let of = |kind: fn(&quick_junit::TestCaseStatus) -> bool| {
            pytest_cases.iter().filter(|c| kind(&c.status)).count()
        };
        use quick_junit::{NonSuccessKind, TestCaseStatus as S};
        let failed = of(|s| {
            matches!(
                s,
                S::NonSuccess {
                    kind: NonSuccessKind::Failure,
                    ..
                }
            )
        });
        let errors = of(|s| {
            matches!(
                s,
                S::NonSuccess {
                    kind: NonSuccessKind::Error,
                    ..
                }
            )
        });
        let passed = of(|s| matches!(s, S::Success { .. }));
        assert_eq!(failed, count(&summary, "failed"), "failed: {summary:?}");
        assert_eq!(errors, count(&summary, "error"), "errors: {summary:?}");
        assert_eq!(passed, count(&summary, "passed"), "passed: {summary:?}");
        if pytest_cases.len() == suite.test_cases.len() {
            // No stand-in: the suite's own totals are pytest's too.
            assert_eq!(suite.failures, failed);
            assert_eq!(suite.errors, errors);
        }
    }
    detail
}

/// Whether suite `name`'s report holds the xtask's stand-in case.
fn has_stand_in(fixture: &Fixture, name: &str, outcome: &str) -> bool {
    common::suite(
        &read_report(&fixture.path(&format!("target/xtask/junit/{name}.xml"))),
        name,
    )
    .test_cases
    .iter()
    .any(|c| c.name.as_str() == outcome && c.classname.as_deref() == Some(name))
}

#[test]
fn a_conftest_lacking_a_third_party_module_is_an_environment_error() {
    let fixture = Fixture::new("classify", "conftest_missing");
    let detail = check(
        &fixture,
        "conftest-missing",
        &[],
        "environment-error",
        exit_codes::ENVIRONMENT_ERROR,
        &[
            "`requests` (suites/conftest_missing/tests/conftest.py imports it)",
            "suite `conftest-missing`",
        ],
    );
    assert!(!detail.contains("after `--`"), "{detail}");
}

#[test]
fn a_conftest_failing_on_own_code_is_a_collection_error() {
    let fixture = Fixture::new("classify", "conftest_own");
    check(
        &fixture,
        "conftest-own",
        &[],
        "collection-error",
        exit_codes::COLLECTION_ERROR,
        &[
            "could not import its conftest.py",
            "suites/conftest_own/tests/conftest.py (ImportError: cannot import name 'helper' from 'ownlib'",
        ],
    );
}

#[test]
fn a_failure_in_the_report_is_a_failure_whatever_pytest_exits_with() {
    let fixture = Fixture::new("classify", "exit0");
    check(
        &fixture,
        "exit0-failure",
        &[],
        "failed",
        exit_codes::TESTS_FAILED,
        &["exited 0", "1 failed", "pytest.exit(returncode=0)"],
    );
    check(
        &fixture,
        "exit0-hook",
        &[],
        "failed",
        exit_codes::TESTS_FAILED,
        &["exited 0", "1 failed"],
    );
    // pytest printed no summary there: the report is the only count, and it is pytest's.
    let suite = suite_of(&fixture, "exit0-hook");
    assert_eq!(suite["counts"]["failed"], 1, "{suite:#}");
    assert_eq!(suite["counts"]["passed"], 1, "{suite:#}");
}

#[test]
fn exit_0_with_a_cut_off_report_is_not_a_pass() {
    let fixture = Fixture::new("classify", "exit0_cut");
    check(
        &fixture,
        "exit0-cut",
        &[],
        "crashed",
        exit_codes::CRASHED,
        &["exited with 0", "cut off", "not a pass"],
    );
}

#[test]
fn a_data_directory_named_like_a_missing_module_is_not_own_code() {
    let fixture = Fixture::new("classify", "yaml_data");
    check(
        &fixture,
        "yaml-data",
        &[],
        "environment-error",
        exit_codes::ENVIRONMENT_ERROR,
        &["`yaml`", "tests/test_config.py", "not a regression"],
    );
    // The report's own collection error explains the outcome: no stand-in case.
    assert!(!has_stand_in(&fixture, "yaml-data", "environment-error"));
}

#[test]
fn own_code_failing_to_import_is_not_hidden_behind_a_missing_package() {
    let fixture = Fixture::new("classify", "mixed");
    let detail = check(
        &fixture,
        "mixed",
        &[],
        "collection-error",
        exit_codes::COLLECTION_ERROR,
        &[
            "suites/mixed/tests/test_b.py (ImportError: cannot import name 'gone' from 'mixedlib'",
            "`yaml` (suites/mixed/tests/test_a.py imports it)",
        ],
    );
    assert!(!detail.contains("not a regression"), "{detail}");
}

#[test]
fn a_bad_marker_expression_is_blamed_on_where_it_came_from() {
    let fixture = Fixture::new("classify", "markers");
    let detail = check(
        &fixture,
        "bad-markers",
        &[],
        "usage-error",
        exit_codes::USAGE_ERROR,
        &["`markers` of suite `bad-markers` in Cargo.toml", "not ("],
    );
    assert!(!detail.contains("after `--`"), "{detail}");
    let detail = check(
        &fixture,
        "plain",
        &["-m", "not ("],
        "usage-error",
        exit_codes::USAGE_ERROR,
        &["the `-m` given after `--`"],
    );
    assert!(!detail.contains("Cargo.toml"), "{detail}");
}

#[test]
fn an_option_that_takes_the_report_away_is_refused_before_anything_runs() {
    let fixture = Fixture::new("classify", "junitxml");
    for args in [
        &["--junitxml=x.xml"][..],
        &["--junit-xml", "x.xml"],
        &["-o", "junit_family=xunit2"],
    ] {
        let mut argv = vec!["test", "plain", "--"];
        argv.extend(args);
        let run = fixture.run(&argv);
        assert_code(&run, exit_codes::USAGE_ERROR);
        assert!(
            run.stderr.contains("the xtask owns pytest's JUnit report"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("target/xtask/junit.xml"),
            "{}",
            run.stderr
        );
        assert!(!fixture.path("suites/plain/x.xml").exists());
        assert!(!fixture.path("target/xtask/envs").exists(), "nothing ran");
    }
}

/// A `bin/pytest` that is gone is found by the environment step, which rebuilds the
/// environment; one that is there but cannot be started (its interpreter is gone) fails
/// at spawn time, and that too is the environment's fault.
#[test]
fn a_pytest_that_cannot_be_started_is_an_environment_error() {
    let fixture = Fixture::new("classify", "no_pytest");
    assert_code(&fixture.run(&["test", "plain"]), exit_codes::OK);
    let env = suite_of(&fixture, "plain")["environment"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let pytest = fixture.path(&env).join("bin/pytest");
    std::fs::remove_file(&pytest).unwrap();
    assert_code(&fixture.run(&["test", "plain"]), exit_codes::OK);
    assert!(pytest.is_file(), "a missing bin/pytest is rebuilt");
    std::fs::write(&pytest, "#!/nonexistent/python3\nimport pytest\n").unwrap();
    check(
        &fixture,
        "plain",
        &[],
        "environment-error",
        exit_codes::ENVIRONMENT_ERROR,
        &[
            "could not start the environment's pytest",
            "bin/pytest",
            "delete it to have it rebuilt",
        ],
    );
}
