//! `cargo xtask`: runs the repository's pytest suites through uv, as declared in the suite
//! manifest (`[workspace.metadata.xtask]` in the root `Cargo.toml`), and reports them.
//!
//! The flow: flags (`flags`) and the manifest (`manifest`), with what the world says
//! (`facts`, read once), become plans (`plan`, pure); the runner (`runner`) executes them and emits events, and sinks (`report`) write the
//! terminal output and the JUnit files. Exit codes are in `exit_codes`.

pub mod cache;
pub mod changes;
pub mod classify;
pub mod commands;
pub mod def_line;
pub mod durations;
pub mod environment;
pub mod error;
pub mod events;
pub mod exit_codes;
pub mod facts;
pub mod flags;
pub mod invocation;
pub mod log;
pub mod manifest;
pub mod net;
pub mod paths;
pub mod plan;
pub mod pool;
pub mod process;
pub mod progress;
pub mod report;
pub mod rerun;
pub mod run_archive;
pub mod runner;
pub mod runs;
pub mod services;
pub mod session;
pub mod step;
pub mod toolchain;
pub mod uv_workspace;

// The per-test data path, compiled optimised in its own crate (xtask/data), at the same paths.
pub use xtask_data::{file_hashes, junit_xml, model, outcome, pytest_junit, redact, text};

use std::process::ExitCode;

use error::Error;
use flags::{Builtin, Parsed};
use manifest::{Manifest, ManifestError};
use paths::Layout;

pub fn main() -> ExitCode {
    // In GitHub Actions, before anything is printed: nothing but the xtask's own commands
    // may act as a workflow command.
    let guard = report::actions_guard::install().unwrap_or_else(|err| {
        eprintln!("xtask: warning: the output is not guarded against forged GitHub workflow commands: {err}");
        None
    });
    let code = guarded_main();
    if let Some(guard) = guard {
        guard.finish();
    }
    code
}

fn guarded_main() -> ExitCode {
    let started_at = report::record::now();
    let layout = Layout::new(paths::project_root());
    let command = std::env::args().nth(1).unwrap_or_default();
    let runs_suites =
        command == "test" || command == "ci" || command == "smoke" || command.starts_with("test-");
    // A panic anywhere is the xtask's own failure: INTERNAL_ERROR with the reports written,
    // never Rust's 101 (which would read as one of the outcome codes).
    let ran = std::panic::catch_unwind(|| parse_and_run(&layout));
    let (code, error, recorded) = ran.unwrap_or_else(|panic| {
        let what = runner::panic_message(&*panic);
        let message = format!("internal error: the xtask panicked ({what}); please report it");
        eprintln!("xtask: {message}");
        (exit_codes::INTERNAL_ERROR, Some(message), false)
    });
    // An invocation that was to run suites always leaves its record, even when it failed
    // before any suite ran, so that an older run.json is never read as this one's.
    if runs_suites && !recorded {
        if let Err(err) =
            report::record::write_without_suites(&layout, started_at, code, error.as_deref())
        {
            eprintln!("xtask: error: {err:#}");
            return ExitCode::from(exit_codes::INTERNAL_ERROR);
        }
    }
    ExitCode::from(code)
}

