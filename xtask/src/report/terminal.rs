//! The terminal sink: a line per prerequisite checked and service started, one line per
//! suite as it ends, the failures of a suite that did not pass, a line per retry, per
//! service that died and for an interrupt, and a table at the end. On a terminal (not in
//! CI) a status line shows the suites running and for how long, redrawn in place at every
//! `Tick` event, and outcomes are coloured (unless `NO_COLOR` is set); piped or in CI the
//! output is plain lines without escape codes, and a suite that runs long says so once a
//! period (`SuiteSlow`). Everything is written in whole lines, so output of suites that run
//! at once never interleaves. Everything shown comes from an event (and the logs it names).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anstyle::{AnsiColor, Style};

use crate::events::{Event, Sink};
use crate::flags::{OutputWhen, RunArgs};
use crate::log;
use crate::model::{CaseStatus, SuiteResult};
use crate::outcome::Outcome;
use crate::paths::Layout;
use crate::plan::SuitePlan;
use crate::text::readable;

/// How many failed tests a failing suite lists before "N more".
const MAX_CASES: usize = 10;
/// How much of a failed test's message is shown: its first lines, each cut at this many
/// characters.
const MESSAGE_LINES: usize = 3;
const MESSAGE_CHARS: usize = 200;
/// How many lines of a failing suite's log are shown.
const FAILURE_TAIL_LINES: usize = 40;
/// How many lines of a service's log are shown when it could not be used.
const SERVICE_TAIL_LINES: usize = 20;
/// The indentation of everything below a suite's result line.
const INDENT: &str = "             ";
/// Erases the line the cursor is on and goes to its start.
const ERASE_LINE: &str = "\r\x1b[2K";

/// What the terminal shows and how.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub success_output: OutputWhen,
    pub failure_output: OutputWhen,
    /// Suites' output goes to the terminal as it is written (`--no-capture`): it is not
    /// shown again when they end.
    pub streaming: bool,
    /// A live status line, redrawn in place.
    pub live: bool,
    /// ANSI colours.
    pub color: bool,
    /// `--require-all`: an unavailable prerequisite fails the run (else it is only shown).
    pub require_all: bool,
}

impl Options {
    /// The options `args` ask for, on this process's stdout: a live status line only on a
    /// terminal outside CI (and not while output streams), colour only on a terminal
    /// outside CI without `NO_COLOR`.
    pub fn detect(args: &RunArgs) -> Options {
        let terminal = std::io::stdout().is_terminal() && std::env::var_os("CI").is_none();
        Options {
            success_output: args.success_output,
            failure_output: args.failure_output,
            streaming: args.no_capture,
            live: terminal && !args.no_capture,
            color: terminal && std::env::var_os("NO_COLOR").is_none(),
            require_all: args.require_all,
        }
    }

    /// Plain lines, nothing shown but result lines and failures (the defaults, piped).
    pub fn plain() -> Options {
        Options {
            success_output: OutputWhen::Never,
            failure_output: OutputWhen::Immediate,
            streaming: false,
            live: false,
            color: false,
            require_all: true,
        }
    }
}

pub struct TerminalSink<W: Write + Send + 'static> {
    /// The terminal, shared with the writer of streamed output (`--no-capture`).
    screen: Arc<Mutex<State<W>>>,
    layout: Layout,
    options: Options,
    /// Per suite index: how long its environment took, when this run built it.
    built: HashMap<usize, Duration>,
    /// What `final` output holds back until every suite has ended.
    deferred: Vec<String>,
    /// Where the run's reports are, when not in `layout`'s run directory (a replayed run,
    /// from an archive or a `run.json` kept elsewhere).
    reports: Option<std::path::PathBuf>,
}

struct State<W> {
    out: W,
    live: bool,
    /// Whether the status line is on the screen (and must be erased before anything else).
    shown: bool,
    running: Vec<Running>,
    finished: usize,
    total: usize,
    /// Whether streamed output goes straight out: between a suite's header and its result
    /// line. Before the header (the suite's start event is handled on the run's thread,
    /// perhaps after its first output) it is held in `held`.
    stream_open: bool,
    held: Vec<u8>,
}

/// A suite on the status line.
struct Running {
    index: usize,
    name: String,
    since: Instant,
    /// Whether its environment is being built.
    building: bool,
}

