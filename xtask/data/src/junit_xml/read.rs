//! The one reader of JUnit XML, streaming and in bounded memory: pytest's `--junitxml`
//! output (`pytest_junit` builds the model from it) and the reports `junit merge` is given
//! ([`report`] builds quick-junit's `Report`) are read by the same code.
//!
//! quick-xml does the parsing. [`read`] hands each child of a `<testsuites>` or
//! `<testsuite>` (a `<testcase>`, `<properties>`, `<system-out>`) to its caller as a small
//! tree once it is complete, so a report of 20,000 cases is never held as a whole.
//!
//! Texts are the one thing quick-xml cannot bound: with `-o junit_logging=all` a test that
//! printed 500 MB is a 500 MB text node, and pytest writes an exception's whole message
//! into a `message` attribute. quick-xml 0.38 hands over a text run, and a start tag with
//! all its attribute values, as one event held in one buffer; its `Reader::stream()` gives
//! the raw bytes after an event, enough to take a text node in chunks, but nothing reads a
//! start tag in parts. So [`Capped`], below quick-xml, cuts every text run and attribute
//! value longer than [`Limits::max_text`] to its head and tail before quick-xml sees it. To
//! find the attribute values it must tell markup from text, comments and CDATA; with that
//! known, capping text runs as well costs nothing, so it is one mechanism for both rather
//! than a second one through `stream()`. It is the only byte-level XML code of the crate.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::DateTime;
use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite, XmlString,
};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// How long a text run or attribute value may be before it is cut, and what a cut keeps:
/// the head says what the test was doing, the tail how it ended.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_text: usize,
    pub head: usize,
    pub tail: usize,
}

/// pytest's report: texts cut to [`super::MAX_TEXT_BYTES`], the whole kept in the suite's log.
pub const PYTEST: Limits = Limits {
    max_text: super::MAX_TEXT_BYTES,
    head: 64 << 10,
    tail: 900 << 10,
};

/// The xtask's own reports (`junit merge`): their texts were cut to 1 MiB of plain text
/// when written, up to six times that escaped; none of them is cut again.
pub const OWN: Limits = Limits {
    max_text: 8 << 20,
    head: 512 << 10,
    tail: (7 << 20) + (256 << 10),
};

/// Bytes kept on the far side of a cut to see whether it falls inside an entity.
pub const SLACK: usize = 16;
/// `&#x10FFFF;` is 10 bytes.
const MAX_ENTITY_LEN: usize = 12;
/// The size of the reads from the report.
const READ_BUFFER: usize = 1 << 20;

/// One element as read: attribute values and text unescaped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    /// Its own text runs, CDATA and references, in order; `None` for `<name/>`.
    pub text: Option<String>,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> &str {
        self.text.as_deref().unwrap_or("")
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }
}

/// What [`read`] hands its caller, in document order.
#[derive(Debug)]
pub enum Item {
    /// A `<testsuites>` or `<testsuite>` starts: its name and attributes.
    Open(Element),
    /// A whole child of the innermost open `<testsuites>` or `<testsuite>`.
    Child(Element),
    /// The innermost open `<testsuites>` or `<testsuite>` ends.
    Close,
}

fn is_container(name: &str) -> bool {
    matches!(name, "testsuites" | "testsuite")
}

/// The JUnit report at `path`, item by item to `on`.
pub fn read_file(
    path: &Path,
    limits: Limits,
    on: &mut dyn FnMut(Item) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let file = File::open(path)?;
    read(BufReader::with_capacity(READ_BUFFER, file), limits, on)
}

