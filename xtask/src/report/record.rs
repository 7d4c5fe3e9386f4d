//! The run record: `target/xtask/run.json`, the evidence of exactly how a result was
//! obtained (what ran, where, with which tools and variables), written when the run ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{json, Value};

use crate::exit_codes;
use crate::outcome::Outcome;
use crate::paths::{write_atomically, Layout};
use crate::redact::Redactor;
use crate::runner::{Event, Sink, StepRecord, SuiteResult};

static WRITTEN: AtomicBool = AtomicBool::new(false);

/// Whether this process has written run.json.
pub fn written() -> bool {
    WRITTEN.load(Ordering::SeqCst)
}

pub fn now() -> DateTime<FixedOffset> {
    DateTime::<Utc>::from(std::time::SystemTime::now()).fixed_offset()
}

/// The record of an invocation that ended before any suite ran (a broken manifest, an
/// unknown suite): no suites, the exit code, and the error that decided it.
pub fn write_without_suites(
    layout: &Layout,
    started_at: DateTime<FixedOffset>,
    exit_code: u8,
    error: Option<&str>,
) -> anyhow::Result<()> {
    let rest = json!({
        "outcome": null,
        "exit_code": exit_code,
        "exit_code_name": exit_codes::name(exit_code),
        "error": error,
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
    // Masked before serializing, so masking cannot damage the JSON.
    let record = redactor.json(record);
    let text = serde_json::to_string_pretty(&record).context("serializing run.json")?;
    write_atomically(&layout.run_record(), (text + "\n").as_bytes())?;
    WRITTEN.store(true, Ordering::SeqCst);
    Ok(())
}

/// What is known about the invocation before any suite runs.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub started_at: DateTime<FixedOffset>,
    pub git: Option<Git>,
    pub uv: Option<Tool>,
    pub python: Option<Tool>,
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
            let status = output(Path::new("git"), &["status", "--porcelain"], &layout.root)?;
            Some(Git {
                commit,
                dirty: !status.is_empty(),
            })
        };
        let uv_tool = uv.and_then(|uv| {
            Some(Tool {
                path: uv.to_path_buf(),
                version: output(uv, &["--version"], &layout.root)?,
            })
        });
        // The interpreter uv picks when a suite does not ask for another.
        let python = uv.and_then(|uv| {
            let path = PathBuf::from(output(uv, &["python", "find"], &layout.root)?);
            let version = output(&path, &["--version"], &layout.root)?;
            Some(Tool { path, version })
        });
        RunInfo {
            started_at,
            git: git(),
            uv: uv_tool,
            python,
        }
    }
}

/// The trimmed stdout of a command that succeeded.
fn output(program: &Path, args: &[&str], cwd: &Path) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub struct RecordSink {
    layout: Layout,
    info: RunInfo,
    redactor: Redactor,
}

impl RecordSink {
    pub fn new(layout: &Layout, info: RunInfo, redactor: Redactor) -> RecordSink {
        RecordSink {
            layout: layout.clone(),
            info,
            redactor,
        }
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
        let overall = Outcome::overall(results.iter().map(|r| r.outcome));
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
            "python": tool(&self.info.python),
            "outcome": overall.name(),
            "exit_code": overall.exit_code(),
            "exit_code_name": exit_codes::name(overall.exit_code()),
            "junit": layout.display(&layout.junit_report()),
            "suites": suites,
        });
        write(layout, self.info.started_at, rest, &self.redactor)
    }
}

fn counts(result: &SuiteResult) -> Value {
    let c = result.counts();
    json!({
        "tests": c.tests,
        "passed": c.passed,
        "failed": c.failed,
        "errors": c.errors,
        "skipped": c.skipped,
    })
}

fn step(step: &StepRecord) -> Value {
    json!({
        "step": step.step,
        "argv": step.argv,
        "exit_code": step.exit_code,
        "signal": step.signal,
        "duration_secs": step.duration.as_secs_f64(),
    })
}
