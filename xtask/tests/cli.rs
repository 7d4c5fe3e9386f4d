//! Runs the real `xtask` binary on small fixture repositories with real uv and pytest,
//! and reads back what it wrote.

mod common;

use common::*;
use std::process::Command;

use quick_junit::TestCaseStatus;
use xtask::exit_codes;

#[test]
fn project_suite_reports_each_test_with_file_line_and_output() {
    let fixture = Fixture::new("basic", "project_suite");
    let run = fixture.run(&["test", "alpha"]);
    assert_eq!(run.code, exit_codes::OK);

    let report = read_report(&fixture.path("target/xtask/junit/alpha.xml"));
    let alpha = suite(&report, "alpha");
    // The integration test is deselected by the manifest's marker expression.
    assert_eq!(
        (alpha.tests, alpha.failures, alpha.errors, skipped(alpha)),
        (3, 0, 0, 0)
    );
    assert!(alpha
        .test_cases
        .iter()
        .all(|c| c.name.as_str() != "test_needs_a_live_service"));
    let summary = pytest_summary(&fixture.read("target/xtask/logs/alpha.log"));
    assert_eq!(
        (count(&summary, "passed"), count(&summary, "deselected")),
        (3, 1)
    );

    // `alpha` imports its sibling `beta` through the manifest's PYTHONPATH entry.
    let import = case(alpha, "test_quadruple_uses_beta_through_pythonpath");
    assert!(matches!(import.status, TestCaseStatus::Success { .. }));
    assert_eq!(
        import.classname.as_ref().unwrap().as_str(),
        "tests.test_alpha"
    );
    assert_eq!(attr(import, "file"), "libs/alpha/tests/test_alpha.py");
    assert_eq!(
        line_at(&fixture, import),
        "def test_quadruple_uses_beta_through_pythonpath():"
    );
    assert!(import.time.is_some());

    // A passing test's captured output is not in the JUnit (pytest would hold all of it
    // in memory for the report); as with the hand command, `-rP` prints it into the log.
    let printing = case(alpha, "test_prints_output");
    assert!(printing.system_out.is_none(), "{:?}", printing.system_out);
    let log = fixture.read("target/xtask/logs/alpha.log");
    assert!(!log.contains("hello from alpha"), "{log}");
    let shown = fixture.run(&["test", "alpha", "--", "-rP"]);
    assert_eq!(shown.code, exit_codes::OK);
    assert!(fixture
        .read("target/xtask/logs/alpha.log")
        .contains("hello from alpha"));
    assert!(run.stdout.contains("alpha [first]"));
}

#[test]
fn no_project_suite_runs_with_only_its_requirements() {
    let fixture = Fixture::new("basic", "no_project_suite");
    let run = fixture.run(&["test", "beta"]);
    assert_eq!(run.code, exit_codes::OK);

    let beta = suite(&fixture.report(), "beta").clone();
    assert_eq!((beta.tests, skipped(&beta)), (3, 1));
    assert!(matches!(
        case(&beta, "test_skipped").status,
        TestCaseStatus::Skipped { .. }
    ));
    assert!(matches!(
        case(&beta, "test_runs_without_the_project_installed").status,
        TestCaseStatus::Success { .. }
    ));
    // Nothing was installed into the package's own directory.
    assert!(!fixture.path("libs/beta/.venv").exists());
    let log = fixture.read("target/xtask/logs/beta.log");
    // Its environment is a fresh venv with exactly the requirements installed.
    assert!(log.contains(" venv --directory libs/beta --clear"), "{log}");
    assert!(log.contains(" pip install --python "), "{log}");
    assert!(log.contains("/bin/python pytest==9.2.0\n"), "{log}");
}

#[test]
fn merged_report_has_one_testsuite_per_suite_with_pytests_counts() {
    let fixture = Fixture::new("basic", "merged_report");
    let run = fixture.run(&["test", "--jobs", "2"]);
    assert_eq!(run.code, exit_codes::OK);

    let report = fixture.report();
    let names: Vec<&str> = report.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    for suite in &report.test_suites {
        let name = suite.name.as_str();
        let summary = pytest_summary(&fixture.read(&format!("target/xtask/logs/{name}.log")));
        let ran =
            count(&summary, "passed") + count(&summary, "failed") + count(&summary, "skipped");
        assert_eq!(suite.tests, ran, "{name}: {summary:?}");
        assert_eq!(skipped(suite), count(&summary, "skipped"), "{name}");
        let own = read_report(&fixture.path(&format!("target/xtask/junit/{name}.xml")));
        // The same cases, but for the merged report's classnames, prefixed by the suite's name.
        let mut unprefixed = suite.test_cases.clone();
        for case in &mut unprefixed {
            let classname = case.classname.as_ref().unwrap().as_str();
            let own_classname = classname
                .strip_prefix(&format!("{name}."))
                .unwrap()
                .to_string();
            case.set_classname(own_classname);
        }
        assert_eq!(own.test_suites[0].test_cases, unprefixed);
    }
    assert_eq!(report.tests, 6);
    // The summary table names every suite with its outcome.
    assert!(run
        .stdout
        .lines()
        .any(|l| l.starts_with("alpha") && l.trim_end().ends_with("passed")));
}

