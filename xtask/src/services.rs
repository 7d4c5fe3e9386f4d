//! What the smoke suites need around them: prerequisites the xtask checks (variables, TCP
//! endpoints, HTTP health URLs, commands) and services it starts, waits for, and stops.
//!
//! A service is a long-running step: spawned through [`crate::process::spawn`] on a thread
//! of its own that lives until the xtask stops it with [`crate::process::stop`] (SIGINT,
//! then SIGKILL to its group after the grace, then every process carrying its tag), so it
//! is stopped with its whole process tree however the run ends: [`Services`] stops every
//! service it holds when dropped, after success, failure, a panic or an interrupt.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};

use crate::environment::Lease;
use crate::invocation::{shell_line, Invocation};
use crate::manifest::{Check, Prerequisite, Ready, Service, PORT_PLACEHOLDER};
use crate::net::{self, ms, without_userinfo};
use crate::process::{self, StepTag};
use crate::redact::{RedactingWriter, Redactor};

/// How often readiness is probed.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// How long one readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a stopped service gets to exit by its SIGINT before its group is killed.
pub const STOP_GRACE: Duration = process::GRACE;

/// One line of the health snapshot: what was checked, whether it answered, how fast or
/// why not, and when.
#[derive(Clone, Debug)]
pub struct Health {
    pub name: String,
    /// `env`, `tcp`, `http`, `command` or `service`.
    pub kind: &'static str,
    /// What was checked: a variable's name (never its value), `host:port`, a URL without
    /// its user-info, a command line.
    pub target: String,
    pub available: bool,
    pub latency: Option<Duration>,
    pub error: Option<String>,
    pub checked_at: DateTime<FixedOffset>,
}

impl Health {
    /// As `run.json` holds it.
    pub fn record(&self) -> crate::report::run_record::HealthRecord {
        crate::report::run_record::HealthRecord {
            name: self.name.clone(),
            kind: self.kind.to_string(),
            target: self.target.clone(),
            available: self.available,
            latency_ms: self.latency.map(|l| (l.as_secs_f64() * 1e6).round() / 1e3),
            error: self.error.clone(),
            checked_at: self.checked_at.to_rfc3339(),
        }
    }

    /// `prerequisite `broker` (tcp 127.0.0.1:9092)`, `service `api` (http://127.0.0.1:81/)`.
    pub fn label(&self) -> String {
        if self.kind == "service" {
            format!("service `{}` ({})", self.name, self.target)
        } else {
            format!(
                "prerequisite `{}` ({} {})",
                self.name, self.kind, self.target
            )
        }
    }

    /// `available (1.2 ms)`, `UNAVAILABLE: connection refused`: what the terminal shows.
    pub fn verdict(&self) -> String {
        match (&self.error, self.latency) {
            (None, Some(latency)) => format!("available ({:.1} ms)", latency.as_secs_f64() * 1e3),
            (None, None) => "available".into(),
            (Some(error), _) => format!("UNAVAILABLE: {error}"),
        }
    }

    /// A JUnit property of the suites that need it: (`health:NAME`, a one-line summary).
    pub fn property(&self) -> (String, String) {
        (format!("health:{}", self.name), self.summary())
    }

    /// `tcp 127.0.0.1:9092: unavailable: connection refused (checked at ...)`.
    pub fn summary(&self) -> String {
        let result = match (&self.error, self.latency) {
            (None, Some(latency)) => format!("available in {}", ms(latency)),
            (None, None) => "available".to_string(),
            (Some(error), _) => format!("unavailable: {error}"),
        };
        format!(
            "{} {}: {result} (checked at {})",
            self.kind,
            self.target,
            self.checked_at.to_rfc3339()
        )
    }
}

/// Checks every prerequisite at once, each within its own timeout; in their order.
/// Commands run in `root`.
pub fn check_all(prerequisites: &[&Prerequisite], root: &Path, redactor: &Redactor) -> Vec<Health> {
    std::thread::scope(|scope| {
        let checks: Vec<_> = prerequisites
            .iter()
            .map(|p| scope.spawn(move || check(p, root, redactor)))
            .collect();
        checks
            .into_iter()
            .zip(prerequisites)
            .map(|(handle, p)| {
                handle.join().unwrap_or_else(|_| Health {
                    name: p.name.clone(),
                    kind: kind(&p.check),
                    target: target(&p.check),
                    available: false,
                    latency: None,
                    error: Some("the check panicked".into()),
                    checked_at: crate::model::now(),
                })
            })
            .collect()
    })
}

fn kind(check: &Check) -> &'static str {
    match check {
        Check::Env(_) => "env",
        Check::Tcp(_) => "tcp",
        Check::Http(_) => "http",
        Check::Command(_) => "command",
    }
}

