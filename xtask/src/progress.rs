//! Which test was running when a suite was stopped.
//!
//! pytest's report names only the tests that ended, so on a timeout the xtask could not
//! say which test hung. A tiny pytest plugin, written by the xtask into its working
//! directory and loaded with `-p _xtask_progress` (its directory is appended last to the
//! pytest step's PYTHONPATH), records at `pytest_runtest_logstart` the test's node id and
//! location at the start of the file named by `XTASK_PROGRESS_FILE` (one `pwrite`, so
//! 20,000 tests cost next to nothing), and blanks its first line at
//! `pytest_runtest_logfinish`. It never changes a test's result, and ignores any error of
//! its own. It notes failed tests' node ids in `XTASK_FAILED_FILE` (for `--retries`), and
//! in `XTASK_SESSION_FILE` pytest's rootdir (what its report's files are relative to) and
//! how many tests were deselected: pytest's own values, whatever `-q` or `-p no:terminal`
//! leave of its header and summary line. With
//! `--partition hash:K/N` (`XTASK_PARTITION=K/N`) it also deselects, at
//! collection, the tests whose node id does not hash (crc32) to slice K.

use std::path::Path;

use anyhow::Context;

use crate::paths::write_atomically;

/// The plugin's module name, as given to `-p`.
pub const PLUGIN_MODULE: &str = "_xtask_progress";
/// The variable naming the file the plugin writes.
pub const FILE_ENV: &str = "XTASK_PROGRESS_FILE";
/// The variable naming the file the plugin appends failed tests' node ids to (`--retries`).
pub const FAILED_ENV: &str = "XTASK_FAILED_FILE";
/// The variable naming the file the plugin writes the rootdir and the deselected count to.
pub const SESSION_ENV: &str = "XTASK_SESSION_FILE";

/// What the plugin learned of the pytest session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// pytest's rootdir: its report's `file` attributes and node ids are relative to it.
    pub rootdir: Option<std::path::PathBuf>,
    /// How many tests were deselected (`-m`, `-k`, `--deselect`, a partition).
    pub deselected: usize,
}

/// What the plugin wrote to `path` (nothing, when pytest never configured it).
pub fn session(path: &Path) -> Session {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines();
    Session {
        rootdir: lines.next().filter(|l| !l.is_empty()).map(Into::into),
        deselected: lines.next().and_then(|l| l.parse().ok()).unwrap_or(0),
    }
}

/// The node ids the plugin noted as failed in `path`, each once, in order.
pub fn failed(path: &Path) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        if !line.is_empty() && !ids.iter().any(|id| id == line) {
            ids.push(line.to_string());
        }
    }
    ids
}

/// The plugin's source. Its file holds three lines: the node id, the file relative to
/// pytest's rootdir, and pytest's 0-based line (empty when pytest has none).
pub const PLUGIN_SOURCE: &str = r#""""The xtask's progress plugin: records which test is running, so that a timeout can name it.

Written and loaded by the xtask (`-p _xtask_progress`). When a test starts it writes the
test's node id, file (relative to the rootdir) and 0-based line at the start of
$XTASK_PROGRESS_FILE, and when it ends an empty first line: one pwrite each, so that
20,000 tests cost next to nothing (the reader takes the first three lines only, and reads
after pytest has stopped). It does nothing else, and never changes a test's result: any
error of its own is ignored.
"""

import os

_FD = None
try:
    _FD = os.open(os.environ["XTASK_PROGRESS_FILE"], os.O_WRONLY | os.O_CREAT, 0o600)
except Exception:
    pass


def pytest_runtest_logstart(nodeid, location):
    if _FD is None:
        return
    try:
        fspath, lineno, _ = location
        line = "" if lineno is None else str(lineno)
        os.pwrite(_FD, f"{nodeid}\n{fspath}\n{line}\n".encode("utf-8", "replace"), 0)
    except Exception:
        pass


_FAILED = None
try:
    _FAILED = open(os.environ["XTASK_FAILED_FILE"], "a", encoding="utf-8", errors="replace")
except Exception:
    pass


def pytest_runtest_logreport(report):
    """Notes each failed test's node id (in any phase) for `--retries`."""
    if _FAILED is None or not report.failed:
        return
    try:
        _FAILED.write(report.nodeid + "\n")
        _FAILED.flush()
    except Exception:
        pass


_ROOTDIR = ""
_DESELECTED = 0


def _write_session():
    """$XTASK_SESSION_FILE: the rootdir, then how many tests were deselected."""
    try:
        with open(os.environ["XTASK_SESSION_FILE"], "w", encoding="utf-8", errors="replace") as f:
            f.write(f"{_ROOTDIR}\n{_DESELECTED}\n")
    except Exception:
        pass


def pytest_configure(config):
    global _ROOTDIR
    try:
        _ROOTDIR = str(config.rootpath)
    except Exception:
        return
    _write_session()


def pytest_deselected(items):
    global _DESELECTED
    try:
        _DESELECTED += len(items)
    except Exception:
        return
    _write_session()


def pytest_collection_modifyitems(config, items):
    """With $XTASK_PARTITION=K/N, keeps the tests whose node id hashes to slice K of N
    (crc32: the same on every machine and every run) and deselects the others."""
    spec = os.environ.get("XTASK_PARTITION")
    if not spec:
        return
    import zlib

    index, count = (int(part) for part in spec.split("/"))
    keep, drop = [], []
    for item in items:
        slot = zlib.crc32(item.nodeid.encode("utf-8")) % count
        (keep if slot == index - 1 else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_runtest_logfinish(nodeid, location):
    if _FD is None:
        return
    try:
        os.pwrite(_FD, b"\n", 0)
    except Exception:
        pass
"#;

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
    fn the_session_file_is_read() {
        let dir = std::env::temp_dir().join(format!("xtask-session-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        assert_eq!(session(&path), Session::default());
        std::fs::write(&path, "/repo/pkg dir\n7\n").unwrap();
        assert_eq!(
            session(&path),
            Session {
                rootdir: Some("/repo/pkg dir".into()),
                deselected: 7
            }
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_plugin_uses_the_names_the_xtask_passes() {
        assert!(PLUGIN_SOURCE.contains(&format!("os.environ[\"{FILE_ENV}\"]")));
        assert!(PLUGIN_SOURCE.contains(&format!("os.environ[\"{SESSION_ENV}\"]")));
        assert!(PLUGIN_SOURCE.contains(&format!("os.environ[\"{FAILED_ENV}\"]")));
        assert!(PLUGIN_SOURCE.contains(&format!("`-p {PLUGIN_MODULE}`")));
    }
}
