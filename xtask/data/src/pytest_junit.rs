//! Reading pytest's own `--junitxml` output into the model.
//!
//! quick-junit's deserializer rejects real pytest output (several status elements in one
//! test case, a bare `<testsuite>` root, timestamps without an offset), so the crate's one
//! JUnit reader ([`crate::junit_xml::read`], streaming, in bounded memory: a test that
//! printed 500 MB is cut to its head and tail as it is read) hands each `<testcase>` over,
//! and this module takes what consumers need and fixes what pytest gets wrong for them:
//! `line` is 0-based in pytest and 1-based for every consumer, and `file` is relative to
//! the suite's directory where consumers want it relative to the repository root.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::junit_xml::read::{self, Element, Item};
use crate::model::{Attempt, CaseStatus, TestCase};
use crate::text::readable;

/// The test cases of the pytest report at `path`, with `file` rebased onto `suite_dir`
/// (relative to the repository root) and `clean` applied to every text value once it is
/// plain text (names, file, messages, output, properties): the caller's secret masker.
pub fn parse_file(
    path: &Path,
    suite_dir: &str,
    clean: &dyn Fn(&str) -> String,
) -> anyhow::Result<Vec<TestCase>> {
    let mut cases = Cases::new(suite_dir, clean);
    read::read_file(path, read::PYTEST, &mut |item| cases.take(item))
        .with_context(|| format!("reading pytest's report {}", path.display()))?;
    Ok(cases.finish())
}

/// [`parse_file`] for a report in memory.
pub fn parse(
    xml: &str,
    suite_dir: &str,
    clean: &dyn Fn(&str) -> String,
) -> anyhow::Result<Vec<TestCase>> {
    let mut cases = Cases::new(suite_dir, clean);
    read::read(xml.as_bytes(), read::PYTEST, &mut |item| cases.take(item))?;
    Ok(cases.finish())
}

/// The cases read so far.
struct Cases<'a> {
    suite_dir: &'a str,
    clean: &'a dyn Fn(&str) -> String,
    cases: Vec<TestCase>,
    /// The last case read, held back until the next one shows it is not the same test.
    held: Option<CaseBuilder>,
}

