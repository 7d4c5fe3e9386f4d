//! Portable run archives through the real binary: `export` packs a real failing run (real
//! uv and pytest), Python's tarfile lists it, `--rerun` and `replay` read it in another
//! checkout at another commit, and forged, changed, cut and escaping archives are refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;
use xtask::exit_codes;
use xtask::report::run_record::RunRecord;

/// A copy of the `record` fixture as a git repository of its own, committed once; `extra`
/// makes its commit differ from another copy's.
fn checkout(test: &str, extra: &str, edit: impl FnOnce(&Fixture)) -> Fixture {
    let fixture = Fixture::new("record", test);
    edit(&fixture);
    fixture.write(".gitignore", "target/\n");
    fixture.write("EXTRA", extra);
    git(&fixture.root, &["init", "-q"]);
    git(&fixture.root, &["add", "-A"]);
    git(&fixture.root, &["commit", "-q", "-m", "fixture"]);
    fixture
}

fn head(fixture: &Fixture) -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&fixture.root)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn typed_record(fixture: &Fixture) -> RunRecord {
    serde_json::from_str(&fixture.read("target/xtask/run.json"))
        .expect("run.json reads as a RunRecord")
}

/// Python's own reading of a tar: every member's name, type, size and SHA-256, in order.
fn python_listing(archive: &Path) -> Vec<Value> {
    let script = r#"
import hashlib, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1]) as tar:
    for m in tar.getmembers():
        data = tar.extractfile(m).read() if m.isfile() else b""
        out.append({"name": m.name, "file": m.isfile(), "size": m.size,
                    "sha256": hashlib.sha256(data).hexdigest()})
print(json.dumps(out))
"#;
    let out = python(&["-c", script, archive.to_str().unwrap()]);
    serde_json::from_str(&out).unwrap()
}

/// Runs uv's Python with `args`; its stdout.
fn python(args: &[&str]) -> String {
    let out = uv_tool(&[])
        .args(["--", "python"])
        .args(args)
        .output()
        .expect("running uv");
    assert!(
        out.status.success(),
        "python {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The lines of a terminal output that name a failure (`failed path:line: test`).
fn failure_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| (l.starts_with("failed ") || l.starts_with("error ")) && l.contains(".py:"))
        .map(str::to_string)
        .collect()
}

