//! `cargo xtask list [--json]`: the suites of the manifest.

use serde_json::json;

use crate::flags::ListArgs;
use crate::manifest::{Environment, Manifest, Suite};

impl ListArgs {
    pub fn run(self, manifest: &Manifest) -> anyhow::Result<()> {
        if self.json {
            let suites: Vec<_> = manifest.suites.iter().map(suite_json).collect();
            println!("{}", serde_json::to_string_pretty(&suites)?);
            return Ok(());
        }
        let width = manifest
            .suites
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0);
        let gwidth = manifest
            .suites
            .iter()
            .map(|s| s.group.len())
            .max()
            .unwrap_or(0);
        for suite in &manifest.suites {
            println!(
                "{:<width$}  {:<gwidth$}  {}",
                suite.name, suite.group, suite.dir
            );
        }
        Ok(())
    }
}

fn suite_json(suite: &Suite) -> serde_json::Value {
    let environment = match &suite.environment {
        Environment::Project { extras } => json!({ "project": true, "extras": extras }),
        Environment::Requirements(requirements) => {
            json!({ "project": false, "requirements": requirements })
        }
        Environment::RequirementsFile(file) => {
            json!({ "project": false, "requirements-file": file })
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
    })
}
