//! End to end through the library on the demo (the real AWS backend over the simulated AWS):
//! scan -> plan (no secret in it) -> rollout engine (canary, waves) -> verify -> rollback.

use std::time::Duration;

use codex_fleet::diagnose::{Code, Verdict};
use codex_fleet::sim::{demo_fleet_with_sim, DemoOptions};
use codex_fleet::fleet::Fleet;
use codex_fleet::rollout::engine::{self, EngineConfig, Size};
use codex_fleet::rollout::journal::{Journal, Outcome, RunOptions, RunState};
use codex_fleet::scan::scan;

fn demo(latency_ms: u64) -> DemoOptions {
    DemoOptions { latency: Duration::from_millis(latency_ms), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_fleet_covers_the_contract() {
    let (fleet, sim) = demo_fleet_with_sim(demo(20)).await.unwrap();
    let report = scan(&fleet, |_| {}).await.unwrap();
    let s = report.summary();
    assert!(s.hosts >= 8, "{s:?}");
    assert!(s.agents >= 40, "{s:?}");
    assert!(s.unreachable_hosts >= 1, "{s:?}");
    // The stopped instance is not part of the fleet.
    assert!(report.hosts.iter().all(|h| !h.host.name.contains("stopped")));
    // Every finding code and every verdict.
    let mut codes: std::collections::BTreeSet<Code> = report.agents().flat_map(|a| a.diagnosis.codes()).collect();
    for h in &report.hosts {
        codes.extend(h.findings().iter().map(|(c, _)| *c));
    }
    for c in Code::ALL {
        assert!(codes.contains(&c), "no agent shows {c}");
    }
    for v in [Verdict::Healthy, Verdict::Stalled, Verdict::AtRisk, Verdict::Unknown] {
        assert!(report.agents().any(|a| a.diagnosis.verdict == v), "no agent is {}", v.as_str());
    }
    // No secret left a host: neither the scan's JSON nor anything the SDK received.
    let json = report.to_json().to_string();
    for secret in ["sk-demo", "Bearer mm-", "whsec_"] {
        assert!(!json.contains(secret), "{secret} in scan output");
    }
    assert!(report.agents().any(|a| a.read.probe.as_ref().is_ok_and(|p| p.config.redacted.as_deref().is_some_and(|t| t.contains("<redacted:")))));
    // A few dozen calls, not one per host.
    let calls = sim.stats.total();
    assert!(calls < 60, "{calls} API calls: {:?}", sim.stats.snapshot());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scan_plan_apply_verify_rollback() {
    let state = tempfile::tempdir().unwrap();
    // The run journal lives in a directory of this test's own.
    std::env::set_var("CODEX_FLEET_STATE_DIR", state.path());
    let (fleet, _sim) = demo_fleet_with_sim(demo(10)).await.unwrap();
    let report = scan(&fleet, |_| {}).await.unwrap();
    let plan = codex_fleet::plan::plan(&report, &[], &fleet.describe(), "2026-11-02T09:00:00Z");
    assert!(plan.has_changes());
    assert!(!plan.attention.is_empty());
    let text = serde_json::to_string(&plan).unwrap();
    for secret in ["sk-demo", "Bearer mm-", "whsec_"] {
        assert!(!text.contains(secret), "{secret} in the plan");
    }
    assert!(text.contains("<redacted:"), "the plan shows placeholders where secrets are");

    let run_id = Journal::new_run_id();
    let opts = RunOptions { canary: 1, wave: "25%".into(), max_errors: "0".into() };
    let j = engine::start(&plan, &opts, &run_id).unwrap();
    let cfg = EngineConfig {
        canary: 1,
        wave: Size::Percent(25),
        max_errors: Size::Count(0),
        stable_timeout: Duration::from_secs(30),
        holder: "test@e2e".into(),
    };
    let (_tx, stop) = tokio::sync::watch::channel(false);
    let events = std::sync::Mutex::new(Vec::new());
    let res = engine::execute(&fleet, j, &cfg, stop, &|e| events.lock().unwrap().push(format!("{e:?}"))).await.unwrap();
    assert_eq!(res.state, RunState::Done, "{res:?}\n{:#?}", events.lock().unwrap());
    assert!(res.waves.len() >= 3, "canary + waves: {:?}", res.waves);
    assert_eq!(res.waves[0].len(), 1, "one canary");
    assert!(res.all_verified(), "{res:?}");

    // After the run: no agent on a reachable host is stalled except attention ones (at-risk
    // remains where the fix lives only in the writable layer: apply cannot change images).
    let after = scan(&fleet, |_| {}).await.unwrap();
    let attention: Vec<String> = plan.attention.iter().map(|a| a.agent.id()).collect();
    for a in after.agents() {
        if attention.contains(&a.id()) {
            continue;
        }
        assert!(
            a.diagnosis.verdict != Verdict::Stalled && a.diagnosis.verdict != Verdict::Unknown,
            "{} is {} after apply: {:?}",
            a.id(),
            a.diagnosis.verdict.as_str(),
            a.diagnosis.findings
        );
    }
    // A second plan changes nothing.
    let again = codex_fleet::plan::plan(&after, &[], &fleet.describe(), "2026-11-02T09:10:00Z");
    assert!(!again.has_changes(), "{:#?}", again.agents.iter().map(|a| a.agent.id()).collect::<Vec<_>>());

    // Verify on every planned agent.
    for ap in &plan.agents {
        let v = fleet.verify(&ap.agent).await.unwrap();
        assert!(v.passed, "{}: {:?}", ap.agent.id(), v.checks);
    }

    // Rollback restores every file byte for byte.
    let before: std::collections::HashMap<String, (Option<String>, Option<String>)> = report
        .agents()
        .filter_map(|a| a.read.probe.as_ref().ok().map(|p| (a.id(), (p.config.sha256.clone(), p.emitter.sha256.clone()))))
        .collect();
    let results = engine::rollback(&fleet, &run_id, &cfg, &|_| {}).await.unwrap();
    assert!(!results.is_empty());
    for (id, o) in &results {
        assert_eq!(*o, Outcome::RolledBack, "{id}");
    }
    let back = scan(&fleet, |_| {}).await.unwrap();
    for ap in &plan.agents {
        let a = back.find(&ap.agent.id()).unwrap();
        let p = a.read.probe.as_ref().unwrap();
        assert_eq!(before[&a.id()].1, p.emitter.sha256, "{}: emitter restored", a.id());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_changed_after_the_plan_is_skipped_not_written() {
    let (fleet, sim) = demo_fleet_with_sim(demo(10)).await.unwrap();
    let report = scan(&fleet, |_| {}).await.unwrap();
    let plan = codex_fleet::plan::plan(&report, &[], &fleet.describe(), "2026-11-02T09:00:00Z");
    let victim = plan.agents.iter().find(|a| a.files.iter().any(|f| f.write)).unwrap().agent.clone();
    sim.world.with(|st| {
        for a in st.agents.get_mut(&victim.host).unwrap() {
            if a.name == victim.name {
                a.faults.change_before_write = true;
            }
        }
    });
    let w = plan.agents.iter().find(|a| a.agent == victim).unwrap().files.iter().find(|f| f.write).unwrap().clone();
    let r = fleet
        .write_file(&victim, &codex_fleet::fleet::WriteRequest {
            path: w.path.clone(),
            before_sha256: w.before_sha256.clone(),
            after_redacted: w.after_redacted.clone(),
            run_id: "run-test".into(),
            before_redacted: Some(w.before_redacted.clone()),
        })
        .await;
    assert!(matches!(r, Err(codex_fleet::fleet::FleetError::Changed { .. })), "{r:?}");
}

/// Regression: when one host held more texts than one answer carries, it was put twice into
/// one SendCommand; its two invocations could not be told apart and every text of the scan
/// was lost (seen about one scan in four under load).
#[test]
fn a_host_with_many_texts_is_asked_in_several_commands_never_twice_in_one() {
    use codex_fleet::fleet::Host;
    let host = |id: &str| Host {
        id: id.into(),
        name: id.into(),
        location: "us-east-2".into(),
        reachable: true,
        unreachable_reason: None,
        agent_version: None,
    };
    let big: Vec<(String, usize)> = (0..5).map(|i| (format!("{i:016x}"), 20_000)).collect();
    let mut small = big[..1].to_vec();
    small.push(("ffffffffffffffff".into(), 100));
    let wanted = vec![(host("i-0big"), "us-east-2".to_string(), big.clone()), (host("i-0small"), "us-east-2".to_string(), small)];
    let known = std::collections::HashSet::from(["0000000000000004".to_string()]);
    let cmds = codex_fleet::fleet::aws::blob_commands(&wanted, &known);
    let mut asked: Vec<String> = Vec::new();
    for (_, items) in &cmds {
        let mut ids: Vec<&str> = items.iter().map(|(h, _)| h.id.as_str()).collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "an instance twice in one command: {cmds:?}");
        for (_, hashes) in items {
            assert!(hashes.len() == 1 || hashes.len() * 20_000 <= 30_000 + 20_000, "{hashes:?}");
            asked.extend(hashes.iter().cloned());
        }
    }
    asked.sort();
    let mut want: Vec<String> = (0..4).map(|i| format!("{i:016x}")).collect();
    want.push("ffffffffffffffff".into());
    want.sort();
    assert_eq!(asked, want, "every text not yet known, each once");
    assert!(cmds.len() >= 3, "20,000-character texts need several answers: {cmds:?}");
}
