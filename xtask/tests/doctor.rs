//! `cargo xtask doctor`: the real binary with real uv and pytest on fixture repositories,
//! healthy and broken one way at a time.

mod common;

use common::*;
use serde_json::Value;
use xtask::exit_codes;

/// One printed check: `  FAIL  alpha: markers: <detail>` and the lines under it.
#[derive(Debug)]
struct Line {
    label: String,
    subject: String,
    detail: String,
    fix: Option<String>,
}

fn lines(stdout: &str) -> Vec<Line> {
    let mut found: Vec<Line> = Vec::new();
    for line in stdout.lines() {
        if let Some(fix) = line.trim_start().strip_prefix("fix: ") {
            found.last_mut().expect("a fix follows its check").fix = Some(fix.to_string());
            continue;
        }
        let Some(rest) = line.strip_prefix("  ") else {
            continue;
        };
        let Some((label, rest)) = rest.split_once(' ') else {
            continue;
        };
        if !["ok", "FAIL", "skip", "n/a", "warn"].contains(&label) {
            continue;
        }
        // `uv: detail` or `suite: check: detail`.
        let rest = rest.trim_start();
        let parts: Vec<&str> = rest.splitn(3, ": ").collect();
        let (subject, detail) = if parts[0] == "uv" {
            ("uv".to_string(), rest["uv: ".len()..].to_string())
        } else {
            (format!("{}: {}", parts[0], parts[1]), parts[2].to_string())
        };
        found.push(Line {
            label: label.to_string(),
            subject,
            detail,
            fix: None,
        });
    }
    found
}

fn line<'a>(lines: &'a [Line], subject: &str) -> &'a Line {
    lines
        .iter()
        .find(|l| l.subject == subject)
        .unwrap_or_else(|| panic!("no check `{subject}` in {lines:#?}"))
}

fn doctor_json(fixture: &Fixture) -> (u8, Value) {
    let run = fixture.run(&["doctor", "--json"]);
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("doctor --json printed no JSON ({e}):\n{}", run.stdout));
    (run.code, report)
}

fn json_check<'a>(report: &'a Value, suite: &str, check: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["suite"] == suite && c["check"] == check)
        .unwrap_or_else(|| panic!("no check {suite}/{check} in {report:#}"))
}

const SUITE_CHECKS: [&str; 5] = ["python", "lock", "environment", "pytest", "markers"];

#[test]
fn a_healthy_repository_passes_every_check() {
    let fixture = Fixture::new("basic", "doctor_healthy");
    let run = fixture.run(&["doctor"]);
    assert_eq!(run.code, exit_codes::OK);

    let lines = lines(&run.stdout);
    let subjects: Vec<&str> = lines.iter().map(|l| l.subject.as_str()).collect();
    let mut expected = vec!["uv".to_string()];
    for suite in ["alpha", "beta"] {
        expected.extend(SUITE_CHECKS.iter().map(|c| format!("{suite}: {c}")));
    }
    assert_eq!(subjects, expected);
    for line in &lines {
        // beta runs with --no-project and has no uv.lock: nothing to check, nothing wrong.
        let expected = if line.subject == "beta: lock" {
            "n/a"
        } else {
            "ok"
        };
        assert_eq!(line.label, expected, "{line:?}");
    }
    assert!(line(&lines, "uv")
        .detail
        .contains(&format!("uv {}", xtask::toolchain::UV_VERSION)));
    assert!(line(&lines, "alpha: python")
        .detail
        .contains("satisfies requires-python `>=3.11`"));
    assert_eq!(
        line(&lines, "alpha: markers").detail,
        "`integration` is registered"
    );
    assert!(run
        .stdout
        .trim_end()
        .ends_with("10 ok, 1 not applicable; every check passed"));

    let (code, report) = doctor_json(&fixture);
    assert_eq!(code, exit_codes::OK);
    assert_eq!(report["ok"], true);
    assert_eq!(report["exit_code"], exit_codes::OK);
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 11);
    assert_eq!(checks[0]["check"], "uv");
    assert_eq!(checks[0]["suite"], Value::Null);
    for check in checks {
        if check["suite"] == "beta" && check["check"] == "lock" {
            assert_eq!(check["status"], "not-applicable");
            assert_eq!(check["ok"], Value::Null);
        } else {
            assert_eq!(check["ok"], true, "{check:#}");
            assert_eq!(check["status"], "ok");
        }
        assert_eq!(check["fix"], Value::Null);
    }
    // The pytest check is the environment step `cargo xtask test` runs.
    let pytest = json_check(&report, "alpha", "pytest")["command"]
        .as_str()
        .unwrap();
    assert!(
        pytest.contains("/target/xtask/envs/libs-alpha-")
            && pytest.ends_with("/bin/python -I -c 'import pytest'"),
        "{pytest}"
    );
}

