//! `--partition durations:K/N`, `cargo xtask durations` and `list --matrix --partitions N`
//! with durations, through the real binary, uv and pytest.

mod common;

use common::Fixture;
use xtask::exit_codes;

/// A repository with one suite `w`: twelve short tests, a long one and a middling one.
fn weighted(test: &str) -> Fixture {
    let fixture = Fixture::empty(test);
    fixture.write(
        "Cargo.toml",
        r#"[workspace]

[[workspace.metadata.xtask.suites]]
name = "w"
group = "unit"
dir = "w"
requirements = ["pytest==9.2.0"]
paths = ["tests"]
"#,
    );
    std::fs::create_dir_all(fixture.path("w/tests")).unwrap();
    fixture.write(
        "w/tests/test_w.py",
        r#"import time

import pytest


@pytest.mark.parametrize("n", range(12))
def test_short(n):
    pass


def test_long():
    time.sleep(0.4)


def test_mid():
    time.sleep(0.2)
"#,
    );
    fixture
}

/// The four tests added after the durations were recorded.
fn add_new_tests(fixture: &Fixture) {
    fixture.write(
        "w/tests/test_new.py",
        "import pytest\n\n\n@pytest.mark.parametrize(\"n\", range(4))\ndef test_n(n):\n    pass\n",
    );
}

/// Tests sharing a module-scoped fixture, and a class sharing a class-scoped one.
fn add_grouped_tests(fixture: &Fixture) {
    fixture.write(
        "w/tests/test_mod.py",
        r#"import pytest


@pytest.fixture(scope="module")
def shared():
    return 1


@pytest.mark.parametrize("n", range(6))
def test_m(shared, n):
    pass


class TestC:
    @pytest.fixture(scope="class")
    def per_class(self):
        return 2

    @pytest.mark.parametrize("n", range(4))
    def test_c(self, per_class, n):
        pass
"#,
    );
}

/// A slice holds all the tests of a module- or class-scoped fixture's group, or none.
fn assert_groups_whole(slice: &[String]) {
    for (group, size) in [("test_mod::test_m[", 6), ("TestC::test_c[", 4)] {
        let held = slice.iter().filter(|c| c.contains(group)).count();
        assert!(
            held == 0 || held == size,
            "{group}: {held} of {size}: {slice:?}"
        );
    }
}

/// The test cases of the last run's JUnit, as `classname::name`, sorted.
fn cases(fixture: &Fixture) -> Vec<String> {
    let mut cases: Vec<String> = fixture
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
        .collect();
    cases.sort();
    cases
}

fn ok(run: &common::Run, what: &str) {
    assert_eq!(
        exit_codes::name(run.code),
        "OK",
        "{what}: {}\n{}",
        run.stdout,
        run.stderr
    );
}

/// Durations recorded by one run, written by `cargo xtask durations`, then tests added:
/// the three duration-balanced slices together run every test of a whole run exactly once,
/// the new ones included, the tests of a module- or class-scoped fixture in one slice, and
/// a slice run twice runs the same tests.
#[test]
fn duration_balanced_slices_together_run_every_test_once_new_tests_included() {
    let fixture = weighted("durations_every_test_once");
    ok(&fixture.run(&["test"]), "the run recording durations");
    let run = fixture.run(&["durations", "-o", "d.json"]);
    ok(&run, "durations");
    assert!(run.stdout.contains("d.json"), "{}", run.stdout);
    let written: serde_json::Value = serde_json::from_str(&fixture.read("d.json")).unwrap();
    let recorded = written["suites"]["w"].as_object().unwrap();
    assert_eq!(recorded.len(), 14, "{recorded:?}");
    assert!(
        recorded["tests/test_w.py::test_long"].as_f64().unwrap() >= 0.4,
        "{recorded:?}"
    );

    // The same durations from the run named.
    ok(
        &fixture.run(&["durations", "latest", "-o", "named.json"]),
        "durations latest",
    );
    assert_eq!(fixture.read("named.json"), fixture.read("d.json"));

    add_new_tests(&fixture);
    add_grouped_tests(&fixture);
    ok(&fixture.run(&["test"]), "the whole run");
    let whole = cases(&fixture);
    assert_eq!(whole.len(), 28, "{whole:?}");

    let mut together = Vec::new();
    let mut first = Vec::new();
    for k in 1..=3 {
        let partition = format!("durations:{k}/3");
        let run = fixture.run(&["test", "--partition", &partition, "--durations", "d.json"]);
        ok(&run, &partition);
        assert!(
            run.stderr.contains("balanced by the durations in d.json"),
            "{}",
            run.stderr
        );
        let slice = cases(&fixture);
        assert!(!slice.is_empty(), "{partition} ran nothing");
        assert_groups_whole(&slice);
        if k == 1 {
            first = slice.clone();
        }
        together.extend(slice);
    }
    together.sort();
    assert_eq!(together, whole, "every test in exactly one slice");

    let again = fixture.run(&[
        "test",
        "--partition",
        "durations:1/3",
        "--durations",
        "d.json",
    ]);
    ok(&again, "slice 1 again");
    assert_eq!(cases(&fixture), first, "the same slice twice");
}

