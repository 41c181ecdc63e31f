//! The audit view's IO helpers: the run history read from the journal, and the report export
//! (the same md/json/csv shapes as `codex-fleet report`).

use serde_json::json;

use super::app::{Format, RunSummary};
use crate::cli::fleet_cmds::{summary_line, why_stalled};
use crate::diagnose::Code;
use crate::cli::output::verdict_label;
use crate::rollout::journal::{list_runs, read as read_journal};
use crate::rollout::view::RunView;
use crate::scan::{AgentState, FleetReport, HostState};

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

/// One agent of an image that would lose its fix (or keeps re-breaking it) on re-provision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostAgent {
    pub id: String,
    pub host_name: String,
    pub host_id: String,
    pub findings: Vec<&'static str>,
    /// The files that differ from the image (`docker diff`: `C`/`A`) that the fix is about,
    /// with the sha256 the probe read (`None` when it could not).
    pub files: Vec<(String, Option<String>)>,
}

/// What one image needs so that a re-provision keeps the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageAudit {
    pub image: String,
    pub agents: Vec<LostAgent>,
    /// The change the image's build needs, in words and the lines to add.
    pub needs: Vec<String>,
}

/// The audit, per image: agents, their findings, the files that differ from the image and what
/// the image's build needs.
pub fn image_audit(report: &FleetReport) -> Vec<ImageAudit> {
    use crate::codex::emitter::EMITTER_PATH;
    // One pass over the fleet (the console draws this on every frame of the audit view): each
    // agent that would lose its fix, with its host, grouped by image.
    let mut by_image: std::collections::BTreeMap<&str, Vec<(&HostState, &AgentState, Vec<Code>)>> = Default::default();
    for h in &report.hosts {
        for a in &h.agents {
            let codes: Vec<Code> =
                a.diagnosis.codes().into_iter().filter(|c| matches!(c, Code::FixNotInImage | Code::EmitterNotIdempotent)).collect();
            if !codes.is_empty() {
                by_image.entry(a.read.image.as_str()).or_default().push((h, a, codes));
            }
        }
    }
    let mut out = Vec::new();
    for (image, agents) in by_image {
        let mut lost = Vec::new();
        let (mut fix, mut emit) = (0, 0);
        let mut emitter_shas = std::collections::BTreeSet::new();
        for (h, a, codes) in &agents {
            let probe = a.read.probe.as_ref().ok();
            let mut files = Vec::new();
            for l in &a.read.layer_changes {
                let Some(path) = l.strip_prefix("C ").or_else(|| l.strip_prefix("A ")) else { continue };
                let sha = probe.and_then(|p| {
                    if path == EMITTER_PATH {
                        p.emitter.sha256.clone()
                    } else if path == p.config.path {
                        p.config.sha256.clone()
                    } else {
                        None
                    }
                });
                let relevant = path == EMITTER_PATH || probe.is_some_and(|p| p.config.path == path);
                if relevant {
                    if path == EMITTER_PATH {
                        if let Some(s) = &sha {
                            emitter_shas.insert(s.clone());
                        }
                    }
                    files.push((path.to_string(), sha));
                }
            }
            fix += usize::from(codes.contains(&Code::FixNotInImage));
            emit += usize::from(codes.contains(&Code::EmitterNotIdempotent));
            lost.push(LostAgent {
                id: a.id(),
                host_name: h.host.name.clone(),
                host_id: a.read.agent.host.clone(),
                findings: codes.iter().map(|c| c.as_str()).collect(),
                files,
            });
        }
        let mut needs = Vec::new();
        if fix > 0 {
            let which = match emitter_shas.len() {
                1 => format!(" (the fixed emitter is the same in every container: sha256 {})", emitter_shas.iter().next().unwrap()),
                0 => String::new(),
                n => format!(" ({n} different emitters among the containers: compare them first)"),
            };
            needs.push(format!(
                "{fix} agent(s) are fixed only in their container's writable layer: build the image with the fixed boot emitter{which}. \
                 Take it from a fixed container and add to the image's build: \
                 `docker cp CONTAINER:{EMITTER_PATH} .` then `COPY codex_mcp_config.sh {EMITTER_PATH}` (mode 0755)."
            ));
        }
        if emit > 0 {
            needs.push(format!(
                "{emit} agent(s) run a boot emitter that is not idempotent (it re-prepends keys at every start): \
                 replace its hotpatch with the codex-fleet managed block; `codex-fleet plan --agent HOST/CONTAINER --full` \
                 prints the exact diff against the image's emitter."
            ));
        }
        out.push(ImageAudit { image: image.to_string(), agents: lost, needs });
    }
    out
}

/// Hosts the scan did not reach: their names, ids and why (a report must never read as if
/// they were fine).
fn unreachable(report: &FleetReport) -> Vec<(String, String, String)> {
    report
        .hosts
        .iter()
        .filter(|h| !h.host.reachable)
        .map(|h| (h.host.name.clone(), h.host.id.clone(), h.host.unreachable_reason.clone().unwrap_or_else(|| "not reachable".into())))
        .collect()
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
            "audit_unknown": crate::cli::fleet_cmds::audit_unknown(report),
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
            let unknown = crate::cli::fleet_cmds::audit_unknown(report);
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
