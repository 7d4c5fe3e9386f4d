//! The run record: `target/xtask/run.json`, the evidence of exactly how a result was
//! obtained (what ran, where, with which tools and variables), written when the run ends.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, FixedOffset};
use serde_json::{json, Value};

use crate::events::{Event, Sink};
use crate::exit_codes;
pub use crate::model::now;
use crate::model::{StepRecord, SuiteResult};
use crate::outcome::Outcome;
use crate::paths::{write_atomically, Layout};
use crate::redact::Redactor;

/// The record of an invocation that ended before any suite ran (a broken manifest, an
/// unknown suite): no suites, the exit code, and the error that decided it.
pub fn write_without_suites(
    layout: &Layout,
    started_at: DateTime<FixedOffset>,
    exit_code: u8,
    error: Option<&str>,
) -> anyhow::Result<()> {
    // This invocation's own directory, and `latest` pointing at it, as for any run.
    let _run_dir = crate::runs::RunDir::open(layout)?;
    let redactor = Redactor::from_env(&[], &[]);
    let code_name = exit_codes::name(exit_code);
    let message = error.unwrap_or(code_name);
    crate::report::junit::write_without_suites(layout, code_name, message, &redactor)?;
    let rest = json!({
        "outcome": null,
        "exit_code": exit_code,
        "exit_code_name": exit_codes::name(exit_code),
        "error": error,
        "suites": [],
    });
    write(layout, started_at, rest, &redactor)
}

/// The record of an invocation that is still running: if it is killed outright, this is
/// what `run.json` says, never an older invocation's result.
pub fn write_running(layout: &Layout, started_at: DateTime<FixedOffset>) -> anyhow::Result<()> {
    let rest = json!({
        "outcome": null,
        "exit_code": null,
        "status": "running",
        "pid": std::process::id(),
        "suites": [],
    });
    write(layout, started_at, rest, &Redactor::from_env(&[], &[]))
}

/// Writes the fields every record starts with, then `rest`.
fn write(
    layout: &Layout,
    started_at: DateTime<FixedOffset>,
    rest: Value,
    redactor: &Redactor,
) -> anyhow::Result<()> {
    let mut record = json!({
        "xtask_version": env!("CARGO_PKG_VERSION"),
        "invocation": std::env::args().skip(1).collect::<Vec<_>>(),
        "run_id": layout.run_id,
        "started_at": started_at.to_rfc3339(),
        "root": layout.root,
    });
    if let (Value::Object(record), Value::Object(rest)) = (&mut record, rest) {
        record.extend(rest);
    }
    if let Value::Object(record) = &mut record {
        record.insert("peak_rss_bytes".into(), json!(peak_rss_bytes()));
    }
    // Masked as values, before serializing: masking can never make the JSON invalid.
    let record = redactor.json(record);
    let text = serde_json::to_string_pretty(&record).context("serializing run.json")?;
    write_atomically(&layout.run_record(), (text + "\n").as_bytes())
}

/// What is known about the invocation before any suite runs.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub started_at: DateTime<FixedOffset>,
    pub git: Option<Git>,
    pub uv: Option<Tool>,
}

#[derive(Clone, Debug)]
pub struct Git {
    pub commit: String,
    pub dirty: bool,
}

#[derive(Clone, Debug)]
pub struct Tool {
    pub path: PathBuf,
    pub version: String,
}

impl RunInfo {
    /// Asks git, uv and Python what they are. Each is `None` when it cannot say.
    pub fn gather(
        layout: &Layout,
        uv: Option<&Path>,
        started_at: DateTime<FixedOffset>,
    ) -> RunInfo {
        let git = || -> Option<Git> {
            let commit = output(Path::new("git"), &["rev-parse", "HEAD"], &layout.root)?;
            // No optional locks: a run must never hold the index lock a developer's own
            // `git commit` needs at the same moment.
            let status = output(
                Path::new("git"),
                &["--no-optional-locks", "status", "--porcelain"],
                &layout.root,
            )?;
            Some(Git {
                commit,
                dirty: !status.is_empty(),
            })
        };
        let uv_tool = uv.and_then(|uv| {
            Some(Tool {
                path: uv.to_path_buf(),
                version: crate::toolchain::uv_version(layout, uv, || {
                    output(uv, &["--version"], &layout.root)
                })?,
            })
        });
        RunInfo {
            started_at,
            git: git(),
            uv: uv_tool,
        }
    }
}

