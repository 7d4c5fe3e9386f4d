//! `cargo xtask junit merge IN... -o OUT`: one report from the reports of many runs (CI
//! runners, partitions of a suite), keeping every suite, case, property and rerun, with the
//! totals recomputed from the cases. The partitions of one suite become one `<testsuite>`.
//! What cannot be merged faithfully is an error, never dropped: the same case (classname
//! and name) in two reports of one suite, as overlapping runs would give. Cases are compared
//! as the merged report names them (`<suite>.` before each classname, told by the suite's
//! `classname-prefix` property; a `junit/<suite>.xml` has pytest's own), so the check holds
//! across junit.xml, junit/<suite>.xml and an earlier merge's output. The one exception: the
//! case the xtask writes for a suite that did not run (see [`is_stand_in`]), which every
//! partition of such a suite writes alike, is folded into one.

pub mod libtest;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use quick_junit::{Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::collections::HashMap;

use crate::error::Error;
use crate::flags::JunitMergeArgs;
use crate::outcome::Outcome;

pub fn merge(args: &JunitMergeArgs) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    for path in &args.inputs {
        let report = match crate::junit_xml::read::report_file(path) {
            Ok(report) => report,
            Err(err) if err.is::<std::io::Error>() => {
                return Err(err.context(format!("reading the JUnit report {}", path.display())))
            }
            Err(err) => {
                return Err(Error::Usage(format!(
                    "{} is not a JUnit report the xtask can read ({err:#}); give the junit.xml files `cargo xtask` wrote",
                    path.display()
                ))
                .into())
            }
        };
        reports.push((path.clone(), report));
    }
    let merged = merge_reports(&reports)?;
    let bytes = crate::junit_xml::write::to_bytes(&merged)
        .with_context(|| format!("serializing {}", args.output.display()))?;
    crate::paths::write_atomically(&args.output, &bytes)?;
    let cases: usize = merged.test_suites.iter().map(|s| s.test_cases.len()).sum();
    println!(
        "xtask: merged {} report(s) into {}: {} suite(s), {cases} test case(s)",
        reports.len(),
        args.output.display(),
        merged.test_suites.len()
    );
    Ok(())
}

/// A suite being merged, and where each of its cases came from (with its index).
struct Merging {
    suite: TestSuite,
    seen: HashMap<(String, String), (PathBuf, usize)>,
    properties: BTreeSet<(String, String)>,
    outcome: Option<Outcome>,
}

pub fn merge_reports(reports: &[(PathBuf, Report)]) -> anyhow::Result<Report> {
    // In the order suites first appear.
    let mut suites: Vec<(String, Merging)> = Vec::new();
    let mut time = std::time::Duration::ZERO;
    for (path, report) in reports {
        time = time.max(report.time.unwrap_or_default());
        for input in &report.test_suites {
            let name = input.name.to_string();
            let at = match suites.iter().position(|(n, _)| *n == name) {
                Some(at) => at,
                None => {
                    suites.push((
                        name.clone(),
                        Merging {
                            suite: empty_like(input),
                            seen: HashMap::new(),
                            properties: BTreeSet::new(),
                            outcome: None,
                        },
                    ));
                    suites.len() - 1
                }
            };
            let merging = &mut suites[at].1;
            let prefixed = input
                .properties
                .iter()
                .any(|p| p.name.as_str() == CLASSNAME_PREFIX);
            for case in &input.test_cases {
                let mut case = case.clone();
                if !prefixed {
                    crate::report::junit::prefix_classname(&mut case, &name);
                }
                let key = (
                    case.classname
                        .as_ref()
                        .map_or("", |c| c.as_str())
                        .to_string(),
                    case.name.to_string(),
                );
                if let Some((first, index)) = merging.seen.get(&key) {
                    let earlier = &mut merging.suite.test_cases[*index];
                    if is_stand_in(&name, earlier) && is_stand_in(&name, &case) {
                        fold_stand_in(earlier, &case, path);
                        continue;
                    }
                    return Err(Error::Usage(format!(
                        "cannot merge faithfully: test case `{}::{}` of suite `{name}` is in both {} and {}; each test may be in one report only (were two runs of the same tests, or overlapping partitions, or a run's junit.xml and its junit/<suite>.xml, given?)",
                        key.0,
                        key.1,
                        first.display(),
                        path.display()
                    ))
                    .into());
                }
                merging
                    .seen
                    .insert(key, (path.clone(), merging.suite.test_cases.len()));
                merging.suite.add_test_case(case);
            }
            merging.suite.time =
                Some(merging.suite.time.unwrap_or_default() + input.time.unwrap_or_default());
            if let Some(stamp) = input.timestamp {
                let earlier = merging.suite.timestamp.is_none_or(|t| stamp < t);
                if earlier {
                    merging.suite.timestamp = Some(stamp);
                }
            }
            for property in &input.properties {
                let (key, value) = (property.name.to_string(), property.value.to_string());
                if key == CLASSNAME_PREFIX {
                    continue;
                }
                if key == "outcome" {
                    let worse = Outcome::PRECEDENCE
                        .into_iter()
                        .find(|o| Some(*o) == merging.outcome || o.name() == value);
                    merging.outcome = worse;
                } else {
                    merging.properties.insert((key, value));
                }
            }
        }
    }
    let mut merged = Report::new("xtask");
    merged.set_time(time);
    for (_, merging) in suites {
        let mut suite = merging.suite;
        for (name, value) in merging.properties {
            suite.add_property(Property::new(name.as_str(), value.as_str()));
        }
        if let Some(outcome) = merging.outcome {
            suite.add_property(Property::new("outcome", outcome.name()));
        }
        crate::report::junit::mark_prefixed(&mut suite);
        // The totals are quick-junit's own, counted from the cases as they were added.
        merged.add_test_suite(suite);
    }
    Ok(merged)
}

