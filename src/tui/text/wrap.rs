//! Lines of host text made safe for the terminal and wrapped to its width.

use ratatui::text::{Line, Span};

/// Host text made visible, not executed (`term_safe::line` on every span): a terminal escape
/// in a name, an argv or an evidence line shows as `\x1b]52;…`, where ratatui would silently
/// drop the control character and print the rest.
pub fn safe_line(mut l: Line<'static>) -> Line<'static> {
    for sp in &mut l.spans {
        if let std::borrow::Cow::Owned(s) = crate::term_safe::line(&sp.content) {
            sp.content = s.into();
        }
    }
    l
}

/// Wrap a styled line to `width` columns; continuation lines are indented under the value
/// (the width of the first span when the line is a key/value pair). Evidence stays verbatim.
pub fn wrap_line(line: Line<'static>, width: usize) -> Vec<Line<'static>> {
    let total: usize = line.spans.iter().map(|s| s.content.chars().count()).sum();
    if width < 20 || total <= width {
        return vec![line];
    }
    let first = line.spans.first().map(|s| s.content.chars().count()).unwrap_or(0);
    let indent = if line.spans.len() > 1 && first <= 30 && first < width / 2 { first } else { 2 };
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut cur: Vec<Span<'static>> = Vec::new();
    let mut col = 0usize;
    for span in line.spans {
        let style = span.style;
        let mut buf = String::new();
        for ch in span.content.chars() {
            if col == width {
                if !buf.is_empty() {
                    cur.push(Span::styled(std::mem::take(&mut buf), style));
                }
                out.push(Line::from(std::mem::take(&mut cur)));
                cur.push(Span::raw(" ".repeat(indent)));
                col = indent;
            }
            buf.push(ch);
            col += 1;
        }
        if !buf.is_empty() {
            cur.push(Span::styled(buf, style));
        }
    }
    if !cur.is_empty() {
        out.push(Line::from(cur));
    }
    out
}
