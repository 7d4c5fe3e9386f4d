//! `cargo xtask test [SUITE|GROUP ...]` and `cargo xtask test-<group>`.

use std::path::PathBuf;

use crate::flags::{RunArgs, TestArgs};
use crate::manifest::{Manifest, Suite};
use crate::outcome::Outcome;
use crate::paths::Layout;
use crate::plan::{plan_suite, Blocked};
use crate::redact::{RedactingWriter, Redactor};
use crate::report::record::{RecordSink, RunInfo};
use crate::report::{junit::JunitSink, terminal::TerminalSink};
use crate::{process, runner, toolchain, UsageError};

impl TestArgs {
    pub fn run(self, layout: &Layout, manifest: &Manifest) -> anyhow::Result<u8> {
        let suites = select(manifest, &self.selectors)?;
        run_suites(layout, manifest, &suites, &self.run)
    }
}

pub fn run_group(
    layout: &Layout,
    manifest: &Manifest,
    group: &str,
    args: &RunArgs,
) -> anyhow::Result<u8> {
    let suites: Vec<&Suite> = manifest.suites_in_group(group).collect();
    run_suites(layout, manifest, &suites, args)
}

/// The suites named by `selectors` (suite or group names), in manifest order, each once.
pub fn select<'a>(
    manifest: &'a Manifest,
    selectors: &[String],
) -> Result<Vec<&'a Suite>, UsageError> {
    if selectors.is_empty() {
        return Ok(manifest.suites.iter().collect());
    }
    let groups = manifest.groups();
    let unknown: Vec<&str> = selectors
        .iter()
        .map(String::as_str)
        .filter(|s| !groups.contains(s) && !manifest.suites.iter().any(|suite| suite.name == *s))
        .collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = manifest.suites.iter().map(|s| s.name.as_str()).collect();
        return Err(UsageError(format!(
            "no suite or group named {}; the suites are {} and the groups are {} (see `cargo xtask list`)",
            unknown.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", "),
            names.join(", "),
            groups.join(", ")
        )));
    }
    Ok(manifest
        .suites
        .iter()
        .filter(|suite| {
            selectors
                .iter()
                .any(|s| *s == suite.name || *s == suite.group)
        })
        .collect())
}

/// Plans the suites, runs them, writes the reports, and turns the outcomes into an exit code.
/// Whatever happens (no uv, a failing environment, a timeout, Ctrl-C) every suite ends with
/// an outcome and every report is written.
pub fn run_suites(
    layout: &Layout,
    manifest: &Manifest,
    suites: &[&Suite],
    args: &RunArgs,
) -> anyhow::Result<u8> {
    let started_at = crate::report::record::now();
    process::handle_interrupts();
    prune_dead_runs(layout);
    let suite_env: Vec<(String, String)> = suites
        .iter()
        .flat_map(|s| s.env.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect();
    let redactor = Redactor::from_env(&suite_env, &manifest.secrets);
    let uv = toolchain::find_or_install_uv(layout);
    let toolchain_blocked = uv.as_ref().err().map(|err| {
        eprintln!("error: {}", redactor.text(&err.to_string()));
        Blocked {
            outcome: Outcome::ToolchainError,
            detail: err.to_string(),
        }
    });
    let uv_path = uv
        .as_ref()
        .map_or_else(|_| PathBuf::from("uv"), Clone::clone);
    let plans: Vec<_> = suites
        .iter()
        .map(|suite| {
            let mut plan = plan_suite(suite, layout, &uv_path, &args.pytest_args);
            if let Some(timeout) = args.timeout {
                plan.timeout = timeout;
            }
            // A missing prerequisite says more than a missing uv: the suite could not run anyway.
            if plan.blocked.is_none() {
                plan.blocked = toolchain_blocked.clone();
            }
            plan
        })
        .collect();
    let jobs = args
        .jobs
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));

    let info = RunInfo::gather(layout, uv.as_ref().ok().map(PathBuf::as_path), started_at);
    let mut terminal = TerminalSink::new(
        RedactingWriter::new(std::io::stdout(), redactor.clone()),
        layout,
    );
    let mut junit = JunitSink::new(layout, redactor.clone());
    let mut record = RecordSink::new(layout, info, redactor.clone());
    let results = runner::run(
        &plans,
        jobs,
        &redactor,
        &mut [&mut terminal, &mut junit, &mut record],
    );
    // The working files are published or no longer needed.
    let _ = std::fs::remove_dir_all(layout.run_dir());
    let results = results?;
    Ok(Outcome::overall(results.iter().map(|r| r.outcome)).exit_code())
}

/// Removes the working directories of invocations that died without cleaning up, including
/// one left under this process's id by an earlier process, so no stale file is read as ours.
fn prune_dead_runs(layout: &Layout) {
    let Ok(entries) = std::fs::read_dir(layout.runs_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().parse::<u32>().ok();
        if pid.is_some_and(|pid| pid == std::process::id() || !process::alive(pid)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::for_tests(&[
            ("guardrail", "shared"),
            ("specialists", "shared"),
            ("agent", "version-a"),
        ])
    }

    fn names(suites: Vec<&Suite>) -> Vec<&str> {
        suites.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn selectors_pick_suites_and_groups_in_manifest_order_once() {
        let manifest = manifest();
        assert_eq!(
            names(select(&manifest, &[]).unwrap()),
            ["guardrail", "specialists", "agent"]
        );
        let picked = select(
            &manifest,
            &["agent".into(), "shared".into(), "guardrail".into()],
        )
        .unwrap();
        assert_eq!(names(picked), ["guardrail", "specialists", "agent"]);
    }

    #[test]
    fn unknown_selectors_are_named_with_the_known_ones() {
        let err = select(&manifest(), &["nope".into(), "agent".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no suite or group named `nope`; the suites are guardrail, specialists, agent and the groups are shared, version-a (see `cargo xtask list`)"
        );
    }
}
