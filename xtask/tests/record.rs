//! The run record through the real binary with real uv and pytest: every test of a run,
//! its attempts with real starts, every step and the worker that ran each suite, valid
//! against the generated schema; and `--rerun` chains built on it.

mod common;

use common::*;
use xtask::exit_codes;
use xtask::report::run_record::{RunRecord, Status, SuiteRecord, TestOutcome, TestRecord};

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
    assert_eq!(record.schema_version, 4);
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

    // Fixed, the suite that did not run to its end reruns whole.
    fixture.edit("Cargo.toml", r#", "no-such-package-xtask-record==1""#, "");
    let rerun = fixture.run(&["test", "--rerun"]);
    assert_code(&rerun, exit_codes::OK);
    let record = typed_record(&fixture);
    let calm = suite(&record, "calm");
    assert_eq!(
        node_ids(calm),
        [
            "tests/test_calm.py::test_one",
            "tests/test_calm.py::test_two"
        ]
    );
    let rerun_of = record.rerun_of.as_ref().unwrap();
    assert_eq!((rerun_of.whole_suites, rerun_of.whole_suites_ran), (1, 1));
    assert!(
        rerun
            .stderr
            .contains(": 1 of 1 suite(s) that did not run to their end now did"),
        "{}",
        rerun.stderr
    );
}

/// The latest run is a new one, a rerun of `source` that ran nothing and said why, and
/// every stable path leads to it: run.json, report.html, junit.xml (no suite), junit/ and
/// logs/. Returns its record.
fn assert_recorded_nothing_to_run(fixture: &Fixture, source: &str) -> RunRecord {
    assert_valid_run_record(&fixture.path("target/xtask/run.json"));
    let record = typed_record(fixture);
    assert_ne!(record.run_id, source, "a new run is recorded");
    assert!(
        run_ids(fixture).contains(&record.run_id),
        "{} has its own directory",
        record.run_id
    );
    assert_eq!(record.status, Status::Finished);
    assert_eq!(record.outcome.as_deref(), Some("passed"));
    assert_eq!(record.exit_code, Some(exit_codes::OK));
    assert!(record.suites.is_empty(), "{:?}", record.suites);
    let of = record.rerun_of.as_ref().expect("it names its source");
    assert_eq!(of.run_id, source);
    assert_eq!(
        of.nothing_to_run.as_deref(),
        Some("it passed and no test file changed since")
    );
    let dir = fixture.path(&format!("target/xtask/runs/{}", record.run_id));
    for stable in ["run.json", "report.html", "junit.xml", "junit", "logs"] {
        let through = std::fs::canonicalize(fixture.path(&format!("target/xtask/{stable}")))
            .unwrap_or_else(|e| panic!("target/xtask/{stable}: {e}"));
        assert_eq!(
            through,
            dir.canonicalize().unwrap().join(stable),
            "{stable}"
        );
    }
    let report = fixture.report();
    assert!(report.test_suites.is_empty(), "junit.xml holds no suite");
    let page = fixture.read("target/xtask/report.html");
    assert!(page.contains(&record.run_id), "report.html is this run's");
    record
}

