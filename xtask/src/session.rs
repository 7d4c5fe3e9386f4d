//! A session: what every subcommand that runs suites composes. Select suites, plan them,
//! open this invocation's directory, attach the sinks, set up what the suites need and run
//! them (`runner::setup`, `runner`: every step of which reaches the sinks as an event), and
//! decide the exit code; `run.json` is written last, with that code. The session prints
//! nothing about the run itself: only its selection notes (`--changed-since`), a missing
//! uv, and, once the sinks are done, the xtask's own errors.

use std::path::PathBuf;

use anyhow::Context;

use crate::error::Error;
use crate::events::Sink;
use crate::exit_codes;
use crate::facts::Facts;
use crate::flags::RunArgs;
use crate::manifest::{Manifest, Suite};
use crate::outcome::Outcome;
use crate::paths::Layout;
use crate::plan::{check_pytest_args, plan_run, Blocked, RunOptions};
use crate::redact::{RedactingWriter, Redactor};
use crate::report::github::{self, GithubSink, GroupOpener};
use crate::report::record::{self, RecordSink, RunInfo};
use crate::report::{junit::JunitSink, terminal, terminal::TerminalSink};
use crate::runner::setup::{self, Setup};
use crate::runs::{self, RunDir};
use crate::services::Services;
use crate::{process, runner, toolchain};

/// The suites named by `selectors` (suite or group names), in manifest order, each once.
pub fn select<'a>(manifest: &'a Manifest, selectors: &[String]) -> Result<Vec<&'a Suite>, Error> {
    if selectors.is_empty() {
        // The smoke suites need services and run by `cargo xtask smoke`, or when named.
        return Ok(manifest
            .suites
            .iter()
            .filter(|s| s.group != crate::manifest::SMOKE_GROUP)
            .collect());
    }
    let groups = manifest.groups();
    let unknown: Vec<&str> = selectors
        .iter()
        .map(String::as_str)
        .filter(|s| !groups.contains(s) && !manifest.suites.iter().any(|suite| suite.name == *s))
        .collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = manifest.suites.iter().map(|s| s.name.as_str()).collect();
        return Err(Error::Usage(format!(
            "no suite or group named {}; the suites are {} and the groups are {} (see `cargo xtask list`)",
            unknown.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", "),
            names.join(", "),
            groups.join(", ")
        )));
    }
    Ok(manifest
        .suites
        .iter()
        .filter(|suite| {
            selectors
                .iter()
                .any(|s| *s == suite.name || *s == suite.group)
        })
        .collect())
}

/// `suites` without those named (by suite or group) in `excluded`.
pub fn exclude<'a>(
    manifest: &Manifest,
    suites: Vec<&'a Suite>,
    excluded: &[String],
) -> Result<Vec<&'a Suite>, Error> {
    if excluded.is_empty() {
        return Ok(suites);
    }
    // Unknown names are errors, as for selectors.
    select(manifest, excluded)?;
    Ok(suites
        .into_iter()
        .filter(|s| !excluded.iter().any(|e| *e == s.name || *e == s.group))
        .collect())
}

