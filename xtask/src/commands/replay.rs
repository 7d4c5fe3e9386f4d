//! `cargo xtask replay [RUN|PATH]`: a past run's terminal output again, from its record.
//!
//! The record is turned back into the model (a plan and a result per suite) and the events
//! a run emits, in the order they happened (suites by their start and end), and handed to
//! the same terminal sink a run uses: its suite lines, failures with `file:line` and
//! messages, log tails (from the run's kept logs) and table.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};

use crate::events::{Event, Sink};
use crate::flags::ReplayArgs;
use crate::manifest::{Environment, Suite};
use crate::model::{Attempt, CaseStatus, StepRecord, SuiteResult, TestCase};
use crate::outcome::Outcome;
use crate::paths::Layout;
use crate::plan::SuitePlan;
use crate::report::run_record::{self, RunRecord, SuiteRecord, TestOutcome, TestRecord};
use crate::report::terminal::{Options, TerminalSink};

impl ReplayArgs {
    pub fn run(&self, layout: &Layout) -> anyhow::Result<()> {
        let path = crate::runs::find_record(layout, &self.run)?;
        let record = run_record::load(&path).map_err(crate::error::Error::from)?;
        // The run's own directory (not `latest`, which moves on): its logs are beside it.
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        let dir = path.parent().unwrap_or(Path::new("."));
        let run_layout = Layout {
            root: layout.root.clone(),
            run_id: record.run_id.clone(),
        };
        println!(
            "xtask: replay of run {} (`cargo xtask {}`, started {}{})",
            record.run_id,
            record.invocation.join(" "),
            record.started_at,
            match record.status {
                run_record::Status::Running => ", never finished: its record says `running`",
                run_record::Status::Finished => "",
            }
        );
        let terminal = std::io::stdout().is_terminal() && std::env::var_os("CI").is_none();
        let options = Options {
            live: false,
            color: terminal && std::env::var_os("NO_COLOR").is_none(),
            require_all: record.exit_code == Some(crate::exit_codes::PREREQUISITE_UNAVAILABLE),
            ..Options::plain()
        };
        let mut sink = TerminalSink::new(std::io::stdout(), &run_layout, options);
        replay(&record, &run_layout, dir, &mut sink)
    }
}

