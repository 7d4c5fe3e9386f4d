//! `cargo xtask smoke` through the real binary on copies of `tests/fixtures/smoke`: services
//! that become ready, never do, exit at start, find their port taken or ignore SIGINT;
//! prerequisites that are down or set. After every test no process of the fixture is left.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;
use xtask::exit_codes;

const SECRET: &str = "s3cr3t-smoke-value-9187";

fn health<'a>(record: &'a Value, name: &str) -> &'a Value {
    record["health"]
        .as_array()
        .unwrap_or_else(|| panic!("run.json has no health snapshot: {record:#}"))
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("no health line {name}: {record:#}"))
}

/// Every pid the fixture's services recorded; none may still run. Returns how many.
fn assert_no_process_left(fixture: &Fixture) -> usize {
    let dir = fixture.path("pids");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        pids.push(text.trim().parse::<u32>().unwrap());
    }
    assert_gone(&pids);
    pids.len()
}

fn files_containing(dir: &Path, needle: &str, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_symlink() {
            continue;
        }
        if path.is_dir() {
            files_containing(&path, needle, found);
        } else if std::fs::read(&path)
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        {
            found.push(path.display().to_string());
        }
    }
}

fn smoke(fixture: &Fixture, args: &[&str]) -> Run {
    let mut command = fixture.command(args);
    command.env("SMOKE_FIXTURE_SECRET", SECRET);
    run(command)
}

#[test]
fn ready_services_are_used_then_stopped_with_their_trees_and_the_secret_is_never_shown() {
    let fixture = Fixture::new("smoke", "smoke-ready");
    let run = smoke(&fixture, &["smoke", "uses-ready"]);
    assert_code(&run, exit_codes::OK);
    let record = record(&fixture);
    assert_eq!(suite_record(&record, "uses-ready")["outcome"], "passed");
    for name in ["ready", "stubborn", "secret", "true"] {
        let line = health(&record, name);
        assert_eq!(line["available"], true, "{line:#}");
        assert!(line["checked_at"].is_string(), "{line:#}");
    }
    assert_eq!(health(&record, "secret")["target"], "SMOKE_FIXTURE_SECRET");
    assert!(health(&record, "ready")["latency_ms"].is_number());
    assert_valid_run_record(&fixture.path("target/xtask/run.json"));
    // The snapshot is in the JUnit too, as properties of the suite that needs it.
    let report = fixture.report();
    let suite = suite(&report, "uses-ready");
    let property = |name: &str| {
        suite
            .properties
            .iter()
            .find(|p| p.name.as_str() == name)
            .map(|p| p.value.as_str().to_string())
    };
    let ready = property("health:ready").expect("a health:ready property");
    assert!(ready.contains("available"), "{ready}");
    assert!(property("health:secret").is_some());
    // Each service logged under the run's directory, and was stopped.
    let log = fixture.read("target/xtask/latest/logs/service-stubborn.log");
    assert!(log.contains("stubborn: serving"), "{log}");
    assert!(log.contains("stopped by the xtask"), "{log}");
    // The stubborn one has a child: both recorded, both gone.
    assert!(assert_no_process_left(&fixture) >= 3);

    let mut found = Vec::new();
    files_containing(&fixture.path("target/xtask"), SECRET, &mut found);
    assert!(found.is_empty(), "the secret is in {found:?}");
    assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
}

#[test]
fn a_service_that_never_becomes_ready_is_a_service_error_at_its_deadline() {
    let fixture = Fixture::new("smoke", "smoke-never");
    let run = smoke(&fixture, &["smoke", "uses-never"]);
    assert_code(&run, exit_codes::SERVICE_ERROR);
    let record = record(&fixture);
    let suite = suite_record(&record, "uses-never");
    assert_eq!(suite["outcome"], "service-error");
    let detail = suite["detail"].as_str().unwrap();
    assert!(
        detail.contains("`never`") && detail.contains("deadline"),
        "{detail}"
    );
    assert_eq!(health(&record, "never")["available"], false);
    // The end of its log is on the terminal; the whole log is kept.
    assert!(
        run.stdout.contains("never: listening nowhere"),
        "{}",
        run.stdout
    );
    assert!(fixture
        .read("target/xtask/latest/logs/service-never.log")
        .contains("never: listening nowhere"));
    assert_eq!(assert_no_process_left(&fixture), 1);
}

