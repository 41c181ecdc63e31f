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
use super::version::CodexVersion;

const SWS: &str = "sandbox_workspace_write";
/// Keys the earlier workaround (`workspace-write` + network) put in `[sandbox_workspace_write]`.
const WORKAROUND_KEYS: &[&str] = &["network_access"];
const MARKER: &str = "# codex-fleet (core#2128): codex's inner sandbox is off; the container is the isolation boundary.\n";

#[derive(Debug, Clone, Default)]
pub struct FixOptions {
    /// A profile selected on codex's command line (`--profile NAME`); its keys are set too.
    pub cli_profile: Option<String>,
    /// The agent's codex release where known (the probe's `codex --version`): the fix never
    /// writes what that release refuses (see [`super::version`]). `None`: any release.
    pub codex_version: Option<CodexVersion>,
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
    let (bom, body) = super::config::split_bom(text)?;
    let repaired = repair(body)?;
    let work = repaired.as_ref().map(|r| r.text.as_str()).unwrap_or(body);
    // A release that refuses the legacy selector loses it below, and with it the selector's
    // semantic problem (naming no profile); any other is refused.
    let drop_selector = opts.codex_version.is_some_and(CodexVersion::refuses_legacy_profile);
    let selector = |p: &ParseProblem| p.message.starts_with("profile = ");
    if let Some(p) = super::config::semantic_problems(&parse_spanned(work)?).into_iter().find(|p| !(drop_selector && selector(p))) {
        return Err(p);
    }
    let mut doc = parse(work)?;
    let mut changes = Vec::new();
    if let Some(r) = &repaired {
        changes.push(format!("removed {} duplicated hotpatch line(s)", r.removed.len()));
    }
    let mut orphans = Vec::new();
    if let (true, Some(v)) = (drop_selector, opts.codex_version) {
        if let Some(name) = doc.get("profile").filter(|p| p.is_value()).map(|p| p.as_str().unwrap_or("?").to_string()) {
            if let Some(comment) = remove_key(doc.as_table_mut(), "profile") {
                orphans.push(Orphan { after: None, comment });
            }
            changes.push(format!(
                "removed the legacy selector profile = \"{name}\": codex {v} refuses it (start codex with --profile {name} and a {name}.config.toml instead)"
            ));
        }
    }

    strip_trapped(doc.as_table_mut(), &mut Vec::new(), None, &mut changes, &mut orphans);

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
            drop_workaround(p, &at, &mut changes, &mut orphans);
        }
    }

    drop_workaround(doc.as_table_mut(), "", &mut changes, &mut orphans);
    place_orphans(&mut doc, orphans);
    let root = doc.as_table_mut();
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
fn drop_workaround(t: &mut dyn TableLike, at: &str, changes: &mut Vec<String>, orphans: &mut Vec<Orphan>) {
    let only_workaround = t
        .get(SWS)
        .and_then(|i| i.as_table_like())
        .is_some_and(|s| s.iter().all(|(k, v)| WORKAROUND_KEYS.contains(&k) && v.is_value()));
    if !only_workaround {
        return;
    }
    match t.get(SWS) {
        Some(Item::Table(tab)) if !tab.is_dotted() => {
            let comment = tab.decor().prefix().and_then(|p| p.as_str()).filter(|p| p.contains('#'));
            if let Some(c) = comment {
                orphans.push(Orphan { after: tab.position(), comment: c.to_string() });
            }
            t.remove(SWS);
        }
        _ => {
            if let Some(c) = remove_key(t, SWS) {
                orphans.push(Orphan { after: None, comment: c });
            }
        }
    }
    let prefix = if at.is_empty() { String::new() } else { format!("{at}.") };
    changes.push(format!("removed {prefix}{SWS} (only the earlier workaround's network_access)"));
}

/// A comment that sat right above something the fix removed. Comments are the operator's
/// notes: they move to what follows instead of disappearing with the key.
struct Orphan {
    /// Position of the table it was in (or that was removed); `None` for the root.
    after: Option<isize>,
    comment: String,
}

/// Remove `key` from `t`; a comment above it moves onto the next key of the same table, or is
/// returned when there is none.
fn remove_key(t: &mut dyn TableLike, key: &str) -> Option<String> {
    let comment = Some(line_comments(t, key)).filter(|c| !c.is_empty());
    let keys: Vec<String> = t.iter().map(|(k, _)| k.to_string()).collect();
    t.remove(key);
    let comment = comment?;
    for next in keys.iter().skip_while(|k| k.as_str() != key).skip(1) {
        let leaf = t.get(next).is_some_and(|i| i.is_value() || i.as_table().is_some_and(|x| x.is_dotted()));
        if let (true, Some(mut km)) = (leaf, t.key_mut(next)) {
            let old = km.leaf_decor().prefix().and_then(|p| p.as_str()).unwrap_or("").to_string();
            km.leaf_decor_mut().set_prefix(format!("{comment}{old}"));
            return None;
        }
    }
    Some(comment)
}

/// The comment lines above `key`'s line(s). A dotted key (`a.b = 1`) keeps them on its
/// innermost key, so dotted tables are searched.
fn line_comments(t: &dyn TableLike, key: &str) -> String {
    let mut out = String::new();
    if let Some(p) = t.key(key).and_then(|k| k.leaf_decor().prefix()).and_then(|p| p.as_str()) {
        if p.contains('#') {
            out.push_str(p);
        }
    }
    if let Some(Item::Table(sub)) = t.get(key) {
        if sub.is_dotted() {
            for (k, _) in sub.iter() {
                out.push_str(&line_comments(sub, k));
            }
        }
    }
    out
}