#[test]
fn failing_assertion_fails_the_suite_and_points_at_the_test() {
    let fixture = Fixture::new("basic", "failing_assertion");
    fixture.edit(
        "libs/alpha/tests/test_alpha.py",
        "assert quadruple(3) == 12",
        "assert quadruple(3) == 13",
    );
    let run = fixture.run(&["test"]);
    assert_eq!(run.code, exit_codes::TESTS_FAILED);

    let report = fixture.report();
    let alpha = suite(&report, "alpha");
    assert_eq!((alpha.tests, alpha.failures), (3, 1));
    let failed = case(alpha, "test_quadruple_uses_beta_through_pythonpath");
    let TestCaseStatus::NonSuccess {
        message,
        description,
        ty,
        ..
    } = &failed.status
    else {
        panic!("expected a failure: {:?}", failed.status)
    };
    assert!(
        message.as_ref().unwrap().contains("assert 12 == 13"),
        "{message:?}"
    );
    // pytest gives it no type; surefire's schema requires one.
    assert_eq!(ty.as_ref().map(|t| t.as_str()), Some("failed"));
    assert!(description.as_ref().unwrap().contains("test_alpha.py"));
    assert_eq!(attr(failed, "file"), "libs/alpha/tests/test_alpha.py");
    assert_eq!(
        line_at(&fixture, failed),
        "def test_quadruple_uses_beta_through_pythonpath():"
    );
    // The other suite still ran and passed.
    assert_eq!(suite(&report, "beta").failures, 0);
    assert_valid_run_record(&fixture.path("target/xtask/run.json"));
    let record: serde_json::Value =
        serde_json::from_str(&fixture.read("target/xtask/run.json")).unwrap();
    let log = record["suites"][0]["log"].as_str().unwrap();
    assert!(
        log.starts_with("target/xtask/runs/") && log.ends_with("/logs/alpha.log"),
        "{log}"
    );
    assert!(
        run.stdout.contains(&format!("full log: {log}")),
        "{}",
        run.stdout
    );
}

#[test]
fn group_subcommands_come_from_the_manifest() {
    let fixture = Fixture::new("basic", "group_subcommands");
    let help = fixture.run(&["--help"]);
    assert_eq!(help.code, exit_codes::OK);
    assert!(
        help.stdout.contains("test-first") && help.stdout.contains("test-second"),
        "{}",
        help.stdout
    );

    let run = fixture.run(&["test-second"]);
    assert_eq!(run.code, exit_codes::OK);
    let names: Vec<String> = fixture
        .report()
        .test_suites
        .iter()
        .map(|s| s.name.as_str().to_owned())
        .collect();
    assert_eq!(names, ["beta"]);
}

#[test]
fn list_json_describes_every_suite() {
    let fixture = Fixture::new("basic", "list_json");
    let run = fixture.run(&["list", "--json"]);
    assert_eq!(run.code, exit_codes::OK);
    let suites: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let suites = suites.as_array().unwrap();
    let rows: Vec<(&str, &str, &str)> = suites
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["group"].as_str().unwrap(),
                s["dir"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("alpha", "first", "libs/alpha"),
            ("beta", "second", "libs/beta")
        ]
    );
    assert_eq!(suites[1]["environment"]["requirements"][0], "pytest==9.2.0");
}

#[test]
fn arguments_after_double_dash_go_to_pytest() {
    let fixture = Fixture::new("basic", "pytest_args");
    let run = fixture.run(&["test", "alpha", "--", "-k", "prints"]);
    assert_eq!(run.code, exit_codes::OK);
    let alpha = suite(&fixture.report(), "alpha").clone();
    assert_eq!(alpha.test_cases.len(), 1);
    assert_eq!(alpha.test_cases[0].name.as_str(), "test_prints_output");
}

#[test]
fn a_suite_that_collects_nothing_fails_and_says_so() {
    let fixture = Fixture::new("basic", "no_tests");
    let run = fixture.run(&["test", "beta", "--", "-k", "matches_nothing"]);
    assert_eq!(run.code, exit_codes::NO_TESTS_COLLECTED);
    let beta = suite(&fixture.report(), "beta").clone();
    assert_eq!((beta.tests, beta.errors), (1, 1));
    let TestCaseStatus::NonSuccess { ty, message, .. } = &beta.test_cases[0].status else {
        panic!()
    };
    assert_eq!(ty.as_ref().unwrap().as_str(), "no-tests");
    assert!(message.as_ref().unwrap().contains("collected no tests"));
    assert!(run.stdout.contains("NO-TESTS beta"));
}

