//! `cargo xtask doctor [--json]`: checks the toolchain and every suite's environment
//! without running any test, and says how to fix each problem it finds.
//!
//! The checks, in order: uv (found, and its version); then per suite: a Python that
//! satisfies its `requires-python`, its `uv.lock` in sync with its `pyproject.toml`, its
//! environment builds, pytest is importable in it, and the markers it selects on are
//! registered. A check whose precondition failed is reported as skipped, so that one
//! problem is reported once. A suite that names prerequisites or `requires-env` also gets
//! `prerequisites`, checked as `smoke` checks them: one that is unavailable is a warning,
//! not a failure, as it is for a run without `--require-all`. Every command is one
//! `cargo xtask test` runs, or a read-only uv query: doctor writes nothing that a test run
//! would not (the environments and the records of their inputs, a pinned uv). The suites
//! are planned as a run plans them (`facts`, `plan`), and their environments built by the
//! run's own protocol (`EnvPlan::build_if_stale`).

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::environment::{BuildStep, Built, Use};
use crate::exit_codes;
use crate::flags::DoctorArgs;
use crate::invocation::{shell_line, Invocation};
use crate::manifest::{Environment, Manifest, Prerequisite, Suite};
use crate::outcome::Outcome;
use crate::paths::Layout;
use crate::plan::{plan_suite, SuitePlan};
use crate::process;
use crate::redact::Redactor;
use crate::services::{self, Health};
use crate::step::{self, Captured};
use crate::toolchain::{self, UV_ENV};

/// How many suites are checked at once: building environments is mostly waiting on uv.
const JOBS: usize = 2;
/// How much of a failing command's output a check shows.
const OUTPUT_LINES: usize = 20;

/// The names of the per-suite checks, in the order they run.
const SUITE_CHECKS: [&str; 5] = ["python", "lock", "environment", "pytest", "markers"];

pub fn run(layout: &Layout, manifest: &Manifest, args: &DoctorArgs) -> anyhow::Result<()> {
    let suites: Vec<&Suite> = manifest.suites.iter().collect();
    let redactor = crate::session::redactor(manifest, &suites);
    process::init(
        &layout.run_id,
        std::env::temp_dir().join(format!("xtask-doctor-{}", layout.run_id)),
    )
    .map_err(|err| anyhow::anyhow!("setting up signal handling: {err}"))?;
    let cx = Cx {
        layout,
        manifest,
        redactor: &redactor,
    };
    let mut out = Output::new(args.json, redactor.clone());
    let (check, uv) = check_uv(&cx);
    out.emit(vec![check]);
    match uv {
        Some((uv, version)) => check_suites(&cx, &uv, &version, &manifest.suites, &mut out),
        None => {
            for suite in &manifest.suites {
                let mut checks: Vec<_> = SUITE_CHECKS
                    .iter()
                    .map(|name| Check::skip(name, suite, "not run: uv is missing"))
                    .collect();
                // Prerequisites need no uv.
                checks.extend(check_prerequisites(&cx, suite));
                out.emit(checks);
            }
        }
    }
    Ok(crate::error::from_outcome(out.finish())?)
}

/// What every check needs: where the repository is, its manifest, and the masker of all
/// it prints.
struct Cx<'a> {
    layout: &'a Layout,
    manifest: &'a Manifest,
    redactor: &'a Redactor,
}

impl Cx<'_> {
    /// Runs one check's command through the process layer, within the suite's timeout.
    fn execute(&self, invocation: &Invocation) -> anyhow::Result<Captured> {
        let deadline = process::deadline_after(std::time::Instant::now(), CHECK_TIMEOUT);
        step::capture(invocation, deadline, self.redactor)
    }
}

/// No single check may take longer than this (a build of a big environment included).
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// What a failed check says about the machine: it picks the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// uv or a Python is missing: `TOOLCHAIN_ERROR`.
    Toolchain,
    /// A suite's lock, environment or pytest configuration is wrong: `ENVIRONMENT_ERROR`.
    Environment,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    Fail(Class),
    /// Not run because an earlier check it depends on failed.
    Skip,
    /// Does not apply to this suite (a `requirements` suite has no lock to check).
    NotApplicable,
    /// Something the suite needs from outside is unavailable: the suite would be
    /// `prerequisite-unavailable`, which fails a run only with `--require-all`.
    Warn,
}

#[derive(Clone, Debug)]
struct Check {
    name: &'static str,
    suite: Option<String>,
    status: Status,
    /// One line: what was found.
    detail: String,
    /// One sentence on how to fix a failure.
    fix: Option<String>,
    /// The command that was run, as a line to paste into a shell at the repository root.
    command: Option<String>,
    /// The end of a failing command's output.
    output: Option<String>,
}

