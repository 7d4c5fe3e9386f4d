//! `run.json` as types: the one definition of what the record holds, written by the record
//! sink and read back (the previous run's durations) through the same structs.
//! `docs/run.schema.json`, for other readers, is generated from these types (their doc
//! comments are its descriptions) by a unit test below, which fails when the committed file
//! differs (`XTASK_BLESS=1 cargo test -p xtask-data run_record` rewrites it); integration
//! tests validate real records against it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::model::Counts;

/// Raised whenever the record's shape changes: a key added, changed in meaning or removed.
/// The schema is closed (every key is always written, no other is allowed), so each
/// version names exactly one schema. 2 added the tests, the steps' and suites' start
/// offsets, the workers and the services; 3 when the run was interrupted, which services
/// died, a rerun that had nothing to run, and how many tests each retry ran.
pub const SCHEMA_VERSION: u32 = 4;

/// One invocation's record. Every key is always written (`null` when unknown), in this
/// order.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct RunRecord {
    #[cfg_attr(test, schemars(extend("const" = SCHEMA_VERSION)))]
    pub schema_version: u32,
    pub xtask_version: String,
    /// The arguments after `cargo xtask`.
    pub invocation: Vec<String>,
    pub run_id: String,
    #[cfg_attr(test, schemars(extend("format" = "date-time")))]
    pub started_at: String,
    pub root: PathBuf,
    /// `running` while the invocation runs (a record left so by a killed invocation stays
    /// so), `finished` once it has ended.
    pub status: Status,
    /// The process id of the invocation.
    pub pid: u32,
    /// The run's outcome: the most serious of its suites' (`null` when no suite ran).
    pub outcome: Option<String>,
    #[cfg_attr(test, schemars(range(min = 0.0)))]
    pub duration_secs: Option<f64>,
    /// How many suites ran at once at most: the lanes of the worker pool (`null` when no
    /// suite ran).
    pub jobs: Option<usize>,
    /// The run this one reruns (`--rerun`), `null` for a run of its own.
    pub rerun_of: Option<RerunOf>,
    pub git: Option<Git>,
    pub uv: Option<Tool>,
    /// The merged JUnit report, relative to the root.
    pub junit: Option<String>,
    pub suites: Vec<SuiteRecord>,
    /// The services the run started, in the order they started.
    pub services: Vec<ServiceRecord>,
    /// The smoke run's health snapshot of its services and prerequisites.
    pub health: Option<Vec<HealthRecord>>,
    pub exit_code: Option<u8>,
    pub exit_code_name: Option<String>,
    /// The errors that decided the exit code other than the suites' outcomes.
    pub error: Option<String>,
    /// Seconds from `started_at` to when SIGINT, SIGTERM or SIGHUP arrived and the run
    /// began to stop (`null` when it was not interrupted).
    pub interrupted_offset_secs: Option<f64>,
    /// The xtask's own peak resident memory (not its children's).
    pub peak_rss_bytes: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Finished,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct Git {
    pub commit: String,
    /// Uncommitted changes or untracked files.
    pub dirty: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct Tool {
    pub path: PathBuf,
    pub version: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct SuiteRecord {
    pub name: String,
    pub group: String,
    pub dir: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub counts: Counts,
    #[cfg_attr(test, schemars(extend("format" = "date-time")))]
    pub started_at: String,
    /// Seconds from the run's `started_at` to the suite's.
    pub started_offset_secs: f64,
    #[cfg_attr(test, schemars(range(min = 0.0)))]
    pub duration_secs: f64,
    /// The lane of the worker pool that ran it (0 to `jobs - 1`); `null` when it never
    /// reached one (the run was interrupted first).
    pub worker: Option<usize>,
    pub timeout_secs: u64,
    pub environment: EnvironmentRecord,
    /// Where pytest ran.
    pub cwd: PathBuf,
    /// What the xtask set for pytest (masked).
    #[cfg_attr(test, schemars(with = "std::collections::BTreeMap<String, String>"))]
    pub env: serde_json::Map<String, Value>,
    pub env_removed: Vec<String>,
    /// Each step, in order.
    pub commands: Vec<CommandRecord>,
    pub log: String,
    pub junit: String,
    /// Every test, in the order of pytest's report, then those first seen on a retry; a
    /// suite whose tests did not all run has a `synthetic` test saying why.
    pub tests: Vec<TestRecord>,
    /// Not run by this run: its inputs were exactly those of the run named here, where it
    /// passed, and its tests are that run's (the result cache); `null` when it ran.
    #[serde(default)]
    pub cached: Option<CachedRecord>,
}

/// Where a cached suite's result comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct CachedRecord {
    /// The run that ran it.
    pub run_id: String,
    #[cfg_attr(test, schemars(extend("format" = "date-time")))]
    pub started_at: String,
    /// How long the suite took in that run.
    #[cfg_attr(test, schemars(range(min = 0.0)))]
    pub duration_secs: f64,
    /// The cache key: the SHA-256 of every input (`cargo xtask cache explain` lists them).
    pub key: String,
}

/// One test of a suite and every attempt at it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct TestRecord {
    /// pytest's node id relative to the suite's directory (what `cargo xtask test SUITE --
    /// NODE_ID` runs); `null` for a test pytest never started (a collection error, a
    /// synthetic test).
    pub node_id: Option<String>,
    /// pytest's JUnit classname and name: the test's identity in junit.xml.
    pub classname: String,
    pub name: String,
    /// Relative to the repository root.
    pub file: Option<String>,
    /// 1-based, the `def` of a decorated test.
    pub line: Option<u64>,
    /// Its last attempt's outcome, or `flaky` when that passed after one that did not.
    pub outcome: TestOutcome,
    /// All its attempts' time, as pytest's report gives it.
    #[cfg_attr(test, schemars(range(min = 0.0)))]
    pub duration_secs: Option<f64>,
    /// Made up by the xtask to stand for a suite whose tests did not all run.
    pub synthetic: bool,
    /// Every attempt in order (the first run, then each `--retries` run); never empty.
    pub attempts: Vec<AttemptRecord>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum TestOutcome {
    Passed,
    Failed,
    Error,
    Skipped,
    Flaky,
}

impl TestOutcome {
    /// Its name, as run.json writes it.
    pub fn name(self) -> &'static str {
        match self {
            TestOutcome::Passed => "passed",
            TestOutcome::Failed => "failed",
            TestOutcome::Error => "error",
            TestOutcome::Skipped => "skipped",
            TestOutcome::Flaky => "flaky",
        }
    }
}

