//! Every flag of `cargo xtask`, in one place. Doc comments are the help text.
//!
//! The `test-<group>` subcommands come from the manifest at run time, so a new group needs
//! no Rust change: they are added to the derived command before parsing.

use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::manifest::{parse_duration, Manifest};

/// Runs the repository's Python test suites (uv + pytest) the same way everywhere,
/// and writes JUnit reports to target/xtask/.
#[derive(Parser, Debug)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Builtin,
}

const AFTER_HELP: &str = "The suites and groups are defined in [workspace.metadata.xtask] in the root Cargo.toml.\n\
Reports: target/xtask/junit.xml, target/xtask/junit/<suite>.xml; logs: target/xtask/logs/<suite>.log;\n\
the run record: target/xtask/run.json. Exit codes: see README.md; every option: docs/cli.md.";

#[derive(Subcommand, Debug)]
pub enum Builtin {
    /// Run the named suites or groups (every suite but the smoke suites when none is named).
    Test(TestArgs),
    /// List the suites of the manifest.
    List(ListArgs),
    /// Run the whole CI job: every test group, then the smoke suites.
    Ci(RunArgs),
    /// Run the smoke suites (the `smoke` group, or the named ones): check their
    /// prerequisites, start their services, run them against those, stop the services.
    Smoke(TestArgs),
    /// Check that uv, Python and every suite's environment are usable, without running tests.
    Doctor(DoctorArgs),
    /// Benchmark the xtask against the commands a person would type by hand (see docs/design.md,
    /// "Benchmark"); writes target/xtask/bench/results.json.
    #[command(after_help = BENCH_AFTER_HELP)]
    Bench(BenchArgs),
    /// Guess a starter suite manifest from the repository's Python packages.
    ///
    /// Appends it to the root Cargo.toml (creating a [workspace] if there is none, keeping
    /// the rest of the file as it is) and prints every guess and why, one line each. The
    /// guess is loaded as a run would load it before anything is written. Works without a
    /// manifest; refuses when there is one (see --force, --print).
    Init(InitArgs),
    /// Work with JUnit reports: `junit merge IN... -o OUT` merges the reports of many runs.
    #[command(subcommand)]
    Junit(JunitCommand),
    /// Write a past run as a Chrome trace (Trace Event Format, for Perfetto or
    /// chrome://tracing): a lane per worker, environment builds, services, suites and their
    /// tests (every attempt) with their real start and duration.
    Trace(TraceArgs),
    /// List the kept runs under target/xtask/runs/, newest first: id, start, outcome, counts,
    /// duration, commit. A run still `running` whose invocation is gone was killed.
    Runs(RunsArgs),
    /// Write the test durations of past runs to a file (.xtask/durations.json unless -o),
    /// which `--partition durations:K/N` and `list --matrix --partitions N` balance by.
    Durations(DurationsArgs),
    /// The result cache: `cache explain [SUITE...]` says whether each suite's next run
    /// replays a cached result and which inputs changed since; `cache clear` empties it.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Print a past run's terminal output again, from its record (suite lines, failures with
    /// file:line and messages, the ends of its logs, the table).
    Replay(ReplayArgs),
    /// Pack a past run (run.json, JUnit, logs, report.html) into one portable archive that
    /// `--rerun FILE`, `replay FILE` and `trace FILE` read on any checkout: a tar, gzipped
    /// unless FILE ends in `.tar`, with the SHA-256 of every file in its manifest.
    Export(ExportArgs),
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// `latest`, a run id (a directory under target/xtask/runs/), a run.json or its run
    /// directory.
    #[arg(value_name = "RUN|PATH", default_value = "latest")]
    pub run: String,
    /// Where the archive goes (`run.tar.gz`; a name ending in `.tar` is not compressed).
    #[arg(short, long, value_name = "FILE")]
    pub output: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// `latest`, a run id (a directory under target/xtask/runs/), a run.json or its run
    /// directory, or an archive of `cargo xtask export`.
    #[arg(value_name = "RUN|PATH", default_value = "latest")]
    pub run: String,
}

