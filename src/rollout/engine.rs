//! The rollout: canary, then waves, each agent taken through lock -> check -> backup -> write
//! -> restart -> wait -> verify -> unlock, every step journaled before it is taken. Errors are
//! counted over the whole run; past `--max-errors` (and on any canary failure) the run halts
//! before the next wave. A stop request finishes the steps in flight and leaves the run
//! resumable. Backend-agnostic: it only speaks the `Fleet` trait.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use futures::StreamExt;
use tokio::sync::watch;

use super::journal::{now, Journal, Outcome, Phase, Record, RunOptions, RunState, Step};
use super::view::{AgentProgress, RunView};
use crate::codex::redact::canonical_placeholders;
use crate::diagnose::Code;
use crate::fleet::{AgentRef, BackupRequest, Fleet, FleetError, LockOutcome, RestoreRequest, WriteRequest};
use crate::plan::{AgentPlan, Plan};
use crate::scan::AgentState;

/// `N` or `P%` of a total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Count(usize),
    Percent(u32),
}

impl Size {
    pub fn parse(s: &str) -> Result<Size, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let p: u32 = p.parse().map_err(|_| format!("`{s}`: expected N or P%"))?;
            if p > 100 {
                return Err(format!("`{s}`: a percentage is at most 100%"));
            }
            Ok(Size::Percent(p))
        } else {
            s.parse().map(Size::Count).map_err(|_| format!("`{s}`: expected N or P%"))
        }
    }

    /// For wave sizes: at least 1.
    pub fn of_at_least_one(self, total: usize) -> usize {
        match self {
            Size::Count(n) => n.max(1),
            Size::Percent(p) => (total * p as usize).div_ceil(100).max(1),
        }
    }

    /// For error budgets: rounded down, may be 0.
    pub fn of(self, total: usize) -> usize {
        match self {
            Size::Count(n) => n,
            Size::Percent(p) => total * p as usize / 100,
        }
    }
}

/// The waves of a plan: the canary first, then waves of `wave`.
pub fn waves(ids: &[String], canary: usize, wave: Size) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let c = canary.min(ids.len());
    if c > 0 {
        out.push(ids[..c].to_vec());
    }
    let w = wave.of_at_least_one(ids.len());
    for chunk in ids[c..].chunks(w) {
        out.push(chunk.to_vec());
    }
    out
}

/// Progress events for the console and the CLI.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Wave { index: usize, agents: Vec<String> },
    Step { agent: String, step: Step, phase: &'static str, detail: String },
    Agent { agent: String, outcome: Outcome },
    Halted { reason: String },
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub canary: usize,
    pub wave: Size,
    pub max_errors: Size,
    pub stable_timeout: Duration,
    pub holder: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub run_id: String,
    pub state: RunState,
    pub waves: Vec<Vec<(String, String)>>,
    pub verified: usize,
    pub failed: usize,
    pub skipped: usize,
    pub untouched: Vec<String>,
}

impl RunResult {
    pub fn all_verified(&self) -> bool {
        self.state == RunState::Done && self.failed == 0 && self.skipped == 0 && self.untouched.is_empty()
    }
}

type Shared = Arc<Mutex<Journal>>;

fn jstep(j: &Shared, a: &AgentRef, step: Step, phase: Phase, f: impl FnOnce(&mut super::journal::StepDetail)) {
    // A journal that cannot be written is fatal for safety: better to stop than act unrecorded.
    j.lock().unwrap().step(a, step, phase, f).expect("the run journal could not be written");
}

/// The waves of a run: those already recorded in its journal (a resumed run keeps them), then
/// the computed ones past them, without the agents already placed. A run killed right after
/// journaling its first wave still has all the others to do.
fn resumed_waves(recorded: &[Vec<String>], computed: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let mut all = recorded.to_vec();
    let placed: std::collections::HashSet<String> = recorded.iter().flatten().cloned().collect();
    let mut leftover: Vec<String> = Vec::new();
    for (i, w) in computed.into_iter().enumerate() {
        let rest: Vec<String> = w.into_iter().filter(|id| !placed.contains(id)).collect();
        if i < recorded.len() {
            leftover.extend(rest); // computed differently this time: never dropped
        } else if !rest.is_empty() {
            all.push(rest);
        }
    }
    if !leftover.is_empty() {
        all.push(leftover);
    }
    all
}

