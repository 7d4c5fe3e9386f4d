//! `cargo xtask trace [RUN|PATH] -o FILE`: a past run as a Chrome trace.

use anyhow::Context;

use crate::flags::TraceArgs;
use crate::paths::Layout;
use crate::report::{run_record, trace};

impl TraceArgs {
    pub fn run(&self, layout: &Layout) -> anyhow::Result<()> {
        let path = crate::run_archive::find_record(layout, &self.run)?;
        let record = run_record::load(&path).map_err(crate::error::Error::from)?;
        let trace = trace::trace(&record);
        let text = serde_json::to_string(&trace).context("serializing the trace")?;
        std::fs::write(&self.output, text + "\n")
            .with_context(|| format!("writing {}", self.output.display()))?;
        println!(
            "wrote {} (run {}): open it in https://ui.perfetto.dev or chrome://tracing",
            self.output.display(),
            record.run_id
        );
        Ok(())
    }
}
