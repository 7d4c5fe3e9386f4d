//! What pytest's report, its exit status and its output say about a suite, trusted in that
//! order: pure, so every rule is tested. The one fact it needs from disk, which modules
//! that failed to import are the repository's own, is found first by the caller for the
//! names [`modules_to_find`] gives ([`crate::facts::OwnModules`]).

use std::path::Path;

use crate::facts::OwnModules;
use crate::model::{CaseStatus, TestCase};
use crate::outcome::Outcome;
use crate::process::signal_name;

/// What the classifier knows about the suite besides how pytest ended.
#[derive(Clone, Copy, Debug)]
pub struct SuiteFacts<'a> {
    pub name: &'a str,
    /// The repository's root: paths in details are relative to it, as the report's are.
    pub root: &'a Path,
    /// Which of the names [`modules_to_find`] gave are the repository's own code.
    pub own: &'a OwnModules,
    /// The manifest's `markers` (`-m`), if any.
    pub markers: Option<&'a str>,
    /// The arguments given after `--`.
    pub pytest_args: &'a [String],
}

/// pytest's JUnit report, as the executor found it.
#[derive(Clone, Copy, Debug)]
pub enum Report<'a> {
    /// pytest wrote none.
    Missing,
    /// pytest wrote one that cannot be read (cut off, or not XML): why.
    Unreadable(&'a str),
    Read(&'a [TestCase]),
}

/// How pytest's step ended: its exit status (`128 + n` when it died of signal `n`), its
/// report and the end of what it printed (masked).
#[derive(Clone, Copy, Debug)]
pub struct PytestEnd<'a> {
    pub code: Option<i32>,
    pub report: Report<'a>,
    pub output: &'a str,
}

/// The outcome of a suite's pytest step, and one line on why. The report is trusted
/// first (a failure it holds is a failure whatever the exit status), then the exit
/// status, then pytest's output (what it printed when it wrote no report).
pub fn classify(suite: &SuiteFacts<'_>, ended: &PytestEnd<'_>) -> (Outcome, Option<String>) {
    let says = |text: &str| Some(text.to_string());
    let code = ended.code;
    if let (Report::Read(cases), Some(0..=2)) = (ended.report, code) {
        if let Some(ended) = from_report(suite, code, cases) {
            return ended;
        }
    }
    match (code, ended.report) {
        (Some(0), Report::Read(_)) => (Outcome::Passed, None),
        (Some(1), Report::Read(_)) => (
            Outcome::Failed,
            says("pytest exited 1 (tests failed), but its report holds no failure; the log has what it printed"),
        ),
        (Some(2), _) => (Outcome::Interrupted, says("pytest reported that the run was interrupted (its exit 2)")),
        (Some(3), _) => (Outcome::Crashed, says("pytest hit an internal error (its exit 3)")),
        (Some(4), _) => exit_4(suite, ended.output),
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
        (Some(0), Report::Missing) => (
            Outcome::Crashed,
            says("pytest exited 0 but wrote no JUnit report, so nothing shows what ran (a hook or test that ended the process early, e.g. `os._exit(0)`); this is not a pass: the log has what it printed"),
        ),
        (Some(code), Report::Missing) => (Outcome::Crashed, Some(format!("pytest exited with {code} and wrote no JUnit report"))),
        (Some(code), Report::Unreadable(why)) => (
            Outcome::Crashed,
            Some(format!("pytest exited with {code}, but its JUnit report is cut off or unreadable ({why}), so nothing shows what ran; this is not a pass: the log has what it printed")),
        ),
        (Some(code), Report::Read(_)) => (Outcome::Crashed, Some(format!("pytest exited with unexpected status {code}"))),
    }
}