/// Begin a new run of `plan`.
pub fn start(plan: &Plan, opts: &RunOptions, run_id: &str) -> std::io::Result<Journal> {
    let mut j = Journal::create(run_id)?;
    j.append(&Record::Start {
        run_id: run_id.into(),
        time: now(),
        operator: super::journal::operator(),
        options: opts.clone(),
        plan: plan.clone(),
    })?;
    super::mark_live(run_id);
    Ok(j)
}

/// Execute (or resume) the run recorded in `journal`. `stop` set to true asks it to finish the
/// steps in flight and leave the run resumable.
pub async fn execute(
    fleet: &dyn Fleet,
    journal: Journal,
    cfg: &EngineConfig,
    stop: watch::Receiver<bool>,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> std::io::Result<RunResult> {
    let run_id = journal.run_id.clone();
    super::mark_live(&run_id);
    let view = RunView::from_records(&super::journal::read(&run_id)?)
        .ok_or_else(|| std::io::Error::other("journal has no start record"))?;
    let plan = view.plan.clone();
    let ids: Vec<String> = plan.agents.iter().map(|a| a.agent.id()).collect();
    let planned = ids.len();
    let budget = cfg.max_errors.of(planned);
    let all_waves = resumed_waves(&view.waves, waves(&ids, cfg.canary, cfg.wave));
    let j: Shared = Arc::new(Mutex::new(journal));
    let mut progress = view.agents.clone();
    let mut errors = progress.values().filter(|p| matches!(p.outcome, Some(Outcome::Failed(_)))).count();
    let mut state = RunState::Done;
    let mut halt_reason = String::new();

    'waves: for (index, wave) in all_waves.iter().enumerate() {
        if index >= view.waves.len() {
            j.lock().unwrap().append(&Record::Wave { time: now(), index, agents: wave.clone() })?;
        }
        on_event(Event::Wave { index, agents: wave.clone() });
        let todo: Vec<&AgentPlan> = plan
            .agents
            .iter()
            .filter(|a| wave.contains(&a.agent.id()))
            .filter(|a| progress.get(&a.agent.id()).is_none_or(|p| p.outcome.is_none()))
            .collect();
        let runs = todo.iter().map(|a| {
            let prior = progress.get(&a.agent.id()).cloned().unwrap_or_default();
            apply_agent(fleet, &run_id, a, prior, cfg, &j, stop.clone(), on_event)
        });
        let results = futures::future::join_all(runs).await;
        let mut wave_failed = 0;
        for (a, outcome) in todo.iter().zip(results) {
            match outcome {
                Some(o) => {
                    if matches!(o, Outcome::Failed(_)) {
                        errors += 1;
                        wave_failed += 1;
                    }
                    j.lock().unwrap().append(&Record::Agent { time: now(), agent: a.agent.id(), outcome: o.clone() })?;
                    on_event(Event::Agent { agent: a.agent.id(), outcome: o.clone() });
                    progress.entry(a.agent.id()).or_default().outcome = Some(o);
                }
                None => state = RunState::Interrupted,
            }
        }
        if state == RunState::Interrupted || *stop.borrow() {
            state = RunState::Interrupted;
            halt_reason = "stopped by the operator; resume with `apply --resume`".into();
            break 'waves;
        }
        let is_canary = index == 0 && cfg.canary > 0;
        if is_canary && wave_failed > 0 {
            state = RunState::Halted;
            halt_reason = format!("the canary failed ({wave_failed} of {})", wave.len());
            break;
        }
        if errors > budget && index + 1 < all_waves.len() {
            state = RunState::Halted;
            halt_reason = format!("{errors} failed, more than --max-errors allows ({budget})");
            break;
        }
    }
    if !halt_reason.is_empty() {
        on_event(Event::Halted { reason: halt_reason.clone() });
    }
    if state != RunState::Interrupted {
        j.lock().unwrap().append(&Record::State { time: now(), state, detail: halt_reason })?;
    }
    super::clear_live(&run_id);
    let done: BTreeMap<String, String> = progress
        .iter()
        .filter_map(|(k, p)| p.outcome.as_ref().map(|o| (k.clone(), o.word().to_string())))
        .collect();
    Ok(RunResult {
        run_id,
        state,
        waves: all_waves
            .iter()
            .map(|w| w.iter().map(|id| (id.clone(), done.get(id).cloned().unwrap_or_else(|| "untouched".into()))).collect())
            .collect(),
        verified: done.values().filter(|o| *o == "verified").count(),
        failed: done.values().filter(|o| *o == "failed").count(),
        skipped: done.values().filter(|o| *o == "skipped").count(),
        untouched: ids.iter().filter(|id| !done.contains_key(*id)).cloned().collect(),
    })
}

