//! The rollout on the real Docker engine, driven by the backend-agnostic engine
//! (`codex_fleet::rollout::engine`) from a plan made by `codex_fleet::plan::plan`: a canary and
//! a wave; files fixed inside the containers with owner and mode kept and backups present; the
//! emitter survives three restarts with no duplicate keys and codex still parses the config;
//! the boot assertion passes; a second plan is empty; rollback restores byte-identical
//! originals. (Rollback is tested right after its run: the real-shaped original emitter adds a
//! blank line to config.toml at every start, so after later restarts config.toml no longer
//! holds what the run left there and rollback rightly refuses to overwrite it.) Also: a file changed between plan and apply is skipped and reported with nothing
//! written, and a lock of another run is reported as held. Fails instead of skipping under CI
//! when the engine or the images are missing.

mod common;
mod docker_support;

use std::time::Duration;

use codex_fleet::diagnose::Code;
use codex_fleet::fleet::{AgentRef, Fleet, FleetError, LockKey, LockOutcome, WriteRequest};
use codex_fleet::plan::plan;
use codex_fleet::rollout::engine::{self, EngineConfig, Size};
use codex_fleet::rollout::journal::{Outcome, Phase, Record, RunOptions, RunState, Step};
use codex_fleet::scan::{scan, AgentState};
use docker_support::*;

fn engine_config() -> EngineConfig {
    EngineConfig {
        canary: 1,
        wave: Size::Count(2),
        max_errors: Size::Count(0),
        stable_timeout: Duration::from_secs(90),
        holder: "docker-rollout-test".into(),
    }
}


fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn count_top_level(config: &str, key: &str) -> usize {
    let mut n = 0;
    for l in config.lines() {
        let t = l.trim_start();
        if t.starts_with('[') {
            break;
        }
        if t.starts_with(key) && t[key.len()..].trim_start().starts_with('=') {
            n += 1;
        }
    }
    n
}

