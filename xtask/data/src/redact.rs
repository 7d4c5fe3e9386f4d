//! Secrets never leave the xtask: in everything it writes (logs, JUnit, run.json and the
//! terminal), secret values are replaced by `***` and URLs lose their user-info.
//!
//! **Which values are secrets.** A variable's value is masked when the manifest lists the
//! variable in `secrets` (whatever the value, as long as it has at least 2 characters after
//! trimming: masking a single character everywhere would destroy every report and protect
//! nothing), or when its name looks secret and its value is not an ordinary word of
//! configuration. A name looks secret when one of its `_`/`-`/`.`-separated parts, in any
//! case, is or ends with KEY, TOKEN, SECRET, PASSWORD, PASSWD or CREDENTIAL (or their
//! plurals): `OPENAI_API_KEY`, `GITHUB_TOKEN`, `db_password` and `APIKEY` look secret,
//! `TOKENIZERS_PARALLELISM` and `UV_KEYRING_PROVIDER` do not. A value is ordinary, and left
//! alone, when after trimming it is shorter than 6 characters, a decimal number, or one of
//! [`ORDINARY_WORDS`] (`true`, `disabled`, `test`, ...): `SECRET_KEY=test` and
//! `SOME_TOKEN=1` are not masked, `OPENAI_API_KEY=sk-live-123` is.
//!
//! **Which forms are masked.** Each secret is looked for as written with its surrounding
//! whitespace trimmed, XML-escaped (`&lt; &gt; &amp; &quot; &apos;`, and `&#34; &#39;
//! &#x27;` as Python's escapers write them) and JSON-escaped (as serde_json and Python's
//! `json` write it, with or without `ensure_ascii`) and as Python's `repr()` shows it inside
//! either quote (pytest's assertion messages). Each line of a multi-line secret (a PEM
//! key) that has 6 characters or more after trimming is a secret of its own, so a secret
//! printed line by line is masked too.
//!
//! **Cut secrets.** Where text was shortened, a secret may be cut too: pytest's summary
//! ends a long message with `...`, its reprs keep a head and a tail around `...`, and the
//! xtask's own cuts of long texts end the head and start the tail with `...`. So next to a
//! cut marker (`...` or `…`) the part of a secret that is left is masked as well: the
//! longest run before the marker that is the start of a secret (in any of its forms) and
//! the longest run after it that is the end of one, from [`MIN_CUT_LEN`] characters on
//! (shorter ones would mask ordinary words next to every ellipsis, and say next to
//! nothing about the secret).
//!
//! **URLs.** `scheme://user:pass@host` becomes `scheme://host`, whatever the user-info holds
//! and however long it is: the authority after `://` ends at whitespace, a control
//! character, `/ ? # " < > \` or a backtick, and the user-info is everything up to its last
//! `@`.
//!
//! Structured output is masked before it is serialized ([`Redactor::json`], and
//! [`Redactor::text`] on each field), so masking can never damage its markup.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::ops::Range;

use memchr::memmem;

/// What replaces a secret value.
pub const MASK: &str = "***";
/// A part of a variable name that is or ends with one of these (compared case-insensitively)
/// makes the variable's value a secret.
pub const SECRET_NAME_PARTS: &[&str] = &[
    "KEY",
    "KEYS",
    "TOKEN",
    "TOKENS",
    "SECRET",
    "SECRETS",
    "PASSWORD",
    "PASSWORDS",
    "PASSWD",
    "PASSWDS",
    "CREDENTIAL",
    "CREDENTIALS",
];
/// Values of secret-looking variables that are shorter (in characters, after trimming) are
/// not masked; nor are shorter lines of a multi-line secret.
pub const MIN_SECRET_LEN: usize = 6;
/// The part of a secret left next to a cut marker is masked from this many characters.
pub const MIN_CUT_LEN: usize = 3;
/// What tools put where they shortened a text.
const CUT_MARKERS: [&str; 2] = ["...", "\u{2026}"];
/// Values of variables the manifest lists are masked from this length (after trimming).
pub const MIN_LISTED_LEN: usize = 2;
/// Values (compared case-insensitively, after trimming) that are configuration, not secrets,
/// even in a secret-looking variable.
pub const ORDINARY_WORDS: &[&str] = &[
    "true",
    "false",
    "yes",
    "no",
    "on",
    "off",
    "enable",
    "enabled",
    "disable",
    "disabled",
    "none",
    "null",
    "nil",
    "unset",
    "empty",
    "auto",
    "always",
    "never",
    "default",
    "required",
    "optional",
    "test",
    "tests",
    "testing",
    "dummy",
    "dev",
    "development",
    "local",
    "localhost",
    "stage",
    "staging",
    "prod",
    "production",
    "debug",
    "info",
    "warn",
    "warning",
    "error",
    "trace",
    "verbose",
    "quiet",
];