impl<'a> Cases<'a> {
    fn new(suite_dir: &'a str, clean: &'a dyn Fn(&str) -> String) -> Cases<'a> {
        Cases {
            suite_dir,
            clean,
            cases: Vec::new(),
            held: None,
        }
    }

    fn take(&mut self, item: Item) -> anyhow::Result<()> {
        if let Item::Child(element) = item {
            if element.name == "testcase" {
                let builder = CaseBuilder::new(element);
                if let Some(done) = merge_or_hold(&mut self.held, builder) {
                    self.cases.extend(done.finish(self.suite_dir, self.clean));
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Vec<TestCase> {
        if let Some(done) = self.held.take() {
            self.cases.extend(done.finish(self.suite_dir, self.clean));
        }
        self.cases
    }
}

/// Holds `builder` back and returns the case held before it, unless both are the same test:
/// then they are merged into one. pytest writes a second `<testcase>` with the same
/// classname and name for a test that failed and then errored in its teardown; every
/// consumer would count two runs of it, and some keep only one of the two statuses.
fn merge_or_hold(held: &mut Option<CaseBuilder>, builder: CaseBuilder) -> Option<CaseBuilder> {
    match held {
        Some(previous) if previous.same_test(&builder) => {
            previous.absorb(builder);
            None
        }
        _ => held.replace(builder),
    }
}

/// One status element as pytest wrote it: text not yet made readable or cleaned.
struct Status {
    status: CaseStatus,
    element: &'static str,
    message: Option<String>,
    ty: Option<String>,
    text: String,
}

impl Status {
    /// Error outranks failure outranks skipped: pytest adds an `<error>` to a test that
    /// failed or was skipped when its teardown errors, and the error is the news.
    fn rank(&self) -> u8 {
        match self.status {
            CaseStatus::Error => 0,
            CaseStatus::Failed => 1,
            _ => 2,
        }
    }
}

/// A `<testcase>` as pytest wrote it, until its end.
struct CaseBuilder {
    name: String,
    classname: Option<String>,
    time: Option<Duration>,
    file: Option<String>,
    line: Option<u64>,
    statuses: Vec<Status>,
    properties: Vec<(String, String)>,
    system_out: String,
    system_err: String,
}

impl CaseBuilder {
    fn new(element: Element) -> CaseBuilder {
        // pytest's line is 0-based; consumers read 1-based lines.
        let line = element
            .attr("line")
            .and_then(|l| l.parse::<u64>().ok())
            .map(|l| l + 1);
        let mut case = CaseBuilder {
            name: element.attr("name").unwrap_or_default().to_string(),
            classname: element.attr("classname").map(str::to_string),
            time: element.attr("time").and_then(read::seconds),
            file: element.attr("file").map(str::to_string),
            line,
            statuses: Vec::new(),
            properties: Vec::new(),
            system_out: String::new(),
            system_err: String::new(),
        };
        for child in element.children {
            case.child(child);
        }
        case
    }

    /// Whether `other` is another `<testcase>` of the same test (a nameless one never is).
    fn same_test(&self, other: &CaseBuilder) -> bool {
        !self.name.is_empty() && self.name == other.name && self.classname == other.classname
    }

    /// Takes in another `<testcase>` of the same test: its statuses (the most severe wins
    /// in [`CaseBuilder::finish`], the others are quoted), its output after this one's, its
    /// time added to this one's.
    fn absorb(&mut self, other: CaseBuilder) {
        self.statuses.extend(other.statuses);
        for property in other.properties {
            if !self.properties.contains(&property) {
                self.properties.push(property);
            }
        }
        self.system_out.push_str(&other.system_out);
        self.system_err.push_str(&other.system_err);
        self.time = match (self.time, other.time) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.file = self.file.take().or(other.file);
        self.line = self.line.or(other.line);
    }

    /// Takes in a child element of `<testcase>`.
    fn child(&mut self, mut element: Element) {
        let status = match element.name.as_str() {
            "failure" => (CaseStatus::Failed, "failure"),
            "error" => (CaseStatus::Error, "error"),
            "skipped" => (CaseStatus::Skipped, "skipped"),
            "system-out" => return self.system_out.push_str(element.text()),
            "system-err" => return self.system_err.push_str(element.text()),
            "properties" => {
                for property in element.children_named("property") {
                    let key = property.attr("name").unwrap_or_default();
                    let value = property.attr("value").unwrap_or_default();
                    self.properties.push((key.to_string(), value.to_string()));
                }
                return;
            }
            _ => return,
        };
        self.statuses.push(Status {
            status: status.0,
            element: status.1,
            message: element.attr("message").map(str::to_string),
            ty: element.attr("type").map(str::to_string),
            text: element.text.take().unwrap_or_default(),
        });
    }

    /// The test case; `None` for the nameless `<testcase time="0.000"/>` pytest writes for
    /// the test that was running when it was interrupted, which names no test.
    fn finish(mut self, suite_dir: &str, clean: &dyn Fn(&str) -> String) -> Option<TestCase> {
        if self.name.is_empty() && self.classname.as_deref().unwrap_or("").is_empty() {
            return None;
        }
        let plain = |text: &str| clean(&readable(text));
        self.statuses.sort_by_key(Status::rank);
        let mut statuses = self.statuses.into_iter();
        let mut attempt = match statuses.next() {
            None => Attempt::new(CaseStatus::Passed),
            Some(first) => {
                let mut attempt = Attempt::new(first.status);
                let mut details = plain(&first.text);
                for other in statuses {
                    details.push_str(&format!(
                        "\n\n[pytest also reported <{}> for this test: {}]\n{}",
                        other.element,
                        plain(other.message.as_deref().unwrap_or("")),
                        plain(&other.text)
                    ));
                }
                attempt.message = first.message.as_deref().map(plain);
                attempt.kind = first.ty.as_deref().map(plain);
                attempt.details = (!details.trim().is_empty()).then_some(details);
                attempt
            }
        };
        attempt.time = self.time;
        attempt.stdout = captured(&readable(&self.system_out)).map(|out| clean(&out));
        attempt.stderr = captured(&readable(&self.system_err)).map(|err| clean(&err));
        // A collection error has an empty classname and the module as its name: consumers
        // need a classname, and the module is the best one.
        let classname = match self.classname.filter(|c| !c.is_empty()) {
            Some(classname) => plain(&classname),
            None => plain(&self.name),
        };
        let mut case = TestCase::new(classname, plain(&self.name), attempt);
        case.line = self.line;
        if case.line.is_none() && case.is_collection_error() {
            // pytest gives a module it could not import no line; its traceback has one.
            case.line = self.file.as_deref().and_then(|file| {
                line_in_traceback(case.result().details.as_deref().unwrap_or(""), file)
            });
        }
        case.file = self.file.map(|file| plain(&rebase(suite_dir, &file)));
        case.properties = self
            .properties
            .iter()
            .map(|(name, value)| (plain(name), plain(value)))
            .collect();
        Some(case)
    }
}

/// The 1-based line of `file` (as pytest names it, relative to its rootdir) that a
/// traceback reaches last: pytest's frames (`tests/test_x.py:4: in <module>`) or Python's
/// (`File "/abs/tests/test_x.py", line 5`, as a `SyntaxError` is shown).
fn line_in_traceback(traceback: &str, file: &str) -> Option<u64> {
    let file = file.strip_prefix("./").unwrap_or(file);
    let is_file = |path: &str| {
        let path = path.strip_prefix("./").unwrap_or(path);
        path == file
            || path
                .strip_suffix(file)
                .is_some_and(|dir| dir.ends_with('/'))
    };
    let number = |digits: &str| {
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        digits[..end].parse::<u64>().ok().filter(|n| *n > 0)
    };
    let mut found = None;
    for line in traceback.lines() {
        // pytest's frame: `path:N: in name` or `path:N: Error`.
        if let Some(at) = line.find(": ") {
            if let Some((path, digits)) = line[..at].rsplit_once(':') {
                if is_file(path) && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                {
                    found = number(digits).or(found);
                    continue;
                }
            }
        }
        // Python's frame: `File "path", line N`.
        if let Some(start) = line.find("File \"") {
            let rest = &line[start + 6..];
            if let Some((path, after)) = rest.split_once("\", line ") {
                if is_file(path) {
                    found = number(after).or(found);
                }
            }
        }
    }
    found
}

/// pytest's captured output without the sections that captured nothing: with
/// `junit_logging=all` it writes a "Captured Log/Out/Err" header for every test.
fn captured(text: &str) -> Option<String> {
    let is_header = |line: &str| {
        let title = line.trim().trim_matches('-').trim();
        line.starts_with("---") && title.starts_with("Captured ")
    };
    let mut kept = String::new();
    let mut section = String::new();
    let flush = |section: &mut String, kept: &mut String| {
        let body_has_text = section.lines().skip(1).any(|l| !l.trim().is_empty());
        let headerless = !section.lines().next().is_some_and(is_header);
        if body_has_text || (headerless && !section.trim().is_empty()) {
            kept.push_str(section);
        }
        section.clear();
    };
    for line in text.split_inclusive('\n') {
        if is_header(line) {
            flush(&mut section, &mut kept);
        }
        section.push_str(line);
    }
    flush(&mut section, &mut kept);
    (!kept.trim().is_empty()).then_some(kept)
}

/// `tests/test_x.py` in `shared/guardrail` becomes `shared/guardrail/tests/test_x.py`.
pub fn rebase(suite_dir: &str, file: &str) -> String {
    let file = file.strip_prefix("./").unwrap_or(file);
    let dir = suite_dir.trim_end_matches('/');
    if dir.is_empty() || dir == "." || file.starts_with('/') {
        file.to_string()
    } else {
        format!("{dir}/{file}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit_xml::read::{split_at_marker, PYTEST, SLACK};
    use std::fs::File;
    use std::io::{self, Write};

    /// Real pytest 9.2 output for `tests/data/pytest-9.2-outcomes.py`.
    const OUTCOMES: &str = include_str!("../../tests/data/pytest-9.2-outcomes.xml");
    const COLLECTION_ERROR: &str = include_str!("../../tests/data/pytest-9.2-collection-error.xml");

    fn same(text: &str) -> String {
        text.to_string()
    }

    fn parse_plain(xml: &str, suite_dir: &str) -> anyhow::Result<Vec<TestCase>> {
        parse(xml, suite_dir, &same)
    }

    fn parse_outcomes() -> Vec<TestCase> {
        parse_plain(OUTCOMES, "pkg").unwrap()
    }

    fn named<'a>(cases: &'a [TestCase], name: &str) -> &'a TestCase {
        cases.iter().find(|c| c.name == name).unwrap()
    }

    /// A file of this test process, removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(name: &str, contents: &[u8]) -> TempFile {
            let path = std::env::temp_dir()
                .join(format!("xtask-pytest-junit-{}-{name}", std::process::id()));
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn every_test_case_is_kept_with_its_location_rebased_and_one_based() {
        let cases = parse_outcomes();
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "test_passes",
                "test_fails",
                "test_skipped",
                "test_skip_then_teardown_error",
                "test_setup_error",
                "test_xfail"
            ]
        );
        let passes = named(&cases, "test_passes");
        assert_eq!(passes.classname, "tests.test_sample");
        assert_eq!(passes.file.as_deref(), Some("pkg/tests/test_sample.py"));
        // pytest wrote 16 for the `def` on line 17 of the source.
        assert_eq!(passes.line, Some(17));
        let source = include_str!("../../tests/data/pytest-9.2-outcomes.py");
        assert_eq!(
            source.lines().nth(16).unwrap(),
            "def test_passes(record_property):"
        );
        assert_eq!(passes.attempts.len(), 1);
        assert_eq!(passes.result().time, Some(Duration::from_millis(1)));
        assert!(!passes.synthetic);
    }

    #[test]
    fn output_and_properties_survive_with_entities_resolved() {
        let cases = parse_outcomes();
        let passes = named(&cases, "test_passes");
        assert_eq!(passes.status(), CaseStatus::Passed);
        let out = passes.result().stdout.as_deref().unwrap();
        assert!(
            // pytest escapes the colour codes as `#x1B[31m`; those are dropped too.
            out.contains("out: <tag> & \"quotes\" red café"),
            "{out}"
        );
        assert!(
            !out.contains("Captured Log"),
            "empty sections are dropped: {out}"
        );
        assert!(passes
            .result()
            .stderr
            .as_deref()
            .unwrap()
            .contains("err line"));
        assert_eq!(passes.properties, [("ticket".into(), "XT-1".into())]);
        // Tests that printed nothing carry no output at all.
        assert_eq!(named(&cases, "test_fails").result().stdout, None);
    }

    #[test]
    fn statuses_keep_message_type_and_text() {
        let cases = parse_outcomes();
        let fails = named(&cases, "test_fails").result();
        assert_eq!(fails.status, CaseStatus::Failed);
        assert_eq!(
            fails.message.as_deref(),
            Some("AssertionError: math & <logic>\nassert (1 + 1) == 3")
        );
        assert!(fails
            .details
            .as_deref()
            .unwrap()
            .contains("tests/test_sample.py:24: AssertionError"));

        let skipped = named(&cases, "test_skipped").result();
        assert_eq!(skipped.status, CaseStatus::Skipped);
        assert_eq!(
            (skipped.message.as_deref(), skipped.kind.as_deref()),
            (Some("not today"), Some("pytest.skip"))
        );
        assert_eq!(named(&cases, "test_xfail").status(), CaseStatus::Skipped);
        assert_eq!(
            named(&cases, "test_setup_error").status(),
            CaseStatus::Error
        );
    }

    #[test]
    fn a_skip_followed_by_a_teardown_error_is_one_error_that_mentions_the_skip() {
        let cases = parse_outcomes();
        let case = named(&cases, "test_skip_then_teardown_error");
        assert_eq!(case.attempts.len(), 1);
        let result = case.result();
        assert_eq!(
            result.status,
            CaseStatus::Error,
            "the teardown error should win"
        );
        assert!(result
            .message
            .as_deref()
            .unwrap()
            .contains("teardown broke"));
        assert!(result
            .details
            .as_deref()
            .unwrap()
            .contains("[pytest also reported <skipped> for this test: skipping]"));
    }

    /// Real pytest 9.2 output for `tests/data/pytest-9.2-fidelity.py`.
    const FIDELITY: &str = include_str!("../../tests/data/pytest-9.2-fidelity.xml");

    #[test]
    fn a_failure_then_a_teardown_error_is_one_case_with_both() {
        assert_eq!(
            FIDELITY
                .matches(r#"name="test_fail_then_teardown""#)
                .count(),
            2,
            "pytest writes two <testcase> elements"
        );
        let cases = parse_plain(FIDELITY, "pkg").unwrap();
        let names: Vec<_> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "test_fail_then_teardown",
                "test_param[1]",
                "test_param[2]",
                "test_skipped",
                "test_bell"
            ]
        );
        let case = &cases[0];
        assert_eq!(case.attempts.len(), 1);
        let result = case.result();
        assert_eq!(result.status, CaseStatus::Error, "the error outranks");
        assert!(result
            .message
            .as_deref()
            .unwrap()
            .contains("teardown broke"));
        let details = result.details.as_deref().unwrap();
        assert!(
            details.contains("[pytest also reported <failure> for this test: AssertionError: first line\n  second line"),
            "{details}"
        );
        assert!(
            details.contains("tests/test_x.py:10: AssertionError"),
            "{details}"
        );
        assert!(result.stdout.as_deref().unwrap().contains("hello out"));
        assert_eq!(case.time(), Some(Duration::from_millis(1)));
        assert_eq!(
            (case.file.as_deref(), case.line),
            (Some("pkg/tests/test_x.py"), Some(8))
        );
    }

    #[test]
    fn only_consecutive_cases_of_the_same_test_are_merged() {
        let xml = r#"<testsuite><testcase classname="a" name="t" time="0.5"/><testcase classname="b" name="t" time="0.5"/><testcase classname="a" name="t" time="0.5"><skipped message="why"/></testcase><testcase classname="a" name="t" time="0.25"><error message="boom">tb</error><system-out>out</system-out></testcase></testsuite>"#;
        let cases = parse_plain(xml, ".").unwrap();
        let seen: Vec<_> = cases
            .iter()
            .map(|c| (c.classname.as_str(), c.status()))
            .collect();
        assert_eq!(
            seen,
            [
                ("a", CaseStatus::Passed),
                ("b", CaseStatus::Passed),
                ("a", CaseStatus::Error)
            ]
        );
        let last = cases[2].result();
        assert_eq!(cases[2].time(), Some(Duration::from_millis(750)));
        assert_eq!(last.stdout.as_deref(), Some("out"));
        assert!(last
            .details
            .as_deref()
            .unwrap()
            .contains("[pytest also reported <skipped> for this test: why]"));
    }

    #[test]
    fn collection_errors_are_kept_with_the_line_their_traceback_names() {
        let cases = parse_plain(COLLECTION_ERROR, "pkg").unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].name, "tests.test_collect");
        assert_eq!(cases[0].file.as_deref(), Some("pkg/tests/test_collect.py"));
        // `tests/test_collect.py:1: in <module>`, below frames of importlib.
        assert_eq!(cases[0].line, Some(1));
        let result = cases[0].result();
        assert_eq!(result.status, CaseStatus::Error);
        assert_eq!(result.message.as_deref(), Some("collection failure"));
        assert!(result
            .details
            .as_deref()
            .unwrap()
            .contains("No module named 'not_a_module_anywhere'"));
        assert!(cases[0].is_collection_error());
    }

    #[test]
    fn a_collection_errors_line_is_the_last_frame_in_its_own_file() {
        // Trimmed from pytest 9.2's report of a module with a syntax error on line 5.
        let syntax = "/venv/lib/python3.11/site-packages/_pytest/python.py:528: in importtestmodule\n    mod = import_path(\n/usr/lib/python3.11/ast.py:50: in parse\n    return compile(source, filename, mode, flags,\nE     File \"/tmp/pc/tests/test_syntax.py\", line 5\nE       def broken(:\nE                  ^\nE   SyntaxError: invalid syntax";
        assert_eq!(line_in_traceback(syntax, "tests/test_syntax.py"), Some(5));
        let raised = "tests/test_raises.py:4: in <module>\n    import helper\nhelper.py:2: in <module>\n    raise RuntimeError(\"x\")\nE   RuntimeError: x";
        assert_eq!(line_in_traceback(raised, "tests/test_raises.py"), Some(4));
        assert_eq!(line_in_traceback(raised, "./tests/test_raises.py"), Some(4));
        // Another file that merely ends the same is not this one.
        assert_eq!(
            line_in_traceback(
                "other_tests/test_raises.py:9: in <module>",
                "tests/test_raises.py"
            ),
            None
        );
        assert_eq!(
            line_in_traceback("no frames at all: 12", "tests/test_raises.py"),
            None
        );
    }

    #[test]
    fn an_interrupted_runs_nameless_case_is_dropped_and_empty_classnames_filled() {
        // What pytest 9.2 writes after a SIGINT, and for a collection error.
        let xml = r#"<testsuites><testsuite name="pytest"><testcase classname="test_h" name="test_ok" time="0.002"/><testcase time="0.000" /><testcase classname="" name="tests.test_x" time="0.000"><error message="collection failure">boom</error></testcase></testsuite></testsuites>"#;
        let cases = parse_plain(xml, ".").unwrap();
        let names: Vec<_> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["test_ok", "tests.test_x"]);
        assert_eq!(cases[1].classname, "tests.test_x");
    }

    #[test]
    fn a_bare_testsuite_root_and_self_closing_cases_are_read() {
        let xml = r#"<testsuite name="pytest" tests="2"><testcase classname="t" name="a" time="0.5"/><testcase classname="t" name="b" file="./t.py" line="0"></testcase></testsuite>"#;
        let cases = parse_plain(xml, ".").unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].time(), Some(Duration::from_millis(500)));
        assert_eq!(
            (cases[1].file.as_deref(), cases[1].line),
            (Some("t.py"), Some(1))
        );
    }

    #[test]
    fn malformed_xml_is_an_error_not_an_empty_report() {
        let err = parse_plain("<testsuites><testcase name=\"a\"></testsuites>", "pkg").unwrap_err();
        assert!(format!("{err:#}").contains("malformed"), "{err:#}");
    }

    #[test]
    fn a_report_cut_short_is_an_error_that_names_the_file() {
        // pytest killed while writing: in a text, in a tag, between elements, before anything.
        for end in [
            OUTCOMES.find("err line").unwrap(),
            OUTCOMES.find("name=\"test_fails\"").unwrap() + 3,
            OUTCOMES.find("<testcase").unwrap(),
            0,
        ] {
            let file = TempFile::new("cut-short.xml", &OUTCOMES.as_bytes()[..end]);
            let err = parse_file(&file.0, "pkg", &same).unwrap_err();
            let message = format!("{err:#}");
            assert!(message.contains(&*file.0.to_string_lossy()), "{message}");
            assert!(
                message.contains("cut short") || message.contains("malformed"),
                "{message}"
            );
        }
        let missing = std::env::temp_dir().join("xtask-pytest-junit-no-such-report.xml");
        let err = parse_file(&missing, "pkg", &same).unwrap_err();
        assert!(format!("{err:#}").contains("no-such-report.xml"), "{err:#}");
    }

    #[test]
    fn parse_file_reads_what_parse_reads() {
        let file = TempFile::new("outcomes.xml", OUTCOMES.as_bytes());
        assert_eq!(parse_file(&file.0, "pkg", &same).unwrap(), parse_outcomes());
    }

    #[test]
    fn clean_is_applied_to_plain_text_never_to_markup() {
        let mask = |text: &str| text.replace("test", "***").replace("&", "(and)");
        let cases = parse(OUTCOMES, "pkg", &mask).unwrap();
        assert_eq!(cases.len(), 6, "the markup (<testcase>) is untouched");
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names[..2], ["***_passes", "***_fails"]);
        let passes = &cases[0];
        assert_eq!(passes.classname, "***s.***_sample");
        assert_eq!(passes.file.as_deref(), Some("pkg/***s/***_sample.py"));
        assert_eq!(passes.properties, [("ticket".into(), "XT-1".into())]);
        // After unescaping: `&amp;` is plain `&` by then.
        let out = passes.result().stdout.as_deref().unwrap();
        assert!(out.contains("out: <tag> (and) \"quotes\""), "{out}");
        assert!(cases[1]
            .result()
            .message
            .as_deref()
            .unwrap()
            .contains("math (and) <logic>"));
        // Our own words are not pytest's text.
        let teardown = cases[3].result().details.as_deref().unwrap();
        assert!(
            teardown.contains("[pytest also reported <skipped> for this test: skipping]"),
            "{teardown}"
        );
    }

    #[test]
    fn only_sections_that_captured_something_are_kept() {
        assert_eq!(
            captured("---- Captured Out ----\n\n---- Captured Err ----\n\n"),
            None
        );
        assert_eq!(
            captured("---- Captured Out ----\nhi\n---- Captured Err ----\n\n").unwrap(),
            "---- Captured Out ----\nhi\n"
        );
        assert_eq!(captured("plain text\n").unwrap(), "plain text\n");
    }

    /// `n` bytes of lines numbered from 0, so that any cut shows where it fell.
    fn numbered(n: usize) -> String {
        let mut text = String::with_capacity(n + 16);
        let mut i = 0;
        while text.len() < n {
            text.push_str(&format!("line {i:07}\n"));
            i += 1;
        }
        text.truncate(n);
        text
    }

    #[test]
    fn huge_output_and_messages_are_cut_to_head_and_tail() {
        let out = format!(
            "---- Captured Out ----\n{}THE END OF THE OUTPUT\n",
            numbered(5 << 20)
        );
        let message = format!("{}THE END OF THE MESSAGE", numbered(3 << 20));
        let xml = format!(
            r#"<testsuites><testsuite name="pytest"><testcase classname="t" name="big"><failure message="{message}">short</failure><system-out>{out}</system-out></testcase><testcase classname="t" name="after"/></testsuite></testsuites>"#
        );
        let cases = parse_plain(&xml, ".").unwrap();
        assert_eq!(cases.len(), 2);
        let result = cases[0].result();
        for (text, original) in [
            (result.stdout.as_deref().unwrap(), out.as_str()),
            (result.message.as_deref().unwrap(), message.as_str()),
        ] {
            assert!(text.len() < PYTEST.max_text, "{}", text.len());
            let (head, cut, tail) = split_at_marker(text);
            assert!(head.len() <= PYTEST.head && head.len() > PYTEST.head - SLACK);
            assert!(tail.len() <= PYTEST.tail && tail.len() > PYTEST.tail - SLACK);
            assert!(original.starts_with(head));
            assert!(original.ends_with(tail));
            assert_eq!(
                head.len() as u64 + cut + tail.len() as u64,
                original.len() as u64
            );
        }
        assert_eq!(result.details.as_deref(), Some("short"));
        // A text just at the cap is kept whole.
        let whole = numbered(PYTEST.max_text);
        let xml = format!(
            r#"<testsuite><testcase classname="t" name="x"><system-out>{whole}</system-out></testcase></testsuite>"#
        );
        let cases = parse_plain(&xml, ".").unwrap();
        assert_eq!(cases[0].result().stdout.as_deref(), Some(whole.as_str()));
    }

    #[test]
    fn markup_characters_in_attributes_are_read_as_text() {
        let xml = r#"<testsuite><testcase classname="c" name="a&gt;b>'c'"/></testsuite>"#;
        assert_eq!(parse_plain(xml, ".").unwrap()[0].name, "a>b>'c'");
    }

    /// A report of `n` cases, one in ten failing with some output.
    fn many_cases(n: usize, output: &str) -> String {
        let mut xml = String::from(
            r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest">"#,
        );
        for i in 0..n {
            if i % 10 == 0 {
                xml.push_str(&format!(r#"<testcase classname="tests.test_m{}" name="test_{i}[param-&lt;{i}&gt;]" file="tests/test_m.py" line="{i}" time="0.001"><failure message="AssertionError: assert {i} == 0">def test():&#10;&gt;   assert x == 0&#10;E   AssertionError</failure><system-out>--------------------------------- Captured Out ---------------------------------&#10;{output}&#10;</system-out><system-err>--------------------------------- Captured Err ---------------------------------&#10;&#10;</system-err></testcase>"#, i / 100));
            } else {
                xml.push_str(&format!(r#"<testcase classname="tests.test_m{}" name="test_{i}" file="tests/test_m.py" line="{i}" time="0.001" />"#, i / 100));
            }
        }
        xml.push_str("</testsuite></testsuites>");
        xml
    }

    #[test]
    fn twenty_thousand_cases_are_read() {
        let cases = parse_plain(&many_cases(20_000, "printed"), "pkg").unwrap();
        assert_eq!(cases.len(), 20_000);
        assert_eq!(cases[10].name, "test_10[param-<10>]");
        assert_eq!(cases[10].status(), CaseStatus::Failed);
        assert!(cases[10]
            .result()
            .stdout
            .as_deref()
            .unwrap()
            .contains("printed"));
        assert_eq!(cases[19_999].line, Some(20_000));
    }

    /// `cargo test --release -p xtask --lib -- --ignored --nocapture big_reports` measures
    /// speed; run each under `/usr/bin/time -v` for its peak memory.
    #[test]
    #[ignore = "a benchmark"]
    fn big_reports_of_many_cases_are_read_fast() {
        let xml = many_cases(20_000, "printed");
        let started = std::time::Instant::now();
        assert_eq!(parse_plain(&xml, "pkg").unwrap().len(), 20_000);
        let parsed = started.elapsed();
        eprintln!("20,000 cases ({} bytes): {parsed:?}", xml.len());
    }

    #[test]
    #[ignore = "a benchmark: writes a 500 MB file"]
    fn big_reports_of_much_output_are_read_fast_in_bounded_memory() {
        let path = std::env::temp_dir().join(format!(
            "xtask-pytest-junit-{}-500mb.xml",
            std::process::id()
        ));
        let file = TempFile(path);
        let chunk = numbered(1 << 20).replace("line", "l&amp;é");
        let chunk = &chunk[..chunk.rfind('\n').unwrap() + 1];
        {
            let mut out = io::BufWriter::new(File::create(&file.0).unwrap());
            out.write_all(br#"<testsuites><testsuite name="pytest"><testcase classname="t" name="loud"><system-out>"#).unwrap();
            for _ in 0..(500 << 20) / chunk.len() {
                out.write_all(chunk.as_bytes()).unwrap();
            }
            out.write_all(b"THE END</system-out></testcase><testcase classname=\"t\" name=\"quiet\"/></testsuite></testsuites>").unwrap();
        }
        let size = std::fs::metadata(&file.0).unwrap().len();
        let started = std::time::Instant::now();
        let cases = parse_file(&file.0, ".", &same).unwrap();
        eprintln!("one {size}-byte report: {:?}", started.elapsed());
        assert_eq!(cases.len(), 2);
        let out = cases[0].result().stdout.as_deref().unwrap();
        assert!(out.len() < PYTEST.max_text);
        let (head, cut, tail) = split_at_marker(out);
        eprintln!(
            "kept {} + {} bytes of text, cut {cut} bytes of XML",
            head.len(),
            tail.len()
        );
        assert!(head.starts_with("l&é 0000000\n") && tail.ends_with("\nTHE END"));
    }
}
