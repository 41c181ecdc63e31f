//! What every command's output shares: JSON documents (`format`, `version`, `context`) and the
//! context they name. The tables and texts themselves are [`crate::present`]'s.

pub use crate::present::table::{table, verdict_label};

/// Print a JSON document on stdout: the exact text, with the characters a terminal could act on
/// written as `\uXXXX` escapes (see `term_safe::json`).
pub fn print_json(v: &serde_json::Value) {
    println!("{}", crate::term_safe::json(serde_json::to_string_pretty(v).unwrap_or_default()));
}

pub use crate::present::JSON_VERSION;

/// A `--json` document as it goes out, naming the context in force (see
/// [`crate::present::document`]).
pub fn document(kind: &str, v: serde_json::Value) -> serde_json::Value {
    crate::present::document(kind, v, active_context())
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
