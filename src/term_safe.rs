//! Terminal-safe text: what a host or container says is shown, never executed.
//!
//! Container names, argv, labels, config files, probe stderr, boot-check lines and error texts
//! all come from machines the agents control. Printed raw, an escape sequence in any of them
//! runs in the operator's terminal: OSC 52 writes the clipboard, CSI cursor moves and a bare
//! carriage return overwrite the line that was just printed (a diff line disappears), bidi
//! overrides reorder what is read. Every such character is rewritten as a visible escape
//! (`\x1b`, `\r`, `\u{202e}`), so the sequence is readable and inert.
//!
//! What is rewritten: every C0 control and DEL (`\x00`..`\x1f`, `\x7f`), every C1 control
//! (`\u{80}`..`\u{9f}`: a terminal may take U+009B for CSI), and the invisible characters that
//! change how text reads without being seen: bidi embeddings, overrides, isolates and marks
//! (U+061C, U+200E/F, U+202A..E, U+2066..9), zero-width spaces and joiners (U+200B..D,
//! U+2060..4), line/paragraph separators (U+2028/9) and the BOM (U+FEFF).
//! Backslashes are left alone: a literal `\x1b` in a config is as inert as the one written here.
//!
//! [`line`] is for a value shown on one line (a table cell, a name, an evidence line): newlines
//! and tabs are rewritten too, so a value cannot forge rows. [`text`] is for output that is
//! multi-line by design (a diff, a config listing, a whole report): it keeps `\n` and `\t`, and
//! a `\r` only where it ends a line (CRLF), where it overwrites nothing.
//!
//! JSON keeps the exact text: serde escapes C0 controls; [`json`] also writes DEL, C1 and the
//! invisible characters above as `\uXXXX` escapes, which decode to the same string.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must never reach a terminal raw.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn escape(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

fn rewrite(s: &str, keep: impl Fn(char, Option<char>) -> bool) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if is_unsafe(c) && !keep(c, it.peek().copied()) {
            escape(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A value shown on one line: every unsafe character, newlines and tabs included, made visible.
pub fn line(s: &str) -> Cow<'_, str> {
    rewrite(s, |_, _| false)
}

/// Multi-line output: `\n`, `\t` and a `\r` right before `\n` kept; everything else made visible.
pub fn text(s: &str) -> Cow<'_, str> {
    rewrite(s, |c, next| c == '\n' || c == '\t' || (c == '\r' && next == Some('\n')))
}

/// JSON text (as serde_json writes it) with DEL, C1 controls and the invisible characters
/// written as `\uXXXX` escapes. Those characters can only occur inside JSON strings, where the
/// escape decodes to the very same character: the document means exactly what it meant.
pub fn json(s: String) -> String {
    if !s.chars().any(is_unsafe_json) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_unsafe_json(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Unsafe characters that serde_json leaves raw (it escapes C0 in strings; structural
/// whitespace is `\n` and spaces).
fn is_unsafe_json(c: char) -> bool {
    is_unsafe(c) && !matches!(c, '\n' | ' ') && (c as u32) >= 0x20
}

/// Whether `s` would reach a terminal unchanged by [`text`] (for tests and assertions).
pub fn is_clean_text(s: &str) -> bool {
    text(s) == s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_made_visible() {
        assert_eq!(line("a\x1b]52;c;ZXZpbA==\x07b"), "a\\x1b]52;c;ZXZpbA==\\x07b");
        assert_eq!(line("x\x1b[2K\x1b[1Ay"), "x\\x1b[2K\\x1b[1Ay");
        assert_eq!(line("\u{9b}31m"), "\\x9b31m");
        assert_eq!(line("evil\rgood"), "evil\\rgood");
        assert_eq!(line("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(line("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(line("\u{7f}"), "\\x7f");
        assert_eq!(line("plain é 日本 ✓"), "plain é 日本 ✓");
        assert!(matches!(line("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn text_keeps_its_lines() {
        assert_eq!(text("a\r\nb\tc\n"), "a\r\nb\tc\n");
        assert_eq!(text("hidden\rshown\n"), "hidden\\rshown\n");
        assert_eq!(text("end\r"), "end\\r");
        assert_eq!(text("\x1b[1A-removed\n"), "\\x1b[1A-removed\n");
        assert!(is_clean_text("ok\n\tok\r\n"));
        assert!(!is_clean_text("\x1b"));
    }

    #[test]
    fn json_round_trips_exactly() {
        let v = serde_json::json!({ "name": "a\x1b]52;c;x\x07\u{9b}\u{202e}\u{7f}\r\n" });
        let s = json(serde_json::to_string_pretty(&v).unwrap());
        assert!(s.chars().all(|c| !is_unsafe(c) || c == '\n'), "{s:?}");
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }
}