/// Whether a variable called `name` holds a secret, given the manifest's extra `listed`
/// names: see the module documentation.
pub fn is_secret_name(name: &str, listed: &[String]) -> bool {
    listed.iter().any(|l| l == name)
        || name.split(['_', '-', '.']).any(|part| {
            let part = part.to_ascii_uppercase();
            SECRET_NAME_PARTS.iter().any(|p| part.ends_with(p))
        })
}

/// Whether `value` is configuration rather than a secret, even in a secret-looking
/// variable: shorter than [`MIN_SECRET_LEN`] after trimming, a decimal number, or one of
/// [`ORDINARY_WORDS`].
pub fn is_ordinary_value(value: &str) -> bool {
    let value = value.trim();
    value.chars().count() < MIN_SECRET_LEN
        || is_decimal(value)
        || ORDINARY_WORDS.iter().any(|w| w.eq_ignore_ascii_case(value))
}

/// `12`, `-3`, `+0.25`.
fn is_decimal(value: &str) -> bool {
    let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int) && digits(frac)
}

#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// Every form of every secret (see the module documentation), deduplicated.
    needles: Vec<memmem::Finder<'static>>,
}

impl Redactor {
    /// Masks the secret values among `vars`, given the manifest's `listed` names.
    pub fn new<K: AsRef<str>, V: AsRef<str>>(
        vars: impl IntoIterator<Item = (K, V)>,
        listed: &[String],
    ) -> Redactor {
        let mut forms = Vec::new();
        for (name, value) in vars {
            let (name, value) = (name.as_ref(), value.as_ref().trim());
            let secret = if listed.iter().any(|l| l == name) {
                value.chars().count() >= MIN_LISTED_LEN
            } else {
                is_secret_name(name, &[]) && !is_ordinary_value(value)
            };
            if secret {
                secret_forms(value, &mut forms);
            }
        }
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        forms.dedup();
        let needles = forms
            .iter()
            .map(|form| memmem::Finder::new(form.as_bytes()).into_owned())
            .collect();
        Redactor { needles }
    }

    /// The secrets of this process's environment, plus those of `extra` (a suite's `env`).
    pub fn from_env(extra: &[(String, String)], listed: &[String]) -> Redactor {
        let inherited = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        Redactor::new(inherited.chain(extra.iter().cloned()), listed)
    }

    /// `bytes` with every secret masked and every URL's user-info removed. Bytes that are
    /// not UTF-8 pass through; valid UTF-8 stays valid.
    pub fn bytes(&self, bytes: &[u8]) -> Vec<u8> {
        self.redact(bytes).into_owned()
    }

    /// `text` with every secret masked and every URL's user-info removed.
    pub fn text(&self, text: &str) -> String {
        self.text_cow(text).into_owned()
    }

