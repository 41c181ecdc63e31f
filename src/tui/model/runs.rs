//! The Runs views' state: one run of the journal opened (its status and each agent's outcome
//! and reason), and the state word of a listed run read back into the lifecycle's vocabulary.

use crate::rollout::journal::RunState;
use crate::rollout::lifecycle::{allowed_actions, AgentOutcome, RunAction, RunStatus};

/// The run opened with Enter in the Runs view.
#[derive(Debug, Clone)]
pub struct RunDetail {
    pub run_id: String,
    /// `None` while the journal is being read.
    pub loaded: Option<Result<(RunStatus, Vec<AgentOutcome>), String>>,
    pub scroll: usize,
}

impl RunDetail {
    pub fn status(&self) -> Option<&RunStatus> {
        match &self.loaded {
            Some(Ok((s, _))) => Some(s),
            _ => None,
        }
    }

    pub fn agents(&self) -> &[AgentOutcome] {
        match &self.loaded {
            Some(Ok((_, a))) => a,
            _ => &[],
        }
    }
}

/// The state word a run summary carries (`RunState::as_str`), back as the state.
pub fn state_of(word: &str) -> Option<RunState> {
    [RunState::Running, RunState::Interrupted, RunState::Halted, RunState::Done, RunState::RolledBack]
        .into_iter()
        .find(|s| s.as_str() == word)
}

/// What the console offers for a run: the lifecycle's actions it can carry out (resume,
/// continue past a halt, roll back; unlock stays the CLI's).
pub fn console_actions(actions: &[RunAction]) -> Vec<RunAction> {
    actions.iter().copied().filter(|a| !matches!(a, RunAction::Unlock)).collect()
}

/// The actions a listed run's state word allows.
pub fn actions_of_word(word: &str) -> Vec<RunAction> {
    state_of(word).map(|s| console_actions(allowed_actions(s))).unwrap_or_default()
}
