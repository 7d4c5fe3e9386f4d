//! Running one suite: its environment (built, or found up to date), then pytest from that
//! environment, then pytest's report read into the model and the outcome classified.

use std::fs::File;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, FixedOffset};

use crate::classify::{classify, modules_to_find, PytestEnd, Report, SuiteFacts};
use crate::def_line;
use crate::environment::{BuildStep, Built, Lease, Use};
use crate::facts::OwnModules;
use crate::invocation::Invocation;
use crate::log;
use crate::model::{now, Attempt, CaseStatus, StepRecord, SuiteResult, TestCase};
use crate::outcome::Outcome;
use crate::plan::SuitePlan;
use crate::process::{self, Stop};
use crate::progress;
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
    /// Whether the services the suites need are still up.
    pub services: crate::services::Watch,
    /// How many processes may run at once (`-j`): a split suite runs at most this many of
    /// its slices at once.
    pub jobs: usize,
    /// The result cache, when this run may use it.
    pub cache: Option<&'a crate::cache::Cache>,
}

/// What a suite says while it runs, for the runner to turn into events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Its environment is out of date: building it now.
    EnvironmentBuilding,
    /// Its environment is ready (`built` by this suite, or found up to date).
    EnvironmentReady { duration: Duration, built: bool },
    /// Retry `attempt` of the plan's retries starts, with `tests` node ids, `never_ran` of
    /// which never ran before.
    RetryStarted {
        attempt: u32,
        tests: usize,
        never_ran: usize,
    },
}

/// Runs one suite, telling `progress` what it is doing as it goes.
pub fn run_suite(
    plan: &SuitePlan,
    cx: &RunContext<'_>,
    progress: &dyn Fn(Progress),
) -> SuiteResult {
    let started = now();
    let clock = Instant::now();
    let mut steps = Vec::new();
    let mut deselected = 0;
    let ended = try_run_suite(plan, cx, &mut steps, &mut deselected, progress);
    let ended = match ended {
        Ok(Ran::Ended(ended)) => ended,
        // Its environment steps are this run's; the rest is the cached run's.
        Ok(Ran::Cached(mut result)) => {
            result.steps = steps;
            result.started = started;
            result.duration = clock.elapsed();
            return *result;
        }
        Err(err) => Ended::new(Outcome::Crashed, format!("{err:#}")),
    };
    finish(plan, ended, steps, deselected, started, clock.elapsed())
}

/// How a suite's turn ended: it ran, or its result was found in the cache.
enum Ran {
    Ended(Ended),
    Cached(Box<SuiteResult>),
}

impl From<Ended> for Ran {
    fn from(ended: Ended) -> Ran {
        Ran::Ended(ended)
    }
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
    /// Where the suite was when it was stopped (the running test's file, relative to the
    /// repository root, and 1-based line), for the case that stands for it.
    at: Option<(String, Option<u64>)>,
}

impl Ended {
    fn new(outcome: Outcome, detail: impl Into<String>) -> Ended {
        Ended {
            outcome,
            detail: Some(detail.into()),
            cases: Vec::new(),
            at: None,
        }
    }
}

/// The file that defines the suite's environment, relative to the repository root: what
/// the case standing for a suite that did not run points at when nothing better is known.
fn environment_file(suite: &crate::manifest::Suite) -> String {
    use crate::manifest::Environment;
    let in_dir = |file: &str| {
        let dir = suite.dir.trim_end_matches('/');
        if dir.is_empty() || dir == "." {
            file.to_string()
        } else {
            format!("{dir}/{file}")
        }
    };
    match &suite.environment {
        Environment::Project { .. } => in_dir("pyproject.toml"),
        // A requirements file is relative to the root.
        Environment::Requirements {
            file: Some(file), ..
        } => file.clone(),
        // The requirements are listed in the manifest.
        Environment::Requirements { file: None, .. } => "Cargo.toml".to_string(),
    }
}

/// The result of an ended suite with, when its tests did not all run and pytest's own
/// cases do not show why, a test case that says why. A suite whose report holds its
/// collection errors (an environment error for a missing module) gets none: its counts
/// stay pytest's.
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
        at,
    } = ended;
    let explained = matches!(
        outcome,
        Outcome::Passed | Outcome::Failed | Outcome::CollectionError
    ) || cases.iter().any(TestCase::is_collection_error);
    if !explained {
        let detail = detail.as_deref().unwrap_or(outcome.name());
        let skipped = outcome == Outcome::PrerequisiteUnavailable
            && plan.blocked.as_ref().is_some_and(|b| b.skipped);
        let mut attempt = Attempt::new(if skipped {
            CaseStatus::Skipped
        } else {
            CaseStatus::Error
        });
        attempt.kind = Some(outcome.name().to_string());
        attempt.message = Some(detail.to_string());
        attempt.details = Some(log::tail(&plan.log, log::TAIL_LINES));
        attempt.time = Some(duration);
        let mut case = TestCase::new(&plan.suite.name, outcome.name(), attempt);
        case.synthetic = true;
        let (file, line) = at.unwrap_or_else(|| (environment_file(&plan.suite), None));
        case.file = Some(file);
        case.line = line;
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
        cached: None,
    }
}