fn node_ids(suite: &SuiteRecord) -> Vec<&str> {
    let mut ids: Vec<&str> = suite
        .tests
        .iter()
        .filter_map(|t| t.node_id.as_deref())
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_rerun_chain_runs_what_failed_until_nothing_does() {
    let fixture = Fixture::new("record", "record-rerun-chain");
    let first = fixture.run(&["test"]);
    assert_code(&first, exit_codes::TESTS_FAILED);
    let first_record = typed_record(&fixture);

    // The failed and errored tests of `mixed` run again; `calm` passed and does not.
    let second = fixture.run(&["test", "--rerun"]);
    assert_code(&second, exit_codes::TESTS_FAILED);
    assert_valid_run_record(&fixture.path("target/xtask/run.json"));
    let record = typed_record(&fixture);
    let rerun_of = record
        .rerun_of
        .as_ref()
        .expect("the rerun names its source");
    assert_eq!(rerun_of.run_id, first_record.run_id);
    assert_eq!(
        record
            .suites
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["mixed"]
    );
    let mixed = suite(&record, "mixed");
    assert_eq!(
        node_ids(mixed),
        [
            "tests/test_mixed.py::test_errors",
            "tests/test_mixed.py::test_fails",
            "tests/test_mixed.py::test_fails_once",
        ]
    );
    // The five that passed or were skipped were deselected, not run.
    assert_eq!(mixed.counts.deselected, 5, "{:#?}", mixed.counts);
    assert_eq!(
        (rerun_of.failing, rerun_of.now_pass, rerun_of.still_fail),
        (3, 1, 2)
    );
    assert!(
        second.stderr.contains(&format!(
            "rerun of {}: 1 of 3 failing test(s) now pass; 2 still fail",
            first_record.run_id
        )),
        "{}",
        second.stderr
    );

    // The code is fixed and a test added: the next rerun runs the two and the new one.
    fixture.edit(
        "suites/mixed/tests/test_mixed.py",
        "assert 1 == 2, \"one is not two\"",
        "assert 1 == 1",
    );
    fixture.edit(
        "suites/mixed/tests/test_mixed.py",
        "raise RuntimeError(\"the fixture breaks\")",
        "return 1",
    );
    let text = fixture.read("suites/mixed/tests/test_mixed.py");
    fixture.write(
        "suites/mixed/tests/test_mixed.py",
        &format!("{text}\n\ndef test_added():\n    pass\n"),
    );
    let second_id = record.run_id.clone();
    let third = fixture.run(&["test", "--rerun"]);
    assert_code(&third, exit_codes::OK);
    let record = typed_record(&fixture);
    let rerun_of = record.rerun_of.as_ref().unwrap();
    assert_eq!(rerun_of.run_id, second_id);
    assert_eq!(
        (
            rerun_of.failing,
            rerun_of.now_pass,
            rerun_of.still_fail,
            rerun_of.new_tests
        ),
        (2, 2, 0, 1)
    );
    assert_eq!(
        node_ids(suite(&record, "mixed")),
        [
            "tests/test_mixed.py::test_added",
            "tests/test_mixed.py::test_errors",
            "tests/test_mixed.py::test_fails",
        ]
    );
    assert!(
        third
            .stderr
            .contains("2 of 2 failing test(s) now pass; 0 still fail; 1 test(s) added since ran"),
        "{}",
        third.stderr
    );
    // Its replay says again how the chain stood.
    let replay = fixture.run(&["replay"]);
    assert_code(&replay, exit_codes::OK);
    assert!(
        replay.stderr.contains(&format!(
            "xtask: rerun of {second_id}: 2 of 2 failing test(s) now pass; 0 still fail; 1 test(s) added since ran"
        )),
        "{}",
        replay.stderr
    );

    // The chain has converged: nothing is left to run, and nothing runs; the rerun is
    // recorded all the same, and a rerun of it has nothing to run either.
    let fourth = fixture.run(&["test", "--rerun", "latest"]);
    assert_code(&fourth, exit_codes::OK);
    assert!(
        fourth.stderr.contains(&format!(
            "rerun of {}: nothing to run: it passed and no test file changed since",
            record.run_id
        )),
        "{}",
        fourth.stderr
    );
    let nothing = assert_recorded_nothing_to_run(&fixture, &record.run_id);
    let fifth = fixture.run(&["test", "--rerun", "latest"]);
    assert_code(&fifth, exit_codes::OK);
    assert!(
        fifth.stderr.contains(&format!(
            "rerun of {}: nothing to run: it passed and no test file changed since",
            nothing.run_id
        )),
        "{}",
        fifth.stderr
    );
    assert_recorded_nothing_to_run(&fixture, &nothing.run_id);

    // An earlier run of the chain is named by its id, or by its run.json's path.
    let by_id = fixture.run(&["test", "calm", "--rerun", &first_record.run_id]);
    assert_code(&by_id, exit_codes::OK);
    assert!(
        by_id
            .stderr
            .contains("suite `mixed` left out: this command does not select it"),
        "{}",
        by_id.stderr
    );
    // Recorded as a rerun that ran nothing, and why.
    let nothing = typed_record(&fixture);
    let of = nothing.rerun_of.unwrap();
    assert_eq!(of.run_id, first_record.run_id);
    assert_eq!(
        of.nothing_to_run.as_deref(),
        Some("what it left failing is not selected here")
    );
    assert!(nothing.suites.is_empty());
    let path = fixture.path(&format!(
        "target/xtask/runs/{}/run.json",
        first_record.run_id
    ));
    let by_path = fixture.run(&["test", "mixed", "--rerun", path.to_str().unwrap()]);
    assert_code(&by_path, exit_codes::OK);
    assert_eq!(
        typed_record(&fixture).rerun_of.unwrap().run_id,
        first_record.run_id
    );
}

#[test]
fn a_rerun_of_a_passing_run_runs_nothing_and_says_so() {
    let fixture = Fixture::new("record", "record-rerun-passed");
    let first = fixture.run(&["test", "calm"]);
    assert_code(&first, exit_codes::OK);
    let id = typed_record(&fixture).run_id;
    let rerun = fixture.run(&["test", "--rerun"]);
    assert_code(&rerun, exit_codes::OK);
    assert!(
        rerun.stderr.contains(&format!(
            "xtask: rerun of {id}: nothing to run: it passed and no test file changed since"
        )),
        "{}",
        rerun.stderr
    );
    assert!(!rerun.stdout.contains("PASSED"), "{}", rerun.stdout);
    let nothing = assert_recorded_nothing_to_run(&fixture, &id);
    // `runs` lists it, as the latest, passed with no test.
    let runs = fixture.run(&["runs"]);
    assert_code(&runs, exit_codes::OK);
    let line = runs.stdout.lines().nth(1).unwrap();
    assert!(
        line.starts_with(&format!("{} (latest)", nothing.run_id)),
        "{}",
        runs.stdout
    );
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        columns[4..10],
        ["passed", "0", "0", "0", "0", "0"],
        "{line}"
    );
    // Its replay says what the rerun said, and exits as it did.
    let replay = fixture.run(&["replay"]);
    assert_code(&replay, exit_codes::OK);
    assert!(
        replay.stderr.contains(&format!(
            "xtask: rerun of {id}: nothing to run: it passed and no test file changed since"
        )),
        "{}",
        replay.stderr
    );

    // A test added to the passing suite: the rerun runs it alone.
    let text = fixture.read("suites/calm/tests/test_calm.py");
    fixture.write(
        "suites/calm/tests/test_calm.py",
        &format!("{text}\n\ndef test_new():\n    pass\n"),
    );
    let added = fixture.run(&["test", "--rerun"]);
    assert_code(&added, exit_codes::OK);
    assert!(
        added
            .stderr
            .contains("suite `calm` passed, but its test files changed since"),
        "{}",
        added.stderr
    );
    let record = typed_record(&fixture);
    let calm = suite(&record, "calm");
    assert_eq!(node_ids(calm), ["tests/test_calm.py::test_new"]);
    assert_eq!(calm.counts.deselected, 2);
    assert_eq!(record.rerun_of.as_ref().unwrap().new_tests, 1);

    // A file changed with no test added: every test is deselected, and that passes.
    let text = fixture.read("suites/calm/tests/test_calm.py");
    fixture.write(
        "suites/calm/tests/test_calm.py",
        &format!("# edited\n{text}"),
    );
    let edited = fixture.run(&["test", "--rerun"]);
    assert_code(&edited, exit_codes::OK);
    let record = typed_record(&fixture);
    let calm = suite(&record, "calm");
    assert_eq!(calm.outcome, "passed", "{:?}", calm.detail);
    assert!(calm.tests.is_empty(), "{:#?}", calm.tests);
    assert_eq!(calm.counts.deselected, 3);

    // A run that is not there is a usage error naming where it looked.
    let missing = fixture.run(&["test", "--rerun", "no-such-run"]);
    assert_code(&missing, exit_codes::USAGE_ERROR);
    assert!(
        missing
            .stderr
            .contains("--rerun no-such-run: no run `no-such-run`: it is neither a run id"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_removed_suite_and_a_vanished_test_are_reported_never_dropped() {
    let fixture = Fixture::new("record", "record-rerun-removed");
    fixture.edit(
        "suites/calm/tests/test_calm.py",
        "def test_two():\n    pass",
        "def test_two():\n    assert False",
    );
    let first = fixture.run(&["test"]);
    assert_code(&first, exit_codes::TESTS_FAILED);
    let id = typed_record(&fixture).run_id;

    // `calm` leaves the manifest; `test_fails` is renamed.
    fixture.edit(
        "Cargo.toml",
        r#"[[workspace.metadata.xtask.suites]]
name = "calm""#,
        r#"[[workspace.metadata.xtask.gone]]
name = "calm""#,
    );
    let manifest = fixture.read("Cargo.toml");
    let cut = manifest.find("[[workspace.metadata.xtask.gone]]").unwrap();
    fixture.write("Cargo.toml", &manifest[..cut]);
    fixture.edit(
        "suites/mixed/tests/test_mixed.py",
        "def test_fails():",
        "def test_renamed():",
    );
    let rerun = fixture.run(&["test", "--rerun"]);
    assert_code(&rerun, exit_codes::TESTS_FAILED);
    assert!(
        rerun.stderr.contains(&format!(
            "rerun of {id}: suite `calm` (1 failing test(s)) is no longer in the manifest: not rerun"
        )),
        "{}",
        rerun.stderr
    );
    assert!(
        rerun.stderr.contains(&format!(
            "`tests/test_mixed.py::test_fails` of suite `mixed` failed in {id} and no longer exists"
        )),
        "{}",
        rerun.stderr
    );
    assert_valid_run_record(&fixture.path("target/xtask/run.json"));
    let record = typed_record(&fixture);
    let rerun_of = record.rerun_of.as_ref().unwrap();
    assert_eq!(rerun_of.removed_suites, ["calm"]);
    assert_eq!(rerun_of.gone, ["mixed: tests/test_mixed.py::test_fails"]);
    // The renamed test is new to the record: it ran (and fails, as before).
    let mixed = suite(&record, "mixed");
    assert_eq!(
        test(mixed, "tests/test_mixed.py::test_renamed").outcome,
        TestOutcome::Failed
    );
    assert_eq!(rerun_of.new_tests, 1);
    assert!(
        rerun.stderr.contains(
            "1 no longer exist; 1 test(s) added since ran; 1 suite(s) no longer in the manifest"
        ),
        "{}",
        rerun.stderr
    );
}

/// run.json's `peak_rss_bytes` is the xtask's own: a parent that held 300 MB when it forked
/// the xtask does not count. (`getrusage`'s `ru_maxrss` survives `execve`, so a benchmark
/// that had just rendered a big report once read as a 250 MB xtask.)
#[test]
fn the_recorded_peak_memory_is_the_xtasks_own_not_its_forking_parents() {
    let fixture = Fixture::new("record", "record-peak");
    let command = fixture.command(&["test", "calm"]);
    let spec = serde_json::json!({
        "argv": std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        "cwd": command.get_current_dir().map(|d| d.to_string_lossy().into_owned()),
        "env": command
            .get_envs()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), v.map(|v| v.to_string_lossy().into_owned())))
            .collect::<Vec<_>>(),
    });
    // A parent that touches 300 MB, then forks and execs the xtask (as a process-group
    // spawner must: no vfork), and waits.
    let script = r#"
import json, os, sys
spec = json.loads(sys.stdin.read())
fat = bytearray(300 * 1024 * 1024)
for i in range(0, len(fat), 4096):
    fat[i] = 1
env = dict(os.environ)
for key, value in spec["env"]:
    if value is None:
        env.pop(key, None)
    else:
        env[key] = value
pid = os.fork()
if pid == 0:
    if spec["cwd"]:
        os.chdir(spec["cwd"])
    os.execve(spec["argv"][0], spec["argv"], env)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let mut parent = std::process::Command::new("python3");
    parent
        .args(["-c", script])
        .stdin(std::process::Stdio::piped());
    default_signals(&mut parent);
    let mut child = parent.spawn().expect("python3 runs");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), spec.to_string().as_bytes()).unwrap();
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(i32::from(exit_codes::OK)), "{status:?}");

    let record = typed_record(&fixture);
    assert_eq!(suite(&record, "calm").outcome, "passed");
    let peak = record
        .peak_rss_bytes
        .expect("run.json has the xtask's peak");
    assert!(
        (1_000_000..100_000_000).contains(&peak),
        "the xtask's own peak is a few MB, never the parent's 300 MB: {peak} bytes"
    );
}
