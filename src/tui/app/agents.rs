//! The Agents view's state: the table's rows (filtered, sorted), marks, copying an id, and the
//! boot assertions run from it.

use crate::tui::action::{Action, Effect, Msg, SortKey, View};
use super::{AgentIx, App};
use crate::tui::model::filter::{matches_term, verdict_rank};
use crate::present::root_cause;
use crate::scan::AgentState;

impl App {
    /// Rebuild the table's rows from the report, the filter and the sort, keeping the agent in
    /// focus selected.
    pub(super) fn rebuild_rows(&mut self) {
        let keep = self.selected_agent().map(|a| (a.read.agent.host.clone(), a.read.agent.name.clone()));
        let terms: Vec<String> = self.filter.split_whitespace().map(str::to_lowercase).collect();
        // A filter that is a whole root cause of the why line (Enter on a cause in the Hosts
        // view, or typed) selects exactly the agents stalled by it.
        let cause = self.causes.iter().map(|(_, c)| *c).find(|c| c.eq_ignore_ascii_case(self.filter.trim()));
        let mut rows: Vec<AgentIx> = Vec::with_capacity(self.total);
        for (hi, h) in self.report.hosts.iter().enumerate() {
            for (ai, a) in h.agents.iter().enumerate() {
                let hit = match &cause {
                    Some(c) => root_cause(a) == Some(c),
                    None => terms.iter().all(|t| matches_term(h, a, t)),
                };
                if hit {
                    rows.push((hi as u32, ai as u32));
                }
            }
        }
        let rep = &self.report;
        let get = |ix: &AgentIx| (&rep.hosts[ix.0 as usize], &rep.hosts[ix.0 as usize].agents[ix.1 as usize]);
        let mode = |a: &AgentState| a.diagnosis.effective.as_ref().map(|e| e.sandbox_mode.value.clone()).unwrap_or_default();
        match self.sort {
            SortKey::Verdict => rows.sort_by(|x, y| {
                let ((hx, ax), (hy, ay)) = (get(x), get(y));
                (verdict_rank(ax.diagnosis.verdict), &hx.host.name, &ax.read.agent.name)
                    .cmp(&(verdict_rank(ay.diagnosis.verdict), &hy.host.name, &ay.read.agent.name))
            }),
            SortKey::Host => rows.sort_by(|x, y| {
                let ((hx, ax), (hy, ay)) = (get(x), get(y));
                (&hx.host.name, &ax.read.agent.name).cmp(&(&hy.host.name, &ay.read.agent.name))
            }),
            SortKey::Name => rows.sort_by(|x, y| get(x).1.read.agent.name.cmp(&get(y).1.read.agent.name)),
            SortKey::Mode => rows.sort_by(|x, y| {
                let ((hx, ax), (hy, ay)) = (get(x), get(y));
                (mode(ax), &hx.host.name, &ax.read.agent.name).cmp(&(mode(ay), &hy.host.name, &ay.read.agent.name))
            }),
        }
        if self.sort_rev {
            rows.reverse();
        }
        self.rows = rows;
        if let Some((host, name)) = keep {
            let same = |a: &AgentState| a.read.agent.name == name && a.read.agent.host == host;
            if let Some(i) = self.rows.iter().position(|ix| self.agent_at(*ix).is_some_and(same)) {
                self.sel = i;
            }
        }
    }

    /// Enter on an agent: its detail.
    pub(super) fn open_agent(&mut self) -> Vec<Effect> {
            if let Some(a) = self.selected_agent() {
                self.detail = Some(a.id());
                self.detail_scroll = 0;
                self.go(View::Detail);
            }
        Vec::new()
    }

    /// Marks, sorting, copying and verifying, on the agents in focus.
    pub(super) fn agents_action(&mut self, action: Action) -> Vec<Effect> {
        let mut fx = Vec::new();
        match action {
            Action::Verify => {
                let ids = self.targets();
                if ids.is_empty() {
                    self.error("nothing to verify: select or mark agents");
                } else {
                    self.verifying += ids.len();
                    for id in &ids {
                        self.verify.remove(id);
                    }
                    self.info(format!("verifying {} agent(s)…", ids.len()));
                    fx.push(Effect::Verify { ids });
                }
            }
            Action::ToggleMark => {
                if let Some(id) = match self.view {
                    View::Agents => self.selected_agent().map(|a| a.id()),
                    View::Detail => self.detail.clone(),
                    _ => None,
                } {
                    if !self.marks.remove(&id) {
                        self.marks.insert(id);
                    }
                    if self.view == View::Agents {
                        self.move_by(1);
                    }
                }
            }
            Action::MarkVisible => {
                let ids: Vec<String> = self.rows.iter().filter_map(|ix| self.agent_at(*ix)).map(|a| a.id()).collect();
                let n = ids.len();
                self.marks.extend(ids);
                self.info(format!("marked {n} agent(s) ({} in all)", self.marks.len()));
            }
            Action::ClearMarks => {
                self.marks.clear();
                self.info("marks cleared");
            }
            Action::Sort => {
                self.sort = self.sort.next();
                self.dirty = true;
            }
            Action::ReverseSort => {
                self.sort_rev = !self.sort_rev;
                self.dirty = true;
            }
            Action::CopyId => {
                let id = match self.view {
                    View::Detail => self.detail_agent().map(|(_, a)| a.id()),
                    _ => self.selected_agent().map(|a| a.id()),
                };
                match id {
                    Some(id) => {
                        // The id is printed too: terminals without OSC 52 lose the copy silently,
                        // and the status line can still be selected with the mouse.
                        self.info(format!("copied to the clipboard (OSC 52): {id}"));
                        self.clipboard = Some(id);
                    }
                    None => self.error("nothing to copy: select an agent"),
                }
            }
            _ => {}
        }
        fx
    }

    /// A boot assertion's answer.
    pub(super) fn agents_msg(&mut self, msg: Msg) -> Vec<Effect> {
        let fx = Vec::new();
        match msg {
            Msg::Verified { id, result } => {
                self.verifying = self.verifying.saturating_sub(1);
                self.verify.insert(id, result);
                if self.verifying == 0 {
                    let pass = self.verify.values().filter(|r| r.as_ref().is_ok_and(|v| v.passed)).count();
                    let n = self.verify.len();
                    let mut text = format!("verify: {pass} of {n} agent(s) pass the boot assertion");
                    // Name the first one that did not, and what failed: the operator's next look.
                    if let Some((id, r)) = self.verify.iter().find(|(_, r)| !r.as_ref().is_ok_and(|v| v.passed)) {
                        let why = match r {
                            Ok(v) => v
                                .checks
                                .iter()
                                .find(|(_, ok, _)| !ok)
                                .map(|(name, _, ev)| format!("{name}: {ev}"))
                                .unwrap_or_else(|| "failed".into()),
                            Err(e) => format!("unknown: {e}"),
                        };
                        text.push_str(&format!(" · {id} {}", crate::term_safe::line(&why)));
                        if n - pass > 1 {
                            text.push_str(&format!(" (+{} more)", n - pass - 1));
                        }
                    }
                    if pass == n {
                        self.info(text)
                    } else {
                        self.error(text)
                    }
                }
            }
            _ => {}
        }
        fx
    }
}
