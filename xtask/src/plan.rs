//! Turning a suite into the exact commands that run it: a pure function, so the plan can
//! be tested (and shown) without running anything.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::environment::{plan_env, EnvPlan};
use crate::manifest::Suite;
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
    /// A directory put first on the inherited PATH (an environment's `bin`).
    pub path_prepend: Option<PathBuf>,
}

impl Invocation {
    /// `argv` run at `cwd` with `env` on top of the inherited environment.
    pub fn new(argv: Vec<String>, cwd: &Path, env: Vec<(String, String)>) -> Invocation {
        Invocation {
            argv,
            cwd: cwd.to_path_buf(),
            env,
            env_remove: REMOVED_ENV.iter().map(|v| v.to_string()).collect(),
            path_prepend: None,
        }
    }

    /// The command to spawn, with its environment and directory; output is the caller's.
    pub fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            .current_dir(&self.cwd)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        for name in &self.env_remove {
            command.env_remove(name);
        }
        if let Some(dir) = &self.path_prepend {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let joined = std::env::join_paths(
                std::iter::once(dir.clone()).chain(std::env::split_paths(&path)),
            );
            if let Ok(joined) = joined {
                command.env("PATH", joined);
            }
        }
        command
    }
}

/// Variables that would point uv or Python at somebody else's environment.
pub const REMOVED_ENV: &[&str] = &["VIRTUAL_ENV"];

/// Everything needed to run one suite.
#[derive(Clone, Debug)]
pub struct SuitePlan {
    pub suite: Suite,
    /// The environment it runs in, built (when its inputs changed) as its own step before
    /// pytest, so a broken environment is never mistaken for a failing test.
    pub env: EnvPlan,
    /// pytest, run from the environment directly (no second `uv run`).
    pub test: Invocation,
    /// Where pytest writes its own JUnit XML.
    pub raw_junit: PathBuf,
    /// Where the progress plugin records the test that is running (see
    /// [`crate::progress`]).
    pub progress: PathBuf,
    /// Where the xtask writes the progress plugin, on the pytest step's PYTHONPATH.
    pub progress_plugin: PathBuf,
    pub junit: PathBuf,
    /// The suite's log, written as it runs.
    pub log: PathBuf,
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
    let env = plan_env(suite, layout, uv);

    // The environment's own `pytest` script, as `uv run ... -- pytest` runs it: unlike
    // `python -m pytest` it does not put the suite's directory first on `sys.path`.
    let mut test = vec![
        env.bin().join("pytest").to_string_lossy().into_owned(),
        "--rootdir=.".into(),
        // xunit1 is the only family in which pytest writes `file` and `line`.
        "-o".into(),
        "junit_family=xunit1".into(),
        "-o".into(),
        "junit_logging=all".into(),
        format!("--junitxml={}", raw_junit.display()),
        // Records the running test, so a timeout can name it (crate::progress).
        "-p".into(),
        crate::progress::PLUGIN_MODULE.into(),
    ];
    if let Some(markers) = &suite.markers {
        test.extend(["-m".into(), markers.clone()]);
    }
    test.extend(suite.paths.iter().cloned());
    test.extend(pytest_args.iter().cloned());