/// With durations given by hand, the slices are exactly what longest-first onto the
/// least-loaded slice makes of them, new tests counted at the median of the known ones:
/// long (10) and four tests of 0.5 in one slice, mid (6) and twelve of 0.5 in the other.
#[test]
fn slices_are_dealt_longest_first_with_new_tests_at_the_median() {
    let fixture = weighted("durations_lpt");
    add_new_tests(&fixture);
    let mut tests = serde_json::Map::new();
    tests.insert("tests/test_w.py::test_long".into(), 10.0.into());
    tests.insert("tests/test_w.py::test_mid".into(), 6.0.into());
    for n in 0..12 {
        tests.insert(format!("tests/test_w.py::test_short[{n}]"), 0.5.into());
    }
    // A test since removed takes no room.
    tests.insert("tests/test_gone.py::test_gone".into(), 0.5.into());
    let durations = serde_json::json!({"version": 1, "suites": {"w": tests}});
    std::fs::create_dir_all(fixture.path(".xtask")).unwrap();
    fixture.write(".xtask/durations.json", &durations.to_string());

    // The conventional file is used without --durations.
    let run = fixture.run(&["test", "--partition", "durations:1/2"]);
    ok(&run, "slice 1");
    assert!(
        run.stderr.contains(".xtask/durations.json"),
        "{}",
        run.stderr
    );
    let one = cases(&fixture);
    ok(
        &fixture.run(&["test", "--partition", "durations:2/2"]),
        "slice 2",
    );
    let two = cases(&fixture);
    assert_eq!((one.len(), two.len()), (5, 13), "{one:?}\n{two:?}");
    assert!(one.iter().any(|c| c.ends_with("::test_long")), "{one:?}");
    assert!(two.iter().any(|c| c.ends_with("::test_mid")), "{two:?}");
    // Identical with the durations named.
    ok(
        &fixture.run(&[
            "test",
            "--partition",
            "durations:1/2",
            "--durations",
            ".xtask/durations.json",
        ]),
        "slice 1 named",
    );
    assert_eq!(cases(&fixture), one);

    // The matrix splits by durations now that the file has the suite's.
    let run = fixture.run(&["list", "--matrix", "--partitions", "2"]);
    ok(&run, "matrix");
    let matrix: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(matrix["include"][1]["partition"], "durations:2/2");
    assert_eq!(
        matrix["include"][1]["command"],
        "cargo xtask test w --partition durations:2/2"
    );

    // Tests sharing a module- or class-scoped fixture are dealt as one: ten tests of 1 s
    // would alternate between two slices one by one; as groups, the module's six go to one
    // slice and the class's four to the other.
    add_grouped_tests(&fixture);
    let mut tests = serde_json::Map::new();
    for n in 0..6 {
        tests.insert(format!("tests/test_mod.py::test_m[{n}]"), 1.0.into());
    }
    for n in 0..4 {
        tests.insert(format!("tests/test_mod.py::TestC::test_c[{n}]"), 1.0.into());
    }
    let grouped = serde_json::json!({"version": 1, "suites": {"w": tests}});
    fixture.write("grouped.json", &grouped.to_string());
    let mut slices = Vec::new();
    for k in 1..=2 {
        let partition = format!("durations:{k}/2");
        let run = fixture.run(&[
            "test",
            "--partition",
            &partition,
            "--durations",
            "grouped.json",
            "--",
            "-k",
            "test_mod",
        ]);
        ok(&run, &partition);
        slices.push(cases(&fixture));
    }
    assert_eq!((slices[0].len(), slices[1].len()), (6, 4), "{slices:?}");
    assert!(
        slices[0].iter().all(|c| c.contains("::test_m[")),
        "{slices:?}"
    );
    assert!(
        slices[1].iter().all(|c| c.contains("TestC::test_c[")),
        "{slices:?}"
    );
}

/// A durations file that is missing or not one is an error naming it, before any test
/// runs; without a file, the matrix splits by hash.
#[test]
fn a_bad_durations_file_is_an_error_naming_it() {
    let fixture = weighted("durations_bad_file");
    let run = fixture.run(&["list", "--matrix", "--partitions", "2"]);
    ok(&run, "matrix");
    let matrix: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(matrix["include"][0]["partition"], "hash:1/2");

    let run = fixture.run(&[
        "test",
        "--partition",
        "durations:1/2",
        "--durations",
        "nowhere.json",
    ]);
    assert_eq!(exit_codes::name(run.code), "USAGE_ERROR", "{}", run.stderr);
    assert!(run.stderr.contains("nowhere.json"), "{}", run.stderr);

    std::fs::create_dir_all(fixture.path(".xtask")).unwrap();
    fixture.write(".xtask/durations.json", "{\"version\": 1, \"suites\": ");
    for args in [
        &["test", "--partition", "durations:1/2"][..],
        &["list", "--matrix", "--partitions", "2"][..],
    ] {
        let run = fixture.run(args);
        assert_eq!(
            exit_codes::name(run.code),
            "USAGE_ERROR",
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(".xtask/durations.json")
                && run.stderr.contains("cargo xtask durations"),
            "{args:?}: {}",
            run.stderr
        );
    }
    let record = common::record(&fixture);
    assert_eq!(record["suites"], serde_json::json!([]), "no suite ran");
    assert_eq!(record["exit_code_name"], "USAGE_ERROR");
}
