//! `cargo xtask init` and adopting the xtask in another repository, through the real binary
//! with real uv and pytest: the guessed manifest of this repository runs exactly the tests
//! the hand-written one runs, a fixture's guess runs, an existing manifest is never
//! replaced unasked, `--print` writes nothing, and the xtask's own fixtures stay out of a
//! root-level pytest run of a repository that copies `xtask/`. Repositories init must not
//! trip on: requirements files in packages, uv workspace members, an invalid
//! `pyproject.toml`, and directory names a suite name cannot hold.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::*;
use serde_json::Value;
use xtask::exit_codes;

/// Each suite's counts in the newest run.json (tests, passed, ..., deselected).
fn counts(fixture: &Fixture) -> BTreeMap<String, Value> {
    record(fixture)["suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s["counts"].clone()))
        .collect()
}

/// `text` without the `[workspace.metadata.xtask]` table and its suites (up to the next
/// other table).
fn without_manifest(text: &str) -> String {
    let mut kept = String::new();
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        if line.starts_with('[') {
            // The table, its suites, services and prerequisites.
            skipping = line.starts_with("[workspace.metadata.xtask")
                || line.starts_with("[[workspace.metadata.xtask.");
        }
        if !skipping {
            kept.push_str(line);
        }
    }
    kept
}

