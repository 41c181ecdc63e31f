//! Fault injection through the demo fleet (the real AWS backend and the rollout engine over the
//! simulated AWS, its fault knobs turned on): a host going offline mid-wave, a restart that
//! fails, a boot assertion that fails, a throttling storm, a file changed between plan and
//! apply, an SSM command that times out. Each run must end with every planned agent either
//! fixed and verified, or byte-identical to its original, or reported with a reason (never
//! unknown); a rollback then puts every changed file back byte for byte.
//!
//! The property test at the end draws random failure sequences and checks the same invariant.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use codex_fleet::fleet::aws::{AwsFleet, AwsOptions};
use codex_fleet::sim::{demo_fleet_with_sim, DemoOptions};
use codex_fleet::fleet::Fleet;
use codex_fleet::plan::Plan;
use codex_fleet::rollout::engine::{self, EngineConfig, RunResult, Size};
use codex_fleet::rollout::journal::{self, Journal, Outcome, RunOptions};
use codex_fleet::rollout::view::RunView;
use codex_fleet::scan::scan;
use codex_fleet::sim::aws::SimAws;
use codex_fleet::sim::world::{AgentFaults, SimAgent};

/// (config.toml, emitter) of every agent, as the simulated hosts hold them.
type Files = BTreeMap<String, (Option<String>, Option<String>)>;

struct Setup {
    _state: tempfile::TempDir,
    fleet: AwsFleet,
    sim: Arc<SimAws>,
    plan: Plan,
    original: Files,
}

fn files(sim: &SimAws) -> Files {
    sim.world.with(|st| {
        st.agents
            .iter()
            .flat_map(|(host, list)| list.iter().map(move |a| (format!("{host}/{}", a.name), (a.config.clone(), a.emitter.clone()))))
            .collect()
    })
}

/// The file a rollback is judged on: the emitter where there is one (the restart that follows
/// the byte-for-byte restore runs the original emitter, which rewrites config.toml as it always
/// did), config.toml otherwise.
fn primary(files: &Files, id: &str) -> Option<String> {
    files.get(id).and_then(|(c, e)| e.clone().or(c.clone()))
}

fn with_agent(sim: &SimAws, id: &str, f: impl FnOnce(&mut SimAgent)) {
    let (host, name) = id.split_once('/').unwrap();
    sim.world.with(|st| f(st.agents.get_mut(host).unwrap().iter_mut().find(|a| a.name == name).unwrap()));
}

fn set_online(sim: &SimAws, host: &str, online: bool) {
    sim.world.with(|st| st.hosts.iter_mut().find(|h| h.instance_id == host).unwrap().online = online);
}

async fn setup(scale: Option<(usize, usize)>, aws: AwsOptions) -> Setup {
    let state = tempfile::tempdir().unwrap();
    std::env::set_var("CODEX_FLEET_STATE_DIR", state.path());
    let opts = DemoOptions { scale, latency: Duration::from_millis(5), state_file: None, aws };
    let (fleet, sim) = demo_fleet_with_sim(opts).await.unwrap();
    let report = scan(&fleet, |_| {}).await.unwrap();
    let plan = codex_fleet::plan::plan(&report, &[], &fleet.describe(), "2026-11-27T00:00:00Z");
    assert!(plan.agents.len() >= 4, "too few planned agents for the test: {}", plan.agents.len());
    let original = files(&sim);
    Setup { _state: state, fleet, sim, plan, original }
}

fn cfg(canary: usize, wave: Size, max_errors: Size) -> EngineConfig {
    EngineConfig { canary, wave, max_errors, stable_timeout: Duration::from_secs(20), holder: "test@faults".into() }
}

async fn run(s: &Setup, c: &EngineConfig) -> (String, RunResult, RunView) {
    let run_id = Journal::new_run_id();
    let opts = RunOptions { canary: c.canary, wave: format!("{:?}", c.wave), max_errors: format!("{:?}", c.max_errors) };
    let j = engine::start(&s.plan, &opts, &run_id).unwrap();
    let (_tx, stop) = tokio::sync::watch::channel(false);
    let res = engine::execute(&s.fleet, j, c, stop, &|_| {}).await.unwrap();
    let view = RunView::from_records(&journal::read(&run_id).unwrap()).unwrap();
    (run_id, res, view)
}

