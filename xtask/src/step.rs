//! The step layer: an `Invocation` run through the process layer, its output masked on the
//! way to where it goes (a suite's log, or memory for a check or a query), stopped at its
//! deadline or on an interrupt. Every child the xtask starts goes through here.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::invocation::{shell_line, Invocation};
use crate::model::StepRecord;
use crate::process::{self, StepTag, Stop};
use crate::redact::{RedactingWriter, Redactor};

/// How long the output waits for its last bytes once a step's processes are gone.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// What a step run into a log learned besides its status.
#[derive(Debug, Default)]
pub struct Heard {
    /// The end of what the step printed (at most `OUTPUT_TAIL` bytes), masked: where pytest
    /// explains an exit without a report (a conftest that failed to import, a bad `-m`).
    pub output: String,
}

/// How much of a step's output `Heard` keeps.
pub const OUTPUT_TAIL: usize = 64 * 1024;

/// A second place a step's output goes as it is written, besides the log (the terminal, with
/// `--no-capture`), shared by every step of a run. It gets the log's bytes: already masked.
pub type Also = Arc<Mutex<dyn Write + Send>>;

/// Writes `bytes` to `also`, flushed; a terminal that went away is not the step's failure.
fn tell(also: Option<&Also>, bytes: &[u8]) {
    if let Some(also) = also {
        let mut out = also.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = out.write_all(bytes).and_then(|()| out.flush());
    }
}

/// The log, and what else sees its bytes as they are written.
struct Tee {
    log: File,
    also: Option<Also>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.log.write_all(buf)?;
        tell(self.also.as_ref(), buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.log.flush()
    }
}

/// Runs `invocation` with stdout and stderr interleaved, as written, into `log`, masked,
/// and into `also` as well when there is one.
pub fn run_into_log(
    step: &'static str,
    invocation: &Invocation,
    deadline: Option<Instant>,
    log: &mut File,
    redactor: &Redactor,
    also: Option<&Also>,
) -> anyhow::Result<(StepRecord, Option<Stop>, Heard)> {
    let line = format!(
        "xtask: {step}: {}\n",
        redactor.text(&shell_line(invocation))
    );
    log.write_all(line.as_bytes())
        .context("writing the suite log")?;
    tell(also, line.as_bytes());
    let (reader, writer) = std::io::pipe().context("creating a pipe for the step's output")?;
    let mut command = invocation.command();
    command
        .stdin(Stdio::null())
        .stdout(writer.try_clone().context("sharing the output pipe")?)
        .stderr(writer);
    let tag = StepTag::next();
    let clock = Instant::now();
    let started = crate::model::now();
    let spawned = process::spawn(&mut command, &tag);
    // The command holds the pipe's write end: close it here so the copier sees end-of-file
    // when the step's processes are gone.
    drop(command);
    let mut child = spawned.with_context(|| format!("running `{}`", invocation.argv[0]))?;

    let sink = log.try_clone().context("sharing the suite log")?;
    let sink = Tee {
        log: sink,
        also: also.cloned(),
    };
    // The tail is kept of the masked output: a cut of raw output could leave the end of a
    // secret that masking would no longer recognise.
    let copier = copy(
        reader,
        RedactingWriter::new(
            TailTap {
                inner: sink,
                tail: Tail::default(),
            },
            redactor.clone(),
        ),
        COPY_PAUSE,
    );
    let (status, stop) = process::wait(&mut child, &tag, deadline)
        .with_context(|| format!("waiting for `{}`", invocation.argv[0]))?;
    let heard = match copier.recv_timeout(OUTPUT_DRAIN) {
        Ok(tail) => Heard {
            output: redactor.text(&String::from_utf8_lossy(&tail.0)),
        },
        Err(_) => {
            writeln!(log, "\nxtask: {step}: a process that left the suite's process group still holds its output; the log stops here").ok();
            Heard::default()
        }
    };
    let record = StepRecord {
        step,
        argv: invocation.argv.clone(),
        exit_code: status.code(),
        signal: status.signal(),
        started,
        duration: clock.elapsed(),
        skipped: None,
        slice: None,
    };
    let stopped = match stop {
        Some(Stop::TimedOut) => " (stopped: the suite's timeout was reached)",
        Some(Stop::Interrupted) => " (stopped: interrupted)",
        None => "",
    };
    let line = format!(
        "xtask: {step}: {}{stopped} after {:.2}s\n",
        record.describe(),
        record.duration.as_secs_f64()
    );
    log.write_all(line.as_bytes())
        .context("writing the suite log")?;
    tell(also, line.as_bytes());
    Ok((record, stop, heard))
}

/// A finished command's status and its (masked, capped) output, kept apart.
#[derive(Debug)]
pub struct Captured {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub stop: Option<Stop>,
}

impl Captured {
    pub fn success(&self) -> bool {
        self.code == Some(0) && self.stop.is_none()
    }

