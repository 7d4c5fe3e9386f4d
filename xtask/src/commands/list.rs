//! `cargo xtask list [--json | --matrix [--partitions N]] [--changed-since REF]`: the suites
//! of the manifest, or only those whose inputs changed, each with why.

use serde_json::json;

use crate::flags::ListArgs;
use crate::manifest::{Environment, Manifest, Suite};
use crate::report::actions_guard;

impl ListArgs {
    pub fn run(self, layout: &crate::paths::Layout, manifest: &Manifest) -> anyhow::Result<()> {
        let all: Vec<&Suite> = manifest.suites.iter().collect();
        let redactor = crate::session::redactor(manifest, &all);
        // With --changed-since, the suites it selects and why (every suite when git's answer
        // cannot be read: never none).
        let selection = match &self.changed_since {
            None => None,
            Some(reference) => {
                let changes = crate::changes::Changes::since(&layout.root, reference)?;
                if let Some(why) = changes.unreadable() {
                    eprintln!(
                        "xtask: warning: --changed-since {reference}: {why}; every suite is selected"
                    );
                }
                let why: Vec<Option<String>> = manifest
                    .suites
                    .iter()
                    .map(|suite| changes.why(suite, &layout.root))
                    .collect();
                Some((reference, why))
            }
        };
        let why_of = |suite: &Suite| -> Option<Option<&str>> {
            let (_, why) = selection.as_ref()?;
            let index = manifest.suites.iter().position(|s| s.name == suite.name)?;
            Some(why[index].as_deref())
        };
        if self.matrix {
            // Masked as values, like `--json`; one line, so a CI step can put it in an output.
            // Durations only from a file, never from this checkout's runs: the machines that
            // run the commands have the file (committed or restored), not this run store.
            let slicing = self.partitions.is_some() || self.split_longer_than.is_some();
            let durations = match crate::durations::file(layout, self.durations.as_deref()) {
                Some(path) if slicing => Some(crate::durations::Durations::read(&path)?),
                _ => None,
            };
            if self.split_longer_than.is_some() && durations.is_none() {
                eprintln!(
                    "xtask: warning: --split-longer-than: no durations file ({}), so no suite \
                     is split; `cargo xtask durations` writes it after a run",
                    crate::durations::DEFAULT_FILE
                );
            }
            let split = Split {
                durations: durations.as_ref(),
                flag: self.durations.as_deref(),
                longer_than: self.split_longer_than,
            };
            let matrix = redactor.json(matrix(manifest, self.partitions, &split, &why_of));
            println!("{}", actions_guard::json(&serde_json::to_string(&matrix)?));
            return Ok(());
        }
        if self.json {
            let suites: Vec<_> = manifest
                .suites
                .iter()
                .filter_map(|suite| match why_of(suite) {
                    None => Some(suite_json(suite)),
                    Some(None) => None,
                    Some(Some(why)) => {
                        let mut object = suite_json(suite);
                        object["why"] = why.into();
                        Some(object)
                    }
                })
                .collect();
            // Masked as values: a suite's `env` may hold a secret or a URL with a password.
            let suites = redactor.json(serde_json::Value::Array(suites));
            println!(
                "{}",
                actions_guard::json(&serde_json::to_string_pretty(&suites)?)
            );
            return Ok(());
        }
        if let Some((reference, _)) = &selection {
            for suite in &manifest.suites {
                let line = match why_of(suite).flatten() {
                    Some(why) => format!("{}  changed: {why}", suite.name),
                    None => format!("{}  unchanged since {reference}", suite.name),
                };
                println!("{}", redactor.text(&line));
            }
            return Ok(());
        }
        let widest = |field: fn(&Suite) -> &str| {
            manifest
                .suites
                .iter()
                .map(|s| field(s).len())
                .max()
                .unwrap_or(0)
        };
        let (width, gwidth, dwidth) = (
            widest(|s| &s.name),
            widest(|s| &s.group),
            widest(|s| &s.dir),
        );
        for suite in &manifest.suites {
            let needs = needs(suite);
            let line = if needs.is_empty() {
                format!(
                    "{:<width$}  {:<gwidth$}  {}",
                    suite.name, suite.group, suite.dir
                )
            } else {
                format!(
                    "{:<width$}  {:<gwidth$}  {:<dwidth$}  needs {needs}",
                    suite.name, suite.group, suite.dir
                )
            };
            println!("{}", redactor.text(&line));
        }
        Ok(())
    }
}

/// How `list --matrix --partitions N` splits suites: by `durations` for a suite it has
/// durations of, the commands naming the file when it was given as `flag`; by hash else.
/// With `longer_than` (`--split-longer-than`), only the suites whose recorded durations
/// add up to more than it, each into as many entries as it takes to keep every entry's
/// share within it.
#[derive(Default)]
pub struct Split<'a> {
    pub durations: Option<&'a crate::durations::Durations>,
    pub flag: Option<&'a std::path::Path>,
    pub longer_than: Option<std::time::Duration>,
}

