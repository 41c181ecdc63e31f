//! config.toml as codex reads it: a lossless document, its lint findings, and the *effective*
//! `sandbox_mode` / `approval_policy` with where each comes from.
//!
//! Why this is careful: the incident's hotpatches broke agents twice over. Repeated prepends
//! made duplicate keys (codex exits at start, it does not fall back), and keys appended after
//! a table header landed inside that table (codex silently ignores them). Both are judged here
//! from the document's structure, never by grepping text.

use serde::Serialize;
use toml_edit::{Document, DocumentMut, Item, TableLike};

use super::argv::CliOverrides;

pub const DANGER_FULL_ACCESS: &str = "danger-full-access";
pub const NEVER: &str = "never";
pub const SANDBOX_MODES: [&str; 3] = ["read-only", "workspace-write", DANGER_FULL_ACCESS];
pub const APPROVAL_POLICIES: [&str; 4] = ["untrusted", "on-failure", "on-request", NEVER];

/// Keys codex reads only at the top level (or inside a `[profiles.NAME]` table). Found in any
/// other table they are the placement trap: codex ignores them there.
pub const ROOT_KEYS: &[&str] = &[
    "sandbox_mode",
    "approval_policy",
    "profile",
    "model",
    "model_provider",
    "model_reasoning_effort",
    "model_reasoning_summary",
    "model_verbosity",
    "model_context_window",
    "model_auto_compact_token_limit",
    "default_permissions",
    "cli_auth_credentials_store",
    "mcp_oauth_credentials_store",
    "forced_login_method",
    "forced_chatgpt_workspace_id",
    "preferred_auth_method",
    "disable_response_storage",
    "hide_agent_reasoning",
    "show_raw_agent_reasoning",
    "chatgpt_base_url",
    "project_doc_max_bytes",
    "experimental_instructions_file",
    "review_model",
];

/// The two keys the durable fix owns.
pub const FIXED_KEYS: [&str; 2] = ["sandbox_mode", "approval_policy"];

/// Where in the text a problem is: 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// Line and column of byte offset `at` in `text`.
    pub fn of(text: &str, at: usize) -> Location {
        let at = at.min(text.len());
        let before = &text[..text.floor_char_boundary(at)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        Location { line, column }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// config.toml does not parse: what and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ParseProblem {
    pub location: Location,
    pub message: String,
}

/// The UTF-8 byte-order mark codex accepts once, at the very start of config.toml.
pub const BOM: char = '\u{feff}';

/// `text` as (leading byte-order mark or "", the rest). A second mark right after the first is
/// refused: codex refuses it (`invalid unquoted key`), while the TOML parser used here would
/// silently skip it, so without this check the fixer would "fix" a file codex cannot read. A
/// mark anywhere else outside a comment or string is refused by the parser itself, as by codex
/// (`key with no value, expected '='`); inside a comment or string both accept it.
pub fn split_bom(text: &str) -> Result<(&str, &str), ParseProblem> {
    let (bom, body) = match text.strip_prefix(BOM) {
        Some(b) => (&text[..BOM.len_utf8()], b),
        None => ("", text),
    };
    if body.starts_with(BOM) {
        return Err(ParseProblem {
            location: Location::of(text, bom.len()),
            message: "a byte-order mark (U+FEFF) that is not at the file's start: codex refuses it (invalid unquoted key)".into(),
        });
    }
    Ok((bom, body))
}

/// Parse keeping spans (for lint findings that point at lines).
pub fn parse_spanned(text: &str) -> Result<Document<String>, ParseProblem> {
    let (_, body) = split_bom(text)?;
    Document::parse(body.to_string()).map_err(|e| {
        let bom = text.len() - body.len();
        let span = e.span().unwrap_or(0..0);
        let mut message = e.message().trim().replace('\n', " ");
        // Name the key: "duplicate key" alone sends the operator hunting.
        let token = body.get(span.clone()).unwrap_or("").trim();
        if !token.is_empty() && token.len() <= 80 && !token.contains('\n') && message.starts_with("duplicate") {
            message = format!("{message} `{token}`");
        }
        ParseProblem { location: Location::of(text, span.start + bom), message }
    })
}

/// Parse for editing.
pub fn parse(text: &str) -> Result<DocumentMut, ParseProblem> {
    parse_spanned(text).map(|d| d.into_mut())
}

/// Valid TOML that codex still refuses to start with, located. Today: a legacy
/// `profile = "NAME"` selector naming no `[profiles.NAME]` (codex 0.13x exits with
/// "config profile `NAME` not found").
pub fn semantic_problems(doc: &Document<String>) -> Vec<ParseProblem> {
    let mut out = Vec::new();
    if let Some(name) = doc.get("profile").and_then(|p| p.as_str()) {
        let exists = doc
            .get("profiles")
            .and_then(|p| p.as_table_like())
            .is_some_and(|p| p.get(name).is_some_and(|t| t.is_table_like()));
        if !exists {
            let at = doc.as_table().key("profile").and_then(|k| k.span()).map(|s| s.start).unwrap_or(0);
            out.push(ParseProblem {
                location: Location::of(doc.raw(), at),
                message: format!("profile = \"{name}\" names no [profiles.{name}] table: codex refuses to start (config profile `{name}` not found)"),
            });
        }
    }
    out
}

/// A top-level key found inside another table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Misplaced {
    pub key: String,
    /// The dotted path of the table it sits in, e.g. `mcp_servers.molecule.env`.
    pub table: String,
    pub location: Option<Location>,
}

