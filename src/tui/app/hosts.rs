//! The Hosts view's state: the root causes above the hosts, the drill-down to one host, and the
//! scan's answers coming in host by host.

use crate::tui::action::{Effect, Msg, View};
use super::App;
use crate::diagnose::Diagnosis;
use crate::present::summary_line;
use crate::tui::model::filter::HOST_TERM;
use crate::scan::{AgentState, HostState};

impl App {
    /// Enter on a root cause (the agents it stalls) or on a host (that host's agents, exactly).
    pub(super) fn open_host(&mut self) -> Vec<Effect> {
            if let Some((_, cause)) = self.cause_sel.and_then(|i| self.causes.get(i)) {
                self.filter = cause.to_string();
                self.dirty = true;
                self.go(View::Agents);
            } else if let Some(h) = self.report.hosts.get(self.host_sel) {
                // That host's identity, exactly: never a substring of other hosts' names
                // (`ws-us-east-2-100` must not pull in -1000 and -1001).
                self.filter = format!("{HOST_TERM}{}", h.host.id);
                self.dirty = true;
                self.go(View::Agents);
            }
        Vec::new()
    }

    /// Up from the first host enters the root causes above the hosts; down from the last cause
    /// leaves them. True when the move was taken here.
    pub(super) fn move_in_causes(&mut self, d: isize) -> bool {
        let n = self.causes().len();
        match self.cause_sel {
            _ if n == 0 => {
                self.cause_sel = None;
                false
            }
            Some(i) => {
                let j = i as isize + d;
                if j < 0 {
                    self.cause_sel = Some(0);
                } else if j as usize >= n {
                    self.cause_sel = None;
                    self.host_sel = 0;
                } else {
                    self.cause_sel = Some(j as usize);
                }
                true
            }
            None if d < 0 && self.host_sel == 0 => {
                self.cause_sel = Some(n - 1);
                true
            }
            None => false,
        }
    }

    /// The scan's answers: a host at a time, then the whole report.
    pub(super) fn scan_msg(&mut self, msg: Msg) -> Vec<Effect> {
        let fx = Vec::new();
        match msg {
            Msg::Host(h) => {
                self.upsert_host(h);
                if let Some(n) = &mut self.scanning {
                    *n += 1;
                }
                self.dirty = true;
                self.data_dirty = true;
            }
            Msg::ScanDone(r) => {
                self.scanning = None;
                match r {
                    Ok(report) => {
                        // The final report is in discovery order; keep agents known from before
                        // on hosts that stopped answering (as `unknown`).
                        let old = std::mem::take(&mut self.report);
                        self.report = report;
                        for h in old.hosts {
                            if let Some(nh) = self.report.hosts.iter_mut().find(|x| x.host.id == h.host.id) {
                                if !nh.host.reachable && nh.agents.is_empty() {
                                    nh.agents = stale_agents(&nh.host, h.agents);
                                }
                            }
                        }
                        self.background_info(format!("scan done: {}", summary_line(&self.report)));
                    }
                    Err(e) => {
                        self.error(format!("scan failed: {e}"));
                        self.scan_error = Some(e);
                    }
                }
                self.dirty = true;
                self.data_dirty = true;
            }
            _ => {}
        }
        fx
    }

    pub(super) fn upsert_host(&mut self, mut h: HostState) {
        match self.report.hosts.iter_mut().find(|x| x.host.id == h.host.id) {
            Some(old) => {
                if !h.host.reachable && h.agents.is_empty() {
                    h.agents = stale_agents(&h.host, std::mem::take(&mut old.agents));
                }
                *old = h;
            }
            None => self.report.hosts.push(h),
        }
    }
}

/// Agents known from an earlier scan on a host that no longer answers: `unknown`.
fn stale_agents(host: &crate::fleet::Host, agents: Vec<AgentState>) -> Vec<AgentState> {
    let why = host.unreachable_reason.clone().unwrap_or_else(|| "not reachable".into());
    agents
        .into_iter()
        .map(|mut a| {
            a.diagnosis = Diagnosis::unreachable(&why);
            a
        })
        .collect()
}
