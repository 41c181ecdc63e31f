//! The fix for each agent, as a value: per file, the sha256 it was made from, the redacted
//! content it will have, and the unified diff the operator previews. Pure: made from a scan.
//!
//! Where the container has the boot emitter, the emitter is what gets written (a restart
//! regenerates config.toml from it); the config.toml it will produce is shown as a preview
//! and verified by meaning after the restart. Without an emitter, config.toml is written.
//! What a config change cannot cure is not planned: it is listed as needing attention.

use serde::{Deserialize, Serialize};

use crate::codex::diff::unified_diff;
use crate::codex::emitter::{fix_emitter_for, EMITTER_PATH};
use crate::codex::fix::{fix, FixOptions};
use crate::codex::version::CodexVersion;
use crate::diagnose::{Code, Verdict};
use crate::fleet::AgentRef;
use crate::scan::{AgentState, FleetReport};

pub const PLAN_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePlan {
    pub path: String,
    /// sha256 of the real bytes the plan was made from; `None`: the file does not exist.
    pub before_sha256: Option<String>,
    pub before_redacted: String,
    pub after_redacted: String,
    /// Unified diff, secrets redacted.
    pub diff: String,
    /// false: a preview of what the emitter will regenerate at restart, not written directly.
    pub write: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPlan {
    pub agent: AgentRef,
    /// The container as it was when planned: a re-created container is skipped, not improvised.
    pub image_id: String,
    pub started_at: String,
    pub files: Vec<FilePlan>,
    /// The agent's config.toml when it exists: backed up before the run even when only the
    /// emitter is written, since the restart regenerates it (absent in plans saved before it was
    /// added; the engine then falls back on the files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_path: Option<String>,
    pub restart: bool,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attention {
    pub agent: AgentRef,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub format: u32,
    pub created: String,
    /// The fleet source it was made against (`Fleet::describe`).
    pub source: String,
    pub agents: Vec<AgentPlan>,
    pub attention: Vec<Attention>,
}

impl AgentPlan {
    /// The config.toml a run backs up before touching the agent: the one recorded at planning,
    /// or (plans saved before that field existed) the config file among the planned files.
    pub fn config_file(&self) -> Option<String> {
        self.config_path.clone().or_else(|| self.files.iter().find(|f| !f.path.ends_with(".sh")).map(|f| f.path.clone()))
    }
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.agents.is_empty()
    }

    /// The contract's `plan --json` document.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "agents": self.agents.iter().map(|a| serde_json::json!({
                "id": a.agent.id(),
                "name": a.agent.name,
                "host": a.agent.host,
                "files": a.files.iter().map(|f| serde_json::json!({
                    "path": f.path,
                    "before_sha256": f.before_sha256,
                    "diff": f.diff,
                    "write": f.write,
                })).collect::<Vec<_>>(),
                "restart": a.restart,
                "notes": a.notes,
            })).collect::<Vec<_>>(),
            "attention": self.attention.iter().map(|a| serde_json::json!({
                "id": a.agent.id(),
                "name": a.agent.name,
                "reason": a.reason,
            })).collect::<Vec<_>>(),
        })
    }
}

/// What no change of this agent's files can cure, ever: a layer of codex's config that wins
/// over the user's config.toml. Such an agent is never planned, not even when named.
fn beyond_config(a: &AgentState) -> Option<String> {
    let d = &a.diagnosis;
    for (code, why) in [
        (
            Code::RequirementsForbidFix,
            "an administrator's managed requirements forbid the fix, and no config.toml can lift them: \
             an administrator must allow danger-full-access in allowed_sandbox_modes and never in \
             allowed_approval_policies (or remove the constraint)",
        ),
        (
            Code::ProjectConfigOverrides,
            "a trusted project's .codex/config.toml is read above config.toml: its owner must remove those \
             keys (or set them to danger-full-access / never), or the project must no longer be trusted",
        ),
    ] {
        if let Some(e) = d.evidence(code) {
            return Some(format!("{why} ({code}: {e})"));
        }
    }
    None
}

/// Why a config change cannot cure this agent, if so.
fn attention_reason(a: &AgentState) -> Option<String> {
    let d = &a.diagnosis;
    if let Some(r) = beyond_config(a) {
        return Some(r);
    }
    for (code, why) in [
        (Code::HostUnreachable, "host unreachable"),
        (Code::ProbeFailed, "the probe failed"),
        (Code::CliOverride, "codex's command line overrides config.toml; change how the container starts codex"),
        (Code::GiteaUnreachable, "Gitea is unreachable from the container: a network fault, not a config one"),
    ] {
        if let Some(e) = d.evidence(code) {
            return Some(format!("{why} ({code}: {e})"));
        }
    }
    None
}

