//! `list --matrix --split-longer-than DURATION`: a suite whose recorded durations add up to
//! more than the threshold becomes duration-balanced entries, through the real binary, uv
//! and pytest; and `list --json` shows each suite's `split`.

mod common;

use common::{assert_code, Fixture};
use serde_json::Value;
use xtask::exit_codes;

/// A repository with a suite `long` of twenty tests and a suite `short` of two (`split =
/// "auto"`).
fn two_suites(test: &str) -> Fixture {
    let fixture = Fixture::empty(test);
    fixture.write(
        "Cargo.toml",
        r#"[workspace]

[[workspace.metadata.xtask.suites]]
name = "long"
group = "unit"
dir = "long"
requirements = ["pytest==9.2.0"]

[[workspace.metadata.xtask.suites]]
name = "short"
group = "unit"
dir = "short"
requirements = ["pytest==9.2.0"]
split = "auto"
"#,
    );
    for dir in ["long", "short"] {
        std::fs::create_dir_all(fixture.path(dir)).unwrap();
    }
    fixture.write(
        "long/test_long.py",
        "import pytest\n\n\n@pytest.mark.parametrize(\"n\", range(20))\ndef test_l(n):\n    pass\n",
    );
    fixture.write(
        "short/test_short.py",
        "def test_a():\n    pass\n\n\ndef test_b():\n    pass\n",
    );
    fixture
}

fn matrix(fixture: &Fixture, args: &[&str]) -> (Vec<Value>, String) {
    let mut all = vec!["list", "--matrix"];
    all.extend(args);
    let run = fixture.run(&all);
    assert_code(&run, exit_codes::OK);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    let matrix: Value = serde_json::from_str(&run.stdout).unwrap();
    (matrix["include"].as_array().unwrap().clone(), run.stderr)
}

/// The test cases of the last run's JUnit, as `classname::name`.
fn cases(fixture: &Fixture) -> Vec<String> {
    fixture
        .report()
        .test_suites
        .iter()
        .flat_map(|s| s.test_cases.iter())
        .map(|c| {
            format!(
                "{}::{}",
                c.classname.as_ref().map_or("", |c| c.as_str()),
                c.name.as_str()
            )
        })
        .collect()
}

#[test]
fn list_json_shows_each_suites_split() {
    let fixture = two_suites("matrix_list_json_split");
    let run = fixture.run(&["list", "--json"]);
    assert_code(&run, exit_codes::OK);
    let suites: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(suites[0]["split"], 1, "{suites}");
    assert_eq!(suites[1]["split"], "auto", "{suites}");
    fixture.edit("Cargo.toml", "split = \"auto\"", "split = 3");
    let run = fixture.run(&["list", "--json"]);
    assert_code(&run, exit_codes::OK);
    let suites: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(suites[1]["split"], 3, "{suites}");
}

/// Without durations no suite is split (and stderr says why); with the real durations of
/// a run, a threshold above them splits nothing; with a suite recorded longer than the
/// threshold, it becomes ceil(total / threshold) entries whose commands, each run as a CI
/// job would, together run every one of its tests exactly once, each entry's share of the
/// recorded time within the threshold.
#[test]
fn suites_longer_than_the_threshold_become_duration_balanced_entries() {
    let fixture = two_suites("matrix_split_longer_than");
    let (entries, stderr) = matrix(&fixture, &["--split-longer-than", "5s"]);
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["long", "short"]);
    assert!(entries.iter().all(|e| e.get("partition").is_none()));
    assert!(
        stderr.contains("--split-longer-than") && stderr.contains(".xtask/durations.json"),
        "{stderr}"
    );

    // Real durations, recorded by a whole run: far below an hour.
    assert_code(&fixture.run(&["test"]), exit_codes::OK);
    let all_long: Vec<String> = {
        let mut all: Vec<String> = cases(&fixture)
            .into_iter()
            .filter(|c| c.starts_with("long."))
            .collect();
        all.sort();
        all
    };
    assert!(!all_long.is_empty());
    assert_code(&fixture.run(&["durations"]), exit_codes::OK);
    let (entries, stderr) = matrix(&fixture, &["--split-longer-than", "1h"]);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries.iter().all(|e| e.get("partition").is_none()));
    assert!(!stderr.contains("warning"), "{stderr}");

    // The same tests, recorded as one second each: `long` is longer than the threshold.
    let mut durations: Value =
        serde_json::from_str(&fixture.read(".xtask/durations.json")).unwrap();
    for tests in durations["suites"].as_object_mut().unwrap().values_mut() {
        for secs in tests.as_object_mut().unwrap().values_mut() {
            *secs = 1.0.into();
        }
    }
    let recorded = |suite: &str| -> f64 {
        durations["suites"][suite]
            .as_object()
            .unwrap()
            .values()
            .map(|s| s.as_f64().unwrap())
            .sum()
    };
    let threshold = 6.0;
    assert!(recorded("long") > threshold && recorded("short") <= threshold);
    let expected = (recorded("long") / threshold).ceil() as usize;
    fixture.write(".xtask/durations.json", &durations.to_string());
    let (entries, _) = matrix(&fixture, &["--split-longer-than", "6s"]);
    assert_eq!(entries.len(), expected + 1, "{entries:?}");
    let short = entries.last().unwrap();
    assert_eq!(short["name"], "short");
    assert_eq!(short["command"], "cargo xtask test short");
    let long = &entries[..expected];
    let mut ran = Vec::new();
    for (k, entry) in (1..).zip(long) {
        let partition = format!("durations:{k}/{expected}");
        assert_eq!(entry["suite"], "long");
        assert_eq!(entry["name"], format!("long-{k}-of-{expected}"));
        assert_eq!(entry["partition"], partition.as_str());
        let command = entry["command"].as_str().unwrap();
        assert_eq!(
            command,
            format!("cargo xtask test long --partition {partition}")
        );
        let args: Vec<&str> = command
            .strip_prefix("cargo xtask ")
            .unwrap()
            .split(' ')
            .collect();
        assert_code(&fixture.run(&args), exit_codes::OK);
        let slice = cases(&fixture);
        assert!(!slice.is_empty(), "{partition} ran nothing");
        // One second each: a slice's recorded share is its number of tests.
        assert!(
            slice.len() as f64 <= threshold,
            "{partition}: {} tests over {threshold}s: {slice:?}",
            slice.len()
        );
        ran.extend(slice);
    }
    ran.sort();
    assert_eq!(
        ran, all_long,
        "every test of `long` once, in one entry or another"
    );

    // A durations file named is named in the commands.
    std::fs::rename(
        fixture.path(".xtask/durations.json"),
        fixture.path("d.json"),
    )
    .unwrap();
    let (entries, _) = matrix(
        &fixture,
        &["--split-longer-than", "6s", "--durations", "d.json"],
    );
    assert_eq!(
        entries[0]["command"],
        format!("cargo xtask test long --partition durations:1/{expected} --durations d.json")
    );
}

