//! The engine's promises, each through the real binary with real uv and pytest on a copy of
//! `tests/fixtures/engine`: environments built once and reused, nothing a test starts
//! outlives its suite (whatever ends it), masking never damages a report and never misses
//! a form a reader sees, and every invocation's reports are its own.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use xtask::exit_codes;

/// The commands run.json records for suite `name`.
fn commands(record: &Value, name: &str) -> Vec<Value> {
    suite_record(record, name)["commands"]
        .as_array()
        .unwrap()
        .clone()
}

fn log_of(fixture: &Fixture, record: &Value, name: &str) -> String {
    fixture.read(suite_record(record, name)["log"].as_str().unwrap())
}

/// The pids a daemon test wrote (pytest's, then the daemon's), once it has written them.
fn wait_for_pids(path: &Path, child: &mut Child) -> Vec<u32> {
    let started = Instant::now();
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the xtask ended ({status}) before the test wrote its pids");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no pids after 120s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    pids(path)
}

fn pids(path: &Path) -> Vec<u32> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// The xtask started in the background, its output collected.
fn spawn(mut command: Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.spawn().unwrap()
}

fn finish(child: Child, limit: Duration) -> Run {
    let pid = child.id();
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    let started = Instant::now();
    while !waiter.is_finished() {
        if started.elapsed() > limit {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("the xtask did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = waiter.join().unwrap();
    let run = Run {
        code: output.status.code().unwrap_or(255) as u8,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    eprintln!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        run.stdout, run.stderr
    );
    run
}

/// Every file the xtask wrote: below `target/xtask`, not through the links into the latest
/// invocation and not inside the environments uv built.
fn written_files(fixture: &Fixture) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() || entry.file_name() == "envs" || entry.file_name() == "tools" {
                continue;
            }
            if kind.is_dir() {
                walk(&entry.path(), out);
            } else {
                out.push(entry.path());
            }
        }
    }
    let mut files = Vec::new();
    walk(&fixture.path("target/xtask"), &mut files);
    files
}

// ------------------------------------------------------------------------------------
// Environments
// ------------------------------------------------------------------------------------

#[test]
fn a_module_named_like_a_standard_one_does_not_break_the_environment() {
    let fixture = Fixture::new("engine", "stdlib_name");
    let run = fixture.run(&["test", "stdlib-name"]);
    assert_code(&run, exit_codes::OK);
    let record = record(&fixture);
    assert_eq!(suite_record(&record, "stdlib-name")["counts"]["passed"], 1);
}

#[test]
fn two_suites_on_one_project_with_other_extras_run_at_once_and_leave_its_venv_alone() {
    let fixture = Fixture::new("engine", "two_extras");
    // The developer's own environment, with something installed by hand.
    std::fs::create_dir_all(fixture.path("suites/two_extras/.venv")).unwrap();
    fixture.write("suites/two_extras/.venv/installed-by-hand", "mine");
    let run = fixture.run(&["test", "extra-a", "extra-b", "-j", "2"]);
    assert_code(&run, exit_codes::OK);
    let record = record(&fixture);
    for name in ["extra-a", "extra-b"] {
        assert_eq!(suite_record(&record, name)["counts"]["passed"], 1, "{name}");
    }
    assert_ne!(
        suite_record(&record, "extra-a")["environment"]["path"],
        suite_record(&record, "extra-b")["environment"]["path"]
    );
    assert_eq!(
        fixture.read("suites/two_extras/.venv/installed-by-hand"),
        "mine"
    );
}

