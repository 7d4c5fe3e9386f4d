//! One situation per test, each a suite of `tests/fixtures/situations` run through the real
//! binary with real uv and pytest: the environment cannot be made, the tests fail or cannot
//! be collected, the process hangs, aborts, floods its output, prints control characters
//! or secrets, or is interrupted. Each test checks the outcome, the exit code by its
//! constant's name, the JUnit content, the log and the run record (`run.json`), and has
//! every JUnit file read by a strict XML parser, by quick-junit and by junitparser on lxml
//! (`tests/junit_consumers.py`), which must all agree with each other and with `run.json`.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::Value;
use xtask::exit_codes;

/// lxml (and so junitparser) refuses a text node longer than this.
const LXML_MAX_TEXT: usize = 10_000_000;

/// What the tests print, and what must never be seen outside the test process.
const API_KEY: &str = "sk-live-123";
const DSN: &str = "dsn-value-9876";
const URL_PASSWORD: &str = "hunter2pass";

// ------------------------------------------------------------------------------------
// The environment cannot be made
// ------------------------------------------------------------------------------------

#[test]
fn an_extra_without_pytest_is_an_environment_error() {
    let s = Situation::run("no-pytest", "no_pytest");
    s.assert_outcome("environment-error", exit_codes::ENVIRONMENT_ERROR);
    s.assert_steps(&["environment"]);
    let record = s.suite_record();
    assert_ne!(s.step("environment")["exit_code"], 0, "{record:#}");

    let log = s.log();
    assert!(log.contains("No module named 'pytest'"), "{log}");
    let (_, text) = s.synthetic_case("environment-error");
    assert!(text.contains("No module named 'pytest'"), "{text}");
}

#[test]
fn an_unresolvable_requirement_is_an_environment_error() {
    // uv resolves against an empty local directory instead of the package index, offline:
    // the answer "no such package" needs no network, and cannot be a network error instead.
    let fixture = Fixture::new("situations", "unresolvable");
    let no_packages = fixture.path("suites/unresolvable/tests");
    let mut command = fixture.command(&["test", "unresolvable"]);
    command
        .env("UV_OFFLINE", "1")
        .env("UV_NO_INDEX", "1")
        .env("UV_FIND_LINKS", &no_packages);
    let s = Situation::from_command(fixture, "unresolvable", command);
    s.assert_outcome("environment-error", exit_codes::ENVIRONMENT_ERROR);
    s.assert_steps(&["environment"]);

    // uv's own explanation, in the log and in the report a CI reporter shows.
    let log = s.log();
    assert!(log.contains("No solution found"), "{log}");
    assert!(log.contains("xtask-situations-no-such-package"), "{log}");
    let (_, text) = s.synthetic_case("environment-error");
    assert!(text.contains("xtask-situations-no-such-package"), "{text}");
}

#[test]
fn a_hatchling_build_failure_is_an_environment_error() {
    let s = Situation::run("unbuildable", "unbuildable");
    s.assert_outcome("environment-error", exit_codes::ENVIRONMENT_ERROR);
    s.assert_steps(&["environment"]);

    let hatchling = "Unable to determine which files to ship inside the wheel";
    let log = s.log();
    assert!(log.contains(hatchling), "{log}");
    let (_, text) = s.synthetic_case("environment-error");
    assert!(text.contains(hatchling), "{text}");
}

#[test]
fn a_missing_third_party_module_is_an_environment_error_naming_it() {
    let s = Situation::run("missing-module", "missing_module");
    s.assert_outcome("environment-error", exit_codes::ENVIRONMENT_ERROR);
    s.assert_steps(&["environment", "pytest"]);

    let detail = s.detail();
    assert!(
        detail.contains("yaml"),
        "the detail names the module: {detail}"
    );
    assert!(
        detail.contains("missing-module"),
        "the detail names the suite: {detail}"
    );
    // pytest's own collection error explains the outcome: no stand-in case is added, so
    // the report's counts stay pytest's.
    let report = s.suite_report();
    let cases = &suite(&report, &s.suite).test_cases;
    assert!(
        cases.iter().all(|c| c.name.as_str() != "environment-error"),
        "{cases:?}"
    );
    assert!(cases.iter().any(|c| matches!(
        &c.status,
        TestCaseStatus::NonSuccess { description: Some(d), .. } if d.contains("No module named 'yaml'")
    )));
    let log = s.log();
    assert!(log.contains("No module named 'yaml'"), "{log}");
}