use crate::report::junit::CLASSNAME_PREFIX;

/// Whether `case` (classnames as the merged report has them) is the one the xtask writes
/// for suite `suite` when its tests did not run: classname `<suite>.<suite>`, named after
/// an outcome, with that outcome as its type. pytest names no test so.
fn is_stand_in(suite: &str, case: &TestCase) -> bool {
    let name = case.name.as_str();
    let ty = match &case.status {
        TestCaseStatus::NonSuccess { ty, .. } | TestCaseStatus::Skipped { ty, .. } => ty,
        TestCaseStatus::Success { .. } => return false,
    };
    case.classname.as_ref().map(|c| c.as_str()) == Some(format!("{suite}.{suite}").as_str())
        && ty.as_ref().map(|t| t.as_str()) == Some(name)
        && Outcome::PRECEDENCE
            .iter()
            .any(|o| o.name() == name && !matches!(o, Outcome::Passed | Outcome::Failed))
}

/// One stand-in case for the suite from two partitions' (same outcome: same name): times
/// added, and the other's message kept in the text when it says something else.
fn fold_stand_in(kept: &mut TestCase, other: &TestCase, from: &Path) {
    if let (Some(a), Some(b)) = (kept.time, other.time) {
        kept.time = Some(a + b);
    }
    let message = |case: &TestCase| match &case.status {
        TestCaseStatus::NonSuccess { message, .. } | TestCaseStatus::Skipped { message, .. } => {
            message.as_ref().map(|m| m.to_string())
        }
        TestCaseStatus::Success { .. } => None,
    };
    let (mine, theirs) = (message(kept), message(other));
    if theirs.is_some() && theirs != mine {
        let also = format!("[{} says: {}]", from.display(), theirs.unwrap_or_default());
        let description = match &mut kept.status {
            TestCaseStatus::NonSuccess { description, .. }
            | TestCaseStatus::Skipped { description, .. } => description,
            TestCaseStatus::Success { .. } => return,
        };
        let text = match description.take() {
            Some(text) => format!("{also}\n\n{}", text.as_str()),
            None => also,
        };
        *description = Some(text.into());
    }
}

fn empty_like(input: &TestSuite) -> TestSuite {
    let mut suite = TestSuite::new(input.name.clone());
    suite.time = Some(std::time::Duration::ZERO);
    suite.timestamp = input.timestamp;
    suite
}

