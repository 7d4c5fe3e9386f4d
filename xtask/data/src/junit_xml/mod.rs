//! JUnit XML, the one place it is read and written. The report's model is quick-junit's
//! (`Report`, `TestSuite`, `TestCase`); the XML is our own, through quick-xml:
//!
//! - [`write`] writes the model as consumers need it (line breaks in attribute values kept,
//!   `skipped` counts and no `disabled`, surefire's reruns), with nothing patched afterwards.
//! - [`read`] is the one reader of JUnit XML: pytest's `--junitxml` output (`pytest_junit`)
//!   and the reports `junit merge` is given both go through it, streamed, in bounded memory.

/// The longest text (a message, a traceback, captured output) a report holds: lxml refuses
/// text nodes over 10,000,000 bytes, so stay well below; the suite's log keeps the whole.
/// Both pytest's reports as read and ours as written are cut to it.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

pub mod read;
pub mod write;