/// The exit code, the error that decided it, and whether run.json was written with it.
fn parse_and_run(layout: &Layout) -> (u8, Option<String>, bool) {
    let manifest = Manifest::load(layout);
    let parsed = match flags::parse(manifest.as_ref().ok(), std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(err) => {
            use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
            let _ = err.print();
            if matches!(err.kind(), DisplayHelp | DisplayVersion) {
                if let Err(manifest_err) = &manifest {
                    eprintln!(
                        "\nnote: the test-<group> subcommands are missing because {manifest_err}"
                    );
                }
                return (exit_codes::OK, None, false);
            }
            // A broken manifest hides the group subcommands, and nothing could run anyway.
            if let Err(manifest_err) = &manifest {
                eprintln!("\nerror: {manifest_err}");
                return (
                    exit_codes::MANIFEST_ERROR,
                    Some(manifest_err.to_string()),
                    false,
                );
            }
            return (
                exit_codes::USAGE_ERROR,
                Some(err.render().to_string()),
                false,
            );
        }
    };
    match run(layout, manifest, parsed) {
        // The session writes run.json itself, with the code of how it ended.
        Ok(()) => (exit_codes::OK, None, true),
        Err(err) if err.downcast_ref::<Error>().is_some_and(Error::reported) => {
            (error::exit_code(&err), None, true)
        }
        Err(err) => {
            let message = redact::Redactor::from_env(&[], &[]).text(&format!("{err:#}"));
            eprintln!("error: {message}");
            (error::exit_code(&err), Some(message), false)
        }
    }
}

fn run(
    layout: &Layout,
    manifest: Result<Manifest, ManifestError>,
    parsed: Parsed,
) -> anyhow::Result<()> {
    // `init` writes the manifest, so it runs whether or not there is one; merging reports
    // needs none.
    if let Parsed::Builtin(Builtin::Init(args)) = &parsed {
        return commands::init::run(layout, args);
    }
    if let Parsed::Builtin(Builtin::Junit(flags::JunitCommand::Merge(args))) = &parsed {
        commands::junit::check_inputs(&args.inputs).map_err(|e| Error::Usage(format!("{e:#}")))?;
        return commands::junit::merge(args);
    }
    if let Parsed::Builtin(Builtin::Junit(flags::JunitCommand::Libtest(args))) = &parsed {
        return commands::junit::libtest::convert(args);
    }
    // Reading past runs needs only their records.
    if let Parsed::Builtin(Builtin::Trace(args)) = &parsed {
        return args.run(layout);
    }
    if let Parsed::Builtin(Builtin::Runs(args)) = &parsed {
        return args.run(layout);
    }
    if let Parsed::Builtin(Builtin::Replay(args)) = &parsed {
        return args.run(layout);
    }
    if let Parsed::Builtin(Builtin::Export(args)) = &parsed {
        return args.run(layout);
    }
    if let Parsed::Builtin(Builtin::Durations(args)) = &parsed {
        return args.run(layout);
    }
    if let Parsed::Builtin(Builtin::Cache(flags::CacheCommand::Clear)) = &parsed {
        return commands::cache::clear(layout);
    }
    let manifest = manifest.map_err(Error::Manifest)?;
    match parsed {
        Parsed::Builtin(
            Builtin::Init(_)
            | Builtin::Junit(_)
            | Builtin::Trace(_)
            | Builtin::Runs(_)
            | Builtin::Replay(_)
            | Builtin::Export(_)
            | Builtin::Durations(_),
        ) => {
            unreachable!("init, junit and the readers of past runs are run above")
        }
        Parsed::Builtin(Builtin::Test(args)) => args.run(layout, &manifest),
        Parsed::Builtin(Builtin::List(args)) => args.run(layout, &manifest),
        Parsed::Builtin(Builtin::Ci(args)) => commands::ci::run(layout, &manifest, &args),
        Parsed::Builtin(Builtin::Smoke(args)) => commands::smoke::run(layout, &manifest, &args),
        Parsed::Builtin(Builtin::Doctor(args)) => commands::doctor::run(layout, &manifest, &args),
        Parsed::Builtin(Builtin::Bench(args)) => commands::bench::run(layout, &manifest, &args),
        Parsed::Builtin(Builtin::Cache(flags::CacheCommand::Explain(args))) => {
            commands::cache::explain(layout, &manifest, &args)
        }
        Parsed::Builtin(Builtin::Cache(flags::CacheCommand::Clear)) => {
            unreachable!("cache clear is run above")
        }
        Parsed::Group { group, run } => commands::test::run_group(layout, &manifest, &group, &run),
    }
}
