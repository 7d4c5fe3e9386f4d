//! Retries and partitions under attack, through the real binary with real uv and pytest: a
//! retry never hides a test that did not run, a retry ends as the first run would (its
//! timeout, Ctrl-C, a crash), a session ended early cannot pass, and a suite that selects
//! no test is `no-tests` in every partition.

mod common;

use std::time::Duration;

use common::*;
use xtask::exit_codes;

/// The names of a suite's test cases in its own report, sorted.
fn names(fixture: &Fixture, suite_name: &str) -> Vec<String> {
    let report = read_report(&fixture.path(&format!("target/xtask/junit/{suite_name}.xml")));
    let mut names: Vec<String> = suite(&report, suite_name)
        .test_cases
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn a_retry_runs_the_tests_pytest_never_ran_after_x() {
    // Without retries the xtask reports what pytest did: one test ran, and failed.
    let fixture = Fixture::new("retries", "retries-x-plain");
    let run = fixture.run(&["test", "stop", "--", "-x"]);
    assert_code(&run, exit_codes::TESTS_FAILED);
    assert_eq!(names(&fixture, "stop"), ["test_1_fails_once"]);

    // With them, the retry runs the failed test and the two that never ran.
    for stop_early in ["-x", "--maxfail=1"] {
        let fixture = Fixture::new("retries", &format!("retries-x{stop_early}"));
        let run = fixture.run(&["test", "stop", "--retries", "1", "--", stop_early]);
        assert_code(&run, exit_codes::OK);
        assert_eq!(
            names(&fixture, "stop"),
            ["test_1_fails_once", "test_2_passes", "test_3_passes"],
            "{stop_early}"
        );
        let record = record(&fixture);
        let stop = suite_record(&record, "stop");
        assert_eq!(stop["counts"]["tests"], 3, "{stop:#}");
        assert_eq!(stop["counts"]["passed"], 3, "{stop:#}");
        assert_eq!(stop["counts"]["flaky"], 1, "{stop:#}");
        let log = fixture.read("target/xtask/logs/stop.log");
        assert!(
            log.contains("retry 1 of 1: 3 test(s) again (2 that never ran)"),
            "{log}"
        );
        // The terminal says so as it starts (the RetryStarted event).
        assert!(
            run.stdout.contains(
                "RETRY stop [retries]: retry 1 of 1, 3 test(s) again (2 of which never ran)"
            ),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn a_session_ended_early_with_status_0_is_not_a_pass() {
    let fixture = Fixture::new("retries", "retries-exit-zero");
    let run = fixture.run(&["test", "exit"]);
    assert_code(&run, exit_codes::CRASHED);
    let record = record(&fixture);
    let exit = suite_record(&record, "exit");
    let detail = exit["detail"].as_str().unwrap();
    assert!(
        detail.contains("before 2 of its tests ran to their end")
            && detail.contains("tests/test_exit.py::test_2_ends_the_session"),
        "{detail}"
    );
}

#[test]
fn a_retry_that_hangs_past_the_timeout_is_a_timeout_naming_the_test() {
    let fixture = Fixture::new("retries", "retries-hang");
    let run = fixture.run(&["test", "hang", "--retries", "2", "--timeout", "20s"]);
    assert_code(&run, exit_codes::TIMED_OUT);
    let pid: u32 = fixture
        .read("suites/hang/retrying.marker")
        .trim()
        .parse()
        .unwrap();
    assert_gone(&[pid]);
    let record = record(&fixture);
    let hang = suite_record(&record, "hang");
    let detail = hang["detail"].as_str().unwrap();
    assert!(
        detail.contains("retry 1") && detail.contains("test_fails_then_hangs"),
        "{detail}"
    );
    // The first attempt's failure is kept.
    let report = read_report(&fixture.path("target/xtask/junit/hang.xml"));
    let case = case(suite(&report, "hang"), "test_fails_then_hangs");
    assert!(
        matches!(
            &case.status,
            quick_junit::TestCaseStatus::NonSuccess {
                kind: quick_junit::NonSuccessKind::Failure,
                ..
            }
        ),
        "{case:?}"
    );
    let steps: Vec<&str> = hang["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps.last(), Some(&"retry"), "{steps:?}");
}

#[test]
fn ctrl_c_during_a_retry_is_an_interrupt() {
    let fixture = Fixture::new("retries", "retries-interrupt");
    let marker = fixture.path("suites/hang/retrying.marker");
    let (status, took) = interrupt_when(
        fixture.command(&["test", "hang", "--retries", "1"]),
        "the retry started",
        || marker.exists(),
    );
    assert_eq!(
        exit_codes::name(status.code().unwrap() as u8),
        "INTERRUPTED",
        "{status}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    let pid: u32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_gone(&[pid]);
    let record = record(&fixture);
    assert_eq!(suite_record(&record, "hang")["outcome"], "interrupted");
}

#[test]
fn a_retry_that_crashes_is_a_crash() {
    let fixture = Fixture::new("retries", "retries-abort");
    let run = fixture.run(&["test", "abort", "--retries", "1"]);
    assert_code(&run, exit_codes::CRASHED);
    let record = record(&fixture);
    let detail = suite_record(&record, "abort")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.starts_with("on retry 1 of 1: "), "{detail}");
}

#[test]
fn a_suite_that_selects_no_test_is_no_tests_in_every_partition() {
    let fixture = Fixture::new("retries", "partitions-nothing");
    let run = fixture.run(&["test", "nothing"]);
    assert_code(&run, exit_codes::NO_TESTS_COLLECTED);
    for k in 1..=3 {
        let run = fixture.run(&["test", "nothing", "--partition", &format!("hash:{k}/3")]);
        assert_code(&run, exit_codes::NO_TESTS_COLLECTED);
    }
    // With a marker that selects its tests, a slice that holds none of them passes: the
    // other slices run them.
    fixture.edit(
        "Cargo.toml",
        "markers = \"never_set\"",
        "markers = \"not never_set\"",
    );
    let mut passed_empty = 0;
    for k in 1..=8 {
        let run = fixture.run(&["test", "nothing", "--partition", &format!("hash:{k}/8")]);
        assert_code(&run, exit_codes::OK);
        let record = record(&fixture);
        let nothing = suite_record(&record, "nothing");
        if nothing["counts"]["tests"] == 0 {
            passed_empty += 1;
            assert!(
                nothing["detail"]
                    .as_str()
                    .unwrap()
                    .contains("none of the suite's 3 selected tests falls in partition"),
                "{nothing:#}"
            );
        }
    }
    assert!(
        passed_empty >= 5,
        "3 tests leave at least 5 of 8 slices empty"
    );
}

/// An interrupted run's replay shows what the run showed, the interrupt's line among it, and
/// exits as the run did.
#[test]
fn an_interrupted_runs_replay_shows_the_interrupt_and_exits_as_it_did() {
    use std::os::unix::process::CommandExt;
    let fixture = Fixture::new("retries", "retries-interrupt-replay");
    let marker = fixture.path("suites/hang/retrying.marker");
    let out = fixture.path("live.out");
    let mut command = fixture.command(&["test", "hang", "--retries", "1"]);
    command
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    let clock = std::time::Instant::now();
    while !marker.exists() {
        assert!(clock.elapsed() < RUN_DEADLINE, "the retry never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the xtask ended before its retry started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_pid_with(child.id(), "-INT");
    let status = wait_with_deadline(&mut child).expect("it stops after Ctrl-C");
    assert_eq!(
        exit_codes::name(status.code().unwrap() as u8),
        "INTERRUPTED"
    );
    let live = std::fs::read_to_string(&out).unwrap();
    assert!(live.contains("xtask: interrupted: stopping"), "{live}");
    let record = record(&fixture);
    assert!(
        record["interrupted_offset_secs"].as_f64().unwrap() > 0.0,
        "{record:#}"
    );

    let replay = fixture.run(&["replay"]);
    assert_code(&replay, exit_codes::INTERRUPTED);
    let (_, body) = replay.stdout.split_once('\n').unwrap();
    assert_eq!(without_env_times(body), without_env_times(&live));
}
