//! The agents table of `scan`: one row per agent (and per unreachable host), with the probe's
//! evidence beside the verdict.

use super::table::{table, verdict_label};
use crate::diagnose::{ProbeSummary, Verdict};
use crate::scan::FleetReport;

fn outcome_cell(o: crate::probe::Outcome) -> String {
    o.as_str().to_string()
}

/// The agents table.
pub fn agents_table(r: &FleetReport) -> String {
    let mut rows = Vec::new();
    for h in &r.hosts {
        if !h.host.reachable {
            rows.push(vec![
                h.host.name.clone(),
                "-".into(),
                verdict_label(Verdict::Unknown),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                format!("host-unreachable: {}", h.host.unreachable_reason.clone().unwrap_or_default()),
            ]);
        }
        for a in &h.agents {
            let d = &a.diagnosis;
            let mode = d
                .effective
                .as_ref()
                .map(|e| format!("{} ({})", e.sandbox_mode.value, e.sandbox_mode.source.as_str()))
                .unwrap_or_else(|| "?".into());
            let (userns, uidmap, netns, gitea) = match &a.read.probe {
                Ok(p) => {
                    let s = ProbeSummary::of(p);
                    (
                        outcome_cell(s.userns),
                        outcome_cell(s.uid_map_write),
                        outcome_cell(s.netns_loopback),
                        s.gitea_http.map(|c| c.to_string()).unwrap_or_else(|| "none".into()),
                    )
                }
                Err(_) => ("?".into(), "?".into(), "?".into(), "?".into()),
            };
            // evidence of harm from codex's own records, beside the verdict it explains
            let harm = a.read.probe.as_ref().ok().and_then(|p| p.sessions.as_ref()).and_then(|s| s.harm(std::time::SystemTime::now()));
            rows.push(vec![
                h.host.name.clone(),
                a.read.agent.name.clone(),
                match harm {
                    Some(h) => format!("{}: {h}", verdict_label(d.verdict)),
                    None => verdict_label(d.verdict),
                },
                mode,
                userns,
                uidmap,
                netns,
                gitea,
                d.findings.iter().map(|f| f.code.as_str()).collect::<Vec<_>>().join(","),
            ]);
        }
    }
    table(&["HOST", "AGENT", "VERDICT", "SANDBOX (SOURCE)", "USERNS", "UIDMAP", "NETNS", "GITEA", "FINDINGS"], &rows)
}
