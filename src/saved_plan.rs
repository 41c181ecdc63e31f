//! A saved plan (`plan --out FILE`, executed by `apply --plan FILE`) is untrusted input: the file
//! sat on a disk where anybody with write access could edit it, and root executes it on every
//! agent it names. Before a run starts, [`load`] and [`check`] hold it against the current scan:
//!
//! - its `format` is one this build reads, and it was made for the same fleet source;
//! - every agent it names is in the current scan, on the same host, with the same full container
//!   id and name (a re-created container is not the one that was planned), at most once;
//! - every file it names is one the scan discovered for that agent: its config.toml or its boot
//!   emitter (`plan::discovered_paths`), nothing else (`/etc/passwd` is refused, not written);
//! - for an agent whose files still hold the bytes the plan was made from, the plan's files are
//!   exactly what codex-fleet plans for those bytes now (`before`, `after`, `diff`, placeholder
//!   numbers included: a swapped `<redacted:N>` would move a secret into another key). An edited
//!   `after` or `diff` is refused. A file that changed since is left to the run, whose write is
//!   conditional on the planned sha256: that agent is skipped, nothing written; its diff is
//!   recomputed against the current file for the confirmation.
//!
//! The plan that comes out is the one executed and journaled: its diffs are computed, never read
//! from the file, and the file's attention list (free text, not executed) is dropped.

use std::path::Path;

use crate::codex::diff::unified_diff;
use crate::plan::{discovered_paths, plan_agent, Plan, PLAN_FORMAT};
use crate::scan::{AgentState, FleetReport};

/// Read and parse a saved plan; its format must be one this build reads.
pub fn load(path: &Path) -> Result<Plan, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not a saved plan (not JSON: {e})", path.display()))?;
    match v.get("format").and_then(|f| f.as_u64()) {
        Some(f) if f == PLAN_FORMAT as u64 => {}
        Some(f) => {
            return Err(format!(
                "{}: unknown plan format {f} (this codex-fleet reads format {PLAN_FORMAT}); make the plan again with `plan --out`",
                path.display()
            ))
        }
        None => return Err(format!("{}: not a saved plan (no `format` number)", path.display())),
    }
    serde_json::from_value(v).map_err(|e| format!("{}: not a saved plan: {e}", path.display()))
}

/// Hold a loaded plan against the fleet it is about to run on (`source` is `Fleet::describe`,
/// `report` a scan made just now). Returns the plan to execute, or why it is refused.
pub fn check(mut plan: Plan, source: &str, report: &FleetReport) -> Result<Plan, String> {
    if plan.source != source {
        return Err(format!("the plan was made for `{}`, not for `{source}`; refusing to apply it here", plan.source));
    }
    let mut seen = std::collections::BTreeSet::new();
    for ap in &mut plan.agents {
        let id = ap.agent.id();
        if !seen.insert((ap.agent.host.clone(), ap.agent.container_id.clone())) {
            return Err(format!("agent {id} appears twice in the plan"));
        }
        let Some(now) = report
            .agents()
            .find(|a| a.read.agent.host == ap.agent.host && a.read.agent.container_id == ap.agent.container_id)
        else {
            return Err(format!(
                "agent {id} (container {}) is not in the current scan: gone, re-created or on an unreachable host; plan again",
                ap.agent.container_id
            ));
        };
        if now.read.agent != ap.agent {
            return Err(format!("agent {id}: the container is now named `{}`; plan again", now.read.agent.name));
        }
        let p = now.read.probe.as_ref().map_err(|e| format!("agent {id}: cannot be checked, no probe report now ({e})"))?;
        let (emitter, config) = discovered_paths(p);
        let allowed = |path: &str| path == config || emitter.as_deref() == Some(path);
        let what_found =
            || format!("its config.toml `{config}`{}", emitter.as_ref().map(|e| format!(", its boot emitter `{e}`")).unwrap_or_default());
        for f in &ap.files {
            if !allowed(&f.path) {
                return Err(format!(
                    "agent {id}: `{}` is not a file the scan found for this agent ({}); refusing to write it",
                    f.path,
                    what_found()
                ));
            }
        }
        if let Some(c) = &ap.config_path {
            if *c != config {
                return Err(format!("agent {id}: config path `{c}` is not the one the scan found ({})", what_found()));
            }
        }
        let current = |path: &str| if emitter.as_deref() == Some(path) { &p.emitter } else { &p.config };
        let unchanged = ap.files.iter().all(|f| current(&f.path).sha256 == f.before_sha256);
        if unchanged {
            let fresh = fresh_plan(now)?;
            let same = fresh.as_ref().is_some_and(|fp| fp.files == ap.files && fp.config_path == ap.config_path && fp.restart == ap.restart);
            if !same {
                return Err(format!(
                    "agent {id}: the plan's files are not what codex-fleet plans for them now (edited after it was saved?); plan again"
                ));
            }
            ap.notes = fresh.map(|fp| fp.notes).unwrap_or_default();
        } else {
            // The run will skip this agent (its write is conditional on the planned sha256):
            // show what the write would do to the file as it is now.
            for f in &mut ap.files {
                let cur = current(&f.path).redacted.clone().unwrap_or_default();
                f.diff = unified_diff(&f.path, &cur, &f.after_redacted);
            }
            ap.notes = vec!["changed since the plan was made: this agent will be skipped, nothing written".into()];
        }
    }
    plan.attention.clear();
    Ok(plan)
}

fn fresh_plan(a: &AgentState) -> Result<Option<crate::plan::AgentPlan>, String> {
    plan_agent(a).map_err(|e| format!("agent {}: {e}", a.id()))
}
