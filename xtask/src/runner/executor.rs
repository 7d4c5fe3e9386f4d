//! Running one suite: its environment (built, or found up to date), then pytest from that
//! environment, then pytest's report read into the model and the outcome classified.

use std::fs::File;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, FixedOffset};

use crate::classify::{classify, OwnModules};
use crate::log;
use crate::model::{now, Attempt, CaseStatus, StepRecord, SuiteResult, TestCase};
use crate::outcome::Outcome;
use crate::plan::SuitePlan;
use crate::process::{self, Stop};
use crate::pytest_junit;
use crate::redact::Redactor;
use crate::step;

/// What every suite of a run shares.
pub struct RunContext<'a> {
    pub redactor: &'a Redactor,
    /// uv's `--version` line: an input of every environment.
    pub uv_version: &'a str,
    pub root: &'a std::path::Path,
    /// Where every step's output also goes as it is written (`--no-capture`), if anywhere.
    pub also: Option<step::Also>,
}

/// How the environment step ended, for the event the terminal shows.
pub struct EnvReady {
    pub duration: Duration,
    pub built: bool,
}

pub fn run_suite(
    plan: &SuitePlan,
    cx: &RunContext<'_>,
    environment_ready: impl FnOnce(EnvReady),
) -> SuiteResult {
    let started = now();
    let clock = Instant::now();
    let mut steps = Vec::new();
    let mut deselected = 0;
    let ended = try_run_suite(plan, cx, &mut steps, &mut deselected, environment_ready)
        .unwrap_or_else(|err| Ended::new(Outcome::Crashed, format!("{err:#}")));
    finish(plan, ended, steps, deselected, started, clock.elapsed())
}

/// A suite whose running panicked in the xtask: it ends `crashed`, with the panic named.
pub fn panicked(plan: &SuitePlan, why: &str) -> SuiteResult {
    let detail = format!("the xtask itself failed while running this suite (it panicked: {why}); its log has what ran");
    finish(
        plan,
        Ended::new(Outcome::Crashed, detail),
        Vec::new(),
        0,
        now(),
        Duration::ZERO,
    )
}

/// Set to a suite's name, the xtask panics while running it: the tests prove that a bug
/// of the xtask still leaves every report written and exits INTERNAL_ERROR.
pub const INJECT_PANIC_ENV: &str = "XTASK_INJECT_PANIC";

/// A suite that never started because the run was interrupted first.
pub fn not_started(plan: &SuitePlan) -> SuiteResult {
    let detail =
        "not started: the run was interrupted (Ctrl-C, SIGTERM or SIGHUP) before this suite began";
    let _ = log::create(&plan.log)
        .and_then(|mut log| writeln!(log, "xtask: {detail}").map_err(Into::into));
    finish(
        plan,
        Ended::new(Outcome::Interrupted, detail),
        Vec::new(),
        0,
        now(),
        Duration::ZERO,
    )
}

struct Ended {
    outcome: Outcome,
    detail: Option<String>,
    cases: Vec<TestCase>,
}

impl Ended {
    fn new(outcome: Outcome, detail: impl Into<String>) -> Ended {
        Ended {
            outcome,
            detail: Some(detail.into()),
            cases: Vec::new(),
        }
    }
}

/// The result of an ended suite with, when its tests did not all run, a test case that
/// says why.
fn finish(
    plan: &SuitePlan,
    ended: Ended,
    steps: Vec<StepRecord>,
    deselected: usize,
    started: DateTime<FixedOffset>,
    duration: Duration,
) -> SuiteResult {
    let Ended {
        outcome,
        detail,
        mut cases,
    } = ended;
    if !matches!(
        outcome,
        Outcome::Passed | Outcome::Failed | Outcome::CollectionError
    ) {
        let detail = detail.as_deref().unwrap_or(outcome.name());
        let mut attempt = Attempt::new(CaseStatus::Error);
        attempt.kind = Some(outcome.name().to_string());
        attempt.message = Some(detail.to_string());
        attempt.details = Some(log::tail(&plan.log, log::TAIL_LINES));
        attempt.time = Some(duration);
        let mut case = TestCase::new(&plan.suite.name, outcome.name(), attempt);
        case.synthetic = true;
        cases.push(case);
    }
    SuiteResult {
        outcome,
        detail,
        cases,
        deselected,
        steps,
        started,
        duration,
    }
}

