//! Keeps the repository's promises about itself.

use std::path::Path;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The steps of the pipelines that are not `cargo xtask` calls, each named here on purpose.
const OTHER_RUNS: &[&str] = &[
    // The README's test command.
    "cargo test --workspace",
    // An entry of `cargo xtask list --matrix`: always `cargo xtask test ...` (tests/github.rs).
    "${{ matrix.command }}",
    // Hands the matrix to the jobs that run it (failing when the xtask fails: a bare
    // `echo "...$(...)"` would not).
    r#"matrix="$(cargo xtask list --matrix --split-longer-than 5m ${BASE:+--changed-since "$BASE"})" && echo "matrix=$matrix" >> "$GITHUB_OUTPUT""#,
    // The xtask's own tests, every binary, their output kept for `cargo xtask junit
    // libtest` (GitHub runs it with `shell: bash`, GitLab after `set -o pipefail`: the
    // command fails when a test does).
    "cargo test --workspace --no-fail-fast 2>&1 | tee cargo-test.log",
    "set -o pipefail",
    // GitLab's `durations` job, which only hands the restored file on, says what it found.
    r#"ls -l .xtask/durations.json || echo "no durations recorded yet""#,
    // GitLab's Rust image has no Python to install uv with.
    "apt-get update && apt-get install -y --no-install-recommends python3 python3-pip",
];

/// The actions the GitHub workflow may use (checkout, Python, caches, artifacts, publishing),
/// each pinned by the commit of a release, with its tag in a comment: a tag can be moved to
/// other code, a commit cannot.
const ACTIONS: &[(&str, &str, &str)] = &[
    (
        "actions/checkout",
        "11d5960a326750d5838078e36cf38b85af677262",
        "v4.4.0",
    ),
    (
        "actions/cache",
        "0057852bfaa89a56745cba8c7296529d2fc39830",
        "v4.3.0",
    ),
    // The same release's restore-only and save-only actions.
    (
        "actions/cache/restore",
        "0057852bfaa89a56745cba8c7296529d2fc39830",
        "v4.3.0",
    ),
    (
        "actions/cache/save",
        "0057852bfaa89a56745cba8c7296529d2fc39830",
        "v4.3.0",
    ),
    (
        "actions/upload-artifact",
        "ea165f8d65b6e75b540449e92b4886f43607fa02",
        "v4.6.2",
    ),
    (
        "actions/download-artifact",
        "d3f86a106a0bac45b974a628896c90dbdf5c8093",
        "v4.3.0",
    ),
    (
        "actions/setup-python",
        "a26af69be951a213d495a4c3e4e4022e16d87065",
        "v5.6.0",
    ),
    (
        "EnricoMi/publish-unit-test-result-action",
        "d0a4676d0e0b938bc201470d88276b7c74c712b3",
        "v2.24.0",
    ),
];

/// The files the CI systems read: `.github/workflows/*.yml` and `.gitlab-ci.yml`.
fn pipelines() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files.push(repo().join(".gitlab-ci.yml"));
    files
}

/// The commands of a pipeline: GitHub's `run:` steps and the items of GitLab's `script:`
/// and `before_script:` lists (one line each: the pipelines use no multi-line commands).
fn commands(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut script_indent: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let item = line.trim();
        if let Some(at) = script_indent {
            match item.strip_prefix("- ") {
                Some(command) if indent >= at => {
                    commands.push(command.to_string());
                    continue;
                }
                _ if item.is_empty() || item.starts_with('#') => continue,
                _ => script_indent = None,
            }
        }
        let item = item.trim_start_matches("- ");
        if let Some(command) = item.strip_prefix("run:") {
            let command = command.trim();
            assert!(
                !command.is_empty() && command != "|" && command != ">",
                "multi-line `run:` steps are not allowed: {line}"
            );
            commands.push(command.to_string());
        } else if item == "script:" || item == "before_script:" || item == "after_script:" {
            script_indent = Some(indent);
        } else if let Some(inline) = ["script:", "before_script:", "after_script:"]
            .iter()
            .find_map(|k| item.strip_prefix(k))
            // `[]`: no command (a job that needs none of the default before_script).
            .filter(|inline| inline.trim() != "[]")
        {
            panic!("write `{}` as a list, one command an item", inline.trim());
        }
    }
    commands
}

