//! The JUnit sink: `target/xtask/junit/<suite>.xml` as each suite ends, and
//! `target/xtask/junit.xml` with every suite that ran, when the run ends.

use std::path::Path;

use anyhow::Context;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite, XmlString};

use crate::paths::{write_atomically, Layout};
use crate::redact::Redactor;
use crate::runner::{Event, Sink, SuiteResult};

/// lxml refuses text nodes over 10,000,000 bytes; stay well below, and keep the whole in
/// the suite's log.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// Text as consumers can read it (`crate::text::readable`), capped in size.
pub fn xml_text(text: &str) -> XmlString {
    let mut text = crate::text::readable(text);
    if text.len() > MAX_TEXT_BYTES {
        let mut cut = text.len() - MAX_TEXT_BYTES;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text = format!(
            "[xtask: the first {cut} bytes were cut to keep this report readable; the suite's log has everything]\n{}",
            &text[cut..]
        );
    }
    XmlString::new(text)
}

pub struct JunitSink {
    layout: Layout,
    redactor: Redactor,
    suites: Vec<Option<TestSuite>>,
}

impl JunitSink {
    pub fn new(layout: &Layout, redactor: Redactor) -> JunitSink {
        JunitSink {
            layout: layout.clone(),
            redactor,
            suites: Vec::new(),
        }
    }

    fn write(&self, path: &Path, report: &Report) -> anyhow::Result<()> {
        let xml = report
            .to_string()
            .with_context(|| format!("serializing {}", path.display()))?;
        write_atomically(path, self.redactor.text(&xml).as_bytes())
    }
}

impl Sink for JunitSink {
    fn handle(&mut self, event: &Event<'_>) -> anyhow::Result<()> {
        match event {
            Event::RunStarted { plans, .. } => {
                self.suites = vec![None; plans.len()];
                // The reports describe the latest invocation only: a file left from an
                // earlier run of another suite would read as a result of this one. Only
                // finished reports go: the directory and the temporary files of an
                // invocation running at the same time stay.
                let mut stale = vec![self.layout.junit_report()];
                if let Ok(entries) = std::fs::read_dir(self.layout.junit_dir()) {
                    stale.extend(entries.flatten().map(|e| e.path()).filter(|p| {
                        let name = p.file_name().unwrap_or_default().to_string_lossy();
                        name.ends_with(".xml") && !name.starts_with('.')
                    }));
                }
                for path in stale {
                    remove(&path)?;
                }
            }
            Event::SuiteFinished {
                index,
                plan,
                result,
            } => {
                let suite =
                    test_suite(&plan.suite.name, &plan.suite.group, &plan.suite.dir, result);
                self.write(
                    &plan.junit,
                    Report::new("xtask").add_test_suite(suite.clone()),
                )?;
                self.suites[*index] = Some(suite);
            }
            Event::RunFinished { duration, .. } => {
                let mut report = Report::new("xtask");
                report.set_time(*duration);
                report.add_test_suites(self.suites.iter().flatten().cloned());
                self.write(&self.layout.junit_report(), &report)?;
            }
            Event::SuiteStarted { .. } | Event::EnvironmentReady { .. } => {}
        }
        Ok(())
    }
}

fn test_suite(name: &str, group: &str, dir: &str, result: &SuiteResult) -> TestSuite {
    let mut suite = TestSuite::new(name);
    suite.add_test_cases(result.cases.iter().cloned());
    suite.set_time(result.duration);
    suite.set_timestamp(result.started);
    // quick-junit writes skipped tests as `disabled`; most consumers read `skipped`.
    suite
        .extra
        .insert("skipped".into(), suite.disabled.to_string().into());
    suite.add_property(("group", group));
    suite.add_property(("dir", dir));
    suite.add_property(("outcome", result.outcome.name()));
    suite
}

/// A test case that stands for a suite whose tests did not (all) run, so that a CI
/// reporter shows why.
pub fn synthetic_case(suite: &str, kind: &str, message: &str, output: &str) -> TestCase {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status
        .set_type(kind)
        .set_message(xml_text(message))
        .set_description(xml_text(output));
    let mut case = TestCase::new(kind, status);
    case.set_classname(suite);
    case
}

fn remove(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing the previous report {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noncharacters_and_escapes_are_removed() {
        let text = xml_text("a\u{FFFE}b\u{FFFF}c \x1b[31mred\x1b[0m \x07bell");
        assert_eq!(text.as_str(), "abc red bell");
    }

    #[test]
    fn colour_codes_pytest_escaped_as_text_are_removed() {
        let text = xml_text("#x1B[1m#x1B[31mred#x1B[0m plain #x1B[ not one, #x07 dropped");
        assert_eq!(text.as_str(), "red plain [ not one,  dropped");
    }

    #[test]
    fn oversized_text_keeps_its_end_and_says_it_was_cut() {
        let big = format!("{}THE END", "é".repeat(MAX_TEXT_BYTES));
        let text = xml_text(&big);
        assert!(text.len() < MAX_TEXT_BYTES + 200);
        assert!(text.starts_with("[xtask: the first "), "{}", &text[..80]);
        assert!(text.ends_with("THE END"));
    }

    #[test]
    fn a_synthetic_case_reads_back_as_an_error_of_its_kind() {
        let mut suite = TestSuite::new("beta");
        suite.add_test_case(synthetic_case(
            "beta",
            "environment-error",
            "could not build",
            "uv said no",
        ));
        let xml = Report::new("xtask")
            .add_test_suite(suite)
            .to_string()
            .unwrap();
        let report = Report::deserialize_from_str(&xml).unwrap();
        let case = &report.test_suites[0].test_cases[0];
        assert_eq!(case.classname.as_ref().unwrap().as_str(), "beta");
        let TestCaseStatus::NonSuccess {
            kind,
            ty,
            message,
            description,
            ..
        } = &case.status
        else {
            panic!()
        };
        assert_eq!(*kind, NonSuccessKind::Error);
        assert_eq!(ty.as_ref().unwrap().as_str(), "environment-error");
        assert_eq!(message.as_ref().unwrap().as_str(), "could not build");
        assert_eq!(description.as_ref().unwrap().as_str(), "uv said no");
    }
}