impl Misplaced {
    pub fn evidence(&self) -> String {
        let at = self
            .location
            .as_ref()
            .map(|l| format!("line {}: ", l.line))
            .unwrap_or_default();
        format!("{at}`{}` sits inside [{}], where codex ignores it", self.key, self.table)
    }
}

/// Is `path` a table where the top-level keys legitimately live? The root and `profiles.NAME`.
fn holds_root_keys(path: &[String]) -> bool {
    path.is_empty() || (path.len() == 2 && path[0] == "profiles")
}

/// Every top-level codex key that sits inside some other table (the placement trap).
pub fn misplaced_keys(doc: &Document<String>) -> Vec<Misplaced> {
    let mut out = Vec::new();
    walk(doc.as_table(), &mut Vec::new(), &mut |path, key, span| {
        if !holds_root_keys(path) && ROOT_KEYS.contains(&key) {
            out.push(Misplaced {
                key: key.to_string(),
                table: path.join("."),
                location: span.map(|s| Location::of(doc.raw(), s.start)),
            });
        }
    });
    out
}

/// Called with (path of the table, key, the key's byte span).
type KeyVisitor<'a> = dyn FnMut(&[String], &str, Option<std::ops::Range<usize>>) + 'a;

/// Visit every value key (not sub-tables) with the path of the table holding it.
fn walk(table: &dyn TableLike, path: &mut Vec<String>, f: &mut KeyVisitor) {
    for (key, item) in table.iter() {
        let span = table.key(key).and_then(|k| k.span());
        match item {
            Item::Table(t) => {
                path.push(key.to_string());
                walk(t, path, f);
                path.pop();
            }
            Item::Value(toml_edit::Value::InlineTable(t)) => {
                f(path, key, span.clone());
                path.push(key.to_string());
                walk(t, path, f);
                path.pop();
            }
            Item::ArrayOfTables(a) => {
                for t in a.iter() {
                    path.push(key.to_string());
                    walk(t, path, f);
                    path.pop();
                }
            }
            _ => f(path, key, span),
        }
    }
}

/// Where an effective setting comes from (contract: `default`, `config`, `profile`,
/// `project-trust`, `cli`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Default,
    Config,
    Profile,
    ProjectTrust,
    Cli,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::Config => "config",
            Source::Profile => "profile",
            Source::ProjectTrust => "project-trust",
            Source::Cli => "cli",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub value: String,
    pub source: Source,
}

impl Setting {
    fn new(value: impl Into<String>, source: Source) -> Self {
        Setting { value: value.into(), source }
    }
}

