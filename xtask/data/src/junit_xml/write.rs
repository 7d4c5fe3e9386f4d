//! Writes a JUnit report (quick-junit's model) as consumers need it, element by element
//! with quick-xml's `Writer`:
//!
//! - Line breaks, carriage returns and tabs in attribute values are written as `&#10;`,
//!   `&#13;` and `&#9;`. Written raw, every XML parser would read each as a space (XML 1.0,
//!   3.3.3), and a multi-line `message="..."` would reach consumers as one line. pytest
//!   writes `&#10;` too. (quick-junit's strings hold no tab or carriage return: the JUnit
//!   sink expands tabs and makes carriage returns line breaks before they get there.)
//! - Skipped tests are counted in `skipped`, on every `<testsuite>` and on `<testsuites>`
//!   (the sum of its suites'), and never in `disabled`: a widely used publisher adds the two
//!   (reporting every skip twice) and the Jenkins schema rejects `disabled`.
//! - Earlier attempts are `flakyFailure`/`flakyError` under a case that passed at last and
//!   `rerunFailure`/`rerunError` under one that did not, with `stackTrace`, `system-out` and
//!   `system-err` in the order Maven surefire's schema requires.
//! - Times are seconds with three decimals and timestamps RFC 3339 to the millisecond.
//!
//! The layout (four spaces of indentation, the attributes' order) is quick-junit's own
//! serializer's.

use std::borrow::Cow;
use std::io::{self, Write};
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite, XmlString,
};
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

/// `report` as XML, in memory.
pub fn to_bytes(report: &Report) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    write(report, &mut out)?;
    Ok(out)
}

/// Writes `report` to `out`, ending with a line break.
fn write(report: &Report, out: impl Write) -> io::Result<()> {
    let mut w = Writer::new_with_indent(out, b' ', 4);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut root = Tag::new("testsuites");
    root.attr("name", &report.name);
    root.attr("tests", &report.tests.to_string());
    root.attr("failures", &report.failures.to_string());
    root.attr("errors", &report.errors.to_string());
    if let Some(uuid) = &report.uuid {
        root.attr("uuid", &uuid.to_string());
    }
    root.timing(report.timestamp.as_ref(), report.time);
    let skipped: usize = report.test_suites.iter().map(|suite| suite.disabled).sum();
    root.attr("skipped", &skipped.to_string());
    w.write_event(Event::Start(root.0))?;
    for suite in &report.test_suites {
        test_suite(&mut w, suite)?;
    }
    end(&mut w, "testsuites")?;
    w.write_indent()
}

