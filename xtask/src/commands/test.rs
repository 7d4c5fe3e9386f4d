//! `cargo xtask test [SUITE|GROUP ...]` and `cargo xtask test-<group>`.

use crate::flags::{RunArgs, TestArgs};
use crate::manifest::{Manifest, Suite};
use crate::paths::Layout;
use crate::session;

impl TestArgs {
    pub fn run(self, layout: &Layout, manifest: &Manifest) -> anyhow::Result<()> {
        let suites = session::select(manifest, &self.selectors)?;
        session::run_suites(layout, manifest, &suites, &self.run)
    }
}

pub fn run_group(
    layout: &Layout,
    manifest: &Manifest,
    group: &str,
    args: &RunArgs,
) -> anyhow::Result<()> {
    let suites: Vec<&Suite> = manifest.suites_in_group(group).collect();
    session::run_suites(layout, manifest, &suites, args)
}
