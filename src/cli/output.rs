//! What every command's output shares: JSON documents (`format`, `version`, `context`) and the
//! context they name. The tables and texts themselves are [`crate::present`]'s.

pub use crate::present::table::{table, verdict_label};

/// Print a JSON document on stdout: the exact text, with the characters a terminal could act on
/// written as `\uXXXX` escapes (see `term_safe::json`).
pub fn print_json(v: &serde_json::Value) {
    println!("{}", crate::term_safe::json(serde_json::to_string_pretty(v).unwrap_or_default()));
}

/// The version of every `--json` document's shape; raised when a field changes meaning or goes.
pub const JSON_VERSION: u32 = 1;

/// A `--json` document as it goes out: `format` names its shape (`codex-fleet/scan`, ... each
/// with a schema in docs/schema/), `version` its version, `context` the context it ran in.
pub fn document(kind: &str, mut v: serde_json::Value) -> serde_json::Value {
    if let Some(m) = v.as_object_mut() {
        m.insert("format".into(), format!("codex-fleet/{kind}").into());
        m.insert("version".into(), JSON_VERSION.into());
        m.insert("context".into(), active_context().into());
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
    match (active_context(), text.strip_prefix("# codex-fleet report\n")) {
        (Some(c), Some(rest)) => format!("# codex-fleet report\n\nContext: {c}.\n{rest}"),
        _ => text,
    }
}

/// The context this process runs in, once resolved: every document and report names it.
static ACTIVE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Set once, by the context resolution, before any command runs.
pub fn set_active_context(name: &str) {
    let _ = ACTIVE.set(name.to_string());
}

/// The name of the context in force, if any.
pub fn active_context() -> Option<&'static str> {
    ACTIVE.get().map(String::as_str)
}