fn try_run_suite(
    plan: &SuitePlan,
    cx: &RunContext<'_>,
    steps: &mut Vec<StepRecord>,
    deselected: &mut usize,
    report_progress: &dyn Fn(Progress),
) -> anyhow::Result<Ran> {
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
        return Ok(Ended::new(blocked.outcome, blocked.detail.clone()).into());
    }
    // A service it needs died after it became ready, before this suite's turn.
    if let Some(died) = cx.services.died(&plan.suite.services) {
        let detail = format!(
            "not run: its service `{}` {} before the suite started; see {}",
            died.name,
            died.how,
            crate::paths::display(cx.root, &died.log)
        );
        writeln!(log, "xtask: {}", cx.redactor.text(&detail)).context("writing the suite log")?;
        return Ok(Ended::new(Outcome::ServiceError, detail).into());
    }
    if let Some(dir) = plan.raw_junit.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Building the environment and running the tests each get the whole timeout: a slow
    // first build must not eat the time of the tests.
    let clock = Instant::now();
    // Held until the suite's tests are done: nothing rebuilds the environment under them.
    let _lease = match prepare_environment(plan, cx, &mut log, steps, clock, report_progress)? {
        Prepared::Ready { built, lease } => {
            report_progress(Progress::EnvironmentReady {
                duration: clock.elapsed(),
                built,
            });
            lease
        }
        Prepared::Stopped(stop) => return Ok(stopped(plan, stop, "environment", None).into()),
        Prepared::Failed(ended) => return Ok(ended.into()),
    };
    if let Some(cache) = cx.cache {
        if let crate::cache::Lookup::Hit(result) = cache.look_up(plan, cx.uv_version) {
            let from = result
                .cached
                .as_ref()
                .expect("a cache hit says where it is from");
            writeln!(
                log,
                "xtask: not run: its inputs are exactly those of run {} (started {}), where it passed in {}; its result is that run's (cached; `cargo xtask cache explain {}` lists the inputs, --no-cache runs it)",
                from.run_id,
                from.started_at,
                humanize(from.duration),
                plan.suite.name
            )
            .context("writing the suite log")?;
            return Ok(Ran::Cached(result));
        }
    }

    progress::install(&plan.progress_plugin)?;
    // The tests get the whole timeout, shared by the slices of a split suite.
    let deadline = process::deadline_after(Instant::now(), plan.timeout);
    if plan.slices > 1 {
        return run_slices(
            plan,
            cx,
            &mut log,
            steps,
            deselected,
            deadline,
            report_progress,
        )
        .map(Ran::from);
    }
    run_tests(
        plan,
        cx,
        &mut log,
        steps,
        deselected,
        deadline,
        report_progress,
    )
    .map(Ran::from)
}