    /// [`Redactor::text`], borrowing `text` when there is nothing to mask in it.
    pub fn text_cow<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.redact(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Masks replace whole matches of UTF-8 needles (which start and end on character
            // boundaries) by ASCII, and user-info runs from after `://` to an `@`, so this
            // is always valid; the fallback only keeps this from ever panicking.
            Cow::Owned(bytes) => Cow::Owned(
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }

    /// `value` with every string leaf masked as by [`Redactor::text`]; object keys,
    /// numbers, booleans and nulls are left alone. Serialize the result: masking before
    /// serializing can never damage the JSON.
    pub fn json(&self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => match self.text_cow(&s) {
                Cow::Borrowed(_) => Value::String(s),
                Cow::Owned(masked) => Value::String(masked),
            },
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.json(v)).collect()),
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (k, self.json(v))).collect())
            }
            other => other,
        }
    }

    /// Both secrets and user-info are found in `input` as it is (not in each other's
    /// result), as the streaming writer finds them.
    fn redact<'a>(&self, input: &'a [u8]) -> Cow<'a, [u8]> {
        self.redact_after(input, false)
    }

    /// [`Redactor::redact`]; `after_cut`: `input` follows a cut marker (a stream's earlier
    /// write ended with one).
    fn redact_after<'a>(&self, input: &'a [u8], after_cut: bool) -> Cow<'a, [u8]> {
        let mut secrets = self.secret_ranges(input);
        let cut = self.cut_ranges(input, after_cut);
        if !cut.is_empty() {
            secrets.extend(cut.into_iter().map(|(masked, _)| masked));
            secrets = merged(secrets);
        }
        let user_info = user_info_ranges(input);
        if secrets.is_empty() && user_info.is_empty() {
            return Cow::Borrowed(input);
        }
        // What is replaced, and by what: user-info by nothing, the rest of each secret by
        // a mask. Disjoint, and sorted once sorted by start.
        let mut edits: Vec<(Range<usize>, &[u8])> =
            user_info.iter().map(|r| (r.clone(), &b""[..])).collect();
        for secret in secrets {
            let mut from = secret.start;
            let first = user_info.partition_point(|u| u.end <= secret.start);
            for u in user_info[first..]
                .iter()
                .take_while(|u| u.start < secret.end)
            {
                if from < u.start {
                    edits.push((from..u.start, MASK.as_bytes()));
                }
                from = from.max(u.end);
            }
            if from < secret.end {
                edits.push((from..secret.end, MASK.as_bytes()));
            }
        }
        edits.sort_unstable_by_key(|(r, _)| r.start);
        let mut out = Vec::with_capacity(input.len());
        let mut copied = 0;
        for (range, with) in edits {
            out.extend_from_slice(&input[copied..range.start]);
            out.extend_from_slice(with);
            copied = range.end;
        }
        out.extend_from_slice(&input[copied..]);
        Cow::Owned(out)
    }

    /// Where secrets occur in `haystack`: sorted, overlapping ones merged (adjacent ones are
    /// not, as they could not be across two writes of a stream).
    fn secret_ranges(&self, haystack: &[u8]) -> Vec<Range<usize>> {
        let mut found: Vec<Range<usize>> = Vec::new();
        for needle in &self.needles {
            let len = needle.needle().len();
            found.extend(needle.find_iter(haystack).map(|at| at..at + len));
        }
        merged(found)
    }

    /// The parts of secrets left next to the cut markers of `haystack` (see the module
    /// documentation), each with the span a stream must not split: the part and its marker.
    /// `after_cut`: `haystack` follows a marker.
    fn cut_ranges(&self, haystack: &[u8], after_cut: bool) -> Vec<(Range<usize>, Range<usize>)> {
        let mut found = Vec::new();
        if after_cut {
            let tail = self.secret_end_len(haystack);
            if tail > 0 {
                found.push((0..tail, 0..tail));
            }
        }
        for marker in cut_markers(haystack) {
            let head = self.secret_start_len(&haystack[..marker.start]);
            if head > 0 {
                found.push((
                    marker.start - head..marker.start,
                    marker.start - head..marker.end,
                ));
            }
            let tail = self.secret_end_len(&haystack[marker.end..]);
            if tail > 0 {
                found.push((
                    marker.end..marker.end + tail,
                    marker.start..marker.end + tail,
                ));
            }
        }
        found
    }

    /// How long the longest end of `before` is that is a proper start of a secret's form,
    /// of [`MIN_CUT_LEN`] characters or more; 0 if none.
    fn secret_start_len(&self, before: &[u8]) -> usize {
        let Some(&last) = before.last() else {
            return 0;
        };
        let mut best = 0;
        for needle in &self.needles {
            let needle = needle.needle();
            let proper = &needle[..needle.len() - 1];
            for len in memchr::memchr_iter(last, proper).map(|i| i + 1) {
                if len > best
                    && before.ends_with(&needle[..len])
                    && chars(&needle[..len]) >= MIN_CUT_LEN
                {
                    best = len;
                }
            }
        }
        best
    }

    /// How long the longest start of `after` is that is a proper end of a secret's form, of
    /// [`MIN_CUT_LEN`] characters or more; 0 if none.
    fn secret_end_len(&self, after: &[u8]) -> usize {
        let Some(&first) = after.first() else {
            return 0;
        };
        let mut best = 0;
        for needle in &self.needles {
            let needle = needle.needle();
            for from in memchr::memchr_iter(first, &needle[1..]).map(|i| i + 1) {
                let end = &needle[from..];
                if end.len() > best && after.starts_with(end) && chars(end) >= MIN_CUT_LEN {
                    best = end.len();
                }
            }
        }
        best
    }

    /// Whether `after` (text after a cut marker, up to the end of what has come) could still
    /// grow into the end of a secret: it is a shorter start of one.
    fn could_end_a_secret(&self, after: &[u8]) -> bool {
        let Some(&first) = after.first() else {
            return false;
        };
        self.needles.iter().any(|needle| {
            let needle = needle.needle();
            memchr::memchr_iter(first, &needle[1..])
                .map(|i| &needle[i + 1..])
                .any(|end| end.len() > after.len() && end.starts_with(after))
        })
    }

    /// Where the longest tail of `haystack` that is the start of a secret (and not a whole
    /// secret) begins; `haystack.len()` when there is none.
    fn partial_start(&self, haystack: &[u8]) -> usize {
        let mut start = haystack.len();
        for needle in &self.needles {
            let needle = needle.needle();
            let from = haystack.len().saturating_sub(needle.len() - 1);
            for at in memchr::memchr_iter(needle[0], &haystack[from..]).map(|i| from + i) {
                if at >= start {
                    break;
                }
                if needle.starts_with(&haystack[at..]) {
                    start = at;
                    break;
                }
            }
        }
        start
    }
}

