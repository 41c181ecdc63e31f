//! The Plan view's state: the grouped preview of a plan, folding, and the jump between groups.

use crate::tui::action::{Action, Effect, Msg, Pending, PlanFor, Popup, View};
use super::App;
use crate::tui::model::plan::{plan_lines, PlanView};

impl App {
    /// Enter in the plan: fold or unfold (the managed block's lines and every agent's id).
    pub(super) fn toggle_plan_fold(&mut self) -> Vec<Effect> {
            // Enter folds / unfolds: the managed block's lines and every agent's id.
            let report = &self.report;
            if let Some(p) = &mut self.plan {
                p.full = !p.full;
                p.lines = plan_lines(&p.plan, &p.ids, report, p.full);
                p.scroll = p.scroll.min(p.lines.len().saturating_sub(1));
            }
        Vec::new()
    }

    /// Planning the agents in focus (to preview or to apply), and moving between groups.
    pub(super) fn plan_action(&mut self, action: Action) -> Vec<Effect> {
        let mut fx = Vec::new();
        match action {
            Action::Preview | Action::Apply => {
                let purpose = if action == Action::Apply { PlanFor::Apply } else { PlanFor::Preview };
                if purpose == PlanFor::Apply && self.run_active() {
                    self.error("a run is in progress; wait for it, or pause/abort it in the rollout view");
                    return fx;
                }
                let ids = self.targets();
                if ids.is_empty() {
                    self.error("select or mark agents first (space marks, * marks every visible row)");
                } else {
                    self.planning = Some(purpose);
                    self.info(format!("planning {} agent(s)…", ids.len()));
                    fx.push(Effect::Plan { ids, purpose });
                }
            }
            Action::NextGroup(d) => {
                if let Some(p) = &mut self.plan {
                    let starts: Vec<usize> =
                        p.lines.iter().enumerate().filter(|(_, l)| l.starts_with("== ")).map(|(i, _)| i).collect();
                    let next = if d > 0 {
                        starts.iter().find(|&&i| i > p.scroll).copied()
                    } else {
                        starts.iter().rev().find(|&&i| i < p.scroll).copied()
                    };
                    match next {
                        Some(i) => p.scroll = i,
                        None => self.info(if d > 0 { "last group" } else { "first group" }),
                    }
                }
            }
            _ => {}
        }
        fx
    }

    /// A plan computed off the UI loop.
    pub(super) fn plan_msg(&mut self, msg: Msg) -> Vec<Effect> {
        let fx = Vec::new();
        match msg {
            Msg::Planned { plan, ids, purpose } => {
                self.planning = None;
                let lines = plan_lines(&plan, &ids, &self.report, false);
                match purpose {
                    PlanFor::Preview => {
                        self.plan = Some(PlanView { plan, ids, lines, scroll: 0, full: false });
                        self.go(View::Plan);
                        self.clear_status();
                    }
                    PlanFor::Apply => {
                        if plan.agents.is_empty() {
                            let n = plan.attention.len();
                            self.plan = Some(PlanView { plan, ids, lines, scroll: 0, full: false });
                            self.go(View::Plan);
                            self.error(format!("nothing to apply: no change planned ({n} need attention, shown here)"));
                        } else {
                            self.plan = Some(PlanView { plan: plan.clone(), ids, lines, scroll: 0, full: false });
                            self.clear_status();
                            self.popup = Some(Popup::Confirm(Pending::Apply { plan, form: self.apply_defaults.clone() }));
                        }
                    }
                }
            }
            _ => {}
        }
        fx
    }
}
