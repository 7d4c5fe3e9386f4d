//! Secrets never leave the xtask: the values of environment variables whose names look
//! secret (or that the manifest lists) are replaced by `***`, and URLs lose their user-info,
//! in everything the xtask writes: logs, JUnit, run.json and the terminal.

use std::io::{self, Write};

/// What replaces a secret value.
pub const MASK: &str = "***";
/// Parts of a variable name that make its value a secret (compared case-insensitively).
pub const SECRET_NAME_PARTS: &[&str] = &["KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL"];
/// Shorter values are not masked: masking `1` or `on` everywhere would destroy every log
/// and protect nothing.
pub const MIN_SECRET_LEN: usize = 4;

/// Whether a variable called `name` holds a secret, given the manifest's extra `listed` names.
pub fn is_secret_name(name: &str, listed: &[String]) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_PARTS.iter().any(|part| upper.contains(part)) || listed.iter().any(|l| l == name)
}

#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// Longest first, so a value that contains another is masked whole.
    secrets: Vec<Vec<u8>>,
}

impl Redactor {
    /// Masks the secret-looking values among `vars` (and those named in `listed`).
    pub fn new<K: AsRef<str>, V: AsRef<str>>(
        vars: impl IntoIterator<Item = (K, V)>,
        listed: &[String],
    ) -> Redactor {
        let mut secrets: Vec<Vec<u8>> = vars
            .into_iter()
            .filter(|(name, value)| {
                value.as_ref().len() >= MIN_SECRET_LEN && is_secret_name(name.as_ref(), listed)
            })
            .map(|(_, value)| value.as_ref().as_bytes().to_vec())
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        secrets.dedup();
        Redactor { secrets }
    }

    /// The secrets of this process's environment, plus those of `extra` (a suite's `env`).
    pub fn from_env(extra: &[(String, String)], listed: &[String]) -> Redactor {
        let inherited = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        Redactor::new(inherited.chain(extra.iter().cloned()), listed)
    }

