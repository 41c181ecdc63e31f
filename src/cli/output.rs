//! Human output: plain tables that read well without colour (status is a word and a glyph,
//! never a colour alone).

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

/// Render rows as a left-aligned table with a header; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
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
