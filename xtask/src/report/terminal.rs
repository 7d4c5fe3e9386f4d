//! The terminal sink: progress lines, each suite's output in one piece when it ends, and a
//! table at the end. Output of suites running at the same time never interleaves.

use std::io::Write;

use crate::events::{Event, Sink};
use crate::log;
use crate::outcome::Outcome;
use crate::paths::Layout;

pub struct TerminalSink<W: Write> {
    out: W,
    layout: Layout,
}

impl<W: Write> TerminalSink<W> {
    pub fn new(out: W, layout: &Layout) -> Self {
        TerminalSink {
            out,
            layout: layout.clone(),
        }
    }
}

impl<W: Write> Sink for TerminalSink<W> {
    fn handle(&mut self, event: &Event<'_>) -> anyhow::Result<()> {
        let out = &mut self.out;
        match event {
            Event::RunStarted { plans, jobs } => {
                let names: Vec<&str> = plans.iter().map(|p| p.suite.name.as_str()).collect();
                writeln!(
                    out,
                    "xtask: running {} suite(s), {} at a time: {}",
                    plans.len(),
                    jobs,
                    names.join(", ")
                )?;
            }
            Event::SuiteStarted { plan, .. } => {
                writeln!(
                    out,
                    "{:>12} {} [{}]",
                    "START", plan.suite.name, plan.suite.group
                )?;
            }
            Event::EnvironmentReady {
                plan,
                duration,
                built,
                ..
            } => {
                let how = if *built { "built" } else { "up to date" };
                writeln!(
                    out,
                    "{:>12} {} ({how}, {:.1}s)",
                    "ENV READY",
                    plan.suite.name,
                    duration.as_secs_f64()
                )?;
            }
            Event::SuiteFinished { plan, result, .. } => {
                let rule = "─".repeat(20);
                writeln!(
                    out,
                    "{rule} {} [{}]: output {rule}",
                    plan.suite.name, plan.suite.group
                )?;
                writeln!(out, "{}", log::tail(&plan.log, log::TAIL_LINES))?;
                let c = result.counts();
                writeln!(
                    out,
                    "{:>12} {} [{}]: {} passed, {} failed, {} skipped, {} errors in {:.1}s",
                    result.outcome.name().to_uppercase(),
                    plan.suite.name,
                    plan.suite.group,
                    c.passed,
                    c.failed,
                    c.skipped,
                    c.errors,
                    result.duration.as_secs_f64()
                )?;
                if let Some(detail) = &result.detail {
                    writeln!(out, "{:>12} {detail}", "")?;
                }
                if result.outcome != Outcome::Passed {
                    writeln!(
                        out,
                        "{:>12} full log: {}",
                        "",
                        self.layout.display(&plan.log)
                    )?;
                }
            }
            Event::RunFinished {
                plans,
                results,
                duration,
            } => {
                let width = plans
                    .iter()
                    .map(|p| p.suite.name.len())
                    .max()
                    .unwrap_or(5)
                    .max(5);
                let gwidth = plans
                    .iter()
                    .map(|p| p.suite.group.len())
                    .max()
                    .unwrap_or(5)
                    .max(5);
                writeln!(out)?;
                writeln!(
                    out,
                    "{:<width$}  {:<gwidth$}  {:>6}  {:>6}  {:>7}  {:>6}  {:>7}  outcome",
                    "suite", "group", "passed", "failed", "skipped", "errors", "time"
                )?;
                for (plan, result) in plans.iter().zip(results.iter()) {
                    let c = result.counts();
                    writeln!(
                        out,
                        "{:<width$}  {:<gwidth$}  {:>6}  {:>6}  {:>7}  {:>6}  {:>6.1}s  {}",
                        plan.suite.name,
                        plan.suite.group,
                        c.passed,
                        c.failed,
                        c.skipped,
                        c.errors,
                        result.duration.as_secs_f64(),
                        result.outcome
                    )?;
                }
                let overall = Outcome::overall(results.iter().map(|r| r.outcome));
                writeln!(
                    out,
                    "\nxtask: {} in {:.1}s (exit code {}); JUnit: {}; logs: {}",
                    overall,
                    duration.as_secs_f64(),
                    overall.exit_code(),
                    self.layout.display(&self.layout.junit_report()),
                    self.layout.display(&self.layout.logs_dir()),
                )?;
            }
        }
        out.flush()?;
        Ok(())
    }
}
