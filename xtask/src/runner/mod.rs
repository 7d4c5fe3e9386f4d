//! Running suite plans: the dispatcher hands suites to at most `jobs` workers (`pool`), each
//! worker runs one suite (`executor`), whose steps run through the process layer (`step`).
//! Everything that happens becomes an event (`events`) that every sink turns into one kind
//! of report; the runner itself never writes a report.

pub mod executor;
pub mod step;

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
}

/// Runs `plans` with at most `jobs` at a time, starting them in the order of `order` (indices
/// into `plans`), and feeds every event to every sink.
/// Returns the results in the order of `plans`, and the errors of sinks that failed (each
/// sink goes on receiving events; the run goes on). After an interrupt running suites are
/// stopped and the rest end interrupted without starting.
pub fn run(
    plans: &[SuitePlan],
    order: &[usize],
    jobs: usize,
    cx: &RunContext<'_>,
    sinks: &mut [&mut dyn Sink],
) -> (Vec<SuiteResult>, Vec<anyhow::Error>) {
    let started = Instant::now();
    let mut sink_errors = Vec::new();
    let mut emit = |event: Event<'_>| {
        for sink in sinks.iter_mut() {
            if let Err(err) = sink.handle(&event) {
                sink_errors.push(err);
            }
        }
    };
    let jobs = jobs.clamp(1, plans.len().max(1));
    emit(Event::RunStarted { plans, jobs });

    let mut results: Vec<Option<SuiteResult>> = vec![None; plans.len()];
    crate::pool::run(
        order,
        jobs,
        |_, &index, send| {
            let plan = &plans[index];
            if process::interrupted() {
                send(Message::Finished(index, Box::new(executor::not_started(plan))));
                return;
            }
            send(Message::Started(index));
            let result = executor::run_suite(plan, cx, |ready| {
                send(Message::EnvironmentReady(index, ready))
            });
            send(Message::Finished(index, Box::new(result)));
        },
        |message| match message {
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
            Message::Finished(index, result) => {
                emit(Event::SuiteFinished {
                    index,
                    plan: &plans[index],
                    result: &result,
                });
                results[index] = Some(*result);
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
    (results, sink_errors)
}