/// What codex will do, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effective {
    pub sandbox_mode: Setting,
    pub approval_policy: Setting,
    /// `sandbox_workspace_write.network_access` as codex will see it (matters only for
    /// workspace-write: read-only always unshares the network).
    pub network_access: bool,
    /// The legacy profile in force (`--profile`, else top-level `profile = "NAME"`).
    pub active_profile: Option<String>,
}

impl Effective {
    pub fn is_fixed(&self) -> bool {
        self.sandbox_mode.value == DANGER_FULL_ACCESS && self.approval_policy.value == NEVER
    }

    /// Does this mode make codex run commands under bwrap?
    pub fn needs_bwrap(&self) -> bool {
        self.sandbox_mode.value != DANGER_FULL_ACCESS
    }

    /// Does the mode unshare the network namespace (so loopback must be configurable)?
    pub fn unshares_net(&self) -> bool {
        match self.sandbox_mode.value.as_str() {
            DANGER_FULL_ACCESS => false,
            "workspace-write" => !self.network_access,
            _ => true,
        }
    }
}

/// The string a setting item holds; tables (e.g. `approval_policy = { granular = ... }`) are
/// named by their single key so the operator sees what kind of policy it is.
fn setting_str(item: &Item) -> Option<String> {
    if let Some(s) = item.as_str() {
        return Some(s.to_string());
    }
    item.as_table_like()
        .map(|t| t.iter().map(|(k, _)| k.to_string()).next().unwrap_or_else(|| "table".into()))
}

/// `default_permissions` (codex >= 0.147) in sandbox_mode's words.
fn permissions_mode(item: &Item) -> Option<String> {
    match item.as_str()? {
        ":danger-full-access" => Some(DANGER_FULL_ACCESS.into()),
        ":workspace" => Some("workspace-write".into()),
        ":read-only" => Some("read-only".into()),
        other => Some(other.to_string()),
    }
}

fn network_access_of(t: &dyn TableLike) -> Option<bool> {
    t.get("sandbox_workspace_write")
        .and_then(|i| i.as_table_like())
        .and_then(|s| s.get("network_access"))
        .and_then(|v| v.as_bool())
}

/// The legacy profile selected: `--profile NAME` beats top-level `profile = "NAME"`.
pub fn active_profile(doc: &DocumentMut, cli: &CliOverrides) -> Option<String> {
    cli.profile
        .clone()
        .or_else(|| doc.get("profile").and_then(|p| p.as_str()).map(str::to_string))
}

/// Does a `[projects."<dir>"]` entry with `trust_level = "trusted"` cover `cwd`?
fn trusted_project(doc: &DocumentMut, cwd: Option<&str>) -> bool {
    let Some(projects) = doc.get("projects").and_then(|p| p.as_table_like()) else {
        return false;
    };
    let Some(cwd) = cwd else { return false };
    projects.iter().any(|(dir, entry)| {
        let trusted = entry
            .as_table_like()
            .and_then(|t| t.get("trust_level"))
            .and_then(|v| v.as_str())
            == Some("trusted");
        let dir = dir.trim_end_matches('/');
        trusted && (cwd == dir || cwd.starts_with(&format!("{dir}/")) || dir.is_empty())
    })
}

