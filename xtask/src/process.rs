//! Every child process the xtask runs for a step is started, timed out, interrupted and
//! reaped here, so that no test leaves a stray process behind, even one that left its group.
//!
//! - Each step runs as the leader of its own process group, with `XTASK_RUN=<run id>:<step>`
//!   (its [`StepTag`]) in its environment, which its descendants inherit even when they
//!   leave the group with `setsid`.
//! - To stop a step (its deadline, Ctrl-C, SIGTERM, SIGHUP) the xtask sends SIGINT to the
//!   group leader, the step's own program (pytest, or uv building an environment, which
//!   forwards it to its children when its stdin is not a terminal), so pytest writes its
//!   report of what ran. Not to the whole group: a pytest below a forwarding parent would
//!   get it twice, and the second interrupt could cut its report short. After [`GRACE`], or
//!   at once on a second interrupt, the whole group is killed.
//! - When a step ends, however it ended, whatever is left in its group is killed, and on
//!   Linux every process whose environment carries the step's tag (found in
//!   `/proc/*/environ`). On other Unix systems only the group is ended.
//! - On Linux the xtask is a child subreaper ([`init`]): orphaned descendants of a step are
//!   reparented to it rather than to init, and the ones this module kills are reaped here by
//!   pid. It never calls `waitpid(-1, ..)`, which would steal the exit status of a `Child`
//!   another worker thread is waiting for; live direct children are kept in a registry and
//!   never reaped here.
//! - On Linux each direct child gets `PR_SET_PDEATHSIG = SIGKILL`, so a SIGKILLed xtask
//!   does not orphan them. The kernel sends it when the *thread* that forked the child
//!   ends, not the process: spawn and wait on the same thread, as the runner's worker
//!   threads do, which live until their step is done.
//! - Each step's process group id is appended to a record file ([`init`]), so that a later
//!   invocation can [`sweep`] what a SIGKILLed one left behind.
//!
//! Children started elsewhere (`Command::output`) can run alongside: only processes
//! found by a step's tag or in a step's group are reaped here, and zombies reparented to
//! the xtask from another session (a `setsid` daemon that died by itself), never another
//! child.
//!
//! Unix only, like the rest of the xtask.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Once, OnceLock};
use std::time::{Duration, Instant};

/// The environment variable that tags every process of a step: `<run id>:<step number>`.
pub const TAG_ENV: &str = "XTASK_RUN";

/// How long a stopped step gets to write its report before its group is killed.
pub const GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);
/// The shortest pause of [`wait`], which pauses a quarter of the time the step has run so
/// far, up to [`POLL`]: a step of a few milliseconds (git, `uv --version`) is seen to end
/// within a quarter of its time, not made to last a whole poll.
const FIRST_POLL: Duration = Duration::from_millis(1);
/// How long ending a step waits, at most, for what it killed to be gone.
#[cfg(target_os = "linux")]
const END_ROUNDS: usize = 200;
#[cfg(target_os = "linux")]
const END_POLL: Duration = Duration::from_millis(10);

/// Set by the signal handlers; counted (and cleared) by [`interrupted`] and [`stop_now`].
static PENDING: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));
/// How many interrupts were counted. Two in one poll count as one.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
/// Set after the second interrupt: a third one ends the xtask by the signal's default action.
static STOP_NOW: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));
static HANDLERS: Once = Once::new();