/// Feeds `sink` the events of the run `record` tells of; `dir` holds its logs.
pub fn replay(
    record: &RunRecord,
    layout: &Layout,
    dir: &Path,
    sink: &mut dyn Sink,
) -> anyhow::Result<()> {
    let run_start = DateTime::parse_from_rfc3339(&record.started_at).ok();
    let plans: Vec<SuitePlan> = record.suites.iter().map(|s| plan(s, layout, dir)).collect();
    let results: Vec<SuiteResult> = record
        .suites
        .iter()
        .map(|s| result(s, run_start))
        .collect::<anyhow::Result<_>>()?;
    for health in record.health.iter().flatten() {
        let checked = crate::services::Health {
            name: health.name.clone(),
            kind: match health.kind.as_str() {
                "env" => "env",
                "tcp" => "tcp",
                "http" => "http",
                "command" => "command",
                _ => "service",
            },
            target: health.target.clone(),
            available: health.available,
            latency: health.latency_ms.map(|ms| secs(ms / 1e3)),
            error: health.error.clone(),
            checked_at: DateTime::parse_from_rfc3339(&health.checked_at)
                .ok()
                .or(run_start)
                .unwrap_or_else(crate::model::now),
        };
        match (checked.kind, checked.available) {
            ("service", true) => sink.handle(&Event::ServiceReady { health: &checked })?,
            // The record keeps the service's error, not the run's longer detail.
            ("service", false) => sink.handle(&Event::ServiceFailed {
                health: &checked,
                detail: health.error.as_deref().unwrap_or("it could not be used"),
                log: &dir
                    .join("logs")
                    .join(format!("service-{}.log", health.name)),
            })?,
            _ => sink.handle(&Event::PrerequisiteChecked { health: &checked })?,
        }
    }
    if plans.is_empty() {
        if let Some(error) = &record.error {
            println!("xtask: no suite ran: {error}");
        }
        return Ok(());
    }
    sink.handle(&Event::RunStarted {
        plans: &plans,
        jobs: record.jobs.unwrap_or(1),
    })?;
    // Starts, retries and ends in the order they happened.
    let mut moments: Vec<(f64, Moment, usize)> = Vec::new();
    for (index, suite) in record.suites.iter().enumerate() {
        if suite.worker.is_some() {
            moments.push((suite.started_offset_secs, Moment::Start, index));
        }
        let retries = suite.commands.iter().filter(|c| c.step == "retry");
        for (k, step) in retries.enumerate() {
            moments.push((step.started_offset_secs, Moment::Retry(k), index));
        }
        moments.push((
            suite.started_offset_secs + suite.duration_secs,
            Moment::End,
            index,
        ));
    }
    moments.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (_, moment, index) in moments {
        let (suite, plan, result) = (&record.suites[index], &plans[index], &results[index]);
        match moment {
            Moment::Start => sink.handle(&Event::SuiteStarted {
                index,
                plan,
                worker: suite.worker.unwrap_or(0),
            })?,
            Moment::Retry(k) => {
                let (tests, never_ran) = retried(suite, k);
                sink.handle(&Event::RetryStarted {
                    index,
                    plan,
                    attempt: k as u32 + 1,
                    retries: suite.commands.iter().filter(|c| c.step == "retry").count() as u32,
                    tests,
                    never_ran,
                })?
            }
            Moment::End => {
                // Ready when its last environment step ended (the run measured it from the
                // suite's start); built when any of them ran a process.
                let envs = suite.commands.iter().filter(|c| c.step == "environment");
                if let Some(last) = envs.clone().next_back() {
                    let ready = last.started_offset_secs + last.duration_secs;
                    sink.handle(&Event::EnvironmentReady {
                        index,
                        plan,
                        duration: secs(ready - suite.started_offset_secs),
                        built: envs.clone().any(|c| c.skipped.is_none()),
                    })?;
                }
                sink.handle(&Event::SuiteFinished {
                    index,
                    plan,
                    result,
                })?;
            }
        }
    }
    sink.handle(&Event::RunFinished {
        plans: &plans,
        results: &results,
        duration: secs(record.duration_secs.unwrap_or(0.0)),
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Moment {
    Start,
    /// The k-th retry step (0-based) started.
    Retry(usize),
    End,
}

/// How many tests the `k`-th retry step (0-based) ran, and how many of them had not run
/// before: the attempts that started within it.
fn retried(suite: &SuiteRecord, k: usize) -> (usize, usize) {
    let Some(step) = suite.commands.iter().filter(|c| c.step == "retry").nth(k) else {
        return (0, 0);
    };
    let within = |at: Option<f64>| {
        at.is_some_and(|at| {
            at >= step.started_offset_secs && at <= step.started_offset_secs + step.duration_secs
        })
    };
    let mut tests = 0;
    let mut never_ran = 0;
    for test in &suite.tests {
        if let Some(i) = test
            .attempts
            .iter()
            .position(|a| within(a.started_offset_secs))
        {
            tests += 1;
            if i == 0 {
                never_ran += 1;
            }
        }
    }
    (tests, never_ran)
}

fn secs(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or_default()
}

/// What the terminal reads of a plan: the suite's name and group, and its log (kept in
/// the run's directory).
fn plan(suite: &SuiteRecord, layout: &Layout, dir: &Path) -> SuitePlan {
    let manifest_suite = Suite {
        name: suite.name.clone(),
        group: suite.group.clone(),
        dir: suite.dir.clone(),
        environment: Environment::project(&[]),
        pythonpath: vec![],
        markers: None,
        paths: vec![],
        env: Default::default(),
        timeout: Duration::from_secs(suite.timeout_secs),
        requires_env: vec![],
        services: vec![],
        prerequisites: vec![],
        retries: 0,
        split: Default::default(),
    };
    let mut plan = crate::plan::plan_suite(
        &manifest_suite,
        layout,
        Path::new("uv"),
        &[],
        &Default::default(),
    );
    plan.log = dir.join("logs").join(format!("{}.log", suite.name));
    plan
}

/// The suite's result as the run's model held it, from its record.
fn result(
    suite: &SuiteRecord,
    run_start: Option<DateTime<FixedOffset>>,
) -> anyhow::Result<SuiteResult> {
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
    Ok(SuiteResult {
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
    })
}

fn case(test: &TestRecord, at: &dyn Fn(f64) -> Option<DateTime<FixedOffset>>) -> TestCase {
    let attempts = test
        .attempts
        .iter()
        .map(|a| Attempt {
            message: a.message.clone(),
            kind: a.kind.clone(),
            details: a.details.clone(),
            time: a.duration_secs.map(secs),
            started: a.started_offset_secs.and_then(at),
            ..Attempt::new(status(a.outcome))
        })
        .collect::<Vec<_>>();
    let mut case = TestCase::new(
        test.classname.clone(),
        test.name.clone(),
        Attempt::new(CaseStatus::Passed),
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

fn status(outcome: TestOutcome) -> CaseStatus {
    match outcome {
        TestOutcome::Passed | TestOutcome::Flaky => CaseStatus::Passed,
        TestOutcome::Failed => CaseStatus::Failed,
        TestOutcome::Error => CaseStatus::Error,
        TestOutcome::Skipped => CaseStatus::Skipped,
    }
}
