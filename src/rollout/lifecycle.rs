//! A run's lifecycle, once for the CLI, `runs --json` and the console: its state (one word
//! each, [`RunState`]), what that state allows ([`allowed_actions`]), each agent's last outcome
//! and reason ([`agent_outcomes`]), and whether a live process holds it ([`liveness`],
//! [`may_act`]) before anyone resumes, rolls back or unlocks it. Pure over the journal, except
//! the liveness check (the run's `flock` and its holder's pid).

use serde::Serialize;

use super::journal::{self, Holder, Outcome, RunState, Step};
use super::view::RunView;

pub use super::journal::RunState as State;

/// What an operator may do with a run in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunAction {
    /// `apply --resume RUN_ID`: finish the waves (an `interrupted` run).
    Resume,
    /// `apply --resume RUN_ID --continue-halted`: go on past a halt, having read why.
    ContinueHalted,
    /// `rollback --run RUN_ID`: put back every file the run changed.
    Rollback,
    /// `unlock --run RUN_ID`: break the host locks the run left.
    Unlock,
}

impl RunAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RunAction::Resume => "resume",
            RunAction::ContinueHalted => "continue-halted",
            RunAction::Rollback => "rollback",
            RunAction::Unlock => "unlock",
        }
    }

    /// The exact command that does it.
    pub fn command(self, run_id: &str) -> String {
        match self {
            RunAction::Resume => format!("codex-fleet apply --resume {run_id}"),
            RunAction::ContinueHalted => format!("codex-fleet apply --resume {run_id} --continue-halted"),
            RunAction::Rollback => format!("codex-fleet rollback --run {run_id}"),
            RunAction::Unlock => format!("codex-fleet unlock --run {run_id}"),
        }
    }
}

/// What a state allows, whoever asks (the run's own details can narrow it further:
/// [`RunStatus::actions`]).
///
/// - `running`: nothing (a live process acts for it; only that process may pause or stop it);
/// - `interrupted`: resume, roll back, unlock;
/// - `halted`: continue past the halt, roll back, unlock;
/// - `done`: roll back;
/// - `rolled-back`: nothing.
pub fn allowed_actions(state: RunState) -> &'static [RunAction] {
    match state {
        RunState::Running | RunState::RolledBack => &[],
        RunState::Interrupted => &[RunAction::Resume, RunAction::Rollback, RunAction::Unlock],
        RunState::Halted => &[RunAction::ContinueHalted, RunAction::Rollback, RunAction::Unlock],
        RunState::Done => &[RunAction::Rollback],
    }
}

/// What one sentence says each state means (for help text, the console's header, `runs`).
pub fn meaning(state: RunState) -> &'static str {
    match state {
        RunState::Running => "a live process is acting for it",
        RunState::Interrupted => "stopped before finishing (paused, stopped or its process died): resumable",
        RunState::Halted => "stopped by a canary failure, the error budget or an unknown outcome: read why, then continue or roll back",
        RunState::Done => "every wave went through",
        RunState::RolledBack => "every agent it changed was put back",
    }
}

/// A run's state as the journal and the lock say it: the one function deriving it.
#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    pub run_id: String,
    pub state: RunState,
    /// Why it is in that state (why it halted, where it paused); empty when nothing to say.
    pub detail: String,
    /// A rollback of the run has begun (then only rollback may go on).
    pub rollback_begun: bool,
    /// The process holding the run, when one does.
    pub holder: Option<Holder>,
}

impl RunStatus {
    /// What the operator may do with it now.
    pub fn actions(&self) -> Vec<RunAction> {
        if self.rollback_begun && self.state != RunState::RolledBack && self.state != RunState::Running {
            return vec![RunAction::Rollback, RunAction::Unlock];
        }
        allowed_actions(self.state).to_vec()
    }

    pub fn allows(&self, a: RunAction) -> bool {
        self.actions().contains(&a)
    }
}

/// The state of the run `view` tells, `live` when a process holds its lock right now
/// ([`journal::is_held`]). Running while held, whatever was recorded before; otherwise what
/// the last process recorded, or `interrupted` when it recorded nothing (it died or was stopped).
pub fn derive_state(view: &RunView, live: bool) -> RunState {
    view.state(live)
}

