//! `cargo xtask junit libtest LOG -o OUT` on the real output of `cargo test`: a small crate
//! generated here (no dependency, so it builds offline) with passing, failing, ignored and
//! should-panic tests, panics whose messages hold characters XML and terminals treat
//! specially, a failing test that prints what looks like a result line, a test whose child
//! process writes around libtest's lines, a test binary that aborts, and doc tests. The
//! report is read back by junitparser on lxml, as a publisher reads it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{assert_code, junit_consumers, strict_xml, Fixture};
use serde_json::Value;
use xtask::exit_codes;

const LIB: &str = r#"#![allow(uncommon_codepoints)]
/// Adds.
///
/// ```
/// assert_eq!(demo::add(1, 2), 3);
/// ```
///
/// ```
/// assert_eq!(demo::add(1, 2), 4, "doc <&>");
/// ```
pub fn add(a: i32, b: i32) -> i32 {
    a + b
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes() {
        println!("hello <out> & \"more\"");
    }

    #[test]
    fn fails_oddly() {
        assert_eq!(1 + 1, 3, "odd: <&> ]]> \u{1b}[31mred\u{1b}[0m \u{0}nul \u{7}bel ünï 🦀");
    }

    #[test]
    #[ignore]
    fn ignored_plain() {}

    #[test]
    #[ignore = "needs a <network> & \"luck\""]
    fn ignored_with_a_reason() {}

    #[test]
    #[should_panic(expected = "boom")]
    fn should_panic_passes() {
        panic!("boom")
    }

    #[test]
    #[should_panic(expected = "boom")]
    fn should_panic_fails() {}

    #[test]
    fn prints_a_fake_result_then_fails() {
        println!("test tests::fake ... ok");
        println!("test result: ok. 9 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s");
        panic!("multi\nline\tpanic")
    }

    #[test]
    fn a_child_writes_to_the_real_stdout() {
        std::process::Command::new("echo")
            .arg("stray line from a child")
            .status()
            .unwrap();
    }

    #[test]
    fn ünïcödé_name() {}

    mod nested {
        #[test]
        fn deep() {}
    }
}
"#;

