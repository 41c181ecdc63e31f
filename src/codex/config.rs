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

pub use super::modes::{APPROVAL_POLICIES, DANGER_FULL_ACCESS, NEVER, SANDBOX_MODES};

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
/// "config profile `NAME` not found"), and a top-level `default_permissions` naming neither a
/// built-in profile nor a `[permissions.NAME]` table (measured with 0.133.0 ... 0.163.0: every
/// release refuses to start, in the words quoted below).
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
    if let Some(name) = doc.get("default_permissions").and_then(|p| p.as_str()) {
        let codex_says = if name.starts_with(':') {
            (!BUILT_IN_PERMISSIONS.contains(&name))
                .then(|| format!("is no built-in profile ({}): codex refuses to start (default_permissions refers to unknown built-in profile `{name}`)", BUILT_IN_PERMISSIONS.join(", ")))
        } else {
            match doc.get("permissions").and_then(|p| p.as_table_like()) {
                None => Some(format!("names no [permissions.{name}] table: codex refuses to start (default_permissions requires a `[permissions]` table)")),
                Some(p) if !p.get(name).is_some_and(|t| t.is_table_like()) => Some(format!(
                    "names no [permissions.{name}] table: codex refuses to start (default_permissions refers to undefined profile `{name}`)"
                )),
                Some(_) => None,
            }
        };
        if let Some(why) = codex_says {
            let at = doc.as_table().key("default_permissions").and_then(|k| k.span()).map(|s| s.start).unwrap_or(0);
            out.push(ParseProblem { location: Location::of(doc.raw(), at), message: format!("default_permissions = \"{name}\" {why}") });
        }
    }
    out
}

/// The built-in permission profiles codex knows (measured, 0.133.0 ... 0.163.0).
pub const BUILT_IN_PERMISSIONS: [&str; 3] = [":read-only", ":workspace", ":danger-full-access"];

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

/// Where an effective setting comes from (contract: `default`, `system`, `config`,
/// `project`, `profile`, `project-trust`, `cli`, `requirements`). codex-rs's config loader
/// stacks its layers low to high as system (`/etc/codex/config.toml`), user
/// (`$CODEX_HOME/config.toml`), trusted project (`.codex/config.toml` from the project root
/// down to the working directory), session flags (the command line); a selected profile's
/// keys beat the top-level ones; managed requirements (`/etc/codex/requirements.toml`, legacy
/// `/etc/codex/managed_config.toml`) constrain the result, whatever any layer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Default,
    /// `/etc/codex/config.toml`, below the user's config.
    System,
    Config,
    /// A trusted project's `.codex/config.toml`, above the user's config.
    Project,
    Profile,
    ProjectTrust,
    Cli,
    /// A managed requirement (`/etc/codex/requirements.toml` or `managed_config.toml`)
    /// forced this value: no config layer can change it.
    Requirements,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::System => "system",
            Source::Config => "config",
            Source::Project => "project",
            Source::Profile => "profile",
            Source::ProjectTrust => "project-trust",
            Source::Cli => "cli",
            Source::Requirements => "requirements",
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

/// A permission profile name (`default_permissions`) in sandbox_mode's words: the built-ins
/// map to the legacy modes (measured with codex 0.133-0.163); a custom `[permissions.NAME]`
/// profile restricts the filesystem, so it runs under bwrap like the legacy sandboxed modes and
/// is named `permissions:NAME`.
fn permissions_mode(item: &Item) -> Option<String> {
    match item.as_str()? {
        ":danger-full-access" => Some(DANGER_FULL_ACCESS.into()),
        ":workspace" => Some("workspace-write".into()),
        ":read-only" => Some("read-only".into()),
        other => Some(format!("permissions:{other}")),
    }
}

