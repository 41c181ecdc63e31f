//! A run as the journal tells it: replaying the records gives each agent's progress, the
//! backups to roll back from, and the run's state. Pure over the records.

use std::collections::BTreeMap;

use serde::Serialize;

use super::journal::{Outcome, Phase, Record, RunOptions, RunState, Step};
use crate::plan::Plan;

#[derive(Debug, Clone, Default, Serialize)]
pub struct AgentProgress {
    /// Steps completed, in order.
    pub done: Vec<Step>,
    /// A step begun and not finished (the process died or was stopped there).
    pub in_flight: Option<Step>,
    /// The file the in-flight step was about (a write the process died in).
    pub in_flight_path: Option<String>,
    /// The run began restarting the agent (whether or not that finished).
    pub restart_begun: bool,
    /// path -> where the original was kept.
    pub backups: BTreeMap<String, String>,
    /// path -> sha256 of the kept original (from the backup step).
    pub backup_sha: BTreeMap<String, String>,
    /// Paths the run began writing (whether or not the write finished or was answered).
    pub write_begun: Vec<String>,
    /// path -> sha256 right after the run wrote it.
    pub written: BTreeMap<String, String>,
    /// path -> sha256 after the run's restart (what rollback expects to find).
    pub after_restart: BTreeMap<String, String>,
    /// How the run left the agent (`verified`, `failed`, `skipped`, `unknown`).
    pub outcome: Option<Outcome>,
    /// How the last rollback of the run left it (`rolled-back`, `rollback-failed`,
    /// `nothing-to-roll-back`): kept apart, so the run's own outcome is never erased.
    pub rollback: Option<Outcome>,
}

impl AgentProgress {
    pub fn has_done(&self, s: Step) -> bool {
        self.done.contains(&s)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub run_id: String,
    pub started: String,
    pub operator: String,
    pub options: RunOptions,
    pub plan: Plan,
    /// Agent id -> progress.
    pub agents: BTreeMap<String, AgentProgress>,
    pub waves: Vec<Vec<String>>,
    /// The last state recorded; `None` while running or after a crash.
    pub recorded_state: Option<RunState>,
    pub last_detail: String,
    /// The lock tokens of every process that acted for the run (`session` records), so that
    /// a later process takes over exactly their host locks.
    pub tokens: Vec<String>,
}

impl RunView {
    pub fn from_records(records: &[Record]) -> Option<RunView> {
        let Some(Record::Start { run_id, time, operator, options, plan }) = records.first() else {
            return None;
        };
        let mut v = RunView {
            run_id: run_id.clone(),
            started: time.clone(),
            operator: operator.clone(),
            options: options.clone(),
            plan: plan.clone(),
            agents: BTreeMap::new(),
            waves: Vec::new(),
            recorded_state: None,
            last_detail: String::new(),
            tokens: Vec::new(),
        };
        for r in &records[1..] {
            match r {
                Record::Start { .. } => {}
                Record::Wave { index, agents, .. } => {
                    if v.waves.len() <= *index {
                        v.waves.resize(index + 1, Vec::new());
                    }
                    v.waves[*index] = agents.clone();
                }
                Record::Step { agent, step, phase, path, backup, sha256, .. } => {
                    let a = v.agents.entry(agent.clone()).or_default();
                    match phase {
                        Phase::Begin => {
                            a.in_flight = Some(*step);
                            a.in_flight_path = path.clone();
                            a.restart_begun |= *step == Step::Restart;
                            if let (Step::Write, Some(p)) = (step, path) {
                                if !a.write_begun.contains(p) {
                                    a.write_begun.push(p.clone());
                                }
                            }
                        }
                        Phase::Failed => {
                            a.in_flight = None;
                            a.in_flight_path = None;
                        }
                        Phase::Done => {
                            a.in_flight = None;
                            a.in_flight_path = None;
                            if !a.done.contains(step) || matches!(step, Step::Backup | Step::Write | Step::Wait) {
                                a.done.push(*step);
                            }
                            if let (Some(p), Some(b)) = (path, backup) {
                                a.backups.entry(p.clone()).or_insert_with(|| b.clone());
                            }
                            if let (Some(p), Some(s)) = (path, sha256) {
                                match step {
                                    Step::Write => {
                                        a.written.insert(p.clone(), s.clone());
                                    }
                                    Step::Wait => {
                                        a.after_restart.insert(p.clone(), s.clone());
                                    }
                                    Step::Backup => {
                                        a.backup_sha.entry(p.clone()).or_insert_with(|| s.clone());
                                    }
                                    _ => {}
                                }
                            }
                        }
                    }
                }
                Record::Agent { agent, outcome, .. } => {
                    let a = v.agents.entry(agent.clone()).or_default();
                    match outcome {
                        Outcome::RolledBack | Outcome::RollbackFailed(_) | Outcome::NothingToRollBack => a.rollback = Some(outcome.clone()),
                        _ => a.outcome = Some(outcome.clone()),
                    }
                }
                Record::Session { token, action, .. } => {
                    if !v.tokens.contains(token) {
                        v.tokens.push(token.clone());
                    }
                    // A process took the run up again (resume): what the last one recorded
                    // (paused, halted) is history; what this one records, or its death, decides.
                    if action == "apply" {
                        v.recorded_state = None;
                        v.last_detail.clear();
                    }
                }
                Record::State { state, detail, .. } => {
                    v.recorded_state = Some(*state);
                    v.last_detail = detail.clone();
                }
            }
        }
        Some(v)
    }

    /// The state to show, the one derivation ([`super::lifecycle`] gives what each state allows): running while
    /// held, whatever was recorded before; otherwise what the last process recorded, or
    /// `interrupted` when it recorded nothing (it died or was stopped).
    pub fn state(&self, live: bool) -> RunState {
        if live {
            return RunState::Running;
        }
        match self.recorded_state {
            None | Some(RunState::Running) => RunState::Interrupted,
            Some(s) => s,
        }
    }

    /// Agents the run itself left with this outcome word (a rollback never changes these).
    pub fn count(&self, word: &str) -> usize {
        self.agents.values().filter(|a| a.outcome.as_ref().is_some_and(|o| o.word() == word)).count()
    }

    /// Agents the rollback left with this outcome word.
    pub fn rollback_count(&self, word: &str) -> usize {
        self.agents.values().filter(|a| a.rollback.as_ref().is_some_and(|o| o.word() == word)).count()
    }

    /// Planned agents with no outcome yet, or an unknown one (still to be finished).
    pub fn untouched_or_unfinished(&self) -> Vec<String> {
        self.plan
            .agents
            .iter()
            .map(|a| a.agent.id())
            .filter(|id| self.agents.get(id).is_none_or(|p| p.outcome.is_none() || matches!(p.outcome, Some(Outcome::Unknown(_)))))
            .collect()
    }

    /// Agents whose last step that changes them got no answer.
    pub fn unknown(&self) -> Vec<String> {
        self.agents.iter().filter(|(_, p)| matches!(p.outcome, Some(Outcome::Unknown(_)))).map(|(id, _)| id.clone()).collect()
    }
}
