//! The durable fix as a structural edit of config.toml.
//!
//! What "fixed" means (product spec): effective `sandbox_mode = "danger-full-access"` and
//! `approval_policy = "never"`, each key once at the top level (before the first table), an
//! active legacy profile saying the same, `default_permissions` (codex >= 0.147) saying the
//! same where present, copies of the two keys trapped in other tables removed, and
//! `sandbox_workspace_write` removed where it only carried the earlier workaround. Every other
//! byte stays: comments, order, formatting, line endings. A second run changes nothing.

use serde::Serialize;
use toml_edit::{Item, TableLike, Value};

use super::argv::CliOverrides;
use super::config::{
    effective, misplaced_keys, parse, parse_spanned, Misplaced, ParseProblem, DANGER_FULL_ACCESS, FIXED_KEYS, NEVER,
};
use super::repair::repair;

const SWS: &str = "sandbox_workspace_write";
/// Keys the earlier workaround (`workspace-write` + network) put in `[sandbox_workspace_write]`.
const WORKAROUND_KEYS: &[&str] = &["network_access"];
const MARKER: &str = "# codex-fleet (core#2128): codex's inner sandbox is off; the container is the isolation boundary.\n";

#[derive(Debug, Clone, Default)]
pub struct FixOptions {
    /// A profile selected on codex's command line (`--profile NAME`); its keys are set too.
    pub cli_profile: Option<String>,
}

/// The fixed document and an account of what changed.
#[derive(Debug, Clone, Serialize)]
pub struct FixOutcome {
    pub text: String,
    pub changed: bool,
    /// Lines dropped by the duplicate-prepend repair: (1-based line in the original, text).
    pub repaired: Vec<(usize, String)>,
    /// One line per structural change, for the operator.
    pub changes: Vec<String>,
    /// Top-level keys still trapped in other tables (left alone, reported).
    pub misplaced: Vec<Misplaced>,
}

/// Fix `text`. Refuses (Err, nothing to write) any invalid document that is not one of the
/// hotpatch shapes `repair` knows.
pub fn fix(text: &str, opts: &FixOptions) -> Result<FixOutcome, ParseProblem> {
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(b) => ("\u{feff}", b),
        None => ("", text),
    };
    let repaired = repair(body)?;
    let work = repaired.as_ref().map(|r| r.text.as_str()).unwrap_or(body);
    let mut doc = parse(work)?;
    let mut changes = Vec::new();
    if let Some(r) = &repaired {
        changes.push(format!("removed {} duplicated hotpatch line(s)", r.removed.len()));
    }

    strip_trapped(doc.as_table_mut(), &mut Vec::new(), &mut changes);

    let profile_name = opts
        .cli_profile
        .clone()
        .or_else(|| doc.get("profile").and_then(|p| p.as_str()).map(str::to_string));

    // The active profile's own keys must say the same (they beat the top level).
    if let Some(name) = &profile_name {
        if let Some(p) = doc
            .get_mut("profiles")
            .and_then(|p| p.as_table_like_mut())
            .and_then(|p| p.get_mut(name))
            .and_then(|p| p.as_table_like_mut())
        {
            let at = format!("profiles.{name}");
            for (k, v) in [("sandbox_mode", DANGER_FULL_ACCESS), ("approval_policy", NEVER)] {
                if p.contains_key(k) && set_string(p, k, v) {
                    changes.push(format!("set {at}.{k} = \"{v}\""));
                }
            }
            if p.contains_key("default_permissions") && set_string(p, "default_permissions", ":danger-full-access") {
                changes.push(format!("set {at}.default_permissions = \":danger-full-access\""));
            }
            drop_workaround(p, &at, &mut changes);
        }
    }

    let root = doc.as_table_mut();
    drop_workaround(root, "", &mut changes);
    let mut inserted_first = false;
    for (k, v) in [("sandbox_mode", DANGER_FULL_ACCESS), ("approval_policy", NEVER)] {
        let existed = root.get(k).is_some_and(|i| i.is_value());
        if set_string(root, k, v) {
            changes.push(format!("set {k} = \"{v}\" at the top level"));
            if !existed && !inserted_first {
                inserted_first = true;
                if let Some(mut key) = root.key_mut(k) {
                    key.leaf_decor_mut().set_prefix(MARKER);
                }
            }
        }
    }
    if root.contains_key("default_permissions") && set_string(root, "default_permissions", ":danger-full-access") {
        changes.push("set default_permissions = \":danger-full-access\"".into());
    }

    let mut out = doc.to_string();
    out = match_line_endings(body, &out);
    let changed = out != body;
    let out = if changed { format!("{bom}{out}") } else { text.to_string() };

    // The invariant this whole module exists for: never emit a document codex would not run
    // with danger-full-access + never.
    let check = parse_spanned(&out).map_err(|p| ParseProblem {
        message: format!("internal error: the fixed document does not parse ({})", p.message),
        ..p
    })?;
    let misplaced = misplaced_keys(&check);
    let cli = CliOverrides { profile: opts.cli_profile.clone(), ..Default::default() };
    let e = effective(&check.into_mut(), &cli, None);
    if !e.is_fixed() {
        return Err(ParseProblem {
            location: super::config::Location { line: 1, column: 1 },
            message: format!(
                "internal error: after the fix codex would still run with sandbox_mode={} ({}), approval_policy={} ({})",
                e.sandbox_mode.value,
                e.sandbox_mode.source.as_str(),
                e.approval_policy.value,
                e.approval_policy.source.as_str()
            ),
        });
    }
    Ok(FixOutcome {
        text: out,
        changed,
        repaired: repaired.map(|r| r.removed).unwrap_or_default(),
        changes,
        misplaced,
    })
}

