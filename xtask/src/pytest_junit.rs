//! Reading pytest's own `--junitxml` output into the model.
//!
//! quick-junit's deserializer rejects real pytest output (several status elements in one
//! test case, a bare `<testsuite>` root, timestamps without an offset), so this small
//! reader takes what consumers need and fixes what pytest gets wrong for them: `line` is
//! 0-based in pytest and 1-based for every consumer, and `file` is relative to the suite's
//! directory where consumers want it relative to the repository root.
//!
//! It streams, in bounded memory: with `-o junit_logging=all` a test that printed 500 MB
//! is a 500 MB text node in pytest's report, and quick-xml holds a whole text node per
//! event. So [`Capped`] shortens every text run and attribute value longer than
//! [`MAX_TEXT_BYTES`] to its head and its tail before quick-xml sees it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::model::{Attempt, CaseStatus, TestCase};
use crate::text::readable;

/// The longest text run or attribute value kept whole. lxml refuses text nodes over
/// 10,000,000 bytes; stay well below, and keep the whole in the suite's log.
pub const MAX_TEXT_BYTES: usize = 1 << 20;
/// What a cut keeps: the head says what the test was doing, the tail how it ended.
const HEAD_BYTES: usize = 64 << 10;
const TAIL_BYTES: usize = 900 << 10;
/// Bytes kept on the far side of a cut to see whether it falls inside an entity.
const SLACK: usize = 16;
/// `&#x10FFFF;` is 10 bytes.
const MAX_ENTITY_LEN: usize = 12;
/// The size of the reads from the report.
const READ_BUFFER: usize = 1 << 20;

/// The test cases of the pytest report at `path`, with `file` rebased onto `suite_dir`
/// (relative to the repository root) and `clean` applied to every text value once it is
/// plain text (names, file, messages, output, properties): the caller's secret masker.
pub fn parse_file(
    path: &Path,
    suite_dir: &str,
    clean: &dyn Fn(&str) -> String,
) -> anyhow::Result<Vec<TestCase>> {
    let context = || format!("reading pytest's report {}", path.display());
    let file = File::open(path).with_context(context)?;
    read(
        Capped::new(BufReader::with_capacity(READ_BUFFER, file)),
        suite_dir,
        clean,
    )
    .with_context(context)
}

/// [`parse_file`] for a report in memory.
pub fn parse(
    xml: &str,
    suite_dir: &str,
    clean: &dyn Fn(&str) -> String,
) -> anyhow::Result<Vec<TestCase>> {
    read(Capped::new(xml.as_bytes()), suite_dir, clean)
}

/// Which part of a case the text being collected belongs to.
#[derive(Clone, Copy, PartialEq)]
enum TextOf {
    Status,
    Out,
    Err,
}

