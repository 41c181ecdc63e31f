//! The Rollout view's state: the run this console drives (apply or rollback), its
//! confirmation, pause/resume/abort, and the engine's events as they come.

use crate::tui::action::{Action, Effect, Msg, Pending, Popup, View};
use super::App;
use crate::tui::action::{Status, StatusKind};
use crate::rollout::engine::{waves, Event, GateDecision, Size};
use crate::tui::model::run::{AgentRun, RunKind, RunPhase, RunProgress};
use crate::rollout::journal::RunState;

impl App {
    /// Confirming, driving and leaving a run.
    pub(super) fn run_action(&mut self, action: Action) -> Vec<Effect> {
        let mut fx = Vec::new();
        match action {
            Action::Quit => {
                if self.run_active() {
                    self.popup = Some(Popup::QuitRun);
                } else {
                    self.quitting = true;
                    fx.push(Effect::Quit);
                }
            }
            Action::QuitDetach => {
                self.popup = None;
                self.quitting = true;
                fx.push(Effect::Quit);
            }
            Action::QuitAbort => {
                self.popup = None;
                if self.run_active() {
                    self.quit_after_run = true;
                    if let Some(r) = &mut self.run {
                        r.phase = RunPhase::Stopping;
                        r.aborted = true;
                    }
                    self.info("aborting after the steps in flight, then quitting");
                    fx.push(Effect::Stop);
                } else {
                    self.quitting = true;
                    fx.push(Effect::Quit);
                }
            }
            Action::ConfirmNo => {
                self.popup = None;
                self.info("not confirmed; nothing changed");
            }
            Action::FormField(_) | Action::FormInsert(_) | Action::FormBackspace | Action::FormDone | Action::TogglePauseAfterCanary => {
                if let Some(Popup::Confirm(Pending::Apply { form, .. })) = &mut self.popup {
                    match action {
                        Action::FormField(f) => form.start(f),
                        Action::FormInsert(c) => form.insert(c),
                        Action::FormBackspace => form.backspace(),
                        Action::FormDone => form.done(),
                        _ => form.pause_after_canary = !form.pause_after_canary,
                    }
                    self.clear_status();
                }
            }
            Action::CanaryContinue | Action::CanaryPause => {
                if matches!(self.popup, Some(Popup::CanaryGate { .. })) {
                    self.popup = None;
                }
                let d = if action == Action::CanaryContinue {
                    self.info("canary verified: continuing with the waves");
                    GateDecision::Continue
                } else {
                    self.info("pausing after the canary: the run stays resumable (P resumes it)");
                    GateDecision::Pause
                };
                fx.push(Effect::GateAnswer(d));
            }
            // An option that does not parse blocks `y`: the popup stays, naming the field.
            Action::ConfirmYes if matches!(&self.popup, Some(Popup::Confirm(Pending::Apply { form, .. })) if form.error().is_some()) => {
                if let Some(Popup::Confirm(Pending::Apply { form, .. })) = &self.popup {
                    let e = form.error().map(|e| e.to_string()).unwrap_or_default();
                    self.error(format!("not confirmed: {e}"));
                }
            }
            Action::ConfirmYes => {
                if matches!(self.popup, Some(Popup::Confirm(_))) {
                    // A new run: the last one's summary goes.
                    self.status = None;
                    self.held_summary = None;
                }
                match self.popup.take() {
                Some(Popup::Confirm(Pending::Apply { plan, form })) => {
                    let choice = match form.choice() {
                        Ok(c) => c,
                        Err(e) => {
                            self.error(format!("not confirmed: {e}"));
                            self.popup = Some(Popup::Confirm(Pending::Apply { plan, form }));
                            return fx;
                        }
                    };
                    let opts = choice.opts.clone();
                    let ids: Vec<String> = plan.agents.iter().map(|a| a.agent.id()).collect();
                    let wave = Size::parse(&opts.wave).unwrap_or(Size::Percent(25));
                    self.run = Some(RunProgress {
                        kind: RunKind::Apply,
                        run_id: None,
                        waves: waves(&ids, opts.canary, wave),
                        agents: ids.iter().map(|id| (id.clone(), AgentRun::default())).collect(),
                        ids,
                        opts: opts.clone(),
                        current_wave: None,
                        phase: RunPhase::Starting,
                        aborted: false,
                        state: None,
                        halted: None,
                        error: None,
                    });
                    self.marks.clear();
                    self.go(View::Rollout);
                    self.info("run starting");
                    fx.push(Effect::Apply { plan, opts, restart_timeout: choice.restart_timeout, pause_after_canary: choice.pause_after_canary });
                }
                Some(Popup::Confirm(Pending::Rollback { run_id, .. })) => {
                    self.run = Some(RunProgress::of_journal(RunKind::Rollback, &run_id, self.opts.clone()));
                    self.go(View::Rollout);
                    self.info(format!("rolling back run {run_id}"));
                    fx.push(Effect::Rollback { run_id });
                }
                Some(Popup::Confirm(Pending::Resume { run_id, continue_halted, .. })) => {
                    // Any run of the journal: its agents and earlier outcomes from its
                    // outcomes (read now, unless the Run view has them).
                    self.run = Some(RunProgress::of_journal(RunKind::Apply, &run_id, self.opts.clone()));
                    self.go(View::Rollout);
                    if self.run_detail.as_ref().is_some_and(|d| d.run_id == run_id && d.status().is_some()) {
                        self.prefill_resumed();
                    } else {
                        self.run_detail = Some(crate::tui::model::runs::RunDetail { run_id: run_id.clone(), loaded: None, scroll: 0 });
                        fx.push(Effect::LoadRun { run_id: run_id.clone() });
                    }
                    let how = if continue_halted { "continuing past the halt of" } else { "resuming" };
                    self.info(format!("{how} run {run_id}"));
                    fx.push(Effect::Resume { run_id });
                }
                other => self.popup = other,
                }
            }
            Action::PauseResume => match self.run.as_mut() {
                Some(r) if r.kind == RunKind::Apply && r.phase == RunPhase::Running => {
                    r.phase = RunPhase::Pausing;
                    fx.push(Effect::Stop);
                    self.info("pausing after the steps in flight");
                }
                // Paused here, or finished in a state that allows resuming (stopped, halted).
                Some(r)
                    if r.phase == RunPhase::Paused
                        || (r.kind == RunKind::Apply
                            && r.phase == RunPhase::Finished
                            && r.state.is_some_and(|s| {
                                crate::rollout::lifecycle::allowed_actions(s).iter().any(|x| {
                                    matches!(x, crate::rollout::lifecycle::RunAction::Resume | crate::rollout::lifecycle::RunAction::ContinueHalted)
                                })
                            })) =>
                {
                    if let Some(id) = r.run_id.clone() {
                        r.phase = RunPhase::Running;
                        r.halted = None;
                        r.aborted = false;
                        fx.push(Effect::Resume { run_id: id });
                        self.info("resuming");
                    }
                }
                _ => self.error("no run to pause or resume"),
            },
            Action::Abort => match self.run.as_mut() {
                Some(r) if r.kind == RunKind::Apply && matches!(r.phase, RunPhase::Running | RunPhase::Starting | RunPhase::Pausing) => {
                    r.phase = RunPhase::Stopping;
                    r.aborted = true;
                    fx.push(Effect::Stop);
                    self.info("aborting after the steps in flight; the run stays resumable");
                }
                Some(r) if r.phase == RunPhase::Paused => {
                    r.phase = RunPhase::Finished;
                    r.aborted = true;
                    let id = r.run_id.clone().unwrap_or_default();
                    self.info(format!("interrupted; resume later with `codex-fleet apply --resume {id}`"));
                }
                _ => self.error("no run in progress"),
            },
            Action::Rollback => {
                let run_id = match self.view {
                    View::Rollout => self
                        .run
                        .as_ref()
                        .filter(|r| r.kind == RunKind::Apply && !r.phase.active())
                        .and_then(|r| r.run_id.clone()),
                    View::Audit => self.runs.get(self.run_sel).map(|r| r.run_id.clone()),
                    _ => None,
                };
                match run_id {
                    _ if self.run_active() => self.error("a run is in progress"),
                    Some(run_id) => {
                        let agents = self.runs.iter().find(|r| r.run_id == run_id).map(|r| r.agents).unwrap_or_else(|| {
                            self.run.as_ref().map(|r| r.ids.len()).unwrap_or(0)
                        });
                        self.popup = Some(Popup::Confirm(Pending::Rollback { run_id, agents }));
                    }
                    None => self.error("no finished run here to roll back"),
                }
            }
            _ => {}
        }
        fx
    }

