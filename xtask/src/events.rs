//! The events a run emits, and the sink trait every report implements.
//!
//! Data flows one way: the runner emits events about the model's types; each sink
//! (`report::terminal`, `report::junit`, `report::record`, and in GitHub Actions
//! `report::github`) turns them into one kind of report, in the order the session attaches
//! them. Sinks never talk back to the runner.

use std::time::Duration;

use crate::model::SuiteResult;
use crate::plan::SuitePlan;

pub enum Event<'a> {
    RunStarted {
        plans: &'a [SuitePlan],
        jobs: usize,
    },
    SuiteStarted {
        index: usize,
        plan: &'a SuitePlan,
    },
    EnvironmentReady {
        index: usize,
        plan: &'a SuitePlan,
        duration: Duration,
        /// Whether it was built (or rebuilt) by this run, rather than found up to date.
        built: bool,
    },
    SuiteFinished {
        index: usize,
        plan: &'a SuitePlan,
        result: &'a SuiteResult,
    },
    /// `results` are in the order of `plans`.
    RunFinished {
        plans: &'a [SuitePlan],
        results: &'a [SuiteResult],
        duration: Duration,
    },
}

pub trait Sink {
    fn handle(&mut self, event: &Event<'_>) -> anyhow::Result<()>;
}
