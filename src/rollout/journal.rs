//! The run journal: append-only, fsync'd JSON lines, one file per run under the XDG state
//! directory, written *before* each step. A console killed mid-run leaves a journal from which
//! `runs`, `apply --resume` and `rollback --run` know exactly what was done. It holds hashes,
//! redacted diffs and backup locations, never a secret (plans are made from redacted text).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
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
    /// No answer came for a step that changes the agent (write, restore, lock, restart,
    /// backup): it may or may not have happened. The run halts; the step stays in flight in
    /// the journal, and resume and rollback ask the host what is there before acting.
    Unknown(String),
    /// A rollback found nothing the run had changed on this agent (it never wrote there).
    NothingToRollBack,
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Verified => "verified",
            Outcome::Failed(_) => "failed",
            Outcome::Skipped(_) => "skipped",
            Outcome::RolledBack => "rolled-back",
            Outcome::RollbackFailed(_) => "rollback-failed",
            Outcome::Unknown(_) => "unknown",
            Outcome::NothingToRollBack => "nothing-to-roll-back",
        }
    }

    /// The reason, for outcomes that carry one.
    pub fn why(&self) -> Option<&str> {
        match self {
            Outcome::Failed(w) | Outcome::Skipped(w) | Outcome::RollbackFailed(w) | Outcome::Unknown(w) => Some(w),
            _ => None,
        }
    }

    /// Did a rollback leave this agent as the run found it?
    pub fn is_rolled_back(&self) -> bool {
        matches!(self, Outcome::RolledBack | Outcome::NothingToRollBack)
    }
}

/// The run's state: the one vocabulary of the CLI, `runs --json` and the console (running,
/// interrupted, halted, done, rolled-back). Derived from the journal and the run's lock by
/// [`super::lifecycle::status`]; what each allows: [`super::lifecycle::allowed_actions`].
/// There is no other word: a run the operator paused (or paused after its canary), stopped,
/// aborted, or whose process died is `interrupted`; the reason is in the state's detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// A live process holds the run's lock and acts for it (applying or rolling back).
    /// Allows nothing to anyone else; that process alone may pause or stop it.
    Running,
    /// Nobody holds it and it did not finish: paused by the operator, paused after the canary
    /// (`apply --pause-after-canary`), stopped, or its process died.
    /// Allows: resume (`apply --resume`), rollback, unlock.
    Interrupted,
    /// Stopped by the engine: a canary that did not verify, the error budget spent, or an
    /// outcome nobody answered. Allows: resume with `--continue-halted`, rollback, unlock.
    Halted,
    /// Every wave went through (agents may still have failed or been skipped).
    /// Allows: rollback.
    Done,
    /// Every agent the run changed was put back. Allows nothing.
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
    /// A process began acting for the run (`apply`, `resume`, `rollback`, `unlock`): its lock
    /// token, so that a later process of the same run may take over the host locks it left.
    Session { time: String, token: String, pid: u32, operator: String, action: String },
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// An open journal, appended to and fsync'd record by record. It holds the run's exclusive
/// lock (`flock` on the journal file) for as long as it is open: one run, one process. Dropping
/// it releases the lock.
pub struct Journal {
    pub run_id: String,
    path: PathBuf,
    file: File,
    /// What opening it had to mend (a torn last record cut off), for the operator.
    pub repaired: Option<String>,
    /// This handle holds the run's lock (and wrote the holder note).
    locked: bool,
}

/// Why a journal could not be opened for acting.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("run {run_id} is held by another process: {who}")]
    Held { run_id: String, who: String },
    #[error("no run `{run_id}` in {dir}")]
    NoRun { run_id: String, dir: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Who holds a run: written next to the journal by the process that locks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub operator: String,
    pub token: String,
    pub since: String,
}

