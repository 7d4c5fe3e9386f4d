//! `init --ci github|gitlab`: the pipeline files for the repository's manifest, the same
//! shape as the xtask's own repository's (which a unit test holds to what this writes).
//! GitHub builds its matrix at run time, so its files name only the default branch;
//! GitLab reads `parallel:matrix` from its file, so the suites are written into it, each
//! suite the durations recorded as longer than [`SPLIT_LONGER_THAN`] as its slices.

use std::path::PathBuf;

use crate::durations::Durations;
use crate::manifest::Manifest;

/// The pipelines' `list --matrix --split-longer-than`: a suite whose recorded durations add
/// up to more than this runs as duration-balanced slices, one job each.
pub const SPLIT_LONGER_THAN: &str = "5m";

const GITHUB_CI: &str = include_str!("../../pipelines/github-ci.yml");
const GITHUB_PUBLISH: &str = include_str!("../../pipelines/github-publish.yml");
const GITLAB_CI: &str = include_str!("../../pipelines/gitlab-ci.yml");

/// The files of `system` (`github` or `gitlab`), relative to the root, with their text.
/// With `durations` (GitLab only: GitHub reads them at run time), a suite they record as
/// longer than [`SPLIT_LONGER_THAN`] is written as its slices.
pub fn render(
    system: crate::flags::CiSystem,
    manifest: &Manifest,
    default_branch: &str,
    durations: Option<&Durations>,
) -> Vec<(PathBuf, String)> {
    match system {
        crate::flags::CiSystem::Github => vec![
            (
                PathBuf::from(".github/workflows/ci.yml"),
                // A YAML double-quoted scalar (a JSON string is one): a branch name may hold
                // `,`, `#` or `{`, which a flow sequence would read otherwise.
                GITHUB_CI
                    .replace(
                        "__DEFAULT_BRANCH__",
                        &serde_json::Value::from(default_branch).to_string(),
                    )
                    .replace("__SPLIT_LONGER_THAN__", SPLIT_LONGER_THAN),
            ),
            (
                PathBuf::from(".github/workflows/publish.yml"),
                GITHUB_PUBLISH.to_string(),
            ),
        ],
        crate::flags::CiSystem::Gitlab => vec![(
            PathBuf::from(".gitlab-ci.yml"),
            GITLAB_CI
                .replace("__MATRIX__", &gitlab_matrix(manifest, durations))
                .replace("__SPLIT_LONGER_THAN__", SPLIT_LONGER_THAN),
        )],
    }
}

/// The items of GitLab's `parallel:matrix`, indented for the template: the suites that run
/// whole in one item (`SUITE: [...]`), each split suite in its own with its `PARTITION`s.
/// Values are YAML double-quoted scalars (JSON strings), so no suite name reads as a
/// boolean, a number or null.
fn gitlab_matrix(manifest: &Manifest, durations: Option<&Durations>) -> String {
    let split = crate::commands::list::Split {
        durations,
        flag: None,
        longer_than: Some(
            crate::manifest::parse_duration(SPLIT_LONGER_THAN).expect("a valid duration"),
        ),
    };
    let matrix = crate::commands::list::matrix(manifest, None, &split, &|_| None);
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    let mut whole: Vec<String> = Vec::new();
    let mut sliced: Vec<(String, Vec<String>)> = Vec::new();
    for entry in matrix["include"].as_array().into_iter().flatten() {
        let suite = quoted(entry["suite"].as_str().unwrap_or_default());
        match entry["partition"].as_str() {
            None => whole.push(suite),
            Some(partition) => match sliced.last_mut() {
                Some((last, partitions)) if *last == suite => partitions.push(quoted(partition)),
                _ => sliced.push((suite, vec![quoted(partition)])),
            },
        }
    }
    let mut items = Vec::new();
    if !whole.is_empty() || sliced.is_empty() {
        items.push(format!("      - SUITE: [{}]", whole.join(", ")));
    }
    for (suite, partitions) in sliced {
        items.push(format!(
            "      - SUITE: {suite}\n        PARTITION: [{}]",
            partitions.join(", ")
        ));
    }
    items.join("\n")
}

/// The branch a push to which runs every suite: the remote's default, else the branch
/// checked out, else `main`.
pub fn default_branch(root: &std::path::Path) -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty())
    };
    git(&["symbolic-ref", "--short", "refs/remotes/origin/HEAD"])
        .map(|remote| remote.trim_start_matches("origin/").to_string())
        .or_else(|| git(&["branch", "--show-current"]))
        .unwrap_or_else(|| "main".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This repository's pipelines are exactly what `init --ci` writes for its manifest:
    /// one shape, kept in one place (xtask/src/pipelines/).
    #[test]
    fn this_repositorys_pipelines_are_what_init_writes() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let manifest = Manifest::load(&crate::paths::Layout::new(root)).unwrap();
        for system in [
            crate::flags::CiSystem::Github,
            crate::flags::CiSystem::Gitlab,
        ] {
            for (path, text) in render(system, &manifest, "main", None) {
                let path = root.join(path);
                if std::env::var_os("XTASK_BLESS").is_some() {
                    std::fs::write(&path, &text).unwrap();
                    continue;
                }
                let committed = std::fs::read_to_string(&path).unwrap();
                assert!(
                    committed == text,
                    "{} is not what `cargo xtask init --ci` writes from xtask/src/pipelines/; \
                     edit the template, then XTASK_BLESS=1 cargo test -p xtask --lib pipelines",
                    path.display()
                );
            }
        }
    }

    /// GitLab's matrix: the suites that run whole in one item, a suite the durations record
    /// as longer than the threshold in an item of its own, one PARTITION per slice; every
    /// value a quoted string.
    #[test]
    fn gitlab_writes_a_long_suite_as_its_slices() {
        let manifest = Manifest::for_tests(&[("true", "g"), ("long", "g"), ("short", "g")]);
        let limit = crate::manifest::parse_duration(SPLIT_LONGER_THAN)
            .unwrap()
            .as_secs_f64();
        let mut durations = Durations::new();
        let tests = durations.suites.entry("long".into()).or_default();
        for n in 0..5 {
            tests.insert(format!("t.py::test_{n}"), limit / 2.0);
        }
        durations
            .suites
            .entry("short".into())
            .or_default()
            .insert("t.py::test".into(), limit / 2.0);
        assert_eq!(
            gitlab_matrix(&manifest, Some(&durations)),
            "      - SUITE: [\"true\", \"short\"]\n      - SUITE: \"long\"\n        PARTITION: \
             [\"durations:1/3\", \"durations:2/3\", \"durations:3/3\"]"
        );
        assert_eq!(
            gitlab_matrix(&manifest, None),
            "      - SUITE: [\"true\", \"long\", \"short\"]"
        );
        // GitHub's matrix step splits by the same threshold.
        let (_, ci) = &render(crate::flags::CiSystem::Github, &manifest, "main", None)[0];
        assert!(ci.contains(&format!("--split-longer-than {SPLIT_LONGER_THAN} ")));
        assert!(!ci.contains("__"), "a placeholder is left");
        let (_, gitlab) = &render(crate::flags::CiSystem::Gitlab, &manifest, "main", None)[0];
        assert!(!gitlab.contains("__"), "a placeholder is left");
    }
}
