//! The result cache, through the real binary with real uv and pytest: a suite whose inputs
//! are unchanged is replayed (CACHED, `cached-from`, the record's `cached`), a change to
//! each kind of input makes it run, what did not pass cleanly is never stored, a damaged
//! entry is never trusted, and two invocations fill the cache at once.

mod common;

use std::path::PathBuf;

use common::*;
use xtask::exit_codes;

/// The suites of the latest run that ran, and those replayed from the cache (each with
/// the run it came from).
fn ran_and_cached(fixture: &Fixture) -> (Vec<String>, Vec<(String, String)>) {
    let record = record(fixture);
    let mut ran = Vec::new();
    let mut cached = Vec::new();
    for suite in record["suites"].as_array().unwrap() {
        let name = suite["name"].as_str().unwrap().to_string();
        match suite["cached"]["run_id"].as_str() {
            Some(from) => cached.push((name, from.to_string())),
            None => ran.push(name),
        }
    }
    (ran, cached)
}

/// Runs `args` (exit 0), and asserts which suites ran: the others were replayed.
#[track_caller]
fn runs(fixture: &Fixture, args: &[&str], expected: &[&str]) -> Run {
    let run = fixture.run(args);
    assert_code(&run, exit_codes::OK);
    let (ran, cached) = ran_and_cached(fixture);
    assert_eq!(ran, expected, "which suites ran; stdout:\n{}", run.stdout);
    for (name, _) in &cached {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("CACHED {name} [g]"))),
            "{name} replayed without its CACHED line:\n{}",
            run.stdout
        );
    }
    run
}

/// Runs `test`, then asserts that a second run replays everything (the change was stored).
#[track_caller]
fn runs_then_cached(fixture: &Fixture, expected: &[&str]) {
    runs(fixture, &["test"], expected);
    runs(fixture, &["test"], &[]);
}

#[test]
fn an_unchanged_suite_is_replayed_with_where_its_result_comes_from() {
    let fixture = Fixture::new("cache", "cache_replay");
    runs(&fixture, &["test"], &["app", "other"]);
    let first = record(&fixture);
    let first_id = first["run_id"].as_str().unwrap().to_string();
    let run = runs(&fixture, &["test"], &[]);
    let (_, cached) = ran_and_cached(&fixture);
    assert_eq!(
        cached,
        [
            ("app".to_string(), first_id.clone()),
            ("other".to_string(), first_id.clone())
        ]
    );
    assert!(
        run.stdout
            .contains(&format!("(passed in run {first_id}, in ")),
        "{}",
        run.stdout
    );
    // The same tests and counts as the run it comes from, in every report.
    let second = record(&fixture);
    for name in ["app", "other"] {
        let (a, b) = (suite_record(&first, name), suite_record(&second, name));
        assert_eq!(a["counts"], b["counts"]);
        assert_eq!(
            a["tests"].as_array().unwrap().len(),
            b["tests"].as_array().unwrap().len()
        );
        assert_eq!(b["outcome"], "passed");
        assert_eq!(b["cached"]["duration_secs"], a["duration_secs"]);
    }
    let report = fixture.report();
    let app = suite(&report, "app");
    assert_eq!(app.test_cases.len(), 3);
    let from: Vec<&str> = app
        .properties
        .iter()
        .filter(|p| p.name.as_str() == "cached-from")
        .map(|p| p.value.as_str())
        .collect();
    assert_eq!(from, [first_id.as_str()]);
    assert_valid_run_record(&fixture.path("target/xtask/run.json"));
    let log = fixture.read("target/xtask/logs/app.log");
    assert!(
        log.contains(&format!(
            "not run: its inputs are exactly those of run {first_id}"
        )),
        "{log}"
    );
    // The page and, in GitHub Actions, the step summary say where each result comes from.
    let page = fixture.read("target/xtask/report.html");
    assert!(
        page.contains(&format!("cached from {first_id}")),
        "report.html"
    );
    let summary = fixture.path("summary.md");
    let mut command = fixture.command(&["test"]);
    command
        .env(xtask::report::github::ACTIONS_ENV, "true")
        .env(xtask::report::github::SUMMARY_ENV, &summary);
    assert_code(&common::run(command), exit_codes::OK);
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.contains(&format!("| passed (cached from run {first_id}) |")),
        "{summary}"
    );
    // replay shows the CACHED lines again.
    let replayed = fixture.run(&["replay"]);
    assert_code(&replayed, exit_codes::OK);
    assert!(
        replayed.stdout.contains("CACHED app [g]"),
        "{}",
        replayed.stdout
    );
    // --no-cache runs everything and stores nothing new over it.
    runs(&fixture, &["test", "--no-cache"], &["app", "other"]);
    let explained = fixture.run(&["cache", "explain"]);
    assert_code(&explained, exit_codes::OK);
    assert!(
        explained.stdout.contains(&format!(
            "app: cached: the next run replays its result from run {first_id}"
        )),
        "{}",
        explained.stdout
    );
}