/// Runs `plan.slices` slices of the suite's tests at once (at most `cx.jobs`), each its
/// own pytest in the environment already prepared, and makes of them one suite: the worst
/// outcome of any slice (in [`Outcome::PRECEDENCE`]), every test once, every step, and one
/// log with a section per slice. They share the suite's `deadline`, so a timeout or an
/// interrupt stops them all, and a slice whose turn comes after either does not start.
///
/// The slices do not retry: when the suite fails, the tests that failed (or never ran) in
/// every slice are retried together, as one unsplit suite's ([`retry`]): one `retry` step
/// per attempt, one `RETRY` line, alone on the machine (a test that failed only because
/// another slice ran beside it gets its retry in peace).
fn run_slices(
    plan: &SuitePlan,
    cx: &RunContext<'_>,
    log: &mut File,
    steps: &mut Vec<StepRecord>,
    deselected: &mut usize,
    deadline: Option<Instant>,
    report_progress: &dyn Fn(Progress),
) -> anyhow::Result<Ended> {
    let count = plan.slices;
    let slices: Vec<SuitePlan> = (1..=count)
        .map(|k| {
            let mut slice = plan.slice(k, count);
            slice.retries = 0;
            slice
        })
        .collect();
    writeln!(
        log,
        "xtask: split: {count} slices of the suite's tests ({}), at most {} at once, each in its own section below",
        crate::durations::split_dealing(plan),
        cx.jobs.min(count as usize)
    )
    .context("writing the suite log")?;
    struct Slice {
        index: usize,
        ended: anyhow::Result<Ended>,
        steps: Vec<StepRecord>,
        deselected: usize,
    }
    let mut done: Vec<Slice> = Vec::new();
    crate::pool::run(
        &slices,
        cx.jobs.min(count as usize),
        |index, slice, send| {
            let mut steps = Vec::new();
            let mut deselected = 0;
            let ended = log::create(&slice.log).and_then(|mut log| {
                let late = if process::interrupted() {
                    Some(Stop::Interrupted)
                } else if deadline.is_some_and(|d| Instant::now() >= d) {
                    Some(Stop::TimedOut)
                } else {
                    None
                };
                match late {
                    Some(stop) => {
                        let ended = stopped(plan, stop, "pytest", None);
                        let detail = ended.detail.as_deref().unwrap_or_default();
                        writeln!(log, "xtask: not started: {detail}").ok();
                        Ok(ended)
                    }
                    None => run_tests(
                        slice,
                        cx,
                        &mut log,
                        &mut steps,
                        &mut deselected,
                        deadline,
                        &|_| {},
                    ),
                }
            });
            send(Slice {
                index,
                ended,
                steps,
                deselected,
            });
        },
        |slice| done.push(slice),
    );
    done.sort_by_key(|s| s.index);
    let mut endings = Vec::new();
    let mut user_deselected = Vec::new();
    // What the retries start from: every slice's failed and unfinished tests.
    let mut todo = Vec::new();
    let mut ran = std::collections::HashSet::new();
    let mut rootdir = None;
    for (slice, done) in slices.iter().zip(done) {
        let label = format!("slice {}/{count}", done.index + 1);
        writeln!(log, "\nxtask: ---- {label} ----").context("writing the suite log")?;
        if let Ok(mut text) = File::open(&slice.log) {
            std::io::copy(&mut text, log).context("writing the suite log")?;
        }
        let _ = std::fs::remove_file(&slice.log);
        let k = format!("{}/{count}", done.index + 1);
        steps.extend(done.steps.into_iter().map(|mut step| {
            step.slice = Some(k.clone());
            step
        }));
        // The tests the slice's partition left out are the other slices' tests, not
        // deselected ones: what is left is what `-m`, `-k` or `--rerun` deselected.
        let session = progress::session(&slice.session);
        let results = progress::results(&slice.results);
        todo.extend(results.failed.iter().cloned());
        todo.extend(not_run(progress::collected(&slice.collected), &results));
        ran.extend(results.ran);
        rootdir = rootdir.or(session.rootdir.clone());
        let kept = progress::collected(&slice.collected).map_or(0, |c| c.len());
        let by_partition = session
            .before_partition
            .map_or(0, |before| before.saturating_sub(kept));
        user_deselected.push(done.deselected.saturating_sub(by_partition));
        let ended = done
            .ended
            .unwrap_or_else(|err| Ended::new(Outcome::Crashed, format!("{err:#}")));
        endings.push((label, ended));
    }
    *deselected = user_deselected.into_iter().max().unwrap_or(0);
    let merged = merge_slices(endings);
    if merged.outcome != Outcome::Failed || plan.retries == 0 {
        return Ok(merged);
    }
    writeln!(
        log,
        "\nxtask: ---- retries: the tests that did not pass in any slice, in one pytest ----"
    )
    .context("writing the suite log")?;
    let rootdir = rootdir.unwrap_or_else(|| cx.root.join(&plan.suite.dir));
    let base = report_base(plan, cx, &rootdir);
    // Which modules are the repository's own matters only when pytest cannot import one,
    // which ends a slice otherwise than `failed`: none is looked for.
    let own = OwnModules::find(&cx.root.join(&plan.suite.dir), &[], &[]);
    let facts = SuiteFacts {
        name: &plan.suite.name,
        root: cx.root,
        own: &own,
        markers: plan.suite.markers.as_deref(),
        pytest_args: &plan.pytest_args,
    };
    let first = Attempted {
        cases: merged.cases,
        todo,
        ran,
        rootdir: &rootdir,
        base: &base,
        deadline,
    };
    let mut ended = retry(plan, cx, log, steps, &facts, first, report_progress)?;
    blame_a_dead_service(plan, cx, log, &mut ended);
    Ok(ended)
}

