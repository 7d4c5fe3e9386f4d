//! `init --ci github|gitlab`: the pipeline files for the repository's manifest, the same
//! shape as the xtask's own repository's (which a unit test holds to what this writes).
//! GitHub builds its matrix at run time, so its files name only the default branch;
//! GitLab reads `parallel:matrix` from its file, so the suites are written into it.

use std::path::PathBuf;

use crate::manifest::Manifest;

const GITHUB_CI: &str = include_str!("../../pipelines/github-ci.yml");
const GITHUB_PUBLISH: &str = include_str!("../../pipelines/github-publish.yml");
const GITLAB_CI: &str = include_str!("../../pipelines/gitlab-ci.yml");

/// The files of `system` (`github` or `gitlab`), relative to the root, with their text.
pub fn render(
    system: crate::flags::CiSystem,
    manifest: &Manifest,
    default_branch: &str,
) -> Vec<(PathBuf, String)> {
    match system {
        crate::flags::CiSystem::Github => vec![
            (
                PathBuf::from(".github/workflows/ci.yml"),
                // A YAML double-quoted scalar (a JSON string is one): a branch name may hold
                // `,`, `#` or `{`, which a flow sequence would read otherwise.
                GITHUB_CI.replace(
                    "__DEFAULT_BRANCH__",
                    &serde_json::Value::from(default_branch).to_string(),
                ),
            ),
            (
                PathBuf::from(".github/workflows/publish.yml"),
                GITHUB_PUBLISH.to_string(),
            ),
        ],
        crate::flags::CiSystem::Gitlab => {
            let matrix =
                crate::commands::list::matrix(manifest, None, &Default::default(), &|_| None);
            let suites: Vec<&str> = matrix["include"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|entry| entry["suite"].as_str())
                .collect();
            vec![(
                PathBuf::from(".gitlab-ci.yml"),
                GITLAB_CI.replace("__SUITES__", &suites.join(", ")),
            )]
        }
    }
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
            for (path, text) in render(system, &manifest, "main") {
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
}
