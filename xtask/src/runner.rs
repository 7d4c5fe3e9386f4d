//! Running suite plans: each suite on a worker thread, its environment prepared as its own
//! step before pytest, every byte of output in the suite's log. The runner emits one stream
//! of events; sinks (terminal, JUnit, ...) each turn it into one kind of report.

use std::fs::File;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, FixedOffset, Utc};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus};

use crate::log;
use crate::outcome::Outcome;
use crate::plan::{shell_line, Invocation, SuitePlan};
use crate::pytest_junit;
use crate::report::junit::synthetic_case;

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
pub fn run(
    plans: &[SuitePlan],
    jobs: usize,
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
                let _ = tx.send(Message::Started(index));
                let result = run_suite(plan, |duration| {
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

fn run_suite(plan: &SuitePlan, environment_ready: impl FnOnce(Duration)) -> SuiteResult {
    let started = DateTime::<Utc>::from(std::time::SystemTime::now()).fixed_offset();
    let clock = Instant::now();
    let (outcome, detail, cases) = match try_run_suite(plan, environment_ready) {
        Ok(ended) => ended,
        Err(err) => (Outcome::Crashed, Some(format!("{err:#}")), None),
    };
    let mut cases = cases.unwrap_or_default();
    if !matches!(
        outcome,
        Outcome::Passed | Outcome::Failed | Outcome::CollectionError
    ) {
        let detail = detail.as_deref().unwrap_or(outcome.name());
        let output = log::tail(&plan.log, log::TAIL_LINES);
        cases.push(synthetic_case(
            &plan.suite.name,
            outcome.name(),
            detail,
            &output,
        ));
    }
    SuiteResult {
        outcome,
        detail,
        cases,
        started,
        duration: clock.elapsed(),
    }
}

type Ended = (Outcome, Option<String>, Option<Vec<TestCase>>);

fn try_run_suite(
    plan: &SuitePlan,
    environment_ready: impl FnOnce(Duration),
) -> anyhow::Result<Ended> {
    let mut log = log::create(&plan.log)?;
    // A report left by an earlier run must never be read as this run's.
    match std::fs::remove_file(&plan.raw_junit) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(err)
                .with_context(|| format!("removing the stale {}", plan.raw_junit.display()))
        }
        _ => {}
    }
    if let Some(dir) = plan.raw_junit.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }

    let clock = Instant::now();
    let prepare = match run_step("environment", &plan.prepare, &mut log) {
        Ok(status) => status,
        Err(err) => {
            let detail = format!("could not start uv: {err:#}");
            writeln!(log, "xtask: {detail}").ok();
            return Ok((Outcome::ToolchainError, Some(detail), None));
        }
    };
    if prepare != Some(0) {
        let detail = format!(
            "the environment could not be built: `uv run` {}; see its output in {}",
            describe(prepare),
            plan.log.display()
        );
        return Ok((Outcome::EnvironmentError, Some(detail), None));
    }
    environment_ready(clock.elapsed());

    let status = run_step("pytest", &plan.test, &mut log)?;
    let cases = match std::fs::read(&plan.raw_junit) {
        Ok(bytes) => Some(
            pytest_junit::parse(&String::from_utf8_lossy(&bytes), &plan.suite.dir)
                .with_context(|| format!("reading pytest's report {}", plan.raw_junit.display()))?,
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => {
            return Err(err).with_context(|| format!("reading {}", plan.raw_junit.display()))
        }
    };
    let (outcome, detail) = classify(status, cases.as_deref());
    Ok((outcome, detail, cases))
}

/// Runs one step with its output appended to the log; `None` means killed by a signal.
fn run_step(step: &str, invocation: &Invocation, log: &mut File) -> anyhow::Result<Option<i32>> {
    writeln!(log, "xtask: {step}: {}", shell_line(invocation)).context("writing the suite log")?;
    let out = log
        .try_clone()
        .context("sharing the suite log with a child process")?;
    let err = log
        .try_clone()
        .context("sharing the suite log with a child process")?;
    let mut command = Command::new(&invocation.argv[0]);
    command
        .args(&invocation.argv[1..])
        .current_dir(&invocation.cwd)
        .envs(invocation.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for name in &invocation.env_remove {
        command.env_remove(name);
    }
    let clock = Instant::now();
    let status = command
        .status()
        .with_context(|| format!("running `{}`", invocation.argv[0]))?;
    writeln!(
        log,
        "xtask: {step}: {} after {:.2}s",
        describe(status.code()),
        clock.elapsed().as_secs_f64()
    )
    .context("writing the suite log")?;
    Ok(status.code())
}

fn describe(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exited with {code}"),
        None => "was killed by a signal".to_string(),
    }
}

/// What pytest's exit status and report say about the run.
pub fn classify(status: Option<i32>, cases: Option<&[TestCase]>) -> (Outcome, Option<String>) {
    let collection_error = cases.is_some_and(|cases| {
        cases.iter().any(|case| {
            matches!(&case.status, TestCaseStatus::NonSuccess { kind: NonSuccessKind::Error, message: Some(m), .. }
                if m.contains("collection failure"))
        })
    });
    let says = |text: &str| Some(text.to_string());
    match (status, cases) {
        (Some(0), Some(_)) => (Outcome::Passed, None),
        (Some(1), Some(_)) => (Outcome::Failed, None),
        (Some(2), Some(_)) if collection_error => {
            (Outcome::CollectionError, says("pytest could not import a test module (a collection error)"))
        }
        (Some(2), _) => (Outcome::Interrupted, says("pytest reported that the run was interrupted (its exit 2)")),
        (Some(3), _) => (Outcome::Crashed, says("pytest hit an internal error (its exit 3)")),
        (Some(4), _) => (
            Outcome::UsageError,
            says("pytest rejected its command line (its exit 4): check the arguments given after `--`"),
        ),
        (Some(5), _) => (
            Outcome::NoTests,
            says("pytest collected no tests (its exit 5); a suite that runs nothing is treated as a failure: check `paths` and `markers` in the manifest"),
        ),
        (None, _) => (Outcome::Crashed, says("pytest was killed by a signal")),
        (Some(code), None) => (Outcome::Crashed, Some(format!("pytest exited with {code} and wrote no JUnit report"))),
        (Some(code), Some(_)) => (Outcome::Crashed, Some(format!("pytest exited with unexpected status {code}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(status: TestCaseStatus) -> TestCase {
        TestCase::new("t", status)
    }

    #[test]
    fn pytest_exit_statuses_map_to_outcomes() {
        let passed = [case(TestCaseStatus::success())];
        assert_eq!(classify(Some(0), Some(&passed)).0, Outcome::Passed);
        assert_eq!(classify(Some(1), Some(&passed)).0, Outcome::Failed);
        assert_eq!(classify(Some(2), Some(&passed)).0, Outcome::Interrupted);
        assert_eq!(classify(Some(3), None).0, Outcome::Crashed);
        assert_eq!(classify(Some(4), None).0, Outcome::UsageError);
        assert_eq!(classify(Some(5), Some(&[])).0, Outcome::NoTests);
        assert_eq!(classify(None, None).0, Outcome::Crashed);
        // Exit 0 with no report is not a pass: nothing shows what ran.
        assert_eq!(classify(Some(0), None).0, Outcome::Crashed);
    }

    #[test]
    fn exit_2_with_a_collection_failure_is_a_collection_error() {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message("collection failure");
        let (outcome, detail) = classify(Some(2), Some(&[case(status)]));
        assert_eq!(outcome, Outcome::CollectionError);
        assert!(detail.unwrap().contains("could not import a test module"));
    }

    #[test]
    fn counts_come_from_the_test_cases() {
        let mut failure = TestCaseStatus::non_success(NonSuccessKind::Failure);
        failure.set_message("boom");
        let result = SuiteResult {
            outcome: Outcome::Failed,
            detail: None,
            cases: vec![
                case(TestCaseStatus::success()),
                case(failure),
                case(TestCaseStatus::skipped()),
                case(TestCaseStatus::non_success(NonSuccessKind::Error)),
            ],
            started: DateTime::<Utc>::from(std::time::UNIX_EPOCH).fixed_offset(),
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