/// How long a query of git or uv may take.
const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The trimmed stdout of a command that succeeded, run through the step layer.
fn output(program: &Path, args: &[&str], cwd: &Path) -> Option<String> {
    let mut argv = vec![program.to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let invocation = crate::invocation::Invocation::new(argv, cwd, vec![]);
    let deadline = crate::process::deadline_after(std::time::Instant::now(), QUERY_TIMEOUT);
    let ran = crate::step::capture(&invocation, deadline, &Redactor::default()).ok()?;
    ran.success().then(|| ran.stdout.trim().to_string())
}

/// Collects the run for `run.json`; the session writes it last, with the exit code that
/// also accounts for reports that could not be written.
pub struct RecordSink {
    layout: Layout,
    info: RunInfo,
    redactor: Redactor,
    finished: Option<(Outcome, Value)>,
    /// More top-level keys of run.json (`health`: the smoke run's health snapshot).
    extra: Vec<(String, Value)>,
    /// `--require-all`: whether an unavailable prerequisite decides the run's outcome.
    pub require_all: bool,
}

impl RecordSink {
    pub fn new(layout: &Layout, info: RunInfo, redactor: Redactor) -> RecordSink {
        RecordSink {
            layout: layout.clone(),
            info,
            redactor,
            finished: None,
            extra: Vec::new(),
            require_all: true,
        }
    }

    /// Adds a top-level key to run.json.
    pub fn set(&mut self, key: &str, value: Value) {
        self.extra.push((key.to_string(), value));
    }

    /// Writes run.json with the run's exit code and the errors that changed it.
    pub fn write(&self, exit_code: u8, errors: &[String]) -> anyhow::Result<()> {
        let (outcome, mut rest) = self
            .finished
            .clone()
            .unwrap_or((Outcome::Interrupted, json!({ "suites": [] })));
        if let Value::Object(rest) = &mut rest {
            rest.insert("outcome".into(), json!(outcome.name()));
            for (key, value) in &self.extra {
                rest.insert(key.clone(), value.clone());
            }
            rest.insert("exit_code".into(), json!(exit_code));
            rest.insert("exit_code_name".into(), json!(exit_codes::name(exit_code)));
            rest.insert(
                "error".into(),
                if errors.is_empty() {
                    Value::Null
                } else {
                    json!(errors.join("; "))
                },
            );
        }
        write(&self.layout, self.info.started_at, rest, &self.redactor)
    }
}

impl Sink for RecordSink {
    fn handle(&mut self, event: &Event<'_>) -> anyhow::Result<()> {
        let Event::RunFinished {
            plans,
            results,
            duration,
        } = event
        else {
            return Ok(());
        };
        let overall = Outcome::deciding(results.iter().map(|r| r.outcome), self.require_all);
        let layout = &self.layout;
        let suites: Vec<Value> = plans
            .iter()
            .zip(results.iter())
            .map(|(plan, result)| {
                json!({
                    "name": plan.suite.name,
                    "group": plan.suite.group,
                    "dir": plan.suite.dir,
                    "outcome": result.outcome.name(),
                    "detail": result.detail,
                    "counts": counts(result),
                    "started_at": result.started.to_rfc3339(),
                    "duration_secs": result.duration.as_secs_f64(),
                    "timeout_secs": plan.timeout.as_secs(),
                    "environment": {
                        "path": layout.display(&plan.env.path),
                        "key": plan.env.key,
                    },
                    "cwd": plan.test.cwd,
                    "env": plan.test.env.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect::<serde_json::Map<String, Value>>(),
                    "env_removed": plan.test.env_remove,
                    "commands": result.steps.iter().map(step).collect::<Vec<_>>(),
                    "log": layout.display(&plan.log),
                    "junit": layout.display(&plan.junit),
                })
            })
            .collect();
        let tool = |tool: &Option<Tool>| {
            tool.as_ref()
                .map(|t| json!({ "path": t.path, "version": t.version }))
        };
        let rest = json!({
            "duration_secs": duration.as_secs_f64(),
            "git": self.info.git.as_ref().map(|g| json!({ "commit": g.commit, "dirty": g.dirty })),
            "uv": tool(&self.info.uv),
            "junit": layout.display(&layout.junit_report()),
            "suites": suites,
        });
        self.finished = Some((overall, rest));
        Ok(())
    }
}

/// How long each suite took in the latest invocation, from its run.json (empty when there
/// is none or it cannot be read): the session starts long suites first.
pub fn previous_durations(layout: &Layout) -> std::collections::HashMap<String, f64> {
    let path = layout.latest().join("run.json");
    let Some(record) = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
    else {
        return Default::default();
    };
    record["suites"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some((
                s["name"].as_str()?.to_string(),
                s["duration_secs"].as_f64()?,
            ))
        })
        .collect()
}

/// The xtask's own peak resident memory (not its children's), for the benchmark.
pub fn peak_rss_bytes() -> Option<u64> {
    // SAFETY: getrusage fills the struct it is given and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `usage` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let max = u64::try_from(usage.ru_maxrss).ok()?;
    // Linux reports KiB, macOS bytes.
    Some(if cfg!(target_os = "macos") {
        max
    } else {
        max * 1024
    })
}

fn counts(result: &SuiteResult) -> Value {
    let c = result.counts();
    json!({
        "tests": c.tests,
        "passed": c.passed,
        "failed": c.failed,
        "errors": c.errors,
        "skipped": c.skipped,
        "deselected": c.deselected,
        "flaky": c.flaky,
    })
}

fn step(step: &StepRecord) -> Value {
    json!({
        "step": step.step,
        "argv": step.argv,
        "exit_code": step.exit_code,
        "skipped": step.skipped,
        "signal": step.signal,
        "duration_secs": step.duration.as_secs_f64(),
    })
}
