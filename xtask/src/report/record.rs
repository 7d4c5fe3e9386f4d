//! The run record: `target/xtask/run.json`, the evidence of exactly how a result was
//! obtained (what ran, where, with which tools and variables), written when the run ends.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use crate::events::{Event, Sink};
use crate::exit_codes;
pub use crate::model::now;
use crate::model::{CaseStatus, StepRecord, TestCase};
use crate::outcome::Outcome;
use crate::paths::{write_atomically, Layout};
use crate::redact::Redactor;
use crate::report::html;
use crate::report::run_record::{
    AttemptRecord, CachedRecord, CommandRecord, EnvironmentRecord, HealthRecord, RerunOf,
    RunRecord, ServiceRecord, Status, SuiteRecord, TestOutcome, TestRecord, SCHEMA_VERSION,
};
pub use crate::report::run_record::{Git, Tool};

/// The record of an invocation that ended before any suite ran (a broken manifest, an
/// unknown suite): no suites, the exit code, and the error that decided it.
pub fn write_without_suites(
    layout: &Layout,
    started_at: DateTime<FixedOffset>,
    exit_code: u8,
    error: Option<&str>,
) -> anyhow::Result<()> {
    // This invocation's own directory, and `latest` pointing at it, as for any run. Finished
    // runs are pruned only as a manifest that can be read says.
    let retention = crate::manifest::Manifest::load(layout).ok().map(|m| m.runs);
    let _run_dir = crate::runs::RunDir::open(layout, retention.as_ref())?;
    let redactor = Redactor::from_env(&[], &[]);
    let code_name = exit_codes::name(exit_code);
    let message = error.unwrap_or(code_name);
    crate::report::junit::write_without_suites(layout, code_name, message, &redactor)?;
    let record = RunRecord {
        status: Status::Finished,
        exit_code: Some(exit_code),
        exit_code_name: Some(code_name.to_string()),
        error: error.map(str::to_string),
        ..base(layout, started_at)
    };
    let record = write(layout, record, &redactor)?;
    write_html(layout, &record)
}

/// The record of a `--rerun` that found nothing to run (`rerun_of.nothing_to_run` says
/// why): a finished run of no suite that passed, with its own directory, JUnit report (no
/// suite), logs directory and HTML report, so that `latest` and the stable paths lead to
/// it, `runs` lists it and the next `--rerun` continues the chain from it.
pub fn write_nothing_to_run(
    layout: &Layout,
    manifest: &crate::manifest::Manifest,
    started_at: DateTime<FixedOffset>,
    rerun_of: RerunOf,
) -> anyhow::Result<()> {
    let run_dir = crate::runs::RunDir::open(layout, Some(&manifest.runs))?;
    let redactor = Redactor::from_env(&[], &manifest.secrets);
    crate::report::junit::write_no_suites(layout)?;
    let info = RunInfo::gather(layout, None, started_at);
    let errors = &run_dir.problems;
    let exit_code = if errors.is_empty() {
        exit_codes::OK
    } else {
        exit_codes::INTERNAL_ERROR
    };
    let record = RunRecord {
        status: Status::Finished,
        outcome: Some(Outcome::Passed.name().to_string()),
        duration_secs: Some(offset(started_at, now()).max(0.0)),
        rerun_of: Some(rerun_of),
        git: info.git,
        junit: Some(layout.display(&layout.junit_report()).into_owned()),
        exit_code: Some(exit_code),
        exit_code_name: Some(exit_codes::name(exit_code).to_string()),
        error: (!errors.is_empty()).then(|| errors.join("; ")),
        ..base(layout, started_at)
    };
    let record = write(layout, record, &redactor)?;
    write_html(layout, &record)?;
    if errors.is_empty() {
        Ok(())
    } else {
        for error in errors {
            eprintln!("xtask: error: {}", redactor.text(error));
        }
        Err(crate::error::Error::Reports(errors.clone()).into())
    }
}

/// The record of an invocation that is still running: if it is killed outright, this is
/// what `run.json` says, never an older invocation's result.
pub fn write_running(layout: &Layout, started_at: DateTime<FixedOffset>) -> anyhow::Result<()> {
    let record = base(layout, started_at);
    write(layout, record, &Redactor::from_env(&[], &[])).map(drop)
}