/// `suites` without those that the arguments after `--` leave nothing to run: when they
/// name tests (paths, node ids) only of other suites.
fn targeted<'a>(
    facts: &Facts,
    suites: Vec<&'a Suite>,
    args: &RunArgs,
) -> Result<Vec<&'a Suite>, Error> {
    let kept: Vec<&Suite> = suites
        .iter()
        .copied()
        .filter(|s| !crate::plan::narrow(s, facts, &args.pytest_args).elsewhere)
        .collect();
    if kept.is_empty() && !suites.is_empty() {
        return Err(Error::Usage(format!(
            "the tests named after `--` ({}) belong to none of the selected suites ({}); name the suite that holds them, or give paths relative to the repository root or to the suite's directory",
            args.pytest_args.join(" "),
            suites.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(kept)
}

/// With `--changed-since REF`, only the suites whose inputs changed since REF (each named
/// on stderr with why), else `suites`.
fn changed<'a>(
    layout: &Layout,
    suites: Vec<&'a Suite>,
    args: &RunArgs,
) -> anyhow::Result<Vec<&'a Suite>> {
    let Some(reference) = &args.changed_since else {
        return Ok(suites);
    };
    let changes = crate::changes::Changes::since(&layout.root, reference)?;
    if let Some(why) = changes.unreadable() {
        eprintln!("xtask: warning: --changed-since {reference}: {why}; every suite is selected");
    }
    let mut kept = Vec::new();
    for suite in suites {
        match changes.why(suite, &layout.root) {
            Some(why) => {
                eprintln!("xtask: {}: selected, {why}", suite.name);
                kept.push(suite);
            }
            None => eprintln!(
                "xtask: {}: left out, nothing it depends on changed since {reference}",
                suite.name
            ),
        }
    }
    Ok(kept)
}

/// The masker of everything this invocation shows: the process's environment, the
/// selected suites' `env`, and the manifest's `secrets`.
pub fn redactor(manifest: &Manifest, suites: &[&Suite]) -> Redactor {
    let suite_env: Vec<(String, String)> = suites
        .iter()
        .flat_map(|s| s.env.iter().map(|(k, v)| (k.clone(), v.clone())))
        .chain(
            manifest
                .services
                .iter()
                .flat_map(|s| s.env.iter().map(|(k, v)| (k.clone(), v.clone()))),
        )
        .collect();
    // A variable a prerequisite checks is a secret, whatever its name.
    let mut listed = manifest.secrets.clone();
    listed.extend(
        manifest
            .prerequisites
            .iter()
            .filter_map(|p| match &p.check {
                crate::manifest::Check::Env(name) => Some(name.clone()),
                _ => None,
            }),
    );
    Redactor::from_env(&suite_env, &listed)
}

/// Runs `suites` and returns the exit code. Whatever happens (no uv, a failing environment,
/// a timeout, an interrupt, a report that cannot be written) every suite ends with an
/// outcome, every report that can be written is, and `run.json` says the code returned.
pub fn run_suites(
    layout: &Layout,
    manifest: &Manifest,
    suites: &[&Suite],
    args: &RunArgs,
) -> anyhow::Result<()> {
    // Before anything runs: arguments that would take pytest's report away are the caller's error.
    check_pytest_args(&args.pytest_args, layout)?;
    // Narrowed in turn by --exclude, the tests named after --, and --changed-since.
    let suites = exclude(manifest, suites.to_vec(), &args.exclude)?;
    let facts = Facts::gather(&layout.root, &suites, &args.pytest_args);
    let suites = targeted(&facts, suites, args)?;
    let suites = changed(layout, suites, args)?;
    let started_at = record::now();
    // `--rerun`: read before this invocation becomes the latest one.
    let (suites, rerun) = match &args.rerun {
        Some(spec) => match rerun_selection(layout, manifest, suites, spec)? {
            RerunSelection::Run(suites, rerun) => (suites, Some(rerun)),
            // Recorded as a run of its own all the same: `latest` leads to it.
            RerunSelection::Nothing(of) => {
                return record::write_nothing_to_run(layout, manifest, started_at, of)
            }
        },
        None => (suites, None),
    };
    let suites = &suites;
    // Read before this invocation becomes the latest one.
    let previous = record::previous_durations(layout);
    let partition_durations = partition_durations(layout, args)?;
    let run_dir = RunDir::open(layout, Some(&manifest.runs))?;
    process::init(&layout.run_id, runs::processes_file(layout))
        .map_err(|err| anyhow::anyhow!("setting up signal handling: {err}"))?;
    record::write_running(layout, started_at)?;
    let redactor = redactor(manifest, suites);

    let uv = toolchain::find_or_install_uv(layout);
    let toolchain_blocked = uv.as_ref().err().map(|err| {
        eprintln!("error: {}", redactor.text(&err.to_string()));
        Blocked {
            outcome: Outcome::ToolchainError,
            detail: err.to_string(),
            skipped: false,
        }
    });
    let uv_path = uv
        .as_ref()
        .map_or_else(|_| PathBuf::from("uv"), Clone::clone);
    let options = RunOptions {
        pytest_args: args.pytest_args.clone(),
        no_capture: args.no_capture,
        timeout: args.timeout,
        partition: args.partition,
        split: args.split,
        retries: args.retries,
        flaky_fails: args.flaky_fails,
        blocked: toolchain_blocked.clone(),
    };
    let mut plans: Vec<_> = suites
        .iter()
        .map(|suite| {
            let mut plan = plan_run(suite, layout, &uv_path, &facts, &options);
            if let Some(rerun) = &rerun {
                deselect_what_passed(layout, rerun, &mut plan);
            }
            crate::durations::prepare(layout, partition_durations.as_ref(), &mut plan)
                .with_context(|| {
                    format!(
                        "writing suite `{}`'s durations for --partition",
                        plan.suite.name
                    )
                })?;
            Ok(plan)
        })
        .collect::<anyhow::Result<_>>()?;
    // `--no-capture`: the output streams to the terminal, one suite at a time.
    let streaming = args.no_capture;
    let jobs = if streaming {
        1
    } else {
        args.jobs
            .map(usize::from)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
    };

    crate::plan::decide_splits(&mut plans, &previous, jobs);
    crate::durations::prepare_splits(layout, &mut plans);
    // The inputs of the suites it may replay, hashed before anything runs.
    let cache = crate::cache::run_without_cache(args)
        .is_none()
        .then(|| crate::cache::Cache::open(layout, &plans));
    for plan in &plans {
        if let Some(why) = cache.as_ref().and_then(|c| c.unhashable(&plan.suite.name)) {
            eprintln!(
                "xtask: {}: not replayed from the result cache, nor stored in it: {why}",
                plan.suite.name
            );
        }
    }

    let info = RunInfo::gather(layout, uv.as_ref().ok().map(PathBuf::as_path), started_at);
    let uv_version = info
        .uv
        .as_ref()
        .map(|t| t.version.clone())
        .unwrap_or_default();
    let mut terminal = TerminalSink::new(
        RedactingWriter::new(std::io::stdout(), redactor.clone()),
        layout,
        terminal::Options::detect(args),
    );
    let mut junit = JunitSink::new(layout, redactor.clone());
    let mut record = RecordSink::new(layout, info, redactor.clone());
    record.require_all = args.require_all;
    record.rerun_of = rerun.as_ref().map(|r| r.source.clone());
    let mut services = Services::default();
    let cx = runner::RunContext {
        redactor: &redactor,
        uv_version: &uv_version,
        root: &layout.root,
        also: streaming.then(|| terminal.stream_writer()),
        services: services.watch(),
        jobs,
        cache: cache.as_ref(),
    };
    // In GitHub Actions: groups around what the terminal prints for each suite (opened
    // before it, closed after it), annotations and the step summary.
    let mut github = github::enabled().then(|| {
        (
            GroupOpener::new(redactor.clone(), streaming),
            GithubSink::from_env(redactor.clone()),
        )
    });
    let mut sinks: Vec<&mut dyn Sink> = Vec::new();
    match &mut github {
        Some((opener, sink)) => sinks.extend([
            opener as &mut dyn Sink,
            &mut terminal,
            sink,
            &mut junit,
            &mut record,
        ]),
        None => sinks.extend([&mut terminal as &mut dyn Sink, &mut junit, &mut record]),
    }
    let mut emitter = runner::Emitter::new(sinks);
    if toolchain_blocked.is_none() {
        let setup = Setup {
            layout,
            manifest,
            uv: &uv_path,
            lenient: !args.require_all,
        };
        setup::prepare(&setup, &mut plans, &cx, &mut services, &mut emitter);
    }
    let order = longest_first(&plans, &previous);
    let (results, suite_panics) = runner::run(&plans, &order, jobs, &cx, &mut emitter);
    // After success, failure, a timeout or an interrupt alike (and on a panic, by Drop).
    setup::stop(&mut services, &mut emitter);
    let sink_errors = emitter.into_errors();
    let _ = std::fs::remove_dir_all(layout.work_dir());

    // A report that could not be written is the xtask's failure, whatever the tests did.
    let mut errors: Vec<String> = run_dir.problems.clone();
    errors.extend(
        suite_panics
            .iter()
            .chain(&sink_errors)
            .map(|err| format!("{err:#}")),
    );
    // Without --require-all, a suite whose prerequisite is unavailable is reported but does
    // not decide the exit code.
    let ended = if errors.is_empty() {
        crate::error::from_outcome(Outcome::deciding(
            results.iter().map(|r| r.outcome),
            args.require_all,
        ))
    } else {
        for error in &errors {
            eprintln!("xtask: error: {}", redactor.text(error));
        }
        Err(Error::Reports(errors.clone()))
    };
    if let Some(rerun) = &rerun {
        let ran: Vec<(&str, &crate::model::SuiteResult)> = plans
            .iter()
            .zip(&results)
            .map(|(plan, result)| (plan.suite.name.as_str(), result))
            .collect();
        let mut lines = Vec::new();
        record.rerun_of = Some(crate::rerun::outcome(rerun, &ran, &mut lines));
        for line in lines {
            eprintln!("xtask: {}", redactor.text(&line));
        }
    }
    let code = ended
        .as_ref()
        .map_or_else(Error::exit_code, |()| exit_codes::OK);
    let written = record.write(code, &errors)?;
    if let Some(cache) = &cache {
        for warning in cache.store(layout, &plans, &results, &written) {
            eprintln!("xtask: warning: {}", redactor.text(&warning));
        }
    }
    Ok(ended?)
}

/// What a `--rerun` runs.
enum RerunSelection<'a> {
    /// These suites, with what of each to run again.
    Run(Vec<&'a Suite>, crate::rerun::Rerun),
    /// Nothing: how the chain stands, with why (`nothing_to_run`).
    Nothing(crate::report::run_record::RerunOf),
}

/// `--rerun SPEC`: the suites of `suites` that the run SPEC names left failing, with what
/// of each to run again, each left out named on stderr; or nothing, when nothing is left
/// to run (said on stderr too).
fn rerun_selection<'a>(
    layout: &Layout,
    manifest: &Manifest,
    suites: Vec<&'a Suite>,
    spec: &str,
) -> anyhow::Result<RerunSelection<'a>> {
    let path = crate::rerun::find(layout, spec)?;
    let source = crate::rerun::read(&path)?;
    let chain = crate::rerun::chain(source, &path);
    let mut notes = Vec::new();
    // The file times of this checkout say nothing about a run made in another one (an
    // archive's): its passed suites are not rerun for tests added since.
    let here = std::fs::canonicalize(&layout.root).unwrap_or_else(|_| layout.root.clone());
    let foreign: Vec<&str> = chain
        .iter()
        .filter(|(_, r)| r.root != layout.root && r.root != here)
        .map(|(_, r)| r.started_at.as_str())
        .collect();
    let rerun = crate::rerun::plan(
        &chain,
        manifest,
        &|suite, since| {
            !foreign.contains(&since) && crate::rerun::changed_since(&layout.root, suite, since)
        },
        &mut notes,
    );
    let source = &chain.last().expect("a chain has its newest record").1;
    let id = &source.run_id;
    for note in notes {
        eprintln!("xtask: rerun of {id}: {note}");
    }
    let mut kept = Vec::new();
    for (name, _) in &rerun.suites {
        match suites.iter().find(|s| s.name == *name) {
            Some(suite) => kept.push(*suite),
            None => eprintln!(
                "xtask: rerun of {id}: suite `{name}` left out: this command does not select it"
            ),
        }
    }
    if kept.is_empty() {
        let why = match source.outcome.as_deref() {
            _ if !rerun.suites.is_empty() => "what it left failing is not selected here",
            Some("passed") => "it passed and no test file changed since",
            None => "it ran no suite",
            Some(_) => "none of its suites left anything failing, and no test file changed since",
        };
        eprintln!("xtask: rerun of {id}: nothing to run: {why}");
        if !rerun.source.removed_suites.is_empty() {
            eprintln!("xtask: {}", crate::rerun::summary(&rerun.source));
        }
        let mut of = crate::rerun::outcome(&rerun, &[], &mut Vec::new());
        of.nothing_to_run = Some(why.to_string());
        return Ok(RerunSelection::Nothing(of));
    }
    // In the manifest's order, as any run.
    kept.sort_by_key(|s| manifest.suites.iter().position(|m| m.name == s.name));
    Ok(RerunSelection::Run(kept, rerun))
}