fn target(check: &Check) -> String {
    match check {
        Check::Env(name) => name.clone(),
        Check::Tcp(address) => address.clone(),
        Check::Http(url) => without_userinfo(url),
        Check::Command(argv) => argv.join(" "),
    }
}

/// One prerequisite (a command runs in `root`).
pub fn check(prerequisite: &Prerequisite, root: &Path, redactor: &Redactor) -> Health {
    let checked_at = crate::model::now();
    let clock = Instant::now();
    let timeout = prerequisite.timeout;
    let result = match &prerequisite.check {
        Check::Env(name) => match std::env::var_os(name) {
            Some(value) if !value.is_empty() => Ok(()),
            Some(_) => Err(format!("{name} is set but empty")),
            None => Err(format!("{name} is not set")),
        },
        Check::Tcp(address) => net::tcp(address, timeout).map(drop),
        Check::Http(url) => net::http(url, timeout).map(drop),
        Check::Command(argv) => {
            let invocation = Invocation::new(argv.clone(), root, Vec::new());
            let deadline = process::deadline_after(Instant::now(), timeout);
            match crate::step::capture(&invocation, deadline, redactor) {
                Ok(captured) if captured.success() => Ok(()),
                Ok(captured) => {
                    let said = captured
                        .stderr
                        .lines()
                        .chain(captured.stdout.lines())
                        .rfind(|l| !l.trim().is_empty())
                        .map(|l| format!(": {}", l.trim()))
                        .unwrap_or_default();
                    Err(format!(
                        "`{}` {}{said}",
                        shell_line(&invocation),
                        captured.describe()
                    ))
                }
                Err(err) => Err(format!("{err:#}")),
            }
        }
    };
    let latency = clock.elapsed();
    let (available, latency, error) = match result {
        Ok(()) => (
            true,
            (!matches!(prerequisite.check, Check::Env(_))).then_some(latency),
            None,
        ),
        Err(error) => (false, None, Some(redactor.text(&error))),
    };
    Health {
        name: prerequisite.name.clone(),
        kind: kind(&prerequisite.check),
        target: target(&prerequisite.check),
        available,
        latency,
        error,
        checked_at,
    }
}

/// A port on 127.0.0.1 nobody listens on now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// `{port}` replaced.
pub fn with_port(text: &str, port: u16) -> String {
    text.replace(PORT_PLACEHOLDER, &port.to_string())
}

/// How a service is to be run: its command line with the port filled in, where, and with
/// what environment (a suite's `bin` first on PATH and `VIRTUAL_ENV`, when it names one).
pub struct Launch {
    pub invocation: Invocation,
    pub port: u16,
    pub log: PathBuf,
    /// The lease of the environment it runs in, held as long as it runs.
    pub lease: Option<Lease>,
}

impl Launch {
    /// `environment`: the one it runs in, already built, and its lease; `extra_env`: that
    /// suite's PYTHONPATH.
    pub fn new(
        service: &Service,
        root: &Path,
        port: u16,
        environment: Option<(PathBuf, Lease)>,
        extra_env: Vec<(String, String)>,
        log: PathBuf,
    ) -> Launch {
        let (env_dir, lease) = environment.unzip();
        let env_dir = env_dir.as_deref();
        let mut argv: Vec<String> = service.command.iter().map(|a| with_port(a, port)).collect();
        let mut env = extra_env;
        env.extend(
            service
                .env
                .iter()
                .map(|(k, v)| (k.clone(), with_port(v, port))),
        );
        let mut invocation;
        if let Some(dir) = env_dir {
            let bin = dir.join("bin");
            if !argv[0].contains('/') && bin.join(&argv[0]).is_file() {
                argv[0] = bin.join(&argv[0]).to_string_lossy().into_owned();
            }
            env.push((
                "VIRTUAL_ENV".to_string(),
                dir.to_string_lossy().into_owned(),
            ));
            invocation = Invocation::new(argv, &root.join(&service.dir), env);
            invocation.env_remove.clear();
            invocation.path_prepend = Some(bin);
        } else {
            invocation = Invocation::new(argv, &root.join(&service.dir), env);
        }
        Launch {
            invocation,
            port,
            log,
            lease,
        }
    }
}

/// A service whose thread owns its process.
struct Running {
    name: String,
    stop: Arc<AtomicBool>,
    /// Says how the service ended, and whether by itself.
    thread: Option<JoinHandle<Ended>>,
    pid: u32,
    /// Its environment's lease: released once it is stopped (see [`stop_one`]).
    lease: Option<Lease>,
}