    pub fn describe(&self) -> String {
        let how = process::describe(self.code, self.signal);
        match self.stop {
            Some(Stop::TimedOut) => format!("{how} (stopped: it ran out of time)"),
            Some(Stop::Interrupted) => format!("{how} (stopped: interrupted)"),
            None => how,
        }
    }
}

/// Most of a captured stream that is kept: its end, where tools explain themselves.
const CAPTURE_BYTES: usize = 256 * 1024;

/// Runs `invocation` with its output captured, for checks that read what a tool printed.
pub fn capture(
    invocation: &Invocation,
    deadline: Option<Instant>,
    redactor: &Redactor,
) -> anyhow::Result<Captured> {
    let (out_reader, out_writer) = std::io::pipe().context("creating a pipe")?;
    let (err_reader, err_writer) = std::io::pipe().context("creating a pipe")?;
    let mut command = invocation.command();
    command
        .stdin(Stdio::null())
        .stdout(out_writer)
        .stderr(err_writer);
    let tag = StepTag::next();
    let spawned = process::spawn(&mut command, &tag);
    drop(command);
    let mut child =
        spawned.with_context(|| format!("could not start `{}`", shell_line(invocation)))?;
    // Masked before the tail is cut (see `run_into_log`).
    let stdout = copy(
        out_reader,
        RedactingWriter::new(Tail::default(), redactor.clone()),
        NO_PAUSE,
    );
    let stderr = copy(
        err_reader,
        RedactingWriter::new(Tail::default(), redactor.clone()),
        NO_PAUSE,
    );
    let (status, stop) = process::wait(&mut child, &tag, deadline)
        .with_context(|| format!("waiting for `{}`", invocation.argv[0]))?;
    let text = |tail: mpsc::Receiver<Tail>| {
        let bytes = tail
            .recv_timeout(OUTPUT_DRAIN)
            .map(|t| t.0)
            .unwrap_or_default();
        redactor.text(&String::from_utf8_lossy(&bytes))
    };
    Ok(Captured {
        code: status.code(),
        signal: status.signal(),
        stdout: text(stdout),
        stderr: text(stderr),
        stop,
    })
}

/// A finished command's whole stdout, as bytes and unmasked, and its status: for tools
/// whose answer is data (git's file lists), where a tail or a mask would change it.
#[derive(Debug)]
pub struct Answer {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stop: Option<Stop>,
    pub stdout: Vec<u8>,
    /// The end of stderr, masked.
    pub stderr: String,
}

impl Answer {
    pub fn success(&self) -> bool {
        self.code == Some(0) && self.stop.is_none()
    }

    pub fn describe(&self) -> String {
        Captured {
            code: self.code,
            signal: self.signal,
            stdout: String::new(),
            stderr: String::new(),
            stop: self.stop,
        }
        .describe()
    }
}

/// Runs `invocation` and keeps its whole stdout, up to `max` bytes: more is an error
/// rather than a silently shortened answer.
pub fn answer(
    invocation: &Invocation,
    deadline: Option<Instant>,
    max: usize,
    redactor: &Redactor,
) -> anyhow::Result<Answer> {
    let (out_reader, out_writer) = std::io::pipe().context("creating a pipe")?;
    let (err_reader, err_writer) = std::io::pipe().context("creating a pipe")?;
    let mut command = invocation.command();
    command
        .stdin(Stdio::null())
        .stdout(out_writer)
        .stderr(err_writer);
    let tag = StepTag::next();
    let spawned = process::spawn(&mut command, &tag);
    drop(command);
    let mut child =
        spawned.with_context(|| format!("could not start `{}`", shell_line(invocation)))?;
    let stdout = copy(
        out_reader,
        Whole {
            bytes: Vec::new(),
            max,
            over: false,
        },
        NO_PAUSE,
    );
    let stderr = copy(
        err_reader,
        RedactingWriter::new(Tail::default(), redactor.clone()),
        NO_PAUSE,
    );
    let (status, stop) = process::wait(&mut child, &tag, deadline)
        .with_context(|| format!("waiting for `{}`", invocation.argv[0]))?;
    let whole = stdout
        .recv_timeout(OUTPUT_DRAIN)
        .context("its output did not end with it")?;
    anyhow::ensure!(
        !whole.over,
        "`{}` printed more than {max} bytes",
        shell_line(invocation)
    );
    let stderr = stderr
        .recv_timeout(OUTPUT_DRAIN)
        .map(|t| t.0)
        .unwrap_or_default();
    Ok(Answer {
        code: status.code(),
        signal: status.signal(),
        stop,
        stdout: whole.bytes,
        stderr: redactor.text(&String::from_utf8_lossy(&stderr)),
    })
}

/// All of a stream, up to `max` bytes (past that it only notes that there was more).
struct Whole {
    bytes: Vec<u8>,
    max: usize,
    over: bool,
}

