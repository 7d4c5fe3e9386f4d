//! Which `uv.lock` a project is built from. A project with its own lock uses it; a member
//! of a uv workspace (a `pyproject.toml` above it with `[tool.uv.workspace]` whose
//! `members` globs name it) has none of its own and is locked by the workspace root's
//! `uv.lock`, which `uv sync --directory <member>` finds by itself. Everything that treats
//! the lock as an input (the environment's record, `doctor`'s lock check, `init`'s guess,
//! `--changed-since`) asks here, so a member is never taken for a project without a lock.

use std::path::Path;

/// The lock a project directory is built from, relative to the repository root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectLock {
    /// `<dir>/uv.lock`, or `<workspace root>/uv.lock` for a workspace member.
    pub lock: String,
    /// The workspace root when the lock is not the project's own (`.` for the repository
    /// root); its `pyproject.toml` (the members, the sources) is an input too.
    pub workspace_root: Option<String>,
}

impl ProjectLock {
    /// The directory `uv lock` is run in to remake the lock.
    pub fn lock_dir(&self) -> &str {
        match self.lock.rsplit_once('/') {
            Some((dir, _)) => dir,
            None => ".",
        }
    }

    /// The workspace root's `pyproject.toml`, when the lock is the workspace's.
    pub fn workspace_pyproject(&self) -> Option<String> {
        self.workspace_root
            .as_deref()
            .map(|root| join(root, "pyproject.toml"))
    }
}

/// The lock of the project in `dir` (relative to `root`, `/`-separated, `.` for the root),
/// or `None` when it has none of its own and no workspace root above it (inside the
/// repository) both names it as a member and holds a `uv.lock`.
pub fn lock_of(root: &Path, dir: &str) -> Option<ProjectLock> {
    let own = join(dir, "uv.lock");
    if root.join(&own).is_file() {
        return Some(ProjectLock {
            lock: own,
            workspace_root: None,
        });
    }
    let parts: Vec<&str> = if dir == "." {
        Vec::new()
    } else {
        dir.split('/').filter(|p| !p.is_empty()).collect()
    };
    // The nearest workspace root above decides, as uv's own discovery does.
    for depth in (0..parts.len()).rev() {
        let ancestor = if depth == 0 {
            ".".to_string()
        } else {
            parts[..depth].join("/")
        };
        let Some(workspace) = workspace_table(&root.join(&ancestor).join("pyproject.toml")) else {
            continue;
        };
        let below = parts[depth..].join("/");
        let globs = |key: &str| -> Vec<String> {
            workspace
                .get(key)
                .and_then(toml::Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(toml::Value::as_str)
                        .map(|glob| glob.trim_start_matches("./").trim_end_matches('/').into())
                        .collect()
                })
                .unwrap_or_default()
        };
        let member = globs("members").iter().any(|g| glob_matches(g, &below))
            && !globs("exclude").iter().any(|g| glob_matches(g, &below));
        let lock = join(&ancestor, "uv.lock");
        let locked = member && root.join(&lock).is_file();
        return locked.then_some(ProjectLock {
            lock,
            workspace_root: Some(ancestor),
        });
    }
    None
}

/// `[tool.uv.workspace]` of a `pyproject.toml`, when it has one and parses.
fn workspace_table(pyproject: &Path) -> Option<toml::Table> {
    let text = std::fs::read_to_string(pyproject).ok()?;
    let table: toml::Table = text.parse().ok()?;
    table
        .get("tool")?
        .get("uv")?
        .get("workspace")?
        .as_table()
        .cloned()
}

fn join(dir: &str, name: &str) -> String {
    if dir == "." || dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether a `/`-separated relative path matches a workspace glob: `*` and `?` within one
/// component, `**` across any number of them.
fn glob_matches(glob: &str, path: &str) -> bool {
    let glob: Vec<&str> = glob.split('/').filter(|p| !p.is_empty()).collect();
    let path: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    components_match(&glob, &path)
}

fn components_match(glob: &[&str], path: &[&str]) -> bool {
    match glob.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| components_match(rest, &path[skip..])),
        Some((first, rest)) => match path.split_first() {
            Some((name, path_rest)) => {
                component_matches(first.as_bytes(), name.as_bytes())
                    && components_match(rest, path_rest)
            }
            None => false,
        },
    }
}

fn component_matches(glob: &[u8], name: &[u8]) -> bool {
    match glob.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| component_matches(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && component_matches(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && component_matches(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_components() {
        assert!(glob_matches("packages/*", "packages/alpha"));
        assert!(!glob_matches("packages/*", "packages/alpha/inner"));
        assert!(!glob_matches("packages/*", "other/alpha"));
        assert!(glob_matches("libs/a?", "libs/ab"));
        assert!(glob_matches("**/pkg", "a/b/pkg"));
        assert!(glob_matches("alpha", "alpha"));
        assert!(glob_matches("py-*", "py-one"));
    }

    #[test]
    fn a_member_is_locked_by_its_workspace_root() {
        let root = std::env::temp_dir().join(format!("xtask-uv-ws-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in ["ws/packages/a", "ws/packages/skipped", "ws/tools/b", "own"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::write(
            root.join("ws/pyproject.toml"),
            "[tool.uv.workspace]\nmembers = [\"packages/*\"]\nexclude = [\"packages/skipped\"]\n",
        )
        .unwrap();
        std::fs::write(root.join("own/uv.lock"), "").unwrap();
        assert_eq!(lock_of(&root, "ws/packages/a"), None, "no lock yet");
        std::fs::write(root.join("ws/uv.lock"), "").unwrap();
        let member = lock_of(&root, "ws/packages/a").unwrap();
        assert_eq!(member.lock, "ws/uv.lock");
        assert_eq!(member.lock_dir(), "ws");
        assert_eq!(
            member.workspace_pyproject().as_deref(),
            Some("ws/pyproject.toml")
        );
        assert_eq!(lock_of(&root, "ws/packages/skipped"), None, "excluded");
        assert_eq!(lock_of(&root, "ws/tools/b"), None, "not a member");
        let own = lock_of(&root, "own").unwrap();
        assert_eq!(
            (own.lock.as_str(), own.workspace_root),
            ("own/uv.lock", None)
        );
        assert_eq!(lock_of(&root, "ws").unwrap().lock, "ws/uv.lock");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