/// The services of a run; every one is stopped, with its process tree, when this is
/// dropped (or by [`Services::stop_all`]).
#[derive(Default)]
pub struct Services {
    running: Vec<Running>,
    watch: Watch,
}

/// Whether the services a run started are still up: the runner asks before and after each
/// suite that needs one, so that a suite whose service died is told apart from a suite
/// whose code broke. Cheap to clone; shared with the worker threads.
#[derive(Clone, Debug, Default)]
pub struct Watch(Arc<Mutex<BTreeMap<String, Watched>>>);

#[derive(Clone, Debug)]
struct Watched {
    /// Set by the service's thread when it exits by itself: how (`exited with 1`).
    ended: Arc<Mutex<Option<String>>>,
    log: PathBuf,
}

/// A service that ended by itself while the run still needed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Died {
    pub name: String,
    /// How it ended: `exited with 1`, `was killed by signal 9 (SIGKILL)`.
    pub how: String,
    pub log: PathBuf,
}

/// How a service's process ended: `exited with 1`; and whether by itself rather than
/// stopped by the xtask.
struct Ended {
    how: String,
    by_itself: bool,
}

/// A service the xtask stopped, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    pub name: String,
    pub how: String,
}

impl Watch {
    /// Every service that was ready and has since ended by itself, by name.
    pub fn all_died(&self) -> Vec<Died> {
        let names: Vec<String> = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names
            .iter()
            .filter_map(|name| self.died(std::slice::from_ref(name)))
            .collect()
    }

    /// The first of `names` that was started and has since ended by itself.
    pub fn died(&self, names: &[String]) -> Option<Died> {
        let watched = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        names.iter().find_map(|name| {
            let service = watched.get(name)?;
            let how = service
                .ended
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()?;
            Some(Died {
                name: name.clone(),
                how,
                log: service.log.clone(),
            })
        })
    }
}

/// A service that did not become ready: why, for the suites that needed it.
#[derive(Clone, Debug)]
pub struct ServiceFailure {
    pub detail: String,
    pub log: PathBuf,
}

impl Services {
    /// Tells how the services started here are doing, for as long as the run lasts.
    pub fn watch(&self) -> Watch {
        self.watch.clone()
    }

