//! The JUnit's fidelity, through the real binary with real uv and pytest on a copy of
//! `tests/fixtures/fidelity`: every consumer (a strict XML parser, quick-junit, junitparser
//! on lxml) must read the reports as it would read pytest's own, or better. One invocation
//! runs every suite; each test checks one promise in what it wrote.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use common::*;
use quick_junit::{NonSuccessKind, Report, TestCaseStatus};
use serde_json::Value;
use xtask::exit_codes;

struct Ran {
    fixture: Fixture,
    /// What junitparser on lxml read of every JUnit file, by file name.
    consumers: Value,
}

/// The one invocation, on every suite of the fixture.
fn ran() -> &'static Ran {
    static RAN: OnceLock<Ran> = OnceLock::new();
    RAN.get_or_init(|| {
        let fixture = Fixture::new("fidelity", "fidelity");
        let run = fixture.run(&["test", "-j", "2"]);
        // environment-error outranks timeout and failed.
        assert_eq!(
            exit_codes::name(run.code),
            exit_codes::name(exit_codes::ENVIRONMENT_ERROR),
            "exit code {}",
            run.code
        );
        let files = junit_files(&fixture);
        for file in &files {
            strict_xml(file);
            read_report(file);
        }
        let consumers = junit_consumers(&files);
        Ran { fixture, consumers }
    })
}

const SUITES: &[&str] = &[
    "cases",
    "hang",
    "broken-project",
    "broken-file",
    "same-a",
    "same-b",
    "collect",
];

fn junit_files(fixture: &Fixture) -> Vec<PathBuf> {
    let mut files = vec![fixture.path("target/xtask/junit.xml")];
    files.extend(
        SUITES
            .iter()
            .map(|s| fixture.path(&format!("target/xtask/junit/{s}.xml"))),
    );
    files
}

/// The merged report and the suite's own, read by quick-junit.
fn both_reports(suite: &str) -> [(String, Report); 2] {
    let fixture = &ran().fixture;
    [
        ("junit.xml".to_string(), fixture.report()),
        (
            format!("junit/{suite}.xml"),
            read_report(&fixture.path(&format!("target/xtask/junit/{suite}.xml"))),
        ),
    ]
}

/// What junitparser read of `file` (its path ends so), suite `suite`.
fn consumers_suite<'a>(file: &str, suite: &str) -> &'a Value {
    let files = ran().consumers["files"].as_array().unwrap();
    let read = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with(file))
        .unwrap_or_else(|| panic!("junitparser did not read {file}"));
    read["suites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == suite)
        .unwrap_or_else(|| panic!("junitparser found no suite {suite} in {file}"))
}