#[test]
fn a_change_to_each_kind_of_input_makes_the_suite_run() {
    let fixture = Fixture::new("cache", "cache_inputs");
    runs_then_cached(&fixture, &["app", "other"]);

    // A test file.
    fixture.edit(
        "app/tests/test_app.py",
        "def test_env",
        "def test_env_again():\n    pass\n\n\ndef test_env",
    );
    runs_then_cached(&fixture, &["app"]);
    // A module on its pythonpath.
    fixture.edit("lib/helper.py", "return 1", "return 0 + 1");
    runs_then_cached(&fixture, &["app"]);
    // A new, untracked file in its directory.
    fixture.write("app/tests/notes.txt", "a note");
    runs_then_cached(&fixture, &["app"]);
    // The lock (a comment uv accepts: the environment is rebuilt, the key changes).
    let lock = fixture.read("app/uv.lock");
    fixture.write("app/uv.lock", &format!("{lock}# touched\n"));
    runs_then_cached(&fixture, &["app"]);
    // A requirements file.
    fixture.write("other/requirements.txt", "pytest==9.2.0\n# pinned\n");
    runs_then_cached(&fixture, &["other"]);
    // conftest.py above the suite's directory (it did not exist: adding it counts).
    fixture.write("conftest.py", "# the root's conftest\n");
    runs_then_cached(&fixture, &["app", "other"]);
    // Its manifest entry.
    fixture.edit("Cargo.toml", "APP_MODE = \"one\"", "APP_MODE = \"two\"");
    runs_then_cached(&fixture, &["app"]);
    // The manifest's settings for all suites.
    fixture.edit("Cargo.toml", "timeout = \"5m\"", "timeout = \"6m\"");
    runs_then_cached(&fixture, &["app", "other"]);
    // A file an `inputs` glob matches, changed, then a new one.
    fixture.write("data/x.txt", "other data\n");
    runs_then_cached(&fixture, &["app"]);
    fixture.write("data/y.txt", "more\n");
    runs_then_cached(&fixture, &["app"]);
    // The arguments after `--`.
    runs(&fixture, &["test", "--", "-q"], &["app", "other"]);
    runs(&fixture, &["test", "--", "-q"], &[]);
    runs(&fixture, &["test"], &[]);
}

#[test]
fn variables_it_reads_make_it_run_and_others_do_not() {
    let fixture = Fixture::new("cache", "cache_variables");
    runs_then_cached(&fixture, &["app", "other"]);
    let with = |name: &str, value: &str, expected: &[&str]| {
        let mut command = fixture.command(&["test"]);
        command.env(name, value);
        let run = run(command);
        assert_code(&run, exit_codes::OK);
        assert_eq!(ran_and_cached(&fixture).0, expected, "{name}={value}");
    };
    // One its `inputs-env` names: only that suite.
    with("APP_REGION", "eu", &["app"]);
    with("APP_REGION", "eu", &[]);
    with("APP_REGION", "us", &["app"]);
    // One that changes how pytest behaves: every suite.
    with("PYTEST_ADDOPTS", "-q", &["app", "other"]);
    // One nobody reads: nothing.
    with("SOME_UNRELATED_VARIABLE", "1", &[]);
}