#[test]
fn a_missing_prerequisite_runs_nothing() {
    let fixture = Fixture::new("situations", "prereq");
    // --require-all: without it the suite is reported (skipped) and the run exits 0.
    let mut command = fixture.command(&["test", "prereq", "--require-all"]);
    command.env_remove("XTASK_SMOKE_TOKEN");
    let s = Situation::from_command(fixture, "prereq", command);
    s.assert_outcome(
        "prerequisite-unavailable",
        exit_codes::PREREQUISITE_UNAVAILABLE,
    );
    s.assert_steps(&[]);

    let detail = s.detail();
    assert!(detail.contains("XTASK_SMOKE_TOKEN"), "{detail}");
    let (message, _) = s.synthetic_case("prerequisite-unavailable");
    assert_eq!(message, detail);
    assert!(!s.fixture.path("suites/prereq/ran.marker").exists());
}

// ------------------------------------------------------------------------------------
// The tests run, or cannot be collected
// ------------------------------------------------------------------------------------

#[test]
fn an_import_error_in_the_repositorys_own_code_is_a_collection_error() {
    let s = Situation::run("own-collection-error", "own_collection_error");
    s.assert_outcome("collection-error", exit_codes::COLLECTION_ERROR);
    s.assert_steps(&["environment", "pytest"]);
    assert_eq!(s.step("pytest")["exit_code"], 2);

    let report = s.suite_report();
    let suite = &report.test_suites[0];
    let broken = suite
        .test_cases
        .iter()
        .find(|c| {
            matches!(&c.status, TestCaseStatus::NonSuccess { kind: NonSuccessKind::Error, description: Some(d), .. }
                if d.contains("cannot import name 'name_that_does_not_exist'"))
        })
        .unwrap_or_else(|| panic!("no error case for the broken import: {suite:#?}"));
    assert_eq!(
        attr(broken, "file"),
        "suites/own_collection_error/tests/test_broken_import.py"
    );
    assert!(s.log().contains("ImportError"));
}

#[test]
fn a_failing_assertion_fails_the_suite_at_the_tests_line() {
    let s = Situation::run("failing", "failing");
    s.assert_outcome("failed", exit_codes::TESTS_FAILED);
    s.assert_steps(&["environment", "pytest"]);
    assert_eq!(s.step("pytest")["exit_code"], 1);
    assert_eq!(
        s.suite_record()["counts"],
        serde_json::json!({ "tests": 2, "passed": 1, "failed": 1, "errors": 0, "skipped": 0, "deselected": 0, "flaky": 0 })
    );

    let report = s.suite_report();
    let suite = suite(&report, "failing");
    assert!(matches!(
        case(suite, "test_passes").status,
        TestCaseStatus::Success { .. }
    ));
    let failed = case(suite, "test_fails");
    let TestCaseStatus::NonSuccess {
        kind: NonSuccessKind::Failure,
        message,
        description,
        ..
    } = &failed.status
    else {
        panic!("expected a failure: {:?}", failed.status)
    };
    assert!(message.as_ref().unwrap().contains("assert 42 == 41"));
    assert!(description.as_ref().unwrap().contains("test_failing.py"));
    assert_eq!(attr(failed, "file"), "suites/failing/tests/test_failing.py");
    assert_eq!(line_at(&s.fixture, failed), "def test_fails():");
    assert!(failed
        .system_out
        .as_ref()
        .unwrap()
        .contains("output of the failing test"));

    let summary = pytest_summary(&s.log());
    assert_eq!(
        (count(&summary, "passed"), count(&summary, "failed")),
        (1, 1)
    );
}

#[test]
fn collecting_nothing_is_no_tests() {
    let s = Situation::run("no-tests", "no_tests");
    s.assert_outcome("no-tests", exit_codes::NO_TESTS_COLLECTED);
    s.assert_steps(&["environment", "pytest"]);
    assert_eq!(s.step("pytest")["exit_code"], 5);
    let (message, text) = s.synthetic_case("no-tests");
    assert_eq!(message, s.detail());
    assert!(text.contains("collected 0 items"), "{text}");
    assert!(s.log().contains("no tests ran"));
}

