//! The per-suite log: every byte every step printed, in order.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::Context;

/// How much of a log the terminal and the JUnit report show.
pub const TAIL_LINES: usize = 200;
const TAIL_BYTES: u64 = 64 * 1024;

pub fn create(path: &Path) -> anyhow::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    File::create(path).with_context(|| format!("creating the suite log {}", path.display()))
}

/// The last `lines` lines of the log (at most 64 KiB of it), with a note when more came before.
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(TAIL_BYTES);
    let mut bytes = Vec::new();
    if file
        .seek(SeekFrom::Start(start))
        .and_then(|_| file.read_to_end(&mut bytes))
        .is_err()
    {
        return format!("(could not read the log at {})", path.display());
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    // A cut in the middle of the file leaves a partial first line: drop it.
    let skip_partial = usize::from(start > 0);
    let keep = all.len().saturating_sub(skip_partial).min(lines);
    let shown = &all[all.len() - keep..];
    let mut out = String::new();
    if start > 0 || keep < all.len() {
        out.push_str(&format!("[... earlier output in {} ...]\n", path.display()));
    }
    out.push_str(&shown.join("\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(name: &str, contents: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("xtask-log-test-{}-{name}.log", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn short_logs_are_shown_whole() {
        let path = log_with("short", "one\ntwo\n");
        assert_eq!(tail(&path, 10), "one\ntwo");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn long_logs_show_their_last_lines_and_where_the_rest_is() {
        let lines: Vec<String> = (0..100_000).map(|i| format!("line {i}")).collect();
        let path = log_with("long", &lines.join("\n"));
        let shown = tail(&path, 3);
        assert_eq!(
            shown,
            format!(
                "[... earlier output in {} ...]\nline 99997\nline 99998\nline 99999",
                path.display()
            )
        );
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_missing_log_says_so() {
        assert!(
            tail(Path::new("/nonexistent/x.log"), 3).starts_with("(no log at /nonexistent/x.log)")
        );
    }
}
