//! One suite split across processes (`split = N`, `--split`), through the real binary with
//! real uv and pytest: the slices are reported as one suite everywhere (one JUnit testsuite,
//! each test once, counts summed, one record entry with a step per slice, one log with a
//! section per slice, one terminal line), and the suite ends as the worst of its slices: a
//! failure, a timeout or Ctrl-C that stops every slice, a collection error as unsplit.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use xtask::exit_codes;

/// The (classname, name) of every case of a suite's own JUnit report, and how many there are.
fn cases(fixture: &Fixture, name: &str) -> (BTreeSet<(String, String)>, usize) {
    let report = read_report(&fixture.path(&format!("target/xtask/junit/{name}.xml")));
    let suite = suite(&report, name);
    let ids: Vec<(String, String)> = suite
        .test_cases
        .iter()
        .map(|c| {
            (
                c.classname.as_deref().unwrap_or_default().to_string(),
                c.name.to_string(),
            )
        })
        .collect();
    let count = ids.len();
    (ids.into_iter().collect(), count)
}

/// The slice of each pytest step of the suite in run.json (`None` when not split).
fn pytest_slices(suite: &serde_json::Value) -> Vec<Option<String>> {
    suite["commands"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["step"] == "pytest")
        .map(|c| c["slice"].as_str().map(str::to_string))
        .collect()
}

/// The process ids the hanging tests noted, one file each.
fn noted_pids(dir: &Path) -> Vec<u32> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_split_suite_reports_as_one_suite_with_every_test_once() {
    let fixture = Fixture::new("split", "split-many");
    // Unsplit first: what the split run must report the same.
    let run = fixture.run(&["test", "many", "--split", "1"]);
    assert_code(&run, exit_codes::OK);
    let (unsplit, _) = cases(&fixture, "many");
    assert_eq!(
        pytest_slices(suite_record(&record(&fixture), "many")),
        [None]
    );

    for jobs in ["2", "1"] {
        // `--no-cache`: split or not, the same inputs would replay the unsplit run.
        let run = fixture.run(&["test", "many", "-j", jobs, "--no-cache"]);
        assert_code(&run, exit_codes::OK);
        // One line on the terminal, saying it ran in slices.
        let lines: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| l.contains("PASSED many"))
            .collect();
        assert_eq!(lines.len(), 1, "{}", run.stdout);
        assert!(lines[0].contains("(in 2 slices)"), "{}", lines[0]);

        // One JUnit testsuite, each test once, the same tests as unsplit.
        let (split, reported) = cases(&fixture, "many");
        assert_eq!(reported, split.len(), "a test reported twice (-j {jobs})");
        assert_eq!(split, unsplit, "-j {jobs}");
        let merged = read_report(&fixture.path("target/xtask/junit.xml"));
        assert_eq!(merged.test_suites.len(), 1);
        assert_eq!(merged.test_suites[0].test_cases.len(), unsplit.len());

        // One suite in the record, counts summed, each test once, a pytest step per slice.
        let record = record(&fixture);
        assert_eq!(record["suites"].as_array().unwrap().len(), 1);
        let many = suite_record(&record, "many");
        assert_eq!(many["outcome"], "passed");
        assert_eq!(many["counts"]["tests"], unsplit.len(), "{many:#}");
        assert_eq!(many["counts"]["passed"], unsplit.len(), "{many:#}");
        assert_eq!(many["counts"]["deselected"], 0, "{many:#}");
        let ids: Vec<&str> = many["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["node_id"].as_str().unwrap())
            .collect();
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!((ids.len(), unique.len()), (unsplit.len(), unsplit.len()));
        assert_eq!(
            pytest_slices(many),
            [Some("1/2".to_string()), Some("2/2".to_string())]
        );

        // One log, a section per slice, each slice running its share of the tests.
        let log = fixture.read("target/xtask/logs/many.log");
        let first = log.find("xtask: ---- slice 1/2 ----").expect(&log);
        let second = log.find("xtask: ---- slice 2/2 ----").expect(&log);
        assert!(first < second);
        let ran: usize = [&log[first..second], &log[second..]]
            .iter()
            .map(|section| count(&pytest_summary(section), "passed"))
            .sum();
        assert_eq!(ran, unsplit.len(), "{log}");
        assert!(count(&pytest_summary(&log[first..second]), "passed") > 0);
        assert!(count(&pytest_summary(&log[second..]), "passed") > 0);
    }
}

