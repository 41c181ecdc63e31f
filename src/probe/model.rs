//! What the probe script (`assets/probe.sh`) found inside one agent container, as a value.
//!
//! Every backend (SSM, Docker, the demo) hands the script's text to [`super::parse`] and gets
//! this back; diagnosis reads only this. Fields are `Option` where the script may not have been
//! able to find out: "absent" (tool or file not there) is an answer, `None` means not reported.

use serde::{Deserialize, Serialize};

/// The outcome of one probe step, in the contract's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The step succeeded (exit 0).
    Ok,
    /// The kernel or runtime refused (EPERM/EACCES-class failure).
    Denied,
    /// The tool or file the step needs is not there.
    Absent,
    /// The step ran but failed for another reason, or timed out.
    #[default]
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Absent => "absent",
            Outcome::Error => "error",
        }
    }
}

/// One command the probe ran: its outcome, exit status and the first line(s) of its stderr,
/// verbatim (after on-host redaction).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Step {
    pub outcome: Outcome,
    /// Exit status; `None` when the tool was absent or the step timed out.
    pub rc: Option<i32>,
    /// The step's stderr (at most 6 lines of 300 bytes), verbatim after on-host redaction.
    /// Only a detail probe carries it; a summary probe leaves it empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    /// Which known failure the stderr showed, matched on the host so that even a summary
    /// (which carries no stderr) can tell the failure classes apart. See [`Signature`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// A known stderr pattern, matched by the probe (the strings are those codex itself matches;
/// see shared/facts/codex-sandbox.md). First match wins, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signature {
    /// `RTM_NEWADDR` / `RTM_NEWLINK`: the netns loopback could not be configured.
    NetnsLoopback,
    /// `uid map` / `uid_map` / `gid_map` / `setgroups`: writing the id map was refused.
    UidMap,
    /// `new namespace` (bwrap's "No permissions to create (a) new namespace") or
    /// `unshare failed`: the user namespace could not be created.
    UsernsCreate,
    /// `bubblewrap is unavailable` (codex found no bwrap).
    BwrapUnavailable,
    /// codex rejected its config (`duplicate key`, `TOML parse error`, `unknown variant`, a
    /// line naming a config, a line starting `Error`, ...).
    ConfigError,
    /// Another `Operation not permitted` / `Permission denied`.
    PermissionDenied,
    /// The step was killed by `timeout`.
    Timeout,
}

impl Signature {
    /// The one-letter code of the probe's output format.
    pub fn code(self) -> char {
        match self {
            Signature::NetnsLoopback => 'l',
            Signature::UidMap => 'm',
            Signature::UsernsCreate => 'u',
            Signature::BwrapUnavailable => 'b',
            Signature::ConfigError => 'c',
            Signature::PermissionDenied => 'p',
            Signature::Timeout => 't',
        }
    }

    pub fn from_code(c: char) -> Option<Signature> {
        Some(match c {
            'l' => Signature::NetnsLoopback,
            'm' => Signature::UidMap,
            'u' => Signature::UsernsCreate,
            'b' => Signature::BwrapUnavailable,
            'c' => Signature::ConfigError,
            'p' => Signature::PermissionDenied,
            't' => Signature::Timeout,
            _ => return None,
        })
    }
}

/// A file the probe hashed: config.toml or the boot emitter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct FileInfo {
    pub path: String,
    /// ok (hashed), absent (no such file), error (unreadable, or no sha256 tool).
    #[serde(default)]
    pub outcome: Outcome,
    /// sha256 (lower-case hex) of the real bytes, secrets included; `None` when the file is
    /// absent. A summary probe carries only the first 12 hex digits (to fit SSM's output
    /// limit): compare with [`FileInfo::sha256_matches`].
    pub sha256: Option<String>,
    pub size: Option<u64>,
    /// The file's content with secret values replaced by placeholders, when requested.
    /// Shared: a fleet's agents hold a handful of distinct contents ([`super::Interner`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<super::Text>,
}

impl FileInfo {
    /// Whether the file's hash is `sha256` (full hex), also when only a summary's prefix is known.
    pub fn sha256_matches(&self, sha256: &str) -> bool {
        match &self.sha256 {
            Some(h) if h.len() >= 12 => {
                sha256.len() >= h.len() && sha256[..h.len()].eq_ignore_ascii_case(h)
            }
            _ => false,
        }
    }
}

/// A request to `<gitea>/api/v1/version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Http {
    /// HTTP status; `None` when nothing answered.
    pub status: Option<u16>,
    /// ok: the client (or codex) exited 0; an HTTP error status still counts as an answer.
    pub outcome: Outcome,
    /// Exit status of the client, or of `codex sandbox` (1 on a sandbox failure).
    #[serde(default)]
    pub rc: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
}

/// What `codex debug prompt-input` said codex will do with the config as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct CodexEffective {
    pub sandbox_mode: Option<String>,
    pub approval_policy: Option<String>,
    pub network_access: Option<bool>,
}

