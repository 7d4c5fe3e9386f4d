//! The JUnit sink: `target/xtask/junit/<suite>.xml` as each suite ends, and
//! `target/xtask/junit.xml` with every suite that ran, when the run ends.

use std::path::Path;

use anyhow::Context;
use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite, XmlString,
};

use crate::events::{Event, Sink};
use crate::junit_xml::write::to_bytes;
use crate::model::{self, CaseStatus, SuiteResult};
use crate::paths::{write_atomically, Layout};
use crate::plan::SuitePlan;
use crate::redact::Redactor;

pub use crate::junit_xml::write::xml_text;
pub use crate::junit_xml::MAX_TEXT_BYTES;

pub struct JunitSink {
    layout: Layout,
    redactor: Redactor,
    suites: Vec<Option<TestSuite>>,
    /// The health of every prerequisite and service, as the setup's events said: (name,
    /// the JUnit property of the suites that need it).
    health: Vec<(String, (String, String))>,
}

impl JunitSink {
    pub fn new(layout: &Layout, redactor: Redactor) -> JunitSink {
        JunitSink {
            layout: layout.clone(),
            redactor,
            suites: Vec::new(),
            health: Vec::new(),
        }
    }

    fn write(&self, path: &Path, report: &Report) -> anyhow::Result<()> {
        write_atomically(
            path,
            &to_bytes(report).with_context(|| format!("serializing {}", path.display()))?,
        )
    }

    /// Text as it may appear in the report: masked, then cleaned for XML readers. This is
    /// the only way text enters the report, and it happens before serialization, so
    /// masking can never touch markup.
    fn text(&self, text: &str) -> XmlString {
        xml_text(&self.redactor.text(text))
    }

    fn test_suite(&self, plan: &SuitePlan, result: &SuiteResult) -> TestSuite {
        let mut suite = TestSuite::new(self.text(&plan.suite.name));
        suite.add_test_cases(result.cases.iter().map(|case| self.test_case(case)));
        suite.set_time(result.duration);
        suite.set_timestamp(result.started);
        suite.add_property(Property::new("group", self.text(&plan.suite.group)));
        suite.add_property(Property::new("dir", self.text(&plan.suite.dir)));
        suite.add_property(("outcome", result.outcome.name()));
        suite.add_property(("deselected", result.deselected.to_string().as_str()));
        // Not run here: the run whose result it is (the result cache).
        if let Some(from) = &result.cached {
            suite.add_property(Property::new("cached-from", self.text(&from.run_id)));
        }
        let needs = |name: &String| {
            plan.suite.prerequisites.contains(name) || plan.suite.services.contains(name)
        };
        let health = self.health.iter().filter(|(name, _)| needs(name));
        for (_, (name, value)) in health {
            suite.add_property(Property::new(self.text(name), self.text(value)));
        }
        suite
    }

