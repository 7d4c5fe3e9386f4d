//! A run record as a Chrome trace (the Trace Event Format that Perfetto and chrome://tracing
//! read): a pure function from [`RunRecord`] to [`Trace`], serialized with serde_json.
//!
//! One process (the run): a lane `run` with the invocation's span; a lane per worker of
//! the pool, holding the suites it ran one after another and, inside each suite, its steps
//! (environment, pytest, retries) and, inside the step that ran it, each attempt of each
//! test at its real start (the xtask's pytest plugin notes it); a lane per service (its
//! start until ready, then its life until stopped). Complete events (`ph: "X"`) with
//! `ts`/`dur` in microseconds from the run's start; metadata events (`ph: "M"`) name the
//! process and each lane. A span never sticks out of the span that holds it on its lane (the
//! viewers nest spans by time): a time rounded, or read from pytest's clock, past its
//! parent's edge or into the next sibling's start is cut there.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::run_record::{RunRecord, ServiceRecord, SuiteRecord, TestRecord};

/// The whole trace file: `{"traceEvents": [...], ...}`.
#[derive(Debug, Serialize)]
pub struct Trace {
    #[serde(rename = "traceEvents")]
    pub trace_events: Vec<TraceEvent>,
    /// How the viewer shows times.
    #[serde(rename = "displayTimeUnit")]
    pub display_time_unit: &'static str,
    /// Free-form facts about the run, shown by the viewer as the trace's metadata.
    #[serde(rename = "otherData")]
    pub other_data: BTreeMap<&'static str, String>,
}

/// One event of the trace.
#[derive(Debug, Serialize)]
#[serde(tag = "ph")]
pub enum TraceEvent {
    /// A span: something that started at `ts` and took `dur` microseconds.
    #[serde(rename = "X")]
    Complete {
        name: String,
        /// `run`, `suite`, `step`, `test`, `service`.
        cat: &'static str,
        ts: u64,
        dur: u64,
        pid: u32,
        tid: u32,
        args: Box<Args>,
    },
    /// Names a process or a lane, or orders the lanes (`process_name`, `thread_name`,
    /// `thread_sort_index`).
    #[serde(rename = "M")]
    Metadata {
        name: &'static str,
        pid: u32,
        tid: u32,
        args: MetadataArgs,
    },
}

/// What a metadata event says.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum MetadataArgs {
    Name { name: String },
    SortIndex { sort_index: u32 },
}

/// What the viewer shows for a selected span; only what applies is written.
#[derive(Debug, Default, Serialize)]
pub struct Args {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// A test's attempt, 1 for its first run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A suite's tests that pytest never started (collection errors, the xtask's stand-in
    /// for tests that did not run): they have no time to be drawn at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_started: Vec<String>,
}

/// The one process of the trace.
const PID: u32 = 1;
/// The lane of the run's own span; workers are `WORKER_TID + worker`.
const RUN_TID: u32 = 0;
const WORKER_TID: u32 = 1;

/// A span's place in time, in microseconds from the run's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    start: u64,
    end: u64,
}

impl Window {
    fn at(start_secs: f64, duration_secs: f64) -> Window {
        let start = micros(start_secs);
        Window {
            start,
            end: start + micros(duration_secs),
        }
    }

    /// This window moved and cut to lie within `outer`.
    fn within(self, outer: Window) -> Window {
        let start = self.start.clamp(outer.start, outer.end);
        Window {
            start,
            end: self.end.clamp(start, outer.end),
        }
    }
}

fn micros(secs: f64) -> u64 {
    if secs.is_finite() && secs > 0.0 {
        (secs * 1e6).round() as u64
    } else {
        0
    }
}

