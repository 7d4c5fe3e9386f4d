//! The setup before the suites: checks the prerequisites of the suites that can run (all
//! at once), starts the services they need (each once, on a free loopback port unless it
//! sets one) and waits for them; at the end of the run, stops them. Every step is an event
//! (`PrerequisiteChecked`, `ServiceStarting`, `ServiceReady`, `ServiceFailed`,
//! `ServiceStopped`); what the setup found goes into the plans: a suite whose prerequisite
//! is unavailable, or whose service could not be used, is blocked with why, and the others
//! get the services' addresses in their environment.

use std::path::{Path, PathBuf};

use crate::events::Event;
use crate::manifest::{Manifest, Service, Suite};
use crate::outcome::Outcome;
use crate::paths::Layout;
use crate::plan::{plan_suite, Blocked, SuitePlan};
use crate::services::{self as svc, Health, Launch, ServiceFailure, Services};

use super::{Emitter, RunContext};

/// What the setup reads: where, from which manifest, with which uv, and how strict.
pub struct Setup<'a> {
    pub layout: &'a Layout,
    pub manifest: &'a Manifest,
    pub uv: &'a Path,
    /// Without `--require-all`: a suite whose prerequisite is unavailable is skipped rather
    /// than failed.
    pub lenient: bool,
}

/// Prepares what `plans` need (see the module's documentation), emitting an event for every
/// prerequisite checked and every service started.
pub fn prepare(
    setup: &Setup<'_>,
    plans: &mut [SuitePlan],
    cx: &RunContext<'_>,
    services: &mut Services,
    emitter: &mut Emitter<'_>,
) {
    // A suite whose `requires-env` is unset: skipped, unless --require-all.
    if setup.lenient {
        for plan in plans.iter_mut() {
            if let Some(blocked) = plan.blocked.as_mut() {
                blocked.skipped |= blocked.outcome == Outcome::PrerequisiteUnavailable;
            }
        }
    }
    let prerequisite_names = needed(plans, |s| &s.prerequisites);
    let prerequisites: Vec<_> = setup
        .manifest
        .prerequisites
        .iter()
        .filter(|p| prerequisite_names.contains(&p.name))
        .collect();
    let checked = if prerequisites.is_empty() {
        Vec::new()
    } else {
        svc::check_all(&prerequisites, &setup.layout.root, cx.redactor)
    };
    for health in &checked {
        emitter.emit(&Event::PrerequisiteChecked { health });
    }
    for plan in plans.iter_mut().filter(|p| p.blocked.is_none()) {
        let down = checked
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
                skipped: setup.lenient,
            });
        }
    }
    // Services only for the suites that can still run.
    let service_names = needed(plans, |s| &s.services);
    for service in setup
        .manifest
        .services
        .iter()
        .filter(|s| service_names.contains(&s.name))
    {
        emitter.emit(&Event::ServiceStarting {
            name: &service.name,
        });
        let log = setup
            .layout
            .logs_dir()
            .join(format!("service-{}.log", service.name));
        let (health, ready) = start(setup, service, cx, services, log);
        match ready {
            Ok(port) => {
                emitter.emit(&Event::ServiceReady { health: &health });
                for plan in needing(plans, &service.name) {
                    plan.test.env.extend(svc::exports(service, port));
                }
            }
            Err(failure) => {
                emitter.emit(&Event::ServiceFailed {
                    health: &health,
                    detail: &failure.detail,
                    log: &failure.log,
                });
                let shown = setup.layout.display(&failure.log).into_owned();
                for plan in needing(plans, &service.name) {
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
    }
}

/// Stops every service the run started, with its process tree, and says so.
pub fn stop(services: &mut Services, emitter: &mut Emitter<'_>) {
    for stopped in services.stop_all() {
        emitter.emit(&Event::ServiceStopped {
            name: &stopped.name,
            how: &stopped.how,
        });
    }
}

/// The plans that can still run and need the service `name`.
fn needing<'p>(
    plans: &'p mut [SuitePlan],
    name: &'p str,
) -> impl Iterator<Item = &'p mut SuitePlan> {
    plans
        .iter_mut()
        .filter(move |p| p.blocked.is_none() && p.suite.services.iter().any(|s| s == name))
}

/// The names (of services or prerequisites) that the suites that can run need, once each.
fn needed(plans: &[SuitePlan], kind: fn(&Suite) -> &Vec<String>) -> Vec<String> {
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

/// Builds the environment the service runs in (when it names a suite), picks its port,
/// starts it and waits until it is ready: its health, and its port or why it cannot be used.
fn start(
    setup: &Setup<'_>,
    service: &Service,
    cx: &RunContext<'_>,
    services: &mut Services,
    log: PathBuf,
) -> (Health, Result<u16, ServiceFailure>) {
    match launch(setup, service, cx, log.clone()) {
        Ok(launch) => {
            let port = launch.port;
            let (health, ready) = services.start(service, launch, cx.redactor);
            (health, ready.map(|()| port))
        }
        // It could not even be launched.
        Err(detail) => {
            let health = Health {
                name: service.name.clone(),
                kind: "service",
                target: service.command.join(" "),
                available: false,
                latency: None,
                error: Some(cx.redactor.text(&detail)),
                checked_at: crate::model::now(),
            };
            (health, Err(ServiceFailure { detail, log }))
        }
    }
}

/// What starting `service` takes: its environment (built, or found up to date, and leased
/// for as long as it runs) when it names a suite, and its port. `Err` says why not.
fn launch(
    setup: &Setup<'_>,
    service: &Service,
    cx: &RunContext<'_>,
    log: PathBuf,
) -> Result<Launch, String> {
    let layout = setup.layout;
    let mut environment = None;
    let mut extra_env = Vec::new();
    if let Some(name) = &service.environment {
        let suite = setup
            .manifest
            .suites
            .iter()
            .find(|s| &s.name == name)
            .ok_or_else(|| format!("there is no suite `{name}`"))?;
        let facts = crate::facts::Facts::gather(&layout.root, &[suite], &[]);
        let plan = plan_suite(suite, layout, setup.uv, &[], &facts);
        let build_log = layout
            .logs_dir()
            .join(format!("service-{}-environment.log", service.name));
        let mut file = crate::log::create(&build_log).map_err(|e| format!("{e:#}"))?;
        let lease = super::executor::build_environment(&plan, cx, &mut file).map_err(|why| {
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
    Ok(Launch::new(
        service,
        &layout.root,
        port,
        environment,
        extra_env,
        log,
    ))
}
