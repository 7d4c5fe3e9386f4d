//! `run.json` as types: the one definition of what the record holds, written by the record
//! sink and read back (the previous run's durations) through the same structs.
//! `docs/run.schema.json` describes the same keys for other readers; a test holds the two
//! together and validates real records against the schema.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::model::Counts;

/// Raised when a key changes meaning or goes away; new keys keep it.
pub const SCHEMA_VERSION: u32 = 1;

/// One invocation's record. Every key is always written (`null` when unknown), in this
/// order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema_version: u32,
    pub xtask_version: String,
    /// The arguments after `cargo xtask`.
    pub invocation: Vec<String>,
    pub run_id: String,
    pub started_at: String,
    pub root: PathBuf,
    /// `running` while the invocation runs (a record left so by a killed invocation stays
    /// so), `finished` once it has ended.
    pub status: Status,
    /// The process id of the invocation.
    pub pid: u32,
    /// The run's outcome: the most serious of its suites' (`null` when no suite ran).
    pub outcome: Option<String>,
    pub duration_secs: Option<f64>,
    pub git: Option<Git>,
    pub uv: Option<Tool>,
    /// The merged JUnit report, relative to the root.
    pub junit: Option<String>,
    pub suites: Vec<SuiteRecord>,
    /// The smoke run's health snapshot of its services and prerequisites.
    pub health: Option<Vec<HealthRecord>>,
    pub exit_code: Option<u8>,
    pub exit_code_name: Option<String>,
    /// The errors that decided the exit code other than the suites' outcomes.
    pub error: Option<String>,
    /// The xtask's own peak resident memory (not its children's).
    pub peak_rss_bytes: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Finished,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Git {
    pub commit: String,
    /// Uncommitted changes or untracked files.
    pub dirty: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tool {
    pub path: PathBuf,
    pub version: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuiteRecord {
    pub name: String,
    pub group: String,
    pub dir: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub counts: Counts,
    pub started_at: String,
    pub duration_secs: f64,
    pub timeout_secs: u64,
    pub environment: EnvironmentRecord,
    /// Where pytest ran.
    pub cwd: PathBuf,
    /// What the xtask set for pytest (masked).
    pub env: serde_json::Map<String, Value>,
    pub env_removed: Vec<String>,
    /// Each step, in order.
    pub commands: Vec<CommandRecord>,
    pub log: String,
    pub junit: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnvironmentRecord {
    /// Relative to the root when below it.
    pub path: String,
    pub key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommandRecord {
    /// `environment`, `pytest`, `retry`, ...
    pub step: String,
    pub argv: Vec<String>,
    /// `null` when no process ran, or it was ended by a signal.
    pub exit_code: Option<i32>,
    /// Why no process ran (an environment found up to date).
    pub skipped: Option<String>,
    pub signal: Option<i32>,
    pub duration_secs: f64,
}

/// One service or prerequisite as the smoke run found it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HealthRecord {
    pub name: String,
    /// `env`, `tcp`, `http`, `command` or `service`.
    pub kind: String,
    /// What was checked: a variable's name (never its value), `host:port`, a URL without
    /// its user-info, a command line.
    pub target: String,
    pub available: bool,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
    pub checked_at: String,
}
