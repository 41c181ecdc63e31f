//! Unknown outcomes on the real Docker engine: the host acts, its answer never reaches the
//! engine. A wrapper around the production `DockerFleet` lets each operation really run on the
//! engine and then drops its answer once (as an exec timeout or a broken connection would), for
//! each step that changes an agent: write, lock, restart, restore. Each time an apply step is
//! `unknown` (never `failed`), the run halts, the lock stays until resume or rollback asks the
//! host what is there; resume then ends with every agent verified, rollback with every file
//! byte-identical to the start, and no lock is left behind. (A rollback's own lost restore is
//! reported `rollback-failed` naming "no answer, it may or may not have happened", as the
//! runbook says; the next rollback asks the host and finishes.)

mod common;
mod docker_support;

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use codex_fleet::fleet::docker::DockerFleet;
use codex_fleet::fleet::{
    AgentRead, AgentRef, BackupRequest, Fleet, FleetError, Host, HostRead, LockKey, LockOutcome, RestoreRequest, VerifyReport,
    WriteReceipt, WriteRequest,
};
use codex_fleet::plan::plan;
use codex_fleet::rollout::engine::{self, EngineConfig, RunResult, Size};
use codex_fleet::rollout::journal::{Journal, Outcome, RunOptions, RunState};
use codex_fleet::scan::scan;
use docker_support::*;

/// The production Docker fleet, except that the answer of the next `lose` operation (on the
/// agent whose name ends with `only`, when set) is dropped after the engine carried it out.
struct LosingFleet<'a> {
    inner: &'a DockerFleet,
    lose: Mutex<Option<&'static str>>,
    only: Option<&'static str>,
}

impl LosingFleet<'_> {
    fn lost<T>(&self, op: &str, agent: &AgentRef, r: Result<T, FleetError>) -> Result<T, FleetError> {
        let mut l = self.lose.lock().unwrap();
        if *l == Some(op) && r.is_ok() && self.only.is_none_or(|o| agent.name.ends_with(o)) {
            *l = None;
            return Err(FleetError::Timeout(format!("{op}: the answer never came (dropped by the test after the engine acted)")));
        }
        r
    }
}

#[async_trait]
impl Fleet for LosingFleet<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn discover(&self) -> Result<Vec<Host>, FleetError> {
        self.inner.discover().await
    }
    async fn scan(&self, hosts: &[Host], tx: tokio::sync::mpsc::Sender<HostRead>) -> Result<(), FleetError> {
        self.inner.scan(hosts, tx).await
    }
    async fn read_agent(&self, agent: &AgentRef) -> Result<AgentRead, FleetError> {
        self.inner.read_agent(agent).await
    }
    async fn backup(&self, agent: &AgentRef, req: &BackupRequest) -> Result<Option<WriteReceipt>, FleetError> {
        self.inner.backup(agent, req).await
    }
    async fn write_file(&self, agent: &AgentRef, req: &WriteRequest) -> Result<WriteReceipt, FleetError> {
        let r = self.inner.write_file(agent, req).await;
        self.lost("write", agent, r)
    }
    async fn restore_file(&self, agent: &AgentRef, req: &RestoreRequest) -> Result<WriteReceipt, FleetError> {
        let r = self.inner.restore_file(agent, req).await;
        self.lost("restore", agent, r)
    }
    async fn restart(&self, agent: &AgentRef) -> Result<(), FleetError> {
        let r = self.inner.restart(agent).await;
        self.lost("restart", agent, r)
    }
    async fn wait_stable(&self, agent: &AgentRef, timeout: Duration) -> Result<AgentRead, FleetError> {
        self.inner.wait_stable(agent, timeout).await
    }
    async fn verify(&self, agent: &AgentRef) -> Result<VerifyReport, FleetError> {
        self.inner.verify(agent).await
    }
    async fn lock(&self, agent: &AgentRef, key: &LockKey) -> Result<LockOutcome, FleetError> {
        let r = self.inner.lock(agent, key).await;
        self.lost("lock", agent, r)
    }
    async fn unlock(&self, agent: &AgentRef, key: &LockKey) -> Result<(), FleetError> {
        self.inner.unlock(agent, key).await
    }
}

fn cfg() -> EngineConfig {
    EngineConfig {
        canary: 1,
        wave: Size::Count(1),
        max_errors: Size::Count(0),
        stable_timeout: Duration::from_secs(90),
        holder: "docker-unknown-test".into(),
    }
}

const LOCK: &str = "/var/lib/codex-fleet/locks/agent.lock";
const SUFFIXES: [&str; 2] = ["a-canary", "b-second"];

fn locked(f: &TestFleet, s: &str) -> bool {
    f.exec(s, None, &["test", "-e", LOCK]).0
}