/// [`RunStatus`] of `view`, asking the lock whether a live process holds it.
pub fn status(view: &RunView) -> RunStatus {
    let live = journal::is_held(&view.run_id);
    status_with(view, live)
}

/// [`status`] with liveness given (tests, and a caller that holds the journal itself).
pub fn status_with(view: &RunView, live: bool) -> RunStatus {
    let state = derive_state(view, live);
    let detail = match state {
        RunState::Running => String::new(),
        RunState::Interrupted if view.last_detail.is_empty() => "its process stopped before finishing (no state recorded)".into(),
        _ => view.last_detail.clone(),
    };
    RunStatus {
        run_id: view.run_id.clone(),
        state,
        detail,
        rollback_begun: view.agents.values().any(|p| p.rollback.is_some()),
        holder: if live { journal::holder(&view.run_id) } else { None },
    }
}

/// May the run be resumed (`continue_halted`: past a halt)? `Err` says why not and what to do.
pub fn may_resume(status: &RunStatus, continue_halted: bool) -> Result<(), String> {
    let id = &status.run_id;
    // A rolled-back run has had a rollback too, and finished it: nothing to resume.
    if status.state == RunState::RolledBack {
        return Err(format!("run {id} is {}: there is nothing to resume", status.state.as_str()));
    }
    if status.rollback_begun && status.state != RunState::Running {
        return Err(format!("a rollback of run {id} has begun; finish it with `codex-fleet rollback --run {id}`"));
    }
    match status.state {
        RunState::Running => Err(held_message(id, status.holder.as_ref())),
        RunState::Done | RunState::RolledBack => Err(format!("run {id} is {}: there is nothing to resume", status.state.as_str())),
        RunState::Halted if !continue_halted => Err(format!(
            "run {id} halted ({}); read why, then `codex-fleet apply --resume {id} --continue-halted` to go on, or `codex-fleet rollback --run {id}`",
            status.detail
        )),
        _ => Ok(()),
    }
}

/// May the run be rolled back? Refused while a live process holds it. (A rolled-back run may
/// be asked again: it finds nothing left to do and says so.)
pub fn may_rollback(status: &RunStatus) -> Result<(), String> {
    match status.state {
        RunState::Running => Err(held_message(&status.run_id, status.holder.as_ref())),
        _ => Ok(()),
    }
}

/// Whether a process holds a run, and whether that process is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// Nobody holds it. `stale`: the note a holder that died left behind (its pid is gone).
    Free { stale: Option<Holder> },
    /// A live process holds its lock (the lock goes with the process: a dead one holds nothing).
    Held { holder: Option<Holder> },
}

/// Is the process holding `run_id` alive? The run's lock (`flock` on its journal) is the
/// authority: the kernel releases it when its process dies, however it died. The holder note
/// names that process (pid, operator `user@host`, since when); a note whose lock is free was
/// left by a process that died.
pub fn liveness(run_id: &str) -> Liveness {
    let note = journal::holder(run_id);
    if journal::is_held(run_id) {
        Liveness::Held { holder: note }
    } else {
        Liveness::Free { stale: note }
    }
}

/// Refuse to act for a run a live process holds, naming it; a dead holder allows it.
pub fn may_act(run_id: &str, action: &str) -> Result<(), String> {
    match liveness(run_id) {
        Liveness::Free { .. } => Ok(()),
        Liveness::Held { holder } => Err(format!("{}; refused to {action} it", held_message(run_id, holder.as_ref()))),
    }
}

/// "run X is held by another process, alive: pid P (user@host), since T"
pub fn held_message(run_id: &str, holder: Option<&Holder>) -> String {
    match holder {
        Some(h) => format!(
            "run {run_id} is held by another process, alive: pid {} ({}), since {}; wait for it to finish, or stop it (Ctrl-C, or `kill {}` on {}) and try again",
            h.pid,
            h.operator,
            h.since,
            h.pid,
            h.operator.split_once('@').map(|x| x.1).unwrap_or("its host")
        ),
        None => format!("run {run_id} is held by another process, alive (starting or ending: it left no note yet); try again"),
    }
}

