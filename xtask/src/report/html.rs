//! `report.html`: one self-contained page per run, rendered from the run's record (pure: a
//! past run's page can be rendered again from its `run.json`).
//!
//! The page loads nothing and runs nothing: no script, no external style, font or image, and
//! a Content-Security-Policy that forbids them, so a test's name or output can never act.
//! Every text is HTML-escaped after its control characters are made visible
//! (`text::readable`), and long texts are cut to their head and tail. The texts come from
//! the record, which the record sink masks before anything is written or rendered.
//!
//! Stays usable at tens of thousands of tests: failures come first, long lists are folded
//! into `<details>`, and no test has more markup than what shows it (only failing, flaky and
//! the slowest tests are listed; the timeline draws the longest test bars only).

use std::fmt::Write;

use crate::report::run_record::{AttemptRecord, RunRecord, SuiteRecord, TestOutcome, TestRecord};

/// The Content-Security-Policy of the page: nothing is loaded, no script runs.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// Failures shown with their traceback; the next ones are listed with their message only.
const DETAILED_FAILURES: usize = 100;
/// Failures listed at all; the rest are counted (junit.xml has every one).
const LISTED_FAILURES: usize = 5_000;
/// Flaky tests listed with their attempts.
const LISTED_FLAKY: usize = 500;
/// Rows of the slowest-tests table.
const SLOWEST: usize = 25;
/// Test bars drawn in the timeline at most (the longest ones).
const TIMELINE_TESTS: usize = 2_000;
/// A traceback is cut to this many bytes (head and tail).
const MAX_DETAILS: usize = 8 * 1024;
/// A message is cut to this many bytes; a failure listed without its traceback, shorter.
const MAX_MESSAGE: usize = 2 * 1024;
const MAX_SHORT_MESSAGE: usize = 200;
/// Any other text (a name, a command line, a variable).
const MAX_TEXT: usize = 1024;

fn failed(test: &TestRecord) -> bool {
    matches!(test.outcome, TestOutcome::Failed | TestOutcome::Error)
}

/// `file:line`, when the record knows them.
fn location(test: &TestRecord) -> Option<String> {
    let file = test.file.as_deref()?;
    Some(match test.line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_string(),
    })
}

/// A suite and its tests.
type Suite<'a> = (&'a SuiteRecord, &'a Vec<TestRecord>);

/// The page for `record` (masked already: it shows the record's texts as they are).
pub fn render(record: &RunRecord) -> String {
    let suites: Vec<Suite> = record.suites.iter().map(|s| (s, &s.tests)).collect();
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out, record);
    summary(&mut out, record, &suites);
    failures(&mut out, &suites);
    timeline(&mut out, record, &suites);
    flaky(&mut out, &suites);
    slowest(&mut out, &suites);
    suite_details(&mut out, &suites);
    health(&mut out, record);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