fn consumers_cases<'a>(file: &str, suite: &str, name: &str) -> Vec<&'a Value> {
    consumers_suite(file, suite)["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name)
        .collect()
}

fn status_message(case: &quick_junit::TestCase) -> (&str, &str) {
    match &case.status {
        TestCaseStatus::NonSuccess {
            message,
            description,
            ..
        } => (
            message.as_ref().map_or("", |m| m.as_str()),
            description.as_ref().map_or("", |d| d.as_str()),
        ),
        other => panic!(
            "{} is not a failure or error: {other:?}",
            case.name.as_str()
        ),
    }
}

#[test]
fn a_failure_then_a_teardown_error_is_one_case_for_every_reader() {
    for (file, report) in both_reports("cases") {
        let suite = suite(&report, "cases");
        let same: Vec<_> = suite
            .test_cases
            .iter()
            .filter(|c| c.name.as_str() == "test_fail_then_teardown")
            .collect();
        assert_eq!(same.len(), 1, "{file}: one case");
        let case = same[0];
        assert!(
            matches!(
                case.status,
                TestCaseStatus::NonSuccess {
                    kind: NonSuccessKind::Error,
                    ..
                }
            ),
            "{file}: the teardown error wins: {:?}",
            case.status
        );
        let (message, details) = status_message(case);
        assert!(message.contains("teardown broke"), "{file}: {message}");
        assert!(
            details.contains("[pytest also reported <failure> for this test: assert 1 == 2]"),
            "{file}: {details}"
        );
        assert!(
            case.system_out
                .as_ref()
                .is_some_and(|o| o.as_str().contains("printed by the failing test")),
            "{file}"
        );
        let theirs = consumers_cases(&file, "cases", "test_fail_then_teardown");
        assert_eq!(theirs.len(), 1, "{file}: junitparser reads one case");
        let results = theirs[0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "{file}: {results:?}");
        assert_eq!(results[0]["kind"], "error", "{file}");
        // test_multiline_message and test_control_characters fail;
        // test_fail_then_teardown errors, once.
        let counts = consumers_suite(&file, "cases");
        assert_eq!(
            (&counts["failures"], &counts["errors"]),
            (&2.into(), &1.into())
        );
    }
}

#[test]
fn no_report_has_a_disabled_attribute_and_each_says_skipped() {
    let fixture = &ran().fixture;
    for file in junit_files(fixture) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("disabled"),
            "{}",
            file.display()
        );
    }
    // The root says it too: the sum of its suites'.
    for file in ran().consumers["files"].as_array().unwrap() {
        assert_eq!(
            file["declared"]["skipped"], file["skipped"],
            "{}",
            file["path"]
        );
    }
    let report = fixture.report();
    assert_eq!(skipped(suite(&report, "cases")), 1);
    assert_eq!(consumers_suite("junit.xml", "cases")["skipped"], 1);
    assert_eq!(
        consumers_suite("junit.xml", "cases")["declared"]["skipped"],
        1
    );
}

#[test]
fn a_multi_line_message_keeps_its_line_break_for_every_reader() {
    for (file, report) in both_reports("cases") {
        let raw =
            std::fs::read_to_string(ran().fixture.path(&format!("target/xtask/{file}"))).unwrap();
        assert!(
            raw.contains("first line&#10;"),
            "{file}: the break is a reference"
        );
        let case = case(suite(&report, "cases"), "test_multiline_message");
        let (message, _) = status_message(case);
        assert!(message.contains("first line\n"), "{file}: {message:?}");
        let theirs = consumers_cases(&file, "cases", "test_multiline_message");
        let message = theirs[0]["results"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("first line\n") && message.contains("second line"),
            "{file}: junitparser read {message:?}"
        );
    }
}

#[test]
fn decorated_tests_point_at_their_def() {
    let fixture = &ran().fixture;
    for (file, report) in both_reports("cases") {
        let suite = suite(&report, "cases");
        for (name, def) in [
            ("test_param[1]", "def test_param(x):"),
            ("test_param[2]", "def test_param(x):"),
            ("test_skipped", "def test_skipped():"),
            ("test_multiline_message", "def test_multiline_message():"),
        ] {
            let case = case(suite, name);
            assert_eq!(
                attr(case, "file"),
                "suites/cases/tests/test_cases.py",
                "{file}"
            );
            assert_eq!(line_at(fixture, case), def, "{file}: {name}");
        }
    }
}