/// The invariant: every planned agent is verified (and its files now carry the fix), or
/// byte-identical to its original, or reported with a reason. Returns the outcome per agent.
fn check_invariant(s: &Setup, res: &RunResult, view: &RunView) -> BTreeMap<String, String> {
    let now = files(&s.sim);
    let mut words = BTreeMap::new();
    for ap in &s.plan.agents {
        let id = ap.agent.id();
        let outcome = view.agents.get(&id).and_then(|p| p.outcome.clone());
        let same = now.get(&id) == s.original.get(&id);
        match &outcome {
            Some(Outcome::Verified) => {
                let (cfg, emitter) = &now[&id];
                let text = emitter.as_ref().or(cfg.as_ref()).unwrap();
                assert!(text.contains("danger-full-access"), "{id} verified but its files lack the fix");
            }
            Some(Outcome::Failed(why)) | Some(Outcome::Skipped(why)) | Some(Outcome::Unknown(why)) => {
                assert!(!why.trim().is_empty(), "{id}: reported without a reason");
            }
            None => assert!(same, "{id}: untouched by the run ({res:?}) but its files changed"),
            Some(o) => panic!("{id}: unexpected outcome {o:?}"),
        }
        words.insert(id, outcome.map(|o| o.word().to_string()).unwrap_or_else(|| "untouched".into()));
    }
    // Agents outside the plan are never touched.
    for (id, f) in &now {
        if !s.plan.agents.iter().any(|a| a.agent.id() == *id) {
            assert_eq!(Some(f), s.original.get(id), "{id} was not planned but changed");
        }
    }
    words
}

/// Roll the run back and check every planned agent's files are byte-identical to the original
/// (except those named in `unless`, which must be reported as not rolled back, with why).
async fn rollback_restores(s: &Setup, run_id: &str, c: &EngineConfig, unless: &[String]) {
    let results = engine::rollback(&s.fleet, run_id, c, &|_| {}).await.unwrap();
    let now = files(&s.sim);
    for (id, o) in &results {
        if unless.contains(id) {
            assert!(matches!(o, Outcome::RollbackFailed(w) if !w.is_empty()), "{id}: {o:?}");
            continue;
        }
        // An agent the run never wrote (its write refused, lost before the host acted, or never
        // reached) has nothing to roll back; the byte-identity check below holds for both.
        assert!(matches!(o, Outcome::RolledBack | Outcome::NothingToRollBack), "{id}: {o:?}");
    }
    for ap in &s.plan.agents {
        let id = ap.agent.id();
        if !unless.contains(&id) {
            assert_eq!(primary(&now, &id), primary(&s.original, &id), "{id}: not byte-identical after the rollback");
        }
    }
}

