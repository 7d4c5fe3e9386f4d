//! Running suite plans: each suite on a worker thread, its environment prepared as its own
//! step before pytest, every byte of output in the suite's log. The runner emits one stream
//! of events; sinks (terminal, JUnit, ...) each turn it into one kind of report.

use std::fs::File;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, FixedOffset};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus};

use crate::classify::{classify, OwnModules};
use crate::log;
use crate::outcome::Outcome;
use crate::plan::{shell_line, Invocation, SuitePlan};
use crate::process::{self, Stop};
use crate::pytest_junit;
use crate::redact::{RedactingWriter, Redactor};
use crate::report::junit::synthetic_case;
use crate::report::record::now;

pub enum Event<'a> {
    RunStarted {
        plans: &'a [SuitePlan],
        jobs: usize,
    },
    SuiteStarted {
        index: usize,
        plan: &'a SuitePlan,
    },
    EnvironmentReady {
        index: usize,
        plan: &'a SuitePlan,
        duration: Duration,
    },
    SuiteFinished {
        index: usize,
        plan: &'a SuitePlan,
        result: &'a SuiteResult,
    },
    /// `results` are in the order of `plans`.
    RunFinished {
        plans: &'a [SuitePlan],
        results: &'a [SuiteResult],
        duration: Duration,
    },
}

pub trait Sink {
    fn handle(&mut self, event: &Event<'_>) -> anyhow::Result<()>;
}

#[derive(Clone, Debug)]
pub struct SuiteResult {
    pub outcome: Outcome,
    /// One line on why, for every outcome but passed and failed.
    pub detail: Option<String>,
    /// pytest's test cases, plus one standing for the suite when its tests did not all run.
    pub cases: Vec<TestCase>,
    /// The steps that ran, in order.
    pub steps: Vec<StepRecord>,
    pub started: DateTime<FixedOffset>,
    pub duration: Duration,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub tests: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub skipped: usize,
}

impl SuiteResult {
    pub fn counts(&self) -> Counts {
        let mut counts = Counts {
            tests: self.cases.len(),
            ..Counts::default()
        };
        for case in &self.cases {
            match &case.status {
                TestCaseStatus::Success { .. } => counts.passed += 1,
                TestCaseStatus::NonSuccess {
                    kind: NonSuccessKind::Failure,
                    ..
                } => counts.failed += 1,
                TestCaseStatus::NonSuccess {
                    kind: NonSuccessKind::Error,
                    ..
                } => counts.errors += 1,
                TestCaseStatus::Skipped { .. } => counts.skipped += 1,
            }
        }
        counts
    }
}

enum Message {
    Started(usize),
    EnvironmentReady(usize, Duration),
    Finished(usize, SuiteResult),
}

/// Runs `plans` with at most `jobs` at a time and feeds every event to every sink.
/// Returns the results in the order of `plans`.
/// Secrets in any output are masked with `redactor`. After Ctrl-C or SIGTERM (see
/// `process::handle_interrupts`) running suites are stopped and the rest end interrupted
/// without starting; the reports are written either way.
pub fn run(
    plans: &[SuitePlan],
    jobs: usize,
    redactor: &Redactor,
    sinks: &mut [&mut dyn Sink],
) -> anyhow::Result<Vec<SuiteResult>> {
    let started = Instant::now();
    let mut sink_errors = Vec::new();
    let mut emit = |event: Event<'_>| {
        for sink in sinks.iter_mut() {
            if let Err(err) = sink.handle(&event) {
                eprintln!("xtask: error: {err:#}");
                sink_errors.push(err);
            }
        }
    };
    let jobs = jobs.clamp(1, plans.len().max(1));
    emit(Event::RunStarted { plans, jobs });

    let mut results: Vec<Option<SuiteResult>> = vec![None; plans.len()];
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel();
        for _ in 0..jobs {
            let (tx, next) = (tx.clone(), &next);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(plan) = plans.get(index) else { break };
                if process::interrupted() {
                    let _ = tx.send(Message::Finished(index, not_started(plan)));
                    continue;
                }
                let _ = tx.send(Message::Started(index));
                let result = run_suite(plan, redactor, |duration| {
                    let _ = tx.send(Message::EnvironmentReady(index, duration));
                });
                let _ = tx.send(Message::Finished(index, result));
            });
        }
        drop(tx);
        for message in rx {
            match message {
                Message::Started(index) => emit(Event::SuiteStarted {
                    index,
                    plan: &plans[index],
                }),
                Message::EnvironmentReady(index, duration) => emit(Event::EnvironmentReady {
                    index,
                    plan: &plans[index],
                    duration,
                }),
                Message::Finished(index, result) => {
                    emit(Event::SuiteFinished {
                        index,
                        plan: &plans[index],
                        result: &result,
                    });
                    results[index] = Some(result);
                }
            }
        }
    });

    let results: Vec<SuiteResult> = results
        .into_iter()
        .map(|r| r.expect("every suite reports once"))
        .collect();
    emit(Event::RunFinished {
        plans,
        results: &results,
        duration: started.elapsed(),
    });
    match sink_errors.into_iter().next() {
        Some(err) => Err(err.context("writing the reports")),
        None => Ok(results),
    }
}