#[test]
fn a_timeout_names_the_running_test_and_points_at_it() {
    let fixture = &ran().fixture;
    for (file, report) in both_reports("hang") {
        let case = case(suite(&report, "hang"), "timeout");
        let (message, _) = status_message(case);
        assert!(
            message.contains("while running tests/test_hang.py::test_hangs[1]"),
            "{file}: {message}"
        );
        assert_eq!(
            attr(case, "file"),
            "suites/hang/tests/test_hang.py",
            "{file}"
        );
        assert_eq!(line_at(fixture, case), "def test_hangs(n):", "{file}");
        let theirs = consumers_cases(&file, "hang", "timeout");
        assert_eq!(theirs[0]["file"], "suites/hang/tests/test_hang.py");
    }
    let record: Value = serde_json::from_str(&fixture.read("target/xtask/run.json")).unwrap();
    let hang = record["suites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "hang")
        .unwrap();
    assert_eq!(hang["outcome"], "timeout");
    assert!(
        hang["detail"]
            .as_str()
            .unwrap()
            .contains("while running tests/test_hang.py::test_hangs[1]"),
        "{hang:#}"
    );
}

#[test]
fn an_environment_error_points_at_the_file_that_defines_the_environment() {
    for (suite_name, outcome, expected) in [
        (
            "broken-project",
            "environment-error",
            "suites/broken_project/pyproject.toml",
        ),
        (
            "broken-file",
            "environment-error",
            "suites/broken_file/requirements.txt",
        ),
    ] {
        for (file, report) in both_reports(suite_name) {
            let case = case(suite(&report, suite_name), outcome);
            assert_eq!(attr(case, "file"), expected, "{file}");
            assert!(case.extra.get("line").is_none(), "{file}");
        }
    }
    // Every case of every report has a file.
    for suite in &ran().fixture.report().test_suites {
        for case in &suite.test_cases {
            attr(case, "file");
        }
    }
}

#[test]
fn suites_with_the_same_test_module_do_not_collide_in_the_merged_report() {
    let report = ran().fixture.report();
    let mut seen = std::collections::BTreeSet::new();
    for suite in &report.test_suites {
        for case in &suite.test_cases {
            let id = (
                case.classname.as_ref().unwrap().as_str().to_string(),
                case.name.as_str().to_string(),
            );
            assert!(seen.insert(id.clone()), "junit.xml: {id:?} twice");
        }
    }
    for name in ["same-a", "same-b"] {
        let merged = case(suite(&report, name), "test_it");
        assert_eq!(
            merged.classname.as_ref().unwrap().as_str(),
            format!("{name}.tests.test_same")
        );
        let theirs = consumers_cases("junit.xml", name, "test_it");
        assert_eq!(theirs[0]["classname"], format!("{name}.tests.test_same"));
        // The suite's own file keeps pytest's classname.
        let own = read_report(
            &ran()
                .fixture
                .path(&format!("target/xtask/junit/{name}.xml")),
        );
        let own = case(suite(&own, name), "test_it");
        assert_eq!(own.classname.as_ref().unwrap().as_str(), "tests.test_same");
    }
}

#[test]
fn control_characters_are_never_raw_and_pytests_escapes_stay_text() {
    let fixture = &ran().fixture;
    for file in junit_files(fixture) {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for needle in ["\x07", "\x00", "&#7;", "&#0;"] {
            assert!(
                !text.contains(needle),
                "{}: {needle:?} is in it",
                file.display()
            );
        }
    }
    // pytest wrote BEL and NUL as `#x07` and `#x00`, and the test's own `#x07` as itself:
    // its XML cannot tell them apart, so nothing is deleted. The tab is the spaces a
    // terminal shows (to column 40), never deleted (quick-junit deletes tabs).
    for (file, report) in both_reports("cases") {
        let case = case(suite(&report, "cases"), "test_control_characters");
        let out = case.system_out.as_ref().unwrap().as_str();
        assert!(
            out.contains("bell:#x07 nul:#x00 end literal:#x07     tab:after"),
            "{file}: {out:?}"
        );
    }
}

#[test]
fn a_collection_error_points_at_the_line_its_traceback_names() {
    let fixture = &ran().fixture;
    for (file, report) in both_reports("collect") {
        for (name, source, line) in [
            (
                "tests.test_raises",
                "raise RuntimeError(\"broken at import\")",
                "4",
            ),
            ("tests.test_syntax", "def broken(:", "5"),
        ] {
            let case = case(suite(&report, "collect"), name);
            let (message, _) = status_message(case);
            assert_eq!(message, "collection failure", "{file}: {name}");
            let module = format!("suites/collect/{}.py", name.replace('.', "/"));
            assert_eq!(attr(case, "file"), module, "{file}: {name}");
            assert_eq!(line_at(fixture, case), source, "{file}: {name}");
            let theirs = consumers_cases(&file, "collect", name);
            assert_eq!(theirs[0]["line"], line, "{file}: {name}");
        }
    }
}
