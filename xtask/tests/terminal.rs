//! What the terminal shows, through the real binary on a copy of `tests/fixtures/terminal`
//! (suites `passing`, `failing` and `printing`, one environment): one line per passing
//! suite, a failing suite's failures with file:line and its log, `--success-output`,
//! `--no-capture` streaming as output is written, plain lines when piped, and on a real
//! terminal (through `script`) the status line, with colour unless `NO_COLOR` is set.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use xtask::exit_codes;

fn fixture(test: &str) -> Fixture {
    Fixture::new("terminal", test)
}

/// Piped output is plain: no escape codes.
fn assert_plain(text: &str) {
    assert!(
        !text.contains('\x1b'),
        "escape codes in piped output:\n{text}"
    );
}

#[test]
fn a_green_run_prints_one_line_per_suite_the_table_and_the_start_and_final_lines() {
    let fixture = fixture("terminal-green");
    let run = fixture.run(&["test", "passing", "printing", "-j", "2"]);
    assert_code(&run, exit_codes::OK);
    assert_plain(&run.stdout);
    let lines: Vec<&str> = run.stdout.lines().collect();
    // Start line, one line per suite, a blank line, the table (header and a row per suite),
    // a blank line and the final line.
    assert_eq!(lines.len(), 1 + 2 + 1 + 1 + 2 + 1 + 1, "{lines:#?}");
    assert!(lines[0].starts_with("xtask: running 2 suite(s), 2 at a time"));
    let mut results: Vec<&str> = lines[1..3].to_vec();
    results.sort_by_key(|l| !l.contains("passing"));
    assert!(
        results[0].starts_with("      PASSED passing [green]: 1 passed, 0 failed"),
        "{results:?}"
    );
    assert!(results[1].starts_with("      PASSED printing [slow]: 1 passed"));
    assert_eq!(lines[3], "");
    assert!(lines[4].starts_with("suite "), "{}", lines[4]);
    assert!(lines[5].starts_with("passing ") && lines[5].ends_with("passed"));
    assert!(lines[6].starts_with("printing ") && lines[6].ends_with("passed"));
    assert_eq!(lines[7], "");
    assert!(lines[8].starts_with("xtask: passed in "), "{}", lines[8]);
    // No suite's output: pytest's lines are in the log only.
    assert!(!run.stdout.contains("test session starts"));
}

#[test]
fn a_failing_suite_names_its_failed_tests_with_file_and_line_and_its_log() {
    let fixture = fixture("terminal-failing");
    let run = fixture.run(&["test", "failing"]);
    assert_code(&run, exit_codes::TESTS_FAILED);
    assert_plain(&run.stdout);
    let out = &run.stdout;
    assert!(
        out.contains("      FAILED failing [red]: 1 passed, 2 failed"),
        "{out}"
    );
    for (place, name, message) in [
        (
            "suites/all/tests/test_failing.py:5",
            "test_wrong_sum",
            "arithmetic is broken",
        ),
        (
            "suites/all/tests/test_failing.py:9",
            "test_missing_key",
            "KeyError: 'key'",
        ),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(place))
            .unwrap_or_else(|| panic!("no {place} in\n{out}"));
        assert!(line.contains(name), "{line}");
        assert!(out.contains(message), "{message} missing");
        let (file, number) = place.rsplit_once(':').unwrap();
        let def = fixture
            .read(file)
            .lines()
            .nth(number.parse::<usize>().unwrap() - 1)
            .unwrap()
            .to_string();
        assert!(
            def.starts_with(&format!("def {name}(")),
            "{place} is `{def}`"
        );
    }
    // The passing test is not listed, the end of the log is, and the log's path.
    assert!(!out.contains("test_fine"), "{out}");
    assert!(
        out.contains("2 failed, 1 passed in"),
        "the log's end: {out}"
    );
    let log = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("full log: "))
        .expect("the log's path");
    assert!(log.ends_with("logs/failing.log"), "{log}");
    assert!(fixture.read(log).contains("test_wrong_sum"));
}

#[test]
fn success_output_immediate_shows_a_passing_suites_output() {
    let fixture = fixture("terminal-success-output");
    let run = fixture.run(&["test", "passing", "--success-output", "immediate"]);
    assert_code(&run, exit_codes::OK);
    assert!(run.stdout.contains("test session starts"), "{}", run.stdout);
    assert!(run.stdout.contains("1 passed in"));
    // `final`: after every suite, before the table.
    // `--no-cache`: the suite runs again, rather than being replayed from the first run.
    let run = fixture.run(&["test", "passing", "--success-output", "final", "--no-cache"]);
    let output = run.stdout.find("test session starts").expect("the output");
    assert!(output < run.stdout.find("\nsuite ").unwrap());
    assert!(output > run.stdout.find("PASSED passing").unwrap());
}

/// One line of stdout and when it arrived.
struct Timed {
    at: Instant,
    line: String,
}

/// Runs the xtask with stdout read line by line as it comes; returns the lines with their
/// times and when the process ended.
fn run_timed(fixture: &Fixture, args: &[&str]) -> (u8, Vec<Timed>, Instant) {
    use std::os::unix::process::CommandExt;
    let mut command = fixture.command(args);
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command.spawn().expect("running the xtask binary");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            lines.push(Timed {
                at: Instant::now(),
                line,
            });
        }
        lines
    });
    let started = Instant::now();
    let status = wait_with_deadline(&mut child)
        .unwrap_or_else(|| panic!("the xtask ran longer than {RUN_DEADLINE:?} and was killed"));
    let ended = Instant::now();
    let lines = reader.join().unwrap();
    for timed in &lines {
        eprintln!(
            "{:>8.3}s {}",
            (timed.at - started).as_secs_f64(),
            timed.line
        );
    }
    (status.code().unwrap() as u8, lines, ended)
}