#[test]
fn fifty_megabytes_of_output_stay_in_the_log_and_are_cut_in_the_report() {
    let s = Situation::run("big-output", "big_output");
    s.assert_outcome("failed", exit_codes::TESTS_FAILED);

    let log = std::fs::read(s.fixture.path("target/xtask/logs/big-output.log")).unwrap();
    assert!(log.len() >= 50 << 20, "the log has {} bytes", log.len());
    let log = String::from_utf8_lossy(&log);
    for line in [
        "big 0000000 x",
        "big 0262143 x",
        "big 0524287 x",
        "big: the end",
    ] {
        assert!(log.contains(line), "the log lacks {line:?}");
    }
    drop(log);

    for file in s.junit_files() {
        assert!(
            std::fs::metadata(&file).unwrap().len() < 10 << 20,
            "{} is not cut",
            file.display()
        );
        let report = read_report(&file);
        let big = case(suite(&report, "big-output"), "test_prints_50_mb");
        let out = big
            .system_out
            .as_ref()
            .expect("the captured output")
            .as_str();
        assert!(out.len() < LXML_MAX_TEXT / 4, "{} bytes", out.len());
        assert!(
            out.contains("bytes cut here to keep this report readable"),
            "{}",
            &out[..200]
        );
        assert!(
            out.starts_with("--------------------------------- Captured Out"),
            "{}",
            &out[..200]
        );
        assert!(out.contains("big: the end"));
    }
    for file in s.consumers["files"].as_array().unwrap() {
        let longest = file["longest_text_bytes"].as_u64().unwrap() as usize;
        assert!(longest < LXML_MAX_TEXT, "{longest}");
    }
}

#[test]
fn ansi_escapes_control_characters_and_invalid_utf8_leave_valid_xml() {
    let s = Situation::run("ansi", "ansi");
    s.assert_outcome("failed", exit_codes::TESTS_FAILED);

    let report = s.suite_report();
    let nasty = case(suite(&report, "ansi"), "test_prints_nasty_text");
    let TestCaseStatus::NonSuccess {
        message,
        description,
        ..
    } = &nasty.status
    else {
        panic!("expected a failure: {:?}", nasty.status)
    };
    let message = message.as_ref().unwrap().as_str();
    assert!(message.contains("ansi message:") && message.contains("red"));
    assert!(message.contains("end"), "{message:?}");
    assert!(description.as_ref().unwrap().contains("AssertionError"));
    let out = nasty.system_out.as_ref().unwrap().as_str();
    assert!(out.contains("ansi stdout:") && out.contains("ansi invalid utf-8:"));
    assert!(nasty.system_err.as_ref().unwrap().contains("ansi stderr:"));
    // The log keeps the bytes as printed.
    let log = std::fs::read(s.fixture.path("target/xtask/logs/ansi.log")).unwrap();
    assert!(contains(&log, b"\x1b[31mred\x1b[0m"));
}

#[test]
fn a_secret_from_the_environment_is_masked_everywhere() {
    let fixture = Fixture::new("situations", "secret");
    let mut command = fixture.command(&["test", "secret"]);
    command
        .env("OPENAI_API_KEY", API_KEY)
        .env("SITUATIONS_DSN", DSN);
    let s = Situation::from_command(fixture, "secret", command);
    s.assert_outcome("failed", exit_codes::TESTS_FAILED);

    for secret in [API_KEY, DSN, URL_PASSWORD] {
        assert!(!s.run.stdout.contains(secret), "{secret} on stdout");
        assert!(!s.run.stderr.contains(secret), "{secret} on stderr");
        for file in files_below(&s.fixture.path("target/xtask")) {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "{secret} in {}",
                file.display()
            );
        }
    }

    // The test saw the real key (it failed on its assertion, not on a KeyError), and
    // every place shows the mask instead.
    let log = s.log();
    for masked in [
        "secret stdout: key=*** dsn=***",
        "secret stderr: key=***",
        "secret message: the key is ***",
        "secret url: http://example.com/x",
    ] {
        assert!(log.contains(masked), "the log lacks {masked:?}:\n{log}");
    }
    let report = s.suite_report();
    let case = case(suite(&report, "secret"), "test_prints_secrets");
    let TestCaseStatus::NonSuccess { message, .. } = &case.status else {
        panic!("expected a failure: {:?}", case.status)
    };
    assert!(message.as_ref().unwrap().contains("the key is ***"));
    let out = case.system_out.as_ref().unwrap();
    assert!(out.contains("key=*** dsn=***") && out.contains("http://example.com/x"));
    assert!(case.system_err.as_ref().unwrap().contains("key=***"));
}

// ------------------------------------------------------------------------------------
// The process misbehaves
// ------------------------------------------------------------------------------------