impl Split<'_> {
    /// The sum of `suite`'s recorded test durations, in seconds, when there are any.
    fn recorded(&self, suite: &str) -> Option<f64> {
        let tests = self.durations?.suites.get(suite)?;
        (!tests.is_empty()).then(|| tests.values().sum())
    }

    /// Into how many entries `suite` goes with `--split-longer-than`: ceil(recorded total /
    /// threshold), at least 1 and at most [`crate::plan::MAX_PARTITIONS`]; 1 without durations.
    pub fn entries_for(&self, suite: &str) -> u32 {
        let (Some(limit), Some(total)) = (self.longer_than, self.recorded(suite)) else {
            return 1;
        };
        let limit = limit.as_secs_f64();
        if limit <= 0.0 || total <= limit {
            return 1;
        }
        let n = (total / limit).ceil();
        if n >= f64::from(crate::plan::MAX_PARTITIONS) {
            crate::plan::MAX_PARTITIONS
        } else {
            n as u32
        }
    }
}

/// The CI matrix: one entry per suite `cargo xtask ci` runs (the groups of `ci-groups`,
/// every group when absent; per suite and partition with `partitions`, or with
/// `split.longer_than` for a suite recorded as longer than that), each
/// with a `name` unique among them, the suite, its group and the command that runs it.
/// `why` says, per suite, `None` when every suite is listed, else `Some(None)` for a suite
/// left out and `Some(Some(why))` for one selected (`--changed-since`), whose entries then
/// carry `why`.
/// A new object rather than a change of `--json`'s array: GitHub's `matrix.include` and
/// GitLab's `parallel:matrix` want flat string values under an `include` key, and
/// `--json`'s readers keep what they read.
pub fn matrix<'a>(
    manifest: &Manifest,
    partitions: Option<u32>,
    split: &Split<'_>,
    why: &dyn Fn(&Suite) -> Option<Option<&'a str>>,
) -> serde_json::Value {
    let mut include = Vec::new();
    let in_ci = |group: &String| {
        manifest
            .ci_groups
            .as_ref()
            .is_none_or(|groups| groups.contains(group))
    };
    for suite in manifest.suites.iter().filter(|s| in_ci(&s.group)) {
        let selected = why(suite);
        if selected == Some(None) {
            continue;
        }
        let command = format!("cargo xtask test {}", suite.name);
        let with_why = |mut entry: serde_json::Value| {
            if let Some(Some(why)) = selected {
                entry["why"] = why.into();
            }
            entry
        };
        let slices = match partitions {
            Some(n) => Some(n),
            None => Some(split.entries_for(&suite.name)).filter(|&n| n > 1),
        };
        match slices {
            None => include.push(with_why(json!({
                "name": suite.name,
                "suite": suite.name,
                "group": suite.group,
                "command": command,
            }))),
            Some(n) => {
                let by_durations = split.recorded(&suite.name).is_some();
                let (mode, flag) = match (by_durations, split.flag) {
                    (false, _) => ("hash", String::new()),
                    (true, None) => ("durations", String::new()),
                    (true, Some(file)) => (
                        "durations",
                        format!(" --durations {}", shell_word(&file.to_string_lossy())),
                    ),
                };
                include.extend((1..=n).map(|k| {
                    with_why(json!({
                        "name": format!("{}-{k}-of-{n}", suite.name),
                        "suite": suite.name,
                        "group": suite.group,
                        "partition": format!("{mode}:{k}/{n}"),
                        "command": format!("{command} --partition {mode}:{k}/{n}{flag}"),
                    }))
                }))
            }
        }
    }
    json!({ "include": include })
}

/// `word` as one POSIX shell word: as it is when it holds nothing a shell reads, else quoted.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What a suite needs from outside its environment: `service backend, env OPENAI_API_KEY`.
fn needs(suite: &Suite) -> String {
    let services = suite.services.iter().map(|s| format!("service {s}"));
    let prerequisites = suite
        .prerequisites
        .iter()
        .map(|p| format!("prerequisite {p}"));
    let vars = suite.requires_env.iter().map(|v| format!("env {v}"));
    services
        .chain(prerequisites)
        .chain(vars)
        .collect::<Vec<_>>()
        .join(", ")
}

