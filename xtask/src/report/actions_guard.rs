//! In GitHub Actions, nothing the xtask prints acts as a workflow command unless the xtask
//! meant it.
//!
//! The runner reads every line of a step's stdout and stderr (lines end at `\n`, `\r` or
//! `\r\n`) and obeys two forms of command: a line that starts with `::` once its leading
//! whitespace is trimmed (`::error file=x::message`), and `##[command]data` anywhere in a
//! line. The xtask prints text that came from elsewhere on both streams: what tests print,
//! services' and prerequisites' output, file names, manifest values, error messages. So
//! when `GITHUB_ACTIONS=true`, [`install`] puts a guard between the process and its real
//! stdout and stderr: file descriptors 1 and 2 become pipes, and a thread per stream copies
//! them through a [`Neutraliser`], which turns a leading `::` into `: :` and `##[` into
//! `## [` (visible, and not ignorable the way a zero-width character is by a
//! culture-aware comparison), and nothing else. Every child that inherits the xtask's
//! stdout or stderr goes through the guard as well, and so do clap's and the panic hook's
//! messages: no print site has to remember it.
//!
//! The commands the xtask means (groups, annotations) are written by [`command`], which
//! prefixes the line with a marker holding a random token only this process knows; the
//! guard removes the marker and passes that one line through unchanged. Without the guard
//! (outside GitHub Actions) [`command`] prints the line as it is.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The marker of an intended command's line: set once the guard is installed.
static MARKER: OnceLock<Vec<u8>> = OnceLock::new();

/// How long the guard waits at exit for the last output of a stream whose pipe someone
/// else (a child that outlived its step) still holds open.
const DRAIN: Duration = Duration::from_secs(2);

/// Prints `line` (one workflow command, without its newline) on stdout so that the runner
/// obeys it: through the guard's marker when the guard is installed. `##[` in it is
/// neutralised like anywhere else, so a command's own data can hold no second command.
pub fn command(line: &str) -> io::Result<()> {
    let mut text = Vec::with_capacity(line.len() + 64);
    if let Some(marker) = MARKER.get() {
        text.extend_from_slice(marker);
    }
    // Only `##[` is at stake in an intended command: its leading `::` is the point.
    let mut neutral = Neutraliser {
        blank: false,
        ..Neutraliser::default()
    };
    neutral.feed(line.as_bytes(), &mut text);
    text.push(b'\n');
    let mut out = io::stdout().lock();
    out.write_all(&text)?;
    out.flush()
}

/// The guard over this process's stdout and stderr; [`Guard::finish`] restores them.
pub struct Guard {
    streams: Vec<Stream>,
}

struct Stream {
    fd: RawFd,
    /// The real stream, put back at the end.
    real: OwnedFd,
    copier: JoinHandle<()>,
}

/// Installs the guard when `GITHUB_ACTIONS=true` (see the module documentation). `None`
/// elsewhere, or when the descriptors cannot be rearranged (then output goes out as it is,
/// which is what it did before the guard existed; the error says why).
pub fn install() -> io::Result<Option<Guard>> {
    if !super::github::enabled() {
        return Ok(None);
    }
    let token = super::github::stop_token();
    let _ = MARKER.set(format!("\u{1}{token}\u{1}").into_bytes());
    let marker = MARKER.get().expect("set above").clone();
    let mut streams = Vec::new();
    for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // Flush what std holds before the descriptor changes under it.
        let _ = io::stdout().flush();
        let _ = io::stderr().flush();
        // SAFETY: F_DUPFD_CLOEXEC duplicates a descriptor this process owns into a new one
        // that children do not inherit; the result is checked before it is used.
        let real = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if real < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `real` was just returned by fcntl and is owned by nothing else.
        let real = unsafe { OwnedFd::from_raw_fd(real) };
        let (reader, writer) = io::pipe()?;
        // SAFETY: dup2 onto 1 or 2, which this process owns; the old stream stays open as
        // `real`. The pipe's write end becomes the stream every print and child uses.
        if unsafe { libc::dup2(writer.as_raw_fd(), fd) } < 0 {
            return Err(io::Error::last_os_error());
        }
        drop(writer);
        let out = real.try_clone()?;
        let marker = marker.clone();
        let copier = std::thread::Builder::new()
            .name(format!("actions-guard-{fd}"))
            .spawn(move || copy(reader, std::fs::File::from(out), marker))?;
        streams.push(Stream { fd, real, copier });
    }
    Ok(Some(Guard { streams }))
}

