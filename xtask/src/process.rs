//! Child processes that can be stopped as a whole tree, and Ctrl-C as an orderly stop.
//!
//! Every step runs as the leader of its own process group. To stop it (a timeout, Ctrl-C,
//! SIGTERM) the xtask sends SIGINT to the leader (uv forwards it to pytest, which then
//! writes its report of what ran), waits `GRACE`, then kills the whole group. When a step
//! ends, whatever it left running in its group is killed, so no test leaves a stray process.
//!
//! Because the children have their own groups, a terminal's Ctrl-C reaches only the xtask,
//! which stops them in this order. Unix only, like the rest of the xtask; the three libc
//! calls are declared here rather than pulling in a crate for them.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn signal(signum: i32, handler: usize) -> usize;
}

/// How long a stopped step gets to write its report before its group is killed.
pub const GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_: i32) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// From now on Ctrl-C and SIGTERM stop the run in order instead of killing the xtask.
/// A second one skips the grace period.
pub fn handle_interrupts() {
    let handler = on_signal as extern "C" fn(i32) as usize;
    // SAFETY: the handler only touches an atomic, which is async-signal-safe.
    unsafe {
        signal(SIGINT, handler);
        signal(SIGTERM, handler);
    }
}

/// Whether Ctrl-C or SIGTERM arrived.
pub fn interrupted() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

/// Why a step was stopped before it ended by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    TimedOut,
    Interrupted,
}

/// Spawns `command` as the leader of a new process group.
pub fn spawn(command: &mut Command) -> io::Result<Child> {
    command.process_group(0).spawn()
}

/// Waits for `child`, stopping it at `deadline` or on an interrupt; then kills whatever is
/// left in its process group.
pub fn wait(child: &mut Child, deadline: Instant) -> io::Result<(ExitStatus, Option<Stop>)> {
    let group = child.id() as i32;
    let mut stopping: Option<(Stop, Instant)> = None;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let now = Instant::now();
        match stopping {
            None => {
                let stop = if interrupted() {
                    Some(Stop::Interrupted)
                } else if now >= deadline {
                    Some(Stop::TimedOut)
                } else {
                    None
                };
                if let Some(stop) = stop {
                    signal_pid(group, SIGINT);
                    stopping = Some((stop, now));
                }
            }
            Some((_, since)) => {
                if now >= since + GRACE || SIGNALS.load(Ordering::SeqCst) > 1 {
                    signal_pid(-group, SIGKILL);
                }
            }
        }
        std::thread::sleep(POLL);
    };
    // Anything the step started and left behind (a server, a `sleep` in a hung test).
    signal_pid(-group, SIGKILL);
    Ok((status, stopping.map(|(stop, _)| stop)))
}

fn signal_pid(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; ESRCH (already gone) is fine.
    unsafe {
        kill(pid, sig);
    }
}

/// Whether a process with this id exists (for pruning the directories of dead runs).
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let result = unsafe { kill(pid as i32, 0) };
    result == 0 || io::Error::last_os_error().raw_os_error() == Some(1 /* EPERM */)
}

/// How a process ended, for people: "exited with 1", "was killed by signal 9 (SIGKILL)".
pub fn describe(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}{}", signal_name(sig)),
        (None, None) => "ended without a status".to_string(),
    }
}

/// ` (SIGABRT)` for the signals a test process commonly dies of.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => " (SIGHUP)",
        2 => " (SIGINT)",
        4 => " (SIGILL)",
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        8 => " (SIGFPE)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        13 => " (SIGPIPE)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn a_step_past_its_deadline_is_stopped_with_its_whole_group() {
        // The shell leaves a grandchild that ignores SIGINT; both must be gone.
        let dir = std::env::temp_dir().join(format!("xtask-process-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("grandchild.pid");
        let script = format!(
            "trap '' INT; sleep 600 & echo $! > {}; wait",
            pidfile.display()
        );
        let mut child = spawn(Command::new("sh").args(["-c", &script])).unwrap();
        let clock = Instant::now();
        while !pidfile.exists() || std::fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
            std::thread::sleep(POLL);
        }
        let (status, stop) = wait(&mut child, Instant::now()).unwrap();
        assert_eq!(stop, Some(Stop::TimedOut));
        assert_eq!(
            status.signal(),
            Some(SIGKILL),
            "{}",
            describe(status.code(), status.signal())
        );
        assert!(
            clock.elapsed() >= GRACE,
            "SIGINT was ignored, so it waited the grace"
        );
        let grandchild: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let state = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for init to reap it.
        assert!(state.is_empty() || state.contains(") Z"), "{state}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn statuses_are_described_with_signal_names() {
        assert_eq!(describe(Some(1), None), "exited with 1");
        assert_eq!(describe(None, Some(6)), "was killed by signal 6 (SIGABRT)");
    }
}
