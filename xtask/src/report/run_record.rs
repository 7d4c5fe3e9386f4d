//! `run.json` as types: the one definition of what the record holds, written by the record
//! sink and read back (the previous run's durations) through the same structs.
//! `docs/run.schema.json`, for other readers, is generated from these types (their doc
//! comments are its descriptions) by a unit test below, which fails when the committed file
//! differs (`XTASK_BLESS=1 cargo test -p xtask --lib run_record` rewrites it); integration
//! tests validate real records against it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::model::Counts;

/// Raised when a key changes meaning or goes away; new keys keep it.
pub const SCHEMA_VERSION: u32 = 1;

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
    #[cfg_attr(test, schemars(range(min = 0.0)))]
    pub duration_secs: f64,
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
    #[cfg_attr(test, schemars(range(min = 0.0)))]
    pub duration_secs: f64,
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

/// Reads the record at `path` through these types. A file that is missing, not JSON, of
/// another `schema_version` or not a record is a usage error naming the file.
pub fn load(path: &std::path::Path) -> Result<RunRecord, crate::error::Error> {
    use crate::error::Error;
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|err| Error::Usage(format!("cannot read the run record {shown}: {err}")))?;
    #[derive(Deserialize)]
    struct Version {
        schema_version: Option<Value>,
    }
    let version: Version = serde_json::from_str(&text).map_err(|err| {
        Error::Usage(format!(
            "{shown} is not a run record: it is not a JSON object ({err})"
        ))
    })?;
    match version.schema_version {
        Some(v) if v.as_u64() == Some(u64::from(SCHEMA_VERSION)) => {}
        Some(v) => {
            return Err(Error::Usage(format!(
                "{shown} has schema_version {v}; this xtask reads only schema_version \
                 {SCHEMA_VERSION} (read it with the xtask that wrote it: its \
                 `xtask_version`)"
            )))
        }
        None => {
            return Err(Error::Usage(format!(
                "{shown} is not a run record: it has no schema_version"
            )))
        }
    }
    serde_json::from_str(&text).map_err(|err| {
        Error::Usage(format!(
            "{shown} is not a run record of schema_version {SCHEMA_VERSION}: {err}"
        ))
    })
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
            "Generated from xtask/src/report/run_record.rs by its unit test; do not edit by hand."
                .into(),
        );
        serde_json::to_string_pretty(&schema).expect("a schema serializes") + "\n"
    }

    #[test]
    fn the_committed_schema_is_the_one_the_types_generate() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/run.schema.json");
        let generated = generated_schema();
        if std::env::var_os("XTASK_BLESS").is_some() {
            std::fs::write(&path, &generated).expect("writing docs/run.schema.json");
            return;
        }
        let committed = std::fs::read_to_string(&path).expect("reading docs/run.schema.json");
        assert!(
            committed == generated,
            "docs/run.schema.json is not what run_record.rs's types generate; rerun with \
             XTASK_BLESS=1 cargo test -p xtask --lib run_record to rewrite it"
        );
    }
}
