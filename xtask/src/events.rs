//! The event vocabulary: everything a run does that a report shows, and the sink trait
//! every report implements.
//!
//! Data flows one way: the runner (and, before the suites, its setup of prerequisites and
//! services) emits events about the model's types; each sink (`report::terminal`,
//! `report::junit`, `report::record`, and in GitHub Actions `report::github`) turns them
//! into one kind of report, in the order the session attaches them. A sink learns about
//! the run only from events (and the files they name, such as a log), and never talks back
//! to the runner. Every event is emitted on the session's thread, one at a time, as it
//! happens, stamped with the wall-clock time (`Sink::handle_at`).
//!
//! In the order a run emits them: the setup (`PrerequisiteChecked`, `ServiceStarting`,
//! `ServiceReady` or `ServiceFailed`), then `RunStarted`, then per suite `SuiteStarted`,
//! `EnvironmentBuilding`, `EnvironmentReady`, `RetryStarted`, `SuiteSlow`, `SuiteFinished`,
//! interleaved across suites with `Tick`, `ServiceDied` and `Interrupted`; then
//! `RunFinished`, and last `ServiceStopped` for each service still running.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};

use crate::model::SuiteResult;
use crate::plan::SuitePlan;
use crate::services::{Died, Health};

pub enum Event<'a> {
    /// A prerequisite of a suite that can run was checked (all are checked at once, before
    /// any service starts); emitted in the manifest's order.
    PrerequisiteChecked { health: &'a Health },
    /// A service a suite needs is being started (its environment built first, when it runs
    /// in a suite's).
    ServiceStarting { name: &'a str },
    /// A service answered its readiness check; `health.latency` is how long it took.
    ServiceReady { health: &'a Health },
    /// A service could not be used: it could not be launched, exited at start, never
    /// became ready, or something else answered for it. It is stopped; the suites that
    /// need it will not run. `detail` says why, `log` is the service's log.
    ServiceFailed {
        health: &'a Health,
        detail: &'a str,
        log: &'a Path,
    },
    /// The suites start: `plans` in the manifest's order, at most `jobs` at a time.
    RunStarted { plans: &'a [SuitePlan], jobs: usize },
    /// A suite was handed to a worker (its environment comes first): `worker` is the lane
    /// of the pool that runs it, 0 to `jobs - 1`.
    SuiteStarted {
        index: usize,
        plan: &'a SuitePlan,
        worker: usize,
    },
    /// The suite's environment is out of date and is being built (or rebuilt) now.
    EnvironmentBuilding { index: usize, plan: &'a SuitePlan },
    /// The suite's environment is ready; its tests start.
    EnvironmentReady {
        index: usize,
        plan: &'a SuitePlan,
        duration: Duration,
        /// Whether it was built (or rebuilt) by this run, rather than found up to date.
        built: bool,
    },
    /// Some tests of the suite failed (or never ran) and run again: retry `attempt` of
    /// `retries`, with `tests` node ids, `never_ran` of which never ran before.
    RetryStarted {
        index: usize,
        plan: &'a SuitePlan,
        attempt: u32,
        retries: u32,
        tests: usize,
        never_ran: usize,
    },
    /// The suite has been running for `elapsed`, a multiple of the runner's slow period:
    /// emitted once per period while it runs.
    SuiteSlow {
        index: usize,
        plan: &'a SuitePlan,
        elapsed: Duration,
    },
    /// Emitted at a fixed cadence while suites run (and after every other event of the
    /// run, at most at that cadence): what a live display redraws on. `elapsed` since
    /// `RunStarted`.
    Tick { elapsed: Duration },
    /// A service that was ready ended by itself while the run still needed it; suites that
    /// need it will end `service-error`. Emitted once per service.
    ServiceDied { died: &'a Died },
    /// SIGINT, SIGTERM or SIGHUP arrived: running suites are being stopped and the rest
    /// will not start. Emitted once.
    Interrupted,
    /// The suite ended, whatever the way.
    SuiteFinished {
        index: usize,
        plan: &'a SuitePlan,
        result: &'a SuiteResult,
    },
    /// Every suite ended. `results` are in the order of `plans`.
    RunFinished {
        plans: &'a [SuitePlan],
        results: &'a [SuiteResult],
        duration: Duration,
    },
    /// A service the run started was stopped by the xtask after the run (`how` it ended).
    ServiceStopped { name: &'a str, how: &'a str },
}

pub trait Sink {
    fn handle(&mut self, event: &Event<'_>) -> anyhow::Result<()>;

    /// `event` with the wall-clock time it was emitted (every event is emitted as it
    /// happens, on the session's thread): what the emitter calls. Sinks that place events
    /// in time (the run record) read `at`; the others need only [`Sink::handle`].
    fn handle_at(&mut self, at: DateTime<FixedOffset>, event: &Event<'_>) -> anyhow::Result<()> {
        let _ = at;
        self.handle(event)
    }
}
