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

/// Every exit code constant is in `exit_codes::ALL` and documented in the README with its
/// value, and every outcome is in the README's precedence table.
#[test]
fn readme_lists_every_exit_code_and_outcome() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let source = std::fs::read_to_string(repo().join("xtask/src/exit_codes.rs")).unwrap();
    let constants: Vec<&str> = source
        .lines()
        .filter_map(|l| l.strip_prefix("pub const "))
        .filter(|l| l.contains(": u8 ="))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    let listed: Vec<&str> = xtask::exit_codes::ALL.iter().map(|(_, n)| *n).collect();
    assert_eq!(
        constants, listed,
        "exit_codes::ALL must list every constant, in order"
    );
    for (value, name) in xtask::exit_codes::ALL {
        assert!(
            readme.contains(&format!("| {value} | `{name}`")),
            "README.md does not list {name} = {value}"
        );
    }
    for (rank, outcome) in xtask::outcome::Outcome::PRECEDENCE.iter().enumerate() {
        assert!(
            readme.contains(&format!("| {} | `{}` |", rank + 1, outcome.name())),
            "README.md's precedence table does not list {outcome} at {}",
            rank + 1
        );
    }
}