/// This process's lock token: `[0-9a-f-]`, unique per process (pid + random).
pub fn process_token() -> &'static str {
    static T: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    T.get_or_init(|| format!("{:x}-{}", std::process::id(), crate::fsutil::random_hex(6)))
}

/// An I/O error that names the file it happened on.
fn at(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Journal {
    pub fn dir(run_id: &str) -> PathBuf {
        state_dir().join("runs").join(run_id)
    }

    pub fn path_of(run_id: &str) -> PathBuf {
        Self::dir(run_id).join("journal.jsonl")
    }

    fn holder_path(run_id: &str) -> PathBuf {
        Self::dir(run_id).join("holder.json")
    }

    /// A new run id: UTC time + random suffix, sortable.
    pub fn new_run_id() -> String {
        let t = crate::fsutil::utc_stamp();
        let r: u32 = std::process::id() ^ (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0));
        format!("{t}-{:06x}", r & 0xffffff)
    }

    pub fn create(run_id: &str) -> std::io::Result<Journal> {
        let dir = Self::dir(run_id);
        fs::create_dir_all(&dir).map_err(|e| at(&dir, e))?;
        let path = Self::path_of(run_id);
        let file = OpenOptions::new().create_new(true).read(true).append(true).open(&path).map_err(|e| at(&path, e))?;
        let mut j = Journal { run_id: run_id.into(), path, file, repaired: None, locked: false };
        match j.lock_exclusive() {
            Ok(()) => Ok(j),
            Err(OpenError::Io(e)) => Err(e),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }

    /// Open a run's journal to act for it: take the run's exclusive lock (or say who holds
    /// it), cut a torn last record back to the last complete one (said in `repaired`), and
    /// refuse a journal with a bad record anywhere else (corruption, named by file and line).
    pub fn open(run_id: &str) -> Result<Journal, OpenError> {
        let path = Self::path_of(run_id);
        let file = match OpenOptions::new().read(true).append(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OpenError::NoRun { run_id: run_id.into(), dir: state_dir().join("runs").display().to_string() })
            }
            Err(e) => return Err(at(&path, e).into()),
        };
        let mut j = Journal { run_id: run_id.into(), path, file, repaired: None, locked: false };
        j.lock_exclusive()?;
        j.repaired = j.mend()?;
        Ok(j)
    }

    fn lock_exclusive(&mut self) -> Result<(), OpenError> {
        // SAFETY: flock on a descriptor we own; no memory is passed.
        let rc = unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock {
                return Err(OpenError::Held { run_id: self.run_id.clone(), who: holder_of(&self.run_id) });
            }
            return Err(at(&self.path, e).into());
        }
        self.locked = true;
        let h = Holder { pid: std::process::id(), operator: operator(), token: process_token().into(), since: now() };
        let hp = Self::holder_path(&self.run_id);
        let tmp = hp.with_extension("tmp");
        fs::write(&tmp, serde_json::to_string(&h).unwrap_or_default()).and_then(|_| fs::rename(&tmp, &hp)).map_err(|e| at(&hp, e))?;
        Ok(())
    }

    /// Cut a torn tail; check every complete record.
    fn mend(&mut self) -> std::io::Result<Option<String>> {
        let mut bytes = Vec::new();
        self.file.seek(std::io::SeekFrom::Start(0)).map_err(|e| at(&self.path, e))?;
        self.file.read_to_end(&mut bytes).map_err(|e| at(&self.path, e))?;
        let complete = bytes.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
        parse_lines(&self.path, &bytes[..complete])?;
        if complete == bytes.len() {
            return Ok(None);
        }
        let torn = bytes.len() - complete;
        let line = bytes[..complete].iter().filter(|b| **b == b'\n').count() + 1;
        self.file.set_len(complete as u64).map_err(|e| at(&self.path, e))?;
        self.file.sync_data().map_err(|e| at(&self.path, e))?;
        Ok(Some(format!(
            "{}: cut a torn last record at line {line} ({torn} bytes: the process writing it died mid-write)",
            self.path.display()
        )))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record and make it durable before the step it announces is taken.
    pub fn append(&mut self, r: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_string(r).map_err(std::io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes()).map_err(|e| at(&self.path, e))?;
        self.file.sync_data().map_err(|e| at(&self.path, e))?;
        crash_test_pause();
        Ok(())
    }

    /// Record that this process now acts for the run (its token: see [`Record::Session`]).
    pub fn session(&mut self, action: &str) -> std::io::Result<()> {
        self.append(&Record::Session {
            time: now(),
            token: process_token().into(),
            pid: std::process::id(),
            operator: operator(),
            action: action.into(),
        })
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

impl Drop for Journal {
    fn drop(&mut self) {
        // The lock goes with the descriptor; the holder note goes with it (only the holder's).
        if self.locked {
            let _ = fs::remove_file(Self::holder_path(&self.run_id));
        }
    }
}

/// The holder note of a run (written by the process that takes its lock, removed when it lets
/// go; a process that died leaves it behind: [`is_held`] says whether it is still true).
pub fn holder(run_id: &str) -> Option<Holder> {
    fs::read_to_string(Journal::holder_path(run_id)).ok().and_then(|t| serde_json::from_str::<Holder>(&t).ok())
}

/// Who holds a run's lock, as its holder note says (`pid P, OPERATOR, since T`).
pub fn holder_of(run_id: &str) -> String {
    match holder(run_id) {
        Some(h) => format!("pid {} ({}), since {}", h.pid, h.operator, h.since),
        None => "a process that left no note (starting or ending: try again)".into(),
    }
}

/// Is a live process holding this run (executing or rolling it back)?
pub fn is_held(run_id: &str) -> bool {
    let Ok(f) = File::open(Journal::path_of(run_id)) else { return false };
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    if rc == 0 {
        // SAFETY: as above.
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
        return false;
    }
    std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
}

/// Every complete line of `bytes` as a record; a bad one is corruption, named by file and line.
fn parse_lines(path: &Path, bytes: &[u8]) -> std::io::Result<Vec<Record>> {
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let r = std::str::from_utf8(line).map_err(|e| e.to_string()).and_then(|t| serde_json::from_str::<Record>(t).map_err(|e| e.to_string()));
        match r {
            Ok(r) => out.push(r),
            Err(e) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}:{}: corrupt journal record ({e}); the journal is left as it is", path.display(), i + 1),
                ))
            }
        }
    }
    Ok(out)
}