/// Set `key` to the string `v` in `t`. Keeps the existing value's decoration (spacing,
/// trailing comment); a non-string (e.g. a table-shaped approval policy) is replaced whole.
/// Returns whether anything changed.
fn set_string(t: &mut dyn TableLike, key: &str, v: &str) -> bool {
    match t.get_mut(key) {
        Some(Item::Value(Value::String(s))) if s.value() == v => false,
        Some(Item::Value(old)) if !old.is_inline_table() => {
            let decor = old.decor().clone();
            let mut new = Value::from(v);
            *new.decor_mut() = decor;
            *old = new;
            true
        }
        Some(_) => {
            t.remove(key);
            t.insert(key, toml_edit::value(v));
            true
        }
        None => {
            t.insert(key, toml_edit::value(v));
            true
        }
    }
}

/// Remove `sandbox_workspace_write` (table, dotted keys or inline table) when it carries only
/// the earlier workaround's keys.
fn drop_workaround(t: &mut dyn TableLike, at: &str, changes: &mut Vec<String>) {
    let only_workaround = t
        .get(SWS)
        .and_then(|i| i.as_table_like())
        .is_some_and(|s| s.iter().all(|(k, v)| WORKAROUND_KEYS.contains(&k) && v.is_value()));
    if only_workaround {
        t.remove(SWS);
        let prefix = if at.is_empty() { String::new() } else { format!("{at}.") };
        changes.push(format!("removed {prefix}{SWS} (only the earlier workaround's network_access)"));
    }
}

/// Remove copies of the two fixed keys from every table where codex does not read them
/// (anything but the root and `profiles.NAME`).
fn strip_trapped(t: &mut dyn TableLike, path: &mut Vec<String>, changes: &mut Vec<String>) {
    let legit = path.is_empty() || (path.len() == 2 && path[0] == "profiles");
    if !legit {
        for k in FIXED_KEYS {
            if t.get(k).is_some_and(|i| i.is_value()) {
                t.remove(k);
                changes.push(format!("removed {k} trapped in [{}]", path.join(".")));
            }
        }
    }
    let keys: Vec<String> = t.iter().map(|(k, _)| k.to_string()).collect();
    for k in keys {
        let Some(item) = t.get_mut(&k) else { continue };
        path.push(k);
        match item {
            Item::ArrayOfTables(a) => {
                for sub in a.iter_mut() {
                    strip_trapped(sub, path, changes);
                }
            }
            other => {
                if let Some(sub) = other.as_table_like_mut() {
                    strip_trapped(sub, path, changes);
                }
            }
        }
        path.pop();
    }
}