/// The files a scan discovered for an agent, as plans name them: its boot emitter (when it has
/// one) and its config.toml. The only paths a plan may write (a saved plan is checked against
/// them: `saved_plan`).
pub fn discovered_paths(p: &crate::probe::ProbeReport) -> (Option<String>, String) {
    let config = if p.config.path.is_empty() { "~/.codex/config.toml".to_string() } else { p.config.path.clone() };
    let emitter = p.emitter.sha256.as_ref().map(|_| if p.emitter.path.is_empty() { EMITTER_PATH.into() } else { p.emitter.path.clone() });
    (emitter, config)
}

/// The plan for one agent: `Ok(None)` when nothing would change.
pub fn plan_agent(a: &AgentState) -> Result<Option<AgentPlan>, String> {
    let p = a.read.probe.as_ref().map_err(|e| format!("no probe report: {e}"))?;
    let cli_profile = a.diagnosis.cli.profile.clone();
    let config_before = p.config.redacted.clone().unwrap_or_default();
    let (emitter_path, config_path) = discovered_paths(p);
    let codex_version = p.codex_version.as_deref().and_then(CodexVersion::parse);
    let config_fix = fix(&config_before, &FixOptions { cli_profile, codex_version }).map_err(|e| {
        format!("config.toml cannot be fixed safely ({e}); fix it by hand, then plan again")
    })?;
    let mut files = Vec::new();
    let mut notes = Vec::new();

    if let (Some(sha), Some(text)) = (&p.emitter.sha256, &p.emitter.redacted) {
        // The block fixes the file codex reads, as the scan found it for the agent user, whoever
        // runs the emitter (an unsafe path from the container: attention, never pasted).
        let target = (!p.config.path.is_empty()).then_some(p.config.path.as_str());
        let ef = fix_emitter_for(text, target).map_err(|e| format!("the boot emitter cannot be fixed safely: {e}"))?;
        notes.extend(ef.replaced.iter().cloned());
        if ef.changed {
            files.push(FilePlan {
                path: emitter_path.unwrap_or_else(|| EMITTER_PATH.into()),
                before_sha256: Some(sha.clone()),
                diff: unified_diff(EMITTER_PATH, text, &ef.text),
                before_redacted: text.to_string(),
                after_redacted: ef.text,
                write: true,
            });
        }
        if config_fix.changed {
            files.push(FilePlan {
                path: config_path.clone(),
                before_sha256: p.config.sha256.clone(),
                diff: unified_diff(&config_path, &config_before, &config_fix.text),
                before_redacted: config_before.to_string(),
                after_redacted: config_fix.text,
                write: false,
            });
            notes.push("config.toml is regenerated by the emitter at restart; verified by meaning".into());
        }
    } else if config_fix.changed {
        files.push(FilePlan {
            path: config_path.clone(),
            before_sha256: p.config.sha256.clone(),
            diff: unified_diff(&config_path, &config_before, &config_fix.text),
            before_redacted: config_before.to_string(),
            after_redacted: config_fix.text,
            write: true,
        });
    }
    // A fixed config whose codex process started before the fix still runs sandboxed.
    let effective_stale = a.diagnosis.effective.as_ref().is_some_and(|e| !e.is_fixed())
        || a.diagnosis.has(Code::ConfigInvalid);
    if files.is_empty() && !effective_stale {
        return Ok(None);
    }
    if files.is_empty() {
        notes.push("files already fixed; a restart makes codex read them".into());
    }
    Ok(Some(AgentPlan {
        agent: a.read.agent.clone(),
        image_id: a.read.image_id.clone(),
        started_at: a.read.started_at.clone(),
        files,
        config_path: p.config.sha256.as_ref().map(|_| config_path.clone()),
        restart: true,
        notes,
    }))
}

/// The plan for the fleet: agents that need a change (or those named in `select`, exact
/// agent ids as `crate::select` resolves them). An agent needing attention stays under
/// attention, named or not.
pub fn plan(report: &FleetReport, select: &[String], source: &str, created: &str) -> Plan {
    plan_opts(report, select, false, source, created)
}

/// `plan`, where `include_attention` (`apply --include-attention`) plans a *named* attention
/// agent anyway when a config change is possible at all (not an unreachable host, a failed
/// probe, or a layer above config.toml).
pub fn plan_opts(report: &FleetReport, select: &[String], include_attention: bool, source: &str, created: &str) -> Plan {
    let mut agents = Vec::new();
    let mut attention = Vec::new();
    for a in report.agents() {
        let named = select.iter().any(|s| a.read.agent.matches(s));
        if !select.is_empty() && !named {
            continue;
        }
        if let Some(reason) = attention_reason(a) {
            if !(named && include_attention) || a.diagnosis.verdict == Verdict::Unknown || beyond_config(a).is_some() {
                attention.push(Attention { agent: a.read.agent.clone(), reason });
                continue;
            }
        }
        match plan_agent(a) {
            Ok(Some(p)) => agents.push(p),
            Ok(None) => {}
            Err(reason) => attention.push(Attention { agent: a.read.agent.clone(), reason }),
        }
    }
    Plan { format: PLAN_FORMAT, created: created.into(), source: source.into(), agents, attention }
}
