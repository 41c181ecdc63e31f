//! What the probe script (`assets/probe.sh`) found inside one agent container, as a value.
//!
//! Every backend (SSM, Docker, the demo) hands the script's text to [`super::parse`] and gets
//! this back; diagnosis reads only this. Fields are `Option` where the script may not have been
//! able to find out: "absent" (tool or file not there) is an answer, `None` means not reported.

use serde::{Deserialize, Serialize};

/// The outcome of one probe step, in the contract's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Step {
    pub outcome: Outcome,
    /// Exit status; `None` when the tool was absent or the step timed out.
    pub rc: Option<i32>,
    /// The step's stderr (trimmed, at most a few lines), verbatim.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
}

/// A file the probe hashed: config.toml or the boot emitter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FileInfo {
    pub path: String,
    /// sha256 (lower-case hex) of the real bytes, secrets included; `None` when the file is absent.
    pub sha256: Option<String>,
    pub size: Option<u64>,
    /// The file's content with secret values replaced by placeholders, when requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<String>,
}

/// A request to `<gitea>/api/v1/version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Http {
    /// HTTP status; `None` when nothing answered.
    pub status: Option<u16>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
}

/// What `codex debug prompt-input` said codex will do with the config as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CodexEffective {
    pub sandbox_mode: Option<String>,
    pub approval_policy: Option<String>,
    pub network_access: Option<bool>,
}

/// One codex process of this container (attributed by cgroup), argv redacted on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CodexProcess {
    pub pid: u32,
    pub argv: Vec<String>,
    /// The process's working directory, when readable (decides `[projects.*]` trust).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProbeReport {
    /// Output format version the script declared.
    pub format: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub user: Option<String>,
    /// `CapEff` from /proc/self/status, hex as printed there.
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
    pub bwrap_path: Option<String>,
    pub codex_path: Option<String>,
    /// `codex --version` as printed (e.g. `codex-cli 0.133.0`).
    pub codex_version: Option<String>,
    pub codex_processes: Vec<CodexProcess>,
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
}