/// `ranges` sorted, overlapping ones merged (adjacent ones are not, as they could not be
/// across two writes of a stream).
fn merged(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    if ranges.len() < 2 {
        return ranges;
    }
    ranges.sort_unstable_by_key(|r| r.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start < last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

/// The cut markers of `haystack`, in order and not overlapping.
fn cut_markers(haystack: &[u8]) -> Vec<Range<usize>> {
    let mut found: Vec<Range<usize>> = Vec::new();
    for marker in CUT_MARKERS {
        let marker = marker.as_bytes();
        found.extend(memmem::find_iter(haystack, marker).map(|at| at..at + marker.len()));
    }
    found.sort_unstable_by_key(|r| r.start);
    found.dedup_by(|later, earlier| later.start < earlier.end);
    found
}

/// Where the start of a cut marker that `pending` ends with begins (`.`, `..`, or the
/// first bytes of `…`), if it ends with one.
fn partial_marker(pending: &[u8]) -> Option<usize> {
    let ellipsis = CUT_MARKERS[1].as_bytes();
    let dots = pending
        .iter()
        .rev()
        .take(2)
        .take_while(|&&b| b == b'.')
        .count();
    if dots > 0 {
        return Some(pending.len() - dots);
    }
    (1..ellipsis.len())
        .find(|&n| pending.ends_with(&ellipsis[..n]))
        .map(|n| pending.len() - n)
}

/// Characters in UTF-8 `bytes` (bytes that do not continue one).
fn chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

/// Adds the forms `secret` (already trimmed) is looked for in.
fn secret_forms(secret: &str, forms: &mut Vec<String>) {
    forms.push(secret.to_string());
    xml_forms(secret, forms);
    forms.push(json_escaped(secret, false));
    forms.push(json_escaped(secret, true));
    forms.push(python_repr(secret, '\''));
    forms.push(python_repr(secret, '"'));
    if secret.contains(['\n', '\r']) {
        for line in secret.lines().map(str::trim) {
            if line.chars().count() >= MIN_SECRET_LEN {
                secret_forms(line, forms);
            }
        }
    }
}

/// `s` XML-escaped in each of the ways XML writers do it (`&` and `<` are always escaped;
/// `>` and the quotes may or may not be, in several spellings).
fn xml_forms(s: &str, forms: &mut Vec<String>) {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return;
    }
    for quot in ["\"", "&quot;", "&#34;"] {
        for apos in ["'", "&apos;", "&#39;", "&#x27;"] {
            for gt in ["&gt;", ">"] {
                let mut e = String::with_capacity(s.len() + 16);
                for c in s.chars() {
                    match c {
                        '&' => e.push_str("&amp;"),
                        '<' => e.push_str("&lt;"),
                        '>' => e.push_str(gt),
                        '"' => e.push_str(quot),
                        '\'' => e.push_str(apos),
                        c => e.push(c),
                    }
                }
                forms.push(e);
            }
        }
    }
}

/// The inside of a JSON string holding `s`, as serde_json (and Python's `json` with
/// `ensure_ascii=False`) or, with `ascii`, as Python's `json` writes it by default.
fn json_escaped(s: &str, ascii: bool) -> String {
    let mut e = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '"' => e.push_str("\\\""),
            '\\' => e.push_str("\\\\"),
            '\n' => e.push_str("\\n"),
            '\r' => e.push_str("\\r"),
            '\t' => e.push_str("\\t"),
            '\u{8}' => e.push_str("\\b"),
            '\u{c}' => e.push_str("\\f"),
            c if (c as u32) < 0x20 || (ascii && c as u32 >= 0x7f) => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    let _ = write!(e, "\\u{unit:04x}");
                }
            }
            c => e.push(c),
        }
    }
    e
}

/// The inside of Python's `repr()` of `s` quoted with `quote` (pytest's assertion messages
/// and tracebacks show values this way): backslashes, the quote and control characters
/// escaped.
fn python_repr(s: &str, quote: char) -> String {
    let mut e = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '\\' => e.push_str("\\\\"),
            '\n' => e.push_str("\\n"),
            '\r' => e.push_str("\\r"),
            '\t' => e.push_str("\\t"),
            c if c == quote => {
                e.push('\\');
                e.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(e, "\\x{:02x}", c as u32);
            }
            c => e.push(c),
        }
    }
    e
}

/// Whether `b` ends a URL's authority.
fn ends_authority(b: u8) -> bool {
    b.is_ascii_whitespace() || b < 0x20 || b == 0x7f || b"/?#\"<>`\\".contains(&b)
}

/// The authority of a URL: after the `://` at `sep`, the bytes `start..end`, which
/// `terminated` says are followed by a byte that ends it (rather than by the end of input).
struct Authority {
    sep: usize,
    start: usize,
    end: usize,
    terminated: bool,
}

/// The authorities of the URLs in `bytes`, in order.
fn authorities(bytes: &[u8]) -> impl Iterator<Item = Authority> + '_ {
    let mut from = 0;
    std::iter::from_fn(move || {
        let sep = from + memmem::find(&bytes[from..], b"://")?;
        let start = sep + 3;
        let (end, terminated) = match bytes[start..].iter().position(|&b| ends_authority(b)) {
            Some(len) => (start + len, true),
            None => (bytes.len(), false),
        };
        // An authority holds no `/`, so the next `://` starts at its last byte or later.
        from = if end > start { end - 1 } else { end };
        Some(Authority {
            sep,
            start,
            end,
            terminated,
        })
    })
}