/// The pipelines stay thin: every command is a `cargo xtask` call or one of `OTHER_RUNS`,
/// and every action one of `ACTIONS`.
#[test]
fn ci_pipelines_only_call_the_xtask() {
    let mut runs = 0;
    for path in pipelines() {
        let text = std::fs::read_to_string(&path).unwrap();
        let found = commands(&text);
        for command in found {
            assert!(
                command.starts_with("cargo xtask ") || OTHER_RUNS.contains(&command.as_str()),
                "{}: `{command}` should be a `cargo xtask` subcommand (or be listed in OTHER_RUNS)",
                path.display()
            );
            runs += 1;
        }
        for line in text.lines() {
            let item = line.trim().trim_start_matches("- ");
            if let Some(action) = item.strip_prefix("uses:") {
                let action = action.trim();
                assert!(
                    ACTIONS
                        .iter()
                        .any(|(name, sha, tag)| action == format!("{name}@{sha} # {tag}")),
                    "{}: action `{action}` is not one of ACTIONS, pinned by its commit with its tag in a comment",
                    path.display()
                );
            }
        }
    }
    assert!(runs > 0);
    // What the pipelines need does run somewhere.
    let all: String = pipelines()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for needed in [
        "cargo test --workspace",
        "cargo xtask list --matrix",
        "cargo xtask test",
        "cargo xtask export",
        "cargo xtask junit libtest",
        "cargo xtask durations",
        "--split-longer-than",
    ] {
        assert!(all.contains(needed), "no pipeline runs `{needed}`");
    }
}

#[test]
fn commands_are_read_from_run_steps_and_script_lists() {
    let text = "a:\n  script:\n    - cargo xtask test x\n    # note\n    - echo hi\n  artifacts:\n    - not-a-command\nsteps:\n  - run: cargo xtask ci\n  - uses: actions/checkout@v4\n";
    assert_eq!(
        commands(text),
        ["cargo xtask test x", "echo hi", "cargo xtask ci"]
    );
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
    let reports = read("docs/reports.md");
    for (rank, outcome) in xtask::outcome::Outcome::PRECEDENCE.iter().enumerate() {
        assert!(
            reports.contains(&format!("| {} | `{}` |", rank + 1, outcome.name())),
            "docs/reports.md's precedence table does not list {outcome} at {}",
            rank + 1
        );
    }
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// The README stays a page a newcomer can hold; the reference is under docs/.
#[test]
fn the_readme_is_short() {
    let lines = read("README.md").lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; move reference material to docs/"
    );
}

/// docs/usage.md names every subcommand and every long option clap knows.
#[test]
fn the_usage_reference_names_every_subcommand_and_option() {
    let usage = read("docs/usage.md");
    fn walk(command: &clap::Command, path: &str, usage: &str, missing: &mut Vec<String>) {
        for sub in command.get_subcommands() {
            let name = format!("{path} {}", sub.get_name()).trim().to_string();
            if !usage.contains(&format!("cargo xtask {name}")) {
                missing.push(format!("`cargo xtask {name}`"));
            }
            for arg in sub.get_arguments() {
                if let Some(long) = arg.get_long() {
                    if long != "help" && !usage.contains(&format!("--{long}")) {
                        missing.push(format!("`--{long}` of `{name}`"));
                    }
                }
            }
            walk(sub, &name, usage, missing);
        }
    }
    let mut missing = Vec::new();
    walk(&xtask::flags::command(None), "", &usage, &mut missing);
    assert!(
        missing.is_empty(),
        "docs/usage.md does not name: {}",
        missing.join(", ")
    );
}