#[test]
fn a_hanging_test_times_out_and_its_process_tree_is_stopped() {
    let fixture = Fixture::new("situations", "hang");
    let pid_file = fixture.path("suites/hang/hang.pids");
    let reaper = Reaper::of(&pid_file);
    fixture.warm(&["test", "hang"]);
    let command = fixture.command(&["test", "hang"]);
    let clock = Instant::now();
    // The manifest's timeout is 5s: far less than this deadline.
    let run = run_with_deadline(command, Duration::from_secs(60), &reaper);
    let elapsed = clock.elapsed();
    assert_gone(&read_pids(&pid_file));
    let s = Situation::checked(fixture, "hang", run);
    s.assert_outcome("timeout", exit_codes::TIMED_OUT);
    assert!(elapsed < Duration::from_secs(25), "{elapsed:?}");
    s.assert_steps(&["environment", "pytest"]);
    assert!(
        s.step("environment")["skipped"].is_string(),
        "the environment was built by the warm-up"
    );
    assert_eq!(s.suite_record()["timeout_secs"].as_f64(), Some(5.0));

    let log = s.log();
    assert!(log.contains("hang: printed before the hang"), "{log}");
    let (message, text) = s.synthetic_case("timeout");
    assert_eq!(message, s.detail());
    assert!(text.contains("hang: printed before the hang"), "{text}");
}

#[test]
fn an_aborting_interpreter_is_a_crash() {
    let s = Situation::run("abort", "abort");
    s.assert_outcome("crashed", exit_codes::CRASHED);
    s.assert_steps(&["environment", "pytest"]);

    let log = std::fs::read(s.fixture.path("target/xtask/logs/abort.log")).unwrap();
    assert!(contains(&log, b"Fatal Python error: Aborted"));
    assert!(contains(&log, b"\x1b[31mabout to abort"));
    // The log's raw tail, escapes, control characters and invalid UTF-8 included, becomes
    // clean text in the report.
    let (message, text) = s.synthetic_case("crashed");
    assert_eq!(message, s.detail());
    assert!(text.contains("about to abort"), "{text}");
    assert!(text.contains("Fatal Python error: Aborted"), "{text}");
    assert!(!text.contains("[31m"), "an ANSI escape survived: {text}");
    // Each control character is shown by a marker, none silently deleted.
    assert!(
        text.contains(
            "about to abort \u{2407}\u{2408}\u{240B}\u{240C}\u{241B}\u{2421}\u{FFFD}\u{FFFD}|"
        ),
        "{text}"
    );
}

#[test]
fn ctrl_c_to_the_xtask_stops_everything_and_leaves_valid_reports() {
    interrupt("interrupt_xtask", Signalled::Xtask);
}

/// A terminal's Ctrl-C reaches the whole foreground process group, not only the xtask.
#[test]
fn ctrl_c_to_the_process_group_stops_everything_and_leaves_valid_reports() {
    interrupt("interrupt_group", Signalled::ProcessGroup);
}

#[derive(Clone, Copy, PartialEq)]
enum Signalled {
    Xtask,
    ProcessGroup,
}