/// The directory archives are written to: a name with a space and non-ASCII letters.
fn archives(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("archives")
        .join(format!("{test} ü"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_failed_run_exported_reruns_exactly_its_failures_in_another_checkout_and_replays() {
    let source = checkout("archive-source", "source", |_| {});
    let first = source.run(&["test"]);
    assert_code(&first, exit_codes::TESTS_FAILED);
    let record = typed_record(&source);
    let id = record.run_id.clone();
    let run_dir = source.path(&format!("target/xtask/runs/{id}"));

    // Exported in "GitHub Actions": the step summary names the archive and its report.
    let archive = archives("rerun").join("run één.tar.gz");
    let summary = source.path("step-summary.md");
    let mut export = source.command(&["export", "-o", archive.to_str().unwrap()]);
    export.env(xtask::report::github::SUMMARY_ENV, &summary);
    let exported = run(export);
    assert_code(&exported, exit_codes::OK);
    assert!(exported.stdout.contains(&id), "{}", exported.stdout);
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.contains("run één.tar.gz") && summary.contains("report.html"),
        "{summary}"
    );

    // Python's tarfile reads it: one directory named after the run, the manifest first,
    // then every report of the run's directory and nothing of its working files; each
    // member's SHA-256 is the manifest's and the run directory's file's.
    let listing = python_listing(&archive);
    let names: Vec<&str> = listing
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = [
        "xtask-archive.json",
        "run.json",
        "junit.xml",
        "junit/calm.xml",
        "junit/mixed.xml",
        "logs/calm.log",
        "logs/mixed.log",
        "report.html",
    ]
    .iter()
    .map(|m| format!("{id}/{m}"))
    .collect();
    assert_eq!(names, expected);
    assert!(listing.iter().all(|m| m["file"] == true));
    let manifest: Value = {
        let script = "import sys, tarfile; t = tarfile.open(sys.argv[1]); \
                      sys.stdout.write(t.extractfile(sys.argv[2]).read().decode())";
        let name = format!("{id}/xtask-archive.json");
        serde_json::from_str(&python(&["-c", script, archive.to_str().unwrap(), &name])).unwrap()
    };
    assert_eq!(manifest["run_id"], id.as_str());
    assert_eq!(manifest["commit"], head(&source).as_str());
    assert_eq!(manifest["root"], source.root.to_str().unwrap());
    assert_eq!(manifest["suites"], serde_json::json!(["mixed", "calm"]));
    for (member, listed) in listing[1..]
        .iter()
        .zip(manifest["members"].as_array().unwrap())
    {
        let rel = member["name"]
            .as_str()
            .unwrap()
            .strip_prefix(&format!("{id}/"))
            .unwrap();
        assert_eq!(listed["path"], rel);
        assert_eq!(listed["sha256"], member["sha256"], "{rel}");
        let on_disk = std::fs::read(run_dir.join(rel)).unwrap();
        assert_eq!(listed["size"], on_disk.len() as u64, "{rel}");
    }
    assert_eq!(
        manifest["members"].as_array().unwrap().len(),
        listing.len() - 1
    );

    // Another checkout, at another commit: the rerun runs exactly the three tests that
    // failed or errored, in `mixed` alone, and names how the archive differs.
    // This one's manifest has no `calm`.
    let elsewhere = checkout("archive-elsewhere", "elsewhere", |f| {
        let manifest = f.read("Cargo.toml");
        let calm = manifest
            .find("# Passes.\n")
            .expect("the calm suite's block");
        f.write("Cargo.toml", &manifest[..calm]);
    });
    assert_ne!(head(&source), head(&elsewhere));
    let rerun = elsewhere.run(&["test", "--rerun", archive.to_str().unwrap()]);
    assert_code(&rerun, exit_codes::TESTS_FAILED);
    for difference in [
        format!(
            "xtask: archive from commit {} (this checkout: {})",
            &head(&source)[..12],
            &head(&elsewhere)[..12]
        ),
        format!(
            "checkout {} (this one: {})",
            source.root.display(),
            std::fs::canonicalize(&elsewhere.root).unwrap().display()
        ),
        "suites not in this manifest: calm".to_string(),
    ] {
        assert!(rerun.stderr.contains(&difference), "{}", rerun.stderr);
    }
    let again = typed_record(&elsewhere);
    assert_eq!(again.rerun_of.as_ref().unwrap().run_id, id);
    let suites: Vec<&str> = again.suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(suites, ["mixed"], "`calm` passed in the archived run");
    let mixed = &again.suites[0];
    let mut ran: Vec<&str> = mixed
        .tests
        .iter()
        .filter_map(|t| t.node_id.as_deref())
        .collect();
    ran.sort();
    assert_eq!(
        ran,
        [
            "tests/test_mixed.py::test_errors",
            "tests/test_mixed.py::test_fails",
            "tests/test_mixed.py::test_fails_once",
        ]
    );
    assert_eq!(mixed.counts.deselected, 5);
    assert!(
        rerun.stderr.contains(&format!(
            "xtask: rerun of {id}: 0 of 3 failing test(s) now pass; 3 still fail"
        )),
        "{}",
        rerun.stderr
    );

    // Replayed from the archive, the failures read as the source's own replay of its run.
    let own = source.run(&["replay", &id]);
    let replayed = elsewhere.run(&["replay", archive.to_str().unwrap()]);
    assert_eq!(replayed.code, own.code, "{}", replayed.stderr);
    let failures = failure_lines(&replayed.stdout);
    assert_eq!(failures.len(), 3, "{}", replayed.stdout);
    assert_eq!(failures, failure_lines(&own.stdout));
    assert!(
        replayed.stdout.contains("AssertionError: one is not two"),
        "{}",
        replayed.stdout
    );
    // Its last line names the reports where they are here (the unpacked archive).
    let last = replayed
        .stdout
        .lines()
        .rev()
        .find(|l| l.contains("; JUnit: "))
        .unwrap();
    let junit = last
        .split("; JUnit: ")
        .nth(1)
        .unwrap()
        .split("; logs: ")
        .next()
        .unwrap();
    let logs = last.split("; logs: ").nth(1).unwrap();
    assert!(elsewhere.root.join(junit).is_file(), "{last}");
    assert!(elsewhere.root.join(logs).is_dir(), "{last}");
    // And drawn as a trace from it.
    let trace = elsewhere.path("trace.json");
    let traced = elsewhere.run(&[
        "trace",
        archive.to_str().unwrap(),
        "-o",
        trace.to_str().unwrap(),
    ]);
    assert_code(&traced, exit_codes::OK);
    let trace: Value = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    assert!(
        trace["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["args"]["node_id"] == "tests/test_mixed.py::test_fails"),
        "{trace}"
    );
    // Its log tail comes from the unpacked copy of the run's log.
    assert!(
        replayed.stdout.contains("target/xtask/imports/"),
        "{}",
        replayed.stdout
    );
}

/// Writes a copy of `archive` to `out` changed by `how` (Python's tarfile, gzipped).
fn forge(archive: &Path, out: &Path, how: &str) {
    let script = r#"
import io, sys, tarfile
src, dst, how = sys.argv[1:4]
with tarfile.open(src) as t:
    members = [(m, t.extractfile(m).read()) for m in t.getmembers()]
top = members[0][0].name.split("/")[0]
with tarfile.open(dst, "w:gz") as out:
    for m, data in members:
        if how == "one-byte" and m.name.endswith("/run.json"):
            at = data.index(b'"failed"') + 1
            data = data[:at] + b"F" + data[at + 1:]
        if how == "cut" and m.name.endswith("/report.html"):
            continue
        out.addfile(m, io.BytesIO(data))
    extra = {"dotdot": "../evil", "absolute": "/tmp/xtask-archive-evil",
             "deep": top + "/logs/../../../evil", "symlink": top + "/logs/link"}.get(how)
    if extra:
        info = tarfile.TarInfo(extra)
        if how == "symlink":
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc"
            out.addfile(info)
        else:
            info.size = 4
            out.addfile(info, io.BytesIO(b"evil"))
"#;
    python(&[
        "-c",
        script,
        archive.to_str().unwrap(),
        out.to_str().unwrap(),
        how,
    ]);
}

#[test]
fn a_changed_cut_or_escaping_archive_is_refused_naming_the_file_and_member() {
    let fixture = Fixture::new("record", "archive-forged");
    assert_code(&fixture.run(&["test"]), exit_codes::TESTS_FAILED);
    let dir = archives("forged");
    let archive = dir.join("good.tar");
    assert_code(
        &fixture.run(&["export", "-o", archive.to_str().unwrap()]),
        exit_codes::OK,
    );
    // The plain tar reads back.
    let good = fixture.run(&["replay", archive.to_str().unwrap()]);
    assert_eq!(failure_lines(&good.stdout).len(), 3, "{}", good.stderr);
    let imports = fixture.path("target/xtask/imports");
    let imported = || std::fs::read_dir(&imports).unwrap().count();
    let before = imported();

    let cases = [
        (
            "one-byte",
            "`run.json` does not match its SHA-256 in the manifest",
        ),
        ("cut", "it ends before `report.html`: it was cut short"),
        (
            "dotdot",
            "member `../evil` would be written outside its directory",
        ),
        (
            "absolute",
            "member `/tmp/xtask-archive-evil` would be written outside its directory",
        ),
        (
            "deep",
            "/logs/../../../evil` would be written outside its directory",
        ),
        (
            "symlink",
            "/logs/link` is a symbolic link, not a plain file",
        ),
    ];
    for (how, says) in cases {
        let forged = dir.join(format!("{how} ü.tar.gz"));
        forge(&archive, &forged, how);
        for args in [
            vec!["replay", forged.to_str().unwrap()],
            vec!["test", "--rerun", forged.to_str().unwrap()],
        ] {
            let refused = fixture.run(&args);
            assert_code(&refused, exit_codes::USAGE_ERROR);
            assert!(
                refused.stderr.contains(&format!(
                    "{} cannot be used as a run archive: ",
                    forged.display()
                )) && refused.stderr.contains(says),
                "{how}: {}",
                refused.stderr
            );
            assert!(
                refused.stderr.contains("Export the run again"),
                "{}",
                refused.stderr
            );
        }
        assert_eq!(imported(), before, "{how}: nothing is left under imports/");
    }
    for escaped in [
        dir.join("evil"),
        fixture.path("target/xtask/evil"),
        fixture.path("target/evil"),
        PathBuf::from("/tmp/xtask-archive-evil"),
    ] {
        assert!(!escaped.exists(), "{} was written", escaped.display());
    }

    // Bytes cut off the end of the gzip stream.
    let gzipped = dir.join("good.tar.gz");
    assert_code(
        &fixture.run(&["export", "-o", gzipped.to_str().unwrap()]),
        exit_codes::OK,
    );
    let bytes = std::fs::read(&gzipped).unwrap();
    let cut = dir.join("bytes cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let refused = fixture.run(&["replay", cut.to_str().unwrap()]);
    assert_code(&refused, exit_codes::USAGE_ERROR);
    assert!(
        refused.stderr.contains("is damaged or cut short"),
        "{}",
        refused.stderr
    );

    // An archive that does not exist, and a run that cannot be exported.
    let missing = fixture.run(&["replay", "no such.tar.gz"]);
    assert_code(&missing, exit_codes::USAGE_ERROR);
    assert!(
        missing.stderr.contains("no archive `no such.tar.gz`"),
        "{}",
        missing.stderr
    );
    let nothing = fixture.run(&["export", "no-such-run", "-o", "x.tar.gz"]);
    assert_code(&nothing, exit_codes::USAGE_ERROR);
}