impl Check {
    fn new(name: &'static str, suite: Option<&Suite>, status: Status, detail: String) -> Check {
        Check {
            name,
            suite: suite.map(|s| s.name.clone()),
            status,
            detail,
            fix: None,
            command: None,
            output: None,
        }
    }

    fn ok(name: &'static str, suite: &Suite, detail: impl Into<String>) -> Check {
        Check::new(name, Some(suite), Status::Ok, detail.into())
    }

    fn fail(
        name: &'static str,
        suite: &Suite,
        class: Class,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::new(name, Some(suite), Status::Fail(class), detail.into()).with_fix(fix)
    }

    fn skip(name: &'static str, suite: &Suite, why: impl Into<String>) -> Check {
        Check::new(name, Some(suite), Status::Skip, why.into())
    }

    fn with_fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }

    fn ran(mut self, invocation: &Invocation) -> Check {
        self.command = Some(shell_line(invocation));
        self
    }

    fn with_output(mut self, ran: &Captured) -> Check {
        self.output = Some(tail(ran)).filter(|t| !t.is_empty());
        self
    }

    fn failed(&self) -> bool {
        matches!(self.status, Status::Fail(_))
    }

    fn label(&self) -> &'static str {
        match self.status {
            Status::Ok => "ok",
            Status::Fail(_) => "FAIL",
            Status::Skip => "skip",
            Status::NotApplicable => "n/a",
            Status::Warn => "warn",
        }
    }

    fn json(&self) -> serde_json::Value {
        let (status, ok) = match self.status {
            Status::Ok => ("ok", json!(true)),
            Status::Fail(_) => ("fail", json!(false)),
            Status::Skip => ("skipped", json!(null)),
            Status::NotApplicable => ("not-applicable", json!(null)),
            Status::Warn => ("unavailable", json!(false)),
        };
        json!({
            "check": self.name,
            "suite": self.suite,
            "ok": ok,
            "status": status,
            "detail": self.detail,
            "fix": self.fix,
            "command": self.command,
            "output": self.output,
        })
    }

    fn print(&self, redactor: &Redactor) {
        let subject = match &self.suite {
            Some(suite) => format!("{suite}: {}", self.name),
            None => self.name.to_string(),
        };
        let mut lines = vec![format!("  {:<5} {subject}: {}", self.label(), self.detail)];
        if self.failed() || self.status == Status::Warn {
            for line in self.output.iter().flat_map(|o| o.lines()) {
                lines.push(format!("        | {line}"));
            }
            if let Some(command) = &self.command {
                lines.push(format!("        command: {command}"));
            }
            if let Some(fix) = &self.fix {
                lines.push(format!("        fix: {fix}"));
            }
        }
        println!("{}", redactor.text(&lines.join("\n")));
    }
}

/// Prints the checks as they come (or collects them for `--json`) and decides the exit code.
struct Output {
    json: bool,
    checks: Vec<Check>,
    redactor: Redactor,
}

impl Output {
    fn new(json: bool, redactor: Redactor) -> Output {
        Output {
            json,
            checks: Vec::new(),
            redactor,
        }
    }

    fn emit(&mut self, checks: Vec<Check>) {
        if !self.json {
            checks.iter().for_each(|check| check.print(&self.redactor));
        }
        self.checks.extend(checks);
    }

    fn finish(self) -> Outcome {
        let outcome = outcome(&self.checks);
        let code = crate::error::outcome_code(outcome);
        if self.json {
            let checks: Vec<_> = self.checks.iter().map(Check::json).collect();
            let report = json!({
                "ok": code == exit_codes::OK,
                "exit_code": code,
                "exit_code_name": exit_codes::name(code),
                "checks": checks,
            });
            let report = self.redactor.json(report);
            println!(
                "{}",
                crate::report::actions_guard::json(
                    &serde_json::to_string_pretty(&report).expect("JSON values serialize")
                )
            );
        } else {
            println!("{}", summary(&self.checks, code));
        }
        outcome
    }
}

/// What the checks found, as the outcome it would give a run (its exit code is doctor's).
/// Toolchain problems first: without uv or a Python nothing else can be trusted.
fn outcome(checks: &[Check]) -> Outcome {
    let failed = |class| checks.iter().any(|c| c.status == Status::Fail(class));
    if failed(Class::Toolchain) {
        Outcome::ToolchainError
    } else if failed(Class::Environment) {
        Outcome::EnvironmentError
    } else {
        Outcome::Passed
    }
}