/// The trace of `record`.
pub fn trace(record: &RunRecord) -> Trace {
    let mut lanes = Lanes::default();
    let mut events = Vec::new();
    for suite in &record.suites {
        let window = Window::at(suite.started_offset_secs, suite.duration_secs);
        let tid = match suite.worker {
            Some(worker) => lanes.worker(worker),
            None => lanes.named("not started".into()),
        };
        suite_events(suite, window, tid, &mut events);
    }
    for service in &record.services {
        let tid = lanes.named(format!("service {}", service.name));
        service_events(service, tid, &mut events);
    }
    let run_end = events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Complete { ts, dur, .. } => Some(ts + dur),
            TraceEvent::Metadata { .. } => None,
        })
        .chain(record.duration_secs.map(micros))
        .max()
        .unwrap_or(0);
    let mut trace_events = vec![
        TraceEvent::Metadata {
            name: "process_name",
            pid: PID,
            tid: RUN_TID,
            args: MetadataArgs::Name {
                name: format!("cargo xtask run {}", record.run_id),
            },
        },
        thread_name(RUN_TID, "run".into()),
        TraceEvent::Complete {
            name: format!("cargo xtask {}", record.invocation.join(" ")),
            cat: "run",
            ts: 0,
            dur: run_end,
            pid: PID,
            tid: RUN_TID,
            args: Box::new(Args {
                outcome: Some(record.outcome.clone().unwrap_or_else(|| "running".into())),
                detail: record.error.clone(),
                ..Args::default()
            }),
        },
    ];
    // Every worker of the pool gets its lane, also one that ran nothing.
    for worker in 0..record.jobs.unwrap_or(0) {
        lanes.worker(worker);
    }
    for (tid, name, sort) in lanes.all() {
        trace_events.push(thread_name(tid, name));
        trace_events.push(TraceEvent::Metadata {
            name: "thread_sort_index",
            pid: PID,
            tid,
            args: MetadataArgs::SortIndex { sort_index: sort },
        });
    }
    trace_events.extend(events);
    let mut other_data = BTreeMap::new();
    other_data.insert("run_id", record.run_id.clone());
    other_data.insert("started_at", record.started_at.clone());
    other_data.insert("xtask_version", record.xtask_version.clone());
    if let Some(git) = &record.git {
        other_data.insert("commit", git.commit.clone());
    }
    Trace {
        trace_events,
        display_time_unit: "ms",
        other_data,
    }
}

fn thread_name(tid: u32, name: String) -> TraceEvent {
    TraceEvent::Metadata {
        name: "thread_name",
        pid: PID,
        tid,
        args: MetadataArgs::Name { name },
    }
}

/// The lanes (threads) of the trace: `run`, then the workers in order, then the others
/// (services, suites that never reached a worker) as they come.
#[derive(Default)]
struct Lanes {
    workers: BTreeMap<usize, u32>,
    named: Vec<String>,
}

/// Lanes other than the workers' start here (a pool has far fewer workers).
const NAMED_TID: u32 = 100_000;

impl Lanes {
    fn worker(&mut self, worker: usize) -> u32 {
        let tid = WORKER_TID
            + u32::try_from(worker)
                .unwrap_or(NAMED_TID - 2)
                .min(NAMED_TID - 2);
        *self.workers.entry(worker).or_insert(tid)
    }

    fn named(&mut self, name: String) -> u32 {
        let index = match self.named.iter().position(|n| *n == name) {
            Some(index) => index,
            None => {
                self.named.push(name);
                self.named.len() - 1
            }
        };
        NAMED_TID + index as u32
    }

    /// Each lane's tid, name and place in the viewer's order.
    fn all(&self) -> Vec<(u32, String, u32)> {
        let workers = self
            .workers
            .iter()
            .map(|(worker, tid)| (*tid, format!("worker {worker}"), *tid));
        let named = self
            .named
            .iter()
            .enumerate()
            .map(|(i, name)| (NAMED_TID + i as u32, name.clone(), NAMED_TID + i as u32));
        workers.chain(named).collect()
    }
}