impl TestRecord {
    /// What the test is called in a report: its node id, else pytest's classname and name.
    pub fn label(&self) -> String {
        match &self.node_id {
            Some(id) => id.clone(),
            None if self.classname.is_empty() => self.name.clone(),
            None => format!("{}::{}", self.classname, self.name),
        }
    }
}

/// How one attempt of a test went.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct AttemptRecord {
    /// `passed`, `failed`, `error` or `skipped`.
    pub outcome: TestOutcome,
    /// Seconds from the run's `started_at` to the attempt's start, as the xtask's pytest
    /// plugin noted it; `null` when pytest never started it.
    pub started_offset_secs: Option<f64>,
    #[cfg_attr(test, schemars(range(min = 0.0)))]
    pub duration_secs: Option<f64>,
    /// The one-line reason (an assertion's message, a skip's reason).
    pub message: Option<String>,
    /// The kind of failure or skip (`AssertionError`, `pytest.skip`, an outcome's name).
    pub kind: Option<String>,
    /// The traceback of a failure or error (`null` for other attempts: the JUnit report
    /// and the log keep everything).
    pub details: Option<String>,
}

/// A service the run started, as it went: started, ready (or not), stopped.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct ServiceRecord {
    pub name: String,
    /// Seconds from the run's `started_at` to the service's start (its environment built
    /// first when it runs in a suite's).
    pub started_offset_secs: f64,
    /// From its start until it answered its readiness check, or failed to.
    #[cfg_attr(test, schemars(range(min = 0.0)))]
    pub duration_secs: f64,
    pub ready: bool,
    /// Seconds from the run's `started_at` to when the xtask stopped it after the run
    /// (`null` when it did not: it never became ready).
    pub stopped_offset_secs: Option<f64>,
    /// How it ended when stopped.
    pub stopped: Option<String>,
    /// Seconds from the run's `started_at` to when the xtask saw that it had ended by
    /// itself while the run still needed it (`null` when it did not).
    pub died_offset_secs: Option<f64>,
    /// How it ended then (`exited with 1`, `was killed by signal 9 (SIGKILL)`).
    pub died: Option<String>,
}

