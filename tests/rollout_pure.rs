//! The pure parts of the rollout: wave sizing, error budgets, journal replay.

use codex_fleet::fleet::AgentRef;
use codex_fleet::plan::{AgentPlan, Plan};
use codex_fleet::rollout::engine::{waves, Size};
use codex_fleet::rollout::journal::{Outcome, Phase, Record, RunOptions, RunState, Step};
use codex_fleet::rollout::view::RunView;

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("h/a{i}")).collect()
}

#[test]
fn canary_then_waves() {
    let w = waves(&ids(10), 1, Size::Percent(25));
    assert_eq!(w.iter().map(|w| w.len()).collect::<Vec<_>>(), [1, 3, 3, 3]);
    let w = waves(&ids(10), 0, Size::Count(4));
    assert_eq!(w.iter().map(|w| w.len()).collect::<Vec<_>>(), [4, 4, 2]);
    let w = waves(&ids(2), 5, Size::Percent(25));
    assert_eq!(w, vec![ids(2)], "a canary larger than the plan is the whole plan");
    assert!(waves(&[], 1, Size::Count(3)).is_empty());
    // Every agent exactly once, in plan order.
    let flat: Vec<String> = waves(&ids(37), 2, Size::Percent(10)).concat();
    assert_eq!(flat, ids(37));
}

#[test]
fn sizes() {
    assert_eq!(Size::parse("25%").unwrap(), Size::Percent(25));
    assert_eq!(Size::parse("3").unwrap(), Size::Count(3));
    assert!(Size::parse("101%").is_err());
    assert!(Size::parse("x").is_err());
    assert_eq!(Size::Percent(10).of(9), 0, "error budgets round down");
    assert_eq!(Size::Percent(10).of_at_least_one(9), 1, "waves are never empty");
    assert_eq!(Size::Percent(50).of(9), 4);
}

fn agent(i: usize) -> AgentRef {
    AgentRef { host: "h".into(), container_id: format!("c{i}"), name: format!("a{i}") }
}

fn step(a: usize, step: Step, phase: Phase, path: Option<&str>, backup: Option<&str>, sha: Option<&str>) -> Record {
    Record::Step {
        time: "t".into(),
        agent: agent(a).id(),
        step,
        phase,
        path: path.map(Into::into),
        backup: backup.map(Into::into),
        sha256: sha.map(Into::into),
        detail: None,
    }
}

#[test]
fn replay_tells_progress_backups_and_state() {
    let plan = Plan {
        format: 1,
        created: "t".into(),
        source: "test".into(),
        agents: (0..3)
            .map(|i| AgentPlan { agent: agent(i), image_id: String::new(), started_at: String::new(), files: vec![], config_path: None, restart: true, notes: vec![] })
            .collect(),
        attention: vec![],
    };
    let mut recs = vec![Record::Start {
        run_id: "r1".into(),
        time: "t0".into(),
        operator: "op".into(),
        options: RunOptions { canary: 1, wave: "50%".into(), max_errors: "0".into() },
        plan,
    }];
    recs.push(Record::Wave { time: "t".into(), index: 0, agents: vec![agent(0).id()] });
    recs.push(step(0, Step::Lock, Phase::Begin, None, None, None));
    recs.push(step(0, Step::Lock, Phase::Done, None, None, None));
    recs.push(step(0, Step::Backup, Phase::Done, Some("/c.toml"), Some("/b/c.toml"), Some("aa")));
    recs.push(step(0, Step::Write, Phase::Begin, Some("/e.sh"), None, Some("bb")));
    recs.push(step(0, Step::Write, Phase::Done, Some("/e.sh"), Some("/b/e.sh"), Some("cc")));
    recs.push(step(0, Step::Restart, Phase::Begin, None, None, None));
    let v = RunView::from_records(&recs).unwrap();
    let p = &v.agents[&agent(0).id()];
    assert_eq!(p.in_flight, Some(Step::Restart), "a restart begun and never finished");
    assert!(p.has_done(Step::Write) && !p.has_done(Step::Restart));
    assert_eq!(p.backups.get("/c.toml").map(String::as_str), Some("/b/c.toml"));
    assert_eq!(p.written.get("/e.sh").map(String::as_str), Some("cc"));
    assert_eq!(v.state(false), RunState::Interrupted, "no end record and nobody running it");
    assert_eq!(v.state(true), RunState::Running);
    assert_eq!(v.untouched_or_unfinished().len(), 3);

    recs.push(step(0, Step::Restart, Phase::Done, None, None, None));
    recs.push(step(0, Step::Wait, Phase::Done, Some("/c.toml"), None, Some("dd")));
    recs.push(Record::Agent { time: "t".into(), agent: agent(0).id(), outcome: Outcome::Verified });
    recs.push(Record::Agent { time: "t".into(), agent: agent(1).id(), outcome: Outcome::Failed("restart: boom".into()) });
    recs.push(Record::State { time: "t".into(), state: RunState::Halted, detail: "1 failed".into() });
    let v = RunView::from_records(&recs).unwrap();
    assert_eq!(v.agents[&agent(0).id()].after_restart.get("/c.toml").map(String::as_str), Some("dd"));
    assert_eq!((v.count("verified"), v.count("failed")), (1, 1));
    assert_eq!(v.state(false), RunState::Halted);
    assert_eq!(v.untouched_or_unfinished(), vec![agent(2).id()]);
}