/// One step the suite ran, as run.json records it.
#[derive(Clone, Debug)]
pub struct StepRecord {
    pub step: &'static str,
    pub argv: Vec<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration: Duration,
}

fn run_suite(
    plan: &SuitePlan,
    redactor: &Redactor,
    environment_ready: impl FnOnce(Duration),
) -> SuiteResult {
    let started = now();
    let clock = Instant::now();
    let mut steps = Vec::new();
    let ended = try_run_suite(plan, redactor, &mut steps, environment_ready)
        .unwrap_or_else(|err| (Outcome::Crashed, Some(format!("{err:#}")), None));
    finish(plan, ended, steps, started, clock.elapsed())
}

/// A suite that never started because the run was interrupted first.
fn not_started(plan: &SuitePlan) -> SuiteResult {
    let detail = "not started: the run was interrupted (Ctrl-C or SIGTERM) before this suite began";
    let _ = log::create(&plan.live_log)
        .and_then(|mut log| writeln!(log, "xtask: {detail}").map_err(Into::into));
    finish(
        plan,
        (Outcome::Interrupted, Some(detail.to_string()), None),
        Vec::new(),
        now(),
        Duration::ZERO,
    )
}

/// The result of an ended suite, with its log published and, when its tests did not all
/// run, a test case that says why.
fn finish(
    plan: &SuitePlan,
    (outcome, detail, cases): Ended,
    steps: Vec<StepRecord>,
    started: DateTime<FixedOffset>,
    duration: Duration,
) -> SuiteResult {
    let mut cases = cases.unwrap_or_default();
    let mut detail = detail;
    if let Err(err) = crate::paths::publish(&plan.live_log, &plan.log) {
        detail = Some(format!(
            "{}; and the log could not be published: {err:#}",
            detail.as_deref().unwrap_or(outcome.name())
        ));
    }
    if !matches!(
        outcome,
        Outcome::Passed | Outcome::Failed | Outcome::CollectionError
    ) {
        let detail = detail.as_deref().unwrap_or(outcome.name());
        let output = log::tail(&plan.live_log, log::TAIL_LINES);
        let mut case = synthetic_case(&plan.suite.name, outcome.name(), detail, &output);
        case.set_time(duration);
        cases.push(case);
    }
    SuiteResult {
        outcome,
        detail,
        cases,
        steps,
        started,
        duration,
    }
}

type Ended = (Outcome, Option<String>, Option<Vec<TestCase>>);

fn try_run_suite(
    plan: &SuitePlan,
    redactor: &Redactor,
    steps: &mut Vec<StepRecord>,
    environment_ready: impl FnOnce(Duration),
) -> anyhow::Result<Ended> {
    let mut log = log::create(&plan.live_log)?;
    if let Some(blocked) = &plan.blocked {
        writeln!(log, "xtask: {}", redactor.text(&blocked.detail))
            .context("writing the suite log")?;
        return Ok((blocked.outcome, Some(blocked.detail.clone()), None));
    }
    if let Some(dir) = plan.raw_junit.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }

    let clock = Instant::now();
    let deadline = clock + plan.timeout;
    let stopped = |stop: Stop, step: &str| match stop {
        Stop::TimedOut => (
            Outcome::Timeout,
            Some(format!(
                "the suite ran longer than its timeout of {} (during its {step} step) and was \
                 stopped with all its processes; raise `timeout` in Cargo.toml or pass \
                 `--timeout` if it needs more",
                humanize(plan.timeout)
            )),
        ),
        Stop::Interrupted => (
            Outcome::Interrupted,
            Some(format!(
                "stopped during its {step} step: the run was interrupted (Ctrl-C or SIGTERM)"
            )),
        ),
    };

    let prepare = match run_step("environment", &plan.prepare, deadline, &mut log, redactor) {
        Ok(step) => step,
        Err(err) => {
            let detail = format!("could not start uv: {err:#}");
            writeln!(log, "xtask: {detail}").ok();
            return Ok((Outcome::ToolchainError, Some(detail), None));
        }
    };
    let (record, stop) = prepare;
    let code = record.exit_code;
    steps.push(record);
    if let Some(stop) = stop {
        let (outcome, detail) = stopped(stop, "environment");
        return Ok((outcome, detail, None));
    }
    if code != Some(0) {
        let detail = format!(
            "the environment could not be built, or pytest is not importable in it: `uv run` {}; its output is in the log",
            steps[0].describe()
        );
        return Ok((Outcome::EnvironmentError, Some(detail), None));
    }
    environment_ready(clock.elapsed());

    let (record, stop) = run_step("pytest", &plan.test, deadline, &mut log, redactor)?;
    let code = record.exit_code;
    steps.push(record);
    let cases = read_pytest_report(plan, redactor)?;
    if let Some(stop) = stop {
        let (outcome, detail) = stopped(stop, "pytest");
        return Ok((outcome, detail, cases));
    }
    let root = &plan.test.cwd;
    let own = OwnModules {
        suite_dir: root.join(&plan.suite.dir),
        pythonpath: plan.suite.pythonpath.iter().map(|p| root.join(p)).collect(),
    };
    let (outcome, detail) = classify(&plan.suite.name, code, cases.as_deref(), &own);
    Ok((outcome, detail, cases))
}