#[test]
fn a_failure_in_one_slice_fails_the_suite() {
    let fixture = Fixture::new("split", "split-red");
    let run = fixture.run(&["test", "red"]);
    assert_code(&run, exit_codes::TESTS_FAILED);
    let record = record(&fixture);
    let red = suite_record(&record, "red");
    assert_eq!(red["outcome"], "failed");
    assert_eq!(red["counts"]["failed"], 1, "{red:#}");
    assert_eq!(red["counts"]["passed"], 29, "{red:#}");
    assert_eq!(pytest_slices(red).len(), 2);
    let (cases, reported) = cases(&fixture, "red");
    assert_eq!((cases.len(), reported), (30, 30));
    assert!(run.stdout.contains("test_fails"), "{}", run.stdout);
}

#[test]
fn a_timeout_stops_every_slice() {
    let fixture = Fixture::new("split", "split-timeout");
    fixture.warm(&["test", "hang"]);
    let run = fixture.run(&["test", "hang", "--timeout", "20s"]);
    assert_code(&run, exit_codes::TIMED_OUT);
    // Both slices hung (each at its first test), and neither outlived the timeout.
    let pids = noted_pids(&fixture.path("suites/hang/pids"));
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert_gone(&pids);
    let record = record(&fixture);
    let hang = suite_record(&record, "hang");
    assert_eq!(hang["outcome"], "timeout");
    let detail = hang["detail"].as_str().unwrap();
    assert!(
        detail.contains("slice 1/2") && detail.contains("slice 2/2"),
        "{detail}"
    );
    assert_eq!(pytest_slices(hang).len(), 2, "{hang:#}");
    let log = fixture.read("target/xtask/logs/hang.log");
    assert_eq!(
        log.matches("(stopped: the suite's timeout was reached)")
            .count(),
        2,
        "{log}"
    );
}

#[test]
fn with_one_job_the_slices_share_one_timeout() {
    let fixture = Fixture::new("split", "split-timeout-j1");
    fixture.warm(&["test", "hang"]);
    let clock = std::time::Instant::now();
    let run = fixture.run(&["test", "hang", "-j", "1", "--timeout", "15s"]);
    let took = clock.elapsed();
    assert_code(&run, exit_codes::TIMED_OUT);
    // The first slice hung until the suite's timeout; the second, whose turn came after
    // it, never started (it does not get a timeout of its own).
    let pids = noted_pids(&fixture.path("suites/hang/pids"));
    assert_eq!(pids.len(), 1, "{pids:?}");
    assert_gone(&pids);
    let log = fixture.read("target/xtask/logs/hang.log");
    let second = log.find("xtask: ---- slice 2/2 ----").expect(&log);
    assert!(log[second..].contains("xtask: not started: "), "{log}");
    assert!(!log[second..].contains("xtask: pytest: "), "{log}");
    assert!(took < std::time::Duration::from_secs(28), "{took:?}");
    let record = record(&fixture);
    let hang = suite_record(&record, "hang");
    assert_eq!(hang["outcome"], "timeout");
    assert_eq!(pytest_slices(hang), [Some("1/2".to_string())]);
}

#[test]
fn ctrl_c_stops_every_slice() {
    let fixture = Fixture::new("split", "split-interrupt");
    fixture.warm(&["test", "hang"]);
    let pids_dir = fixture.path("suites/hang/pids");
    let (status, _) = interrupt_when(
        fixture.command(&["test", "hang"]),
        "both slices started a test",
        || noted_pids(&pids_dir).len() == 2,
    );
    assert_eq!(
        exit_codes::name(status.code().unwrap() as u8),
        "INTERRUPTED",
        "{status}"
    );
    assert_gone(&noted_pids(&pids_dir));
    let record = record(&fixture);
    assert_eq!(suite_record(&record, "hang")["outcome"], "interrupted");
}

