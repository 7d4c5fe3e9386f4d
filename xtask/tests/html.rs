//! The HTML report (`runs/<id>/report.html`) of real runs, opened in headless Chromium.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;
use xtask::exit_codes;

const SECRET: &str = "s3cr3t-v4lue-0123456789";
const HOSTILE: &str = "</script><script>alert(1)</script> </style> ]]>";

/// Everything `report.html` shows, from the run's record and JUnit, and what the page did
/// in the browser.
#[test]
fn a_failing_runs_report_shows_its_record_in_a_real_browser_and_nothing_acts() {
    let fixture = Fixture::new("html", "html-report");
    let mut command = fixture.command(&["test"]);
    command.env("HTML_FIXTURE_TOKEN", SECRET);
    let run = run(command);
    assert_code(&run, exit_codes::TESTS_FAILED);
    let record = record(&fixture);
    let run_dir = fixture
        .root
        .join("target/xtask/runs")
        .join(record["run_id"].as_str().unwrap());
    let page = run_dir.join("report.html");
    let html = std::fs::read_to_string(&page).expect("every run writes runs/<id>/report.html");
    assert_eq!(
        fixture.read("target/xtask/report.html"),
        html,
        "target/xtask/report.html leads to the latest run's"
    );

    // Self-contained and inert, as written.
    assert!(html.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
    ));
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "no script at all");
    for external in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "url(http",
        "@import",
    ] {
        assert!(!lower.contains(external), "nothing external: {external}");
    }
    assert!(!html.contains(SECRET), "the secret is masked");
    assert!(!html.contains(HOSTILE), "hostile text is escaped");
    assert!(
        html.contains("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; &lt;/style&gt; ]]&gt;"),
        "and shown"
    );
    assert!(
        !html.chars().any(|c| c.is_control() && c != '\n'),
        "no raw control character"
    );
    // A 3 MB message and 2 MB of output, cut.
    assert!(html.len() < 300_000, "{} bytes", html.len());

    let screenshot = run_dir.join("report.png");
    let browser = open_in_browser(&page, &screenshot);
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "a screenshot is kept"
    );

    // No request but the page itself; no console message, exception or log entry (a CSP
    // violation would be one).
    let url = browser["url"].as_str().unwrap();
    assert_eq!(browser["requests"], serde_json::json!([url]), "{browser:#}");
    assert_eq!(browser["console"], serde_json::json!([]), "{browser:#}");
    assert_eq!(browser["log"], serde_json::json!([]), "{browser:#}");
    let dom = &browser["dom"];
    assert_eq!(dom["scripts"], 0);

    // The counts shown are the record's.
    let suites = record["suites"].as_array().unwrap();
    for key in [
        "tests",
        "passed",
        "failed",
        "errors",
        "skipped",
        "deselected",
        "flaky",
    ] {
        let total: u64 = suites
            .iter()
            .map(|s| s["counts"][key].as_u64().unwrap())
            .sum();
        assert_eq!(dom["counts"][key], total.to_string(), "{key}: {dom:#}");
    }
    assert_eq!(dom["counts"]["suites"], suites.len().to_string());
    assert_eq!(dom["outcome"], record["outcome"]);
    assert_eq!(
        dom["outcome"], "failed",
        "the fixture fails, so the outcome checks something"
    );

    // A bar per suite in the timeline.
    let names: Vec<&Value> = suites.iter().map(|s| &s["name"]).collect();
    let bars: Vec<&Value> = dom["suite_bars"].as_array().unwrap().iter().collect();
    assert_eq!(bars, names);
    // The long pole: the longest suite of the record.
    let pole = suites
        .iter()
        .max_by(|a, b| {
            let d = |s: &Value| s["duration_secs"].as_f64().unwrap();
            d(a).total_cmp(&d(b))
        })
        .unwrap();
    let pole_line = format!("Long pole: suite {}", pole["name"].as_str().unwrap());
    assert!(
        dom["text"].as_str().unwrap().contains(&pole_line),
        "{pole_line}"
    );
    // And the tests inside them, from the record's start offsets (`test_passes` sleeps
    // long enough to be drawn).
    assert!(dom["test_bars"].as_u64().unwrap() >= 1, "{dom:#}");

    // Every failure of the JUnit report, with its file:line and message, masked.
    let report = fixture.report();
    let failures: Vec<String> = dom["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let mut failing = 0;
    for suite in &report.test_suites {
        for case in &suite.test_cases {
            if !matches!(case.status, quick_junit::TestCaseStatus::NonSuccess { .. }) {
                continue;
            }
            failing += 1;
            let location = format!("{}:{}", attr(case, "file"), attr(case, "line"));
            let name = case.name.as_str();
            assert!(
                failures
                    .iter()
                    .any(|f| f.contains(&location) && f.contains(name.split('[').next().unwrap())),
                "{name} at {location} is not listed: {failures:#?}"
            );
        }
    }
    assert_eq!(failing, 4, "the fixture's four failures");
    assert_eq!(failures.len(), failing);
    let text = dom["text"].as_str().unwrap();
    assert!(text.contains("arithmetic is broken"), "messages are shown");
    assert!(text.contains("leaked ***"), "masked as everywhere else");
    assert!(!text.contains(SECRET));
    assert!(
        text.contains(HOSTILE),
        "hostile text is shown as text, not run"
    );
    assert!(text.contains("bytes cut"), "huge texts are cut");

    // The flaky test with its attempts: failed, then passed.
    let flaky = dom["flaky"].as_array().unwrap();
    assert_eq!(flaky.len(), 1, "{flaky:?}");
    let flaky = flaky[0].as_str().unwrap();
    assert!(flaky.contains("test_flaky"), "{flaky}");
    let (failed, passed) = (flaky.find("failed"), flaky.rfind("passed"));
    assert!(
        matches!((failed, passed), (Some(f), Some(p)) if f < p),
        "{flaky}"
    );
    assert!(flaky.contains("the first attempt fails"), "{flaky}");
    // Each suite's details (folded): its log's path and its commands.
    for suite in suites {
        assert!(html.contains(suite["log"].as_str().unwrap()));
        assert!(html.contains(suite["environment"]["key"].as_str().unwrap()));
    }
}

/// The harness itself sees a request and a console error when a page makes them: the
/// assertions above can fail.
#[test]
fn the_browser_check_sees_requests_and_console_errors() {
    let fixture = Fixture::empty("html-control");
    let page = fixture.path("control.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><img src=\"http://127.0.0.1:9/pixel.png\">\
         <script>console.error('from the page')</script></body></html>",
    )
    .unwrap();
    let browser = open_in_browser(&page, &fixture.path("control.png"));
    let requests = browser["requests"].to_string();
    assert!(
        requests.contains("http://127.0.0.1:9/pixel.png"),
        "{browser:#}"
    );
    assert!(
        browser["console"].to_string().contains("from the page"),
        "{browser:#}"
    );
    assert!(Path::new(&fixture.path("control.png")).is_file());
}

/// An invocation that ends before any suite runs still leaves its page, saying why.
#[test]
fn a_run_without_suites_has_a_report_naming_its_error() {
    let fixture = Fixture::new("html", "html-no-suites");
    let run = fixture.run(&["test", "no_such_suite"]);
    assert_ne!(run.code, exit_codes::OK);
    let record = record(&fixture);
    let html = fixture.read("target/xtask/report.html");
    assert!(html.contains("no_such_suite"), "{html}");
    assert!(html.contains("id=\"count-suites\">0<"));
    assert!(html.contains(record["exit_code_name"].as_str().unwrap()));
}