#[test]
fn a_warm_run_runs_no_uv_and_a_changed_input_rebuilds() {
    let fixture = Fixture::new("engine", "warm");
    assert_code(&fixture.run(&["test", "quick", "extra-a"]), exit_codes::OK);
    let cold = record(&fixture);
    for name in ["quick", "extra-a"] {
        let steps = commands(&cold, name);
        assert!(
            steps
                .iter()
                .any(|s| s["argv"][1] == "pip" || s["argv"][1] == "sync"),
            "{name} was built: {steps:#?}"
        );
    }

    assert_code(&fixture.run(&["test", "quick", "extra-a"]), exit_codes::OK);
    let warm = record(&fixture);
    for name in ["quick", "extra-a"] {
        let steps = commands(&warm, name);
        let environment: Vec<&Value> = steps
            .iter()
            .filter(|s| s["step"] == "environment")
            .collect();
        assert_eq!(environment.len(), 1, "{steps:#?}");
        assert!(environment[0]["skipped"]
            .as_str()
            .unwrap()
            .contains("up to date"));
        assert_eq!(environment[0]["exit_code"], Value::Null, "no process ran");
        let log = log_of(&fixture, &warm, name);
        assert!(
            log.contains("is up to date (its inputs are unchanged); uv not run"),
            "{log}"
        );
        assert!(!log.contains("/uv "), "uv ran on a warm run:\n{log}");
    }

    // A change to the lock's input rebuilds exactly that environment.
    fixture.edit(
        "suites/two_extras/pyproject.toml",
        r#"a = ["pytest==9.2.0"]"#,
        r#"a = ["pytest==9.2.0", "iniconfig"]"#,
    );
    let relock = Command::new(uv())
        .args(["lock", "--directory", "suites/two_extras", "--quiet"])
        .current_dir(&fixture.root)
        .env_remove("VIRTUAL_ENV")
        .status()
        .unwrap();
    assert!(relock.success());
    assert_code(&fixture.run(&["test", "quick", "extra-a"]), exit_codes::OK);
    let changed = record(&fixture);
    assert!(log_of(&fixture, &changed, "extra-a")
        .contains(" sync --directory suites/two_extras --locked"));
    assert!(log_of(&fixture, &changed, "quick").contains("up to date"));

    // An environment deleted by hand is built again.
    let env = suite_record(&changed, "quick")["environment"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_dir_all(fixture.path(&env)).unwrap();
    assert_eq!(fixture.run(&["test", "quick"]).code, exit_codes::OK);
    assert!(log_of(&fixture, &record(&fixture), "quick").contains(" pip install "));
}

/// Not even `uv --version` runs on a warm run: the version in run.json is remembered per
/// uv binary, and asked again when the binary changes.
#[test]
fn a_warm_run_starts_no_uv_process_at_all() {
    use std::os::unix::fs::PermissionsExt;
    let fixture = Fixture::new("engine", "warm-no-uv");
    let calls = fixture.path("uv calls.txt");
    let wrapper = fixture.path("uv wrapper");
    let write_wrapper = |comment: &str| {
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\n# {comment}\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
                calls.display(),
                uv().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    write_wrapper("first");
    let run_with_wrapper = || {
        let mut command = fixture.command(&["test", "quick"]);
        command.env(xtask::toolchain::UV_ENV, &wrapper);
        run(command)
    };
    let calls_so_far = || std::fs::read_to_string(&calls).unwrap_or_default();
    assert_code(&run_with_wrapper(), exit_codes::OK);
    let cold = calls_so_far();
    assert!(cold.lines().any(|l| l == "--version"), "{cold}");
    let version = record(&fixture)["uv"]["version"].clone();
    assert!(version.as_str().unwrap().starts_with("uv "), "{version}");

    assert_code(&run_with_wrapper(), exit_codes::OK);
    assert_eq!(calls_so_far(), cold, "uv ran on a warm run");
    assert_eq!(record(&fixture)["uv"]["version"], version);

    // Another binary at the same path (its size changes): asked again.
    write_wrapper("second, a longer comment");
    assert_code(&run_with_wrapper(), exit_codes::OK);
    let after = calls_so_far();
    assert_eq!(
        after[cold.len()..].lines().collect::<Vec<_>>(),
        ["--version"],
        "{after}"
    );

    // A cache that is not what the xtask wrote (cut short, not JSON): asked again, and the
    // record still names the real version.
    std::fs::write(
        fixture.path("target/xtask/tools/uv-version.json"),
        "{\"key\": [",
    )
    .unwrap();
    assert_code(&run_with_wrapper(), exit_codes::OK);
    let last = calls_so_far();
    assert_eq!(
        last[after.len()..].lines().collect::<Vec<_>>(),
        ["--version"],
        "{last}"
    );
    assert_eq!(record(&fixture)["uv"]["version"], version);
}

#[test]
fn an_environment_in_use_is_not_rebuilt_under_its_tests_by_another_invocation() {
    let fixture = Fixture::new("engine", "held");
    assert_code(&fixture.run(&["test", "extra-a"]), exit_codes::OK);
    let holding = fixture.path("suites/two_extras/holding.marker");
    let mut first = spawn(fixture.command(&["test", "extra-a-holds"]));
    let started = Instant::now();
    while !holding.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "it never held"
        );
        assert!(first.try_wait().unwrap().is_none(), "it ended first");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Another checkout of the inputs: the second invocation must rebuild the environment,
    // but not while the first one's tests run in it.
    fixture.edit(
        "suites/two_extras/pyproject.toml",
        "dependencies = []",
        "dependencies = []  # edited",
    );
    let mut second = spawn(fixture.command(&["test", "extra-a"]));
    let waiting = || {
        std::fs::read_dir(fixture.path("target/xtask/runs"))
            .unwrap()
            .flatten()
            .any(|run| {
                std::fs::read_to_string(run.path().join("logs/extra-a.log"))
                    .is_ok_and(|log| log.contains("waiting to build it"))
            })
    };
    while !waiting() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "it never waited"
        );
        assert!(
            second.try_wait().unwrap().is_none(),
            "the second invocation ended while the first one's tests used the environment"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(second.try_wait().unwrap().is_none(), "it stopped waiting");
    std::fs::write(fixture.path("suites/two_extras/release.marker"), "").unwrap();
    assert_code(&finish(first, Duration::from_secs(120)), exit_codes::OK);
    assert_code(&finish(second, Duration::from_secs(120)), exit_codes::OK);
    // Then it did rebuild.
    let log = log_of(&fixture, &record(&fixture), "extra-a");
    assert!(
        log.contains(" sync --directory suites/two_extras --locked"),
        "{log}"
    );
}

// ------------------------------------------------------------------------------------
// Processes
// ------------------------------------------------------------------------------------

#[test]
fn a_setsid_daemon_is_ended_when_its_suite_passes() {
    let fixture = Fixture::new("engine", "daemon_pass");
    let run = fixture.run(&["test", "daemon"]);
    assert_code(&run, exit_codes::OK);
    assert_gone(&pids(&fixture.path("suites/daemon/pids.txt")));
}

#[test]
fn a_setsid_daemon_is_ended_when_its_suite_times_out() {
    let fixture = Fixture::new("engine", "daemon_timeout");
    // The suite's 4 s cover building its environment too: built first by a suite with the
    // same requirements, so that a slow build on a busy machine cannot use them up.
    assert_code(&fixture.run(&["test", "quick"]), exit_codes::OK);
    let run = fixture.run(&["test", "daemon-hang"]);
    assert_code(&run, exit_codes::TIMED_OUT);
    assert_gone(&pids(&fixture.path("suites/daemon/pids.txt")));
}

fn signalled(test: &str, signal: &str) {
    let fixture = Fixture::new("engine", test);
    let mut xtask = spawn(fixture.command(&[
        "test",
        "daemon-hang",
        "quick",
        "-j",
        "1",
        "--timeout",
        "10m",
    ]));
    let pids = wait_for_pids(&fixture.path("suites/daemon/pids.txt"), &mut xtask);
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &xtask.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let run = finish(xtask, Duration::from_secs(60));
    assert_code(&run, exit_codes::INTERRUPTED);
    assert_gone(&pids);
    let record = record(&fixture);
    assert_eq!(record["exit_code"], exit_codes::INTERRUPTED);
    assert_eq!(
        suite_record(&record, "daemon-hang")["outcome"],
        "interrupted"
    );
    assert_eq!(suite_record(&record, "quick")["outcome"], "interrupted");
    read_report(&fixture.path("target/xtask/junit.xml"));
}

#[test]
fn ctrl_c_ends_the_suite_and_the_daemon_it_started() {
    signalled("daemon_int", "INT");
}

#[test]
fn sighup_is_handled_like_ctrl_c() {
    signalled("daemon_hup", "HUP");
}

/// Started with SIGHUP ignored (`nohup`), the xtask keeps ignoring it: a hang-up does not
/// end the run. SIGTERM still stops it in order.
#[test]
fn a_sighup_ignored_at_start_stays_ignored() {
    use std::os::unix::process::CommandExt;
    let fixture = Fixture::new("engine", "daemon_nohup");
    let mut command = fixture.command(&["test", "daemon-hang", "--timeout", "10m"]);
    // SAFETY: signal is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut xtask = spawn(command);
    let pids = wait_for_pids(&fixture.path("suites/daemon/pids.txt"), &mut xtask);
    let id = xtask.id().to_string();
    let send = |signal: &str| {
        let sent = Command::new("kill").args([signal, &id]).status().unwrap();
        assert!(sent.success());
    };
    send("-HUP");
    std::thread::sleep(Duration::from_secs(1));
    send("-HUP");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        xtask.try_wait().unwrap().is_none(),
        "a hang-up ended the run"
    );
    send("-TERM");
    let run = finish(xtask, Duration::from_secs(60));
    assert_code(&run, exit_codes::INTERRUPTED);
    assert_gone(&pids);
}

