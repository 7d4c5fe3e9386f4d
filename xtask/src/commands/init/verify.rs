//! `init` checks its own guesses before it writes them: each guessed suite's environment is
//! built as a run builds it (`EnvPlan::build_if_stale`, the run's own plan and lock), and
//! pytest collects the suite's tests in it (`--collect-only`, the suite's markers and
//! paths, its PYTHONPATH). A collection that fails on a missing module tries the
//! repository's requirement files, those that name the module first, until one collects.
//! What a run would then find is said per suite: "collected 15 tests", or why not.

use std::path::{Path, PathBuf};

use crate::environment::{BuildStep, Built, Use};
use crate::invocation::Invocation;
use crate::manifest::{Environment, Suite};
use crate::paths::Layout;
use crate::redact::Redactor;
use crate::step::{self, Captured};

/// At most this many other environments are tried for one suite.
const MAX_TRIES: usize = 4;

/// No build or collection may take longer than this.
const STEP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What checking one suite came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// pytest collected this many tests (after the suite's markers) in the environment.
    Collected(usize),
    /// It collects only in another environment: this one (a requirements file that provides
    /// what was missing, or the guess without the project's declared dependencies), with
    /// this many tests, and why.
    Replaced(Environment, usize, String),
    /// It could not be made to collect; why, for the user.
    Unverified(String),
}

/// How one try ended.
enum Tried {
    Collected(usize),
    Missing(String, String),
    /// uv could not build the environment.
    BuildFailed(String),
    Failed(String),
}

/// Checks `suite`; when its environment cannot be built, tries `fallback` (the guess
/// without the project's declared dependencies); when a module is missing, tries
/// `requirement_files` (relative to the root, in this order). `pytest` is the requirement
/// added to a file that does not name pytest.
pub fn verify(
    layout: &Layout,
    (uv, uv_version): (&Path, &str),
    suite: &Suite,
    fallback: Option<&Environment>,
    requirement_files: &[String],
    pytest: &str,
    redactor: &Redactor,
) -> anyhow::Result<Verdict> {
    let mut first = try_suite(layout, uv, uv_version, suite, redactor)?;
    let mut base = suite.clone();
    if let (Tried::BuildFailed(why), Some(fallback)) = (&first, fallback) {
        let candidate = Suite {
            environment: fallback.clone(),
            ..suite.clone()
        };
        let because = format!("{why}; without the dependencies its pyproject.toml declares");
        match try_suite(layout, uv, uv_version, &candidate, redactor)? {
            Tried::Collected(n) => {
                return Ok(Verdict::Replaced(
                    fallback.clone(),
                    n,
                    format!("{because}, its tests collect"),
                ))
            }
            Tried::Missing(module, missing) => {
                first = Tried::Missing(module, format!("{because}, {missing}"));
                base = candidate;
            }
            Tried::BuildFailed(_) | Tried::Failed(_) => {}
        }
    }
    let (mut module, mut why) = match first {
        Tried::Collected(n) => return Ok(Verdict::Collected(n)),
        Tried::Failed(why) | Tried::BuildFailed(why) => return Ok(Verdict::Unverified(why)),
        Tried::Missing(module, why) => (module, why),
    };
    let mut tried: Vec<&String> = Vec::new();
    for _ in 0..MAX_TRIES {
        let Some(file) = next_candidate(layout, requirement_files, &tried, &module) else {
            break;
        };
        tried.push(file);
        let mut requirements = match &base.environment {
            Environment::Requirements { requirements, .. } => requirements.clone(),
            Environment::Project { .. } => vec![],
        };
        if !requirements.iter().any(|r| super::is_pytest(r)) {
            requirements.insert(0, pytest.to_string());
        }
        let environment = Environment::Requirements {
            requirements,
            file: Some(file.clone()),
        };
        let candidate = Suite {
            environment: environment.clone(),
            ..base.clone()
        };
        match try_suite(layout, uv, uv_version, &candidate, redactor)? {
            Tried::Collected(n) => {
                let before: Vec<&str> = tried[..tried.len() - 1]
                    .iter()
                    .map(|f| f.as_str())
                    .collect();
                let also = if before.is_empty() {
                    String::new()
                } else {
                    format!(" and with {}", before.join(", "))
                };
                return Ok(Verdict::Replaced(
                    environment,
                    n,
                    format!(
                        "collection failed in the guessed environment{also} and succeeds with this file"
                    ),
                ));
            }
            Tried::Missing(next, next_why) => (module, why) = (next, next_why),
            Tried::BuildFailed(_) | Tried::Failed(_) => {}
        }
    }
    let tried: Vec<&str> = tried.iter().map(|f| f.as_str()).collect();
    Ok(Verdict::Unverified(if tried.is_empty() {
        format!("{why}; no requirements file in the repository to try")
    } else {
        format!("{why}; tried {} too", tried.join(", "))
    }))
}