static RUN_ID: OnceLock<String> = OnceLock::new();
static RECORD: Mutex<Option<PathBuf>> = Mutex::new(None);
static STEPS: AtomicU64 = AtomicU64::new(0);
/// The direct children spawned here and not yet waited for: never reaped by pid here.
static CHILDREN: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// Sets up this invocation: its run id (for [`StepTag::next`]), the file the process group
/// of every step is appended to (see [`sweep`]), on Linux the child subreaper, and the
/// handlers that make SIGINT, SIGTERM and SIGHUP an orderly stop instead of killing the
/// xtask: the first sets [`interrupted`], a second means [`stop_now`] (no grace), a third
/// ends the xtask at once. Call it once, before the first step.
pub fn init(run_id: &str, record: PathBuf) -> io::Result<()> {
    let _ = RUN_ID.set(run_id.to_string());
    *lock(&RECORD) = Some(record);
    #[cfg(target_os = "linux")]
    become_subreaper()?;
    let mut installed = Ok(());
    HANDLERS.call_once(|| {
        installed = (|| {
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                // SIGINT or SIGHUP ignored when the xtask started (a script's background
                // job, `nohup`) stays ignored, as the shell and nohup meant; SIGTERM is
                // always an orderly stop.
                if sig != libc::SIGTERM && ignored_at_start(sig) {
                    continue;
                }
                // Checked before the flag below is set: only a signal after the second one
                // finds it set.
                signal_hook::flag::register_conditional_default(sig, Arc::clone(&STOP_NOW))?;
                signal_hook::flag::register(sig, Arc::clone(&PENDING))?;
            }
            Ok(())
        })();
    });
    installed
}

/// Whether `sig` is ignored (`SIG_IGN`) in this process, as inherited from its parent.
fn ignored_at_start(sig: libc::c_int) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `old` is a valid, writable sigaction.
    let read = unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } == 0;
    read && old.sa_sigaction == libc::SIG_IGN
}

#[cfg(target_os = "linux")]
fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only sets a flag of this process.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn count_signals() -> usize {
    if PENDING.swap(false, Ordering::SeqCst) && SIGNALS.fetch_add(1, Ordering::SeqCst) >= 1 {
        STOP_NOW.store(true, Ordering::SeqCst);
    }
    SIGNALS.load(Ordering::SeqCst)
}

/// Whether SIGINT, SIGTERM or SIGHUP arrived (after [`init`]).
pub fn interrupted() -> bool {
    count_signals() >= 1
}

/// Whether a second one arrived: stop the steps without their grace period.
pub fn stop_now() -> bool {
    count_signals() >= 2
}

/// Names one step's processes: `<run id>:<step number>`, the value of [`TAG_ENV`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepTag(String);

impl StepTag {
    /// A new tag for the next step of this invocation (run id from [`init`], else its pid).
    pub fn next() -> StepTag {
        let run = RUN_ID
            .get()
            .cloned()
            .unwrap_or_else(|| std::process::id().to_string());
        StepTag::new(&run, STEPS.fetch_add(1, Ordering::SeqCst) + 1)
    }