#[test]
fn another_interpreter_makes_the_suite_run() {
    let fixture = Fixture::new("cache", "cache_interpreter");
    // A private copy of the machine's interpreter, which this test may change.
    let real = std::process::Command::new("python3")
        .args([
            "-c",
            "import os, sys; print(os.path.realpath(sys.executable))",
        ])
        .output()
        .expect("python3 runs");
    let real = PathBuf::from(String::from_utf8(real.stdout).unwrap().trim());
    let copy = fixture.path("py/bin").join(real.file_name().unwrap());
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(&real, &copy).unwrap();
    let with_copy = |expected: &[&str]| {
        let mut command = fixture.command(&["test", "other"]);
        command.env("UV_PYTHON", &copy);
        let run = run(command);
        assert_code(&run, exit_codes::OK);
        assert_eq!(ran_and_cached(&fixture).0, expected, "{}", run.stdout);
    };
    with_copy(&["other"]);
    with_copy(&[]);
    // The interpreter replaced in place (a new patch release): its size and mtime change.
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes.extend_from_slice(b"\0patched");
    std::fs::write(&copy, bytes).unwrap();
    with_copy(&["other"]);
    with_copy(&[]);
    let explained = fixture.run(&["cache", "explain", "other"]);
    assert_code(&explained, exit_codes::OK);
    // Without UV_PYTHON it is another interpreter again.
    assert!(
        explained.stdout.contains("the Python interpreter: changed")
            || explained.stdout.contains("its environment is out of date"),
        "{}",
        explained.stdout
    );
}

#[test]
fn a_suite_that_failed_or_was_flaky_is_never_cached() {
    let fixture = Fixture::new("cache", "cache_failing");
    fixture.write(
        "other/tests/test_other.py",
        "def test_other():\n    assert False\n",
    );
    let run = fixture.run(&["test", "other"]);
    assert_code(&run, exit_codes::TESTS_FAILED);
    let again = fixture.run(&["test", "other"]);
    assert_code(&again, exit_codes::TESTS_FAILED);
    assert_eq!(ran_and_cached(&fixture).0, ["other"]);
    // Flaky: passes only on its retry (a marker file tells the second attempt).
    fixture.write(
        "other/tests/test_other.py",
        "import pathlib\n\ndef test_other():\n    marker = pathlib.Path(__file__).with_name('ran-once')\n    first = not marker.exists()\n    marker.write_text('x')\n    assert not first\n",
    );
    let flaky = fixture.run(&["test", "other", "--retries", "1"]);
    assert_code(&flaky, exit_codes::OK);
    assert!(flaky.stdout.contains("1 flaky"), "{}", flaky.stdout);
    std::fs::remove_file(fixture.path("other/tests/ran-once")).unwrap();
    let after = fixture.run(&["test", "other", "--retries", "1"]);
    assert_code(&after, exit_codes::OK);
    assert_eq!(
        ran_and_cached(&fixture).0,
        ["other"],
        "a flaky pass is not stored"
    );
    let explained = fixture.run(&["cache", "explain", "other"]);
    assert!(
        explained.stdout.contains("other: runs:"),
        "{}",
        explained.stdout
    );
}