#[test]
fn a_service_that_exits_at_start_is_a_service_error_with_its_log_tail() {
    let fixture = Fixture::new("smoke", "smoke-crash");
    let run = smoke(&fixture, &["smoke", "uses-crash"]);
    assert_code(&run, exit_codes::SERVICE_ERROR);
    let record = record(&fixture);
    let suite = suite_record(&record, "uses-crash");
    assert_eq!(suite["outcome"], "service-error");
    let detail = suite["detail"].as_str().unwrap();
    assert!(
        detail.contains("exited at start (exited with 3)"),
        "{detail}"
    );
    assert!(
        run.stdout.contains("boom: the service cannot start"),
        "{}",
        run.stdout
    );
    // The suite that needed it did not run: no environment was built, no pytest started.
    assert_eq!(suite["commands"].as_array().unwrap().len(), 0);
    assert_no_process_left(&fixture);
}

#[test]
fn a_service_whose_port_is_taken_is_a_service_error_and_is_not_started() {
    let fixture = Fixture::new("smoke", "smoke-taken");
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    fixture.edit("Cargo.toml", "port = 1\n", &format!("port = {port}\n"));
    let run = smoke(&fixture, &["smoke", "uses-taken"]);
    drop(listener);
    assert_code(&run, exit_codes::SERVICE_ERROR);
    let record = record(&fixture);
    let detail = suite_record(&record, "uses-taken")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains(&format!("port {port}")) && detail.contains("already taken"),
        "{detail}"
    );
    assert_eq!(assert_no_process_left(&fixture), 0, "it was never started");
}

#[test]
fn a_service_that_dies_during_the_run_makes_its_suites_service_errors_not_test_failures() {
    let fixture = Fixture::new("smoke", "smoke-dies");
    let run = smoke(
        &fixture,
        &["smoke", "uses-dying", "uses-dying-too", "-j", "1"],
    );
    assert_code(&run, exit_codes::SERVICE_ERROR);
    // The terminal says it died (the ServiceDied event), before the suite's result.
    let died = run
        .stdout
        .find("xtask: service `dies` exited with 4 while the run needed it")
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        died < run.stdout.find("uses-dying [").unwrap(),
        "{}",
        run.stdout
    );
    let record = record(&fixture);
    // The first suite ran and failed against the dead service: the cause is named, and its
    // failed test is still in the report.
    let first = suite_record(&record, "uses-dying");
    assert_eq!(first["outcome"], "service-error", "{first:#}");
    let detail = first["detail"].as_str().unwrap();
    assert!(
        detail.contains("service `dies` exited with 4 during the run")
            && detail.contains("the suite ended `failed`")
            && detail.contains("logs/service-dies.log"),
        "{detail}"
    );
    assert_eq!(first["counts"]["failed"], 1, "{first:#}");
    let report = fixture.report();
    assert!(matches!(
        case(
            suite(&report, "uses-dying"),
            "test_the_service_answers_after_a_while"
        )
        .status,
        quick_junit::TestCaseStatus::NonSuccess { .. }
    ));
    // The second found it gone and did not run.
    let second = suite_record(&record, "uses-dying-too");
    assert_eq!(second["outcome"], "service-error", "{second:#}");
    assert!(
        second["detail"]
            .as_str()
            .unwrap()
            .contains("before the suite started"),
        "{second:#}"
    );
    assert!(fixture
        .read("target/xtask/latest/logs/service-dies.log")
        .contains("dies: going down"));
    assert_eq!(assert_no_process_left(&fixture), 1);
    // The record keeps when and how it died, and its replay says so where the run did.
    let dies = record["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "dies")
        .unwrap();
    assert_eq!(dies["died"], "exited with 4", "{dies:#}");
    assert!(dies["died_offset_secs"].as_f64().is_some(), "{dies:#}");
    let replay = fixture.run(&["replay"]);
    assert_code(&replay, exit_codes::SERVICE_ERROR);
    let (_, body) = replay.stdout.split_once('\n').unwrap();
    assert_eq!(without_env_times(body), without_env_times(&run.stdout));
}

