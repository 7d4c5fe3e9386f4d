//! A session: what every subcommand that runs suites composes. Select suites, plan them,
//! open this invocation's directory, run them (environments, then pytest) with every sink
//! attached, and decide the exit code; `run.json` is written last, with that code.

use std::path::PathBuf;

use crate::error::Error;
use crate::events::Sink;
use crate::exit_codes;
use crate::facts::Facts;
use crate::flags::RunArgs;
use crate::manifest::{Manifest, Suite};
use crate::outcome::Outcome;
use crate::paths::Layout;
use crate::plan::{check_pytest_args, plan_suite, Blocked};
use crate::redact::{RedactingWriter, Redactor};
use crate::report::github::{self, GithubSink, GroupOpener};
use crate::report::record::{self, RecordSink, RunInfo};
use crate::report::{junit::JunitSink, terminal, terminal::TerminalSink};
use crate::runs::{self, RunDir};
use crate::services::{self as svc, Health, Launch, Services};
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
) -> anyhow::Result<u8> {
    // Before anything runs: arguments that would take pytest's report away are the caller's error.
    check_pytest_args(&args.pytest_args, layout)?;
    // Narrowed in turn by --exclude, the tests named after --, and --changed-since.
    let suites = exclude(manifest, suites.to_vec(), &args.exclude)?;
    let facts = Facts::gather(&layout.root, &suites, &args.pytest_args);
    let suites = targeted(&facts, suites, args)?;
    let suites = &changed(layout, suites, args)?;
    let started_at = record::now();
    // Read before this invocation becomes the latest one.
    let previous = record::previous_durations(layout);
    let run_dir = RunDir::open(layout)?;
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
    // `--no-capture`: pytest leaves the tests' output alone (`-s`), Python writes it at
    // once, and it streams to the terminal, one suite at a time.
    let streaming = args.no_capture;
    let pytest_args: Vec<String> = streaming
        .then(|| "-s".to_string())
        .into_iter()
        .chain(args.pytest_args.iter().cloned())
        .collect();
    let mut plans: Vec<_> = suites
        .iter()
        .map(|suite| {
            let mut plan = plan_suite(suite, layout, &uv_path, &pytest_args, &facts);
            if streaming {
                plan.test
                    .env
                    .push(("PYTHONUNBUFFERED".to_string(), "1".to_string()));
            }
            if let Some(timeout) = args.timeout {
                plan.timeout = timeout;
            }
            if let Some(partition) = args.partition {
                plan.set_partition(partition);
            }
            if let Some(retries) = args.retries {
                plan.retries = retries;
            }
            plan.flaky_fails = args.flaky_fails;
            // A missing prerequisite says more than a missing uv: the suite could not run anyway.
            if plan.blocked.is_none() {
                plan.blocked = toolchain_blocked.clone();
            }
            plan
        })
        .collect();
    let jobs = if streaming {
        1
    } else {
        args.jobs
            .map(usize::from)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
    };

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
    let mut services = Services::default();
    let cx = runner::RunContext {
        redactor: &redactor,
        uv_version: &uv_version,
        root: &layout.root,
        also: streaming.then(|| terminal.stream_writer()),
        services: services.watch(),
    };
    let health = if toolchain_blocked.is_none() {
        let mut out = RedactingWriter::new(std::io::stdout(), redactor.clone());
        let health = prepare_smoke(
            layout,
            manifest,
            &mut plans,
            &cx,
            &uv_path,
            &mut services,
            !args.require_all,
            &mut out,
        );
        let _ = out.finish();
        health
    } else {
        Vec::new()
    };
    if !health.is_empty() {
        record.set_health(health.iter().map(Health::record).collect());
    }
    // In GitHub Actions: groups around what the terminal prints for each suite (opened
    // before it, closed after it), annotations and the step summary.
    let mut github = github::enabled().then(|| {
        (
            GroupOpener::new(redactor.clone(), streaming),
            GithubSink::from_env(redactor.clone()),
        )
    });
    let order = longest_first(&plans, &previous);
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
    let (results, run_errors) = runner::run(&plans, &order, jobs, &cx, &mut sinks);
    drop(sinks);
    // After success, failure, a timeout or an interrupt alike (and on a panic, by Drop).
    services.stop_all();
    let _ = std::fs::remove_dir_all(layout.work_dir());

    // A report that could not be written is the xtask's failure, whatever the tests did.
    let mut errors: Vec<String> = run_dir.problems.clone();
    errors.extend(run_errors.iter().map(|err| format!("{err:#}")));
    // Without --require-all, a suite whose prerequisite is unavailable is reported but does
    // not decide the exit code.
    let code = if errors.is_empty() {
        Outcome::deciding(results.iter().map(|r| r.outcome), args.require_all).exit_code()
    } else {
        for error in &errors {
            eprintln!("xtask: error: {}", redactor.text(error));
        }
        exit_codes::INTERNAL_ERROR
    };
    record.write(code, &errors)?;
    Ok(code)
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

/// What the suites to run need: checks their prerequisites (all at once), starts their
/// services (each once, on a free loopback port unless it sets one) and waits for them.
/// Suites whose prerequisite is unavailable, or whose service did not become ready, are
/// blocked with why; the others get the services' addresses in their environment. Every
/// plan gets the health of what it needs as JUnit properties. Returns the health snapshot.
#[allow(clippy::too_many_arguments)]
fn prepare_smoke(
    layout: &Layout,
    manifest: &Manifest,
    plans: &mut [crate::plan::SuitePlan],
    cx: &runner::RunContext<'_>,
    uv: &std::path::Path,
    services: &mut Services,
    lenient: bool,
    out: &mut dyn std::io::Write,
) -> Vec<Health> {
    // A suite whose `requires-env` is unset: skipped, unless --require-all.
    if lenient {
        for plan in plans.iter_mut() {
            if let Some(blocked) = plan.blocked.as_mut() {
                blocked.skipped |= blocked.outcome == Outcome::PrerequisiteUnavailable;
            }
        }
    }
    let prerequisite_names = needed(plans, |s| &s.prerequisites);
    let service_names = needed(plans, |s| &s.services);
    if prerequisite_names.is_empty() && service_names.is_empty() {
        return Vec::new();
    }
    let prerequisites: Vec<_> = manifest
        .prerequisites
        .iter()
        .filter(|p| prerequisite_names.contains(&p.name))
        .collect();
    let mut health = svc::check_all(&prerequisites, &layout.root, cx.redactor);
    for line in &health {
        let _ = writeln!(out, "xtask: {}: {}", line.label(), verdict(line));
    }
    for plan in plans.iter_mut().filter(|p| p.blocked.is_none()) {
        let down = health
            .iter()
            .find(|h| !h.available && plan.suite.prerequisites.contains(&h.name));
        if let Some(down) = down {
            plan.blocked = Some(Blocked {
                outcome: Outcome::PrerequisiteUnavailable,
                detail: format!(
                    "not run: its {} is unavailable: {}",
                    down.label(),
                    down.error.as_deref().unwrap_or("")
                ),
                skipped: lenient,
            });
        }
    }
    // Services only for the suites that can still run.
    let service_names = needed(plans, |s| &s.services);
    for service in manifest
        .services
        .iter()
        .filter(|s| service_names.contains(&s.name))
    {
        let log = layout
            .logs_dir()
            .join(format!("service-{}.log", service.name));
        let started = start_service(layout, manifest, service, cx, uv, services, log.clone());
        let (line, result) = match started {
            Ok(started) => started,
            Err(detail) => {
                let line = Health {
                    name: service.name.clone(),
                    kind: "service",
                    target: service.command.join(" "),
                    available: false,
                    latency: None,
                    error: Some(cx.redactor.text(&detail)),
                    checked_at: crate::model::now(),
                };
                (line, Err(svc::ServiceFailure { detail, log }))
            }
        };
        let _ = writeln!(out, "xtask: {}: {}", line.label(), verdict(&line));
        let needing = plans
            .iter_mut()
            .filter(|p| p.blocked.is_none() && p.suite.services.contains(&service.name));
        match &result {
            Ok(port) => {
                for plan in needing {
                    plan.test.env.extend(svc::exports(service, *port));
                }
            }
            Err(failure) => {
                let shown = layout.display(&failure.log).into_owned();
                let tail = crate::log::tail(&failure.log, 20);
                let _ = writeln!(
                    out,
                    "xtask: service `{}` error: {}; the end of its log ({shown}):",
                    service.name, failure.detail
                );
                for l in tail.lines() {
                    let _ = writeln!(out, "    {l}");
                }
                for plan in needing {
                    plan.blocked = Some(Blocked {
                        outcome: Outcome::ServiceError,
                        detail: format!(
                            "not run: the service `{}` it needs could not be used: {}; its log is {shown}",
                            service.name, failure.detail
                        ),
                        skipped: false,
                    });
                }
            }
        }
        health.push(line);
    }
    let _ = out.flush();
    for plan in plans.iter_mut() {
        plan.properties = health
            .iter()
            .filter(|h| {
                plan.suite.prerequisites.contains(&h.name) || plan.suite.services.contains(&h.name)
            })
            .map(Health::property)
            .collect();
    }
    health
}

/// The names (of services or prerequisites) that the suites that can run need, once each.
fn needed(plans: &[crate::plan::SuitePlan], kind: fn(&Suite) -> &Vec<String>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for plan in plans.iter().filter(|p| p.blocked.is_none()) {
        for name in kind(&plan.suite) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

fn verdict(line: &Health) -> String {
    match (&line.error, line.latency) {
        (None, Some(latency)) => format!("available ({:.1} ms)", latency.as_secs_f64() * 1e3),
        (None, None) => "available".into(),
        (Some(error), _) => format!("UNAVAILABLE: {error}"),
    }
}

/// Builds the environment the service runs in (when it names a suite), picks its port and
/// starts it. `Err` when it could not even be launched; otherwise its health and port.
#[allow(clippy::type_complexity)]
fn start_service(
    layout: &Layout,
    manifest: &Manifest,
    service: &crate::manifest::Service,
    cx: &runner::RunContext<'_>,
    uv: &std::path::Path,
    services: &mut Services,
    log: PathBuf,
) -> Result<(Health, Result<u16, svc::ServiceFailure>), String> {
    let mut environment = None;
    let mut extra_env = Vec::new();
    if let Some(name) = &service.environment {
        let suite = manifest
            .suites
            .iter()
            .find(|s| &s.name == name)
            .ok_or_else(|| format!("there is no suite `{name}`"))?;
        let facts = Facts::gather(&layout.root, &[suite], &[]);
        let plan = plan_suite(suite, layout, uv, &[], &facts);
        let build_log = layout
            .logs_dir()
            .join(format!("service-{}-environment.log", service.name));
        let mut file = crate::log::create(&build_log).map_err(|e| format!("{e:#}"))?;
        let lease =
            crate::runner::executor::build_environment(&plan, cx, &mut file).map_err(|why| {
                format!(
                    "its environment (suite `{name}`'s) could not be built: {why}; see {}",
                    layout.display(&build_log)
                )
            })?;
        if !suite.pythonpath.is_empty() {
            let entries: Vec<String> = suite
                .pythonpath
                .iter()
                .map(|p| layout.root.join(p).to_string_lossy().into_owned())
                .collect();
            extra_env.push(("PYTHONPATH".to_string(), entries.join(":")));
        }
        environment = Some((plan.env.path.clone(), lease));
    }
    let port = match service.port {
        Some(port) => port,
        None => svc::free_port().map_err(|e| format!("no free port on 127.0.0.1: {e}"))?,
    };
    let launch = Launch::new(service, &layout.root, port, environment, extra_env, log);
    let (line, result) = services.start(service, launch, cx.redactor);
    Ok((line, result.map(|()| port)))
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
                plan_suite(
                    s,
                    &layout,
                    std::path::Path::new("uv"),
                    &[],
                    &Facts::default(),
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
