//! Fixes of quick-junit's serialized XML that quick-junit offers no setting for, applied as
//! it is written (an `io::Write` adapter, so the report is never held twice):
//!
//! - Line breaks and tabs inside attribute values are written as `&#10;`, `&#13;` and
//!   `&#9;` (the JUnit sink expands tabs before quick-junit, which deletes them, sees them). quick-xml writes them raw, and every XML parser normalises a raw one to a
//!   space (XML 1.0, 3.3.3), so a multi-line `message="..."` would reach consumers as one
//!   line. pytest writes `&#10;` too.
//! - The `disabled` attribute of `<testsuite>` and `<testsuites>` is dropped. quick-junit
//!   always writes it (counting skipped tests); the sink writes `skipped` instead, a widely
//!   used publisher adds the two (reporting every skip twice) and the Jenkins schema
//!   rejects it.
//! - `<testsuites>` gets a `skipped` attribute, the sum of its suites' (quick-junit's
//!   report has no field for it), so a reader of the root sees every count.
//!
//! The input is quick-junit's own output, which is well-formed: every `<` starts a tag
//! (text escapes it), attribute values are quoted, and there are no comments or CDATA. Only
//! bytes inside quoted attribute values of tags, and the one attribute, are changed.

use std::io::{self, Write};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Between tags.
    Text,
    /// Just after `<`, reading the element's name.
    TagName,
    /// Inside a tag, between attributes.
    InTag,
    /// Reading an attribute's name.
    AttrName,
    /// After `=`, before the opening quote.
    BeforeValue,
    /// Inside a quoted value.
    Value(u8),
}

/// The elements whose `disabled` attribute is dropped.
const DROP_DISABLED_ON: &[&[u8]] = &[b"testsuite", b"testsuites"];

pub struct AttrFixer<W: Write> {
    out: W,
    state: State,
    tag: Vec<u8>,
    /// Whitespace before an attribute, held until its name shows whether it is kept.
    space: Vec<u8>,
    name: Vec<u8>,
    /// Whether the attribute being read is dropped.
    dropping: bool,
    /// The `skipped` attribute given to `<testsuites>`.
    root_skipped: Option<usize>,
    /// Whether the tag being read has had its added attributes.
    added: bool,
}

impl<W: Write> AttrFixer<W> {
    pub fn new(out: W) -> AttrFixer<W> {
        AttrFixer {
            out,
            state: State::Text,
            tag: Vec::new(),
            space: Vec::new(),
            name: Vec::new(),
            dropping: false,
            root_skipped: None,
            added: false,
        }
    }

    /// Also writes `skipped="N"` on `<testsuites>`.
    pub fn with_root_skipped(mut self, skipped: usize) -> AttrFixer<W> {
        self.root_skipped = Some(skipped);
        self
    }

    /// Before the `>` or `/>` that closes a start tag: the attributes the fixer adds.
    fn add_attributes(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.added, true) {
            return Ok(());
        }
        match self.root_skipped {
            Some(skipped) if self.tag == b"testsuites" => {
                write!(self.out, " skipped=\"{skipped}\"")
            }
            _ => Ok(()),
        }
    }

    /// The writer, with everything written to it (the input ends between tags).
    pub fn into_inner(mut self) -> io::Result<W> {
        self.flush_held()?;
        Ok(self.out)
    }

    fn flush_held(&mut self) -> io::Result<()> {
        self.out.write_all(&self.space)?;
        self.out.write_all(&self.name)?;
        self.space.clear();
        self.name.clear();
        Ok(())
    }

    fn byte(&mut self, b: u8) -> io::Result<()> {
        match self.state {
            State::Text => {
                if b == b'<' {
                    self.state = State::TagName;
                    self.tag.clear();
                    self.added = false;
                }
                self.out.write_all(&[b])
            }
            State::TagName => {
                if b.is_ascii_whitespace() {
                    self.state = State::InTag;
                    self.space.push(b);
                    return Ok(());
                }
                if b == b'>' {
                    self.add_attributes()?;
                    self.state = State::Text;
                } else if b == b'/' && !self.tag.is_empty() {
                    self.add_attributes()?;
                } else {
                    self.tag.push(b);
                }
                self.out.write_all(&[b])
            }
            State::InTag => {
                if b.is_ascii_whitespace() {
                    self.space.push(b);
                    return Ok(());
                }
                if b == b'>' || b == b'/' || b == b'?' {
                    self.flush_held()?;
                    if b == b'/' || b == b'>' {
                        self.add_attributes()?;
                    }
                    if b == b'>' {
                        self.state = State::Text;
                    }
                    return self.out.write_all(&[b]);
                }
                self.state = State::AttrName;
                self.name.push(b);
                Ok(())
            }
            State::AttrName => {
                if b == b'=' {
                    self.dropping =
                        self.name == b"disabled" && DROP_DISABLED_ON.contains(&self.tag.as_slice());
                    if self.dropping {
                        self.space.clear();
                        self.name.clear();
                    } else {
                        self.flush_held()?;
                        self.out.write_all(b"=")?;
                    }
                    self.state = State::BeforeValue;
                    return Ok(());
                }
                if b.is_ascii_whitespace() || b == b'>' || b == b'/' {
                    // Not what quick-xml writes; pass it through unchanged.
                    self.flush_held()?;
                    self.state = State::InTag;
                    return self.byte(b);
                }
                self.name.push(b);
                Ok(())
            }
            State::BeforeValue => {
                if b == b'"' || b == b'\'' {
                    self.state = State::Value(b);
                }
                if self.dropping {
                    Ok(())
                } else {
                    self.out.write_all(&[b])
                }
            }
            State::Value(quote) => {
                if b == quote {
                    self.state = State::InTag;
                    let dropped = std::mem::take(&mut self.dropping);
                    return if dropped {
                        Ok(())
                    } else {
                        self.out.write_all(&[b])
                    };
                }
                if self.dropping {
                    return Ok(());
                }
                match b {
                    b'\n' => self.out.write_all(b"&#10;"),
                    b'\r' => self.out.write_all(b"&#13;"),
                    b'\t' => self.out.write_all(b"&#9;"),
                    _ => self.out.write_all(&[b]),
                }
            }
        }
    }
}

