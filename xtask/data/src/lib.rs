//! The xtask's per-test data path, a crate of its own so that it alone is compiled with
//! optimisations (the root `Cargo.toml`'s profiles): everything a run does once per test,
//! 20,000 times in a big suite. The rest of the xtask, which does things once per suite or
//! per invocation, builds unoptimised and fast. The xtask re-exports every module at the
//! same path (`xtask::model`, `xtask::report::run_record`, ...).
//!
//! - [`model`]: a suite's result and its tests, as the runner and every sink see them;
//!   [`outcome`]: how a suite ended, and what decides a run.
//! - [`pytest_junit`] reads pytest's `--junitxml` report into the model, through
//!   [`junit_xml`], the one JUnit XML reader and writer.
//! - [`run_record`]: `run.json` as types, serialized here.
//! - [`file_hashes`]: content hashes of files with a stat cache, for the result cache's
//!   inputs (a suite can have tens of thousands).
//! - [`redact`]: masking secrets in every byte written; [`text`]: text as people and
//!   consumers can read it.

pub mod file_hashes;
pub mod junit_xml;
pub mod model;
pub mod outcome;
pub mod pytest_junit;
pub mod redact;
pub mod run_record;
pub mod text;