/// A JUnit report, item by item to `on`, with every text longer than `limits` allows cut.
/// A report that is not well-formed, ends early or has no `<testsuites>` or `<testsuite>`
/// is an error.
pub fn read<R: BufRead>(
    input: R,
    limits: Limits,
    on: &mut dyn FnMut(Item) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut reader = Reader::from_reader(Capped::new(input, limits));
    let mut buf = Vec::new();
    // The elements being built (below the open containers), outermost first.
    let mut building: Vec<Element> = Vec::new();
    let mut containers: Vec<String> = Vec::new();
    let mut seen_container = false;
    let decoding = "decoding the JUnit XML";
    loop {
        buf.clear();
        let event = reader.read_event_into(&mut buf).with_context(|| {
            format!(
                "the JUnit XML is malformed near byte {} (of the report with long texts cut)",
                reader.buffer_position()
            )
        })?;
        let (start, empty) = match event {
            Event::Start(start) => (start, false),
            Event::Empty(start) => (start, true),
            Event::End(_) => {
                match building.pop() {
                    Some(done) => finish(&mut building, done, on)?,
                    None => {
                        containers.pop();
                        on(Item::Close)?;
                    }
                }
                continue;
            }
            Event::Text(t) => {
                if let Some(text) = text_of(&mut building) {
                    text.push_str(&t.xml10_content().context(decoding)?);
                }
                continue;
            }
            Event::CData(t) => {
                if let Some(text) = text_of(&mut building) {
                    text.push_str(&t.decode().context(decoding)?);
                }
                continue;
            }
            Event::GeneralRef(r) => {
                if let Some(text) = text_of(&mut building) {
                    if let Some(c) = r.resolve_char_ref().context(decoding)? {
                        text.push(c);
                    } else {
                        let name = r.decode().context(decoding)?;
                        match quick_xml::escape::resolve_xml_entity(&name) {
                            Some(resolved) => text.push_str(resolved),
                            None => bail!("the JUnit XML uses an unknown entity &{name};"),
                        }
                    }
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let mut element = element(&start)?;
        if building.is_empty() && is_container(&element.name) {
            seen_container = true;
            if empty {
                on(Item::Open(element))?;
                on(Item::Close)?;
            } else {
                containers.push(element.name.clone());
                on(Item::Open(element))?;
            }
        } else if empty {
            finish(&mut building, element, on)?;
        } else {
            element.text = Some(String::new());
            building.push(element);
        }
    }
    if let Some(open) = building.last().map(|e| &e.name).or(containers.last()) {
        bail!(
            "the JUnit XML ends inside <{open}>: the report was cut short (was the process writing it killed?)"
        );
    }
    if !seen_container {
        bail!("the JUnit XML has no <testsuites> or <testsuite>: the report is empty or was cut short");
    }
    Ok(())
}

/// The text of the element being built, if any.
fn text_of(building: &mut [Element]) -> Option<&mut String> {
    building.last_mut().and_then(|e| e.text.as_mut())
}

/// `done` is complete: a child of the element being built, or handed to the caller.
fn finish(
    building: &mut [Element],
    done: Element,
    on: &mut dyn FnMut(Item) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    match building.last_mut() {
        Some(parent) => {
            parent.children.push(done);
            Ok(())
        }
        None => on(Item::Child(done)),
    }
}

fn element(start: &BytesStart<'_>) -> anyhow::Result<Element> {
    let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let context = || format!("reading an attribute of <{name}> in the JUnit XML");
        let attribute = attribute.with_context(context)?;
        let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
        let value = attribute.unescape_value().with_context(context)?;
        attributes.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attributes,
        text: None,
        children: Vec::new(),
    })
}

/// A `time` attribute: seconds, to the nanosecond; `None` unless a finite number >= 0.
pub fn seconds(value: &str) -> Option<Duration> {
    let secs = value.trim().parse::<f64>().ok()?;
    (secs.is_finite() && secs >= 0.0 && secs < u64::MAX as f64 / 1e9)
        .then(|| Duration::from_nanos((secs * 1e9).round() as u64))
}

/// The report at `path` as quick-junit's model, read as [`report`] reads.
pub fn report_file(path: &Path) -> anyhow::Result<Report> {
    let file = File::open(path)?;
    report(BufReader::with_capacity(READ_BUFFER, file), OWN)
}

/// A JUnit report as the xtask writes it, as quick-junit's model: every suite, case,
/// property, status, earlier attempt and output, and the attributes the model has no field
/// for in each suite's and case's `extra`. The totals are counted from the cases.
pub fn report<R: BufRead>(input: R, limits: Limits) -> anyhow::Result<Report> {
    let mut report: Option<Report> = None;
    let mut suite: Option<TestSuite> = None;
    read(input, limits, &mut |item| {
        match item {
            Item::Open(root) if root.name == "testsuites" && report.is_none() => {
                let mut new = Report::new(root.attr("name").unwrap_or_default());
                new.time = root.attr("time").and_then(seconds);
                new.timestamp = timestamp(&root)?;
                if let Some(uuid) = root.attr("uuid") {
                    new.uuid =
                        Some(uuid.parse().with_context(|| {
                            format!("the report's uuid `{uuid}` is not a UUID")
                        })?);
                }
                report = Some(new);
            }
            Item::Open(open) if open.name == "testsuite" && suite.is_none() => {
                suite = Some(test_suite(&open)?);
            }
            Item::Open(open) => bail!(
                "<{}> inside <{}>: nested suites are not a report the xtask writes",
                open.name,
                if suite.is_some() {
                    "testsuite"
                } else {
                    "testsuites"
                }
            ),
            Item::Child(child) => {
                let Some(suite) = suite.as_mut() else {
                    bail!(
                        "<{}> outside any <testsuite>: not a report the xtask writes",
                        child.name
                    );
                };
                match child.name.as_str() {
                    "testcase" => suite.add_test_case(test_case(&child)?),
                    "properties" => suite.add_properties(properties(&child)),
                    "system-out" => suite.set_system_out(child.text()),
                    "system-err" => suite.set_system_err(child.text()),
                    other => bail!(
                        "<{other}> in suite `{}`: not an element of a JUnit suite",
                        suite.name.as_str()
                    ),
                };
            }
            Item::Close => {
                if let Some(done) = suite.take() {
                    report
                        .get_or_insert_with(|| Report::new(""))
                        .add_test_suite(done);
                }
            }
        }
        Ok(())
    })?;
    Ok(report.expect("read() saw a <testsuites> or <testsuite>"))
}

fn timestamp(element: &Element) -> anyhow::Result<Option<DateTime<chrono::FixedOffset>>> {
    element
        .attr("timestamp")
        .map(|stamp| {
            DateTime::parse_from_rfc3339(stamp).with_context(|| {
                format!(
                    "the timestamp `{stamp}` of <{}> is not an RFC 3339 date and time",
                    element.name
                )
            })
        })
        .transpose()
}

fn test_suite(open: &Element) -> anyhow::Result<TestSuite> {
    let mut suite = TestSuite::new(open.attr("name").unwrap_or_default());
    suite.time = open.attr("time").and_then(seconds);
    suite.timestamp = timestamp(open)?;
    for (key, value) in &open.attributes {
        // Counted from the cases as they are added.
        let known = ["name", "time", "timestamp", "tests", "failures", "errors"];
        if !known.contains(&key.as_str()) && key != "skipped" && key != "disabled" {
            suite.extra.insert(key.into(), value.into());
        }
    }
    Ok(suite)
}

fn properties(element: &Element) -> Vec<Property> {
    element
        .children_named("property")
        .map(|p| {
            Property::new(
                p.attr("name").unwrap_or_default(),
                p.attr("value").unwrap_or_default(),
            )
        })
        .collect()
}

fn xml_string(text: Option<&str>) -> Option<XmlString> {
    text.map(XmlString::new)
}

fn test_case(element: &Element) -> anyhow::Result<TestCase> {
    let name = element.attr("name").unwrap_or_default();
    let mut statuses = Vec::new();
    let mut earlier = Vec::new();
    let (mut system_out, mut system_err, mut props) = (None, None, Vec::new());
    for child in &element.children {
        match child.name.as_str() {
            "failure" | "error" | "skipped" => statuses.push(child),
            "flakyFailure" | "flakyError" | "rerunFailure" | "rerunError" => {
                earlier.push(rerun(child)?)
            }
            "system-out" => system_out = xml_string(Some(child.text())),
            "system-err" => system_err = xml_string(Some(child.text())),
            "properties" => props.extend(properties(child)),
            other => bail!("<{other}> in test case `{name}`: not an element of a JUnit test case"),
        }
    }
    let text = |status: &Element| {
        (
            xml_string(status.attr("message")),
            xml_string(status.attr("type")),
            xml_string(status.text.as_deref()),
        )
    };
    let status = match statuses.as_slice() {
        [] => TestCaseStatus::Success { flaky_runs: earlier },
        [skipped] if skipped.name == "skipped" => {
            if !earlier.is_empty() {
                bail!("test case `{name}` was skipped and has earlier attempts: not a report the xtask writes");
            }
            let (message, ty, description) = text(skipped);
            TestCaseStatus::Skipped {
                message,
                ty,
                description,
            }
        }
        [status] => {
            let (message, ty, description) = text(status);
            TestCaseStatus::NonSuccess {
                kind: match status.name.as_str() {
                    "failure" => NonSuccessKind::Failure,
                    _ => NonSuccessKind::Error,
                },
                message,
                ty,
                description,
                reruns: earlier,
            }
        }
        _ => bail!(
            "test case `{name}` has {} statuses (<failure>, <error>, <skipped>): not a report the xtask writes, which gives each test one",
            statuses.len()
        ),
    };
    case_with(element, status, system_out, system_err, props)
}

fn case_with(
    element: &Element,
    status: TestCaseStatus,
    system_out: Option<XmlString>,
    system_err: Option<XmlString>,
    properties: Vec<Property>,
) -> anyhow::Result<TestCase> {
    let name = element.attr("name").unwrap_or_default();
    let mut case = TestCase::new(name, status);
    case.classname = xml_string(element.attr("classname"));
    case.time = element.attr("time").and_then(seconds);
    case.timestamp = timestamp(element)?;
    if let Some(assertions) = element.attr("assertions") {
        case.assertions = Some(assertions.parse().with_context(|| {
            format!("the assertions `{assertions}` of test case `{name}` are not a count")
        })?);
    }
    for (key, value) in &element.attributes {
        let known = ["name", "classname", "time", "timestamp", "assertions"];
        if !known.contains(&key.as_str()) {
            case.extra.insert(key.into(), value.into());
        }
    }
    case.system_out = system_out;
    case.system_err = system_err;
    case.properties = properties;
    Ok(case)
}

/// `<flakyFailure>` and its kin: the attempt's own text is what precedes its children.
fn rerun(element: &Element) -> anyhow::Result<TestRerun> {
    let kind = match element.name.as_str() {
        "flakyFailure" | "rerunFailure" => NonSuccessKind::Failure,
        _ => NonSuccessKind::Error,
    };
    let mut rerun = TestRerun::new(kind);
    rerun.time = element.attr("time").and_then(seconds);
    rerun.timestamp = timestamp(element)?;
    rerun.message = xml_string(element.attr("message"));
    rerun.ty = xml_string(element.attr("type"));
    // The writer indents the children after the attempt's own text.
    let own = element.text();
    let own = match element.children.is_empty() {
        true => own,
        false => own.trim_end(),
    };
    rerun.description = (!own.is_empty()).then(|| own.into());
    for child in &element.children {
        let text = Some(XmlString::new(child.text()));
        match child.name.as_str() {
            "stackTrace" => rerun.stack_trace = text,
            "system-out" => rerun.system_out = text,
            "system-err" => rerun.system_err = text,
            other => bail!(
                "<{other}> in <{}>: not an element of an earlier attempt",
                element.name
            ),
        }
    }
    Ok(rerun)
}

/// XML with every text run (between `>` and `<`) and every attribute value longer than
/// [`Limits::max_text`] cut to its head, a marker and its tail, read in chunks: quick-xml
/// above it never holds more than about that much per event, whatever the size of the report.
/// A cut never splits a UTF-8 character or an entity, so the result is XML as well formed
/// as the input.
struct Capped<R> {
    inner: R,
    scanner: Scanner,
    /// The processed bytes not yet read.
    out: Vec<u8>,
    pos: usize,
    done: bool,
}

impl<R: BufRead> Capped<R> {
    fn new(inner: R, limits: Limits) -> Capped<R> {
        Capped {
            inner,
            scanner: Scanner {
                limits,
                mode: Mode::Text,
                tag_start: [0; 8],
                tag_len: 0,
                last_two: [0; 2],
                run: Run::default(),
            },
            out: Vec::with_capacity(READ_BUFFER),
            pos: 0,
            done: false,
        }
    }
}

impl<R: BufRead> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Capped<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.out.len() && !self.done {
            self.out.clear();
            self.pos = 0;
            let input = self.inner.fill_buf()?;
            if input.is_empty() {
                self.scanner.finish(&mut self.out);
                self.done = true;
            } else {
                let n = input.len().min(READ_BUFFER);
                self.scanner.feed(&input[..n], &mut self.out);
                self.inner.consume(n);
            }
        }
        Ok(&self.out[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.out.len());
    }
}