#[test]
fn a_collection_error_ends_a_split_suite_as_it_ends_unsplit() {
    let fixture = Fixture::new("split", "split-broken");
    let unsplit = fixture.run(&["test", "broken", "--split", "1"]);
    assert_code(&unsplit, exit_codes::COLLECTION_ERROR);
    let before = suite_record(&record(&fixture), "broken").clone();
    let (unsplit_cases, _) = cases(&fixture, "broken");

    let split = fixture.run(&["test", "broken"]);
    assert_code(&split, exit_codes::COLLECTION_ERROR);
    let record = record(&fixture);
    let after = suite_record(&record, "broken");
    assert_eq!(pytest_slices(after).len(), 2);
    assert_eq!(after["outcome"], before["outcome"]);
    // Only the slice that holds the broken file met the error: it says what the unsplit run
    // said, once.
    assert_eq!(after["detail"], before["detail"]);
    assert_eq!(after["counts"]["errors"], before["counts"]["errors"]);
    // The other slice ran the other file's tests, which the unsplit run never reached.
    assert_eq!(before["counts"]["passed"], 0, "{before:#}");
    assert_eq!(after["counts"]["passed"], 10, "{after:#}");
    let (split_cases, reported) = cases(&fixture, "broken");
    assert_eq!(reported, split_cases.len());
    assert!(split_cases.is_superset(&unsplit_cases), "{split_cases:?}");
    let log = fixture.read("target/xtask/logs/broken.log");
    assert!(log.contains("SyntaxError"), "{log}");
    let sections: Vec<&str> = log.split("xtask: ---- slice ").skip(1).collect();
    assert_eq!(sections.len(), 2, "{log}");
    assert_eq!(
        sections
            .iter()
            .filter(
                |s| s.contains("error during collection") || s.contains("errors during collection")
            )
            .count(),
        1,
        "{log}"
    );
}