    pub fn new(run_id: &str, step: u64) -> StepTag {
        StepTag(format!("{run_id}:{step}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StepTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a step was stopped before it ended by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    TimedOut,
    Interrupted,
}

/// `start + timeout`, or no deadline when that is too far to represent (`--timeout` of
/// `u64::MAX` seconds): never panics.
pub fn deadline_after(start: Instant, timeout: Duration) -> Option<Instant> {
    start.checked_add(timeout)
}

/// Spawns `command` as the leader of a new process group, tagged with `tag`, and records
/// its group. Wait for it with [`wait`] on the same thread (see the module documentation).
pub fn spawn(command: &mut Command, tag: &StepTag) -> io::Result<Child> {
    command.process_group(0).env(TAG_ENV, tag.as_str());
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
        // calls (signal, prctl, getppid) without allocating.
        unsafe {
            command.pre_exec(move || {
                // A step obeys SIGINT, the xtask's orderly stop, even when the xtask was
                // started with SIGINT ignored (a background job of a script, whose
                // ignored signals every exec inherits). Its own process group keeps the
                // terminal's Ctrl-C from reaching it directly either way.
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::signal(libc::SIGQUIT, libc::SIG_DFL);
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) == -1 {
                    return Err(io::Error::last_os_error());
                }
                // The xtask died before the prctl: nobody would kill this child.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
    // Held across the fork, so that no other thread ending a step sees this child before it
    // is registered.
    let mut children = lock(&CHILDREN);
    let child = command.spawn()?;
    children.insert(child.id());
    drop(children);
    record_group(child.id());
    Ok(child)
}

/// Appends the group to the record file. Best effort: on Linux [`sweep`] also finds the
/// processes by their tag.
fn record_group(pgid: u32) {
    let Some(record) = lock(&RECORD).clone() else {
        return;
    };
    if let Some(dir) = record.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&record);
    if let Ok(mut file) = file {
        // One write of a short line to an O_APPEND file: lines of two threads never mix.
        let _ = file.write_all(format!("{pgid}\n").as_bytes());
    }
}

/// Waits for `child` (spawned by [`spawn`] with `tag`), stopping it at `deadline` (none:
/// never) or on an interrupt; then ends everything left in its group and, on Linux,
/// everything carrying its tag.
pub fn wait(
    child: &mut Child,
    tag: &StepTag,
    deadline: Option<Instant>,
) -> io::Result<(ExitStatus, Option<Stop>)> {
    let group = child.id() as i32;
    let mut stopping: Option<(Stop, Instant)> = None;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(err) => break Err(err),
        }
        let now = Instant::now();
        match stopping {
            None => {
                let stop = if interrupted() {
                    Some(Stop::Interrupted)
                } else if deadline.is_some_and(|deadline| now >= deadline) {
                    Some(Stop::TimedOut)
                } else {
                    None
                };
                if let Some(stop) = stop {
                    send(group, libc::SIGINT);
                    stopping = Some((stop, now));
                }
            }
            Some((_, since)) => {
                if now.duration_since(since) >= GRACE || stop_now() {
                    send(-group, libc::SIGKILL);
                }
            }
        }
        std::thread::sleep((started.elapsed() / 4).clamp(FIRST_POLL, POLL));
    };
    // Reaped by try_wait (or lost): from now on its pid may belong to someone else.
    lock(&CHILDREN).remove(&child.id());
    end_step(tag, group);
    status.map(|status| (status, stopping.map(|(stop, _)| stop)))
}

/// Stops a long-running step the xtask ends itself (a service): SIGINT to its program,
/// then after `grace` (or at once on a second interrupt) SIGKILL to its whole group; then,
/// as [`wait`] does, ends everything left in its group and carrying its tag. A child that
/// already exited is only reaped and cleaned up after.
pub fn stop(child: &mut Child, tag: &StepTag, grace: Duration) -> io::Result<ExitStatus> {
    let group = child.id() as i32;
    let since = Instant::now();
    let mut asked = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(err) => break Err(err),
        }
        if !asked {
            send(group, libc::SIGINT);
            asked = true;
        } else if since.elapsed() >= grace || stop_now() {
            send(-group, libc::SIGKILL);
        }
        std::thread::sleep(POLL);
    };
    lock(&CHILDREN).remove(&child.id());
    end_step(tag, group);
    status
}

/// Anything the step started and left behind (a server, a `sleep` in a hung test).
fn end_step(tag: &StepTag, group: i32) {
    #[cfg(target_os = "linux")]
    {
        let entry = format!("{TAG_ENV}={tag}");
        end(&[group], |pid| {
            environ_has(pid, |var| var == entry.as_bytes())
        });
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = tag;
        send(-group, libc::SIGKILL);
    }
}

/// Ends what a dead invocation `run_id` left behind: every process tagged with one of its
/// steps, and every group in `record` (one pgid a line) that still has such a member, so a
/// group id since reused by something else is never killed. The caller decides that the run
/// is dead. Returns how many processes it killed. On other Unix systems than Linux the tags
/// cannot be read, and it does nothing.
pub fn sweep(run_id: &str, record: &Path) -> usize {
    #[cfg(target_os = "linux")]
    {
        let prefix = format!("{TAG_ENV}={run_id}:");
        let tagged = |pid: i32| environ_has(pid, |var| var.starts_with(prefix.as_bytes()));
        let recorded: BTreeSet<i32> = std::fs::read_to_string(record)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .filter(|pgid: &i32| *pgid > 1)
            .collect();
        let groups: Vec<i32> = scan()
            .filter(|p| !p.gone && recorded.contains(&p.pgrp) && tagged(p.pid))
            .map(|p| p.pgrp)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        end(&groups, tagged)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (run_id, record);
        0
    }
}

