//! `cargo xtask ci`: the whole job CI runs.

use crate::flags::RunArgs;
use crate::manifest::Manifest;
use crate::paths::Layout;
use crate::session;

/// Every suite of the groups in the manifest's `ci-groups` (every group when it has none),
/// in manifest order.
pub fn run(layout: &Layout, manifest: &Manifest, args: &RunArgs) -> anyhow::Result<u8> {
    let suites: Vec<_> = manifest
        .suites
        .iter()
        .filter(|s| {
            manifest
                .ci_groups
                .as_ref()
                .is_none_or(|groups| groups.contains(&s.group))
        })
        .collect();
    session::run_suites(layout, manifest, &suites, args)
}