#[derive(Args, Debug)]
pub struct RunsArgs {}

#[derive(Args, Debug)]
pub struct TraceArgs {
    /// `latest`, a run id (a directory under target/xtask/runs/), a run.json or its run
    /// directory, or an archive of `cargo xtask export`.
    #[arg(value_name = "RUN|PATH", default_value = "latest")]
    pub run: String,
    /// Where the trace goes.
    #[arg(short, long, value_name = "FILE")]
    pub output: std::path::PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum JunitCommand {
    /// Merge the `junit.xml` of many runs (CI runners, partitions) into one report: every
    /// suite, case, property and rerun kept, totals recomputed from the cases, the
    /// partitions of one suite as one `<testsuite>`. The same case in two reports is an
    /// error, but for the case standing for a suite that did not run, folded into one.
    Merge(JunitMergeArgs),
    /// Write a JUnit report of what `cargo test` printed (`cargo test --no-fail-fast 2>&1 |
    /// tee LOG`): a testsuite per test binary (`Running ...`, `Doc-tests ...`), a case per
    /// `test NAME ... ok|FAILED|ignored`, a failure's text its `---- NAME stdout ----`
    /// block, a binary that crashed before its summary an error case.
    Libtest(JunitLibtestArgs),
}

#[derive(Args, Debug)]
pub struct JunitLibtestArgs {
    /// The logs of `cargo test` (stdout and stderr together), read in order.
    #[arg(required = true, value_name = "LOG")]
    pub logs: Vec<std::path::PathBuf>,
    /// Where the report goes.
    #[arg(short, long, value_name = "OUT")]
    pub output: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct JunitMergeArgs {
    /// The reports to merge.
    #[arg(required = true, value_name = "IN")]
    pub inputs: Vec<std::path::PathBuf>,
    /// Where the merged report goes.
    #[arg(short, long, value_name = "OUT")]
    pub output: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Suite or group names; none: every suite (`test`, the smoke suites left out) or every
    /// smoke suite (`smoke`).
    #[arg(value_name = "SUITE|GROUP")]
    pub selectors: Vec<String>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// How many suites run at once [default: the number of CPU cores; 1 with --no-capture].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<NonZeroUsize>,
    /// Stop a suite that runs longer than this (`90s`, `10m`, `1h`; a bare number is
    /// seconds), whatever the manifest says.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Run only the K-th of N slices of each suite's tests (N at most 256): `hash:K/N` by a
    /// hash of each test's node id, `durations:K/N` balanced by recorded durations (longest
    /// first onto the least-loaded slice; see --durations). The N slices together run every
    /// test once.
    #[arg(long, value_name = "hash:K/N|durations:K/N", value_parser = crate::plan::Partition::parse)]
    pub partition: Option<crate::plan::Partition>,
    /// The durations `--partition durations:K/N` balances by: a file `cargo xtask durations`
    /// wrote [default: .xtask/durations.json when it exists, else each suite's newest kept
    /// run that ran all of it (not a slice, not a `--rerun`)].
    #[arg(long, value_name = "FILE", requires = "partition")]
    pub durations: Option<std::path::PathBuf>,
    /// Run each suite as N slices of its tests at once, each its own pytest process in the
    /// suite's one environment, reported as one suite (overrides each suite's `split`);
    /// `auto` splits a suite whose recorded duration would leave cores idle at the end.
    #[arg(long, value_name = "N|auto", value_parser = crate::manifest::Split::parse)]
    pub split: Option<crate::manifest::Split>,
    /// Run only the suites whose inputs changed since this git ref (their directory, their
    /// pythonpath entries, their requirements file, their manifest entry).
    #[arg(long, value_name = "REF")]
    pub changed_since: Option<String>,
    /// Run each failed test again up to N times, by node id, in the same environment; a test
    /// that passes on a retry is flaky (overrides each suite's `retries`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=crate::manifest::MAX_RETRIES as i64))]
    pub retries: Option<u32>,
    /// Fail the run when a test was flaky (passed only on a retry).
    #[arg(long)]
    pub flaky_fails: bool,
    /// Run again what an earlier run left failing: its failed tests, the whole of each suite
    /// that did not run to its end, and tests added since; `latest` (the default), a run id
    /// (a directory under target/xtask/runs/), a run.json or its directory, or an archive
    /// of `cargo xtask export` (from any checkout).
    #[arg(long, value_name = "latest|RUN_ID|PATH", num_args = 0..=1, default_missing_value = "latest")]
    pub rerun: Option<String>,
    /// Run every suite, even those whose inputs are exactly those of a run where they passed
    /// (the result cache replays those; `cache = false` turns it off per suite).
    #[arg(long)]
    pub no_cache: bool,
    /// Leave out this group or suite (repeatable): `--exclude smoke`.
    #[arg(long, value_name = "GROUP|SUITE")]
    pub exclude: Vec<String>,
    /// When a passing suite's output is shown: never, when it ends (immediate), or after
    /// every suite has ended (final).
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = OutputWhen::Never)]
    pub success_output: OutputWhen,
    /// When a suite that did not pass shows its failures and the end of its log: never,
    /// when it ends (immediate), or after every suite has ended (final).
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = OutputWhen::Immediate)]
    pub failure_output: OutputWhen,
    /// Stream each suite's output (environment builds and pytest, run with `-s`) to the
    /// terminal as it is written; suites then run one at a time.
    #[arg(long)]
    pub no_capture: bool,
    /// Exit PREREQUISITE_UNAVAILABLE (107) when a suite could not run because a prerequisite
    /// (`prerequisites`, `requires-env`) is unavailable; without it such suites are reported
    /// (as skipped in the JUnit) and do not fail the run.
    #[arg(long)]
    pub require_all: bool,
    /// Arguments for pytest, passed unchanged to every selected suite
    /// (`cargo xtask test guardrail -- -k buffer -x`).
    #[arg(last = true, value_name = "PYTEST_ARGS")]
    pub pytest_args: Vec<String>,
}