/// One line of `/proc/<pid>/stat`, the fields used here.
#[cfg(target_os = "linux")]
#[derive(Clone, Copy, Debug)]
struct Stat {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    session: i32,
    /// A zombie (or dead): its environment can no longer be read.
    gone: bool,
}

#[cfg(target_os = "linux")]
fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may itself hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some(Stat {
        pid,
        ppid,
        pgrp,
        session,
        gone: matches!(state, "Z" | "X" | "x"),
    })
}

/// Every process but this one.
#[cfg(target_os = "linux")]
fn scan() -> impl Iterator<Item = Stat> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(move |pid| *pid != me)
        .filter_map(stat)
}

/// Whether one `NAME=value` entry of the process's environment matches (false when it
/// cannot be read: gone, or another user's).
#[cfg(target_os = "linux")]
fn environ_has(pid: i32, matches: impl Fn(&[u8]) -> bool) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|environ| environ.split(|b| *b == 0).any(matches))
}

/// Kills, until none is left, the members of `groups` and every process `matches` (by pid),
/// then reaps those of them that were reparented to the xtask. Returns how many it killed.
///
/// It also reaps the zombies reparented to the xtask that left its session (`setsid`
/// daemons of earlier steps that died by themselves): dead, their tag can no longer be read,
/// and nobody else would reap them. A child spawned here never leaves the xtask's session
/// itself, so its exit status is never taken from its `Child`.
#[cfg(target_os = "linux")]
fn end(groups: &[i32], matches: impl Fn(i32) -> bool) -> usize {
    let me = std::process::id() as i32;
    // SAFETY: getsid(0) only reads this process's session id.
    let session = unsafe { libc::getsid(0) };
    let mut found = BTreeSet::new();
    let mut orphans = BTreeSet::new();
    for _ in 0..END_ROUNDS {
        for group in groups {
            send(-group, libc::SIGKILL);
        }
        let mut live = 0;
        for p in scan() {
            let member = groups.contains(&p.pgrp);
            if p.gone {
                if member {
                    found.insert(p.pid);
                } else if p.ppid == me && p.session != session {
                    orphans.insert(p.pid);
                }
            } else if member || matches(p.pid) {
                send(p.pid, libc::SIGKILL);
                found.insert(p.pid);
                live += 1;
            }
        }
        let unreaped = reap(&found, me);
        if live == 0 && unreaped == 0 {
            break;
        }
        std::thread::sleep(END_POLL);
    }
    reap(&orphans, me);
    found.len()
}

/// Reaps those of `pids` that are zombies whose parent is the xtask, except its registered
/// direct children (their `Child` reaps them). Returns how many such zombies remain.
#[cfg(target_os = "linux")]
fn reap(pids: &BTreeSet<i32>, me: i32) -> usize {
    let children = lock(&CHILDREN);
    let mut left = 0;
    for &pid in pids {
        if children.contains(&(pid as u32)) {
            continue;
        }
        let Some(p) = stat(pid).filter(|p| p.gone && p.ppid == me) else {
            continue;
        };
        let mut status = 0;
        // SAFETY: waits for one specific pid, a zombie child of this process that no
        // `Child` owns; WNOHANG never blocks.
        if unsafe { libc::waitpid(p.pid, &mut status, libc::WNOHANG) } != p.pid {
            left += 1;
        }
    }
    left
}