fn interrupt(test: &str, target: Signalled) {
    use std::os::unix::process::CommandExt;

    let fixture = Fixture::new("situations", test);
    let pid_file = fixture.path("suites/hang/interrupt.pids");
    let reaper = Reaper::of(&pid_file);
    let mut command = fixture.command(&["test", "interrupt", "interrupt-queued", "--jobs", "1"]);
    if target == Signalled::ProcessGroup {
        command.process_group(0);
    }
    let mut xtask = Spawned::start(command);

    let started = Instant::now();
    while !pid_file.exists() {
        if let Some(status) = xtask.child.try_wait().unwrap() {
            panic!("the xtask ended ({status}) before the test started");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the hanging test did not start within 60s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pids = read_pids(&pid_file);
    let target_pid = match target {
        Signalled::Xtask => xtask.child.id().to_string(),
        Signalled::ProcessGroup => format!("-{}", xtask.child.id()),
    };
    let kill = Command::new("kill")
        .args(["-INT", "--", &target_pid])
        .status()
        .unwrap();
    assert!(kill.success());

    let run = xtask.finish(Duration::from_secs(30), &reaper);
    assert_gone(&pids);
    // Said at once, before the suites' results (the Interrupted event).
    let said = run
        .stdout
        .find("xtask: interrupted: stopping the running suites")
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        said < run.stdout.find("INTERRUPTED").unwrap(),
        "{}",
        run.stdout
    );

    let s = Situation::checked(fixture, "interrupt", run);
    s.assert_outcome("interrupted", exit_codes::INTERRUPTED);
    let queued = s.record_of("interrupt-queued");
    assert_eq!(queued["outcome"], "interrupted", "{queued:#}");
    assert_eq!(queued["commands"], serde_json::json!([]), "{queued:#}");
    let report = s.fixture.report();
    for name in ["interrupt", "interrupt-queued"] {
        let suite = suite(&report, name);
        assert_eq!(property(suite, "outcome"), "interrupted", "{name}");
        let synthetic = case(suite, "interrupted");
        // The merged report prefixes every classname with the suite's name.
        assert_eq!(
            synthetic.classname.as_ref().unwrap().as_str(),
            format!("{name}.{name}")
        );
    }
    assert!(s.log().contains("hang: printed before the hang"));
}

// ------------------------------------------------------------------------------------
// The readers themselves
// ------------------------------------------------------------------------------------

/// The checks above mean something only if the readers reject what consumers reject.
#[test]
fn the_readers_reject_reports_consumers_cannot_read() {
    let fixture = Fixture::empty("readers");
    let report = |text: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"1\" failures=\"0\" errors=\"0\">\
             <testsuite name=\"s\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\">\
             <testcase name=\"t\" classname=\"c\" time=\"0.1\"><system-out>{text}</system-out></testcase>\
             </testsuite></testsuites>\n"
        )
    };
    let write = |name: &str, text: &str| {
        let path = fixture.path(name);
        std::fs::write(&path, report(text)).unwrap();
        path
    };

    let good = write("good.xml", "fine &amp; &#x263A; text");
    strict_xml(&good);
    let read = junit_consumers(std::slice::from_ref(&good));
    let suite = &read["files"][0]["suites"][0];
    assert_eq!(totals(suite), totals(&suite["declared"]));
    assert_eq!(read["files"][0]["tests"], 1);

    for (name, text) in [
        ("escape.xml", "an \u{1b}[31mescape"),
        ("escape-ref.xml", "an &#x1b;[31mescape"),
        ("nonchar.xml", "a \u{FFFE} noncharacter"),
        ("entity.xml", "an &nbsp; entity"),
        ("unclosed.xml", "<b>unclosed"),
    ] {
        let bad = write(name, text);
        let strict = std::panic::catch_unwind(|| strict_xml(&bad));
        assert!(strict.is_err(), "the strict parse accepted {name}");
        let err = read_with_consumers(&[bad]).expect_err(name);
        assert!(err.contains("not a readable JUnit report"), "{name}: {err}");
    }

    // lxml's limit on a text node, which the strict parse does not enforce.
    let huge = write("huge.xml", &"x".repeat(LXML_MAX_TEXT + 1));
    strict_xml(&huge);
    let err = read_with_consumers(&[huge]).expect_err("a text node over lxml's limit");
    assert!(err.contains("Text node too long"), "{err}");
}

// ------------------------------------------------------------------------------------
// The harness of these tests
// ------------------------------------------------------------------------------------

/// One run of one suite of the fixture, with everything it wrote already cross-checked
/// (`check_reports`).
struct Situation {
    fixture: Fixture,
    suite: String,
    run: Run,
    run_json: Value,
    /// What junitparser on lxml read, per JUnit file (`tests/junit_consumers.py`).
    consumers: Value,
}

impl Situation {
    /// `cargo xtask test <suite>` on a fresh copy of the fixture named `test`.
    fn run(suite: &str, test: &str) -> Situation {
        let fixture = Fixture::new("situations", test);
        let command = fixture.command(&["test", suite]);
        Situation::from_command(fixture, suite, command)
    }

    fn from_command(fixture: Fixture, suite: &str, command: Command) -> Situation {
        let run = run_with_deadline(command, Duration::from_secs(180), &Reaper::none());
        Situation::checked(fixture, suite, run)
    }

    fn checked(fixture: Fixture, suite: &str, run: Run) -> Situation {
        let run_json = read_run_json(&fixture);
        // pytest's own XML holds output before it is masked: it never outlives the run.
        let work = format!("{}/work", run_dir(&run_json));
        assert!(!fixture.path(&work).exists(), "{work} was left behind");
        let consumers = check_reports(&fixture, &run_json);
        Situation {
            fixture,
            suite: suite.to_string(),
            run,
            run_json,
            consumers,
        }
    }

