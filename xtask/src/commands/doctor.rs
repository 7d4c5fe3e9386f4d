//! `cargo xtask doctor [--json]`: checks the toolchain and every suite's environment.

use std::process::ExitCode;

use crate::flags::DoctorArgs;
use crate::manifest::Manifest;
use crate::paths::Layout;

pub fn run(_layout: &Layout, _manifest: &Manifest, _args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`cargo xtask doctor` is being written")
}