/// Children's windows cut to lie one after another inside `parent`, in the order they
/// started: a span that (by rounding, or by two clocks) ends after the next one started
/// ends where that one starts.
fn lay_out(parent: Window, mut children: Vec<(Window, usize)>) -> Vec<(Window, usize)> {
    children.sort_by_key(|(w, i)| (w.start, *i));
    let mut floor = parent.start;
    for (window, _) in children.iter_mut() {
        *window = window.within(Window {
            start: floor,
            end: parent.end,
        });
        floor = window.start;
    }
    for i in 1..children.len() {
        let next = children[i].0.start;
        let prev = &mut children[i - 1].0;
        prev.end = prev.end.min(next);
    }
    children
}

/// The suite's span; its steps inside it; each test attempt inside the step that ran it
/// (the first in `pytest`, the k-th retry in the k-th `retry`), else inside the suite.
fn suite_events(suite: &SuiteRecord, window: Window, tid: u32, events: &mut Vec<TraceEvent>) {
    let span = |name: String, cat: &'static str, window: Window, args: Args| TraceEvent::Complete {
        name,
        cat,
        ts: window.start,
        dur: window.end - window.start,
        pid: PID,
        tid,
        args: Box::new(args),
    };
    let not_started: Vec<String> = suite
        .tests
        .iter()
        .filter(|t| t.attempts.iter().all(|a| a.started_offset_secs.is_none()))
        .map(TestRecord::label)
        .collect();
    events.push(span(
        suite.name.clone(),
        "suite",
        window,
        Args {
            suite: Some(suite.name.clone()),
            group: Some(suite.group.clone()),
            outcome: Some(suite.outcome.clone()),
            detail: suite.detail.clone(),
            not_started,
            ..Args::default()
        },
    ));
    let steps = lay_out(
        window,
        suite
            .commands
            .iter()
            .enumerate()
            .map(|(i, c)| (Window::at(c.started_offset_secs, c.duration_secs), i))
            .collect(),
    );
    let mut step_windows = vec![window; suite.commands.len()];
    for (step_window, i) in &steps {
        step_windows[*i] = *step_window;
        let command = &suite.commands[*i];
        events.push(span(
            format!("{} {}", suite.name, command.step),
            "step",
            *step_window,
            Args {
                suite: Some(suite.name.clone()),
                command: Some(command.argv.join(" ")),
                exit_code: command.exit_code,
                skipped: command.skipped.clone(),
                ..Args::default()
            },
        ));
    }
    // The steps that run tests, in order: attempt k ran in the k-th.
    let test_steps: Vec<usize> = suite
        .commands
        .iter()
        .enumerate()
        .filter(|(_, c)| c.step == "pytest" || c.step == "retry")
        .map(|(i, _)| i)
        .collect();
    let mut by_parent: BTreeMap<Option<usize>, Vec<(Window, usize)>> = BTreeMap::new();
    let mut attempts = Vec::new();
    for test in &suite.tests {
        for (k, attempt) in test.attempts.iter().enumerate() {
            let Some(start) = attempt.started_offset_secs else {
                continue;
            };
            let window = Window::at(start, attempt.duration_secs.unwrap_or(0.0));
            by_parent
                .entry(test_steps.get(k).copied())
                .or_default()
                .push((window, attempts.len()));
            attempts.push((test, k, attempt));
        }
    }
    let mut laid = Vec::new();
    for (parent, children) in by_parent {
        let parent = parent.map_or(window, |i| step_windows[i]);
        laid.extend(lay_out(parent, children));
    }
    laid.sort_by_key(|(w, i)| (w.start, *i));
    for (attempt_window, i) in laid {
        let (test, k, attempt) = attempts[i];
        let name = if k == 0 {
            test.label()
        } else {
            format!("{} (retry {k})", test.label())
        };
        events.push(span(
            name,
            "test",
            attempt_window,
            Args {
                suite: Some(suite.name.clone()),
                node_id: test.node_id.clone(),
                file: test.file.clone(),
                line: test.line,
                outcome: Some(attempt.outcome.name().into()),
                attempt: Some(k + 1),
                message: attempt.message.clone(),
                ..Args::default()
            },
        ));
    }
}

