//! Unified diffs for the operator, with secret values redacted.
//!
//! Both sides are redacted in one pass so a secret keeps the same placeholder number before
//! and after (an unchanged secret line is then unchanged in the diff, and a diff never
//! carries a value in clear).

use similar::TextDiff;

use super::redact::redact;

/// A line no config or script holds, to split the jointly redacted text again.
const SPLIT: &str = "\u{0}codex-fleet-diff-split\u{0}\n";

/// Redact `before` and `after` with one numbering of secrets.
pub fn redact_pair(before: &str, after: &str) -> (String, String) {
    let joined = format!("{before}\n{SPLIT}{after}");
    let r = redact(&joined).text;
    match r.split_once(&format!("\n{SPLIT}")) {
        Some((a, b)) => (a.to_string(), b.to_string()),
        // Unreachable with a line-oriented redactor; never fall back to clear text.
        None => (redact(before).text, redact(after).text),
    }
}

/// The unified diff (3 lines of context) from `before` to `after` of the file at `path`,
/// secrets redacted; empty when nothing changes.
pub fn unified_diff(path: &str, before: &str, after: &str) -> String {
    if before == after {
        return String::new();
    }
    let (a, b) = redact_pair(before, after);
    TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a{path}"), &format!("b{path}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_in_clear() {
        let before = "api_key = \"sk-live-abcdefghijklmnopqrstuvwxyz\"\nsandbox_mode = \"read-only\"\n";
        let after = "api_key = \"sk-live-abcdefghijklmnopqrstuvwxyz\"\nsandbox_mode = \"danger-full-access\"\n";
        let d = unified_diff("/c.toml", before, after);
        assert!(!d.contains("abcdefghij"), "{d}");
        assert!(d.contains("-sandbox_mode = \"read-only\""), "{d}");
        assert!(d.contains(" api_key = \"<redacted:1>\""), "{d}");
        assert!(d.starts_with("--- a/c.toml\n+++ b/c.toml\n"), "{d}");
    }

    #[test]
    fn no_change_no_diff() {
        assert_eq!(unified_diff("/x", "a\n", "a\n"), "");
    }
}
