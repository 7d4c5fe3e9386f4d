//! The GitHub Actions sink, attached by the session only when `GITHUB_ACTIONS=true`:
//!
//! - each suite's block of terminal output inside a collapsible group
//!   (`::group::<suite> [<group>]` ... `::endgroup::`);
//! - an `::error file=...,line=...,title=...::message` annotation for every failed or
//!   errored test case, and for the stand-in case of every suite that did not run, pointing
//!   where its JUnit case points;
//! - a markdown table appended to the file named by `$GITHUB_STEP_SUMMARY`.
//!
//! Group markers must enclose what the terminal sink prints for a suite, and the terminal
//! prints a suite's block (result line, failures, end of its log) in one write when the
//! suite ends, even at `-j N`. So the session attaches [`GroupOpener`] before the terminal
//! sink and [`GithubSink`] after it: the opener prints `::group::` when the suite ends
//! (when it starts with `--no-capture`, whose output streams between the two events), and
//! the sink prints `::endgroup::` once the terminal has printed the block. Both write to
//! the same stdout as the terminal, which flushes after every write, so the lines keep
//! their order. They print through [`actions_guard::command`]: every other line the xtask
//! prints in GitHub Actions goes through the guard, so a test that prints `::endgroup::` or
//! `::error::` (shown in its log's end, or streamed) can neither close the group nor forge
//! an annotation. Everything shown is masked before it is escaped.

use std::io::Write;
use std::path::PathBuf;

use super::actions_guard;
use crate::events::{Event, Sink};
use crate::model::{CaseStatus, SuiteResult, TestCase};
use crate::outcome::Outcome;
use crate::plan::SuitePlan;
use crate::redact::Redactor;
use crate::text::readable;

/// The variable GitHub Actions sets to `true` in every step.
pub const ACTIONS_ENV: &str = "GITHUB_ACTIONS";
/// The variable naming the file a step appends its markdown summary to.
pub const SUMMARY_ENV: &str = "GITHUB_STEP_SUMMARY";
/// An annotation's message keeps at most this many characters (GitHub shows only the start).
const MESSAGE_CHARS: usize = 4000;

/// Whether this process runs in a GitHub Actions step.
pub fn enabled() -> bool {
    std::env::var(ACTIONS_ENV).is_ok_and(|v| v == "true")
}

/// GitHub's escaping of a workflow command's data (the text after `::`).
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// GitHub's escaping of a workflow command's property value.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The annotation of one case of `suite`: `::error` for a failed or errored case,
/// `::warning` for the skipped stand-in of a suite that did not run (a prerequisite that is
/// unavailable does not fail the run, but nobody should miss that the suite did not run),
/// `None` otherwise.
pub fn annotation(suite: &str, case: &TestCase, redactor: &Redactor) -> Option<String> {
    let level = match case.status() {
        CaseStatus::Failed | CaseStatus::Error => "error",
        CaseStatus::Skipped if case.synthetic => "warning",
        _ => return None,
    };
    let shown = |text: &str| redactor.text(&readable(text));
    // A stand-in case is named after the suite's outcome; its classname is the suite.
    let title = if case.synthetic || case.classname.is_empty() {
        format!("{suite}: {}", case.name)
    } else {
        format!("{suite}: {}::{}", case.classname, case.name)
    };
    let result = case.result();
    let message = result
        .message
        .as_deref()
        .or(result.kind.as_deref())
        .unwrap_or(case.status().name());
    let mut message: String = shown(message)
        .trim_end()
        .chars()
        .take(MESSAGE_CHARS)
        .collect();
    if message.is_empty() {
        message = case.status().name().to_string();
    }
    let mut properties = Vec::new();
    if let Some(file) = &case.file {
        properties.push(format!("file={}", escape_property(&shown(file))));
        if let Some(line) = case.line {
            properties.push(format!("line={line}"));
        }
    }
    properties.push(format!("title={}", escape_property(&shown(&title))));
    Some(format!(
        "::{level} {}::{}",
        properties.join(","),
        escape_data(&message)
    ))
}

/// A markdown table cell: no line breaks, `|` escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The step summary: one row per suite, then the run's outcome and exit code.
pub fn summary(plans: &[SuitePlan], results: &[SuiteResult], redactor: &Redactor) -> String {
    let mut text = String::from(
        "## cargo xtask\n\n| suite | group | passed | failed | skipped | errors | deselected | time | outcome |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    for (plan, result) in plans.iter().zip(results) {
        let c = result.counts();
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1}s | {} |\n",
            cell(&plan.suite.name),
            cell(&plan.suite.group),
            c.passed,
            c.failed,
            c.skipped,
            c.errors,
            c.deselected,
            result.duration.as_secs_f64(),
            match &result.cached {
                Some(from) => format!("passed (cached from run {})", from.run_id),
                None => result.outcome.name().to_string(),
            },
        ));
    }
    let overall = Outcome::overall(results.iter().map(|r| r.outcome));
    text.push_str(&format!(
        "\n**{overall}** (exit code {})\n",
        crate::error::outcome_code(overall)
    ));
    redactor.text(&text)
}