#[test]
fn a_prerequisite_that_is_down_skips_its_suite_without_failing_unless_all_are_required() {
    let fixture = Fixture::new("smoke", "smoke-down");
    let run = smoke(&fixture, &["smoke", "needs-down", "needs-key"]);
    assert_code(&run, exit_codes::OK);
    let record = record(&fixture);
    let suite_json = suite_record(&record, "needs-down");
    assert_eq!(suite_json["outcome"], "prerequisite-unavailable");
    let detail = suite_json["detail"].as_str().unwrap();
    assert!(
        detail.contains("prerequisite `down` (tcp 127.0.0.1:1)"),
        "{detail}"
    );
    let line = health(&record, "down");
    assert_eq!(line["available"], false);
    assert!(
        line["error"].as_str().unwrap().contains("127.0.0.1:1"),
        "{line:#}"
    );
    assert!(
        run.stdout.contains("prerequisite-unavailable")
            || run.stdout.contains("PREREQUISITE-UNAVAILABLE"),
        "{}",
        run.stdout
    );
    // In the JUnit: skipped with the reason, not failed.
    let report = fixture.report();
    let junit = suite(&report, "needs-down");
    assert_eq!(skipped(junit), 1);
    assert_eq!(junit.failures + junit.errors, 0);

    // `requires-env` follows the same rule.
    assert_eq!(
        suite_record(&record, "needs-key")["outcome"],
        "prerequisite-unavailable"
    );
    assert_eq!(skipped(suite(&report, "needs-key")), 1);

    for name in ["needs-down", "needs-key"] {
        let run = smoke(&fixture, &["smoke", name, "--require-all"]);
        assert_code(&run, exit_codes::PREREQUISITE_UNAVAILABLE);
    }
}

