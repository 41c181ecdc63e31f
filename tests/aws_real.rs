//! The AWS path on real containers (issue 10, item 1): the production AWS backend sends its host
//! scripts through SSM's semantics and they really run, with `sh` as root on this machine,
//! against the Docker engine and the test images (tests/aws_real_support). The incident-state
//! scan, then the rollout the Docker backend's tests cover: plan, apply with a canary and a
//! wave, files as previewed with owner and mode kept and byte-identical backups, unlocked after;
//! rollback to the original bytes; restart, wait and the boot assertion; another run's lock held.
//! Fails instead of skipping under CI when the engine or the images are missing.

mod aws_real_support;
mod common;
mod docker_support;

use std::time::Duration;

use aws_real_support::*;
use codex_fleet::diagnose::Code;
use codex_fleet::fleet::{Fleet, LockOutcome};
use codex_fleet::plan::plan;
use codex_fleet::rollout::engine::{self, EngineConfig, Size};
use codex_fleet::rollout::journal::{Outcome, RunOptions, RunState};
use codex_fleet::scan::scan;
use docker_support::*;

const INSTANCE: &str = "i-0real00000000001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_apply_restart_verify_rollback_and_locks_through_ssm_on_real_containers() {
    let Some(img) = images() else { return };
    let _state = state_dir();
    let t0 = std::time::Instant::now();
    let mut f = TestFleet::new("awsreal", img.clone());
    let on = format!("cf-sim.instance={INSTANCE}");
    f.add(vec![
        Spec::new("a-canary", &img.runtime_codex).arg("--label").arg(&on),
        Spec::new("b-pr77", &img.runtime_codex).arg("--label").arg(&on).emitter(&fixture("emitter/scripts/template-pr77.sh")),
        Spec { restarts: 1, ..Spec::new("c-dup", &img.runtime).arg("--label").arg(&on).emitter(&fixture("emitter/scripts/hotpatch-1.sh")) },
    ]);
    let suffixes = ["a-canary", "b-pr77", "c-dup"];
    let originals: Vec<(Vec<u8>, Vec<u8>)> = suffixes.iter().map(|s| (f.read(s, EMITTER), f.read(s, CONFIG))).collect();
    let perms: Vec<String> = suffixes.iter().map(|s| f.stat(s, EMITTER)).collect();
    eprintln!("fleet up in {:?}", t0.elapsed());

    let (fleet, sim) = aws_fleet(&[instance(INSTANCE, "real-1")], &format!("label=cf-test.agent={}", f.run), &f.gitea_url);

    // The incident-state scan: each agent read through the host script, by its full id.
    let t = std::time::Instant::now();
    let report = scan(&fleet, |_| {}).await.unwrap();
    eprintln!("scan in {:?}", t.elapsed());
    let agents: Vec<_> = report.agents().collect();
    assert_eq!(agents.len(), 3, "{:?}", report.to_json());
    for a in &agents {
        let full = docker_ok(&["inspect", "--format", "{{.Id}}", &a.read.agent.name]).trim().to_string();
        assert_eq!(a.read.agent.container_id, full, "the record is keyed by the full id docker gave the host");
        let p = a.read.probe.as_ref().unwrap_or_else(|e| panic!("{}: {e}", a.read.agent.name));
        let suffix = suffixes.iter().find(|s| f.name(s) == a.read.agent.name).unwrap();
        let i = suffixes.iter().position(|s| s == suffix).unwrap();
        assert_eq!(p.emitter.redacted.as_deref().map(str::as_bytes), Some(&originals[i].0[..]), "{suffix}: the emitter as read");
        assert!(a.diagnosis.has(Code::SandboxWillFail) || a.diagnosis.has(Code::ConfigInvalid), "{suffix}: {:?}", a.diagnosis.findings);
        // The real probe's signature letters decide: without its stderr texts (what a scan has
        // before it reads them) the same codes and verdict.
        let mut bare = a.read.clone();
        if let Ok(p) = bare.probe.as_mut() {
            for s in [&mut p.userns, &mut p.userns_map_root, &mut p.bwrap, &mut p.prompt_input] {
                s.stderr.clear();
            }
            for h in [&mut p.gitea_plain, &mut p.gitea_codex] {
                h.stderr.clear();
            }
        }
        let d = codex_fleet::scan::diagnose_read(&bare);
        assert_eq!((d.verdict, d.codes()), (a.diagnosis.verdict, a.diagnosis.codes()), "{suffix}: the verdict waits for no stderr");
    }
    // One command round trip: every text came in the scan's own answer (no `blobs` command).
    assert_eq!(sim.stats.snapshot().get("SendCommand").copied(), Some(1), "{:?}", sim.stats.snapshot());

    // Plan, then apply: a canary of 1, a wave of 2.
    let mut p = plan(&report, &[], &fleet.describe(), "now");
    assert!(p.attention.is_empty(), "{:?}", p.attention);
    assert_eq!(p.agents.len(), 3);
    p.agents.sort_by(|a, b| a.agent.name.cmp(&b.agent.name));
    let run_id = format!("r-{}", f.run);
    let opts = RunOptions { canary: 1, wave: "2".into(), max_errors: "0".into() };
    let cfg = EngineConfig {
        canary: 1,
        wave: Size::Count(2),
        max_errors: Size::Count(0),
        stable_timeout: Duration::from_secs(90),
        holder: "aws-real-test".into(),
    };
    let journal = engine::start(&p, &opts, &run_id).unwrap();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let t = std::time::Instant::now();
    let res = engine::execute(&fleet, journal, &cfg, stop, &|e| eprintln!("{}", serde_json::to_string(&e).unwrap())).await.unwrap();
    eprintln!("apply in {:?}: {res:?}", t.elapsed());
    assert_eq!(res.state, RunState::Done, "{res:?}");
    assert!(res.all_verified(), "{res:?}");
    assert_eq!(res.waves.iter().map(|w| w.len()).collect::<Vec<_>>(), [1, 2]);
    for (i, s) in suffixes.iter().enumerate() {
        let ap = p.agents.iter().find(|a| a.agent.name == f.name(s)).unwrap();
        let planned = ap.files.iter().find(|x| x.write).unwrap();
        assert_eq!(String::from_utf8(f.read(s, EMITTER)).unwrap(), planned.after_redacted, "{s}: the emitter as previewed");
        assert_eq!(f.stat(s, EMITTER), perms[i], "{s}: owner and mode kept");
        let dir = format!("/var/backups/codex-fleet/{run_id}");
        assert_eq!(f.stat(s, &dir), "root:root 700");
        assert_eq!(f.read(s, &format!("{dir}/%2fusr%2flocal%2fbin%2fcodex_mcp_config.sh")), originals[i].0, "{s}: emitter backup");
        assert_eq!(f.read(s, &format!("{dir}/%2fhome%2fagent%2f.codex%2fconfig.toml")), originals[i].1, "{s}: config backup");
        assert!(!f.exec(s, None, &["test", "-e", "/var/lib/codex-fleet/locks/agent.lock"]).0, "{s}: unlocked after the run");
        // config.toml, regenerated by the fixed emitter at the restart: the fix in effect.
        let config = String::from_utf8(f.read(s, CONFIG)).unwrap();
        assert!(config.contains("danger-full-access"), "{s}:\n{config}");
    }

    // Rollback right after: every file back to the original bytes.
    let t = std::time::Instant::now();
    let rb = engine::rollback(&fleet, &run_id, &cfg, &|_| {}).await.unwrap();
    eprintln!("rollback in {:?}: {rb:?}", t.elapsed());
    assert_eq!(rb.len(), 3);
    assert!(rb.iter().all(|(_, o)| *o == Outcome::RolledBack), "{rb:?}");
    for (i, s) in suffixes.iter().enumerate() {
        assert_eq!(f.read(s, EMITTER), originals[i].0, "{s}: emitter restored byte for byte");
        assert_eq!(f.stat(s, EMITTER), perms[i]);
    }

    // Restart, wait and the boot assertion through the host script (an unfixed agent: the
    // assertion must fail with codex's own words, not pass).
    let a = report.agents().find(|a| a.read.agent.name == f.name("a-canary")).unwrap().read.agent.clone();
    fleet.restart(&a).await.unwrap();
    let read = fleet.wait_stable(&a, Duration::from_secs(90)).await.unwrap();
    assert_eq!(read.agent.container_id, a.container_id);
    let v = fleet.verify(&a).await.unwrap();
    assert!(!v.passed, "rolled back: the sandbox is the incident's again: {v:?}");

    // Locks: another run's lock is reported as held, with who; the holder's unlock frees it.
    let key = |run: &str, holder: &str| codex_fleet::fleet::LockKey {
        run_id: run.into(),
        token: format!("tok-{run}"),
        holder: holder.into(),
        takeover: Vec::new(),
    };
    let (other, mine) = (key("run-other", "someone-else"), key("run-mine", "me"));
    assert_eq!(fleet.lock(&a, &other).await.unwrap(), LockOutcome::Acquired);
    match fleet.lock(&a, &mine).await.unwrap() {
        LockOutcome::HeldBy(who) => assert!(who.contains("someone-else") && who.contains("run-other"), "{who}"),
        o => panic!("{o:?}"),
    }
    fleet.unlock(&a, &other).await.unwrap();
    assert_eq!(fleet.lock(&a, &mine).await.unwrap(), LockOutcome::Acquired);
    fleet.unlock(&a, &mine).await.unwrap();

    // An operation that names a container by anything but its full id is refused by the host.
    let by_name = codex_fleet::fleet::AgentRef { container_id: a.container_id[..12].to_string(), ..a.clone() };
    assert!(matches!(fleet.restart(&by_name).await, Err(codex_fleet::fleet::FleetError::Refused(_))));
    let calls = sim.stats.snapshot();
    eprintln!("SSM calls: {calls:?}; total {:?}", t0.elapsed());
}