#[test]
fn after_a_sigkill_the_next_invocation_ends_what_was_left_behind() {
    let fixture = Fixture::new("engine", "daemon_kill");
    let mut xtask = spawn(fixture.command(&["test", "daemon-hang", "--timeout", "10m"]));
    let pids = wait_for_pids(&fixture.path("suites/daemon/pids.txt"), &mut xtask);
    let killed_run = std::fs::read_link(fixture.path("target/xtask/latest")).unwrap();
    xtask.kill().unwrap();
    xtask.wait().unwrap();
    // What the killed invocation says of itself: still running, never an older result.
    let left: Value = serde_json::from_str(
        &fixture.read(&format!("target/xtask/{}/run.json", killed_run.display())),
    )
    .unwrap();
    assert_eq!(left["status"], "running", "{left:#}");
    assert_valid_run_record(
        &fixture.path(&format!("target/xtask/{}/run.json", killed_run.display())),
    );
    // pytest died with the xtask (PR_SET_PDEATHSIG); the setsid daemon outlived both: it
    // is the next invocation that ends it.
    let daemon = pids[1];
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        alive(daemon),
        "the daemon was gone before the next invocation"
    );

    let run = fixture.run(&["test", "quick"]);
    assert_eq!(run.code, exit_codes::OK);
    assert_gone(&pids);
    assert!(
        !fixture
            .path(&format!("target/xtask/{}/work", killed_run.display()))
            .exists(),
        "the dead invocation's working files are removed"
    );
}

