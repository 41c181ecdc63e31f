//! `apply`, `runs`, `rollback`: the mutating commands and the run history.
//!
//! Read-only and the no-terminal rule are enforced here, where the actions are dispatched,
//! before any source is even opened.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::fleet_cmds::{open_and_scan, plan_text, summary_line};
use super::output::table;
use super::{fail, source, GlobalArgs, EXIT_ATTENTION, EXIT_OK};
use crate::plan::{plan as make_plan, Plan};
use crate::rollout::engine::{self, EngineConfig, Event, Size};
use crate::rollout::journal::{list_runs, now, operator, read as read_journal, Journal, RunOptions};
use crate::rollout::view::RunView;
use crate::scan::scan as run_scan;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Execute exactly this saved plan (from `plan --out FILE`).
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    pub plan: Option<PathBuf>,
    /// Finish a run that was interrupted.
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<String>,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Agents in the canary wave; a canary failure always halts.
    #[arg(long, default_value_t = 1)]
    pub canary: usize,
    /// Wave size after the canary: N agents or P% of the planned agents.
    #[arg(long, default_value = "25%", value_parser = parse_size)]
    pub wave: String,
    /// Failures tolerated over the whole run (N or P% of planned agents) before halting.
    #[arg(long, default_value = "0", value_parser = parse_size)]
    pub max_errors: String,
    /// Apply only to these agents (id or container name; repeatable).
    #[arg(long = "agent", conflicts_with_all = ["plan", "resume"])]
    pub agents: Vec<String>,
    /// How long a restarted agent may take to run stably.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub stable_timeout: u64,
}

fn parse_size(s: &str) -> Result<String, String> {
    Size::parse(s).map(|_| s.to_string())
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The run to roll back.
    #[arg(long = "run", value_name = "RUN_ID")]
    pub run: String,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long)]
    pub yes: bool,
}

/// The guard every mutating command passes first.
fn may_mutate(g: &GlobalArgs, yes: bool, what: &str) -> Result<(), String> {
    if g.read_only {
        return Err(format!("refused: --read-only forbids {what}"));
    }
    if !yes && !std::io::stdin().is_terminal() {
        return Err(format!("refused: {what} needs --yes when there is no terminal to confirm on"));
    }
    Ok(())
}

/// `[y/N]` on the terminal.
fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes")
}

fn print_event(e: Event) {
    let e = &e;
    match e {
        Event::Wave { index, agents } => eprintln!("wave {index}: {} agent(s)", agents.len()),
        Event::Step { agent, step, phase, detail } => {
            if *phase != "begin" || !detail.is_empty() {
                eprintln!("  {agent}: {} {phase} {detail}", step.as_str());
            } else {
                eprintln!("  {agent}: {}", step.as_str());
            }
        }
        Event::Agent { agent, outcome } => {
            use crate::rollout::journal::Outcome as O;
            match outcome {
                O::Failed(w) | O::Skipped(w) | O::RollbackFailed(w) => eprintln!("  {agent}: {} ({w})", outcome.word()),
                O::Verified | O::RolledBack => eprintln!("  {agent}: {}", outcome.word()),
            }
        }
        Event::Halted { reason } => eprintln!("halted: {reason}"),
    }
}