/// One suite's ending made of its slices' (each with its label): the worst outcome, the
/// details of the slices that ended so, and every test case once (a collection error every
/// slice met is one case).
fn merge_slices(mut endings: Vec<(String, Ended)>) -> Ended {
    // A slice given no test file while others ran tests is not the suite's `no-tests`.
    if endings.iter().any(|(_, e)| e.outcome != Outcome::NoTests) {
        for (_, ended) in &mut endings {
            if ended.outcome == Outcome::NoTests {
                ended.outcome = Outcome::Passed;
                ended.detail = None;
            }
        }
    }
    let outcome = Outcome::overall(endings.iter().map(|(_, e)| e.outcome));
    let mut details = Vec::new();
    let mut at = None;
    let mut cases: Vec<TestCase> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (label, ended) in endings {
        if ended.outcome == outcome {
            if let Some(detail) = ended.detail.clone() {
                details.push((label, detail));
            }
            if at.is_none() {
                at = ended.at;
            }
        }
        for case in ended.cases {
            if seen.insert((case.classname.clone(), case.name.clone())) {
                cases.push(case);
            }
        }
    }
    // What every slice says alike (a module none can import) is said once, as unsplit.
    let detail = match details.first() {
        None => None,
        Some((_, first)) if details.iter().all(|(_, d)| d == first) => Some(first.clone()),
        Some(_) => Some(
            details
                .iter()
                .map(|(label, detail)| format!("{label}: {detail}"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    };
    Ended {
        outcome,
        detail,
        cases,
        at,
    }
}

/// Runs the suite's tests (its pytest, then its retries) in the environment already
/// prepared, into `log`.
fn run_tests(
    plan: &SuitePlan,
    cx: &RunContext<'_>,
    log: &mut File,
    steps: &mut Vec<StepRecord>,
    deselected: &mut usize,
    deadline: Option<Instant>,
    report_progress: &dyn Fn(Progress),
) -> anyhow::Result<Ended> {
    let _ = std::fs::remove_file(&plan.progress);
    for file in [&plan.session, &plan.results, &plan.collected] {
        let _ = std::fs::remove_file(file);
    }
    let (record, stop, heard) = match step::run_into_log(
        "pytest",
        &plan.test,
        deadline,
        log,
        cx.redactor,
        cx.also.as_ref(),
    ) {
        Ok(ran) => ran,
        // The environment step found it current, yet its pytest cannot be started (the
        // script was deleted, or its interpreter moved): the environment is at fault.
        Err(err) => {
            let detail = format!(
                    "could not start the environment's pytest `{}` ({}): the environment {} is broken; delete it to have it rebuilt",
                    plan.test.argv[0],
                    err.root_cause(),
                    plan.env.path.display()
                );
            writeln!(log, "xtask: {}", cx.redactor.text(&detail)).ok();
            return Ok(Ended::new(Outcome::EnvironmentError, detail));
        }
    };
    // A death by signal reads as a shell (and uv) reports it: 128 + n.
    let code = record.exit_code.or(record.signal.map(|s| 128 + s));
    steps.push(record);
    // pytest's report names files relative to its rootdir, which pytest chose as it does for
    // the hand-written command; the plugin says which (pytest never configured it: the
    // suite's directory, where it runs).
    let session = progress::session(&plan.session);
    *deselected = session.deselected;
    let rootdir = session
        .rootdir
        .unwrap_or_else(|| cx.root.join(&plan.suite.dir));
    let base = report_base(plan, cx, &rootdir);
    let mut report = read_pytest_report(plan, &base, cx);
    // The tests of this run as the plugin noted them: started, failed, ran to their end.
    let results = progress::results(&plan.results);
    let cwd = cx.root.join(&plan.suite.dir);
    if let Ok(Some(cases)) = &mut report {
        attach_starts(cases, &results.starts, &rootdir, &cwd);
    }
    let cases = match &report {
        Ok(Some(cases)) => Some(cases.as_slice()),
        _ => None,
    };
    let running = progress::read(&plan.progress);
    let _ = std::fs::remove_file(&plan.progress);
    if let Some(stop) = stop {
        let nodeid = running.as_ref().map(|r| cx.redactor.text(&r.nodeid));
        let mut ended = stopped(plan, stop, "pytest", nodeid.as_deref());
        ended.cases = cases.map(<[TestCase]>::to_vec).unwrap_or_default();
        ended.at = running.and_then(|r| running_test_at(&r, &base, cx));
        blame_a_dead_service(plan, cx, log, &mut ended);
        return Ok(ended);
    }
    let unreadable;
    let pytest_report = match &report {
        Ok(Some(cases)) => Report::Read(cases),
        Ok(None) => Report::Missing,
        Err(why) => {
            unreadable = why.clone();
            Report::Unreadable(&unreadable)
        }
    };
    let ended = PytestEnd {
        code,
        report: pytest_report,
        output: &heard.output,
    };
    // The one fact the classifier needs from disk, read only for the modules that failed.
    let pythonpath: Vec<std::path::PathBuf> = plan
        .suite
        .pythonpath
        .iter()
        .map(|p| cx.root.join(p))
        .collect();
    let own = OwnModules::find(
        &cx.root.join(&plan.suite.dir),
        &pythonpath,
        &modules_to_find(&ended),
    );
    let facts = SuiteFacts {
        name: &plan.suite.name,
        root: cx.root,
        own: &own,
        markers: plan.suite.markers.as_deref(),
        pytest_args: &plan.pytest_args,
    };
    let (mut outcome, mut detail) = classify(&facts, &ended);
    // A slice that holds none of a suite's tests is not the suite's failure when other
    // slices hold them; a suite that selects no test at all is `no-tests` in every slice.
    if let Some(partition) = plan.partition {
        if outcome == Outcome::NoTests {
            match session.before_partition {
                Some(selected) if selected > 0 => {
                    outcome = Outcome::Passed;
                    detail = Some(format!(
                        "none of the suite's {selected} selected tests falls in partition {partition} ({} deselected)",
                        *deselected
                    ));
                }
                _ => {
                    detail = Some(format!(
                        "{} (in any partition: the suite selects no test at all)",
                        detail.as_deref().unwrap_or("no tests")
                    ))
                }
            }
        }
    }
    // `--rerun`: a suite whose every test passed in the run being rerun, and has none
    // added since, has nothing left to run, which is not a failure.
    let rerunning = plan
        .test
        .env
        .iter()
        .any(|(k, _)| k == crate::rerun::DESELECT_ENV);
    if rerunning && outcome == Outcome::NoTests && *deselected > 0 {
        outcome = Outcome::Passed;
        detail = Some(format!(
            "nothing left to rerun: its {} test(s) passed in the run being rerun and none was added since",
            *deselected
        ));
    }
    let cases = report.ok().flatten().unwrap_or_default();
    // The tests of this run that did not pass: failed in any phase, or never ran because
    // pytest stopped early (`-x`, `--maxfail`, a test that ended the session).
    let never_ran = not_run(progress::collected(&plan.collected), &results);
    let mut ended = if outcome == Outcome::Failed && plan.retries > 0 {
        let mut todo = results.failed.clone();
        todo.extend(never_ran);
        let first = Attempted {
            cases,
            todo,
            ran: results.ran,
            rootdir: &rootdir,
            base: &base,
            deadline,
        };
        retry(plan, cx, log, steps, &facts, first, report_progress)?
    } else if outcome == Outcome::Passed && !never_ran.is_empty() {
        Ended {
            outcome: Outcome::Crashed,
            detail: Some(format!(
                "pytest ended before {} of its tests ran to their end (the first: {}), yet said it passed; a suite whose tests did not all run cannot pass",
                never_ran.len(),
                cx.redactor.text(&never_ran[0])
            )),
            cases,
            at: None,
        }
    } else {
        Ended {
            outcome,
            detail,
            cases,
            at: None,
        }
    };
    blame_a_dead_service(plan, cx, log, &mut ended);
    Ok(ended)
}

/// What pytest's report's files are relative to (its `rootdir`), relative to the
/// repository root (`.` for the root itself).
fn report_base(plan: &SuitePlan, cx: &RunContext<'_>, rootdir: &std::path::Path) -> String {
    rootdir
        .strip_prefix(cx.root)
        .ok()
        .map(|rel| rel.to_string_lossy().into_owned())
        .map(|rel| if rel.is_empty() { ".".to_string() } else { rel })
        .unwrap_or_else(|| plan.suite.dir.clone())
}

/// A node id relative to pytest's `rootdir` made relative to `cwd`, where pytest runs and
/// reads node ids from.
fn from_dir(id: &str, rootdir: &std::path::Path, cwd: &std::path::Path) -> String {
    let (path, rest) = id.split_at(id.find("::").unwrap_or(id.len()));
    let abs = rootdir.join(path);
    let rel = abs
        .strip_prefix(cwd)
        .map_or(abs.clone(), |r| r.to_path_buf());
    format!("{}{rest}", rel.display())
}

/// pytest's JUnit classname and name of a node id, as its junitxml plugin derives them
/// (`mangle_test_address`): the path's `/` become `.` without `.py`, each `::` a `.`, the
/// last part (with its parameters) the name.
fn junit_address(node_id: &str) -> (String, String) {
    let (path, params) = match node_id.find('[') {
        Some(at) => node_id.split_at(at),
        None => (node_id, ""),
    };
    let mut names: Vec<String> = path.split("::").map(str::to_string).collect();
    names[0] = names[0].replace('/', ".");
    if let Some(module) = names[0].strip_suffix(".py") {
        names[0] = module.to_string();
    }
    let mut name = names.pop().unwrap_or_default();
    name.push_str(params);
    (names.join("."), name)
}

/// Gives each case of one pytest run (its last attempt) the node id and the start the
/// plugin noted for it, matched by the JUnit address pytest derives from the node id.
fn attach_starts(
    cases: &mut [TestCase],
    starts: &std::collections::HashMap<String, f64>,
    rootdir: &std::path::Path,
    cwd: &std::path::Path,
) {
    if starts.is_empty() {
        return;
    }
    let by_address: std::collections::HashMap<(String, String), (&String, f64)> = starts
        .iter()
        .map(|(id, at)| (junit_address(id), (id, *at)))
        .collect();
    for case in cases {
        let key = (
            std::mem::take(&mut case.classname),
            std::mem::take(&mut case.name),
        );
        if let Some((id, at)) = by_address.get(&key) {
            case.node_id = Some(from_dir(id, rootdir, cwd));
            case.result_mut().started = DateTime::from_timestamp_micros((at * 1e6).round() as i64)
                .map(|t| t.fixed_offset());
        }
        (case.classname, case.name) = key;
    }
}

/// The tests pytest was to run (when the plugin noted them) that did not run to their end.
fn not_run(collected: Option<Vec<String>>, results: &progress::Results) -> Vec<String> {
    collected
        .unwrap_or_default()
        .into_iter()
        .filter(|id| !results.ran.contains(id))
        .collect()
}

/// A suite stopped in `step` by its timeout or an interrupt; `running`: the test pytest was
/// running, when the progress plugin said.
fn stopped(plan: &SuitePlan, stop: Stop, step: &str, running: Option<&str>) -> Ended {
    let running = running.map_or(String::new(), |r| format!(" while running {r}"));
    match stop {
        Stop::TimedOut => Ended::new(
            Outcome::Timeout,
            format!(
                "the suite's {step} step ran longer than its timeout of {} and was stopped \
                 with all its processes{running}; raise `timeout` in Cargo.toml or pass \
                 `--timeout` if it needs more",
                humanize(plan.timeout)
            ),
        ),
        Stop::Interrupted => Ended::new(
            Outcome::Interrupted,
            format!(
                "stopped during its {step} step{running}: the run was interrupted (Ctrl-C, SIGTERM or SIGHUP)"
            ),
        ),
    }
}

/// A suite that did not pass while a service it needs died: the stack was down, which the
/// tests' failures (or a hang until the timeout) do not say. It becomes `service-error`,
/// saying what it would have been; its cases are kept as they are. An interrupted run
/// stopped the services itself.
fn blame_a_dead_service(plan: &SuitePlan, cx: &RunContext<'_>, log: &mut File, ended: &mut Ended) {
    if matches!(ended.outcome, Outcome::Passed | Outcome::Interrupted) {
        return;
    }
    let Some(died) = cx.services.died(&plan.suite.services) else {
        return;
    };
    let what = ended
        .detail
        .as_ref()
        .map_or(String::new(), |d| format!(" ({d})"));
    let detail = format!(
        "its service `{}` {} during the run: the suite ended `{}`{what}, which may be the service's failure rather than the code's; see {}",
        died.name,
        died.how,
        ended.outcome.name(),
        crate::paths::display(cx.root, &died.log)
    );
    writeln!(log, "xtask: {}", cx.redactor.text(&detail)).ok();
    ended.outcome = Outcome::ServiceError;
    ended.detail = Some(detail);
}

/// The first pytest run of a suite that failed, as its retries start from it.
struct Attempted<'a> {
    cases: Vec<TestCase>,
    /// Node ids to run again: the tests that failed and those that never ran.
    todo: Vec<String>,
    /// The tests that ran to their end.
    ran: std::collections::HashSet<String>,
    rootdir: &'a std::path::Path,
    base: &'a str,
    /// The test step's deadline: its retries share it.
    deadline: Option<Instant>,
}

/// Runs again, by node id, up to `plan.retries` times, every test of the previous run that
/// did not pass: those that failed, and those that never ran because pytest stopped early
/// (`-x`, `--maxfail`). Each run is an attempt of its case (a test that never ran before
/// gets its case from the retry). A test whose last attempt passed after a failed one is
/// flaky: the suite passes (unless `--flaky-fails`); one that failed every attempt keeps
/// them all and the suite fails, and so does one that never ran at all.
///
/// A retry is the test step again: it shares its deadline, stops on Ctrl-C, and ends the
/// way the first run would (a timeout is `timeout`, an interrupt `interrupted`, a crash
/// `crashed`), with every attempt so far kept.
fn retry(
    plan: &SuitePlan,
    cx: &RunContext<'_>,
    log: &mut File,
    steps: &mut Vec<StepRecord>,
    facts: &SuiteFacts<'_>,
    first: Attempted<'_>,
    report_progress: &dyn Fn(Progress),
) -> anyhow::Result<Ended> {
    let Attempted {
        mut cases,
        mut todo,
        mut ran,
        rootdir,
        base,
        deadline,
    } = first;
    let cwd = cx.root.join(&plan.suite.dir);
    // The fixed part of the command (pytest, its report options, the plugin), then node ids.
    let fixed = plan
        .test
        .argv
        .iter()
        .position(|a| a == progress::PLUGIN_MODULE)
        .map_or(plan.test.argv.len(), |at| at + 1);
    for attempt in 1..=plan.retries {
        if todo.is_empty() {
            break;
        }
        let per_attempt = |path: &std::path::Path| {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".retry{attempt}"));
            std::path::PathBuf::from(name)
        };
        // Beside the run's own report, whatever its name (a slice's ends `.slice1`).
        let report = per_attempt(&plan.raw_junit);
        let (results, collected, session) = (
            per_attempt(&plan.results),
            per_attempt(&plan.collected),
            per_attempt(&plan.session),
        );
        let mut invocation = plan.test.clone();
        invocation.argv = plan.test.argv[..fixed]
            .iter()
            .map(|a| {
                if a.starts_with("--junitxml=") {
                    format!("--junitxml={}", report.display())
                } else {
                    a.clone()
                }
            })
            .collect();
        // Node ids are relative to pytest's rootdir; pytest reads them relative to where
        // it runs, the suite's directory.
        invocation
            .argv
            .extend(todo.iter().map(|id| from_dir(id, rootdir, &cwd)));
        // The node ids are the slice's own tests already: a partition would deselect those
        // of a split suite's slice whose id hashes elsewhere (its file decided its slice).
        invocation.env.retain(|(key, _)| {
            key != crate::plan::PARTITION_ENV && key != crate::plan::SPLIT_FILES_ENV
        });
        for (key, value) in &mut invocation.env {
            let file = match key.as_str() {
                progress::RESULTS_ENV => &results,
                progress::COLLECTED_ENV => &collected,
                progress::SESSION_ENV => &session,
                _ => continue,
            };
            *value = file.to_string_lossy().into_owned();
        }
        let never = todo.iter().filter(|id| !ran.contains(*id)).count();
        report_progress(Progress::RetryStarted {
            attempt,
            tests: todo.len(),
            never_ran: never,
        });
        writeln!(
            log,
            "xtask: retry {attempt} of {}: {} test(s) again ({} that never ran)",
            plan.retries,
            todo.len(),
            never
        )
        .ok();
        let _ = std::fs::remove_file(&plan.progress);
        let (mut record, stop, heard) = step::run_into_log(
            "retry",
            &invocation,
            deadline,
            log,
            cx.redactor,
            cx.also.as_ref(),
        )?;
        record.step = "retry";
        let code = record.exit_code.or(record.signal.map(|s| 128 + s));
        steps.push(record);
        let this = progress::results(&results);
        let again = report.exists().then(|| {
            pytest_junit::parse_file(&report, base, &|t| cx.redactor.text(t))
                .map(|mut again| {
                    def_line::line_of_def(cx.root, &mut again);
                    attach_starts(&mut again, &this.starts, rootdir, &cwd);
                    again
                })
                .map_err(|err| err.root_cause().to_string())
        });
        let _ = std::fs::remove_file(&report);
        if let Some(Ok(again)) = &again {
            for rerun in again {
                match cases
                    .iter_mut()
                    .find(|c| c.classname == rerun.classname && c.name == rerun.name)
                {
                    Some(case) => case.attempts.push(rerun.result().clone()),
                    // A test that never ran before: this is its first attempt.
                    None => cases.push(rerun.clone()),
                }
            }
        }
        let running = progress::read(&plan.progress);
        if let Some(stop) = stop {
            let nodeid = running.as_ref().map(|r| cx.redactor.text(&r.nodeid));
            let mut ended = stopped(
                plan,
                stop,
                &format!("pytest (retry {attempt})"),
                nodeid.as_deref(),
            );
            ended.cases = cases;
            ended.at = running.and_then(|r| running_test_at(&r, base, cx));
            return Ok(ended);
        }
        // The retry ends as the first run would: anything but passed or failed ends the
        // suite so.
        let report = match &again {
            Some(Ok(again)) => Report::Read(again),
            Some(Err(why)) => Report::Unreadable(why),
            None => Report::Missing,
        };
        let (outcome, detail) = classify(
            facts,
            &PytestEnd {
                code,
                report,
                output: &heard.output,
            },
        );
        if !matches!(outcome, Outcome::Passed | Outcome::Failed) {
            return Ok(Ended {
                outcome,
                detail: Some(format!(
                    "on retry {attempt} of {}: {}",
                    plan.retries,
                    detail.as_deref().unwrap_or(outcome.name())
                )),
                cases,
                at: None,
            });
        }
        let mut next = this.failed.clone();
        next.extend(not_run(progress::collected(&collected), &this));
        ran.extend(this.ran);
        todo = next;
    }
    let still = cases
        .iter()
        .filter(|c| matches!(c.status(), CaseStatus::Failed | CaseStatus::Error))
        .count();
    let never: Vec<&String> = todo.iter().filter(|id| !ran.contains(*id)).collect();
    let flaky = cases.iter().filter(|c| c.is_flaky()).count();
    let attempts = plan.retries + 1;
    let (outcome, detail) = match (still, never.len(), flaky) {
        (0, 0, flaky) if plan.flaky_fails => (
            Outcome::Failed,
            format!("{flaky} test(s) passed only on a retry, and --flaky-fails makes flaky tests fail the run"),
        ),
        (0, 0, flaky) => (
            Outcome::Passed,
            format!("{flaky} flaky test(s): failed, then passed on a retry"),
        ),
        (still, 0, _) => (
            Outcome::Failed,
            format!("{still} test(s) failed on every one of {attempts} attempts"),
        ),
        (still, never_ran, _) => (
            Outcome::Failed,
            format!(
                "{still} test(s) failed on every one of {attempts} attempts, and {never_ran} never ran in any (the first: {}): pytest stopped before it",
                cx.redactor.text(never[0])
            ),
        ),
    };
    Ok(Ended {
        outcome,
        detail: Some(detail),
        cases,
        at: None,
    })
}