impl Default for RunArgs {
    fn default() -> Self {
        RunArgs {
            jobs: None,
            timeout: None,
            partition: None,
            durations: None,
            split: None,
            changed_since: None,
            retries: None,
            flaky_fails: false,
            rerun: None,
            no_cache: false,
            exclude: Vec::new(),
            success_output: OutputWhen::Never,
            failure_output: OutputWhen::Immediate,
            no_capture: false,
            require_all: false,
            pytest_args: Vec::new(),
        }
    }
}

/// When a suite's output is shown on the terminal (as nextest's `--success-output` and
/// `--failure-output`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputWhen {
    Never,
    /// When the suite ends.
    Immediate,
    /// After every suite has ended, before the summary.
    Final,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print a JSON array with one object per suite.
    #[arg(long, conflicts_with = "matrix")]
    pub json: bool,
    /// Print a CI matrix on one line: `{"include": [{"name", "suite", "group", "command"}, ...]}`,
    /// for GitHub Actions' `fromJSON(...)` and GitLab's `parallel:matrix`.
    #[arg(long)]
    pub matrix: bool,
    /// Only the suites whose inputs changed since this git ref, each with why: every suite
    /// as changed or unchanged; with `--json` or `--matrix`, only the selected suites, each
    /// with a `why` key.
    #[arg(long, value_name = "REF")]
    pub changed_since: Option<String>,
    /// With `--matrix`: N entries per suite (at most 256), whose commands carry
    /// `--partition durations:K/N` when the durations file (--durations, else
    /// .xtask/durations.json) has the suite's durations, else `--partition hash:K/N`.
    #[arg(long, value_name = "N", requires = "matrix", group = "slicing", value_parser = clap::value_parser!(u32).range(1..=crate::plan::MAX_PARTITIONS as i64))]
    pub partitions: Option<u32>,
    /// With `--matrix`: a suite whose tests' recorded durations add up to more than this
    /// (`90s`, `5m`, `1h`) gets ceil(total / DURATION) entries (at most 256), whose
    /// commands carry `--partition durations:K/N`; every other suite one entry. Durations
    /// from the durations file (--durations, else .xtask/durations.json); without one,
    /// no suite is split.
    #[arg(long, value_name = "DURATION", requires = "matrix", group = "slicing", value_parser = parse_duration)]
    pub split_longer_than: Option<Duration>,
    /// With `--partitions` or `--split-longer-than`: the durations file to balance by
    /// [default: .xtask/durations.json]; the commands name it when given.
    #[arg(long, value_name = "FILE", requires = "slicing")]
    pub durations: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct DurationsArgs {
    /// The runs whose test durations are written, later ones replacing earlier ones' for
    /// the same test: `latest`, a run id (a directory under target/xtask/runs/), a run.json
    /// or its directory (e.g. each CI partition's) [default: each suite's newest kept run
    /// that ran the whole suite: not a `--partition` slice, not a `--rerun`].
    #[arg(value_name = "RUN|PATH")]
    pub runs: Vec<String>,
    /// Where the durations go [default: .xtask/durations.json in the repository].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// For each suite (every one but the smoke suites when none is named): whether its next
    /// `cargo xtask test` replays a cached result, and if not, every input that changed
    /// since its newest cached result (files, variables, its manifest entry, its
    /// environment's packages, ...), compared as a plain run would see them (no `--`
    /// arguments). Runs nothing.
    Explain(CacheExplainArgs),
    /// Remove every cached result and the stat cache (target/xtask/cache/).
    Clear,
}