fn summary(checks: &[Check], code: u8) -> String {
    let count = |status: fn(&Status) -> bool| checks.iter().filter(|c| status(&c.status)).count();
    let ok = count(|s| *s == Status::Ok);
    let failed = count(|s| matches!(s, Status::Fail(_)));
    let skipped = count(|s| *s == Status::Skip);
    let not_applicable = count(|s| *s == Status::NotApplicable);
    let unavailable = count(|s| *s == Status::Warn);
    let mut parts = vec![format!("{ok} ok")];
    if failed > 0 {
        parts.push(format!("{failed} failed"));
    }
    if unavailable > 0 {
        parts.push(format!("{unavailable} unavailable"));
    }
    if skipped > 0 {
        parts.push(format!("{skipped} skipped"));
    }
    if not_applicable > 0 {
        parts.push(format!("{not_applicable} not applicable"));
    }
    let verdict = if failed == 0 && unavailable == 0 {
        "every check passed".to_string()
    } else if failed == 0 {
        "nothing failed; the suites marked `warn` would be prerequisite-unavailable".to_string()
    } else {
        format!(
            "exit code {code} ({}); fix the problems above and run `cargo xtask doctor` again",
            exit_codes::name(code)
        )
    };
    format!(
        "doctor: {} checks: {}; {verdict}",
        checks.len(),
        parts.join(", ")
    )
}

/// The uv check, and the uv to use when it passed, with its `--version` line.
fn check_uv(cx: &Cx<'_>) -> (Check, Option<(PathBuf, String)>) {
    let layout = cx.layout;
    let fail = |detail: String, fix: String| {
        Check::new("uv", None, Status::Fail(Class::Toolchain), detail).with_fix(fix)
    };
    let install_fix = toolchain::install_by_hand();
    let uv = match toolchain::find_or_install_uv(layout) {
        Ok(uv) => uv,
        Err(err) => {
            let message = err.to_string();
            let mut lines = message.lines();
            let detail = lines.next().unwrap_or_default().to_string();
            let fix = if uv_env_is_set() {
                format!("set {UV_ENV} to the path of a working uv binary, or unset it to use the uv on PATH")
            } else {
                install_fix
            };
            let check = fail(detail, fix);
            let rest: Vec<&str> = lines.collect();
            let check = Check {
                output: Some(rest.join("\n")).filter(|r| !r.is_empty()),
                ..check
            };
            return (check, None);
        }
    };
    let version = Invocation::new(
        vec![uv.to_string_lossy().into_owned(), "--version".into()],
        &layout.root,
        vec![],
    );
    match cx.execute(&version) {
        Ok(ran) if ran.success() => {
            let origin = if uv_env_is_set() {
                format!("from ${UV_ENV}")
            } else if uv.starts_with(layout.tools_dir()) {
                "installed by the xtask".to_string()
            } else {
                "from PATH".to_string()
            };
            // `uv 0.13.8 (x86_64-unknown-linux-gnu)`: the name and the version are enough.
            let name_and_version: Vec<&str> = ran.stdout.split_whitespace().take(2).collect();
            let detail = format!(
                "{} ({}, {origin})",
                uv.display(),
                name_and_version.join(" ")
            );
            let check = Check::new("uv", None, Status::Ok, detail).ran(&version);
            (check, Some((uv, ran.stdout.trim().to_string())))
        }
        Ok(ran) => {
            let check = fail(
                format!("`{} --version` {}", uv.display(), ran.describe()),
                format!(
                    "replace the uv at {} with a working one: {install_fix}",
                    uv.display()
                ),
            );
            (check.ran(&version).with_output(&ran), None)
        }
        Err(err) => {
            let check = fail(format!("{err:#}"), install_fix);
            (check.ran(&version), None)
        }
    }
}

/// `$XTASK_UV` chose the uv (as `toolchain::find_or_install_uv` reads it).
fn uv_env_is_set() -> bool {
    std::env::var_os(UV_ENV).is_some_and(|v| !v.is_empty())
}

/// Checks the suites on a few threads and emits each suite's checks in manifest order.
fn check_suites(cx: &Cx<'_>, uv: &Path, uv_version: &str, suites: &[Suite], out: &mut Output) {
    let mut done: Vec<Option<Vec<Check>>> = vec![None; suites.len()];
    let mut next_to_emit = 0;
    crate::pool::run(
        suites,
        JOBS,
        |index, suite, send| send((index, check_suite(cx, uv, uv_version, suite))),
        |(index, checks)| {
            done[index] = Some(checks);
            while let Some(checks) = done.get_mut(next_to_emit).and_then(Option::take) {
                out.emit(checks);
                next_to_emit += 1;
            }
        },
    );
}