/// For a suite that reruns only what failed: the file of node ids that passed in the
/// source run, which the pytest plugin deselects.
/// With `--partition durations:K/N`, the durations its slices are balanced by (read before
/// this invocation becomes the latest run), said on stderr with where they come from.
fn partition_durations(
    layout: &Layout,
    args: &RunArgs,
) -> anyhow::Result<Option<crate::durations::Loaded>> {
    let Some(partition) = args.partition else {
        return Ok(None);
    };
    if partition.mode != crate::plan::PartitionMode::Durations {
        return Ok(None);
    }
    let loaded = crate::durations::load(layout, args.durations.as_deref())?;
    match &loaded {
        Some(loaded) => eprintln!(
            "xtask: --partition {partition}: balanced by the durations in {}",
            layout.display(&loaded.source)
        ),
        None => eprintln!(
            "xtask: warning: --partition {partition}: no recorded durations (no --durations, no \
             {}, no past run); every test counts the same",
            crate::durations::DEFAULT_FILE
        ),
    }
    Ok(loaded)
}

fn deselect_what_passed(
    layout: &Layout,
    rerun: &crate::rerun::Rerun,
    plan: &mut crate::plan::SuitePlan,
) {
    let Some((_, crate::rerun::What::AllBut { done, .. })) =
        rerun.suites.iter().find(|(n, _)| *n == plan.suite.name)
    else {
        return;
    };
    let file = layout
        .work_dir()
        .join(format!("rerun-deselect-{}.txt", plan.suite.name));
    let mut text = done.join("\n");
    text.push('\n');
    let written = std::fs::create_dir_all(layout.work_dir())
        .map_err(anyhow::Error::from)
        .and_then(|()| crate::paths::write_atomically(&file, text.as_bytes()));
    match written {
        Ok(()) => plan.test.env.push((
            crate::rerun::DESELECT_ENV.to_string(),
            file.to_string_lossy().into_owned(),
        )),
        // Without it the whole suite runs: more than needed, never less.
        Err(err) => eprintln!(
            "xtask: warning: writing {}: {err:#}; suite `{}` reruns whole",
            file.display(),
            plan.suite.name
        ),
    }
}