/// Builds the suite's environment (or finds it up to date) as the runner does before its
/// tests, for a service that runs in it, and leases it for as long as the service runs;
/// the error says why it could not.
pub fn build_environment(
    plan: &SuitePlan,
    cx: &RunContext<'_>,
    log: &mut File,
) -> Result<Lease, String> {
    let mut steps = Vec::new();
    match prepare_environment(plan, cx, log, &mut steps, Instant::now(), &|_| {}) {
        Ok(Prepared::Ready { lease, .. }) => Ok(lease),
        Ok(Prepared::Stopped(Stop::TimedOut)) => Err(format!(
            "building the environment of suite `{}` ran longer than its timeout",
            plan.suite.name
        )),
        Ok(Prepared::Stopped(Stop::Interrupted)) => {
            Err("the run was interrupted while its environment was built".into())
        }
        Ok(Prepared::Failed(ended)) => Err(ended.detail.unwrap_or_default()),
        Err(err) => Err(format!("{err:#}")),
    }
}

enum Prepared {
    /// Ready to use; `lease` holds it shared until dropped, so nothing rebuilds it meanwhile.
    Ready {
        built: bool,
        lease: Lease,
    },
    Stopped(Stop),
    Failed(Ended),
}

/// The environment step: skipped when the environment's inputs are unchanged, else its
/// build commands and the pytest check. Built under the environment's exclusive lock, so
/// every other suite or invocation needing it waits for this build instead of racing it,
/// and a build with other inputs waits until no suite uses it; used under its shared lock,
/// which the returned lease holds.
fn prepare_environment(
    plan: &SuitePlan,
    cx: &RunContext<'_>,
    log: &mut File,
    steps: &mut Vec<StepRecord>,
    clock: Instant,
    report_progress: &dyn Fn(Progress),
) -> anyhow::Result<Prepared> {
    let env = &plan.env;
    let deadline = process::deadline_after(clock, plan.timeout);
    let stopped_waiting = |log: &mut File, what: &str| {
        writeln!(
            log,
            "xtask: environment: stopped while waiting for {what} {}",
            env.path.display()
        )
        .ok();
        Ok(Prepared::Stopped(if process::interrupted() {
            Stop::Interrupted
        } else {
            Stop::TimedOut
        }))
    };
    let inputs = env.inputs(cx.root, cx.uv_version);
    let started = now();
    let mut built = false;
    loop {
        let Some(lease) = env.lock(Use::Shared, deadline)? else {
            return stopped_waiting(log, "another build of");
        };
        if env.is_current(&inputs) {
            if !built {
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
                    started,
                    duration: clock.elapsed(),
                    skipped: Some("up to date: its inputs are unchanged".into()),
                    slice: None,
                });
            }
            return Ok(Prepared::Ready { built, lease });
        }
        drop(lease);
        let exclusive = match env.lock(Use::Exclusive, Some(Instant::now()))? {
            Some(exclusive) => exclusive,
            None => {
                writeln!(
                    log,
                    "xtask: environment: {} is in use or being built elsewhere; waiting to build it",
                    env.path.display()
                )
                .ok();
                match env.lock(Use::Exclusive, deadline)? {
                    Some(exclusive) => exclusive,
                    None => return stopped_waiting(log, "the other users of"),
                }
            }
        };
        let mut failed = None;
        let mut announced = false;
        let outcome = env.build_if_stale(&inputs, |step, invocation| {
            if !announced {
                report_progress(Progress::EnvironmentBuilding);
                announced = true;
            }
            failed = run_build_step(step, invocation, cx, log, steps, deadline)?;
            Ok(failed.is_none())
        })?;
        if let Some(failed) = failed {
            return Ok(failed);
        }
        built |= outcome == Built::Built;
        drop(exclusive);
    }
}