/// CI runs each suite in partitions (`list --matrix --partitions 2`). A suite whose
/// prerequisite is unavailable runs in none: each partition writes the case that stands
/// for it, and `junit merge` folds them into one suite with one case and its outcome. The
/// same real test in two inputs stays a usage error, in whichever form each input holds it.
#[test]
fn partitions_of_a_suite_that_did_not_run_merge_into_one_suite() {
    let fixture = Fixture::new("smoke", "smoke-partitions-merge");
    let listed = smoke(&fixture, &["list", "--matrix", "--partitions", "2"]);
    assert_code(&listed, exit_codes::OK);
    let matrix: Value = serde_json::from_str(&listed.stdout).unwrap();
    let commands: Vec<&str> = matrix["include"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["suite"] == "needs-key")
        .map(|entry| entry["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands.len(), 2, "{}", listed.stdout);
    for (k, command) in commands.iter().enumerate() {
        assert!(
            command.contains(&format!("--partition hash:{}/2", k + 1)),
            "{command}"
        );
        let args: Vec<&str> = command
            .strip_prefix("cargo xtask ")
            .expect("a cargo xtask command")
            .split(' ')
            .collect();
        let run = smoke(&fixture, &args);
        assert_code(&run, exit_codes::OK);
        assert_eq!(
            suite_record(&record(&fixture), "needs-key")["outcome"],
            "prerequisite-unavailable"
        );
        for (from, to) in [
            ("target/xtask/junit.xml", format!("part-{k}.xml")),
            ("target/xtask/junit/needs-key.xml", format!("own-{k}.xml")),
        ] {
            std::fs::copy(fixture.path(from), fixture.path(&to)).unwrap();
        }
    }

    // Both partitions' junit.xml, as CI merges them, and one partition's own file with the
    // other's junit.xml: one suite, one case, its outcome.
    for inputs in [["part-0.xml", "part-1.xml"], ["own-0.xml", "part-1.xml"]] {
        let run = fixture.run(&["junit", "merge", inputs[0], inputs[1], "-o", "merged.xml"]);
        assert_code(&run, exit_codes::OK);
        let merged = read_report(&fixture.path("merged.xml"));
        assert_eq!(merged.test_suites.len(), 1, "{inputs:?}");
        let junit = suite(&merged, "needs-key");
        assert_eq!((junit.tests, skipped(junit)), (1, 1), "{inputs:?}");
        assert_eq!(junit.failures + junit.errors, 0, "{inputs:?}");
        let case = case(junit, "prerequisite-unavailable");
        assert_eq!(
            case.classname.as_ref().unwrap().as_str(),
            "needs-key.needs-key"
        );
        let outcome: Vec<&str> = junit
            .properties
            .iter()
            .filter(|p| p.name.as_str() == "outcome")
            .map(|p| p.value.as_str())
            .collect();
        assert_eq!(outcome, ["prerequisite-unavailable"], "{inputs:?}");
        let consumers = junit_consumers(&[fixture.path("merged.xml")]);
        let theirs = &consumers["files"][0];
        assert_eq!(
            (
                &theirs["tests"],
                &theirs["skipped"],
                &theirs["declared"]["skipped"]
            ),
            (&1.into(), &1.into(), &1.into()),
            "{theirs:#}"
        );
    }

    // A suite whose tests ran: the same test in a run's junit.xml and its own file, or in a
    // merge's output and one of its inputs, is a usage error and nothing is written.
    let run = smoke(&fixture, &["test", "unit-tests"]);
    assert_code(&run, exit_codes::OK);
    let own = "target/xtask/junit/unit-tests.xml";
    let run = fixture.run(&["junit", "merge", "target/xtask/junit.xml", "-o", "unit.xml"]);
    assert_code(&run, exit_codes::OK);
    for (first, second, out) in [
        ("target/xtask/junit.xml", own, "both.xml"),
        ("unit.xml", own, "again.xml"),
        (own, "unit.xml", "again2.xml"),
    ] {
        let run = fixture.run(&["junit", "merge", first, second, "-o", out]);
        assert_code(&run, exit_codes::USAGE_ERROR);
        assert!(
            run.stderr.contains("cannot merge faithfully")
                && run
                    .stderr
                    .contains("`unit-tests.tests.test_unit::test_unit`"),
            "{}",
            run.stderr
        );
        assert!(!fixture.path(out).exists(), "{out}");
    }
}

#[test]
fn test_leaves_the_smoke_suites_out_and_smoke_runs_only_them() {
    let fixture = Fixture::new("smoke", "smoke-groups");
    // The smoke group's suites are left out of a plain `test`.
    let run = smoke(&fixture, &["test"]);
    assert_code(&run, exit_codes::OK);
    let record = record(&fixture);
    let names: Vec<&str> = record["suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["unit-tests"]);
    assert!(record["health"].is_null(), "{record:#}");
}

#[test]
fn list_says_what_each_suite_needs() {
    let fixture = Fixture::new("smoke", "smoke-list");
    let run = fixture.run(&["list"]);
    assert_code(&run, exit_codes::OK);
    let line = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{}", run.stdout))
            .to_string()
    };
    assert!(
        line("uses-ready").ends_with(
            "needs service ready, service stubborn, prerequisite secret, prerequisite true"
        ),
        "{}",
        line("uses-ready")
    );
    assert!(line("needs-key").ends_with("needs env SMOKE_FIXTURE_UNSET_KEY"));
    assert!(!line("unit-tests").contains("needs"));
    let run = fixture.run(&["list", "--json"]);
    let suites: Value = serde_json::from_str(&run.stdout).unwrap();
    let uses_ready = suites
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "uses-ready")
        .unwrap();
    assert_eq!(
        uses_ready["services"],
        serde_json::json!(["ready", "stubborn"])
    );
    assert_eq!(
        uses_ready["prerequisites"],
        serde_json::json!(["secret", "true"])
    );
}

#[test]
fn services_are_stopped_when_a_suite_times_out() {
    let fixture = Fixture::new("smoke", "smoke-timeout");
    fixture.warm(&["smoke", "hangs"]);
    let run = smoke(&fixture, &["smoke", "hangs", "--timeout", "3s"]);
    assert_code(&run, exit_codes::TIMED_OUT);
    assert_eq!(
        suite_record(&record(&fixture), "hangs")["outcome"],
        "timeout"
    );
    assert!(assert_no_process_left(&fixture) >= 2);
}

/// Runs `smoke ARGS` in its own process group, sends it SIGINT once `ready` holds, and
/// returns its exit status.
fn interrupt_smoke_when(
    fixture: &Fixture,
    args: &[&str],
    what: &str,
    ready: impl Fn() -> bool,
) -> std::process::ExitStatus {
    let mut command = fixture.command(args);
    command.env("SMOKE_FIXTURE_SECRET", SECRET);
    interrupt_when(command, what, ready).0
}

#[test]
fn services_are_stopped_on_ctrl_c() {
    let fixture = Fixture::new("smoke", "smoke-interrupt");
    let marker = fixture.path("suites/client/started.marker");
    let status = interrupt_smoke_when(&fixture, &["smoke", "hangs"], "the suite started", || {
        marker.exists()
    });
    assert_eq!(status.code(), Some(i32::from(exit_codes::INTERRUPTED)));
    assert_eq!(
        suite_record(&record(&fixture), "hangs")["outcome"],
        "interrupted"
    );
    assert!(assert_no_process_left(&fixture) >= 2);
}

#[test]
fn ctrl_c_while_a_service_is_becoming_ready_stops_it_and_runs_nothing() {
    let fixture = Fixture::new("smoke", "smoke-interrupt-ready");
    let pids = fixture.path("pids");
    // Both the service and its child have recorded themselves: it is up, not yet ready.
    let status = interrupt_smoke_when(
        &fixture,
        &["smoke", "uses-slow"],
        "the service started",
        || std::fs::read_dir(&pids).is_ok_and(|dir| dir.count() >= 2),
    );
    assert_eq!(status.code(), Some(i32::from(exit_codes::INTERRUPTED)));
    let record = record(&fixture);
    let slow = suite_record(&record, "uses-slow");
    assert_eq!(slow["outcome"], "interrupted", "{slow:#}");
    // pytest never ran: the suite's one case is the xtask's own, not the fixture's test.
    let report = fixture.report();
    let cases = &suite(&report, "uses-slow").test_cases;
    assert!(
        cases
            .iter()
            .all(|c| c.name.as_str() != "test_the_services_answer"),
        "{cases:?}"
    );
    assert!(fixture
        .read("target/xtask/latest/logs/service-slow.log")
        .contains("slow: still warming up"));
    assert_eq!(assert_no_process_left(&fixture), 2);
}

/// Processes whose command line names a path inside the fixture (the backend's uvicorn runs
/// from the fixture's own environment).
fn processes_of(fixture: &Fixture) -> Vec<String> {
    let root = fixture.root.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&root) && alive(pid) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

#[test]
fn this_repositorys_smoke_run_tests_the_live_backend_and_reports_what_is_missing() {
    let fixture = Fixture::this_repository("smoke-this-repository");
    let mut command = fixture.command(&["smoke"]);
    command.env_remove("OPENAI_API_KEY");
    let run = run(command);
    assert_code(&run, exit_codes::OK);
    let record = record(&fixture);
    let backend = suite_record(&record, "backend-smoke");
    assert_eq!(backend["outcome"], "passed", "{backend:#}");
    // Every test of the live-backend module ran against the server, over its socket.
    let report = fixture.report();
    let cases = &suite(&report, "backend-smoke").test_cases;
    for name in [
        "test_health",
        "test_a_tts_job_through_its_whole_life",
        "test_self_harm_is_escalated_and_an_escalation_can_be_filed",
    ] {
        assert!(
            cases.iter().any(|c| c.name.as_str() == name
                && matches!(c.status, quick_junit::TestCaseStatus::Success { .. })),
            "{name}: {cases:?}"
        );
    }
    let log = fixture.read("target/xtask/latest/logs/service-backend.log");
    assert!(log.contains("GET /tts/"), "uvicorn's access log: {log}");
    assert_eq!(health(&record, "backend")["available"], true);

    for (suite_name, prerequisite) in [
        ("specialists-integration", "openai-key"),
        ("backend-broker", "broker"),
    ] {
        let line = suite_record(&record, suite_name);
        assert_eq!(line["outcome"], "prerequisite-unavailable", "{line:#}");
        assert!(
            line["detail"].as_str().unwrap().contains(prerequisite),
            "{line:#}"
        );
        assert_eq!(health(&record, prerequisite)["available"], false);
        let junit = suite(&report, suite_name);
        assert_eq!(skipped(junit), 1, "{suite_name}");
        assert!(
            junit
                .properties
                .iter()
                .any(|p| p.name.as_str() == format!("health:{prerequisite}")),
            "{suite_name}: {:?}",
            junit.properties
        );
    }
    assert_eq!(health(&record, "broker")["target"], "127.0.0.1:9092");
    assert_eq!(processes_of(&fixture), Vec::<String>::new());
}

#[test]
fn this_repositorys_backend_failing_at_start_is_a_service_error_with_its_log_tail() {
    let fixture = Fixture::this_repository("smoke-this-repository-broken");
    // The backend refuses an unknown environment name when the app is imported.
    fixture.edit(
        "Cargo.toml",
        r#"env = { BACKEND_ENV = "test", BACKEND_TTS_TTL = "3" }"#,
        r#"env = { BACKEND_ENV = "staging", BACKEND_TTS_TTL = "3" }"#,
    );
    let run = fixture.run(&["smoke", "backend-smoke"]);
    assert_code(&run, exit_codes::SERVICE_ERROR);
    let record = record(&fixture);
    let backend = suite_record(&record, "backend-smoke");
    assert_eq!(backend["outcome"], "service-error", "{backend:#}");
    assert!(
        backend["detail"].as_str().unwrap().contains("`backend`"),
        "{backend:#}"
    );
    assert!(
        run.stdout.contains("BACKEND_ENV must be one of"),
        "the log's tail on the terminal:\n{}",
        run.stdout
    );
    assert!(fixture
        .read("target/xtask/latest/logs/service-backend.log")
        .contains("Traceback"));
    assert_eq!(processes_of(&fixture), Vec::<String>::new());
}

/// A peer on 127.0.0.1 that accepts every connection and answers it through `answer` on a
/// thread of its own; counts the connections it took.
struct Peer {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Peer {
    fn new(answer: fn(std::net::TcpStream)) -> Peer {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&accepted);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || answer(stream));
            }
        });
        Peer { port, accepted }
    }

    /// Accepts, then sends a status line and a header one byte every 0.3 s, forever.
    fn dripping() -> Peer {
        Peer::new(|mut stream| {
            use std::io::Write;
            let bytes = b"HTTP/1.1 200 OK\r\nX-Slow: "
                .iter()
                .chain(std::iter::repeat(&b'a'));
            for b in bytes {
                if stream.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
        })
    }

    /// Answers every request at once: 200 and a short body.
    fn answering() -> Peer {
        Peer::new(|mut stream| {
            use std::io::{Read, Write};
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nnot ours");
        })
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// An HTTP prerequisite whose peer accepts and then drips one byte every 0.3 s is
/// unavailable at its timeout (2 s), in `smoke` and in `doctor`: the deadline covers the
/// whole exchange, not each read.
#[test]
fn a_dripping_http_prerequisite_is_unavailable_at_its_timeout() {
    let fixture = Fixture::new("smoke", "smoke-drip");
    let peer = Peer::dripping();
    fixture.edit(
        "Cargo.toml",
        "http = \"http://127.0.0.1:1/drip\"\ntimeout = 2",
        &format!(
            "http = \"http://127.0.0.1:{}/drip\"\ntimeout = 2",
            peer.port
        ),
    );
    let clock = std::time::Instant::now();
    let run = smoke(&fixture, &["smoke", "needs-drip", "--require-all"]);
    let took = clock.elapsed();
    assert_code(&run, exit_codes::PREREQUISITE_UNAVAILABLE);
    assert!(peer.accepted() >= 1, "the peer was never asked");
    let record = record(&fixture);
    let line = health(&record, "drip");
    assert_eq!(line["available"], false, "{line:#}");
    let error = line["error"].as_str().unwrap();
    assert!(
        error.contains("no complete answer within 2000.0 ms"),
        "{error}"
    );
    // The peer never ends: without a deadline over the whole answer the run would not.
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");

    let before = peer.accepted();
    let run = fixture.run(&["doctor", "--json"]);
    assert!(peer.accepted() > before, "doctor never asked the peer");
    let doctor: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}\n{}", run.stdout, run.stderr));
    let text = doctor.to_string();
    assert!(
        text.contains("no complete answer within 2000.0 ms"),
        "{doctor:#}"
    );
}

/// A service's readiness URL answered by a dripping peer: the service is stopped at its
/// deadline (2 s) and its suite is a service error.
#[test]
fn a_dripping_readiness_url_does_not_stretch_the_services_deadline() {
    let fixture = Fixture::new("smoke", "smoke-drip-ready");
    let peer = Peer::dripping();
    fixture.edit(
        "Cargo.toml",
        "http://127.0.0.1:1/drip\" }",
        &format!("http://127.0.0.1:{}/drip\" }}", peer.port),
    );
    let run = smoke(&fixture, &["smoke", "uses-drip-ready"]);
    assert_code(&run, exit_codes::SERVICE_ERROR);
    assert!(peer.accepted() >= 1, "the peer was never asked");
    let detail = suite_record(&record(&fixture), "uses-drip-ready")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("did not become ready within its deadline of 2s")
            && detail.contains("no complete answer"),
        "{detail}"
    );
    assert_no_process_left(&fixture);
}