const STYLE: &str = "\
:root{--ok:#1a7f37;--bad:#cf222e;--warn:#bf8700;--skip:#8c959f;--other:#8250df;--env:#0969da;--line:#d0d7de}
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1f2328;background:#fff}
main{max-width:1280px;margin:0 auto;padding:16px 24px}
h1{font-size:20px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f6f8fa;border:1px solid var(--line);padding:8px;overflow:auto;max-height:480px;white-space:pre-wrap;word-break:break-all}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid var(--line);vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600;background:var(--other)}
.o-passed{background:var(--ok)}.o-failed,.o-error{background:var(--bad)}.o-skipped,.o-no-tests{background:var(--skip)}.o-flaky{background:var(--warn)}
dl.counts{display:flex;flex-wrap:wrap;gap:8px 24px;margin:8px 0}dl.counts div{min-width:80px}dl.counts dt{color:#59636e;font-size:12px}dl.counts dd{margin:0;font-size:20px;font-weight:600}
.meta{color:#59636e}.meta code{color:#1f2328}
.failure{border-left:4px solid var(--bad);padding:4px 12px;margin:12px 0}.failure h3{font-size:14px;margin:0;word-break:break-all}
.loc{color:#59636e}.msg{margin:4px 0;white-space:pre-wrap;word-break:break-word}
svg{width:100%;height:auto;border:1px solid var(--line)}
svg text{font:11px system-ui,sans-serif;fill:#1f2328}svg .tick{stroke:#eaeef2}svg .pole{stroke:#1f2328;stroke-width:2}
svg .passed{fill:var(--ok)}svg .failed,svg .error{fill:var(--bad)}svg .skipped,svg .no-tests{fill:var(--skip)}svg .flaky{fill:var(--warn)}
svg .suite{fill:var(--other)}svg .suite.passed{fill:#dafbe1}svg .suite.failed,svg .suite.error{fill:#ffebe9}svg .suite.flaky{fill:#fff8c5}svg .suite.no-tests,svg .suite.skipped{fill:#eaeef2}
svg .step{fill:#6e7781}svg .step-environment{fill:var(--env)}svg .step-service{fill:#0550ae}svg .service-up{fill:#ddf4ff}svg .step-retry{fill:var(--warn)}
details>summary{cursor:pointer}
";

fn head(out: &mut String, record: &RunRecord) {
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        out,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<meta name=\"referrer\" content=\"no-referrer\">\n<title>");
    out.push_str("cargo xtask run ");
    esc(out, &record.run_id, MAX_TEXT);
    out.push_str(": ");
    esc(
        out,
        record.outcome.as_deref().unwrap_or("no suites"),
        MAX_TEXT,
    );
    out.push_str("</title>\n<style>\n");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n<main>\n");
}

fn summary(out: &mut String, record: &RunRecord, suites: &[Suite]) {
    let outcome = record.outcome.as_deref().unwrap_or("no suites");
    out.push_str("<h1>cargo xtask ");
    esc(out, &record.invocation.join(" "), MAX_TEXT);
    let _ = write!(
        out,
        " <span class=\"badge {}\" id=\"outcome\">",
        class("o", outcome)
    );
    esc(out, outcome, MAX_TEXT);
    out.push_str("</span></h1>\n<p class=\"meta\">run <code>");
    esc(out, &record.run_id, MAX_TEXT);
    out.push_str("</code> · started ");
    esc(out, &record.started_at, MAX_TEXT);
    out.push_str(" · <span id=\"duration\">");
    out.push_str(&record.duration_secs.map_or("-".into(), secs));
    out.push_str("</span> · commit <code id=\"commit\">");
    match &record.git {
        Some(git) => {
            esc(out, &git.commit, MAX_TEXT);
            if git.dirty {
                out.push_str(" (with uncommitted changes)");
            }
        }
        None => out.push_str("unknown"),
    }
    out.push_str("</code> · exit ");
    match (record.exit_code, &record.exit_code_name) {
        (Some(code), Some(name)) => {
            let _ = write!(out, "{code} <code>");
            esc(out, name, MAX_TEXT);
            out.push_str("</code>");
        }
        _ => out.push_str("unknown"),
    }
    if let Some(uv) = &record.uv {
        out.push_str(" · ");
        esc(out, &uv.version, MAX_TEXT);
    }
    out.push_str("</p>\n");
    if let Some(error) = &record.error {
        out.push_str("<p class=\"msg\"><strong>error:</strong> ");
        esc(out, error, MAX_MESSAGE);
        out.push_str("</p>\n");
    }
    let mut total = crate::model::Counts::default();
    for (suite, _) in suites {
        let c = &suite.counts;
        total.tests += c.tests;
        total.passed += c.passed;
        total.failed += c.failed;
        total.errors += c.errors;
        total.skipped += c.skipped;
        total.deselected += c.deselected;
        total.flaky += c.flaky;
    }
    out.push_str("<dl class=\"counts\">");
    for (key, label, value) in [
        ("suites", "suites", suites.len()),
        ("tests", "tests", total.tests),
        ("passed", "passed", total.passed),
        ("failed", "failed", total.failed),
        ("errors", "errors", total.errors),
        ("skipped", "skipped", total.skipped),
        ("deselected", "deselected", total.deselected),
        ("flaky", "flaky", total.flaky),
    ] {
        let _ = write!(
            out,
            "<div><dt>{label}</dt><dd id=\"count-{key}\">{value}</dd></div>"
        );
    }
    out.push_str("</dl>\n");
    // The suites at a glance: outcome, counts, time.
    out.push_str("<table id=\"suites\"><thead><tr><th>suite</th><th>group</th><th>outcome</th><th class=\"n\">tests</th><th class=\"n\">failed</th><th class=\"n\">errors</th><th class=\"n\">skipped</th><th class=\"n\">flaky</th><th class=\"n\">time</th></tr></thead><tbody>\n");
    for (suite, _) in suites {
        out.push_str("<tr><td><a href=\"#suite-");
        esc(out, &suite.name, MAX_TEXT);
        out.push_str("\">");
        esc(out, &suite.name, MAX_TEXT);
        out.push_str("</a></td><td>");
        esc(out, &suite.group, MAX_TEXT);
        let _ = write!(
            out,
            "</td><td><span class=\"badge {}\">",
            class("o", &suite.outcome)
        );
        esc(out, &suite.outcome, MAX_TEXT);
        // Not run by this run: the run its result comes from.
        if let Some(cached) = &suite.cached {
            out.push_str("</span> <span class=\"cached\" title=\"not run: its inputs were those of this run, where it passed\">cached from ");
            esc(out, &cached.run_id, MAX_TEXT);
        }
        let c = &suite.counts;
        let _ = writeln!(
            out,
            "</span></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            c.tests,
            c.failed,
            c.errors,
            c.skipped,
            c.flaky,
            secs(suite.duration_secs)
        );
    }
    out.push_str("</tbody></table>\n");
}

fn failures(out: &mut String, suites: &[Suite]) {
    let failing: Vec<(&SuiteRecord, &TestRecord)> = suites
        .iter()
        .flat_map(|(s, tests)| tests.iter().filter(|t| failed(t)).map(move |t| (*s, t)))
        .collect();
    // Suites that did not pass and have no failing test to say why.
    let unexplained: Vec<&SuiteRecord> = suites
        .iter()
        .filter(|(s, tests)| {
            !matches!(s.outcome.as_str(), "passed" | "no-tests" | "flaky")
                && !tests.iter().any(failed)
        })
        .map(|(s, _)| *s)
        .collect();
    let _ = writeln!(out, "<h2 id=\"failures\">Failures ({})</h2>", failing.len());
    if failing.is_empty() && unexplained.is_empty() {
        out.push_str("<p>None.</p>\n");
    }
    for suite in &unexplained {
        out.push_str("<div class=\"failure suite-failure\"><h3>suite ");
        esc(out, &suite.name, MAX_TEXT);
        out.push_str(": ");
        esc(out, &suite.outcome, MAX_TEXT);
        out.push_str("</h3>");
        if let Some(detail) = &suite.detail {
            out.push_str("<p class=\"msg\">");
            esc(out, detail, MAX_MESSAGE);
            out.push_str("</p>");
        }
        out.push_str("<p class=\"loc\">log: <code>");
        esc(out, &suite.log, MAX_TEXT);
        out.push_str("</code></p></div>\n");
    }
    let mut listed = false;
    for (i, (suite, test)) in failing.iter().enumerate().take(LISTED_FAILURES) {
        let attempt = test.attempts.last();
        if i == DETAILED_FAILURES {
            let _ = writeln!(
                out,
                "<details><summary>{} more failures, with their messages (tracebacks in junit.xml and the logs)</summary><ul class=\"more-failures\">",
                failing.len().min(LISTED_FAILURES) - DETAILED_FAILURES
            );
            listed = true;
        }
        if listed {
            out.push_str("<li class=\"failure-item\"><code>");
            esc(out, &test.label(), MAX_TEXT);
            out.push_str("</code> <span class=\"loc\">");
            esc(out, &location(test).unwrap_or_default(), MAX_TEXT);
            out.push_str("</span> ");
            if let Some(message) = attempt.and_then(|a| a.message.as_deref()) {
                esc(out, message, MAX_SHORT_MESSAGE);
            }
            out.push_str("</li>\n");
            continue;
        }
        out.push_str("<div class=\"failure failure-item\"><h3><span class=\"badge ");
        out.push_str(&class("o", test.outcome.name()));
        out.push_str("\">");
        out.push_str(test.outcome.name());
        out.push_str("</span> <code>");
        esc(out, &test.label(), MAX_TEXT);
        out.push_str("</code></h3><p class=\"loc\">suite ");
        esc(out, &suite.name, MAX_TEXT);
        if let Some(location) = location(test) {
            out.push_str(" · <code class=\"location\">");
            esc(out, &location, MAX_TEXT);
            out.push_str("</code>");
        }
        if let Some(d) = test.duration_secs {
            out.push_str(" · ");
            out.push_str(&secs(d));
        }
        if test.attempts.len() > 1 {
            let _ = write!(out, " · {} attempts", test.attempts.len());
        }
        out.push_str("</p>");
        if let Some(attempt) = attempt {
            if attempt.kind.is_some() || attempt.message.is_some() {
                out.push_str("<p class=\"msg\">");
                if let Some(kind) = &attempt.kind {
                    out.push_str("<strong>");
                    esc(out, kind, MAX_TEXT);
                    out.push_str("</strong>: ");
                }
                if let Some(message) = &attempt.message {
                    esc(out, message, MAX_MESSAGE);
                }
                out.push_str("</p>");
            }
            if let Some(details) = &attempt.details {
                let open = if i < 10 { " open" } else { "" };
                let _ = write!(out, "<details{open}><summary>traceback</summary><pre>");
                esc(out, details, MAX_DETAILS);
                out.push_str("</pre></details>");
            }
        }
        out.push_str("</div>\n");
    }
    if listed {
        out.push_str("</ul></details>\n");
    }
    if failing.len() > LISTED_FAILURES {
        let _ = writeln!(
            out,
            "<p>{} more failures are not listed here: junit.xml has every one.</p>",
            failing.len() - LISTED_FAILURES
        );
    }
}

/// Geometry of the timeline, in SVG user units (the picture scales to the page's width).
const WIDTH: f64 = 1200.0;
const LABEL: f64 = 110.0;
const AXIS: f64 = 22.0;
const SUITE_ROW: f64 = 20.0;
const TEST_ROW: f64 = 12.0;
const LANE: f64 = SUITE_ROW + TEST_ROW + 8.0;

/// A bar in the timeline: where, how long, what.
struct Bar<'a> {
    start: f64,
    duration: f64,
    suite: &'a SuiteRecord,
}

fn timeline(out: &mut String, record: &RunRecord, suites: &[Suite]) {
    out.push_str("<h2 id=\"timeline\">Timeline</h2>\n");
    if suites.is_empty() {
        out.push_str("<p>No suite ran.</p>\n");
        return;
    }
    let bars: Vec<Bar> = suites
        .iter()
        .map(|(suite, _)| Bar {
            start: suite.started_offset_secs.max(0.0),
            duration: suite.duration_secs.max(0.0),
            suite,
        })
        .collect();
    // The worker that ran each suite; a record without them (an interrupted run) gets lanes
    // that fit.
    let lanes: Vec<usize> = match bars.iter().map(|b| b.suite.worker).collect() {
        Some(workers) => workers,
        None => lanes(
            &bars
                .iter()
                .map(|b| (b.start, b.duration))
                .collect::<Vec<_>>(),
        ),
    };
    let lane_count = lanes.iter().copied().max().map_or(0, |l| l + 1);
    let services = &record.services;
    let service_end = |s: &crate::report::run_record::ServiceRecord| {
        s.stopped_offset_secs
            .unwrap_or(s.started_offset_secs + s.duration_secs)
    };
    let end = bars
        .iter()
        .map(|b| b.start + b.duration)
        .chain(services.iter().map(service_end))
        .fold(record.duration_secs.unwrap_or(0.0), f64::max)
        .max(0.001);
    // Services, when the run started any, above the workers.
    let top = AXIS + if services.is_empty() { 0.0 } else { LANE };
    let scale = (WIDTH - LABEL - 10.0) / end;
    let x = |t: f64| LABEL + t.max(0.0) * scale;
    let height = top + lane_count as f64 * LANE + 4.0;
    let longest = bars
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.duration.total_cmp(&b.1.duration))
        .map(|(i, _)| i);
    if let Some(pole) = longest.map(|i| bars[i].suite) {
        out.push_str("<p id=\"long-pole\">Long pole: suite <strong>");
        esc(out, &pole.name, MAX_TEXT);
        let _ = write!(out, "</strong>, {}", secs(pole.duration_secs));
        let slowest = pole
            .tests
            .iter()
            .filter_map(|t| Some((t, t.duration_secs?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((test, duration)) = slowest {
            out.push_str("; its slowest test <code>");
            esc(out, &test.label(), MAX_TEXT);
            let _ = write!(out, "</code>, {}", secs(duration));
        }
        out.push_str(".</p>\n");
    }
    let _ = writeln!(
        out,
        "<p class=\"meta\">A lane per worker: each suite's bar, its steps (blue: environment build) and below it the tests (the longest {TIMELINE_TESTS} at most), coloured by outcome. The long pole is outlined.</p>"
    );
    let _ = writeln!(
        out,
        "<svg id=\"timeline-chart\" viewBox=\"0 0 {WIDTH} {height:.0}\" role=\"img\" aria-label=\"timeline\">"
    );
    // The axis: about eight ticks at round seconds.
    let step = tick_step(end);
    let mut t = 0.0;
    while t <= end + 1e-9 {
        let _ = writeln!(
            out,
            "<line class=\"tick\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{height:.0}\"/><text x=\"{0:.1}\" y=\"14\" text-anchor=\"middle\">{2}</text>",
            x(t),
            AXIS - 4.0,
            secs_short(t)
        );
        t += step;
    }
    if !services.is_empty() {
        let _ = writeln!(
            out,
            "<text x=\"4\" y=\"{:.1}\">services</text>",
            AXIS + 14.0
        );
    }
    for service in services {
        // Starting until ready (or failed), then up until stopped.
        let ready_at = service.started_offset_secs + service.duration_secs;
        let _ = write!(
            out,
            "<g class=\"service-bar\"><rect class=\"step-service\" x=\"{:.1}\" y=\"{AXIS}\" width=\"{:.1}\" height=\"{SUITE_ROW}\"><title>",
            x(service.started_offset_secs),
            (service.duration_secs * scale).max(1.0)
        );
        esc(out, &service.name, MAX_TEXT);
        let _ = write!(
            out,
            ": {} in {}</title></rect>",
            if service.ready { "ready" } else { "not ready" },
            secs(service.duration_secs)
        );
        if let Some(stopped) = service.stopped_offset_secs {
            let _ = write!(
                out,
                "<rect class=\"service-up\" x=\"{:.1}\" y=\"{AXIS}\" width=\"{:.1}\" height=\"{SUITE_ROW}\"><title>",
                x(ready_at),
                ((stopped - ready_at) * scale).max(0.0)
            );
            esc(out, &service.name, MAX_TEXT);
            out.push_str(" up</title></rect>");
        }
        out.push_str("</g>\n");
    }
    for lane in 0..lane_count {
        let y = top + lane as f64 * LANE;
        let _ = writeln!(
            out,
            "<text x=\"4\" y=\"{:.1}\">worker {}</text>",
            y + 14.0,
            lane + 1
        );
    }
    for (i, (bar, (_, tests))) in bars.iter().zip(suites).enumerate() {
        let y = top + lanes[i] as f64 * LANE;
        let suite = bar.suite;
        let w = (bar.duration * scale).max(1.0);
        let pole = if Some(i) == longest { " pole" } else { "" };
        out.push_str("<g class=\"suite-bar\" data-suite=\"");
        esc(out, &suite.name, MAX_TEXT);
        let _ = write!(
            out,
            "\"><rect class=\"suite {}{pole}\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{SUITE_ROW}\"><title>",
            class("", &suite.outcome),
            x(bar.start)
        );
        esc(out, &suite.name, MAX_TEXT);
        let _ = write!(
            out,
            ": {} in {}</title></rect>",
            suite.outcome,
            secs(bar.duration)
        );
        // Its steps, each where it ran.
        for command in &suite.commands {
            let start = command.started_offset_secs;
            let sw = command.duration_secs * scale;
            if sw < 0.5 {
                continue;
            }
            let _ = write!(
                out,
                "<rect class=\"step {}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{sw:.1}\" height=\"5\"><title>",
                class("step", &command.step),
                x(start),
                y + SUITE_ROW - 5.0
            );
            esc(out, &command.step, MAX_TEXT);
            let _ = write!(out, " {}</title></rect>", secs(command.duration_secs));
        }
        if w > 7.0 * suite.name.chars().count().min(40) as f64 + 8.0 {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\">",
                x(bar.start) + 4.0,
                y + 13.0
            );
            esc(out, &suite.name, 40);
            out.push_str("</text>");
        }
        out.push_str("</g>\n");
        test_bars(out, tests, y + SUITE_ROW + 2.0, scale, &x);
    }
    out.push_str("</svg>\n");
}

/// The tests of one suite under its bar: every attempt that has a start, the longest first
/// up to a share of `TIMELINE_TESTS`, those narrower than half a unit left out.
fn test_bars(out: &mut String, tests: &[TestRecord], y: f64, scale: f64, x: &dyn Fn(f64) -> f64) {
    let mut attempts: Vec<(&TestRecord, &AttemptRecord, f64, f64)> = tests
        .iter()
        .flat_map(|t| {
            t.attempts.iter().filter_map(move |a| {
                let start = a.started_offset_secs?;
                let duration = a.duration_secs.unwrap_or(0.0);
                (duration * scale >= 0.5).then_some((t, a, start, duration))
            })
        })
        .collect();
    attempts.sort_by(|a, b| b.3.total_cmp(&a.3));
    attempts.truncate(TIMELINE_TESTS);
    for (test, attempt, start, duration) in attempts {
        let _ = write!(
            out,
            "<rect class=\"test {}\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{TEST_ROW}\"><title>",
            class("", attempt.outcome.name()),
            x(start),
            duration * scale
        );
        esc(out, &test.label(), MAX_TEXT);
        let _ = writeln!(
            out,
            ": {} in {}</title></rect>",
            attempt.outcome.name(),
            secs(duration)
        );
    }
}

/// A lane for each `(start, duration)`: the first whose last bar has ended when it starts.
fn lanes(bars: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..bars.len()).collect();
    order.sort_by(|&a, &b| bars[a].0.total_cmp(&bars[b].0));
    let mut ends: Vec<f64> = Vec::new();
    let mut lanes = vec![0; bars.len()];
    for i in order {
        let (start, duration) = bars[i];
        let lane = match ends.iter().position(|&end| end <= start + 1e-3) {
            Some(lane) => lane,
            None => {
                ends.push(0.0);
                ends.len() - 1
            }
        };
        ends[lane] = start + duration;
        lanes[i] = lane;
    }
    lanes
}

fn tick_step(end: f64) -> f64 {
    let raw = end / 8.0;
    [
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0,
        60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
    ]
    .into_iter()
    .find(|&s| s >= raw)
    .unwrap_or(7200.0)
}

fn flaky(out: &mut String, suites: &[Suite]) {
    let flaky: Vec<(&SuiteRecord, &TestRecord)> = suites
        .iter()
        .flat_map(|(s, tests)| {
            tests
                .iter()
                .filter(|t| t.outcome == TestOutcome::Flaky)
                .map(move |t| (*s, t))
        })
        .collect();
    let _ = writeln!(out, "<h2 id=\"flaky\">Flaky tests ({})</h2>", flaky.len());
    if flaky.is_empty() {
        out.push_str("<p>None.</p>\n");
        return;
    }
    out.push_str(
        "<table><thead><tr><th>test</th><th>suite</th><th>attempts</th></tr></thead><tbody>\n",
    );
    for (suite, test) in flaky.iter().take(LISTED_FLAKY) {
        out.push_str("<tr class=\"flaky-test\"><td><code>");
        esc(out, &test.label(), MAX_TEXT);
        out.push_str("</code><br><span class=\"loc\">");
        esc(out, &location(test).unwrap_or_default(), MAX_TEXT);
        out.push_str("</span></td><td>");
        esc(out, &suite.name, MAX_TEXT);
        out.push_str("</td><td><ol>");
        for attempt in &test.attempts {
            let _ = write!(
                out,
                "<li><span class=\"badge {}\">{}</span> {}",
                class("o", attempt.outcome.name()),
                attempt.outcome.name(),
                attempt.duration_secs.map_or(String::new(), secs)
            );
            if let Some(message) = &attempt.message {
                out.push_str(" <span class=\"msg\">");
                esc(out, message, MAX_SHORT_MESSAGE);
                out.push_str("</span>");
            }
            out.push_str("</li>");
        }
        out.push_str("</ol></td></tr>\n");
    }
    out.push_str("</tbody></table>\n");
    if flaky.len() > LISTED_FLAKY {
        let _ = writeln!(
            out,
            "<p>{} more flaky tests are in junit.xml.</p>",
            flaky.len() - LISTED_FLAKY
        );
    }
}

fn slowest(out: &mut String, suites: &[Suite]) {
    let mut timed: Vec<(&SuiteRecord, &TestRecord, f64)> = suites
        .iter()
        .flat_map(|(s, tests)| {
            tests
                .iter()
                .filter(|t| !t.synthetic)
                .filter_map(move |t| Some((*s, t, t.duration_secs?)))
        })
        .collect();
    let shown = timed.len().min(SLOWEST);
    if shown > 0 {
        timed.select_nth_unstable_by(shown - 1, |a, b| b.2.total_cmp(&a.2));
        timed.truncate(shown);
        timed.sort_by(|a, b| b.2.total_cmp(&a.2));
    }
    let _ = writeln!(out, "<h2 id=\"slowest\">Slowest tests</h2>");
    if timed.is_empty() {
        out.push_str("<p>No test reported a time.</p>\n");
        return;
    }
    out.push_str("<table><thead><tr><th class=\"n\">time</th><th>test</th><th>suite</th><th>outcome</th></tr></thead><tbody>\n");
    for (suite, test, duration) in timed {
        let _ = write!(out, "<tr><td class=\"n\">{}</td><td><code>", secs(duration));
        esc(out, &test.label(), MAX_TEXT);
        out.push_str("</code></td><td>");
        esc(out, &suite.name, MAX_TEXT);
        let _ = writeln!(
            out,
            "</td><td><span class=\"badge {}\">{}</span></td></tr>",
            class("o", test.outcome.name()),
            test.outcome.name()
        );
    }
    out.push_str("</tbody></table>\n");
}

fn suite_details(out: &mut String, suites: &[Suite]) {
    out.push_str("<h2 id=\"suite-details\">Suites</h2>\n");
    for (suite, _) in suites {
        out.push_str("<details class=\"suite-detail\" id=\"suite-");
        esc(out, &suite.name, MAX_TEXT);
        out.push_str("\"><summary><strong>");
        esc(out, &suite.name, MAX_TEXT);
        let _ = write!(
            out,
            "</strong> <span class=\"badge {}\">",
            class("o", &suite.outcome)
        );
        esc(out, &suite.outcome, MAX_TEXT);
        let _ = write!(out, "</span> {}", secs(suite.duration_secs));
        out.push_str("</summary>\n<table>");
        let row = |out: &mut String, key: &str, value: &str| {
            let _ = write!(out, "<tr><th>{key}</th><td><code>");
            esc(out, value, MAX_TEXT);
            out.push_str("</code></td></tr>");
        };
        row(out, "directory", &suite.dir);
        if let Some(detail) = &suite.detail {
            row(out, "detail", detail);
        }
        row(out, "environment", &suite.environment.path);
        row(out, "environment key", &suite.environment.key);
        row(out, "working directory", &suite.cwd.to_string_lossy());
        row(out, "log", &suite.log);
        row(out, "JUnit", &suite.junit);
        row(out, "timeout", &format!("{} s", suite.timeout_secs));
        row(out, "started", &suite.started_at);
        if !suite.env.is_empty() {
            let vars: Vec<String> = suite
                .env
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            row(out, "variables set", &vars.join("\n"));
        }
        if !suite.env_removed.is_empty() {
            row(out, "variables removed", &suite.env_removed.join(" "));
        }
        out.push_str("</table>\n<table><thead><tr><th>step</th><th>command</th><th>exit</th><th class=\"n\">time</th></tr></thead><tbody>");
        for command in &suite.commands {
            out.push_str("<tr><td>");
            esc(out, &command.step, MAX_TEXT);
            out.push_str("</td><td><code>");
            let line: Vec<String> = command
                .argv
                .iter()
                .map(|a| crate::invocation::shell_quote(a))
                .collect();
            esc(out, &line.join(" "), 4 * MAX_TEXT);
            out.push_str("</code></td><td>");
            let ended = match (&command.skipped, command.exit_code, command.signal) {
                (Some(why), _, _) => format!("skipped: {why}"),
                (None, Some(code), _) => code.to_string(),
                (None, None, Some(signal)) => format!("signal {signal}"),
                (None, None, None) => "-".to_string(),
            };
            esc(out, &ended, MAX_TEXT);
            let _ = writeln!(
                out,
                "</td><td class=\"n\">{}</td></tr>",
                secs(command.duration_secs)
            );
        }
        out.push_str("</tbody></table></details>\n");
    }
}

fn health(out: &mut String, record: &RunRecord) {
    let Some(health) = &record.health else {
        return;
    };
    out.push_str("<h2 id=\"health\">Services and prerequisites</h2>\n<table><thead><tr><th>name</th><th>kind</th><th>target</th><th>available</th><th class=\"n\">latency</th><th>error</th></tr></thead><tbody>\n");
    for h in health {
        out.push_str("<tr><td>");
        esc(out, &h.name, MAX_TEXT);
        out.push_str("</td><td>");
        esc(out, &h.kind, MAX_TEXT);
        out.push_str("</td><td><code>");
        esc(out, &h.target, MAX_TEXT);
        let _ = write!(
            out,
            "</code></td><td>{}</td><td class=\"n\">{}</td><td>",
            if h.available { "yes" } else { "no" },
            h.latency_ms.map_or("-".into(), |ms| format!("{ms:.0} ms"))
        );
        esc(out, h.error.as_deref().unwrap_or(""), MAX_MESSAGE);
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

/// `prefix-name` as a CSS class: only `a-z0-9-` of `name` is kept.
fn class(prefix: &str, name: &str) -> String {
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect::<String>()
        .to_ascii_lowercase();
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}-{name}")
    }
}

/// Appends `text` to `out` as HTML text or attribute value: control characters made visible,
/// cut to `max` bytes (its head and tail, and how much was cut), then escaped.
pub fn esc(out: &mut String, text: &str, max: usize) {
    let text = crate::text::readable(text);
    let (head, cut, tail) = cut(&text, max);
    escape_into(out, head);
    if cut > 0 {
        let _ = write!(out, "\n… {cut} bytes cut …\n");
        escape_into(out, tail);
    }
}

/// `text` as its head, how many bytes are left out, and its tail, together at most `max`
/// bytes, cut at character boundaries.
fn cut(text: &str, max: usize) -> (&str, usize, &str) {
    if text.len() <= max {
        return (text, 0, "");
    }
    let mut head = max * 2 / 3;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - (max - max * 2 / 3);
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    (&text[..head], tail - head, &text[tail..])
}

fn escape_into(out: &mut String, text: &str) {
    let mut last = 0;
    for (i, b) in text.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&text[last..i]);
        out.push_str(entity);
        last = i + 1;
    }
    out.push_str(&text[last..]);
}

/// `0.42 s`, `12.3 s`, `4 min 05 s`.
fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2} s")
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{} min {:02.0} s", (s / 60.0).floor(), s % 60.0)
    }
}