/// The outcome the report's own cases show, when they show one: collection errors, then
/// failed or errored tests. pytest's exit 0, 1 or 2 does not change what the report holds.
fn from_report(
    suite: &SuiteFacts<'_>,
    code: Option<i32>,
    cases: &[TestCase],
) -> Option<(Outcome, Option<String>)> {
    let real = || cases.iter().filter(|case| !case.synthetic);
    let texts = collection_failures(cases);
    if !texts.is_empty() {
        return Some(import_failures(suite, &texts, "a test module"));
    }
    let failed = real().filter(|c| c.status() == CaseStatus::Failed).count();
    let errors = real().filter(|c| c.status() == CaseStatus::Error).count();
    if failed + errors == 0 {
        return None;
    }
    let held = format!("{failed} failed and {errors} errors");
    let detail = match code {
        Some(0) => Some(format!(
            "pytest exited 0, but its report holds {held}: something ended pytest early with a success status (`pytest.exit(returncode=0)` in a test, `os._exit(0)` in a hook); the report is trusted, not the status"
        )),
        Some(2) => Some(format!(
            "pytest reported that the run was interrupted (its exit 2) after {held}; the tests after the interruption did not run"
        )),
        _ => None,
    };
    Some((Outcome::Failed, detail))
}

/// The top-level modules pytest could not import, by the report's collection errors and a
/// conftest's import error in its output: the names whose owner ([`OwnModules`]) the caller
/// finds before [`classify`] decides whose fault a failure is.
pub fn modules_to_find(ended: &PytestEnd<'_>) -> Vec<String> {
    let mut texts = match ended.report {
        Report::Read(cases) => collection_failures(cases),
        _ => Vec::new(),
    };
    texts.extend(conftest_failure(ended.output, Path::new("")));
    let mut names: Vec<String> = texts
        .iter()
        .filter_map(|(_, text)| text.as_deref().and_then(missing_module))
        .map(|module| top_level(&module).to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The first component of a dotted module name.
fn top_level(module: &str) -> &str {
    module.split('.').next().unwrap_or(module)
}

/// The report's collection errors, each `(its test module, pytest's text)`.
fn collection_failures(cases: &[TestCase]) -> Vec<(String, Option<String>)> {
    cases
        .iter()
        .filter(|case| !case.synthetic && case.is_collection_error())
        .map(|case| {
            let test_module = case.file.clone().unwrap_or_else(|| case.classname.clone());
            (test_module, case.result().details.clone())
        })
        .collect()
}

/// A conftest that failed to import, as pytest's output says: `(its path, relative to
/// `root` when below it, pytest's text)`.
fn conftest_failure(output: &str, root: &Path) -> Option<(String, Option<String>)> {
    const CONFTEST: &str = "ImportError while loading conftest '";
    let at = output.rfind(CONFTEST)?;
    let rest = &output[at + CONFTEST.len()..];
    let path = rest.split("'.").next().unwrap_or(rest).trim();
    let path = Path::new(path)
        .strip_prefix(root)
        .map_or_else(|_| path.to_string(), |p| p.display().to_string());
    Some((path, Some(rest.to_string())))
}

/// The outcome of modules that failed to import, each `(its file, pytest's text)`:
/// a collection error when any failure is in the repository's own code (a regression is
/// never hidden behind a missing package), else an environment error naming the
/// third-party modules the suite lacks.
fn import_failures(
    suite: &SuiteFacts<'_>,
    failures: &[(String, Option<String>)],
    what: &str,
) -> (Outcome, Option<String>) {
    let mut third_party = Vec::new();
    let mut own_code = Vec::new();
    for (file, text) in failures {
        match text.as_deref().and_then(missing_module) {
            Some(module) if !suite.own.contains(top_level(&module)) => {
                third_party.push(format!("`{module}` ({file} imports it)"))
            }
            _ => {
                let why = text.as_deref().and_then(last_error_line);
                own_code.push(match why {
                    Some(why) => format!("{file} ({why})"),
                    None => file.clone(),
                });
            }
        }
    }
    let suite_name = suite.name;
    let lacks = |modules: &[String]| {
        format!(
            "suite `{suite_name}` lacks the third-party module{} {}",
            if modules.len() == 1 { "" } else { "s" },
            modules.join(", ")
        )
    };
    if own_code.is_empty() {
        return (
            Outcome::EnvironmentError,
            Some(format!(
                "{}: add the package that provides it to the suite's requirements (its `requirements` in Cargo.toml, or the extra it installs in pyproject.toml); this is not a regression in the repository's code",
                lacks(&third_party)
            )),
        );
    }
    let mut detail = format!(
        "pytest could not import {what} because of the repository's own code (a collection error): {}",
        own_code.join("; ")
    );
    if !third_party.is_empty() {
        detail.push_str(&format!(
            "; besides, {} (add it to the suite's requirements)",
            lacks(&third_party)
        ));
    }
    (Outcome::CollectionError, Some(detail))
}

/// pytest's exit 4: a conftest that failed to import (pytest then writes no report), or a
/// command line it rejected, blamed on where the bad part came from.
fn exit_4(suite: &SuiteFacts<'_>, output: &str) -> (Outcome, Option<String>) {
    if let Some(failure) = conftest_failure(output, suite.root) {
        return import_failures(suite, &[failure], "its conftest.py");
    }
    let error = output
        .lines()
        .rev()
        .find(|line| line.starts_with("ERROR: "))
        .map(str::trim);
    let said = error.map_or_else(String::new, |e| format!(" (pytest said: {e})"));
    if output.contains("ERROR: Wrong expression passed to '-m'") {
        let blame = if passes_markers(suite.pytest_args) {
            "the `-m` given after `--`".to_string()
        } else if suite.markers.is_some() {
            format!(
                "`markers` of suite `{}` in Cargo.toml: fix the expression in the manifest",
                suite.name
            )
        } else {
            "the `-m` in pytest's command line".to_string()
        };
        return (
            Outcome::UsageError,
            Some(format!(
                "pytest rejected the marker expression (its exit 4){said}; the bad expression is {blame}"
            )),
        );
    }
    (
        Outcome::UsageError,
        Some(format!(
            "pytest rejected its command line (its exit 4){said}: check the arguments given after `--`"
        )),
    )
}

/// Whether the arguments after `--` give pytest a marker expression (`-m EXPR`, `-mEXPR`).
fn passes_markers(args: &[String]) -> bool {
    args.iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "-m" || (a.starts_with("-m") && !a.starts_with("--")))
}

/// `yaml.loader` from a text that says `ModuleNotFoundError: No module named 'yaml.loader'`.
fn missing_module(text: &str) -> Option<String> {
    let start = text.find("No module named '")? + "No module named '".len();
    let len = text[start..].find('\'')?;
    Some(text[start..start + len].to_string())
}

/// pytest's last `E   ` line of a traceback: the exception it ended with.
fn last_error_line(text: &str) -> Option<&str> {
    text.lines()
        .rev()
        .find_map(|line| line.strip_prefix("E "))
        .map(str::trim)
        .filter(|line| !line.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::Attempt;

    fn case(status: CaseStatus) -> TestCase {
        TestCase::new("t", "t", Attempt::new(status))
    }

    fn collection_error(file: &str, text: &str) -> TestCase {
        let mut case = case(CaseStatus::Error);
        case.result_mut().message = Some("collection failure".into());
        case.result_mut().details = Some(text.into());
        case.file = Some(file.into());
        case
    }

    /// The repository's root in these tests: nothing is read from it.
    const ROOT: &str = "/src/repo";

    /// The repository's own top-level modules, as if found on disk (`libs/alpha`,
    /// `libs/beta`, the suite's `tests`), made by hand.
    const OWN: [&str; 3] = ["alpha", "beta", "tests"];

    /// Classifies with the suite `s` (markers `not slow`) and no arguments after `--`.
    fn with(code: Option<i32>, report: Report<'_>, output: &str) -> (Outcome, Option<String>) {
        with_args(code, report, output, &[])
    }

    fn with_args(
        code: Option<i32>,
        report: Report<'_>,
        output: &str,
        args: &[&str],
    ) -> (Outcome, Option<String>) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let ended = PytestEnd {
            code,
            report,
            output,
        };
        // As the executor does: only the names `modules_to_find` gives are looked up, so a
        // name it missed would be taken for a third-party module and fail the tests below.
        let asked = modules_to_find(&ended);
        let own: OwnModules = asked
            .iter()
            .map(String::as_str)
            .filter(|name| OWN.contains(name))
            .collect();
        let suite = SuiteFacts {
            name: "s",
            root: Path::new(ROOT),
            own: &own,
            markers: Some("not slow"),
            pytest_args: &args,
        };
        classify(&suite, &ended)
    }

    fn outcome_of(code: Option<i32>, report: Report<'_>) -> Outcome {
        with(code, report, "").0
    }

    #[test]
    fn pytest_exit_statuses_map_to_outcomes() {
        let passed = [case(CaseStatus::Passed)];
        let read = Report::Read(&passed);
        assert_eq!(outcome_of(Some(0), read), Outcome::Passed);
        assert_eq!(outcome_of(Some(1), read), Outcome::Failed);
        assert_eq!(outcome_of(Some(2), read), Outcome::Interrupted);
        assert_eq!(outcome_of(Some(3), Report::Missing), Outcome::Crashed);
        assert_eq!(outcome_of(Some(4), Report::Missing), Outcome::UsageError);
        assert_eq!(outcome_of(Some(5), Report::Read(&[])), Outcome::NoTests);
        assert_eq!(outcome_of(None, Report::Missing), Outcome::Crashed);
    }

    #[test]
    fn exit_0_without_a_whole_report_is_not_a_pass() {
        let (outcome, detail) = with(Some(0), Report::Missing, "");
        assert_eq!(outcome, Outcome::Crashed);
        assert!(detail
            .unwrap()
            .contains("exited 0 but wrote no JUnit report"));
        let (outcome, detail) = with(Some(0), Report::Unreadable("unexpected end of file"), "");
        assert_eq!(outcome, Outcome::Crashed);
        let detail = detail.unwrap();
        assert!(
            detail.contains("cut off or unreadable (unexpected end of file)"),
            "{detail}"
        );
        assert!(detail.contains("not a pass"), "{detail}");
    }

    #[test]
    fn failures_in_the_report_outrank_a_success_status() {
        let cases = [case(CaseStatus::Passed), case(CaseStatus::Failed)];
        let (outcome, detail) = with(Some(0), Report::Read(&cases), "");
        assert_eq!(outcome, Outcome::Failed);
        let detail = detail.unwrap();
        assert!(
            detail.contains("exited 0, but its report holds 1 failed and 0 errors"),
            "{detail}"
        );
        // An error (a fixture's) is as much a failure.
        let cases = [case(CaseStatus::Error)];
        assert_eq!(outcome_of(Some(0), Report::Read(&cases)), Outcome::Failed);
        // An interruption after failures: they still failed.
        let cases = [case(CaseStatus::Failed)];
        let (outcome, detail) = with(Some(2), Report::Read(&cases), "");
        assert_eq!(outcome, Outcome::Failed);
        assert!(detail
            .unwrap()
            .contains("interrupted (its exit 2) after 1 failed"));
        // A plain exit 1 needs no detail.
        assert_eq!(
            with(Some(1), Report::Read(&cases), ""),
            (Outcome::Failed, None)
        );
        // A collection error in an exit-0 report is still a collection error.
        let cases = [collection_error(
            "tests/test_x.py",
            "E   ImportError: cannot import name 'nope' from 'alpha'",
        )];
        assert_eq!(
            outcome_of(Some(0), Report::Read(&cases)),
            Outcome::CollectionError
        );
        // The xtask's own stand-in cases are not pytest's facts.
        let mut made_up = case(CaseStatus::Error);
        made_up.synthetic = true;
        assert_eq!(
            outcome_of(Some(0), Report::Read(&[made_up])),
            Outcome::Passed
        );
    }

    #[test]
    fn uv_reports_a_signal_as_128_plus_its_number() {
        let (outcome, detail) = with(Some(134), Report::Missing, "");
        assert_eq!(outcome, Outcome::Crashed);
        assert!(detail.unwrap().contains("signal 6 (SIGABRT)"));
    }

    #[test]
    fn an_import_error_in_own_code_is_a_collection_error() {
        let cases = [collection_error(
            "tests/test_x.py",
            "E   ImportError: cannot import name 'nope' from 'alpha'",
        )];
        let (outcome, detail) = with(Some(2), Report::Read(&cases), "");
        assert_eq!(outcome, Outcome::CollectionError);
        let detail = detail.unwrap();
        assert!(
            detail.contains("could not import a test module"),
            "{detail}"
        );
        assert!(
            detail
                .contains("tests/test_x.py (ImportError: cannot import name 'nope' from 'alpha')"),
            "{detail}"
        );
        // A missing submodule of the repository's own package is its own code too.
        let cases = [collection_error(
            "t.py",
            "E   ModuleNotFoundError: No module named 'alpha.gone'",
        )];
        assert_eq!(
            outcome_of(Some(2), Report::Read(&cases)),
            Outcome::CollectionError
        );
        // So is a module in the suite's tests directory.
        let cases = [collection_error(
            "t.py",
            "E   ModuleNotFoundError: No module named 'tests'",
        )];
        assert_eq!(
            outcome_of(Some(2), Report::Read(&cases)),
            Outcome::CollectionError
        );
    }

    #[test]
    fn a_missing_third_party_module_is_an_environment_gap_naming_it_and_the_suite() {
        let cases = [collection_error(
            "tests/test_x.py",
            "E   ModuleNotFoundError: No module named 'yaml.loader'",
        )];
        let (outcome, detail) = with(Some(2), Report::Read(&cases), "");
        assert_eq!(outcome, Outcome::EnvironmentError);
        let detail = detail.unwrap();
        assert!(
            detail.contains(
                "suite `s` lacks the third-party module `yaml.loader` (tests/test_x.py imports it)"
            ),
            "{detail}"
        );
        assert!(detail.contains("not a regression"), "{detail}");
    }

    #[test]
    fn own_code_failing_to_import_outranks_a_missing_package_and_both_are_named() {
        let cases = [
            collection_error(
                "tests/test_a.py",
                "E   ModuleNotFoundError: No module named 'yaml'",
            ),
            collection_error(
                "tests/test_b.py",
                "E   ImportError: cannot import name 'gone' from 'alpha'",
            ),
        ];
        let (outcome, detail) = with(Some(2), Report::Read(&cases), "");
        assert_eq!(outcome, Outcome::CollectionError);
        let detail = detail.unwrap();
        assert!(
            detail.contains("tests/test_b.py (ImportError: cannot import name 'gone'"),
            "{detail}"
        );
        assert!(
            detail.contains("lacks the third-party module `yaml` (tests/test_a.py imports it)"),
            "{detail}"
        );
        assert!(!detail.contains("not a regression"), "{detail}");
    }

    #[test]
    fn the_modules_to_find_are_those_that_failed_to_import() {
        let cases = [
            collection_error(
                "tests/test_a.py",
                "E   ModuleNotFoundError: No module named 'yaml.loader'",
            ),
            collection_error(
                "tests/test_b.py",
                "E   ModuleNotFoundError: No module named 'alpha'",
            ),
            collection_error(
                "tests/test_c.py",
                "E   ImportError: cannot import name 'x' from 'beta'",
            ),
            collection_error(
                "tests/test_d.py",
                "E   ModuleNotFoundError: No module named 'yaml'",
            ),
        ];
        let ended = PytestEnd {
            code: Some(2),
            report: Report::Read(&cases),
            output: "",
        };
        assert_eq!(modules_to_find(&ended), ["alpha", "yaml"]);
        let conftest = PytestEnd {
            code: Some(4),
            report: Report::Missing,
            output: CONFTEST_MISSING,
        };
        assert_eq!(modules_to_find(&conftest), ["yaml"]);
        let passed = PytestEnd {
            code: Some(0),
            report: Report::Read(&[]),
            output: "",
        };
        assert!(modules_to_find(&passed).is_empty(), "nothing to look up");
    }

    const CONFTEST_MISSING: &str = "ImportError while loading conftest '/repo/suite/tests/conftest.py'.\ntests/conftest.py:1: in <module>\n    import yaml\nE   ModuleNotFoundError: No module named 'yaml'\n";

    #[test]
    fn a_conftest_lacking_a_third_party_module_is_an_environment_error() {
        let (outcome, detail) = with(Some(4), Report::Missing, CONFTEST_MISSING);
        assert_eq!(outcome, Outcome::EnvironmentError);
        let detail = detail.unwrap();
        assert!(
            detail.contains("`yaml` (/repo/suite/tests/conftest.py imports it)"),
            "{detail}"
        );
        assert!(!detail.contains("after `--`"), "{detail}");
    }

    #[test]
    fn a_conftest_failing_on_own_code_is_a_collection_error() {
        let output = format!(
            "ImportError while loading conftest '{}/tests/conftest.py'.\ntests/conftest.py:1: in <module>\n    from alpha import nope\nE   ImportError: cannot import name 'nope' from 'alpha'\n",
            Path::new(ROOT).join("libs/alpha").display()
        );
        let (outcome, detail) = with(Some(4), Report::Missing, &output);
        assert_eq!(outcome, Outcome::CollectionError);
        let detail = detail.unwrap();
        assert!(
            detail.contains("could not import its conftest.py"),
            "{detail}"
        );
        // The path is shown relative to the repository's root.
        assert!(
            detail
                .contains(": libs/alpha/tests/conftest.py (ImportError: cannot import name 'nope'"),
            "{detail}"
        );
        // A conftest raising anything else is the code's too.
        let output =
            "ImportError while loading conftest '/x/conftest.py'.\nE   RuntimeError: boom\n";
        assert_eq!(
            with(Some(4), Report::Missing, output).0,
            Outcome::CollectionError
        );
    }

    const BAD_MARKERS: &str = "ERROR: Wrong expression passed to '-m': not (: at column 6: expected not OR left parenthesis OR identifier; got end of input\n";

    #[test]
    fn a_bad_marker_expression_is_blamed_on_where_it_came_from() {
        let (outcome, detail) = with(Some(4), Report::Read(&[]), BAD_MARKERS);
        assert_eq!(outcome, Outcome::UsageError);
        let detail = detail.unwrap();
        assert!(
            detail.contains("`markers` of suite `s` in Cargo.toml"),
            "{detail}"
        );
        assert!(
            detail.contains("Wrong expression passed to '-m': not ("),
            "{detail}"
        );
        assert!(!detail.contains("after `--`"), "{detail}");
        for args in [&["-m", "not ("][..], &["-x", "-mnot ("]] {
            let (outcome, detail) = with_args(Some(4), Report::Read(&[]), BAD_MARKERS, args);
            assert_eq!(outcome, Outcome::UsageError);
            assert!(
                detail.unwrap().contains("the `-m` given after `--`"),
                "{args:?}"
            );
        }
        // Anything else pytest rejects is the arguments'.
        let (_, detail) = with(
            Some(4),
            Report::Missing,
            "ERROR: unrecognized arguments: --nope\n",
        );
        let detail = detail.unwrap();
        assert!(
            detail.contains("check the arguments given after `--`"),
            "{detail}"
        );
        assert!(
            detail.contains("pytest said: ERROR: unrecognized arguments: --nope"),
            "{detail}"
        );
    }
}