fn agent_of(report: &codex_fleet::scan::FleetReport, name: &str) -> AgentRef {
    report.agents().find(|a| a.read.agent.name == name).unwrap_or_else(|| panic!("{name} not scanned")).read.agent.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_canary_and_wave_then_restarts_verify_and_rollback() {
    let Some(img) = images() else { return };
    let _state = state_dir();
    let t0 = std::time::Instant::now();
    let mut f = TestFleet::new("rollout", img.clone());
    f.add(vec![
        // The canary: the image's own (pre-fix) emitter, with the real codex.
        Spec::new("a-canary", &img.runtime_codex),
        // Template PR #77 (workspace-write + network), with the real codex.
        Spec::new("b-pr77", &img.runtime_codex).emitter(&fixture("emitter/scripts/template-pr77.sh")),
        // A prepending hotpatch after two starts: duplicate keys, invalid (no codex binary).
        Spec { restarts: 1, ..Spec::new("c-dup", &img.runtime).emitter(&fixture("emitter/scripts/hotpatch-1.sh")) },
    ]);
    let suffixes = ["a-canary", "b-pr77", "c-dup"];
    let originals: Vec<(Vec<u8>, Vec<u8>)> = suffixes.iter().map(|s| (f.read(s, EMITTER), f.read(s, CONFIG))).collect();
    let perms: Vec<(String, String)> = suffixes.iter().map(|s| (f.stat(s, EMITTER), f.stat(s, CONFIG))).collect();
    eprintln!("fleet up in {:?}", t0.elapsed());

    let fleet = f.fleet().await;
    let report = scan(&fleet, |_| {}).await.unwrap();
    let p = plan(&report, &[], &fleet.describe(), "now");
    assert!(p.attention.is_empty(), "{:?}", p.attention);
    assert_eq!(p.agents.len(), 3, "{:?}", p.agents.iter().map(|a| &a.agent.name).collect::<Vec<_>>());
    for a in &p.agents {
        let w: Vec<&str> = a.files.iter().filter(|f| f.write).map(|f| f.path.as_str()).collect();
        assert_eq!(w, [EMITTER], "the emitter is what is written: {:?}", a.files);
    }
    // The canary first: order the plan so that a-canary leads.
    let mut p = p;
    p.agents.sort_by(|a, b| a.agent.name.cmp(&b.agent.name));

    // Apply: canary of 1, then a wave of 2.
    let run_id = format!("r-{}", f.run);
    let opts = RunOptions { canary: 1, wave: "2".into(), max_errors: "0".into() };
    let journal = engine::start(&p, &opts, &run_id).unwrap();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let cfg = engine_config();
    let t = std::time::Instant::now();
    let res = engine::execute(&fleet, journal, &cfg, stop, &|e| eprintln!("{}", serde_json::to_string(&e).unwrap())).await.unwrap();
    eprintln!("apply in {:?}: {res:?}", t.elapsed());
    assert_eq!(res.state, RunState::Done, "{res:?}");
    assert!(res.all_verified(), "{res:?}");
    assert_eq!(res.waves.iter().map(|w| w.len()).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(res.waves[0][0].0, format!("{}/{}", fleet.host().id, f.name("a-canary")));

    // Files fixed in the containers; owner and mode kept; backups present and byte-identical.
    for (i, s) in suffixes.iter().enumerate() {
        let ap = p.agents.iter().find(|a| a.agent.name == f.name(s)).unwrap();
        let emitter_plan = ap.files.iter().find(|x| x.write).unwrap();
        assert_eq!(String::from_utf8(f.read(s, EMITTER)).unwrap(), emitter_plan.after_redacted, "{s}: the emitter as previewed");
        // The emitter is written by the run: owner and mode kept. config.toml is regenerated by
        // the emitter at the restart (with the emitter's own umask): its owner stays the agent.
        assert_eq!(f.stat(s, EMITTER), perms[i].0, "{s}: owner and mode kept");
        assert!(f.stat(s, CONFIG).starts_with("agent:agent "), "{s}: {}", f.stat(s, CONFIG));
        let dir = format!("/var/backups/codex-fleet/{run_id}");
        assert_eq!(f.stat(s, &dir), "root:root 700", "{s}: owner-only backup directory");
        assert_eq!(f.read(s, &format!("{dir}/%2fusr%2flocal%2fbin%2fcodex_mcp_config.sh")), originals[i].0, "{s}: emitter backup");
        assert_eq!(f.read(s, &format!("{dir}/%2fhome%2fagent%2f.codex%2fconfig.toml")), originals[i].1, "{s}: config backup");
        let (locked, _) = f.exec(s, None, &["test", "-e", "/var/lib/codex-fleet/locks/agent.lock"]);
        assert!(!locked, "{s}: unlocked after the run");
    }

    // Rollback right after the run: every file restored byte for byte (the journal's restore
    // receipts carry the originals' sha256), the emitter still byte-identical after the
    // restart that follows (which regenerates config.toml with the original emitter).
    let t = std::time::Instant::now();
    let rb = engine::rollback(&fleet, &run_id, &cfg, &|e| eprintln!("{}", serde_json::to_string(&e).unwrap())).await.unwrap();
    eprintln!("rollback in {:?}: {rb:?}", t.elapsed());
    assert_eq!(rb.len(), 3);
    assert!(rb.iter().all(|(_, o)| *o == Outcome::RolledBack), "{rb:?}");
    let records = codex_fleet::rollout::journal::read(&run_id).unwrap();
    for (i, s) in suffixes.iter().enumerate() {
        assert_eq!(f.read(s, EMITTER), originals[i].0, "{s}: emitter restored byte for byte");
        assert_eq!(f.stat(s, EMITTER), perms[i].0);
        let id = format!("{}/{}", fleet.host().id, f.name(s));
        for (path, original) in [(EMITTER, &originals[i].0), (CONFIG, &originals[i].1)] {
            let restored = records.iter().any(|r| {
                matches!(r, Record::Step { agent, step: Step::Restore, phase: Phase::Done, path: Some(p), sha256: Some(h), .. }
                    if *agent == id && p == path && *h == sha256_hex(original))
            });
            assert!(restored, "{s}: {path} restored to the original bytes");
        }
    }

    // Apply again (a new run, from a new scan), then the restarts.
    let report = scan(&fleet, |_| {}).await.unwrap();
    let mut p = plan(&report, &[], &fleet.describe(), "now");
    assert_eq!(p.agents.len(), 3, "rolled back: planned again");
    p.agents.sort_by(|a, b| a.agent.name.cmp(&b.agent.name));
    let run2 = format!("r2-{}", f.run);
    let journal = engine::start(&p, &opts, &run2).unwrap();
    let (_stop_tx2, stop2) = tokio::sync::watch::channel(false);
    let res = engine::execute(&fleet, journal, &cfg, stop2, &|_| {}).await.unwrap();
    assert!(res.all_verified(), "{res:?}");

    // Three restarts (the agents side by side): no duplicate keys, codex still parses the
    // config, effective fix, and the boot assertion passes.
    let f = &f;
    let fleet = &fleet;
    let report = &report;
    let per_agent = suffixes.map(|s| async move {
        let a = agent_of(report, &f.name(s));
        for _ in 0..3 {
            fleet.restart(&a).await.unwrap();
            let read = fleet.wait_stable(&a, Duration::from_secs(90)).await.unwrap();
            let st = AgentState::from_read(read);
            assert!(!st.diagnosis.has(Code::ConfigInvalid), "{s}: {:?}", st.diagnosis.findings);
            assert!(st.diagnosis.effective.as_ref().is_some_and(|e| e.is_fixed()), "{s}: {:?}", st.diagnosis);
            let p = st.read.probe.as_ref().unwrap();
            if p.codex_path.is_some() {
                let e = p.effective.clone().unwrap_or_default();
                assert_eq!(e.sandbox_mode.as_deref(), Some("danger-full-access"), "{s}: codex says {:?}", p.prompt_input);
                assert_eq!(e.approval_policy.as_deref(), Some("never"));
            }
        }
        let config = String::from_utf8(f.read(s, CONFIG)).unwrap();
        assert_eq!(count_top_level(&config, "sandbox_mode"), 1, "{s}:\n{config}");
        assert_eq!(count_top_level(&config, "approval_policy"), 1, "{s}:\n{config}");
        assert!(config.parse::<toml_edit::DocumentMut>().is_ok(), "{s}:\n{config}");
        assert!(config.contains("[mcp_servers.molecule]"), "other settings kept: {s}:\n{config}");
        // The boot assertion.
        let v = fleet.verify(&a).await.unwrap();
        assert!(v.passed, "{s}: {v:?}");
        if s != "c-dup" {
            assert!(v.checks.iter().any(|c| c.0.starts_with("codex debug prompt-input") && c.2.contains("danger-full-access")), "{v:?}");
            assert!(v.checks.iter().any(|c| c.0.starts_with("codex sandbox") && c.2 == "HTTP 200"), "{v:?}");
        }
    });
    let t = std::time::Instant::now();
    futures::future::join_all(per_agent).await;
    eprintln!("3 restarts x 3 agents + verify in {:?}", t.elapsed());

    // A second plan changes nothing.
    let report2 = scan(fleet, |_| {}).await.unwrap();
    let p2 = plan(&report2, &[], &fleet.describe(), "now");
    assert!(p2.agents.is_empty(), "second plan: {:?}", p2.to_json());
    for a in report2.agents() {
        assert!(!a.diagnosis.has(Code::SandboxWillFail) && !a.diagnosis.has(Code::ConfigInvalid), "{:?}", a.diagnosis);
    }

    eprintln!("total {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_between_plan_and_apply_is_skipped_and_locks_are_held() {
    let Some(img) = images() else { return };
    let _state = state_dir();
    let mut f = TestFleet::new("conflict", img.clone());
    f.add(vec![Spec::new("x", &img.runtime)]);
    let fleet = f.fleet().await;
    let report = scan(&fleet, |_| {}).await.unwrap();
    let p = plan(&report, &[], &fleet.describe(), "now");
    assert_eq!(p.agents.len(), 1);
    let a = p.agents[0].agent.clone();

    // Somebody edits the emitter after the plan was made.
    let (ok, _) = f.exec("x", None, &["sh", "-c", "printf '# edited by hand\\n' >> /usr/local/bin/codex_mcp_config.sh"]);
    assert!(ok);
    let edited = f.read("x", EMITTER);
    let config_before = f.read("x", CONFIG);

    let run_id = format!("r-{}", f.run);
    let opts = RunOptions { canary: 1, wave: "25%".into(), max_errors: "0".into() };
    let journal = engine::start(&p, &opts, &run_id).unwrap();
    let (_tx, stop) = tokio::sync::watch::channel(false);
    let res = engine::execute(&fleet, journal, &engine_config(), stop, &|_| {}).await.unwrap();
    assert_eq!(res.skipped, 1, "{res:?}");
    let view = codex_fleet::rollout::view::RunView::from_records(&codex_fleet::rollout::journal::read(&run_id).unwrap()).unwrap();
    let outcome = view.agents[&a.id()].outcome.clone().unwrap();
    match outcome {
        Outcome::Skipped(why) => assert!(why.contains("changed since the plan"), "{why}"),
        o => panic!("{o:?}"),
    }
    assert_eq!(f.read("x", EMITTER), edited, "nothing written");
    assert_eq!(f.read("x", CONFIG), config_before, "nothing written");
    assert!(!f.exec("x", None, &["test", "-e", &format!("/var/backups/codex-fleet/{run_id}")]).0, "no backup taken");

    // The same refusal at the write itself (the backend's condition, not only the engine's).
    let fp = p.agents[0].files.iter().find(|x| x.write).unwrap();
    let req = WriteRequest {
        path: fp.path.clone(),
        before_sha256: fp.before_sha256.clone(),
        after_redacted: fp.after_redacted.clone(),
        run_id: "r-direct".into(),
        before_redacted: Some(fp.before_redacted.clone()),
    };
    match fleet.write_file(&a, &req).await {
        Err(FleetError::Changed { path, found }) => {
            assert_eq!(path, EMITTER);
            assert_eq!(found.len(), 64);
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(f.read("x", EMITTER), edited, "nothing written");

    // A write restores secret values on the host: the preview carries placeholders, the file
    // gets the real values, and nothing the script prints carries them.
    let secret = "sk-proj-0123456789abcdefghijklmnopqrstuv";
    let (ok, _) = f.exec(
        "x",
        Some("agent"),
        &["sh", "-c", &format!("printf 'model = \"gpt-5\"\n[model_providers.p]\napi_key = \"{secret}\"\n' > \"$CODEX_HOME/config.toml\"")],
    );
    assert!(ok);
    let read = fleet.read_agent(&a).await.unwrap();
    let cfg = &read.probe.as_ref().unwrap().config;
    let redacted = cfg.redacted.clone().unwrap();
    assert!(!redacted.contains(secret) && redacted.contains("<redacted:1>"), "{redacted}");
    let after = format!("sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n{redacted}");
    let op = codex_fleet::fleet::ops::Op::Write { path: CONFIG, expected_sha256: cfg.sha256.as_deref(), run_id: "r-secret", preview_bytes: None };
    let out = fleet.exec(&a.container_id, "0", op.command(), Some(after.as_bytes()), Duration::from_secs(60)).await.unwrap();
    assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret), "{out:?}");
    let o = codex_fleet::fleet::ops::parse(&out.stdout).unwrap();
    assert!(o.ok(), "{o:?}");
    let written = String::from_utf8(f.read("x", CONFIG)).unwrap();
    assert_eq!(written, after.replace("<redacted:1>", secret));
    assert_eq!(f.stat("x", CONFIG), "agent:agent 644");
    // The same content again within the run: already done, reported as such.
    let out = fleet.exec(&a.container_id, "0", op.command(), Some(after.as_bytes()), Duration::from_secs(60)).await.unwrap();
    let o = codex_fleet::fleet::ops::parse(&out.stdout).unwrap();
    assert!(o.ok() && o.get("idem") == Some("1"), "{o:?}");
    // Restore from the run's backup, conditional on the current content.
    let backup = o.get("backup").unwrap().to_string();
    let now = codex_fleet::fleet::ops::parse(&out.stdout).unwrap().get("sha").unwrap().to_string();
    let req = codex_fleet::fleet::RestoreRequest { path: CONFIG.into(), backup_path: backup.clone(), expected_current_sha256: Some("0".repeat(64)) };
    assert!(matches!(fleet.restore_file(&a, &req).await, Err(FleetError::Changed { .. })), "conditional restore");
    let req = codex_fleet::fleet::RestoreRequest { path: CONFIG.into(), backup_path: backup, expected_current_sha256: Some(now) };
    let r = fleet.restore_file(&a, &req).await.unwrap();
    assert_eq!(Some(r.after_sha256), cfg.sha256.clone());
    assert!(String::from_utf8(f.read("x", CONFIG)).unwrap().contains(secret));

    // Locks: another run's lock is reported as held, with who; within a run, a lock is its
    // process's (token): a second process of the run is refused unless it names the first's
    // token (taken over), and `*` (unlock --run) releases it whatever the token.
    let key = |run: &str, token: &str, holder: &str, takeover: &[&str]| LockKey {
        run_id: run.into(),
        token: token.into(),
        holder: holder.into(),
        takeover: takeover.iter().map(|t| t.to_string()).collect(),
    };
    let ann = key("run-one", "p1-aaaa", "ann@console-1", &[]);
    assert_eq!(fleet.lock(&a, &ann).await.unwrap(), LockOutcome::Acquired);
    assert_eq!(fleet.lock(&a, &ann).await.unwrap(), LockOutcome::Acquired, "idempotent for its run and process");
    match fleet.lock(&a, &key("run-two", "p2-bbbb", "bob@console-2", &["p1-aaaa"])).await.unwrap() {
        LockOutcome::HeldBy(who) => assert!(who.contains("ann@console-1") && who.contains("run-one"), "{who}"),
        o => panic!("{o:?}"),
    }
    match fleet.lock(&a, &key("run-one", "p3-cccc", "ann@console-2", &[])).await.unwrap() {
        LockOutcome::HeldBy(who) => assert!(who.contains("run-one"), "another process of the same run: {who}"),
        o => panic!("{o:?}"),
    }
    assert!(fleet.unlock(&a, &key("run-two", "p2-bbbb", "bob", &[])).await.is_err(), "only its own run unlocks");
    assert!(fleet.unlock(&a, &key("run-one", "p3-cccc", "ann", &[])).await.is_err(), "only its own process unlocks");
    let resumed = key("run-one", "p4-dddd", "ann@console-1", &["p1-aaaa"]);
    assert_eq!(fleet.lock(&a, &resumed).await.unwrap(), LockOutcome::Acquired, "taken over from the named process");
    assert!(fleet.unlock(&a, &ann).await.is_err(), "the earlier process no longer holds it");
    let (held, _) = f.exec("x", None, &["test", "-e", "/var/lib/codex-fleet/locks/agent.lock"]);
    assert!(held, "still locked");
    fleet.unlock(&a, &key("run-one", "p5-eeee", "oncall", &["*"])).await.unwrap();
    let (held, _) = f.exec("x", None, &["test", "-e", "/var/lib/codex-fleet/locks/agent.lock"]);
    assert!(!held, "unlock --run broke it");
    let bob = key("run-two", "p2-bbbb", "bob@console-2", &[]);
    assert_eq!(fleet.lock(&a, &bob).await.unwrap(), LockOutcome::Acquired);
    fleet.unlock(&a, &bob).await.unwrap();
}