/// Ctrl-C while an HTTP prerequisite with a 600 s timeout waits on a dripping peer ends the
/// run within the grace, as interrupted.
#[test]
fn ctrl_c_ends_a_prerequisites_wait_at_once() {
    let fixture = Fixture::new("smoke", "smoke-drip-interrupt");
    let peer = Peer::dripping();
    fixture.edit(
        "Cargo.toml",
        "http://127.0.0.1:1/drip-long",
        &format!("http://127.0.0.1:{}/drip-long", peer.port),
    );
    let mut command = fixture.command(&["smoke", "needs-drip-long"]);
    command.env("SMOKE_FIXTURE_SECRET", SECRET);
    let (status, took) = interrupt_when(command, "the prerequisite's check began", || {
        peer.accepted() >= 1
    });
    assert_eq!(status.code(), Some(i32::from(exit_codes::INTERRUPTED)));
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
}

/// A service that never listens, whose readiness URL another server (there before it
/// started) answers: that answer is not the service's, and its suite is a service error,
/// never a pass against the wrong server.
#[test]
fn a_readiness_check_answered_by_another_process_is_a_service_error() {
    let fixture = Fixture::new("smoke", "smoke-imposter");
    let peer = Peer::answering();
    fixture.edit(
        "Cargo.toml",
        "http://127.0.0.1:1/imposter",
        &format!("http://127.0.0.1:{}/imposter", peer.port),
    );
    let run = smoke(&fixture, &["smoke", "uses-imposter"]);
    assert_code(&run, exit_codes::SERVICE_ERROR);
    assert!(peer.accepted() >= 1, "the peer was never asked");
    let detail = suite_record(&record(&fixture), "uses-imposter")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("another process was already listening")
            && detail.contains("not the service"),
        "{detail}"
    );
    assert_no_process_left(&fixture);
}