/// What every record holds: who, when, where; running, with nothing known yet.
fn base(layout: &Layout, started_at: DateTime<FixedOffset>) -> RunRecord {
    RunRecord {
        schema_version: SCHEMA_VERSION,
        xtask_version: env!("CARGO_PKG_VERSION").to_string(),
        invocation: std::env::args().skip(1).collect(),
        run_id: layout.run_id.clone(),
        started_at: started_at.to_rfc3339(),
        root: layout.root.clone(),
        status: Status::Running,
        pid: std::process::id(),
        outcome: None,
        duration_secs: None,
        jobs: None,
        rerun_of: None,
        git: None,
        uv: None,
        junit: None,
        suites: Vec::new(),
        services: Vec::new(),
        health: None,
        exit_code: None,
        exit_code_name: None,
        error: None,
        interrupted_offset_secs: None,
        peak_rss_bytes: None,
    }
}

/// Writes `record` with the peak memory so far, masked as values before it is serialized:
/// masking can never make the JSON invalid. The tests (tens of thousands in a large run)
/// are masked already, as the sink built them, and are serialized as they are, without a
/// second pass through `serde_json::Value`: that pass would cost more than the run's
/// recording itself. Returns the record as written (masked), which is all the HTML report
/// is rendered from.
fn write(layout: &Layout, mut record: RunRecord, redactor: &Redactor) -> anyhow::Result<RunRecord> {
    record.peak_rss_bytes = peak_rss_bytes();
    let tests: Vec<Vec<TestRecord>> = record
        .suites
        .iter_mut()
        .map(|s| std::mem::take(&mut s.tests))
        .collect();
    let value = serde_json::to_value(&record).context("serializing run.json")?;
    let masked = redactor.json(value);
    // Masking changes only strings (never keys), so the types read the masked value back.
    let mut masked: RunRecord =
        serde_json::from_value(masked).context("reading back the masked run.json")?;
    for (suite, tests) in masked.suites.iter_mut().zip(tests) {
        suite.tests = tests;
    }
    let text = masked.to_json().context("serializing run.json")?;
    write_atomically(&layout.run_record(), &text)?;
    Ok(masked)
}

/// Writes `report.html` beside run.json, from the record as written (masked).
fn write_html(layout: &Layout, record: &RunRecord) -> anyhow::Result<()> {
    let page = html::render(record);
    write_atomically(&layout.html_report(), page.as_bytes())
}

/// What is known about the invocation before any suite runs.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub started_at: DateTime<FixedOffset>,
    pub git: Option<Git>,
    pub uv: Option<Tool>,
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
    /// The run's outcome, duration and suites, once it has finished.
    finished: Option<(Outcome, f64, Vec<SuiteRecord>)>,
    /// The health snapshot of the prerequisites and services the setup checked or started,
    /// in the order of their events; `None` when there were none.
    health: Option<Vec<HealthRecord>>,
    /// `--require-all`: whether an unavailable prerequisite decides the run's outcome.
    pub require_all: bool,
    /// The run this one reruns.
    pub rerun_of: Option<RerunOf>,
    /// The lanes of the worker pool, from `RunStarted`.
    jobs: Option<usize>,
    /// The worker each suite started on, by index, from `SuiteStarted`.
    workers: std::collections::HashMap<usize, usize>,
    /// The services started, from their events.
    services: Vec<ServiceRecord>,
    /// When the run was interrupted, from `Interrupted`.
    interrupted: Option<f64>,
    /// Per suite index, each retry's tests and those that never ran, from `RetryStarted`.
    retries: std::collections::HashMap<usize, Vec<(usize, usize)>>,
}

impl RecordSink {
    pub fn new(layout: &Layout, info: RunInfo, redactor: Redactor) -> RecordSink {
        RecordSink {
            layout: layout.clone(),
            info,
            redactor,
            finished: None,
            health: None,
            require_all: true,
            rerun_of: None,
            jobs: None,
            workers: Default::default(),
            services: Vec::new(),
            interrupted: None,
            retries: Default::default(),
        }
    }

    /// Seconds from the run's start to `at`.
    fn offset(&self, at: DateTime<FixedOffset>) -> f64 {
        offset(self.info.started_at, at)
    }