/// A start tag being built; every value goes through [`attribute_value`].
struct Tag(BytesStart<'static>);

impl Tag {
    fn new(name: &'static str) -> Tag {
        Tag(BytesStart::new(name))
    }

    fn attr(&mut self, key: &str, value: &str) {
        let value = attribute_value(value);
        self.0
            .push_attribute(Attribute::from((key.as_bytes(), value.as_bytes())));
    }

    fn opt(&mut self, key: &str, value: Option<&XmlString>) {
        if let Some(value) = value {
            self.attr(key, value);
        }
    }

    fn timing(&mut self, timestamp: Option<&DateTime<FixedOffset>>, time: Option<Duration>) {
        if let Some(timestamp) = timestamp {
            let stamp = timestamp.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string();
            self.attr("timestamp", &stamp);
        }
        if let Some(time) = time {
            self.attr("time", &format!("{:.3}", time.as_secs_f64()));
        }
    }
}

/// `value` escaped for a quoted attribute: markup characters as quick-xml escapes them, and
/// line breaks, carriage returns and tabs as character references, so parsers keep them.
fn attribute_value(value: &str) -> Cow<'_, str> {
    let escaped = quick_xml::escape::escape(value);
    if !escaped.contains(['\n', '\r', '\t']) {
        return escaped;
    }
    let mut out = String::with_capacity(escaped.len() + 16);
    for c in escaped.chars() {
        match c {
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `<name>text</name>`, the text exactly as given.
fn text_element<W: Write>(w: &mut Writer<W>, name: &'static str, text: &str) -> io::Result<()> {
    w.write_event(Event::Start(BytesStart::new(name)))?;
    text_only(w, text)?;
    end(w, name)
}

fn text_only<W: Write>(w: &mut Writer<W>, text: &str) -> io::Result<()> {
    w.write_event(Event::Text(BytesText::new(text)))
}

fn end<W: Write>(w: &mut Writer<W>, name: &'static str) -> io::Result<()> {
    w.write_event(Event::End(BytesEnd::new(name)))
}

fn properties<W: Write>(w: &mut Writer<W>, properties: &[Property]) -> io::Result<()> {
    if properties.is_empty() {
        return Ok(());
    }
    w.write_event(Event::Start(BytesStart::new("properties")))?;
    for property in properties {
        let mut tag = Tag::new("property");
        tag.attr("name", &property.name);
        tag.attr("value", &property.value);
        w.write_event(Event::Empty(tag.0))?;
    }
    end(w, "properties")
}

fn test_suite<W: Write>(w: &mut Writer<W>, suite: &TestSuite) -> io::Result<()> {
    let TestSuite {
        name,
        tests,
        disabled,
        errors,
        failures,
        time,
        timestamp,
        test_cases,
        properties: props,
        system_out,
        system_err,
        extra,
        ..
    } = suite;
    let mut tag = Tag::new("testsuite");
    tag.attr("name", name);
    tag.attr("tests", &tests.to_string());
    tag.attr("errors", &errors.to_string());
    tag.attr("failures", &failures.to_string());
    tag.timing(timestamp.as_ref(), *time);
    for (key, value) in extra {
        // The counts are the model's, written above and below.
        if !matches!(key.as_str(), "skipped" | "disabled") {
            tag.attr(key, value);
        }
    }
    tag.attr("skipped", &disabled.to_string());
    w.write_event(Event::Start(tag.0))?;
    properties(w, props)?;
    for case in test_cases {
        test_case(w, case)?;
    }
    if let Some(out) = system_out {
        text_element(w, "system-out", out)?;
    }
    if let Some(err) = system_err {
        text_element(w, "system-err", err)?;
    }
    end(w, "testsuite")
}

fn test_case<W: Write>(w: &mut Writer<W>, case: &TestCase) -> io::Result<()> {
    let TestCase {
        name,
        classname,
        assertions,
        timestamp,
        time,
        status,
        system_out,
        system_err,
        extra,
        properties: props,
        ..
    } = case;
    let mut tag = Tag::new("testcase");
    tag.attr("name", name);
    tag.opt("classname", classname.as_ref());
    if let Some(assertions) = assertions {
        tag.attr("assertions", &assertions.to_string());
    }
    tag.timing(timestamp.as_ref(), *time);
    for (key, value) in extra {
        tag.attr(key, value);
    }
    w.write_event(Event::Start(tag.0))?;
    properties(w, props)?;
    match status {
        TestCaseStatus::Success { flaky_runs } => {
            for rerun in flaky_runs {
                earlier_attempt(w, rerun, true)?;
            }
        }
        TestCaseStatus::NonSuccess {
            kind,
            message,
            ty,
            description,
            reruns,
        } => {
            let name = match kind {
                NonSuccessKind::Failure => "failure",
                NonSuccessKind::Error => "error",
            };
            status_element(w, name, message, ty, description)?;
            for rerun in reruns {
                earlier_attempt(w, rerun, false)?;
            }
        }
        TestCaseStatus::Skipped {
            message,
            ty,
            description,
        } => status_element(w, "skipped", message, ty, description)?,
    }
    if let Some(out) = system_out {
        text_element(w, "system-out", out)?;
    }
    if let Some(err) = system_err {
        text_element(w, "system-err", err)?;
    }
    end(w, "testcase")
}

/// `<failure>`, `<error>` or `<skipped>`: empty when there is no text.
fn status_element<W: Write>(
    w: &mut Writer<W>,
    name: &'static str,
    message: &Option<XmlString>,
    ty: &Option<XmlString>,
    description: &Option<XmlString>,
) -> io::Result<()> {
    let mut tag = Tag::new(name);
    tag.opt("message", message.as_ref());
    tag.opt("type", ty.as_ref());
    match description {
        Some(text) => {
            w.write_event(Event::Start(tag.0))?;
            text_only(w, text)?;
            end(w, name)
        }
        None => w.write_event(Event::Empty(tag.0)),
    }
}

/// An earlier attempt of a retried test: `flaky*` under a case that passed at last,
/// `rerun*` under one that did not.
fn earlier_attempt<W: Write>(w: &mut Writer<W>, rerun: &TestRerun, flaky: bool) -> io::Result<()> {
    let TestRerun {
        timestamp,
        time,
        kind,
        message,
        ty,
        stack_trace,
        system_out,
        system_err,
        description,
        ..
    } = rerun;
    let name = match (flaky, kind) {
        (true, NonSuccessKind::Failure) => "flakyFailure",
        (true, NonSuccessKind::Error) => "flakyError",
        (false, NonSuccessKind::Failure) => "rerunFailure",
        (false, NonSuccessKind::Error) => "rerunError",
    };
    let mut tag = Tag::new(name);
    tag.timing(timestamp.as_ref(), *time);
    tag.opt("message", message.as_ref());
    tag.opt("type", ty.as_ref());
    w.write_event(Event::Start(tag.0))?;
    let mut after_text = false;
    if let Some(text) = description {
        text_only(w, text)?;
        after_text = true;
    }
    // surefire's order: stackTrace, system-out, system-err.
    let children = [
        ("stackTrace", stack_trace),
        ("system-out", system_out),
        ("system-err", system_err),
    ];
    for (child, text) in children {
        if let Some(text) = text {
            if std::mem::take(&mut after_text) {
                w.write_indent()?;
            }
            text_element(w, child, text)?;
        }
    }
    end(w, name)
}

/// Text as consumers can read it (`crate::text::readable`, tabs expanded), capped in size.
pub fn xml_text(text: &str) -> XmlString {
    let mut text = crate::text::expand_tabs(crate::text::readable(text));
    if text.len() > super::MAX_TEXT_BYTES {
        let mut cut = text.len() - super::MAX_TEXT_BYTES;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text = format!(
            "[xtask: the first {cut} bytes were cut to keep this report readable; the suite's log has everything]\n{}",
            &text[cut..]
        );
    }
    XmlString::new(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit_xml::read;

    fn written(report: &Report) -> String {
        String::from_utf8(to_bytes(report).unwrap()).unwrap()
    }

    fn one_case(case: TestCase) -> Report {
        let mut suite = TestSuite::new("s");
        suite.add_test_case(case);
        let mut report = Report::new("xtask");
        report.add_test_suite(suite);
        report
    }

    #[test]
    fn line_breaks_in_attributes_are_references_and_text_keeps_them() {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status.set_message("one\ntwo \"three\" <&>");
        status.set_description("text\nstays");
        let mut case = TestCase::new("t", status);
        case.add_property(("multi", "line\nvalue"));
        let report = one_case(case);
        let xml = written(&report);
        assert!(
            xml.contains(r#"message="one&#10;two &quot;three&quot; &lt;&amp;&gt;""#),
            "{xml}"
        );
        assert!(xml.contains(r#"value="line&#10;value""#), "{xml}");
        assert!(xml.contains(">text\nstays</failure>"), "{xml}");
        // No raw line break inside any tag.
        for tag in xml.split('<').skip(1) {
            let tag = tag.split('>').next().unwrap();
            assert!(!tag.contains('\n'), "{tag:?}");
        }
        assert_eq!(read::report(xml.as_bytes(), read::OWN).unwrap(), report);
        // Tabs and carriage returns too (quick-junit's strings hold neither).
        assert_eq!(
            attribute_value("a\tb\r\nc<'\""),
            "a&#9;b&#13;&#10;c&lt;&apos;&quot;"
        );
        assert!(matches!(attribute_value("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn skipped_is_counted_on_suites_and_the_root_and_disabled_never_written() {
        let mut suite = TestSuite::new("s");
        suite.add_test_case(TestCase::new("a", TestCaseStatus::skipped()));
        suite.add_test_case(TestCase::new("b", TestCaseStatus::success()));
        // An old report read back may carry them as extra attributes.
        suite.extra.insert("skipped".into(), "7".into());
        suite.extra.insert("disabled".into(), "7".into());
        let mut other = TestSuite::new("t");
        other.add_test_case(TestCase::new("c", TestCaseStatus::skipped()));
        let mut report = Report::new("xtask");
        report.add_test_suites([suite, other]);
        let xml = written(&report);
        assert!(!xml.contains("disabled"), "{xml}");
        assert!(
            xml.contains(
                r#"<testsuites name="xtask" tests="3" failures="0" errors="0" skipped="2">"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testsuite name="s" tests="2" errors="0" failures="0" skipped="1">"#),
            "{xml}"
        );
        assert_eq!(xml.matches("skipped=").count(), 3, "{xml}");
    }

    #[test]
    fn control_characters_are_shown_and_the_file_is_well_formed() {
        // The sink's text: escapes removed, controls as pictures, tabs as spaces.
        let text = xml_text("a\tb\x1b[31mred\x1b[0m \x07 \x00 \u{FFFE}");
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(text.clone());
        status.set_description(text.clone());
        let xml = written(&one_case(TestCase::new("t", status)));
        assert!(
            xml.contains("message=\"a       bred \u{2407} \u{2400} \u{FFFD}\""),
            "{xml}"
        );
        let back = read::report(xml.as_bytes(), read::OWN).unwrap();
        let TestCaseStatus::NonSuccess { description, .. } =
            &back.test_suites[0].test_cases[0].status
        else {
            panic!("an error")
        };
        assert_eq!(description.as_ref(), Some(&text));
    }

    /// A report with everything the writer writes: what it writes, the reader reads back
    /// the same.
    #[test]
    fn what_is_written_is_read_back_identically() {
        let at = |ms| {
            DateTime::parse_from_rfc3339("2026-12-06T20:10:39+01:00").unwrap()
                + chrono::Duration::milliseconds(ms)
        };
        let mut report = Report::new("xtask");
        report.set_time(Duration::from_millis(12_345));
        report.set_timestamp(at(0));

        let mut suite = TestSuite::new("api \"v2\"");
        suite.set_time(Duration::from_millis(1_500));
        suite.set_timestamp(at(7));
        suite.add_property(("group", "unit"));
        suite.add_property(("outcome", "failed"));
        suite.extra.insert("hostname".into(), "ci\nrunner".into());
        suite.set_system_out("suite out");
        suite.set_system_err("");

        let mut passed = TestCase::new("test_ok", TestCaseStatus::success());
        passed.set_classname("tests.test_api");
        passed.set_time(Duration::from_millis(3));
        passed
            .extra
            .insert("file".into(), "pkg/tests/test_api.py".into());
        passed.extra.insert("line".into(), "17".into());
        passed.add_property(("ticket", "XT-1"));
        suite.add_test_case(passed);

        let mut failed = TestCaseStatus::non_success(NonSuccessKind::Failure);
        failed.set_message("assert 1 == 2\n  where <&> 'x'");
        failed.set_type("AssertionError");
        failed.set_description("def test():\n>   assert 1 == 2\n");
        let mut rerun = TestRerun::new(NonSuccessKind::Error);
        rerun.set_message("first\ntry");
        rerun.set_type("error");
        rerun.set_stack_trace("Traceback\n  line");
        rerun.set_system_out("printed");
        rerun.set_system_err("warned");
        failed.add_rerun(rerun);
        let mut failing = TestCase::new("test_bad[<1>]", failed);
        failing.set_classname("tests.test_api");
        failing.set_system_out("out\n");
        failing.set_system_err("err\n");
        failing.set_timestamp(at(9));
        failing.set_assertions(2);
        suite.add_test_case(failing);

        let mut flaky = TestCaseStatus::success();
        let mut first = TestRerun::new(NonSuccessKind::Failure);
        first.set_type("failed");
        first.set_stack_trace("");
        first.set_description("its own text");
        first.set_time(Duration::from_millis(40));
        first.set_timestamp(at(11));
        flaky.add_rerun(first);
        suite.add_test_case(TestCase::new("test_flaky", flaky));

        let mut skipped = TestCaseStatus::skipped();
        skipped.set_message("not today");
        skipped.set_type("pytest.skip");
        suite.add_test_case(TestCase::new("test_skip", skipped));
        let mut skipped = TestCaseStatus::skipped();
        skipped.set_description("");
        suite.add_test_case(TestCase::new("test_skip_empty", skipped));
        let mut error = TestCaseStatus::non_success(NonSuccessKind::Error);
        error.set_description("boom");
        suite.add_test_case(TestCase::new("test_error", error));

        let mut empty = TestSuite::new("empty");
        empty.set_time(Duration::ZERO);
        report.add_test_suites([suite, empty]);

        let xml = to_bytes(&report).unwrap();
        let back = read::report(xml.as_slice(), read::OWN).unwrap();
        assert_eq!(back, report, "{}", String::from_utf8_lossy(&xml));
        // And written again, byte for byte the same.
        assert_eq!(to_bytes(&back).unwrap(), xml);
    }

    #[test]
    fn quick_junit_reads_what_is_written() {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status.set_message("first line\nsecond line");
        let mut report = one_case(TestCase::new("t", status));
        report.test_suites[0].add_test_case(TestCase::new("u", TestCaseStatus::skipped()));
        let xml = written(&report);
        let back = Report::deserialize_from_str(&xml).unwrap();
        let suite = &back.test_suites[0];
        assert_eq!((suite.tests, suite.failures), (2, 1));
        let TestCaseStatus::NonSuccess { message, .. } = &suite.test_cases[0].status else {
            panic!("not a failure");
        };
        assert_eq!(message.as_deref(), Some("first line\nsecond line"));
    }
}
