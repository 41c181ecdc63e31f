//! "Why is the pipeline stalled": each stalled agent's root cause in the words the why line
//! writes (the console's filter matches the same words), and the one-line fleet summary.

use std::collections::BTreeMap;

use crate::diagnose::{Code, Verdict};
use crate::scan::{AgentState, FleetReport};

/// The root cause of one stalled agent, in the words the "why" line uses (the console's
/// filter matches these words, so what the operator reads is what they can type).
pub fn root_cause(a: &AgentState) -> Option<&'static str> {
    let d = &a.diagnosis;
    if d.verdict != Verdict::Stalled {
        return None;
    }
    Some(
        [
            (Code::ConfigInvalid, "config.toml invalid (codex exits at start)"),
            (Code::NetnsLoopbackDenied, "sandbox cannot configure loopback (RTM_NEWADDR)"),
            (Code::UidmapWriteDenied, "sandbox cannot write its uid map"),
            (Code::UsernsBlocked, "sandbox cannot create a user namespace"),
            (Code::BwrapMissing, "no bubblewrap"),
            (Code::GiteaUnreachable, "Gitea unreachable"),
        ]
        .into_iter()
        .find(|(c, _)| d.has(*c) && (*c == Code::ConfigInvalid || *c == Code::GiteaUnreachable || d.has(Code::SandboxWillFail)))
        .map(|(_, w)| w)
        .unwrap_or("sandbox will fail"),
    )
}

/// The root causes of the stalled agents with how many each stalls, most first (ties in the
/// order of their words): what the why line says and what the console lets the operator pick.
pub fn stalled_causes(r: &FleetReport) -> Vec<(usize, &'static str)> {
    let mut causes: BTreeMap<&'static str, usize> = BTreeMap::new();
    for cause in r.agents().filter_map(root_cause) {
        *causes.entry(cause).or_default() += 1;
    }
    let mut v: Vec<(usize, &'static str)> = causes.into_iter().map(|(w, n)| (n, w)).collect();
    v.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    v
}

/// The why line of [`stalled_causes`].
pub fn why_text(causes: &[(usize, &str)]) -> String {
    if causes.is_empty() {
        return "nothing is stalled".into();
    }
    format!("stalled: {}", causes.iter().map(|(n, w)| format!("{n} {w}")).collect::<Vec<_>>().join("; "))
}

pub fn why_stalled(r: &FleetReport) -> String {
    why_text(&stalled_causes(r))
}

pub fn summary_line(r: &FleetReport) -> String {
    let s = r.summary();
    format!(
        "{} host(s) ({} unreachable), {} agent(s): {} stalled, {} at-risk, {} unknown, {} healthy",
        s.hosts, s.unreachable_hosts, s.agents, s.stalled, s.at_risk, s.unknown, s.healthy
    )
}