/// The generated crate, its own workspace (it lives under this repository's target/).
fn demo(test: &str) -> Fixture {
    let fixture = Fixture::empty(test);
    std::fs::create_dir_all(fixture.path("src")).unwrap();
    std::fs::create_dir_all(fixture.path("tests")).unwrap();
    fixture.write(
        "Cargo.toml",
        "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    fixture.write("src/lib.rs", LIB);
    fixture.write(
        "tests/it.rs",
        "#[test]\nfn it_passes() {}\n\n#[test]\nfn it_fails() {\n    let v: Vec<u8> = vec![];\n    let _ = v[3];\n}\n",
    );
    fixture.write(
        "tests/abort.rs",
        "#[test]\nfn aborts() {\n    std::process::abort();\n}\n",
    );
    fixture
}

/// `cargo test --no-fail-fast [ARGS]` in `dir`, stdout and stderr into one log file, as
/// `2>&1 | tee` would write it.
fn cargo_test(dir: &Path, log: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(log);
    let file = std::fs::File::create(&path).unwrap();
    let mut command = Command::new(env!("CARGO"));
    command
        .args(["test", "--no-fail-fast", "--offline"])
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TERM_COLOR")
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    let mut child = command.spawn().expect("running cargo test");
    let status = common::wait_with_deadline(&mut child).expect("cargo test within its deadline");
    assert!(
        !status.success(),
        "the demo's tests fail; cargo test said {status}"
    );
    path
}

/// Per case, `suite / classname / name` and what junitparser saw: `passed`, `failure`,
/// `error` or `skipped`, with the result's type and message.
fn outcomes(read: &Value) -> BTreeMap<String, (String, Option<String>, Option<String>)> {
    let mut out = BTreeMap::new();
    for suite in read["files"][0]["suites"].as_array().unwrap() {
        for case in suite["cases"].as_array().unwrap() {
            let key = format!(
                "{} / {} / {}",
                suite["name"].as_str().unwrap(),
                case["classname"].as_str().unwrap(),
                case["name"].as_str().unwrap()
            );
            let results = case["results"].as_array().unwrap();
            let value = match results.first() {
                None => ("passed".to_string(), None, None),
                Some(r) => (
                    r["kind"].as_str().unwrap().to_string(),
                    r["type"].as_str().map(str::to_string),
                    r["message"].as_str().map(str::to_string),
                ),
            };
            assert!(out.insert(key.clone(), value).is_none(), "{key} twice");
        }
    }
    out
}

#[test]
fn cargo_tests_output_becomes_a_junit_report_a_publisher_reads() {
    let fixture = demo("junit_libtest");
    let log = cargo_test(&fixture.root, "cargo-test.log", &[]);
    let out = fixture.path("out/cargo-test.xml");
    let run = fixture.run(&[
        "junit",
        "libtest",
        log.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_code(&run, exit_codes::OK);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    strict_xml(&out);
    let read = junit_consumers(std::slice::from_ref(&out));
    let outcomes = outcomes(&read);
    let unit = "demo (unittests src/lib.rs)";
    let expect = |key: &str, kind: &str| {
        let got = outcomes
            .get(key)
            .unwrap_or_else(|| panic!("no case {key}: {outcomes:#?}"));
        assert_eq!(got.0, kind, "{key}: {got:?}");
        got.clone()
    };
    for name in [
        "passes",
        "should_panic_passes",
        "a_child_writes_to_the_real_stdout",
        "ünïcödé_name",
    ] {
        expect(&format!("{unit} / demo::tests / {name}"), "passed");
    }
    expect(&format!("{unit} / demo::tests::nested / deep"), "passed");
    expect(&format!("{unit} / demo::tests / ignored_plain"), "skipped");
    let reason = expect(
        &format!("{unit} / demo::tests / ignored_with_a_reason"),
        "skipped",
    );
    assert_eq!(reason.2.as_deref(), Some("needs a <network> & \"luck\""));
    // The panic's message, every character readable: the colour codes dropped, NUL and
    // BEL shown as their pictures, the rest as written.
    let odd = expect(&format!("{unit} / demo::tests / fails_oddly"), "failure");
    assert_eq!(odd.1.as_deref(), Some("panic"));
    let message = odd.2.unwrap();
    assert!(
        message.starts_with(
            "assertion `left == right` failed: odd: <&> ]]> red \u{2400}nul \u{2407}bel ünï 🦀\n"
        ),
        "{message:?}"
    );
    assert!(
        message.contains("left: 2") && message.contains("right: 3"),
        "{message:?}"
    );
    // The fake result lines are the failing test's output, never cases.
    let fake = expect(
        &format!("{unit} / demo::tests / prints_a_fake_result_then_fails"),
        "failure",
    );
    assert_eq!(fake.2.as_deref(), Some("multi\nline    panic"));
    assert!(
        outcomes.keys().all(|k| !k.ends_with("/ fake")),
        "{outcomes:#?}"
    );
    expect(
        &format!("{unit} / demo::tests / should_panic_fails"),
        "failure",
    );
    expect("it (tests/it.rs) / it / it_passes", "passed");
    let bounds = expect("it (tests/it.rs) / it / it_fails", "failure");
    assert!(bounds.2.unwrap().contains("index out of bounds"));
    let crashed = expect("abort (tests/abort.rs) / abort / (test binary)", "error");
    assert_eq!(crashed.1.as_deref(), Some("crashed"));
    expect(
        "demo (doc-tests) / demo / src/lib.rs - add (line 4)",
        "passed",
    );
    let doc = expect(
        "demo (doc-tests) / demo / src/lib.rs - add (line 8)",
        "failure",
    );
    assert!(doc.2.unwrap().contains("doc <&>"));

    // The totals junitparser counts agree with what the file declares, and with libtest's
    // own summaries of the binaries that finished.
    let file = &read["files"][0];
    for suite in file["suites"].as_array().unwrap() {
        for key in ["tests", "failures", "errors", "skipped"] {
            assert_eq!(
                suite[key], suite["declared"][key],
                "{}: {key}",
                suite["name"]
            );
        }
    }
    // Each binary's summary is the last `test result:` line of its section (a failing
    // test printed one of its own above it).
    let text = std::fs::read_to_string(&log).unwrap();
    let mut summaries: Vec<Option<&str>> = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("Running ") || line.trim_start().starts_with("Doc-tests ")
        {
            summaries.push(None);
        } else if let Some(summary) = line.strip_prefix("test result: ") {
            *summaries.last_mut().unwrap() = Some(summary);
        }
    }
    let summed = |what: &str| -> u64 {
        summaries
            .iter()
            .flatten()
            .flat_map(|l| l.split("; "))
            .filter_map(|part| {
                let part = part.rsplit(". ").next().unwrap();
                let (n, kind) = part.split_once(' ')?;
                (kind == what).then(|| n.parse::<u64>().unwrap())
            })
            .sum()
    };
    assert_eq!(file["failures"].as_u64().unwrap(), summed("failed"));
    assert_eq!(file["skipped"].as_u64().unwrap(), summed("ignored"));
    assert_eq!(
        file["tests"].as_u64().unwrap(),
        summed("passed") + summed("failed") + summed("ignored") + file["errors"].as_u64().unwrap()
    );

    // One test thread, so the child's line lands between a test's name and its result;
    // colours on. The same cases with the same outcomes.
    let serial = cargo_test(
        &fixture.root,
        "serial.log",
        &[
            "--color",
            "always",
            "--",
            "--test-threads=1",
            "--color",
            "always",
        ],
    );
    assert!(
        std::fs::read_to_string(&serial)
            .unwrap()
            .contains("a_child_writes_to_the_real_stdout ... stray line from a child"),
        "the child's output is not between the name and the result"
    );
    let serial_out = fixture.path("serial.xml");
    let run = fixture.run(&[
        "junit",
        "libtest",
        serial.to_str().unwrap(),
        "-o",
        serial_out.to_str().unwrap(),
    ]);
    assert_code(&run, exit_codes::OK);
    let kinds =
        |o: &BTreeMap<String, (String, Option<String>, Option<String>)>| -> Vec<(String, String)> {
            o.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()
        };
    assert_eq!(
        kinds(&outcomes_of(&serial_out)),
        kinds(&outcomes),
        "one test thread and colours give the same cases"
    );
}

fn outcomes_of(path: &Path) -> BTreeMap<String, (String, Option<String>, Option<String>)> {
    outcomes(&junit_consumers(&[path.to_path_buf()]))
}

/// A log with no test binary in it (a build that failed, or stdout without stderr) and a
/// log that is not there are usage errors naming the file; nothing is written.
#[test]
fn a_log_without_test_binaries_is_an_error_naming_it() {
    let fixture = demo("junit_libtest_bad");
    fixture.edit("src/lib.rs", "pub fn add", "pub fn add(");
    let log = fixture.path("build.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(env!("CARGO"))
        .args(["test", "--offline"])
        .current_dir(&fixture.root)
        .env("CARGO_TARGET_DIR", fixture.path("target"))
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let status = common::wait_with_deadline(&mut child).unwrap();
    assert!(!status.success());
    let out = fixture.path("out.xml");
    for (input, says) in [
        (log.clone(), "could not compile"),
        (fixture.path("nowhere.log"), "cannot read"),
    ] {
        let run = fixture.run(&[
            "junit",
            "libtest",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_code(&run, exit_codes::USAGE_ERROR);
        assert!(
            run.stderr.contains(input.to_str().unwrap()) && run.stderr.contains(says),
            "{}",
            run.stderr
        );
        assert!(!out.exists());
    }
}
