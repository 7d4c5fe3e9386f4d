//! Turning a suite into the exact commands that run it: a pure function, so the plan can
//! be tested (and shown) without running anything.

use std::path::{Path, PathBuf};

use crate::manifest::{Environment, Suite};
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
    pub log: PathBuf,
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
        Environment::Project { extras } => {
            uv_run.push("--locked".into());
            for extra in extras {
                uv_run.extend(["--extra".into(), extra.clone()]);
            }
        }
        Environment::Requirements(requirements) => {
            uv_run.push("--no-project".into());
            for requirement in requirements {
                uv_run.extend(["--with".into(), requirement.clone()]);
            }
        }
        Environment::RequirementsFile(file) => {
            uv_run.extend([
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
    }
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
