//! Running suite plans: before them the setup (`setup`) checks prerequisites and starts
//! services; the dispatcher hands suites to at most `jobs` workers (`pool`), each worker
//! runs one suite (`executor`), whose steps run through the step layer (`crate::step`) on
//! top of the process layer (`crate::process`).
//! Everything that happens becomes an event (`events`) that the [`Emitter`] hands to every
//! sink, on the session's thread; the runner itself never writes a report. While suites
//! run, the dispatcher's loop wakes every [`TICK`] to emit a `Tick` and to look for an
//! interrupt, a service that died, or a suite that runs long.

pub mod executor;
pub mod setup;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use crate::events::{Event, Sink};
use crate::model::SuiteResult;
use crate::plan::SuitePlan;
use crate::pool::Heard;
use crate::process;

pub use executor::RunContext;

/// How often the runner emits [`Event::Tick`] while suites run: a live status line
/// redraws at this cadence.
pub const TICK: Duration = Duration::from_millis(200);
/// A suite running this long (and again at every multiple) is reported slow.
pub const SLOW_EVERY: Duration = Duration::from_secs(60);

/// Hands every event to every sink, in the order they were attached, and keeps what went
/// wrong: a sink that fails or panics is the xtask's failure, but it goes on receiving
/// events and the others write their reports.
pub struct Emitter<'s> {
    sinks: Vec<&'s mut dyn Sink>,
    errors: Vec<anyhow::Error>,
}

impl<'s> Emitter<'s> {
    pub fn new(sinks: Vec<&'s mut dyn Sink>) -> Self {
        Emitter {
            sinks,
            errors: Vec::new(),
        }
    }

    /// Hands `event` to every sink, stamped with the wall clock now.
    pub fn emit(&mut self, event: &Event<'_>) {
        let at = crate::model::now();
        for sink in self.sinks.iter_mut() {
            let handled = std::panic::catch_unwind(AssertUnwindSafe(|| sink.handle_at(at, event)));
            match handled {
                Ok(Ok(())) => {}
                Ok(Err(err)) => self.errors.push(err),
                Err(panic) => self.errors.push(anyhow::anyhow!(
                    "internal error: a report writer panicked ({})",
                    panic_message(&*panic)
                )),
            }
        }
    }

    /// The sinks' failures so far.
    pub fn into_errors(self) -> Vec<anyhow::Error> {
        self.errors
    }
}

enum Message {
    /// The suite `.0` started on worker `.1`.
    Started(usize, usize),
    Progress(usize, executor::Progress),
    Finished(usize, Box<SuiteResult>),
    /// Running the suite panicked: a bug of the xtask, not of the suite.
    Panicked(usize, String),
}

/// What a panic said.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// What the runner watches between messages: the suites running (since when, how many
/// slow periods reported), the services that died, whether the run was interrupted.
#[derive(Default)]
struct Lookout {
    running: BTreeMap<usize, (Instant, u32)>,
    died: BTreeSet<String>,
    interrupted: bool,
}

impl Lookout {
    /// The suites that just passed another multiple of `every`, with how long they ran.
    fn slow(&mut self, now: Instant, every: Duration) -> Vec<(usize, Duration)> {
        let mut slow = Vec::new();
        for (index, (since, reported)) in &mut self.running {
            let elapsed = now.saturating_duration_since(*since);
            let due = every.saturating_mul(*reported + 1);
            if elapsed >= due {
                *reported += 1;
                slow.push((*index, due));
            }
        }
        slow
    }
}

