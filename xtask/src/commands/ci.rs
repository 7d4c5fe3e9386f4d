//! `cargo xtask ci`: the whole job CI runs.

use crate::flags::RunArgs;
use crate::manifest::{Manifest, SMOKE_GROUP};
use crate::paths::Layout;
use crate::session;

/// Every suite of the groups in the manifest's `ci-groups` (every group when it has none),
/// then the smoke suites, in one run: one record, one report, and an exit code that
/// reflects both. The smoke suites' services are started before the run and stopped after.
pub fn run(layout: &Layout, manifest: &Manifest, args: &RunArgs) -> anyhow::Result<()> {
    let suites: Vec<_> = manifest
        .suites
        .iter()
        .filter(|s| {
            s.group == SMOKE_GROUP
                || manifest
                    .ci_groups
                    .as_ref()
                    .is_none_or(|groups| groups.contains(&s.group))
        })
        .collect();
    session::run_suites(layout, manifest, &suites, args)
}