    /// `bytes` with every secret masked and every URL's user-info removed.
    pub fn bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for secret in &self.secrets {
            out = replace_all(&out, secret, MASK.as_bytes());
        }
        strip_user_info(&out)
    }

    pub fn text(&self, text: &str) -> String {
        // Masking swaps whole UTF-8 sequences for ASCII, and stripping user-info removes
        // runs that end at an ASCII `@`, so valid UTF-8 stays valid.
        String::from_utf8(self.bytes(text.as_bytes())).expect("redaction keeps UTF-8 valid")
    }

    /// How many bytes at the end of a chunk may be the start of something to mask.
    fn lookbehind(&self) -> usize {
        let longest = self.secrets.first().map_or(0, Vec::len);
        longest.max(URL_AUTHORITY_MAX)
    }
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = find(rest, needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, tail) = needle.split_first()?;
    let mut from = 0;
    while let Some(offset) = haystack[from..].iter().position(|&b| b == first) {
        let at = from + offset;
        if haystack[at + 1..].starts_with(tail) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// User-info longer than this is not recognised (and not looked for across chunks).
const URL_AUTHORITY_MAX: usize = 256;

/// `scheme://user:pass@host` becomes `scheme://host`.
fn strip_user_info(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = find(rest, b"://") {
        let authority_start = at + 3;
        out.extend_from_slice(&rest[..authority_start]);
        rest = &rest[authority_start..];
        let end = rest
            .iter()
            .take(URL_AUTHORITY_MAX)
            .position(|&b| {
                b.is_ascii_whitespace() || b"/?#\"'<>`()[]{}|\\".contains(&b) || b < 0x20
            })
            .unwrap_or(rest.len().min(URL_AUTHORITY_MAX));
        if let Some(at_sign) = rest[..end].iter().rposition(|&b| b == b'@') {
            rest = &rest[at_sign + 1..];
        }
    }
    out.extend_from_slice(rest);
    out
}

/// A writer that masks what passes through it. Output is held back only while it could be
/// the start of a secret or a URL, and at most until the next newline or `flush`.
pub struct RedactingWriter<W: Write> {
    inner: W,
    redactor: Redactor,
    pending: Vec<u8>,
}

impl<W: Write> RedactingWriter<W> {
    pub fn new(inner: W, redactor: Redactor) -> Self {
        RedactingWriter {
            inner,
            redactor,
            pending: Vec::new(),
        }
    }

    /// Writes out what is safe to write: whole lines, and of a long unfinished line all
    /// but its last few bytes.
    fn drain(&mut self, all: bool) -> io::Result<()> {
        let cut = if all {
            self.pending.len()
        } else if let Some(newline) = self.pending.iter().rposition(|&b| b == b'\n') {
            newline + 1
        } else if self.pending.len() > 64 * 1024 {
            self.safe_cut(self.pending.len() - self.redactor.lookbehind())
        } else {
            0
        };
        if cut == 0 {
            return Ok(());
        }
        let masked = self.redactor.bytes(&self.pending[..cut]);
        self.inner.write_all(&masked)?;
        self.pending.drain(..cut);
        Ok(())
    }

    /// A place at or before `cut` that splits no secret and no URL: after a whitespace when
    /// there is one nearby (neither contains any), and never inside a secret.
    fn safe_cut(&self, cut: usize) -> usize {
        let window = self.redactor.lookbehind();
        let from = cut.saturating_sub(window);
        let mut cut = match self.pending[from..cut]
            .iter()
            .rposition(|b| b.is_ascii_whitespace())
        {
            Some(at) => from + at + 1,
            None => cut,
        };
        for secret in &self.redactor.secrets {
            let start = cut.saturating_sub(secret.len() - 1);
            let end = (cut + secret.len() - 1).min(self.pending.len());
            if let Some(at) = find(&self.pending[start..end], secret) {
                cut = cut.min(start + at);
            }
        }
        cut
    }

    /// Writes what is held back and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.drain(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.drain(false)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain(true)?;
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        Redactor::new(
            [
                ("OPENAI_API_KEY", "sk-live-123"),
                ("GITHUB_TOKEN", "ghp_abcdef"),
                ("db_password", "hunter2"),
                ("MY_CUSTOM", "custom-value"),
                ("SHORT_KEY", "abc"),
                ("HOME", "/root"),
            ],
            &["MY_CUSTOM".to_string()],
        )
    }

    #[test]
    fn secret_looking_and_listed_values_are_masked() {
        let text = "key=sk-live-123 tok=ghp_abcdef pw=hunter2 custom-value abc /root";
        assert_eq!(
            redactor().text(text),
            "key=*** tok=*** pw=*** *** abc /root"
        );
    }

    #[test]
    fn urls_lose_their_user_info_only() {
        let r = Redactor::default();
        assert_eq!(
            r.text("get http://user:pass@example.com/x and https://tok@h:8080?q=a@b"),
            "get http://example.com/x and https://h:8080?q=a@b"
        );
        assert_eq!(
            r.text("mail me@example.com, see http://host/a@b"),
            "mail me@example.com, see http://host/a@b"
        );
        assert_eq!(r.text("'postgres://u:p@db'"), "'postgres://db'");
    }

    #[test]
    fn invalid_utf8_passes_through_around_masks() {
        let r = redactor();
        assert_eq!(
            r.bytes(b"\xff\xfesk-live-123\xc3"),
            b"\xff\xfe***\xc3".to_vec()
        );
    }

    #[test]
    fn a_secret_split_across_writes_is_still_masked() {
        let mut w = RedactingWriter::new(Vec::new(), redactor());
        for piece in [
            "no newline here sk-li",
            "ve-1",
            "23 and more\nnext ",
            "line",
        ] {
            w.write_all(piece.as_bytes()).unwrap();
        }
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(out, "no newline here *** and more\nnext line");
    }

    #[test]
    fn a_long_line_is_written_before_it_ends_and_still_masked() {
        let mut w = RedactingWriter::new(Vec::new(), redactor());
        let long = "x".repeat(100_000);
        w.write_all(long.as_bytes()).unwrap();
        w.write_all(b"sk-live-").unwrap();
        w.write_all(b"123").unwrap();
        assert!(
            w.inner.len() > 90_000,
            "most of the line is written already"
        );
        let out = w.finish().unwrap();
        assert_eq!(out, format!("{long}***").into_bytes());
    }

    #[test]
    fn a_long_line_is_never_cut_inside_a_secret_or_a_url() {
        for tail_len in 0..300 {
            let mut w = RedactingWriter::new(Vec::new(), redactor());
            let line = format!(
                "{}sk-live-123{} http://u:hunter9@h/{}",
                "x".repeat(70_000),
                "y".repeat(tail_len),
                "z".repeat(tail_len)
            );
            w.write_all(line.as_bytes()).unwrap();
            let out = String::from_utf8(w.finish().unwrap()).unwrap();
            assert!(
                !out.contains("sk-live") && !out.contains("hunter9"),
                "{tail_len}"
            );
        }
    }
}