/// Opens a suite's group.
fn group_line(plan: &SuitePlan, redactor: &Redactor) -> String {
    let name = format!("{} [{}]", plan.suite.name, plan.suite.group);
    format!("::group::{}", escape_data(&redactor.text(&name)))
}

/// A token nobody can guess (not the run id: the tests see that in `XTASK_RUN`).
pub fn stop_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let part = || {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.finish()
    };
    format!("xtask-{:016x}{:016x}", part(), part())
}

/// Opens a suite's group; attached before the terminal sink.
pub struct GroupOpener {
    redactor: Redactor,
    /// `--no-capture`: the suite's output streams between its start and end.
    streaming: bool,
}

impl GroupOpener {
    pub fn new(redactor: Redactor, streaming: bool) -> Self {
        GroupOpener {
            redactor,
            streaming,
        }
    }
}

impl Sink for GroupOpener {
    fn handle(&mut self, event: &Event<'_>) -> anyhow::Result<()> {
        match event {
            Event::SuiteStarted { plan, .. } if self.streaming => {
                actions_guard::command(&group_line(plan, &self.redactor))?
            }
            Event::SuiteFinished { plan, .. } if !self.streaming => {
                actions_guard::command(&group_line(plan, &self.redactor))?
            }
            _ => {}
        }
        Ok(())
    }
}

/// Closes a suite's group, annotates its failures, and writes the step summary; attached
/// after the terminal sink.
pub struct GithubSink {
    redactor: Redactor,
    summary: Option<PathBuf>,
}

impl GithubSink {
    /// `summary`: the file named by `$GITHUB_STEP_SUMMARY`, if any.
    pub fn new(redactor: Redactor, summary: Option<PathBuf>) -> Self {
        GithubSink { redactor, summary }
    }

    /// With the summary file from the environment.
    pub fn from_env(redactor: Redactor) -> Self {
        let summary = std::env::var_os(SUMMARY_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        GithubSink::new(redactor, summary)
    }
}

impl Sink for GithubSink {
    fn handle(&mut self, event: &Event<'_>) -> anyhow::Result<()> {
        match event {
            Event::SuiteFinished { plan, result, .. } => {
                actions_guard::command("::endgroup::")?;
                for case in &result.cases {
                    if let Some(line) = annotation(&plan.suite.name, case, &self.redactor) {
                        actions_guard::command(&line)?;
                    }
                }
            }
            Event::RunFinished { plans, results, .. } => {
                if let Some(path) = &self.summary {
                    let text = summary(plans, results, &self.redactor);
                    let written = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .and_then(|mut file| file.write_all(text.as_bytes()));
                    written.map_err(|err| {
                        anyhow::anyhow!(
                            "writing the GitHub step summary to {} (${SUMMARY_ENV}): {err}",
                            path.display()
                        )
                    })?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Attempt;

    #[test]
    fn data_and_properties_are_escaped_as_github_reads_them() {
        assert_eq!(escape_data("50% a\r\nb: c, d"), "50%25 a%0D%0Ab: c, d");
        assert_eq!(
            escape_property("50% a\r\nb: c, d"),
            "50%25 a%0D%0Ab%3A c%2C d"
        );
    }

    fn failed(message: &str) -> TestCase {
        let mut attempt = Attempt::new(CaseStatus::Failed);
        attempt.message = Some(message.to_string());
        let mut case = TestCase::new("tests.test_x", "test_bad[a,b]", attempt);
        case.file = Some("pkg/tests/test_x.py".into());
        case.line = Some(7);
        case
    }

    #[test]
    fn a_failed_case_is_one_masked_escaped_error_line_and_a_passed_one_none() {
        let redactor = Redactor::new([("API_TOKEN", "sk-live-9999")], &[]);
        let line = annotation(
            "red",
            &failed("AssertionError: \x1b[31msk-live-9999\x1b[0m 100%\nassert 1 == 2"),
            &redactor,
        )
        .unwrap();
        assert_eq!(
            line,
            "::error file=pkg/tests/test_x.py,line=7,title=red%3A tests.test_x%3A%3Atest_bad[a%2Cb]::AssertionError: *** 100%25%0Aassert 1 == 2"
        );
        let passed = TestCase::new("t", "ok", Attempt::new(CaseStatus::Passed));
        assert_eq!(annotation("red", &passed, &redactor), None);
    }

    #[test]
    fn a_case_without_a_file_has_no_file_or_line() {
        let mut case = failed("boom");
        case.file = None;
        let line = annotation("s", &case, &Redactor::default()).unwrap();
        assert_eq!(
            line,
            "::error title=s%3A tests.test_x%3A%3Atest_bad[a%2Cb]::boom"
        );
    }
}