#[derive(Default)]
pub struct StepDetail {
    pub path: Option<String>,
    pub backup: Option<String>,
    pub sha256: Option<String>,
    pub detail: Option<String>,
}

/// Read a journal back. A last line without its newline is being written, or was torn by a
/// crash: it is not a record yet (the next process to act for the run cuts it). A bad complete
/// record is corruption: an error naming the file and line.
pub fn read(run_id: &str) -> std::io::Result<Vec<Record>> {
    let path = Journal::path_of(run_id);
    let bytes = fs::read(&path).map_err(|e| at(&path, e))?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
    parse_lines(&path, &bytes[..complete])
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

/// The crash tests' second seam: with `CODEX_FLEET_PAUSE_AFTER_OP=N`, the process stops itself
/// (SIGSTOP) right after the answer to its N-th mutating fleet operation arrived, before the
/// journal hears of it: a kill then lands between the host acting and the journal knowing.
pub fn crash_test_pause_after_op() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let at = *AT.get_or_init(|| std::env::var("CODEX_FLEET_PAUSE_AFTER_OP").ok().and_then(|v| v.parse().ok()));
    if let Some(at) = at {
        if COUNT.fetch_add(1, Ordering::SeqCst) + 1 == at {
            // SAFETY: raising a signal on our own process has no memory-safety preconditions.
            unsafe {
                libc::raise(libc::SIGSTOP);
            }
        }
    }
}