#[test]
fn a_damaged_entry_is_removed_with_a_warning_and_never_trusted() {
    let fixture = Fixture::new("cache", "cache_damaged");
    runs_then_cached(&fixture, &["app", "other"]);
    let dir = fixture.path("target/xtask/cache/suites/other");
    let entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1);
    // Cut short.
    let text = std::fs::read_to_string(&entries[0]).unwrap();
    std::fs::write(&entries[0], &text[..text.len() / 2]).unwrap();
    let run = runs(&fixture, &["test"], &["other"]);
    assert!(
        run.stderr
            .contains("xtask: warning: the result cache's entry")
            && run.stderr.contains("could not be used"),
        "{}",
        run.stderr
    );
    // Forged: a failing result under the right key is refused too.
    runs(&fixture, &["test"], &[]);
    let text = std::fs::read_to_string(&entries[0]).unwrap();
    std::fs::write(
        &entries[0],
        text.replacen("\"outcome\":\"passed\"", "\"outcome\":\"failed\"", 1),
    )
    .unwrap();
    let run = runs(&fixture, &["test"], &["other"]);
    assert!(run.stderr.contains("could not be used"), "{}", run.stderr);
    // A damaged stat cache only costs reading the files again.
    std::fs::write(
        fixture.path("target/xtask/cache/file-hashes"),
        "garbage\n\0\0",
    )
    .unwrap();
    runs(&fixture, &["test"], &[]);
    // `cache clear` empties it.
    let cleared = fixture.run(&["cache", "clear"]);
    assert_code(&cleared, exit_codes::OK);
    runs(&fixture, &["test"], &["app", "other"]);
}

#[test]
fn two_invocations_fill_the_cache_at_once() {
    let fixture = Fixture::new("cache", "cache_concurrent");
    // Environments first, so that the two runs overlap in pytest and in storing.
    runs(&fixture, &["test", "--no-cache"], &["app", "other"]);
    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut command = fixture.command(&["test"]);
            command
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            command.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("warning"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Whatever order they stored in, every entry is whole and the next run replays all.
    runs(&fixture, &["test"], &[]);
    for suite in ["app", "other"] {
        for entry in
            std::fs::read_dir(fixture.path(&format!("target/xtask/cache/suites/{suite}"))).unwrap()
        {
            let path = entry.unwrap().path();
            let value: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).expect("a whole entry");
            assert_eq!(value["suite"], suite);
        }
    }
}

#[test]
fn suites_with_services_prerequisites_or_cache_false_and_reruns_never_replay() {
    let fixture = Fixture::new("cache", "cache_never");
    fixture.edit(
        "Cargo.toml",
        "name = \"other\"\ngroup = \"g\"",
        "name = \"other\"\ngroup = \"g\"\ncache = false",
    );
    runs_then_cached_except(&fixture);
    // `list --json` says what `cache explain` says.
    let listed = fixture.run(&["list", "--json"]);
    assert_code(&listed, exit_codes::OK);
    let suites: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(suites[0]["cache"]["inputs"][0], "data/*.txt");
    assert_eq!(suites[0]["cache"]["inputs_env"][0], "APP_REGION");
    assert_eq!(suites[0]["cache"]["never_cached"], serde_json::Value::Null);
    assert_eq!(suites[1]["cache"]["enabled"], false);
    assert_eq!(
        suites[1]["cache"]["never_cached"],
        "its manifest entry says `cache = false`"
    );
    let explained = fixture.run(&["cache", "explain"]);
    assert!(
        explained
            .stdout
            .contains("other: never cached: its manifest entry says `cache = false`"),
        "{}",
        explained.stdout
    );
    // A --rerun neither replays nor stores (it runs only what failed).
    let rerun = fixture.run(&["test", "--rerun"]);
    assert_code(&rerun, exit_codes::OK);
    // A partition neither.
    runs(
        &fixture,
        &["test", "--partition", "hash:1/1"],
        &["app", "other"],
    );
    runs(&fixture, &["test"], &["other"]);
    // `requires-env` makes a suite never cached.
    fixture.edit(
        "Cargo.toml",
        "inputs-env = [\"APP_REGION\"]",
        "inputs-env = [\"APP_REGION\"]\nrequires-env = [\"APP_KEY\"]",
    );
    for _ in 0..2 {
        let mut command = fixture.command(&["test"]);
        command.env("APP_KEY", "k");
        assert_code(&run(command), exit_codes::OK);
    }
    assert_eq!(ran_and_cached(&fixture).0, ["app", "other"]);
}

