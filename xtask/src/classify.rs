//! What pytest's exit status and report say about a suite: pure, so every rule is tested.

use std::path::{Path, PathBuf};

use crate::model::TestCase;
use crate::outcome::Outcome;
use crate::process::signal_name;

/// Where the repository's own modules are found for one suite: its directory (searched
/// through, as pytest puts test directories on `sys.path`) and its `pythonpath` entries.
#[derive(Clone, Debug, Default)]
pub struct OwnModules {
    pub suite_dir: PathBuf,
    pub pythonpath: Vec<PathBuf>,
}

impl OwnModules {
    /// Whether the top-level module `name` is the repository's own code.
    pub fn contains(&self, name: &str) -> bool {
        let here = |dir: &Path| dir.join(name).is_dir() || dir.join(format!("{name}.py")).is_file();
        self.pythonpath.iter().any(|dir| here(dir)) || find_in_tree(&self.suite_dir, &here, 6)
    }
}

fn find_in_tree(dir: &Path, here: &impl Fn(&Path) -> bool, depth: usize) -> bool {
    if here(dir) {
        return true;
    }
    if depth == 0 {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let skip = name.starts_with('.') || name == "__pycache__" || name == "node_modules";
        !skip
            && entry.file_type().is_ok_and(|t| t.is_dir())
            && find_in_tree(&entry.path(), here, depth - 1)
    })
}

/// The outcome of a suite whose pytest step ended with `code` (uv's exit code: `128 + n`
/// when pytest died of signal `n`), given the report pytest wrote, if any.
pub fn classify(
    suite: &str,
    code: Option<i32>,
    cases: Option<&[TestCase]>,
    own: &OwnModules,
) -> (Outcome, Option<String>) {
    let says = |text: &str| Some(text.to_string());
    let collection_errors: Vec<&TestCase> = cases
        .unwrap_or_default()
        .iter()
        .filter(|case| case.is_collection_error())
        .collect();
    match (code, cases) {
        (Some(0), Some(_)) => (Outcome::Passed, None),
        (Some(1), Some(_)) => (Outcome::Failed, None),
        (Some(2), Some(_)) if !collection_errors.is_empty() => {
            let third_party: Vec<(String, String)> = collection_errors
                .iter()
                .filter_map(|case| missing_module(case))
                .filter(|(module, _)| !own.contains(module.split('.').next().unwrap_or(module)))
                .collect();
            match third_party.first() {
                Some((module, test_module)) => (
                    Outcome::EnvironmentError,
                    Some(format!(
                        "suite `{suite}` lacks the third-party module `{module}` ({test_module} imports it): add the package that provides it to the suite's requirements (its `requirements` in Cargo.toml, or the extra it installs in pyproject.toml); this is not a regression in the repository's code"
                    )),
                ),
                None => (
                    Outcome::CollectionError,
                    says("pytest could not import a test module (a collection error in the repository's own code)"),
                ),
            }
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
        (Some(code @ 129..=192), _) => {
            let signal = code - 128;
            (
                Outcome::Crashed,
                Some(format!("pytest was killed by signal {signal}{}; the tests that ran before are in the log", signal_name(signal))),
            )
        }
        (None, _) => (Outcome::Crashed, says("pytest was killed by a signal")),
        (Some(code), None) => (Outcome::Crashed, Some(format!("pytest exited with {code} and wrote no JUnit report"))),
        (Some(code), Some(_)) => (Outcome::Crashed, Some(format!("pytest exited with unexpected status {code}"))),
    }
}

/// `("yaml", "tests/test_config.py")` from a collection error that says
/// `ModuleNotFoundError: No module named 'yaml'`.
fn missing_module(case: &TestCase) -> Option<(String, String)> {
    let text = case.result().details.as_deref()?;
    let start = text.find("No module named '")? + "No module named '".len();
    let len = text[start..].find('\'')?;
    let module = text[start..start + len].to_string();
    let test_module = case.file.clone().unwrap_or_else(|| case.classname.clone());
    Some((module, test_module))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::{Attempt, CaseStatus};

    fn case(status: CaseStatus) -> TestCase {
        TestCase::new("t", "t", Attempt::new(status))
    }

    fn collection_error(text: &str) -> TestCase {
        let mut case = case(CaseStatus::Error);
        case.result_mut().message = Some("collection failure".into());
        case.result_mut().details = Some(text.into());
        case.file = Some("tests/test_x.py".into());
        case
    }

    fn own() -> OwnModules {
        // This crate's tests/fixtures/basic has the packages `alpha` and `beta` below `libs`.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/basic");
        OwnModules {
            suite_dir: root.join("libs/alpha"),
            pythonpath: vec![root.join("libs")],
        }
    }

    #[test]
    fn pytest_exit_statuses_map_to_outcomes() {
        let passed = [case(CaseStatus::Passed)];
        let c = |code, cases| classify("s", code, cases, &own()).0;
        assert_eq!(c(Some(0), Some(&passed)), Outcome::Passed);
        assert_eq!(c(Some(1), Some(&passed)), Outcome::Failed);
        assert_eq!(c(Some(2), Some(&passed)), Outcome::Interrupted);
        assert_eq!(c(Some(3), None), Outcome::Crashed);
        assert_eq!(c(Some(4), None), Outcome::UsageError);
        assert_eq!(c(Some(5), Some(&[])), Outcome::NoTests);
        assert_eq!(c(None, None), Outcome::Crashed);
        // Exit 0 with no report is not a pass: nothing shows what ran.
        assert_eq!(c(Some(0), None), Outcome::Crashed);
    }

    #[test]
    fn uv_reports_a_signal_as_128_plus_its_number() {
        let (outcome, detail) = classify("s", Some(134), None, &own());
        assert_eq!(outcome, Outcome::Crashed);
        assert!(detail.unwrap().contains("signal 6 (SIGABRT)"));
    }

    #[test]
    fn an_import_error_in_own_code_is_a_collection_error() {
        let cases = [collection_error(
            "E   ImportError: cannot import name 'nope' from 'alpha'",
        )];
        let (outcome, detail) = classify("s", Some(2), Some(&cases), &own());
        assert_eq!(outcome, Outcome::CollectionError);
        assert!(detail.unwrap().contains("could not import a test module"));
        // A missing submodule of the repository's own package is its own code too.
        let cases = [collection_error(
            "E   ModuleNotFoundError: No module named 'alpha.gone'",
        )];
        assert_eq!(
            classify("s", Some(2), Some(&cases), &own()).0,
            Outcome::CollectionError
        );
        // So is a module in the suite's tests directory.
        let cases = [collection_error(
            "E   ModuleNotFoundError: No module named 'tests'",
        )];
        assert_eq!(
            classify("s", Some(2), Some(&cases), &own()).0,
            Outcome::CollectionError
        );
    }

    #[test]
    fn a_missing_third_party_module_is_an_environment_gap_naming_it_and_the_suite() {
        let cases = [collection_error(
            "E   ModuleNotFoundError: No module named 'yaml.loader'",
        )];
        let (outcome, detail) = classify("alpha", Some(2), Some(&cases), &own());
        assert_eq!(outcome, Outcome::EnvironmentError);
        let detail = detail.unwrap();
        assert!(
            detail.contains("suite `alpha` lacks the third-party module `yaml.loader`"),
            "{detail}"
        );
        assert!(detail.contains("tests/test_x.py"), "{detail}");
    }
}