#[test]
fn an_unbuildable_environment_is_not_a_test_failure() {
    let fixture = Fixture::new("basic", "environment_error");
    fixture.edit(
        "Cargo.toml",
        r#"requirements = ["pytest==9.2.0"]"#,
        r#"requirements = ["pytest==9.2.0", "xtask-fixture-no-such-package==1.0"]"#,
    );
    let run = fixture.run(&["test"]);
    assert_eq!(run.code, exit_codes::ENVIRONMENT_ERROR);

    let report = fixture.report();
    let beta = suite(&report, "beta");
    assert_eq!((beta.tests, beta.errors), (1, 1));
    let TestCaseStatus::NonSuccess {
        ty, description, ..
    } = &beta.test_cases[0].status
    else {
        panic!()
    };
    assert_eq!(ty.as_ref().unwrap().as_str(), "environment-error");
    // uv's own explanation is in the report and in the log.
    assert!(description
        .as_ref()
        .unwrap()
        .contains("xtask-fixture-no-such-package"));
    assert!(fixture
        .read("target/xtask/logs/beta.log")
        .contains("xtask-fixture-no-such-package"));
    // pytest never ran for it, and the other suite is unaffected.
    let record = record(&fixture);
    let steps: Vec<&str> = suite_record(&record, "beta")["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_str().unwrap())
        .collect();
    assert!(!steps.contains(&"test"), "{steps:?}");
    assert!(steps.contains(&"environment"), "{steps:?}");
    assert_eq!(suite(&report, "alpha").tests, 3);
}

#[test]
fn a_broken_test_module_is_a_collection_error() {
    let fixture = Fixture::new("basic", "collection_error");
    fixture.write(
        "libs/alpha/tests/test_broken.py",
        "def test_syntax(:\n    pass\n",
    );
    let run = fixture.run(&["test", "alpha"]);
    assert_eq!(run.code, exit_codes::COLLECTION_ERROR);
    let alpha = suite(&fixture.report(), "alpha").clone();
    assert!(alpha.errors >= 1);
    assert!(alpha.test_cases.iter().any(|c| matches!(&c.status,
        TestCaseStatus::NonSuccess { message: Some(m), .. } if m.contains("collection failure"))));
}

#[test]
fn manifest_errors_name_the_suite_and_key_and_nothing_runs() {
    let fixture = Fixture::new("basic", "manifest_errors");
    fixture.edit(
        "Cargo.toml",
        "paths = [\"tests\"]\nenv",
        "paths = [\"tests\"]\nextra = [\"test\"]\nenv",
    );
    fixture.edit(
        "Cargo.toml",
        r#"dir = "libs/beta""#,
        r#"dir = "libs/gamma""#,
    );
    let run = fixture.run(&["test"]);
    assert_eq!(run.code, exit_codes::MANIFEST_ERROR);
    assert!(run.stderr.contains("Cargo.toml"), "{}", run.stderr);
    // Both entries' problems at once, each at its line and column, with the keys allowed.
    let file = fixture.path("Cargo.toml").display().to_string();
    for says in [
        format!("{file}:13:1: workspace.metadata.xtask.suites[0].extra (suite `alpha`): unknown field `extra`, expected one of `name`, `group`"),
        format!("{file}:19:7: workspace.metadata.xtask.suites[1].dir (suite `beta`): directory `libs/gamma` does not exist"),
    ] {
        assert!(run.stderr.contains(&says), "{says} not in:\n{}", run.stderr);
    }
    // Nothing ran, but the record says so, so an older run.json is not read as this run's.
    let mut entries: Vec<_> = std::fs::read_dir(fixture.path("target/xtask"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            "junit",
            "junit.xml",
            "latest",
            "logs",
            "report.html",
            "run.json",
            "runs"
        ]
    );
    let record: serde_json::Value =
        serde_json::from_str(&fixture.read("target/xtask/run.json")).unwrap();
    assert_valid_run_record(&fixture.path("target/xtask/run.json"));
    assert_eq!(record["exit_code_name"], "MANIFEST_ERROR");
    assert_eq!(record["exit_code"], exit_codes::MANIFEST_ERROR);
    assert_eq!(record["suites"], serde_json::json!([]));
    assert!(
        record["error"].as_str().unwrap().contains("libs/gamma"),
        "{record}"
    );
    // Every stable path leads somewhere: a CI reporter shows the error, not "not found".
    for name in ["junit.xml", "junit/xtask.xml"] {
        let report = read_report(&fixture.path(&format!("target/xtask/{name}")));
        let suite = &report.test_suites[0];
        assert_eq!(suite.name.as_str(), "xtask");
        let case = &suite.test_cases[0];
        assert_eq!(case.name.as_str(), "MANIFEST_ERROR");
        let quick_junit::TestCaseStatus::NonSuccess {
            kind, description, ..
        } = &case.status
        else {
            panic!("{case:?}")
        };
        assert_eq!(*kind, quick_junit::NonSuccessKind::Error);
        assert!(
            description
                .as_ref()
                .unwrap()
                .as_str()
                .contains("libs/gamma"),
            "{case:?}"
        );
    }
    assert!(fixture.path("target/xtask/logs").is_dir());
}

#[test]
fn an_unreadable_cargo_toml_is_a_manifest_error_at_its_line_and_column() {
    let fixture = Fixture::new("basic", "unreadable_manifest");
    fixture.edit("Cargo.toml", "[workspace]", "[workspace");
    let run = fixture.run(&["test-first"]);
    assert_eq!(run.code, exit_codes::MANIFEST_ERROR);
    let line = fixture
        .read("Cargo.toml")
        .lines()
        .position(|l| l == "[workspace")
        .unwrap()
        + 1;
    let at = format!("{}:{line}:11: ", fixture.path("Cargo.toml").display());
    assert!(
        run.stderr.contains(&at) && run.stderr.contains("the file is not valid TOML"),
        "{at} not in:\n{}",
        run.stderr
    );
}

#[test]
fn duplicate_suite_names_are_rejected() {
    let fixture = Fixture::new("basic", "duplicate_names");
    fixture.edit("Cargo.toml", r#"name = "beta""#, r#"name = "alpha""#);
    let run = fixture.run(&["list"]);
    assert_eq!(run.code, exit_codes::MANIFEST_ERROR);
    let says = format!(
        "{}:16:8: workspace.metadata.xtask.suites[1].name (suite `alpha`): the name is used by more than one suite",
        fixture.path("Cargo.toml").display()
    );
    assert!(run.stderr.contains(&says), "{says} not in:\n{}", run.stderr);
}

#[test]
fn an_unknown_suite_is_a_usage_error_that_lists_the_known_ones() {
    let fixture = Fixture::new("basic", "unknown_suite");
    let run = fixture.run(&["test", "gamma"]);
    assert_eq!(run.code, exit_codes::USAGE_ERROR);
    assert!(
        run.stderr.contains("no suite or group named `gamma`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("alpha, beta"), "{}", run.stderr);
}

#[test]
fn jobs_1_runs_suites_one_after_another_without_interleaving() {
    let fixture = Fixture::new("basic", "jobs_1");
    let run = fixture.run(&["test", "--jobs", "1"]);
    assert_eq!(run.code, exit_codes::OK);
    // One result line per suite, and the second suite started after the first ended.
    let passed = run
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("PASSED"));
    assert_eq!(passed.count(), 2, "{}", run.stdout);
    let record: serde_json::Value =
        serde_json::from_str(&fixture.read("target/xtask/run.json")).unwrap();
    let mut spans: Vec<(f64, f64)> = record["suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let started =
                chrono::DateTime::parse_from_rfc3339(s["started_at"].as_str().unwrap()).unwrap();
            let started = started.timestamp_micros() as f64 / 1e6;
            (started, started + s["duration_secs"].as_f64().unwrap())
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(spans[0].1 <= spans[1].0 + 0.01, "{spans:?}");
}

#[test]
fn installs_a_pinned_uv_when_none_is_on_path() {
    let fixture = Fixture::new("basic", "installs_uv");
    let mut command = fixture.command(&["test", "beta"]);
    command
        .env_remove(xtask::toolchain::UV_ENV)
        .env("PATH", path_without_uv());
    let run = run(command);
    assert_eq!(run.code, exit_codes::OK);
    let version = xtask::toolchain::UV_VERSION;
    assert!(
        run.stderr.contains(&format!("installing uv {version}")),
        "{}",
        run.stderr
    );
    let installed = fixture.path(&format!("target/xtask/tools/uv-{version}/bin/uv"));
    assert!(fixture
        .read("target/xtask/logs/beta.log")
        .contains(installed.to_str().unwrap()));
}

#[test]
fn no_uv_and_no_python_to_install_it_is_a_toolchain_error() {
    let fixture = Fixture::new("basic", "no_toolchain");
    let empty = fixture.path("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let mut command = fixture.command(&["test"]);
    command
        .env_remove(xtask::toolchain::UV_ENV)
        .env("PATH", &empty);
    let run = run(command);
    assert_eq!(run.code, exit_codes::TOOLCHAIN_ERROR);
    assert!(
        run.stderr.contains("uv is required but is not on PATH"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no `python3` or `python` on PATH"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "https://astral.sh/uv/{}/install.sh",
            xtask::toolchain::UV_VERSION
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("pypi.org/project/uv/"),
        "{}",
        run.stderr
    );
    // Every suite still ends in the reports, saying why it did not run.
    let report = fixture.report();
    for name in ["alpha", "beta"] {
        let suite = suite(&report, name);
        let case = case(suite, "toolchain-error");
        let TestCaseStatus::NonSuccess { ty, message, .. } = &case.status else {
            panic!("{name}: {:?}", case.status)
        };
        assert_eq!(ty.as_ref().unwrap().as_str(), "toolchain-error");
        assert!(message.as_ref().unwrap().contains("uv is required"));
        assert!(fixture
            .path(&format!("target/xtask/junit/{name}.xml"))
            .is_file());
        assert!(fixture
            .read(&format!("target/xtask/logs/{name}.log"))
            .contains("uv is required"));
    }
    let record: serde_json::Value =
        serde_json::from_str(&fixture.read("target/xtask/run.json")).unwrap();
    assert_eq!(record["outcome"], "toolchain-error");
    assert_eq!(record["exit_code_name"], "TOOLCHAIN_ERROR");
    assert_eq!(record["uv"], serde_json::Value::Null);
    assert_eq!(record["suites"][1]["outcome"], "toolchain-error");
}

/// The issue's acceptance check on the real shared packages: every test pytest reports is in
/// the merged report, each suite has its own file, and a broken guardrail assertion fails
/// the run with the test's file and line.
#[test]
fn the_shared_group_of_this_repository_reports_what_pytest_ran() {
    let fixture = Fixture::this_repository("this_repository");
    let run = fixture.run(&["test-shared"]);
    assert_eq!(run.code, exit_codes::OK);
    let report = fixture.report();
    let names: Vec<&str> = report.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["guardrail", "observability", "specialists"]);
    let mut from_pytest = 0;
    for name in names {
        let summary = pytest_summary(&fixture.read(&format!("target/xtask/logs/{name}.log")));
        from_pytest +=
            count(&summary, "passed") + count(&summary, "failed") + count(&summary, "skipped");
        assert!(fixture
            .path(&format!("target/xtask/junit/{name}.xml"))
            .is_file());
    }
    assert_eq!(report.tests, from_pytest);
    assert!(report.tests > 0);

    let test_file = "shared/guardrail/tests/test_stream.py";
    fixture.edit(
        test_file,
        r#"== ["Hello there."]"#,
        r#"== ["Hello there!"]"#,
    );
    let run = fixture.run(&["test-shared"]);
    assert_eq!(run.code, exit_codes::TESTS_FAILED);
    let report = fixture.report();
    let guardrail = suite(&report, "guardrail");
    assert_eq!(guardrail.failures, 1);
    let failed = guardrail
        .test_cases
        .iter()
        .find(|c| matches!(c.status, TestCaseStatus::NonSuccess { .. }))
        .unwrap();
    assert_eq!(attr(failed, "file"), test_file);
    assert_eq!(
        line_at(&fixture, failed),
        format!("def {}():", failed.name.as_str())
    );
    assert_eq!(suite(&report, "specialists").failures, 0);
}

/// Two invocations at once in one checkout: each writes into its own directory, so neither
/// deletes or overwrites the other's files, and each run.json names only files of its own.
#[test]
fn two_invocations_at_once_each_keep_their_own_whole_reports() {
    let fixture = Fixture::new("basic", "concurrent");
    let spawn = || {
        fixture
            .command(&["test", "beta", "alpha"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children = [spawn(), spawn()];
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(exit_codes::OK.into()),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let runs: Vec<_> = std::fs::read_dir(fixture.path("target/xtask/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 2, "one directory per invocation: {runs:?}");
    for dir in &runs {
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
        assert_eq!(record["outcome"], "passed", "{record:#}");
        let own = format!("target/xtask/runs/{}/", record["run_id"].as_str().unwrap());
        assert!(dir.ends_with(record["run_id"].as_str().unwrap()));
        for suite in record["suites"].as_array().unwrap() {
            for key in ["log", "junit"] {
                let path = suite[key].as_str().unwrap();
                assert!(path.starts_with(&own), "{path} is not under {own}");
                assert!(fixture.path(path).is_file(), "{path} is missing");
            }
            let log = fixture.read(suite["log"].as_str().unwrap());
            assert_eq!(
                log.matches("xtask: pytest: ").count(),
                2,
                "one run's log:\n{log}"
            );
            assert!(log.trim_end().ends_with('s'), "a finished log:\n{log}");
        }
        assert_eq!(read_report(&dir.join("junit.xml")).test_suites.len(), 2);
        assert!(!dir.join("work").exists(), "working files are removed");
    }
    // `latest` names one of the two.
    let latest = std::fs::read_link(fixture.path("target/xtask/latest")).unwrap();
    assert!(runs.iter().any(|dir| dir.ends_with(&latest)), "{latest:?}");
}

/// A package left in a project's `.venv` by an earlier sync must not hide what the lock
/// lacks: the suite's environment is synced exactly.
#[test]
fn a_stale_venv_does_not_hide_pytest_missing_from_the_extra() {
    let fixture = Fixture::new("basic", "stale_venv");
    assert_eq!(fixture.run(&["test", "alpha"]).code, exit_codes::OK);
    fixture.edit(
        "libs/alpha/pyproject.toml",
        r#"test = ["pytest==9.2.0"]"#,
        r#"test = ["iniconfig"]"#,
    );
    let relock = Command::new(uv())
        .args(["lock", "--directory", "libs/alpha"])
        .current_dir(&fixture.root)
        .env_remove("VIRTUAL_ENV")
        .status()
        .unwrap();
    assert!(relock.success());
    let run = fixture.run(&["test", "alpha"]);
    assert_eq!(run.code, exit_codes::ENVIRONMENT_ERROR);
    assert!(fixture
        .read("target/xtask/logs/alpha.log")
        .contains("No module named 'pytest'"));
}

/// A path or node id after `--`, relative to the root or to the suite, narrows the run to
/// it; a path of no selected suite is a usage error that says so.
#[test]
fn node_ids_after_the_double_dash_narrow_the_run() {
    let fixture = Fixture::new("basic", "narrow");
    let record = |fixture: &Fixture| -> serde_json::Value {
        serde_json::from_str(&fixture.read("target/xtask/run.json")).unwrap()
    };
    let one = "libs/alpha/tests/test_alpha.py::test_prints_output";
    let run = fixture.run(&["test", "--", one]);
    assert_eq!(exit_codes::name(run.code), "OK");
    let ran = record(&fixture);
    let suites: Vec<&str> = ran["suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(suites, ["alpha"], "beta holds no such test and is left out");
    assert_eq!(ran["suites"][0]["counts"]["tests"], 1);
    let report = read_report(&fixture.path("target/xtask/junit/alpha.xml"));
    assert_eq!(
        report.test_suites[0].test_cases[0].name.as_str(),
        "test_prints_output"
    );

    // Relative to the suite's directory: the same.
    let run = fixture.run(&[
        "test",
        "alpha",
        "--",
        "tests/test_alpha.py::test_prints_output",
    ]);
    assert_eq!(exit_codes::name(run.code), "OK");
    assert_eq!(record(&fixture)["suites"][0]["counts"]["tests"], 1);

    // A path that is no selected suite's.
    let run = fixture.run(&["test", "beta", "--", one]);
    assert_eq!(exit_codes::name(run.code), "USAGE_ERROR");
    assert!(
        run.stderr.contains("belong to none of the selected suites"),
        "{}",
        run.stderr
    );
}

/// `--exclude` leaves a group or suite out of every running subcommand, and `ci-groups`
/// says which groups `ci` runs.
#[test]
fn exclude_and_ci_groups_leave_suites_out() {
    let fixture = Fixture::new("basic", "exclude");
    let names = |fixture: &Fixture| -> Vec<String> {
        let record: serde_json::Value =
            serde_json::from_str(&fixture.read("target/xtask/run.json")).unwrap();
        record["suites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        fixture.run(&["ci", "--exclude", "first"]).code,
        exit_codes::OK
    );
    assert_eq!(names(&fixture), ["beta"]);
    assert_eq!(
        fixture.run(&["test", "--exclude", "beta"]).code,
        exit_codes::OK
    );
    assert_eq!(names(&fixture), ["alpha"]);
    let run = fixture.run(&["test", "--exclude", "nope"]);
    assert_eq!(exit_codes::name(run.code), "USAGE_ERROR");

    fixture.edit(
        "Cargo.toml",
        "[workspace]\n",
        "[workspace]\n\n[workspace.metadata.xtask]\nci-groups = [\"second\"]\n",
    );
    assert_eq!(fixture.run(&["ci"]).code, exit_codes::OK);
    assert_eq!(names(&fixture), ["beta"]);
}

/// Every partition of `--partition hash:K/4` together runs exactly the tests of one
/// unpartitioned run: none missing, none twice.
#[test]
fn the_partitions_of_a_run_together_run_every_test_once() {
    let fixture = Fixture::new("basic", "partition");
    let tests = |fixture: &Fixture| -> Vec<(String, String)> {
        let report = fixture.report();
        report
            .test_suites
            .iter()
            .flat_map(|s| s.test_cases.iter())
            .map(|c| {
                let classname = c.classname.as_ref().map_or("", |c| c.as_str()).to_string();
                (classname, c.name.to_string())
            })
            .collect()
    };
    assert_eq!(fixture.run(&["test"]).code, exit_codes::OK);
    let mut whole = tests(&fixture);
    whole.sort();
    assert!(whole.len() >= 5, "{whole:?}");
    let whole_report = fixture.report();
    let mut parts = Vec::new();
    let mut inputs = Vec::new();
    for k in 1..=4 {
        let run = fixture.run(&["test", "--partition", &format!("hash:{k}/4")]);
        assert_eq!(
            exit_codes::name(run.code),
            "OK",
            "partition {k}: {}",
            run.stdout
        );
        parts.extend(tests(&fixture));
        let kept = format!("part-{k}.xml");
        std::fs::copy(fixture.path("target/xtask/junit.xml"), fixture.path(&kept)).unwrap();
        inputs.push(kept);
    }
    parts.sort();
    assert_eq!(parts, whole, "every test in exactly one partition");

    // Merged, the partitions are one report equal to the whole run's, suite by suite.
    let mut args = vec!["junit", "merge"];
    args.extend(inputs.iter().map(String::as_str));
    args.extend(["-o", "merged.xml"]);
    let run = fixture.run(&args);
    assert_eq!(exit_codes::name(run.code), "OK", "{}", run.stderr);
    let merged = read_report(&fixture.path("merged.xml"));
    assert_eq!(merged.test_suites.len(), whole_report.test_suites.len());
    for suite in &whole_report.test_suites {
        let m = common::suite(&merged, suite.name.as_str());
        assert_eq!(
            (m.tests, m.failures, m.errors),
            (suite.tests, suite.failures, suite.errors),
            "{}",
            suite.name.as_str()
        );
    }
    // Every report given twice: every case twice, an error and nothing written.
    let mut twice = args[..args.len() - 2].to_vec();
    twice.extend(inputs.iter().map(String::as_str));
    twice.extend(["-o", "twice.xml"]);
    let run = fixture.run(&twice);
    assert_eq!(exit_codes::name(run.code), "USAGE_ERROR", "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot merge faithfully"),
        "{}",
        run.stderr
    );
    assert!(!fixture.path("twice.xml").exists());
    let run = fixture.run(&["test", "--partition", "hash:5/4"]);
    assert_eq!(exit_codes::name(run.code), "USAGE_ERROR");
}

/// A partition count past the limit is the caller's mistake, named with its flag and the
/// limit, on every subcommand that takes one: never a huge allocation, a panic or a run.
#[test]
fn too_many_partitions_are_a_usage_error_naming_the_flag() {
    let fixture = Fixture::new("basic", "too_many_partitions");
    let limit = xtask::plan::MAX_PARTITIONS;
    let huge = "4294967295".to_string();
    let over = (limit + 1).to_string();
    let mut calls: Vec<(Vec<String>, &str)> = Vec::new();
    for n in [&huge, &over] {
        calls.push((
            ["list", "--matrix", "--partitions", n]
                .map(String::from)
                .to_vec(),
            "--partitions",
        ));
        for command in ["test", "ci", "smoke", "test-first"] {
            calls.push((
                vec![command.into(), "--partition".into(), format!("hash:1/{n}")],
                "--partition",
            ));
        }
    }
    for (args, flag) in calls {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = fixture.run(&args);
        assert_eq!(
            exit_codes::name(run.code),
            "USAGE_ERROR",
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(flag) && run.stderr.contains(&limit.to_string()),
            "{args:?} must name {flag} and the limit {limit}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    // The limit itself is allowed.
    let most = fixture.run(&["list", "--matrix", "--partitions", &limit.to_string()]);
    assert_code(&most, exit_codes::OK);
    let matrix: serde_json::Value = serde_json::from_str(&most.stdout).unwrap();
    let entries = matrix["include"].as_array().unwrap();
    assert_eq!(entries.len() % limit as usize, 0);
    assert!(entries.last().unwrap()["command"]
        .as_str()
        .unwrap()
        .ends_with(&format!("--partition hash:{limit}/{limit}")));
}

/// What CI does, run locally: every entry of the matrix as its own invocation, their
/// reports merged, gives the report of one `cargo xtask ci` run.
#[test]
fn the_matrix_run_entry_by_entry_and_merged_equals_one_ci_run() {
    use std::collections::BTreeSet;
    let fixture = Fixture::new("basic", "matrix_merge");
    let cases = |report: &quick_junit::Report| -> BTreeSet<(String, String, String, String)> {
        report
            .test_suites
            .iter()
            .flat_map(|s| s.test_cases.iter().map(move |c| (s, c)))
            .map(|(s, c)| {
                (
                    s.name.to_string(),
                    c.classname.as_ref().map_or("", |c| c.as_str()).to_string(),
                    c.name.to_string(),
                    format!("{:?}", std::mem::discriminant(&c.status)),
                )
            })
            .collect()
    };
    assert_eq!(fixture.run(&["ci"]).code, exit_codes::OK);
    let single = cases(&fixture.report());

    for partitions in [None, Some("2")] {
        let mut list = vec!["list", "--matrix"];
        if let Some(n) = partitions {
            list.extend(["--partitions", n]);
        }
        let matrix: serde_json::Value = serde_json::from_str(&fixture.run(&list).stdout).unwrap();
        let mut inputs = Vec::new();
        for (i, entry) in matrix["include"].as_array().unwrap().iter().enumerate() {
            let command = entry["command"].as_str().unwrap();
            let args: Vec<&str> = command
                .strip_prefix("cargo xtask ")
                .expect("a cargo xtask command")
                .split(' ')
                .collect();
            let run = fixture.run(&args);
            assert_eq!(exit_codes::name(run.code), "OK", "{command}");
            let kept = format!("entry-{i}.xml");
            std::fs::copy(fixture.path("target/xtask/junit.xml"), fixture.path(&kept)).unwrap();
            inputs.push(kept);
        }
        let mut merge = vec!["junit", "merge"];
        merge.extend(inputs.iter().map(String::as_str));
        merge.extend(["-o", "merged.xml"]);
        assert_eq!(fixture.run(&merge).code, exit_codes::OK);
        let merged = read_report(&fixture.path("merged.xml"));
        assert_eq!(cases(&merged), single, "partitions: {partitions:?}");
    }
}

/// `--changed-since REF` on a scratch git repository: a change in a shared package selects
/// the suites that have it on their path and nothing else; a suite's own change selects it;
/// a change to one suite's manifest entry selects that suite.
#[test]
fn changed_since_selects_the_suites_whose_inputs_changed() {
    let fixture = Fixture::empty("changed_since");
    let write = |rel: &str, text: &str| {
        let path = fixture.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib/shared_thing/__init__.py", "VALUE = 1\n");
    write(
        "app1/tests/test_one.py",
        "from shared_thing import VALUE\n\ndef test_one():\n    assert VALUE == 1\n",
    );
    write(
        "app2/tests/test_two.py",
        "def test_two():\n    assert True\n",
    );
    let manifest = |markers: &str| {
        format!(
            "[workspace]\nmembers = []\n\n[[workspace.metadata.xtask.suites]]\nname = \"app1\"\ngroup = \"apps\"\ndir = \"app1\"\nrequirements = [\"pytest==9.2.0\"]\npythonpath = [\"lib\"]\n\n[[workspace.metadata.xtask.suites]]\nname = \"app2\"\ngroup = \"apps\"\ndir = \"app2\"\nrequirements = [\"pytest==9.2.0\"]\n{markers}\n"
        )
    };
    write("Cargo.toml", &manifest(""));
    write(".gitignore", "target/\n");
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
            .args(args)
            .current_dir(&fixture.root)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "base"]);
    let selected = |fixture: &Fixture| -> Vec<String> {
        let run = fixture.run(&["list", "--changed-since", "HEAD"]);
        assert_eq!(run.code, exit_codes::OK, "{}", run.stderr);
        run.stdout
            .lines()
            .filter(|l| l.contains("  changed: "))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    assert!(selected(&fixture).is_empty(), "nothing changed yet");

    write("lib/shared_thing/__init__.py", "VALUE = 1  # edited\n");
    assert_eq!(
        selected(&fixture),
        ["app1"],
        "the dependant of the shared package only"
    );
    let run = fixture.run(&["list", "--changed-since", "HEAD"]);
    assert!(
        run.stdout.contains("on its pythonpath: lib"),
        "{}",
        run.stdout
    );
    // And a run runs only it.
    let run = fixture.run(&["test", "--changed-since", "HEAD"]);
    assert_eq!(run.code, exit_codes::OK, "{}", run.stderr);
    let record: serde_json::Value =
        serde_json::from_str(&fixture.read("target/xtask/run.json")).unwrap();
    assert_eq!(record["suites"].as_array().unwrap().len(), 1);
    assert_eq!(record["suites"][0]["name"], "app1");
    git(&["checkout", "-q", "--", "lib"]);

    write(
        "app2/tests/test_new.py",
        "def test_new():\n    assert True\n",
    );
    assert_eq!(selected(&fixture), ["app2"], "an untracked file counts");
    std::fs::remove_file(fixture.path("app2/tests/test_new.py")).unwrap();

    write("Cargo.toml", &manifest("markers = \"not slow\""));
    assert_eq!(selected(&fixture), ["app2"], "its manifest entry changed");

    let run = fixture.run(&["list", "--changed-since", "no-such-ref"]);
    assert_eq!(exit_codes::name(run.code), "USAGE_ERROR", "{}", run.stderr);
    assert!(
        run.stderr.contains("no commit `no-such-ref`"),
        "{}",
        run.stderr
    );
}

/// pytest's rootdir and deselected count come from pytest itself (the xtask's plugin), not
/// from its terminal output: `-q` (no header, no `=` summary) changes nothing in the reports.
#[test]
fn quiet_pytest_output_changes_nothing_in_the_reports() {
    let fixture = Fixture::empty("quiet");
    std::fs::create_dir_all(fixture.path("pkg/sub/tests")).unwrap();
    fixture.write(
        "Cargo.toml",
        r#"[workspace]

[[workspace.metadata.xtask.suites]]
name = "nested"
group = "g"
dir = "pkg/sub"
requirements = ["pytest==9.2.0"]
markers = "not slow"
paths = ["tests"]
"#,
    );
    // The ini file is above the suite's directory: that is pytest's rootdir.
    fixture.write("pkg/pytest.ini", "[pytest]\nmarkers =\n    slow: slow\n");
    fixture.write(
        "pkg/sub/tests/test_x.py",
        "import pytest\n\n\ndef test_fails():\n    assert 1 == 2\n\n\n@pytest.mark.slow\ndef test_slow():\n    pass\n",
    );
    for args in [
        &["test", "nested"][..],
        &["test", "nested", "--", "-q"],
        &["test", "nested", "--", "-qq"],
    ] {
        let run = fixture.run(args);
        assert_code(&run, exit_codes::TESTS_FAILED);
        let record = record(&fixture);
        let nested = suite_record(&record, "nested");
        assert_eq!(nested["counts"]["deselected"], 1, "{args:?}: {nested:#}");
        assert_eq!(nested["counts"]["failed"], 1, "{args:?}");
        let report = fixture.report();
        let case = case(suite(&report, "nested"), "test_fails");
        assert_eq!(attr(case, "file"), "pkg/sub/tests/test_x.py", "{args:?}");
        assert_eq!(line_at(&fixture, case), "def test_fails():", "{args:?}");
    }
}
