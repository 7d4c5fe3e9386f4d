//! Plain text as every consumer of a report can read it. Pure: shared by the reader of
//! pytest's reports and by the sinks, which must not depend on each other.

/// `text` as consumers can read it, with nothing a reader would need silently lost:
///
/// - ANSI escape sequences (colour codes, window titles) are dropped, raw or as pytest
///   writes them in its XML (`#x1B[31m`): a whole sequence after `#x1B` is surely one.
/// - Other control characters are shown, never dropped: a C0 control or DEL becomes its
///   Unicode control picture (NUL `␀`, BEL `␇`, backspace `␈`, a lone ESC `␛`, DEL `␡`);
///   a C1 control and the noncharacters U+FFFE and U+FFFF (XML forbids those) become
///   U+FFFD `�`. A carriage return becomes a line break, as an XML parser would read it.
/// - pytest's escapes of other characters (`#x07` for BEL) are kept as written: pytest
///   writes a test's own text `#x07` the same way, so its XML cannot tell them apart.
pub fn readable(text: &str) -> String {
    if !may_need_cleaning(text) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let (len, shown) = match c {
            '\x1b' => match escape_sequence_len(&rest[1..]) {
                0 => (1, Some('\u{241B}')),
                sequence => (1 + sequence, None),
            },
            // Only a CSI or OSC sequence: `#x1B(B` may be anyone's text.
            '#' if rest.starts_with("#x1B[") || rest.starts_with("#x1B]") => {
                match escape_sequence_len(&rest[4..]) {
                    0 => (1, Some('#')),
                    sequence => (4 + sequence, None),
                }
            }
            '\r' if rest.starts_with("\r\n") => (2, Some('\n')),
            '\r' => (1, Some('\n')),
            '\t' | '\n' => (1, Some(c)),
            '\0'..='\x1f' => (1, char::from_u32(0x2400 + c as u32)),
            '\x7f' => (1, Some('\u{2421}')),
            '\u{80}'..='\u{9f}' | '\u{FFFE}' | '\u{FFFF}' => {
                (c.len_utf8(), Some(char::REPLACEMENT_CHARACTER))
            }
            _ => (c.len_utf8(), Some(c)),
        };
        out.extend(shown);
        rest = &rest[len..];
    }
    out
}

/// False when `text` surely has nothing [`readable`] changes: the common case, checked fast.
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

/// Tabs as the spaces a terminal shows for them (stops every 8 columns). quick-junit's
/// `XmlString` deletes every tab, which would glue the words on either side together.
/// `text` on one line, for a message: every control character (a newline in a file name,
/// which could start a line a CI reads as a workflow command) escaped as Rust writes it
/// (`\n`, `\u{1b}`), everything else as it is.
pub fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .flat_map(|c| {
            let shown: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            shown
        })
        .collect()
}

pub fn expand_tabs(text: String) -> String {
    if !text.contains('\t') {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut column = 0;
    for c in text.chars() {
        match c {
            '\t' => {
                let width = 8 - column % 8;
                out.extend(std::iter::repeat_n(' ', width));
                column += width;
            }
            '\n' => {
                out.push(c);
                column = 0;
            }
            _ => {
                out.push(c);
                column += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_become_the_spaces_a_terminal_shows() {
        assert_eq!(
            expand_tabs("a\tb\n\tc\tdd".into()),
            "a       b\n        c       dd"
        );
        assert_eq!(expand_tabs("12345678\tx".into()), "12345678        x");
        // Without a tab the text is handed back as it is, not copied.
        let text = String::from("no tab");
        let at = text.as_ptr();
        let back = expand_tabs(text);
        assert_eq!(back.as_ptr(), at);
    }

    #[test]
    fn plain_text_is_kept_as_is() {
        let text = "line\n\tindented café ✓ # not #xGG #x41 #x1b[31m";
        assert_eq!(readable(text), text);
    }

    #[test]
    fn raw_escapes_are_dropped_and_controls_shown() {
        assert_eq!(
            readable("a\u{FFFE}b\u{FFFF}c \x1b[1;31mred\x1b[0m \x07bell\r\n\x00\u{85}\x7f\x08|"),
            "a�b�c red ␇bell\n␀�␡␈|"
        );
        assert_eq!(readable("\x1b]0;title\x07x \x1b(By \x1b7z \x1b"), "x y z ␛");
        // Not a sequence: the ESC is shown.
        assert_eq!(readable("\x1b[ not one"), "␛[ not one");
        assert_eq!(readable("10%\r20%\r"), "10%\n20%\n");
    }

    #[test]
    fn colour_codes_as_pytest_writes_them_are_dropped() {
        assert_eq!(readable("#x1B[1m#x1B[31mred#x1B[0m plain"), "red plain");
        assert_eq!(readable("a#x1B]8;;http://x#x1B\\d"), "ad");
    }

    #[test]
    fn what_may_be_a_tests_own_text_is_kept_as_written() {
        // pytest writes BEL as `#x07`, and a test's own `#x07` the same way: kept.
        let text = "#x1B[ not one, #x1B alone, #x07bell #x00nul #x7F #xFFFE #xDC80";
        assert_eq!(readable(text), text);
        assert_eq!(readable("#x0A #x09 #x20 #x41"), "#x0A #x09 #x20 #x41");
    }
}