/// docs/manifest.md names every key the manifest accepts (services and prerequisites are in
/// docs/usage.md, with the smoke suites that use them).
#[test]
fn the_manifest_reference_names_every_key() {
    let manifest = read("docs/manifest.md") + &read("docs/usage.md");
    let keys = xtask::manifest::top_keys()
        .iter()
        .chain(xtask::manifest::suite_keys())
        .chain(xtask::manifest::service_keys())
        .chain(xtask::manifest::prerequisite_keys())
        .chain(xtask::manifest::runs_keys());
    let missing: Vec<&&str> = keys
        .filter(|key| {
            !manifest.contains(&format!("{key} =")) && !manifest.contains(&format!("`{key}`"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "neither docs/manifest.md nor docs/usage.md names {missing:?}"
    );
}

/// Every relative link in the README and docs/ leads to a file that exists, and every
/// `#anchor` to a heading of that file.
#[test]
fn every_link_in_the_docs_resolves() {
    let mut files = vec![repo().join("README.md"), repo().join("ci/README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let anchors = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with('#'))
            .map(|l| {
                l.trim_start_matches('#')
                    .trim()
                    .to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                    .collect::<String>()
                    .replace(' ', "-")
            })
            .collect()
    };
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let targets = text
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split(')').next());
        for target in targets {
            if target.starts_with("http") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let linked = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            let Ok(linked_text) = std::fs::read_to_string(&linked) else {
                broken.push(format!("{}: {target} (no such file)", file.display()));
                continue;
            };
            if !anchor.is_empty() && !anchors(&linked_text).iter().any(|a| a == anchor) {
                broken.push(format!("{}: {target} (no such heading)", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// No two top-level modules of the crate import each other: data flows one way (the
/// plan from facts, the runner from the plan, the sinks from events). Tests are left out.
#[test]
fn no_two_modules_import_each_other() {
    use std::collections::{BTreeMap, BTreeSet};
    let src = repo().join("xtask/src");
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let module = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            let used = imports.entry(module.clone()).or_default();
            for rest in code.split("crate::").skip(1) {
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group.split('}').next().unwrap().split(',').collect(),
                    None => vec![rest],
                };
                for name in names {
                    let name: String = name
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module {
                        used.insert(name);
                    }
                }
            }
        }
    }
    let mut cycles = Vec::new();
    for (module, used) in &imports {
        for other in used {
            if module < other && imports.get(other).is_some_and(|u| u.contains(module)) {
                cycles.push(format!("{module} <-> {other}"));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that import each other: {cycles:?}"
    );
}

/// docs/run.schema.json describes exactly the keys the record's types write, at every level.
#[test]
fn the_run_record_schema_has_exactly_the_types_keys() {
    use xtask::report::run_record::*;
    let command = CommandRecord {
        step: "pytest".into(),
        argv: vec!["pytest".into()],
        exit_code: Some(0),
        skipped: None,
        signal: None,
        started_offset_secs: 0.5,
        duration_secs: 1.0,
        tests: None,
        never_ran: None,
        slice: Some("1/2".into()),
    };
    let test = TestRecord {
        node_id: Some("tests/test_a.py::test_b".into()),
        classname: "tests.test_a".into(),
        name: "test_b".into(),
        file: Some("a/tests/test_a.py".into()),
        line: Some(3),
        outcome: TestOutcome::Flaky,
        duration_secs: Some(0.25),
        synthetic: false,
        attempts: vec![AttemptRecord {
            outcome: TestOutcome::Failed,
            started_offset_secs: Some(0.75),
            duration_secs: Some(0.125),
            message: Some("assert 1 == 2".into()),
            kind: Some("AssertionError".into()),
            details: Some("tb".into()),
        }],
    };
    let suite = SuiteRecord {
        name: "a".into(),
        group: "g".into(),
        dir: "a".into(),
        outcome: "passed".into(),
        detail: None,
        counts: Counts {
            tests: 1,
            passed: 1,
            failed: 0,
            errors: 0,
            skipped: 0,
            deselected: 0,
            flaky: 0,
        },
        started_at: "2026-12-06T00:00:00+00:00".into(),
        started_offset_secs: 0.25,
        duration_secs: 1.0,
        worker: Some(0),
        timeout_secs: 60,
        environment: EnvironmentRecord {
            path: "envs/x".into(),
            key: "x".into(),
        },
        cwd: "/repo/a".into(),
        env: serde_json::Map::new(),
        env_removed: vec!["VIRTUAL_ENV".into()],
        commands: vec![command],
        log: "logs/a.log".into(),
        junit: "junit/a.xml".into(),
        tests: vec![test],
        cached: None,
    };
    let record = RunRecord {
        schema_version: SCHEMA_VERSION,
        xtask_version: "0.1.0".into(),
        invocation: vec!["ci".into()],
        run_id: "r".into(),
        started_at: "2026-12-06T00:00:00+00:00".into(),
        root: "/repo".into(),
        status: Status::Finished,
        pid: 1,
        outcome: Some("passed".into()),
        duration_secs: Some(1.0),
        jobs: Some(2),
        rerun_of: Some(RerunOf {
            run_id: "q".into(),
            path: "/repo/target/xtask/runs/q/run.json".into(),
            failing: 3,
            now_pass: 1,
            still_fail: 1,
            not_run: 0,
            gone: vec!["a: tests/test_a.py::test_gone".into()],
            whole_suites: 1,
            whole_suites_ran: 1,
            new_tests: 2,
            removed_suites: vec!["b".into()],
            nothing_to_run: None,
        }),
        git: Some(Git {
            commit: "abc".into(),
            dirty: false,
        }),
        uv: Some(Tool {
            path: "/bin/uv".into(),
            version: "uv 0.13.8".into(),
        }),
        junit: Some("junit.xml".into()),
        suites: vec![suite],
        services: vec![ServiceRecord {
            name: "backend".into(),
            started_offset_secs: 0.0,
            duration_secs: 0.5,
            ready: true,
            stopped_offset_secs: Some(2.0),
            stopped: Some("stopped".into()),
            died_offset_secs: None,
            died: None,
        }],
        health: Some(vec![HealthRecord {
            name: "backend".into(),
            kind: "service".into(),
            target: "http://127.0.0.1:8000/health".into(),
            available: true,
            latency_ms: Some(1.5),
            error: None,
            checked_at: "2026-12-06T00:00:00+00:00".into(),
        }]),
        exit_code: Some(0),
        exit_code_name: Some("OK".into()),
        error: None,
        interrupted_offset_secs: None,
        peak_rss_bytes: Some(1),
    };
    let written = serde_json::to_value(&record).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&read("docs/run.schema.json")).unwrap();
    assert_eq!(
        schema["properties"]["schema_version"]["const"],
        SCHEMA_VERSION
    );

    fn compare(
        value: &serde_json::Value,
        schema: &serde_json::Value,
        at: &str,
        out: &mut Vec<String>,
    ) {
        match value {
            serde_json::Value::Object(map) if schema.get("properties").is_some() => {
                let mut written: Vec<&String> = map.keys().collect();
                let mut described: Vec<&String> =
                    schema["properties"].as_object().unwrap().keys().collect();
                let mut required: Vec<&str> = schema["required"]
                    .as_array()
                    .map(|r| r.iter().map(|k| k.as_str().unwrap()).collect())
                    .unwrap_or_default();
                written.sort();
                described.sort();
                required.sort();
                if written != described {
                    out.push(format!(
                        "{at}: written {written:?}, described {described:?}"
                    ));
                }
                if required != written.iter().map(|k| k.as_str()).collect::<Vec<_>>() {
                    out.push(format!(
                        "{at}: every key is written, so every key is required"
                    ));
                }
                for (key, inner) in map {
                    compare(
                        inner,
                        &schema["properties"][key],
                        &format!("{at}.{key}"),
                        out,
                    );
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    compare(item, &schema["items"], &format!("{at}[]"), out);
                }
            }
            _ => {}
        }
    }
    let mut problems = Vec::new();
    compare(&written, &schema, "run.json", &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
}

/// docs/cli.md is what the flag definitions generate; `XTASK_BLESS=1` rewrites it.
#[test]
fn the_cli_reference_is_generated_from_the_flags() {
    let generated = xtask::flags::cli_reference();
    let path = repo().join("docs/cli.md");
    if std::env::var_os("XTASK_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/cli.md is not what xtask/src/flags.rs generates; run \
         `XTASK_BLESS=1 cargo test -p xtask --test tidy` and commit it"
    );
}

/// The comment above the root Cargo.toml's manifest names every key a suite and the whole
/// manifest accept (the services and prerequisites tables are named by their own key).
#[test]
fn the_manifest_comment_names_every_key() {
    let cargo_toml = read("Cargo.toml");
    let comment: Vec<&str> = cargo_toml
        .lines()
        .skip_while(|l| !l.starts_with("# The suite manifest"))
        .take_while(|l| l.starts_with('#'))
        .collect();
    assert!(!comment.is_empty(), "Cargo.toml has no manifest comment");
    let named = |key: &str| {
        comment.iter().any(|l| {
            l.trim_start_matches('#')
                .split(|c: char| c.is_whitespace() || c == ';')
                .any(|word| word == key)
        })
    };
    let missing: Vec<&&str> = xtask::manifest::suite_keys()
        .iter()
        .chain(xtask::manifest::top_keys())
        .chain(xtask::manifest::runs_keys())
        .filter(|key| **key != "suites" && !named(key))
        .collect();
    assert!(
        missing.is_empty(),
        "the manifest comment in Cargo.toml does not name {missing:?}"
    );
}
