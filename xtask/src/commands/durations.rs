//! `cargo xtask durations [RUN...] [-o FILE]`: the per-test durations of past runs, in the
//! file `--partition durations:K/N` and `list --matrix --partitions N` balance slices by.

use crate::durations::{Durations, DEFAULT_FILE};
use crate::error::Error;
use crate::flags::DurationsArgs;
use crate::paths::Layout;

impl DurationsArgs {
    pub fn run(&self, layout: &Layout) -> anyhow::Result<()> {
        let mut durations = Durations::new();
        if self.runs.is_empty() {
            durations = crate::durations::from_store(layout)
                .map(|(durations, _)| durations)
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "no kept run under {} recorded whole suites (not `--partition` \
                         slices, not `--rerun`s): run `cargo xtask test` first, or name runs",
                        layout.display(&layout.runs_dir())
                    ))
                })?;
        }
        for run in &self.runs {
            let path = crate::runs::find_record(layout, run)?;
            let record = crate::report::run_record::load(&path)
                .map_err(|err| Error::Usage(err.to_string()))?;
            durations.add_record(&record);
        }
        let tests: usize = durations.suites.values().map(|t| t.len()).sum();
        let output = self
            .output
            .clone()
            .unwrap_or_else(|| layout.root.join(DEFAULT_FILE));
        durations.write(&output)?;
        println!(
            "xtask: wrote the durations of {tests} tests in {} suites to {}",
            durations.suites.len(),
            output.display()
        );
        Ok(())
    }
}