    fn test_case(&self, case: &model::TestCase) -> TestCase {
        let result = case.result();
        let mut status = match result.status {
            CaseStatus::Passed => TestCaseStatus::success(),
            CaseStatus::Failed => TestCaseStatus::non_success(NonSuccessKind::Failure),
            CaseStatus::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
            CaseStatus::Skipped => TestCaseStatus::skipped(),
        };
        if let Some(message) = &result.message {
            status.set_message(self.text(message));
        }
        // pytest gives a failure or an error no type, and surefire's schema requires one
        // (Jenkins validates against it): then how the test ended.
        let ended = matches!(result.status, CaseStatus::Failed | CaseStatus::Error)
            .then(|| result.status.name());
        if let Some(ty) = result.kind.as_deref().or(ended) {
            status.set_type(self.text(ty));
        }
        if let Some(details) = &result.details {
            status.set_description(self.text(details));
        }
        // Earlier attempts (`--retries`): flakyFailure/flakyError under a test that passed at
        // last, rerunFailure/rerunError under one that failed every time, as Maven
        // surefire's schema defines them (the one that defines these elements): a `type`
        // (required), the traceback in `stackTrace` (required, no text of their own), and
        // no `time` (not allowed; the case's time counts every attempt).
        for earlier in &case.attempts[..case.attempts.len() - 1] {
            let kind = match earlier.status {
                CaseStatus::Failed => NonSuccessKind::Failure,
                CaseStatus::Error => NonSuccessKind::Error,
                CaseStatus::Passed | CaseStatus::Skipped => continue,
            };
            let mut rerun = TestRerun::new(kind);
            if let Some(message) = &earlier.message {
                rerun.set_message(self.text(message));
            }
            // pytest gives a failure or an error no type: then how the attempt ended.
            let ty = earlier.kind.as_deref().unwrap_or(earlier.status.name());
            rerun.set_type(self.text(ty));
            rerun.set_stack_trace(self.text(earlier.details.as_deref().unwrap_or("")));
            if let Some(stdout) = &earlier.stdout {
                rerun.set_system_out(self.text(stdout));
            }
            if let Some(stderr) = &earlier.stderr {
                rerun.set_system_err(self.text(stderr));
            }
            status.add_rerun(rerun);
        }
        let mut out = TestCase::new(self.text(&case.name), status);
        out.set_classname(self.text(&case.classname));
        if let Some(time) = case.time() {
            out.set_time(time);
        }
        if let Some(file) = &case.file {
            out.extra.insert("file".into(), self.text(file));
        }
        if let Some(line) = case.line {
            out.extra.insert("line".into(), line.to_string().into());
        }
        if let Some(stdout) = &result.stdout {
            out.set_system_out(self.text(stdout));
        }
        if let Some(stderr) = &result.stderr {
            out.set_system_err(self.text(stderr));
        }
        for (name, value) in &case.properties {
            out.add_property(Property::new(self.text(name), self.text(value)));
        }
        out
    }
}

impl Sink for JunitSink {
    fn handle(&mut self, event: &Event<'_>) -> anyhow::Result<()> {
        match event {
            Event::RunStarted { plans, .. } => {
                self.suites = vec![None; plans.len()];
            }
            Event::SuiteFinished {
                index,
                plan,
                result,
            } => {
                let suite = self.test_suite(plan, result);
                let mut report = Report::new("xtask");
                report.add_test_suite(suite.clone());
                self.write(&plan.junit, &report)?;
                self.suites[*index] = Some(for_merged_report(suite));
            }
            Event::RunFinished { duration, .. } => {
                let mut report = Report::new("xtask");
                report.set_time(*duration);
                report.add_test_suites(self.suites.iter().flatten().cloned());
                self.write(&self.layout.junit_report(), &report)?;
            }
            Event::PrerequisiteChecked { health }
            | Event::ServiceReady { health }
            | Event::ServiceFailed { health, .. } => {
                self.health.push((health.name.clone(), health.property()));
            }
            _ => {}
        }
        Ok(())
    }
}

/// The reports of an invocation that ended before any suite ran (a broken manifest, an
/// unknown suite): `junit.xml` and `junit/xtask.xml` hold one `error` case named after the
/// exit code, whose message is the error, and `logs/` exists; a CI reporter pointed at the
/// stable paths shows the error, never "file not found".
pub fn write_without_suites(
    layout: &Layout,
    code_name: &str,
    error: &str,
    redactor: &Redactor,
) -> anyhow::Result<()> {
    let error = redactor.text(error);
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status.set_message(xml_text(error.lines().next().unwrap_or_default()));
    status.set_type(code_name);
    status.set_description(xml_text(&error));
    let mut case = TestCase::new(code_name, status);
    case.set_classname("xtask");
    let mut suite = TestSuite::new("xtask");
    suite.add_test_case(case);
    let mut report = Report::new("xtask");
    report.add_test_suite(suite);
    let xml = to_bytes(&report).context("serializing the error's report")?;
    write_atomically(&layout.junit_report(), &xml)?;
    write_atomically(&layout.suite_junit("xtask"), &xml)?;
    std::fs::create_dir_all(layout.logs_dir())
        .with_context(|| format!("creating {}", layout.logs_dir().display()))
}

