//! What the agents table's filter and sort compare: one filter term against one agent, and the
//! verdicts' severity order.

use crate::diagnose::Verdict;

/// Index of an agent: (host, agent) in `report.hosts`.
pub type AgentIx = (u32, u32);

use crate::present::root_cause;
use crate::scan::{AgentState, HostState};

/// Severity order for the default sort: what blocks the pipeline first.
pub fn verdict_rank(v: Verdict) -> u8 {
    match v {
        Verdict::Stalled => 0,
        Verdict::Unknown => 1,
        Verdict::AtRisk => 2,
        Verdict::Healthy => 3,
    }
}

/// Does `hay` contain `needle` (already lower-case), ignoring ASCII case? No allocation: this
/// runs for every agent on every keystroke of the filter.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// A filter term that names one host exactly: `host=ID` or `host=NAME`, compared whole
/// (ignoring ASCII case, as every filter term). Enter on a host in the Hosts view sets it.
pub const HOST_TERM: &str = "host=";

/// Does one filter term match this agent (name, host, container id, verdict, finding codes,
/// and the root cause in the words the "why" line writes: "no bubblewrap", "RTM_NEWADDR")?
pub fn matches_term(h: &HostState, a: &AgentState, t: &str) -> bool {
    if let Some(x) = t.strip_prefix(HOST_TERM) {
        return h.host.id.eq_ignore_ascii_case(x) || h.host.name.eq_ignore_ascii_case(x);
    }
    let has = |s: &str| contains_ci(s, t);
    has(&a.read.agent.name)
        || has(&h.host.name)
        || has(&h.host.id)
        || a.read.agent.container_id.starts_with(t)
        || a.diagnosis.verdict.as_str().contains(t)
        || a.diagnosis.findings.iter().any(|f| f.code.as_str().contains(t))
        || root_cause(a).is_some_and(has)
}
