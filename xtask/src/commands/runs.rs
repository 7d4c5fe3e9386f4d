//! `cargo xtask runs`: the kept invocations under `target/xtask/runs/`, newest first.

use std::path::Path;

use crate::flags::RunsArgs;
use crate::paths::Layout;
use crate::report::run_record::{self, RunRecord, Status};

impl RunsArgs {
    pub fn run(&self, layout: &Layout) -> anyhow::Result<()> {
        let rows = rows(layout);
        if rows.is_empty() {
            println!(
                "no runs kept in {} (`cargo xtask test` or `ci` makes one)",
                layout.display(&layout.runs_dir())
            );
            return Ok(());
        }
        print!("{}", table(&rows));
        Ok(())
    }
}

/// One kept invocation as the list shows it.
struct Row {
    id: String,
    latest: bool,
    /// `None` when its record cannot be read: why.
    record: Result<RunRecord, String>,
    /// Whether its invocation still runs (holds its lock).
    live: bool,
}

/// Every invocation directory, newest first (run ids sort by their start time).
fn rows(layout: &Layout) -> Vec<Row> {
    let Ok(entries) = std::fs::read_dir(layout.runs_dir()) else {
        return Vec::new();
    };
    let latest = std::fs::read_link(layout.latest())
        .ok()
        .and_then(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()));
    let mut rows: Vec<Row> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .map(|id| {
            let dir = layout.runs_dir().join(&id);
            Row {
                latest: latest.as_deref() == Some(id.as_str()),
                record: read(&dir.join("run.json")),
                live: crate::runs::is_live(&dir),
                id,
            }
        })
        .collect();
    rows.sort_by(|a, b| b.id.cmp(&a.id));
    rows
}

fn read(path: &Path) -> Result<RunRecord, String> {
    if !path.exists() {
        return Err("no run.json".into());
    }
    run_record::load(path).map_err(|err| err.to_string())
}

/// `id  started  outcome  tests passed failed skipped errors  duration  commit`.
fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 9]> = rows.iter().map(cells).collect();
    let header = [
        "run", "started", "outcome", "tests", "passed", "failed", "skipped", "errors", "time",
    ];
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str], last: &str| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            // The id, start and outcome read left to right; the numbers line up right.
            if i < 3 {
                text.push_str(&format!("{cell:<w$}  "));
            } else {
                text.push_str(&format!("{cell:>w$}  "));
            }
        }
        text.push_str(last);
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(&header, "commit");
    for (row, cells) in rows.iter().zip(&cells) {
        let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
        let last = match &row.record {
            Ok(record) => commit(record),
            Err(why) => format!("unreadable: {why}"),
        };
        out.push_str(&line(&refs, &last));
    }
    out
}

fn cells(row: &Row) -> [String; 9] {
    let id = if row.latest {
        format!("{} (latest)", row.id)
    } else {
        row.id.clone()
    };
    let Ok(record) = &row.record else {
        return [
            id,
            "?".into(),
            "unreadable".into(),
            "".into(),
            "".into(),
            "".into(),
            "".into(),
            "".into(),
            "".into(),
        ];
    };
    let outcome = match record.status {
        Status::Running if row.live => "running".to_string(),
        // Its process is gone and it never said how it ended: killed outright.
        Status::Running => "running (killed)".to_string(),
        Status::Finished => record.outcome.clone().unwrap_or_else(|| {
            record
                .exit_code_name
                .clone()
                .unwrap_or_else(|| "none".into())
        }),
    };
    let mut totals = [0usize; 5];
    for suite in &record.suites {
        let c = &suite.counts;
        for (t, n) in totals
            .iter_mut()
            .zip([c.tests, c.passed, c.failed, c.skipped, c.errors])
        {
            *t += n;
        }
    }
    let started = chrono::DateTime::parse_from_rfc3339(&record.started_at)
        .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| record.started_at.clone());
    let time = record
        .duration_secs
        .map_or_else(|| "-".into(), |d| format!("{d:.1}s"));
    let [tests, passed, failed, skipped, errors] = totals.map(|n| n.to_string());
    [
        id, started, outcome, tests, passed, failed, skipped, errors, time,
    ]
}

/// `3f9a1c2d4e (dirty)`, or `-` outside git.
fn commit(record: &RunRecord) -> String {
    match &record.git {
        Some(git) => {
            let short: String = git.commit.chars().take(10).collect();
            if git.dirty {
                format!("{short} (dirty)")
            } else {
                short
            }
        }
        None => "-".into(),
    }
}
