//! `cargo xtask export [RUN|PATH] -o FILE`: one run's directory as one portable archive
//! (`run_archive`), for CI's artifacts and for bringing a run to another checkout.

use std::io::Write;
use std::path::Path;

use crate::error::Error;
use crate::flags::ExportArgs;
use crate::paths::Layout;
use crate::report::run_record;
use crate::run_archive;

impl ExportArgs {
    pub fn run(&self, layout: &Layout) -> anyhow::Result<()> {
        let path = run_archive::find_record(layout, &self.run)?;
        let record = run_record::load(&path).map_err(crate::error::Error::from)?;
        // The run's own directory, not `latest`, which may move on while it is packed.
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        let dir = path.parent().unwrap_or(Path::new("."));
        if crate::runs::is_live(dir) {
            return Err(Error::Usage(format!(
                "run {} is still running ({} is locked by its invocation); export it once it \
                 has ended",
                record.run_id,
                dir.display()
            ))
            .into());
        }
        let manifest = run_archive::export(&record, dir, &self.output)?;
        let bytes = std::fs::metadata(&self.output).map_or(0, |m| m.len());
        let unpacked: u64 = manifest.members.iter().map(|m| m.size).sum();
        let shown = crate::invocation::shell_quote(&self.output.to_string_lossy());
        println!(
            "wrote {shown}: run {} ({} files, {} unpacked, {} packed{})",
            record.run_id,
            manifest.members.len() + 1,
            size(unpacked),
            size(bytes),
            if record.status == run_record::Status::Running {
                "; its record says `running`: it never finished"
            } else {
                ""
            }
        );
        if manifest.members.iter().any(|m| m.path == "report.html") {
            println!(
                "its page: {} (in the archive too)",
                layout.display(&dir.join("report.html"))
            );
        }
        println!(
            "elsewhere: `cargo xtask replay {shown}` prints its failures, `cargo xtask test \
             --rerun {shown}` reruns what failed"
        );
        if let Some(summary) =
            std::env::var_os(crate::report::github::SUMMARY_ENV).filter(|v| !v.is_empty())
        {
            append_summary(Path::new(&summary), &self.output, &manifest, bytes)?;
        }
        Ok(())
    }
}

/// The archive and the report in it, named in the GitHub step summary.
fn append_summary(
    summary: &Path,
    archive: &Path,
    manifest: &run_archive::Manifest,
    bytes: u64,
) -> anyhow::Result<()> {
    let name = archive.file_name().map_or_else(
        || archive.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let quoted = crate::invocation::shell_quote(&name);
    let report = if manifest.members.iter().any(|m| m.path == "report.html") {
        format!(" It holds `report.html` (in `{}/`).", manifest.run_id)
    } else {
        String::new()
    };
    let text = format!(
        "\n### Run archive\n\n`{name}` ({}): run `{}`, uploaded with this job's artifacts.{report} \
         On any checkout: `cargo xtask replay {quoted}` prints its failures, `cargo xtask test \
         --rerun {quoted}` reruns what failed.\n",
        size(bytes),
        manifest.run_id
    );
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(summary)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|err| {
            anyhow::anyhow!(
                "writing the GitHub step summary to {} (${}): {err}",
                summary.display(),
                crate::report::github::SUMMARY_ENV
            )
        })
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} kB", b as f64 / (1 << 10) as f64),
        b => format!("{b} B"),
    }
}