/// The order in which suites start: the longest first, by how long each took in the
/// previous invocation (suites it did not run first of all, they may be the longest), so
/// that a long suite does not start last and hold the run alone. Reports keep the manifest's
/// order whatever the start order.
fn longest_first(
    plans: &[crate::plan::SuitePlan],
    previous: &std::collections::HashMap<String, f64>,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..plans.len()).collect();
    let took = |i: &usize| {
        previous
            .get(&plans[*i].suite.name)
            .copied()
            .unwrap_or(f64::INFINITY)
    };
    order.sort_by(|a, b| took(b).total_cmp(&took(a)));
    // The test groups first, then the smoke suites (`cargo xtask ci`).
    order.sort_by_key(|i| plans[*i].suite.group == crate::manifest::SMOKE_GROUP);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::for_tests(&[
            ("guardrail", "shared"),
            ("specialists", "shared"),
            ("agent", "version-a"),
        ])
    }

    fn names(suites: Vec<&Suite>) -> Vec<&str> {
        suites.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn selectors_pick_suites_and_groups_in_manifest_order_once() {
        let manifest = manifest();
        assert_eq!(
            names(select(&manifest, &[]).unwrap()),
            ["guardrail", "specialists", "agent"]
        );
        let picked = select(
            &manifest,
            &["agent".into(), "shared".into(), "guardrail".into()],
        )
        .unwrap();
        assert_eq!(names(picked), ["guardrail", "specialists", "agent"]);
    }

    #[test]
    fn the_longest_suite_of_the_last_run_starts_first_and_new_ones_before_it() {
        let manifest = manifest();
        let layout = Layout::new("/repo");
        let plans: Vec<_> = manifest
            .suites
            .iter()
            .map(|s| {
                plan_run(
                    s,
                    &layout,
                    std::path::Path::new("uv"),
                    &Facts::default(),
                    &RunOptions::default(),
                )
            })
            .collect();
        let previous = std::collections::HashMap::from([
            ("guardrail".to_string(), 0.5),
            ("specialists".to_string(), 2.0),
        ]);
        // agent did not run last time: it goes first.
        assert_eq!(longest_first(&plans, &previous), [2, 1, 0]);
        assert_eq!(longest_first(&plans, &Default::default()), [0, 1, 2]);
    }

    #[test]
    fn excluded_groups_and_suites_are_left_out_and_unknown_ones_named() {
        let manifest = manifest();
        let all = select(&manifest, &[]).unwrap();
        let left = exclude(&manifest, all.clone(), &["shared".into()]).unwrap();
        assert_eq!(names(left), ["agent"]);
        let left = exclude(&manifest, all.clone(), &["guardrail".into()]).unwrap();
        assert_eq!(names(left), ["specialists", "agent"]);
        assert!(exclude(&manifest, all, &["nope".into()]).is_err());
    }

    #[test]
    fn unknown_selectors_are_named_with_the_known_ones() {
        let err = select(&manifest(), &["nope".into(), "agent".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no suite or group named `nope`; the suites are guardrail, specialists, agent and the groups are shared, version-a (see `cargo xtask list`)"
        );
    }
}
