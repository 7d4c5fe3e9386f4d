//! Running suite plans: the dispatcher hands suites to at most `jobs` workers (`pool`), each
//! worker runs one suite (`executor`), whose steps run through the step layer (`crate::step`)
//! on top of the process layer (`crate::process`).
//! Everything that happens becomes an event (`events`) that every sink turns into one kind
//! of report; the runner itself never writes a report.

pub mod executor;

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use crate::events::{Event, Sink};
use crate::model::SuiteResult;
use crate::plan::SuitePlan;
use crate::process;

pub use executor::RunContext;

enum Message {
    Started(usize),
    EnvironmentReady(usize, executor::EnvReady),
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

/// Runs `plans` with at most `jobs` at a time, starting them in the order of `order` (indices
/// into `plans`), and feeds every event to every sink.
/// Returns the results in the order of `plans`, and the xtask's own failures: sinks that
/// failed or panicked (each goes on receiving events) and suites whose running panicked
/// (they end `crashed`); the run goes on either way. After an interrupt running suites are
/// stopped and the rest end interrupted without starting.
pub fn run(
    plans: &[SuitePlan],
    order: &[usize],
    jobs: usize,
    cx: &RunContext<'_>,
    sinks: &mut [&mut dyn Sink],
) -> (Vec<SuiteResult>, Vec<anyhow::Error>) {
    let started = Instant::now();
    let mut errors = Vec::new();
    let mut emit = |event: Event<'_>| {
        for sink in sinks.iter_mut() {
            // A sink that panics is a bug of the xtask: the run goes on, the other sinks
            // write their reports, and the session exits INTERNAL_ERROR.
            let handled = std::panic::catch_unwind(AssertUnwindSafe(|| sink.handle(&event)));
            match handled {
                Ok(Ok(())) => {}
                Ok(Err(err)) => errors.push(err),
                Err(panic) => errors.push(anyhow::anyhow!(
                    "internal error: a report writer panicked ({})",
                    panic_message(&*panic)
                )),
            }
        }
    };
    let jobs = jobs.clamp(1, plans.len().max(1));
    emit(Event::RunStarted { plans, jobs });

    let mut results: Vec<Option<SuiteResult>> = vec![None; plans.len()];
    let mut suite_panics = Vec::new();
    crate::pool::run(
        order,
        jobs,
        |_, &index, send| {
            let plan = &plans[index];
            if process::interrupted() {
                send(Message::Finished(
                    index,
                    Box::new(executor::not_started(plan)),
                ));
                return;
            }
            send(Message::Started(index));
            let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
                executor::run_suite(plan, cx, |ready| {
                    send(Message::EnvironmentReady(index, ready))
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
        |message| {
            match message {
            Message::Started(index) => emit(Event::SuiteStarted {
                index,
                plan: &plans[index],
            }),
            Message::EnvironmentReady(index, ready) => emit(Event::EnvironmentReady {
                index,
                plan: &plans[index],
                duration: ready.duration,
                built: ready.built,
            }),
            Message::Panicked(index, why) => suite_panics.push(anyhow::anyhow!(
                "internal error: the xtask panicked while running suite `{}` ({why}); please report it",
                plans[index].suite.name
            )),
            Message::Finished(index, result) => {
                emit(Event::SuiteFinished {
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
    emit(Event::RunFinished {
        plans,
        results: &results,
        duration: started.elapsed(),
    });
    suite_panics.extend(errors);
    (results, suite_panics)
}