/// The run a `--rerun` reran, and how the chain stands after this one.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct RerunOf {
    /// Its directory's name under `target/xtask/runs/`.
    pub run_id: String,
    /// Its run.json, in its own run directory (never through `latest`).
    pub path: PathBuf,
    /// Its failing tests (failed or errored) that this run ran again...
    pub failing: usize,
    /// ...of which passed (or were skipped) now,
    pub now_pass: usize,
    /// failed again,
    pub still_fail: usize,
    /// were not reached (their suite did not run to its end),
    pub not_run: usize,
    /// or no longer exist (`suite: node id`).
    pub gone: Vec<String>,
    /// Its suites that did not run to their end, run whole again...
    pub whole_suites: usize,
    /// ...of which ran to their end now.
    pub whole_suites_ran: usize,
    /// Tests this run ran that the source did not record: added since.
    pub new_tests: usize,
    /// Its suites that needed a rerun but the manifest no longer has.
    pub removed_suites: Vec<String>,
    /// Why this rerun ran nothing (it ran no suite: nothing was left failing, or what was
    /// is not selected by its command); `null` when it ran something.
    pub nothing_to_run: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct EnvironmentRecord {
    /// Relative to the root when below it.
    pub path: String,
    pub key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct CommandRecord {
    /// `environment`, `pytest`, `retry`, ...
    pub step: String,
    pub argv: Vec<String>,
    /// `null` when no process ran, or it was ended by a signal.
    pub exit_code: Option<i32>,
    /// Why no process ran (an environment found up to date).
    pub skipped: Option<String>,
    pub signal: Option<i32>,
    /// Seconds from the run's `started_at` to the step's start.
    pub started_offset_secs: f64,
    #[cfg_attr(test, schemars(range(min = 0.0)))]
    pub duration_secs: f64,
    /// A `retry` step: how many tests it ran again (`null` for other steps)...
    pub tests: Option<usize>,
    /// ...and how many of them had never run before (pytest stopped before them).
    pub never_ran: Option<usize>,
    /// The slice (`K/N`) of a suite split across processes (`split`) that the step ran;
    /// `null` when the suite was not split.
    #[serde(default)]
    pub slice: Option<String>,
}

/// One service or prerequisite as the smoke run found it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct HealthRecord {
    pub name: String,
    /// `env`, `tcp`, `http`, `command` or `service`.
    #[cfg_attr(
        test,
        schemars(extend("enum" = ["env", "tcp", "http", "command", "service"]))
    )]
    pub kind: String,
    /// What was checked: a variable's name (never its value), `host:port`, a URL without
    /// its user-info, a command line.
    pub target: String,
    pub available: bool,
    #[cfg_attr(test, schemars(range(min = 0.0)))]
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
    #[cfg_attr(test, schemars(extend("format" = "date-time")))]
    pub checked_at: String,
}

/// Why a record could not be read: the message names the file and says what it is instead.
/// The xtask reports it as a usage error.
#[derive(Debug)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// Reads the record at `path` through these types. A file that is missing, not JSON, of
/// another `schema_version` or not a record is a [`LoadError`] naming the file.
pub fn load(path: &std::path::Path) -> Result<RunRecord, LoadError> {
    use LoadError as Error;
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|err| Error(format!("cannot read the run record {shown}: {err}")))?;
    #[derive(Deserialize)]
    struct Version {
        schema_version: Option<Value>,
    }
    let version: Version = serde_json::from_str(&text).map_err(|err| {
        Error(format!(
            "{shown} is not a run record: it is not a JSON object ({err})"
        ))
    })?;
    match version.schema_version {
        Some(v) if v.as_u64() == Some(u64::from(SCHEMA_VERSION)) => {}
        Some(v) => {
            return Err(Error(format!(
                "{shown} has schema_version {v}; this xtask reads only schema_version \
                 {SCHEMA_VERSION} (read it with the xtask that wrote it: its \
                 `xtask_version`)"
            )))
        }
        None => {
            return Err(Error(format!(
                "{shown} is not a run record: it has no schema_version"
            )))
        }
    }
    serde_json::from_str(&text).map_err(|err| {
        Error(format!(
            "{shown} is not a run record of schema_version {SCHEMA_VERSION}: {err}"
        ))
    })
}