#[test]
fn no_capture_streams_pytests_output_as_it_is_written_before_the_result_line() {
    let fixture = fixture("terminal-no-capture");
    // A first run builds the environment, so the timed one measures only the test.
    assert_code(&fixture.run(&["test", "passing"]), exit_codes::OK);
    let (code, lines, ended) =
        run_timed(&fixture, &["test", "printing", "--no-capture", "-j", "1"]);
    assert_eq!(code, exit_codes::OK);
    let find = |what: &str| {
        lines
            .iter()
            .position(|t| t.line.contains(what))
            .unwrap_or_else(|| panic!("no `{what}` in stdout"))
    };
    let (first, second, result) = (
        find("first-print"),
        find("second-print"),
        find("PASSED printing"),
    );
    assert!(first < second && second < result);
    // pytest's own lines come before the suite's result line too.
    assert!(find("test session starts") < result);
    assert!(find("1 passed in") < result);
    let ahead = ended - lines[first].at;
    assert!(
        ahead >= Duration::from_secs(1),
        "the first print reached the pipe only {ahead:?} before the end"
    );
    for timed in &lines {
        assert_plain(&timed.line);
    }
}

#[test]
fn no_capture_with_several_jobs_runs_one_suite_at_a_time_and_says_so() {
    let fixture = fixture("terminal-no-capture-jobs");
    let run = fixture.run(&["test", "passing", "failing", "--no-capture", "-j", "3"]);
    assert_code(&run, exit_codes::TESTS_FAILED);
    let start = run.stdout.lines().next().unwrap();
    assert!(
        start.contains("1 at a time") && start.contains("--no-capture"),
        "{start}"
    );
    // Each suite's output sits between its header and its result line.
    let out = &run.stdout;
    for (suite, printed) in [
        ("passing", "passing-says-hello"),
        ("failing", "short test summary info"),
    ] {
        let header = out
            .find(&format!("── {suite} ["))
            .unwrap_or_else(|| panic!("no header for {suite}"));
        let at = out[header..]
            .find(printed)
            .map(|i| i + header)
            .expect("its output");
        let result = out[header..]
            .find(&format!("D {suite} ["))
            .map(|i| i + header)
            .expect("its result line");
        assert!(
            header < at && at < result,
            "{suite}: {header} {at} {result}"
        );
    }
    // The failures are listed, the log itself is not shown again.
    assert!(out.contains("test_failing.py:5"));
    assert!(!out.contains("the end of its log"));
}

/// `cmd` run under a pseudo-terminal by util-linux `script`; `None` when there is no
/// `script` to run it with.
fn under_terminal(fixture: &Fixture, args: &[&str], no_color: bool) -> (i32, String) {
    let usable = Command::new("script")
        .args(["-qfec", "true", "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        usable,
        "util-linux `script` is needed to give the xtask a terminal: install it (`apt-get install -y bsdutils`)"
    );
    let inner = fixture.command(args);
    let line = std::iter::once(inner.get_program())
        .chain(inner.get_args())
        .map(|a| format!("'{}'", a.to_str().unwrap()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = Command::new("script");
    command
        .args(["-qfec", &line, "/dev/null"])
        .current_dir(&fixture.root);
    for (key, value) in inner.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    command.env_remove("CI").env_remove("NO_COLOR");
    if no_color {
        command.env("NO_COLOR", "1");
    }
    let run = run(command);
    (i32::from(run.code), run.stdout)
}

#[test]
fn on_a_terminal_a_status_line_shows_the_running_suites_and_no_color_removes_colour() {
    let fixture = fixture("terminal-tty");
    let (code, out) = under_terminal(&fixture, &["test", "printing", "passing"], false);
    assert_eq!(code, i32::from(exit_codes::OK), "{out}");
    // Redrawn in place: erased with `\r` + clear-line before the next line.
    // Both suites run at once; the status line names each (in whichever order they started).
    assert!(
        out.split("\r\x1b[2K")
            .any(|status| status.contains("running: ") && status.contains("printing")),
        "{out:?}"
    );
    assert!(out.contains("\r\x1b[2K"), "{out:?}");
    // Redrawn while the suite runs (its test sleeps 2 s), at the runner's ticks: the time
    // beside its name moves on.
    let times: std::collections::BTreeSet<&str> = out
        .split("\r\x1b[2K")
        .filter_map(|status| status.split("printing ").nth(1))
        .filter_map(|rest| rest.split('s').next())
        .filter(|time| time.parse::<f64>().is_ok())
        .collect();
    assert!(times.len() >= 3, "{times:?} in {out:?}");
    assert!(out.contains("\x1b[32m"), "green PASSED: {out:?}");
    // The status line is erased before a result line: nothing of it is left on that line.
    for line in out.lines().filter(|l| l.contains("PASSED")) {
        let after = line.rsplit("\x1b[2K").next().unwrap();
        assert!(
            after.contains("PASSED") && !after.contains("running:"),
            "{line:?}"
        );
    }

    let (code, out) = under_terminal(&fixture, &["test", "passing", "--no-cache"], true);
    assert_eq!(code, i32::from(exit_codes::OK), "{out}");
    assert!(out.contains("running: passing"), "{out:?}");
    assert!(out.contains("PASSED passing"));
    let without_erasing = out.replace("\r\x1b[2K", "");
    assert!(
        !without_erasing.contains('\x1b'),
        "colour with NO_COLOR: {out:?}"
    );
}