/// The sandbox mode one table (a layer's top level or a profile) selects. Within one table
/// `default_permissions` wins over the legacy `sandbox_mode` (measured: 0.133, 0.149, 0.163
/// run `:workspace` with `sandbox_mode = "danger-full-access"` beside it).
fn table_mode(t: &dyn TableLike) -> Option<String> {
    t.get("default_permissions")
        .and_then(permissions_mode)
        .or_else(|| t.get("sandbox_mode").and_then(setting_str))
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

/// Is `dir` equal to `key` or below it?
fn covers(key: &str, dir: &str) -> bool {
    let key = key.trim_end_matches('/');
    dir == key || key.is_empty() || dir.starts_with(&format!("{key}/"))
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
        trusted && covers(dir, cwd)
    })
}

/// Managed constraints: `/etc/codex/requirements.toml` (`allowed_sandbox_modes`,
/// `allowed_approval_policies`) and, for the fields it leaves unset, the legacy
/// `/etc/codex/managed_config.toml` (its `sandbox_mode` / `approval_policy` allow only that
/// value, and as codex's topmost layer they are also what runs). No config file can lift them:
/// codex falls back to `read-only` (sandbox) or the first allowed policy, or refuses to start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Requirements {
    pub allowed_sandbox_modes: Option<Constraint>,
    pub allowed_approval_policies: Option<Constraint>,
}

/// One constraint: the allowed values, where they were written, and whether it is a legacy
/// managed_config.toml value (a layer above every other, not only a constraint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Constraint {
    pub allowed: Vec<String>,
    /// `FILE: KEY = VALUE`, verbatim enough to find it.
    pub evidence: String,
    pub managed_value: bool,
}

pub const REQUIREMENTS_PATH: &str = "/etc/codex/requirements.toml";
pub const MANAGED_CONFIG_PATH: &str = "/etc/codex/managed_config.toml";
pub const SYSTEM_CONFIG_PATH: &str = "/etc/codex/config.toml";

fn strings(item: &Item) -> Option<Vec<String>> {
    let a = item.as_array()?;
    Some(a.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string().trim().to_string())).collect())
}

impl Requirements {
    /// Read the two managed files (redacted texts are fine: the keys hold no secrets).
    pub fn from_files(requirements: Option<&str>, managed: Option<&str>) -> Result<Requirements, (String, ParseProblem)> {
        let mut r = Requirements::default();
        if let Some(t) = requirements {
            let d = parse(t).map_err(|e| (REQUIREMENTS_PATH.to_string(), e))?;
            for (key, slot) in [
                ("allowed_sandbox_modes", &mut r.allowed_sandbox_modes),
                ("allowed_approval_policies", &mut r.allowed_approval_policies),
            ] {
                if let Some(allowed) = d.get(key).and_then(strings) {
                    let shown = d.get(key).map(|i| i.to_string()).unwrap_or_default();
                    *slot = Some(Constraint {
                        evidence: format!("{REQUIREMENTS_PATH}: {key} = {}", shown.trim()),
                        allowed,
                        managed_value: false,
                    });
                }
            }
        }
        if let Some(t) = managed {
            let d = parse(t).map_err(|e| (MANAGED_CONFIG_PATH.to_string(), e))?;
            for (key, slot) in [("sandbox_mode", &mut r.allowed_sandbox_modes), ("approval_policy", &mut r.allowed_approval_policies)] {
                if slot.is_some() {
                    continue;
                }
                if let Some(v) = d.get(key).and_then(setting_str) {
                    *slot = Some(Constraint {
                        evidence: format!("{MANAGED_CONFIG_PATH}: {key} = \"{v}\""),
                        allowed: vec![v],
                        managed_value: true,
                    });
                }
            }
        }
        Ok(r)
    }

