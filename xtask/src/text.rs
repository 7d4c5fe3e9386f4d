//! Plain text as every consumer of a report can read it. Pure: shared by the reader of
//! pytest's reports and by the sinks, which must not depend on each other.

/// `text` without what consumers cannot read: ANSI escape sequences, control characters
/// other than `\n` and `\t`, the noncharacters U+FFFE and U+FFFF (XML parsers reject them),
/// and the same things as pytest writes them for characters XML forbids: `#x1B[31m` for a
/// colour code, `#x07` for BEL, `#xFFFE`, `#xDC80` for a lone surrogate.
pub fn readable(text: &str) -> String {
    if !may_need_cleaning(text) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match unreadable_at(rest) {
            Some(Unreadable::Escape(len)) => {
                rest = &rest[len..];
                rest = &rest[escape_sequence_len(rest)..];
            }
            Some(Unreadable::Other(len)) => rest = &rest[len..],
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// False when `text` surely has nothing [`readable`] removes: the common case, checked fast.
fn may_need_cleaning(text: &str) -> bool {
    text.bytes().any(|b| {
        (b < 0x20 && b != b'\n' && b != b'\t')
            || b == 0x7F
            // The lead byte of U+0080..U+00BF (C1 controls among them) and of U+F000..U+FFFF.
            || b == 0xC2
            || b == 0xEF
            || b == b'#'
    })
}

enum Unreadable {
    /// ESC, raw or escaped by pytest: this many bytes, then maybe the rest of a sequence.
    Escape(usize),
    /// Any other character to drop, raw or escaped: this many bytes.
    Other(usize),
}

/// What `text` starts with, if it is to be dropped.
fn unreadable_at(text: &str) -> Option<Unreadable> {
    let c = text.chars().next()?;
    if c == '\x1b' {
        return Some(Unreadable::Escape(1));
    }
    if (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{FFFE}' | '\u{FFFF}') {
        return Some(Unreadable::Other(c.len_utf8()));
    }
    if c != '#' {
        return None;
    }
    // pytest's `bin_xml_escape`: `#x%02X` for a forbidden character up to U+00FF (only C0
    // controls and DEL are forbidden there), `#x%04X` above (surrogates, U+FFFE, U+FFFF).
    let hex = text.strip_prefix("#x")?;
    let digits = |n: usize| {
        let d = hex.get(..n)?;
        d.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
            .then(|| u32::from_str_radix(d, 16).ok())
            .flatten()
    };
    if let Some(code) = digits(4) {
        if (0xD800..=0xDFFF).contains(&code) || code == 0xFFFE || code == 0xFFFF {
            return Some(Unreadable::Other(6));
        }
    }
    match digits(2)? {
        0x1B => Some(Unreadable::Escape(4)),
        0x00..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F | 0x7F => Some(Unreadable::Other(4)),
        _ => None,
    }
}

/// How much of `rest`, just after an ESC, belongs to its escape sequence.
fn escape_sequence_len(rest: &str) -> usize {
    let bytes = rest.as_bytes();
    match bytes.first() {
        // CSI: parameters, then one final byte in @..~ (ECMA-48, without intermediates,
        // which nothing prints). Anything else was no sequence: only the ESC goes.
        Some(b'[') => {
            let params = bytes[1..]
                .iter()
                .position(|b| !(b'0'..=b'?').contains(b))
                .map_or(bytes.len(), |p| p + 1);
            match bytes.get(params) {
                Some(b'@'..=b'~') => params + 1,
                _ => 0,
            }
        }
        // OSC (a window title, a hyperlink): up to BEL or ST, raw or escaped, on its line.
        Some(b']') => {
            let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
            let ends = ["\x07", "\x1b\\", "#x07", "#x1B\\"];
            ends.iter()
                .filter_map(|end| line.find(end).map(|at| at + end.len()))
                .min()
                .unwrap_or(0)
        }
        // Two- or three-character sequences (`ESC ( B`, `ESC 7`, `ESC =`).
        Some(_) => {
            let intermediates = bytes
                .iter()
                .take_while(|b| (0x20..=0x2F).contains(*b))
                .count();
            match bytes.get(intermediates) {
                Some(0x30..=0x7E) => intermediates + 1,
                _ => 0,
            }
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_kept_as_is() {
        let text = "line\n\tindented café ✓ # not #xGG #x41 #x1b[31m";
        assert_eq!(readable(text), text);
    }

    #[test]
    fn raw_escapes_controls_and_noncharacters_are_dropped() {
        assert_eq!(
            readable("a\u{FFFE}b\u{FFFF}c \x1b[1;31mred\x1b[0m \x07bell\r\n\x00\u{85}\x7f"),
            "abc red bell\n"
        );
        assert_eq!(readable("\x1b]0;title\x07x \x1b(By \x1b7z \x1b"), "x y z ");
        // Not a sequence: only the ESC goes.
        assert_eq!(readable("\x1b[ not one"), "[ not one");
    }

    #[test]
    fn escapes_as_pytest_writes_them_are_dropped() {
        assert_eq!(
            readable("#x1B[1m#x1B[31mred#x1B[0m plain #x1B[ not one, #x07bell #x00nul #x7F"),
            "red plain [ not one, bell nul "
        );
        assert_eq!(readable("a#xFFFEb#xDC80c#x1B]8;;http://x#x1B\\d"), "abcd");
        // Characters XML allows are never escaped by pytest: this is someone's text.
        assert_eq!(readable("#x0A #x09 #x20 #x41"), "#x0A #x09 #x20 #x41");
    }
}