impl Guard {
    /// Puts the real stdout and stderr back and waits (a little) for the last output.
    pub fn finish(self) {
        let _ = io::stdout().flush();
        let _ = io::stderr().flush();
        for stream in &self.streams {
            // SAFETY: dup2 of a descriptor this guard owns onto 1 or 2; it closes the
            // pipe's write end there, so the copier sees end-of-file.
            unsafe { libc::dup2(stream.real.as_raw_fd(), stream.fd) };
        }
        let deadline = Instant::now() + DRAIN;
        for stream in self.streams {
            while !stream.copier.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if stream.copier.is_finished() {
                let _ = stream.copier.join();
            }
        }
    }
}

fn copy(mut reader: io::PipeReader, mut out: std::fs::File, marker: Vec<u8>) {
    let mut neutral = Neutraliser {
        marker,
        ..Neutraliser::default()
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut text = Vec::with_capacity(buf.len() + 1024);
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                text.clear();
                neutral.feed(&buf[..n], &mut text);
                if out.write_all(&text).is_err() {
                    // Nobody reads the real stream any more: keep draining the pipe, so
                    // that no writer blocks on it.
                    continue;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    text.clear();
    neutral.finish(&mut text);
    let _ = out.write_all(&text);
}

/// Turns a stream of text into one in which no line is a workflow command, changing as
/// little as it can: a `::` that begins a line after whitespace (Unicode's, which the
/// runner trims) becomes `: :`, and `##[` becomes `## [`. Lines end at `\n` and `\r`, as
/// the runner reads them. A line that starts with `marker` (when there is one) is passed
/// through unchanged, without the marker: an intended command.
#[derive(Debug)]
pub struct Neutraliser {
    marker: Vec<u8>,
    /// Only whitespace so far on this line.
    blank: bool,
    /// Nothing written yet on this line.
    column0: bool,
    /// The line's first non-whitespace character was a `:`, just now.
    colon: bool,
    /// How many `#` came just now, in a row (at most 2 are counted).
    hashes: u8,
    /// The bytes of a multi-byte character begun in leading whitespace.
    partial: Vec<u8>,
    /// How many bytes of the marker matched so far.
    matched: usize,
    /// Inside an intended command's line: passed through unchanged.
    raw: bool,
}

impl Default for Neutraliser {
    fn default() -> Self {
        Neutraliser {
            marker: Vec::new(),
            blank: true,
            column0: true,
            colon: false,
            hashes: 0,
            partial: Vec::new(),
            matched: 0,
            raw: false,
        }
    }
}

impl Neutraliser {
    /// Neutralises `input` onto `out`; state carries over to the next call.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.byte(b, out);
        }
    }

    /// Writes what is held (an unfinished character or marker).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let held: Vec<u8> = self.marker[..self.matched].to_vec();
        self.matched = 0;
        for b in held {
            self.plain(b, out);
        }
        out.append(&mut self.partial);
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.raw {
            out.push(b);
            if b == b'\n' || b == b'\r' {
                self.raw = false;
                self.new_line();
            }
            return;
        }
        if self.matched > 0 {
            if b == self.marker[self.matched] {
                self.matched += 1;
                if self.matched == self.marker.len() {
                    self.matched = 0;
                    if !self.column0 {
                        out.push(b'\n');
                    }
                    out.append(&mut self.partial);
                    self.raw = true;
                }
                return;
            }
            let held: Vec<u8> = self.marker[..self.matched].to_vec();
            self.matched = 0;
            for h in held {
                self.plain(h, out);
            }
        }
        if !self.marker.is_empty() && b == self.marker[0] {
            self.matched = 1;
            return;
        }
        self.plain(b, out);
    }

    fn new_line(&mut self) {
        self.blank = true;
        self.column0 = true;
        self.colon = false;
        self.hashes = 0;
    }

    fn plain(&mut self, b: u8, out: &mut Vec<u8>) {
        if !self.partial.is_empty() {
            if b & 0xC0 == 0x80 {
                self.partial.push(b);
                let want = utf8_len(self.partial[0]);
                if self.partial.len() == want {
                    let white = std::str::from_utf8(&self.partial)
                        .ok()
                        .and_then(|s| s.chars().next())
                        .is_some_and(char::is_whitespace);
                    out.append(&mut self.partial);
                    if !white {
                        self.blank = false;
                    }
                }
                return;
            }
            // Not a character after all: what was held is text, and so is this byte.
            out.append(&mut self.partial);
            self.blank = false;
        }
        self.column0 = false;
        match b {
            b'\n' | b'\r' => {
                out.push(b);
                self.new_line();
            }
            b' ' | b'\t' | 0x0B | 0x0C if self.blank => out.push(b),
            0xC2..=0xF4 if self.blank => self.partial.push(b),
            b':' if self.blank => {
                out.push(b);
                self.blank = false;
                self.colon = true;
                self.hashes = 0;
            }
            b':' if self.colon => {
                out.extend_from_slice(b" :");
                self.colon = false;
            }
            b'#' => {
                out.push(b);
                self.hashes = (self.hashes + 1).min(2);
                self.blank = false;
                self.colon = false;
            }
            b'[' if self.hashes == 2 => {
                out.extend_from_slice(b" [");
                self.hashes = 0;
                self.colon = false;
            }
            _ => {
                out.push(b);
                self.blank = false;
                self.colon = false;
                self.hashes = 0;
            }
        }
    }
}

