//! The screen's arithmetic, shared by the state machine (how many rows a page scrolls) and the
//! renderer (where things go): pure functions of the terminal's size and the texts shown.

/// Footer lines below the main area; the header is two lines plus the why line, wrapped.
pub const FOOTER: u16 = 2;

/// The why line wraps to at most this many lines (the rest is in the Hosts view's causes box).
pub const WHY_LINES: usize = 3;

/// Greedy word wrap at blanks (char-counted); a word longer than the width is cut.
pub fn wrap_words(text: &str, width: usize, max: usize) -> Vec<String> {
    let mut lines: Vec<String> = vec![String::new()];
    for word in text.split(' ') {
        let cur = lines.last_mut().unwrap();
        let (n, w) = (cur.chars().count(), word.chars().count());
        if n > 0 && n + 1 + w > width {
            lines.push(String::new());
        }
        let cur = lines.last_mut().unwrap();
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    for l in &mut lines {
        if l.chars().count() > width {
            *l = l.chars().take(width.saturating_sub(1)).collect::<String>() + "…";
        }
    }
    if lines.len() > max {
        lines.truncate(max);
        let last = lines.last_mut().unwrap();
        let keep = width.saturating_sub(2);
        if last.chars().count() > keep {
            *last = last.chars().take(keep).collect();
        }
        last.push_str(" …");
    }
    lines
}

/// `s` in at most `w` columns: whole when it fits, else its middle elided (`…`), keeping more
/// of the end (three quarters) than of the start (fleet names differ at their ends: `ws-us-east-2-1003`).
pub fn elide_middle(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        return s.to_string();
    }
    if w <= 1 {
        return "…".chars().take(w).collect();
    }
    let head = (w - 1) / 4;
    let tail = w - 1 - head;
    let chars: Vec<char> = s.chars().collect();
    chars[..head].iter().chain(std::iter::once(&'…')).chain(chars[n - tail..].iter()).collect()
}

/// The why text wrapped to `columns` (at "; " between causes where it can), at most
/// [`WHY_LINES`] lines, the last one ending in "…" when cut.
pub fn why_lines(why: &str, columns: u16) -> Vec<String> {
    wrap_words(why, (columns as usize).saturating_sub(2).max(20), WHY_LINES)
}

/// The header's height: two lines plus the why line, wrapped.
pub fn header_height(why: &str, columns: u16) -> u16 {
    2 + why_lines(why, columns).len() as u16
}

/// Rows of a bordered table with a header row on a terminal of `size`.
pub fn table_rows(size: (u16, u16), why: &str) -> usize {
    size.1.saturating_sub(header_height(why, size.0) + FOOTER + 2 + 1) as usize
}