/// The waves the engine will make for this plan (pure: same function the engine uses).
fn waves(s: &Setup, c: &EngineConfig) -> Vec<Vec<String>> {
    let ids: Vec<String> = s.plan.agents.iter().map(|a| a.agent.id()).collect();
    engine::waves(&ids, c.canary, c.wave)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_fails_in_a_wave_halts_and_rolls_back() {
    let s = setup(None, AwsOptions::default()).await;
    let c = cfg(1, Size::Percent(25), Size::Count(0));
    let w = waves(&s, &c);
    let victim = w[1][0].clone();
    with_agent(&s.sim, &victim, |a| a.faults.restart_fails = true);
    let (run_id, res, view) = run(&s, &c).await;
    let words = check_invariant(&s, &res, &view);
    assert_eq!(words[&victim], "failed", "{words:?}");
    assert_eq!(res.state, journal::RunState::Halted, "past --max-errors 0 the run halts");
    for id in w[2..].iter().flatten() {
        assert_eq!(words[id], "untouched", "{id} ran after the halt");
    }
    // The container does not come back, so the rollback's own restart fails: its files are
    // still put back, and the failure is named.
    let results = engine::rollback(&s.fleet, &run_id, &c, &|_| {}).await.unwrap();
    let now = files(&s.sim);
    for ap in &s.plan.agents {
        let id = ap.agent.id();
        assert_eq!(primary(&now, &id), primary(&s.original, &id), "{id}: not byte-identical after the rollback");
    }
    let v = results.iter().find(|(id, _)| *id == victim).unwrap();
    assert!(matches!(&v.1, Outcome::RollbackFailed(w) if w.contains("restart") || w.contains("after restart")), "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_canary_fails_its_boot_assertion_nothing_else_is_touched() {
    let s = setup(None, AwsOptions::default()).await;
    let c = cfg(1, Size::Percent(25), Size::Percent(100));
    let w = waves(&s, &c);
    with_agent(&s.sim, &w[0][0], |a| a.faults.verify_fails = true);
    let (run_id, res, view) = run(&s, &c).await;
    let words = check_invariant(&s, &res, &view);
    assert_eq!(words[&w[0][0]], "failed");
    assert_eq!(res.state, journal::RunState::Halted, "a canary failure always halts, whatever --max-errors says");
    assert!(words.values().filter(|o| *o == "untouched").count() == s.plan.agents.len() - 1, "{words:?}");
    let why = match &view.agents[&w[0][0]].outcome {
        Some(Outcome::Failed(w)) => w.clone(),
        o => panic!("{o:?}"),
    };
    assert!(why.contains("boot assertion"), "{why}");
    rollback_restores(&s, &run_id, &c, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_goes_offline_mid_wave() {
    let s = setup(None, AwsOptions::default()).await;
    let c = cfg(1, Size::Percent(50), Size::Percent(100));
    let w = waves(&s, &c);
    // A host with at least two planned agents in the first big wave: it goes away after its
    // first few mutating commands.
    let mut by_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in &w[1] {
        by_host.entry(id.split('/').next().unwrap().to_string()).or_default().push(id.clone());
    }
    let (host, victims) = by_host.into_iter().max_by_key(|(_, v)| v.len()).unwrap();
    assert!(victims.len() >= 2, "{victims:?}");
    s.sim.world.with(|st| {
        st.faults.offline_after.insert(host.clone(), 3);
        st.faults.offline_delivery_ms = 300;
    });
    let (run_id, res, view) = run(&s, &c).await;
    let words = check_invariant(&s, &res, &view);
    let failed: Vec<&String> = victims.iter().filter(|v| words[*v] == "failed").collect();
    assert!(!failed.is_empty(), "nothing on the lost host failed: {words:?}");
    for v in &failed {
        let why = format!("{:?}", view.agents[*v].outcome);
        assert!(why.contains("unreachable") || why.contains("Undeliverable") || why.contains("timed out") || why.contains("offline"), "{v}: {why}");
    }
    // Agents elsewhere finished.
    assert!(words.iter().filter(|(id, _)| !id.starts_with(&host)).all(|(_, o)| o == "verified"), "{words:?}");
    // Rollback while the host is still away: its agents are named as not restored, the rest are.
    let touched: Vec<String> = victims.iter().filter(|v| words[*v] != "untouched").cloned().collect();
    let results = engine::rollback(&s.fleet, &run_id, &c, &|_| {}).await.unwrap();
    for (id, o) in &results {
        if id.starts_with(&host) {
            assert!(matches!(o, Outcome::RollbackFailed(w) if !w.is_empty()) || *o == Outcome::RolledBack, "{id}: {o:?}");
        } else {
            assert_eq!(*o, Outcome::RolledBack, "{id}");
        }
    }
    // Back online: a second rollback finishes the job, byte for byte.
    set_online(&s.sim, &host, true);
    s.sim.world.with(|st| st.faults.offline_after.clear());
    let results = engine::rollback(&s.fleet, &run_id, &c, &|_| {}).await.unwrap();
    for (id, o) in &results {
        assert!(matches!(o, Outcome::RolledBack | Outcome::NothingToRollBack), "{id} on the second rollback: {o:?}");
    }
    let now = files(&s.sim);
    for ap in &s.plan.agents {
        let id = ap.agent.id();
        assert_eq!(primary(&now, &id), primary(&s.original, &id), "{id}: not byte-identical ({touched:?} were touched)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_throttling_storm_slows_the_run_but_it_finishes() {
    let s = setup(None, AwsOptions::default()).await;
    let c = cfg(1, Size::Percent(50), Size::Count(0));
    s.sim.throttle_storm(Duration::from_secs(4));
    let (run_id, res, view) = run(&s, &c).await;
    let words = check_invariant(&s, &res, &view);
    assert!(res.all_verified(), "{words:?}");
    assert!(s.sim.stats.throttled.load(std::sync::atomic::Ordering::Relaxed) > 0, "the storm throttled nothing");
    rollback_restores(&s, &run_id, &c, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_changed_between_plan_and_apply_is_skipped() {
    let s = setup(None, AwsOptions::default()).await;
    let c = cfg(1, Size::Percent(50), Size::Percent(100));
    let w = waves(&s, &c);
    let victim = w[1][0].clone();
    // Somebody edits the file after the plan was made (before the run's check).
    let hand = "# edited by hand after the plan\n";
    with_agent(&s.sim, &victim, |a| match &mut a.emitter {
        Some(e) => e.push_str(hand),
        None => a.config.as_mut().unwrap().push_str(hand),
    });
    let edited = files(&s.sim)[&victim].clone();
    let (run_id, res, view) = run(&s, &c).await;
    let words = check_invariant(&s, &res, &view);
    assert_eq!(words[&victim], "skipped", "{words:?}");
    assert_eq!(files(&s.sim)[&victim], edited, "the hand edit is kept, nothing written over it");
    assert!(format!("{:?}", view.agents[&victim].outcome).contains("changed since the plan"));
    // And right before the write (after the check): the host refuses the stale write.
    let s2 = setup(None, AwsOptions::default()).await;
    let w2 = waves(&s2, &c);
    with_agent(&s2.sim, &w2[1][0], |a| a.faults = AgentFaults { change_before_write: true, ..Default::default() });
    let (_, res2, view2) = run(&s2, &c).await;
    let words2 = check_invariant(&s2, &res2, &view2);
    assert_eq!(words2[&w2[1][0]], "skipped", "{words2:?}");
    let _ = run_id;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ssm_command_times_out() {
    let s = setup(None, AwsOptions { op_timeout: Duration::from_secs(10), ..Default::default() }).await;
    let c = cfg(1, Size::Percent(50), Size::Percent(100));
    let w = waves(&s, &c);
    // Slowness is a host's: a victim on another host than the canary's.
    let canary_host = w[0][0].split('/').next().unwrap().to_string();
    let victim = w[1].iter().find(|id| !id.starts_with(&canary_host)).unwrap().clone();
    with_agent(&s.sim, &victim, |a| a.faults.slow_ms = 30_000);
    let (run_id, res, view) = run(&s, &c).await;
    let words = check_invariant(&s, &res, &view);
    let failures: Vec<String> = view.agents.iter().filter_map(|(id, p)| match &p.outcome {
        Some(Outcome::Failed(w)) => Some(format!("{id}: {w}")),
        _ => None,
    }).collect();
    // No answer is not a failure: the victim's outcome is unknown, its step stays in flight in
    // the journal, and the run halts after the wave.
    assert_eq!(words[&victim], "unknown", "victim {victim}, waves {w:?}, state {:?}: {failures:#?} {:?}", res.state, view.agents[&victim]);
    assert!(view.agents[&victim].in_flight.is_some(), "{:?}", view.agents[&victim]);
    assert_eq!(res.state, journal::RunState::Halted, "an unknown outcome halts the run");
    let why = format!("{:?}", view.agents[&victim].outcome);
    assert!(why.to_lowercase().contains("no answer"), "{why}");
    with_agent(&s.sim, &victim, |a| a.faults.slow_ms = 0);
    // The host still runs the slow command the run gave up on (SSM does not kill it): roll back
    // with a console whose deadline outlasts it, over the same simulated AWS.
    let patient = AwsFleet::from_sdk_config(
        AwsOptions {
            op_timeout: Duration::from_secs(90),
            regions: codex_fleet::sim::demo::REGIONS.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        },
        &codex_fleet::sim::sdk_config(&s.sim, 6),
        None,
    )
    .unwrap();
    patient.discover().await.unwrap();
    let s = Setup { fleet: patient, ..s };
    rollback_restores(&s, &run_id, &c, &[]).await;
}

// ---------------------------------------------------------------------------------------------
// Property: random failure sequences.

use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Fault {
    None,
    RestartFails,
    VerifyFails,
    ChangedBeforeWrite,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => Just(Fault::None),
        1 => Just(Fault::RestartFails),
        1 => Just(Fault::VerifyFails),
        1 => Just(Fault::ChangedBeforeWrite),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn random_failures_keep_the_invariant(
        faults in proptest::collection::vec(fault(), 12),
        offline in proptest::option::of(0usize..3),
        canary in 0usize..3,
        max_errors in 0usize..4,
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
        rt.block_on(async {
            let s = setup(Some((3, 4)), AwsOptions::default()).await;
            for (ap, f) in s.plan.agents.iter().zip(&faults) {
                with_agent(&s.sim, &ap.agent.id(), |a| match f {
                    Fault::None => {}
                    Fault::RestartFails => a.faults.restart_fails = true,
                    Fault::VerifyFails => a.faults.verify_fails = true,
                    Fault::ChangedBeforeWrite => a.faults.change_before_write = true,
                });
            }
            if let Some(k) = offline {
                let host = s.plan.agents[0].agent.host.clone();
                s.sim.world.with(|st| {
                    st.faults.offline_after.insert(host, k as u32 + 1);
                    st.faults.offline_delivery_ms = 200;
                });
            }
            let c = cfg(canary, Size::Percent(50), Size::Count(max_errors));
            let (run_id, res, view) = run(&s, &c).await;
            check_invariant(&s, &res, &view);
            // Whatever happened, once every host is back a rollback restores every file.
            let hosts: Vec<String> = s.sim.world.with(|st| st.hosts.iter().map(|h| h.instance_id.clone()).collect());
            s.sim.world.with(|st| st.faults.offline_after.clear());
            let _ = hosts;
            if offline.is_some() {
                set_online(&s.sim, &s.plan.agents[0].agent.host, true);
            }
            let results = engine::rollback(&s.fleet, &run_id, &c, &|_| {}).await.unwrap();
            let now = files(&s.sim);
            for ap in &s.plan.agents {
                let id = ap.agent.id();
                let hand_edited = matches!(view.agents.get(&id).and_then(|p| p.outcome.clone()), Some(Outcome::Skipped(_)));
                if hand_edited {
                    continue; // somebody else's edit: never overwritten, never "restored" away
                }
                prop_assert_eq!(primary(&now, &id), primary(&s.original, &id), "{} after the rollback: {:?}", id, results);
            }
            Ok(())
        })?;
    }
}