#[derive(Args, Debug)]
pub struct CacheExplainArgs {
    /// Suites or groups [default: every suite but the smoke ones].
    #[arg(value_name = "SUITE|GROUP")]
    pub suites: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Print the checks as one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// How many timed runs per scenario (warm and cold each); the medians are reported.
    #[arg(long, value_name = "N", default_value = "5")]
    pub runs: NonZeroUsize,
    /// Exit 0 even when a target is missed (a command that fails still exits 109).
    #[arg(long)]
    pub no_targets: bool,
    /// Run only this scenario (repeatable: `--scenario rerun --scenario recording`); every
    /// scenario when absent.
    #[arg(long, value_enum, value_name = "NAME")]
    pub scenario: Vec<BenchScenario>,
}

/// The scenarios of `cargo xtask bench`, as `--scenario` names them.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchScenario {
    /// This repository's suites: the hand commands against `xtask ci`, warm and cold.
    Repo,
    /// 20,000 tests: `xtask test` against plain pytest, and the size and speed of report.html.
    Many,
    /// A test printing 500 MB: the xtask's peak memory, and the test under the xtask and by hand.
    Loud,
    /// `ci --rerun latest` after a `ci` with three failing tests in two of eight suites,
    /// against that full `ci`.
    Rerun,
    /// 20,000 tests: `xtask test` against the same built from issue 16's base commit
    /// (built once, in target/xtask/bench/base-<commit>/).
    Recording,
    /// 2,000 tests of skewed durations: the slowest of 4 `--partition durations:K/4` slices
    /// against the ideal (total / 4), beside the `hash:K/4` split's.
    Slices,
    /// 20,000 tests in one suite: `xtask test --split 2` against the same unsplit.
    Split,
    /// The result cache: a no-change `ci` against a warm `--no-cache` one, which suites run
    /// after one file changes, and hashing the inputs of a 10,000-file tree.
    Cache,
}

/// A CI system `init --ci` writes pipelines for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CiSystem {
    Github,
    Gitlab,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Print the manifest instead of writing it (the decisions go to stderr); writes nothing.
    #[arg(long)]
    pub print: bool,
    /// Replace an existing [workspace.metadata.xtask] table and its suites, where they are
    /// (the rest of Cargo.toml, and a comment above the table, are kept as they are).
    #[arg(long)]
    pub force: bool,
    /// Also write the pipeline files for this manifest: `github` (.github/workflows/ci.yml
    /// and publish.yml) or `gitlab` (.gitlab-ci.yml). With a manifest already there, only
    /// the pipelines are written; existing pipeline files need --force.
    #[arg(long, value_name = "SYSTEM", conflicts_with = "print")]
    pub ci: Option<CiSystem>,
    /// Write the guesses without checking them. By default each guessed suite's
    /// environment is built and pytest collects its tests in it; a missing module makes
    /// init try the repository's requirements files.
    #[arg(long)]
    pub no_verify: bool,
}