fn try_run_suite(
    plan: &SuitePlan,
    cx: &RunContext<'_>,
    steps: &mut Vec<StepRecord>,
    deselected: &mut usize,
    environment_ready: impl FnOnce(EnvReady),
) -> anyhow::Result<Ended> {
    let mut log = log::create(&plan.log)?;
    if std::env::var_os(INJECT_PANIC_ENV).is_some_and(|v| v == plan.suite.name.as_str()) {
        panic!(
            "{INJECT_PANIC_ENV} asked for a panic in suite `{}`",
            plan.suite.name
        );
    }
    if let Some(blocked) = &plan.blocked {
        writeln!(log, "xtask: {}", cx.redactor.text(&blocked.detail))
            .context("writing the suite log")?;
        return Ok(Ended::new(blocked.outcome, blocked.detail.clone()));
    }
    if let Some(dir) = plan.raw_junit.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let stopped = |stop: Stop, step: &str| {
        match stop {
        Stop::TimedOut => Ended::new(
            Outcome::Timeout,
            format!(
                "the suite's {step} step ran longer than its timeout of {} and was stopped \
                 with all its processes; raise `timeout` in Cargo.toml or pass `--timeout` \
                 if it needs more",
                humanize(plan.timeout)
            ),
        ),
        Stop::Interrupted => Ended::new(
            Outcome::Interrupted,
            format!(
                "stopped during its {step} step: the run was interrupted (Ctrl-C, SIGTERM or SIGHUP)"
            ),
        ),
    }
    };

    // Building the environment and running the tests each get the whole timeout: a slow
    // first build must not eat the time of the tests.
    let clock = Instant::now();
    match prepare_environment(plan, cx, &mut log, steps, clock)? {
        Prepared::Ready { built } => environment_ready(EnvReady {
            duration: clock.elapsed(),
            built,
        }),
        Prepared::Stopped(stop) => return Ok(stopped(stop, "environment")),
        Prepared::Failed(ended) => return Ok(ended),
    }

    let deadline = process::deadline_after(Instant::now(), plan.timeout);
    let (record, stop, heard) = step::run_into_log(
        "pytest",
        &plan.test,
        deadline,
        &mut log,
        cx.redactor,
        cx.also.as_ref(),
    )?;
    // A death by signal reads as a shell (and uv) reports it: 128 + n.
    let code = record.exit_code.or(record.signal.map(|s| 128 + s));
    steps.push(record);
    *deselected = heard.summary.as_deref().map_or(0, step::deselected);
    let cases = read_pytest_report(plan, cx.redactor)?;
    if let Some(stop) = stop {
        let mut ended = stopped(stop, "pytest");
        ended.cases = cases.unwrap_or_default();
        return Ok(ended);
    }
    let own = OwnModules {
        suite_dir: cx.root.join(&plan.suite.dir),
        pythonpath: plan
            .suite
            .pythonpath
            .iter()
            .map(|p| cx.root.join(p))
            .collect(),
    };
    let (outcome, detail) = classify(&plan.suite.name, code, cases.as_deref(), &own);
    Ok(Ended {
        outcome,
        detail,
        cases: cases.unwrap_or_default(),
    })
}

enum Prepared {
    Ready { built: bool },
    Stopped(Stop),
    Failed(Ended),
}