    /// The constraints that forbid the durable fix (danger-full-access, never), each as
    /// evidence naming the file and the key.
    pub fn forbidding_fix(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = &self.allowed_sandbox_modes {
            if !c.allowed.iter().any(|v| v == DANGER_FULL_ACCESS) {
                out.push(format!("{} does not allow sandbox_mode = \"{DANGER_FULL_ACCESS}\"", c.evidence));
            }
        }
        if let Some(c) = &self.allowed_approval_policies {
            if !c.allowed.iter().any(|v| v == NEVER) {
                out.push(format!("{} does not allow approval_policy = \"{NEVER}\"", c.evidence));
            }
        }
        out
    }
}

/// codex's config layers besides the user's config.toml, as the probe read them.
#[derive(Debug, Clone, Copy, Default)]
pub struct OtherLayers<'a> {
    /// `/etc/codex/config.toml`.
    pub system: Option<&'a DocumentMut>,
    /// A project's `.codex/config.toml` and the directory holding that `.codex`: codex reads
    /// it only when the project is trusted in the user's `[projects]`.
    pub project: Option<(&'a DocumentMut, &'a str)>,
    pub requirements: Option<&'a Requirements>,
}

impl<'a> OtherLayers<'a> {
    /// The project layer when codex reads it (its directory is trusted).
    pub fn trusted_project(&self, user: &DocumentMut) -> Option<&'a DocumentMut> {
        self.project.filter(|(_, dir)| trusted_project(user, Some(dir))).map(|(d, _)| d)
    }
}

/// Effective sandbox mode and approval policy of the user's config alone (no system,
/// project or managed layer): see [`effective_in`].
pub fn effective(doc: &DocumentMut, cli: &CliOverrides, cwd: Option<&str>) -> Effective {
    effective_in(doc, &OtherLayers::default(), cli, cwd)
}

