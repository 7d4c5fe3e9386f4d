//! `cargo xtask test [SUITE|GROUP ...]` and `cargo xtask test-<group>`.

use std::process::ExitCode;

use crate::flags::{RunArgs, TestArgs};
use crate::manifest::{Manifest, Suite};
use crate::outcome::Outcome;
use crate::paths::Layout;
use crate::plan::plan_suite;
use crate::report::{junit::JunitSink, terminal::TerminalSink};
use crate::{runner, toolchain, UsageError};

impl TestArgs {
    pub fn run(self, layout: &Layout, manifest: &Manifest) -> anyhow::Result<ExitCode> {
        let suites = select(manifest, &self.selectors)?;
        run_suites(layout, &suites, &self.run)
    }
}

pub fn run_group(
    layout: &Layout,
    manifest: &Manifest,
    group: &str,
    args: &RunArgs,
) -> anyhow::Result<ExitCode> {
    let suites: Vec<&Suite> = manifest.suites_in_group(group).collect();
    run_suites(layout, &suites, args)
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
pub fn run_suites(layout: &Layout, suites: &[&Suite], args: &RunArgs) -> anyhow::Result<ExitCode> {
    let uv = toolchain::find_or_install_uv(layout)?;
    let plans: Vec<_> = suites
        .iter()
        .map(|suite| plan_suite(suite, layout, &uv, &args.pytest_args))
        .collect();
    let jobs = args
        .jobs
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let mut terminal = TerminalSink::new(std::io::stdout(), layout);
    let mut junit = JunitSink::new(layout);
    let results = runner::run(&plans, jobs, &mut [&mut terminal, &mut junit])?;
    Ok(ExitCode::from(
        Outcome::overall(results.iter().map(|r| r.outcome)).exit_code(),
    ))
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
