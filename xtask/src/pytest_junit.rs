//! Reading pytest's own `--junitxml` output.
//!
//! quick-junit's deserializer rejects real pytest output (several status elements in one
//! test case, a bare `<testsuite>` root, timestamps without an offset), so this small
//! reader takes what consumers need and fixes what pytest gets wrong for them: `line` is
//! 0-based in pytest and 1-based for every consumer, and `file` is relative to the suite's
//! directory where consumers want it relative to the repository root.

use std::time::Duration;

use anyhow::{bail, Context};
use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::report::junit::xml_text;

/// The test cases of a pytest report, with `file` rebased onto `suite_dir`.
pub fn parse(xml: &str, suite_dir: &str) -> anyhow::Result<Vec<TestCase>> {
    let mut reader = Reader::from_str(xml);
    let mut cases = Vec::new();
    let mut case: Option<CaseBuilder> = None;
    // The element whose text is being collected, and the text so far.
    let mut text: Option<(String, String)> = None;

    loop {
        let event = reader.read_event().with_context(|| {
            format!(
                "pytest's JUnit XML is malformed near byte {}",
                reader.buffer_position()
            )
        })?;
        match event {
            Event::Start(element) if element.name().as_ref() == b"testcase" => {
                case = Some(CaseBuilder::new(&element, suite_dir)?);
            }
            // `<testcase .../>`: a passing test with nothing to say.
            Event::Empty(element) if element.name().as_ref() == b"testcase" => {
                cases.extend(CaseBuilder::new(&element, suite_dir)?.finish());
            }
            Event::End(element) if element.name().as_ref() == b"testcase" => {
                if let Some(builder) = case.take() {
                    cases.extend(builder.finish());
                }
            }
            Event::Start(element) if case.is_some() => {
                let name = case.as_mut().unwrap().child(&element)?;
                if matches!(
                    name.as_str(),
                    "failure" | "error" | "skipped" | "system-out" | "system-err"
                ) {
                    text = Some((name, String::new()));
                }
            }
            Event::Empty(element) if case.is_some() => {
                case.as_mut().unwrap().child(&element)?;
            }
            Event::Text(t) => {
                if let Some((_, buf)) = text.as_mut() {
                    buf.push_str(&t.xml10_content().context("decoding pytest's JUnit XML")?);
                }
            }
            Event::CData(t) => {
                if let Some((_, buf)) = text.as_mut() {
                    buf.push_str(&t.decode().context("decoding pytest's JUnit XML")?);
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, buf)) = text.as_mut() {
                    if let Some(c) = r
                        .resolve_char_ref()
                        .context("decoding pytest's JUnit XML")?
                    {
                        buf.push(c);
                    } else {
                        let name = r.decode().context("decoding pytest's JUnit XML")?;
                        match quick_xml::escape::resolve_xml_entity(&name) {
                            Some(resolved) => buf.push_str(resolved),
                            None => bail!("pytest's JUnit XML uses an unknown entity &{name};"),
                        }
                    }
                }
            }
            Event::End(element) => {
                let name = element.name();
                let closes_text = text
                    .as_ref()
                    .is_some_and(|(open, _)| open.as_bytes() == name.as_ref());
                if let (true, Some(builder)) = (closes_text, case.as_mut()) {
                    let (open, collected) = text.take().unwrap();
                    match open.as_str() {
                        "system-out" => builder.system_out.push_str(&collected),
                        "system-err" => builder.system_err.push_str(&collected),
                        _ => builder.statuses.last_mut().expect("status opened").text = collected,
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(cases)
}

fn attr(element: &BytesStart<'_>, key: &str) -> anyhow::Result<Option<String>> {
    match element
        .try_get_attribute(key)
        .context("reading an attribute of pytest's JUnit XML")?
    {
        Some(value) => Ok(Some(
            value
                .unescape_value()
                .context("reading an attribute of pytest's JUnit XML")?
                .into_owned(),
        )),
        None => Ok(None),
    }
}

struct Status {
    element: String,
    message: Option<String>,
    ty: Option<String>,
    text: String,
}

impl Status {
    fn new(element: &str, start: &BytesStart<'_>) -> anyhow::Result<Status> {
        Ok(Status {
            element: element.to_string(),
            message: attr(start, "message")?,
            ty: attr(start, "type")?,
            text: String::new(),
        })
    }

    /// Error outranks failure outranks skipped: pytest adds an `<error>` to a test that
    /// failed or was skipped when its teardown errors, and the error is the news.
    fn rank(&self) -> u8 {
        match self.element.as_str() {
            "error" => 0,
            "failure" => 1,
            _ => 2,
        }
    }
}

struct CaseBuilder {
    name: String,
    classname: Option<String>,
    time: Option<Duration>,
    file: Option<String>,
    line: Option<u64>,
    statuses: Vec<Status>,
    properties: Vec<Property>,
    system_out: String,
    system_err: String,
}

impl CaseBuilder {
    fn new(element: &BytesStart<'_>, suite_dir: &str) -> anyhow::Result<CaseBuilder> {
        let time = attr(element, "time")?
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(Duration::from_secs_f64);
        let file = attr(element, "file")?.map(|file| rebase(suite_dir, &file));
        // pytest's line is 0-based; consumers read 1-based lines.
        let line = attr(element, "line")?
            .and_then(|l| l.parse::<u64>().ok())
            .map(|l| l + 1);
        Ok(CaseBuilder {
            name: attr(element, "name")?.unwrap_or_default(),
            classname: attr(element, "classname")?,
            time,
            file,
            line,
            statuses: Vec::new(),
            properties: Vec::new(),
            system_out: String::new(),
            system_err: String::new(),
        })
    }

    /// Takes in a child element of `<testcase>` and returns its name.
    fn child(&mut self, element: &BytesStart<'_>) -> anyhow::Result<String> {
        let name = String::from_utf8_lossy(element.name().as_ref()).into_owned();
        match name.as_str() {
            "failure" | "error" | "skipped" => self.statuses.push(Status::new(&name, element)?),
            "property" => {
                let key = attr(element, "name")?.unwrap_or_default();
                let value = attr(element, "value")?.unwrap_or_default();
                self.properties
                    .push(Property::new(xml_text(&key), xml_text(&value)));
            }
            _ => {}
        }
        Ok(name)
    }

    /// The test case; `None` for the nameless `<testcase time="0.000"/>` pytest writes for
    /// the test that was running when it was interrupted, which names no test.
    fn finish(mut self) -> Option<TestCase> {
        if self.name.is_empty() && self.classname.as_deref().unwrap_or("").is_empty() {
            return None;
        }
        self.statuses.sort_by_key(Status::rank);
        let mut statuses = self.statuses.into_iter();
        let status = match statuses.next() {
            None => TestCaseStatus::success(),
            Some(first) => {
                let mut status = match first.element.as_str() {
                    "error" => TestCaseStatus::non_success(NonSuccessKind::Error),
                    "failure" => TestCaseStatus::non_success(NonSuccessKind::Failure),
                    _ => TestCaseStatus::skipped(),
                };
                let mut description = first.text;
                for other in statuses {
                    description.push_str(&format!(
                        "\n\n[pytest also reported <{}> for this test: {}]\n{}",
                        other.element,
                        other.message.as_deref().unwrap_or(""),
                        other.text
                    ));
                }
                if let Some(message) = first.message {
                    status.set_message(xml_text(&message));
                }
                if let Some(ty) = first.ty {
                    status.set_type(xml_text(&ty));
                }
                if !description.trim().is_empty() {
                    status.set_description(xml_text(&description));
                }
                status
            }
        };
        let mut case = TestCase::new(xml_text(&self.name), status);
        // A collection error has an empty classname and the module as its name: consumers
        // need a classname, and the module is the best one.
        match self.classname.filter(|c| !c.is_empty()) {
            Some(classname) => case.set_classname(xml_text(&classname)),
            None => case.set_classname(xml_text(&self.name)),
        };
        if let Some(time) = self.time {
            case.set_time(time);
        }
        if let Some(file) = self.file {
            case.extra.insert("file".into(), xml_text(&file));
        }
        if let Some(line) = self.line {
            case.extra.insert("line".into(), line.to_string().into());
        }
        case.properties = self.properties;
        if let Some(out) = captured(&self.system_out) {
            case.set_system_out(xml_text(&out));
        }
        if let Some(err) = captured(&self.system_err) {
            case.set_system_err(xml_text(&err));
        }
        Some(case)
    }
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
fn rebase(suite_dir: &str, file: &str) -> String {
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

    /// Real pytest 9.2 output for `tests/data/pytest-9.2-outcomes.py`.
    const OUTCOMES: &str = include_str!("../tests/data/pytest-9.2-outcomes.xml");
    const COLLECTION_ERROR: &str = include_str!("../tests/data/pytest-9.2-collection-error.xml");

    fn parse_outcomes() -> Vec<TestCase> {
        parse(OUTCOMES, "pkg").unwrap()
    }

    fn named<'a>(cases: &'a [TestCase], name: &str) -> &'a TestCase {
        cases.iter().find(|c| c.name.as_str() == name).unwrap()
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
        assert_eq!(
            passes.classname.as_ref().unwrap().as_str(),
            "tests.test_sample"
        );
        assert_eq!(passes.extra["file"].as_str(), "pkg/tests/test_sample.py");
        // pytest wrote 16 for the `def` on line 17 of the source.
        assert_eq!(passes.extra["line"].as_str(), "17");
        let source = include_str!("../tests/data/pytest-9.2-outcomes.py");
        assert_eq!(
            source.lines().nth(16).unwrap(),
            "def test_passes(record_property):"
        );
        assert_eq!(passes.time, Some(Duration::from_millis(1)));
    }

    #[test]
    fn output_and_properties_survive_with_entities_resolved() {
        let cases = parse_outcomes();
        let passes = named(&cases, "test_passes");
        let out = passes.system_out.as_ref().unwrap().as_str();
        assert!(
            // pytest escapes the colour codes as `#x1B[31m`; those are dropped too.
            out.contains("out: <tag> & \"quotes\" red café"),
            "{out}"
        );
        assert!(
            !out.contains("Captured Log"),
            "empty sections are dropped: {out}"
        );
        assert!(passes.system_err.as_ref().unwrap().contains("err line"));
        assert_eq!(passes.properties[0].name.as_str(), "ticket");
        assert_eq!(passes.properties[0].value.as_str(), "XT-1");
        // Tests that printed nothing carry no output at all.
        assert_eq!(named(&cases, "test_fails").system_out, None);
    }

    #[test]
    fn statuses_keep_message_type_and_text() {
        let cases = parse_outcomes();
        let TestCaseStatus::NonSuccess {
            kind,
            message,
            description,
            ..
        } = &named(&cases, "test_fails").status
        else {
            panic!("test_fails should have failed")
        };
        assert_eq!(*kind, NonSuccessKind::Failure);
        assert_eq!(
            message.as_ref().unwrap().as_str(),
            "AssertionError: math & <logic>\nassert (1 + 1) == 3"
        );
        assert!(description
            .as_ref()
            .unwrap()
            .contains("tests/test_sample.py:24: AssertionError"));

        let TestCaseStatus::Skipped { message, ty, .. } = &named(&cases, "test_skipped").status
        else {
            panic!()
        };
        assert_eq!(
            (
                message.as_ref().unwrap().as_str(),
                ty.as_ref().unwrap().as_str()
            ),
            ("not today", "pytest.skip")
        );
        assert!(matches!(
            named(&cases, "test_xfail").status,
            TestCaseStatus::Skipped { .. }
        ));
        assert!(matches!(
            named(&cases, "test_setup_error").status,
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Error,
                ..
            }
        ));
    }

    #[test]
    fn a_skip_followed_by_a_teardown_error_is_one_error_that_mentions_the_skip() {
        let cases = parse_outcomes();
        let TestCaseStatus::NonSuccess {
            kind,
            message,
            description,
            ..
        } = &named(&cases, "test_skip_then_teardown_error").status
        else {
            panic!("the teardown error should win")
        };
        assert_eq!(*kind, NonSuccessKind::Error);
        assert!(message.as_ref().unwrap().contains("teardown broke"));
        assert!(description
            .as_ref()
            .unwrap()
            .contains("[pytest also reported <skipped> for this test: skipping]"));
    }

    #[test]
    fn collection_errors_are_kept_without_a_line() {
        let cases = parse(COLLECTION_ERROR, "pkg").unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].name.as_str(), "tests.test_collect");
        assert_eq!(cases[0].extra["file"].as_str(), "pkg/tests/test_collect.py");
        assert!(!cases[0].extra.contains_key("line"));
        let TestCaseStatus::NonSuccess {
            message,
            description,
            ..
        } = &cases[0].status
        else {
            panic!()
        };
        assert_eq!(message.as_ref().unwrap().as_str(), "collection failure");
        assert!(description
            .as_ref()
            .unwrap()
            .contains("No module named 'not_a_module_anywhere'"));
    }

    #[test]
    fn an_interrupted_runs_nameless_case_is_dropped_and_empty_classnames_filled() {
        // What pytest 9.2 writes after a SIGINT, and for a collection error.
        let xml = r#"<testsuites><testsuite name="pytest"><testcase classname="test_h" name="test_ok" time="0.002"/><testcase time="0.000" /><testcase classname="" name="tests.test_x" time="0.000"><error message="collection failure">boom</error></testcase></testsuite></testsuites>"#;
        let cases = parse(xml, ".").unwrap();
        let names: Vec<_> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["test_ok", "tests.test_x"]);
        assert_eq!(
            cases[1].classname.as_ref().unwrap().as_str(),
            "tests.test_x"
        );
    }

    #[test]
    fn a_bare_testsuite_root_and_self_closing_cases_are_read() {
        let xml = r#"<testsuite name="pytest" tests="2"><testcase classname="t" name="a" time="0.5"/><testcase classname="t" name="b" file="./t.py" line="0"></testcase></testsuite>"#;
        let cases = parse(xml, ".").unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].time, Some(Duration::from_millis(500)));
        assert_eq!(
            (
                cases[1].extra["file"].as_str(),
                cases[1].extra["line"].as_str()
            ),
            ("t.py", "1")
        );
    }

    #[test]
    fn malformed_xml_is_an_error_not_an_empty_report() {
        let err = parse("<testsuites><testcase name=\"a\"></testsuites>", "pkg").unwrap_err();
        assert!(format!("{err:#}").contains("malformed"), "{err:#}");
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
}