/// Effective sandbox mode and approval policy, by codex's precedence (measured with the real
/// 0.133-0.163): command line > active profile > trusted project > user config > system
/// config > project trust > default; the first layer (high to low) that sets the sandbox
/// decides it, `default_permissions` beating `sandbox_mode` within that layer; then managed
/// requirements replace a value they do not allow (sandbox: `read-only`; approval: the first
/// allowed policy) and a legacy managed_config.toml value wins over everything. `cwd` is the
/// codex process's working directory when known.
pub fn effective_in(doc: &DocumentMut, other: &OtherLayers, cli: &CliOverrides, cwd: Option<&str>) -> Effective {
    // Config layers, highest first.
    let mut layers: Vec<(&dyn TableLike, Source)> = Vec::new();
    if let Some(p) = other.trusted_project(doc) {
        layers.push((p.as_table(), Source::Project));
    }
    layers.push((doc.as_table(), Source::Config));
    if let Some(s) = other.system {
        layers.push((s.as_table(), Source::System));
    }
    let profile_name = cli.profile.clone().or_else(|| {
        layers.iter().find_map(|(t, _)| t.get("profile").and_then(|p| p.as_str()).map(str::to_string))
    });
    let profiles: Vec<&dyn TableLike> = profile_name
        .as_deref()
        .map(|name| {
            layers
                .iter()
                .filter_map(|(t, _)| {
                    t.get("profiles").and_then(|p| p.as_table_like()).and_then(|p| p.get(name)).and_then(|p| p.as_table_like())
                })
                .collect()
        })
        .unwrap_or_default();

    let mut sandbox_mode = if let Some(v) = &cli.sandbox_mode {
        Setting::new(v.clone(), Source::Cli)
    } else if let Some(v) = profiles.iter().find_map(|p| table_mode(*p)) {
        Setting::new(v, Source::Profile)
    } else if let Some((v, s)) = layers.iter().find_map(|(t, s)| table_mode(*t).map(|v| (v, *s))) {
        Setting::new(v, s)
    } else if trusted_project(doc, cwd) {
        Setting::new("workspace-write", Source::ProjectTrust)
    } else {
        Setting::new("read-only", Source::Default)
    };

    let mut approval_policy = if let Some(v) = &cli.approval_policy {
        Setting::new(v.clone(), Source::Cli)
    } else if let Some(v) = profiles.iter().find_map(|p| p.get("approval_policy").and_then(setting_str)) {
        Setting::new(v, Source::Profile)
    } else if let Some((v, s)) = layers.iter().find_map(|(t, s)| t.get("approval_policy").and_then(setting_str).map(|v| (v, *s))) {
        Setting::new(v, s)
    } else if cli.exec {
        Setting::new(NEVER, Source::Default)
    } else {
        Setting::new("on-request", Source::Default)
    };

    if let Some(r) = other.requirements {
        if let Some(c) = &r.allowed_sandbox_modes {
            if c.managed_value {
                sandbox_mode = Setting::new(c.allowed[0].clone(), Source::Requirements);
            } else if !c.allowed.contains(&sandbox_mode.value) {
                sandbox_mode = Setting::new("read-only", Source::Requirements);
            }
        }
        if let Some(c) = &r.allowed_approval_policies {
            if c.managed_value || (!c.allowed.contains(&approval_policy.value) && !c.allowed.is_empty()) {
                approval_policy = Setting::new(c.allowed[0].clone(), Source::Requirements);
            }
        }
    }

    let network_access = cli
        .network_access
        .or_else(|| profiles.iter().find_map(|p| network_access_of(*p)))
        .or_else(|| layers.iter().find_map(|(t, _)| network_access_of(*t)))
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

    /// What codex refuses of `default_permissions` (measured with 0.133.0 ... 0.163.0: every
    /// release prints the words in parentheses and exits 1; the accepted ones run).
    #[test]
    fn default_permissions_naming_no_profile_is_refused_as_codex_refuses_it() {
        let problems = |t: &str| -> Vec<String> { semantic_problems(&parse_spanned(t).unwrap()).into_iter().map(|p| p.message).collect() };
        for ok in [
            "default_permissions = \":danger-full-access\"\n",
            "default_permissions = \":workspace\"\n",
            "default_permissions = \":read-only\"\n",
            "default_permissions = \"locked\"\n[permissions.locked]\n",
            "default_permissions = \"x\"\n[permissions]\nx = {}\n",
            "[profiles.p]\ndefault_permissions = \"nosuch\"\n",
        ] {
            assert!(problems(ok).is_empty(), "{ok}: {:?}", problems(ok));
        }
        for (bad, codex_says) in [
            ("default_permissions = \"nosuch\"\n", "default_permissions requires a `[permissions]` table"),
            ("default_permissions = \"nosuch\"\n[permissions.other]\n", "default_permissions refers to undefined profile `nosuch`"),
            ("default_permissions = \"x\"\n[permissions]\ny = {}\n", "default_permissions refers to undefined profile `x`"),
            ("default_permissions = \":full-access\"\n", "default_permissions refers to unknown built-in profile `:full-access`"),
            ("default_permissions = \":Workspace\"\n[permissions.x]\n", "default_permissions refers to unknown built-in profile `:Workspace`"),
        ] {
            let p = problems(bad);
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert!(p[0].contains(codex_says), "{bad}: {}", p[0]);
        }
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

    /// The layer order and rules measured with the real codex 0.133-0.163 (`codex debug
    /// prompt-input` with files in /etc/codex, CODEX_HOME and the working directory).
    #[test]
    fn layers_stack_as_codex_stacks_them() {
        let cli = CliOverrides::default();
        let d = |t: &str| parse(t).unwrap();
        let system = d("sandbox_mode = \"workspace-write\"\n");
        let other = OtherLayers { system: Some(&system), ..Default::default() };
        // the system layer speaks when the user's config is silent, and loses when it speaks
        let e = effective_in(&d(""), &other, &cli, None);
        assert_eq!(e.sandbox_mode, Setting::new("workspace-write", Source::System));
        let user = d("sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n");
        let e = effective_in(&user, &other, &cli, None);
        assert_eq!(e.sandbox_mode, Setting::new(DANGER_FULL_ACCESS, Source::Config));
        // across layers the higher one wins whatever its key; within one, default_permissions
        let sys_dp = d("default_permissions = \":workspace\"\n");
        let e = effective_in(&user, &OtherLayers { system: Some(&sys_dp), ..Default::default() }, &cli, None);
        assert_eq!(e.sandbox_mode.value, DANGER_FULL_ACCESS);
        let both = d("default_permissions = \":workspace\"\nsandbox_mode = \"danger-full-access\"\n");
        assert_eq!(effective(&both, &cli, None).sandbox_mode, Setting::new("workspace-write", Source::Config));
        let custom = d("default_permissions = \"locked\"\n[permissions.locked]\n");
        assert!(effective(&custom, &cli, None).needs_bwrap());
        // a project's config counts only when trusted, and then beats the user's
        let project = d("sandbox_mode = \"workspace-write\"\napproval_policy = \"on-request\"\n");
        let other = OtherLayers { project: Some((&project, "/w")), ..Default::default() };
        assert!(effective_in(&user, &other, &cli, Some("/w")).is_fixed());
        let trusting = d("sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n[projects.\"/w\"]\ntrust_level = \"trusted\"\n");
        let e = effective_in(&trusting, &other, &cli, Some("/w"));
        assert_eq!(e.sandbox_mode, Setting::new("workspace-write", Source::Project));
        assert_eq!(e.approval_policy, Setting::new("on-request", Source::Project));
        // the command line beats every layer
        let cli_ro = CliOverrides { sandbox_mode: Some("read-only".into()), ..Default::default() };
        assert_eq!(effective_in(&trusting, &other, &cli_ro, Some("/w")).sandbox_mode.source, Source::Cli);
    }

    /// Managed requirements: a value they do not allow falls back (sandbox `read-only`,
    /// approval the first allowed); the legacy managed_config.toml's values win outright.
    #[test]
    fn requirements_constrain_every_layer() {
        let cli = CliOverrides::default();
        let user = parse("sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n").unwrap();
        let req = Requirements::from_files(Some("allowed_sandbox_modes = [\"read-only\", \"workspace-write\"]\nallowed_approval_policies = [\"on-request\"]\n"), None).unwrap();
        let e = effective_in(&user, &OtherLayers { requirements: Some(&req), ..Default::default() }, &cli, None);
        assert_eq!(e.sandbox_mode, Setting::new("read-only", Source::Requirements));
        assert_eq!(e.approval_policy, Setting::new("on-request", Source::Requirements));
        let why = req.forbidding_fix();
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(why[0].starts_with("/etc/codex/requirements.toml: allowed_sandbox_modes = [\"read-only\", \"workspace-write\"]"), "{why:?}");
        let allowing = Requirements::from_files(Some("allowed_sandbox_modes = [\"read-only\", \"danger-full-access\"]\n"), None).unwrap();
        assert!(allowing.forbidding_fix().is_empty());
        let managed = Requirements::from_files(None, Some("sandbox_mode = \"workspace-write\"\n")).unwrap();
        let e = effective_in(&user, &OtherLayers { requirements: Some(&managed), ..Default::default() }, &cli, None);
        assert_eq!(e.sandbox_mode, Setting::new("workspace-write", Source::Requirements));
        assert!(managed.forbidding_fix()[0].contains("/etc/codex/managed_config.toml: sandbox_mode = \"workspace-write\""));
        // requirements.toml wins over managed_config.toml for the same field
        let both = Requirements::from_files(Some("allowed_sandbox_modes = [\"read-only\", \"danger-full-access\"]\n"), Some("sandbox_mode = \"workspace-write\"\n")).unwrap();
        assert!(both.forbidding_fix().is_empty());
        assert!(Requirements::from_files(Some("allowed_sandbox_modes = [\n"), None).is_err());
    }
}