/// Runs `plans` with at most `jobs` at a time, starting them in the order of `order` (indices
/// into `plans`), and emits every event of the run (`RunStarted` to `RunFinished`), with a
/// `Tick` every [`TICK`] while suites run.
/// Returns the results in the order of `plans`, and the suites whose running panicked
/// (they end `crashed`) as the xtask's failures; the run goes on either way. After an
/// interrupt running suites are stopped and the rest end interrupted without starting.
pub fn run(
    plans: &[SuitePlan],
    order: &[usize],
    jobs: usize,
    cx: &RunContext<'_>,
    emitter: &mut Emitter<'_>,
) -> (Vec<SuiteResult>, Vec<anyhow::Error>) {
    let started = Instant::now();
    let jobs = jobs.clamp(1, plans.len().max(1));
    emitter.emit(&Event::RunStarted { plans, jobs });

    let mut results: Vec<Option<SuiteResult>> = vec![None; plans.len()];
    let mut suite_panics = Vec::new();
    let mut lookout = Lookout::default();
    crate::pool::run_ticking(
        order,
        jobs,
        Some(TICK),
        |worker, _, &index, send| {
            let plan = &plans[index];
            if process::interrupted() {
                send(Message::Finished(
                    index,
                    Box::new(executor::not_started(plan)),
                ));
                return;
            }
            send(Message::Started(index, worker));
            let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
                executor::run_suite(plan, cx, &|progress| {
                    send(Message::Progress(index, progress))
                })
            }));
            match ran {
                Ok(result) => send(Message::Finished(index, Box::new(result))),
                Err(panic) => {
                    let why = panic_message(&*panic);
                    send(Message::Panicked(index, why.clone()));
                    send(Message::Finished(
                        index,
                        Box::new(executor::panicked(plan, &why)),
                    ));
                }
            }
        },
        |heard| {
            let message = match heard {
                Heard::Message(message) => message,
                Heard::Tick => {
                    look_around(plans, cx, &mut lookout, emitter);
                    emitter.emit(&Event::Tick {
                        elapsed: started.elapsed(),
                    });
                    return;
                }
            };
            match message {
                Message::Started(index, worker) => {
                    lookout.running.insert(index, (Instant::now(), 0));
                    emitter.emit(&Event::SuiteStarted {
                        index,
                        plan: &plans[index],
                        worker,
                    })
                }
                Message::Progress(index, progress) => {
                    let plan = &plans[index];
                    emitter.emit(&match progress {
                        executor::Progress::EnvironmentBuilding => {
                            Event::EnvironmentBuilding { index, plan }
                        }
                        executor::Progress::EnvironmentReady { duration, built } => {
                            Event::EnvironmentReady {
                                index,
                                plan,
                                duration,
                                built,
                            }
                        }
                        executor::Progress::RetryStarted {
                            attempt,
                            tests,
                            never_ran,
                        } => Event::RetryStarted {
                            index,
                            plan,
                            attempt,
                            retries: plan.retries,
                            tests,
                            never_ran,
                        },
                    })
                }
                Message::Panicked(index, why) => suite_panics.push(anyhow::anyhow!(
                    "internal error: the xtask panicked while running suite `{}` ({why}); please report it",
                    plans[index].suite.name
                )),
                Message::Finished(index, result) => {
                    // What happened before it ended is said before it.
                    look_around(plans, cx, &mut lookout, emitter);
                    lookout.running.remove(&index);
                    emitter.emit(&Event::SuiteFinished {
                        index,
                        plan: &plans[index],
                        result: &result,
                    });
                    results[index] = Some(*result);
                }
            }
        },
    );

    let results: Vec<SuiteResult> = results
        .into_iter()
        .map(|r| r.expect("every suite reports once"))
        .collect();
    emitter.emit(&Event::RunFinished {
        plans,
        results: &results,
        duration: started.elapsed(),
    });
    (results, suite_panics)
}

/// The events of what changed around the suites since the last look: an interrupt, a
/// service that died, a suite that passed another slow period.
fn look_around(
    plans: &[SuitePlan],
    cx: &RunContext<'_>,
    lookout: &mut Lookout,
    emitter: &mut Emitter<'_>,
) {
    if !lookout.interrupted && process::interrupted() {
        lookout.interrupted = true;
        emitter.emit(&Event::Interrupted);
    }
    for died in cx.services.all_died() {
        if lookout.died.insert(died.name.clone()) {
            emitter.emit(&Event::ServiceDied { died: &died });
        }
    }
    for (index, elapsed) in lookout.slow(Instant::now(), SLOW_EVERY) {
        emitter.emit(&Event::SuiteSlow {
            index,
            plan: &plans[index],
            elapsed,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suite_is_slow_once_per_period_it_passes() {
        let mut lookout = Lookout::default();
        let start = Instant::now();
        let every = Duration::from_secs(60);
        lookout.running.insert(3, (start, 0));
        assert!(lookout
            .slow(start + Duration::from_secs(59), every)
            .is_empty());
        assert_eq!(
            lookout.slow(start + Duration::from_secs(61), every),
            [(3, every)]
        );
        assert!(lookout
            .slow(start + Duration::from_secs(62), every)
            .is_empty());
        assert_eq!(
            lookout.slow(start + Duration::from_secs(120), every),
            [(3, every * 2)]
        );
    }
}