/// Every check of one suite, in the order of `SUITE_CHECKS`; a failure skips the checks
/// that depend on it, so that one problem is reported once.
fn check_suite(cx: &Cx<'_>, uv: &Path, uv_version: &str, suite: &Suite) -> Vec<Check> {
    let layout = cx.layout;
    // The facts and the plan a run makes: the same environment, commands and lock.
    let facts = crate::facts::Facts::gather(&layout.root, &[suite], &[]);
    let plan = plan_suite(suite, layout, uv, &[], &facts);
    // The check that pytest imports, when building the environment ran it.
    let probed = std::cell::RefCell::new(None);
    let project = matches!(suite.environment, Environment::Project { .. });
    // The environment is built, and then checked, under its exclusive lock, held until the
    // last check that uses it: suites that share an environment (and a run using it) take
    // turns, so one suite's build never replaces the packages under another's check.
    let deadline = process::deadline_after(std::time::Instant::now(), CHECK_TIMEOUT);
    let lock = plan.env.lock(Use::Exclusive, deadline);
    // Each check, and why the later ones are not run when it fails.
    let steps: [(&dyn Fn() -> Check, Option<&str>); 5] = [
        (
            &|| check_python(cx, uv, &plan),
            Some("not run: no Python satisfies the suite's requires-python"),
        ),
        (
            &|| check_lock(cx, uv, &plan, facts.lock(&suite.dir)),
            // `uv run --locked` refuses a stale lock; a --no-project run never reads it.
            project.then_some(
                "not run: uv.lock is out of sync and the suite's environment is built --locked",
            ),
        ),
        (
            &|| check_environment(cx, &plan, uv_version, &lock, &probed),
            Some("not run: the environment could not be built"),
        ),
        (
            &|| check_pytest(cx, &plan, probed.take()),
            Some("not run: pytest is not importable"),
        ),
        (&|| check_markers(cx, &plan), None),
    ];
    let mut checks = Vec::new();
    let mut blocked: Option<&str> = None;
    for (name, (check, blocks)) in SUITE_CHECKS.into_iter().zip(steps) {
        let check = match blocked {
            Some(why) => Check::skip(name, suite, why),
            None => check(),
        };
        if check.failed() {
            blocked = blocks;
        }
        checks.push(check);
    }
    checks.extend(check_prerequisites(cx, suite));
    checks
}