/// The `retry` steps of the suite in run.json, by their slice (`None`: the whole suite's).
fn retry_slices(suite: &serde_json::Value) -> Vec<Option<String>> {
    suite["commands"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["step"] == "retry")
        .map(|c| c["slice"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn the_failed_tests_of_every_slice_are_retried_together() {
    let fixture = Fixture::new("split", "split-flaky");
    let run = fixture.run(&["test", "flaky"]);
    assert_code(&run, exit_codes::OK);
    let record = record(&fixture);
    let flaky = suite_record(&record, "flaky");
    assert_eq!(flaky["outcome"], "passed", "{flaky:#}");
    assert_eq!(flaky["counts"]["tests"], 8, "{flaky:#}");
    assert_eq!(flaky["counts"]["flaky"], 8, "{flaky:#}");
    // Each slice failed its four tests; one retry ran the eight, as unsplit.
    assert_eq!(pytest_slices(flaky).len(), 2, "{flaky:#}");
    assert_eq!(retry_slices(flaky), [None], "{flaky:#}");
    assert!(
        run.stdout
            .contains("RETRY flaky [split]: retry 1 of 1, 8 test(s) again"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_split_suite_with_a_flaky_test_retries_and_reports_as_unsplit() {
    let fixture = Fixture::new("split", "split-one-flaky");
    let run = fixture.run(&["test", "one-flaky"]);
    assert_code(&run, exit_codes::OK);
    // The terminal says the retry as it starts, as for an unsplit suite.
    let retry_lines: Vec<&str> = run.stdout.lines().filter(|l| l.contains("RETRY")).collect();
    assert_eq!(retry_lines.len(), 1, "{}", run.stdout);
    assert!(
        retry_lines[0].contains("RETRY one-flaky [split]: retry 1 of 1, 1 test(s) again"),
        "{}",
        run.stdout
    );
    let record = record(&fixture);
    let suite = suite_record(&record, "one-flaky");
    assert_eq!(suite["outcome"], "passed", "{suite:#}");
    assert_eq!(suite["counts"]["flaky"], 1, "{suite:#}");
    assert_eq!(suite["counts"]["failed"], 0, "{suite:#}");
    assert_eq!(
        suite["counts"]["passed"], suite["counts"]["tests"],
        "{suite:#}"
    );
    assert_eq!(
        pytest_slices(suite),
        [Some("1/2".to_string()), Some("2/2".to_string())]
    );
    assert_eq!(retry_slices(suite), [None], "{suite:#}");
    let shaky: Vec<&serde_json::Value> = suite["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["node_id"] == "tests/test_shaky.py::test_fails_once")
        .collect();
    assert_eq!(shaky.len(), 1, "{suite:#}");
    assert_eq!(shaky[0]["outcome"], "flaky", "{:#}", shaky[0]);
    // The log has the slices, then the retry.
    let log = fixture.read("target/xtask/logs/one-flaky.log");
    let second = log.find("xtask: ---- slice 2/2 ----").expect(&log);
    let retries = log.find("xtask: ---- retries").expect(&log);
    assert!(second < retries, "{log}");
    assert!(
        log[retries..].contains("retry 1 of 1: 1 test(s) again"),
        "{log}"
    );
}

/// The tests each slice of the skewed suite ran (one list per process), each named by
/// its file's name and its own (`test_big.py::test_quick_00`), whatever pytest's rootdir.
fn slices_ran(fixture: &Fixture) -> Vec<Vec<String>> {
    let dir = fixture.path("suites/skewed/ran");
    let mut slices: Vec<Vec<String>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            std::fs::read_to_string(entry.unwrap().path())
                .unwrap()
                .lines()
                .map(short_id)
                .collect()
        })
        .collect();
    slices.sort();
    std::fs::remove_dir_all(&dir).unwrap();
    slices
}

fn short_id(node_id: &str) -> String {
    let (file, name) = node_id.split_once("::").unwrap();
    format!("{}::{name}", file.rsplit('/').next().unwrap())
}

/// The slowest slice's share of the recorded time, against the ideal (an even split): 1 is
/// perfect. Every test ran exactly once, in one of two slices.
fn slowest_to_ideal(
    slices: &[Vec<String>],
    durations: &std::collections::BTreeMap<String, f64>,
) -> f64 {
    assert_eq!(slices.len(), 2, "{slices:?}");
    let ran: Vec<&String> = slices.iter().flatten().collect();
    let once: BTreeSet<&String> = ran.iter().copied().collect();
    assert_eq!(ran.len(), once.len(), "a test ran twice: {slices:?}");
    let all: BTreeSet<&String> = durations.keys().collect();
    assert_eq!(once, all, "{slices:?}");
    let total: f64 = durations.values().sum();
    let slowest = slices
        .iter()
        .map(|slice| slice.iter().map(|id| durations[id]).sum::<f64>())
        .fold(0.0, f64::max);
    slowest / (total / 2.0)
}

#[test]
fn recorded_durations_balance_the_slices() {
    let fixture = Fixture::new("split", "split-durations");
    // No durations yet: by size, the big file of quick tests is one slice and every slow
    // file the other.
    let run = fixture.run(&["test", "skewed"]);
    assert_code(&run, exit_codes::OK);
    let log = fixture.read("target/xtask/logs/skewed.log");
    assert!(
        log.contains("(whole test files, balanced by size)"),
        "{log}"
    );
    let by_size = slices_ran(&fixture);

    // The durations of that run, in the file a repository commits.
    let run = fixture.run(&["durations"]);
    assert_code(&run, exit_codes::OK);
    let file: serde_json::Value =
        serde_json::from_str(&fixture.read(".xtask/durations.json")).unwrap();
    let durations: std::collections::BTreeMap<String, f64> = file["suites"]["skewed"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, secs)| (short_id(id), secs.as_f64().unwrap()))
        .collect();
    let size_ratio = slowest_to_ideal(&by_size, &durations);
    assert!(size_ratio > 1.5, "by size: {size_ratio:.2}x the ideal");

    // With them, the slow files are spread over the slices, and the tests of the one that
    // holds more than a slice's share (test_slow_a.py), which no whole-file deal could
    // balance, over both.
    let run = fixture.run(&["test", "skewed"]);
    assert_code(&run, exit_codes::OK);
    let log = fixture.read("target/xtask/logs/skewed.log");
    assert!(
        log.contains("(whole test files, balanced by recorded durations)"),
        "{log}"
    );
    let by_durations = slices_ran(&fixture);
    let ratio = slowest_to_ideal(&by_durations, &durations);
    assert!(ratio < 1.15, "by durations: {ratio:.2}x the ideal");
    for slice in &by_durations {
        assert!(
            slice.iter().any(|id| id.starts_with("test_slow_a.py::")),
            "{by_durations:?}"
        );
        // The light files stay whole.
        assert!(
            !slice.iter().any(|id| id.starts_with("test_big.py::"))
                || slice
                    .iter()
                    .filter(|id| id.starts_with("test_big.py::"))
                    .count()
                    == durations
                        .keys()
                        .filter(|id| id.starts_with("test_big.py::"))
                        .count(),
            "{by_durations:?}"
        );
    }
    let record = record(&fixture);
    let skewed = suite_record(&record, "skewed");
    assert_eq!(skewed["counts"]["tests"], durations.len(), "{skewed:#}");
    assert_eq!(pytest_slices(skewed).len(), 2, "{skewed:#}");

    // Tests added since the durations were written, to the heavy file (collected by both
    // slices: the hash of its node id decides) and in a new file (dealt whole, as a test
    // of the median), still run exactly once.
    let heavy = fixture.read("suites/skewed/tests/test_slow_a.py");
    std::fs::write(
        fixture.path("suites/skewed/tests/test_slow_a.py"),
        format!("{heavy}\n\ndef test_added_0():\n    pass\n\n\ndef test_added_1():\n    pass\n"),
    )
    .unwrap();
    std::fs::write(
        fixture.path("suites/skewed/tests/test_new.py"),
        "def test_new_0():\n    pass\n\n\ndef test_new_1():\n    pass\n",
    )
    .unwrap();
    let run = fixture.run(&["test", "skewed"]);
    assert_code(&run, exit_codes::OK);
    let with_new = slices_ran(&fixture);
    let ran: Vec<&String> = with_new.iter().flatten().collect();
    let once: BTreeSet<&String> = ran.iter().copied().collect();
    assert_eq!(ran.len(), once.len(), "a test ran twice: {with_new:?}");
    let mut expected: BTreeSet<String> = durations.keys().cloned().collect();
    expected.extend(
        [
            "test_slow_a.py::test_added_0",
            "test_slow_a.py::test_added_1",
            "test_new.py::test_new_0",
            "test_new.py::test_new_1",
        ]
        .map(String::from),
    );
    assert_eq!(
        once.into_iter().cloned().collect::<BTreeSet<String>>(),
        expected,
        "{with_new:?}"
    );
}

#[test]
fn a_partition_runs_a_split_suite_whole() {
    let fixture = Fixture::new("split", "split-partition");
    let run = fixture.run(&["test", "many", "--partition", "hash:1/2"]);
    assert_code(&run, exit_codes::OK);
    assert_eq!(
        pytest_slices(suite_record(&record(&fixture), "many")),
        [None]
    );
}

#[test]
fn split_auto_splits_only_from_recorded_durations() {
    let fixture = Fixture::new("split", "split-auto");
    // No history: not split.
    let run = fixture.run(&["test", "many", "--split", "auto", "-j", "2", "--no-cache"]);
    assert_code(&run, exit_codes::OK);
    assert_eq!(
        pytest_slices(suite_record(&record(&fixture), "many")),
        [None]
    );
    // The latest run says `many` is all of the run's work: two workers would leave one
    // idle, so it is split in two.
    let run = fixture.run(&["test", "many", "--split", "auto", "-j", "2", "--no-cache"]);
    assert_code(&run, exit_codes::OK);
    assert_eq!(
        pytest_slices(suite_record(&record(&fixture), "many")).len(),
        2
    );
    // With one worker there is no idle core to fill.
    let run = fixture.run(&["test", "many", "--split", "auto", "-j", "1", "--no-cache"]);
    assert_code(&run, exit_codes::OK);
    assert_eq!(
        pytest_slices(suite_record(&record(&fixture), "many")),
        [None]
    );
}