/// A service that exits at start while another server answers its readiness URL: a
/// service error, whoever answers.
#[test]
fn a_service_that_exited_is_never_ready_whoever_answers() {
    let fixture = Fixture::new("smoke", "smoke-imposter-crash");
    let peer = Peer::answering();
    fixture.edit(
        "Cargo.toml",
        "http://127.0.0.1:1/imposter",
        &format!("http://127.0.0.1:{}/imposter", peer.port),
    );
    fixture.edit(
        "Cargo.toml",
        "\"services/svc.py\", \"never\", \"{port}\"]\nready = { http = \"http://127.0.0.1",
        "\"services/svc.py\", \"crash\", \"{port}\"]\nready = { http = \"http://127.0.0.1",
    );
    let run = smoke(&fixture, &["smoke", "uses-imposter"]);
    assert_code(&run, exit_codes::SERVICE_ERROR);
    let detail = suite_record(&record(&fixture), "uses-imposter")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("exited") || detail.contains("not the service"),
        "{detail}"
    );
    assert_no_process_left(&fixture);
}

/// A service that forks a server onto its port and exits: what answers is not the process
/// the xtask started and watches, so it is not ready, and the child is stopped with it.
#[test]
fn a_service_is_ready_only_while_its_own_process_runs() {
    let fixture = Fixture::new("smoke", "smoke-daemonizes");
    fixture.edit(
        "Cargo.toml",
        "[\"python3\", \"services/svc.py\", \"never\", \"{port}\"]\nready = { http = \"http://127.0.0.1:1/imposter\" }",
        "[\"sh\", \"-c\", \"python3 services/svc.py serve {port} & exit 0\"]\nready = { http = \"http://127.0.0.1:{port}/\" }",
    );
    let run = smoke(&fixture, &["smoke", "uses-imposter"]);
    assert_code(&run, exit_codes::SERVICE_ERROR);
    let detail = suite_record(&record(&fixture), "uses-imposter")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("exited"), "{detail}");
    assert_no_process_left(&fixture);
}