/// Where in the XML the scanner is.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    /// Between `>` and `<`: a text run.
    Text,
    /// Inside `<...>`, outside quotes.
    Tag,
    /// Inside an attribute value quoted with this byte.
    Quoted(u8),
    /// Inside `<!-- ... -->`: quotes and `<` mean nothing there.
    Comment,
    /// Inside `<![CDATA[ ... ]]>`.
    CData,
}

struct Scanner {
    limits: Limits,
    mode: Mode,
    /// The first bytes of the tag being read, to tell a comment or a CDATA section.
    tag_start: [u8; 8],
    /// How many of them were read; `tag_start.len()` once the tag is known to be neither.
    tag_len: usize,
    /// The last two bytes of a comment or CDATA section, to find its end.
    last_two: [u8; 2],
    /// The text run or attribute value being read.
    run: Run,
}

impl Scanner {
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            match self.mode {
                Mode::Text | Mode::Quoted(_) => {
                    let end = match self.mode {
                        Mode::Quoted(quote) => quote,
                        _ => b'<',
                    };
                    let Some(at) = memchr::memchr(end, input) else {
                        self.run.push(input, out, &self.limits);
                        return;
                    };
                    self.run.push(&input[..at], out, &self.limits);
                    self.run.finish(out, &self.limits);
                    out.push(end);
                    input = &input[at + 1..];
                    self.tag_len = if end == b'<' { 0 } else { self.tag_start.len() };
                    self.mode = Mode::Tag;
                }
                Mode::Tag if self.tag_len < self.tag_start.len() => {
                    let byte = input[0];
                    input = &input[1..];
                    out.push(byte);
                    self.tag_start[self.tag_len] = byte;
                    self.tag_len += 1;
                    let mode = match &self.tag_start[..self.tag_len] {
                        b"!--" => Mode::Comment,
                        b"![CDATA[" => Mode::CData,
                        _ => self.after_tag_byte(byte),
                    };
                    if matches!(mode, Mode::Comment | Mode::CData) {
                        self.last_two = [0; 2];
                    }
                    self.mode = mode;
                }
                Mode::Tag => {
                    let Some(at) = memchr::memchr3(b'"', b'\'', b'>', input) else {
                        out.extend_from_slice(input);
                        return;
                    };
                    out.extend_from_slice(&input[..=at]);
                    self.mode = self.after_tag_byte(input[at]);
                    input = &input[at + 1..];
                }
                Mode::Comment | Mode::CData => {
                    let closing = if self.mode == Mode::Comment {
                        *b"--"
                    } else {
                        *b"]]"
                    };
                    let byte = input[0];
                    input = &input[1..];
                    out.push(byte);
                    if byte == b'>' && self.last_two == closing {
                        self.mode = Mode::Text;
                    }
                    self.last_two = [self.last_two[1], byte];
                }
            }
        }
    }

    fn after_tag_byte(&self, byte: u8) -> Mode {
        match byte {
            b'"' | b'\'' => Mode::Quoted(byte),
            b'>' => Mode::Text,
            _ => Mode::Tag,
        }
    }

    /// The end of the input: what a run still holds is written.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if matches!(self.mode, Mode::Text | Mode::Quoted(_)) {
            self.run.finish(out, &self.limits);
        }
    }
}