/// The issue's acceptance test: doctor passes on (a copy of) this repository.
#[test]
fn this_repository_passes_every_check() {
    let fixture = Fixture::this_repository("doctor_this_repository");
    let mut command = fixture.command(&["doctor"]);
    command.env_remove("OPENAI_API_KEY");
    let run = run(command);
    assert_eq!(run.code, exit_codes::OK, "{}", run.stdout);
    let lines = lines(&run.stdout);
    // Five unit suites and three smoke suites; two of those need prerequisites.
    assert_eq!(lines.len(), 1 + 8 * SUITE_CHECKS.len() + 2);
    // What the smoke run would lack here is a warning, not a failure.
    for (suite, what) in [
        (
            "specialists-integration",
            "prerequisite `openai-key` (env OPENAI_API_KEY): OPENAI_API_KEY is not set",
        ),
        (
            "backend-broker",
            "prerequisite `broker` (tcp 127.0.0.1:9092)",
        ),
    ] {
        let warning = line(&lines, &format!("{suite}: prerequisites"));
        assert_eq!(warning.label, "warn");
        assert!(warning.detail.contains(what), "{}", warning.detail);
    }
    assert!(
        lines
            .iter()
            .all(|l| l.label == "ok" || l.subject.ends_with(": prerequisites")),
        "{lines:#?}"
    );
    for suite in ["specialists", "agent"] {
        assert_eq!(
            line(&lines, &format!("{suite}: markers")).detail,
            "`integration` is registered"
        );
    }
    // The backend's unit suite also leaves out its smoke tests.
    assert_eq!(
        line(&lines, "backend: markers").detail,
        "`integration`, `smoke` are registered"
    );
    assert!(
        run.stdout.contains("2 unavailable; nothing failed"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_unregistered_marker_fails_the_markers_check() {
    let fixture = Fixture::new("basic", "doctor_unregistered_marker");
    fixture.edit(
        "Cargo.toml",
        r#"markers = "not integration""#,
        r#"markers = "not integration and not slow""#,
    );
    let run = fixture.run(&["doctor"]);
    assert_eq!(run.code, exit_codes::ENVIRONMENT_ERROR);
    let lines = lines(&run.stdout);
    let markers = line(&lines, "alpha: markers");
    assert_eq!(markers.label, "FAIL");
    assert!(
        markers.detail.starts_with("`slow` is not registered"),
        "{markers:?}"
    );
    assert!(markers.fix.as_deref().unwrap().starts_with(
        "register it under [tool.pytest.ini_options] markers in libs/alpha/pyproject.toml"
    ));
    // Only that check failed.
    let failed: Vec<&str> = lines
        .iter()
        .filter(|l| l.label != "ok" && l.label != "n/a")
        .map(|l| l.subject.as_str())
        .collect();
    assert_eq!(failed, ["alpha: markers"]);
    assert!(run.stdout.contains("exit code 103 (ENVIRONMENT_ERROR)"));

    let (code, report) = doctor_json(&fixture);
    assert_eq!(code, exit_codes::ENVIRONMENT_ERROR);
    assert_eq!(report["ok"], false);
    assert_eq!(report["exit_code"], exit_codes::ENVIRONMENT_ERROR);
    let check = json_check(&report, "alpha", "markers");
    assert_eq!(check["ok"], false);
    assert!(check["fix"].as_str().unwrap().contains("pyproject.toml"));
    assert!(check["command"]
        .as_str()
        .unwrap()
        .contains("/bin/pytest --rootdir=. --markers tests"));
}

#[test]
fn a_stale_lock_fails_the_lock_check_and_skips_what_needs_it() {
    let fixture = Fixture::new("basic", "doctor_stale_lock");
    fixture.edit(
        "libs/alpha/pyproject.toml",
        "dependencies = []",
        r#"dependencies = ["iniconfig"]"#,
    );
    let run = fixture.run(&["doctor"]);
    assert_eq!(run.code, exit_codes::ENVIRONMENT_ERROR);
    let lines = lines(&run.stdout);
    let lock = line(&lines, "alpha: lock");
    assert_eq!(lock.label, "FAIL");
    assert!(lock.detail.contains("not in sync"), "{lock:?}");
    assert_eq!(
        lock.fix.as_deref(),
        Some("run `uv lock` in libs/alpha and commit uv.lock")
    );
    // uv's own explanation is shown.
    assert!(run.stdout.contains("needs to be updated"), "{}", run.stdout);
    for check in ["environment", "pytest", "markers"] {
        assert_eq!(line(&lines, &format!("alpha: {check}")).label, "skip");
    }
    assert_eq!(line(&lines, "beta: environment").label, "ok");
}

#[test]
fn a_missing_lock_fails_for_a_project_suite() {
    let fixture = Fixture::new("basic", "doctor_missing_lock");
    std::fs::remove_file(fixture.path("libs/alpha/uv.lock")).unwrap();
    let run = fixture.run(&["doctor"]);
    assert_eq!(run.code, exit_codes::ENVIRONMENT_ERROR);
    let lines = lines(&run.stdout);
    let lock = line(&lines, "alpha: lock");
    assert_eq!(lock.label, "FAIL");
    assert!(lock.detail.contains("has no uv.lock"), "{lock:?}");
    assert_eq!(
        lock.fix.as_deref(),
        Some("run `uv lock` in libs/alpha and commit uv.lock")
    );
    // The check must not have created one.
    assert!(!fixture.path("libs/alpha/uv.lock").exists());
}

#[test]
fn an_environment_without_pytest_is_told_apart_from_one_that_does_not_build() {
    let fixture = Fixture::new("basic", "doctor_no_pytest");
    // alpha installs no extra, so nothing brings pytest.
    fixture.edit("Cargo.toml", r#"extras = ["test"]"#, "extras = []");
    // beta asks for a package that does not exist.
    fixture.edit(
        "Cargo.toml",
        r#"requirements = ["pytest==9.2.0"]"#,
        r#"requirements = ["pytest==9.2.0", "xtask-fixture-no-such-package==1.0"]"#,
    );
    let run = fixture.run(&["doctor"]);
    assert_eq!(run.code, exit_codes::ENVIRONMENT_ERROR);
    let lines = lines(&run.stdout);

    assert_eq!(line(&lines, "alpha: environment").label, "ok");
    let pytest = line(&lines, "alpha: pytest");
    assert_eq!(pytest.label, "FAIL");
    assert!(
        pytest
            .detail
            .contains("the environment builds, but `import pytest` fails"),
        "{pytest:?}"
    );
    assert!(
        pytest.fix.as_deref().unwrap().contains("extras"),
        "{pytest:?}"
    );
    assert!(run.stdout.contains("No module named 'pytest'"));
    assert_eq!(line(&lines, "alpha: markers").label, "skip");

    let environment = line(&lines, "beta: environment");
    assert_eq!(environment.label, "FAIL");
    assert!(environment
        .detail
        .starts_with("uv could not build the environment"));
    assert!(environment
        .fix
        .as_deref()
        .unwrap()
        .contains("`requirements` in Cargo.toml"));
    assert!(run.stdout.contains("xtask-fixture-no-such-package"));
    assert_eq!(line(&lines, "beta: pytest").label, "skip");
}

#[test]
fn no_python_for_requires_python_is_a_toolchain_error() {
    let fixture = Fixture::new("basic", "doctor_no_python");
    fixture.edit(
        "libs/beta/pyproject.toml",
        r#"requires-python = ">=3.11""#,
        r#"requires-python = ">=3.99""#,
    );
    let run = fixture.run(&["doctor"]);
    assert_eq!(run.code, exit_codes::TOOLCHAIN_ERROR);
    let lines = lines(&run.stdout);
    let python = line(&lines, "beta: python");
    assert_eq!(python.label, "FAIL");
    assert!(python.detail.contains("`>=3.99`"), "{python:?}");
    assert!(python.fix.as_deref().unwrap().contains("uv python install"));
    for check in ["lock", "environment", "pytest", "markers"] {
        assert_eq!(line(&lines, &format!("beta: {check}")).label, "skip");
    }
    assert_eq!(line(&lines, "alpha: python").label, "ok");
}

#[test]
fn without_uv_and_no_way_to_install_it_doctor_names_the_toolchain_problem() {
    let fixture = Fixture::new("basic", "doctor_no_uv");
    let empty = fixture.path("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let hidden = |args: &[&str]| {
        let mut command = fixture.command(args);
        command
            .env_remove(xtask::toolchain::UV_ENV)
            .env("PATH", &empty);
        run(command)
    };

    let run = hidden(&["doctor"]);
    assert_eq!(run.code, exit_codes::TOOLCHAIN_ERROR);
    let lines = lines(&run.stdout);
    let uv = line(&lines, "uv");
    assert_eq!(uv.label, "FAIL");
    assert!(
        uv.detail.contains("uv is required but is not on PATH"),
        "{uv:?}"
    );
    assert!(
        uv.detail.contains("no `python3` or `python` on PATH"),
        "{uv:?}"
    );
    assert!(uv.fix.as_deref().unwrap().starts_with("install uv"));
    assert_eq!(lines.len(), 11);
    assert!(lines[1..]
        .iter()
        .all(|l| l.label == "skip" && l.detail == "not run: uv is missing"));
    assert!(run.stdout.contains("exit code 104 (TOOLCHAIN_ERROR)"));

    let run = hidden(&["doctor", "--json"]);
    assert_eq!(run.code, exit_codes::TOOLCHAIN_ERROR);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["exit_code"], exit_codes::TOOLCHAIN_ERROR);
    assert_eq!(report["checks"][0]["ok"], false);
    assert_eq!(report["checks"][1]["status"], "skipped");
}

#[test]
fn a_wrong_xtask_uv_is_named_with_its_fix() {
    let fixture = Fixture::new("basic", "doctor_wrong_xtask_uv");
    let mut command = fixture.command(&["doctor"]);
    command.env(xtask::toolchain::UV_ENV, fixture.path("no-such-uv"));
    let run = run(command);
    assert_eq!(run.code, exit_codes::TOOLCHAIN_ERROR);
    let uv = lines(&run.stdout).remove(0);
    assert_eq!(uv.label, "FAIL");
    assert!(uv.detail.contains("no-such-uv"), "{uv:?}");
    assert!(uv.fix.as_deref().unwrap().starts_with("set XTASK_UV"));
}

/// doctor builds an environment as a run does (the same commands, the same record of its
/// inputs), so a second doctor and the run after it reuse it without starting uv.
#[test]
fn doctor_and_a_run_share_the_environments_they_build() {
    let fixture = Fixture::new("basic", "doctor_shares_environments");
    let first = fixture.run(&["doctor"]);
    assert_eq!(first.code, exit_codes::OK, "{}", first.stdout);
    for suite in ["alpha", "beta"] {
        let built = lines(&first.stdout)
            .into_iter()
            .find(|l| l.subject == format!("{suite}: environment"))
            .unwrap();
        assert!(built.detail.starts_with("uv builds it in "), "{built:?}");
    }
    let second = fixture.run(&["doctor"]);
    assert_eq!(second.code, exit_codes::OK, "{}", second.stdout);
    let lines = lines(&second.stdout);
    for suite in ["alpha", "beta"] {
        let env = line(&lines, &format!("{suite}: environment"));
        assert!(env.detail.contains("is up to date"), "{env:?}");
        // pytest is still checked in it.
        assert_eq!(line(&lines, &format!("{suite}: pytest")).label, "ok");
    }
    assert_code(&fixture.run(&["test"]), exit_codes::OK);
    let record = record(&fixture);
    for suite in ["alpha", "beta"] {
        let steps = suite_record(&record, suite)["commands"].as_array().unwrap();
        let environment: Vec<_> = steps
            .iter()
            .filter(|s| s["step"] == "environment")
            .collect();
        assert_eq!(environment.len(), 1, "{steps:#?}");
        assert!(
            environment[0]["skipped"]
                .as_str()
                .unwrap()
                .contains("up to date"),
            "{suite}: the run rebuilt what doctor built: {steps:#?}"
        );
    }
}