/// The inputs must exist before anything is written.
pub fn check_inputs(inputs: &[PathBuf]) -> anyhow::Result<()> {
    for input in inputs {
        if !Path::new(input).is_file() {
            bail!(
                "{} is not a file; give the JUnit reports to merge",
                input.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus};

    fn report(suite: &str, cases: &[(&str, bool)], outcome: &str) -> Report {
        let mut s = TestSuite::new(suite);
        for (name, passed) in cases {
            let status = if *passed {
                TestCaseStatus::success()
            } else {
                TestCaseStatus::non_success(NonSuccessKind::Failure)
            };
            let mut case = TestCase::new(*name, status);
            case.set_classname(format!("{suite}.tests.test_x"));
            s.add_test_case(case);
        }
        s.add_property(Property::new("outcome", outcome));
        s.add_property(Property::new("group", "g"));
        crate::report::junit::mark_prefixed(&mut s);
        let mut r = Report::new("xtask");
        r.add_test_suite(s);
        r
    }

    /// A suite's own file, `junit/<suite>.xml`: pytest's classnames, no prefix property.
    fn own_report(suite: &str, cases: &[&str]) -> Report {
        let mut s = TestSuite::new(suite);
        for name in cases {
            let mut case = TestCase::new(*name, TestCaseStatus::success());
            case.set_classname("tests.test_x");
            s.add_test_case(case);
        }
        s.add_property(Property::new("outcome", "passed"));
        let mut r = Report::new("xtask");
        r.add_test_suite(s);
        r
    }

    /// What a partition of a suite whose prerequisite is unavailable writes, in its own file.
    fn stand_in_report(suite: &str, message: &str) -> Report {
        let mut status = TestCaseStatus::skipped();
        status.set_type("prerequisite-unavailable");
        status.set_message(message);
        status.set_description("the log's tail");
        let mut case = TestCase::new("prerequisite-unavailable", status);
        case.set_classname(suite);
        case.set_time(std::time::Duration::from_millis(5));
        let mut s = TestSuite::new(suite);
        s.add_test_case(case);
        s.add_property(Property::new("outcome", "prerequisite-unavailable"));
        let mut r = Report::new("xtask");
        r.add_test_suite(s);
        r
    }

    fn classnames(report: &Report) -> Vec<String> {
        report.test_suites[0]
            .test_cases
            .iter()
            .map(|c| c.classname.as_ref().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_suites_own_file_and_the_merged_report_are_compared_alike() {
        // The same test in a run's junit.xml and its junit/api.xml.
        let err = merge_reports(&[
            ("junit.xml".into(), report("api", &[("t1", true)], "passed")),
            ("junit/api.xml".into(), own_report("api", &["t1"])),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("`api.tests.test_x::t1`"), "{err}");
        // Own files alone merge into the merged report's form.
        let merged = merge_reports(&[
            ("a/api.xml".into(), own_report("api", &["t1"])),
            ("b/api.xml".into(), own_report("api", &["t2"])),
        ])
        .unwrap();
        assert_eq!(
            classnames(&merged),
            ["api.tests.test_x", "api.tests.test_x"]
        );
        // A merge's output given again with one of its inputs.
        let err = merge_reports(&[
            ("merged.xml".into(), merged),
            ("b/api.xml".into(), own_report("api", &["t2"])),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("`api.tests.test_x::t2`"), "{err}");
    }

    #[test]
    fn partitions_of_a_suite_that_did_not_run_fold_into_one_case() {
        let why = "prerequisite `down` is unavailable";
        let merged = merge_reports(&[
            ("p1/junit/api.xml".into(), stand_in_report("api", why)),
            ("p2/junit/api.xml".into(), stand_in_report("api", why)),
        ])
        .unwrap();
        let suite = &merged.test_suites[0];
        assert_eq!((suite.tests, suite.disabled), (1, 1));
        assert_eq!(classnames(&merged), ["api.api"]);
        let case = &suite.test_cases[0];
        assert_eq!(case.time, Some(std::time::Duration::from_millis(10)));
        let TestCaseStatus::Skipped { description, .. } = &case.status else {
            panic!("{:?}", case.status)
        };
        assert_eq!(description.as_ref().unwrap().as_str(), "the log's tail");
        let outcome: Vec<_> = suite
            .properties
            .iter()
            .filter(|p| p.name.as_str() == "outcome")
            .map(|p| p.value.as_str())
            .collect();
        assert_eq!(outcome, ["prerequisite-unavailable"]);
        // Saying something else, the other's message is kept in the text.
        let merged = merge_reports(&[
            ("p1.xml".into(), stand_in_report("api", why)),
            ("p2.xml".into(), stand_in_report("api", "another reason")),
        ])
        .unwrap();
        let TestCaseStatus::Skipped { description, .. } =
            &merged.test_suites[0].test_cases[0].status
        else {
            panic!("skipped")
        };
        assert!(
            description
                .as_ref()
                .unwrap()
                .starts_with("[p2.xml says: another reason]"),
            "{description:?}"
        );
    }

    #[test]
    fn a_real_test_named_like_an_outcome_is_still_an_error() {
        // Not the suite's stand-in: its classname is a module, not the suite.
        let err = merge_reports(&[
            (
                "a.xml".into(),
                report("api", &[("timeout", false)], "failed"),
            ),
            (
                "b.xml".into(),
                report("api", &[("timeout", false)], "failed"),
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot merge faithfully"), "{err}");
    }

    #[test]
    fn partitions_of_one_suite_become_one_suite_with_totals_from_its_cases() {
        let merged = merge_reports(&[
            (
                "a.xml".into(),
                report("api", &[("t1", true), ("t2", false)], "failed"),
            ),
            ("b.xml".into(), report("api", &[("t3", true)], "passed")),
            ("c.xml".into(), report("web", &[("t1", true)], "passed")),
        ])
        .unwrap();
        assert_eq!(merged.test_suites.len(), 2);
        let api = &merged.test_suites[0];
        assert_eq!((api.tests, api.failures), (3, 1));
        let props: Vec<_> = api
            .properties
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            props,
            [
                ("group", "g"),
                ("outcome", "failed"),
                ("classname-prefix", "api.")
            ]
        );
        // Read back, the written report says the same.
        let bytes = crate::junit_xml::write::to_bytes(&merged).unwrap();
        let back =
            crate::junit_xml::read::report(bytes.as_slice(), crate::junit_xml::read::OWN).unwrap();
        assert_eq!(back, merged);
        // And so says another reader.
        let back = Report::deserialize_from_str(std::str::from_utf8(&bytes).unwrap()).unwrap();
        assert_eq!(back.test_suites[0].tests, 3);
        assert_eq!(back.tests, 4);
    }

    #[test]
    fn the_same_case_in_two_reports_is_an_error_naming_both() {
        let err = merge_reports(&[
            ("a.xml".into(), report("api", &[("t1", true)], "passed")),
            ("b.xml".into(), report("api", &[("t1", false)], "failed")),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("`api.tests.test_x::t1`"), "{err}");
        assert!(err.contains("a.xml and b.xml"), "{err}");
    }
}