#[test]
fn torn_last_line_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("CODEX_FLEET_STATE_DIR", dir.path());
    let plan = Plan { format: 1, created: "t".into(), source: "s".into(), agents: vec![], attention: vec![] };
    let opts = RunOptions { canary: 1, wave: "25%".into(), max_errors: "0".into() };
    let j = codex_fleet::rollout::engine::start(&plan, &opts, "r-torn").unwrap();
    let path = j.path().to_path_buf();
    drop(j);
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"type\":\"wave\",\"ti").unwrap();
    let recs = codex_fleet::rollout::journal::read("r-torn").unwrap();
    assert_eq!(recs.len(), 1);
    assert!(codex_fleet::rollout::journal::list_runs().contains(&"r-torn".to_string()));
}

#[test]
fn operator_is_named_even_without_user_in_the_environment() {
    std::env::remove_var("USER");
    std::env::remove_var("LOGNAME");
    let op = codex_fleet::rollout::journal::operator();
    assert!(!op.starts_with("unknown"), "{op}");
    let me = unsafe { libc::geteuid() };
    let name = op.split('@').next().unwrap();
    if me == 0 {
        assert_eq!(name, "root", "{op}");
    } else {
        assert!(!name.is_empty(), "{op}");
    }
}

/// One derivation of a run's state, what it allows, and each agent's last outcome and reason.
#[test]
fn lifecycle_states_actions_and_agent_outcomes() {
    use codex_fleet::rollout::lifecycle::{agent_outcomes, allowed_actions, may_resume, status_with, AgentStanding, RunAction};
    let plan = Plan {
        format: 1,
        created: "t".into(),
        source: "test".into(),
        agents: (0..3)
            .map(|i| AgentPlan { agent: agent(i), image_id: String::new(), started_at: String::new(), files: vec![], config_path: None, restart: true, notes: vec![] })
            .collect(),
        attention: vec![],
    };
    let session = |action: &str| Record::Session { time: "t".into(), token: "tok".into(), pid: 1, operator: "op".into(), action: action.into() };
    let mut recs = vec![
        Record::Start { run_id: "r1".into(), time: "t0".into(), operator: "op".into(), options: RunOptions { canary: 1, wave: "1".into(), max_errors: "0".into() }, plan },
        session("apply"),
        Record::Wave { time: "t".into(), index: 0, agents: vec![agent(0).id()] },
        step(0, Step::Lock, Phase::Begin, None, None, None),
        step(0, Step::Lock, Phase::Done, None, None, None),
        Record::Agent { time: "t".into(), agent: agent(0).id(), outcome: Outcome::Verified },
        Record::State { time: "t".into(), state: RunState::Interrupted, detail: "paused after the canary (1 verified)".into() },
    ];
    let v = RunView::from_records(&recs).unwrap();
    let st = status_with(&v, false);
    assert_eq!(st.state, RunState::Interrupted);
    assert_eq!(st.detail, "paused after the canary (1 verified)");
    assert_eq!(st.actions(), [RunAction::Resume, RunAction::Rollback, RunAction::Unlock]);
    assert!(may_resume(&st, false).is_ok());
    assert_eq!(status_with(&v, true).state, RunState::Running, "held by a live process: running, whatever was recorded");
    assert!(status_with(&v, true).actions().is_empty());
    let o = agent_outcomes(&v);
    assert_eq!(o.iter().map(|o| o.outcome).collect::<Vec<_>>(), [AgentStanding::Verified, AgentStanding::NotReached, AgentStanding::NotReached]);
    assert_eq!(o[0].wave, Some(0));
    assert_eq!(o[1].reason.as_deref(), Some("the run stopped before its wave"));

    // Resumed: the pause is history; the second wave begins, one agent stops mid-step.
    recs.push(session("apply"));
    recs.push(Record::Wave { time: "t".into(), index: 1, agents: vec![agent(1).id()] });
    recs.push(step(1, Step::Lock, Phase::Begin, None, None, None));
    let v = RunView::from_records(&recs).unwrap();
    let st = status_with(&v, false);
    assert_eq!(st.state, RunState::Interrupted);
    assert!(!st.detail.contains("paused"), "{}", st.detail);
    let o = agent_outcomes(&v);
    assert_eq!(o[1].outcome, AgentStanding::Stopped);
    assert_eq!(o[1].reason.as_deref(), Some("the run stopped during its lock step"));

    // Done: only a rollback, no leftover of the pause; then rolled back: nothing.
    recs.push(Record::Agent { time: "t".into(), agent: agent(1).id(), outcome: Outcome::Failed("verify: boom".into()) });
    recs.push(Record::Agent { time: "t".into(), agent: agent(2).id(), outcome: Outcome::Verified });
    recs.push(Record::State { time: "t".into(), state: RunState::Done, detail: String::new() });
    let v = RunView::from_records(&recs).unwrap();
    let st = status_with(&v, false);
    assert_eq!((st.state, st.detail.as_str()), (RunState::Done, ""));
    assert_eq!(st.actions(), [RunAction::Rollback]);
    assert!(may_resume(&st, true).unwrap_err().contains("is done: there is nothing to resume"));
    assert_eq!(agent_outcomes(&v)[1].reason.as_deref(), Some("verify: boom"));
    recs.push(session("rollback"));
    recs.push(Record::Agent { time: "t".into(), agent: agent(0).id(), outcome: Outcome::RolledBack });
    let v = RunView::from_records(&recs).unwrap();
    let st = status_with(&v, false);
    assert_eq!(st.state, RunState::Done, "a rollback session does not erase the run's state");
    assert_eq!(st.actions(), [RunAction::Rollback, RunAction::Unlock], "a rollback begun: only finishing it");
    assert!(may_resume(&st, false).unwrap_err().contains("a rollback of run r1 has begun"));
    let o = agent_outcomes(&v);
    assert_eq!((o[0].outcome, o[0].applied), (AgentStanding::RolledBack, Some(AgentStanding::Verified)));
    recs.push(Record::State { time: "t".into(), state: RunState::RolledBack, detail: String::new() });
    assert!(status_with(&RunView::from_records(&recs).unwrap(), false).actions().is_empty());

    assert_eq!(allowed_actions(RunState::Halted), [RunAction::ContinueHalted, RunAction::Rollback, RunAction::Unlock]);
    assert!(allowed_actions(RunState::Running).is_empty());
}
