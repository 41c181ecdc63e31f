//! The Agents view's state: the table's rows (filtered, sorted), marks, copying an id, and the
//! boot assertions run from it.

use super::App;
use crate::scan::AgentState;
use crate::tui::action::{Action, Effect, Msg, View};

impl App {
    /// Rebuild the table's rows from the report, the filter and the sort, keeping the agent in
    /// focus selected.
    pub(super) fn rebuild_rows(&mut self) {
        let keep = self.selected_agent().map(|a| (a.read.agent.host.clone(), a.read.agent.name.clone()));
        // Filter and sort incrementally: the index of the searchable words, the sorted order and
        // the last results are kept between keystrokes (see `model::filter_index`).
        self.rows = self.filter_index.rows(&self.report, &self.causes, &self.filter, self.sort, self.sort_rev);
        self.name_widths.set(None);
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