    fn record_of(&self, name: &str) -> &Value {
        self.run_json["suites"]
            .as_array()
            .expect("run.json: suites")
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("run.json has no suite {name}"))
    }

    fn suite_record(&self) -> &Value {
        self.record_of(&self.suite)
    }

    /// The last command of `step` run.json records for the suite.
    fn step(&self, step: &str) -> &Value {
        let record = self.suite_record();
        record["commands"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|c| c["step"] == step)
            .unwrap_or_else(|| panic!("no {step} step: {record:#}"))
    }

    fn detail(&self) -> String {
        let record = self.suite_record();
        record["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("run.json: no detail for {}: {record:#}", self.suite))
            .to_string()
    }

    fn log(&self) -> String {
        let bytes = std::fs::read(
            self.fixture
                .path(&format!("target/xtask/logs/{}.log", self.suite)),
        )
        .unwrap_or_else(|e| panic!("reading the log of {}: {e}", self.suite));
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The suite's own report, read back with quick-junit.
    fn suite_report(&self) -> Report {
        read_report(
            &self
                .fixture
                .path(&format!("target/xtask/junit/{}.xml", self.suite)),
        )
    }

    fn junit_files(&self) -> Vec<PathBuf> {
        junit_files(&self.fixture, &self.run_json)
    }

    /// The exit code (by its constant) and the outcome, wherever they are recorded.
    fn assert_outcome(&self, outcome: &str, code: u8) {
        let name = exit_codes::name(code);
        assert_eq!(
            self.run.code,
            code,
            "exit code {} ({}), expected {name}",
            self.run.code,
            exit_codes::name(self.run.code)
        );
        let record = self.suite_record();
        assert_eq!(record["outcome"], outcome, "{record:#}");
        assert_eq!(self.run_json["outcome"], outcome);
        assert_eq!(self.run_json["exit_code"], code);
        assert_eq!(self.run_json["exit_code_name"], name);
        let own = format!("target/xtask/junit/{}.xml", self.suite);
        for file in [
            self.fixture.path("target/xtask/junit.xml"),
            self.fixture.path(&own),
        ] {
            let report = read_report(&file);
            let suite = suite(&report, &self.suite);
            assert_eq!(property(suite, "outcome"), outcome, "in {}", file.display());
        }
    }

    /// The steps run.json records, in order; the log shows each command.
    fn assert_steps(&self, steps: &[&str]) {
        let record = self.suite_record();
        let commands = record["commands"].as_array().expect("run.json: commands");
        let mut recorded: Vec<&str> = commands
            .iter()
            .map(|c| c["step"].as_str().unwrap())
            .collect();
        // An environment may take several commands (`uv venv`, `uv pip install`, the check).
        recorded.dedup();
        assert_eq!(recorded, steps, "{record:#}");
        if steps.is_empty() {
            return;
        }
        let log = self.log();
        for step in steps {
            assert!(
                log.lines()
                    .any(|l| l.starts_with(&format!("xtask: {step}: "))),
                "the log does not show the {step} command:\n{log}"
            );
        }
    }

    /// The one test case that stands for the suite: its message and text.
    fn synthetic_case(&self, outcome: &str) -> (String, String) {
        let report = self.suite_report();
        let suite = suite(&report, &self.suite);
        let case = case(suite, outcome);
        assert_eq!(case.classname.as_ref().unwrap().as_str(), self.suite);
        let TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Error,
            ty,
            message,
            description,
            ..
        } = &case.status
        else {
            panic!("the {outcome} case is not an error: {:?}", case.status)
        };
        assert_eq!(ty.as_ref().unwrap().as_str(), outcome);
        (
            message.as_ref().map_or("", |m| m.as_str()).to_string(),
            description.as_ref().map_or("", |d| d.as_str()).to_string(),
        )
    }
}

fn read_run_json(fixture: &Fixture) -> Value {
    let text = fixture.read("target/xtask/run.json");
    let run: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("run.json: {e}"));
    for key in [
        "xtask_version",
        "invocation",
        "started_at",
        "duration_secs",
        "root",
        "git",
        "uv",
        "outcome",
        "exit_code",
        "exit_code_name",
        "junit",
        "suites",
    ] {
        assert!(run.get(key).is_some(), "run.json has no {key}: {run:#}");
    }
    let dir = run_dir(&run);
    assert_eq!(run["junit"], format!("{dir}/junit.xml"));
    assert!(fixture.path(&format!("{dir}/junit.xml")).is_file());
    assert_eq!(
        std::fs::read_link(fixture.path("target/xtask/latest")).unwrap(),
        Path::new("runs").join(run["run_id"].as_str().unwrap()),
        "latest names this invocation"
    );
    assert!(run["invocation"].is_array());
    for suite in run["suites"].as_array().unwrap() {
        let name = suite["name"].as_str().unwrap();
        for key in [
            "group",
            "dir",
            "outcome",
            "detail",
            "counts",
            "started_at",
            "duration_secs",
            "timeout_secs",
            "cwd",
            "env",
            "env_removed",
            "commands",
            "log",
            "junit",
        ] {
            assert!(
                suite.get(key).is_some(),
                "run.json: suite {name} has no {key}"
            );
        }
        // Every path run.json names is this invocation's own, and exists.
        assert_eq!(suite["log"], format!("{dir}/logs/{name}.log"));
        assert_eq!(suite["junit"], format!("{dir}/junit/{name}.xml"));
        for key in ["log", "junit"] {
            let path = fixture.path(suite[key].as_str().unwrap());
            assert!(
                path.is_file(),
                "run.json names {} for {name}, which is missing",
                path.display()
            );
        }
        for command in suite["commands"].as_array().unwrap() {
            for key in ["step", "argv", "exit_code", "signal", "duration_secs"] {
                assert!(command.get(key).is_some(), "run.json: {name}: {command:#}");
            }
        }
    }
    run
}

