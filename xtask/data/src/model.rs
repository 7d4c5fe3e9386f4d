//! The xtask's own model of a run: test cases, their attempts, counts and suite results.
//!
//! Everything the runner learns is put into these types; every sink (terminal, JUnit,
//! run.json) reads them. No report format leaks in here: JUnit (quick-junit's types, the
//! XML of `junit_xml`) is the JUnit sink's business, not the model's.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};

use crate::outcome::Outcome;

/// How one attempt of a test ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaseStatus {
    Passed,
    /// An assertion (or any exception in the test body) failed.
    Failed,
    /// An error outside the test body: a fixture, setup or teardown, a collection error.
    Error,
    /// Skipped, or an expected failure (xfail).
    Skipped,
}

impl CaseStatus {
    pub fn name(self) -> &'static str {
        match self {
            CaseStatus::Passed => "passed",
            CaseStatus::Failed => "failed",
            CaseStatus::Error => "error",
            CaseStatus::Skipped => "skipped",
        }
    }
}

/// One run of one test: its status, what it said about it, and what it printed.
/// All text is plain (unescaped, already masked and capped); sinks escape it for their format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub status: CaseStatus,
    /// The one-line reason (an assertion message, a skip reason).
    pub message: Option<String>,
    /// The kind of failure or skip (`AssertionError`, `pytest.skip`, `environment-error`).
    pub kind: Option<String>,
    /// The traceback, or a longer explanation.
    pub details: Option<String>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub time: Option<Duration>,
    /// When it started, as the xtask's pytest plugin noted it (`None` for a case pytest
    /// never started: a collection error, a suite that did not run).
    pub started: Option<DateTime<FixedOffset>>,
}

impl Attempt {
    pub fn new(status: CaseStatus) -> Attempt {
        Attempt {
            status,
            message: None,
            kind: None,
            details: None,
            stdout: None,
            stderr: None,
            time: None,
            started: None,
        }
    }
}

/// One test (or one collection error, or a stand-in for a suite that did not run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCase {
    /// pytest's classname (`tests.test_buffer`); with `name`, the test's identity.
    pub classname: String,
    pub name: String,
    /// pytest's node id, relative to the suite's directory (what pytest takes there to
    /// run this test alone), as the xtask's pytest plugin noted it when the test started;
    /// `None` for a case pytest never started.
    pub node_id: Option<String>,
    /// Relative to the repository root.
    pub file: Option<String>,
    /// 1-based.
    pub line: Option<u64>,
    pub properties: Vec<(String, String)>,
    /// Every attempt in order; the last one is the test's result. Never empty.
    pub attempts: Vec<Attempt>,
    /// True for a case the xtask made up to stand for a suite whose tests did not all run.
    pub synthetic: bool,
}

impl TestCase {
    pub fn new(classname: impl Into<String>, name: impl Into<String>, attempt: Attempt) -> Self {
        TestCase {
            classname: classname.into(),
            name: name.into(),
            node_id: None,
            file: None,
            line: None,
            properties: Vec::new(),
            attempts: vec![attempt],
            synthetic: false,
        }
    }

    /// The attempt that decides the test's result.
    pub fn result(&self) -> &Attempt {
        self.attempts
            .last()
            .expect("a test case has at least one attempt")
    }

    pub fn result_mut(&mut self) -> &mut Attempt {
        self.attempts
            .last_mut()
            .expect("a test case has at least one attempt")
    }

    pub fn status(&self) -> CaseStatus {
        self.result().status
    }

    /// Whether pytest reported this case as a module it could not import.
    pub fn is_collection_error(&self) -> bool {
        let result = self.result();
        !self.synthetic
            && result.status == CaseStatus::Error
            && result
                .message
                .as_deref()
                .is_some_and(|m| m.contains("collection failure"))
    }

    /// Failed (or errored), then passed on a retry.
    pub fn is_flaky(&self) -> bool {
        self.attempts.len() > 1 && self.status() == CaseStatus::Passed
    }

    /// The total time of all attempts.
    pub fn time(&self) -> Option<Duration> {
        self.attempts
            .iter()
            .filter_map(|a| a.time)
            .reduce(|a, b| a + b)
    }
}

