//! `apply`, `runs`, `rollback`: the mutating commands and the run history.
//!
//! Read-only and the no-terminal rule are enforced here, where the actions are dispatched,
//! before any source is even opened.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::fleet_cmds::open_and_scan;
use crate::present::summary_line;
use crate::rollout::locks::held_locks;
use crate::present::locks::held_text;
use super::output::table;
use super::{fail, source, GlobalArgs, EXIT_ATTENTION, EXIT_OK};
use crate::plan::{plan_opts as make_plan_opts, Plan};
use crate::rollout::engine::{self, CanaryVerified, EngineConfig, Event, GateDecision, Size};
use crate::rollout::lifecycle::{self, AgentOutcome, RunStatus};
use crate::rollout::options::clap_parsers;
use crate::rollout::journal::{list_runs, now, operator, read as read_journal, Journal, Outcome, Phase, RunOptions, RunState, Step};
use crate::rollout::view::RunView;
use crate::scan::scan as run_scan;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Execute exactly this saved plan (from `plan --out FILE`).
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    pub plan: Option<PathBuf>,
    /// Finish a run that was interrupted (a halted one only with --continue-halted).
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<String>,
    /// With --resume: go on with a run that halted (canary, error budget, unknown outcome),
    /// after reading why it halted.
    #[arg(long, requires = "resume")]
    pub continue_halted: bool,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Agents in the canary wave; a canary failure always halts.
    #[arg(long, default_value_t = 1, value_parser = clap_parsers::canary)]
    pub canary: usize,
    /// Wave size after the canary: N agents or P% of the planned agents (at least 1).
    #[arg(long, default_value = "25%", value_parser = clap_parsers::wave)]
    pub wave: String,
    /// Failures tolerated over the whole run (N or P% of planned agents) before halting.
    #[arg(long, default_value = "0", value_parser = clap_parsers::max_errors)]
    pub max_errors: String,
    /// Stop after the canary is verified and ask "continue?" on a terminal; with --yes or
    /// without a terminal, pause there: the run stays interrupted and resumable
    /// (`apply --resume RUN_ID`), or can be rolled back.
    #[arg(long)]
    pub pause_after_canary: bool,
    /// Apply only to these agents: HOST/CONTAINER, or a container name unique in the fleet
    /// (repeatable). A named agent that needs attention is refused (exit 2).
    #[arg(long = "agent", value_name = "SELECTOR", conflicts_with_all = ["plan", "resume"])]
    pub agents: Vec<String>,
    /// With --agent: apply to a named agent that needs attention anyway, when a config change
    /// is possible at all (its attention reason is printed first).
    #[arg(long, requires = "agents")]
    pub include_attention: bool,
    /// How long a restarted agent may take to run stably: seconds, or a duration (`90s`, `2m`),
    /// from 1 s to an hour.
    #[arg(long, default_value_t = 120, value_name = "SECONDS", value_parser = clap_parsers::restart_timeout)]
    pub stable_timeout: u64,
    /// In the confirmation, every line of every diff (default: agents grouped by identical
    /// change, the managed block folded to one line).
    #[arg(long)]
    pub full: bool,
}

/// `runs [RUN_ID]`.
#[derive(Debug, Args, Default)]
pub struct RunsArgs {
    /// One run in full: its state, what it allows, and each agent's last outcome and reason.
    #[arg(value_name = "RUN_ID")]
    pub run: Option<String>,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The run whose host locks to break (it must not be running anywhere).
    #[arg(long = "run", value_name = "RUN_ID")]
    pub run: String,
    /// Only these agents of the run: HOST_ID/CONTAINER, or a container name unique in the run
    /// (repeatable).
    #[arg(long = "agent", value_name = "SELECTOR")]
    pub agents: Vec<String>,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long)]
    pub yes: bool,
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