fn runs_then_cached_except(fixture: &Fixture) {
    runs(fixture, &["test"], &["app", "other"]);
    runs(fixture, &["test"], &["other"]);
}

#[test]
fn inside_a_git_work_tree_ignored_files_are_not_inputs() {
    let fixture = Fixture::new("cache", "cache_git");
    fixture.write(".gitignore", "target/\n*.log\n");
    git(&fixture.root, &["init", "-q"]);
    git(&fixture.root, &["add", "-A"]);
    runs_then_cached(&fixture, &["app", "other"]);
    // Ignored: not an input.
    fixture.write("app/tests/debug.log", "noise");
    runs(&fixture, &["test"], &[]);
    // Untracked, not ignored: an input.
    fixture.write("app/tests/new_data.json", "{}");
    runs_then_cached(&fixture, &["app"]);
    // A file written while the suite runs is not taken for its input before: not stored.
    fixture.write(
        "other/tests/test_other.py",
        "import pathlib\n\ndef test_other():\n    pathlib.Path(__file__).with_name('written_by_the_test.txt').write_text('x')\n",
    );
    let run = fixture.run(&["test", "other"]);
    assert_code(&run, exit_codes::OK);
    assert!(
        run.stderr.contains("suite `other` was not cached: other/tests/written_by_the_test.txt changed while it ran"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_file_whose_name_is_not_utf8_keeps_its_suite_out_of_the_cache() {
    use std::os::unix::ffi::OsStrExt;
    let fixture = Fixture::new("cache", "cache_not_utf8");
    let odd = fixture
        .path("other/tests")
        .join(std::ffi::OsStr::from_bytes(b"data-\xff.txt"));
    std::fs::write(&odd, "x").unwrap();
    // `app` is cached as ever; `other` runs every time.
    for expected in [&["app", "other"][..], &["other"][..]] {
        let run = runs(&fixture, &["test"], expected);
        assert!(
            run.stderr.contains("other: not replayed from the result cache, nor stored in it: the name of other/tests/data-\u{fffd}.txt is not UTF-8"),
            "{}",
            run.stderr
        );
    }
    let explained = fixture.run(&["cache", "explain", "other"]);
    assert!(
        explained
            .stdout
            .contains("other: runs, and is not stored: the name of"),
        "{}",
        explained.stdout
    );
}

#[test]
fn a_file_the_suite_changes_while_it_runs_keeps_it_out_of_the_cache() {
    let fixture = Fixture::new("cache", "cache_changed_while_running");
    // A file of the suite, old enough for the stat cache to trust it.
    let state = fixture.path("other/tests/state.txt");
    std::fs::write(&state, "before\n").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&state)
        .unwrap()
        .set_modified(old)
        .unwrap();
    runs_then_cached(&fixture, &["app", "other"]);
    // Now the suite's test rewrites it: its result must not be stored under the inputs
    // it started with.
    fixture.write(
        "other/tests/test_other.py",
        "import pathlib\n\ndef test_other():\n    pathlib.Path(__file__).with_name('state.txt').write_text('after\\n')\n",
    );
    let run = runs(&fixture, &["test", "other"], &["other"]);
    assert!(
        run.stderr
            .contains("suite `other` was not cached: other/tests/state.txt changed while it ran"),
        "{}",
        run.stderr
    );
    // Its next run starts from what the file is now, and is stored.
    runs(&fixture, &["test", "other"], &["other"]);
    runs(&fixture, &["test", "other"], &[]);
}
