//! The one narrow seam to the outside world: a fleet of hosts running agent containers.
//!
//! The trait speaks in operations (discover, read these agents, write this file if its sha256
//! is X, restart, verify, lock), never in shell text: shell text is an implementation detail of
//! the AWS and Docker backends, built from templates with every value passed as data. The
//! scan, plan and rollout code above it is the same for every source, so the demo, Docker and
//! AWS runs exercise one code path.

pub mod aws;
pub mod diagnosis;
pub mod docker;
pub mod filter;
pub mod ops;
pub mod read_only;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::probe::ProbeReport;

/// One host (an EC2 instance, or this machine's Docker engine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub id: String,
    pub name: String,
    /// Region or engine address: where it was found.
    pub location: String,
    pub reachable: bool,
    /// Why it is not reachable (verbatim: PingStatus, SSM status detail, engine error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_reason: Option<String>,
    /// SSM agent version / engine version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
}

/// Shortest container id prefix a selector may use (Docker's short ids are 12 hex digits).
pub const MIN_ID_PREFIX: usize = 12;

/// Which container, on which host. `id()` is the agent id operators pass to `--agent`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AgentRef {
    pub host: String,
    pub container_id: String,
    pub name: String,
}

impl AgentRef {
    /// Stable across scans as long as the container is not re-created: host + container name.
    pub fn id(&self) -> String {
        format!("{}/{}", self.host, self.name)
    }

    /// Could `sel` name this agent (`HOST_ID/CONTAINER`, or a bare container name, full id or
    /// id prefix of 12+ hex digits)? A per-agent test, blind to the rest of the fleet: whether
    /// the selector names *only* this agent (and host names) is `crate::select`'s to decide,
    /// which every command taking `--agent` resolves through.
    pub fn matches(&self, sel: &str) -> bool {
        match sel.split_once('/') {
            Some((host, c)) => host == self.host && self.container_matches(c),
            None => self.container_matches(sel),
        }
    }

    /// Does `c` (the CONTAINER part of a selector) name this container: its name, its full id,
    /// or a prefix of at least [`MIN_ID_PREFIX`] hex digits of its id? Never a substring of the
    /// name.
    pub fn container_matches(&self, c: &str) -> bool {
        c == self.name
            || (!self.container_id.is_empty() && c == self.container_id)
            || (c.len() >= MIN_ID_PREFIX && c.bytes().all(|b| b.is_ascii_hexdigit()) && self.container_id.starts_with(c))
    }
}

/// Everything a backend read about one agent container. Raw evidence: diagnosis happens above
/// the trait. Texts are redacted on the host before they leave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRead {
    pub agent: AgentRef,
    pub image: String,
    pub image_id: String,
    /// Container labels (values redacted where they look secret).
    pub labels: BTreeMap<String, String>,
    /// `running`, `exited`, ...
    pub state: String,
    pub restart_count: u64,
    pub started_at: String,
    /// The user the probe ran as (the agent user).
    pub user: String,
    /// Entrypoint + Cmd, secret-looking values redacted.
    pub start_command: Vec<String>,
    /// `docker diff` lines: `C /path`, `A /path`, `D /path`.
    pub layer_changes: Vec<String>,
    /// The boot check's WARN line from the container log, if any.
    pub boot_warn: Option<String>,
    /// The probe's report (with redacted file contents), or why there is none.
    pub probe: Result<ProbeReport, String>,
}

/// One host's answer to a scan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRead {
    pub host: Host,
    /// The host's agents, or why they could not be listed (the host is then unreachable).
    pub agents: Result<Vec<AgentRead>, String>,
}

/// Replace a file's content, conditional on its current sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteRequest {
    pub path: String,
    /// sha256 of the real bytes the plan was made from; `None`: the file must not exist yet.
    pub before_sha256: Option<String>,
    /// The new content as previewed: secrets as `<redacted:N>` placeholders of the *current*
    /// file, restored on the host.
    pub after_redacted: String,
    pub run_id: String,
    /// The redacted content the plan was made from: the host compares it with the file it reads
    /// itself before writing (None: the sha256 alone, as plans and journals before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_redacted: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteReceipt {
    /// Where the original was kept, inside the container (owner-only directory, off PATH).
    pub backup_path: String,
    pub after_sha256: String,
}

/// Put a backup back, conditional on the file still holding what the run left there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRequest {
    pub path: String,
    pub backup_path: String,
    /// sha256 the file must have now (as recorded after the run's restart); `None` = absent.
    pub expected_current_sha256: Option<String>,
}

/// A copy of a file kept before a run touched it (config.toml is regenerated by a restart, so
/// it is backed up even when only the emitter is written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRequest {
    pub path: String,
    pub run_id: String,
}

