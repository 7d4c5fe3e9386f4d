//! Turning a suite into the exact commands that run it: a pure function, so the plan can
//! be tested (and shown) without running anything.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::manifest::{Environment, Suite};
use crate::outcome::Outcome;
use crate::paths::Layout;

/// One external command, as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The full argv; `argv[0]` is the program.
    pub argv: Vec<String>,
    /// Where it starts (the repository root: paths in `argv` are relative to it).
    pub cwd: PathBuf,
    /// Variables the xtask sets, on top of the inherited environment.
    pub env: Vec<(String, String)>,
    /// Variables the xtask removes from the inherited environment.
    pub env_remove: Vec<String>,
}

/// Variables that would point uv or Python at somebody else's environment.
pub const REMOVED_ENV: &[&str] = &["VIRTUAL_ENV"];

/// Everything needed to run one suite.
#[derive(Clone, Debug)]
pub struct SuitePlan {
    pub suite: Suite,
    /// Builds the environment and checks pytest is importable in it, so a broken
    /// environment is never mistaken for a failing test.
    pub prepare: Invocation,
    pub test: Invocation,
    /// Where pytest writes its own JUnit XML.
    pub raw_junit: PathBuf,
    pub junit: PathBuf,
    /// The suite's log as everyone finds it, once the suite has ended.
    pub log: PathBuf,
    /// The log this invocation writes while the suite runs.
    pub live_log: PathBuf,
    /// The whole suite (environment and pytest) is stopped after this long.
    pub timeout: Duration,
    /// Why the suite cannot run at all; it then ends with this outcome without a step.
    pub blocked: Option<Blocked>,
}

#[derive(Clone, Debug)]
pub struct Blocked {
    pub outcome: Outcome,
    pub detail: String,
}

pub fn plan_suite(suite: &Suite, layout: &Layout, uv: &Path, pytest_args: &[String]) -> SuitePlan {
    let raw_junit = layout.raw_junit(&suite.name);

    let mut uv_run = vec![
        uv.to_string_lossy().into_owned(),
        "run".into(),
        "--directory".into(),
        suite.dir.clone(),
    ];
    match &suite.environment {
        // `--exact`: a package left in the project's `.venv` from an earlier sync (pytest,
        // after the extra stopped listing it) would otherwise hide what the lock lacks.
        Environment::Project { extras } => {
            uv_run.extend(["--locked".into(), "--exact".into()]);
            for extra in extras {
                uv_run.extend(["--extra".into(), extra.clone()]);
            }
        }
        // `--isolated`: without a project uv would layer the environment over the
        // interpreter's own site-packages, so whatever the machine has installed would be
        // importable and a missing requirement would go unnoticed.
        Environment::Requirements(requirements) => {
            uv_run.extend(["--isolated".into(), "--no-project".into()]);
            for requirement in requirements {
                uv_run.extend(["--with".into(), requirement.clone()]);
            }
        }
        Environment::RequirementsFile(file) => {
            uv_run.extend([
                "--isolated".into(),
                "--no-project".into(),
                "--with-requirements".into(),
                file.clone(),
            ]);
        }
    }
    uv_run.push("--".into());

    let mut prepare = uv_run.clone();
    prepare.extend(["python".into(), "-c".into(), "import pytest".into()]);

    // uv runs pytest inside `dir`, so pytest's paths are relative to it.
    let mut test = uv_run;
    test.extend([
        "pytest".into(),
        "--rootdir=.".into(),
        // xunit1 is the only family in which pytest writes `file` and `line`.
        "-o".into(),
        "junit_family=xunit1".into(),
        "-o".into(),
        "junit_logging=all".into(),
        format!("--junitxml={}", raw_junit.display()),
    ]);
    if let Some(markers) = &suite.markers {
        test.extend(["-m".into(), markers.clone()]);
    }
    test.extend(suite.paths.iter().cloned());
    test.extend(pytest_args.iter().cloned());

    let env = suite_env(suite, layout);
    let invocation = |argv| Invocation {
        argv,
        cwd: layout.root.clone(),
        env: env.clone(),
        env_remove: REMOVED_ENV.iter().map(|v| v.to_string()).collect(),
    };
    SuitePlan {
        suite: suite.clone(),
        prepare: invocation(prepare),
        test: invocation(test),
        raw_junit,
        junit: layout.suite_junit(&suite.name),
        log: layout.suite_log(&suite.name),
        live_log: layout.live_log(&suite.name),
        timeout: suite.timeout,
        blocked: missing_prerequisite(suite, |name| std::env::var_os(name)),
    }
}