/// The environment step: skipped when the environment's inputs are unchanged, else its
/// build commands and the pytest check, under a lock that makes every other suite or
/// invocation needing the same environment wait for this build instead of racing it.
fn prepare_environment(
    plan: &SuitePlan,
    cx: &RunContext<'_>,
    log: &mut File,
    steps: &mut Vec<StepRecord>,
    clock: Instant,
) -> anyhow::Result<Prepared> {
    let env = &plan.env;
    let deadline = process::deadline_after(clock, plan.timeout);
    let Some(_lock) = lock(&env.lock_path(), deadline)? else {
        let stop = if process::interrupted() {
            Stop::Interrupted
        } else {
            Stop::TimedOut
        };
        writeln!(
            log,
            "xtask: environment: stopped while waiting for another build of {}",
            env.path.display()
        )
        .ok();
        return Ok(Prepared::Stopped(stop));
    };
    let inputs = env.inputs(cx.root, cx.uv_version);
    if env.is_current(&inputs) {
        writeln!(
            log,
            "xtask: environment: {} is up to date (its inputs are unchanged); uv not run",
            env.path.display()
        )
        .context("writing the suite log")?;
        steps.push(StepRecord {
            step: "environment",
            argv: env.build.last().map(|b| b.argv.clone()).unwrap_or_default(),
            exit_code: None,
            signal: None,
            duration: clock.elapsed(),
            skipped: Some("up to date: its inputs are unchanged".into()),
        });
        return Ok(Prepared::Ready { built: false });
    }
    env.discard_record();
    // The build commands, then the check that pytest imports: each with what its failure means.
    let probe = [(&env.probe, true)];
    let builds = env.build.iter().map(|b| (b, false));
    for (invocation, is_probe) in builds.chain(probe) {
        let (record, stop, _) = match step::run_into_log(
            "environment",
            invocation,
            deadline,
            log,
            cx.redactor,
            cx.also.as_ref(),
        ) {
            Ok(ran) => ran,
            Err(err) => {
                let detail = format!("could not start `{}`: {err:#}", invocation.argv[0]);
                writeln!(log, "xtask: {detail}").ok();
                return Ok(Prepared::Failed(Ended::new(
                    Outcome::ToolchainError,
                    detail,
                )));
            }
        };
        let describe = record.describe();
        let failed = record.exit_code != Some(0);
        steps.push(record);
        if let Some(stop) = stop {
            return Ok(Prepared::Stopped(stop));
        }
        if failed {
            let detail = if is_probe {
                format!(
                    "the environment was built, but pytest is not importable in it (`python -I -c \"import pytest\"` {describe}): add pytest to the suite's extra or requirements"
                )
            } else {
                format!(
                    "the environment could not be built: `uv {}` {describe}; uv's explanation is in the log",
                    invocation.argv.get(1).map_or("", String::as_str)
                )
            };
            return Ok(Prepared::Failed(Ended::new(
                Outcome::EnvironmentError,
                detail,
            )));
        }
    }
    env.record(&inputs)
        .with_context(|| format!("recording the inputs of {}", env.path.display()))?;
    Ok(Prepared::Ready { built: true })
}

/// Holds `path` locked; `None` when the deadline passed or the run was interrupted first.
fn lock(path: &std::path::Path, deadline: Option<Instant>) -> anyhow::Result<Option<File>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("locking {}", path.display()))
            }
        }
        if process::interrupted() || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// pytest's report, masked as it is read, if pytest wrote one. The raw file (unmasked) is
/// removed at once.
fn read_pytest_report(
    plan: &SuitePlan,
    redactor: &Redactor,
) -> anyhow::Result<Option<Vec<TestCase>>> {
    if !plan.raw_junit.exists() {
        return Ok(None);
    }
    let budget = std::cell::Cell::new(REPORT_TEXT_BUDGET);
    let cases = pytest_junit::parse_file(&plan.raw_junit, &plan.suite.dir, &|text| {
        within_budget(redactor.text(text), &budget)
    })
    .with_context(|| format!("reading pytest's report {}", plan.raw_junit.display()));
    let _ = std::fs::remove_file(&plan.raw_junit);
    cases.map(Some)
}

/// How much text one suite's report keeps in all: each text is already capped by the
/// reader, and this bounds their sum, so the xtask's memory stays bounded however many
/// tests print however much. The log keeps everything.
pub const REPORT_TEXT_BUDGET: usize = 64 << 20;
/// What a text keeps of its end once the budget is spent.
const OVER_BUDGET_TAIL: usize = 2 << 10;

/// `text` as it fits in what is left of `budget`, which it uses up.
fn within_budget(text: String, budget: &std::cell::Cell<usize>) -> String {
    let left = budget.get();
    if text.len() <= left {
        budget.set(left - text.len());
        return text;
    }
    let mut cut = text.len().saturating_sub(OVER_BUDGET_TAIL.min(left));
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    let kept = format!(
        "[xtask: {cut} bytes cut here: this suite's report holds more than {} MiB of text; the suite's log has everything]\n{}",
        REPORT_TEXT_BUDGET >> 20,
        &text[cut..]
    );
    budget.set(left.saturating_sub(text.len() - cut));
    kept
}

pub fn humanize(duration: Duration) -> String {
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

    #[test]
    fn texts_past_the_suites_budget_keep_only_their_end() {
        let budget = std::cell::Cell::new(10_000);
        assert_eq!(within_budget("a".repeat(6_000), &budget).len(), 6_000);
        let cut = within_budget(format!("{}THE END", "é".repeat(5_000)), &budget);
        assert!(cut.starts_with("[xtask: "), "{}", &cut[..60]);
        assert!(cut.ends_with("THE END"));
        assert!(cut.len() < 2_300, "{}", cut.len());
        // What is left goes to the next text; then every later text keeps only the note.
        assert!(within_budget("x".repeat(100_000), &budget).len() < 2_300);
        assert_eq!(budget.get(), 0);
        for _ in 0..1_000 {
            assert!(within_budget("x".repeat(100_000), &budget).len() < 200);
        }
        assert_eq!(budget.get(), 0);
    }
}
