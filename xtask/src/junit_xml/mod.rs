//! JUnit XML, the one place it is read and written. The report's model is quick-junit's
//! (`Report`, `TestSuite`, `TestCase`); the XML is our own, through quick-xml:
//!
//! - [`write`] writes the model as consumers need it (line breaks in attribute values kept,
//!   `skipped` counts and no `disabled`, surefire's reruns), with nothing patched afterwards.
//! - [`read`] is the one reader of JUnit XML: pytest's `--junitxml` output (`pytest_junit`)
//!   and the reports `junit merge` is given both go through it, streamed, in bounded memory.

pub mod read;
pub mod write;