    /// Writes run.json with the run's exit code and the errors that changed it; returns
    /// the record as written (masked).
    pub fn write(&self, exit_code: u8, errors: &[String]) -> anyhow::Result<RunRecord> {
        let (outcome, duration, suites) =
            self.finished
                .clone()
                .unwrap_or((Outcome::Interrupted, 0.0, Vec::new()));
        let layout = &self.layout;
        let record = RunRecord {
            status: Status::Finished,
            outcome: Some(outcome.name().to_string()),
            duration_secs: Some(duration),
            jobs: self.jobs,
            rerun_of: self.rerun_of.clone(),
            git: self.info.git.clone(),
            uv: self.info.uv.clone(),
            junit: Some(layout.display(&layout.junit_report()).into_owned()),
            suites,
            services: self.services.clone(),
            health: self.health.clone(),
            exit_code: Some(exit_code),
            exit_code_name: Some(exit_codes::name(exit_code).to_string()),
            error: (!errors.is_empty()).then(|| errors.join("; ")),
            interrupted_offset_secs: self.interrupted,
            ..base(layout, self.info.started_at)
        };
        let record = write(layout, record, &self.redactor)?;
        write_html(layout, &record)?;
        Ok(record)
    }
}

impl Sink for RecordSink {
    fn handle(&mut self, event: &Event<'_>) -> anyhow::Result<()> {
        self.handle_at(now(), event)
    }

    fn handle_at(&mut self, at: DateTime<FixedOffset>, event: &Event<'_>) -> anyhow::Result<()> {
        let (plans, results, duration) = match event {
            Event::PrerequisiteChecked { health } => {
                self.health
                    .get_or_insert_with(Vec::new)
                    .push(health.record());
                return Ok(());
            }
            Event::ServiceStarting { name } => {
                self.services.push(ServiceRecord {
                    name: name.to_string(),
                    started_offset_secs: self.offset(at),
                    duration_secs: 0.0,
                    ready: false,
                    stopped_offset_secs: None,
                    stopped: None,
                    died_offset_secs: None,
                    died: None,
                });
                return Ok(());
            }
            Event::ServiceReady { health } | Event::ServiceFailed { health, .. } => {
                self.health
                    .get_or_insert_with(Vec::new)
                    .push(health.record());
                let ready = matches!(event, Event::ServiceReady { .. });
                let offset = self.offset(at);
                if let Some(service) = self.services.iter_mut().rfind(|s| s.name == health.name) {
                    service.ready = ready;
                    service.duration_secs = (offset - service.started_offset_secs).max(0.0);
                }
                return Ok(());
            }
            Event::ServiceStopped { name, how } => {
                let offset = self.offset(at);
                if let Some(service) = self.services.iter_mut().rfind(|s| s.name == *name) {
                    service.stopped_offset_secs = Some(offset);
                    service.stopped = Some(how.to_string());
                }
                return Ok(());
            }
            Event::ServiceDied { died } => {
                let offset = self.offset(at);
                if let Some(service) = self.services.iter_mut().rfind(|s| s.name == died.name) {
                    service.died_offset_secs = Some(offset);
                    service.died = Some(died.how.clone());
                }
                return Ok(());
            }
            Event::Interrupted => {
                self.interrupted = Some(self.offset(at));
                return Ok(());
            }
            Event::RetryStarted {
                index,
                tests,
                never_ran,
                ..
            } => {
                self.retries
                    .entry(*index)
                    .or_default()
                    .push((*tests, *never_ran));
                return Ok(());
            }
            Event::RunStarted { jobs, .. } => {
                self.jobs = Some(*jobs);
                return Ok(());
            }
            Event::SuiteStarted { index, worker, .. } => {
                self.workers.insert(*index, *worker);
                return Ok(());
            }
            Event::RunFinished {
                plans,
                results,
                duration,
            } => (plans, results, duration),
            _ => return Ok(()),
        };
        let overall = Outcome::deciding(results.iter().map(|r| r.outcome), self.require_all);
        let layout = &self.layout;
        let start = self.info.started_at;
        let suites = plans
            .iter()
            .zip(results.iter())
            .enumerate()
            .map(|(index, (plan, result))| SuiteRecord {
                name: plan.suite.name.clone(),
                group: plan.suite.group.clone(),
                dir: plan.suite.dir.clone(),
                outcome: result.outcome.name().to_string(),
                detail: result.detail.clone(),
                counts: result.counts(),
                started_at: result.started.to_rfc3339(),
                started_offset_secs: offset(start, result.started),
                duration_secs: result.duration.as_secs_f64(),
                worker: self.workers.get(&index).copied(),
                timeout_secs: plan.timeout.as_secs(),
                environment: EnvironmentRecord {
                    path: layout.display(&plan.env.path).into_owned(),
                    key: plan.env.key.clone(),
                },
                cwd: plan.test.cwd.clone(),
                env: plan
                    .test
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect(),
                env_removed: plan.test.env_remove.clone(),
                commands: {
                    let mut retries = self.retries.get(&index).into_iter().flatten();
                    result
                        .steps
                        .iter()
                        .map(|s| {
                            let mut command = step(start, s);
                            if s.step == "retry" {
                                if let Some((tests, never_ran)) = retries.next() {
                                    command.tests = Some(*tests);
                                    command.never_ran = Some(*never_ran);
                                }
                            }
                            command
                        })
                        .collect()
                },
                log: layout.display(&plan.log).into_owned(),
                junit: layout.display(&plan.junit).into_owned(),
                tests: result
                    .cases
                    .iter()
                    .map(|c| test(start, c, &self.redactor))
                    .collect(),
                cached: result.cached.as_ref().map(|c| CachedRecord {
                    run_id: c.run_id.clone(),
                    started_at: c.started_at.clone(),
                    duration_secs: c.duration.as_secs_f64(),
                    key: c.key.clone(),
                }),
            })
            .collect();
        self.finished = Some((overall, duration.as_secs_f64(), suites));
        Ok(())
    }
}