/// One step of the environment's build ([`crate::environment::EnvPlan::build_steps`]) into
/// the suite's log, with what its failure means: `Some` when it failed or was stopped.
fn run_build_step(
    step: BuildStep,
    invocation: &Invocation,
    cx: &RunContext<'_>,
    log: &mut File,
    steps: &mut Vec<StepRecord>,
    deadline: Option<Instant>,
) -> anyhow::Result<Option<Prepared>> {
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
            return Ok(Some(Prepared::Failed(Ended::new(
                Outcome::ToolchainError,
                detail,
            ))));
        }
    };
    let describe = record.describe();
    let failed = record.exit_code != Some(0);
    steps.push(record);
    if let Some(stop) = stop {
        return Ok(Some(Prepared::Stopped(stop)));
    }
    if !failed {
        return Ok(None);
    }
    let detail = match step {
        BuildStep::Probe => format!(
            "the environment was built, but pytest is not importable in it (`python -I -c \"import pytest\"` {describe}): add pytest to the suite's extra or requirements"
        ),
        BuildStep::Build => format!(
            "the environment could not be built: `uv {}` {describe}; uv's explanation is in the log",
            invocation.argv.get(1).map_or("", String::as_str)
        ),
    };
    Ok(Some(Prepared::Failed(Ended::new(
        Outcome::EnvironmentError,
        detail,
    ))))
}