    let progress = layout.progress_file(&suite.name);
    let mut vars = suite_env(suite, layout);
    // The plugin's directory comes last: it must not shadow any module of the suite.
    let pythonpath = &mut vars[0].1;
    if !pythonpath.is_empty() {
        pythonpath.push(':');
    }
    pythonpath.push_str(&layout.progress_plugin_dir().to_string_lossy());
    vars.push((
        crate::progress::FILE_ENV.into(),
        progress.to_string_lossy().into_owned(),
    ));
    // What `uv run` sets: the environment is active for anything the tests start.
    vars.push((
        "VIRTUAL_ENV".into(),
        env.path.to_string_lossy().into_owned(),
    ));
    SuitePlan {
        suite: suite.clone(),
        test: Invocation {
            argv: test,
            // pytest's paths are relative to the suite's directory.
            cwd: layout.root.join(&suite.dir),
            env: vars,
            env_remove: vec![],
            path_prepend: Some(env.bin()),
        },
        env,
        raw_junit,
        progress,
        progress_plugin: layout.progress_plugin_dir(),
        junit: layout.suite_junit(&suite.name),
        log: layout.suite_log(&suite.name),
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
    let mut words = vec![
        "cd".to_string(),
        shell_quote(&invocation.cwd.to_string_lossy()),
        "&&".into(),
    ];
    words.extend(invocation.env_remove.iter().map(|k| format!("-u {k}")));
    if !invocation.env_remove.is_empty() {
        words.insert(3, "env".into());
    }
    words.extend(
        invocation
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", shell_quote(v))),
    );
    if let Some(dir) = &invocation.path_prepend {
        words.push(format!(
            "PATH={}:\"$PATH\"",
            shell_quote(&dir.to_string_lossy())
        ));
    }
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
    use crate::manifest::Environment;
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
    fn pytest_runs_from_the_suites_environment_in_its_directory() {
        let layout = Layout::new("/repo");
        let args: Vec<String> = ["-k", "buffer", "-x"].map(String::from).to_vec();
        let plan = plan_suite(
            &suite(Environment::Project {
                extras: vec!["test".into()],
            }),
            &layout,
            Path::new("/bin/uv"),
            &args,
        );
        let pytest = plan.env.bin().join("pytest");
        assert_eq!(
            plan.test.argv,
            [
                pytest.to_str().unwrap(),
                "--rootdir=.",
                "-o",
                "junit_family=xunit1",
                "-o",
                "junit_logging=all",
                format!("--junitxml={}", plan.raw_junit.display()).as_str(),
                "-p",
                "_xtask_progress",
                "-m",
                "not integration",
                "tests",
                "-k",
                "buffer",
                "-x",
            ]
        );
        assert_eq!(plan.test.cwd, Path::new("/repo/shared/guardrail"));
        assert_eq!(
            plan.test.env,
            [
                (
                    "PYTHONPATH".to_string(),
                    format!(
                        "/repo/shared:/repo/version-a:{}",
                        layout.progress_plugin_dir().display()
                    )
                ),
                ("MODE".to_string(), "test".to_string()),
                (
                    "XTASK_PROGRESS_FILE".to_string(),
                    plan.progress.to_string_lossy().into_owned()
                ),
                (
                    "VIRTUAL_ENV".to_string(),
                    plan.env.path.to_string_lossy().into_owned()
                ),
            ]
        );
        assert_eq!(
            plan.test.path_prepend.as_deref(),
            Some(plan.env.bin().as_path())
        );
        assert!(plan.env.path.starts_with("/repo/target/xtask/envs"));
        let run_dir = Path::new("/repo/target/xtask/runs").join(&Layout::new("/repo").run_id);
        assert!(plan.junit.starts_with("/repo/target/xtask/runs"));
        assert!(plan.junit.ends_with("junit/guardrail.xml"));
        assert!(plan.log.ends_with("logs/guardrail.log"));
        assert!(plan.raw_junit.ends_with("work/guardrail.pytest.xml"));
        assert!(plan.progress.ends_with("work/guardrail.progress"));
        assert_ne!(
            plan.log.parent().unwrap().parent().unwrap(),
            run_dir,
            "every Layout has its own run id"
        );
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
    fn no_markers_and_no_paths_leave_selection_to_pytest() {
        let mut bare = suite(Environment::Project { extras: vec![] });
        bare.markers = None;
        bare.paths.clear();
        bare.pythonpath.clear();
        let layout = Layout::new("/repo");
        let plan = plan_suite(&bare, &layout, Path::new("uv"), &[]);
        assert!(!plan.test.argv.contains(&"-m".to_string()));
        assert_eq!(plan.test.argv.last().unwrap(), "_xtask_progress");
        // PYTHONPATH with only the plugin still replaces whatever the caller's shell had.
        assert_eq!(
            plan.test.env[0],
            (
                "PYTHONPATH".to_string(),
                layout.progress_plugin_dir().to_string_lossy().into_owned()
            )
        );
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
            line.starts_with("cd /repo/shared/guardrail && PYTHONPATH=/repo/shared:/repo/version-a:/repo/target/xtask/runs/"),
            "{line}"
        );
        assert!(
            line.contains(
                "/work/xtask_progress MODE=test XTASK_PROGRESS_FILE=/repo/target/xtask/runs/"
            ),
            "{line}"
        );
        assert!(
            line.contains(".progress VIRTUAL_ENV=/repo/target/xtask/envs/"),
            "{line}"
        );
        assert!(
            line.contains("/bin:\"$PATH\" /repo/target/xtask/envs/"),
            "{line}"
        );
        assert!(
            line.contains(" -m 'not integration' tests -k 'it'\\''s'"),
            "{line}"
        );
        let sync = shell_line(&plan.env.build[0]);
        assert!(
            sync.starts_with("cd /repo && env -u VIRTUAL_ENV UV_PROJECT_ENVIRONMENT="),
            "{sync}"
        );
    }
}
