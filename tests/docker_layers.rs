//! codex's config layers on the real Docker engine, with the real codex 0.133.0 inside the
//! containers as the judge: a managed `/etc/codex/requirements.toml` that forbids the fix is
//! its own finding and needs attention, never a plan; `/etc/codex/config.toml` is named as the
//! source (`system`) and the fix in the user's config wins over it (applied, restarted,
//! verified: codex says danger-full-access / never); a trusted project's `.codex/config.toml` in
//! codex's working directory is read above the user's config (source `project`), attention.
//! Fails instead of skipping under CI when the engine or the images are missing.

mod common;
mod docker_support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use codex_fleet::diagnose::{Code, Verdict};
use codex_fleet::fleet::Fleet;
use codex_fleet::plan::plan;
use codex_fleet::rollout::engine::{self, EngineConfig, Size};
use codex_fleet::rollout::journal::{RunOptions, RunState};
use codex_fleet::scan::{agent_json, scan, AgentState};
use docker_support::*;

/// Write a file into a running container as root (its directory made first).
fn put(f: &TestFleet, suffix: &str, path: &str, content: &str) {
    let mut c = Command::new("docker")
        .args(["exec", "-i", "-u", "0", &f.name(suffix), "sh", "-c", "mkdir -p \"${1%/*}\" && cat >\"$1\" && chmod 644 \"$1\"", "sh", path])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(content.as_bytes()).unwrap();
    assert!(c.wait().unwrap().success(), "writing {path} into {suffix}");
}

fn find<'a>(r: &'a codex_fleet::scan::FleetReport, f: &TestFleet, suffix: &str) -> &'a AgentState {
    let name = f.name(suffix);
    r.agents().find(|a| a.read.agent.name == name).unwrap_or_else(|| panic!("{name} not in the scan"))
}

fn said(a: &AgentState) -> (Option<String>, Option<String>) {
    let e = a.read.probe.as_ref().unwrap().effective.clone().unwrap_or_default();
    (e.sandbox_mode, e.approval_policy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_beyond_the_users_config() {
    let Some(img) = images() else { return };
    let state = tempfile::tempdir().unwrap();
    std::env::set_var("CODEX_FLEET_STATE_DIR", state.path());
    let mut f = TestFleet::new("layers", img.clone());
    f.add(vec![
        Spec::new("req", &img.runtime_codex),
        Spec::new("sys", &img.runtime_codex),
        // codex works in /workspace: a project there
        Spec::new("proj", &img.runtime_codex).arg("--workdir").arg("/workspace"),
    ]);
    put(&f, "req", "/etc/codex/requirements.toml", "# set by IT\nallowed_sandbox_modes = [\"read-only\", \"workspace-write\"]\n");
    put(&f, "sys", "/etc/codex/config.toml", "sandbox_mode = \"workspace-write\"\n");
    put(&f, "proj", "/workspace/.codex/config.toml", "sandbox_mode = \"workspace-write\"\napproval_policy = \"on-request\"\n");
    // the user trusts the project (appended after the emitter wrote config.toml at boot)
    let (ok, _) = f.exec("proj", None, &["sh", "-c", &format!("printf '\\n[projects.\"/workspace\"]\\ntrust_level = \"trusted\"\\n' >> {CONFIG}")]);
    assert!(ok);

    let fleet = f.fleet().await;
    let report = scan(&fleet, |_| {}).await.unwrap();

    // requirements.toml: its own finding, the file and the key as evidence, never planned
    let req = find(&report, &f, "req");
    let e = req.diagnosis.evidence(Code::RequirementsForbidFix).unwrap_or_else(|| panic!("{:?}", req.diagnosis.findings));
    assert!(e.starts_with("/etc/codex/requirements.toml: allowed_sandbox_modes = [\"read-only\", \"workspace-write\"]"), "{e}");
    assert_ne!(req.diagnosis.verdict, Verdict::Healthy);

    // /etc/codex/config.toml: codex runs its mode, and the source says so
    let sys = find(&report, &f, "sys");
    assert_eq!(said(sys).0.as_deref(), Some("workspace-write"), "codex: {:?}", sys.read.probe.as_ref().unwrap().prompt_input);
    let j = agent_json(sys);
    assert_eq!(j["effective"]["sandbox_mode_source"], "system", "{j}");

    // the trusted project: codex reads it above the user's config
    let proj = find(&report, &f, "proj");
    assert_eq!(said(proj), (Some("workspace-write".into()), Some("on-request".into())), "{:?}", proj.read.probe);
    let j = agent_json(proj);
    assert_eq!(j["effective"]["sandbox_mode_source"], "project", "{j}");
    let e = proj.diagnosis.evidence(Code::ProjectConfigOverrides).unwrap_or_else(|| panic!("{:?}", proj.diagnosis.findings));
    assert!(e.starts_with("/workspace/.codex/config.toml"), "{e}");

    let p = plan(&report, &[], &fleet.describe(), "now");
    let planned: Vec<&str> = p.agents.iter().map(|a| a.agent.name.as_str()).collect();
    assert_eq!(planned, [f.name("sys")], "{:?}", p.to_json());
    for s in ["req", "proj"] {
        let a = p.attention.iter().find(|a| a.agent.name == f.name(s)).unwrap_or_else(|| panic!("{s} not in attention"));
        assert!(a.reason.contains("administrator") || a.reason.contains("project"), "{}", a.reason);
    }
    // named explicitly, still not planned
    let named = plan(&report, &[f.name("req"), f.name("proj")], &fleet.describe(), "now");
    assert!(named.agents.is_empty() && named.attention.len() == 2, "{:?}", named.to_json());

    // apply the system agent's plan: the fix lands in the user's layer and codex agrees
    let run_id = format!("r-{}", f.run);
    let opts = RunOptions { canary: 1, wave: "1".into(), max_errors: "0".into() };
    let journal = engine::start(&p, &opts, &run_id).unwrap();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let cfg = EngineConfig {
        canary: 1,
        wave: Size::Count(1),
        max_errors: Size::Count(0),
        stable_timeout: Duration::from_secs(90),
        holder: "docker-layers-test".into(),
    };
    let res = engine::execute(&fleet, journal, &cfg, stop, &|_| {}).await.unwrap();
    assert_eq!(res.state, RunState::Done, "{res:?}");
    assert!(res.all_verified(), "{res:?}");
    let report = scan(&fleet, |_| {}).await.unwrap();
    let sys = find(&report, &f, "sys");
    assert_eq!(said(sys), (Some("danger-full-access".into()), Some("never".into())), "{:?}", sys.read.probe);
    let j = agent_json(sys);
    assert_eq!(j["effective"]["sandbox_mode_source"], "config", "{j}");
    // /etc/codex/config.toml untouched
    assert_eq!(String::from_utf8(f.read("sys", "/etc/codex/config.toml")).unwrap(), "sandbox_mode = \"workspace-write\"\n");
    // and nothing more to plan for it
    let p2 = plan(&report, &[], &fleet.describe(), "now");
    assert!(p2.agents.is_empty(), "{:?}", p2.to_json());
}