impl Write for Whole {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.max {
            self.over = true;
        } else {
            self.bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Finish for Whole {
    type Done = Whole;
    fn finish(self) -> Whole {
        self
    }
}

/// Copies `reader` into `writer` on its own thread; the receiver gets the writer back,
/// flushed, at end-of-file.
pub(crate) fn copy<W: Finish + Send + 'static>(
    mut reader: std::io::PipeReader,
    mut writer: W,
    pause: Duration,
) -> mpsc::Receiver<W::Done> {
    let (done, finished) = mpsc::channel();
    widen(&reader);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if writer.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    // A test runner flushes after every test's progress mark: reading each
                    // one as it comes wakes this thread 20,000 times for 20,000 tests and
                    // slows the writer. Let a little accumulate instead (the pipe is
                    // widened so the writer does not block meanwhile).
                    // A query's answer (`answer`, `capture`) is read at once, [`NO_PAUSE`]: it
                    // ends with its process, and the caller waits for all of it.
                    if n < buf.len() && !pause.is_zero() {
                        std::thread::sleep(pause);
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = done.send(writer.finish());
    });
    finished
}

/// How long the copier lets output accumulate between reads: short enough for streamed
/// output to look live.
pub(crate) const COPY_PAUSE: Duration = Duration::from_millis(15);
/// No pause between reads: for output read whole, at once.
pub(crate) const NO_PAUSE: Duration = Duration::ZERO;

/// Gives the pipe a 1 MiB buffer (Linux), so a writer does not wait while the copier
/// pauses. Elsewhere, or if refused, the default buffer serves.
fn widen(reader: &std::io::PipeReader) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: F_SETPIPE_SZ on a pipe descriptor this function borrows; no memory is
        // passed.
        unsafe {
            libc::fcntl(reader.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = reader;
}

/// A writer whose end is worth something to the caller.
pub(crate) trait Finish: Write {
    type Done: Send + 'static;
    fn finish(self) -> Self::Done;
}

/// The last `CAPTURE_BYTES` (or another limit) of a stream.
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    /// Adds `buf`, dropping the start when it holds more than twice `limit`.
    fn keep(&mut self, buf: &[u8], limit: usize) {
        self.0.extend_from_slice(buf);
        if self.0.len() > 2 * limit {
            let cut = self.0.len() - limit;
            self.0.drain(..cut);
        }
    }

    /// Keeps only the last `limit` bytes.
    fn cut(&mut self, limit: usize) {
        let cut = self.0.len().saturating_sub(limit);
        self.0.drain(..cut);
    }
}

impl Write for Tail {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.keep(buf, CAPTURE_BYTES);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A masked stream: everything held back is written at the end.
impl<W: Finish> Finish for RedactingWriter<W> {
    type Done = W::Done;
    fn finish(self) -> W::Done {
        self.into_inner().finish()
    }
}

impl Finish for File {
    type Done = ();
    fn finish(self) {}
}

impl Finish for Tee {
    type Done = ();
    fn finish(self) {}
}

impl Finish for Tail {
    type Done = Tail;
    fn finish(mut self) -> Tail {
        self.cut(CAPTURE_BYTES);
        self
    }
}

/// Passes output through to the log and keeps its end, for the classifier.
struct TailTap<W: Write> {
    inner: W,
    tail: Tail,
}

impl<W: Write> Write for TailTap<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write_all(buf)?;
        self.tail.keep(buf, OUTPUT_TAIL);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write + Send + 'static> Finish for TailTap<W> {
    type Done = Tail;
    fn finish(mut self) -> Tail {
        self.tail.cut(OUTPUT_TAIL);
        self.tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept end of a command's output starts inside a secret: masked before the cut,
    /// no part of it is left.
    #[test]
    fn a_tail_cut_inside_a_secret_keeps_no_part_of_it() {
        let secret = "SECRET-VALUE-123";
        let redactor = Redactor::new([("API_TOKEN", secret)], &[]);
        // Raw, the last CAPTURE_BYTES would start 5 bytes into the secret.
        let after = CAPTURE_BYTES - secret.len() + 5;
        let script =
            format!("import sys; sys.stdout.write('x' * 1000 + '{secret}' + 'y' * {after})");
        let invocation = Invocation::new(
            vec!["python3".into(), "-c".into(), script],
            std::path::Path::new("."),
            Vec::new(),
        );
        let captured = capture(&invocation, None, &redactor).unwrap();
        assert!(captured.success(), "{}", captured.stderr);
        assert!(
            !captured.stdout.contains("VALUE-123"),
            "{}",
            &captured.stdout[..40]
        );
        assert!(captured.stdout.contains("***y"));
    }

    #[test]
    fn the_tail_keeps_the_end_of_what_passed_through() {
        let mut tap = TailTap {
            inner: Vec::new(),
            tail: Tail::default(),
        };
        let line = "x".repeat(1000) + "\n";
        for _ in 0..(2 * OUTPUT_TAIL / line.len() + 10) {
            tap.write_all(line.as_bytes()).unwrap();
        }
        tap.write_all(b"the end").unwrap();
        let tail = tap.finish();
        assert_eq!(tail.0.len(), OUTPUT_TAIL);
        assert!(tail.0.ends_with(b"x\nthe end"));
    }
}