fn utf8_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// Serialized JSON as the runner cannot take for a command, with the same value: `#` only
/// occurs inside JSON strings, where `[` may be written `\u005b`. (A line of JSON never
/// starts with `::`.)
pub fn json(serialized: &str) -> String {
    serialized.replace("##[", "##\\u005b")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neutral(text: &str) -> String {
        let mut out = Vec::new();
        let mut n = Neutraliser::default();
        n.feed(text.as_bytes(), &mut out);
        n.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    /// What the runner obeys in `text`: lines (at `\n`, `\r`) that start with `::` once
    /// trimmed, and lines holding `##[`.
    pub fn commands(text: &str) -> Vec<&str> {
        text.split(['\n', '\r'])
            .filter(|l| l.trim_start().starts_with("::") || l.contains("##["))
            .collect()
    }

    #[test]
    fn no_line_is_a_command_afterwards() {
        let forged = "::error::a\n  ::warning file=x::b\r::group::c\n\u{3000}\u{a0}::notice::d\nsay ##[error]e\n#\u{85}::set-output name=x::y\n:: x\n";
        assert_eq!(commands(forged).len(), 6, "the test itself must see them");
        let out = neutral(forged);
        assert_eq!(commands(&out), Vec::<&str>::new(), "{out}");
        assert_eq!(
            out,
            ": :error::a\n  : :warning file=x::b\r: :group::c\n\u{3000}\u{a0}: :notice::d\nsay ## [error]e\n#\u{85}::set-output name=x::y\n: : x\n"
        );
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        for text in [
            "a::b ::c\n",
            "ok: done\n",
            "# heading [x]\n",
            "café ✓ \u{1F600}\n",
            "#[x] #a[b]\n",
        ] {
            assert_eq!(neutral(text), text);
        }
    }

    #[test]
    fn any_split_of_the_input_gives_the_same_output() {
        let text = "x\n \u{2003}::error::a ##[b]\nok ::c\n##[d\n";
        let whole = neutral(text);
        let bytes = text.as_bytes();
        for cut in 0..bytes.len() {
            let mut out = Vec::new();
            let mut n = Neutraliser::default();
            n.feed(&bytes[..cut], &mut out);
            n.feed(&bytes[cut..], &mut out);
            n.finish(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), whole, "cut at {cut}");
        }
    }

    #[test]
    fn a_marked_line_passes_unchanged_and_a_false_start_is_text() {
        let mut n = Neutraliser {
            marker: b"\x01tok\x01".to_vec(),
            ..Neutraliser::default()
        };
        let mut out = Vec::new();
        n.feed(
            b"partial\x01tok\x01::group::x\n::error::y\n\x01to::z\n",
            &mut out,
        );
        n.finish(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "partial\n::group::x\n: :error::y\n\x01to::z\n"
        );
    }

    #[test]
    fn json_keeps_its_value() {
        let value = serde_json::json!({"k": "##[error]x ##[y"});
        let text = json(&serde_json::to_string(&value).unwrap());
        assert!(!text.contains("##["), "{text}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
    }
}