/// `--split-longer-than` is a `--matrix` option that takes a duration and does not mix
/// with `--partitions`; `--durations` needs one of the two.
#[test]
fn split_longer_than_is_checked_like_every_option() {
    let fixture = two_suites("matrix_split_usage");
    for args in [
        &["list", "--split-longer-than", "5m"][..],
        &[
            "list",
            "--matrix",
            "--split-longer-than",
            "5m",
            "--partitions",
            "2",
        ],
        &["list", "--matrix", "--split-longer-than", "5 min"],
        &["list", "--matrix", "--durations", "d.json"],
    ] {
        let run = fixture.run(args);
        assert_code(&run, exit_codes::USAGE_ERROR);
        assert!(run.stderr.contains("--"), "{args:?}: {}", run.stderr);
    }
    // A durations file that is not one is an error naming it.
    std::fs::create_dir_all(fixture.path(".xtask")).unwrap();
    fixture.write(".xtask/durations.json", "[]");
    let run = fixture.run(&["list", "--matrix", "--split-longer-than", "5m"]);
    assert_code(&run, exit_codes::USAGE_ERROR);
    assert!(
        run.stderr.contains(".xtask/durations.json"),
        "{}",
        run.stderr
    );
}

/// `init --ci gitlab` writes GitLab's matrix, which GitLab reads from the file only: a
/// suite the repository's durations record as longer than the pipelines' threshold (5m)
/// is written as its slices, each a PARTITION the job's command runs.
#[test]
fn init_ci_gitlab_writes_a_long_suite_as_its_slices() {
    let fixture = two_suites("matrix_init_gitlab");
    let init = fixture.run(&["init", "--ci", "gitlab"]);
    assert_code(&init, exit_codes::OK);
    let written = fixture.read(".gitlab-ci.yml");
    assert!(
        written.contains("      - SUITE: [\"long\", \"short\"]\n"),
        "{written}"
    );
    assert!(!written.contains("PARTITION: ["), "{written}");

    // `long`'s twenty tests recorded as a minute each: ceil(20 min / 5 min) slices.
    let (count, each, threshold) = (20, 60.0, 300.0);
    let mut tests = serde_json::Map::new();
    for n in 0..count {
        tests.insert(format!("test_long.py::test_l[{n}]"), each.into());
    }
    let durations = serde_json::json!({"version": 1, "suites": {"long": tests}});
    std::fs::create_dir_all(fixture.path(".xtask")).unwrap();
    fixture.write(".xtask/durations.json", &durations.to_string());
    let (entries, _) = matrix(&fixture, &["--split-longer-than", "5m"]);
    let slices: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["partition"].as_str())
        .collect();
    assert_eq!(
        slices.len(),
        (f64::from(count) * each / threshold).ceil() as usize,
        "{entries:?}"
    );
    let init = fixture.run(&["init", "--ci", "gitlab", "--force"]);
    assert_code(&init, exit_codes::OK);
    let written = fixture.read(".gitlab-ci.yml");
    let quoted: Vec<String> = slices.iter().map(|s| format!("\"{s}\"")).collect();
    let expected = format!(
        "      - SUITE: [\"short\"]\n      - SUITE: \"long\"\n        PARTITION: [{}]\n",
        quoted.join(", ")
    );
    assert!(written.contains(&expected), "{expected}\n{written}");
}
