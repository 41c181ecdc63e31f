//! Plain-text tables and the verdict's glyph + word (status never by colour alone).

use crate::diagnose::Verdict;

/// Glyph + word for a verdict.
pub fn verdict_label(v: Verdict) -> String {
    let g = match v {
        Verdict::Stalled => "✗",
        Verdict::AtRisk => "!",
        Verdict::Unknown => "?",
        Verdict::Healthy => "✓",
    };
    format!("{g} {}", v.as_str())
}

/// Render rows as a left-aligned table with a header; the last column is not padded. Cells
/// hold host-supplied text: each is made terminal-safe on one line (a cell cannot forge rows).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> =
        rows.iter().map(|r| r.iter().map(|c| crate::term_safe::line(c).into_owned()).collect()).collect();
    let rows = &rows;
    let n = header.len();
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(c);
                out.push_str(&" ".repeat(w[i] - c.chars().count() + 2));
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}
