//! `cargo xtask ci`: the whole job CI runs.

use crate::flags::RunArgs;
use crate::manifest::Manifest;
use crate::paths::Layout;
use crate::session;

/// Every suite of every group, in manifest order.
pub fn run(layout: &Layout, manifest: &Manifest, args: &RunArgs) -> anyhow::Result<u8> {
    let suites: Vec<_> = manifest.suites.iter().collect();
    session::run_suites(layout, manifest, &suites, args)
}
