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
use crate::fleet::{AgentRef, BackupRequest, Fleet, FleetError, LockKey, LockOutcome, RestoreRequest, WriteRequest};
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
    /// The engine stopped the run: `halted` (canary failure, error budget, unknown outcome).
    Halted { reason: String },
    /// The run stopped resumable, `interrupted`: the operator's stop, or a pause at the gate
    /// after the canary.
    Paused { reason: String },
}

/// The canary gate's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateDecision {
    /// Go on with the waves.
    Continue,
    /// Stop here, the run `interrupted` and resumable (`apply --resume`), journaled.
    Pause,
}

/// What the gate after the canary is told: the canary wave verified, what is still to come.
#[derive(Debug, Clone, Serialize)]
pub struct CanaryVerified {
    pub run_id: String,
    /// The canary agents, every one verified.
    pub agents: Vec<String>,
    /// Waves still to come, and their agents.
    pub waves_left: usize,
    pub agents_left: usize,
}

/// Asked once the canary wave is verified (in this process: a resumed run whose canary was
/// verified before is not asked again): continue with the waves, or pause. The console sends
/// the question to its UI and awaits the operator's key; the CLI asks `[y/N]` on a terminal, or
/// pauses. Given to [`execute_gated`].
pub type CanaryGate<'a> = &'a (dyn Fn(CanaryVerified) -> futures::future::BoxFuture<'static, GateDecision> + Send + Sync);

/// A gate that always pauses (`apply --pause-after-canary --yes`, or without a terminal).
pub fn pause_always(_: CanaryVerified) -> futures::future::BoxFuture<'static, GateDecision> {
    Box::pin(async { GateDecision::Pause })
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
    /// Why it stopped short (halted, paused); empty when done.
    pub detail: String,
    pub waves: Vec<Vec<(String, String)>>,
    pub verified: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Agents whose last step got no answer.
    pub unknown: usize,
    pub untouched: Vec<String>,
}

impl RunResult {
    pub fn all_verified(&self) -> bool {
        self.state == RunState::Done && self.failed == 0 && self.skipped == 0 && self.unknown == 0 && self.untouched.is_empty()
    }
}

type Shared = Arc<Mutex<Journal>>;

/// Journal one step record. A journal that cannot be written stops the run: better to stop
/// than act unrecorded (the error names the journal file).
fn jstep(j: &Shared, a: &AgentRef, step: Step, phase: Phase, f: impl FnOnce(&mut super::journal::StepDetail)) -> std::io::Result<()> {
    j.lock().unwrap_or_else(|p| p.into_inner()).step(a, step, phase, f)
}

fn jappend(j: &Shared, r: &Record) -> std::io::Result<()> {
    j.lock().unwrap_or_else(|p| p.into_inner()).append(r)
}

/// The lock key of this process for `view`'s run: its own token, and the tokens of every
/// earlier process of the run, whose host locks it takes over (they are gone: this process
/// holds the run's journal).
pub fn lock_key(view: &RunView, holder: &str) -> LockKey {
    let me = super::journal::process_token().to_string();
    LockKey {
        run_id: view.run_id.clone(),
        takeover: view.tokens.iter().filter(|t| **t != me).cloned().collect(),
        token: me,
        holder: holder.to_string(),
    }
}

