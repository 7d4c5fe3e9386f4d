//! `--changed-since` under attack, through the real binary on scratch git repositories: a
//! changed suite is never silently left out. File names git would quote (non-ASCII, spaces,
//! a newline), edited or untracked; deletions and renames, on both sides; a repository root
//! that is a subdirectory of a larger git work tree; and git's answer that cannot be read,
//! which selects every suite with a warning rather than none.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use xtask::exit_codes;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Two suites, `alpha` (in `alpha/`) and `beta` (in `beta/`), in `root`.
fn two_suites(root: &Path) {
    write(
        root,
        "Cargo.toml",
        "[workspace]\nmembers = []\n\n[[workspace.metadata.xtask.suites]]\nname = \"alpha\"\ngroup = \"g\"\ndir = \"alpha\"\nrequirements = [\"pytest==9.2.0\"]\n\n[[workspace.metadata.xtask.suites]]\nname = \"beta\"\ngroup = \"g\"\ndir = \"beta\"\nrequirements = [\"pytest==9.2.0\"]\n",
    );
    write(root, "alpha/tests/test_a.py", "def test_a():\n    pass\n");
    write(root, "beta/tests/test_b.py", "def test_b():\n    pass\n");
    write(root, ".gitignore", "target/\n");
}

/// The suites `list --changed-since HEAD` selects, and its stderr.
fn selected(fixture: &Fixture) -> (Vec<String>, String) {
    let run = fixture.run(&["list", "--changed-since", "HEAD"]);
    assert_eq!(exit_codes::name(run.code), "OK", "{}", run.stderr);
    let names = run
        .stdout
        .lines()
        .filter(|l| l.contains("  changed: "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    (names, run.stderr)
}

#[test]
fn names_git_quotes_are_read_as_they_are_edited_untracked_deleted_or_renamed() {
    let fixture = Fixture::empty("changes-quoted-names");
    let root = &fixture.root;
    two_suites(root);
    write(root, "alpha/tests/données été.py", "X = 1\n");
    write(root, "beta/tests/plain.py", "X = 1\n");
    git(root, &["init", "-q"]);
    // As many CI images set it: git would print these names quoted, escaped as octal.
    git(root, &["config", "core.quotePath", "true"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "base"]);
    assert!(selected(&fixture).0.is_empty());

    // Edited.
    write(root, "alpha/tests/données été.py", "X = 2\n");
    let (names, _) = selected(&fixture);
    assert_eq!(names, ["alpha"]);
    let run = fixture.run(&["list", "--changed-since", "HEAD"]);
    assert!(
        run.stdout.contains("alpha/tests/données été.py changed"),
        "shown as it is: {}",
        run.stdout
    );
    git(root, &["checkout", "-q", "--", "."]);

    // Untracked, with a newline and a tab in its name: shown escaped, on one line.
    write(root, "beta/tests/new\nline\tname ü.py", "X = 1\n");
    let run = fixture.run(&["list", "--changed-since", "HEAD"]);
    assert!(
        run.stdout
            .contains("beta/tests/new\\nline\\tname ü.py changed"),
        "{}",
        run.stdout
    );
    assert_eq!(selected(&fixture).0, ["beta"]);
    std::fs::remove_file(root.join("beta/tests/new\nline\tname ü.py")).unwrap();

    // Deleted, not staged.
    std::fs::remove_file(root.join("alpha/tests/données été.py")).unwrap();
    assert_eq!(selected(&fixture).0, ["alpha"], "a deletion counts");
    git(root, &["checkout", "-q", "--", "."]);

    // Renamed from one suite into the other and committed: both sides changed.
    git(
        root,
        &["mv", "alpha/tests/données été.py", "beta/tests/données.py"],
    );
    git(root, &["commit", "-q", "-m", "move"]);
    let run = fixture.run(&["list", "--changed-since", "HEAD~1"]);
    assert_eq!(exit_codes::name(run.code), "OK", "{}", run.stderr);
    let names: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("  changed: "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta"], "both sides of a rename");
    // A run runs both.
    let run = fixture.run(&["test", "--changed-since", "HEAD~1"]);
    assert_code(&run, exit_codes::OK);
    let record = record(&fixture);
    assert_eq!(record["suites"].as_array().unwrap().len(), 2);
}

#[test]
fn a_root_inside_a_larger_work_tree_reads_paths_from_the_root() {
    let fixture = Fixture::empty("changes-nested-root");
    let outer = fixture.root.clone();
    // The git work tree starts above the repository the xtask works on.
    let root = outer.join("sub dir/monorepo");
    two_suites(&root);
    // A file named like a suite's directory, outside the root: not an input.
    write(&outer, "alpha/tests/test_outside.py", "X = 1\n");
    write(&outer, "Cargo.toml", "[workspace]\n");
    git(&outer, &["init", "-q"]);
    git(&outer, &["add", "-A"]);
    git(&outer, &["commit", "-q", "-m", "base"]);
    let nested = Fixture { root: root.clone() };
    // The harness stops git at the fixture's parent; here the work tree is above it.
    let selected = |fixture: &Fixture| {
        let mut command = fixture.command(&["list", "--changed-since", "HEAD"]);
        command.env("GIT_CEILING_DIRECTORIES", outer.parent().unwrap());
        let run = run(command);
        assert_eq!(exit_codes::name(run.code), "OK", "{}", run.stderr);
        assert!(!run.stderr.contains("warning"), "{}", run.stderr);
        let names: Vec<String> = run
            .stdout
            .lines()
            .filter(|l| l.contains("  changed: "))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect();
        (names, run.stdout)
    };

    write(&outer, "alpha/tests/test_outside.py", "X = 2\n");
    write(&outer, "Cargo.toml", "[workspace]\n# edited\n");
    assert!(
        selected(&nested).0.is_empty(),
        "changes outside the root select nothing"
    );

    write(
        &root,
        "beta/tests/test_b.py",
        "def test_b():\n    assert 1\n",
    );
    assert_eq!(selected(&nested).0, ["beta"]);
    write(&root, "alpha/tests/untracked ü.py", "X = 1\n");
    assert_eq!(selected(&nested).0, ["alpha", "beta"]);

    // The manifest at the root (not the outer Cargo.toml) is read at the ref.
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    git(&outer, &["checkout", "-q", "--", "."]);
    std::fs::remove_file(root.join("alpha/tests/untracked ü.py")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        manifest.replacen(
            "dir = \"beta\"",
            "dir = \"beta\"\nmarkers = \"not slow\"",
            1,
        ),
    )
    .unwrap();
    let (names, stdout) = selected(&nested);
    assert_eq!(names, ["beta"]);
    assert!(
        stdout.contains("beta  changed: its entry in Cargo.toml changed"),
        "{stdout}"
    );
    assert!(stdout.contains("alpha  unchanged"), "{stdout}");
}

#[test]
fn when_git_cannot_answer_every_suite_is_selected_with_a_warning() {
    // Not a git work tree at all.
    let fixture = Fixture::empty("changes-no-git");
    two_suites(&fixture.root);
    let (names, stderr) = selected(&fixture);
    assert_eq!(names, ["alpha", "beta"], "{stderr}");
    assert!(
        stderr.contains("warning: --changed-since HEAD") && stderr.contains("every suite"),
        "{stderr}"
    );

    // git itself missing from PATH.
    let fixture = Fixture::empty("changes-git-missing");
    two_suites(&fixture.root);
    git(&fixture.root, &["init", "-q"]);
    git(&fixture.root, &["add", "-A"]);
    git(&fixture.root, &["commit", "-q", "-m", "base"]);
    // A PATH with Python (for uv) but no git.
    let bin = fixture.path("bin-without-git");
    std::fs::create_dir_all(&bin).unwrap();
    let python = Command::new("python3")
        .args([
            "-c",
            "import os, sys; print(os.path.realpath(sys.executable))",
        ])
        .output()
        .expect("python3 on PATH");
    let python = String::from_utf8(python.stdout).unwrap();
    for name in ["python3", "python"] {
        std::os::unix::fs::symlink(python.trim(), bin.join(name)).unwrap();
    }
    assert!(
        bin.join("python3").exists(),
        "python3 must be on PATH for the tests"
    );
    let mut command = fixture.command(&["test", "--changed-since", "HEAD"]);
    command.env("PATH", &bin);
    let run = run(command);
    assert_code(&run, exit_codes::OK);
    assert!(
        run.stderr.contains("every suite is selected"),
        "{}",
        run.stderr
    );
    assert_eq!(record(&fixture)["suites"].as_array().unwrap().len(), 2);

    // A ref git does not know stays the caller's error.
    let run = fixture.run(&["list", "--changed-since", "no-such-ref"]);
    assert_eq!(exit_codes::name(run.code), "USAGE_ERROR", "{}", run.stderr);
}

/// A pipeline builds its matrix from the affected suites only: `--matrix` and `--json`
/// combine with `--changed-since`, each entry saying why; git's answer that cannot be read
/// selects every suite, never none; and partitions split only what is selected.
#[test]
fn an_affected_matrix_holds_the_changed_suites_each_with_why() {
    let fixture = Fixture::empty("changes-matrix");
    let root = &fixture.root;
    two_suites(root);
    git(root, &["init", "-q"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "base"]);
    // A file name that would read as a workflow command if it reached a log unguarded.
    write(root, "beta/tests/::error::forged.py", "X = 1\n");

    let matrix = |extra: &[&str]| {
        let mut args = vec!["list", "--matrix", "--changed-since", "HEAD"];
        args.extend_from_slice(extra);
        let run = fixture.run(&args);
        assert_eq!(exit_codes::name(run.code), "OK", "{}", run.stderr);
        let value: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
        value["include"].as_array().unwrap().clone()
    };
    let include = matrix(&[]);
    assert_eq!(include.len(), 1, "{include:?}");
    assert_eq!(include[0]["suite"], "beta");
    assert_eq!(include[0]["command"], "cargo xtask test beta");
    let why = include[0]["why"].as_str().unwrap();
    assert!(
        why.contains("beta/tests/::error::forged.py changed"),
        "{why}"
    );

    let include = matrix(&["--partitions", "3"]);
    let names: Vec<&str> = include
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["beta-1-of-3", "beta-2-of-3", "beta-3-of-3"]);
    assert!(include.iter().all(|e| e["why"].as_str() == Some(why)));

    let run = fixture.run(&["list", "--json", "--changed-since", "HEAD"]);
    assert_eq!(exit_codes::name(run.code), "OK", "{}", run.stderr);
    let suites: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let suites = suites.as_array().unwrap();
    assert_eq!(suites.len(), 1, "{suites:?}");
    assert_eq!(suites[0]["name"], "beta");
    assert_eq!(suites[0]["why"].as_str(), Some(why));

    // Nothing changed: an empty matrix, which the pipeline skips (never a suite run for
    // nothing, never an error).
    std::fs::remove_file(root.join("beta/tests/::error::forged.py")).unwrap();
    assert!(matrix(&[]).is_empty());

    // Without --changed-since, every suite and no `why`.
    let run = fixture.run(&["list", "--matrix"]);
    let value: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let include = value["include"].as_array().unwrap();
    assert_eq!(include.len(), 2);
    assert!(include.iter().all(|e| e.get("why").is_none()));

    // Not a git work tree: every suite, each saying why, and a warning.
    let fixture = Fixture::empty("changes-matrix-no-git");
    two_suites(&fixture.root);
    let run = fixture.run(&["list", "--matrix", "--changed-since", "HEAD"]);
    assert_eq!(exit_codes::name(run.code), "OK", "{}", run.stderr);
    assert!(
        run.stderr.contains("every suite is selected"),
        "{}",
        run.stderr
    );
    let value: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let include = value["include"].as_array().unwrap();
    assert_eq!(include.len(), 2);
    assert!(include
        .iter()
        .all(|e| e["why"].as_str().unwrap().contains("could not be read")));
}