impl<W: Write> State<W> {
    /// Prints `text` (whole lines) above the status line.
    fn print(&mut self, text: &str) -> std::io::Result<()> {
        self.erase()?;
        self.out.write_all(text.as_bytes())?;
        self.draw()?;
        self.out.flush()
    }

    fn erase(&mut self) -> std::io::Result<()> {
        if self.shown {
            self.out.write_all(ERASE_LINE.as_bytes())?;
            self.shown = false;
        }
        Ok(())
    }

    /// Draws the status line (no newline), if there is anything to show.
    fn draw(&mut self) -> std::io::Result<()> {
        if !self.live || self.running.is_empty() {
            return Ok(());
        }
        let line = status_line(
            self.finished,
            self.total,
            self.running.iter().map(|r| {
                let name = if r.building {
                    format!("{} (building its environment)", r.name)
                } else {
                    r.name.clone()
                };
                (name, r.since.elapsed())
            }),
        );
        // One character short of the width, so the line never wraps.
        let width = terminal_width().saturating_sub(1).max(10);
        let line: String = line.chars().take(width).collect();
        self.out.write_all(line.as_bytes())?;
        self.shown = true;
        Ok(())
    }

    fn redraw(&mut self) -> std::io::Result<()> {
        self.erase()?;
        self.draw()?;
        self.out.flush()
    }
}

/// `[2/5] running: backend 3.1s, agent 1.2s`.
fn status_line(
    finished: usize,
    total: usize,
    running: impl Iterator<Item = (String, Duration)>,
) -> String {
    let running: Vec<String> = running
        .map(|(name, took)| format!("{name} {:.1}s", took.as_secs_f64()))
        .collect();
    format!("[{finished}/{total}] running: {}", running.join(", "))
}

/// The width of the terminal on stdout, or 80 when it cannot be told.
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ only writes a `winsize` into the memory it is given.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `size` is a valid, writable winsize.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        80
    }
}