/// Put orphaned comments above the next table header in the document, else at its end.
fn place_orphans(doc: &mut toml_edit::DocumentMut, orphans: Vec<Orphan>) {
    for o in orphans {
        let mut tables = Vec::new();
        collect_tables(doc.as_table(), &mut Vec::new(), &mut tables);
        let from = o.after.unwrap_or(isize::MIN);
        let next = tables.into_iter().filter(|(p, _)| *p > from).min_by_key(|(p, _)| *p);
        let target = next.and_then(|(_, path)| {
            let mut cur = doc.as_table_mut();
            for seg in &path {
                cur = cur.get_mut(seg)?.as_table_mut()?;
            }
            Some(cur)
        });
        match target {
            Some(t) => {
                let old = t.decor().prefix().and_then(|p| p.as_str()).unwrap_or("").to_string();
                t.decor_mut().set_prefix(format!("{}{old}", o.comment));
            }
            None => {
                let old = doc.trailing().as_str().unwrap_or("").to_string();
                doc.set_trailing(format!("{old}{}", o.comment));
            }
        }
    }
}

fn collect_tables(t: &toml_edit::Table, path: &mut Vec<String>, out: &mut Vec<(isize, Vec<String>)>) {
    for (k, item) in t.iter() {
        if let Item::Table(sub) = item {
            path.push(k.to_string());
            if let (false, false, Some(p)) = (sub.is_implicit(), sub.is_dotted(), sub.position()) {
                out.push((p, path.clone()));
            }
            collect_tables(sub, path, out);
            path.pop();
        }
    }
}

/// Remove copies of the two fixed keys from every table where codex does not read them
/// (anything but the root and `profiles.NAME`).
fn strip_trapped(
    t: &mut dyn TableLike,
    path: &mut Vec<String>,
    position: Option<isize>,
    changes: &mut Vec<String>,
    orphans: &mut Vec<Orphan>,
) {
    let legit = path.is_empty() || (path.len() == 2 && path[0] == "profiles");
    if !legit {
        for k in FIXED_KEYS {
            if t.get(k).is_some_and(|i| i.is_value()) {
                if let Some(comment) = remove_key(t, k) {
                    orphans.push(Orphan { after: position, comment });
                }
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
                    let pos = sub.position();
                    strip_trapped(sub, path, pos, changes, orphans);
                }
            }
            Item::Table(sub) => {
                let pos = sub.position().filter(|_| !sub.is_dotted() && !sub.is_implicit()).or(position);
                strip_trapped(sub, path, pos, changes, orphans);
            }
            other => {
                if let Some(sub) = other.as_table_like_mut() {
                    strip_trapped(sub, path, position, changes, orphans);
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
    fn legacy_selector_removed_only_for_releases_that_refuse_it() {
        let t = "# pick the review profile\nprofile = \"review\"\nmodel = \"o3\"\n[profiles.review]\nsandbox_mode = \"workspace-write\"\n";
        let old = FixOptions { codex_version: CodexVersion::parse("0.133.0"), ..Default::default() };
        let o = fix(t, &old).unwrap();
        assert!(o.text.contains("profile = \"review\""), "{}", o.text);
        assert!(o.text.contains("[profiles.review]\nsandbox_mode = \"danger-full-access\""), "{}", o.text);
        let new = FixOptions { codex_version: CodexVersion::parse("codex-cli 0.163.0"), ..Default::default() };
        let o = fix(t, &new).unwrap();
        assert!(!o.text.contains("profile = "), "{}", o.text);
        assert!(o.text.contains("# pick the review profile"), "the operator's comment stays: {}", o.text);
        assert!(o.changes.iter().any(|c| c.contains("codex 0.163.0 refuses it")), "{:?}", o.changes);
        assert_eq!(fix(&o.text, &new).unwrap().text, o.text, "idempotent");
        // A selector naming no profile: refused when it may be honoured, cured when it cannot be.
        let missing = "profile = \"gone\"\n";
        assert!(fix(missing, &FixOptions::default()).is_err());
        assert!(!fix(missing, &new).unwrap().text.contains("profile"));
    }

    #[test]
    fn byte_order_mark_only_at_the_start() {
        let o = fix("\u{feff}model = \"o3\"\n", &FixOptions::default()).unwrap();
        assert!(o.text.starts_with("\u{feff}") && !o.text[3..].contains('\u{feff}'), "{:?}", o.text);
        let e = fix("\u{feff}\u{feff}model = \"o3\"\n", &FixOptions::default()).unwrap_err();
        assert_eq!((e.location.line, e.location.column), (1, 2), "{e}");
        let e = fix("model = \"o3\"\n\u{feff}\n[a]\n", &FixOptions::default()).unwrap_err();
        assert_eq!(e.location.line, 2, "{e}");
        assert!(fix("# \u{feff}\nmodel = \"o\u{feff}3\"\n", &FixOptions::default()).is_ok());
    }

    #[test]
    fn already_fixed_is_byte_identical() {
        let t = "# c\nsandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n[x]\ny = 1\n";
        let o = fix(t, &FixOptions::default()).unwrap();
        assert!(!o.changed);
        assert_eq!(o.text, t);
    }
}