/// The next requirements file to try: one that names `module` first (as a distribution,
/// `-` and `_` alike), then the others, in path order.
fn next_candidate<'a>(
    layout: &Layout,
    files: &'a [String],
    tried: &[&String],
    module: &str,
) -> Option<&'a String> {
    let normal = |text: &str| text.to_ascii_lowercase().replace('-', "_");
    let module = normal(module);
    let names = |file: &String| {
        std::fs::read_to_string(layout.root.join(file))
            .map(|text| {
                text.lines().any(|line| {
                    let line = line.split('#').next().unwrap_or("").trim();
                    let name: String = line
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                        .collect();
                    !name.is_empty() && normal(&name) == module
                })
            })
            .unwrap_or(false)
    };
    let untried = || files.iter().filter(|f| !tried.contains(f));
    untried().find(|f| names(f)).or_else(|| untried().next())
}

/// Builds the suite's environment as a run would and lets pytest collect its tests.
fn try_suite(
    layout: &Layout,
    uv: &Path,
    uv_version: &str,
    suite: &Suite,
    redactor: &Redactor,
) -> anyhow::Result<Tried> {
    let facts = crate::facts::Facts::gather(&layout.root, &[suite], &[]);
    let plan = crate::plan::plan_suite(suite, layout, uv, &[], &facts);
    let deadline = crate::process::deadline_after(std::time::Instant::now(), STEP_TIMEOUT);
    let Some(_lease) = plan.env.lock(Use::Exclusive, deadline)? else {
        return Ok(Tried::Failed(
            "interrupted while waiting for another `cargo xtask` using its environment".into(),
        ));
    };
    let inputs = plan.env.inputs(&layout.root, uv_version);
    let mut failed: Option<(BuildStep, Captured)> = None;
    let built = plan.env.build_if_stale(&inputs, |step, invocation| {
        let ran = step::capture(invocation, deadline, redactor)?;
        let ok = ran.success();
        if !ok {
            failed = Some((step, ran));
        }
        Ok(ok)
    })?;
    if built == Built::Failed {
        return Ok(match failed {
            Some((BuildStep::Probe, _)) => Tried::Missing(
                "pytest".into(),
                "pytest is not importable in its environment".into(),
            ),
            Some((BuildStep::Build, ran)) => Tried::BuildFailed(format!(
                "uv could not build its environment ({}): {}",
                ran.describe(),
                last_line(&ran.stderr)
            )),
            None => Tried::Failed("its environment could not be built".into()),
        });
    }
    let mut argv = vec![
        plan.env.bin().join("pytest").to_string_lossy().into_owned(),
        "--collect-only".into(),
        "-q".into(),
        "-p".into(),
        "no:cacheprovider".into(),
    ];
    if let Some(markers) = &suite.markers {
        argv.extend(["-m".into(), markers.clone()]);
    }
    argv.extend(suite.paths.iter().cloned());
    let collect = Invocation {
        argv,
        ..plan.test.clone()
    };
    let ran = step::capture(&collect, deadline, redactor)?;
    Ok(read_collection(&ran))
}