fn lock<T: ?Sized>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<W: Write + Send + 'static> TerminalSink<W> {
    pub fn new(out: W, layout: &Layout, options: Options) -> Self {
        TerminalSink {
            screen: Arc::new(Mutex::new(State {
                out,
                live: options.live,
                shown: false,
                running: Vec::new(),
                finished: 0,
                total: 0,
                stream_open: false,
                held: Vec::new(),
            })),
            layout: layout.clone(),
            options,
            built: HashMap::new(),
            deferred: Vec::new(),
            reports: None,
        }
    }

    /// The last line names the reports in `dir` (a replayed run's own directory) rather
    /// than in the layout's run directory.
    pub fn with_reports_in(mut self, dir: std::path::PathBuf) -> Self {
        self.reports = Some(dir);
        self
    }

    fn print(&self, text: &str) -> std::io::Result<()> {
        lock(&self.screen).print(text)
    }

    /// The writer every step's output streams to with `--no-capture` (the bytes are already
    /// masked): it comes out below the suite's header line, before its result line.
    pub fn stream_writer(&self) -> crate::step::Also {
        Arc::new(Mutex::new(StreamWriter {
            screen: Arc::clone(&self.screen),
        }))
    }

    /// Erases the status line for good: the suites are done.
    fn stop_live(&mut self) {
        let mut state = lock(&self.screen);
        state.live = false;
        let _ = state.erase().and_then(|()| state.out.flush());
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.options.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_string()
        }
    }

    fn retry_style() -> Style {
        Style::new()
            .fg_color(Some(AnsiColor::Magenta.into()))
            .bold()
    }

    fn outcome_style(outcome: Outcome) -> Style {
        let color = match outcome {
            Outcome::Passed => AnsiColor::Green,
            Outcome::PrerequisiteUnavailable | Outcome::Interrupted => AnsiColor::Yellow,
            _ => AnsiColor::Red,
        };
        Style::new().fg_color(Some(color.into())).bold()
    }

    /// `      PASSED quick [reports]: 1 passed, 0 failed, 0 skipped, 0 errors in 0.4s`.
    fn result_line(&self, index: usize, plan: &SuitePlan, result: &SuiteResult) -> String {
        let c = result.counts();
        // A cached suite did not run: its line says so, and where its result comes from.
        let (word, from) = match &result.cached {
            Some(from) => (
                "CACHED".to_string(),
                format!(
                    " (passed in run {}, in {:.1}s)",
                    from.run_id,
                    from.duration.as_secs_f64()
                ),
            ),
            None => (result.outcome.name().to_uppercase(), String::new()),
        };
        let word = format!("{word:>12}");
        let built = self.built.get(&index).map_or(String::new(), |took| {
            format!(" (environment built in {:.1}s)", took.as_secs_f64())
        });
        let flaky = if c.flaky > 0 {
            format!(", {} flaky", c.flaky)
        } else {
            String::new()
        };
        let split = if plan.slices > 1 {
            format!(" (in {} slices)", plan.slices)
        } else {
            String::new()
        };
        format!(
            "{} {} [{}]: {} passed, {} failed, {} skipped, {} errors{flaky} in {:.1}s{from}{split}{built}\n",
            self.paint(Self::outcome_style(result.outcome), &word),
            plan.suite.name,
            plan.suite.group,
            c.passed,
            c.failed,
            c.skipped,
            c.errors,
            result.duration.as_secs_f64()
        )
    }

    /// Why a suite did not pass, below its result line whatever its output options say.
    fn detail(&self, result: &SuiteResult) -> String {
        match &result.detail {
            Some(detail) => format!("{INDENT}{}\n", readable(detail)),
            None => String::new(),
        }
    }

    /// Where the log of a suite that did not pass is: the last thing it shows.
    fn log_path(&self, plan: &SuitePlan, result: &SuiteResult) -> String {
        if result.outcome == Outcome::Passed {
            return String::new();
        }
        format!("{INDENT}full log: {}\n", self.layout.display(&plan.log))
    }

    /// A suite's output: for one that did not pass, its failed tests and the end of its
    /// log; for one that passed, the end of its log (as much as the JUnit report keeps).
    fn output(&self, plan: &SuitePlan, result: &SuiteResult) -> String {
        let mut text = String::new();
        let passed = result.outcome == Outcome::Passed;
        if !passed {
            text.push_str(&self.failures(result));
        }
        if !self.options.streaming {
            let lines = if passed {
                log::TAIL_LINES
            } else {
                FAILURE_TAIL_LINES
            };
            let rule = "─".repeat(20);
            text.push_str(&format!(
                "{rule} {} [{}]: the end of its log {rule}\n{}\n{}\n",
                plan.suite.name,
                plan.suite.group,
                // The log keeps the bytes as printed; the terminal shows them without escapes
                // and control characters, which would garble it (and the status line).
                readable(&log::tail(&plan.log, lines)),
                // As long as the header: two rules, the name, ` [`, the group and `]: the end of its log `.
                "─".repeat(40 + plan.suite.name.len() + plan.suite.group.len() + 25),
            ));
        }
        text
    }

    /// The failed and errored tests (not the stand-in for a suite that did not run, whose
    /// detail says why), at most `MAX_CASES`, then how many more.
    fn failures(&self, result: &SuiteResult) -> String {
        let failed: Vec<_> = result
            .cases
            .iter()
            .filter(|c| {
                !c.synthetic && matches!(c.status(), CaseStatus::Failed | CaseStatus::Error)
            })
            .collect();
        let mut text = String::new();
        for case in failed.iter().take(MAX_CASES) {
            let status = case.status().name();
            let word = self.paint(Self::outcome_style(Outcome::Failed), status);
            let place = match (&case.file, case.line) {
                (Some(file), Some(line)) => format!("{file}:{line}: "),
                (Some(file), None) => format!("{file}: "),
                _ => String::new(),
            };
            let name = if case.classname.is_empty() {
                case.name.clone()
            } else {
                format!("{}::{}", case.classname, case.name)
            };
            text.push_str(&format!("{INDENT}{word} {place}{name}\n"));
            let message = readable(case.result().message.as_deref().unwrap_or(""));
            let lines: Vec<&str> = message.lines().filter(|l| !l.trim().is_empty()).collect();
            for line in lines.iter().take(MESSAGE_LINES) {
                let line = line.trim_end();
                let mut shown: String = line.chars().take(MESSAGE_CHARS).collect();
                if shown.len() < line.len() {
                    shown.push_str(" ...");
                }
                text.push_str(&format!("{INDENT}    {shown}\n"));
            }
            if lines.len() > MESSAGE_LINES {
                text.push_str(&format!("{INDENT}    ...\n"));
            }
        }
        if failed.len() > MAX_CASES {
            text.push_str(&format!(
                "{INDENT}... and {} more failed or errored tests (every one is in the JUnit report)\n",
                failed.len() - MAX_CASES
            ));
        }
        text
    }

    fn when(&self, result: &SuiteResult) -> OutputWhen {
        // A suite skipped for an unavailable prerequisite has only that line to show.
        let skipped =
            result.outcome == Outcome::PrerequisiteUnavailable && !self.options.require_all;
        if result.outcome == Outcome::Passed || skipped {
            self.options.success_output
        } else {
            self.options.failure_output
        }
    }
}