/// toml_edit writes `\n` for what it adds; a CRLF file keeps CRLF throughout.
fn match_line_endings(original: &str, out: &str) -> String {
    let crlf = original.matches("\r\n").count();
    let lf = original.matches('\n').count();
    if crlf == 0 || crlf != lf {
        return out.to_string();
    }
    let mut s = String::with_capacity(out.len() + 16);
    let mut prev = '\0';
    for c in out.chars() {
        if c == '\n' && prev != '\r' {
            s.push('\r');
        }
        s.push(c);
        prev = c;
    }
    s
}

/// Convenience for tests and callers that only need the fixed text.
pub fn fixed_text(text: &str) -> Result<String, ParseProblem> {
    fix(text, &FixOptions::default()).map(|o| o.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gets_both_keys() {
        let o = fix("", &FixOptions::default()).unwrap();
        assert!(o.text.contains("sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n"), "{}", o.text);
        assert!(o.changed);
        assert_eq!(fixed_text(&o.text).unwrap(), o.text);
    }

    #[test]
    fn replaces_value_keeping_comment() {
        let t = "sandbox_mode = \"workspace-write\" # hotpatch\nmodel = \"o3\"\n";
        let o = fix(t, &FixOptions::default()).unwrap();
        assert!(o.text.starts_with("sandbox_mode = \"danger-full-access\" # hotpatch\nmodel = \"o3\"\n"), "{}", o.text);
    }

    #[test]
    fn keys_go_before_the_first_table() {
        let t = "model = \"o3\"\n\n[mcp_servers.m]\ncommand = \"x\"\nsandbox_mode = \"danger-full-access\"\n";
        let o = fix(t, &FixOptions::default()).unwrap();
        let first_table = o.text.find("[mcp_servers.m]").unwrap();
        let key = o.text.find("sandbox_mode").unwrap();
        assert!(key < first_table, "{}", o.text);
        assert_eq!(o.text.matches("sandbox_mode").count(), 1, "{}", o.text);
    }

    #[test]
    fn workaround_removed_in_every_form() {
        for t in [
            "sandbox_mode = \"workspace-write\"\n[sandbox_workspace_write]\nnetwork_access = true\n",
            "sandbox_workspace_write.network_access = true\n",
            "sandbox_workspace_write = { network_access = true }\n",
        ] {
            let o = fix(t, &FixOptions::default()).unwrap();
            assert!(!o.text.contains("sandbox_workspace_write"), "{t} -> {}", o.text);
        }
        let keep = "[sandbox_workspace_write]\nnetwork_access = true\nwritable_roots = [\"/x\"]\n";
        assert!(fixed_text(keep).unwrap().contains("writable_roots"));
    }

    #[test]
    fn crlf_kept() {
        let o = fix("model = \"o3\"\r\n[a]\r\nb = 1\r\n", &FixOptions::default()).unwrap();
        assert!(!o.text.replace("\r\n", "").contains('\n'), "{:?}", o.text);
    }

    #[test]
    fn active_profile_and_default_permissions() {
        let t = "profile = \"p\"\ndefault_permissions = \":workspace\"\n[profiles.p]\nsandbox_mode = \"workspace-write\"\napproval_policy = \"on-request\"\n[profiles.q]\nsandbox_mode = \"read-only\"\n";
        let o = fix(t, &FixOptions::default()).unwrap();
        assert!(o.text.contains("[profiles.p]\nsandbox_mode = \"danger-full-access\"\napproval_policy = \"never\""), "{}", o.text);
        assert!(o.text.contains("[profiles.q]\nsandbox_mode = \"read-only\""), "inactive profile untouched");
        assert!(o.text.contains("default_permissions = \":danger-full-access\""));
    }

    #[test]
    fn already_fixed_is_byte_identical() {
        let t = "# c\nsandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n[x]\ny = 1\n";
        let o = fix(t, &FixOptions::default()).unwrap();
        assert!(!o.changed);
        assert_eq!(o.text, t);
    }
}