#[test]
fn overflowing_timeouts_mean_no_timeout_and_never_a_panic() {
    let fixture = Fixture::new("engine", "overflow");
    for flag in ["18446744073709551615", "5124095576030432h"] {
        let run = fixture.run(&["test", "quick", "--timeout", flag]);
        assert_code(&run, exit_codes::OK);
    }
    fixture.edit(
        "Cargo.toml",
        "[workspace.metadata.xtask]\n",
        "[workspace.metadata.xtask]\ntimeout = 9223372036854775807\n",
    );
    let run = fixture.run(&["test", "quick"]);
    assert_code(&run, exit_codes::OK);
    assert_eq!(
        suite_record(&record(&fixture), "quick")["timeout_secs"],
        9223372036854775807u64
    );
    // A number at the limit of its type is still a record its schema and types accept.
    assert_valid_run_record(&fixture.path("target/xtask/run.json"));
}

// ------------------------------------------------------------------------------------
// Masking
// ------------------------------------------------------------------------------------

#[test]
fn ordinary_words_in_secret_looking_variables_leave_every_report_intact() {
    let fixture = Fixture::new("engine", "ordinary");
    let mut command = fixture.command(&["test", "ordinary"]);
    command
        .env("SECRET_KEY", "test")
        .env("UV_KEYRING_PROVIDER", "disabled")
        .env("TOKENIZERS_PARALLELISM", "false")
        .env("SOME_TOKEN", "1");
    let run = run(command);
    assert_code(&run, exit_codes::OK);
    let record = record(&fixture);
    assert_eq!(record["suites"][0]["counts"]["passed"], 2, "{record:#}");
    for file in [
        fixture.path("target/xtask/junit.xml"),
        fixture.path("target/xtask/junit/ordinary.xml"),
    ] {
        let report = read_report(&file);
        let suite = suite(&report, "ordinary");
        assert_eq!((suite.tests, suite.failures, suite.errors), (2, 0, 0));
        case(suite, "test_disabled_false_test_and_1_are_fine");
    }
    let log = log_of(&fixture, &record, "ordinary");
    assert!(!log.contains("***"), "nothing was masked:\n{log}");
}

