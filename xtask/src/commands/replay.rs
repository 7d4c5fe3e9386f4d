//! `cargo xtask replay [RUN|PATH]`: a past run's terminal output again, from its record.
//!
//! The record is turned back into the model (a plan and a result per suite) and the events
//! a run emits, in the order they happened (suites by their start and end, retries, slow
//! periods, services that died, the interrupt), and handed to the same terminal sink a run
//! uses: its suite lines, failures with `file:line` and messages, log tails (from the run's
//! kept logs), table and last line. What the run said on stderr about a rerun's chain and
//! its own errors is said again there, and replay exits with the run's exit code, so that
//! a script can ask a past run how it ended.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use chrono::DateTime;

use crate::events::{Event, Sink};
use crate::flags::ReplayArgs;
use crate::manifest::{Environment, Suite};
use crate::model::SuiteResult;
use crate::paths::Layout;
use crate::plan::SuitePlan;
use crate::report::record::{result, secs};
use crate::report::run_record::{self, RunRecord, SuiteRecord};
use crate::report::terminal::{Options, TerminalSink};

impl ReplayArgs {
    pub fn run(&self, layout: &Layout) -> anyhow::Result<()> {
        let path = crate::run_archive::find_record(layout, &self.run)?;
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
        // Its reports are where its record is: for an archive, where it was unpacked.
        let mut sink = TerminalSink::new(std::io::stdout(), &run_layout, options)
            .with_reports_in(dir.to_path_buf());
        replay(&record, &run_layout, dir, &mut sink)?;
        drop(sink);
        said_on_stderr(&record);
        ended(&record)
    }
}

/// What the run printed on stderr after its suites: how a rerun's chain stands (or why it
/// had nothing to run) and the errors that made it the xtask's own failure.
fn said_on_stderr(record: &RunRecord) {
    if let (Some(error), false) = (&record.error, record.suites.is_empty()) {
        eprintln!("xtask: error: {error}");
    }
    if let Some(of) = &record.rerun_of {
        match &of.nothing_to_run {
            Some(why) => eprintln!("xtask: rerun of {}: nothing to run: {why}", of.run_id),
            None => eprintln!("xtask: {}", crate::rerun::summary(of)),
        }
    }
}

/// The run's own exit code; a record that never finished (its invocation was killed)
/// ends as an interrupted run.
fn ended(record: &RunRecord) -> anyhow::Result<()> {
    let code = match (record.status, record.exit_code) {
        (run_record::Status::Finished, Some(code)) => code,
        _ => crate::exit_codes::INTERRUPTED,
    };
    if code == crate::exit_codes::OK {
        Ok(())
    } else {
        Err(crate::error::Error::Replayed(code).into())
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
        if let (Some(error), None) = (&record.error, &record.rerun_of) {
            println!("xtask: no suite ran: {error}");
        }
        return Ok(());
    }
    sink.handle(&Event::RunStarted {
        plans: &plans,
        jobs: record.jobs.unwrap_or(1),
    })?;
    let died: Vec<crate::services::Died> = record
        .services
        .iter()
        .map(|service| crate::services::Died {
            name: service.name.clone(),
            how: service.died.clone().unwrap_or_default(),
            log: dir
                .join("logs")
                .join(format!("service-{}.log", service.name)),
        })
        .collect();
    for (_, moment) in moments(record) {
        let index = match moment {
            Moment::Interrupted => {
                sink.handle(&Event::Interrupted)?;
                continue;
            }
            Moment::Died(service) => {
                sink.handle(&Event::ServiceDied {
                    died: &died[service],
                })?;
                continue;
            }
            Moment::Start(index)
            | Moment::Retry(index, _)
            | Moment::Slow(index, _)
            | Moment::End(index) => index,
        };
        let (suite, plan, result) = (&record.suites[index], &plans[index], &results[index]);
        match moment {
            Moment::Interrupted | Moment::Died(_) => unreachable!("handled above"),
            Moment::Start(_) => sink.handle(&Event::SuiteStarted {
                index,
                plan,
                worker: suite.worker.unwrap_or(0),
            })?,
            Moment::Slow(_, periods) => sink.handle(&Event::SuiteSlow {
                index,
                plan,
                elapsed: crate::runner::SLOW_EVERY * periods,
            })?,
            Moment::Retry(_, k) => {
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
            Moment::End(_) => {
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

/// Something the run's events told of, by the suite (or service) it is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Moment {
    Start(usize),
    /// The k-th retry step (0-based) of the suite started.
    Retry(usize, usize),
    /// The suite had run this many slow periods (`runner::SLOW_EVERY`).
    Slow(usize, u32),
    /// The service (by its index in the record) ended by itself.
    Died(usize),
    Interrupted,
    End(usize),
}

/// Every moment of the record after `RunStarted`, in the order it happened (by its offset
/// from the run's start; at one offset, a start before what follows it).
fn moments(record: &RunRecord) -> Vec<(f64, Moment)> {
    let mut moments: Vec<(f64, Moment)> = Vec::new();
    for (index, suite) in record.suites.iter().enumerate() {
        if suite.worker.is_some() {
            moments.push((suite.started_offset_secs, Moment::Start(index)));
            // The runner reports a suite slow once per period it passes while it runs.
            let every = crate::runner::SLOW_EVERY.as_secs_f64();
            let mut periods = 1u32;
            while every * f64::from(periods) < suite.duration_secs {
                moments.push((
                    suite.started_offset_secs + every * f64::from(periods),
                    Moment::Slow(index, periods),
                ));
                periods += 1;
            }
        }
        let retries = suite.commands.iter().filter(|c| c.step == "retry");
        for (k, step) in retries.enumerate() {
            moments.push((step.started_offset_secs, Moment::Retry(index, k)));
        }
        moments.push((
            suite.started_offset_secs + suite.duration_secs,
            Moment::End(index),
        ));
    }
    for (index, service) in record.services.iter().enumerate() {
        if let Some(at) = service.died_offset_secs {
            moments.push((at, Moment::Died(index)));
        }
    }
    if let Some(at) = record.interrupted_offset_secs {
        moments.push((at, Moment::Interrupted));
    }
    let rank = |m: &Moment| match m {
        Moment::Start(_) => 0,
        Moment::Retry(..) | Moment::Slow(..) => 1,
        Moment::Died(_) | Moment::Interrupted => 2,
        Moment::End(_) => 3,
    };
    moments.sort_by(|a, b| a.0.total_cmp(&b.0).then(rank(&a.1).cmp(&rank(&b.1))));
    moments
}

/// How many tests the `k`-th retry step (0-based) ran, and how many of them had not run
/// before, as the record noted them when it started.
fn retried(suite: &SuiteRecord, k: usize) -> (usize, usize) {
    suite
        .commands
        .iter()
        .filter(|c| c.step == "retry")
        .nth(k)
        .map_or((0, 0), |step| {
            (step.tests.unwrap_or(0), step.never_ran.unwrap_or(0))
        })
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
        cache: Default::default(),
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