/// pytest's report with secrets masked, if it wrote one.
fn read_pytest_report(
    plan: &SuitePlan,
    redactor: &Redactor,
) -> anyhow::Result<Option<Vec<TestCase>>> {
    let bytes = match std::fs::read(&plan.raw_junit) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(err).with_context(|| format!("reading {}", plan.raw_junit.display()))
        }
    };
    let xml = redactor.text(&String::from_utf8_lossy(&bytes));
    // The raw report held the secrets in clear: keep only the masked one.
    std::fs::write(&plan.raw_junit, &xml)
        .with_context(|| format!("rewriting {}", plan.raw_junit.display()))?;
    pytest_junit::parse_legacy(&xml, &plan.suite.dir)
        .map(Some)
        .with_context(|| format!("reading pytest's report {}", plan.raw_junit.display()))
}

/// Runs one step with its output (stdout and stderr, interleaved as written) masked into the
/// log, stopping it at `deadline` or on an interrupt.
fn run_step(
    step: &'static str,
    invocation: &Invocation,
    deadline: Instant,
    log: &mut File,
    redactor: &Redactor,
) -> anyhow::Result<(StepRecord, Option<Stop>)> {
    writeln!(
        log,
        "xtask: {step}: {}",
        redactor.text(&shell_line(invocation))
    )
    .context("writing the suite log")?;
    let (reader, writer) = std::io::pipe().context("creating a pipe for the step's output")?;
    let mut command = Command::new(&invocation.argv[0]);
    command
        .args(&invocation.argv[1..])
        .current_dir(&invocation.cwd)
        .envs(invocation.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(writer.try_clone().context("sharing the output pipe")?)
        .stderr(writer);
    for name in &invocation.env_remove {
        command.env_remove(name);
    }
    let clock = Instant::now();
    let spawned = process::spawn(&mut command);
    // The command holds the pipe's write end: close it here so the log sees end-of-file
    // when the step's processes are gone.
    drop(command);
    let mut child = spawned.with_context(|| format!("running `{}`", invocation.argv[0]))?;

    let copier = copy_output(
        reader,
        log.try_clone().context("sharing the suite log")?,
        redactor.clone(),
    );
    let (status, stop) = process::wait(&mut child, deadline)
        .with_context(|| format!("waiting for `{}`", invocation.argv[0]))?;
    // Everything in the step's process group is gone now; only a process that left the
    // group can still hold the pipe open, and then the log is closed without it.
    if copier.recv_timeout(OUTPUT_DRAIN).is_err() {
        writeln!(log, "\nxtask: {step}: a process that left the suite's process group still holds its output; the log stops here").ok();
    }
    let record = StepRecord {
        step,
        argv: invocation.argv.clone(),
        exit_code: status.code(),
        signal: status.signal(),
        duration: clock.elapsed(),
    };
    let stopped = match stop {
        Some(Stop::TimedOut) => " (stopped: the suite's timeout was reached)",
        Some(Stop::Interrupted) => " (stopped: interrupted)",
        None => "",
    };
    writeln!(
        log,
        "xtask: {step}: {}{stopped} after {:.2}s",
        record.describe(),
        record.duration.as_secs_f64()
    )
    .context("writing the suite log")?;
    Ok((record, stop))
}

/// How long the log waits for the last output once a step's processes are gone.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// Copies a step's output into the log on its own thread; the receiver hears when done.
fn copy_output(
    mut reader: std::io::PipeReader,
    log: File,
    redactor: Redactor,
) -> mpsc::Receiver<()> {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let mut writer = RedactingWriter::new(log, redactor);
        let _ = std::io::copy(&mut reader, &mut writer);
        let _ = writer.finish();
        let _ = done.send(());
    });
    finished
}

impl StepRecord {
    /// "exited with 1", "was killed by signal 9 (SIGKILL)".
    pub fn describe(&self) -> String {
        process::describe(self.exit_code, self.signal)
    }
}

fn humanize(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(status: TestCaseStatus) -> TestCase {
        TestCase::new("t", status)
    }

    #[test]
    fn counts_come_from_the_test_cases() {
        let mut failure = TestCaseStatus::non_success(NonSuccessKind::Failure);
        failure.set_message("boom");
        let result = SuiteResult {
            outcome: Outcome::Failed,
            detail: None,
            steps: vec![],
            cases: vec![
                case(TestCaseStatus::success()),
                case(failure),
                case(TestCaseStatus::skipped()),
                case(TestCaseStatus::non_success(NonSuccessKind::Error)),
            ],
            started: DateTime::<chrono::Utc>::from(std::time::UNIX_EPOCH).fixed_offset(),
            duration: Duration::ZERO,
        };
        assert_eq!(
            result.counts(),
            Counts {
                tests: 4,
                passed: 1,
                failed: 1,
                errors: 1,
                skipped: 1
            }
        );
    }
}
