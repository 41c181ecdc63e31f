//! The audit view's IO helpers: the run history read from the journal, and the report export
//! (the same md/json/csv shapes as `codex-fleet report`).

use serde_json::json;

use super::app::{Format, RunSummary};
use crate::cli::fleet_cmds::{audit_by_image, summary_line, why_stalled};
use crate::cli::output::verdict_label;
use crate::rollout::journal::{list_runs, read as read_journal};
use crate::rollout::view::RunView;
use crate::scan::FleetReport;

/// Every run in the journal, newest first.
pub fn load_runs() -> Vec<RunSummary> {
    list_runs()
        .iter()
        .filter_map(|id| read_journal(id).ok().and_then(|r| RunView::from_records(&r)))
        .map(|v| RunSummary {
            state: v.state(crate::rollout::is_live(&v.run_id)).as_str().to_string(),
            started: v.started.clone(),
            operator: v.operator.clone(),
            agents: v.plan.agents.len(),
            verified: v.count("verified"),
            failed: v.count("failed"),
            skipped: v.count("skipped"),
            unfinished: v.untouched_or_unfinished().len(),
            run_id: v.run_id,
        })
        .collect()
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
    let audit = audit_by_image(report);
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
            "audit": audit.iter().map(|(img, v)| json!({
                "image": img,
                "agents": v.iter().map(|(id, c)| json!({ "id": id, "findings": c })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "runs": runs_json,
            "audit_unknown": crate::cli::fleet_cmds::audit_unknown(report),
        }))
        .unwrap_or_default(),
        Format::Csv => {
            let mut s = String::from("host,agent,verdict,sandbox_mode,sandbox_mode_source,approval_policy,findings\n");
            for a in report.agents() {
                let e = a.diagnosis.effective.as_ref();
                s.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    csv(&a.read.agent.host),
                    csv(&a.read.agent.name),
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
            s.push_str("| host | agent | verdict | sandbox (source) | findings |\n|---|---|---|---|---|\n");
            for a in report.agents() {
                let mode = a
                    .diagnosis
                    .effective
                    .as_ref()
                    .map(|e| format!("{} ({})", e.sandbox_mode.value, e.sandbox_mode.source.as_str()))
                    .unwrap_or_else(|| "?".into());
                s.push_str(&format!(
                    "| {} | {} | {} | {} | {} |\n",
                    md(&a.read.agent.host),
                    md(&a.read.agent.name),
                    verdict_label(a.diagnosis.verdict),
                    md(&mode),
                    a.diagnosis.codes().iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
            s.push_str("\n## Lost on re-provision\n\n");
            // "Nothing lost" only when every agent could be read.
            let unknown = crate::cli::fleet_cmds::audit_unknown(report);
            if audit.is_empty() && unknown.is_empty() {
                s.push_str("Nothing: every fix is in its image.\n");
            } else if audit.is_empty() {
                s.push_str("Nothing found on the agents that could be read; not known for the rest (below).\n");
            }
            for (img, v) in &audit {
                s.push_str(&format!(
                    "- image `{}`: {} agent(s) ({})\n",
                    md(img),
                    v.len(),
                    v.iter().map(|(id, _)| md(id)).collect::<Vec<_>>().join(", ")
                ));
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
