//! `cargo xtask junit libtest LOG... -o OUT`: a JUnit report from what `cargo test` printed
//! (libtest's default, "pretty" output, stdout and stderr together: `cargo test
//! --no-fail-fast 2>&1 | tee LOG`), so a pipeline publishes the Rust tests beside the
//! suites without installing a second test runner.
//!
//! The log is read line by line:
//! - `Running <source> (<executable>)` and `Doc-tests <crate>` start a test binary: one
//!   `<testsuite>` each, named `<target> (<source>)` (`xtask (unittests src/lib.rs)`,
//!   `github (tests/github.rs)`, `xtask_data (doc-tests)`), its time the summary's
//!   `finished in`;
//! - `test <name> ... ok|FAILED|ignored[, <reason>]` is a case (classname the target and
//!   the module path, name the function; a doc test keeps its whole name), also when the
//!   result arrives on a line of its own after a test's stray output (one test thread);
//! - a `---- <name> stdout ----` block is that test's output: the failure's text (its
//!   message the panic's), or a passing test's `system-out` (`--show-output`);
//! - `failures:` lists the failed tests again: one whose result line was lost in other
//!   output is still a failure;
//! - a binary that ends without its `test result:` line (it crashed: a signal, an abort)
//!   gets an error case, `(test binary)`, with cargo's `error:`/`Caused by:` lines;
//! - counts that disagree with the summary's are a warning naming the binary.
//!
//! Text keeps every character: ANSI colours dropped, control characters shown as their
//! Unicode pictures (`crate::text::readable`), as in every report the xtask writes.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::error::Error;
use crate::junit_xml::write::xml_text;

/// The name of the case standing for a test binary that ended without its summary.
pub const CRASHED_CASE: &str = "(test binary)";

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Passed,
    Failed,
    Ignored(Option<String>),
}

#[derive(Debug)]
struct Case {
    name: String,
    outcome: Outcome,
    time: Option<Duration>,
}

#[derive(Debug, Default)]
struct Binary {
    /// `xtask`, `github`, or a crate's name for its doc tests.
    target: String,
    /// `unittests src/lib.rs`, `tests/github.rs` or `doc-tests`.
    source: String,
    /// The executable's hash, to tell apart two binaries named alike.
    hash: String,
    doc: bool,
    cases: Vec<Case>,
    /// Each test's `---- name stdout ----` block, by name.
    output: Vec<(String, String)>,
    /// The names under the last `failures:` list.
    listed_failures: Vec<String>,
    /// `test result:`: the summary's passed, failed and ignored counts, and its time.
    summary: Option<(usize, usize, usize, Duration)>,
    /// cargo's lines after a binary ended badly (`error: test failed`, `Caused by:`).
    cargo_error: Vec<String>,
    /// `running N tests`.
    running: Option<usize>,
}

/// Where the parser is within a binary's output.
#[derive(Debug, PartialEq)]
enum Within {
    Results,
    /// A `---- name stdout ----` block.
    Block,
    /// The names (or blocks) after `failures:` (true) or `successes:` (false).
    List(bool),
    /// cargo's error about the binary, and its `Caused by:` lines.
    CargoError,
}

