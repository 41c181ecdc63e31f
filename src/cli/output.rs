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

/// The version of every `--json` document's shape; raised when a field changes meaning or goes.
pub const JSON_VERSION: u32 = 1;

/// A `--json` document as it goes out: `format` names its shape (`codex-fleet/scan`, ... each
/// with a schema in docs/schema/), `version` its version, `context` the context it ran in.
pub fn document(kind: &str, mut v: serde_json::Value) -> serde_json::Value {
    if let Some(m) = v.as_object_mut() {
        m.insert("format".into(), format!("codex-fleet/{kind}").into());
        m.insert("version".into(), JSON_VERSION.into());
        m.insert("context".into(), super::context::active().into());
    }
    v
}

/// The `report` as written: a JSON report carries `format`, `version` and `context` like every
/// `--json` document; a Markdown one names the context under its title. (CSV rows stay rows.)
pub fn name_report_context(text: String, json: bool) -> String {
    if json {
        return match serde_json::from_str(&text) {
            Ok(v) => serde_json::to_string_pretty(&document("report", v)).unwrap_or(text),
            Err(_) => text,
        };
    }
    match (super::context::active(), text.strip_prefix("# codex-fleet report\n")) {
        (Some(c), Some(rest)) => format!("# codex-fleet report\n\nContext: {c}.\n{rest}"),
        _ => text,
    }
}