const BENCH_AFTER_HELP: &str = "Scenarios (`--scenario NAME` runs only the named ones):\n\
  repo: the suites' hand-written uv/pytest commands one after another, the same started at once by\n\
  one bash script, `xtask ci` and `xtask ci -j 1` (the xtask binary itself: cargo's start-up is not\n\
  counted), each warm (after one untimed warm-up) and cold (environments deleted, uv cache kept).\n\
  many: `xtask test` on a generated 20,000-test suite against plain pytest; report.html's size and time.\n\
  loud: the xtask's peak memory while a test prints 500 MB, and that passing test under the xtask and\n\
  under its hand command, side by side.\n\
  rerun: `ci --rerun latest` after a `ci` with three failing tests in two of eight generated suites.\n\
  recording: the 20,000 tests under this xtask and under issue 16's base, built once.\n\
  split: the 20,000 tests as one suite, `xtask test --split 2` against the same unsplit.\n\
Targets: warm `ci` wall <= 0.85x the backgrounded script and CPU <= the hand commands one after\n\
another; `ci -j 1` wall <= 1.0x one after another; 20,000 tests wall <= 1.1x plain pytest; the loud\n\
passing test's pytest peak and wall <= 1.1x the hand command's; peak memory < 200 MB; report.html\n\
<= 5 MB, written in <= 0.5 s; the rerun <= 0.3x the full `ci`; 20,000 tests <= 1.03x the base;\n\
20,000 tests split in two <= 0.6x unsplit.\n\
Exit codes: 0 every target met and no command failed; 109 a target missed (unless --no-targets) or a\n\
command failed (each is printed with its command line and exit code).";

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    Builtin(Builtin),
    /// `test-<group>`.
    Group {
        group: String,
        run: RunArgs,
    },
}

const GROUP_PREFIX: &str = "test-";

/// `docs/cli.md`: every subcommand's `--help`, generated from the same definitions as the
/// parser (the `test-<group>` subcommands, which come from a manifest, take `ci`'s options).
/// A test checks the committed file against it; `XTASK_BLESS=1` rewrites it.
pub fn cli_reference() -> String {
    let mut root = Cli::command();
    root.build();
    let mut out = String::from(
        "# Command-line reference\n\n\
         Generated from the xtask's own flag definitions (`xtask/src/flags.rs`); a test keeps\n\
         it current (`XTASK_BLESS=1 cargo test --test tidy` rewrites it). The guide is\n\
         [usage.md](usage.md).\n",
    );
    fn section(out: &mut String, name: &str, command: &clap::Command) {
        let help = command.clone().render_long_help().to_string();
        let help: Vec<&str> = help.lines().map(str::trim_end).collect();
        out.push_str(&format!(
            "\n## `{name}`\n\n```text\n{}\n```\n",
            help.join("\n").trim_end()
        ));
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            section(out, &format!("{name} {}", sub.get_name()), sub);
        }
    }
    section(&mut out, "cargo xtask", &root);
    out
}

/// The full command: the derived one plus a `test-<group>` subcommand per manifest group.
pub fn command(manifest: Option<&Manifest>) -> clap::Command {
    let mut command = Cli::command();
    let Some(manifest) = manifest else {
        return command;
    };
    for group in manifest.groups() {
        let suites: Vec<&str> = manifest
            .suites_in_group(group)
            .map(|s| s.name.as_str())
            .collect();
        let sub = clap::Command::new(format!("{GROUP_PREFIX}{group}"))
            .about(format!("Run the `{group}` group: {}.", suites.join(", ")));
        command = command.subcommand(RunArgs::augment_args(sub));
    }
    command
}