fn send(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; ESRCH (already gone) is fine.
    unsafe {
        libc::kill(pid, sig);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether a process with this id exists (for pruning the directories of dead runs).
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether `child` (a direct child of this process, still unreaped) has ended, without
/// reaping it: the thread that owns its `Child` still gets its status. An error (it was
/// reaped already, or is no child of ours) counts as ended.
pub fn has_exited(child: u32) -> bool {
    // SAFETY: waitid with WNOWAIT only reads the child's state into `info`; the child
    // stays a zombie for its owner to reap.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `info` is a valid, writable siginfo_t.
    let waited = unsafe {
        libc::waitid(
            libc::P_PID,
            child as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: si_pid is set by waitid when a child changed state, and zero otherwise.
    waited != 0 || unsafe { info.si_pid() } != 0
}

pub use crate::model::{describe, signal_name};

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// A fresh directory for one test's files.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-process-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The pid a step's script wrote to `file`, waiting (at most 10 s) for it.
    fn read_pid(file: &Path) -> i32 {
        let clock = Instant::now();
        loop {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if text.ends_with('\n') {
                return text.trim().parse().unwrap();
            }
            assert!(
                clock.elapsed() < Duration::from_secs(10),
                "no pid in {}",
                file.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `/proc/<pid>/stat` state, or None when the process is gone (reaped).
    fn state(pid: i32) -> Option<String> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &text[text.rfind(')')? + 1..];
        rest.split_ascii_whitespace().next().map(str::to_string)
    }

    #[cfg(target_os = "linux")]
    fn session(pid: i32) -> i32 {
        // SAFETY: getsid has no memory effects.
        unsafe { libc::getsid(pid) }
    }

    /// Gone, or a zombie its parent has not reaped yet.
    fn dead(pid: i32) -> bool {
        if cfg!(target_os = "linux") {
            state(pid).is_none_or(|s| s == "Z" || s == "X")
        } else {
            // Reparented to launchd, which reaps it.
            std::thread::sleep(Duration::from_millis(200));
            !alive(pid as u32)
        }
    }

    /// Kills a test's leftover so a failing test does not leave it running.
    fn cleanup(pid: i32) {
        send(pid, libc::SIGKILL);
    }

    /// A step whose shell ignores SIGINT and leaves a grandchild: its scratch directory,
    /// tag, child and the grandchild's pid.
    fn stubborn_step(name: &str) -> (PathBuf, StepTag, Child, i32) {
        let dir = scratch(name);
        let pidfile = dir.join("grandchild.pid");
        let script = format!(
            "trap '' INT; sleep 600 & echo $! > {}; wait",
            pidfile.display()
        );
        let tag = StepTag::next();
        let child = spawn(Command::new("sh").args(["-c", &script]), &tag).unwrap();
        let grandchild = read_pid(&pidfile);
        (dir, tag, child, grandchild)
    }

    #[test]
    fn a_step_past_its_deadline_is_stopped_with_its_whole_group() {
        // The shell leaves a grandchild that ignores SIGINT; both must be gone.
        let (dir, tag, mut child, grandchild) = stubborn_step("deadline");
        let clock = Instant::now();
        assert!(!dead(grandchild));
        let (status, stop) = wait(&mut child, &tag, Some(Instant::now())).unwrap();
        cleanup(grandchild);
        assert_eq!(stop, Some(Stop::TimedOut));
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{}",
            describe(status.code(), status.signal())
        );
        assert!(
            clock.elapsed() >= GRACE,
            "SIGINT was ignored, so it waited the grace"
        );
        assert!(dead(grandchild), "{:?}", state(grandchild));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    /// Runs `script` (which writes the pid of a `setsid` daemon to `$1`) as a step with
    /// `deadline`, and returns how it ended and whether the daemon is gone.
    fn run_with_daemon(name: &str, script: &str, deadline: Option<Instant>) -> Option<Stop> {
        become_subreaper().unwrap();
        let dir = scratch(name);
        let pidfile = dir.join("daemon.pid");
        let tag = StepTag::next();
        let mut command = Command::new("sh");
        command.args(["-c", script, "sh"]).arg(&pidfile);
        let mut child = spawn(&mut command, &tag).unwrap();
        let daemon = read_pid(&pidfile);
        // It really left the step's group and session (the shell writes `$!` right after
        // the fork, maybe before setsid ran): only its tag can find it.
        let clock = Instant::now();
        while session(daemon) != daemon && clock.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(session(daemon), daemon, "{:?}", state(daemon));
        let (_, stop) = wait(&mut child, &tag, deadline).unwrap();
        let left = state(daemon);
        cleanup(daemon);
        // The xtask is its subreaper: killed and reaped, not even a zombie.
        assert_eq!(left, None, "the daemon {daemon} outlived its step");
        std::fs::remove_dir_all(dir).unwrap();
        stop
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_setsid_daemon_is_gone_after_its_step_ends() {
        // The step ends by itself, a moment after starting the daemon.
        let stop = run_with_daemon(
            "daemon-normal",
            "setsid sleep 600 & echo $! > \"$1\"; sleep 0.5",
            None,
        );
        assert_eq!(stop, None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_setsid_daemon_is_gone_after_its_step_times_out() {
        let stop = run_with_daemon(
            "daemon-timeout",
            "setsid sleep 600 & echo $! > \"$1\"; exec sleep 600",
            Some(Instant::now() + Duration::from_millis(300)),
        );
        assert_eq!(stop, Some(Stop::TimedOut));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_setsid_daemon_that_dies_by_itself_before_its_step_ends_is_reaped() {
        // Orphaned at once (its subshell exits), it dies while the step still runs: a
        // zombie of the xtask whose tag can no longer be read.
        let stop = run_with_daemon(
            "daemon-dies",
            "(setsid sh -c 'echo $$ > \"$1\"; sleep 0.3' sh \"$1\" &); sleep 1.5",
            None,
        );
        assert_eq!(stop, None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_direct_child_dies_with_the_thread_that_spawned_it() {
        // PR_SET_PDEATHSIG: what keeps a SIGKILLed xtask from orphaning its steps (the
        // kernel sends it when the spawning thread ends, which this shows).
        let tag = StepTag::next();
        let spawner_tag = tag.clone();
        let mut child = std::thread::spawn(move || {
            spawn(Command::new("sleep").arg("600"), &spawner_tag).unwrap()
        })
        .join()
        .unwrap();
        let pid = child.id() as i32;
        let clock = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if clock.elapsed() > Duration::from_secs(5) {
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if status.is_none() {
            cleanup(pid);
        }
        let _ = wait(&mut child, &tag, Some(Instant::now()));
        assert_eq!(status.and_then(|s| s.signal()), Some(libc::SIGKILL));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sweep_ends_what_a_dead_run_left_and_nothing_else() {
        let dir = scratch("sweep");
        let dead_run = format!("dead-{}", std::process::id());
        // Left by the dead run: a tagged process, and a tagged group with a member that
        // dropped the tag.
        let tag = StepTag::new(&dead_run, 1);
        let mut tagged = spawn(Command::new("sleep").arg("600"), &tag).unwrap();
        let pidfile = dir.join("untagged-member.pid");
        let script = format!(
            "env -u {TAG_ENV} sleep 600 & echo $! > {}; wait",
            pidfile.display()
        );
        let group_tag = StepTag::new(&dead_run, 2);
        let mut group = spawn(Command::new("sh").args(["-c", &script]), &group_tag).unwrap();
        let member = read_pid(&pidfile);
        // Not ours: an untagged group whose id is in the record (a reused pgid).
        let mut stranger = Command::new("sleep")
            .arg("600")
            .process_group(0)
            .spawn()
            .unwrap();
        let record = dir.join("process-groups");
        std::fs::write(&record, format!("{}\n{}\n", group.id(), stranger.id())).unwrap();

        let killed = sweep(&dead_run, &record);
        let (tagged_state, member_state, stranger_state) = (
            state(tagged.id() as i32),
            state(member),
            state(stranger.id() as i32),
        );
        let _ = stranger.kill();
        let _ = stranger.wait();
        cleanup(member);
        let _ = wait(&mut tagged, &tag, Some(Instant::now()));
        let _ = wait(&mut group, &group_tag, Some(Instant::now()));

        // Our own children stay zombies until their `Child` reaps them.
        assert_eq!(tagged_state.as_deref(), Some("Z"));
        assert!(
            member_state.as_deref().is_none_or(|s| s == "Z"),
            "{member_state:?}"
        );
        assert!(
            stranger_state.as_deref().is_some_and(|s| s != "Z"),
            "{stranger_state:?}"
        );
        assert!(killed >= 3, "{killed}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn stop_interrupts_then_kills_a_step_that_ignores_sigint_with_its_group() {
        let (dir, tag, mut child, grandchild) = stubborn_step("stop");
        let clock = Instant::now();
        let status = stop(&mut child, &tag, Duration::from_millis(300)).unwrap();
        cleanup(grandchild);
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(clock.elapsed() >= Duration::from_millis(300));
        assert!(dead(grandchild), "{:?}", state(grandchild));

        // One that obeys SIGINT ends by it, before the grace.
        let tag = StepTag::next();
        let mut child = spawn(Command::new("sleep").arg("600"), &tag).unwrap();
        let clock = Instant::now();
        let status = stop(&mut child, &tag, Duration::from_secs(30)).unwrap();
        assert_eq!(status.signal(), Some(libc::SIGINT));
        assert!(clock.elapsed() < Duration::from_secs(5));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_huge_timeout_means_no_deadline() {
        let now = Instant::now();
        assert_eq!(deadline_after(now, Duration::from_secs(u64::MAX)), None);
        assert_eq!(
            deadline_after(now, Duration::from_secs(1)),
            Some(now + Duration::from_secs(1))
        );
        let tag = StepTag::next();
        let mut child = spawn(&mut Command::new("true"), &tag).unwrap();
        let (status, stop) = wait(&mut child, &tag, None).unwrap();
        assert!(status.success());
        assert_eq!(stop, None);
    }

    #[test]
    fn signals_are_named_as_this_system_numbers_them() {
        for (sig, name) in [
            (libc::SIGKILL, "SIGKILL"),
            (libc::SIGTERM, "SIGTERM"),
            (libc::SIGINT, "SIGINT"),
            (libc::SIGHUP, "SIGHUP"),
            (libc::SIGABRT, "SIGABRT"),
            (libc::SIGSEGV, "SIGSEGV"),
        ] {
            assert_eq!(signal_name(sig), format!(" ({name})"));
            // The shell's numbering agrees: a process that kills itself by name.
            let tag = StepTag::next();
            let script = format!("kill -{} $$", &name[3..]);
            let mut command = Command::new("sh");
            command.args(["-c", &script]);
            // A signal ignored when the tests started (`nohup` ignores SIGHUP) stays
            // ignored in every child, and a shell cannot `trap -` it back: reset it here.
            // SAFETY: signal is async-signal-safe; SIGKILL's disposition cannot change and
            // the call then fails harmlessly.
            unsafe {
                command.pre_exec(move || {
                    libc::signal(sig, libc::SIG_DFL);
                    Ok(())
                });
            }
            let mut child = spawn(&mut command, &tag).unwrap();
            let (status, _) = wait(&mut child, &tag, None).unwrap();
            assert_eq!(
                describe(status.code(), status.signal()),
                format!("was killed by signal {sig} ({name})")
            );
        }
        assert_eq!(describe(Some(1), None), "exited with 1");
        #[cfg(target_os = "linux")]
        assert_eq!(describe(None, Some(6)), "was killed by signal 6 (SIGABRT)");
    }

    #[test]
    fn alive_tells_a_live_process_from_a_reaped_one() {
        assert!(alive(std::process::id()));
        let tag = StepTag::next();
        let mut child = spawn(&mut Command::new("true"), &tag).unwrap();
        let pid = child.id();
        wait(&mut child, &tag, None).unwrap();
        assert!(!alive(pid), "{:?}", state(pid as i32));
        assert!(!alive(u32::MAX));
    }
}