/// Progress on stderr. Agent ids, details and reasons quote host text: made terminal-safe.
fn print_event(e: Event) {
    use crate::term_safe::line as safe;
    let e = &e;
    match e {
        Event::Wave { index, agents } => eprintln!("wave {index}: {} agent(s)", agents.len()),
        Event::Step { agent, step, phase, detail } => {
            if *phase != "begin" || !detail.is_empty() {
                eprintln!("  {}: {} {phase} {}", safe(agent), step.as_str(), safe(detail));
            } else {
                eprintln!("  {}: {}", safe(agent), step.as_str());
            }
        }
        Event::Agent { agent, outcome } => match outcome.why() {
            Some(w) => eprintln!("  {}: {} ({})", safe(agent), outcome.word(), safe(w)),
            None => eprintln!("  {}: {}", safe(agent), outcome.word()),
        },
        Event::Halted { reason } => eprintln!("halted: {}", safe(reason)),
        Event::Paused { reason } => eprintln!("interrupted: {}", safe(reason)),
    }
}

/// The step lines of [`print_event`], plus one status line redrawn below them while the run goes
/// on (`apply RUN: wave 2 · 5/17 agent(s) done`) when stderr is a terminal and not `--json`.
struct EventPrinter {
    progress: super::progress::Progress,
    what: String,
    total: usize,
    /// (agents done, current wave)
    state: std::sync::Mutex<(usize, Option<usize>)>,
}

impl EventPrinter {
    fn new(g: &GlobalArgs, what: String, total: usize) -> EventPrinter {
        EventPrinter { progress: super::progress::Progress::new(g), what, total, state: std::sync::Mutex::new((0, None)) }
    }

    fn on(&self, e: Event) {
        let line = {
            let mut st = self.state.lock().unwrap();
            match &e {
                Event::Wave { index, .. } => st.1 = Some(*index),
                Event::Agent { .. } => st.0 += 1,
                _ => {}
            }
            let wave = st.1.map(|w| format!("wave {w} · ")).unwrap_or_default();
            format!("{}: {wave}{}/{} agent(s) done", self.what, st.0, self.total)
        };
        self.progress.clear();
        print_event(e);
        self.progress.set(&line);
    }
}