#[test]
fn secrets_are_masked_in_every_form_a_reader_sees_and_in_list_and_doctor() {
    const WEIRD: &str = "a<b&c\"d'e\\f-0123";
    const PEM: &str = "-----BEGIN TEST KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\nAASCBKcwggSjAgEAAoIBAQC7VJTU\n-----END TEST KEY-----\n";
    const LISTED: &str = "  listed-value-7788\n";
    let fixture = Fixture::new("engine", "secrets");
    // `-rP`: pytest prints the passing test's output into the log too.
    let mut command = fixture.command(&["test", "secrets", "--", "-rP"]);
    command
        .env("WEIRD_TOKEN", WEIRD)
        .env("PEM_SECRET", PEM)
        .env("ENGINE_LISTED", LISTED);
    let run = run(command);
    assert_code(&run, exit_codes::TESTS_FAILED);

    // Every way an XML writer may escape an apostrophe (quick-xml writes `&apos;`).
    let escaped_xml = |s: &str, apostrophe: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', apostrophe)
    };
    let escaped_json = |s: &str| serde_json::to_string(s).unwrap();
    let mut forbidden: Vec<String> = vec![
        WEIRD.into(),
        escaped_xml(WEIRD, "&#x27;"),
        escaped_xml(WEIRD, "&apos;"),
        escaped_xml(WEIRD, "'"),
        escaped_json(WEIRD).trim_matches('"').into(),
        LISTED.trim().into(),
        // As pytest's assertion rewriting shows it: Python's repr.
        r#"a<b&c"d\'e\\f-0123"#.into(),
        "pw-manifest-4242".into(),
        "pa(ss)word-77".into(),
    ];
    forbidden.extend(PEM.lines().filter(|l| l.len() >= 6).map(String::from));

    let report = read_report(&fixture.path("target/xtask/junit/secrets.xml"));
    assert_eq!(
        suite(&report, "secrets").tests,
        2,
        "masking changed no count"
    );
    let files = written_files(&fixture);
    assert!(files.len() >= 4, "{files:?}");
    // The JUnit's text as a consumer reads it, entities decoded.
    let decoded = decoded_texts(suite(&report, "secrets"));
    assert!(decoded.contains("***"), "{decoded}");
    for secret in &forbidden {
        assert!(!run.stdout.contains(secret.as_str()), "{secret} on stdout");
        assert!(!run.stderr.contains(secret.as_str()), "{secret} on stderr");
        assert!(
            !decoded.contains(secret.as_str()),
            "{secret} in the JUnit's text"
        );
        for file in &files {
            let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
            assert!(
                !text.contains(secret.as_str()),
                "{secret:?} in {}",
                file.display()
            );
        }
    }
    let log = log_of(&fixture, &record(&fixture), "secrets");
    assert!(
        log.contains("AssertionError: the token is *** and \"***\""),
        "{log}"
    );
    // A passing test's output is in the log with `-rP` (never in the JUnit), masked.
    assert!(
        log.contains("url: postgres://db:5432/x"),
        "user-info removed:\n{log}"
    );

    // `list --json` and `doctor` show the suite's env through the same boundary.
    for args in [
        &["list", "--json"][..],
        &["list"][..],
        &["doctor", "--json"][..],
    ] {
        let shown = fixture.run(args);
        for secret in ["pw-manifest-4242", "pa(ss)word-77"] {
            assert!(!shown.stdout.contains(secret), "{args:?} shows {secret}");
            assert!(!shown.stderr.contains(secret), "{args:?} shows {secret}");
        }
        if args[0] == "list" && args.len() == 2 {
            let listed: Value = serde_json::from_str(&shown.stdout).unwrap();
            let env = &listed
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == "secrets")
                .unwrap()["env"];
            assert_eq!(env["DB_PASSWORD"], "***");
            assert_eq!(env["SERVICE_URL"], "postgres://db:5432/x");
        }
    }
}

