//! The run journal: append-only, fsync'd JSON lines, one file per run under the XDG state
//! directory, written *before* each step. A console killed mid-run leaves a journal from which
//! `runs`, `apply --resume` and `rollback --run` know exactly what was done. It holds hashes,
//! redacted diffs and backup locations, never a secret (plans are made from redacted text).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fleet::AgentRef;
use crate::plan::Plan;

/// Where runs and the audit log live: `$CODEX_FLEET_STATE_DIR`, else
/// `$XDG_STATE_HOME/codex-fleet`, else `~/.local/state/codex-fleet`.
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CODEX_FLEET_STATE_DIR") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".local/state")
    });
    base.join("codex-fleet")
}

/// One step of one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Lock,
    Check,
    Backup,
    Write,
    Restart,
    Wait,
    Verify,
    Unlock,
    Restore,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Lock => "lock",
            Step::Check => "check",
            Step::Backup => "backup",
            Step::Write => "write",
            Step::Restart => "restart",
            Step::Wait => "wait",
            Step::Verify => "verify",
            Step::Unlock => "unlock",
            Step::Restore => "restore",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Begin,
    Done,
    Failed,
}

/// How one agent ended in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "outcome", content = "why")]
pub enum Outcome {
    Verified,
    Failed(String),
    Skipped(String),
    RolledBack,
    RollbackFailed(String),
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Verified => "verified",
            Outcome::Failed(_) => "failed",
            Outcome::Skipped(_) => "skipped",
            Outcome::RolledBack => "rolled-back",
            Outcome::RollbackFailed(_) => "rollback-failed",
        }
    }
}

/// The run's state (`runs --json`: running, interrupted, halted, done, rolled-back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    Running,
    Interrupted,
    Halted,
    Done,
    RolledBack,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Interrupted => "interrupted",
            RunState::Halted => "halted",
            RunState::Done => "done",
            RunState::RolledBack => "rolled-back",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    pub canary: usize,
    /// `N` or `P%`.
    pub wave: String,
    /// `N` or `P%` of planned agents, over the whole run.
    pub max_errors: String,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Record {
    Start { run_id: String, time: String, operator: String, options: RunOptions, plan: Plan },
    Wave { time: String, index: usize, agents: Vec<String> },
    Step {
        time: String,
        agent: String,
        step: Step,
        phase: Phase,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backup: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    Agent { time: String, agent: String, outcome: Outcome },
    State { time: String, state: RunState, detail: String },
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// An open journal, appended to and fsync'd record by record.
pub struct Journal {
    pub run_id: String,
    path: PathBuf,
    file: File,
}

impl Journal {
    pub fn dir(run_id: &str) -> PathBuf {
        state_dir().join("runs").join(run_id)
    }

    pub fn path_of(run_id: &str) -> PathBuf {
        Self::dir(run_id).join("journal.jsonl")
    }

    /// A new run id: UTC time + random suffix, sortable.
    pub fn new_run_id() -> String {
        let t = crate::fsutil::utc_stamp();
        let r: u32 = std::process::id() ^ (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0));
        format!("{t}-{:06x}", r & 0xffffff)
    }

    pub fn create(run_id: &str) -> std::io::Result<Journal> {
        let dir = Self::dir(run_id);
        fs::create_dir_all(&dir)?;
        let path = Self::path_of(run_id);
        let file = OpenOptions::new().create_new(true).append(true).open(&path)?;
        Ok(Journal { run_id: run_id.into(), path, file })
    }

    pub fn open(run_id: &str) -> std::io::Result<Journal> {
        let path = Self::path_of(run_id);
        let file = OpenOptions::new().append(true).open(&path)?;
        Ok(Journal { run_id: run_id.into(), path, file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record and make it durable before the step it announces is taken.
    pub fn append(&mut self, r: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_string(r).map_err(std::io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        crash_test_pause();
        Ok(())
    }

    pub fn step(&mut self, agent: &AgentRef, step: Step, phase: Phase, f: impl FnOnce(&mut StepDetail)) -> std::io::Result<()> {
        let mut d = StepDetail::default();
        f(&mut d);
        self.append(&Record::Step {
            time: now(),
            agent: agent.id(),
            step,
            phase,
            path: d.path,
            backup: d.backup,
            sha256: d.sha256,
            detail: d.detail,
        })
    }
}

#[derive(Default)]
pub struct StepDetail {
    pub path: Option<String>,
    pub backup: Option<String>,
    pub sha256: Option<String>,
    pub detail: Option<String>,
}

/// Read a journal back. A torn last line (the process died mid-write) is ignored.
pub fn read(run_id: &str) -> std::io::Result<Vec<Record>> {
    let f = File::open(Journal::path_of(run_id))?;
    let mut out = Vec::new();
    for line in BufReader::new(f).lines() {
        let line = line?;
        match serde_json::from_str::<Record>(&line) {
            Ok(r) => out.push(r),
            Err(_) => break,
        }
    }
    Ok(out)
}

/// Run ids in the state directory, newest first.
pub fn list_runs() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(state_dir().join("runs"))
        .map(|d| d.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    v.sort();
    v.reverse();
    v
}

/// The audit log: every mutation, one JSON line, with time, operator, agent, file, hashes,
/// redacted diff and outcome.
pub fn audit(entry: &serde_json::Value) -> std::io::Result<()> {
    let dir = state_dir();
    fs::create_dir_all(&dir)?;
    let mut f = OpenOptions::new().create(true).append(true).open(dir.join("audit.jsonl"))?;
    let mut line = entry.to_string();
    line.push('\n');
    f.write_all(line.as_bytes())?;
    f.sync_data()
}

/// Who is running this: the OS user (and host), for locks and the audit log.
pub fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(os_user);
    let host = fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default();
    if host.is_empty() {
        user
    } else {
        format!("{user}@{host}")
    }
}

/// The effective uid's name from the password database (cron, systemd units and `env -i` have
/// no USER), else `uid:N`: an audit line never says "unknown".
fn os_user() -> String {
    // SAFETY: geteuid has no preconditions; getpwuid_r writes only into the buffers we pass,
    // and pw_name is read only when it returned an entry pointing into `buf`.
    unsafe {
        let uid = libc::geteuid();
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) == 0 && !out.is_null() && !pw.pw_name.is_null() {
            if let Ok(name) = std::ffi::CStr::from_ptr(pw.pw_name).to_str() {
                if !name.is_empty() {
                    return name.to_string();
                }
            }
        }
        format!("uid:{uid}")
    }
}

/// The crash tests' seam: with `CODEX_FLEET_PAUSE_AT_RECORD=N`, the process stops itself
/// (SIGSTOP) right after the N-th journal record it appends is durable, so that a test can
/// `kill -9` it at exactly that step boundary (tests/rollout_crash.rs loops N over a whole run).
/// Unset, this is one relaxed atomic add per record.
fn crash_test_pause() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let at = *AT.get_or_init(|| std::env::var("CODEX_FLEET_PAUSE_AT_RECORD").ok().and_then(|v| v.parse().ok()));
    if let Some(at) = at {
        if COUNT.fetch_add(1, Ordering::SeqCst) + 1 == at {
            // SAFETY: raising a signal on our own process has no memory-safety preconditions.
            unsafe {
                libc::raise(libc::SIGSTOP);
            }
        }
    }
}