/// Seconds from `start` to `at` (negative if `at` is before it: clocks of other processes).
fn offset(start: DateTime<FixedOffset>, at: DateTime<FixedOffset>) -> f64 {
    let micros = (at - start).num_microseconds().unwrap_or(i64::MAX);
    micros as f64 / 1e6
}

fn status(status: CaseStatus) -> TestOutcome {
    match status {
        CaseStatus::Passed => TestOutcome::Passed,
        CaseStatus::Failed => TestOutcome::Failed,
        CaseStatus::Error => TestOutcome::Error,
        CaseStatus::Skipped => TestOutcome::Skipped,
    }
}

/// The record of `case`, masked: pytest's report was masked as it was read, so only what
/// did not come from it is masked here (the node id the plugin noted, and the whole of a
/// case the xtask made up).
fn test(start: DateTime<FixedOffset>, case: &TestCase, redactor: &Redactor) -> TestRecord {
    let record = TestRecord {
        node_id: case.node_id.as_deref().map(|id| redactor.text(id)),
        classname: case.classname.clone(),
        name: case.name.clone(),
        file: case.file.clone(),
        line: case.line,
        outcome: if case.is_flaky() {
            TestOutcome::Flaky
        } else {
            status(case.status())
        },
        duration_secs: case.time().map(|t| t.as_secs_f64()),
        synthetic: case.synthetic,
        attempts: case
            .attempts
            .iter()
            .map(|a| AttemptRecord {
                outcome: status(a.status),
                started_offset_secs: a.started.map(|at| offset(start, at)),
                duration_secs: a.time.map(|t| t.as_secs_f64()),
                message: a.message.clone(),
                kind: a.kind.clone(),
                details: matches!(a.status, CaseStatus::Failed | CaseStatus::Error)
                    .then(|| a.details.clone())
                    .flatten(),
            })
            .collect(),
    };
    if !case.synthetic {
        return record;
    }
    let value = serde_json::to_value(&record).expect("a test record serializes");
    serde_json::from_value(redactor.json(value)).unwrap_or(record)
}