/// A service's start (until it was ready, or failed to be) and its life after (until the
/// xtask stopped it).
fn service_events(service: &ServiceRecord, tid: u32, events: &mut Vec<TraceEvent>) {
    let starting = Window::at(service.started_offset_secs, service.duration_secs);
    events.push(TraceEvent::Complete {
        name: format!("{} start", service.name),
        cat: "service",
        ts: starting.start,
        dur: starting.end - starting.start,
        pid: PID,
        tid,
        args: Box::new(Args {
            outcome: Some(if service.ready { "ready" } else { "not ready" }.into()),
            ..Args::default()
        }),
    });
    if let Some(stopped) = service.stopped_offset_secs {
        let up = Window {
            start: starting.end,
            end: micros(stopped).max(starting.end),
        };
        events.push(TraceEvent::Complete {
            name: format!("{} up", service.name),
            cat: "service",
            ts: up.start,
            dur: up.end - up.start,
            pid: PID,
            tid,
            args: Box::new(Args {
                outcome: service.stopped.clone(),
                ..Args::default()
            }),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn attempt(outcome: &str, start: Option<f64>, duration: f64) -> Value {
        json!({"outcome": outcome, "started_offset_secs": start, "duration_secs": duration,
               "message": null, "kind": null, "details": null})
    }

    fn test(node_id: Option<&str>, attempts: Vec<Value>) -> Value {
        json!({"node_id": node_id, "classname": "tests.test_x", "name": "t", "file": null,
               "line": null, "outcome": "failed", "duration_secs": null, "synthetic": false,
               "attempts": attempts})
    }

    fn command(step: &str, start: f64, duration: f64) -> Value {
        json!({"step": step, "argv": [step], "exit_code": 0, "skipped": null, "signal": null,
               "started_offset_secs": start, "duration_secs": duration})
    }

    fn suite(name: &str, worker: Option<usize>, start: f64, duration: f64) -> Value {
        json!({"name": name, "group": "g", "dir": ".", "outcome": "failed", "detail": null,
               "counts": {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0,
                          "deselected": 0, "flaky": 0},
               "started_at": "2026-12-06T10:00:00+00:00", "started_offset_secs": start,
               "duration_secs": duration, "worker": worker, "timeout_secs": 60,
               "environment": {"path": "e", "key": "k"}, "cwd": ".", "env": {},
               "env_removed": [], "commands": [], "log": "l", "junit": "j", "tests": []})
    }

    /// A record of two workers, a suite that never reached one, a service, a retry, a
    /// test pytest never started, and test times that overlap by a rounding error.
    fn record() -> RunRecord {
        let mut a = suite("a", Some(0), 1.0, 5.0);
        a["commands"] = json!([
            command("environment", 1.0, 1.0),
            command("pytest", 2.0, 2.0),
            command("retry", 4.0, 1.0)
        ]);
        a["tests"] = json!([
            test(
                Some("tests/test_x.py::one"),
                vec![
                    attempt("failed", Some(2.1), 0.5),
                    attempt("passed", Some(4.1), 0.2)
                ]
            ),
            // Ends a microsecond after the next one starts, and after its step.
            test(
                Some("tests/test_x.py::two"),
                vec![attempt("failed", Some(2.6), 0.4000015)]
            ),
            test(
                Some("tests/test_x.py::three"),
                vec![attempt("passed", Some(3.0), 1.5)]
            ),
            test(None, vec![attempt("error", None, 0.0)]),
        ]);
        let b = suite("b", Some(1), 1.5, 2.0);
        let c = suite("c", None, 0.0, 0.0);
        serde_json::from_value(json!({
            "schema_version": crate::report::run_record::SCHEMA_VERSION,
            "xtask_version": "0", "invocation": ["test"], "run_id": "r",
            "started_at": "2026-12-06T10:00:00+00:00", "root": "/r", "status": "finished",
            "pid": 1, "outcome": "failed", "duration_secs": 6.0, "jobs": 3, "rerun_of": null,
            "git": null, "uv": null, "junit": null, "suites": [a, b, c],
            "services": [{"name": "api", "started_offset_secs": 0.1, "duration_secs": 0.5,
                          "ready": true, "stopped_offset_secs": 6.5, "stopped": "SIGTERM"}],
            "health": null, "exit_code": 100, "exit_code_name": "TESTS_FAILED", "error": null,
            "peak_rss_bytes": null
        }))
        .expect("a record of the current schema")
    }

    fn spans(trace: &Trace) -> Vec<(&str, &str, u32, u64, u64)> {
        trace
            .trace_events
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Complete {
                    name,
                    cat,
                    ts,
                    dur,
                    tid,
                    ..
                } => Some((name.as_str(), *cat, *tid, *ts, ts + dur)),
                TraceEvent::Metadata { .. } => None,
            })
            .collect()
    }

    #[test]
    fn every_worker_service_and_unstarted_suite_has_its_named_lane() {
        let trace = trace(&record());
        let lanes: Vec<(u32, String)> = trace
            .trace_events
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Metadata {
                    name: "thread_name",
                    tid,
                    args: MetadataArgs::Name { name },
                    ..
                } => Some((*tid, name.clone())),
                _ => None,
            })
            .collect();
        let names: Vec<&str> = lanes.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "run",
                "worker 0",
                "worker 1",
                "worker 2",
                "not started",
                "service api"
            ]
        );
        let spans = spans(&trace);
        let service: Vec<_> = spans.iter().filter(|s| s.1 == "service").collect();
        assert_eq!(
            service.iter().map(|s| (s.0, s.3, s.4)).collect::<Vec<_>>(),
            [
                ("api start", 100_000, 600_000),
                ("api up", 600_000, 6_500_000)
            ]
        );
        let run = spans.iter().find(|s| s.1 == "run").unwrap();
        assert_eq!(
            (run.3, run.4),
            (0, 6_500_000),
            "the run holds the service's stop"
        );
    }

    #[test]
    fn attempts_lie_in_the_step_that_ran_them_and_never_overlap() {
        let trace = trace(&record());
        let spans = spans(&trace);
        let tests: Vec<_> = spans.iter().filter(|s| s.1 == "test").collect();
        assert_eq!(
            tests.iter().map(|s| (s.0, s.3, s.4)).collect::<Vec<_>>(),
            [
                ("tests/test_x.py::one", 2_100_000, 2_600_000),
                // Cut where the next one starts, and at its step's end.
                ("tests/test_x.py::two", 2_600_000, 3_000_000),
                ("tests/test_x.py::three", 3_000_000, 4_000_000),
                ("tests/test_x.py::one (retry 1)", 4_100_000, 4_300_000),
            ]
        );
        let suite_a = trace
            .trace_events
            .iter()
            .find_map(|e| match e {
                TraceEvent::Complete { name, args, .. } if name == "a" => Some(args),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            suite_a.not_started,
            ["tests.test_x::t"],
            "the test with no start"
        );
    }

    #[test]
    fn siblings_are_laid_one_after_another_inside_their_parent() {
        let w = |start, end| Window { start, end };
        let laid = lay_out(
            w(10, 100),
            vec![(w(50, 120), 1), (w(5, 30), 0), (w(29, 40), 2)],
        );
        assert_eq!(
            laid,
            [(w(10, 29), 0), (w(29, 40), 2), (w(50, 100), 1)],
            "each starts where it started (or at its parent's start) and ends by the next"
        );
    }

    #[test]
    fn a_window_is_clamped_into_its_parent() {
        let parent = Window { start: 10, end: 20 };
        assert_eq!(
            Window { start: 5, end: 25 }.within(parent),
            Window { start: 10, end: 20 }
        );
        assert_eq!(
            Window { start: 30, end: 40 }.within(parent),
            Window { start: 20, end: 20 }
        );
    }
}
