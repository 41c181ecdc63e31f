//! TEMPORARY stand-in until the real emitter fixer lands from helper/emitter (same API).
use serde::Serialize;
pub const EMITTER_PATH: &str = "/usr/local/bin/codex_mcp_config.sh";
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmitterState { Fixed, HotpatchNotIdempotent, NoSandboxEmission, OlderManagedBlock }
pub fn classify(script: &str) -> EmitterState {
    if script.contains("codex-fleet") { EmitterState::Fixed }
    else if script.contains("sandbox_mode") { EmitterState::HotpatchNotIdempotent }
    else { EmitterState::NoSandboxEmission }
}