/// One text run or attribute value: written through up to near the head's end, then held
/// until it is known to fit, or, once it is known not to, only its last bytes are held.
#[derive(Default)]
struct Run {
    /// Bytes of the run so far.
    len: u64,
    /// Bytes of it written out.
    written: u64,
    /// The bytes after the written ones: all of them while the run may fit, then the last
    /// `limits.tail + SLACK` or more.
    held: Vec<u8>,
    cutting: bool,
}

impl Run {
    fn push(&mut self, mut bytes: &[u8], out: &mut Vec<u8>, limits: &Limits) {
        // Up to here a cut of the head needs no look-back into what was written.
        let direct = (limits.head - SLACK) as u64;
        let window = limits.tail + SLACK;
        if self.len < direct {
            let n = bytes.len().min((direct - self.len) as usize);
            out.extend_from_slice(&bytes[..n]);
            self.len += n as u64;
            self.written += n as u64;
            bytes = &bytes[n..];
        }
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len() as u64;
        if self.cutting && bytes.len() >= window {
            self.held.clear();
            self.held.extend_from_slice(&bytes[bytes.len() - window..]);
            return;
        }
        self.held.extend_from_slice(bytes);
        if !self.cutting && self.len > limits.max_text as u64 {
            self.cutting = true;
            let end = head_end(&self.held, SLACK);
            out.extend_from_slice(&self.held[..end]);
            self.written += end as u64;
            self.held.drain(..end);
        }
        if self.cutting && self.held.len() > 2 * window {
            self.held.drain(..self.held.len() - window);
        }
    }

