//! The console's vocabulary: the views, every action an operator can ask for, the effects the
//! runtime carries out, and the messages its tasks send back. Types only: the state machine
//! ([`super::app::App`]) gives them meaning.

use std::path::PathBuf;
use std::time::Duration;

use crate::fleet::VerifyReport;
use crate::plan::Plan;
use crate::present::Format;
use crate::rollout::engine::{CanaryVerified, Event, GateDecision, RunResult};
use super::model::confirm::{ApplyForm, Field};
use crate::rollout::journal::{Outcome, RunOptions};
use crate::rollout::lifecycle::{AgentOutcome, RunAction, RunStatus};
use crate::rollout::summary::RunSummary;
use crate::scan::{FleetReport, HostState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Fleet overview: hosts, reachability, counts by verdict.
    Hosts,
    /// The agents table.
    Agents,
    /// One agent in full.
    Detail,
    /// Diff preview of a plan.
    Plan,
    /// Apply / rollout progress.
    Rollout,
    /// Re-provision audit and run history.
    Audit,
    /// Every run in the journal, its state word and what it allows.
    Runs,
    /// One run of the journal: each agent's outcome and reason.
    Run,
}

impl View {
    pub fn title(self) -> &'static str {
        match self {
            View::Hosts => "Hosts",
            View::Agents => "Agents",
            View::Detail => "Agent",
            View::Plan => "Plan",
            View::Rollout => "Rollout",
            View::Audit => "Audit",
            View::Runs => "Runs",
            View::Run => "Run",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Verdict,
    Host,
    Name,
    Mode,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Verdict => SortKey::Host,
            SortKey::Host => SortKey::Name,
            SortKey::Name => SortKey::Mode,
            SortKey::Mode => SortKey::Verdict,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Verdict => "verdict",
            SortKey::Host => "host",
            SortKey::Name => "name",
            SortKey::Mode => "mode",
        }
    }
}

/// What a plan being computed is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFor {
    Preview,
    Apply,
}

/// Editing keys of the one-line input (filter, command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Insert(char),
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    Clear,
}

/// Everything the operator can ask for. Produced from keys by [`App::action_for`]; applied by
/// [`App::dispatch`], the one place where `--read-only` is enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Quit,
    Back,
    Help,
    Refresh,
    Verify,
    Move(isize),
    Top,
    Bottom,
    PageUp,
    PageDown,
    Open,
    NextView,
    Go(View),
    ToggleMark,
    MarkVisible,
    ClearMarks,
    Sort,
    ReverseSort,
    Preview,
    Apply,
    StartFilter,
    StartCommand,
    /// `c`: copy the agent in focus's id (what `--agent` takes) to the clipboard.
    CopyId,
    /// Tab on the `:` line: complete the command word (or its argument).
    Complete,
    /// `J` / `K` in the audit view: scroll the by-image list (j/k move in the runs).
    ScrollAudit(isize),
    /// `n` / `N` in the plan view: the next / previous group of identical changes.
    NextGroup(isize),
    /// `e` in the audit view: the command line, prefilled with an export command.
    StartExport,
    Edit(Edit),
    SubmitInput,
    CancelInput,
    /// Run a command-line command (`hosts`, `agents`, `audit`, `rollout`, `export md FILE`...).
    Command(String),
    ConfirmYes,
    ConfirmNo,
    /// In the apply confirmation: type into this option (`c`, `w`, `e`, `t`).
    FormField(Field),
    FormInsert(char),
    FormBackspace,
    /// Enter / Tab / Esc while typing an option: done with it.
    FormDone,
    /// `p` in the apply confirmation: pause after the canary, for the operator's answer.
    TogglePauseAfterCanary,
    /// `y` to "canary verified: continue?": the waves go on.
    CanaryContinue,
    /// Any other key to it: the run pauses there, resumable.
    CanaryPause,
    PauseResume,
    Abort,
    /// Roll back the run in context (the rollout view's run, or the audit or runs view's
    /// selected run).
    Rollback,
    /// `P` in the runs views: resume the selected run (any run of the journal the state allows).
    ResumeRun,
    QuitDetach,
    QuitAbort,
    ClosePopup,
    Export { format: Format, path: PathBuf },
    Resize(u16, u16),
}

impl Action {
    /// Actions that change the fleet (or a run). Refused under `--read-only`.
    pub fn is_mutating(&self) -> bool {
        matches!(self, Action::Apply | Action::ConfirmYes | Action::PauseResume | Action::Abort | Action::Rollback | Action::ResumeRun | Action::CanaryContinue)
    }
}

/// Work for the runtime, always done off the UI loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Scan,
    Plan { ids: Vec<String>, purpose: PlanFor },
    Apply { plan: Plan, opts: RunOptions, restart_timeout: Duration, pause_after_canary: bool },
    Resume { run_id: String },
    /// The operator's answer to the canary gate of the run in progress.
    GateAnswer(GateDecision),
    /// Ask the running engine to stop after the steps in flight.
    Stop,
    Rollback { run_id: String },
    Verify { ids: Vec<String> },
    LoadRuns,
    /// Read one run's status and per-agent outcomes from the journal.
    LoadRun { run_id: String },
    /// Ask whether a live process holds the run (`lifecycle::may_act`) before offering `action`.
    CheckRun { run_id: String, action: RunAction },
    Export { format: Format, path: PathBuf },
    Quit,
}

/// Results coming back from spawned tasks.
#[derive(Debug, Clone)]
pub enum Msg {
    /// A host answered the scan.
    Host(HostState),
    ScanDone(Result<FleetReport, String>),
    Planned { plan: Plan, ids: Vec<String>, purpose: PlanFor },
    RunStarted { run_id: String },
    RunEvent(Event),
    RunDone(Result<RunResult, String>),
    /// The canary wave verified and the run asks whether to go on (pause after the canary).
    CanaryVerified(CanaryVerified),
    RollbackDone { run_id: String, result: Result<Vec<(String, Outcome)>, String> },
    Verified { id: String, result: Result<VerifyReport, String> },
    Runs(Vec<RunSummary>),
    /// One run's status and per-agent outcomes (`lifecycle::run_outcomes`).
    RunOutcomes { run_id: String, result: Result<(RunStatus, Vec<AgentOutcome>), String> },
    /// The liveness check of `CheckRun`: `Err` names the live holder.
    RunChecked { run_id: String, action: RunAction, result: Result<(), String> },
    Exported(Result<PathBuf, String>),
}

/// A destructive action held by the confirmation popup, exactly as it will be dispatched.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    Apply { plan: Plan, form: ApplyForm },
    Rollback { run_id: String, agents: usize },
    /// Resume a run of the journal (`continue_halted`: past its halt).
    Resume { run_id: String, continue_halted: bool, agents: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    Help,
    Confirm(Pending),
    /// `q` while a run is in progress: detach or abort.
    QuitRun,
    /// The canary verified: continue with the waves? `[y/N]`.
    CanaryGate { run_id: String, canary: usize, waves_left: usize, agents_left: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Filter,
    Command,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusKind {
    Info,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub kind: StatusKind,
    pub text: String,
    /// A run's summary: background news (a scan ending) does not replace it; a key does.
    pub pinned: bool,
}