struct StreamWriter<W> {
    screen: Arc<Mutex<State<W>>>,
}

/// Streamed output held before its suite's header is shown: at most this much (more is
/// written as it comes).
const HELD_MAX: usize = 1 << 20;

impl<W: Write> Write for StreamWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut state = lock(&self.screen);
        if state.stream_open || state.held.len() + buf.len() > HELD_MAX {
            let held = std::mem::take(&mut state.held);
            state.out.write_all(&held)?;
            state.out.write_all(buf)?;
            state.out.flush()?;
        } else {
            state.held.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for TerminalSink<W> {
    fn drop(&mut self) {
        self.stop_live();
    }
}

impl<W: Write + Send + 'static> Sink for TerminalSink<W> {
    fn handle(&mut self, event: &Event<'_>) -> anyhow::Result<()> {
        match event {
            Event::RunStarted { plans, jobs } => {
                let names: Vec<&str> = plans.iter().map(|p| p.suite.name.as_str()).collect();
                let streaming = if self.options.streaming {
                    " (--no-capture: one at a time, output shown as it is written)"
                } else {
                    ""
                };
                self.print(&format!(
                    "xtask: running {} suite(s), {} at a time{streaming}: {}\n",
                    plans.len(),
                    jobs,
                    names.join(", ")
                ))?;
                lock(&self.screen).total = plans.len();
            }
            Event::SuiteStarted { index, plan, .. } => {
                let mut state = lock(&self.screen);
                if self.options.streaming {
                    let rule = "─".repeat(20);
                    state.print(&format!(
                        "{rule} {} [{}] {rule}\n",
                        plan.suite.name, plan.suite.group
                    ))?;
                    let held = std::mem::take(&mut state.held);
                    state.out.write_all(&held)?;
                    state.stream_open = true;
                }
                state.running.push(Running {
                    index: *index,
                    name: plan.suite.name.clone(),
                    since: Instant::now(),
                    building: false,
                });
                state.redraw()?;
            }
            Event::EnvironmentBuilding { index, .. } => {
                let mut state = lock(&self.screen);
                if let Some(running) = state.running.iter_mut().find(|r| r.index == *index) {
                    running.building = true;
                }
                state.redraw()?;
            }
            Event::EnvironmentReady {
                index,
                duration,
                built,
                ..
            } => {
                if *built {
                    self.built.insert(*index, *duration);
                }
                let mut state = lock(&self.screen);
                if let Some(running) = state.running.iter_mut().find(|r| r.index == *index) {
                    running.building = false;
                }
                state.redraw()?;
            }
            Event::Tick { .. } => lock(&self.screen).redraw()?,
            Event::PrerequisiteChecked { health } | Event::ServiceReady { health } => {
                self.print(&format!(
                    "xtask: {}: {}\n",
                    health.label(),
                    health.verdict()
                ))?;
            }
            Event::ServiceFailed {
                health,
                detail,
                log,
            } => {
                let shown = self.layout.display(log).into_owned();
                let mut text = format!(
                    "xtask: {}: {}\nxtask: service `{}` error: {detail}; the end of its log ({shown}):\n",
                    health.label(),
                    health.verdict(),
                    health.name,
                );
                for line in log::tail(log, SERVICE_TAIL_LINES).lines() {
                    text.push_str(&format!("    {line}\n"));
                }
                self.print(&text)?;
            }
            Event::ServiceDied { died } => {
                self.print(&format!(
                    "xtask: service `{}` {} while the run needed it; the suites that need it end service-error; its log: {}\n",
                    died.name,
                    died.how,
                    self.layout.display(&died.log)
                ))?;
            }
            Event::RetryStarted {
                plan,
                attempt,
                retries,
                tests,
                never_ran,
                ..
            } => {
                let word = format!("{:>12}", "RETRY");
                let never = if *never_ran > 0 {
                    format!(" ({never_ran} of which never ran)")
                } else {
                    String::new()
                };
                self.print(&format!(
                    "{} {} [{}]: retry {attempt} of {retries}, {tests} test(s) again{never}\n",
                    self.paint(Self::retry_style(), &word),
                    plan.suite.name,
                    plan.suite.group,
                ))?;
            }
            Event::SuiteSlow { plan, elapsed, .. } => {
                // The status line shows how long every suite runs; without it, a line.
                if !self.options.live {
                    let word = format!("{:>12}", "SLOW");
                    self.print(&format!(
                        "{} {} [{}]: still running after {}s\n",
                        self.paint(Self::retry_style(), &word),
                        plan.suite.name,
                        plan.suite.group,
                        elapsed.as_secs()
                    ))?;
                }
            }
            Event::Interrupted => {
                self.print(
                    "xtask: interrupted: stopping the running suites with their processes, starting no more (interrupt again to stop them without their grace period)\n",
                )?;
            }
            Event::ServiceStarting { .. } | Event::ServiceStopped { .. } => {}
            Event::SuiteFinished {
                index,
                plan,
                result,
            } => {
                {
                    let mut state = lock(&self.screen);
                    state.running.retain(|r| r.index != *index);
                    state.finished += 1;
                    state.stream_open = false;
                }
                let mut text = self.result_line(*index, plan, result);
                text.push_str(&self.detail(result));
                match self.when(result) {
                    OutputWhen::Never => {}
                    OutputWhen::Immediate => text.push_str(&self.output(plan, result)),
                    OutputWhen::Final => {
                        let mut held = self.result_line(*index, plan, result);
                        held.push_str(&self.detail(result));
                        held.push_str(&self.output(plan, result));
                        held.push_str(&self.log_path(plan, result));
                        self.deferred.push(held);
                    }
                }
                text.push_str(&self.log_path(plan, result));
                self.print(&text)?;
            }
            Event::RunFinished {
                plans,
                results,
                duration,
            } => {
                self.stop_live();
                let mut text = String::new();
                if !self.deferred.is_empty() {
                    text.push('\n');
                }
                for held in self.deferred.drain(..) {
                    text.push_str(&held);
                }
                text.push_str(&self.table(plans, results));
                let overall =
                    Outcome::deciding(results.iter().map(|r| r.outcome), self.options.require_all);
                text.push_str(&format!(
                    "\nxtask: {} in {:.1}s (exit code {}); JUnit: {}; logs: {}\n",
                    self.paint(Self::outcome_style(overall), &overall.to_string()),
                    duration.as_secs_f64(),
                    crate::error::outcome_code(overall),
                    self.layout.display(
                        &self
                            .reports
                            .as_ref()
                            .map_or_else(|| self.layout.junit_report(), |d| d.join("junit.xml"))
                    ),
                    self.layout.display(
                        &self
                            .reports
                            .as_ref()
                            .map_or_else(|| self.layout.logs_dir(), |d| d.join("logs"))
                    ),
                ));
                self.print(&text)?;
            }
        }
        Ok(())
    }
}