fn secs_short(s: f64) -> String {
    if s == 0.0 {
        "0".into()
    } else if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.0} min", s / 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_made_visible_and_cut() {
        let mut out = String::new();
        esc(
            &mut out,
            "</script><script>alert(1)</script> ]]> \"q\" 'a' & \x07",
            1000,
        );
        assert_eq!(
            out,
            "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; ]]&gt; &quot;q&quot; &#39;a&#39; &amp; \u{2407}"
        );
        let mut out = String::new();
        esc(&mut out, &"é".repeat(10_000), 100);
        assert!(out.len() < 200, "{}", out.len());
        assert!(out.contains("bytes cut"), "{out}");
    }

    #[test]
    fn lanes_reuse_a_worker_once_its_suite_ended() {
        let bars = [(0.0, 5.0), (0.0, 1.0), (1.0, 2.0), (3.0, 1.0)];
        assert_eq!(lanes(&bars), [0, 1, 1, 1]);
    }

    /// A record of one suite with `n` tests in 4 files, as the 20,000-test benchmark's;
    /// every test failing with an 8 KB traceback and a 1 KB message when `failing`.
    fn many(n: usize, failing: bool) -> RunRecord {
        let outcome = if failing { "failed" } else { "passed" };
        let traceback = "    assert value == expected\nE   AssertionError: not equal\n".repeat(160);
        let message = "assert 1 == 2 ".repeat(70);
        let tests: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                let file = format!("tests/test_many_{}.py", i % 4);
                serde_json::json!({
                    "node_id": format!("{file}::test_{i}"), "classname": "tests.test_many",
                    "name": format!("test_{i}"), "file": format!("many/{file}"), "line": i + 1,
                    "outcome": outcome, "duration_secs": 0.0004 + (i % 100) as f64 * 1e-5,
                    "synthetic": false,
                    "attempts": [{
                        "outcome": outcome, "started_offset_secs": 1.0 + i as f64 * 0.0005,
                        "duration_secs": 0.0004, "message": failing.then_some(&message),
                        "kind": failing.then_some("AssertionError"),
                        "details": failing.then_some(&traceback)
                    }]
                })
            })
            .collect();
        let mut counts = crate::model::Counts {
            tests: n,
            ..Default::default()
        };
        if failing {
            counts.failed = n;
        } else {
            counts.passed = n;
        }
        let suite = serde_json::json!({
            "name": "many", "group": "unit", "dir": "many", "outcome": outcome,
            "detail": null, "counts": counts, "started_at": "2026-01-01T00:00:00.5Z",
            "started_offset_secs": 0.5, "duration_secs": 11.0, "worker": 0,
            "timeout_secs": 1800, "environment": {"path": "p", "key": "k"}, "cwd": "/r",
            "env": {}, "env_removed": [],
            "commands": [{"step": "pytest", "argv": ["pytest"], "exit_code": 0,
                "skipped": null, "signal": null, "started_offset_secs": 0.5,
                "duration_secs": 11.0}],
            "log": "logs/many.log", "junit": "junit/many.xml", "tests": tests
        });
        serde_json::from_value(serde_json::json!({
            "schema_version": 4, "xtask_version": "0", "invocation": ["test"],
            "run_id": "r", "started_at": "2026-01-01T00:00:00Z", "root": "/r",
            "status": "finished", "pid": 1, "outcome": outcome, "duration_secs": 12.0,
            "jobs": 1, "rerun_of": null, "git": null, "uv": null, "junit": "junit.xml",
            "suites": [suite],
            "services": [], "health": null, "exit_code": 0, "exit_code_name": "OK",
            "error": null, "peak_rss_bytes": null
        }))
        .expect("a record")
    }

    /// The page of 20,000 tests stays under 5 MB, passing or all failing (`cargo xtask
    /// bench` times it; `-- --nocapture` prints this build's time too).
    #[test]
    fn twenty_thousand_tests_make_a_page_under_five_megabytes() {
        for failing in [false, true] {
            let record = many(20_000, failing);
            let start = std::time::Instant::now();
            let page = render(&record);
            println!(
                "20,000 tests, failing: {failing}: {} bytes in {:.3} s",
                page.len(),
                start.elapsed().as_secs_f64()
            );
            assert!(page.len() <= 5_000_000, "{} bytes", page.len());
            assert!(page.contains("id=\"count-tests\">20000<"));
            if failing {
                assert_eq!(
                    page.matches("class=\"failure failure-item\"").count(),
                    DETAILED_FAILURES
                );
                assert!(page.contains("15000 more failures are not listed here"));
            } else {
                assert!(!page.contains("failure-item"));
            }
            assert_eq!(page.matches("<tr><td class=\"n\">").count(), SLOWEST);
        }
    }
}