impl<W: Write> Write for AttrFixer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for &b in buf {
            self.byte(b)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// `xml` as [`AttrFixer`] writes it.
pub fn fix(xml: &[u8]) -> Vec<u8> {
    let mut fixer = AttrFixer::new(Vec::with_capacity(xml.len()));
    fixer.write_all(xml).expect("writing to memory");
    fixer.into_inner().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(xml: &str) -> String {
        String::from_utf8(fix(xml.as_bytes())).unwrap()
    }

    #[test]
    fn breaks_in_values_become_references_and_text_is_untouched() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a m=\"one\ntwo\r\tthree\" n='x\ny'>text\nstays\t</a>\n";
        assert_eq!(
            fixed(xml),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a m=\"one&#10;two&#13;&#9;three\" n='x&#10;y'>text\nstays\t</a>\n"
        );
    }

    #[test]
    fn disabled_is_dropped_from_suites_only() {
        let xml = "<testsuites name=\"x\" tests=\"1\" disabled=\"2\" errors=\"0\">\n    <testsuite name=\"disabled\" tests=\"3\" disabled=\"1\" errors=\"0\" skipped=\"1\"><testcase name=\"a\" disabled=\"1\"/></testsuite></testsuites>";
        assert_eq!(
            fixed(xml),
            "<testsuites name=\"x\" tests=\"1\" errors=\"0\">\n    <testsuite name=\"disabled\" tests=\"3\" errors=\"0\" skipped=\"1\"><testcase name=\"a\" disabled=\"1\"/></testsuite></testsuites>"
        );
    }

    #[test]
    fn the_root_gets_skipped_once_and_nothing_else_does() {
        let xml = "<?xml version=\"1.0\"?>\n<testsuites name=\"x\" tests=\"3\">\n<testsuite name=\"testsuites\" tests=\"3\"/></testsuites>\n";
        let mut fixer = AttrFixer::new(Vec::new()).with_root_skipped(2);
        for b in xml.bytes() {
            fixer.write_all(&[b]).unwrap();
        }
        let out = String::from_utf8(fixer.into_inner().unwrap()).unwrap();
        assert_eq!(out, "<?xml version=\"1.0\"?>\n<testsuites name=\"x\" tests=\"3\" skipped=\"2\">\n<testsuite name=\"testsuites\" tests=\"3\"/></testsuites>\n");
        let empty = AttrFixer::new(Vec::new()).with_root_skipped(0);
        let mut empty = empty;
        empty.write_all(b"<testsuites/>").unwrap();
        assert_eq!(empty.into_inner().unwrap(), b"<testsuites skipped=\"0\"/>");
    }

    #[test]
    fn written_in_any_chunks_the_result_is_the_same() {
        let xml = "<testsuite name=\"s\" tests=\"1\" disabled=\"0\"><failure message=\"a\nb &quot;c&quot;\">x &lt; y\n</failure><empty/></testsuite>";
        let whole = fix(xml.as_bytes());
        for size in 1..xml.len() {
            let mut fixer = AttrFixer::new(Vec::new());
            for chunk in xml.as_bytes().chunks(size) {
                fixer.write_all(chunk).unwrap();
            }
            assert_eq!(fixer.into_inner().unwrap(), whole, "chunks of {size}");
        }
        assert!(!String::from_utf8(whole).unwrap().contains("disabled"));
    }

    #[test]
    fn quick_junit_reads_the_line_break_back() {
        use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        // (quick-junit itself drops tabs from its strings.)
        status.set_message("first line\nsecond line");
        let mut suite = TestSuite::new("s");
        suite.add_test_case(TestCase::new("t", status));
        suite.add_test_case(TestCase::new("u", TestCaseStatus::skipped()));
        let mut report = Report::new("r");
        report.add_test_suite(suite);
        let raw = report.to_string().unwrap();
        assert!(
            raw.contains("disabled=\"1\""),
            "quick-junit writes it: {raw}"
        );
        let xml = String::from_utf8(fix(raw.as_bytes())).unwrap();
        assert!(!xml.contains("disabled"), "{xml}");
        assert!(
            xml.contains("message=\"first line&#10;second line\""),
            "{xml}"
        );
        let back = Report::deserialize_from_str(&xml).unwrap();
        let TestCaseStatus::NonSuccess { message, .. } = &back.test_suites[0].test_cases[0].status
        else {
            panic!("not a failure");
        };
        assert_eq!(
            message.as_ref().map(|m| m.as_str()),
            Some("first line\nsecond line")
        );
    }
}