/// This invocation's own directory, relative to the root.
fn run_dir(run_json: &Value) -> String {
    format!(
        "target/xtask/runs/{}",
        run_json["run_id"].as_str().expect("run.json: run_id")
    )
}

/// The merged report and every suite's own.
fn junit_files(fixture: &Fixture, run_json: &Value) -> Vec<PathBuf> {
    let mut files = vec![fixture.path("target/xtask/junit.xml")];
    for suite in run_json["suites"].as_array().unwrap() {
        files.push(fixture.path(suite["junit"].as_str().unwrap()));
    }
    files
}

#[derive(Debug, PartialEq, Eq)]
struct Totals {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

/// Reads every JUnit file with every reader: a strict XML parse, quick-junit and
/// junitparser on lxml must agree on each suite's totals, with the totals the file
/// declares, and with run.json's counts. Returns what junitparser read.
fn check_reports(fixture: &Fixture, run_json: &Value) -> Value {
    let files = junit_files(fixture, run_json);
    for file in &files {
        strict_xml(file);
    }
    let consumers = junit_consumers(&files);
    let read: Vec<&Value> = consumers["files"].as_array().unwrap().iter().collect();
    assert_eq!(read.len(), files.len());

    let records: BTreeMap<&str, &Value> = run_json["suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s))
        .collect();
    for (file, parsed) in files.iter().zip(read) {
        let shown = file.display();
        let report = read_report(file);
        let suites = parsed["suites"].as_array().unwrap();
        assert_eq!(suites.len(), report.test_suites.len(), "{shown}");
        for (suite, theirs) in report.test_suites.iter().zip(suites) {
            let name = suite.name.as_str();
            assert_eq!(theirs["name"], name, "{shown}");
            let counted = counted(suite);
            assert_eq!(counted, declared(suite), "{shown}: {name}: the attributes");
            assert_eq!(
                counted,
                totals(theirs),
                "{shown}: {name}: junitparser's count"
            );
            assert_eq!(
                counted,
                totals(&theirs["declared"]),
                "{shown}: {name}: junitparser reading the attributes"
            );
            for case in &suite.test_cases {
                check_case(case, &format!("{shown}: {name}"));
            }

            let record = records
                .get(name)
                .unwrap_or_else(|| panic!("{shown}: {name} is not in run.json"));
            let counts = &record["counts"];
            assert_eq!(
                counted,
                Totals {
                    tests: as_usize(&counts["tests"]),
                    failures: as_usize(&counts["failed"]),
                    errors: as_usize(&counts["errors"]),
                    skipped: as_usize(&counts["skipped"]),
                },
                "{shown}: {name}: run.json's counts {counts}"
            );
            assert_eq!(
                as_usize(&counts["passed"]),
                counted.tests - counted.failures - counted.errors - counted.skipped
            );
            for key in ["group", "dir", "outcome"] {
                assert_eq!(property(suite, key), record[key], "{shown}: {name}: {key}");
                assert_eq!(theirs["properties"][key], record[key], "{shown}: {name}");
            }
        }
        let sum = |f: fn(&Totals) -> usize| -> usize {
            report.test_suites.iter().map(|s| f(&counted(s))).sum()
        };
        assert_eq!(
            totals(parsed),
            Totals {
                tests: sum(|t| t.tests),
                failures: sum(|t| t.failures),
                errors: sum(|t| t.errors),
                skipped: sum(|t| t.skipped),
            },
            "{shown}: junitparser's totals"
        );
        assert_eq!(
            (report.tests, report.failures, report.errors),
            (sum(|t| t.tests), sum(|t| t.failures), sum(|t| t.errors)),
            "{shown}: the root's attributes"
        );
    }
    consumers
}

/// What consumers need of every test case (see /work/shared/junit/README.md).
fn check_case(case: &TestCase, place: &str) {
    let name = case.name.as_str();
    assert!(!name.is_empty(), "{place}: a test case without a name");
    assert!(
        case.classname.as_ref().is_some_and(|c| !c.is_empty()),
        "{place}: {name} has no classname"
    );
    assert!(case.time.is_some(), "{place}: {name} has no time");
}

fn counted(suite: &TestSuite) -> Totals {
    let mut totals = Totals {
        tests: suite.test_cases.len(),
        failures: 0,
        errors: 0,
        skipped: 0,
    };
    for case in &suite.test_cases {
        match &case.status {
            TestCaseStatus::Success { .. } => {}
            TestCaseStatus::NonSuccess { kind, .. } => match kind {
                NonSuccessKind::Failure => totals.failures += 1,
                NonSuccessKind::Error => totals.errors += 1,
            },
            TestCaseStatus::Skipped { .. } => totals.skipped += 1,
        }
    }
    totals
}

fn declared(suite: &TestSuite) -> Totals {
    let skipped = suite
        .extra
        .get("skipped")
        .unwrap_or_else(|| panic!("{} has no skipped attribute", suite.name.as_str()));
    Totals {
        tests: suite.tests,
        failures: suite.failures,
        errors: suite.errors,
        skipped: skipped.as_str().parse().unwrap(),
    }
}

fn totals(value: &Value) -> Totals {
    Totals {
        tests: as_usize(&value["tests"]),
        failures: as_usize(&value["failures"]),
        errors: as_usize(&value["errors"]),
        skipped: as_usize(&value["skipped"]),
    }
}

fn as_usize(value: &Value) -> usize {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}")) as usize
}

fn property<'a>(suite: &'a TestSuite, name: &str) -> &'a str {
    suite
        .properties
        .iter()
        .find(|p| p.name.as_str() == name)
        .map(|p| p.value.as_str())
        .unwrap_or_else(|| panic!("{} has no property {name}", suite.name.as_str()))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file the xtask wrote below `dir`: the links into the latest invocation are not
