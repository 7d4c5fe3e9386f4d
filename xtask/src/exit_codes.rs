//! The exit codes of `cargo xtask`, one per class of result. README.md lists them.
//!
//! They stay clear of pytest's own codes (1 to 5) so that nobody mistakes one for the
//! other, and "tests failed" never shares a code with "the tests could not be run".

/// Every selected suite passed.
pub const OK: u8 = 0;
/// The xtask itself failed unexpectedly (an I/O error writing a report, a bug).
pub const INTERNAL_ERROR: u8 = 1;
/// The command line was wrong: an unknown suite or group, a bad flag, or pytest
/// rejecting the arguments given after `--`.
pub const USAGE_ERROR: u8 = 2;
/// The suite manifest in the root `Cargo.toml` is invalid; nothing ran.
pub const MANIFEST_ERROR: u8 = 3;
/// Tests ran and at least one failed (or errored in a fixture).
pub const TESTS_FAILED: u8 = 100;
/// pytest could not import a test module: the repository's code is broken.
pub const COLLECTION_ERROR: u8 = 101;
/// A suite collected no tests (pytest's exit 5): a suite that runs nothing is a bug.
pub const NO_TESTS_COLLECTED: u8 = 102;
/// A suite's environment could not be built (`uv` could not resolve, build or install it).
pub const ENVIRONMENT_ERROR: u8 = 103;
/// uv, or a Python it can use, is missing or unusable.
pub const TOOLCHAIN_ERROR: u8 = 104;
/// pytest died: killed by a signal or an internal error.
pub const CRASHED: u8 = 105;
/// A suite ran longer than its timeout; its whole process tree was stopped.
pub const TIMED_OUT: u8 = 106;
/// A suite's prerequisite (a service, an API key in `requires-env`) is not available, so it
/// was not run. Only smoke-style suites declare prerequisites.
pub const PREREQUISITE_UNAVAILABLE: u8 = 107;
/// A service a suite needs exited at start, never became ready before its deadline, or
/// found its port taken; the suites that needed it did not run.
pub const SERVICE_ERROR: u8 = 108;
/// `bench` only: a target was missed (unless `--no-targets`) or a benchmarked command
/// failed; never the xtask's own failure, which stays `INTERNAL_ERROR`.
pub const BENCH_FAILED: u8 = 109;
/// The run was interrupted (Ctrl-C, SIGTERM, or pytest reported an interruption).
pub const INTERRUPTED: u8 = 130;

/// Every code with its constant's name, for run.json and the README.
pub const ALL: &[(u8, &str)] = &[
    (OK, "OK"),
    (INTERNAL_ERROR, "INTERNAL_ERROR"),
    (USAGE_ERROR, "USAGE_ERROR"),
    (MANIFEST_ERROR, "MANIFEST_ERROR"),
    (TESTS_FAILED, "TESTS_FAILED"),
    (COLLECTION_ERROR, "COLLECTION_ERROR"),
    (NO_TESTS_COLLECTED, "NO_TESTS_COLLECTED"),
    (ENVIRONMENT_ERROR, "ENVIRONMENT_ERROR"),
    (TOOLCHAIN_ERROR, "TOOLCHAIN_ERROR"),
    (CRASHED, "CRASHED"),
    (TIMED_OUT, "TIMED_OUT"),
    (PREREQUISITE_UNAVAILABLE, "PREREQUISITE_UNAVAILABLE"),
    (SERVICE_ERROR, "SERVICE_ERROR"),
    (BENCH_FAILED, "BENCH_FAILED"),
    (INTERRUPTED, "INTERRUPTED"),
];

/// The constant's name of `code` (`"TESTS_FAILED"` for 100).
pub fn name(code: u8) -> &'static str {
    ALL.iter()
        .find(|(c, _)| *c == code)
        .map_or("UNKNOWN", |(_, name)| name)
}
