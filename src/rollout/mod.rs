//! Rollout: the run journal, its replay, the wave engine, rollback.

pub mod engine;
pub mod journal;
pub mod view;

use std::fs;

/// Mark a run as held by this process (so `runs` can tell running from interrupted).
pub fn mark_live(run_id: &str) {
    let _ = fs::write(journal::Journal::dir(run_id).join("live.pid"), std::process::id().to_string());
}

pub fn clear_live(run_id: &str) {
    let _ = fs::remove_file(journal::Journal::dir(run_id).join("live.pid"));
}

/// Is a live codex-fleet process executing this run?
pub fn is_live(run_id: &str) -> bool {
    let Ok(pid) = fs::read_to_string(journal::Journal::dir(run_id).join("live.pid")) else {
        return false;
    };
    let pid = pid.trim();
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("codex-fleet"))
        .unwrap_or(false)
}
