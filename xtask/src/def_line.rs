//! Moving a test case's `line` from its first decorator to its `def`.
//!
//! For a decorated test (`@pytest.mark.parametrize`, `@pytest.mark.skip`, a fixture-using
//! decorator...) pytest's `line` is the line of the first decorator, because that is where
//! Python's code object says the function starts. An annotation is expected on the `def`.
//! The reader of pytest's report stays pure; the executor calls this with the repository.

use std::collections::HashMap;
use std::path::Path;

use crate::model::TestCase;

/// How far below the first decorator the `def` is looked for (a long parametrize list).
pub const MAX_DISTANCE: usize = 500;
/// Source files larger than this are not read.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Moves each case's 1-based `line` that points at a decorator forward to the `def` (or
/// `async def`) it decorates, reading `file` relative to `root`. A case whose line is not a
/// decorator, whose file cannot be read, or whose `def` is not found within
/// [`MAX_DISTANCE`] lines at the decorator's indentation keeps its line. Each file is
/// read once.
pub fn line_of_def(root: &Path, cases: &mut [TestCase]) {
    let mut files: HashMap<String, Option<Vec<String>>> = HashMap::new();
    for case in cases.iter_mut() {
        let (Some(file), Some(line)) = (&case.file, case.line) else {
            continue;
        };
        if case.is_collection_error() {
            // Its line is where the import failed, maybe in a decorator's arguments.
            continue;
        }
        let lines = files
            .entry(file.clone())
            .or_insert_with(|| read_lines(&root.join(file)));
        if let Some(def) = lines.as_deref().and_then(|l| def_after(l, line)) {
            case.line = Some(def);
        }
    }
}

fn read_lines(path: &Path) -> Option<Vec<String>> {
    if std::fs::metadata(path).ok()?.len() > MAX_FILE_BYTES {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    Some(
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

/// The 1-based line of the `def` decorated by the decorator at 1-based `line`.
fn def_after(lines: &[String], line: u64) -> Option<u64> {
    let start = usize::try_from(line).ok()?.checked_sub(1)?;
    let first = lines.get(start)?;
    let indent = indentation(first);
    if !first[indent..].starts_with('@') {
        return None;
    }
    for (offset, text) in lines.iter().enumerate().skip(start + 1).take(MAX_DISTANCE) {
        if indentation(text) != indent || text.trim().is_empty() {
            // A decorator's arguments, a comment or a blank line.
            continue;
        }
        let code = &text[indent..];
        if code.starts_with("def ") || code.starts_with("async def ") {
            return Some(offset as u64 + 1);
        }
        if code.starts_with('@') || code.starts_with('#') || code.starts_with(')') {
            continue;
        }
        if code.starts_with(']') || code.starts_with('}') {
            continue;
        }
        // Anything else at the decorator's indentation (a `class`): not a function's.
        return None;
    }
    None
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '\t']).len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attempt, CaseStatus};

    const SOURCE: &str = include_str!("../tests/data/pytest-9.2-fidelity.py");

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    fn case(file: &str, line: u64) -> TestCase {
        let mut case = TestCase::new("c", "n", Attempt::new(CaseStatus::Passed));
        case.file = Some(file.into());
        case.line = Some(line);
        case
    }

    #[test]
    fn decorated_tests_point_at_their_def() {
        let source = lines(SOURCE);
        // pytest 9.2's 0-based lines for this file, plus one: the first decorators.
        assert_eq!(source[11], "@pytest.mark.parametrize(\"x\", [1, 2])");
        assert_eq!(def_after(&source, 12), Some(13));
        assert_eq!(source[12], "def test_param(x):");
        assert_eq!(def_after(&source, 16), Some(17));
        assert_eq!(source[16], "def test_skipped():");
        // Not a decorator: left alone.
        assert_eq!(def_after(&source, 8), None);
        assert_eq!(def_after(&source, 1_000), None);
        assert_eq!(def_after(&source, 0), None);
    }

    #[test]
    fn multi_line_decorators_methods_and_async_defs() {
        let source = lines(
            "class TestX:\n    @pytest.mark.parametrize(\n        \"x\",\n        [\n            1,\n        ],\n    )\n    # why\n\n    @pytest.mark.slow\n    async def test_m(self, x):\n        def inner(): pass\n@decorator\nclass TestY:\n    def test_y(self): pass\n",
        );
        assert_eq!(def_after(&source, 2), Some(11));
        assert_eq!(def_after(&source, 13), None, "a decorated class");
    }

    #[test]
    fn cases_are_moved_through_the_files_they_name() {
        let root = std::env::temp_dir().join(format!("xtask-def-line-{}", std::process::id()));
        std::fs::create_dir_all(root.join("pkg/tests")).unwrap();
        std::fs::write(root.join("pkg/tests/test_x.py"), SOURCE).unwrap();
        let mut cases = [
            case("pkg/tests/test_x.py", 12),
            case("pkg/tests/test_x.py", 8),
            case("pkg/tests/missing.py", 12),
        ];
        line_of_def(&root, &mut cases);
        let got: Vec<_> = cases.iter().map(|c| c.line).collect();
        assert_eq!(got, [Some(13), Some(8), Some(12)]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
