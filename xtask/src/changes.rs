//! `--changed-since REF`: the suites whose inputs changed since a git ref, and why.
//!
//! A suite's inputs are the files under its directory (its code, tests, `pyproject.toml`,
//! `uv.lock`; for a uv workspace member, the workspace root's `uv.lock` and
//! `pyproject.toml`), under its `pythonpath` entries (a change to `shared/guardrail` selects every
//! suite with `shared` on its path), its requirements file, and its manifest entry (or the
//! manifest's settings for all suites). Changes are what `git diff REF` shows in the
//! working tree (committed since REF, staged or not; a rename counts as its old and its new
//! path, a deletion as the deleted path) plus untracked files git does not ignore.
//!
//! Paths are read as git writes them for programs (`-z`: NUL-separated, never quoted, so a
//! non-ASCII or odd name is read as it is) and relative to the repository root even when
//! the git work tree starts above it (`--relative`, `REF:./Cargo.toml`). A change is never
//! missed silently: when git's answer cannot be read (no git, not a work tree, a failing or
//! overlong listing), every suite is selected, with a warning that says why. Only a ref git
//! does not know is the caller's error.

use std::path::Path;

use crate::error::Error;
use crate::invocation::Invocation;
use crate::manifest::{Environment, Suite, TABLE};
use crate::redact::Redactor;

/// What changed since a ref.
pub struct Changes {
    pub reference: String,
    /// Relative to the repository root, with `/`.
    pub files: Vec<String>,
    /// The manifest's suite entries at the ref, by name (`None`: it had no such suite), and
    /// whether the settings shared by all suites differ.
    old_entries: Option<serde_json::Value>,
    settings_changed: bool,
    /// Why nothing could be told apart: every suite is selected.
    unreadable: Option<String>,
}

/// How long git may take to answer.
const GIT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);
/// The longest file list read from git (a larger answer selects every suite).
const GIT_ANSWER_MAX: usize = 256 << 20;

/// `git ARGS` in `root` (no optional locks: a run never holds the index lock a developer's
/// own git needs), its answer read whole within [`GIT_DEADLINE`].
pub fn git(root: &Path, args: &[&str]) -> anyhow::Result<crate::step::Answer> {
    let mut argv = vec!["git".to_string(), "--no-optional-locks".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let deadline = crate::process::deadline_after(std::time::Instant::now(), GIT_DEADLINE);
    crate::step::answer(
        &Invocation::new(argv, root, vec![]),
        deadline,
        GIT_ANSWER_MAX,
        &Redactor::default(),
    )
}

/// The NUL-separated paths of `-z` output.
fn paths(stdout: &[u8]) -> impl Iterator<Item = String> + '_ {
    stdout
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
}

/// `path` as it can be shown on one line: control characters (a newline in a file name)
/// escaped.
pub fn shown(path: &str) -> String {
    crate::text::one_line(path)
}

