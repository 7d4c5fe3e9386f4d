//! What pytest itself knows of a run, for the xtask's reports: which test was running
//! when a suite was stopped (pytest's report names only the tests that ended), which tests
//! failed and which ran (for `--retries`, and so that a test that never ran cannot pass),
//! which tests pytest was to run, pytest's rootdir and deselected count (pytest's own
//! values, whatever `-q` or `-p no:terminal` leave of its output), and with `--partition`
//! the selection of a slice. A tiny pytest plugin does it (`pytest_plugin.py`, written by
//! the xtask into its working directory and loaded with `-p _xtask_progress`, its
//! directory appended last to the pytest step's PYTHONPATH). It never changes a test's
//! result, and ignores any error of its own.

use std::path::Path;

use anyhow::Context;

use crate::paths::write_atomically;

/// The plugin's module name, as given to `-p`.
pub const PLUGIN_MODULE: &str = "_xtask_progress";
/// The variable naming the file the plugin writes.
pub const FILE_ENV: &str = "XTASK_PROGRESS_FILE";
/// The variable naming the file the plugin appends `S <epoch seconds> <node id>` (started),
/// `F <node id>` (failed, in any phase) and `R <node id>` (ran to its end) to.
pub const RESULTS_ENV: &str = "XTASK_RESULTS_FILE";
/// The variable naming the file the plugin writes the node ids pytest is to run to.
pub const COLLECTED_ENV: &str = "XTASK_COLLECTED_FILE";
/// The variable naming the file the plugin writes the rootdir and the deselected count to.
pub const SESSION_ENV: &str = "XTASK_SESSION_FILE";

/// What the plugin learned of the pytest session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// pytest's rootdir: its report's `file` attributes and node ids are relative to it.
    pub rootdir: Option<std::path::PathBuf>,
    /// How many tests were deselected (`-m`, `-k`, `--deselect`, a partition).
    pub deselected: usize,
    /// With a partition: how many tests were selected before it took its slice.
    pub before_partition: Option<usize>,
}

/// What the plugin wrote to `path` (nothing, when pytest never configured it).
pub fn session(path: &Path) -> Session {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines();
    Session {
        rootdir: lines.next().filter(|l| !l.is_empty()).map(Into::into),
        deselected: lines.next().and_then(|l| l.parse().ok()).unwrap_or(0),
        before_partition: lines.next().and_then(|l| l.parse().ok()),
    }
}

/// What the plugin noted of the tests of one pytest run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Results {
    /// The tests that failed in any phase, each once, in order.
    pub failed: Vec<String>,
    /// The tests that ran to their end.
    pub ran: std::collections::HashSet<String>,
    /// When each test that started did (seconds since the Unix epoch, the wall clock of
    /// the machine pytest ran on), by node id.
    pub starts: std::collections::HashMap<String, f64>,
}

/// What the plugin noted in `path` (nothing, when pytest never ran a test).
pub fn results(path: &Path) -> Results {
    let mut results = Results::default();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        match line.split_once(' ') {
            Some(("F", id)) if !results.failed.iter().any(|f| f == id) => {
                results.failed.push(id.to_string())
            }
            Some(("R", id)) => {
                results.ran.insert(id.to_string());
            }
            Some(("S", rest)) => {
                if let Some((at, id)) = rest.split_once(' ') {
                    if let Ok(at) = at.parse::<f64>() {
                        results.starts.insert(id.to_string(), at);
                    }
                }
            }
            _ => {}
        }
    }
    results
}

/// The node ids pytest was to run, in order, as the plugin noted them in `path`; `None`
/// when it did not (collection never finished, `--collect-only`, a plugin that collects
/// elsewhere such as xdist's controller).
pub fn collected(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.lines().map(str::to_string).collect())
}

/// The plugin's source (`pytest_plugin.py`, a Python file of its own so that Python's
/// tools can read it). Its progress file holds three lines: the node id, the file relative
/// to pytest's rootdir, and pytest's 0-based line (empty when pytest has none).
pub const PLUGIN_SOURCE: &str = include_str!("pytest_plugin.py");

/// Writes the plugin into `dir` (each suite does; the contents are always the same, and
/// the write is atomic, so a pytest starting meanwhile reads a whole file).
pub fn install(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{PLUGIN_MODULE}.py"));
    if std::fs::read(&path).is_ok_and(|old| old == PLUGIN_SOURCE.as_bytes()) {
        return Ok(());
    }
    write_atomically(&path, PLUGIN_SOURCE.as_bytes())
}