/// Effective sandbox mode and approval policy, by codex's precedence (the same in 0.130,
/// 0.147 and 0.163): command line > `-c` > active profile > top level > project trust >
/// default. `cwd` is the codex process's working directory when known.
pub fn effective(doc: &DocumentMut, cli: &CliOverrides, cwd: Option<&str>) -> Effective {
    let profile_name = active_profile(doc, cli);
    let profile = profile_name.as_deref().and_then(|name| {
        doc.get("profiles")
            .and_then(|p| p.as_table_like())
            .and_then(|p| p.get(name))
            .and_then(|p| p.as_table_like())
    });

    let sandbox_mode = if let Some(v) = &cli.sandbox_mode {
        Setting::new(v.clone(), Source::Cli)
    } else if let Some(v) = profile.and_then(|p| p.get("sandbox_mode")).and_then(setting_str) {
        Setting::new(v, Source::Profile)
    } else if let Some(v) = profile.and_then(|p| p.get("default_permissions")).and_then(permissions_mode) {
        Setting::new(v, Source::Profile)
    } else if let Some(v) = doc.get("sandbox_mode").and_then(setting_str) {
        Setting::new(v, Source::Config)
    } else if let Some(v) = doc.get("default_permissions").and_then(permissions_mode) {
        Setting::new(v, Source::Config)
    } else if trusted_project(doc, cwd) {
        Setting::new("workspace-write", Source::ProjectTrust)
    } else {
        Setting::new("read-only", Source::Default)
    };

    let approval_policy = if let Some(v) = &cli.approval_policy {
        Setting::new(v.clone(), Source::Cli)
    } else if let Some(v) = profile.and_then(|p| p.get("approval_policy")).and_then(setting_str) {
        Setting::new(v, Source::Profile)
    } else if let Some(v) = doc.get("approval_policy").and_then(setting_str) {
        Setting::new(v, Source::Config)
    } else if cli.exec {
        Setting::new(NEVER, Source::Default)
    } else {
        Setting::new("on-request", Source::Default)
    };

    let network_access = cli
        .network_access
        .or_else(|| profile.and_then(network_access_of))
        .or_else(|| network_access_of(doc.as_table()))
        .unwrap_or(false);

    Effective { sandbox_mode, approval_policy, network_access, active_profile: profile_name }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codex::argv::CliOverrides;

    fn eff(text: &str) -> Effective {
        effective(&parse(text).unwrap(), &CliOverrides::default(), None)
    }

    #[test]
    fn defaults_are_read_only_on_request() {
        let e = eff("");
        assert_eq!(e.sandbox_mode, Setting::new("read-only", Source::Default));
        assert_eq!(e.approval_policy, Setting::new("on-request", Source::Default));
    }

    #[test]
    fn key_after_table_header_is_not_top_level() {
        let e = eff("[mcp_servers.x.env]\nA = \"1\"\nsandbox_mode = \"danger-full-access\"\n");
        assert_eq!(e.sandbox_mode.source, Source::Default);
        let d = parse_spanned("[mcp_servers.x.env]\nsandbox_mode = \"danger-full-access\"\n").unwrap();
        let m = misplaced_keys(&d);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].table, "mcp_servers.x.env");
        assert_eq!(m[0].location.as_ref().unwrap().line, 2);
    }

    #[test]
    fn profile_beats_top_level() {
        let e = eff("profile = \"p\"\nsandbox_mode = \"danger-full-access\"\n[profiles.p]\nsandbox_mode = \"workspace-write\"\n");
        assert_eq!(e.sandbox_mode, Setting::new("workspace-write", Source::Profile));
        assert_eq!(e.active_profile.as_deref(), Some("p"));
    }

    #[test]
    fn project_trust_only_when_cwd_matches_and_nothing_set() {
        let text = "[projects.\"/work\"]\ntrust_level = \"trusted\"\n";
        let d = parse(text).unwrap();
        let e = effective(&d, &CliOverrides::default(), Some("/work/sub"));
        assert_eq!(e.sandbox_mode, Setting::new("workspace-write", Source::ProjectTrust));
        let e = effective(&d, &CliOverrides::default(), Some("/elsewhere"));
        assert_eq!(e.sandbox_mode.source, Source::Default);
    }

    #[test]
    fn network_access_in_every_form() {
        for t in [
            "[sandbox_workspace_write]\nnetwork_access = true\n",
            "sandbox_workspace_write.network_access = true\n",
            "sandbox_workspace_write = { network_access = true }\n",
        ] {
            assert!(eff(t).network_access, "{t}");
        }
    }

    #[test]
    fn parse_problem_names_line_and_column() {
        let p = parse("a = 1\nsandbox_mode = \"x\"\nsandbox_mode = \"y\"\n").unwrap_err();
        assert_eq!(p.location.line, 3);
        assert!(p.message.contains("duplicate"), "{}", p.message);
    }
}