/// The user-info of each URL in `bytes`, with its `@`: removed, `scheme://user:pass@host`
/// becomes `scheme://host`.
fn user_info_ranges(bytes: &[u8]) -> Vec<Range<usize>> {
    authorities(bytes)
        .filter_map(|a| {
            let at = memchr::memrchr(b'@', &bytes[a.start..a.end])?;
            Some(a.start..a.start + at + 1)
        })
        .collect()
}

/// How much of a write is masked at a time, so one huge write needs no huge buffer.
const WRITE_CHUNK: usize = 64 * 1024;
/// A URL authority still unfinished after this many bytes is masked whole, up to its end,
/// rather than held back further.
const AUTHORITY_HOLD_MAX: usize = 64 * 1024;

/// A writer that masks what passes through it. Output is held back only while it could be
/// the start of a secret or of a URL's user-info, so the buffer holds at most about the
/// longest form of a secret or [`AUTHORITY_HOLD_MAX`] bytes, whatever is written. A URL
/// authority longer than that is written as `***` up to its end. `flush` and `finish`
/// write everything held back.
pub struct RedactingWriter<W: Write> {
    inner: W,
    redactor: Redactor,
    pending: Vec<u8>,
    /// Inside an over-long URL authority, already written as `***`: input is dropped until
    /// the authority ends.
    skipping: bool,
    /// What was written last ends with a cut marker: the end of a secret may follow.
    after_cut: bool,
}

impl<W: Write> RedactingWriter<W> {
    pub fn new(inner: W, redactor: Redactor) -> Self {
        RedactingWriter {
            inner,
            redactor,
            pending: Vec::new(),
            skipping: false,
            after_cut: false,
        }
    }

    /// Writes what is held back and returns the inner writer, whether or not that write
    /// succeeded.
    pub fn into_inner(mut self) -> W {
        let _ = self.write_all_pending();
        let _ = self.inner.flush();
        self.inner
    }

    /// Writes what is held back and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_all_pending()?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn push(&mut self, mut chunk: &[u8]) -> io::Result<()> {
        if self.skipping {
            match chunk.iter().position(|&b| ends_authority(b)) {
                Some(end) => {
                    self.skipping = false;
                    chunk = &chunk[end..];
                }
                None => return Ok(()),
            }
        }
        self.pending.extend_from_slice(chunk);
        let (cut, overflow) = self.safe_cut();
        if cut > 0 {
            let written = &self.pending[..cut];
            let masked = self.redactor.redact_after(written, self.after_cut);
            self.inner.write_all(&masked)?;
            self.after_cut = ends_with_marker(written);
        }
        match overflow {
            Some(sep) => {
                let url = if cut == sep { "://" } else { "" };
                self.inner.write_all(format!("{url}{MASK}").as_bytes())?;
                self.pending.clear();
                self.skipping = true;
            }
            None => {
                self.pending.drain(..cut);
            }
        }
        Ok(())
    }

    fn write_all_pending(&mut self) -> io::Result<()> {
        let masked = self.redactor.redact_after(&self.pending, self.after_cut);
        self.inner.write_all(&masked)?;
        if !self.pending.is_empty() {
            self.after_cut = ends_with_marker(&self.pending);
        }
        self.pending.clear();
        Ok(())
    }

    /// How much of `pending` can be masked and written now: a place that splits no secret
    /// and no URL authority, before anything that could be the start of one. With the
    /// position of an unfinished URL authority's `://` when it is too long to hold back.
    fn safe_cut(&self) -> (usize, Option<usize>) {
        let pending = &self.pending[..];
        let mut cut = pending.len();
        // The start of a `://`.
        if pending.ends_with(b":/") {
            cut -= 2;
        } else if pending.ends_with(b":") {
            cut -= 1;
        }
        let mut unsplittable = Vec::new();
        let mut open = None;
        for authority in authorities(pending) {
            if authority.terminated {
                unsplittable.push(authority.sep..authority.end);
            } else {
                open = Some(authority.sep);
            }
        }
        if let Some(sep) = open {
            cut = cut.min(sep);
        }
        cut = cut.min(self.redactor.partial_start(pending));
        unsplittable.extend(self.redactor.secret_ranges(pending));
        // Around cut markers: a secret's start held until it is known whether a marker
        // follows, and text after a marker until it is known whether it ends a secret.
        let markers = cut_markers(pending);
        if let Some(at) = partial_marker(pending) {
            let head = self.redactor.secret_start_len(&pending[..at]);
            if head > 0 {
                cut = cut.min(at - head);
            }
        }
        let after = match markers.last() {
            Some(last) => Some(last.end),
            None => self.after_cut.then_some(0),
        };
        if let Some(after) = after {
            if self.redactor.could_end_a_secret(&pending[after..]) {
                cut = cut.min(after);
            }
        }
        unsplittable.extend(
            self.redactor
                .cut_ranges(pending, self.after_cut)
                .into_iter()
                .map(|(_, span)| span),
        );
        loop {
            let inside = unsplittable.iter().find(|r| r.start < cut && cut < r.end);
            match inside {
                Some(range) => cut = range.start,
                None => break,
            }
        }
        let overflow = open.filter(|&sep| pending.len() - sep > AUTHORITY_HOLD_MAX);
        (cut, overflow)
    }
}