/// pytest cuts long texts with `...` (the short summary's message, an assertion's repr),
/// and the xtask cuts long texts too: what is left of a secret on either side of a cut is
/// masked wherever it is written.
#[test]
fn what_is_left_of_a_cut_secret_is_masked_everywhere() {
    let head = "q7<z&w\"K";
    let tail = "END-9x!z";
    let token = format!("{head}{}{tail}", "pR4m".repeat(100));
    let fixture = Fixture::new("engine", "secrets-cut");
    for entry in std::fs::read_dir(fixture.path("suites/secrets/tests")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    fixture.write(
        "suites/secrets/tests/test_cut.py",
        "import os\n\n\
         def test_a():\n    assert False, os.environ['CUT_TOKEN']\n\n\
         def test_b():\n    assert 'a' * 30 + os.environ['CUT_TOKEN'] + 'b' * 30 == 'other'\n\n\
         def test_c():\n    print(os.environ['CUT_TOKEN'] * 3000)\n    assert False\n",
    );
    let mut command = fixture.command(&["test", "secrets"]);
    // pytest cuts its summary only off CI (it reads `CI` and `BUILD_NUMBER`).
    command
        .env("CUT_TOKEN", &token)
        .env_remove("CI")
        .env_remove("BUILD_NUMBER");
    let run = run(command);
    assert_code(&run, exit_codes::TESTS_FAILED);
    let log = log_of(&fixture, &record(&fixture), "secrets");
    // pytest did cut: its summary line ends in `...` after what is left of the token.
    assert!(
        log.lines()
            .any(|l| l.starts_with("FAILED tests/test_cut.py::test_a - AssertionError: ***...")),
        "{log}"
    );
    let forbidden: Vec<String> = [head, tail]
        .iter()
        .flat_map(|part| {
            let xml = part
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('"', "&quot;");
            let json = serde_json::to_string(part).unwrap();
            [part.to_string(), xml, json.trim_matches('"').to_string()]
        })
        .collect();
    let report = read_report(&fixture.path("target/xtask/junit/secrets.xml"));
    let decoded = decoded_texts(suite(&report, "secrets"));
    for secret in &forbidden {
        assert!(!run.stdout.contains(secret.as_str()), "{secret} on stdout");
        assert!(!run.stderr.contains(secret.as_str()), "{secret} on stderr");
        assert!(
            !decoded.contains(secret.as_str()),
            "{secret} in the JUnit's text"
        );
        for file in written_files(&fixture) {
            let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
            assert!(
                !text.contains(secret.as_str()),
                "{secret:?} in {}",
                file.display()
            );
        }
    }
}

// ------------------------------------------------------------------------------------
// Reports
// ------------------------------------------------------------------------------------

#[test]
fn a_logs_path_that_is_a_file_ends_as_an_internal_error_with_every_report_written() {
    let fixture = Fixture::new("engine", "logs_file");
    std::fs::create_dir_all(fixture.path("target/xtask")).unwrap();
    fixture.write("target/xtask/logs", "somebody's file");
    let run = fixture.run(&["test", "quick"]);
    assert_code(&run, exit_codes::INTERNAL_ERROR);
    assert!(
        run.stderr.contains("target/xtask/logs is a file"),
        "{}",
        run.stderr
    );
    assert_eq!(
        fixture.read("target/xtask/logs"),
        "somebody's file",
        "left alone"
    );
    let record = record(&fixture);
    assert_eq!(
        record["exit_code"],
        exit_codes::INTERNAL_ERROR,
        "{record:#}"
    );
    assert_eq!(record["exit_code_name"], "INTERNAL_ERROR");
    // The suite still ran and its own log and report are in the invocation's directory.
    assert_eq!(suite_record(&record, "quick")["outcome"], "passed");
    for key in ["log", "junit"] {
        assert!(fixture
            .path(suite_record(&record, "quick")[key].as_str().unwrap())
            .is_file());
    }
}

#[test]
fn a_junit_path_that_is_a_directory_ends_as_an_internal_error_that_run_json_records() {
    let fixture = Fixture::new("engine", "junit_dir");
    std::fs::create_dir_all(fixture.path("target/xtask/junit.xml/mine")).unwrap();
    let run = fixture.run(&["test", "quick"]);
    assert_code(&run, exit_codes::INTERNAL_ERROR);
    let record = record(&fixture);
    assert_eq!(
        record["exit_code"],
        exit_codes::INTERNAL_ERROR,
        "{record:#}"
    );
    assert!(
        fixture.path("target/xtask/junit.xml/mine").is_dir(),
        "left alone"
    );
    assert!(fixture.path(record["junit"].as_str().unwrap()).is_file());
}

#[test]
fn an_invocation_never_deletes_a_live_ones_files() {
    let fixture = Fixture::new("engine", "overlap");
    // Warm the environment so that the slow invocation is slow in its tests only.
    assert_eq!(
        fixture.run(&["test", "quick", "daemon"]).code,
        exit_codes::OK
    );
    std::fs::remove_file(fixture.path("suites/daemon/pids.txt")).unwrap();
    let mut slow = spawn(fixture.command(&["test", "daemon-hang", "--timeout", "10m"]));
    wait_for_pids(&fixture.path("suites/daemon/pids.txt"), &mut slow);
    let slow_dir = fixture
        .path("target/xtask")
        .join(std::fs::read_link(fixture.path("target/xtask/latest")).unwrap());
    // Others come and go while it runs, more than are kept.
    for _ in 0..=xtask::runs::KEEP_FINISHED {
        assert_eq!(fixture.run(&["test", "quick"]).code, exit_codes::OK);
    }
    let kept = std::fs::read_dir(fixture.path("target/xtask/runs"))
        .unwrap()
        .count();
    assert!(
        kept <= xtask::runs::KEEP_FINISHED + 2,
        "old invocations are pruned: {kept}"
    );
    assert!(
        slow_dir.join("logs/daemon-hang.log").is_file(),
        "the live invocation's log is still there"
    );
    assert!(
        slow_dir.join("work").is_dir(),
        "and so is its working directory"
    );
    Command::new("kill")
        .args(["-INT", &slow.id().to_string()])
        .status()
        .unwrap();
    let run = finish(slow, Duration::from_secs(60));
    assert_eq!(run.code, exit_codes::INTERRUPTED);
    let own: Value =
        serde_json::from_str(&std::fs::read_to_string(slow_dir.join("run.json")).unwrap()).unwrap();
    let suite = suite_record(&own, "daemon-hang");
    for key in ["log", "junit"] {
        assert!(
            fixture.path(suite[key].as_str().unwrap()).is_file(),
            "{key} of the slow run"
        );
    }
}

#[test]
fn a_panic_in_the_xtask_is_an_internal_error_with_every_report_written() {
    let fixture = Fixture::new("engine", "panic");
    let mut command = fixture.command(&["test", "quick", "stdlib-name"]);
    command.env(xtask::runner::executor::INJECT_PANIC_ENV, "quick");
    let run = run(command);
    assert_code(&run, exit_codes::INTERNAL_ERROR);
    let record = record(&fixture);
    assert_eq!(
        record["exit_code"],
        exit_codes::INTERNAL_ERROR,
        "{record:#}"
    );
    assert!(record["error"]
        .as_str()
        .unwrap()
        .contains("panicked while running suite `quick`"));
    assert_eq!(suite_record(&record, "quick")["outcome"], "crashed");
    assert_eq!(suite_record(&record, "stdlib-name")["outcome"], "passed");
    let report = read_report(&fixture.path("target/xtask/junit.xml"));
    assert_eq!(report.test_suites.len(), 2);
    read_report(&fixture.path("target/xtask/junit/quick.xml"));
}

// ------------------------------------------------------------------------------------
// Retries
// ------------------------------------------------------------------------------------

#[test]
fn a_test_that_passes_on_a_retry_is_flaky_and_one_that_never_does_keeps_every_attempt() {
    use quick_junit::TestCaseStatus;
    let fixture = Fixture::new("engine", "retries");
    let run = fixture.run(&["test", "flaky", "--retries", "2"]);
    assert_code(&run, exit_codes::TESTS_FAILED);
    let record = record(&fixture);
    let counts = &suite_record(&record, "flaky")["counts"];
    assert_eq!(
        (counts["flaky"].as_u64(), counts["failed"].as_u64()),
        (Some(1), Some(1)),
        "{counts}"
    );
    assert!(run.stdout.contains("1 flaky"), "{}", run.stdout);

    let report = read_report(&fixture.path("target/xtask/junit/flaky.xml"));
    let suite = suite(&report, "flaky");
    let TestCaseStatus::Success { flaky_runs } = &case(suite, "test_fails_once_then_passes").status
    else {
        panic!("the flaky test passed at last")
    };
    assert_eq!(flaky_runs.len(), 1);
    assert!(flaky_runs[0]
        .message
        .as_ref()
        .unwrap()
        .contains("the first attempt fails"));
    let TestCaseStatus::NonSuccess { reruns, .. } = &case(suite, "test_always_fails").status else {
        panic!("the failing test failed")
    };
    assert_eq!(reruns.len(), 2, "both earlier attempts are kept");
    for earlier in flaky_runs.iter().chain(reruns) {
        assert!(earlier.ty.is_some(), "{earlier:?}");
        assert_eq!(earlier.time, None, "{earlier:?}");
        assert!(earlier.stack_trace.is_some(), "{earlier:?}");
    }
    // Maven surefire's schema, the one that defines these elements, accepts each of them.
    let files = [
        fixture.path("target/xtask/junit/flaky.xml"),
        fixture.path("target/xtask/junit.xml"),
    ];
    let consumers = junit_consumers(&files);
    for file in consumers["files"].as_array().unwrap() {
        let reruns = file["reruns"].as_array().unwrap();
        let mut tags: Vec<_> = reruns.iter().map(|r| r["tag"].as_str().unwrap()).collect();
        tags.sort();
        assert_eq!(
            tags,
            ["flakyFailure", "rerunFailure", "rerunFailure"],
            "{file:#}"
        );
        for rerun in reruns {
            assert_eq!(rerun["schema_errors"], serde_json::json!([]), "{file:#}");
        }
    }
    let retries = commands(&record, "flaky")
        .iter()
        .filter(|c| c["step"] == "retry")
        .count();
    assert_eq!(retries, 2);

    // Alone, the flaky test makes a passing run, unless flaky tests fail it.
    std::fs::remove_file(fixture.path("suites/flaky/failed-once.marker")).unwrap();
    let run = fixture.run(&[
        "test",
        "flaky",
        "--retries",
        "1",
        "--",
        "tests/test_flaky.py",
    ]);
    assert_code(&run, exit_codes::OK);
    std::fs::remove_file(fixture.path("suites/flaky/failed-once.marker")).unwrap();
    let run = fixture.run(&[
        "test",
        "flaky",
        "--retries",
        "1",
        "--flaky-fails",
        "--",
        "tests/test_flaky.py",
    ]);
    assert_code(&run, exit_codes::TESTS_FAILED);
}

/// Test dependencies declared as PEP 735 dependency groups: the default groups (where
/// `uv add --dev` puts them, here pulling `test` in through `include-group`), a named group
/// without the defaults, and neither (no pytest: an environment error, never a pass). Each
/// in its own environment, checked from inside by what is installed.
#[test]
fn dependency_groups_are_installed_as_the_suite_names_them() {
    let fixture = Fixture::new("groups", "dependency_groups");
    // A group the project does not define: uv's error, the suite's environment-error.
    let manifest = fixture.read("Cargo.toml");
    fixture.write(
        "Cargo.toml",
        &format!("{manifest}\n[[workspace.metadata.xtask.suites]]\nname = \"no-such-group\"\ngroup = \"groups\"\ndir = \"gamma\"\ngroups = [\"nope\"]\npaths = [\"tests\"]\n"),
    );
    let run = fixture.run(&["test", "-j", "2"]);
    let record = record(&fixture);
    for name in ["default-groups", "only-test-group"] {
        let suite = suite_record(&record, name);
        assert_eq!(suite["outcome"], "passed", "{name}: {}", run.stdout);
        assert_eq!(suite["counts"]["passed"], 1, "{name}");
    }
    let only = commands(&record, "only-test-group");
    let sync = only
        .iter()
        .map(|c| c["argv"].as_array().unwrap())
        .find(|argv| argv.iter().any(|a| a == "sync"))
        .expect("a uv sync");
    for flag in ["--group", "test", "--no-default-groups"] {
        assert!(sync.iter().any(|a| a == flag), "{sync:?}");
    }
    assert_ne!(
        suite_record(&record, "default-groups")["environment"]["path"],
        suite_record(&record, "only-test-group")["environment"]["path"],
        "other groups, other environment"
    );
    let none = suite_record(&record, "no-groups");
    assert_eq!(none["outcome"], "environment-error", "{}", run.stdout);
    let missing = suite_record(&record, "no-such-group");
    assert_eq!(missing["outcome"], "environment-error", "{}", run.stdout);
    let log = fixture.read("target/xtask/logs/no-such-group.log");
    assert!(log.contains("nope"), "{log}");
    assert_code(&run, exit_codes::ENVIRONMENT_ERROR);
}
