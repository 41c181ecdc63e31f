//! The report (`codex-fleet report`, and the console's export: one shape for both) in md,
//! json and csv.

use serde_json::json;

use super::audit::{image_audit, unreachable};
use super::why::{summary_line, why_stalled};
use super::table::verdict_label;
use crate::rollout::summary::RunSummary;
use crate::scan::FleetReport;

/// Report formats the audit view exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Md,
    Json,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "md" | "markdown" => Some(Format::Md),
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
    pub fn ext(self) -> &'static str {
        match self {
            Format::Md => "md",
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }
}

/// A CSV cell. md and csv reports are read by people (in a terminal too): host text in them is
/// made terminal-safe (`term_safe::line`); the exact text is in the JSON report.
fn csv(s: &str) -> String {
    let s = &*crate::term_safe::line(s);
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn md(s: &str) -> String {
    crate::term_safe::line(s).replace('|', "\\|").replace('\n', " ")
}

/// The audit report of `report` and `runs`.
pub fn report_text(report: &FleetReport, runs: &[RunSummary], format: Format, generated: &str) -> String {
    let audit = image_audit(report);
    let runs_json: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            json!({
                "run_id": r.run_id, "state": r.state, "started": r.started, "operator": r.operator,
                "agents": r.agents, "verified": r.verified, "failed": r.failed, "skipped": r.skipped,
            })
        })
        .collect();
    match format {
        Format::Json => serde_json::to_string_pretty(&json!({
            "generated": generated,
            "fleet": report.to_json(),
            "audit": audit.iter().map(|i| json!({
                "image": i.image,
                "agents": i.agents.iter().map(|a| json!({
                    "id": a.id, "host_name": a.host_name, "host_id": a.host_id, "findings": a.findings,
                    "files": a.files.iter().map(|(p, sha)| json!({ "path": p, "sha256": sha })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "needs": i.needs,
            })).collect::<Vec<_>>(),
            "unreachable_hosts": unreachable(report).iter().map(|(n, id, why)| json!({ "name": n, "id": id, "reason": why })).collect::<Vec<_>>(),
            "runs": runs_json,
            "audit_unknown": super::audit::audit_unknown(report),
        }))
        .unwrap_or_default(),
        Format::Csv => {
            let mut s = String::from("host_name,host_id,agent,image,verdict,sandbox_mode,sandbox_mode_source,approval_policy,findings\n");
            for (h, a) in report.hosts.iter().flat_map(|h| h.agents.iter().map(move |a| (h, a))) {
                let e = a.diagnosis.effective.as_ref();
                s.push_str(&format!(
                    "{},{},{},{},{},{},{},{},{}\n",
                    csv(&h.host.name),
                    csv(&a.read.agent.host),
                    csv(&a.read.agent.name),
                    csv(&a.read.image),
                    a.diagnosis.verdict.as_str(),
                    csv(e.map(|e| e.sandbox_mode.value.as_str()).unwrap_or("")),
                    e.map(|e| e.sandbox_mode.source.as_str()).unwrap_or(""),
                    csv(e.map(|e| e.approval_policy.value.as_str()).unwrap_or("")),
                    csv(&a.diagnosis.codes().iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" ")),
                ));
            }
            s
        }
        Format::Md => {
            let mut s = format!(
                "# codex-fleet report\n\nGenerated {generated}.\n\n{}\n\n{}\n\n## Agents\n\n",
                summary_line(report),
                why_stalled(report)
            );
            let gone = unreachable(report);
            if !gone.is_empty() {
                s.push_str("**Not reached** (their agents are not in this report, nothing is known of them):\n\n");
                for (n, id, why) in &gone {
                    s.push_str(&format!("- host {} ({}): {}\n", md(n), md(id), md(why)));
                }
                s.push('\n');
            }
            s.push_str("| host | agent | image | verdict | sandbox (source) | findings |\n|---|---|---|---|---|---|\n");
            for (h, a) in report.hosts.iter().flat_map(|h| h.agents.iter().map(move |a| (h, a))) {
                let mode = a
                    .diagnosis
                    .effective
                    .as_ref()
                    .map(|e| format!("{} ({})", e.sandbox_mode.value, e.sandbox_mode.source.as_str()))
                    .unwrap_or_else(|| "?".into());
                s.push_str(&format!(
                    "| {} ({}) | {} | {} | {} | {} | {} |\n",
                    md(&h.host.name),
                    md(&a.read.agent.host),
                    md(&a.read.agent.name),
                    md(&a.read.image),
                    verdict_label(a.diagnosis.verdict),
                    md(&mode),
                    a.diagnosis.codes().iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
            s.push_str("\n## Lost on re-provision\n\n");
            // "Nothing lost" only when every agent could be read.
            let unknown = super::audit::audit_unknown(report);
            if audit.is_empty() && unknown.is_empty() {
                s.push_str("Nothing: every fix is in its image.\n");
            } else if audit.is_empty() {
                s.push_str("Nothing found on the agents that could be read; not known for the rest (below).\n");
            }
            for i in &audit {
                s.push_str(&format!("### Image `{}`: {} agent(s)\n\n", md(&i.image), i.agents.len()));
                for n in &i.needs {
                    s.push_str(&format!("- **The image needs:** {}\n", md(n)));
                }
                s.push_str("\n| host | agent | findings | files that differ from the image (sha256) |\n|---|---|---|---|\n");
                for a in &i.agents {
                    let files: Vec<String> = a
                        .files
                        .iter()
                        .map(|(p, sha)| format!("`{}` ({})", md(p), sha.as_deref().map(|h| h.get(..12).unwrap_or(h)).unwrap_or("?")))
                        .collect();
                    s.push_str(&format!(
                        "| {} ({}) | {} | {} | {} |\n",
                        md(&a.host_name),
                        md(&a.host_id),
                        md(a.id.rsplit('/').next().unwrap_or(&a.id)),
                        a.findings.join(", "),
                        if files.is_empty() { "-".to_string() } else { files.join(", ") }
                    ));
                }
                s.push('\n');
            }
            if !unknown.is_empty() {
                s.push_str(&format!("\nNot audited ({}): what a re-provision would lose there is not known.\n\n", unknown.len()));
                for u in &unknown {
                    s.push_str(&format!("- {}\n", md(u)));
                }
            }
            s.push_str("\n## Runs\n\n");
            for r in runs {
                s.push_str(&format!(
                    "- {} {} started {} by {}: {} agent(s), {} verified, {} failed\n",
                    r.run_id, r.state, r.started, r.operator, r.agents, r.verified, r.failed
                ));
            }
            s
        }
    }
}