/// How many tests ended how. `deselected` comes from pytest's own summary: those tests
/// have no case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct Counts {
    pub tests: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub skipped: usize,
    pub deselected: usize,
    /// Tests that failed, then passed on a retry.
    pub flaky: usize,
}

impl Counts {
    pub fn of(cases: &[TestCase], deselected: usize) -> Counts {
        let mut counts = Counts {
            tests: cases.len(),
            deselected,
            ..Counts::default()
        };
        for case in cases {
            if case.is_flaky() {
                counts.flaky += 1;
            }
            match case.status() {
                CaseStatus::Passed => counts.passed += 1,
                CaseStatus::Failed => counts.failed += 1,
                CaseStatus::Error => counts.errors += 1,
                CaseStatus::Skipped => counts.skipped += 1,
            }
        }
        counts
    }
}

/// One step a suite ran (building its environment, pytest), as run.json records it.
#[derive(Clone, Debug)]
pub struct StepRecord {
    pub step: &'static str,
    pub argv: Vec<String>,
    /// `None` when the step was skipped because its inputs had not changed.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub started: DateTime<FixedOffset>,
    pub duration: Duration,
    /// Why the step did not run a process (an up-to-date environment).
    pub skipped: Option<String>,
    /// The slice of a split suite it ran (`K/N`), if any.
    pub slice: Option<String>,
}

impl StepRecord {
    pub fn describe(&self) -> String {
        match &self.skipped {
            Some(why) => format!("skipped ({why})"),
            None => describe(self.exit_code, self.signal),
        }
    }
}

/// How one suite ended.
#[derive(Clone, Debug)]
pub struct SuiteResult {
    pub outcome: Outcome,
    /// One line on why, for every outcome but passed and failed.
    pub detail: Option<String>,
    /// pytest's test cases, plus one standing for the suite when its tests did not all run.
    pub cases: Vec<TestCase>,
    /// Tests pytest deselected (`-m`, `-k`), from its summary line.
    pub deselected: usize,
    /// The steps that ran, in order.
    pub steps: Vec<StepRecord>,
    pub started: DateTime<FixedOffset>,
    pub duration: Duration,
    /// Not run: its inputs are what they were in the run this result comes from, where it
    /// passed (the result cache). `cases` and `deselected` are that run's.
    pub cached: Option<CachedFrom>,
}

/// The run a cached suite's result comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedFrom {
    pub run_id: String,
    /// When that run started (RFC 3339).
    pub started_at: String,
    /// How long the suite took in that run.
    pub duration: Duration,
    /// The cache key: the SHA-256 of every input.
    pub key: String,
}

impl SuiteResult {
    pub fn counts(&self) -> Counts {
        Counts::of(&self.cases, self.deselected)
    }
}

/// The wall clock, as the model records it (with its offset, for JUnit and run.json).
pub fn now() -> DateTime<FixedOffset> {
    DateTime::<Utc>::from(std::time::SystemTime::now()).fixed_offset()
}

/// How a process ended, for people: "exited with 1", "was killed by signal 9 (SIGKILL)".
pub fn describe(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}{}", signal_name(sig)),
        (None, None) => "ended without a status".to_string(),
    }
}

/// ` (SIGABRT)` for the signals a test process commonly dies of, numbered as on this system
/// (SIGBUS is 7 on Linux and 10 on macOS), else "".
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => " (SIGHUP)",
        libc::SIGINT => " (SIGINT)",
        libc::SIGQUIT => " (SIGQUIT)",
        libc::SIGILL => " (SIGILL)",
        libc::SIGTRAP => " (SIGTRAP)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGBUS => " (SIGBUS)",
        libc::SIGFPE => " (SIGFPE)",
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGUSR1 => " (SIGUSR1)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGUSR2 => " (SIGUSR2)",
        libc::SIGPIPE => " (SIGPIPE)",
        libc::SIGALRM => " (SIGALRM)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGXCPU => " (SIGXCPU)",
        libc::SIGSYS => " (SIGSYS)",
        _ => "",
    }
}