    /// The run has ended: writes what is held, after a marker if the run was cut.
    fn finish(&mut self, out: &mut Vec<u8>, limits: &Limits) {
        if self.cutting {
            let start = tail_start(&self.held, limits.tail);
            let cut = self.len - self.written - (self.held.len() - start) as u64;
            // Plain text: no `<`, `&` or quote, so it is right in text and in attributes.
            // The `...` on both sides are cut markers for the masking that follows: what
            // is left of a secret cut here is masked too.
            write!(
                out,
                "...\n[xtask: {cut} bytes cut here to keep this report readable; the suite log has everything]\n..."
            )
            .expect("writing to a Vec");
            out.extend_from_slice(&self.held[start..]);
        } else {
            out.extend_from_slice(&self.held);
        }
        self.len = 0;
        self.written = 0;
        self.cutting = false;
        self.held.clear();
    }
}

fn is_continuation(byte: u8) -> bool {
    byte & 0xC0 == 0x80
}

/// The `&` of the entity a cut before `buf[at]` would split, if any.
fn open_entity(buf: &[u8], at: usize) -> Option<usize> {
    let from = at.saturating_sub(MAX_ENTITY_LEN);
    let amp = from + memchr::memrchr(b'&', &buf[from..at])?;
    (!buf[amp..at].contains(&b';')).then_some(amp)
}