async fn apply_losing(f: &TestFleet, fleet: &DockerFleet, run_id: &str, op: &'static str) -> RunResult {
    let report = scan(fleet, |_| {}).await.unwrap();
    let mut p = plan(&report, &[], &fleet.describe(), "now");
    assert_eq!(p.agents.len(), 2, "{op}: both agents planned: {:?}", p.attention);
    p.agents.sort_by(|a, b| a.agent.name.cmp(&b.agent.name));
    let opts = RunOptions { canary: 1, wave: "1".into(), max_errors: "0".into() };
    let journal = engine::start(&p, &opts, run_id).unwrap();
    let losing = LosingFleet { inner: fleet, lose: Mutex::new(Some(op)), only: None };
    let (_tx, stop) = tokio::sync::watch::channel(false);
    let res = engine::execute(&losing, journal, &cfg(), stop, &|_| {}).await.unwrap();
    eprintln!("{op} lost: {res:?}");
    assert!(losing.lose.lock().unwrap().is_none(), "{op}: the step ran");
    assert_eq!(res.state, RunState::Halted, "{op}: an unknown canary halts the run: {res:?}");
    assert_eq!(res.unknown, 1, "{op}: unknown, not failed: {res:?}");
    assert_eq!(res.failed, 0, "{op}: {res:?}");
    assert_eq!(res.verified, 0, "{op}: {res:?}");
    let canary = format!("{}/{}", fleet.host().id, f.name("a-canary"));
    assert_eq!(res.waves[0], [(canary, "unknown".to_string())], "{op}: {res:?}");
    assert!(!locked(f, "b-second"), "{op}: the wave after the canary never started");
    res
}

async fn resume(fleet: &DockerFleet, run_id: &str) -> RunResult {
    let journal = Journal::open(run_id).unwrap();
    let (_tx, stop) = tokio::sync::watch::channel(false);
    engine::execute_opts(fleet, journal, &cfg(), true, stop, &|_| {}).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_unknown_step_halts_and_resume_or_rollback_asks_the_host() {
    let Some(img) = images() else { return };
    let _state = state_dir();
    let mut f = TestFleet::new("unknown", img.clone());
    f.add(vec![
        Spec::new("a-canary", &img.runtime_codex),
        Spec::new("b-second", &img.runtime_codex).emitter(&fixture("emitter/scripts/template-pr77.sh")),
    ]);
    let originals: Vec<(Vec<u8>, Vec<u8>)> = SUFFIXES.iter().map(|s| (f.read(s, EMITTER), f.read(s, CONFIG))).collect();
    let fleet = f.fleet().await;
    let byte_identical = |what: &str| {
        for (i, s) in SUFFIXES.iter().enumerate() {
            assert_eq!(f.read(s, EMITTER), originals[i].0, "{what}: {s}: emitter as at the start");
            assert_eq!(f.read(s, CONFIG), originals[i].1, "{what}: {s}: config.toml as at the start");
            assert!(!locked(&f, s), "{what}: {s}: no lock left");
        }
    };

    // 1. The write's answer is lost: the emitter was written, the engine cannot know. The lock
    //    stays; resume asks the host (the file holds the previewed content) and finishes.
    let run1 = format!("u1-{}", f.run);
    apply_losing(&f, &fleet, &run1, "write").await;
    assert!(locked(&f, "a-canary"), "the unknown agent keeps its lock");
    assert_ne!(f.read("a-canary", EMITTER), originals[0].0, "the host did write");
    let res = resume(&fleet, &run1).await;
    assert!(res.all_verified(), "resume after a lost write: {res:?}");
    for s in SUFFIXES {
        assert!(!locked(&f, s), "{s}: unlocked after the resumed run");
    }

    // 2. The restore's answer is lost during the rollback of that run: said so, no restart on
    //    top of it, the lock kept; the rollback run again asks the host and ends byte-identical.
    let losing = LosingFleet { inner: &fleet, lose: Mutex::new(Some("restore")), only: Some("b-second") };
    let rb = engine::rollback(&losing, &run1, &cfg(), &|_| {}).await.unwrap();
    eprintln!("restore lost: {rb:?}");
    // A rollback reports the agent `rollback-failed` naming the step that got no answer as
    // such (docs/runbook.md): never "the host refused".
    assert!(
        rb.iter().any(|(_, o)| matches!(o, Outcome::RollbackFailed(w) if w.contains("restore: no answer, it may or may not have happened"))),
        "a lost restore is said to be unknown: {rb:?}"
    );
    assert!(locked(&f, "b-second"), "not restarted on top of an unknown restore, still locked");
    let rb = engine::rollback(&fleet, &run1, &cfg(), &|_| {}).await.unwrap();
    assert!(rb.iter().all(|(_, o)| *o == Outcome::RolledBack), "{rb:?}");
    byte_identical("after the lost restore and a second rollback");

    // 3. The lock's answer is lost: the host took it, the engine does not know; nothing was
    //    written. The rollback asks the host, releases it and has nothing to restore.
    let run3 = format!("u3-{}", f.run);
    apply_losing(&f, &fleet, &run3, "lock").await;
    assert!(locked(&f, "a-canary"), "the host took the lock");
    assert_eq!(f.read("a-canary", EMITTER), originals[0].0, "nothing written after an unknown lock");
    let rb = engine::rollback(&fleet, &run3, &cfg(), &|_| {}).await.unwrap();
    eprintln!("rollback after a lost lock: {rb:?}");
    assert!(rb.iter().all(|(_, o)| matches!(o, Outcome::NothingToRollBack | Outcome::RolledBack)), "{rb:?}");
    byte_identical("after a lost lock and its rollback");

    // 4. The restart's answer is lost: the container did restart. Resume asks (waits for it
    //    to be stable, verifies) and finishes; rollback then ends byte-identical.
    let run4 = format!("u4-{}", f.run);
    apply_losing(&f, &fleet, &run4, "restart").await;
    assert!(locked(&f, "a-canary"));
    let res = resume(&fleet, &run4).await;
    assert!(res.all_verified(), "resume after a lost restart: {res:?}");
    let rb = engine::rollback(&fleet, &run4, &cfg(), &|_| {}).await.unwrap();
    assert!(rb.iter().all(|(_, o)| *o == Outcome::RolledBack), "{rb:?}");
    byte_identical("after a lost restart, resume and rollback");
}