/// The suite's prerequisites and `requires-env` variables, checked at once as `smoke`
/// checks them (values never shown); `None` when it names none.
fn check_prerequisites(cx: &Cx<'_>, suite: &Suite) -> Option<Check> {
    let variables: Vec<Prerequisite> = suite
        .requires_env
        .iter()
        .map(|name| Prerequisite {
            name: name.clone(),
            check: crate::manifest::Check::Env(name.clone()),
            timeout: std::time::Duration::ZERO,
        })
        .collect();
    let needed: Vec<&Prerequisite> = cx
        .manifest
        .prerequisites
        .iter()
        .filter(|p| suite.prerequisites.contains(&p.name))
        .chain(&variables)
        .collect();
    if needed.is_empty() {
        return None;
    }
    let health = services::check_all(&needed, &cx.layout.root, cx.redactor);
    let down: Vec<&Health> = health.iter().filter(|h| !h.available).collect();
    let check = if down.is_empty() {
        let names: Vec<String> = health.iter().map(Health::label).collect();
        Check::ok(
            "prerequisites",
            suite,
            format!("{} available", names.join(", ")),
        )
    } else {
        let detail = down
            .iter()
            .map(|h| format!("{}: {}", h.label(), h.error.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("; ");
        Check::new("prerequisites", Some(suite), Status::Warn, format!("unavailable: {detail}"))
            .with_fix(format!(
                "start or set what is unavailable; until then a run reports suite `{}` prerequisite-unavailable, which fails the run only with --require-all",
                suite.name
            ))
    };
    Some(check)
}

/// A uv command for the suite, run at the repository root on the suite's directory.
fn uv_command(uv: &Path, plan: &SuitePlan, args: &[&str]) -> Invocation {
    let mut argv = vec![uv.to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|a| a.to_string()));
    argv.extend(["--directory".to_string(), plan.suite.dir.clone()]);
    Invocation::new(argv, &plan.env.probe.cwd, vec![])
}

/// `uv python find` in the suite's directory: uv applies the project's `requires-python`
/// (and any `.python-version`) there, as `uv run` does.
fn check_python(cx: &Cx<'_>, uv: &Path, plan: &SuitePlan) -> Check {
    let layout = cx.layout;
    let suite = &plan.suite;
    let pyproject = layout.root.join(&suite.dir).join("pyproject.toml");
    let requirement = std::fs::read_to_string(&pyproject)
        .ok()
        .and_then(|text| requires_python(&text));
    let find = uv_command(uv, plan, &["python", "find"]);
    let version = uv_command(uv, plan, &["python", "find", "--show-version"]);
    let found = cx
        .execute(&find)
        .and_then(|path| Ok((path, cx.execute(&version)?)));
    let (path, version) = match found {
        Ok((path, version)) if path.success() && version.success() => (path, version),
        Ok((path, version)) => {
            let failed = if path.success() { version } else { path };
            let (detail, fix) = match &requirement {
                Some(req) => (
                    format!("uv found no Python that satisfies requires-python `{req}`"),
                    format!(
                        "install one (`uv python install '{req}'`, or your system's package manager) \
                         or relax requires-python in {}/pyproject.toml",
                        suite.dir
                    ),
                ),
                None => (
                    "uv found no Python interpreter".to_string(),
                    "install Python 3 (`uv python install`, or your system's package manager)"
                        .to_string(),
                ),
            };
            return Check::fail("python", suite, Class::Toolchain, detail, fix)
                .ran(&find)
                .with_output(&failed);
        }
        Err(err) => return could_not_start("python", suite, err).ran(&find),
    };
    let satisfies = match &requirement {
        Some(req) => format!("satisfies requires-python `{req}`"),
        None => format!("{} declares no requires-python", suite.dir),
    };
    Check::ok(
        "python",
        suite,
        format!(
            "{} (Python {}) {satisfies}",
            path.stdout.trim(),
            version.stdout.trim()
        ),
    )
    .ran(&find)
}

/// `uv lock --check`: the lock matches `pyproject.toml` (`uv run --locked` needs it).
/// `lock` is the one the suite's environment is built from (a uv workspace member's is its
/// workspace root's).
fn check_lock(
    cx: &Cx<'_>,
    uv: &Path,
    plan: &SuitePlan,
    lock: Option<&crate::uv_workspace::ProjectLock>,
) -> Check {
    let layout = cx.layout;
    let suite = &plan.suite;
    let dir = layout.root.join(&suite.dir);
    let project = matches!(suite.environment, Environment::Project { .. });
    let lock_name = lock.map_or_else(|| format!("{}/uv.lock", suite.dir), |l| l.lock.clone());
    let relock = format!(
        "run `uv lock` in {} and commit uv.lock",
        lock.map_or(suite.dir.as_str(), |l| l.lock_dir())
    );
    // A missing file fails a project suite (it is built --locked) and does not apply to a
    // no-project suite.
    let missing = |file: &str, why: &str, fix: String| {
        if project {
            Check::fail(
                "lock",
                suite,
                Class::Environment,
                format!("{} has no {file}, {why}", suite.dir),
                fix,
            )
        } else {
            Check::new(
                "lock",
                Some(suite),
                Status::NotApplicable,
                format!(
                    "{} has no {file}; the suite runs with --no-project",
                    suite.dir
                ),
            )
        }
    };
    if !dir.join("pyproject.toml").is_file() {
        return missing(
            "pyproject.toml",
            "but the suite installs the project (`extras`)",
            format!("add a pyproject.toml to {}, or give the suite `requirements` instead of `extras` in Cargo.toml", suite.dir),
        );
    }
    if lock.is_none() {
        return missing(
            "uv.lock",
            "and the suite's environment is built --locked",
            relock,
        );
    }
    let check = uv_command(uv, plan, &["lock", "--check"]);
    match cx.execute(&check) {
        Ok(ran) if ran.success() => Check::ok(
            "lock",
            suite,
            format!("{lock_name} is in sync with pyproject.toml"),
        )
        .ran(&check),
        Ok(ran) => Check::fail(
            "lock",
            suite,
            Class::Environment,
            format!(
                "{lock_name} is not in sync with pyproject.toml (`uv lock --check` {})",
                ran.describe()
            ),
            relock,
        )
        .ran(&check)
        .with_output(&ran),
        Err(err) => could_not_start("lock", suite, err).ran(&check),
    }
}

/// The run's own build ([`crate::environment::EnvPlan::build_if_stale`]), under the same
/// lock (`lock`, taken by the caller): nothing runs when a run or an earlier doctor built it
/// from the same inputs, and a build is recorded as a run records it, so the next run reuses
/// it. The check that pytest imports, when the build ran it, is left in `probed` for
/// [`check_pytest`]; a command that needs nothing but Python then tells "uv could not build
/// the environment" apart from "pytest is not importable in it".
fn check_environment(
    cx: &Cx<'_>,
    plan: &SuitePlan,
    uv_version: &str,
    lock: &anyhow::Result<Option<crate::environment::Lease>>,
    probed: &std::cell::RefCell<Option<anyhow::Result<Captured>>>,
) -> Check {
    let suite = &plan.suite;
    let env = &plan.env;
    match lock {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Check::fail(
                "environment",
                suite,
                Class::Environment,
                format!(
                    "interrupted (or past {} min) while waiting for the runs using {} to end",
                    CHECK_TIMEOUT.as_secs() / 60,
                    cx.layout.display(&env.path)
                ),
                "let the other `cargo xtask` runs finish, then run `cargo xtask doctor` again",
            )
        }
        Err(err) => return could_not_start("environment", suite, anyhow::anyhow!("{err:#}")),
    }
    let inputs = env.inputs(&cx.layout.root, uv_version);
    let mut failed = None;
    let mut last_build = None;
    let built = env.build_if_stale(&inputs, |step, invocation| {
        let ran = cx.execute(invocation);
        if step == BuildStep::Probe {
            let ok = ran.as_ref().is_ok_and(Captured::success);
            *probed.borrow_mut() = Some(ran);
            return Ok(ok);
        }
        last_build = Some(invocation);
        failed = match ran {
            Ok(ran) if ran.success() => None,
            Ok(ran) => Some(build_failed(suite, invocation, &ran)),
            Err(err) => Some(could_not_start("environment", suite, err).ran(invocation)),
        };
        Ok(failed.is_none())
    });
    if let Some(failed) = failed {
        return failed;
    }
    let built = match built {
        Ok(built) => built,
        Err(err) => {
            return Check::fail(
                "environment",
                suite,
                Class::Environment,
                format!("{err:#}"),
                format!(
                    "make {} writable, then run `cargo xtask doctor` again",
                    cx.layout.display(&cx.layout.envs_dir())
                ),
            )
        }
    };
    let version = Invocation::new(
        vec![
            env.python().to_string_lossy().into_owned(),
            "-I".into(),
            "-c".into(),
            "import sys; print(sys.version.split()[0])".into(),
        ],
        &env.probe.cwd,
        vec![],
    );
    let python = cx
        .execute(&version)
        .map(|v| v.stdout.trim().to_string())
        .unwrap_or_default();
    let path = cx.layout.display(&env.path);
    match (built, last_build) {
        (Built::Current, _) | (_, None) => Check::ok(
            "environment",
            suite,
            format!(
                "{path} (Python {python}) is up to date: built from the same inputs before, uv not run"
            ),
        ),
        (_, Some(build)) => Check::ok(
            "environment",
            suite,
            format!("uv builds it in {path} (Python {python})"),
        )
        .ran(build),
    }
}