impl Changes {
    pub fn since(root: &Path, reference: &str) -> anyhow::Result<Changes> {
        let everything = |why: String| Changes {
            reference: reference.to_string(),
            files: Vec::new(),
            old_entries: None,
            settings_changed: false,
            unreadable: Some(why),
        };
        let top = match git(root, &["rev-parse", "--show-toplevel"]) {
            Ok(top) if top.success() => top,
            Ok(top) => {
                return Ok(everything(format!(
                    "{} is not in a git work tree (`git rev-parse` {}: {})",
                    root.display(),
                    top.describe(),
                    top.stderr.trim()
                )))
            }
            Err(err) => return Ok(everything(format!("git could not be run: {err:#}"))),
        };
        drop(top);
        let verify = git(
            root,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{reference}^{{commit}}"),
            ],
        )?;
        if !verify.success() {
            return Err(Error::Usage(format!(
                "--changed-since {reference}: git knows no commit `{reference}` in {} ({}); give a branch, tag or commit (fetch it first in a shallow CI clone)",
                root.display(),
                verify.stderr.trim()
            ))
            .into());
        }
        let mut files = Vec::new();
        for args in [
            &[
                "diff",
                "--name-only",
                "-z",
                "--no-renames",
                "--no-ext-diff",
                "--no-color",
                "--relative",
                reference,
                "--",
            ][..],
            &["ls-files", "-z", "--others", "--exclude-standard"][..],
        ] {
            let listed = match git(root, args) {
                Ok(listed) if listed.success() => listed,
                Ok(listed) => {
                    return Ok(everything(format!(
                        "`git {}` {}: {}",
                        args.join(" "),
                        listed.describe(),
                        listed.stderr.trim()
                    )))
                }
                Err(err) => return Ok(everything(format!("`git {}`: {err:#}", args.join(" ")))),
            };
            files.extend(paths(&listed.stdout));
        }
        files.sort();
        files.dedup();
        let manifest_changed = files.iter().any(|f| f == "Cargo.toml");
        let (old_entries, settings_changed) = if manifest_changed {
            // `./`: relative to the root, wherever the work tree starts.
            let old = git(root, &["show", &format!("{reference}:./Cargo.toml")])?;
            let now = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
            let old_table = old
                .success()
                .then(|| table(&String::from_utf8_lossy(&old.stdout)))
                .flatten();
            let new_table = table(&now);
            let settings = |t: &Option<serde_json::Value>| {
                t.as_ref().map(|t| {
                    let mut t = t.clone();
                    if let Some(map) = t.as_object_mut() {
                        map.remove("suites");
                    }
                    t
                })
            };
            let changed = settings(&old_table) != settings(&new_table);
            (old_table, changed)
        } else {
            (None, false)
        };
        Ok(Changes {
            reference: reference.to_string(),
            files,
            old_entries,
            settings_changed: manifest_changed && settings_changed,
            unreadable: None,
        })
    }

    /// Why git's answer could not be read, when it could not: every suite is selected.
    pub fn unreadable(&self) -> Option<&str> {
        self.unreadable.as_deref()
    }

    /// Why `suite` is selected, or `None` when none of its inputs changed.
    pub fn why(&self, suite: &Suite, root: &Path) -> Option<String> {
        if let Some(why) = &self.unreadable {
            return Some(format!(
                "what changed since {} could not be read ({why})",
                self.reference
            ));
        }
        let under = |dir: &str| {
            let dir = dir.trim_end_matches('/');
            self.files
                .iter()
                .find(|f| dir == "." || dir.is_empty() || f.starts_with(&format!("{dir}/")))
        };
        if let Some(file) = under(&suite.dir) {
            return Some(format!(
                "{} changed (in its directory {})",
                shown(file),
                suite.dir
            ));
        }
        for entry in &suite.pythonpath {
            if let Some(file) = under(entry) {
                return Some(format!(
                    "{} changed (on its pythonpath: {entry})",
                    shown(file)
                ));
            }
        }
        // A uv workspace member's lock (and the members and sources that shape it) is the
        // workspace root's, outside its directory.
        if let Environment::Project { .. } = &suite.environment {
            if let Some(lock) = crate::uv_workspace::lock_of(root, &suite.dir) {
                for file in [Some(lock.lock.clone()), lock.workspace_pyproject()]
                    .into_iter()
                    .flatten()
                {
                    if self.files.contains(&file) {
                        return Some(format!(
                            "{} changed (its uv workspace's, which locks it)",
                            shown(&file)
                        ));
                    }
                }
            }
        }
        if let Environment::Requirements {
            file: Some(file), ..
        } = &suite.environment
        {
            if self.files.iter().any(|f| f == file) {
                return Some(format!("its requirements file {file} changed"));
            }
        }
        if self.settings_changed {
            return Some(format!("the settings of {TABLE} in Cargo.toml changed"));
        }
        if self.files.iter().any(|f| f == "Cargo.toml") {
            let now = table(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default());
            let entry = |t: &Option<serde_json::Value>| {
                t.as_ref()?
                    .get("suites")?
                    .as_array()?
                    .iter()
                    .find(|s| s.get("name").and_then(|n| n.as_str()) == Some(&suite.name))
                    .cloned()
            };
            if entry(&self.old_entries) != entry(&now) {
                return Some("its entry in Cargo.toml changed".into());
            }
        }
        None
    }
}

/// `[workspace.metadata.xtask]` of a Cargo.toml's text, as JSON.
pub fn table(text: &str) -> Option<serde_json::Value> {
    let value: toml::Value = toml::from_str(text).ok()?;
    let table = value.get("workspace")?.get("metadata")?.get("xtask")?;
    serde_json::to_value(table).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_table_is_read_from_cargo_toml_text() {
        let text = "[workspace]\n[workspace.metadata.xtask]\ntimeout = \"1m\"\n[[workspace.metadata.xtask.suites]]\nname = \"a\"\n";
        let t = table(text).unwrap();
        assert_eq!(t["timeout"], "1m");
        assert_eq!(t["suites"][0]["name"], "a");
        assert_eq!(table("[package]\nname = \"x\"\n"), None);
    }
}