pub fn parse(
    manifest: Option<&Manifest>,
    args: impl IntoIterator<Item = OsString>,
) -> Result<Parsed, clap::Error> {
    let mut command = command(manifest);
    let matches = command.try_get_matches_from_mut(args)?;
    if let Some((name, sub)) = matches.subcommand() {
        if let Some(group) = name.strip_prefix(GROUP_PREFIX) {
            if manifest.is_some_and(|m| m.groups().contains(&group)) {
                let run = RunArgs::from_arg_matches(sub).map_err(|e| e.format(&mut command))?;
                return Ok(Parsed::Group {
                    group: group.to_string(),
                    run,
                });
            }
        }
    }
    Cli::from_arg_matches(&matches)
        .map(|cli| Parsed::Builtin(cli.command))
        .map_err(|e| e.format(&mut command))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::for_tests(&[("guardrail", "shared"), ("agent", "version-a")])
    }

    fn parse_args(args: &[&str]) -> Result<Parsed, clap::Error> {
        parse(
            Some(&manifest()),
            std::iter::once("xtask")
                .chain(args.iter().copied())
                .map(OsString::from),
        )
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        command(Some(&manifest())).debug_assert();
        command(None).debug_assert();
    }

    #[test]
    fn each_group_gets_a_subcommand() {
        let Parsed::Group { group, run } =
            parse_args(&["test-version-a", "-j", "1", "--", "-x"]).unwrap()
        else {
            panic!("expected a group")
        };
        assert_eq!(group, "version-a");
        assert_eq!(run.jobs.map(usize::from), Some(1));
        assert_eq!(run.pytest_args, ["-x"]);
        assert!(parse_args(&["test-nothing"]).is_err());
    }

    #[test]
    fn test_takes_selectors_and_pytest_args() {
        let Parsed::Builtin(Builtin::Test(args)) =
            parse_args(&["test", "guardrail", "shared", "--", "-k", "buffer"]).unwrap()
        else {
            panic!("expected test")
        };
        assert_eq!(args.selectors, ["guardrail", "shared"]);
        assert_eq!(args.run.pytest_args, ["-k", "buffer"]);
        assert_eq!(args.run.jobs, None);
        assert!(parse_args(&["test", "--jobs", "0"]).is_err());
        assert_eq!(args.run.success_output, OutputWhen::Never);
        assert_eq!(args.run.failure_output, OutputWhen::Immediate);
        assert!(!args.run.no_capture);
    }

    #[test]
    fn output_flags_take_never_immediate_and_final() {
        let Parsed::Builtin(Builtin::Ci(run)) = parse_args(&[
            "ci",
            "--success-output",
            "immediate",
            "--failure-output",
            "final",
            "--no-capture",
        ])
        .unwrap() else {
            panic!("expected ci")
        };
        assert_eq!(run.success_output, OutputWhen::Immediate);
        assert_eq!(run.failure_output, OutputWhen::Final);
        assert!(run.no_capture);
        assert!(parse_args(&["ci", "--failure-output", "sometimes"]).is_err());
    }

    #[test]
    fn durations_take_seconds_minutes_and_hours() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        // Far too long is "as long as there is": no overflow, no panic.
        assert_eq!(
            parse_duration("5124095576030432h"),
            Ok(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse_duration("99999999999999999999999"),
            Ok(Duration::from_secs(u64::MAX))
        );
        for bad in ["", "0", "-1", "1.5m", "10 min", "m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let Parsed::Builtin(Builtin::Test(args)) =
            parse_args(&["test", "--timeout", "2m"]).unwrap()
        else {
            panic!("expected test")
        };
        assert_eq!(args.run.timeout, Some(Duration::from_secs(120)));
    }

    #[test]
    fn init_parses_without_a_manifest() {
        let parsed = parse(
            None,
            ["xtask", "init", "--print", "--force"].map(OsString::from),
        )
        .unwrap();
        let Parsed::Builtin(Builtin::Init(args)) = parsed else {
            panic!("expected init")
        };
        assert!(args.print && args.force);
    }
}