/// The boot assertion's outcome on one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub passed: bool,
    /// One line per check, verbatim evidence.
    pub checks: Vec<(String, bool, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockOutcome {
    Acquired,
    /// Somebody else's run holds it: who, since when.
    HeldBy(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum FleetError {
    /// The file no longer has the content the plan was made from: nothing was written.
    #[error("{path} changed since the plan was made (sha256 {found}); nothing written")]
    Changed { path: String, found: String },
    #[error("host {host} unreachable: {reason}")]
    Unreachable { host: String, reason: String },
    #[error("agent {agent} not found (re-created or gone)")]
    AgentGone { agent: String },
    #[error("refused: {0}")]
    Refused(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("no credentials: {0}")]
    NoCredentials(String),
    #[error("{0}")]
    Other(String),
}

/// A source of hosts and agents. Implementations: Docker (bollard), AWS (EC2 + SSM), and the
/// demo (the AWS implementation over a simulated AWS).
#[async_trait]
pub trait Fleet: Send + Sync {
    /// e.g. `docker unix:///var/run/docker.sock`, `aws us-east-2 tag:Role=workspace`.
    fn describe(&self) -> String;

    /// The hosts, with reachability known without waiting for a command to time out where the
    /// source can tell.
    async fn discover(&self) -> Result<Vec<Host>, FleetError>;

    /// Read every agent on `hosts`, sending each host's answer as soon as it is in.
    async fn scan(&self, hosts: &[Host], tx: tokio::sync::mpsc::Sender<HostRead>) -> Result<(), FleetError>;

    /// Read one agent again (after a restart).
    async fn read_agent(&self, agent: &AgentRef) -> Result<AgentRead, FleetError>;

    /// Keep a copy of `path` in the agent's backup directory; returns where (None: no file).
    async fn backup(&self, agent: &AgentRef, req: &BackupRequest) -> Result<Option<WriteReceipt>, FleetError>;

    /// Conditional, atomic, backed-up write (owner and mode kept).
    async fn write_file(&self, agent: &AgentRef, req: &WriteRequest) -> Result<WriteReceipt, FleetError>;

    /// Restore a backup, conditional on the current content.
    async fn restore_file(&self, agent: &AgentRef, req: &RestoreRequest) -> Result<WriteReceipt, FleetError>;

    async fn restart(&self, agent: &AgentRef) -> Result<(), FleetError>;

    /// Wait until the container runs and stays up (restart count unchanged), then re-read it.
    async fn wait_stable(&self, agent: &AgentRef, timeout: Duration) -> Result<AgentRead, FleetError>;

    /// The boot assertion: codex's effective permissions and Gitea through codex's own path.
    async fn verify(&self, agent: &AgentRef) -> Result<VerifyReport, FleetError>;

    /// Lock the agent for a run, on its host (so two operators on two machines cannot collide).
    /// Idempotent for the same run and process token; takes over a lock of the same run held by
    /// one of `key.takeover`'s tokens.
    async fn lock(&self, agent: &AgentRef, key: &LockKey) -> Result<LockOutcome, FleetError>;

    /// Release the run's lock (held by `key.token` or one of `key.takeover`); absent is fine.
    async fn unlock(&self, agent: &AgentRef, key: &LockKey) -> Result<(), FleetError>;
}

/// Who takes an agent's lock: the run, the process acting for it, the operator. A run id alone
/// is not enough: two processes could act for one run (a console rollback racing an `apply`),
/// so every process has its own token, and it takes over a lock of its run only from the
/// processes the run's journal names (`takeover`: they are gone, since this process holds the
/// journal's exclusive lock). `takeover = ["*"]` is `unlock --run`: any process of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockKey {
    pub run_id: String,
    /// `[A-Za-z0-9-]`, unique per process.
    pub token: String,
    /// `user@host`, shown to whoever finds the lock held.
    pub holder: String,
    pub takeover: Vec<String>,
}

impl LockKey {
    /// `takeover` as the host scripts take it: comma-separated, `-` for none.
    pub fn takeover_arg(&self) -> String {
        if self.takeover.is_empty() {
            "-".into()
        } else {
            self.takeover.join(",")
        }
    }
}

impl FleetError {
    /// The host never gave an answer that can be read: a command timed out, was cancelled, or
    /// its output was lost or cut. The operation may or may not have happened (`unknown`), as
    /// opposed to an answer that said it failed or was refused (`failed`), or a command that
    /// was never delivered (`Unreachable`: nothing ran).
    pub fn is_no_answer(&self) -> bool {
        match self {
            FleetError::Timeout(_) => true,
            // agent-ops.sh's own failures (`io`, `absent`) are answers; anything else under
            // `Other` is an answer that did not come back whole (no header, cut, cancelled).
            FleetError::Other(m) => !(m.starts_with("io: ") || m.starts_with("absent: ")),
            _ => false,
        }
    }
}
