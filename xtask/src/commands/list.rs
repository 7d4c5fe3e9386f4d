//! `cargo xtask list [--json]`: the suites of the manifest.

use serde_json::json;

use crate::flags::ListArgs;
use crate::manifest::{Environment, Manifest, Suite};

impl ListArgs {
    pub fn run(self, manifest: &Manifest) -> anyhow::Result<()> {
        let all: Vec<&Suite> = manifest.suites.iter().collect();
        let redactor = crate::session::redactor(manifest, &all);
        if self.json {
            let suites: Vec<_> = manifest.suites.iter().map(suite_json).collect();
            // Masked as values: a suite's `env` may hold a secret or a URL with a password.
            let suites = redactor.json(serde_json::Value::Array(suites));
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
            let line = format!(
                "{:<width$}  {:<gwidth$}  {}",
                suite.name, suite.group, suite.dir
            );
            println!("{}", redactor.text(&line));
        }
        Ok(())
    }
}

fn suite_json(suite: &Suite) -> serde_json::Value {
    let environment = match &suite.environment {
        Environment::Project { extras } => json!({ "project": true, "extras": extras }),
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
    })
}