/// A build command failed: what to fix, by where the suite's requirements are.
fn build_failed(suite: &Suite, build: &Invocation, ran: &Captured) -> Check {
    let fix = match &suite.environment {
        Environment::Project { .. } => format!(
            "fix the dependencies in {dir}/pyproject.toml (then run `uv lock` in {dir}) \
             or the suite's `extras` in Cargo.toml, as uv's error above says",
            dir = suite.dir
        ),
        Environment::Requirements { file: None, .. } => "fix the suite's `requirements` in Cargo.toml so \
             that uv can resolve and install them, as uv's error above says"
            .to_string(),
        Environment::Requirements { file: Some(file), .. } => format!(
            "fix {file} (or the suite's `requirements` in Cargo.toml) so that uv can resolve and install it, as uv's error above says"
        ),
    };
    Check::fail(
        "environment",
        suite,
        Class::Environment,
        format!(
            "uv could not build the environment (`uv {}` {})",
            build.argv.get(1).map_or("", String::as_str),
            ran.describe()
        ),
        fix,
    )
    .ran(build)
    .with_output(ran)
}

/// The run's own check of the environment: `python -I -c "import pytest"`, as the build ran
/// it (`probed`), else run now.
fn check_pytest(cx: &Cx<'_>, plan: &SuitePlan, probed: Option<anyhow::Result<Captured>>) -> Check {
    let suite = &plan.suite;
    let probe = &plan.env.probe;
    match probed.unwrap_or_else(|| cx.execute(probe)) {
        Ok(ran) if ran.success() => Check::ok("pytest", suite, "`import pytest` works").ran(probe),
        Ok(ran) => {
            let fix = match &suite.environment {
                Environment::Project { extras, .. } if extras.is_empty() => format!(
                    "add pytest to a dependency group (`uv add --group test pytest` in {dir}) \
                     and name it in the suite's `groups` in Cargo.toml, or list it in an extra \
                     under [project.optional-dependencies] in {dir}/pyproject.toml, name that \
                     extra in the suite's `extras`, and run `uv lock` in {dir}",
                    dir = suite.dir
                ),
                Environment::Project { extras, .. } => format!(
                    "add pytest to the extra {} under [project.optional-dependencies] in \
                     {dir}/pyproject.toml and run `uv lock` in {dir}",
                    extras
                        .iter()
                        .map(|e| format!("`{e}`"))
                        .collect::<Vec<_>>()
                        .join(" or "),
                    dir = suite.dir
                ),
                Environment::Requirements { file: None, .. } => {
                    "add pytest to the suite's `requirements` in Cargo.toml".to_string()
                }
                Environment::Requirements {
                    file: Some(file), ..
                } => {
                    format!("add pytest to {file} or to the suite's `requirements` in Cargo.toml")
                }
            };
            Check::fail(
                "pytest",
                suite,
                Class::Environment,
                format!(
                    "the environment builds, but `import pytest` fails ({})",
                    ran.describe()
                ),
                fix,
            )
            .ran(probe)
            .with_output(&ran)
        }
        Err(err) => could_not_start("pytest", suite, err).ran(probe),
    }
}

