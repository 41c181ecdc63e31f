//! A plan as the Plan view holds it: the plan, the agents asked for, and its grouped lines.

use std::collections::BTreeSet;

use crate::plan::Plan;
use crate::scan::{FleetReport, HostState};

#[derive(Debug, Clone, PartialEq)]
pub struct PlanView {
    pub plan: Plan,
    /// The agents asked for (marked, else the selected one).
    pub ids: Vec<String>,
    pub lines: Vec<String>,
    pub scroll: usize,
    /// Every line (Enter toggles): the managed block unfolded, every agent named.
    pub full: bool,
}

/// The part of `report` holding exactly the agents `ids` (to plan them off the UI loop).
pub fn subset(report: &FleetReport, ids: &[String]) -> FleetReport {
    let want: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    FleetReport {
        hosts: report
            .hosts
            .iter()
            .filter(|h| h.agents.iter().any(|a| want.contains(a.id().as_str())))
            .map(|h| HostState {
                host: h.host.clone(),
                agents: h.agents.iter().filter(|a| want.contains(a.id().as_str())).cloned().collect(),
            })
            .collect(),
    }
}

/// The plan for exactly `ids`, made the way `plan` makes it for the whole fleet: agents that a
/// config change cannot cure are listed as needing attention (with why), never planned.
pub fn plan_subset(report: &FleetReport, ids: &[String], source: &str, created: &str) -> Plan {
    crate::plan::plan(&subset(report, ids), &[], source, created)
}

/// The plan view's text: the grouped preview (see [`crate::present::plan_view`]), after the agents asked
/// for that need nothing.
pub fn plan_lines(plan: &Plan, ids: &[String], report: &FleetReport, full: bool) -> Vec<String> {
    let mut out = Vec::new();
    let covered: BTreeSet<String> = plan
        .agents
        .iter()
        .map(|a| a.agent.id())
        .chain(plan.attention.iter().map(|a| a.agent.id()))
        .collect();
    // The agents that need nothing: one line, not one each.
    let idle: Vec<&String> = ids.iter().filter(|id| !covered.contains(*id)).collect();
    if !idle.is_empty() {
        let shown: Vec<String> = idle.iter().take(if full { usize::MAX } else { 4 }).map(|s| s.to_string()).collect();
        let more = if idle.len() > shown.len() { format!(" … and {} more", idle.len() - shown.len()) } else { String::new() };
        out.push(format!("== nothing to change on {} agent(s) (already on the durable fix): {}{more}", idle.len(), shown.join(", ")));
    }
    let ctx = crate::present::plan_view::contexts(report);
    out.extend(crate::present::plan_view::grouped_lines(plan, &crate::present::plan_view::lookup(&ctx), full));
    out
}