pub fn convert(args: &crate::flags::JunitLibtestArgs) -> anyhow::Result<()> {
    let mut binaries = Vec::new();
    for path in &args.logs {
        let bytes = std::fs::read(path).map_err(|err| {
            Error::Usage(format!(
                "cannot read the cargo test log {}: {err}; give the file `cargo test 2>&1 | tee FILE` wrote",
                path.display()
            ))
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let parsed = parse(&text);
        if parsed.is_empty() {
            let why = if text.contains("error: could not compile") {
                " (cargo says `error: could not compile`: the tests were never built)"
            } else {
                ""
            };
            return Err(Error::Usage(format!(
                "{} holds no test binary's output: no `Running ...` or `Doc-tests ...` line{why}; \
                 give the output of `cargo test`, stderr included (`cargo test 2>&1 | tee FILE`)",
                path.display()
            ))
            .into());
        }
        for binary in &parsed {
            if let Some(warning) = disagreement(binary) {
                eprintln!("xtask: warning: {}: {warning}", path.display());
            }
        }
        binaries.extend(parsed);
    }
    let report = report(&binaries);
    let bytes = crate::junit_xml::write::to_bytes(&report)
        .with_context(|| format!("serializing {}", args.output.display()))?;
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    crate::paths::write_atomically(&args.output, &bytes)?;
    let cases: usize = report.test_suites.iter().map(|s| s.test_cases.len()).sum();
    let failed: usize = report
        .test_suites
        .iter()
        .map(|s| s.failures + s.errors)
        .sum();
    println!(
        "xtask: wrote {} with {} test binaries, {cases} test cases ({failed} failed) from {}",
        args.output.display(),
        report.test_suites.len(),
        args.logs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// The test binaries of one log, in the order they ran.
fn parse(text: &str) -> Vec<Binary> {
    let mut binaries: Vec<Binary> = Vec::new();
    let mut within = Within::Results;
    // A test whose name was printed and whose result has not come yet (one test thread).
    let mut pending: Option<String> = None;
    for raw in text.split('\n') {
        // Colours (`--color always`: CSI and charset sequences) dropped, other control
        // characters shown, as in every report the xtask writes.
        let line = crate::text::readable(raw.strip_suffix('\r').unwrap_or(raw));
        let trimmed = line.trim();
        if let Some(binary) = start_of_binary(trimmed) {
            binaries.push(binary);
            within = Within::Results;
            pending = None;
            continue;
        }
        let Some(binary) = binaries.last_mut() else {
            continue;
        };
        // Within a block every line is the test's (it may print what looks like libtest's
        // lines): a block ends at the next block or at the `failures:` list.
        if within == Within::Block {
            if let Some(name) = block_header(&line) {
                binary.output.push((name, String::new()));
                continue;
            }
            if line == "failures:" || line == "successes:" {
                within = Within::List(line == "failures:");
                continue;
            }
            let block = &mut binary.output.last_mut().expect("a block was opened").1;
            block.push_str(&line);
            block.push('\n');
            continue;
        }
        if let Some(summary) = summary(&line) {
            binary.summary = Some(summary);
            within = Within::Results;
            continue;
        }
        if binary.summary.is_none() && (line.starts_with("error: ") || line == "Caused by:") {
            within = Within::CargoError;
        }
        if within == Within::CargoError {
            if !trimmed.is_empty() {
                binary.cargo_error.push(trimmed.to_string());
            }
            continue;
        }
        if let Some(name) = block_header(&line) {
            binary.output.push((name, String::new()));
            within = Within::Block;
            continue;
        }
        if let Within::List(failures) = within {
            match line.strip_prefix("    ") {
                Some(name) if !name.trim().is_empty() => {
                    if failures {
                        binary.listed_failures.push(name.trim_end().to_string());
                    }
                    continue;
                }
                _ if line.is_empty() => continue,
                _ => within = Within::Results,
            }
        }
        if let Some(count) = line
            .strip_prefix("running ")
            .and_then(|rest| rest.strip_suffix(" tests").or(rest.strip_suffix(" test")))
            .and_then(|n| n.parse().ok())
        {
            binary.running = Some(count);
            continue;
        }
        if line == "failures:" || line == "successes:" {
            within = Within::List(line == "failures:");
            continue;
        }
        if let Some(case) = test_line(&line, binary.doc) {
            pending = None;
            binary.cases.push(case);
            continue;
        }
        if let Some(name) = line.strip_prefix("test ").and_then(|rest| {
            let rest = rest.trim_end();
            rest.strip_suffix(" ...")
                .or_else(|| rest.split_once(" ... ").map(|(name, _)| name))
        }) {
            // `test name ... ` and no result (one test thread): the test's own output
            // follows, then the result on a line of its own.
            pending = Some(name.to_string());
            continue;
        }
        if let Some(name) = &pending {
            if let Some((outcome, time)) = result(trimmed) {
                binary.cases.push(Case {
                    name: test_name(name, binary.doc),
                    outcome,
                    time,
                });
                pending = None;
            }
        }
    }
    binaries
}

/// `Running unittests src/lib.rs (target/debug/deps/xtask-0123abcd)` or `Doc-tests xtask`.
fn start_of_binary(line: &str) -> Option<Binary> {
    if let Some(krate) = line.strip_prefix("Doc-tests ") {
        let krate = krate.trim();
        if !krate.is_empty() && !krate.contains(' ') {
            return Some(Binary {
                target: krate.to_string(),
                source: "doc-tests".to_string(),
                doc: true,
                ..Binary::default()
            });
        }
        return None;
    }
    let rest = line.strip_prefix("Running ")?;
    let open = rest.rfind(" (")?;
    let (source, executable) = (&rest[..open], rest[open + 2..].strip_suffix(')')?);
    let stem = Path::new(executable)
        .file_stem()?
        .to_string_lossy()
        .to_string();
    // cargo names a test executable `<target>-<16 hex digits>`.
    let (target, hash) = match stem.rsplit_once('-') {
        Some((target, hash))
            if !target.is_empty()
                && hash.len() == 16
                && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            (target.to_string(), hash.to_string())
        }
        _ => (stem.clone(), String::new()),
    };
    Some(Binary {
        target,
        source: source.to_string(),
        hash,
        ..Binary::default()
    })
}

/// `test result: FAILED. 3 passed; 2 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.08s`.
fn summary(line: &str) -> Option<(usize, usize, usize, Duration)> {
    let rest = line.strip_prefix("test result: ")?;
    let (_, counts) = rest.split_once(". ")?;
    let mut passed = None;
    let mut failed = None;
    let mut ignored = None;
    let mut time = Duration::ZERO;
    for part in counts.split("; ") {
        if let Some(secs) = part.strip_prefix("finished in ") {
            time = secs
                .strip_suffix('s')
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .unwrap_or_default();
            continue;
        }
        let Some((n, what)) = part.split_once(' ') else {
            continue;
        };
        let n = n.parse().ok();
        match what {
            "passed" => passed = n,
            "failed" => failed = n,
            "ignored" => ignored = n,
            _ => {}
        }
    }
    Some((passed?, failed?, ignored?, time))
}

/// `---- tests::fails stdout ----`: the test's name.
fn block_header(line: &str) -> Option<String> {
    let name = line.strip_prefix("---- ")?.strip_suffix(" stdout ----")?;
    Some(name.to_string())
}

/// `test tests::passes ... ok` and its kin; `None` for any other line.
fn test_line(line: &str, doc: bool) -> Option<Case> {
    let rest = line.strip_prefix("test ")?;
    let at = rest.rfind(" ... ")?;
    let (name, result_text) = (&rest[..at], &rest[at + 5..]);
    let (outcome, time) = result(result_text)?;
    Some(Case {
        name: test_name(name, doc),
        outcome,
        time,
    })
}

/// `ok`, `FAILED`, `ignored`, `ignored, <reason>`, `bench: ...`, each maybe with a
/// `<0.003s>` time (`--report-time`).
fn result(text: &str) -> Option<(Outcome, Option<Duration>)> {
    let (text, time) = match text.rsplit_once(" <") {
        Some((before, after)) if after.ends_with("s>") => {
            let secs = after.trim_end_matches('>').trim_end_matches('s');
            match secs.parse::<f64>() {
                Ok(secs) if secs.is_finite() && secs >= 0.0 => {
                    (before, Some(Duration::from_secs_f64(secs)))
                }
                _ => (text, None),
            }
        }
        _ => (text, None),
    };
    let outcome = match text {
        "ok" => Outcome::Passed,
        "FAILED" => Outcome::Failed,
        "ignored" => Outcome::Ignored(None),
        _ => {
            if let Some(reason) = text.strip_prefix("ignored, ") {
                Outcome::Ignored(Some(reason.to_string()))
            } else if text.starts_with("bench: ") {
                Outcome::Passed
            } else {
                return None;
            }
        }
    };
    Some((outcome, time))
}

/// The test's own name: libtest adds ` - should panic` to the result line only.
fn test_name(name: &str, doc: bool) -> String {
    let name = if doc {
        name
    } else {
        name.strip_suffix(" - should panic").unwrap_or(name)
    };
    name.to_string()
}

/// What the binary's summary says and its test lines do not.
fn disagreement(binary: &Binary) -> Option<String> {
    let (passed, failed, ignored, _) = binary.summary?;
    let count = |f: fn(&Outcome) -> bool| binary.cases.iter().filter(|c| f(&c.outcome)).count();
    let seen = (
        count(|o| *o == Outcome::Passed),
        count(|o| *o == Outcome::Failed),
        count(|o| matches!(o, Outcome::Ignored(_))),
    );
    let failed_seen = seen.1.max(binary.listed_failures.len());
    (seen.0 != passed || failed_seen != failed || seen.2 != ignored).then(|| {
        format!(
            "{}: its summary counts {passed} passed, {failed} failed, {ignored} ignored; \
             the log's test lines give {}, {failed_seen}, {} (was other output written \
             into cargo test's?)",
            suite_name(binary),
            seen.0,
            seen.2
        )
    })
}

fn suite_name(binary: &Binary) -> String {
    format!("{} ({})", binary.target, binary.source)
}

/// The report: a `<testsuite>` per binary, two binaries named alike told apart by their
/// executables' hashes.
fn report(binaries: &[Binary]) -> Report {
    let mut report = Report::new("cargo test");
    let mut total = Duration::ZERO;
    for binary in binaries {
        let mut name = suite_name(binary);
        let alike = binaries.iter().filter(|b| suite_name(b) == name).count();
        if alike > 1 && !binary.hash.is_empty() {
            name = format!("{} ({}, {})", binary.target, binary.source, binary.hash);
        }
        let suite = suite(binary, name);
        total += suite.time.unwrap_or_default();
        report.add_test_suite(suite);
    }
    report.set_time(total);
    report
}

fn suite(binary: &Binary, name: String) -> TestSuite {
    let mut suite = TestSuite::new(name);
    let output = |name: &str| {
        binary
            .output
            .iter()
            .find(|(n, _)| n == name || n.strip_suffix(" - should panic") == Some(name))
            .map(|(_, text)| text.trim_matches('\n'))
    };
    let mut cases = Vec::new();
    let mut named: Vec<&str> = Vec::new();
    for case in &binary.cases {
        named.push(&case.name);
        cases.push(test_case(
            binary,
            &case.name,
            &case.outcome,
            case.time,
            output(&case.name),
        ));
    }
    // A failure the `failures:` list names whose result line was lost.
    for name in &binary.listed_failures {
        let name = test_name(name, binary.doc);
        if !named.contains(&name.as_str()) {
            cases.push(test_case(
                binary,
                &name,
                &Outcome::Failed,
                None,
                output(&name),
            ));
        }
    }
    if binary.summary.is_none() {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_type("crashed");
        let reported = binary.cases.len();
        let message = match binary.running {
            Some(running) => format!(
                "the test binary ended without its summary: {running} {} to run, \
                 {reported} reported a result",
                if running == 1 {
                    "test was"
                } else {
                    "tests were"
                }
            ),
            None => "the test binary ended without its summary".to_string(),
        };
        status.set_message(xml_text(&message));
        if !binary.cargo_error.is_empty() {
            status.set_description(xml_text(&binary.cargo_error.join("\n")));
        }
        let mut case = TestCase::new(CRASHED_CASE, status);
        case.set_classname(binary.target.as_str());
        cases.push(case);
    }
    suite.add_test_cases(cases);
    suite.set_time(binary.summary.map(|s| s.3).unwrap_or_default());
    suite
}

fn test_case(
    binary: &Binary,
    name: &str,
    outcome: &Outcome,
    time: Option<Duration>,
    output: Option<&str>,
) -> TestCase {
    let status = match outcome {
        Outcome::Passed => TestCaseStatus::success(),
        Outcome::Ignored(reason) => {
            let mut status = TestCaseStatus::skipped();
            status.set_type("ignored");
            if let Some(reason) = reason {
                status.set_message(xml_text(reason));
            }
            status
        }
        Outcome::Failed => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let text = output.unwrap_or("");
            let (ty, message) = match panic_message(text) {
                Some(message) => ("panic", message),
                None => (
                    "failure",
                    text.lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("failed (the log holds no output of this test)")
                        .to_string(),
                ),
            };
            status.set_type(ty);
            status.set_message(xml_text(&message));
            if !text.is_empty() {
                status.set_description(xml_text(text));
            }
            status
        }
    };
    // `module::path::function`: the classname is the target and the module path.
    let (classname, short) = match name.rsplit_once("::") {
        Some((path, short)) if !binary.doc => (format!("{}::{path}", binary.target), short),
        _ => (binary.target.clone(), name),
    };
    let mut case = TestCase::new(short, status);
    case.set_classname(classname);
    if let Some(time) = time {
        case.set_time(time);
    }
    if let (Outcome::Passed, Some(text)) = (outcome, output) {
        case.system_out = Some(xml_text(text));
    }
    case
}

/// The message of the first panic in a test's output: the lines after `thread '...'
/// panicked at FILE:LINE:COL:` up to the backtrace's note.
fn panic_message(text: &str) -> Option<String> {
    let mut lines = text.lines();
    lines.by_ref().position(|l| l.contains(" panicked at "))?;
    let message: Vec<&str> = lines
        .take_while(|l| {
            !l.starts_with("stack backtrace:")
                && !l.starts_with("note: run with `RUST_BACKTRACE")
                && !l.starts_with("note: Some details are omitted")
        })
        .collect();
    let message = message.join("\n");
    let message = message.trim_matches('\n');
    (!message.is_empty()).then(|| message.to_string())
}

/// For tests: the cases of a log, as (suite, classname, name, kind).
#[cfg(test)]
fn cases_of(text: &str) -> Vec<(String, String, String, String)> {
    let report = report(&parse(text));
    report
        .test_suites
        .iter()
        .flat_map(|s| {
            s.test_cases.iter().map(move |c| {
                let kind = match &c.status {
                    TestCaseStatus::Success { .. } => "passed".to_string(),
                    TestCaseStatus::NonSuccess { kind, .. } => format!("{kind:?}"),
                    TestCaseStatus::Skipped { .. } => "skipped".to_string(),
                };
                (
                    s.name.to_string(),
                    c.classname
                        .as_ref()
                        .map(|c| c.to_string())
                        .unwrap_or_default(),
                    c.name.to_string(),
                    kind,
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_after_a_tests_stray_output_and_a_lost_one_are_both_read() {
        let log = "     Running unittests src/lib.rs (target/debug/deps/demo-0123456789abcdef)\n\
                   \n\
                   running 3 tests\n\
                   test a::one ... child output\n\
                   ok\n\
                   garbage test a::two ... FAILED\n\
                   test a::three - should panic ... ok\n\
                   \n\
                   failures:\n\
                   \n\
                   ---- a::two stdout ----\n\
                   thread 'a::two' (1) panicked at src/lib.rs:1:1:\n\
                   boom\n\
                   \n\
                   \n\
                   failures:\n\
                   \x20   a::two\n\
                   \n\
                   test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s\n";
        assert_eq!(
            cases_of(log),
            [
                ("demo (unittests src/lib.rs)", "demo::a", "one", "passed"),
                ("demo (unittests src/lib.rs)", "demo::a", "three", "passed"),
                ("demo (unittests src/lib.rs)", "demo::a", "two", "Failure"),
            ]
            .map(|(a, b, c, d)| (a.into(), b.into(), c.into(), d.into()))
        );
        assert!(disagreement(&parse(log)[0]).is_none());
    }

    #[test]
    fn colours_are_dropped_and_the_summary_time_is_the_suites() {
        let log = "\x1b[1m\x1b[92m     Running\x1b[0m tests/it.rs (target/debug/deps/it-0123456789abcdef)\n\
                   test x ... \x1b[32mok\x1b[0m\n\
                   test result: \x1b[32mok\x1b[0m. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.50s\n";
        let binaries = parse(log);
        assert_eq!(binaries.len(), 1);
        assert_eq!(binaries[0].target, "it");
        assert_eq!(binaries[0].cases.len(), 1);
        assert_eq!(
            binaries[0].summary,
            Some((1, 0, 0, Duration::from_millis(1500)))
        );
    }

    /// `--show-output`: the passing tests' blocks under `successes:` are their output,
    /// and the names listed there are no failures.
    #[test]
    fn a_passing_tests_shown_output_is_its_system_out() {
        let log = "     Running tests/it.rs (target/debug/deps/it-0123456789abcdef)\n\
                   \n\
                   running 2 tests\n\
                   test loud ... ok\n\
                   test bad ... FAILED\n\
                   \n\
                   successes:\n\
                   \n\
                   ---- loud stdout ----\n\
                   said something\n\
                   \n\
                   \n\
                   successes:\n\
                   \x20   loud\n\
                   \n\
                   failures:\n\
                   \n\
                   ---- bad stdout ----\n\
                   not a panic\n\
                   \n\
                   \n\
                   failures:\n\
                   \x20   bad\n\
                   \n\
                   test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
        let binaries = parse(log);
        assert_eq!(binaries[0].listed_failures, ["bad"]);
        assert!(disagreement(&binaries[0]).is_none());
        let report = report(&binaries);
        let cases = &report.test_suites[0].test_cases;
        assert_eq!(
            cases[0].system_out.as_ref().map(|s| s.as_str()),
            Some("said something")
        );
        let TestCaseStatus::NonSuccess { message, ty, .. } = &cases[1].status else {
            panic!("{:?}", cases[1].status)
        };
        assert_eq!(message.as_ref().unwrap().as_str(), "not a panic");
        assert_eq!(ty.as_ref().unwrap().as_str(), "failure");
    }

    /// A binary that ends without its summary is an error case carrying cargo's lines;
    /// a summary that disagrees with the test lines is a warning naming the binary.
    #[test]
    fn a_crashed_binary_is_an_error_and_a_miscount_a_warning() {
        let log = "     Running tests/abort.rs (target/debug/deps/abort-0123456789abcdef)\n\
                   \n\
                   running 1 test\n\
                   error: test failed, to rerun pass `--test abort`\n\
                   \n\
                   Caused by:\n\
                   \x20 process didn't exit successfully: `x` (signal: 6, SIGABRT: process abort signal)\n\
                   \x20    Running tests/it.rs (target/debug/deps/it-0123456789abcdef)\n\
                   test a ... ok\n\
                   test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
        let binaries = parse(log);
        assert_eq!(binaries.len(), 2);
        let report = report(&binaries);
        let crashed = &report.test_suites[0].test_cases[0];
        assert_eq!(crashed.name.as_str(), CRASHED_CASE);
        let TestCaseStatus::NonSuccess {
            description,
            message,
            ..
        } = &crashed.status
        else {
            panic!()
        };
        assert!(message.as_ref().unwrap().contains("1 test was to run"));
        assert!(description.as_ref().unwrap().contains("SIGABRT"));
        let warning = disagreement(&binaries[1]).unwrap();
        assert!(warning.starts_with("it (tests/it.rs): "), "{warning}");
    }

    /// Two packages' `tests/cli.rs` print the same `Running` line but for the executable:
    /// their suites are told apart by its hash.
    #[test]
    fn binaries_named_alike_are_told_apart_by_their_hashes() {
        let log = "     Running tests/cli.rs (target/debug/deps/cli-0123456789abcdef)\n\
                   test a ... ok\n\
                   test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\
                   \x20    Running tests/cli.rs (target/debug/deps/cli-fedcba9876543210)\n\
                   test a ... ok\n\
                   test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
        let names: Vec<String> = report(&parse(log))
            .test_suites
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "cli (tests/cli.rs, 0123456789abcdef)",
                "cli (tests/cli.rs, fedcba9876543210)"
            ]
        );
    }
}
