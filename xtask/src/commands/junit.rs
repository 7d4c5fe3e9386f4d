//! `cargo xtask junit merge IN... -o OUT`: one report from the reports of many runs (CI
//! runners, partitions of a suite), keeping every suite, case, property and rerun, with the
//! totals recomputed from the cases. The partitions of one suite become one `<testsuite>`.
//! What cannot be merged faithfully is an error, never dropped: the same case (classname
//! and name) in two reports of one suite, as overlapping runs would give.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use quick_junit::{Property, Report, TestSuite};
use std::collections::HashMap;

use crate::flags::JunitMergeArgs;
use crate::outcome::Outcome;
use crate::UsageError;

pub fn merge(args: &JunitMergeArgs) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    for path in &args.inputs {
        let xml = std::fs::read_to_string(path)
            .with_context(|| format!("reading the JUnit report {}", path.display()))?;
        let report = Report::deserialize_from_str(&xml).map_err(|err| {
            UsageError(format!(
                "{} is not a JUnit report the xtask can read ({err}); give the junit.xml files `cargo xtask` wrote",
                path.display()
            ))
        })?;
        reports.push((path.clone(), report));
    }
    let merged = merge_reports(&reports)?;
    let bytes = crate::report::junit::serialize(&merged)
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

/// A suite being merged, and where each of its cases came from.
struct Merging {
    suite: TestSuite,
    seen: HashMap<(String, String), PathBuf>,
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
            for case in &input.test_cases {
                let key = (
                    case.classname
                        .as_ref()
                        .map_or("", |c| c.as_str())
                        .to_string(),
                    case.name.to_string(),
                );
                if let Some(first) = merging.seen.get(&key) {
                    return Err(UsageError(format!(
                        "cannot merge faithfully: test case `{}::{}` of suite `{name}` is in both {} and {}; each test may be in one report only (were two runs of the same tests, or overlapping partitions, given?)",
                        key.0,
                        key.1,
                        first.display(),
                        path.display()
                    ))
                    .into());
                }
                merging.seen.insert(key, path.clone());
                merging.suite.add_test_case(case.clone());
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
        // The totals are quick-junit's own, counted from the cases as they were added.
        suite
            .extra
            .insert("skipped".into(), suite.disabled.to_string().into());
        merged.add_test_suite(suite);
    }
    Ok(merged)
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
        let mut r = Report::new("xtask");
        r.add_test_suite(s);
        r
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
        assert_eq!(props, [("group", "g"), ("outcome", "failed")]);
        // Read back, the written report says the same.
        let bytes = crate::report::junit::serialize(&merged).unwrap();
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
