//! The run the console drives (apply or rollback) as the Rollout view shows it (the
//! confirmation's typed options are [`super::confirm`]'s).

use std::collections::BTreeMap;

use crate::rollout::journal::{Outcome, RunOptions, RunState, Step};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Apply,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPhase {
    Starting,
    Running,
    /// Stop requested to pause: finishing the steps in flight.
    Pausing,
    Paused,
    /// Stop requested to abort: finishing the steps in flight.
    Stopping,
    Finished,
}

impl RunPhase {
    pub fn active(self) -> bool {
        matches!(self, RunPhase::Starting | RunPhase::Running | RunPhase::Pausing | RunPhase::Stopping)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            RunPhase::Starting => "starting",
            RunPhase::Running => "running",
            RunPhase::Pausing => "pausing after the steps in flight",
            // The run's state word (`rollout::journal::RunState`): a paused run is interrupted.
            RunPhase::Paused => "interrupted (paused; resumable)",
            RunPhase::Stopping => "stopping after the steps in flight",
            RunPhase::Finished => "finished",
        }
    }
}

/// One agent's progress in the run on screen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentRun {
    pub step: Option<Step>,
    pub phase: String,
    pub detail: String,
    pub outcome: Option<Outcome>,
}

/// The run (apply or rollback) this console started.
#[derive(Debug, Clone, PartialEq)]
pub struct RunProgress {
    pub kind: RunKind,
    pub run_id: Option<String>,
    pub opts: RunOptions,
    /// Planned agent ids in plan order.
    pub ids: Vec<String>,
    pub waves: Vec<Vec<String>>,
    pub current_wave: Option<usize>,
    pub agents: BTreeMap<String, AgentRun>,
    pub phase: RunPhase,
    pub aborted: bool,
    pub state: Option<RunState>,
    pub halted: Option<String>,
    pub error: Option<String>,
}

impl RunProgress {
    /// A run of the journal this console takes up (a resume, a rollback): running, its agents
    /// and waves filled in as the engine reports them.
    pub fn of_journal(kind: RunKind, run_id: &str, opts: RunOptions) -> RunProgress {
        RunProgress {
            kind,
            run_id: Some(run_id.to_string()),
            opts,
            ids: Vec::new(),
            waves: Vec::new(),
            current_wave: None,
            agents: BTreeMap::new(),
            phase: RunPhase::Running,
            aborted: false,
            state: None,
            halted: None,
            error: None,
        }
    }

    pub fn count(&self, word: &str) -> usize {
        self.agents.values().filter(|a| a.outcome.as_ref().is_some_and(|o| o.word() == word)).count()
    }
}
