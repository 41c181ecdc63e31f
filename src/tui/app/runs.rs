//! The Runs views' state machine: every run of the journal, one run's outcomes, and resuming
//! or rolling back any of them (not only a run this console started) once a liveness check
//! found no live process holding it, then a confirmation holding the exact action.

use super::App;
use crate::rollout::journal::Outcome;
use crate::rollout::lifecycle::{AgentStanding, RunAction};
use crate::tui::action::{Action, Effect, Msg, Pending, Popup, View};
use crate::tui::model::runs::{actions_of_word, console_actions, RunDetail};

impl App {
    /// The run the Runs views act on: the opened one in `Run`, the selected one in `Runs`.
    pub fn runs_target(&self) -> Option<String> {
        match self.view {
            View::Run => self.run_detail.as_ref().map(|d| d.run_id.clone()),
            View::Runs => self.runs.get(self.run_sel).map(|r| r.run_id.clone()),
            _ => None,
        }
    }

    /// What the run in focus allows the console to do, from its state (the opened run's full
    /// status when read: a rollback begun narrows it).
    pub fn runs_actions(&self) -> Vec<RunAction> {
        let Some(id) = self.runs_target() else { return Vec::new() };
        if let Some(s) = self.run_detail.as_ref().filter(|d| d.run_id == id).and_then(|d| d.status()) {
            return console_actions(&s.actions());
        }
        self.runs.iter().find(|r| r.run_id == id).map(|r| actions_of_word(&r.state)).unwrap_or_default()
    }

    /// Enter on a run: read its outcomes.
    pub(super) fn open_run(&mut self) -> Vec<Effect> {
        let Some(r) = self.runs.get(self.run_sel) else { return Vec::new() };
        let run_id = r.run_id.clone();
        self.run_detail = Some(RunDetail { run_id: run_id.clone(), loaded: None, scroll: 0 });
        self.go(View::Run);
        vec![Effect::LoadRun { run_id }]
    }

    /// `P` / `B` in the Runs views: refused unless the state allows it; otherwise the liveness
    /// check first (its answer opens the confirmation).
    pub(super) fn runs_action(&mut self, action: Action) -> Vec<Effect> {
        let Some(run_id) = self.runs_target() else {
            self.error("no run selected");
            return Vec::new();
        };
        if self.run_active() {
            self.error("a run is in progress in this console; wait for it (or detach) first");
            return Vec::new();
        }
        let allowed = self.runs_actions();
        let want = match action {
            Action::ResumeRun => allowed.iter().copied().find(|a| matches!(a, RunAction::Resume | RunAction::ContinueHalted)),
            _ => allowed.iter().copied().find(|a| *a == RunAction::Rollback),
        };
        let Some(want) = want else {
            let state = self.runs_state_word(&run_id);
            let what = if action == Action::ResumeRun { "resumed" } else { "rolled back" };
            let offers: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
            let offers = if offers.is_empty() { "nothing".to_string() } else { offers.join(", ") };
            self.error(format!("run {run_id} is {state}: it cannot be {what} (it allows {offers})"));
            return Vec::new();
        };
        self.info(format!("checking whether a live process holds run {run_id}…"));
        vec![Effect::CheckRun { run_id, action: want }]
    }

    fn runs_state_word(&self, run_id: &str) -> String {
        if let Some(s) = self.run_detail.as_ref().filter(|d| d.run_id == run_id).and_then(|d| d.status()) {
            return s.state.as_str().to_string();
        }
        self.runs.iter().find(|r| r.run_id == run_id).map(|r| r.state.clone()).unwrap_or_else(|| "unknown".into())
    }

    fn runs_agents(&self, run_id: &str) -> usize {
        if let Some(d) = self.run_detail.as_ref().filter(|d| d.run_id == run_id && d.status().is_some()) {
            return d.agents().len();
        }
        self.runs.iter().find(|r| r.run_id == run_id).map(|r| r.agents).unwrap_or(0)
    }

    /// A run resumed from the journal: its planned agents and what earlier processes finished
    /// (the engine reports only what it does from here), from the run's outcomes once read.
    pub(super) fn prefill_resumed(&mut self) {
        let Some(r) = self.run.as_mut() else { return };
        let Some(d) = self.run_detail.as_ref().filter(|d| Some(&d.run_id) == r.run_id.as_ref()) else { return };
        if !r.ids.is_empty() || d.status().is_none() {
            return;
        }
        r.ids = d.agents().iter().map(|a| a.id.clone()).collect();
        for a in d.agents() {
            let why = || a.reason.clone().unwrap_or_default();
            let outcome = match a.outcome {
                AgentStanding::Verified => Some(Outcome::Verified),
                AgentStanding::Failed => Some(Outcome::Failed(why())),
                AgentStanding::Skipped => Some(Outcome::Skipped(why())),
                AgentStanding::Unknown => Some(Outcome::Unknown(why())),
                _ => None,
            };
            let e = r.agents.entry(a.id.clone()).or_default();
            if e.outcome.is_none() {
                e.outcome = outcome;
            }
        }
    }

    /// The journal's answer for one run, and the liveness check's.
    pub(super) fn runs_msg(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::RunOutcomes { run_id, result } => {
                if let Some(d) = self.run_detail.as_mut().filter(|d| d.run_id == run_id) {
                    if let Err(e) = &result {
                        let e = e.clone();
                        d.loaded = Some(result);
                        self.error(e);
                    } else {
                        d.loaded = Some(result);
                    }
                }
                self.prefill_resumed();
            }
            Msg::RunChecked { run_id, action, result } => match result {
                Err(e) => self.error(e),
                // Asked from another view meanwhile, or a popup open: the operator asks again.
                Ok(()) if !matches!(self.view, View::Runs | View::Run) || self.popup.is_some() => {}
                Ok(()) => {
                    let agents = self.runs_agents(&run_id);
                    let pending = match action {
                        RunAction::Resume => Pending::Resume { run_id, continue_halted: false, agents },
                        RunAction::ContinueHalted => Pending::Resume { run_id, continue_halted: true, agents },
                        _ => Pending::Rollback { run_id, agents },
                    };
                    self.clear_status();
                    self.popup = Some(Popup::Confirm(pending));
                }
            },
            _ => {}
        }
        Vec::new()
    }
}
