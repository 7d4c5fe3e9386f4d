//! Past runs read back through the real binary, from records real runs (real uv and pytest)
//! wrote: `trace` (a Chrome trace whose spans nest), `runs` (the kept invocations, a killed
//! or corrupt one among them) and `replay` (the terminal output again).

mod common;

use std::collections::{BTreeMap, HashMap};

use common::*;
use serde_json::Value;
use xtask::exit_codes;

/// A run of the `history` fixture: two suites at once, a failure, a skip, a flaky test.
fn history(test: &str) -> (Fixture, Run) {
    let fixture = Fixture::new("history", test);
    let run = fixture.run(&["test", "-j", "2", "--retries", "1"]);
    assert_code(&run, exit_codes::TESTS_FAILED);
    (fixture, run)
}

/// One complete event (`ph: "X"`) of a trace.
#[derive(Debug)]
struct Span {
    name: String,
    cat: String,
    tid: u64,
    start: u64,
    end: u64,
    args: Value,
}

/// Checks what every Trace Event Format reader needs (Perfetto's JSON importer and
/// chrome://tracing's): an object with a `traceEvents` array; each event a `ph`, a `name`,
/// a `pid` and a `tid`; complete events a numeric `ts` and `dur`; metadata events naming
/// the process and each lane that holds a span. Returns the spans.
fn spans_of(trace: &Value) -> Vec<Span> {
    let events = trace["traceEvents"]
        .as_array()
        .expect("a trace is an object with a traceEvents array");
    let mut named_lanes = Vec::new();
    let mut process_named = false;
    let mut spans = Vec::new();
    for event in events {
        assert!(event["name"].is_string(), "{event}");
        assert!(event["pid"].is_u64() && event["tid"].is_u64(), "{event}");
        match event["ph"].as_str() {
            Some("M") => match event["name"].as_str() {
                Some("process_name") => {
                    assert!(event["args"]["name"].is_string(), "{event}");
                    process_named = true;
                }
                Some("thread_name") => {
                    assert!(event["args"]["name"].is_string(), "{event}");
                    named_lanes.push(event["tid"].as_u64().unwrap());
                }
                Some("thread_sort_index") => {
                    assert!(event["args"]["sort_index"].is_i64(), "{event}")
                }
                other => panic!("an unexpected metadata event {other:?}: {event}"),
            },
            Some("X") => {
                let start = event["ts"].as_u64().expect("ts in whole microseconds");
                let dur = event["dur"].as_u64().expect("dur in whole microseconds");
                spans.push(Span {
                    name: event["name"].as_str().unwrap().to_string(),
                    cat: event["cat"].as_str().expect("a category").to_string(),
                    tid: event["tid"].as_u64().unwrap(),
                    start,
                    end: start + dur,
                    args: event["args"].clone(),
                });
            }
            other => panic!("an unexpected phase {other:?}: {event}"),
        }
    }
    assert!(process_named, "the process is named");
    for span in &spans {
        assert!(
            named_lanes.contains(&span.tid),
            "lane {} of {span:?} is named",
            span.tid
        );
    }
    spans
}

/// On each lane, a span starts only after the one before it ended or lies wholly within
/// it, as the viewers draw them.
fn assert_nested(spans: &[Span]) {
    let mut lanes: BTreeMap<u64, Vec<&Span>> = BTreeMap::new();
    for span in spans {
        lanes.entry(span.tid).or_default().push(span);
    }
    for (tid, mut lane) in lanes {
        lane.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
        let mut open: Vec<&Span> = Vec::new();
        for span in lane {
            while open.last().is_some_and(|top| top.end <= span.start) {
                open.pop();
            }
            if let Some(top) = open.last() {
                assert!(
                    span.end <= top.end,
                    "lane {tid}: {span:?} overlaps {top:?} without lying inside it"
                );
            }
            open.push(span);
        }
    }
}

fn at(time: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(time.as_str().unwrap()).unwrap()
}