/// How one agent stands in a run: the run's outcome, or the rollback's once one began there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentStanding {
    Verified,
    Failed,
    Skipped,
    /// No answer came for its last step: it may or may not have happened.
    Unknown,
    RolledBack,
    RollbackFailed,
    NothingToRollBack,
    /// The run began on it and stopped before an outcome (paused, stopped, died).
    Stopped,
    /// The run never reached it (its wave did not come).
    NotReached,
}

impl AgentStanding {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStanding::Verified => "verified",
            AgentStanding::Failed => "failed",
            AgentStanding::Skipped => "skipped",
            AgentStanding::Unknown => "unknown",
            AgentStanding::RolledBack => "rolled-back",
            AgentStanding::RollbackFailed => "rollback-failed",
            AgentStanding::NothingToRollBack => "nothing-to-roll-back",
            AgentStanding::Stopped => "stopped",
            AgentStanding::NotReached => "not-reached",
        }
    }

    fn of(o: &Outcome) -> AgentStanding {
        match o {
            Outcome::Verified => AgentStanding::Verified,
            Outcome::Failed(_) => AgentStanding::Failed,
            Outcome::Skipped(_) => AgentStanding::Skipped,
            Outcome::Unknown(_) => AgentStanding::Unknown,
            Outcome::RolledBack => AgentStanding::RolledBack,
            Outcome::RollbackFailed(_) => AgentStanding::RollbackFailed,
            Outcome::NothingToRollBack => AgentStanding::NothingToRollBack,
        }
    }
}

/// One agent of a run: its last outcome and why.
#[derive(Debug, Clone, Serialize)]
pub struct AgentOutcome {
    /// `HOST_ID/CONTAINER`.
    pub id: String,
    /// Its wave (0 is the canary when there is one); `None`: not placed in a wave yet.
    pub wave: Option<usize>,
    pub outcome: AgentStanding,
    /// The run's own outcome when a rollback came after it (`verified` then `rolled-back`).
    pub applied: Option<AgentStanding>,
    /// Why (host text: make it terminal-safe to print); `None` when the outcome says it all.
    pub reason: Option<String>,
    /// The last step begun on it, if any.
    pub last_step: Option<Step>,
}

/// Every planned agent of the run, in plan order, with its last outcome and reason.
pub fn agent_outcomes(view: &RunView) -> Vec<AgentOutcome> {
    view.plan
        .agents
        .iter()
        .map(|ap| {
            let id = ap.agent.id();
            let wave = view.waves.iter().position(|w| w.contains(&id));
            let p = view.agents.get(&id);
            let last_step = p.and_then(|p| p.in_flight.or(p.done.last().copied()));
            let (outcome, applied, reason) = match p {
                Some(p) if p.rollback.is_some() => {
                    let rb = p.rollback.as_ref().unwrap();
                    (AgentStanding::of(rb), p.outcome.as_ref().map(AgentStanding::of), rb.why().map(str::to_string))
                }
                Some(p) if p.outcome.is_some() => {
                    let o = p.outcome.as_ref().unwrap();
                    (AgentStanding::of(o), None, o.why().map(str::to_string))
                }
                Some(p) if p.in_flight.is_some() || !p.done.is_empty() => {
                    let step = last_step.map(|s| s.as_str()).unwrap_or("?");
                    let why = if p.in_flight.is_some() {
                        format!("the run stopped during its {step} step")
                    } else {
                        format!("the run stopped after its {step} step")
                    };
                    (AgentStanding::Stopped, None, Some(why))
                }
                _ => {
                    let why = if wave.is_some() { "its wave began, the run stopped before this agent" } else { "the run stopped before its wave" };
                    (AgentStanding::NotReached, None, Some(why.to_string()))
                }
            };
            AgentOutcome { id, wave, outcome, applied, reason, last_step }
        })
        .collect()
}

/// A run's outcomes by run id, read from the journal.
pub fn run_outcomes(run_id: &str) -> Result<(RunStatus, Vec<AgentOutcome>), String> {
    let records = journal::read(run_id).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("no run `{run_id}` in {}", journal::state_dir().join("runs").display())
        } else {
            e.to_string()
        }
    })?;
    let view = RunView::from_records(&records).ok_or_else(|| format!("run {run_id}: no start record"))?;
    Ok((status(&view), agent_outcomes(&view)))
}