fn ends_with_marker(text: &[u8]) -> bool {
    CUT_MARKERS.iter().any(|m| text.ends_with(m.as_bytes()))
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for chunk in buf.chunks(WRITE_CHUNK) {
            self.push(chunk)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_all_pending()?;
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

    fn one(name: &str, value: &str) -> Redactor {
        Redactor::new([(name, value)], &[])
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
    fn ordinary_configuration_values_are_not_masked() {
        let r = Redactor::new(
            [
                ("SECRET_KEY", "test"),
                ("UV_KEYRING_PROVIDER", "disabled"),
                ("TOKENIZERS_PARALLELISM", "false"),
                ("SOME_TOKEN", "1"),
                ("API_KEY", "Disabled"),
                ("MAX_TOKENS", "4096000"),
                ("OPENAI_API_KEY", "sk-live-123"),
            ],
            &[],
        );
        assert_eq!(
            r.text("test disabled false 1 Disabled 4096000 sk-live-123"),
            "test disabled false 1 Disabled 4096000 ***"
        );
    }

    #[test]
    fn names_look_secret_by_their_parts() {
        for name in [
            "OPENAI_API_KEY",
            "GITHUB_TOKEN",
            "db_password",
            "APIKEY",
            "aws.secret",
            "MY-CREDENTIALS",
            "PGPASSWD",
            "SECRET_KEYS",
        ] {
            assert!(is_secret_name(name, &[]), "{name}");
        }
        for name in [
            "TOKENIZERS_PARALLELISM",
            "UV_KEYRING_PROVIDER",
            "HOME",
            "KEYBOARD",
            "PASSWORDLESS",
        ] {
            assert!(!is_secret_name(name, &[]), "{name}");
        }
        assert!(is_secret_name("MY_CUSTOM", &["MY_CUSTOM".to_string()]));
    }

    #[test]
    fn listed_values_are_masked_whatever_they_are() {
        let listed = ["DB_NAME".to_string(), "FLAG".to_string()];
        let r = Redactor::new([("DB_NAME", " test \n"), ("FLAG", "x")], &listed);
        assert_eq!(r.text("db test, flag x"), "db ***, flag x");
    }

    #[test]
    fn escaped_forms_of_a_secret_are_masked() {
        let r = one("PASSWORD", "a<b&c\"d'e");
        for shown in [
            "a<b&c\"d'e",
            "a&lt;b&amp;c&quot;d&apos;e",
            "a&lt;b&amp;c&#34;d&#39;e",
            "a&lt;b&amp;c&quot;d&#x27;e",
            "a&lt;b&amp;c\"d'e",
            "a<b&c\\\"d'e",
        ] {
            assert_eq!(r.text(&format!("[{shown}]")), "[***]", "{shown}");
        }
        let json = serde_json::to_string(&serde_json::json!({ "out": "a<b&c\"d'e" })).unwrap();
        assert_eq!(r.text(&json), r#"{"out":"***"}"#);
    }

    #[test]
    fn a_secret_with_quotes_backslashes_and_controls_is_masked_in_json() {
        let secret = "p\"w\\x\ty\u{1b}z\u{e9}";
        let r = one("API_TOKEN", secret);
        let serde = serde_json::to_string(secret).unwrap();
        assert_eq!(r.text(&serde), "\"***\"");
        // Python's json.dumps, ensure_ascii=True.
        assert_eq!(r.text(r#""p\"w\\x\ty\u001bz\u00e9""#), "\"***\"");
    }

    #[test]
    fn a_multi_line_secret_is_masked_whole_and_line_by_line() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\nab\n-----END PRIVATE KEY-----\n";
        let r = one("SSH_PRIVATE_KEY", pem);
        assert_eq!(r.text(pem), "***\n");
        assert_eq!(r.text(&serde_json::to_string(pem).unwrap()), "\"***\\n\"");
        let printed: String = pem.lines().map(|l| format!("  {l}\n")).collect();
        let masked = r.text(&printed);
        assert!(
            !masked.contains("MIIEvQ") && !masked.contains("BKcwgg"),
            "{masked}"
        );
        assert!(
            masked.contains("  ab\n"),
            "a short line is not a secret: {masked}"
        );
    }

    #[test]
    fn a_secret_stored_with_a_trailing_newline_is_masked_when_printed_stripped() {
        let r = one("GITHUB_TOKEN", "  ghp_abcdef\n");
        assert_eq!(r.text("token: ghp_abcdef."), "token: ***.");
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
        assert_eq!(
            r.text("\"redis://:pw@cache:6379\""),
            "\"redis://cache:6379\""
        );
        assert_eq!(r.text("<http://a:b@h>"), "<http://h>");
        assert_eq!(r.text("x http://a@b://c@d/"), "x http://b://d/");
    }

    #[test]
    fn url_user_info_of_any_characters_and_length_is_removed() {
        let r = Redactor::default();
        assert_eq!(
            r.text("db=postgres://u(s)er:p(a)ss!$&'*+,;=:%20@db:5432/x"),
            "db=postgres://db:5432/x"
        );
        let long = "p".repeat(300);
        assert_eq!(
            r.text(&format!("https://user:{long}@host/path")),
            "https://host/path"
        );
    }

    #[test]
    fn nothing_to_mask_is_borrowed() {
        let r = redactor();
        assert!(matches!(r.text_cow("plain text"), Cow::Borrowed(_)));
        assert!(matches!(r.text_cow("see http://host/x"), Cow::Borrowed(_)));
        assert!(matches!(r.text_cow("a sk-live-123"), Cow::Owned(_)));
    }

    #[test]
    fn masking_keeps_utf8_valid_and_passes_invalid_bytes_through() {
        let r = redactor();
        assert_eq!(
            r.bytes(b"\xff\xfesk-live-123\xc3"),
            b"\xff\xfe***\xc3".to_vec()
        );
        let r = one("API_KEY", "\u{e9}t\u{e9}-secret");
        assert_eq!(
            r.text("\u{e9}\u{e9}t\u{e9}-secret\u{e9}"),
            "\u{e9}***\u{e9}"
        );
        assert_eq!(r.text("http://\u{e9}:\u{e9}@h\u{e9}/"), "http://h\u{e9}/");
    }

    #[test]
    fn json_masks_string_leaves_only() {
        let r = Redactor::new([("OPENAI_API_KEY", "sk-live-123")], &[]);
        let value = serde_json::json!({
            "sk-live-123": "sk-live-123",
            "n": 123,
            "ok": true,
            "list": ["a sk-live-123 b", 1.5, null, {"url": "http://u:p@h/"}],
        });
        assert_eq!(
            r.json(value),
            serde_json::json!({
                "sk-live-123": "***",
                "n": 123,
                "ok": true,
                "list": ["a *** b", 1.5, null, {"url": "http://h/"}],
            })
        );
    }

    fn stream(pieces: &[&[u8]]) -> Vec<u8> {
        let mut w = RedactingWriter::new(Vec::new(), redactor());
        for piece in pieces {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn a_secret_split_across_writes_is_still_masked() {
        let out = stream(&[
            b"no newline here sk-li",
            b"ve-1",
            b"23 and more\nnext ",
            b"line",
        ]);
        assert_eq!(out, b"no newline here *** and more\nnext line");
    }

    #[test]
    fn what_is_left_of_a_cut_secret_is_masked_on_both_sides_of_the_marker() {
        let r = one("API_TOKEN", "q7<z&w\"Xy9-secret-tail");
        // pytest's short summary: a head, then `...`.
        assert_eq!(
            r.text("FAILED t.py::x - AssertionError: q7<z&w\"..."),
            "FAILED t.py::x - AssertionError: ***..."
        );
        // A saferepr keeps a head and a tail; the escaped forms too.
        assert_eq!(r.text("'q7<z...et-tail'"), "'***...***'");
        assert_eq!(r.text("q7&lt;z&amp;w&quot;X…"), "***…");
        assert_eq!(r.text("'q7<z&w\\\"X...'"), "'***...'");
        // Fewer than MIN_CUT_LEN characters, or text that is no part of it: left alone.
        assert_eq!(r.text("q7..."), "q7...");
        assert_eq!(r.text("waiting... done"), "waiting... done");
        assert_eq!(r.text("abc...xyz"), "abc...xyz");
        // A whole secret next to a marker is masked as ever.
        assert_eq!(r.text("q7<z&w\"Xy9-secret-tail..."), "***...");
    }

    #[test]
    fn a_cut_secret_split_across_writes_is_still_masked() {
        let r = one("API_TOKEN", "q7zwXy9-secret-tail");
        let stream = |pieces: &[&str]| {
            let mut w = RedactingWriter::new(Vec::new(), r.clone());
            for piece in pieces {
                w.write_all(piece.as_bytes()).unwrap();
            }
            String::from_utf8(w.finish().unwrap()).unwrap()
        };
        let whole = "E   AssertionError: q7zwXy...et-tail\ndone";
        let expected = "E   AssertionError: ***...***\ndone";
        for a in 1..whole.len() {
            for b in a..whole.len() {
                let pieces = [&whole[..a], &whole[a..b], &whole[b..]];
                assert_eq!(stream(&pieces), expected, "{pieces:?}");
            }
        }
        let ellipsis = "head q7zw\u{2026}ail";
        for a in 1..ellipsis.len() {
            if ellipsis.is_char_boundary(a) {
                assert_eq!(
                    stream(&[&ellipsis[..a], &ellipsis[a..]]),
                    "head ***\u{2026}***"
                );
            }
        }
    }

    #[test]
    fn a_url_split_across_writes_is_still_stripped() {
        let out = stream(&[b"see http:", b"/", b"/us", b"er:pa", b"ss", b"@host/x done"]);
        assert_eq!(out, b"see http://host/x done");
    }

    #[test]
    fn output_is_held_back_only_while_it_could_start_a_secret() {
        let mut w = RedactingWriter::new(Vec::new(), redactor());
        w.write_all(b"....").unwrap();
        assert_eq!(w.inner, b"....", "progress is written at once");
        w.write_all(b" sk-li").unwrap();
        assert_eq!(w.inner, b".... ");
        w.write_all(b"ft").unwrap();
        assert_eq!(w.inner, b".... sk-lift");
        w.write_all(b" http://u").unwrap();
        assert_eq!(w.inner, b".... sk-lift http");
        w.write_all(b":p@h/ ok").unwrap();
        assert_eq!(w.finish().unwrap(), b".... sk-lift http://h/ ok");
    }

    #[test]
    fn a_long_line_is_written_before_it_ends_and_memory_stays_bounded() {
        let mut w = RedactingWriter::new(Vec::new(), redactor());
        let piece = "x".repeat(1000);
        for _ in 0..1000 {
            w.write_all(piece.as_bytes()).unwrap();
            assert!(w.pending.len() < 64, "{}", w.pending.len());
        }
        w.write_all(&vec![b'y'; 1 << 20]).unwrap();
        assert!(w.pending.len() < 64, "{}", w.pending.len());
        w.write_all(b"sk-live-").unwrap();
        assert_eq!(
            w.inner.len(),
            1_000_000 + (1 << 20),
            "the line is written already, the start of the secret held back"
        );
        w.write_all(b"123").unwrap();
        let out = w.finish().unwrap();
        assert!(out.ends_with(b"yyy***"));
        assert_eq!(out.len(), (1 << 20) + 1_000_000 + 3);
    }

    #[test]
    fn an_endless_url_authority_is_masked_with_bounded_memory() {
        let mut w = RedactingWriter::new(Vec::new(), redactor());
        w.write_all(b"start https://user:").unwrap();
        for _ in 0..100 {
            w.write_all(&[b'p'; 10_000]).unwrap();
            assert!(w.pending.len() <= AUTHORITY_HOLD_MAX + WRITE_CHUNK);
        }
        w.write_all(b"@host/path end").unwrap();
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(out, "start https://***/path end");
    }

    #[test]
    fn a_long_line_is_never_cut_inside_a_secret_or_a_url() {
        for tail_len in (0..300).step_by(13) {
            let line = format!(
                "{}sk-live-123{} http://u:hunter9@h/{}",
                "x".repeat(70_000),
                "y".repeat(tail_len),
                "z".repeat(tail_len)
            );
            for size in [7, 4096, 1 << 20] {
                let mut w = RedactingWriter::new(Vec::new(), redactor());
                for piece in line.as_bytes().chunks(size) {
                    w.write_all(piece).unwrap();
                }
                let out = String::from_utf8(w.finish().unwrap()).unwrap();
                assert!(
                    !out.contains("sk-live") && !out.contains("hunter9") && !out.contains("u:"),
                    "{tail_len} {size}"
                );
                assert_eq!(out, redactor().text(&line), "{tail_len} {size}");
            }
        }
    }

    #[test]
    fn random_text_streams_as_it_masks_whole_and_never_shows_a_secret() {
        let secrets = [
            ("API_KEY", "s\u{e9}cr\u{e9}t<&>"),
            ("TOKEN", "tok:en@42"),
            ("DB_PASSWORD", "ab://cd@ef"),
        ];
        let r = Redactor::new(secrets, &[]);
        let alphabet = [
            "s\u{e9}cr",
            "\u{e9}t",
            "<&>",
            "&lt;&amp;&gt;",
            "tok",
            ":en",
            "@42",
            "://",
            ":",
            "/",
            "@",
            " ",
            "\n",
            "'",
            "(",
            "\u{1F600}",
            "x",
            "ab",
            "cd@",
            "ef",
            "ab://cd@ef",
            "\\",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..3000 {
            let text: String = (0..next(60))
                .map(|_| alphabet[next(alphabet.len())])
                .collect();
            let whole = r.text(&text);
            for (_, secret) in secrets {
                assert!(!whole.contains(secret), "{text:?} -> {whole:?}");
            }
            let mut w = RedactingWriter::new(Vec::new(), r.clone());
            let mut rest = text.as_bytes();
            while !rest.is_empty() {
                let (piece, tail) = rest.split_at((1 + next(8)).min(rest.len()));
                w.write_all(piece).unwrap();
                rest = tail;
            }
            let streamed = String::from_utf8(w.finish().unwrap()).unwrap();
            assert_eq!(streamed, whole, "{text:?}");
        }
    }
}