pub async fn apply(g: &GlobalArgs, a: &ApplyArgs) -> u8 {
    if let Err(e) = may_mutate(g, a.yes, "apply") {
        return fail(e);
    }
    if a.pause_after_canary && a.resume.is_none() && a.canary == 0 {
        return fail("refused: --pause-after-canary needs a canary (--canary 0 has none); nothing done");
    }
    // `planned`: the run's agents (the progress line counts them).
    let (run_id, journal, opts, planned) = match &a.resume {
        Some(id) => {
            // A run a live process holds is refused, naming it; a dead holder's is taken over.
            if let Err(e) = lifecycle::may_act(id, "resume") {
                return fail(e);
            }
            // The run's lock first: from here on no other process acts for it.
            let j = match open_journal(id) {
                Ok(j) => j,
                Err(e) => return fail(e),
            };
            let view = match read_journal(id).map_err(|e| e.to_string()).and_then(|r| RunView::from_records(&r).ok_or_else(|| "no start record".into())) {
                Ok(v) => v,
                Err(e) => return fail(format_args!("run {id}: {e}")),
            };
            // We hold its lock now: its state is what the journal says.
            if let Err(e) = lifecycle::may_resume(&lifecycle::status_with(&view, false), a.continue_halted) {
                return fail(e);
            }
            eprintln!("run {id}");
            (id.clone(), j, view.options.clone(), view.plan.agents.len())
        }
        None => {
            // What each agent's change means (effective values before), for the confirmation.
            let ctx;
            let mut plan: Plan = match &a.plan {
                // A saved plan is untrusted input: checked against a scan made now (saved_plan).
                Some(p) => {
                    let saved = match crate::saved_plan::load(p) {
                        Ok(plan) => plan,
                        Err(e) => return fail(e),
                    };
                    let (fleet, report) = match open_and_scan(g).await {
                        Ok(x) => x,
                        Err(e) => return fail(e),
                    };
                    ctx = crate::present::plan_view::contexts(&report);
                    match crate::saved_plan::check(saved, &fleet.describe(), &report) {
                        Ok(plan) => plan,
                        Err(e) => return fail(format_args!("{}: {e}; nothing written", p.display())),
                    }
                }
                None => {
                    let (fleet, report) = match open_and_scan(g).await {
                        Ok(x) => x,
                        Err(e) => return fail(e),
                    };
                    ctx = crate::present::plan_view::contexts(&report);
                    let ids: Vec<String> = match super::fleet_cmds::select(&report, &a.agents) {
                        Ok(v) => v.iter().map(|x| x.id()).collect(),
                        Err(e) => return fail(e),
                    };
                    let plan = make_plan_opts(&report, &ids, a.include_attention, &fleet.describe(), &now());
                    // An agent named on purpose that needs attention is refused, not skipped
                    // quietly (nor restarted for nothing): the whole command, nothing done.
                    if !ids.is_empty() && !plan.attention.is_empty() {
                        let why: Vec<String> = plan
                            .attention
                            .iter()
                            .map(|x| format!("  {}: {}", x.agent.id(), x.reason))
                            .collect();
                        let hint = if a.include_attention {
                            "no config change can cure them"
                        } else {
                            "apply --include-attention applies the config fix to them anyway, where one is possible"
                        };
                        return fail(format_args!(
                            "refused: {} named agent(s) need attention; nothing done ({hint}):\n{}",
                            plan.attention.len(),
                            why.join("\n")
                        ));
                    }
                    if a.include_attention {
                        for ap in &plan.agents {
                            if let Some(r) = report.find(&ap.agent.id()).and_then(|x| attention_note(x)) {
                                eprintln!("{}: needs attention ({}); applied anyway (--include-attention)", ap.agent.id(), crate::term_safe::line(&r));
                            }
                        }
                    }
                    plan
                }
            };
            let held = held_locks(&plan);
            // A saved plan applied again: its agents already verified by an earlier run (not
            // rolled back) are named and left alone.
            let before = plan.agents.len();
            for (id, by) in already_applied(&plan) {
                eprintln!("{id}: already applied by run {by}");
                plan.agents.retain(|ap| ap.agent.id() != id);
            }
            if plan.agents.is_empty() {
                if before > 0 {
                    eprintln!("nothing to apply: every agent of this plan was already applied");
                } else {
                    eprintln!("nothing to apply: {} agent(s) need attention", plan.attention.len());
                }
                return EXIT_OK;
            }
            if !a.yes {
                // Grouped and folded unless --full (grouped_lines makes host text terminal-safe).
                for l in crate::present::plan_view::grouped_lines(&plan, &crate::present::plan_view::lookup(&ctx), a.full) {
                    eprintln!("{l}");
                }
            }
            // Agents another run still holds are skipped by the rollout: said before it starts.
            eprint!("{}", crate::term_safe::text(&held_text(&held)));
            if !a.yes {
                let held_note = if held.is_empty() { String::new() } else { format!(", {} held by another run", held.len()) };
                if !confirm(&format!(
                    "Apply to {} agent(s) (canary {}, waves of {}, max errors {}, restart timeout {} s{held_note})?",
                    plan.agents.len(),
                    a.canary,
                    a.wave,
                    a.max_errors,
                    a.stable_timeout
                )) {
                    return fail("not confirmed; nothing changed");
                }
            }
            let run_id = Journal::new_run_id();
            eprintln!("run {run_id}");
            let opts = RunOptions { canary: a.canary, wave: a.wave.clone(), max_errors: a.max_errors.clone() };
            match engine::start(&plan, &opts, &run_id) {
                Ok(j) => (run_id, j, opts, plan.agents.len()),
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
    let printer = EventPrinter::new(g, format!("apply {run_id}"), planned);
    // The gate after the canary: asked on a terminal, else (or with --yes) a pause.
    let ask = !a.yes && std::io::stdin().is_terminal();
    let gate = |c: CanaryVerified| -> futures::future::BoxFuture<'static, GateDecision> {
        printer.progress.clear();
        if !ask {
            return engine::pause_always(c);
        }
        let q = format!(
            "canary verified ({}): continue with the {} remaining wave(s), {} agent(s)?",
            c.agents.iter().map(|x| crate::term_safe::line(x)).collect::<Vec<_>>().join(", "),
            c.waves_left,
            c.agents_left
        );
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || confirm(&q)).await {
                Ok(true) => GateDecision::Continue,
                _ => GateDecision::Pause,
            }
        })
    };
    let gate_opt: Option<engine::CanaryGate<'_>> = if a.pause_after_canary { Some(&gate) } else { None };
    let result = engine::execute_gated(fleet.as_ref(), journal, &cfg, a.continue_halted, gate_opt, stop_rx, &|e| printer.on(e)).await;
    printer.progress.clear();
    let result = match result {
        Ok(r) => r,
        Err(e) => return fail(format_args!("run {run_id}: journal error: {e}")),
    };
    let after = run_scan(fleet.as_ref(), |_| {}).await;
    let summary = after.as_ref().map(|r| r.summary()).ok();
    if g.json {
        let actions: Vec<&str> = lifecycle::allowed_actions(result.state).iter().map(|x| x.as_str()).collect();
        let v = json!({
            "run_id": result.run_id,
            "state": result.state.as_str(),
            "detail": result.detail,
            "actions": actions,
            "waves": result.waves.iter().enumerate().map(|(i, w)| json!({
                "index": i,
                "agents": w.iter().map(|(id, o)| json!({ "id": id, "outcome": o })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "summary": summary,
        });
        super::output::print_json(&super::output::document("apply", v));
    } else {
        println!(
            "run {}: {} — {} verified, {} failed, {} skipped, {} unknown, {} untouched",
            result.run_id,
            result.state.as_str(),
            result.verified,
            result.failed,
            result.skipped,
            result.unknown,
            result.untouched.len()
        );
        if !result.detail.is_empty() {
            println!("{}: {}", result.state.as_str(), crate::term_safe::line(&result.detail));
        }
        for act in lifecycle::allowed_actions(result.state) {
            println!("  {}: {}", act.as_str(), act.command(&result.run_id));
        }
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

pub fn runs(g: &GlobalArgs, a: &RunsArgs) -> u8 {
    if let Some(id) = &a.run {
        return run_detail(g, id);
    }
    let mut views: Vec<RunView> = Vec::new();
    let mut bad = 0;
    for id in list_runs() {
        match read_journal(&id) {
            Ok(r) => views.extend(RunView::from_records(&r)),
            Err(e) => {
                bad += 1;
                eprintln!("codex-fleet: run {id}: {e}");
            }
        }
    }
    if g.json {
        let v = json!({ "runs": views.iter().map(|v| run_json(v, &lifecycle::status(v))).collect::<Vec<_>>() });
        super::output::print_json(&super::output::document("runs", v));
    } else {
        let rows: Vec<Vec<String>> = views
            .iter()
            .map(|v| {
                let mut agents = format!(
                    "{} planned: {} verified, {} failed, {} skipped, {} unknown, {} unfinished",
                    v.plan.agents.len(),
                    v.count("verified"),
                    v.count("failed"),
                    v.count("skipped"),
                    v.count("unknown"),
                    v.untouched_or_unfinished().len()
                );
                let rb = v.agents.values().filter(|p| p.rollback.is_some()).count();
                if rb > 0 {
                    agents.push_str(&format!(
                        "; rollback: {} rolled back, {} failed, {} had nothing to roll back",
                        v.rollback_count("rolled-back"),
                        v.rollback_count("rollback-failed"),
                        v.rollback_count("nothing-to-roll-back")
                    ));
                }
                let st = lifecycle::status(v);
                let next = st.actions().iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ");
                vec![v.run_id.clone(), st.state.as_str().to_string(), v.started.clone(), v.operator.clone(), agents, if next.is_empty() { "-".into() } else { next }]
            })
            .collect();
        print!("{}", table(&["RUN", "STATE", "STARTED", "OPERATOR", "AGENTS", "ALLOWS"], &rows));
    }
    if bad > 0 {
        super::EXIT_FAILURE
    } else {
        EXIT_OK
    }
}

/// One run of `runs --json` (and of the report's runs).
pub fn run_json(v: &RunView, st: &RunStatus) -> serde_json::Value {
    json!({
        "run_id": v.run_id,
        "state": st.state.as_str(),
        "actions": st.actions().iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        "started": v.started,
        "operator": v.operator,
        "agents": v.plan.agents.len(),
        "verified": v.count("verified"),
        "failed": v.count("failed"),
        "skipped": v.count("skipped"),
        "unknown": v.count("unknown"),
        "unfinished": v.untouched_or_unfinished(),
        "rollback": json!({
            "rolled_back": v.rollback_count("rolled-back"),
            "failed": v.rollback_count("rollback-failed"),
            "nothing_to_roll_back": v.rollback_count("nothing-to-roll-back"),
        }),
        "detail": st.detail,
    })
}

/// `runs RUN_ID`: the run's state, what it allows, each agent's last outcome and reason.
fn run_detail(g: &GlobalArgs, id: &str) -> u8 {
    let view = match read_journal(id) {
        Ok(r) => match RunView::from_records(&r) {
            Some(v) => v,
            None => return fail(format_args!("run {id}: no start record")),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail(format_args!("no run `{id}` in {}", crate::rollout::journal::state_dir().join("runs").display()))
        }
        Err(e) => return fail(format_args!("run {id}: {e}")),
    };
    let st = lifecycle::status(&view);
    let outcomes = lifecycle::agent_outcomes(&view);
    if g.json {
        let mut r = run_json(&view, &st);
        r["outcomes"] = json!(outcomes.iter().map(outcome_json).collect::<Vec<_>>());
        super::output::print_json(&super::output::document("runs", json!({ "runs": [r] })));
        return EXIT_OK;
    }
    use crate::term_safe::line as safe;
    println!("run {id}: {} ({})", st.state.as_str(), lifecycle::meaning(st.state));
    if !st.detail.is_empty() {
        println!("  why: {}", safe(&st.detail));
    }
    if let Some(h) = &st.holder {
        println!("  held by pid {} ({}), since {}", h.pid, safe(&h.operator), h.since);
    }
    println!(
        "  started {} by {} · canary {} · waves of {} · max errors {} · {} planned",
        view.started,
        safe(&view.operator),
        view.options.canary,
        view.options.wave,
        view.options.max_errors,
        view.plan.agents.len()
    );
    let acts = st.actions();
    if acts.is_empty() {
        println!("  allows: nothing");
    } else {
        for act in acts {
            println!("  allows {}: {}", act.as_str(), act.command(id));
        }
    }
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            let outcome = match o.applied {
                Some(ap) => format!("{} (was {})", o.outcome.as_str(), ap.as_str()),
                None => o.outcome.as_str().to_string(),
            };
            vec![
                safe(&o.id).into_owned(),
                o.wave.map(|w| if w == 0 && view.options.canary > 0 { "0 (canary)".to_string() } else { w.to_string() }).unwrap_or_else(|| "-".into()),
                outcome,
                o.reason.as_deref().map(|r| safe(r).into_owned()).unwrap_or_default(),
            ]
        })
        .collect();
    print!("{}", table(&["AGENT", "WAVE", "OUTCOME", "REASON"], &rows));
    EXIT_OK
}

fn outcome_json(o: &AgentOutcome) -> serde_json::Value {
    json!({
        "id": o.id,
        "wave": o.wave,
        "outcome": o.outcome.as_str(),
        "applied": o.applied.map(|x| x.as_str()),
        "reason": o.reason,
        "last_step": o.last_step.map(|x| x.as_str()),
    })
}

/// Open a run's journal to act for it, or say why not (held by whom, no such run, corrupt);
/// a torn last record cut off on the way is said on stderr.
pub fn open_journal(run_id: &str) -> Result<Journal, String> {
    let j = Journal::open(run_id).map_err(|e| e.to_string())?;
    if let Some(note) = &j.repaired {
        eprintln!("codex-fleet: {note}");
    }
    Ok(j)
}

/// Agents of `plan` that an earlier run of this very plan (same creation time and source) left
/// verified, and which run; runs rolled back since do not count.
fn already_applied(plan: &Plan) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for id in list_runs() {
        let Some(v) = read_journal(&id).ok().and_then(|r| RunView::from_records(&r)) else { continue };
        if v.plan.created != plan.created || v.plan.source != plan.source || v.recorded_state == Some(RunState::RolledBack) {
            continue;
        }
        for ap in &plan.agents {
            let aid = ap.agent.id();
            let p = v.agents.get(&aid);
            if p.is_some_and(|p| p.outcome == Some(Outcome::Verified) && p.rollback.is_none()) && !out.iter().any(|(x, _)| *x == aid) {
                out.push((aid, v.run_id.clone()));
            }
        }
    }
    out
}

pub async fn rollback(g: &GlobalArgs, a: &RollbackArgs) -> u8 {
    if let Err(e) = may_mutate(g, a.yes, "rollback") {
        return fail(e);
    }
    if let Err(e) = lifecycle::may_act(&a.run, "roll back") {
        return fail(e);
    }
    let journal = match open_journal(&a.run) {
        Ok(j) => j,
        Err(e) => return fail(e),
    };
    let view = match read_journal(&a.run).map_err(|e| e.to_string()).and_then(|r| RunView::from_records(&r).ok_or_else(|| "no start record".into())) {
        Ok(v) => v,
        Err(e) => return fail(format_args!("run {}: {e}", a.run)),
    };
    let touched: Vec<&String> = view.agents.iter().filter(|(_, p)| !p.done.is_empty() || p.in_flight.is_some()).map(|(id, _)| id).collect();
    let written = view.agents.values().filter(|p| !p.write_begun.is_empty() || p.restart_begun).count();
    if !a.yes {
        eprintln!(
            "Run {}: {written} agent(s) written to; {} more only locked or checked (nothing to roll back there).",
            a.run,
            touched.len() - written.min(touched.len())
        );
        eprintln!(
            "Each written agent: the files the run wrote are put back byte for byte; config.toml only if it still holds \
             what the run left there; then it is restarted (its boot emitter runs and may rewrite config.toml, which is \
             then put back once more)."
        );
        if !confirm(&format!("Roll back run {} on {written} agent(s)?", a.run)) {
            return fail("not confirmed; nothing changed");
        }
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
    let printer = EventPrinter::new(g, format!("rollback {}", a.run), view.plan.agents.len());
    let results = engine::rollback_journal(fleet.as_ref(), journal, &cfg, &|e| printer.on(e)).await;
    printer.progress.clear();
    let results = match results {
        Ok(r) => r,
        Err(e) => return fail(format_args!("run {}: {e}", a.run)),
    };
    let ok = results.iter().all(|(_, o)| o.is_rolled_back());
    if g.json {
        super::output::print_json(&super::output::document("rollback", json!({
            "run_id": a.run,
            "agents": results.iter().map(|(id, o)| json!({ "id": id, "outcome": o.word(), "detail": o })).collect::<Vec<_>>(),
        })));
    } else {
        if results.iter().all(|(_, o)| *o == Outcome::NothingToRollBack) {
            println!("run {}: nothing to roll back (it wrote nothing)", a.run);
        }
        for (id, o) in &results {
            let id = crate::term_safe::line(id);
            match (o, o.why()) {
                (Outcome::NothingToRollBack, _) => println!("{id}: nothing to roll back"),
                (_, Some(w)) => println!("{id}: {} ({})", o.word(), crate::term_safe::line(w)),
                (_, None) => println!("{id}: {}", o.word()),
            }
        }
    }
    if ok {
        EXIT_OK
    } else {
        EXIT_ATTENTION
    }
}

/// `unlock --run RUN_ID`: break the host locks a run left behind (its process died and its
/// agents cannot be reached by resume or rollback, or the operator gave up on it). Takes the
/// run's journal lock (so never while a process acts for it), journals and audits each release.
pub async fn unlock(g: &GlobalArgs, a: &UnlockArgs) -> u8 {
    if let Err(e) = may_mutate(g, a.yes, "unlock") {
        return fail(e);
    }
    if let Err(e) = lifecycle::may_act(&a.run, "unlock") {
        return fail(e);
    }
    let mut journal = match open_journal(&a.run) {
        Ok(j) => j,
        Err(e) => return fail(e),
    };
    let view = match read_journal(&a.run).map_err(|e| e.to_string()).and_then(|r| RunView::from_records(&r).ok_or_else(|| "no start record".into())) {
        Ok(v) => v,
        Err(e) => return fail(format_args!("run {}: {e}", a.run)),
    };
    let locked: Vec<&crate::plan::AgentPlan> = view
        .plan
        .agents
        .iter()
        .filter(|ap| view.agents.get(&ap.agent.id()).is_some_and(|p| p.done.contains(&Step::Lock) || p.in_flight == Some(Step::Lock)))
        .collect();
    // The run's agents, selected exactly (the journal knows hosts by id only).
    let cands: Vec<crate::select::Candidate> =
        view.plan.agents.iter().map(|ap| crate::select::Candidate { agent: &ap.agent, host_name: &ap.agent.host }).collect();
    let named: Vec<String> = match crate::select::resolve(&cands, &[], &a.agents) {
        Ok(ix) => ix.into_iter().map(|i| view.plan.agents[i].agent.id()).collect(),
        Err(e) => return fail(format_args!("run {}: {}", a.run, crate::select::describe(&e))),
    };
    let targets: Vec<&crate::plan::AgentPlan> =
        locked.into_iter().filter(|ap| a.agents.is_empty() || named.contains(&ap.agent.id())).collect();
    if targets.is_empty() {
        eprintln!("run {}: it never locked any agent (of those named); nothing to unlock", a.run);
        return EXIT_OK;
    }
    if !a.yes && !confirm(&format!("Break run {}'s host lock on {} agent(s)? No process may be acting for it anywhere.", a.run, targets.len())) {
        return fail("not confirmed; nothing changed");
    }
    let fleet = match source::open(&g.source).await {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    if let Err(e) = journal.session("unlock") {
        return fail(format_args!("run {}: {e}", a.run));
    }
    let holder = operator();
    let key = crate::fleet::LockKey {
        run_id: a.run.clone(),
        token: crate::rollout::journal::process_token().to_string(),
        holder: holder.clone(),
        takeover: vec!["*".into()],
    };
    let mut bad = 0;
    for ap in targets {
        let id = ap.agent.id();
        let r = fleet.unlock(&ap.agent, &key).await;
        let (phase, detail) = match &r {
            Ok(()) => (Phase::Done, format!("broken by {holder} (unlock --run)")),
            Err(e) => (Phase::Failed, e.to_string()),
        };
        let logged = journal.step(&ap.agent, Step::Unlock, phase, |d| d.detail = Some(detail.clone()));
        let _ = crate::rollout::journal::audit(&json!({
            "time": now(), "operator": holder, "run_id": a.run, "agent": id, "action": "unlock",
            "outcome": if r.is_ok() { "ok" } else { "failed" }, "detail": detail,
        }));
        if let Err(e) = logged {
            return fail(format_args!("run {}: {e}", a.run));
        }
        match r {
            Ok(()) => println!("{id}: unlocked"),
            Err(e) => {
                bad += 1;
                println!("{id}: not unlocked ({e})");
            }
        }
    }
    if bad == 0 {
        EXIT_OK
    } else {
        EXIT_ATTENTION
    }
}

/// Why an agent needs attention, from its scan (the plan's reason for it).
fn attention_note(a: &crate::scan::AgentState) -> Option<String> {
    let one = crate::scan::FleetReport {
        hosts: vec![crate::scan::HostState {
            host: crate::fleet::Host {
                id: a.read.agent.host.clone(),
                name: String::new(),
                location: String::new(),
                reachable: true,
                unreachable_reason: None,
                agent_version: None,
            },
            agents: vec![a.clone()],
        }],
    };
    crate::plan::plan(&one, &[], "", "").attention.into_iter().next().map(|x| x.reason)
}