/// Where the test the progress plugin names is: its file relative to the repository root
/// and its 1-based line, moved to the `def` of a decorated test.
fn running_test_at(
    running: &progress::Running,
    base: &str,
    cx: &RunContext<'_>,
) -> Option<(String, Option<u64>)> {
    let file = running.file.as_deref()?;
    let mut case = TestCase::new("", "", Attempt::new(CaseStatus::Error));
    case.file = Some(cx.redactor.text(&pytest_junit::rebase(base, file)));
    // pytest's line is 0-based.
    case.line = running.line.map(|l| l + 1);
    def_line::line_of_def(cx.root, std::slice::from_mut(&mut case));
    Some((case.file?, case.line))
}

/// pytest's report, masked as it is read, if pytest wrote one, with each decorated test's
/// `line` moved to its `def`; `Err` with why when it cannot be read (cut off, not XML).
/// The raw file (unmasked) is removed at once.
fn read_pytest_report(
    plan: &SuitePlan,
    base: &str,
    cx: &RunContext<'_>,
) -> Result<Option<Vec<TestCase>>, String> {
    if !plan.raw_junit.exists() {
        return Ok(None);
    }
    let redactor = cx.redactor;
    let budget = std::cell::Cell::new(REPORT_TEXT_BUDGET);
    let cases = pytest_junit::parse_file(&plan.raw_junit, base, &|text| {
        within_budget(redactor.text(text), &budget)
    })
    .map_err(|err| err.root_cause().to_string());
    let _ = std::fs::remove_file(&plan.raw_junit);
    let mut cases = cases?;
    def_line::line_of_def(cx.root, &mut cases);
    Ok(Some(cases))
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
    // Past the budget each text still keeps its last OVER_BUDGET_TAIL bytes (where a
    // traceback ends): memory stays bounded by that times the number of texts.
    let mut cut = text.len().saturating_sub(OVER_BUDGET_TAIL);
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
    fn node_ids_map_to_the_junit_address_pytest_gives_them() {
        assert_eq!(
            junit_address("tests/test_x.py::TestA::test_b[a::b-1.5/2]"),
            ("tests.test_x.TestA".into(), "test_b[a::b-1.5/2]".into())
        );
        assert_eq!(
            junit_address("test_h.py::test_ok"),
            ("test_h".into(), "test_ok".into())
        );
        let root = std::path::Path::new("/repo");
        assert_eq!(
            from_dir("pkg/tests/t.py::x", root, &root.join("pkg")),
            "tests/t.py::x"
        );
    }

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
        // Once it is spent, each text keeps its last 2 KiB after the note.
        for i in 0..1_000 {
            let end = format!("the end of text {i}");
            let kept = within_budget(format!("{}{end}", "x".repeat(100_000)), &budget);
            assert!(
                kept.starts_with("[xtask: ") && kept.ends_with(&end),
                "{kept}"
            );
            let note = kept.find("]\n").unwrap() + 2;
            assert_eq!(kept.len() - note, OVER_BUDGET_TAIL);
        }
        assert_eq!(budget.get(), 0);
    }
}