    /// Starts `service` and waits until it is ready or its deadline passes. The health line
    /// says which; on failure the service is already stopped and its log kept.
    pub fn start(
        &mut self,
        service: &Service,
        launch: Launch,
        redactor: &Redactor,
    ) -> (Health, Result<(), ServiceFailure>) {
        let checked_at = crate::model::now();
        let ready_target = match &service.ready {
            Ready::Http(url) => without_userinfo(&with_port(url, launch.port)),
            Ready::Tcp => format!("127.0.0.1:{}", launch.port),
        };
        let clock = Instant::now();
        let failed = |detail: String, log: &Path| {
            (
                Health {
                    name: service.name.clone(),
                    kind: "service",
                    target: ready_target.clone(),
                    available: false,
                    latency: None,
                    error: Some(redactor.text(&detail)),
                    checked_at,
                },
                Err(ServiceFailure {
                    detail: redactor.text(&detail),
                    log: log.to_path_buf(),
                }),
            )
        };
        let mut log = match crate::log::create(&launch.log) {
            Ok(log) => log,
            Err(err) => return failed(format!("could not create its log: {err:#}"), &launch.log),
        };
        let _ = writeln!(
            log,
            "xtask: service {}: {}",
            service.name,
            redactor.text(&shell_line(&launch.invocation))
        );
        if process::interrupted() {
            return failed(
                "the run was interrupted before it was started".into(),
                &launch.log,
            );
        }
        // What listened before it started: whatever answers through one of these is not
        // the service, however alive the service is.
        let before = net::listeners();
        let taken = before.iter().any(|(addr, _)| addr.port() == launch.port)
            || TcpListener::bind(("127.0.0.1", launch.port)).is_err();
        if service.port.is_some() && taken {
            let detail = format!(
                "its port {} is already taken by another process; stop that process or change the service's `port`",
                launch.port
            );
            let _ = writeln!(log, "xtask: {detail}");
            return failed(detail, &launch.log);
        }
        let (ready_tx, ready_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let ended = Arc::new(Mutex::new(None));
        let thread = {
            let stop = Arc::clone(&stop);
            let ended = Arc::clone(&ended);
            let redactor = redactor.clone();
            let invocation = launch.invocation.clone();
            let name = service.name.clone();
            std::thread::Builder::new()
                .name(format!("service-{name}"))
                .spawn(move || run(&invocation, log, &redactor, &stop, &ended, ready_tx))
        };
        let thread = match thread {
            Ok(thread) => thread,
            Err(err) => return failed(format!("could not start a thread: {err}"), &launch.log),
        };
        let pid = match ready_rx.recv() {
            Ok(Ok(pid)) => pid,
            Ok(Err(err)) => {
                let _ = thread.join();
                return failed(format!("could not be started: {err}"), &launch.log);
            }
            Err(_) => {
                let _ = thread.join();
                return failed("its thread ended before it started".into(), &launch.log);
            }
        };
        self.running.push(Running {
            name: service.name.clone(),
            stop,
            thread: Some(thread),
            pid,
            lease: launch.lease,
        });
        let deadline = process::deadline_after(clock, service.deadline);
        let watched = Watched {
            ended: Arc::clone(&ended),
            log: launch.log.clone(),
        };
        loop {
            if let Some(how) = ended.lock().unwrap_or_else(PoisonError::into_inner).clone() {
                let detail = format!("it exited at start ({how}) before it was ready");
                return failed(detail, &launch.log);
            }
            // One probe never outlasts the deadline.
            let timeout = deadline.map_or(PROBE_TIMEOUT, |d| {
                d.saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(1), PROBE_TIMEOUT)
            });
            let probed = match &service.ready {
                Ready::Http(url) => {
                    net::http(&with_port(url, launch.port), timeout).map(|(_, peer)| peer)
                }
                Ready::Tcp => net::tcp(&format!("127.0.0.1:{}", launch.port), timeout),
            };
            // An answer counts only while the service itself runs, and only from a socket
            // that was not already listening before it started.
            if let Ok(peer) = &probed {
                if process::has_exited(pid) {
                    let how = ended
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone()
                        .map(|how| format!(" ({how})"))
                        .unwrap_or_default();
                    self.stop(&service.name);
                    let detail = format!(
                        "it exited{how} before it was ready; {peer} answered its readiness check, but that is not the service"
                    );
                    return failed(detail, &launch.log);
                }
                let now = net::listeners();
                let answering: Vec<_> = now
                    .iter()
                    .filter(|(addr, _)| net::accepts(addr, peer))
                    .collect();
                if !answering.is_empty() && answering.iter().all(|l| before.contains(l)) {
                    self.stop(&service.name);
                    let detail = format!(
                        "another process was already listening on {peer} before it started, and answered its readiness check: that is not the service; stop that process or change the service's `port`"
                    );
                    return failed(detail, &launch.log);
                }
            }
            if probed.is_ok() {
                self.watch
                    .0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(service.name.clone(), watched);
                return (
                    Health {
                        name: service.name.clone(),
                        kind: "service",
                        target: ready_target,
                        available: true,
                        latency: Some(clock.elapsed()),
                        error: None,
                        checked_at,
                    },
                    Ok(()),
                );
            }
            if process::interrupted() {
                self.stop(&service.name);
                return failed(
                    "the run was interrupted before it was ready".into(),
                    &launch.log,
                );
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.stop(&service.name);
                let last = probed.err().unwrap_or_default();
                let detail = format!(
                    "it did not become ready within its deadline of {}s (last check: {last}); it was stopped",
                    service.deadline.as_secs()
                );
                return failed(detail, &launch.log);
            }
            std::thread::sleep(PROBE_EVERY);
        }
    }

    /// The pids of the services started (their process-group leaders).
    pub fn pids(&self) -> Vec<u32> {
        self.running.iter().map(|r| r.pid).collect()
    }

    fn stop(&mut self, name: &str) {
        for running in self.running.iter_mut().filter(|r| r.name == name) {
            stop_one(running);
        }
    }

    /// Stops every service and its process tree (SIGINT, then SIGKILL after the grace),
    /// all at once, and waits until they are gone. Returns those it stopped (not those
    /// that had ended by themselves, nor those stopped before), in the order they started.
    pub fn stop_all(&mut self) -> Vec<Stopped> {
        for running in &self.running {
            running.stop.store(true, Ordering::SeqCst);
        }
        self.running
            .iter_mut()
            .filter_map(|running| {
                let ended = stop_one(running)?;
                (!ended.by_itself).then(|| Stopped {
                    name: running.name.clone(),
                    how: ended.how,
                })
            })
            .collect()
    }
}

/// Stops the service (if its thread still runs) and says how it ended; `None` when it was
/// stopped before.
fn stop_one(running: &mut Running) -> Option<Ended> {
    running.stop.store(true, Ordering::SeqCst);
    let ended = running.thread.take().and_then(|thread| thread.join().ok());
    running.lease = None;
    ended
}

