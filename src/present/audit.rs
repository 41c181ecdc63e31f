//! The audit: per image, the agents that lose the fix on re-provision (and what the image
//! needs), and what the audit could not see.

use crate::diagnose::{Code, Verdict};
use crate::scan::{AgentState, FleetReport, HostState};

/// What the audit could not see: unreachable hosts (name and id) and agents whose state is
/// unknown (probe failed, content not read), each named. Empty: the audit saw every agent.
pub fn audit_unknown(r: &FleetReport) -> Vec<String> {
    let mut out = Vec::new();
    for h in &r.hosts {
        if !h.host.reachable {
            let why = h.host.unreachable_reason.clone().unwrap_or_else(|| "not reachable".into());
            out.push(format!("host {} ({}) unreachable: {why}", h.host.name, h.host.id));
        }
        for a in h.agents.iter().filter(|a| a.diagnosis.verdict == Verdict::Unknown) {
            let why = a.diagnosis.findings.first().map(|f| format!("{}: {}", f.code.as_str(), f.evidence)).unwrap_or_default();
            out.push(format!("agent {} unknown ({why})", a.id()));
        }
    }
    out
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
pub(crate) fn unreachable(report: &FleetReport) -> Vec<(String, String, String)> {
    report
        .hosts
        .iter()
        .filter(|h| !h.host.reachable)
        .map(|h| (h.host.name.clone(), h.host.id.clone(), h.host.unreachable_reason.clone().unwrap_or_else(|| "not reachable".into())))
        .collect()
}