impl RunRecord {
    /// The record as run.json holds it ([`Layered`], a line break at the end). In this
    /// crate, so that serde's code for 20,000 tests is compiled with its optimisations.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let mut text = Vec::new();
        let mut serializer = serde_json::Serializer::with_formatter(&mut text, Layered::new(4));
        Serialize::serialize(self, &mut serializer)?;
        text.push(b'\n');
        Ok(text)
    }
}

/// JSON indented down to `levels` deep and compact below: each test (and each command) of
/// a suite is one line. As readable as fully indented JSON for a person, half its size
/// for 20,000 tests, and written in half the time.
struct Layered {
    pretty: serde_json::ser::PrettyFormatter<'static>,
    depth: usize,
    levels: usize,
}

impl Layered {
    fn new(levels: usize) -> Layered {
        Layered {
            pretty: serde_json::ser::PrettyFormatter::new(),
            depth: 0,
            levels,
        }
    }

    fn indented(&self) -> bool {
        self.depth <= self.levels
    }
}

/// The structural calls go to the pretty formatter at the indented levels, else to the
/// compact one (serde_json's default methods); values are written the same either way.
macro_rules! layered {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<W: ?Sized + std::io::Write>(&mut self, writer: &mut W $(, $arg: $ty)*) -> std::io::Result<()> {
            if self.indented() {
                self.pretty.$method(writer $(, $arg)*)
            } else {
                serde_json::ser::CompactFormatter.$method(writer $(, $arg)*)
            }
        }
    )*};
}

impl serde_json::ser::Formatter for Layered {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        if self.indented() {
            self.pretty.begin_array(writer)
        } else {
            serde_json::ser::CompactFormatter.begin_array(writer)
        }
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        if self.indented() {
            self.pretty.begin_object(writer)
        } else {
            serde_json::ser::CompactFormatter.begin_object(writer)
        }
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        let written = if self.indented() {
            self.pretty.end_array(writer)
        } else {
            serde_json::ser::CompactFormatter.end_array(writer)
        };
        self.depth -= 1;
        written
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        let written = if self.indented() {
            self.pretty.end_object(writer)
        } else {
            serde_json::ser::CompactFormatter.end_object(writer)
        };
        self.depth -= 1;
        written
    }

    layered! {
        begin_array_value(first: bool);
        end_array_value();
        begin_object_key(first: bool);
        begin_object_value();
        end_object_value();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON Schema of run.json, as the types serialize it.
    fn generated_schema() -> String {
        let mut settings = schemars::generate::SchemaSettings::draft2020_12().for_serialize();
        // One self-contained document a reader can follow without `$ref`s.
        settings.inline_subschemas = true;
        let mut schema = settings
            .into_generator()
            .into_root_schema_for::<RunRecord>();
        schema.insert(
            "$id".into(),
            "https://example.invalid/xtask/run.schema.json".into(),
        );
        schema.insert(
            "title".into(),
            "cargo xtask run record (target/xtask/run.json)".into(),
        );
        schema.insert(
            "description".into(),
            "Generated from xtask/data/src/run_record.rs by its unit test; do not edit by hand."
                .into(),
        );
        serde_json::to_string_pretty(&schema).expect("a schema serializes") + "\n"
    }

    #[test]
    fn the_committed_schema_is_the_one_the_types_generate() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/run.schema.json");
        let generated = generated_schema();
        if std::env::var_os("XTASK_BLESS").is_some() {
            std::fs::write(&path, &generated).expect("writing docs/run.schema.json");
            return;
        }
        let committed = std::fs::read_to_string(&path).expect("reading docs/run.schema.json");
        assert!(
            committed == generated,
            "docs/run.schema.json is not what run_record.rs's types generate; rerun with \
             XTASK_BLESS=1 cargo test -p xtask-data run_record to rewrite it"
        );
    }
}
