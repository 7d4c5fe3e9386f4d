//! Keeps the repository's promises about itself.

use std::path::Path;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The pipelines stay thin: every `run:` step is a `cargo xtask` call, or the README's
/// test command.
#[test]
fn ci_pipelines_only_call_the_xtask() {
    let mut runs = 0;
    for entry in std::fs::read_dir(repo().join("ci")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let Some(command) = line.trim().trim_start_matches("- ").strip_prefix("run:") else {
                continue;
            };
            let command = command.trim();
            assert!(
                command.starts_with("cargo xtask ") || command == "cargo test --workspace",
                "{}: `{command}` should be a `cargo xtask` subcommand",
                path.display()
            );
            runs += 1;
        }
    }
    assert!(runs > 0, "no `run:` steps found under ci/");
}

/// `.ci/run` runs exactly the README's two commands.
#[test]
fn ci_entry_point_runs_the_readmes_commands() {
    let script = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for command in ["cargo xtask ci", "cargo test --workspace"] {
        assert!(
            script.lines().any(|l| l.starts_with(command)),
            ".ci/run does not run `{command}`"
        );
        assert!(
            readme.contains(command),
            "README.md does not show `{command}`"
        );
    }
}

/// Every exit code constant is documented in the README with its value.
#[test]
fn readme_lists_every_exit_code() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let source = std::fs::read_to_string(repo().join("xtask/src/exit_codes.rs")).unwrap();
    let mut found = 0;
    for line in source.lines().filter(|l| l.starts_with("pub const")) {
        let name = line["pub const ".len()..].split(':').next().unwrap();
        let value = line.rsplit("= ").next().unwrap().trim_end_matches(';');
        assert!(
            readme.contains(&format!("| {value} | `{name}`")),
            "README.md does not list {name} = {value}"
        );
        found += 1;
    }
    assert!(found >= 10);
}