/// What `pytest --collect-only -q` said: how many tests, or the module it missed.
fn read_collection(ran: &Captured) -> Tried {
    let text = format!("{}\n{}", ran.stdout, ran.stderr);
    if let Some(module) = missing_module(&text) {
        return Tried::Missing(
            module.clone(),
            format!("collecting its tests fails: No module named '{module}'"),
        );
    }
    let none =
        || Tried::Failed("pytest collected no test (its paths and markers select none)".into());
    match ran.code {
        Some(0) => match collected(&ran.stdout) {
            Some(n) if n > 0 => Tried::Collected(n),
            _ => none(),
        },
        // pytest's "no tests collected": nothing verified, never a pass.
        Some(5) => none(),
        _ => Tried::Failed(format!(
            "collecting its tests {}: {}",
            ran.describe(),
            last_line(&ran.stdout)
        )),
    }
}

/// `No module named 'x.y'` → `x`, the distribution to look for.
fn missing_module(text: &str) -> Option<String> {
    let at = text.find("No module named '")? + "No module named '".len();
    let name: String = text[at..].chars().take_while(|c| *c != '\'').collect();
    let top = name.split('.').next()?.to_string();
    (!top.is_empty()).then_some(top)
}

/// The count in pytest's summary line: `15 tests collected in 0.02s`, `2/5 tests collected
/// (3 deselected) in 0.01s`, `1 test collected`.
fn collected(stdout: &str) -> Option<usize> {
    let line = stdout.lines().rev().find(|l| l.contains(" collected"))?;
    let first = line.split_whitespace().next()?;
    first.split('/').next()?.parse().ok()
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('='))
        .unwrap_or("no output")
        .to_string()
}

/// Every `*requirements*.txt` below the root, and every `.txt` in a directory named like
/// one (`requirements/test.txt`), relative to the root and `/`-separated, skipping what
/// init's package search skips (`target`, `.git`, environments, hidden directories).
pub fn requirement_files(root: &Path) -> Vec<String> {
    fn in_requirements_dir(dir: &Path) -> bool {
        dir.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("requirements") || n == "reqs")
    }
    fn walk(root: &Path, dir: &Path, depth: usize, found: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let path: PathBuf = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if depth < 6 && !super::skipped(&name, dir == root) && !super::is_venv(&path) {
                    walk(root, &path, depth + 1, found);
                }
            } else if name.ends_with(".txt")
                && (name.contains("requirements") || in_requirements_dir(dir))
            {
                found.push(super::relative(root, &path));
            }
        }
    }
    let mut found = Vec::new();
    walk(root, root, 0, &mut found);
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytest_summaries_and_missing_modules_are_read() {
        assert_eq!(collected("a\n15 tests collected in 0.02s\n"), Some(15));
        assert_eq!(
            collected("2/5 tests collected (3 deselected) in 0.01s"),
            Some(2)
        );
        assert_eq!(collected("1 test collected in 0.01s"), Some(1));
        assert_eq!(collected("nothing"), None);
        assert_eq!(
            missing_module("E   ModuleNotFoundError: No module named 'yaml.loader'\n"),
            Some("yaml".into())
        );
        assert_eq!(missing_module("all fine"), None);
    }

    /// A collection that finds no test verifies nothing: never "verified".
    #[test]
    fn no_test_collected_is_not_a_verified_guess() {
        let ran = |code: i32, stdout: &str| Captured {
            code: Some(code),
            signal: None,
            stdout: stdout.into(),
            stderr: String::new(),
            stop: None,
        };
        assert!(matches!(
            read_collection(&ran(5, "no tests collected in 0.01s")),
            Tried::Failed(_)
        ));
        assert!(matches!(
            read_collection(&ran(0, "0/3 tests collected (3 deselected)")),
            Tried::Failed(_)
        ));
        assert!(matches!(
            read_collection(&ran(0, "3 tests collected in 0.01s")),
            Tried::Collected(3)
        ));
        assert!(matches!(
            read_collection(&ran(2, "E   ModuleNotFoundError: No module named 'six'")),
            Tried::Missing(module, _) if module == "six"
        ));
    }
}