/// followed (its files are read where they are), and the environments under `envs/` hold
/// only what uv installed.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() || entry.file_name() == "envs" {
            continue;
        }
        if kind.is_dir() {
            files.extend(files_below(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

/// The pids a hanging test wrote: pytest's, its parent's (uv) and its grandchild's.
fn read_pids(path: &Path) -> Vec<u32> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Kills, when dropped (a test ending or failing), whatever is still running of the pids
/// a hanging test recorded: they are this test's, and must not outlive it.
struct Reaper {
    pid_file: Option<PathBuf>,
}

impl Reaper {
    fn of(pid_file: &Path) -> Reaper {
        Reaper {
            pid_file: Some(pid_file.to_path_buf()),
        }
    }

    fn none() -> Reaper {
        Reaper { pid_file: None }
    }

    fn reap(&self) {
        let Some(text) = self
            .pid_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
        else {
            return;
        };
        for pid in text.split_whitespace().filter_map(|p| p.parse().ok()) {
            if alive(pid) {
                kill_pid(pid);
            }
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.reap();
    }
}

/// The xtask started in the background, its output collected as it comes.
struct Spawned {
    child: Child,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Spawned {
    fn start(mut command: Command) -> Spawned {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("starting the xtask");
        let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
        Spawned {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits at most `limit` for the xtask to exit; past it, the xtask and the processes
    /// `reaper` knows are killed and the test fails.
    fn finish(mut self, limit: Duration, reaper: &Reaper) -> Run {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                reaper.reap();
                panic!("the xtask did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (stdout, stderr) = (self.stdout.join().unwrap(), self.stderr.join().unwrap());
        eprintln!("--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
        let Some(code) = status.code() else {
            reaper.reap();
            panic!("the xtask was killed: {status}");
        };
        Run {
            code: code as u8,
            stdout,
            stderr,
        }
    }
}

fn run_with_deadline(command: Command, limit: Duration, reaper: &Reaper) -> Run {
    Spawned::start(command).finish(limit, reaper)
}

fn drain(stream: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut stream) = stream {
            let _ = stream.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