    /// The engine's news of the run.
    pub(super) fn run_msg(&mut self, msg: Msg) -> Vec<Effect> {
        let mut fx = Vec::new();
        match msg {
            Msg::RunStarted { run_id } => {
                if let Some(r) = &mut self.run {
                    r.run_id = Some(run_id.clone());
                    if r.phase == RunPhase::Starting {
                        r.phase = RunPhase::Running;
                    }
                }
                self.info(format!("run {run_id} started"));
            }
            Msg::CanaryVerified(cv) => {
                self.popup = Some(Popup::CanaryGate {
                    run_id: cv.run_id,
                    canary: cv.agents.len(),
                    waves_left: cv.waves_left,
                    agents_left: cv.agents_left,
                });
            }
            Msg::RunEvent(e) => {
                if let Some(r) = &mut self.run {
                    match e {
                        Event::Wave { index, agents } => {
                            r.current_wave = Some(index);
                            if r.waves.len() <= index {
                                r.waves.resize(index + 1, Vec::new());
                            }
                            r.waves[index] = agents;
                        }
                        Event::Step { agent, step, phase, detail } => {
                            let a = r.agents.entry(agent).or_default();
                            a.step = Some(step);
                            a.phase = phase.to_string();
                            a.detail = detail;
                        }
                        Event::Agent { agent, outcome } => {
                            r.agents.entry(agent).or_default().outcome = Some(outcome);
                        }
                        Event::Halted { reason } => r.halted = Some(reason),
                        // A pause or stop: the header says `interrupted`; never "halted".
                        Event::Paused { .. } => {}
                    }
                }
            }
            Msg::RunDone(res) => {
                let mut rescan = false;
                if let Some(r) = &mut self.run {
                    match res {
                        Ok(result) => {
                            r.state = Some(result.state);
                            r.phase = if r.phase == RunPhase::Pausing && result.state == RunState::Interrupted {
                                RunPhase::Paused
                            } else {
                                RunPhase::Finished
                            };
                            let mut text = format!(
                                "run {}: {} — {} verified, {} failed, {} skipped, {} untouched",
                                result.run_id,
                                result.state.as_str(),
                                result.verified,
                                result.failed,
                                result.skipped,
                                result.untouched.len()
                            );
                            if result.verified > 0 {
                                // Fixed agents turn at-risk (fix-not-in-image): the audit says what
                                // the image needs.
                                text.push_str(" · next: :audit (what the image still needs)");
                            }
                            let kind = if result.all_verified() { StatusKind::Info } else { StatusKind::Error };
                            self.status = Some(Status { kind, text, pinned: true });
                        }
                        Err(e) => {
                            r.phase = RunPhase::Finished;
                            r.error = Some(e.clone());
                            self.status = Some(Status { kind: StatusKind::Error, text: format!("run failed: {e}"), pinned: true });
                        }
                    }
                    rescan = r.phase == RunPhase::Finished;
                }
                if self.quit_after_run {
                    self.quitting = true;
                    fx.push(Effect::Quit);
                } else if rescan {
                    self.scanning = Some(0);
                    fx.push(Effect::Scan);
                    fx.push(Effect::LoadRuns);
                }
            }
            Msg::RollbackDone { run_id, result } => {
                if let Some(r) = &mut self.run {
                    r.phase = RunPhase::Finished;
                    match &result {
                        Ok(v) => {
                            for (id, o) in v {
                                r.agents.entry(id.clone()).or_default().outcome = Some(o.clone());
                            }
                            if v.iter().all(|(_, o)| o.is_rolled_back()) {
                                r.state = Some(RunState::RolledBack);
                            }
                        }
                        Err(e) => r.error = Some(e.clone()),
                    }
                }
                match result {
                    Ok(v) => {
                        let ok = v.iter().filter(|(_, o)| o.is_rolled_back()).count();
                        let text = format!("rollback of {run_id}: {ok} of {} agent(s) restored", v.len());
                        if ok == v.len() {
                            self.info(text)
                        } else {
                            self.error(text)
                        }
                    }
                    Err(e) => self.error(format!("rollback of {run_id} failed: {e}")),
                }
                if self.quit_after_run {
                    self.quitting = true;
                    fx.push(Effect::Quit);
                } else {
                    self.scanning = Some(0);
                    fx.push(Effect::Scan);
                    fx.push(Effect::LoadRuns);
                }
            }
            _ => {}
        }
        fx
    }
}