/// The reports of an invocation that ran no suite and had nothing to report (a rerun with
/// nothing to run): a `junit.xml` with no suite, and empty `junit/` and `logs/`.
pub fn write_no_suites(layout: &Layout) -> anyhow::Result<()> {
    let report = Report::new("xtask");
    let xml = to_bytes(&report).context("serializing an empty report")?;
    write_atomically(&layout.junit_report(), &xml)?;
    for dir in [layout.junit_dir(), layout.logs_dir()] {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

/// The property that says a suite's classnames start with its name and a dot (the merged
/// `junit.xml` and `junit merge`'s output; a `junit/<suite>.xml` has pytest's own), so a
/// merge compares every input's cases alike.
pub const CLASSNAME_PREFIX: &str = "classname-prefix";

/// The suite as the merged `junit.xml` holds it: every classname prefixed with the suite's
/// name, so two suites with the same test module (`tests.test_api`) never share a
/// classname and name there (publishers merge such cases into one). Each suite's own file
/// keeps pytest's classnames, the ids pytest itself prints.
fn for_merged_report(mut suite: TestSuite) -> TestSuite {
    let prefix = suite.name.to_string();
    for case in &mut suite.test_cases {
        prefix_classname(case, &prefix);
    }
    mark_prefixed(&mut suite);
    suite
}

/// `case`'s classname as the merged report has it, in suite `suite`.
pub fn prefix_classname(case: &mut TestCase, suite: &str) {
    let classname = match &case.classname {
        Some(classname) => format!("{suite}.{}", classname.as_str()),
        None => suite.to_string(),
    };
    case.set_classname(classname);
}

/// Says, in `suite`'s properties, that its classnames are prefixed with its name.
pub fn mark_prefixed(suite: &mut TestSuite) {
    let prefix = format!("{}.", suite.name.as_str());
    suite.add_property(Property::new(CLASSNAME_PREFIX, prefix.as_str()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_merged_reports_classnames_start_with_the_suites_name() {
        let mut suite = TestSuite::new("api-v2");
        let mut case = TestCase::new("test_get", TestCaseStatus::success());
        case.set_classname("tests.test_api");
        suite.add_test_case(case);
        suite.add_test_case(TestCase::new("bare", TestCaseStatus::skipped()));
        let merged = for_merged_report(suite);
        let classnames: Vec<_> = merged
            .test_cases
            .iter()
            .map(|c| c.classname.as_ref().unwrap().as_str())
            .collect();
        assert_eq!(classnames, ["api-v2.tests.test_api", "api-v2"]);
    }

    #[test]
    fn written_reports_have_no_disabled_and_keep_line_breaks() {
        let mut status = TestCaseStatus::skipped();
        status.set_message("why\nand why");
        let mut suite = TestSuite::new("s");
        suite.add_test_case(TestCase::new("t", status));
        let mut report = Report::new("xtask");
        report.add_test_suite(suite);
        let xml = String::from_utf8(to_bytes(&report).unwrap()).unwrap();
        assert!(!xml.contains("disabled"), "{xml}");
        assert!(xml.contains("message=\"why&#10;and why\""), "{xml}");
        assert!(
            xml.contains(
                "<testsuites name=\"xtask\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"1\">"
            ),
            "{xml}"
        );
    }

    #[test]
    fn escapes_are_removed_and_control_characters_shown() {
        let text = xml_text("a\u{FFFE}b\u{FFFF}c \x1b[31mred\x1b[0m \x07bell \x00nul \x08bs");
        assert_eq!(
            text.as_str(),
            "a\u{FFFD}b\u{FFFD}c red \u{2407}bell \u{2400}nul \u{2408}bs"
        );
    }

    #[test]
    fn colour_codes_pytest_escaped_as_text_are_removed_and_other_text_kept() {
        let text = xml_text("#x1B[1m#x1B[31mred#x1B[0m plain #x1B[ not one, #x07 kept");
        assert_eq!(text.as_str(), "red plain #x1B[ not one, #x07 kept");
    }

    #[test]
    fn oversized_text_keeps_its_end_and_says_it_was_cut() {
        let big = format!("{}THE END", "é".repeat(MAX_TEXT_BYTES));
        let text = xml_text(&big);
        assert!(text.len() < MAX_TEXT_BYTES + 200);
        assert!(text.starts_with("[xtask: the first "), "{}", &text[..80]);
        assert!(text.ends_with("THE END"));
    }
}
