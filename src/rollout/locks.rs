//! Host locks left by runs of this machine's journal: which agents another run still holds.

use crate::plan::{AgentPlan, Plan};
use crate::rollout::journal::{list_runs, read as read_journal, Phase, Step};
use crate::rollout::view::RunView;

/// A host lock another run holds on an agent, as this machine's journal knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub agent: String,
    pub run_id: String,
    /// The operator of the run's last process (`user@host`).
    pub holder: String,
    /// The run's state (`running`, `interrupted`, `halted`, ...).
    pub state: String,
    /// The lock's reply was lost: it may or may not be held.
    pub maybe: bool,
}

/// Which agents a journal's records leave locked by its run: an agent whose last lock step
/// was taken (or got no answer) and not released since. Pure over the records.
pub fn locks_left(records: &[crate::rollout::journal::Record]) -> Vec<(String, bool)> {
    use crate::rollout::journal::Record;
    use std::collections::BTreeMap;
    // agent -> None: free; Some(false): held; Some(true): a lock asked for, no answer yet
    let mut held: BTreeMap<&str, Option<bool>> = BTreeMap::new();
    for r in records {
        if let Record::Step { agent, step, phase, .. } = r {
            let e = held.entry(agent.as_str()).or_insert(None);
            match (step, phase) {
                (Step::Lock, Phase::Begin) if e.is_none() => *e = Some(true),
                (Step::Lock, Phase::Done) => *e = Some(false),
                // refused (held by another run) or failed: this run did not get it
                (Step::Lock, Phase::Failed) if *e == Some(true) => *e = None,
                (Step::Unlock, Phase::Done) => *e = None,
                _ => {}
            }
        }
    }
    held.into_iter().filter_map(|(a, h)| h.map(|maybe| (a.to_string(), maybe))).collect()
}

/// The agents of `plan` that other runs in this machine's journal still hold a host lock on
/// (an aborted or interrupted run, one running in another terminal): the rollout would skip
/// them. Locks taken from other machines are not in this journal: the rollout's own lock step
/// still finds them (and skips those agents, naming the holder).
pub fn held_locks(plan: &Plan) -> Vec<Held> {
    use crate::rollout::journal::Record;
    let ids: std::collections::BTreeSet<String> = plan.agents.iter().map(|a: &AgentPlan| a.agent.id()).collect();
    let mut out = Vec::new();
    for run in list_runs() {
        let Ok(records) = read_journal(&run) else { continue };
        let Some(view) = RunView::from_records(&records) else { continue };
        let holder = records
            .iter()
            .rev()
            .find_map(|r| match r {
                Record::Session { operator, .. } => Some(operator.clone()),
                _ => None,
            })
            .unwrap_or_else(|| view.operator.clone());
        let state = crate::rollout::lifecycle::status(&view).state.as_str().to_string();
        for (agent, maybe) in locks_left(&records) {
            if ids.contains(&agent) {
                out.push(Held { agent, run_id: run.clone(), holder: holder.clone(), state: state.clone(), maybe });
            }
        }
    }
    out
}