/// The first of the suite's `requires-env` variables that is unset or empty.
fn missing_prerequisite(
    suite: &Suite,
    lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Option<Blocked> {
    let missing = suite
        .requires_env
        .iter()
        .find(|name| lookup(name).is_none_or(|v| v.is_empty()))?;
    Some(Blocked {
        outcome: Outcome::PrerequisiteUnavailable,
        detail: format!(
            "not run: suite `{}` needs the environment variable {missing} (its `requires-env` in Cargo.toml), which is not set; set it to run the suite",
            suite.name
        ),
    })
}

/// PYTHONPATH replaces any inherited value, so a run does not depend on the caller's shell.
fn suite_env(suite: &Suite, layout: &Layout) -> Vec<(String, String)> {
    let pythonpath: Vec<String> = suite
        .pythonpath
        .iter()
        .map(|entry| layout.root.join(entry).to_string_lossy().into_owned())
        .collect();
    let mut env = vec![("PYTHONPATH".to_string(), pythonpath.join(":"))];
    env.extend(suite.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// The invocation as one line a person can paste into a shell at `cwd`.
pub fn shell_line(invocation: &Invocation) -> String {
    let mut words: Vec<String> = invocation
        .env
        .iter()
        .map(|(k, v)| format!("{k}={}", shell_quote(v)))
        .collect();
    words.extend(invocation.argv.iter().map(|a| shell_quote(a)));
    words.join(" ")
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn suite(environment: Environment) -> Suite {
        Suite {
            name: "guardrail".into(),
            group: "shared".into(),
            dir: "shared/guardrail".into(),
            environment,
            pythonpath: vec!["shared".into(), "version-a".into()],
            markers: Some("not integration".into()),
            paths: vec!["tests".into()],
            env: BTreeMap::from([("MODE".to_string(), "test".to_string())]),
            timeout: crate::manifest::DEFAULT_TIMEOUT,
            requires_env: vec![],
        }
    }

    fn plan(environment: Environment, pytest_args: &[&str]) -> SuitePlan {
        let args: Vec<String> = pytest_args.iter().map(|a| a.to_string()).collect();
        plan_suite(
            &suite(environment),
            &Layout::new("/repo"),
            Path::new("/bin/uv"),
            &args,
        )
    }

    #[test]
    fn project_suite_runs_pytest_in_the_locked_project_with_its_extras() {
        let plan = plan(
            Environment::Project {
                extras: vec!["test".into()],
            },
            &["-k", "buffer", "-x"],
        );
        assert_eq!(
            plan.prepare.argv,
            [
                "/bin/uv",
                "run",
                "--directory",
                "shared/guardrail",
                "--locked",
                "--exact",
                "--extra",
                "test",
                "--",
                "python",
                "-c",
                "import pytest"
            ]
        );
        assert_eq!(
            plan.test.argv,
            [
                "/bin/uv",
                "run",
                "--directory",
                "shared/guardrail",
                "--locked",
                "--exact",
                "--extra",
                "test",
                "--",
                "pytest",
                "--rootdir=.",
                "-o",
                "junit_family=xunit1",
                "-o",
                "junit_logging=all",
                format!("--junitxml={}", plan.raw_junit.display()).as_str(),
                "-m",
                "not integration",
                "tests",
                "-k",
                "buffer",
                "-x",
            ]
        );
        assert_eq!(plan.test.cwd, Path::new("/repo"));
        assert_eq!(
            plan.test.env,
            [
                (
                    "PYTHONPATH".to_string(),
                    "/repo/shared:/repo/version-a".to_string()
                ),
                ("MODE".to_string(), "test".to_string())
            ]
        );
        assert_eq!(plan.prepare.env, plan.test.env);
        assert_eq!(plan.test.env_remove, ["VIRTUAL_ENV"]);
        assert_eq!(
            plan.junit,
            Path::new("/repo/target/xtask/junit/guardrail.xml")
        );
        assert_eq!(plan.log, Path::new("/repo/target/xtask/logs/guardrail.log"));
        let run_dir = Path::new("/repo/target/xtask/runs").join(std::process::id().to_string());
        assert_eq!(plan.raw_junit, run_dir.join("pytest/guardrail.xml"));
        assert_eq!(plan.live_log, run_dir.join("logs/guardrail.log"));
    }

    #[test]
    fn a_suite_missing_a_required_variable_is_blocked() {
        let mut smoke = suite(Environment::Project { extras: vec![] });
        smoke.requires_env = vec!["A_TOKEN".into(), "B_TOKEN".into()];
        let set = |name: &str| (name == "A_TOKEN").then(|| "x".into());
        let blocked = missing_prerequisite(&smoke, set).unwrap();
        assert_eq!(blocked.outcome, Outcome::PrerequisiteUnavailable);
        assert!(blocked.detail.contains("B_TOKEN"), "{}", blocked.detail);
        let all = |_: &str| Some("x".into());
        assert!(missing_prerequisite(&smoke, all).is_none());
        let empty = |_: &str| Some("".into());
        assert!(missing_prerequisite(&smoke, empty).is_some());
    }

    #[test]
    fn no_project_suites_install_only_their_requirements() {
        let plan = plan(
            Environment::Requirements(vec!["pytest==9.2.0".into(), "pydantic>=2".into()]),
            &[],
        );
        assert_eq!(
            plan.prepare.argv[..11],
            [
                "/bin/uv",
                "run",
                "--directory",
                "shared/guardrail",
                "--isolated",
                "--no-project",
                "--with",
                "pytest==9.2.0",
                "--with",
                "pydantic>=2",
                "--"
            ]
        );
        assert_eq!(plan.test.argv.last().unwrap(), "tests");

        let plan = super::tests::plan(
            Environment::RequirementsFile("requirements-test.txt".into()),
            &[],
        );
        assert_eq!(
            plan.test.argv[..9],
            [
                "/bin/uv",
                "run",
                "--directory",
                "shared/guardrail",
                "--isolated",
                "--no-project",
                "--with-requirements",
                "requirements-test.txt",
                "--"
            ]
        );
    }

    #[test]
    fn no_markers_and_no_paths_leave_selection_to_pytest() {
        let mut bare = suite(Environment::Project { extras: vec![] });
        bare.markers = None;
        bare.paths.clear();
        bare.pythonpath.clear();
        let plan = plan_suite(&bare, &Layout::new("/repo"), Path::new("uv"), &[]);
        assert!(!plan.test.argv.contains(&"-m".to_string()));
        assert!(plan.test.argv.last().unwrap().starts_with("--junitxml="));
        assert!(!plan.test.argv.contains(&"--extra".to_string()));
        // An empty PYTHONPATH still replaces whatever the caller's shell had.
        assert_eq!(plan.test.env[0], ("PYTHONPATH".to_string(), String::new()));
    }

    #[test]
    fn shell_line_can_be_pasted() {
        let plan = plan(
            Environment::Project {
                extras: vec!["test".into()],
            },
            &["-k", "it's"],
        );
        let line = shell_line(&plan.test);
        assert!(
            line.starts_with("PYTHONPATH=/repo/shared:/repo/version-a MODE=test /bin/uv run"),
            "{line}"
        );
        assert!(
            line.contains(" -m 'not integration' tests -k 'it'\\''s'"),
            "{line}"
        );
    }
}