#[test]
fn a_trace_has_a_lane_per_worker_and_its_spans_nest() {
    let (fixture, _) = history("trace");
    let out = fixture.path("trace.json");
    let run = fixture.run(&["trace", "-o", out.to_str().unwrap()]);
    assert_code(&run, exit_codes::OK);
    let trace: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).expect("the trace is JSON");
    let spans = spans_of(&trace);
    assert_nested(&spans);
    let record = record(&fixture);

    // Timestamps within the run.
    let run_span: Vec<&Span> = spans.iter().filter(|s| s.cat == "run").collect();
    assert_eq!(run_span.len(), 1, "{run_span:?}");
    let run_end = run_span[0].end;
    let duration = record["duration_secs"].as_f64().unwrap();
    assert!(
        run_end as f64 / 1e6 >= duration - 1e-6,
        "the run's span ({run_end} µs) holds its duration ({duration} s)"
    );
    for span in &spans {
        assert!(span.end <= run_end, "{span:?} ends after the run");
    }

    // Each suite once, on a worker's lane; two at once ran on two lanes.
    let suites: Vec<&Span> = spans.iter().filter(|s| s.cat == "suite").collect();
    let mut names: Vec<&str> = suites.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["calm", "mixed"]);
    for suite in &suites {
        let recorded = suite_record(&record, &suite.name);
        assert_eq!(suite.args["outcome"], recorded["outcome"], "{suite:?}");
        let secs = recorded["duration_secs"].as_f64().unwrap();
        assert!(
            ((suite.end - suite.start) as f64 / 1e6 - secs).abs() < 0.001,
            "{suite:?} lasts as long as the record says ({secs} s)"
        );
        let offset = at(&recorded["started_at"]) - at(&record["started_at"]);
        assert!(
            (suite.start as f64 / 1e6 - offset.as_seconds_f64()).abs() < 0.001,
            "{suite:?} starts when the record says ({offset})"
        );
        assert_ne!(suite.tid, run_span[0].tid, "suites are on workers' lanes");
    }
    let overlap = suites[0].start < suites[1].end && suites[1].start < suites[0].end;
    assert_eq!(
        suites[0].tid != suites[1].tid,
        overlap,
        "suites that ran at once are on two lanes, else on one: {suites:?}"
    );

    // Each suite on its worker's lane; suites that ran at once on two lanes.
    for suite in &suites {
        let worker = suite_record(&record, &suite.name)["worker"]
            .as_u64()
            .unwrap();
        assert_eq!(suite.tid, worker + 1, "{suite:?}");
    }

    // Every step of every suite, inside its suite (nesting is checked above, lane by lane).
    let steps: HashMap<&str, usize> =
        spans
            .iter()
            .filter(|s| s.cat == "step")
            .fold(HashMap::new(), |mut n, s| {
                *n.entry(s.args["suite"].as_str().unwrap()).or_default() += 1;
                n
            });
    for suite in ["calm", "mixed"] {
        let recorded = suite_record(&record, suite)["commands"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(steps[suite], recorded, "{suite}: {steps:?}");
    }

    // Every attempt of every test of the record exactly once, with its node id and
    // outcome, inside its suite's span and the step that ran it: the first in `pytest`,
    // a retry in `retry`.
    let mut expected = Vec::new();
    for suite in record["suites"].as_array().unwrap() {
        for test in suite["tests"].as_array().unwrap() {
            for (k, attempt) in test["attempts"].as_array().unwrap().iter().enumerate() {
                expected.push((
                    test["node_id"].as_str().unwrap().to_string(),
                    k + 1,
                    attempt["outcome"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    expected.sort();
    let tests: Vec<&Span> = spans.iter().filter(|s| s.cat == "test").collect();
    let mut drawn: Vec<(String, usize, String)> = tests
        .iter()
        .map(|t| {
            (
                t.args["node_id"].as_str().unwrap().to_string(),
                t.args["attempt"].as_u64().unwrap() as usize,
                t.args["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    drawn.sort();
    assert_eq!(drawn, expected);
    assert!(
        expected.contains(&("tests/test_mixed.py::test_flaky".into(), 2, "passed".into())),
        "the flaky test's retry is its own span: {expected:?}"
    );
    for test in &tests {
        let suite_name = test.args["suite"].as_str().unwrap();
        let holder = |cat: &str, name: &str| {
            spans
                .iter()
                .find(|s| s.cat == cat && s.name == name && s.tid == test.tid)
                .unwrap_or_else(|| panic!("{test:?} is not on the lane of its {cat} {name}"))
        };
        let suite = holder("suite", suite_name);
        let step = if test.args["attempt"] == 1 {
            holder("step", &format!("{suite_name} pytest"))
        } else {
            holder("step", &format!("{suite_name} retry"))
        };
        for parent in [suite, step] {
            assert!(
                parent.start <= test.start && test.end <= parent.end,
                "{test:?} lies within {parent:?}"
            );
        }
        // Its real start: what the plugin noted, to the microsecond (or its step's
        // start, when pytest's clock put it a hair before).
        let node_id = test.args["node_id"].as_str().unwrap();
        let attempt = test.args["attempt"].as_u64().unwrap() as usize - 1;
        let recorded = suite_record(&record, suite_name)["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["node_id"] == node_id)
            .unwrap()["attempts"][attempt]["started_offset_secs"]
            .as_f64()
            .unwrap();
        let drawn = test.start as f64 / 1e6;
        assert!(
            (drawn - recorded).abs() < 1e-5 || test.start == step.start,
            "{test:?} starts at {recorded} s"
        );
    }
}

#[test]
fn trace_refuses_what_is_not_a_run_record_naming_the_file() {
    let fixture = Fixture::empty("trace-bad-input");
    let out = fixture.path("trace.json");
    let out = out.to_str().unwrap();

    let run = fixture.run(&["trace", "-o", out]);
    assert_code(&run, exit_codes::USAGE_ERROR);
    assert!(
        run.stderr.contains("there is no latest run"),
        "{}",
        run.stderr
    );

    let run = fixture.run(&["trace", "20991231T000000.000Z-1-000000", "-o", out]);
    assert_code(&run, exit_codes::USAGE_ERROR);
    assert!(
        run.stderr
            .contains("no run `20991231T000000.000Z-1-000000`")
            && run.stderr.contains("cargo xtask runs"),
        "{}",
        run.stderr
    );

    fixture.write("old.json", r#"{"schema_version": 999, "suites": []}"#);
    let run = fixture.run(&["trace", "old.json", "-o", out]);
    assert_code(&run, exit_codes::USAGE_ERROR);
    assert!(
        run.stderr.contains("old.json has schema_version 999"),
        "{}",
        run.stderr
    );

    fixture.write("garbage.json", "run.json? no");
    let run = fixture.run(&["trace", "garbage.json", "-o", out]);
    assert_code(&run, exit_codes::USAGE_ERROR);
    assert!(
        run.stderr.contains("garbage.json is not a run record"),
        "{}",
        run.stderr
    );
    assert!(!fixture.path("trace.json").exists(), "no trace was written");
}

#[test]
fn runs_lists_the_kept_invocations_newest_first_a_killed_and_a_corrupt_one_among_them() {
    let (fixture, _) = history("runs");
    let record = record(&fixture);
    let id = record["run_id"].as_str().unwrap().to_string();
    let runs = fixture.path("target/xtask/runs");
    // An older invocation killed outright: its record still says `running`, and nothing
    // holds its lock.
    let killed = "20000101T000000.000Z-1-aaaaaa";
    std::fs::create_dir_all(runs.join(killed)).unwrap();
    let mut left = record.clone();
    left["run_id"] = killed.into();
    left["status"] = "running".into();
    left["started_at"] = "2000-01-01T00:00:00+00:00".into();
    left["outcome"] = Value::Null;
    left["duration_secs"] = Value::Null;
    left["suites"] = serde_json::json!([]);
    std::fs::write(runs.join(killed).join("run.json"), left.to_string()).unwrap();
    std::fs::write(runs.join(killed).join(".lock"), "").unwrap();
    // An older one whose record was cut short.
    let corrupt = "20000101T000001.000Z-2-bbbbbb";
    std::fs::create_dir_all(runs.join(corrupt)).unwrap();
    std::fs::write(
        runs.join(corrupt).join("run.json"),
        "{\"schema_version\": 2, \"sui",
    )
    .unwrap();

    let run = fixture.run(&["runs"]);
    assert_code(&run, exit_codes::OK);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three runs: {}", run.stdout);
    assert!(
        lines[0].starts_with("run ") && lines[0].ends_with("commit"),
        "{}",
        lines[0]
    );
    // Newest first.
    assert!(
        lines[1].starts_with(&format!("{id} (latest)")),
        "{}",
        run.stdout
    );
    assert!(lines[2].starts_with(corrupt), "{}", run.stdout);
    assert!(lines[3].starts_with(killed), "{}", run.stdout);

    let columns: Vec<&str> = lines[1].split_whitespace().collect();
    let total = |key: &str| -> u64 {
        record["suites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["counts"][key].as_u64().unwrap())
            .sum()
    };
    // id (latest) date time outcome tests passed failed skipped errors time commit
    assert_eq!(columns[4], "failed", "{}", lines[1]);
    let counts: Vec<u64> = columns[5..10].iter().map(|c| c.parse().unwrap()).collect();
    assert_eq!(
        counts,
        ["tests", "passed", "failed", "skipped", "errors"].map(total),
        "{}",
        lines[1]
    );
    let duration = record["duration_secs"].as_f64().unwrap();
    assert_eq!(columns[10], format!("{duration:.1}s"), "{}", lines[1]);
    assert_eq!(
        columns[11], "-",
        "the fixture is no git repository: {}",
        lines[1]
    );

    assert!(
        lines[2].contains("unreadable") && lines[2].contains("is not a run record"),
        "{}",
        lines[2]
    );
    assert!(lines[3].contains("running (killed)"), "{}", lines[3]);
}

#[test]
fn replay_prints_the_runs_terminal_output_again_from_its_record() {
    let (fixture, original) = history("replay");
    let record = record(&fixture);
    let id = record["run_id"].as_str().unwrap();
    // Another run since: `latest` moves on, the run id still names the first.
    let calm = fixture.run(&["test", "calm"]);
    assert_code(&calm, exit_codes::OK);

    let replay = fixture.run(&["replay", id]);
    // The run's own exit code, as the run ended.
    assert_code(&replay, exit_codes::TESTS_FAILED);
    let (header, body) = replay.stdout.split_once('\n').unwrap();
    assert!(
        header.starts_with(&format!(
            "xtask: replay of run {id} (`cargo xtask test -j 2 --retries 1`"
        )),
        "{header}"
    );
    // What the run printed, line for line: suite lines, the retry, the failure with
    // file:line and message, the end of the log, the table, the last line.
    assert!(body.contains("(environment built in "), "{body}");
    assert_eq!(
        without_env_times(body),
        without_env_times(&original.stdout),
        "the replay differs from the run's own output"
    );
    assert!(
        body.contains("RETRY mixed [history]: retry 1 of 1"),
        "{body}"
    );
    assert!(
        body.contains("failed suites/mixed/tests/test_mixed.py:12: tests.test_mixed::test_fails")
            && body.contains("AssertionError: one is not two"),
        "{body}"
    );
    // Through a path as well: the record's directory.
    let dir = fixture.path(&format!("target/xtask/runs/{id}"));
    let by_path = fixture.run(&["replay", dir.to_str().unwrap()]);
    assert_code(&by_path, exit_codes::TESTS_FAILED);
    assert_eq!(by_path.stdout, replay.stdout);
    // The run that passed since replays with its own code.
    assert_code(&fixture.run(&["replay"]), exit_codes::OK);
}

/// A suite that ran past the runner's slow period (60 s) was reported SLOW once per period
/// by the run (on a terminal without the status line); its replay says so as well. A real
/// run's record, with the suite's time set to 2 minutes 5 seconds.
#[test]
fn a_replayed_slow_suite_is_reported_slow_once_per_period_it_ran() {
    let (fixture, _) = history("replay-slow");
    let mut record = record(&fixture);
    let id = record["run_id"].as_str().unwrap().to_string();
    let calm = record["suites"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["name"] == "calm")
        .unwrap();
    let every = xtask::runner::SLOW_EVERY.as_secs();
    calm["duration_secs"] = (2.0 * every as f64 + 5.0).into();
    let path = fixture.path(&format!("target/xtask/runs/{id}/run.json"));
    std::fs::write(&path, record.to_string()).unwrap();

    let replay = fixture.run(&["replay", path.to_str().unwrap()]);
    assert_code(&replay, exit_codes::TESTS_FAILED);
    let slow: Vec<&str> = replay
        .stdout
        .lines()
        .filter(|l| l.contains("SLOW"))
        .collect();
    assert_eq!(
        slow,
        [
            format!("        SLOW calm [history]: still running after {every}s"),
            format!(
                "        SLOW calm [history]: still running after {}s",
                2 * every
            )
        ],
        "{}",
        replay.stdout
    );
    let result = replay.stdout.find("PASSED calm [history]").unwrap();
    assert!(
        replay.stdout.find("SLOW calm").unwrap() < result,
        "before its result: {}",
        replay.stdout
    );
}

#[test]
fn a_smoke_runs_services_are_replayed_and_drawn_on_their_own_lanes() {
    let fixture = Fixture::new("smoke", "past-runs-smoke");
    let mut command = fixture.command(&["smoke", "uses-ready"]);
    command.env("SMOKE_FIXTURE_SECRET", "s3cr3t-value-for-past-runs");
    let original = run(command);
    assert_code(&original, exit_codes::OK);
    assert!(
        original.stdout.contains("xtask: service `"),
        "{}",
        original.stdout
    );

    let replay = fixture.run(&["replay"]);
    assert_code(&replay, exit_codes::OK);
    let (_, body) = replay.stdout.split_once('\n').unwrap();
    assert_eq!(without_env_times(body), without_env_times(&original.stdout));

    let out = fixture.path("trace.json");
    let run = fixture.run(&["trace", "latest", "-o", out.to_str().unwrap()]);
    assert_code(&run, exit_codes::OK);
    let trace: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let spans = spans_of(&trace);
    assert_nested(&spans);
    let record = record(&fixture);
    let services = record["services"].as_array().unwrap();
    assert!(!services.is_empty(), "{record:#}");
    for service in services {
        let name = service["name"].as_str().unwrap();
        let start = spans
            .iter()
            .find(|s| s.cat == "service" && s.name == format!("{name} start"))
            .unwrap_or_else(|| panic!("no span for service {name}: {spans:?}"));
        let offset = service["started_offset_secs"].as_f64().unwrap();
        assert!(
            (start.start as f64 / 1e6 - offset).abs() < 1e-5,
            "{start:?}"
        );
        assert!(
            spans.iter().any(|s| s.cat == "service"
                && s.name == format!("{name} up")
                && s.tid == start.tid
                && s.start == start.end),
            "{name} is up from when it was ready until stopped: {spans:?}"
        );
    }
}

/// The run `target/xtask/latest` leads to.
fn latest_id(fixture: &Fixture) -> String {
    std::fs::read_link(fixture.path("target/xtask/latest"))
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The fixture's manifest with `[workspace.metadata.xtask.runs]` set to `keys`.
fn retain(fixture: &Fixture, keys: &str) {
    let text = fixture.read("Cargo.toml");
    let text = match text.find("\n[workspace.metadata.xtask.runs]\n") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    fixture.write(
        "Cargo.toml",
        &format!("{text}\n[workspace.metadata.xtask.runs]\n{keys}\n"),
    );
}

fn passes(fixture: &Fixture) -> String {
    let run = fixture.run(&["test", "calm"]);
    assert_code(&run, exit_codes::OK);
    latest_id(fixture)
}

#[test]
fn the_runs_kept_follow_the_manifests_count_age_and_size() {
    let fixture = Fixture::new("record", "runs-retention");
    // By count: two finished runs are kept when an invocation starts, besides its own.
    retain(&fixture, "keep = 2");
    let ids: Vec<String> = (0..4).map(|_| passes(&fixture)).collect();
    assert_eq!(run_ids(&fixture), ids[1..]);

    // By age: a run from 2000 (its run id is its start) goes, the others stay.
    let old = "20000101T000000.000Z-1-aaaaaa";
    copy_dir(
        &fixture.path(&format!("target/xtask/runs/{}", ids[1])),
        &fixture.path(&format!("target/xtask/runs/{old}")),
    );
    std::fs::remove_file(fixture.path(&format!("target/xtask/runs/{old}/.lock"))).ok();
    std::fs::write(fixture.path(&format!("target/xtask/runs/{old}/.lock")), "").unwrap();
    retain(&fixture, "keep = 10\nmax-age = \"1d\"");
    let fifth = passes(&fixture);
    let mut expected = ids[1..].to_vec();
    expected.push(fifth.clone());
    assert_eq!(run_ids(&fixture), expected, "the run from 2000 is gone");

    // By size: the newest runs that fit together in 2 MB; the oldest, grown past it with
    // a 3 MB log, goes, and the ones newer than it stay.
    let big = fixture.path(&format!("target/xtask/runs/{}/logs/big.log", ids[1]));
    std::fs::write(&big, vec![b'x'; 3_000_000]).unwrap();
    retain(&fixture, "max-size = \"2MB\"");
    let sixth = passes(&fixture);
    let mut expected = ids[2..].to_vec();
    expected.extend([fifth.clone(), sixth.clone()]);
    assert_eq!(run_ids(&fixture), expected, "{} is over the size", ids[1]);

    // None kept but the latest (the run `latest` led to when this one started) and its own.
    retain(&fixture, "keep = 0");
    let seventh = passes(&fixture);
    assert_eq!(run_ids(&fixture), [sixth, seventh.clone()]);
    let runs = fixture.run(&["runs"]);
    assert_code(&runs, exit_codes::OK);
    assert!(
        runs.stdout.contains(&format!("{seventh} (latest)")),
        "{}",
        runs.stdout
    );

    // A bad value is named where it is written; nothing is pruned by a manifest that
    // cannot be read.
    let before = run_ids(&fixture);
    retain(&fixture, "keep = -1\nmax-size = \"lots\"");
    let bad = fixture.run(&["test", "calm"]);
    assert_code(&bad, exit_codes::MANIFEST_ERROR);
    let lines = fixture.read("Cargo.toml").lines().count();
    assert!(
        bad.stderr.contains(&format!(
            "Cargo.toml:{}:8: workspace.metadata.xtask.runs.keep: `-1` is not a number of runs",
            lines - 1
        )),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr.contains(&format!(
            "Cargo.toml:{lines}:12: workspace.metadata.xtask.runs.max-size: `lots` is not a size"
        )),
        "{}",
        bad.stderr
    );
    let after = run_ids(&fixture);
    assert!(
        before.iter().all(|id| after.contains(id)),
        "{before:?} {after:?}"
    );
}

#[test]
fn two_invocations_pruning_at_once_keep_each_others_runs() {
    let fixture = Fixture::new("record", "runs-retention-at-once");
    retain(&fixture, "keep = 0");
    for _ in 0..3 {
        passes(&fixture);
    }
    let before = run_ids(&fixture);
    let at_once: Vec<_> = (0..2)
        .map(|_| {
            let command = fixture.command(&["test", "calm"]);
            std::thread::spawn(move || run(command))
        })
        .collect();
    for invocation in at_once {
        assert_code(&invocation.join().unwrap(), exit_codes::OK);
    }
    let after = run_ids(&fixture);
    let new: Vec<&String> = after.iter().filter(|id| !before.contains(id)).collect();
    assert_eq!(new.len(), 2, "both invocations' runs are kept: {after:?}");
    for id in new {
        let record: Value =
            serde_json::from_str(&fixture.read(&format!("target/xtask/runs/{id}/run.json")))
                .unwrap();
        assert_eq!(record["status"], "finished", "{id}");
        assert_eq!(record["outcome"], "passed", "{id}");
    }
    assert!(after.len() <= 3, "the older ones are pruned: {after:?}");
}
