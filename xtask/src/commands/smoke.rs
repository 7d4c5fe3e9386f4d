//! `cargo xtask smoke [SUITE ...]`: the smoke suites, with their services and prerequisites
//! (the session starts and checks those for any suite that names them).

use crate::error::Error;
use crate::flags::TestArgs;
use crate::manifest::{Manifest, Suite, SMOKE_GROUP};
use crate::paths::Layout;
use crate::session;

/// The named suites, or every suite of the `smoke` group.
pub fn suites<'a>(manifest: &'a Manifest, selectors: &[String]) -> anyhow::Result<Vec<&'a Suite>> {
    if !selectors.is_empty() {
        return Ok(session::select(manifest, selectors)?);
    }
    let suites: Vec<&Suite> = manifest.suites_in_group(SMOKE_GROUP).collect();
    if suites.is_empty() {
        return Err(Error::Usage(format!(
            "there are no smoke suites: give suites `group = \"{SMOKE_GROUP}\"` in Cargo.toml (docs/usage.md, \"Smoke suites\")"
        ))
        .into());
    }
    Ok(suites)
}

pub fn run(layout: &Layout, manifest: &Manifest, args: &TestArgs) -> anyhow::Result<()> {
    let suites = suites(manifest, &args.selectors)?;
    session::run_suites(layout, manifest, &suites, &args.run)
}