/// The test that was running, as the plugin recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Running {
    pub nodeid: String,
    /// Relative to pytest's rootdir (the suite's directory).
    pub file: Option<String>,
    /// 0-based, as pytest gives it.
    pub line: Option<u64>,
}

/// What the plugin recorded in `path`, if a test was running.
pub fn read(path: &Path) -> Option<Running> {
    parse(&std::fs::read_to_string(path).ok()?)
}

fn parse(text: &str) -> Option<Running> {
    let mut lines = text.lines();
    let nodeid = lines.next().filter(|n| !n.is_empty())?.to_string();
    let file = lines.next().filter(|f| !f.is_empty()).map(str::to_string);
    let line = lines.next().and_then(|l| l.trim().parse().ok());
    Some(Running { nodeid, file, line })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_plugin_writes_is_read() {
        assert_eq!(
            parse("tests/test_x.py::test_y[a b]\ntests/test_x.py\n11\n"),
            Some(Running {
                nodeid: "tests/test_x.py::test_y[a b]".into(),
                file: Some("tests/test_x.py".into()),
                line: Some(11),
            })
        );
        assert_eq!(
            parse("t.py::x\nt.py\n\n").unwrap().line,
            None,
            "pytest gave no line"
        );
        assert_eq!(parse(""), None);
        // What a test that ended leaves: a blank first line over an older, longer record.
        assert_eq!(
            parse("\nts/test_x.py::test_long_name\ntests/test_x.py\n11\n"),
            None
        );
        // A shorter record over a longer one: the first three lines are the record.
        assert_eq!(
            parse("a.py::t\na.py\n3\nt_long_name\ntests/test_x.py\n11\n")
                .unwrap()
                .line,
            Some(3)
        );
    }

    #[test]
    fn results_say_what_failed_and_what_ran() {
        let dir = std::env::temp_dir().join(format!("xtask-results-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r");
        assert_eq!(results(&path), Results::default());
        std::fs::write(
            &path,
            "S 1.5 t.py::a\nF t.py::a\nR t.py::a\nF t.py::a\nS 2.25 t.py::b c\nR t.py::b c\nF t.py::d\n",
        )
        .unwrap();
        let read = results(&path);
        assert_eq!(read.failed, ["t.py::a", "t.py::d"]);
        assert!(read.ran.contains("t.py::a") && read.ran.contains("t.py::b c"));
        assert!(!read.ran.contains("t.py::d"));
        assert_eq!(read.starts["t.py::a"], 1.5);
        assert_eq!(read.starts["t.py::b c"], 2.25);
        assert_eq!(read.starts.len(), 2);
        assert_eq!(collected(&dir.join("none")), None);
        std::fs::write(dir.join("c"), "t.py::a\nt.py::b c\n").unwrap();
        assert_eq!(collected(&dir.join("c")).unwrap(), ["t.py::a", "t.py::b c"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_session_file_is_read() {
        let dir = std::env::temp_dir().join(format!("xtask-session-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        assert_eq!(session(&path), Session::default());
        std::fs::write(&path, "/repo/pkg dir\n7\n\n").unwrap();
        assert_eq!(
            session(&path),
            Session {
                rootdir: Some("/repo/pkg dir".into()),
                deselected: 7,
                before_partition: None,
            }
        );
        std::fs::write(&path, "/repo\n7\n12\n").unwrap();
        assert_eq!(session(&path).before_partition, Some(12));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_plugin_uses_the_names_the_xtask_passes() {
        assert!(PLUGIN_SOURCE.contains(&format!("os.environ[\"{FILE_ENV}\"]")));
        assert!(PLUGIN_SOURCE.contains(&format!("os.environ[\"{SESSION_ENV}\"]")));
        assert!(PLUGIN_SOURCE.contains(&format!("os.environ[\"{RESULTS_ENV}\"]")));
        assert!(PLUGIN_SOURCE.contains(&format!("os.environ.get(\"{COLLECTED_ENV}\")")));
        assert!(PLUGIN_SOURCE.contains(&format!("`-p {PLUGIN_MODULE}`")));
    }
}