/// Every marker the suite's `-m` expression names is listed by `pytest --markers`, run like
/// the suite's tests (same environment, directory and paths, so conftest.py files count).
fn check_markers(cx: &Cx<'_>, plan: &SuitePlan) -> Check {
    let layout = cx.layout;
    let suite = &plan.suite;
    let names = suite
        .markers
        .as_deref()
        .map(marker_names)
        .unwrap_or_default();
    if names.is_empty() {
        return Check::ok("markers", suite, "the suite selects on no markers");
    }
    let mut argv = vec![
        plan.test.argv[0].clone(),
        "--rootdir=.".into(),
        "--markers".into(),
    ];
    argv.extend(suite.paths.iter().cloned());
    let list = Invocation {
        argv,
        ..plan.test.clone()
    };
    let ran = match cx.execute(&list) {
        Ok(ran) => ran,
        Err(err) => return could_not_start("markers", suite, err).ran(&list),
    };
    if !ran.success() {
        return Check::fail(
            "markers",
            suite,
            Class::Environment,
            format!("`pytest --markers` {}", ran.describe()),
            format!(
                "run the command above and fix what pytest reports (usually the pytest \
                 configuration in {})",
                suite.dir
            ),
        )
        .ran(&list)
        .with_output(&ran);
    }
    let registered = registered_markers(&ran.stdout);
    let missing: Vec<&String> = names.iter().filter(|n| !registered.contains(n)).collect();
    let quoted = |names: &[&String]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if missing.is_empty() {
        let all: Vec<&String> = names.iter().collect();
        let verb = if all.len() == 1 { "is" } else { "are" };
        return Check::ok(
            "markers",
            suite,
            format!("{} {verb} registered", quoted(&all)),
        )
        .ran(&list);
    }
    let (verb, it) = if missing.len() == 1 {
        ("is", "it")
    } else {
        ("are", "them")
    };
    let config = if layout
        .root
        .join(&suite.dir)
        .join("pyproject.toml")
        .is_file()
    {
        format!(
            "under [tool.pytest.ini_options] markers in {}/pyproject.toml",
            suite.dir
        )
    } else {
        format!(
            "in the pytest configuration of {} (`markers` in pytest.ini)",
            suite.dir
        )
    };
    Check::fail(
        "markers",
        suite,
        Class::Environment,
        format!(
            "{} {verb} not registered (the suite's markers are `{}`)",
            quoted(&missing),
            suite.markers.as_deref().unwrap_or_default()
        ),
        format!("register {it} {config}, or correct the suite's `markers` in Cargo.toml"),
    )
    .ran(&list)
}

/// uv could not even be started: the toolchain is broken, whatever the check was.
fn could_not_start(name: &'static str, suite: &Suite, err: anyhow::Error) -> Check {
    Check::fail(
        name,
        suite,
        Class::Toolchain,
        format!("{err:#}"),
        format!(
            "make sure the uv in the command above can be run, or set {UV_ENV} to a working uv"
        ),
    )
}

/// The last lines of stderr (where uv and Python explain themselves), else of stdout.
fn tail(ran: &Captured) -> String {
    let text = if ran.stderr.trim().is_empty() {
        &ran.stdout
    } else {
        &ran.stderr
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(OUTPUT_LINES)..].join("\n")
}

/// `requires-python` of the `[project]` table, read with the `toml` crate: only shown in
/// messages (uv itself decides which Python satisfies it); `None` when the file is not
/// TOML or has none.
fn requires_python(pyproject: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(pyproject).ok()?;
    let value = table.get("project")?.get("requires-python")?.as_str()?;
    Some(value.trim().to_string())
}