/// How long each suite took in the latest invocation, from its run.json (empty when there
/// is none or it cannot be read): the session starts long suites first. Read through a
/// subset of the record's types, so a record of another version still gives its durations.
pub fn previous_durations(layout: &Layout) -> std::collections::HashMap<String, f64> {
    #[derive(serde::Deserialize)]
    struct Durations {
        suites: Vec<SuiteDuration>,
    }
    #[derive(serde::Deserialize)]
    struct SuiteDuration {
        name: String,
        duration_secs: f64,
        #[serde(default)]
        cached: Option<CachedDuration>,
    }
    // A cached suite took no time in that run: what it takes to run is its source's.
    #[derive(serde::Deserialize)]
    struct CachedDuration {
        duration_secs: f64,
    }
    let path = layout.latest().join("run.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<Durations>(&text).ok())
        .map(|record| {
            record
                .suites
                .into_iter()
                .map(|s| {
                    let took = s.cached.map_or(s.duration_secs, |c| c.duration_secs);
                    (s.name, took)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The xtask's own peak resident memory (not its children's), for the benchmark.
///
/// On Linux, the high-water mark of this process image (`VmHWM` in `/proc/self/status`):
/// `getrusage`'s `ru_maxrss` survives `execve`, so it would also count what the parent
/// held when it forked us (a benchmark that had just rendered a big report read as 250 MB
/// of ours). Elsewhere, `ru_maxrss`.
pub fn peak_rss_bytes() -> Option<u64> {
    if cfg!(target_os = "linux") {
        return std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| vm_hwm_bytes(&status));
    }
    // SAFETY: getrusage fills the struct it is given and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `usage` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let max = u64::try_from(usage.ru_maxrss).ok()?;
    // macOS reports bytes, the BSDs KiB.
    Some(if cfg!(target_os = "macos") {
        max
    } else {
        max * 1024
    })
}

/// `VmHWM:   1234 kB` from a `/proc/<pid>/status` text, in bytes.
pub fn vm_hwm_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

fn step(start: DateTime<FixedOffset>, step: &StepRecord) -> CommandRecord {
    CommandRecord {
        step: step.step.to_string(),
        argv: step.argv.clone(),
        exit_code: step.exit_code,
        skipped: step.skipped.clone(),
        signal: step.signal,
        started_offset_secs: offset(start, step.started),
        duration_secs: step.duration.as_secs_f64(),
        tests: None,
        never_ran: None,
        slice: step.slice.clone(),
    }
}

/// Seconds as a duration (0 for what is not one: negative, NaN).
pub fn secs(secs: f64) -> std::time::Duration {
    std::time::Duration::try_from_secs_f64(secs).unwrap_or_default()
}

/// The suite's result as the run's model held it, from its record (a cached suite's too).
pub fn result(
    suite: &SuiteRecord,
    run_start: Option<DateTime<FixedOffset>>,
) -> anyhow::Result<crate::model::SuiteResult> {
    let outcome = Outcome::PRECEDENCE
        .into_iter()
        .find(|o| o.name() == suite.outcome)
        .ok_or_else(|| {
            crate::error::Error::Usage(format!(
                "suite {} has an outcome this xtask does not know: {}",
                suite.name, suite.outcome
            ))
        })?;
    let started = DateTime::parse_from_rfc3339(&suite.started_at)
        .ok()
        .or(run_start)
        .unwrap_or_else(crate::model::now);
    let at = |offset: f64| {
        run_start.map(|start| start + chrono::Duration::microseconds((offset * 1e6) as i64))
    };
    Ok(crate::model::SuiteResult {
        outcome,
        detail: suite.detail.clone(),
        cases: suite.tests.iter().map(|t| case(t, &at)).collect(),
        deselected: suite.counts.deselected,
        steps: suite
            .commands
            .iter()
            .map(|c| StepRecord {
                step: match c.step.as_str() {
                    "environment" => "environment",
                    "pytest" => "pytest",
                    "retry" => "retry",
                    _ => "step",
                },
                argv: c.argv.clone(),
                exit_code: c.exit_code,
                signal: c.signal,
                started: at(c.started_offset_secs).unwrap_or(started),
                duration: secs(c.duration_secs),
                skipped: c.skipped.clone(),
                slice: c.slice.clone(),
            })
            .collect(),
        started,
        duration: secs(suite.duration_secs),
        cached: suite.cached.as_ref().map(|c| crate::model::CachedFrom {
            run_id: c.run_id.clone(),
            started_at: c.started_at.clone(),
            duration: secs(c.duration_secs),
            key: c.key.clone(),
        }),
    })
}

fn case(test: &TestRecord, at: &dyn Fn(f64) -> Option<DateTime<FixedOffset>>) -> TestCase {
    let attempts = test
        .attempts
        .iter()
        .map(|a| crate::model::Attempt {
            message: a.message.clone(),
            kind: a.kind.clone(),
            details: a.details.clone(),
            time: a.duration_secs.map(secs),
            started: a.started_offset_secs.and_then(at),
            ..crate::model::Attempt::new(case_status(a.outcome))
        })
        .collect::<Vec<_>>();
    let mut case = TestCase::new(
        test.classname.clone(),
        test.name.clone(),
        crate::model::Attempt::new(CaseStatus::Passed),
    );
    if !attempts.is_empty() {
        case.attempts = attempts;
    }
    case.node_id = test.node_id.clone();
    case.file = test.file.clone();
    case.line = test.line;
    case.synthetic = test.synthetic;
    case
}

fn case_status(outcome: TestOutcome) -> CaseStatus {
    match outcome {
        TestOutcome::Passed | TestOutcome::Flaky => CaseStatus::Passed,
        TestOutcome::Failed => CaseStatus::Failed,
        TestOutcome::Error => CaseStatus::Error,
        TestOutcome::Skipped => CaseStatus::Skipped,
    }
}