impl Drop for Services {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// The service's thread: spawns it, copies its output into its log (masked), and stops it
/// when asked; records how it ended if it ends by itself.
fn run(
    invocation: &Invocation,
    mut log: std::fs::File,
    redactor: &Redactor,
    stop: &AtomicBool,
    ended: &Mutex<Option<String>>,
    started: mpsc::Sender<Result<u32, String>>,
) -> Ended {
    let pipe = std::io::pipe().and_then(|(r, w)| Ok((r, w.try_clone()?, w)));
    let (reader, out, err) = match pipe {
        Ok(pipe) => pipe,
        Err(err) => {
            let message = format!("creating a pipe: {err}");
            let _ = started.send(Err(message.clone()));
            return Ended {
                how: message,
                by_itself: true,
            };
        }
    };
    let mut command = invocation.command();
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    let tag = StepTag::next();
    let spawned = process::spawn(&mut command, &tag);
    drop(command);
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            let message = format!("`{}`: {err}", invocation.argv[0]);
            let _ = writeln!(log, "xtask: could not start {}", redactor.text(&message));
            let _ = started.send(Err(message.clone()));
            return Ended {
                how: message,
                by_itself: true,
            };
        }
    };
    let copier = match log.try_clone() {
        Ok(sink) => Some(crate::step::copy(
            reader,
            RedactingWriter::new(sink, redactor.clone()),
            crate::step::COPY_PAUSE,
        )),
        Err(_) => None,
    };
    let _ = started.send(Ok(child.id()));
    let clock = Instant::now();
    let mut exited_by_itself = false;
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => {
                exited_by_itself = true;
                break;
            }
            Ok(None) => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = process::stop(&mut child, &tag, STOP_GRACE);
    let how = match &status {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            process::describe(status.code(), status.signal())
        }
        Err(err) => format!("could not be waited for: {err}"),
    };
    // Said at once, before its last output is drained: a suite whose tests just failed
    // against it asks right away.
    if exited_by_itself {
        *ended.lock().unwrap_or_else(PoisonError::into_inner) = Some(how.clone());
    }
    if let Some(copier) = copier {
        let _ = copier.recv_timeout(Duration::from_secs(2));
    }
    let stopped = if exited_by_itself {
        ""
    } else {
        " (stopped by the xtask)"
    };
    let _ = writeln!(
        log,
        "xtask: service {how}{stopped} after {:.2}s",
        clock.elapsed().as_secs_f64()
    );
    Ended {
        how,
        by_itself: exited_by_itself,
    }
}

/// The variables a ready service gives the suites that need it.
pub fn exports(service: &Service, port: u16) -> BTreeMap<String, String> {
    service
        .export
        .iter()
        .map(|(k, v)| (k.clone(), with_port(v, port)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_checks_never_show_the_value() {
        let redactor = Redactor::from_env(&[], &[]);
        let prerequisite = Prerequisite {
            name: "path".into(),
            check: Check::Env("PATH".into()),
            timeout: Duration::from_secs(1),
        };
        let health = check(&prerequisite, Path::new("."), &redactor);
        assert!(health.available);
        assert_eq!(health.target, "PATH");
        let text = serde_json::to_string(&health.record()).unwrap();
        assert!(!text.contains(&std::env::var("PATH").unwrap()), "{text}");
        let missing = Prerequisite {
            check: Check::Env("XTASK_SURELY_UNSET_VARIABLE".into()),
            ..prerequisite
        };
        let health = check(&missing, Path::new("."), &redactor);
        assert!(!health.available);
        assert_eq!(
            health.error.as_deref(),
            Some("XTASK_SURELY_UNSET_VARIABLE is not set")
        );
    }

    #[test]
    fn checks_run_at_once_each_within_its_timeout() {
        let redactor = Redactor::from_env(&[], &[]);
        let slow = |name: &str| Prerequisite {
            name: name.into(),
            check: Check::Command(vec!["sleep".into(), "30".into()]),
            timeout: Duration::from_secs(1),
        };
        let ok = Prerequisite {
            name: "true".into(),
            check: Check::Command(vec!["true".into()]),
            timeout: Duration::from_secs(5),
        };
        let (a, b) = (slow("a"), slow("b"));
        let clock = Instant::now();
        let health = check_all(&[&a, &b, &ok], Path::new("."), &redactor);
        assert!(
            clock.elapsed() < Duration::from_secs(10),
            "{:?}",
            clock.elapsed()
        );
        assert!(!health[0].available && !health[1].available && health[2].available);
        assert!(
            health[0]
                .error
                .as_deref()
                .unwrap()
                .contains("ran out of time"),
            "{:?}",
            health[0].error
        );
    }
}