/// One agent through its steps. `None`: stopped before finishing (resumable).
#[allow(clippy::too_many_arguments)]
async fn apply_agent(
    fleet: &dyn Fleet,
    run_id: &str,
    plan: &AgentPlan,
    prior: AgentProgress,
    cfg: &EngineConfig,
    j: &Shared,
    stop: watch::Receiver<bool>,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Option<Outcome> {
    let a = &plan.agent;
    let id = a.id();
    let done = |s: Step| prior.has_done(s);
    let ev = |step: Step, phase: &'static str, detail: String| {
        on_event(Event::Step { agent: id.clone(), step, phase, detail });
    };
    macro_rules! stop_check {
        () => {
            if *stop.borrow() {
                return None;
            }
        };
    }
    let fail = |step: Step, e: String| {
        jstep(j, a, step, Phase::Failed, |d| d.detail = Some(e.clone()));
        ev(step, "failed", e.clone());
        e
    };

    // Lock (idempotent for the same run).
    stop_check!();
    if !done(Step::Lock) {
        jstep(j, a, Step::Lock, Phase::Begin, |_| {});
        ev(Step::Lock, "begin", String::new());
        match fleet.lock(a, run_id, &cfg.holder).await {
            Ok(LockOutcome::Acquired) => jstep(j, a, Step::Lock, Phase::Done, |_| {}),
            Ok(LockOutcome::HeldBy(who)) => {
                let e = fail(Step::Lock, format!("locked by another run: {who}"));
                return Some(Outcome::Skipped(e));
            }
            Err(e) => return Some(Outcome::Failed(fail(Step::Lock, e.to_string()))),
        }
    }
    let outcome = steps(fleet, run_id, plan, &prior, cfg, j, &stop, &ev, &fail).await;
    // Unlock whatever happened, unless stopped mid-way (the run still owns the agent).
    if outcome.is_some() {
        jstep(j, a, Step::Unlock, Phase::Begin, |_| {});
        let r = fleet.unlock(a, run_id).await;
        jstep(j, a, Step::Unlock, if r.is_ok() { Phase::Done } else { Phase::Failed }, |d| {
            d.detail = r.err().map(|e| e.to_string())
        });
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn steps(
    fleet: &dyn Fleet,
    run_id: &str,
    plan: &AgentPlan,
    prior: &AgentProgress,
    cfg: &EngineConfig,
    j: &Shared,
    stop: &watch::Receiver<bool>,
    ev: &(dyn Fn(Step, &'static str, String) + Send + Sync),
    fail: &(dyn Fn(Step, String) -> String + Send + Sync),
) -> Option<Outcome> {
    let a = &plan.agent;
    let done = |s: Step| prior.has_done(s);
    macro_rules! stop_check {
        () => {
            if *stop.borrow() {
                return None;
            }
        };
    }
    let config_path = plan.config_file();

    // Check: still the same container, every file still as planned.
    stop_check!();
    if !done(Step::Check) && !done(Step::Write) && prior.in_flight != Some(Step::Write) {
        jstep(j, a, Step::Check, Phase::Begin, |_| {});
        ev(Step::Check, "begin", String::new());
        let read = match fleet.read_agent(a).await {
            Ok(r) => r,
            Err(FleetError::AgentGone { .. }) => {
                return Some(Outcome::Skipped(fail(Step::Check, "the container is gone or was re-created".into())))
            }
            Err(e) => return Some(Outcome::Failed(fail(Step::Check, e.to_string()))),
        };
        if read.image_id != plan.image_id && !plan.image_id.is_empty() {
            return Some(Outcome::Skipped(fail(Step::Check, format!("image changed since the plan ({})", read.image))));
        }
        let p = match &read.probe {
            Ok(p) => p,
            // Without a fresh reading the files cannot be compared with the plan: not touched.
            Err(e) => return Some(Outcome::Failed(fail(Step::Check, format!("cannot re-read the agent: {e}")))),
        };
        {
            for f in plan.files.iter().filter(|f| f.write) {
                let now = if f.path == p.emitter.path { &p.emitter.sha256 } else { &p.config.sha256 };
                if *now != f.before_sha256 {
                    return Some(Outcome::Skipped(fail(
                        Step::Check,
                        format!("{} changed since the plan was made; nothing written", f.path),
                    )));
                }
            }
        }
        jstep(j, a, Step::Check, Phase::Done, |_| {});
    }

    // Backup config.toml: the restart regenerates it, so rollback needs it too.
    stop_check!();
    if let (false, Some(path)) = (done(Step::Backup), &config_path) {
        jstep(j, a, Step::Backup, Phase::Begin, |d| d.path = Some(path.clone()));
        match fleet.backup(a, &BackupRequest { path: path.clone(), run_id: run_id.into() }).await {
            Ok(r) => jstep(j, a, Step::Backup, Phase::Done, |d| {
                d.path = Some(path.clone());
                d.backup = r.as_ref().map(|r| r.backup_path.clone());
                d.sha256 = r.map(|r| r.after_sha256);
            }),
            Err(e) => return Some(Outcome::Failed(fail(Step::Backup, e.to_string()))),
        }
    }

    // Write each file the plan writes (conditional on its sha256; idempotent within a run).
    for f in plan.files.iter().filter(|f| f.write) {
        stop_check!();
        if prior.written.contains_key(&f.path) {
            continue;
        }
        jstep(j, a, Step::Write, Phase::Begin, |d| {
            d.path = Some(f.path.clone());
            d.sha256 = f.before_sha256.clone();
        });
        ev(Step::Write, "begin", f.path.clone());
        let req = WriteRequest {
            path: f.path.clone(),
            before_sha256: f.before_sha256.clone(),
            after_redacted: f.after_redacted.clone(),
            run_id: run_id.into(),
            before_redacted: Some(f.before_redacted.clone()),
        };
        match fleet.write_file(a, &req).await {
            Ok(r) => {
                jstep(j, a, Step::Write, Phase::Done, |d| {
                    d.path = Some(f.path.clone());
                    d.backup = Some(r.backup_path.clone());
                    d.sha256 = Some(r.after_sha256.clone());
                });
                let _ = super::journal::audit(&serde_json::json!({
                    "time": now(), "operator": cfg.holder, "run_id": run_id, "agent": a.id(),
                    "action": "write", "file": f.path, "before_sha256": f.before_sha256,
                    "after_sha256": r.after_sha256, "backup": r.backup_path, "diff": f.diff, "outcome": "ok",
                }));
            }
            Err(e @ FleetError::Changed { .. }) => return Some(Outcome::Skipped(fail(Step::Write, e.to_string()))),
            Err(e) => return Some(Outcome::Failed(fail(Step::Write, e.to_string()))),
        }
    }

    // Restart, then wait until it runs and stays up.
    stop_check!();
    if plan.restart && !done(Step::Restart) {
        jstep(j, a, Step::Restart, Phase::Begin, |_| {});
        ev(Step::Restart, "begin", String::new());
        if let Err(e) = fleet.restart(a).await {
            return Some(Outcome::Failed(fail(Step::Restart, e.to_string())));
        }
        jstep(j, a, Step::Restart, Phase::Done, |_| {});
    }
    stop_check!();
    if !done(Step::Wait) {
        jstep(j, a, Step::Wait, Phase::Begin, |_| {});
        ev(Step::Wait, "begin", String::new());
        let read = match fleet.wait_stable(a, cfg.stable_timeout).await {
            Ok(r) => r,
            Err(e) => return Some(Outcome::Failed(fail(Step::Wait, e.to_string()))),
        };
        // Record what the run left (rollback restores only over exactly this).
        if let Ok(p) = &read.probe {
            for fi in [&p.config, &p.emitter] {
                if let Some(sha) = &fi.sha256 {
                    jstep(j, a, Step::Wait, Phase::Done, |d| {
                        d.path = Some(fi.path.clone());
                        d.sha256 = Some(sha.clone());
                    });
                }
            }
        }
        // Verified by meaning: parses, keys once at top level, effective danger-full-access + never.
        let state = AgentState::from_read(read);
        let d = &state.diagnosis;
        if d.has(Code::ConfigInvalid) || !d.effective.as_ref().is_some_and(|e| e.is_fixed()) {
            let why = d
                .evidence(Code::ConfigInvalid)
                .or(d.evidence(Code::SandboxEnabled))
                .or(d.evidence(Code::ApprovalNotNever))
                .or(d.evidence(Code::ProbeFailed))
                .unwrap_or("effective permissions unknown")
                .to_string();
            return Some(Outcome::Failed(fail(Step::Wait, format!("after restart: {why}"))));
        }
        jstep(j, a, Step::Wait, Phase::Done, |_| {});
    }

    stop_check!();
    jstep(j, a, Step::Verify, Phase::Begin, |_| {});
    ev(Step::Verify, "begin", String::new());
    match fleet.verify(a).await {
        Ok(v) if v.passed => {
            jstep(j, a, Step::Verify, Phase::Done, |_| {});
            Some(Outcome::Verified)
        }
        Ok(v) => {
            let why = v.checks.iter().filter(|c| !c.1).map(|c| format!("{}: {}", c.0, c.2)).collect::<Vec<_>>().join("; ");
            Some(Outcome::Failed(fail(Step::Verify, format!("boot assertion failed: {why}"))))
        }
        Err(e) => Some(Outcome::Failed(fail(Step::Verify, e.to_string()))),
    }
}

/// Restore every file a run changed or caused to change, byte for byte, then restart.
/// How many agents a rollback restores at once.
pub const ROLLBACK_CONCURRENCY: usize = 16;

pub async fn rollback(
    fleet: &dyn Fleet,
    run_id: &str,
    cfg: &EngineConfig,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> std::io::Result<Vec<(String, Outcome)>> {
    let view = RunView::from_records(&super::journal::read(run_id)?)
        .ok_or_else(|| std::io::Error::other("journal has no start record"))?;
    let j: Shared = Arc::new(Mutex::new(Journal::open(run_id)?));
    // Every agent the run began on: a process killed mid-write has no backup on record yet.
    let todo: Vec<_> = view
        .plan
        .agents
        .iter()
        .filter_map(|ap| view.agents.get(&ap.agent.id()).filter(|p| !p.done.is_empty() || p.in_flight.is_some()).map(|p| (ap, p)))
        .filter(|(_, p)| p.outcome != Some(Outcome::RolledBack))
        .collect();
    // Agents are independent: restore them side by side (a 1,000-agent rollback must not take
    // a thousand round trips in a row), at most ROLLBACK_CONCURRENCY at once, results in plan order.
    // (Collected first: a stream over a borrowing closure is not Send enough for tokio::spawn.)
    let futs: Vec<_> = todo.iter().map(|(ap, p)| rollback_agent(fleet, run_id, ap, p, cfg, &j, on_event)).collect();
    let outcomes: Vec<Outcome> = futures::stream::iter(futs)
        .buffered(ROLLBACK_CONCURRENCY)
        .collect()
        .await;
    let mut results = Vec::new();
    for ((ap, _), outcome) in todo.iter().zip(outcomes) {
        let id = ap.agent.id();
        j.lock().unwrap().append(&Record::Agent { time: now(), agent: id.clone(), outcome: outcome.clone() })?;
        on_event(Event::Agent { agent: id.clone(), outcome: outcome.clone() });
        results.push((id, outcome));
    }
    let all_ok = results.iter().all(|(_, o)| *o == Outcome::RolledBack);
    if all_ok {
        j.lock().unwrap().append(&Record::State { time: now(), state: RunState::RolledBack, detail: String::new() })?;
    }
    Ok(results)
}

async fn rollback_agent(
    fleet: &dyn Fleet,
    run_id: &str,
    ap: &AgentPlan,
    p: &AgentProgress,
    cfg: &EngineConfig,
    j: &Shared,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Outcome {
    let a = &ap.agent;
    let ev = |step: Step, phase: &'static str, detail: String| {
        on_event(Event::Step { agent: a.id(), step, phase, detail });
    };
    match fleet.lock(a, run_id, &cfg.holder).await {
        Ok(LockOutcome::Acquired) => {}
        Ok(LockOutcome::HeldBy(who)) => return Outcome::RollbackFailed(format!("locked by another run: {who}")),
        Err(e) => return Outcome::RollbackFailed(e.to_string()),
    }
    let mut problems = Vec::new();
    let mut restored = 0usize;
    // The files the run wrote first (the emitter), then the one its restart regenerated from
    // them (config.toml under an emitter: "derived").
    let written: Vec<&crate::plan::FilePlan> = ap.files.iter().filter(|f| f.write).collect();
    let config = ap.config_file();
    let mut paths: Vec<(String, bool)> = written.iter().map(|f| (f.path.clone(), false)).collect();
    if let Some(c) = config.filter(|c| !written.iter().any(|f| f.path == *c)) {
        paths.push((c, true));
    }
    for (path, derived) in paths {
        let in_flight_write = p.in_flight == Some(Step::Write) && p.in_flight_path.as_deref() == Some(path.as_str());
        let backup = match p.backups.get(&path) {
            Some(b) => b.clone(),
            // No backup on record and no write begun: the run never changed this file (a derived
            // file is backed up before any write, so none was written and none restarted).
            None if !in_flight_write => continue,
            // The process died inside the write: the host keeps the run's first copy, so asking
            // for a backup now finds the original whether or not the write happened.
            None => match fleet.backup(a, &BackupRequest { path: path.clone(), run_id: run_id.into() }).await {
                Ok(Some(r)) => r.backup_path,
                Ok(None) => continue,
                Err(e) => {
                    problems.push(format!("{path}: cannot find the run's backup: {e}"));
                    continue;
                }
            },
        };
        let expected = if derived {
            if !problems.is_empty() {
                // The file it is generated from was not put back: leave this one as it is too.
                problems.push(format!("{path}: left as it is, the file it is generated from was not restored"));
                continue;
            }
            // The boot emitter rewrites it at every start, so any restart since the run's own
            // changes its bytes. The emitter was just restored over exactly what the run wrote,
            // so the emitter owns this file: restore it over what it holds now, read under the
            // run's lock. (Not restarted by the run: it still holds the backed-up original.)
            match current(fleet, a, &path).await {
                Ok(c) => c.map(|c| c.0),
                Err(e) => {
                    problems.push(format!("{path}: cannot re-read: {e}"));
                    continue;
                }
            }
        } else if let Some(s) = p.after_restart.get(&path).or(p.written.get(&path)) {
            Some(s.clone())
        } else {
            // A write in flight when the process died: restore over the current content only if
            // it is exactly what the run previewed (the write happened); the original needs nothing.
            let planned = written.iter().find(|f| f.path == path).map(|f| canonical_placeholders(&f.after_redacted));
            match current(fleet, a, &path).await {
                Ok(Some((sha, text))) if planned.as_deref() == Some(canonical_placeholders(&text).as_str()) => Some(sha),
                Ok(Some((sha, _))) if written.iter().any(|f| f.path == path && f.before_sha256.as_deref() == Some(sha.as_str())) => {
                    continue; // never written: already the original
                }
                Ok(_) => {
                    problems.push(format!("{path}: neither the original nor what the run wrote; left as it is"));
                    continue;
                }
                Err(e) => {
                    problems.push(format!("{path}: cannot re-read: {e}"));
                    continue;
                }
            }
        };
        jstep(j, a, Step::Restore, Phase::Begin, |d| {
            d.path = Some(path.clone());
            d.backup = Some(backup.clone());
        });
        ev(Step::Restore, "begin", path.clone());
        let req = RestoreRequest { path: path.clone(), backup_path: backup.clone(), expected_current_sha256: expected };
        match fleet.restore_file(a, &req).await {
            Ok(r) => {
                restored += 1;
                jstep(j, a, Step::Restore, Phase::Done, |d| {
                    d.path = Some(path.clone());
                    d.sha256 = Some(r.after_sha256.clone());
                });
                let _ = super::journal::audit(&serde_json::json!({
                    "time": now(), "operator": cfg.holder, "run_id": run_id, "agent": a.id(),
                    "action": "restore", "file": path, "backup": backup, "after_sha256": r.after_sha256, "outcome": "ok",
                }));
            }
            Err(e) => {
                jstep(j, a, Step::Restore, Phase::Failed, |d| {
                    d.path = Some(path.clone());
                    d.detail = Some(e.to_string());
                });
                problems.push(format!("{path}: {e}"));
            }
        }
    }
    // Restart when a file was put back or the run had restarted it (codex reads its config at start).
    if restored > 0 || p.restart_begun {
        if let Err(e) = fleet.restart(a).await {
            problems.push(format!("restart: {e}"));
        } else if let Err(e) = fleet.wait_stable(a, cfg.stable_timeout).await {
            problems.push(format!("after restart: {e}"));
        }
    }
    let _ = fleet.unlock(a, run_id).await;
    if problems.is_empty() {
        Outcome::RolledBack
    } else {
        Outcome::RollbackFailed(problems.join("; "))
    }
}

/// A file's sha256 and redacted text as the agent holds it now (`None`: absent).
async fn current(fleet: &dyn Fleet, a: &AgentRef, path: &str) -> Result<Option<(String, String)>, FleetError> {
    let read = fleet.read_agent(a).await?;
    let p = read.probe.map_err(FleetError::Other)?;
    let f = [&p.config, &p.emitter].into_iter().find(|f| f.path == path);
    Ok(f.and_then(|f| f.sha256.clone().map(|s| (s, f.redacted.clone().unwrap_or_default()))))
}