pub async fn apply(g: &GlobalArgs, a: &ApplyArgs) -> u8 {
    if let Err(e) = may_mutate(g, a.yes, "apply") {
        return fail(e);
    }
    let (run_id, journal, opts) = match &a.resume {
        Some(id) => {
            let view = match read_journal(id).ok().and_then(|r| RunView::from_records(&r)) {
                Some(v) => v,
                None => return fail(format_args!("no run `{id}` in {}", crate::rollout::journal::state_dir().display())),
            };
            if crate::rollout::is_live(id) {
                return fail(format_args!("run {id} is being executed by a live process"));
            }
            eprintln!("run {id}");
            let j = match Journal::open(id) {
                Ok(j) => j,
                Err(e) => return fail(format_args!("cannot open the journal of {id}: {e}")),
            };
            (id.clone(), j, view.options.clone())
        }
        None => {
            let run_id = Journal::new_run_id();
            eprintln!("run {run_id}");
            let plan: Plan = match &a.plan {
                Some(p) => match std::fs::read_to_string(p).map_err(|e| e.to_string()).and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string())) {
                    Ok(plan) => plan,
                    Err(e) => return fail(format_args!("{}: not a saved plan: {e}", p.display())),
                },
                None => {
                    let (fleet, report) = match open_and_scan(g).await {
                        Ok(x) => x,
                        Err(e) => return fail(e),
                    };
                    for sel in &a.agents {
                        if report.find(sel).is_none() {
                            return fail(format_args!("no agent `{sel}`"));
                        }
                    }
                    make_plan(&report, &a.agents, &fleet.describe(), &now())
                }
            };
            if plan.agents.is_empty() {
                eprintln!("nothing to apply: {} agent(s) need attention", plan.attention.len());
                return EXIT_OK;
            }
            if !a.yes {
                eprint!("{}", plan_text(&plan));
                if !confirm(&format!("Apply to {} agent(s) (canary {}, waves of {})?", plan.agents.len(), a.canary, a.wave)) {
                    return fail("not confirmed; nothing changed");
                }
            }
            let opts = RunOptions { canary: a.canary, wave: a.wave.clone(), max_errors: a.max_errors.clone() };
            match engine::start(&plan, &opts, &run_id) {
                Ok(j) => (run_id, j, opts),
                Err(e) => return fail(format_args!("cannot create the run journal: {e}")),
            }
        }
    };
    let fleet = match source::open(&g.source).await {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let cfg = EngineConfig {
        canary: opts.canary,
        wave: Size::parse(&opts.wave).unwrap_or(Size::Percent(25)),
        max_errors: Size::parse(&opts.max_errors).unwrap_or(Size::Count(0)),
        stable_timeout: Duration::from_secs(a.stable_timeout),
        holder: operator(),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping after the steps in flight; the run stays resumable");
            let _ = stop_tx.send(true);
        }
    });
    let result = match engine::execute(fleet.as_ref(), journal, &cfg, stop_rx, &print_event).await {
        Ok(r) => r,
        Err(e) => return fail(format_args!("run {run_id}: journal error: {e}")),
    };
    let after = run_scan(fleet.as_ref(), |_| {}).await;
    let summary = after.as_ref().map(|r| r.summary()).ok();
    if g.json {
        let v = json!({
            "run_id": result.run_id,
            "state": result.state.as_str(),
            "waves": result.waves.iter().enumerate().map(|(i, w)| json!({
                "index": i,
                "agents": w.iter().map(|(id, o)| json!({ "id": id, "outcome": o })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "summary": summary,
        });
        println!("{}", serde_json::to_string_pretty(&super::output::document("apply", v)).unwrap_or_default());
    } else {
        println!(
            "run {}: {} — {} verified, {} failed, {} skipped, {} untouched",
            result.run_id,
            result.state.as_str(),
            result.verified,
            result.failed,
            result.skipped,
            result.untouched.len()
        );
        if let Ok(r) = &after {
            println!("{}", summary_line(r));
        }
    }
    if result.all_verified() {
        EXIT_OK
    } else {
        EXIT_ATTENTION
    }
}

pub fn runs(g: &GlobalArgs) -> u8 {
    let views: Vec<RunView> = list_runs().iter().filter_map(|id| read_journal(id).ok().and_then(|r| RunView::from_records(&r))).collect();
    if g.json {
        let v = json!({ "runs": views.iter().map(|v| json!({
            "run_id": v.run_id,
            "state": v.state(crate::rollout::is_live(&v.run_id)).as_str(),
            "started": v.started,
            "operator": v.operator,
            "agents": v.plan.agents.len(),
            "verified": v.count("verified"),
            "failed": v.count("failed"),
            "skipped": v.count("skipped"),
            "unfinished": v.untouched_or_unfinished(),
        })).collect::<Vec<_>>() });
        println!("{}", serde_json::to_string_pretty(&super::output::document("runs", v)).unwrap_or_default());
    } else {
        let rows: Vec<Vec<String>> = views
            .iter()
            .map(|v| {
                vec![
                    v.run_id.clone(),
                    v.state(crate::rollout::is_live(&v.run_id)).as_str().to_string(),
                    v.started.clone(),
                    v.operator.clone(),
                    format!("{} planned: {} verified, {} failed, {} skipped, {} unfinished", v.plan.agents.len(), v.count("verified"), v.count("failed"), v.count("skipped"), v.untouched_or_unfinished().len()),
                ]
            })
            .collect();
        print!("{}", table(&["RUN", "STATE", "STARTED", "OPERATOR", "AGENTS"], &rows));
    }
    EXIT_OK
}

pub async fn rollback(g: &GlobalArgs, a: &RollbackArgs) -> u8 {
    if let Err(e) = may_mutate(g, a.yes, "rollback") {
        return fail(e);
    }
    let Some(view) = read_journal(&a.run).ok().and_then(|r| RunView::from_records(&r)) else {
        return fail(format_args!("no run `{}`", a.run));
    };
    if crate::rollout::is_live(&a.run) {
        return fail(format_args!("run {} is being executed by a live process", a.run));
    }
    let touched = view.agents.values().filter(|p| !p.done.is_empty() || p.in_flight.is_some()).count();
    if !a.yes && !confirm(&format!("Roll back run {} on {touched} agent(s)?", a.run)) {
        return fail("not confirmed; nothing changed");
    }
    let fleet = match source::open(&g.source).await {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let cfg = EngineConfig {
        canary: 0,
        wave: Size::Percent(100),
        max_errors: Size::Count(0),
        stable_timeout: Duration::from_secs(120),
        holder: operator(),
    };
    let results = match engine::rollback(fleet.as_ref(), &a.run, &cfg, &print_event).await {
        Ok(r) => r,
        Err(e) => return fail(format_args!("run {}: {e}", a.run)),
    };
    let ok = results.iter().all(|(_, o)| *o == crate::rollout::journal::Outcome::RolledBack);
    if g.json {
        println!("{}", serde_json::to_string_pretty(&super::output::document("rollback", json!({
            "run_id": a.run,
            "agents": results.iter().map(|(id, o)| json!({ "id": id, "outcome": o.word(), "detail": o })).collect::<Vec<_>>(),
        }))).unwrap_or_default());
    } else {
        for (id, o) in &results {
            println!("{id}: {}", o.word());
        }
    }
    if ok {
        EXIT_OK
    } else {
        EXIT_ATTENTION
    }
}
