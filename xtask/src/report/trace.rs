//! A run record as a Chrome trace (the Trace Event Format that Perfetto and chrome://tracing
//! read): a pure function from [`RunRecord`] to [`Trace`], serialized with serde_json.
//!
//! One process (the run) with a lane (thread) per worker of the pool, each holding the
//! suites it ran one after another and, inside each suite, its steps (environment,
//! pytest, retries). Complete events (`ph: "X"`) with `ts`/`dur` in microseconds from the
//! run's start; metadata events (`ph: "M"`) name the process and each lane. A span never
//! sticks out of the span that holds it on its lane (the viewers nest spans by time):
//! times rounded to the microsecond are clamped into their parent.

use std::collections::BTreeMap;

use chrono::DateTime;
use serde::Serialize;

use crate::report::run_record::{RunRecord, SuiteRecord};

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
    let run_start = DateTime::parse_from_rfc3339(&record.started_at).ok();
    let offset_of = |at: &str| -> f64 {
        match (run_start, DateTime::parse_from_rfc3339(at)) {
            (Some(run), Ok(at)) => (at - run).as_seconds_f64(),
            _ => 0.0,
        }
    };
    let suite_windows: Vec<Window> = record
        .suites
        .iter()
        .map(|s| Window::at(offset_of(&s.started_at), s.duration_secs))
        .collect();
    let run_end = record
        .duration_secs
        .map(micros)
        .into_iter()
        .chain(suite_windows.iter().map(|w| w.end))
        .max()
        .unwrap_or(0);
    let run = Window {
        start: 0,
        end: run_end,
    };
    let lanes = lanes(&suite_windows);
    let mut events = Vec::new();
    events.push(TraceEvent::Complete {
        name: format!("cargo xtask {}", record.invocation.join(" ")),
        cat: "run",
        ts: run.start,
        dur: run.end - run.start,
        pid: PID,
        tid: RUN_TID,
        args: Box::new(Args {
            outcome: Some(record.outcome.clone().unwrap_or_else(|| "running".into())),
            detail: record.error.clone(),
            ..Args::default()
        }),
    });
    for ((suite, window), lane) in record.suites.iter().zip(&suite_windows).zip(&lanes) {
        let tid = WORKER_TID + *lane as u32;
        suite_events(suite, window.within(run), tid, &mut events);
    }
    let mut metadata = vec![
        TraceEvent::Metadata {
            name: "process_name",
            pid: PID,
            tid: RUN_TID,
            args: MetadataArgs::Name {
                name: format!("cargo xtask run {}", record.run_id),
            },
        },
        thread_name(RUN_TID, "run".into()),
    ];
    let workers = lanes.iter().copied().max().map_or(0, |m| m + 1);
    for worker in 0..workers {
        metadata.push(thread_name(
            WORKER_TID + worker as u32,
            format!("worker {worker}"),
        ));
    }
    metadata.extend(events);
    let mut other_data = BTreeMap::new();
    other_data.insert("run_id", record.run_id.clone());
    other_data.insert("started_at", record.started_at.clone());
    other_data.insert("xtask_version", record.xtask_version.clone());
    if let Some(git) = &record.git {
        other_data.insert("commit", git.commit.clone());
    }
    Trace {
        trace_events: metadata,
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

/// A lane for each suite, lowest free first, so that suites on one lane never overlap.
fn lanes(windows: &[Window]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..windows.len()).collect();
    order.sort_by_key(|&i| (windows[i].start, i));
    let mut free_at: Vec<u64> = Vec::new();
    let mut lanes = vec![0; windows.len()];
    for i in order {
        let lane = match free_at.iter().position(|&end| end <= windows[i].start) {
            Some(lane) => lane,
            None => {
                free_at.push(0);
                free_at.len() - 1
            }
        };
        free_at[lane] = windows[i].end;
        lanes[i] = lane;
    }
    lanes
}

/// The suite's span and its steps' inside it, one after another.
fn suite_events(suite: &SuiteRecord, window: Window, tid: u32, events: &mut Vec<TraceEvent>) {
    events.push(TraceEvent::Complete {
        name: suite.name.clone(),
        cat: "suite",
        ts: window.start,
        dur: window.end - window.start,
        pid: PID,
        tid,
        args: Box::new(Args {
            suite: Some(suite.name.clone()),
            group: Some(suite.group.clone()),
            outcome: Some(suite.outcome.clone()),
            detail: suite.detail.clone(),
            ..Args::default()
        }),
    });
    let mut at = window.start;
    for command in &suite.commands {
        let step = Window {
            start: at,
            end: at + micros(command.duration_secs),
        }
        .within(window);
        at = step.end;
        events.push(TraceEvent::Complete {
            name: format!("{} {}", suite.name, command.step),
            cat: "step",
            ts: step.start,
            dur: step.end - step.start,
            pid: PID,
            tid,
            args: Box::new(Args {
                suite: Some(suite.name.clone()),
                command: Some(command.argv.join(" ")),
                exit_code: command.exit_code,
                skipped: command.skipped.clone(),
                ..Args::default()
            }),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_never_hold_two_overlapping_suites() {
        let w = |start, end| Window { start, end };
        // 0-10 and 5-15 overlap; 10-20 can follow the first; 15-16 the second.
        let lanes = lanes(&[w(0, 10), w(5, 15), w(10, 20), w(15, 16)]);
        assert_eq!(lanes, [0, 1, 0, 1]);
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
