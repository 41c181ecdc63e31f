//! One line per run of the journal, as the audit view and the report list them.

use crate::rollout::journal::{list_runs, read as read_journal};
use crate::rollout::view::RunView;

/// One run in the journal, as the audit view lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub run_id: String,
    pub state: String,
    pub started: String,
    pub operator: String,
    pub agents: usize,
    pub verified: usize,
    pub failed: usize,
    pub skipped: usize,
    pub unfinished: usize,
}

/// Every run in the journal, newest first.
pub fn load_runs() -> Vec<RunSummary> {
    list_runs()
        .iter()
        .filter_map(|id| read_journal(id).ok().and_then(|r| RunView::from_records(&r)))
        .map(|v| RunSummary {
            state: v.state(crate::rollout::is_live(&v.run_id)).as_str().to_string(),
            started: v.started.clone(),
            operator: v.operator.clone(),
            agents: v.plan.agents.len(),
            verified: v.count("verified"),
            failed: v.count("failed"),
            skipped: v.count("skipped"),
            unfinished: v.untouched_or_unfinished().len(),
            run_id: v.run_id,
        })
        .collect()
}