/// Where a head meant to end before `buf[at]` ends: at or before it, never inside a
/// character or an entity. `buf` starts at such a boundary and `at` >= `SLACK`.
fn head_end(buf: &[u8], at: usize) -> usize {
    let mut at = at.min(buf.len());
    while at > 0 && at < buf.len() && is_continuation(buf[at]) {
        at -= 1;
    }
    open_entity(buf, at).unwrap_or(at)
}

/// Where the last `tail` bytes of `buf` start, moved on to the start of a character and
/// past an entity they would split. `buf[0]` is such a boundary, or `SLACK` bytes precede
/// the start.
fn tail_start(buf: &[u8], tail: usize) -> usize {
    let mut at = buf.len().saturating_sub(tail);
    while at < buf.len() && is_continuation(buf[at]) {
        at += 1;
    }
    if open_entity(buf, at).is_some() {
        at = memchr::memchr(b';', &buf[at..]).map_or(buf.len(), |i| at + i + 1);
    }
    at
}

/// The marker of a cut: its start, and what follows the number of bytes cut.
#[cfg(test)]
pub const MARKER: (&str, &str) = (
    "...\n[xtask: ",
    " bytes cut here to keep this report readable; the suite log has everything]\n...",
);

/// A cut text: its head, the number of bytes the marker says were cut, its tail.
#[cfg(test)]
pub fn split_at_marker(text: &str) -> (&str, u64, &str) {
    let start = text.find(MARKER.0).expect("a marker");
    let after = &text[start + MARKER.0.len()..];
    let digits = after.find(MARKER.1).expect("the marker's end");
    let cut = after[..digits].parse().unwrap();
    (&text[..start], cut, &after[digits + MARKER.1.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `Capped` makes of `xml`, read through a small buffer so that runs span
    /// many chunks.
    fn capped(xml: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        Capped::new(BufReader::with_capacity(chunk, xml), PYTEST)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn items(xml: &str) -> anyhow::Result<Vec<String>> {
        let mut seen = Vec::new();
        read(xml.as_bytes(), PYTEST, &mut |item| {
            seen.push(match item {
                Item::Open(e) => format!("open {}", e.name),
                Item::Child(e) => format!(
                    "{} {:?} {:?} [{}]",
                    e.name,
                    e.attributes,
                    e.text,
                    e.children
                        .iter()
                        .map(|c| format!("{}={:?}", c.name, c.text))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                Item::Close => "close".into(),
            });
            Ok(())
        })?;
        Ok(seen)
    }

    #[test]
    fn each_child_of_a_suite_is_handed_over_whole_in_order() {
        let xml = "<?xml version=\"1.0\"?>\n<testsuites>\n  <testsuite name=\"a\"><properties><property name=\"k\" value=\"v&#10;w\"/></properties><testcase name=\"t&lt;1&gt;\"><failure message=\"m\">x &amp; <![CDATA[<y>]]>&#233;</failure><skipped/></testcase><testcase name=\"u\"/></testsuite><testsuite name=\"b\"/>\n</testsuites>\n";
        assert_eq!(
            items(xml).unwrap(),
            [
                "open testsuites",
                "open testsuite",
                r#"properties [] Some("") [property=None]"#,
                r#"testcase [("name", "t<1>")] Some("") [failure=Some("x & <y>é") skipped=None]"#,
                r#"testcase [("name", "u")] None []"#,
                "close",
                "open testsuite",
                "close",
                "close",
            ]
        );
    }

    #[test]
    fn a_report_cut_short_or_without_a_suite_is_an_error() {
        let xml = "<testsuites><testsuite><testcase name=\"a\"><system-out>half";
        for end in [xml.len(), xml.find("<testcase").unwrap(), 12] {
            let err = format!("{:#}", items(&xml[..end]).unwrap_err());
            assert!(err.contains("cut short"), "{err}");
        }
        for empty in ["", "<?xml version=\"1.0\"?>\n", "<html><body/></html>"] {
            let err = format!("{:#}", items(empty).unwrap_err());
            assert!(err.contains("has no <testsuites> or <testsuite>"), "{err}");
        }
        let err = format!("{:#}", items("<testsuite><a></b></testsuite>").unwrap_err());
        assert!(err.contains("malformed"), "{err}");
        let err = format!(
            "{:#}",
            items("<testsuite><a>&nope;</a></testsuite>").unwrap_err()
        );
        assert!(err.contains("unknown entity &nope;"), "{err}");
    }

    #[test]
    fn reports_the_xtask_did_not_write_are_refused_by_name() {
        let report = |xml: &str| format!("{:#}", super::report(xml.as_bytes(), OWN).unwrap_err());
        let two = "<testsuites><testsuite name=\"s\"><testcase name=\"t\"><failure/><error/></testcase></testsuite></testsuites>";
        assert!(report(two).contains("test case `t` has 2 statuses"));
        let odd = "<testsuites><testsuite name=\"s\"><testcase name=\"t\"><what/></testcase></testsuite></testsuites>";
        assert!(report(odd).contains("<what> in test case `t`"));
        let stamp = "<testsuites><testsuite name=\"s\" timestamp=\"yesterday\"/></testsuites>";
        assert!(report(stamp).contains("`yesterday` of <testsuite>"));
        // A bare <testsuite> root is a report of one suite.
        let bare = super::report(
            &b"<testsuite name=\"s\"><testcase name=\"t\"/></testsuite>"[..],
            OWN,
        )
        .unwrap();
        assert_eq!(bare.test_suites[0].test_cases[0].name.as_str(), "t");
    }

    #[test]
    fn the_xtasks_own_longest_texts_are_never_cut_again() {
        // A text the JUnit sink keeps whole (1 MiB) that escapes to six times its size.
        let text = "\"".repeat(1 << 20);
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status.set_description(text.as_str());
        status.set_message(text.as_str());
        let mut suite = TestSuite::new("s");
        suite.add_test_case(TestCase::new("t", status));
        let mut report = Report::new("xtask");
        report.add_test_suite(suite);
        let xml = crate::junit_xml::write::to_bytes(&report).unwrap();
        assert!(xml.len() > 12 << 20);
        assert_eq!(super::report(xml.as_slice(), OWN).unwrap(), report);
    }

    #[test]
    fn times_are_read_to_the_nanosecond_and_nonsense_is_none() {
        assert_eq!(seconds("0.123"), Some(Duration::from_millis(123)));
        assert_eq!(seconds("12"), Some(Duration::from_secs(12)));
        assert_eq!(seconds("1e-3"), Some(Duration::from_millis(1)));
        for bad in ["", "-1", "NaN", "inf", "1e300", "soon"] {
            assert_eq!(seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_cut_never_splits_a_character_or_an_entity() {
        // 15 bytes: every offset of it against the head's and the tail's cut is tried.
        const UNIT: &str = "é&amp;&#x1B;ü";
        let units = PYTEST.max_text / UNIT.len() + 100;
        let mut tried = 0;
        for (before, after) in (0..UNIT.len())
            .map(|b| (b, 0))
            .chain((1..UNIT.len()).map(|a| (0, a)))
        {
            let run = format!(
                "{}{}{}",
                "a".repeat(before),
                UNIT.repeat(units),
                "z".repeat(after)
            );
            let plain_run = quick_xml::escape::unescape(&run).unwrap().into_owned();
            for (xml, open, close) in [
                (format!("<a>{run}</a>"), "<a>", "</a>"),
                (format!("<a v='{run}'/>"), "<a v='", "'/>"),
            ] {
                let out =
                    String::from_utf8(capped(xml.as_bytes(), 7919)).expect("no character is split");
                let cut = out
                    .strip_prefix(open)
                    .and_then(|rest| rest.strip_suffix(close))
                    .unwrap();
                let (head, count, tail) = split_at_marker(cut);
                assert!(run.starts_with(head) && run.ends_with(tail));
                assert_eq!(
                    head.len() as u64 + count + tail.len() as u64,
                    run.len() as u64
                );
                // Split entities do not unescape, or unescape to text that is not the run's.
                let plain = |part| quick_xml::escape::unescape(part).expect("no entity is split");
                assert!(plain_run.starts_with(&*plain(head)));
                assert!(plain_run.ends_with(&*plain(tail)), "{}", &tail[..20]);
                tried += 1;
            }
        }
        assert_eq!(tried, 2 * (2 * UNIT.len() - 1));
    }

    #[test]
    fn quotes_comments_and_short_texts_pass_the_adapter_unchanged() {
        let xml = "<?xml version=\"1.0\"?><!-- it's \"<odd>\" --><a b='x>\"y' c=\"'>\">t &amp; &#233;<![CDATA[ <'\" ]]></a>";
        assert_eq!(capped(xml.as_bytes(), 3), xml.as_bytes());
        assert_eq!(capped(xml.as_bytes(), 1 << 16), xml.as_bytes());
        let big = format!("<!-- {} --><a b='{}'>x</a>", "'\"<".repeat(1 << 20), "y");
        assert_eq!(
            capped(big.as_bytes(), 4096),
            big.as_bytes(),
            "comments are not cut"
        );
        let xml = r#"<testsuite><testcase classname="c" name="a&gt;b>'c'"/></testsuite>"#;
        assert_eq!(
            items(xml).unwrap()[1],
            r#"testcase [("classname", "c"), ("name", "a>b>'c'")] None []"#
        );
    }
}