impl<W: Write + Send + 'static> TerminalSink<W> {
    fn table(&self, plans: &[SuitePlan], results: &[SuiteResult]) -> String {
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
        let mut text = format!(
            "\n{:<width$}  {:<gwidth$}  {:>6}  {:>6}  {:>7}  {:>6}  {:>10}  {:>5}  {:>7}  outcome\n",
            "suite", "group", "passed", "failed", "skipped", "errors", "deselected", "flaky", "time"
        );
        for (plan, result) in plans.iter().zip(results.iter()) {
            let c = result.counts();
            text.push_str(&format!(
                "{:<width$}  {:<gwidth$}  {:>6}  {:>6}  {:>7}  {:>6}  {:>10}  {:>5}  {:>6.1}s  {}\n",
                plan.suite.name,
                plan.suite.group,
                c.passed,
                c.failed,
                c.skipped,
                c.errors,
                c.deselected,
                c.flaky,
                result.duration.as_secs_f64(),
                self.paint(
                    Self::outcome_style(result.outcome),
                    if result.cached.is_some() {
                        "passed (cached)"
                    } else {
                        result.outcome.name()
                    }
                )
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;
    use crate::model::{now, Attempt, TestCase};
    use crate::plan::plan_suite;

    /// A writer the test reads back after the sink wrote to it.
    #[derive(Clone, Default)]
    struct Screenful(Arc<Mutex<Vec<u8>>>);

    impl Write for Screenful {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Screenful {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.0).clone()).unwrap()
        }
    }

    fn plans() -> (Layout, Vec<SuitePlan>) {
        let layout = Layout::new("/nonexistent-repo");
        let manifest = Manifest::for_tests(&[("green", "one"), ("red", "two")]);
        let plans = manifest
            .suites
            .iter()
            .map(|s| {
                plan_suite(
                    s,
                    &layout,
                    std::path::Path::new("uv"),
                    &[],
                    &Default::default(),
                )
            })
            .collect();
        (layout, plans)
    }

    fn result(outcome: Outcome, failed: usize) -> SuiteResult {
        let mut cases = vec![TestCase::new(
            "tests.test_x",
            "test_ok",
            Attempt::new(CaseStatus::Passed),
        )];
        for i in 0..failed {
            let mut attempt = Attempt::new(CaseStatus::Failed);
            attempt.message = Some(format!(
                "AssertionError: \x1b[31mwrong {i}\x1b[0m\nassert 1 == 2"
            ));
            let mut case = TestCase::new("tests.test_x", format!("test_bad_{i}"), attempt);
            case.file = Some("pkg/tests/test_x.py".into());
            case.line = Some(10 + i as u64);
            cases.push(case);
        }
        SuiteResult {
            outcome,
            detail: None,
            cases,
            deselected: 0,
            steps: Vec::new(),
            started: now(),
            duration: Duration::from_millis(1500),
            cached: None,
        }
    }

    /// Feeds a whole run (green passes, red fails with `failed` failures) to a sink.
    fn run(options: Options, failed: usize) -> String {
        let (layout, plans) = plans();
        let screen = Screenful::default();
        let mut sink = TerminalSink::new(screen.clone(), &layout, options);
        let results = [result(Outcome::Passed, 0), result(Outcome::Failed, failed)];
        sink.handle(&Event::RunStarted {
            plans: &plans,
            jobs: 2,
        })
        .unwrap();
        for (index, plan) in plans.iter().enumerate() {
            sink.handle(&Event::SuiteStarted {
                index,
                plan,
                worker: 0,
            })
            .unwrap();
        }
        for (index, plan) in plans.iter().enumerate() {
            let result = &results[index];
            sink.handle(&Event::SuiteFinished {
                index,
                plan,
                result,
            })
            .unwrap();
        }
        sink.handle(&Event::RunFinished {
            plans: &plans,
            results: &results,
            duration: Duration::from_secs(2),
        })
        .unwrap();
        drop(sink);
        screen.text()
    }

    #[test]
    fn a_passing_suite_is_one_line_and_a_failing_one_lists_its_failures_then_the_rest() {
        let out = run(Options::plain(), 12);
        assert!(!out.contains('\x1b'), "{out}");
        let green: Vec<&str> = out.lines().filter(|l| l.contains("green [one]")).collect();
        assert_eq!(
            green,
            ["      PASSED green [one]: 1 passed, 0 failed, 0 skipped, 0 errors in 1.5s"]
        );
        assert!(
            out.contains("      FAILED red [two]: 1 passed, 12 failed"),
            "{out}"
        );
        assert!(
            out.contains("failed pkg/tests/test_x.py:10: tests.test_x::test_bad_0\n"),
            "{out}"
        );
        assert!(out.contains("    AssertionError: wrong 0\n"), "{out}");
        assert!(out.contains("    assert 1 == 2\n"), "{out}");
        assert!(out.contains("test_bad_9"));
        assert!(!out.contains("test_bad_10"), "only {MAX_CASES} are listed");
        assert!(
            out.contains("... and 2 more failed or errored tests"),
            "{out}"
        );
        assert!(!out.contains("test_ok"));
        // The log's end, then its path: the last thing the suite shows.
        let tail = out
            .find("red [two]: the end of its log")
            .expect("the log's end");
        let path = out
            .find("full log: target/xtask/runs/")
            .expect("the log's path");
        assert!(tail < path && path < out.find("\nsuite ").unwrap());
    }

    #[test]
    fn final_output_comes_after_every_suite_and_before_the_table() {
        let options = Options {
            success_output: OutputWhen::Final,
            failure_output: OutputWhen::Final,
            ..Options::plain()
        };
        let out = run(options, 1);
        let results = out.find("FAILED red [two]").unwrap();
        let green = out
            .find("green [one]: the end of its log")
            .expect("green's output");
        let red = out
            .find("red [two]: the end of its log")
            .expect("red's output");
        assert!(
            results < green && green < red && red < out.find("\nsuite ").unwrap(),
            "{out}"
        );
        // Each suite's result line comes again above its output.
        assert_eq!(out.matches("PASSED green [one]").count(), 2);
        assert_eq!(out.matches("FAILED red [two]").count(), 2);
    }

    #[test]
    fn never_shows_no_output_but_still_the_failures_detail_and_log_path() {
        let options = Options {
            failure_output: OutputWhen::Never,
            ..Options::plain()
        };
        let out = run(options, 1);
        assert!(!out.contains("the end of its log"), "{out}");
        assert!(!out.contains("test_bad_0"), "{out}");
        assert!(out.contains("full log: "), "{out}");
    }

    #[test]
    fn colour_and_the_status_line_only_when_asked_and_the_status_line_is_erased() {
        let options = Options {
            live: true,
            color: true,
            ..Options::plain()
        };
        let out = run(options, 1);
        assert!(out.contains("\x1b[32m"), "green: {out:?}");
        assert!(out.contains("\x1b[31m"), "red: {out:?}");
        assert!(out.contains("running: green"), "{out:?}");
        // The status line is erased before every other line, and at the end.
        for line in out
            .lines()
            .filter(|l| l.contains("PASSED") || l.contains("FAILED"))
        {
            let after = line.rsplit(ERASE_LINE).next().unwrap();
            assert!(!after.contains("running:"), "{line:?}");
        }
        let last = out.rfind("running:").unwrap();
        assert!(out[last..].contains(ERASE_LINE), "{out:?}");
        assert!(out.ends_with('\n'));
    }

    #[test]
    fn streamed_output_before_its_suites_header_waits_for_it() {
        let (layout, plans) = plans();
        let screen = Screenful::default();
        let options = Options {
            streaming: true,
            ..Options::plain()
        };
        let mut sink = TerminalSink::new(screen.clone(), &layout, options);
        let stream = sink.stream_writer();
        sink.handle(&Event::RunStarted {
            plans: &plans,
            jobs: 1,
        })
        .unwrap();
        lock(&stream).write_all(b"early output\n").unwrap();
        assert!(!screen.text().contains("early"));
        sink.handle(&Event::SuiteStarted {
            index: 0,
            plan: &plans[0],
            worker: 0,
        })
        .unwrap();
        lock(&stream).write_all(b"later output\n").unwrap();
        let result = result(Outcome::Passed, 0);
        sink.handle(&Event::SuiteFinished {
            index: 0,
            plan: &plans[0],
            result: &result,
        })
        .unwrap();
        let out = screen.text();
        let header = out.find("── green [one] ──").expect("the header");
        let early = out.find("early output").unwrap();
        let later = out.find("later output").unwrap();
        let passed = out.find("PASSED green").unwrap();
        assert!(header < early && early < later && later < passed, "{out}");
        assert!(out.contains("(--no-capture: one at a time"));
        assert!(
            !out.contains("the end of its log"),
            "streamed output is not shown twice"
        );
    }

    #[test]
    fn the_status_line_names_every_running_suite_with_its_time() {
        let line = status_line(
            2,
            5,
            [
                ("backend".to_string(), Duration::from_millis(3100)),
                ("agent".to_string(), Duration::from_millis(1200)),
            ]
            .into_iter(),
        );
        assert_eq!(line, "[2/5] running: backend 3.1s, agent 1.2s");
    }
    fn health(name: &str, kind: &'static str, error: Option<&str>) -> crate::services::Health {
        crate::services::Health {
            name: name.into(),
            kind,
            target: "127.0.0.1:9".into(),
            available: error.is_none(),
            latency: error.is_none().then(|| Duration::from_micros(1500)),
            error: error.map(String::from),
            checked_at: now(),
        }
    }

    #[test]
    fn the_setup_retries_slow_suites_deaths_and_interrupts_are_lines_from_their_events() {
        let (layout, plans) = plans();
        let dir = std::env::temp_dir().join(format!("xtask-terminal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("service-api.log");
        std::fs::write(&log, "starting\nTraceback: port in use\n").unwrap();
        let screen = Screenful::default();
        let mut sink = TerminalSink::new(screen.clone(), &layout, Options::plain());
        let broker = health("broker", "tcp", None);
        let api = health("api", "service", Some("it exited at start (exited with 3)"));
        let died = crate::services::Died {
            name: "db".into(),
            how: "exited with 1".into(),
            log: dir.join("service-db.log"),
        };
        let (green, red) = (&plans[0], &plans[1]);
        let result = result(Outcome::Passed, 0);
        for event in [
            Event::PrerequisiteChecked { health: &broker },
            Event::ServiceStarting { name: "api" },
            Event::ServiceFailed {
                health: &api,
                detail: "it exited at start (exited with 3)",
                log: &log,
            },
            Event::RunStarted {
                plans: &plans,
                jobs: 2,
            },
            Event::SuiteStarted {
                index: 1,
                plan: red,
                worker: 0,
            },
            Event::EnvironmentBuilding {
                index: 1,
                plan: red,
            },
            Event::Tick {
                elapsed: Duration::from_millis(200),
            },
            Event::RetryStarted {
                index: 1,
                plan: red,
                attempt: 1,
                retries: 2,
                tests: 3,
                never_ran: 1,
            },
            Event::SuiteSlow {
                index: 1,
                plan: red,
                elapsed: Duration::from_secs(60),
            },
            Event::ServiceDied { died: &died },
            Event::Interrupted,
            Event::SuiteFinished {
                index: 0,
                plan: green,
                result: &result,
            },
            Event::ServiceStopped {
                name: "api",
                how: "exited with 0",
            },
        ] {
            sink.handle(&event).unwrap();
        }
        drop(sink);
        let out = screen.text();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[..5],
            [
                "xtask: prerequisite `broker` (tcp 127.0.0.1:9): available (1.5 ms)",
                "xtask: service `api` (127.0.0.1:9): UNAVAILABLE: it exited at start (exited with 3)",
                &format!(
                    "xtask: service `api` error: it exited at start (exited with 3); the end of its log ({}):",
                    log.display()
                ),
                "    starting",
                "    Traceback: port in use",
            ],
            "{out}"
        );
        assert!(lines[5].starts_with("xtask: running 2 suite(s), 2 at a time"));
        assert_eq!(
            lines[6..10],
            [
                "       RETRY red [two]: retry 1 of 2, 3 test(s) again (1 of which never ran)",
                "        SLOW red [two]: still running after 60s",
                &format!(
                    "xtask: service `db` exited with 1 while the run needed it; the suites that need it end service-error; its log: {}",
                    dir.join("service-db.log").display()
                ),
                "xtask: interrupted: stopping the running suites with their processes, starting no more (interrupt again to stop them without their grace period)",
            ],
            "{out}"
        );
        assert!(lines[10].starts_with("      PASSED green [one]"), "{out}");
        // Starting and stopping a service show nothing; a tick without a status line neither.
        assert_eq!(lines.len(), 11, "{out}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_tick_redraws_the_status_line_which_names_a_suite_building_its_environment() {
        let (layout, plans) = plans();
        let screen = Screenful::default();
        let options = Options {
            live: true,
            ..Options::plain()
        };
        let mut sink = TerminalSink::new(screen.clone(), &layout, options);
        sink.handle(&Event::RunStarted {
            plans: &plans,
            jobs: 2,
        })
        .unwrap();
        sink.handle(&Event::SuiteStarted {
            index: 0,
            plan: &plans[0],
            worker: 0,
        })
        .unwrap();
        sink.handle(&Event::EnvironmentBuilding {
            index: 0,
            plan: &plans[0],
        })
        .unwrap();
        let drawn = screen.text().matches(ERASE_LINE).count();
        for _ in 0..3 {
            sink.handle(&Event::Tick {
                elapsed: Duration::ZERO,
            })
            .unwrap();
        }
        let out = screen.text();
        assert_eq!(out.matches(ERASE_LINE).count(), drawn + 3, "{out:?}");
        assert!(
            out.ends_with("running: green (building its environment) 0.0s"),
            "{out:?}"
        );
        sink.handle(&Event::SuiteSlow {
            index: 0,
            plan: &plans[0],
            elapsed: Duration::from_secs(60),
        })
        .unwrap();
        assert!(!screen.text().contains("SLOW"), "the status line says it");
    }
}