fn read<R: BufRead>(
    input: R,
    suite_dir: &str,
    clean: &dyn Fn(&str) -> String,
) -> anyhow::Result<Vec<TestCase>> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut cases = Vec::new();
    let mut case: Option<CaseBuilder> = None;
    // The element whose text is being collected, and the text so far.
    let mut text: Option<(TextOf, String)> = None;
    // The open elements, to tell a report cut short from a finished one.
    let mut open: Vec<String> = Vec::new();
    let mut seen_root = false;
    // The last case read, held back until the next one shows it is not the same test.
    let mut held: Option<CaseBuilder> = None;

    loop {
        buf.clear();
        let event = reader.read_event_into(&mut buf).with_context(|| {
            format!(
                "pytest's JUnit XML is malformed near byte {} (of the report with long texts cut)",
                reader.buffer_position()
            )
        })?;
        match &event {
            Event::Start(element) => {
                seen_root = true;
                open.push(String::from_utf8_lossy(element.name().as_ref()).into_owned());
            }
            Event::Empty(_) => seen_root = true,
            Event::End(_) => {
                open.pop();
            }
            _ => {}
        }
        match event {
            Event::Start(element) if element.name().as_ref() == b"testcase" => {
                case = Some(CaseBuilder::new(&element)?);
            }
            // `<testcase .../>`: a passing test with nothing to say.
            Event::Empty(element) if element.name().as_ref() == b"testcase" => {
                let builder = CaseBuilder::new(&element)?;
                if let Some(done) = merge_or_hold(&mut held, builder) {
                    cases.extend(done.finish(suite_dir, clean));
                }
            }
            Event::End(element) if element.name().as_ref() == b"testcase" => {
                if let Some(builder) = case.take() {
                    if let Some(done) = merge_or_hold(&mut held, builder) {
                        cases.extend(done.finish(suite_dir, clean));
                    }
                }
            }
            Event::Start(element) if case.is_some() => {
                let of = match case.as_mut().unwrap().child(&element)? {
                    b"failure" | b"error" | b"skipped" => Some(TextOf::Status),
                    b"system-out" => Some(TextOf::Out),
                    b"system-err" => Some(TextOf::Err),
                    _ => None,
                };
                if let Some(of) = of {
                    text = Some((of, String::new()));
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
                let of = match element.name().as_ref() {
                    b"failure" | b"error" | b"skipped" => Some(TextOf::Status),
                    b"system-out" => Some(TextOf::Out),
                    b"system-err" => Some(TextOf::Err),
                    _ => None,
                };
                let closes_text = of.is_some() && text.as_ref().map(|(open, _)| *open) == of;
                if let (true, Some(builder)) = (closes_text, case.as_mut()) {
                    let (of, collected) = text.take().unwrap();
                    match of {
                        TextOf::Out => builder.system_out.push_str(&collected),
                        TextOf::Err => builder.system_err.push_str(&collected),
                        TextOf::Status => {
                            builder.statuses.last_mut().expect("status opened").text = collected
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(done) = held.take() {
        cases.extend(done.finish(suite_dir, clean));
    }
    if let Some(element) = open.last() {
        bail!(
            "pytest's JUnit XML ends inside <{element}>: the report was cut short (was pytest killed while writing it?)"
        );
    }
    if !seen_root {
        bail!("pytest's JUnit XML has no <testsuite>: the report is empty or was cut short");
    }
    Ok(cases)
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
    fn new(element: &BytesStart<'_>) -> anyhow::Result<CaseBuilder> {
        let time = attr(element, "time")?
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(Duration::from_secs_f64);
        // pytest's line is 0-based; consumers read 1-based lines.
        let line = attr(element, "line")?
            .and_then(|l| l.parse::<u64>().ok())
            .map(|l| l + 1);
        Ok(CaseBuilder {
            name: attr(element, "name")?.unwrap_or_default(),
            classname: attr(element, "classname")?,
            time,
            file: attr(element, "file")?,
            line,
            statuses: Vec::new(),
            properties: Vec::new(),
            system_out: String::new(),
            system_err: String::new(),
        })
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

    /// Takes in a child element of `<testcase>` and returns its name.
    fn child<'e>(&mut self, element: &'e BytesStart<'_>) -> anyhow::Result<&'e [u8]> {
        let name = element.name().into_inner();
        let status = match name {
            b"failure" => Some((CaseStatus::Failed, "failure")),
            b"error" => Some((CaseStatus::Error, "error")),
            b"skipped" => Some((CaseStatus::Skipped, "skipped")),
            _ => None,
        };
        if let Some((status, element_name)) = status {
            self.statuses.push(Status {
                status,
                element: element_name,
                message: attr(element, "message")?,
                ty: attr(element, "type")?,
                text: String::new(),
            });
        } else if name == b"property" {
            let key = attr(element, "name")?.unwrap_or_default();
            let value = attr(element, "value")?.unwrap_or_default();
            self.properties.push((key, value));
        }
        Ok(name)
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

/// pytest's XML with every text run (between `>` and `<`) and every attribute value longer
/// than [`MAX_TEXT_BYTES`] cut to its head, a marker and its tail, read in chunks: quick-xml
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
    fn new(inner: R) -> Capped<R> {
        Capped {
            inner,
            scanner: Scanner {
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
                        self.run.push(input, out);
                        return;
                    };
                    self.run.push(&input[..at], out);
                    self.run.finish(out);
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
            self.run.finish(out);
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
    /// `TAIL_BYTES + SLACK` or more.
    held: Vec<u8>,
    cutting: bool,
}

impl Run {
    fn push(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) {
        // Up to here a cut of the head needs no look-back into what was written.
        const DIRECT: u64 = (HEAD_BYTES - SLACK) as u64;
        const WINDOW: usize = TAIL_BYTES + SLACK;
        if self.len < DIRECT {
            let n = bytes.len().min((DIRECT - self.len) as usize);
            out.extend_from_slice(&bytes[..n]);
            self.len += n as u64;
            self.written += n as u64;
            bytes = &bytes[n..];
        }
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len() as u64;
        if self.cutting && bytes.len() >= WINDOW {
            self.held.clear();
            self.held.extend_from_slice(&bytes[bytes.len() - WINDOW..]);
            return;
        }
        self.held.extend_from_slice(bytes);
        if !self.cutting && self.len > MAX_TEXT_BYTES as u64 {
            self.cutting = true;
            let end = head_end(&self.held, SLACK);
            out.extend_from_slice(&self.held[..end]);
            self.written += end as u64;
            self.held.drain(..end);
        }
        if self.cutting && self.held.len() > 2 * WINDOW {
            self.held.drain(..self.held.len() - WINDOW);
        }
    }

    /// The run has ended: writes what is held, after a marker if the run was cut.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.cutting {
            let start = tail_start(&self.held, TAIL_BYTES);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Real pytest 9.2 output for `tests/data/pytest-9.2-outcomes.py`.
    const OUTCOMES: &str = include_str!("../tests/data/pytest-9.2-outcomes.xml");
    const COLLECTION_ERROR: &str = include_str!("../tests/data/pytest-9.2-collection-error.xml");
    const MARKER_START: &str = "...\n[xtask: ";
    const MARKER_END: &str =
        " bytes cut here to keep this report readable; the suite log has everything]\n...";

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

    /// Everything `Capped` makes of `xml`, read through a small buffer so that runs span
    /// many chunks.
    fn capped(xml: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        Capped::new(BufReader::with_capacity(chunk, xml))
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// A cut text: its head, the number of bytes the marker says were cut, its tail.
    fn split_at_marker(text: &str) -> (&str, u64, &str) {
        let start = text.find(MARKER_START).expect("a marker");
        let after = &text[start + MARKER_START.len()..];
        let digits = after.find(MARKER_END).expect("the marker's end");
        let cut = after[..digits].parse().unwrap();
        (&text[..start], cut, &after[digits + MARKER_END.len()..])
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
        let source = include_str!("../tests/data/pytest-9.2-outcomes.py");
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
    const FIDELITY: &str = include_str!("../tests/data/pytest-9.2-fidelity.xml");

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
            assert!(text.len() < MAX_TEXT_BYTES, "{}", text.len());
            let (head, cut, tail) = split_at_marker(text);
            assert!(head.len() <= HEAD_BYTES && head.len() > HEAD_BYTES - SLACK);
            assert!(tail.len() <= TAIL_BYTES && tail.len() > TAIL_BYTES - SLACK);
            assert!(original.starts_with(head));
            assert!(original.ends_with(tail));
            assert_eq!(
                head.len() as u64 + cut + tail.len() as u64,
                original.len() as u64
            );
        }
        assert_eq!(result.details.as_deref(), Some("short"));
        // A text just at the cap is kept whole.
        let whole = numbered(MAX_TEXT_BYTES);
        let xml = format!(
            r#"<testsuite><testcase classname="t" name="x"><system-out>{whole}</system-out></testcase></testsuite>"#
        );
        let cases = parse_plain(&xml, ".").unwrap();
        assert_eq!(cases[0].result().stdout.as_deref(), Some(whole.as_str()));
    }

    #[test]
    fn a_cut_never_splits_a_character_or_an_entity() {
        // 15 bytes: every offset of it against the head's and the tail's cut is tried.
        const UNIT: &str = "é&amp;&#x1B;ü";
        let units = MAX_TEXT_BYTES / UNIT.len() + 100;
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
        let started = std::time::Instant::now();
        let through = capped(xml.as_bytes(), READ_BUFFER).len();
        eprintln!(
            "20,000 cases ({through} bytes): {parsed:?}, of which the adapter {:?}",
            started.elapsed()
        );
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
        assert!(out.len() < MAX_TEXT_BYTES);
        let (head, cut, tail) = split_at_marker(out);
        eprintln!(
            "kept {} + {} bytes of text, cut {cut} bytes of XML",
            head.len(),
            tail.len()
        );
        assert!(head.starts_with("l&é 0000000\n") && tail.ends_with("\nTHE END"));
    }
}