/// The answer to a step that changes the agent: the host's refusal is `failed`, no answer is
/// `unknown` (the step stays in flight in the journal: no `failed` record).
fn classify(j: &Shared, a: &AgentRef, step: Step, e: FleetError, ev: &(dyn Fn(Step, &'static str, String) + Send + Sync)) -> std::io::Result<Outcome> {
    if e.is_no_answer() {
        let why = format!("{}: no answer, it may or may not have happened ({e})", step.as_str());
        ev(step, "unknown", why.clone());
        return Ok(Outcome::Unknown(why));
    }
    let why = e.to_string();
    jstep(j, a, step, Phase::Failed, |d| d.detail = Some(why.clone()))?;
    ev(step, "failed", why.clone());
    Ok(match e {
        FleetError::Changed { .. } | FleetError::AgentGone { .. } => Outcome::Skipped(why),
        _ => Outcome::Failed(why),
    })
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
    execute_gated(fleet, journal, cfg, false, None, stop, on_event).await
}

/// [`execute`], for a halted run too when `continue_halted`: the operator has seen why it
/// halted and goes on. The halts already passed are not re-judged (the canary wave is not
/// checked again; the error budget counts the failures from here).
pub async fn execute_opts(
    fleet: &dyn Fleet,
    journal: Journal,
    cfg: &EngineConfig,
    continue_halted: bool,
    stop: watch::Receiver<bool>,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> std::io::Result<RunResult> {
    execute_gated(fleet, journal, cfg, continue_halted, None, stop, on_event).await
}

/// [`execute_opts`] with a gate after the canary ([`CanaryGate`]): once the canary wave is
/// verified, and waves remain, the gate decides whether the run goes on or pauses there
/// (journaled `interrupted`, with the command that resumes it as its detail).
pub async fn execute_gated(
    fleet: &dyn Fleet,
    mut journal: Journal,
    cfg: &EngineConfig,
    continue_halted: bool,
    gate: Option<CanaryGate<'_>>,
    stop: watch::Receiver<bool>,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> std::io::Result<RunResult> {
    let run_id = journal.run_id.clone();
    journal.session("apply")?;
    let view = RunView::from_records(&super::journal::read(&run_id)?)
        .ok_or_else(|| std::io::Error::other(format!("{}: no start record", journal.path().display())))?;
    let key = lock_key(&view, &cfg.holder);
    let plan = view.plan.clone();
    let ids: Vec<String> = plan.agents.iter().map(|a| a.agent.id()).collect();
    let planned = ids.len();
    let budget = cfg.max_errors.of(planned);
    let all_waves = resumed_waves(&view.waves, waves(&ids, cfg.canary, cfg.wave));
    let j: Shared = Arc::new(Mutex::new(journal));
    let mut progress = view.agents.clone();
    let failed_count = |p: &BTreeMap<String, AgentProgress>| p.values().filter(|p| matches!(p.outcome, Some(Outcome::Failed(_)))).count();
    let errors_base = if continue_halted { failed_count(&progress) } else { 0 };
    let mut state = RunState::Done;
    let mut halt_reason = String::new();

    for (index, wave) in all_waves.iter().enumerate() {
        if index >= view.waves.len() {
            jappend(&j, &Record::Wave { time: now(), index, agents: wave.clone() })?;
        }
        on_event(Event::Wave { index, agents: wave.clone() });
        let todo: Vec<&AgentPlan> = plan
            .agents
            .iter()
            .filter(|a| wave.contains(&a.agent.id()))
            .filter(|a| progress.get(&a.agent.id()).is_none_or(|p| p.outcome.is_none() || matches!(p.outcome, Some(Outcome::Unknown(_)))))
            .collect();
        let runs = todo.iter().map(|a| {
            let prior = progress.get(&a.agent.id()).cloned().unwrap_or_default();
            apply_agent(fleet, &run_id, &key, a, prior, cfg, &j, stop.clone(), on_event)
        });
        let results = futures::future::join_all(runs).await;
        let mut unknown = Vec::new();
        let mut interrupted = false;
        for (a, outcome) in todo.iter().zip(results) {
            match outcome? {
                Some(o) => {
                    if matches!(o, Outcome::Unknown(_)) {
                        unknown.push(a.agent.id());
                    }
                    jappend(&j, &Record::Agent { time: now(), agent: a.agent.id(), outcome: o.clone() })?;
                    on_event(Event::Agent { agent: a.agent.id(), outcome: o.clone() });
                    progress.entry(a.agent.id()).or_default().outcome = Some(o);
                }
                None => interrupted = true,
            }
        }
        if interrupted || *stop.borrow() {
            state = RunState::Interrupted;
            halt_reason = format!("stopped by the operator; the run's locks are released; resume with `apply --resume {run_id}`");
            break;
        }
        if !unknown.is_empty() {
            state = RunState::Halted;
            halt_reason = format!(
                "no answer from {} agent(s) ({}): their last step may or may not have happened; \
                 `apply --resume {run_id} --continue-halted` asks their hosts and finishes, `rollback --run {run_id}` puts them back",
                unknown.len(),
                unknown.join(", ")
            );
            break;
        }
        let is_canary = index == 0 && cfg.canary > 0 && !continue_halted;
        if is_canary {
            let word = |id: &String| progress.get(id).and_then(|p| p.outcome.as_ref()).map(|o| o.word()).unwrap_or("untouched");
            let verified = wave.iter().filter(|id| word(id) == "verified").count();
            let not_verified: Vec<String> = wave.iter().filter(|id| word(id) != "verified").map(|id| format!("{id} {}", word(id))).collect();
            if !not_verified.is_empty() {
                state = RunState::Halted;
                halt_reason = format!("the canary wave verified {verified} of {} ({})", wave.len(), not_verified.join(", "));
                break;
            }
            // The gate: only for a canary verified by this process, with waves still to come.
            if let (Some(gate), false, true) = (gate, todo.is_empty(), index + 1 < all_waves.len()) {
                let rest = &all_waves[index + 1..];
                let asked = CanaryVerified {
                    run_id: run_id.clone(),
                    agents: wave.clone(),
                    waves_left: rest.len(),
                    agents_left: rest.iter().map(|w| w.len()).sum(),
                };
                if gate(asked).await == GateDecision::Pause {
                    state = RunState::Interrupted;
                    halt_reason = format!(
                        "paused after the canary ({verified} verified); `codex-fleet apply --resume {run_id}` goes on with the waves, \
                         `codex-fleet rollback --run {run_id}` puts the canary back"
                    );
                    break;
                }
            }
        }
        let errors = failed_count(&progress) - errors_base.min(failed_count(&progress));
        if errors > budget && index + 1 < all_waves.len() {
            state = RunState::Halted;
            halt_reason = format!("{errors} failed, more than --max-errors allows ({budget})");
            break;
        }
    }
    if !halt_reason.is_empty() {
        if state == RunState::Interrupted {
            on_event(Event::Paused { reason: halt_reason.clone() });
        } else {
            on_event(Event::Halted { reason: halt_reason.clone() });
        }
    }
    jappend(&j, &Record::State { time: now(), state, detail: halt_reason.clone() })?;
    let done: BTreeMap<String, String> = progress
        .iter()
        .filter_map(|(k, p)| p.outcome.as_ref().map(|o| (k.clone(), o.word().to_string())))
        .collect();
    Ok(RunResult {
        run_id,
        state,
        detail: halt_reason,
        waves: all_waves
            .iter()
            .map(|w| w.iter().map(|id| (id.clone(), done.get(id).cloned().unwrap_or_else(|| "untouched".into()))).collect())
            .collect(),
        verified: done.values().filter(|o| *o == "verified").count(),
        failed: done.values().filter(|o| *o == "failed").count(),
        skipped: done.values().filter(|o| *o == "skipped").count(),
        unknown: done.values().filter(|o| *o == "unknown").count(),
        untouched: ids.iter().filter(|id| !done.contains_key(*id)).cloned().collect(),
    })
}

/// One agent through its steps. `None`: stopped before finishing (resumable).
#[allow(clippy::too_many_arguments)]
async fn apply_agent(
    fleet: &dyn Fleet,
    run_id: &str,
    key: &LockKey,
    plan: &AgentPlan,
    prior: AgentProgress,
    cfg: &EngineConfig,
    j: &Shared,
    stop: watch::Receiver<bool>,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> std::io::Result<Option<Outcome>> {
    let a = &plan.agent;
    let id = a.id();
    let ev = |step: Step, phase: &'static str, detail: String| {
        on_event(Event::Step { agent: id.clone(), step, phase, detail });
    };
    if *stop.borrow() {
        return Ok(None);
    }
    // Lock, every time: idempotent for this process, and a resumed run takes over the locks of
    // its earlier processes (a container re-created meanwhile has none: it is locked afresh).
    jstep(j, a, Step::Lock, Phase::Begin, |_| {})?;
    ev(Step::Lock, "begin", String::new());
    let r = fleet.lock(a, key).await;
    super::journal::crash_test_pause_after_op();
    match r {
        Ok(LockOutcome::Acquired) => jstep(j, a, Step::Lock, Phase::Done, |_| {})?,
        Ok(LockOutcome::HeldBy(who)) => {
            let e = format!("locked by another run: {who}");
            jstep(j, a, Step::Lock, Phase::Failed, |d| d.detail = Some(e.clone()))?;
            ev(Step::Lock, "failed", e.clone());
            return Ok(Some(Outcome::Skipped(e)));
        }
        Err(e) => return classify(j, a, Step::Lock, e, &ev).map(Some),
    }
    let outcome = steps(fleet, run_id, plan, &prior, cfg, j, &stop, &ev).await?;
    // Unlock, unless no answer came (the agent's state is unknown: the run keeps it locked
    // until resume or rollback has asked its host). Stopped mid-way, it is released too.
    if !matches!(outcome, Some(Outcome::Unknown(_))) {
        unlock_agent(fleet, a, key, j).await?;
    }
    Ok(outcome)
}

/// Release the run's lock on `a`, journaled.
async fn unlock_agent(fleet: &dyn Fleet, a: &AgentRef, key: &LockKey, j: &Shared) -> std::io::Result<()> {
    jstep(j, a, Step::Unlock, Phase::Begin, |_| {})?;
    let r = fleet.unlock(a, key).await;
    super::journal::crash_test_pause_after_op();
    match r {
        Ok(()) => jstep(j, a, Step::Unlock, Phase::Done, |_| {}),
        // No answer: the lock may still be there (`codex-fleet unlock --run` breaks it).
        Err(e) if e.is_no_answer() => Ok(()),
        Err(e) => jstep(j, a, Step::Unlock, Phase::Failed, |d| d.detail = Some(e.to_string())),
    }
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
) -> std::io::Result<Option<Outcome>> {
    let a = &plan.agent;
    let done = |s: Step| prior.has_done(s);
    macro_rules! stop_check {
        () => {
            if *stop.borrow() {
                return Ok(None);
            }
        };
    }
    let fail = |step: Step, e: String| -> std::io::Result<String> {
        jstep(j, a, step, Phase::Failed, |d| d.detail = Some(e.clone()))?;
        ev(step, "failed", e.clone());
        Ok(e)
    };
    let config_path = plan.config_file();
    let writes: Vec<&crate::plan::FilePlan> = plan.files.iter().filter(|f| f.write).collect();
    // Was the agent's state left unknown by an earlier process (a step with no answer)?
    let was_unknown = matches!(prior.outcome, Some(Outcome::Unknown(_))) || prior.in_flight.is_some();

    // Check, for every agent not yet written (a resumed run re-does it): still the same
    // container, every file still as planned, or, for a write this run began and never heard
    // back from, exactly what the run writes (the write is then re-done: idempotent).
    stop_check!();
    if !writes.iter().all(|f| prior.written.contains_key(&f.path)) {
        jstep(j, a, Step::Check, Phase::Begin, |_| {})?;
        ev(Step::Check, "begin", String::new());
        let read = match fleet.read_agent(a).await {
            Ok(r) => r,
            Err(FleetError::AgentGone { .. }) => {
                return Ok(Some(Outcome::Skipped(fail(Step::Check, "the container is gone or was re-created".into())?)))
            }
            Err(e) if was_unknown && e.is_no_answer() => return classify(j, a, Step::Check, e, ev).map(Some),
            Err(e) => return Ok(Some(Outcome::Failed(fail(Step::Check, e.to_string())?))),
        };
        if read.image_id != plan.image_id && !plan.image_id.is_empty() {
            return Ok(Some(Outcome::Skipped(fail(Step::Check, format!("image changed since the plan ({})", read.image))?)));
        }
        let p = match &read.probe {
            Ok(p) => p,
            // Without a fresh reading the files cannot be compared with the plan: not touched.
            Err(e) => return Ok(Some(Outcome::Failed(fail(Step::Check, format!("cannot re-read the agent: {e}"))?))),
        };
        for f in writes.iter().filter(|f| !prior.written.contains_key(&f.path)) {
            let fi = if f.path == p.emitter.path { &p.emitter } else { &p.config };
            if fi.sha256 == f.before_sha256 {
                continue;
            }
            let holds_planned = fi.sha256.is_some()
                && canonical_placeholders(fi.redacted.as_deref().unwrap_or("")) == canonical_placeholders(&f.after_redacted);
            if holds_planned && prior.write_begun.contains(&f.path) {
                continue; // this run's own write, answered or not: re-done idempotently below
            }
            let why = if holds_planned {
                format!("{} already holds what the plan writes (applied by another run?); nothing written", f.path)
            } else {
                format!("{} changed since the plan was made; nothing written", f.path)
            };
            return Ok(Some(Outcome::Skipped(fail(Step::Check, why)?)));
        }
        jstep(j, a, Step::Check, Phase::Done, |_| {})?;
    }

    // Backup config.toml: the restart regenerates it, so rollback needs it too.
    stop_check!();
    if let (false, Some(path)) = (done(Step::Backup), &config_path) {
        jstep(j, a, Step::Backup, Phase::Begin, |d| d.path = Some(path.clone()))?;
        let r = fleet.backup(a, &BackupRequest { path: path.clone(), run_id: run_id.into() }).await;
        super::journal::crash_test_pause_after_op();
        match r {
            Ok(r) => jstep(j, a, Step::Backup, Phase::Done, |d| {
                d.path = Some(path.clone());
                d.backup = r.as_ref().map(|r| r.backup_path.clone());
                d.sha256 = r.map(|r| r.after_sha256);
            })?,
            Err(e) => return classify(j, a, Step::Backup, e, ev).map(Some),
        }
    }

    // Write each file the plan writes (conditional on its sha256; idempotent within a run).
    for f in &writes {
        stop_check!();
        if prior.written.contains_key(&f.path) {
            continue;
        }
        jstep(j, a, Step::Write, Phase::Begin, |d| {
            d.path = Some(f.path.clone());
            d.sha256 = f.before_sha256.clone();
        })?;
        ev(Step::Write, "begin", f.path.clone());
        let req = WriteRequest {
            path: f.path.clone(),
            before_sha256: f.before_sha256.clone(),
            after_redacted: f.after_redacted.clone(),
            run_id: run_id.into(),
            before_redacted: Some(f.before_redacted.clone()),
        };
        let r = fleet.write_file(a, &req).await;
        super::journal::crash_test_pause_after_op();
        match r {
            Ok(r) => {
                jstep(j, a, Step::Write, Phase::Done, |d| {
                    d.path = Some(f.path.clone());
                    d.backup = Some(r.backup_path.clone());
                    d.sha256 = Some(r.after_sha256.clone());
                })?;
                let _ = super::journal::audit(&serde_json::json!({
                    "time": now(), "operator": cfg.holder, "run_id": run_id, "agent": a.id(),
                    "action": "write", "file": f.path, "before_sha256": f.before_sha256,
                    "after_sha256": r.after_sha256, "backup": r.backup_path, "diff": f.diff, "outcome": "ok",
                }));
            }
            Err(e) => return classify(j, a, Step::Write, e, ev).map(Some),
        }
    }

    // Restart, then wait until it runs and stays up.
    stop_check!();
    if plan.restart && !done(Step::Restart) {
        jstep(j, a, Step::Restart, Phase::Begin, |_| {})?;
        ev(Step::Restart, "begin", String::new());
        let r = fleet.restart(a).await;
        super::journal::crash_test_pause_after_op();
        if let Err(e) = r {
            return classify(j, a, Step::Restart, e, ev).map(Some);
        }
        jstep(j, a, Step::Restart, Phase::Done, |_| {})?;
    }
    stop_check!();
    if !done(Step::Wait) {
        jstep(j, a, Step::Wait, Phase::Begin, |_| {})?;
        ev(Step::Wait, "begin", String::new());
        let read = match fleet.wait_stable(a, cfg.stable_timeout).await {
            Ok(r) => r,
            Err(e) => return Ok(Some(Outcome::Failed(fail(Step::Wait, e.to_string())?))),
        };
        // Record what the run left (rollback restores only over exactly this).
        if let Ok(p) = &read.probe {
            for fi in [&p.config, &p.emitter] {
                if let Some(sha) = &fi.sha256 {
                    jstep(j, a, Step::Wait, Phase::Done, |d| {
                        d.path = Some(fi.path.clone());
                        d.sha256 = Some(sha.clone());
                    })?;
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
            return Ok(Some(Outcome::Failed(fail(Step::Wait, format!("after restart: {why}"))?)));
        }
        jstep(j, a, Step::Wait, Phase::Done, |_| {})?;
    }

    stop_check!();
    jstep(j, a, Step::Verify, Phase::Begin, |_| {})?;
    ev(Step::Verify, "begin", String::new());
    match fleet.verify(a).await {
        Ok(v) if v.passed => {
            jstep(j, a, Step::Verify, Phase::Done, |_| {})?;
            Ok(Some(Outcome::Verified))
        }
        Ok(v) => {
            let why = v.checks.iter().filter(|c| !c.1).map(|c| format!("{}: {}", c.0, c.2)).collect::<Vec<_>>().join("; ");
            Ok(Some(Outcome::Failed(fail(Step::Verify, format!("boot assertion failed: {why}"))?)))
        }
        Err(e) => Ok(Some(Outcome::Failed(fail(Step::Verify, e.to_string())?))),
    }
}

/// How many agents a rollback restores at once.
pub const ROLLBACK_CONCURRENCY: usize = 16;

/// Restore every file a run changed or caused to change, byte for byte, then restart: opens
/// the run's journal (its exclusive lock) for the time of the rollback.
pub async fn rollback(
    fleet: &dyn Fleet,
    run_id: &str,
    cfg: &EngineConfig,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> std::io::Result<Vec<(String, Outcome)>> {
    let journal = Journal::open(run_id).map_err(|e| match e {
        super::journal::OpenError::Io(e) => e,
        e => std::io::Error::other(e.to_string()),
    })?;
    rollback_journal(fleet, journal, cfg, on_event).await
}

/// [`rollback`] of the run whose journal the caller already holds.
pub async fn rollback_journal(
    fleet: &dyn Fleet,
    mut journal: Journal,
    cfg: &EngineConfig,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> std::io::Result<Vec<(String, Outcome)>> {
    let run_id = journal.run_id.clone();
    journal.session("rollback")?;
    let view = RunView::from_records(&super::journal::read(&run_id)?)
        .ok_or_else(|| std::io::Error::other(format!("{}: no start record", journal.path().display())))?;
    let key = lock_key(&view, &cfg.holder);
    let j: Shared = Arc::new(Mutex::new(journal));
    // Every agent the run began on: a process killed mid-write has no backup on record yet.
    let todo: Vec<_> = view
        .plan
        .agents
        .iter()
        .filter_map(|ap| view.agents.get(&ap.agent.id()).filter(|p| !p.done.is_empty() || p.in_flight.is_some()).map(|p| (ap, p)))
        .filter(|(_, p)| !p.rollback.as_ref().is_some_and(|o| o.is_rolled_back()))
        .collect();
    // Agents are independent: restore them side by side (a 1,000-agent rollback must not take
    // a thousand round trips in a row), at most ROLLBACK_CONCURRENCY at once, results in plan order.
    // (Collected first: a stream over a borrowing closure is not Send enough for tokio::spawn.)
    let futs: Vec<_> = todo.iter().map(|(ap, p)| rollback_agent(fleet, &run_id, &key, ap, p, cfg, &j, on_event)).collect();
    let outcomes: Vec<std::io::Result<Outcome>> = futures::stream::iter(futs).buffered(ROLLBACK_CONCURRENCY).collect().await;
    let mut results = Vec::new();
    for ((ap, _), outcome) in todo.iter().zip(outcomes) {
        let outcome = outcome?;
        let id = ap.agent.id();
        jappend(&j, &Record::Agent { time: now(), agent: id.clone(), outcome: outcome.clone() })?;
        on_event(Event::Agent { agent: id.clone(), outcome: outcome.clone() });
        results.push((id, outcome));
    }
    if results.iter().all(|(_, o)| o.is_rolled_back()) {
        jappend(&j, &Record::State { time: now(), state: RunState::RolledBack, detail: String::new() })?;
    }
    Ok(results)
}

/// Put one agent back as the run found it. The run's lock first (taking over its earlier
/// processes'), then each file the run wrote, then config.toml that its restart regenerated
/// (only if it still holds what the run left there), then the restart a restored file needs;
/// then config.toml once more if that restart's emitter rewrote it; then unlock.
#[allow(clippy::too_many_arguments)]
async fn rollback_agent(
    fleet: &dyn Fleet,
    run_id: &str,
    key: &LockKey,
    ap: &AgentPlan,
    p: &AgentProgress,
    cfg: &EngineConfig,
    j: &Shared,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> std::io::Result<Outcome> {
    let a = &ap.agent;
    let ev = |step: Step, phase: &'static str, detail: String| {
        on_event(Event::Step { agent: a.id(), step, phase, detail });
    };
    jstep(j, a, Step::Lock, Phase::Begin, |_| {})?;
    let r = fleet.lock(a, key).await;
    super::journal::crash_test_pause_after_op();
    match r {
        Ok(LockOutcome::Acquired) => jstep(j, a, Step::Lock, Phase::Done, |_| {})?,
        Ok(LockOutcome::HeldBy(who)) => {
            let e = format!("locked by another run: {who}; nothing restored");
            jstep(j, a, Step::Lock, Phase::Failed, |d| d.detail = Some(e.clone()))?;
            return Ok(Outcome::RollbackFailed(e));
        }
        Err(e) if e.is_no_answer() => return Ok(Outcome::RollbackFailed(format!("lock: no answer ({e}); nothing restored"))),
        Err(e) => {
            jstep(j, a, Step::Lock, Phase::Failed, |d| d.detail = Some(e.to_string()))?;
            return Ok(Outcome::RollbackFailed(format!("lock: {e}; nothing restored")));
        }
    }
    // The run never began a write here: nothing it changed (its lock, if it left one, is
    // released below).
    if p.write_begun.is_empty() && !p.restart_begun {
        unlock_agent(fleet, a, key, j).await?;
        return Ok(Outcome::NothingToRollBack);
    }
    let mut problems = Vec::new();
    let mut restored = 0usize;
    let mut unanswered = false;
    // The files the run wrote first (the emitter), then the one its restart regenerated from
    // them (config.toml under an emitter: "derived").
    let written: Vec<&crate::plan::FilePlan> = ap.files.iter().filter(|f| f.write).collect();
    let config = ap.config_file();
    let derived_config = config.filter(|c| !written.iter().any(|f| f.path == *c));
    let mut paths: Vec<(String, bool)> = written.iter().map(|f| (f.path.clone(), false)).collect();
    if let Some(c) = &derived_config {
        paths.push((c.clone(), true));
    }
    for (path, derived) in paths {
        let begun = p.write_begun.contains(&path);
        let backup = match p.backups.get(&path) {
            Some(b) => b.clone(),
            // No backup on record and no write begun: the run never changed this file (a derived
            // file is backed up before any write, so none was written and none restarted).
            None if !begun => continue,
            // A write with no answer: the host keeps the run's first copy, so asking for a
            // backup now finds the original whether or not the write happened.
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
            if !p.restart_begun {
                continue; // never restarted by the run: it still holds the original
            }
            match p.after_restart.get(&path) {
                // Only over what the run's restart left there: a key rotated since is kept.
                Some(s) => Some(s.clone()),
                // The run died (or heard nothing) between its restart and reading the result:
                // what the file holds now is what that restart generated, read under the lock.
                None => match current(fleet, a, &path).await {
                    Ok(c) => c.map(|c| c.0),
                    Err(e) => {
                        problems.push(format!("{path}: cannot re-read: {e}"));
                        continue;
                    }
                },
            }
        } else if let Some(s) = p.after_restart.get(&path).or(p.written.get(&path)) {
            Some(s.clone())
        } else {
            // A write with no answer: restore over the current content only if it is exactly
            // what the run previewed (the write happened); the original needs nothing.
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
        match restore_one(fleet, run_id, a, &path, &backup, expected, cfg, j, &ev).await? {
            Ok(()) => restored += 1,
            Err(e) => {
                unanswered |= e.contains(NO_ANSWER);
                problems.push(e)
            }
        }
    }
    // A restore that got no answer may or may not have happened: no restart on top of it (a
    // restart would run whichever emitter is there and regenerate config.toml, so that the next
    // rollback could no longer tell what the run left). The agent stays locked, its step in
    // flight; the next rollback asks the host what is there and finishes.
    if unanswered {
        return Ok(Outcome::RollbackFailed(format!("{}; not restarted, still locked: roll back again", problems.join("; "))));
    }
    // Restart when a file was put back or the run had restarted it (codex reads its config at start).
    if restored > 0 || p.restart_begun {
        let r = fleet.restart(a).await;
        super::journal::crash_test_pause_after_op();
        match r {
            Err(e) if e.is_no_answer() => problems.push(format!("restart: no answer, it may or may not have happened ({e})")),
            Err(e) => problems.push(format!("restart: {e}")),
            Ok(()) => match fleet.wait_stable(a, cfg.stable_timeout).await {
                Err(e) => problems.push(format!("after restart: {e}")),
                // The restored emitter ran at that start and may have rewritten config.toml
                // (a hotpatch prepends its keys again): put the original back once more, over
                // exactly what this restart generated.
                Ok(read) => {
                    if let (Some(c), Ok(probe), true) = (&derived_config, &read.probe, problems.is_empty()) {
                        let now_sha = probe.config.sha256.clone();
                        if let (Some(b), true) = (p.backups.get(c), now_sha.as_ref() != p.backup_sha.get(c)) {
                            if let Err(e) = restore_one(fleet, run_id, a, c, b, now_sha, cfg, j, &ev).await? {
                                problems.push(e);
                            }
                        }
                    }
                }
            },
        }
    }
    unlock_agent(fleet, a, key, j).await?;
    Ok(if problems.is_empty() { Outcome::RolledBack } else { Outcome::RollbackFailed(problems.join("; ")) })
}

/// One conditional restore, journaled and audited. `Err(why)`: not restored (a refusal, or no
/// answer: the restore then stays in flight in the journal, and a second rollback asks again).
#[allow(clippy::too_many_arguments)]
/// How a step with no answer is said (a rollback's per-agent outcome names it).
const NO_ANSWER: &str = "no answer, it may or may not have happened";

async fn restore_one(
    fleet: &dyn Fleet,
    run_id: &str,
    a: &AgentRef,
    path: &str,
    backup: &str,
    expected: Option<String>,
    cfg: &EngineConfig,
    j: &Shared,
    ev: &(dyn Fn(Step, &'static str, String) + Send + Sync),
) -> std::io::Result<Result<(), String>> {
    jstep(j, a, Step::Restore, Phase::Begin, |d| {
        d.path = Some(path.to_string());
        d.backup = Some(backup.to_string());
    })?;
    ev(Step::Restore, "begin", path.to_string());
    let req = RestoreRequest { path: path.to_string(), backup_path: backup.to_string(), expected_current_sha256: expected };
    let r = fleet.restore_file(a, &req).await;
    super::journal::crash_test_pause_after_op();
    match r {
        Ok(r) => {
            jstep(j, a, Step::Restore, Phase::Done, |d| {
                d.path = Some(path.to_string());
                d.sha256 = Some(r.after_sha256.clone());
            })?;
            let _ = super::journal::audit(&serde_json::json!({
                "time": now(), "operator": cfg.holder, "run_id": run_id, "agent": a.id(),
                "action": "restore", "file": path, "backup": backup, "after_sha256": r.after_sha256, "outcome": "ok",
            }));
            Ok(Ok(()))
        }
        Err(e) if e.is_no_answer() => Ok(Err(format!("{path}: restore: {NO_ANSWER} ({e})"))),
        Err(e) => {
            jstep(j, a, Step::Restore, Phase::Failed, |d| {
                d.path = Some(path.to_string());
                d.detail = Some(e.to_string());
            })?;
            let kept = if matches!(e, FleetError::Changed { .. }) { " (kept as it is: it no longer holds what the run left there)" } else { "" };
            Ok(Err(format!("{path}: {e}{kept}")))
        }
    }
}

/// A file's sha256 and redacted text as the agent holds it now (`None`: absent).
async fn current(fleet: &dyn Fleet, a: &AgentRef, path: &str) -> Result<Option<(String, String)>, FleetError> {
    let read = fleet.read_agent(a).await?;
    let p = read.probe.map_err(FleetError::Other)?;
    let f = [&p.config, &p.emitter].into_iter().find(|f| f.path == path);
    Ok(f.and_then(|f| f.sha256.clone().map(|s| (s, f.redacted.as_deref().unwrap_or_default().to_string()))))
}