/// One codex process of this container (attributed by cgroup), argv redacted on the host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct CodexProcess {
    pub pid: u32,
    pub argv: Vec<String>,
    /// The process's working directory, when readable (decides `[projects.*]` trust).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct ProbeReport {
    /// Output format version the script declared.
    pub format: u32,
    /// Whether this came from a detail probe (stderr, full hashes and paths, argv with cwd).
    #[serde(default)]
    pub detail: bool,
    /// The probe could not run its steps (e.g. no writable scratch directory): why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_error: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub user: Option<String>,
    /// `CapEff` from /proc/self/status, hex as printed there (16 digits; a summary sends it
    /// without leading zeros and the parser pads it back).
    pub cap_eff: Option<String>,
    /// `/proc/self/uid_map`, lines joined by `;` with runs of blanks folded (e.g. `0 0 4294967295`).
    pub uid_map: Option<String>,
    /// Whether /etc/subuid has an entry for this user: ok (yes), absent (no file or no entry).
    pub subuid: Outcome,
    /// `/proc/sys/kernel/unprivileged_userns_clone`; `None` = absent on this kernel.
    pub sysctl_unprivileged_userns_clone: Option<String>,
    pub sysctl_max_user_namespaces: Option<String>,
    pub sysctl_apparmor_restrict_unprivileged_userns: Option<String>,
    /// `unshare --user true`.
    pub userns: Step,
    /// `unshare --user --map-root-user true`.
    pub userns_map_root: Step,
    /// Codex's own start-up probe: `bwrap --unshare-user --unshare-net --ro-bind / / /bin/true`.
    pub bwrap: Step,
    /// Which bwrap: a path on PATH, codex's bundled one, or `None` when there is none.
    /// A summary says only "bundled" for codex's own: then this is `codex-resources/bwrap`.
    pub bwrap_path: Option<String>,
    /// The bwrap is the one bundled with codex (`codex-resources/bwrap`), none on PATH.
    #[serde(default)]
    pub bwrap_bundled: bool,
    pub codex_path: Option<String>,
    /// `codex --version` as printed (e.g. `codex-cli 0.133.0`).
    pub codex_version: Option<String>,
    /// In a summary, argv[0] (and argv[1] after `node`) is reduced to its basename and `cwd`
    /// is not sent.
    pub codex_processes: Vec<CodexProcess>,
    /// A summary had no room for the processes' argv: only their pids are known (argv empty);
    /// a detail probe has them.
    #[serde(default)]
    pub codex_processes_elided: bool,
    /// `codex debug prompt-input` run on a temporary copy of `$CODEX_HOME`.
    pub prompt_input: Step,
    pub effective: Option<CodexEffective>,
    pub codex_home: Option<String>,
    pub config: FileInfo,
    pub emitter: FileInfo,
    /// Plain request from the container (curl as the agent).
    pub gitea_plain: Http,
    /// The same request through `codex sandbox [linux]` with the agent's effective settings.
    pub gitea_codex: Http,
    /// codex's other config layers, `None` when the probe did not report them (an older
    /// probe, or a summary naming none).
    /// `/etc/codex/config.toml`: codex's system layer, below the user's config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_config: Option<FileInfo>,
    /// `/etc/codex/requirements.toml`: managed constraints no config can lift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<FileInfo>,
    /// `/etc/codex/managed_config.toml`: the legacy form of the managed constraints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_config: Option<FileInfo>,
    /// The nearest `.codex/config.toml` from codex's working directory up to its project root
    /// (path `<dir>/.codex/config.toml`); codex reads it, above the user's config, when the
    /// user's `[projects]` trusts the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_config: Option<FileInfo>,
    /// codex's own session records of the last 24 h, as counts (never content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionStats>,
}

impl ProbeReport {
    /// Make this report's file contents the ones `texts` already keeps (a scan of a big fleet
    /// holds each distinct content once).
    pub fn share_texts(&mut self, texts: &mut super::Interner) {
        let layers = [&mut self.system_config, &mut self.requirements, &mut self.managed_config, &mut self.project_config];
        let files = [&mut self.config, &mut self.emitter].into_iter().chain(layers.into_iter().flatten());
        for f in files {
            if let Some(t) = &mut f.redacted {
                texts.share(t);
            }
        }
    }
}

impl SessionStats {
    /// The harm in a few words, e.g. `37 sandbox denials in 24 h, none succeeded since 02:10`
    /// (UTC, `now` being when the probe ran); `None` when the records show no sandbox failure.
    pub fn harm(&self, now: std::time::SystemTime) -> Option<String> {
        if self.error || self.sandbox_denials == 0 {
            return None;
        }
        let d = self.sandbox_denials;
        let plural = if d == 1 { "" } else { "s" };
        Some(match self.stalled_minutes {
            Some(m) => {
                let since = now - std::time::Duration::from_secs(u64::from(m) * 60);
                let t = humantime::format_rfc3339_seconds(since).to_string();
                format!("{d} sandbox denial{plural} in 24 h, 0 commands succeeded since {} UTC", &t[11..16])
            }
            None => format!("{d} sandbox denial{plural}, {} of {} commands succeeded in 24 h", self.succeeded, self.commands),
        })
    }
}

/// What codex's session records (`$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl`) say about
/// the last 24 hours: evidence of harm, not only of risk. Counts and a time only: the records'
/// content (prompts, code, command output) never leaves the container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct SessionStats {
    /// The records could not be read (the probe says only that).
    #[serde(default)]
    pub error: bool,
    /// Tool-call outputs (commands codex ran) recorded in the window.
    pub commands: u32,
    /// Of those, outputs carrying a sandbox failure (bwrap / namespace errors).
    pub sandbox_denials: u32,
    /// Of those, commands that exited 0.
    pub succeeded: u32,
    /// Minutes, before the probe ran, since the current run of sandbox failures began (no
    /// command succeeded after it); `None` when the last command was not a sandbox failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled_minutes: Option<u32>,
}
