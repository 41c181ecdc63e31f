//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod schema;

/// Where `scripts/test.sh` caches downloads and unpacked tools.
pub fn cache_dir() -> PathBuf {
    if let Ok(d) = std::env::var("CODEX_FLEET_CACHE") {
        return PathBuf::from(d);
    }
    let base = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cache"));
    base.join("codex-fleet")
}

/// The real codex binary of `version` (e.g. "0.133.0") unpacked from its PyPI wheel by
/// `scripts/test.sh`. In CI (or with CODEX_FLEET_REQUIRE_TOOLS=1) a missing binary fails the
/// test instead of skipping it, so a broken set-up can never pass silently.
pub fn codex_bin(version: &str) -> Option<PathBuf> {
    let p = cache_dir().join(format!("codex-{version}/codex_cli_bin/bin/codex"));
    if p.is_file() {
        return Some(p);
    }
    require_or_skip(&format!("codex {version} at {}", p.display()))
}

/// Returns None (skip) on a developer machine without the tool; panics under CI.
pub fn require_or_skip<T>(what: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() || std::env::var_os("CODEX_FLEET_REQUIRE_TOOLS").is_some() {
        panic!("required test tool missing: {what} (run scripts/test.sh, which installs it)");
    }
    eprintln!("SKIP: {what} is missing; run scripts/test.sh to install it");
    None
}

/// A temporary directory outside /tmp (codex refuses helper links under a temporary dir).
pub fn codex_safe_tempdir() -> tempfile::TempDir {
    let base = cache_dir().join("scratch");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new().prefix("t-").tempdir_in(base).unwrap()
}

/// The emitter (or config.toml where there is none) of every agent of a `--demo-state` file,
/// by agent id: what a rollback must put back byte for byte (the restart after it runs the
/// original emitter, which rewrites config.toml as it always did).
pub fn demo_primary_files(state: &std::path::Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for (host, list) in v["agents"].as_object().unwrap() {
        for a in list.as_array().unwrap() {
            let f = if a["emitter"].is_null() { a["config"].clone() } else { a["emitter"].clone() };
            out.insert(format!("{host}/{}", a["name"].as_str().unwrap()), f);
        }
    }
    out
}