fn suite_json(suite: &Suite) -> serde_json::Value {
    let environment = match &suite.environment {
        Environment::Project {
            extras,
            groups,
            default_groups,
        } => json!({
            "project": true,
            "extras": extras,
            "groups": groups,
            "default_groups": default_groups,
        }),
        Environment::Requirements { requirements, file } => {
            json!({ "project": false, "requirements": requirements, "requirements-file": file })
        }
    };
    json!({
        "name": suite.name,
        "group": suite.group,
        "dir": suite.dir,
        "environment": environment,
        "pythonpath": suite.pythonpath,
        "markers": suite.markers,
        "paths": suite.paths,
        "env": suite.env,
        "timeout_secs": suite.timeout.as_secs(),
        "requires_env": suite.requires_env,
        "services": suite.services,
        "prerequisites": suite.prerequisites,
        // The manifest's `split`: a number of slices (1: not split) or "auto".
        "split": match suite.split {
            crate::manifest::Split::Count(n) => json!(n),
            crate::manifest::Split::Auto => json!("auto"),
        },
        // The result cache: whether it may replay the suite, and what it hashes beyond the
        // usual inputs (`inputs`, `inputs-env`); `never_cached` says why not, when not.
        "cache": {
            "enabled": suite.cache.enabled,
            "inputs": suite.cache.inputs,
            "inputs_env": suite.cache.inputs_env,
            "never_cached": crate::cache::never_cached(suite),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_has_an_entry_per_suite_or_per_suite_and_partition() {
        let manifest = Manifest::for_tests(&[("green", "one"), ("red", "two")]);
        assert_eq!(
            matrix(&manifest, None, &Split::default(), &|_| None),
            json!({"include": [
                {"name": "green", "suite": "green", "group": "one", "command": "cargo xtask test green"},
                {"name": "red", "suite": "red", "group": "two", "command": "cargo xtask test red"},
            ]})
        );
        let split = matrix(&manifest, Some(2), &Split::default(), &|_| None);
        let commands: Vec<&str> = split["include"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["command"].as_str().unwrap())
            .collect();
        assert_eq!(
            commands,
            [
                "cargo xtask test green --partition hash:1/2",
                "cargo xtask test green --partition hash:2/2",
                "cargo xtask test red --partition hash:1/2",
                "cargo xtask test red --partition hash:2/2",
            ]
        );
        assert_eq!(split["include"][1]["name"], "green-2-of-2");
        // A suite the durations file knows is split by durations, the others by hash.
        let mut durations = crate::durations::Durations::new();
        durations
            .suites
            .entry("red".into())
            .or_default()
            .insert("test_r.py::test_x".into(), 2.0);
        for (flag, tail) in [
            (None, ""),
            (Some("ci dir/d.json"), " --durations 'ci dir/d.json'"),
        ] {
            let by = Split {
                durations: Some(&durations),
                flag: flag.map(std::path::Path::new),
                longer_than: None,
            };
            let split = matrix(&manifest, Some(2), &by, &|_| None);
            let entries = split["include"].as_array().unwrap();
            assert_eq!(entries[0]["partition"], "hash:1/2");
            assert_eq!(entries[3]["partition"], "durations:2/2");
            assert_eq!(
                entries[3]["command"],
                format!("cargo xtask test red --partition durations:2/2{tail}")
            );
        }
        // Only the suites `ci` runs.
        let mut manifest = manifest;
        manifest.ci_groups = Some(vec!["two".into()]);
        assert_eq!(
            matrix(&manifest, None, &Split::default(), &|_| None)["include"][0]["suite"],
            "red"
        );
        assert_eq!(
            matrix(&manifest, None, &Split::default(), &|_| None)["include"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // --changed-since: only the selected suites, each with why.
        manifest.ci_groups = None;
        let why = |suite: &Suite| Some((suite.name == "red").then_some("tests/x.py changed"));
        assert_eq!(
            matrix(&manifest, None, &Split::default(), &why),
            json!({"include": [
                {"name": "red", "suite": "red", "group": "two", "command": "cargo xtask test red", "why": "tests/x.py changed"},
            ]})
        );
    }

    #[test]
    fn a_suite_is_split_into_ceil_of_its_recorded_time_over_the_threshold() {
        let mut durations = crate::durations::Durations::new();
        let mut record = |suite: &str, tests: usize, secs: f64| {
            let entry = durations.suites.entry(suite.into()).or_default();
            for n in 0..tests {
                entry.insert(format!("t.py::test_{n}"), secs);
            }
        };
        record("exact", 4, 5.0);
        record("over", 4, 5.5);
        record("huge", 1, 1e12);
        record("empty", 0, 0.0);
        let split = Split {
            durations: Some(&durations),
            flag: None,
            longer_than: Some(std::time::Duration::from_secs(10)),
        };
        assert_eq!(split.entries_for("exact"), 2);
        assert_eq!(split.entries_for("over"), 3);
        assert_eq!(split.entries_for("huge"), crate::plan::MAX_PARTITIONS);
        assert_eq!(split.entries_for("empty"), 1);
        assert_eq!(split.entries_for("unknown"), 1);
        let without = Split {
            longer_than: None,
            ..split
        };
        assert_eq!(without.entries_for("over"), 1);
    }
}