fn suite_names(fixture: &Fixture) -> Vec<String> {
    let list = fixture.run(&["list", "--json"]);
    assert_code(&list, exit_codes::OK);
    let suites: Value = serde_json::from_str(&list.stdout).unwrap();
    suites
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_guessed_manifest_of_this_repository_runs_the_same_tests() {
    let fixture = Fixture::this_repository("init_this_repository");
    // init guesses unit suites; the smoke suites (services, keys) are the manifest's own.
    let hand = fixture.run(&["ci", "--exclude", "smoke"]);
    assert_code(&hand, exit_codes::OK);
    let by_hand = counts(&fixture);
    assert_eq!(by_hand.len(), 5, "{by_hand:?}");

    let original = fixture.read("Cargo.toml");
    let stripped = without_manifest(&original);
    assert!(!stripped.contains("[workspace.metadata.xtask"));
    fixture.write("Cargo.toml", &stripped);
    let init = fixture.run(&["init"]);
    assert_code(&init, exit_codes::OK);
    let written = fixture.read("Cargo.toml");
    assert!(
        written.starts_with(&stripped),
        "the existing text must be kept byte for byte:\n{written}"
    );
    for decision in [
        "guardrail: extras = [\"test\"]",
        "agent: pythonpath += \"version-a\"",
        "specialists: markers = \"not integration\"",
        "backend: extras = [\"dev\"]",
    ] {
        assert!(init.stdout.contains(decision), "no `{decision}` line");
    }
    assert_eq!(
        suite_names(&fixture),
        [
            "guardrail",
            "observability",
            "specialists",
            "agent",
            "backend"
        ]
    );

    let guessed = fixture.run(&["ci"]);
    assert_code(&guessed, exit_codes::OK);
    assert_eq!(
        counts(&fixture),
        by_hand,
        "per-suite counts, deselected included"
    );
}

#[test]
fn init_on_the_basic_fixture_writes_a_manifest_that_runs() {
    let fixture = Fixture::new("basic", "init_basic");
    // A Cargo.toml with no [workspace] (and no final newline) is kept as it is.
    let before = "# A comment init must keep, byte for byte";
    fixture.write("Cargo.toml", before);
    let init = fixture.run(&["init"]);
    assert_code(&init, exit_codes::OK);
    let written = fixture.read("Cargo.toml");
    assert!(written.starts_with(before), "{written}");
    assert!(written.contains("\n[workspace]\n"), "{written}");
    assert!(
        init.stdout
            .contains("alpha: env ALPHA_MODE = \"checked\": tests/test_alpha.py requires it"),
        "{}",
        init.stdout
    );
    // beta is not locked: what its pyproject.toml declares is tried first; that cannot be
    // installed (a dependency no index has), so it is written without it, as verified.
    for line in [
        "beta: requirements = [\"pytest==9.2.0\", \"this-heavy-framework-is-never-installed>=99\"]: it has no uv.lock",
        "beta: verified after a change: requirements = [\"pytest==9.2.0\"]: uv could not build its environment",
        "without the dependencies its pyproject.toml declares, its tests collect",
    ] {
        assert!(init.stdout.contains(line), "no `{line}`:\n{}", init.stdout);
    }
    assert_eq!(suite_names(&fixture), ["alpha", "beta"]);
    let ci = fixture.run(&["ci"]);
    assert_code(&ci, exit_codes::OK);
    let counts = counts(&fixture);
    assert_eq!(counts["alpha"]["passed"], 3);
    assert_eq!(counts["alpha"]["deselected"], 1);
    assert_eq!(counts["beta"]["passed"], 2);
}

#[test]
fn init_refuses_to_replace_a_manifest_unless_forced() {
    let fixture = Fixture::new("basic", "init_refuses");
    let before = fixture.read("Cargo.toml");
    let refused = fixture.run(&["init"]);
    assert_code(&refused, exit_codes::USAGE_ERROR);
    assert!(
        refused.stderr.contains("already has a suite manifest")
            && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    assert_eq!(fixture.read("Cargo.toml"), before);

    let forced = fixture.run(&["init", "--force"]);
    assert_code(&forced, exit_codes::OK);
    let written = fixture.read("Cargo.toml");
    assert!(written.starts_with("# A small repository for the xtask's integration tests"));
    assert_eq!(written.matches("[workspace.metadata.xtask]").count(), 1);
    assert_eq!(suite_names(&fixture), ["alpha", "beta"]);
    // A second --force replaces its own manifest, comments included.
    let again = fixture.run(&["init", "--force"]);
    assert_code(&again, exit_codes::OK);
    assert_eq!(fixture.read("Cargo.toml"), written);
}

#[test]
fn print_writes_nothing() {
    let fixture = Fixture::new("basic", "init_print");
    std::fs::remove_file(fixture.path("Cargo.toml")).unwrap();
    let printed = fixture.run(&["init", "--print"]);
    assert_code(&printed, exit_codes::OK);
    assert!(printed
        .stdout
        .contains("[[workspace.metadata.xtask.suites]]\nname = \"alpha\""));
    assert!(printed.stderr.contains("alpha: paths = [\"tests\"]"));
    assert!(!fixture.path("Cargo.toml").exists());

    // With a manifest, --print shows a fresh guess and leaves the file alone.
    let fixture = Fixture::new("basic", "init_print_existing");
    let before = fixture.read("Cargo.toml");
    let printed = fixture.run(&["init", "--print"]);
    assert_code(&printed, exit_codes::OK);
    assert!(printed.stderr.contains("writing this would need --force"));
    assert_eq!(fixture.read("Cargo.toml"), before);
}

#[test]
fn an_inline_workspace_table_is_refused_and_nothing_is_written() {
    let fixture = Fixture::new("basic", "init_invalid");
    // An inline workspace table cannot take a [workspace.metadata.xtask] table after it.
    let before = "workspace = { members = [] }\n";
    fixture.write("Cargo.toml", before);
    let init = fixture.run(&["init"]);
    assert_code(&init, exit_codes::MANIFEST_ERROR);
    // Said as what it is: the inline table is the user's to rewrite.
    assert!(
        init.stderr
            .contains("`workspace` is not a [workspace] table (an inline table, perhaps)")
            && init.stderr.contains("nothing was written"),
        "{}",
        init.stderr
    );
    assert_eq!(fixture.read("Cargo.toml"), before);
}

/// A repository that copies `xtask/` and runs `pytest` at its root collects none of the
/// xtask's fixtures, only its own tests.
#[test]
fn a_root_level_pytest_collects_nothing_from_the_xtask() {
    let fixture = Fixture::empty("init_adopting_repository");
    copy_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        &fixture.path("xtask"),
    );
    let pytest = |fixture: &Fixture| {
        let mut command = Command::new(uv());
        command
            .args(["run", "--with", "pytest==9.2.0", "--no-project", "--"])
            .args(["pytest", "-p", "no:cacheprovider"])
            .current_dir(&fixture.root)
            .env_remove("VIRTUAL_ENV")
            .env_remove("PYTHONPATH");
        run(command)
    };
    let nothing = pytest(&fixture);
    assert_eq!(nothing.code, 5, "pytest's 'no tests ran'");
    assert!(
        nothing.stdout.contains("no tests ran"),
        "{}",
        nothing.stdout
    );

    std::fs::create_dir_all(fixture.path("tests")).unwrap();
    fixture.write("tests/test_own.py", "def test_own():\n    assert True\n");
    let own = pytest(&fixture);
    assert_eq!(own.code, 0);
    assert!(own.stdout.contains("1 passed"), "{}", own.stdout);
    assert!(!own.stdout.contains("xtask/tests"), "{}", own.stdout);
}

fn write(fixture: &Fixture, rel: &str, text: &str) {
    let path = fixture.path(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A package with tests and a requirements file that lists pytest, in `dir`.
fn requirements_package(fixture: &Fixture, dir: &str, file: &str) {
    write(fixture, &format!("{dir}/{file}"), "pytest==9.2.0\n");
    write(
        fixture,
        &format!("{dir}/tests/test_it.py"),
        "def test_it():\n    assert 1 + 1 == 2\n",
    );
}

/// The manifest reads `requirements-file` from the repository root, so init writes the
/// path from there, not the file's name in its package.
#[test]
fn a_requirements_file_is_written_relative_to_the_root_and_runs() {
    let fixture = Fixture::empty("init_requirements_file");
    requirements_package(&fixture, "services/api", "requirements-dev.txt");
    let init = fixture.run(&["init"]);
    assert_code(&init, exit_codes::OK);
    let written = fixture.read("Cargo.toml");
    assert!(
        written.contains("requirements-file = \"services/api/requirements-dev.txt\""),
        "{written}"
    );
    assert_eq!(suite_names(&fixture), ["api"]);
    let test = fixture.run(&["test"]);
    assert_code(&test, exit_codes::OK);
    assert_eq!(counts(&fixture)["api"]["passed"], 1);
}

/// One unreadable pyproject.toml is a warning naming it and what is wrong, and its package
/// is left out; the others are guessed and the manifest runs.
#[test]
fn an_invalid_pyproject_is_skipped_with_a_warning() {
    let fixture = Fixture::new("basic", "init_invalid_pyproject");
    std::fs::remove_file(fixture.path("Cargo.toml")).unwrap();
    write(
        &fixture,
        "libs/broken/pyproject.toml",
        "[project]\nname = \"broken\"\nversion = 0.1.0\n",
    );
    write(
        &fixture,
        "libs/broken/tests/test_broken.py",
        "def test_x():\n    pass\n",
    );
    let init = fixture.run(&["init"]);
    assert_code(&init, exit_codes::OK);
    assert!(
        init.stderr
            .contains("warning: skipped libs/broken: libs/broken/pyproject.toml is not valid TOML")
            && init.stderr.contains("line 3"),
        "{}",
        init.stderr
    );
    assert!(!init.stderr.contains("panicked"), "{}", init.stderr);
    assert_eq!(suite_names(&fixture), ["alpha", "beta"]);
    assert!(!fixture.read("Cargo.toml").contains("libs/broken"));
}

/// When every package is skipped for an unreadable pyproject.toml, nothing is written and
/// the exit code is the manifest's: the repository's configuration is at fault.
#[test]
fn only_invalid_pyprojects_write_nothing_and_say_so() {
    let fixture = Fixture::empty("init_only_invalid");
    write(&fixture, "pkg/pyproject.toml", "[project\n");
    write(&fixture, "pkg/tests/test_x.py", "def test_x():\n    pass\n");
    let init = fixture.run(&["init"]);
    assert_eq!(
        exit_codes::name(init.code),
        "MANIFEST_ERROR",
        "{}",
        init.stderr
    );
    assert!(
        init.stderr
            .contains("warning: skipped pkg: pkg/pyproject.toml is not valid TOML"),
        "{}",
        init.stderr
    );
    assert!(
        init.stderr.contains("no suite could be guessed")
            && init.stderr.contains("fix pkg/pyproject.toml"),
        "{}",
        init.stderr
    );
    assert!(!fixture.path("Cargo.toml").exists());
}

/// Directory names that suite names cannot hold (spaces, dots, quotes, non-ASCII, names
/// that collide once cleaned) still give a manifest that loads and runs; a directory whose
/// name is not UTF-8 is skipped with a warning.
#[test]
fn odd_directory_names_give_a_manifest_that_loads_and_runs() {
    use std::os::unix::ffi::OsStrExt;
    let fixture = Fixture::empty("init_odd_names");
    let dirs = [
        "pkgs/my pkg",
        "pkgs/my.pkg",
        "pkgs/café",
        "pkgs/cafè",
        "pkgs/quo\"te\\",
        "pkgs/日本",
        "other/my pkg",
    ];
    for dir in dirs {
        requirements_package(&fixture, dir, "requirements.txt");
    }
    let bad = fixture
        .path("pkgs")
        .join(std::ffi::OsStr::from_bytes(b"latin\xe9"));
    std::fs::create_dir_all(bad.join("tests")).unwrap();
    std::fs::write(bad.join("requirements.txt"), "pytest==9.2.0\n").unwrap();
    std::fs::write(bad.join("tests/test_it.py"), "def test_it():\n    pass\n").unwrap();

    let init = fixture.run(&["init"]);
    assert_code(&init, exit_codes::OK);
    assert!(
        init.stderr.contains("warning: skipped pkgs/latin") && init.stderr.contains("not UTF-8"),
        "{}",
        init.stderr
    );
    let names = suite_names(&fixture);
    assert_eq!(names.len(), dirs.len(), "{names:?}");
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    let list = fixture.run(&["list", "--json"]);
    let suites: Value = serde_json::from_str(&list.stdout).unwrap();
    let listed: Vec<&str> = suites
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["dir"].as_str().unwrap())
        .collect();
    let mut expected = dirs.to_vec();
    expected.sort();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    assert_eq!(listed_sorted, expected, "every dir as it is");

    let test = fixture.run(&["test"]);
    assert_code(&test, exit_codes::OK);
    let counts = counts(&fixture);
    assert_eq!(counts.len(), dirs.len());
    for (name, counts) in &counts {
        assert_eq!(counts["passed"], 1, "{name}");
    }
}

/// Members of a uv workspace have no uv.lock of their own: the workspace root's locks them.
/// init installs them from it, the suites run, doctor checks that lock, and a change to it
/// selects every member.
#[test]
fn uv_workspace_members_are_projects_locked_by_the_workspace_root() {
    let fixture = Fixture::new("uv_workspace", "init_uv_workspace");
    let init = fixture.run(&["init"]);
    assert_code(&init, exit_codes::OK);
    for decision in [
        "alpha: extras = [\"test\"]: packages/alpha is a member of a uv workspace locked by uv.lock",
        "beta: extras = []: packages/beta is a member of a uv workspace locked by uv.lock",
    ] {
        assert!(init.stdout.contains(decision), "no `{decision}`:\n{}", init.stdout);
    }
    assert_eq!(suite_names(&fixture), ["alpha", "beta"]);
    // init checked its guesses: each environment built and its tests collected.
    for verified in [
        "alpha: verified: collected 2 tests",
        "beta: verified: collected 1 test",
    ] {
        assert!(
            init.stdout.contains(verified),
            "no `{verified}`:\n{}",
            init.stdout
        );
    }
    // The run builds its own environments again, to show how below.
    std::fs::remove_dir_all(fixture.path("target/xtask/envs")).unwrap();

    let test = fixture.run(&["test"]);
    assert_code(&test, exit_codes::OK);
    let counts = counts(&fixture);
    assert_eq!(counts["alpha"]["passed"], 2);
    assert_eq!(counts["beta"]["passed"], 1);
    let log = fixture.read("target/xtask/logs/beta.log");
    assert!(
        log.contains("sync --directory packages/beta --locked"),
        "{log}"
    );

    let doctor = fixture.run(&["doctor", "--json"]);
    let report: Value = serde_json::from_str(&doctor.stdout).unwrap();
    assert_eq!(exit_codes::name(doctor.code), "OK", "{report:#}");
    for suite in ["alpha", "beta"] {
        let lock = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["suite"] == suite && c["check"] == "lock")
            .unwrap();
        assert_eq!(lock["status"], "ok", "{lock:#}");
        assert!(
            lock["detail"]
                .as_str()
                .unwrap()
                .starts_with("uv.lock is in sync"),
            "{lock:#}"
        );
    }

    // A stale workspace lock is the members' lock failing.
    let pyproject = fixture.read("packages/alpha/pyproject.toml");
    fixture.edit(
        "packages/alpha/pyproject.toml",
        "dependencies = []",
        "dependencies = [\"iniconfig\"]",
    );
    let stale = fixture.run(&["doctor", "--json"]);
    let report: Value = serde_json::from_str(&stale.stdout).unwrap();
    assert_eq!(
        exit_codes::name(stale.code),
        "ENVIRONMENT_ERROR",
        "{report:#}"
    );
    fixture.write("packages/alpha/pyproject.toml", &pyproject);

    // The root's lock is every member's input.
    fixture.write(".gitignore", "target/\n");
    git(&fixture.root, &["init", "-q"]);
    git(&fixture.root, &["add", "-A"]);
    git(&fixture.root, &["commit", "-q", "-m", "base"]);
    let warm = fixture.run(&["test", "alpha"]);
    assert_code(&warm, exit_codes::OK);
    let log = fixture.read("target/xtask/logs/alpha.log");
    assert!(log.contains("is up to date"), "{log}");
    let lock = fixture.read("uv.lock");
    fixture.write("uv.lock", &format!("{lock}\n"));
    // The root's lock is an input of the member's environment: it is built again.
    let rebuilt = fixture.run(&["test", "alpha"]);
    assert_code(&rebuilt, exit_codes::OK);
    let log = fixture.read("target/xtask/logs/alpha.log");
    assert!(
        !log.contains("is up to date") && log.contains("sync --directory packages/alpha"),
        "{log}"
    );
    let changed = fixture.run(&["list", "--changed-since", "HEAD"]);
    assert_code(&changed, exit_codes::OK);
    for suite in ["alpha", "beta"] {
        assert!(
            changed.stdout.lines().any(|l| l.starts_with(suite)
                && l.contains("changed: uv.lock changed (its uv workspace's")),
            "{suite} not selected by the root lock:\n{}",
            changed.stdout
        );
    }
}

/// Test dependencies in PEP 735 dependency groups, as `uv add --dev` writes them: pytest in
/// `test`, pulled into the default `dev` group through `include-group` (gamma), and pytest
/// in a `test` group that is not a default one (delta). init follows the include and writes
/// `extras = []` for the first and `groups = ["test"]` for the second; the suites then give
/// the per-test outcomes of the hand-written commands (`uv run [--group test] pytest`).
#[test]
fn pytest_in_dependency_groups_is_found_through_include_group() {
    let fixture = Fixture::new("groups", "init_groups");
    fixture.write("Cargo.toml", "[workspace]\nmembers = []\n");
    let init = fixture.run(&["init"]);
    assert_code(&init, exit_codes::OK);
    for decision in [
        "extras = []: gamma has a uv.lock and pytest is in its dependency group `dev`, a default group",
        "groups = [\"test\"]: delta has a uv.lock and pytest is in its dependency group `test`, which uv sync installs with --group test",
    ] {
        assert!(init.stdout.contains(decision), "no `{decision}`:\n{}", init.stdout);
    }
    let written = fixture.read("Cargo.toml");
    assert!(written.contains("groups = [\"test\"]"), "{written}");

    let test = fixture.run(&["test"]);
    assert_code(&test, exit_codes::OK);
    let ours: BTreeMap<String, (u64, u64)> = counts(&fixture)
        .into_iter()
        .map(|(name, c)| {
            let n = |k: &str| c[k].as_u64().unwrap();
            (name, (n("passed"), n("skipped")))
        })
        .collect();
    // The hand-written commands, as the projects' docs would have them.
    for (name, dir, extra) in [("gamma", "gamma", None), ("delta", "delta", Some("test"))] {
        let mut command = Command::new(uv());
        command.args(["run", "--directory", dir, "--frozen"]);
        if let Some(group) = extra {
            command.args(["--group", group]);
        }
        let junit = fixture.path(&format!("hand-{name}.xml"));
        command
            .args(["pytest", "tests", "-q", "-p", "no:cacheprovider"])
            .arg(format!("--junitxml={}", junit.display()))
            .current_dir(&fixture.root)
            .env_remove("VIRTUAL_ENV");
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let report = read_report(&junit);
        let cases = &report.test_suites[0];
        let hand = (
            (cases.tests - cases.failures - cases.errors - skipped(cases)) as u64,
            skipped(cases) as u64,
        );
        assert_eq!(
            ours[name], hand,
            "{name}: the xtask's (passed, skipped) against the hand command's"
        );
    }
    assert_eq!(ours["delta"], (1, 1));
}

/// init checks its guesses. Packages with `src/` layouts, a `pyproject.toml` each and no
/// uv.lock, whose tests' dependencies are in one `tests/requirements.txt` at the root that
/// does not name pytest (the docs run `uv pip install -r tests/requirements.txt pytest`):
/// the guess (`requirements = ["pytest"]`) cannot collect `api`'s tests (`No module named
/// 'six'`), so init tries the repository's requirement files and writes the one that
/// collects, with pytest beside it. `lost` imports a module nothing provides: it is written
/// as guessed and said to be unverified, with why. The written `api` suite then gives the
/// hand-written command's per-test outcomes.
#[test]
fn init_verifies_its_guesses_and_finds_the_requirements_file_tests_need() {
    let fixture = Fixture::new("adopt", "init_verify");
    let init = fixture.run(&["init"]);
    assert_code(&init, exit_codes::OK);
    for line in [
        "api: verified after a change: requirements-file = \"tests/requirements.txt\": collection failed in the guessed environment and succeeds with this file (collected 1 test)",
        "lost: not verified: collecting its tests fails: No module named 'nowhere_to_be_found_mod'; tried tests/requirements.txt too",
        "(1 not verified: see above)",
    ] {
        assert!(init.stdout.contains(line), "no `{line}`:\n{}", init.stdout);
    }
    let written = fixture.read("Cargo.toml");
    assert!(
        written.contains("requirements = [\"pytest\"]\nrequirements-file = \"tests/requirements.txt\"\npythonpath = [\"services/api/src\"]"),
        "{written}"
    );

    let test = fixture.run(&["test", "api"]);
    assert_code(&test, exit_codes::OK);
    assert_eq!(counts(&fixture)["api"]["passed"], 1);
    // As the repository's docs would run it.
    let junit = fixture.path("hand-api.xml");
    let out = Command::new(uv())
        .args(["run", "--isolated", "--no-project", "--with", "pytest"])
        .args(["--with-requirements", "tests/requirements.txt"])
        .args([
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "services/api/tests",
        ])
        .arg(format!("--junitxml={}", junit.display()))
        .env("PYTHONPATH", "services/api/src")
        .env_remove("VIRTUAL_ENV")
        .current_dir(&fixture.root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let hand = read_report(&junit);
    assert_eq!(hand.test_suites[0].tests, 1);
    assert_eq!(hand.test_suites[0].failures + hand.test_suites[0].errors, 0);

    // --no-verify writes the guesses as they are, building nothing.
    let fixture = Fixture::new("adopt", "init_no_verify");
    let init = fixture.run(&["init", "--no-verify"]);
    assert_code(&init, exit_codes::OK);
    assert!(!init.stdout.contains("verified"), "{}", init.stdout);
    assert!(!fixture.read("Cargo.toml").contains("requirements-file"));
    assert!(!fixture.path("target/xtask/envs").exists());
}

/// `init --ci`: the pipelines for the repository's own manifest, the shape of this
/// repository's (a unit test holds those to the same templates, and github.rs lints them).
/// With a manifest there, only the pipelines are written; existing files need --force;
/// GitHub's runs every suite on pushes to the repository's default branch.
#[test]
fn init_ci_writes_the_pipelines_for_the_manifest() {
    let fixture = Fixture::new("groups", "init_ci");
    let manifest = fixture.read("Cargo.toml");
    let gitlab = fixture.run(&["init", "--ci", "gitlab", "--no-verify"]);
    assert_code(&gitlab, exit_codes::OK);
    assert_eq!(
        fixture.read("Cargo.toml"),
        manifest,
        "the manifest is left alone"
    );
    let written = fixture.read(".gitlab-ci.yml");
    assert!(
        written
            .contains("      - SUITE: [\"default-groups\", \"only-test-group\", \"no-groups\"]\n"),
        "{written}"
    );
    assert!(written.contains("cargo xtask test \"$SUITE\""), "{written}");

    // Not over an existing file, unless --force.
    let again = fixture.run(&["init", "--ci", "gitlab"]);
    assert_eq!(
        exit_codes::name(again.code),
        "USAGE_ERROR",
        "{}",
        again.stderr
    );
    assert!(
        again.stderr.contains(".gitlab-ci.yml exists"),
        "{}",
        again.stderr
    );
    // A pipeline file kept elsewhere behind a symlink is written through it.
    std::fs::create_dir_all(fixture.path("ci")).unwrap();
    std::fs::rename(
        fixture.path(".gitlab-ci.yml"),
        fixture.path("ci/gitlab.yml"),
    )
    .unwrap();
    std::os::unix::fs::symlink("ci/gitlab.yml", fixture.path(".gitlab-ci.yml")).unwrap();
    std::fs::write(fixture.path("ci/gitlab.yml"), "old\n").unwrap();
    let forced = fixture.run(&["init", "--ci", "gitlab", "--force"]);
    assert_code(&forced, exit_codes::OK);
    assert!(fixture.path(".gitlab-ci.yml").is_symlink());
    assert_eq!(fixture.read("ci/gitlab.yml"), written);
    assert_eq!(fixture.read("Cargo.toml"), manifest);

    fixture.write(".gitignore", "target/\n");
    // A branch name a YAML flow sequence would split (`,`) or cut (`#`) is quoted.
    git(&fixture.root, &["init", "-q", "-b", "trunk,2#x"]);
    let github = fixture.run(&["init", "--ci", "github"]);
    assert_code(&github, exit_codes::OK);
    let ci = fixture.read(".github/workflows/ci.yml");
    assert!(ci.contains("    branches: [\"trunk,2#x\"]\n"), "{ci}");
    assert!(ci.contains("cargo xtask list --matrix"), "{ci}");
    assert!(fixture
        .read(".github/workflows/publish.yml")
        .contains("workflow_run"));
    assert!(
        github.stdout.contains("pushes to `trunk,2#x`"),
        "{}",
        github.stdout
    );
}

/// Ctrl-C while init checks a guess (pytest's collection hangs in a conftest.py): the
/// collection, in a process group of its own, is stopped, init ends INTERRUPTED, and the
/// Cargo.toml is left as it was.
#[test]
fn ctrl_c_while_checking_the_guesses_writes_nothing() {
    let fixture = Fixture::empty("init_interrupted");
    let cargo_toml = "[workspace]\nmembers = []\n";
    fixture.write("Cargo.toml", cargo_toml);
    std::fs::create_dir_all(fixture.path("pkg/tests")).unwrap();
    fixture.write(
        "pkg/pyproject.toml",
        "[project]\nname = \"pkg\"\nversion = \"0.1.0\"\nrequires-python = \">=3.11\"\ndependencies = []\n",
    );
    fixture.write("pkg/tests/test_x.py", "def test_x():\n    pass\n");
    fixture.write(
        "pkg/tests/conftest.py",
        "import os, time\n\nwith open(os.path.join(os.path.dirname(__file__), '..', '..', 'collecting'), 'w') as f:\n    f.write(str(os.getpid()))\ntime.sleep(600)\n",
    );
    let marker = fixture.path("collecting");
    let (status, _) = interrupt_when(fixture.command(&["init"]), "pytest's collection", || {
        std::fs::read_to_string(&marker).is_ok_and(|pid| !pid.is_empty())
    });
    assert_eq!(
        exit_codes::name(status.code().unwrap_or(-1) as u8),
        "INTERRUPTED",
        "{status}"
    );
    let pid: u32 = fixture.read("collecting").trim().parse().unwrap();
    assert_gone(&[pid]);
    assert_eq!(fixture.read("Cargo.toml"), cargo_toml);
}

/// Test cases as (classname, name, outcome).
type Outcomes = BTreeSet<(String, String, &'static str)>;

/// Every test case of a JUnit file.
fn outcomes(path: &std::path::Path) -> Outcomes {
    let xml = std::fs::read_to_string(path).unwrap();
    let report = quick_junit::Report::deserialize_from_str(&xml)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    report
        .test_suites
        .iter()
        .flat_map(|s| s.test_cases.iter())
        .map(|case| {
            use quick_junit::{NonSuccessKind, TestCaseStatus};
            let status = match &case.status {
                TestCaseStatus::Success { .. } => "passed",
                TestCaseStatus::NonSuccess {
                    kind: NonSuccessKind::Failure,
                    ..
                } => "failed",
                TestCaseStatus::NonSuccess {
                    kind: NonSuccessKind::Error,
                    ..
                } => "error",
                TestCaseStatus::Skipped { .. } => "skipped",
            };
            let classname = case.classname.as_ref().map_or("", |c| c.as_str());
            (classname.to_string(), case.name.to_string(), status)
        })
        .collect()
}

/// A hand-written command for one suite, as the repository's docs (or its tox.ini, its CI)
/// run it: a fresh environment with `install` (`uv pip install` arguments, from the root),
/// then pytest in the package's directory with `pytest_args`. Its per-test outcomes, and
/// pytest's own closing counts.
fn hand_written(
    fixture: &Fixture,
    name: &str,
    install: &[&str],
    dir: &str,
    pythonpath: Option<&str>,
    pytest_args: &[&str],
) -> (Outcomes, Vec<(String, usize)>) {
    let venv = fixture.path(&format!("hand-{name}"));
    let ok = |mut command: Command, what: &str| {
        let out = command.env_remove("VIRTUAL_ENV").output().unwrap();
        assert!(
            out.status.success(),
            "{name}: {what}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut create = Command::new(uv());
    create
        .args(["venv", "-q"])
        .arg(&venv)
        .current_dir(&fixture.root);
    ok(create, "uv venv");
    let mut pip = Command::new(uv());
    pip.args(["pip", "install", "-q", "--python"])
        .arg(venv.join("bin/python"))
        .args(install)
        .current_dir(&fixture.root);
    ok(pip, "uv pip install");
    let junit = fixture.path(&format!("hand-{name}.xml"));
    let mut pytest = Command::new(venv.join("bin/python"));
    pytest
        .args(["-m", "pytest", "-p", "no:cacheprovider"])
        .args(pytest_args)
        .arg(format!("--junitxml={}", junit.display()))
        .current_dir(fixture.path(dir))
        .env_remove("PYTHONPATH");
    if let Some(path) = pythonpath {
        pytest.env("PYTHONPATH", fixture.path(path));
    }
    let stdout = ok(pytest, "pytest");
    (outcomes(&junit), pytest_summary(&stdout))
}

/// Unlocked packages (no uv.lock), each the way a real repository has it, and the manifest
/// init writes for them gives, through `cargo xtask ci`, the per-test outcomes of the
/// hand-written commands:
/// - `clock` imports `dateutil`, which only the SECOND of the repository's requirement files
///   provides (`requirements/test.txt`; its distribution, python-dateutil, is not named
///   like the module): the verification tries `requirements/base.txt`, then finds it;
/// - `ledger` declares its dependencies in its `pyproject.toml` (an extra `test` with
///   pytest that names its own extra `export`, and a package of this repository,
///   `shared_money`, by name): they are installed with pytest, the local package's own
///   dependencies in its place and its code through PYTHONPATH; the repository's CI
///   (.github/workflows/tests.yml) runs it with `-m "not network"`;
/// - `feed`'s own `tox.ini` installs `requirements-test.txt` (no pytest in it) and runs
///   `pytest -m "not slow" tests/unit`: init takes the file, markers and paths from it,
///   and says so; the same from a root `noxfile.py` and a `.gitlab-ci.yml`.
#[test]
fn unlocked_projects_use_what_they_declare_and_what_their_commands_run() {
    let fixture = Fixture::new("unlocked", "init_unlocked");
    let init = fixture.run(&["init"]);
    assert_code(&init, exit_codes::OK);
    for line in [
        "clock: verified after a change: requirements-file = \"requirements/test.txt\": collection failed in the guessed environment and with requirements/base.txt and succeeds with this file (collected 2 tests)",
        "ledger: requirements = [\"pytest==9.2.0\", \"attrs==25.4.0\", \"six==1.17.0\", \"tomli-w==1.2.0\"]: it has no uv.lock, so the project is not installed; what services/ledger's pyproject.toml declares (dependencies, extra `test`) is installed, and its code comes in through PYTHONPATH; shared/money is a package of this repository",
        "ledger: pythonpath += \"shared/money/src\"",
        "ledger: markers = \"not network\": .github/workflows/tests.yml runs pytest on it with `-m \"not network\"`",
        "feed: requirements-file = \"services/feed/requirements-test.txt\", requirements = [\"pytest==9.2.0\"]: services/feed/tox.ini installs it before running pytest on services/feed",
        "feed: markers = \"not slow\": services/feed/tox.ini runs pytest on it",
        "feed: paths = [\"tests/unit\"]: services/feed/tox.ini runs pytest on services/feed/tests/unit",
        "evidence: services/feed/tox.ini runs pytest -m \"not slow\" services/feed/tests/unit, after installing services/feed/requirements-test.txt",
        "evidence: .github/workflows/tests.yml runs pytest -m \"not network\" services/ledger/tests",
        "ledger: verified: collected 2 tests",
        "feed: verified: collected 2 tests",
    ] {
        assert!(init.stdout.contains(line), "no `{line}`:\n{}", init.stdout);
    }
    assert!(!init.stdout.contains("not verified"), "{}", init.stdout);
    let written = fixture.read("Cargo.toml");
    assert!(
        !written.contains("shared-money") && !written.contains("shared_money"),
        "a package of the repository is never installed from the index by its name:\n{written}"
    );

    let ci = fixture.run(&["ci"]);
    assert_code(&ci, exit_codes::OK);
    let record = record(&fixture);
    let hands = [
        hand_written(
            &fixture,
            "clock",
            &["-r", "requirements/test.txt", "pytest==9.2.0"],
            "services/clock",
            Some("services/clock/src"),
            &["tests"],
        ),
        hand_written(
            &fixture,
            "ledger",
            &["-e", "shared/money", "-e", "./services/ledger[test]"],
            "services/ledger",
            None,
            &["-m", "not network", "tests"],
        ),
        hand_written(
            &fixture,
            "feed",
            &[
                "pytest==9.2.0",
                "-r",
                "services/feed/requirements-test.txt",
                "./services/feed",
            ],
            "services/feed",
            None,
            &["-m", "not slow", "tests/unit"],
        ),
    ];
    for (name, (theirs, summary)) in ["clock", "ledger", "feed"].into_iter().zip(hands) {
        let ours = outcomes(&fixture.path(&format!("target/xtask/junit/{name}.xml")));
        assert!(!ours.is_empty(), "{name}");
        assert_eq!(ours, theirs, "{name}: the same tests, ids and outcomes");
        let counts = &suite_record(&record, name)["counts"];
        for what in ["passed", "failed", "skipped", "deselected"] {
            assert_eq!(
                counts[what].as_u64().unwrap() as usize,
                count(&summary, what),
                "{name}: {what} ({summary:?})"
            );
        }
    }

    // The same evidence from a root noxfile.py and a .gitlab-ci.yml (`cd DIR && ...`).
    std::fs::remove_file(fixture.path("services/feed/tox.ini")).unwrap();
    fixture.write(
        "noxfile.py",
        "import nox\n\n\n@nox.session\ndef tests(session):\n    session.install(\n        \"-r\",\n        \"requirements/test.txt\",\n    )\n    session.run(\"pytest\", \"services/clock/tests\", *session.posargs)\n",
    );
    fixture.write(
        ".gitlab-ci.yml",
        "unit:\n  script:\n    - cd services/feed && pip install -r requirements-test.txt pytest\n    - cd services/feed && python -m pytest -m \"not slow\" tests/unit\n",
    );
    let printed = fixture.run(&["init", "--print", "--no-verify"]);
    assert_code(&printed, exit_codes::OK);
    for line in [
        "evidence: noxfile.py runs pytest services/clock/tests, after installing requirements/test.txt",
        "evidence: .gitlab-ci.yml runs pytest -m \"not slow\" services/feed/tests/unit, after installing services/feed/requirements-test.txt",
        "clock: requirements-file = \"requirements/test.txt\", requirements = [\"pytest==9.2.0\"]: noxfile.py installs it before running pytest on services/clock",
        "feed: markers = \"not slow\": .gitlab-ci.yml runs pytest on it",
        "feed: paths = [\"tests/unit\"]: .gitlab-ci.yml runs pytest on services/feed/tests/unit",
    ] {
        assert!(printed.stderr.contains(line), "no `{line}`:\n{}", printed.stderr);
    }
}

/// A repository where nothing can be verified: its only package's tests import a module
/// nothing in the repository provides. init still writes its guess, says it is not
/// verified and why, and the manifest runs as the hand-written command does: neither
/// collects a test, and the xtask names the missing module as an environment error.
#[test]
fn a_repository_where_nothing_can_be_verified_gets_a_guess_that_says_so() {
    let fixture = Fixture::empty("init_nothing_verified");
    write(&fixture, "pkg/requirements-dev.txt", "pytest==9.2.0\n");
    write(
        &fixture,
        "pkg/tests/test_it.py",
        "import module_nobody_provides\n\n\ndef test_it():\n    assert module_nobody_provides\n",
    );
    let init = fixture.run(&["init"]);
    assert_code(&init, exit_codes::OK);
    assert!(
        init.stdout.contains(
            "not verified: collecting its tests fails: No module named 'module_nobody_provides'"
        ),
        "{}",
        init.stdout
    );
    assert!(
        init.stdout.contains("(1 not verified: see above)"),
        "{}",
        init.stdout
    );
    assert_eq!(suite_names(&fixture).len(), 1);

    let ci = fixture.run(&["ci"]);
    assert_code(&ci, exit_codes::ENVIRONMENT_ERROR);
    let record = record(&fixture);
    let suite = &record["suites"][0];
    assert!(
        suite["detail"]
            .as_str()
            .is_some_and(|d| d.contains("module_nobody_provides")),
        "{suite}"
    );
    // As its docs would run it: no test runs there either, for the same module.
    let out = Command::new(uv())
        .args(["run", "--isolated", "--no-project", "--with-requirements"])
        .arg("pkg/requirements-dev.txt")
        .args(["pytest", "-q", "-p", "no:cacheprovider", "pkg/tests"])
        .env_remove("VIRTUAL_ENV")
        .current_dir(&fixture.root)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "pytest's 'interrupted' exit: collection errors"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("No module named 'module_nobody_provides'"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(suite["counts"]["passed"], 0);
}