/// The marker names a pytest `-m` expression selects on: its identifiers without `and`,
/// `or`, `not` and parentheses, and without the keyword arguments of `name(key=value)`.
fn marker_names(expression: &str) -> Vec<String> {
    let separator = |c: char| c.is_whitespace() || c == '(' || c == ')';
    let mut names: Vec<String> = Vec::new();
    let mut rest = expression;
    while let Some(start) = rest.find(|c: char| !separator(c)) {
        rest = &rest[start..];
        let end = rest.find(separator).unwrap_or(rest.len());
        let word = &rest[..end];
        rest = &rest[end..];
        if let Some(args) = rest.strip_prefix('(') {
            rest = skip_arguments(args);
        }
        if !matches!(word, "and" | "or" | "not") && !names.iter().any(|n| n == word) {
            names.push(word.to_string());
        }
    }
    names
}

/// What follows the `)` that closes a marker's keyword arguments, quotes respected.
fn skip_arguments(args: &str) -> &str {
    let mut quote = None;
    for (at, c) in args.char_indices() {
        match (quote, c) {
            (None, ')') => return &args[at + 1..],
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    ""
}

/// The names `pytest --markers` lists (`@pytest.mark.integration: ...`,
/// `@pytest.mark.skip(reason=None): ...`), builtin ones included.
fn registered_markers(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| line.trim().strip_prefix("@pytest.mark."))
        .map(|rest| {
            let end = rest.find([':', '(']).unwrap_or(rest.len());
            rest[..end].trim().to_string()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_names_drop_operators_parentheses_and_arguments() {
        assert_eq!(marker_names("not integration"), ["integration"]);
        assert_eq!(
            marker_names("(slow or db) and not integration"),
            ["slow", "db", "integration"]
        );
        assert_eq!(
            marker_names("device(serial='a) b', port=2) and not slow"),
            ["device", "slow"]
        );
        assert_eq!(marker_names("not  not slow or slow"), ["slow"]);
        assert!(marker_names("").is_empty());
        assert!(marker_names(" ( ) ").is_empty());
    }

    #[test]
    fn registered_markers_include_builtin_ones() {
        let output = "@pytest.mark.integration: needs a live service\n\n\
             @pytest.mark.skip(reason=None): skip the given test function\n\
             @pytest.mark.tryfirst: mark a hook implementation function\n\
             not a marker line\n";
        assert_eq!(
            registered_markers(output),
            ["integration", "skip", "tryfirst"]
        );
    }

    #[test]
    fn requires_python_is_read_from_the_project_table_only() {
        let pyproject = "[tool.other]\nrequires-python = \"<3\"\n\n\
             [project]  # the package\nname = \"a\"\nrequires-python = \">=3.11\"  # why\n";
        assert_eq!(requires_python(pyproject).as_deref(), Some(">=3.11"));
        assert_eq!(
            requires_python("[project]\nrequires-python='>=3.9,<4'\n").as_deref(),
            Some(">=3.9,<4")
        );
        assert_eq!(requires_python("[project]\nname = \"a\"\n"), None);
        assert_eq!(requires_python("requires-python = \">=3.11\"\n"), None);
        // What a line scanner misread: an inline table, a dotted key, a literal string.
        assert_eq!(
            requires_python("project = { name = \"a\", requires-python = \">=3.10\" }\n")
                .as_deref(),
            Some(">=3.10")
        );
        assert_eq!(
            requires_python("project.requires-python = '''>=3.12'''\n").as_deref(),
            Some(">=3.12")
        );
        // Not TOML at all: no requirement to name (uv will say what is wrong).
        assert_eq!(
            requires_python("[project\nrequires-python = \">=3\"\n"),
            None
        );
    }

    #[test]
    fn toolchain_failures_outrank_environment_failures() {
        let suite = Manifest::for_tests(&[("a", "g")]).suites.remove(0);
        let ok = Check::ok("python", &suite, "fine");
        let env = Check::fail("lock", &suite, Class::Environment, "stale", "relock");
        let tool = Check::fail("python", &suite, Class::Toolchain, "none", "install");
        let skip = Check::skip("pytest", &suite, "not run");
        assert_eq!(outcome(&[ok.clone(), skip.clone()]), Outcome::Passed);
        assert_eq!(
            outcome(&[ok.clone(), env.clone()]),
            Outcome::EnvironmentError
        );
        assert_eq!(outcome(&[env, tool, ok]), Outcome::ToolchainError);
    }

    #[test]
    fn uv_commands_run_at_the_root_on_the_suites_directory() {
        let suite = Manifest::for_tests(&[("a", "g")]).suites.remove(0);
        let plan = plan_suite(
            &suite,
            &Layout::new("/repo"),
            Path::new("/bin/uv"),
            &[],
            &Default::default(),
        );
        let lock = uv_command(Path::new("/bin/uv"), &plan, &["lock", "--check"]);
        assert_eq!(
            lock.argv,
            [
                "/bin/uv",
                "lock",
                "--check",
                "--directory",
                suite.dir.as_str()
            ]
        );
        assert_eq!(lock.cwd, Path::new("/repo"));
    }
}
