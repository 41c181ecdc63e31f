//! `scan`, `show`, `plan`, `verify`, `report`: read-only commands over a fleet.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use futures::StreamExt;
use serde_json::json;

use super::{fail, source, GlobalArgs, EXIT_ATTENTION, EXIT_OK};
use crate::fleet::Fleet;
use crate::plan::{plan as make_plan, Plan};
use crate::rollout::journal::now;
use crate::present::{agents_table, plan_text, safe_diff, summary_line, table, verdict_label, why_stalled};
use crate::scan::{agent_json, AgentState, FleetReport};
use crate::term_safe::{line as safe, text as safe_text};

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// HOST/CONTAINER (host id or name; container name, id or 12+ hex id prefix), or a
    /// container name unique in the fleet.
    pub agent: String,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Plan only these agents: HOST/CONTAINER, or a container name unique in the fleet
    /// (repeatable). A named agent needing attention stays under attention, with its reason.
    #[arg(long = "agent", value_name = "SELECTOR")]
    pub agents: Vec<String>,
    /// Save the plan (to execute exactly with `apply --plan FILE`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Every line of every diff, agent by agent (default: agents grouped by identical change,
    /// each group led by what it means, the managed block folded to one line).
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verify only these agents: HOST/CONTAINER, or a container name unique in the fleet
    /// (repeatable). The exit status is then about them alone.
    #[arg(long = "agent", value_name = "SELECTOR")]
    pub agents: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Md,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[arg(long, value_enum, default_value = "md")]
    pub format: Format,
    /// Write the report to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Open the source and scan it, with progress on stderr when it is a terminal.
pub async fn open_and_scan(g: &GlobalArgs) -> Result<(Box<dyn Fleet>, FleetReport), String> {
    // Read-only is the handle's: whatever the caller does with it, nothing can change.
    let fleet = crate::fleet::read_only::guard(source::open(&g.source).await?, g.read_only);
    let progress = super::progress::Progress::new(g);
    let mut n = 0usize;
    let report = crate::scan::scan_counting(fleet.as_ref(), |_, total| {
        n += 1;
        progress.set(&format!("scanning {}: {n}/{total} host(s) answered", fleet.describe()));
    })
    .await;
    progress.clear();
    let report = report.map_err(|e| format!("scan failed: {e}"))?;
    // No host at all is a wrong tag, region or filter, never "all healthy".
    if report.hosts.is_empty() {
        return Err(format!("no host found by {}: check the tag, regions, instance ids or filter", fleet.describe()));
    }
    Ok((fleet, report))
}

/// Resolve `--agent` selectors against a scan (`crate::select`): the agents they name, or
/// every selector's error (exit 2, nothing else done).
pub fn select<'a>(report: &'a FleetReport, sels: &[String]) -> Result<Vec<&'a AgentState>, String> {
    report.select(sels).map_err(|e| crate::select::describe(&e))
}

pub async fn scan(g: &GlobalArgs) -> u8 {
    let (_fleet, report) = match open_and_scan(g).await {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    if g.json {
        super::output::print_json(&super::output::document("scan", report.to_json()));
    } else {
        print!("{}", agents_table(&report));
        println!("\n{}\n{}", summary_line(&report), why_stalled(&report));
    }
    if report.all_healthy() {
        EXIT_OK
    } else {
        EXIT_ATTENTION
    }
}

fn show_text(a: &AgentState, plan: &Plan) -> String {
    let r = &a.read;
    let d = &a.diagnosis;
    let mut s = String::new();
    s.push_str(&format!("agent     {}\ncontainer {} ({})\nimage     {}\nstate     {} (restarts {}, started {})\nuser      {}\nverdict   {}\n",
        safe(&r.agent.id()), safe(&r.agent.name), safe(&r.agent.container_id), safe(&r.image), safe(&r.state), r.restart_count, safe(&r.started_at), safe(&r.user), verdict_label(d.verdict)));
    if let Some(e) = &d.effective {
        s.push_str(&format!(
            "effective sandbox_mode = {} ({}), approval_policy = {} ({}), network_access = {}\n",
            safe(&e.sandbox_mode.value),
            e.sandbox_mode.source.as_str(),
            safe(&e.approval_policy.value),
            e.approval_policy.source.as_str(),
            e.network_access
        ));
    }
    if !r.start_command.is_empty() {
        s.push_str(&format!("command   {}\n", r.start_command.iter().map(|a| safe(a)).collect::<Vec<_>>().join(" ")));
    }
    s.push_str("\nfindings\n");
    if d.findings.is_empty() {
        s.push_str("  (none)\n");
    }
    for f in &d.findings {
        s.push_str(&format!("  {:<22} {}\n", f.code.as_str(), safe(&f.evidence)));
    }
    match &r.probe {
        Ok(p) => {
            s.push_str("\nevidence\n");
            let line = |k: &str, v: String| format!("  {k:<22} {}\n", safe(&v));
            s.push_str(&line("uid/gid", format!("{:?}/{:?} {}", p.uid, p.gid, p.user.clone().unwrap_or_default())));
            s.push_str(&line("CapEff", p.cap_eff.clone().unwrap_or_else(|| "?".into())));
            s.push_str(&line("uid_map", p.uid_map.clone().unwrap_or_else(|| "?".into())));
            for (k, st) in [("unshare --user", &p.userns), ("unshare --map-root-user", &p.userns_map_root), ("bwrap probe", &p.bwrap), ("codex prompt-input", &p.prompt_input)] {
                let err = st.stderr.lines().next().unwrap_or("").to_string();
                s.push_str(&line(k, format!("{} rc={:?} {err}", st.outcome.as_str(), st.rc)));
            }
            s.push_str(&line("codex", format!("{} {}", p.codex_version.clone().unwrap_or_else(|| "absent".into()), p.codex_path.clone().unwrap_or_default())));
            s.push_str(&line("gitea (plain)", format!("{:?} {}", p.gitea_plain.status, p.gitea_plain.stderr.lines().next().unwrap_or(""))));
            s.push_str(&line("gitea (via codex)", format!("{:?} {}", p.gitea_codex.status, p.gitea_codex.stderr.lines().next().unwrap_or(""))));
            if let Some(c) = &p.config.redacted {
                s.push_str(&format!("\nconfig.toml ({}, sha256 {}), secrets redacted\n", safe(&p.config.path), safe(&p.config.sha256.clone().unwrap_or_default())));
                for (i, l) in c.lines().enumerate() {
                    s.push_str(&format!("  {:>4} | {}\n", i + 1, safe(l)));
                }
            }
            if p.emitter.sha256.is_some() {
                s.push_str(&format!("\nemitter {} sha256 {}\n", safe(&p.emitter.path), safe(&p.emitter.sha256.clone().unwrap_or_default())));
            }
            if let Some(h) = &p.sessions {
                let what = match (h.error, h.harm(std::time::SystemTime::now())) {
                    (true, _) => "unreadable".to_string(),
                    (false, Some(harm)) => harm,
                    (false, None) => format!("{} commands in 24 h, {} succeeded, no sandbox denial", h.commands, h.succeeded),
                };
                s.push_str(&format!("\ncodex session records  {what}\n"));
            }
            // codex's other layers, each named by the source it gives a setting
            for (src, f) in [("system", &p.system_config), ("requirements", &p.requirements), ("requirements", &p.managed_config), ("project", &p.project_config)] {
                if let Some((path, c)) = f.as_ref().and_then(|f| f.redacted.as_ref().map(|c| (&f.path, c))) {
                    s.push_str(&format!("\n{path} (layer `{src}`), secrets redacted\n"));
                    for (i, l) in c.lines().enumerate() {
                        s.push_str(&format!("  {:>4} | {l}\n", i + 1));
                    }
                }
            }
        }
        Err(e) => s.push_str(&format!("\nprobe failed: {}\n", safe(e))),
    }
    if !r.layer_changes.is_empty() {
        s.push_str(&format!("\nwritable layer\n  {}\n", r.layer_changes.iter().map(|l| safe(l)).collect::<Vec<_>>().join("\n  ")));
    }
    s.push_str("\nplan\n");
    if let Some(p) = plan.agents.first() {
        for f in &p.files {
            s.push_str(&format!("  {} ({})\n", safe(&f.path), if f.write { "written" } else { "regenerated at restart" }));
            s.push_str(&safe_diff(&f.diff));
        }
        s.push_str(&format!("  restart: {}\n", p.restart));
    } else if let Some(att) = plan.attention.first() {
        s.push_str(&format!("  needs attention: {}\n", safe(&att.reason)));
    } else {
        s.push_str("  nothing to change\n");
    }
    s
}

pub async fn show(g: &GlobalArgs, a: &ShowArgs) -> u8 {
    let (fleet, report) = match open_and_scan(g).await {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let agent = match select(&report, std::slice::from_ref(&a.agent)) {
        Ok(v) => v[0],
        Err(e) => return fail(e),
    };
    let Some(host) = report.host_of(agent) else {
        return fail(format_args!("agent `{}`: its host is not in the scan", safe(&a.agent)));
    };
    let one = FleetReport { hosts: vec![crate::scan::HostState { host: host.host.clone(), agents: vec![agent.clone()] }] };
    let plan = make_plan(&one, &[agent.id()], &fleet.describe(), &now());
    if g.json {
        let mut v = agent_json(agent);
        v["plan"] = plan.to_json();
        v["config_redacted"] = json!(agent.read.probe.as_ref().ok().and_then(|p| p.config.redacted.clone()));
        super::output::print_json(&super::output::document("show", v));
    } else {
        print!("{}", safe_text(&show_text(agent, &plan)));
    }
    EXIT_OK
}

pub async fn plan(g: &GlobalArgs, a: &PlanArgs) -> u8 {
    let (fleet, report) = match open_and_scan(g).await {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let ids: Vec<String> = match select(&report, &a.agents) {
        Ok(v) => v.iter().map(|x| x.id()).collect(),
        Err(e) => return fail(e),
    };
    let p = make_plan(&report, &ids, &fleet.describe(), &now());
    if let Some(out) = &a.out {
        let text = serde_json::to_string_pretty(&p).unwrap_or_default();
        if let Err(e) = std::fs::write(out, text) {
            return fail(format_args!("{}: cannot write: {e}", out.display()));
        }
        eprintln!("plan saved to {} (apply it exactly with `apply --plan {}`)", out.display(), out.display());
    }
    // Agents another run of this machine's journal still holds: the rollout would skip them.
    let held = crate::rollout::locks::held_locks(&p);
    if g.json {
        let mut v = p.to_json();
        v["held"] = json!(held
            .iter()
            .map(|h| json!({ "id": h.agent, "run_id": h.run_id, "holder": h.holder, "state": h.state, "maybe": h.maybe }))
            .collect::<Vec<_>>());
        super::output::print_json(&super::output::document("plan", v));
    } else {
        // Grouped and folded (grouped_lines makes host text terminal-safe); --full: every
        // line, agent by agent, as before.
        if a.full {
            print!("{}", safe_text(&plan_text(&p)));
        } else {
            let ctx = crate::present::plan_view::contexts(&report);
            for l in crate::present::plan_view::grouped_lines(&p, &crate::present::plan_view::lookup(&ctx), false) {
                println!("{l}");
            }
        }
        print!("{}", safe_text(&crate::present::locks::held_text(&held)));
    }
    if p.has_changes() {
        EXIT_ATTENTION
    } else {
        EXIT_OK
    }
}

/// How many boot assertions `verify` runs at once.
const VERIFY_CONCURRENCY: usize = 16;

pub async fn verify(g: &GlobalArgs, a: &VerifyArgs) -> u8 {
    let (fleet, report) = match open_and_scan(g).await {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let mut rows = Vec::new();
    let mut out = Vec::new();
    let mut all = true;
    let chosen: Vec<&AgentState> = if a.agents.is_empty() {
        report.agents().collect()
    } else {
        match select(&report, &a.agents) {
            Ok(v) => v,
            Err(e) => return fail(e),
        }
    };
    // Every agent's boot assertion is one round trip to its host: run them side by side (the
    // backend caps its own API calls), report in scan order.
    let fleet = &*fleet;
    let results: Vec<_> = futures::stream::iter(chosen.iter().map(|agent| fleet.verify(&agent.read.agent)))
        .buffered(VERIFY_CONCURRENCY)
        .collect()
        .await;
    for (agent, r) in chosen.iter().zip(results) {
        let (passed, detail) = match &r {
            Ok(v) => (v.passed, v.checks.iter().map(|c| format!("{}: {} {}", c.0, if c.1 { "ok" } else { "FAIL" }, c.2)).collect::<Vec<_>>().join("; ")),
            Err(e) => (false, e.to_string()),
        };
        all &= passed;
        rows.push(vec![agent.id(), if passed { "✓ pass".into() } else { "✗ fail".into() }, detail.clone()]);
        out.push(json!({ "id": agent.id(), "passed": passed, "detail": detail }));
    }
    let unreachable = report.hosts.iter().filter(|h| !h.host.reachable).count();
    // Unreachable hosts' agents were not verified: that counts when the whole fleet was asked
    // for, never against the agents named with --agent (all of them were verified).
    if a.agents.is_empty() {
        all &= unreachable == 0;
    }
    if g.json {
        super::output::print_json(&super::output::document("verify", json!({ "agents": out, "unreachable_hosts": unreachable })));
    } else {
        print!("{}", table(&["AGENT", "RESULT", "DETAIL"], &rows));
        if unreachable > 0 {
            println!("{unreachable} host(s) unreachable: their agents were not verified");
        }
    }
    if all {
        EXIT_OK
    } else {
        EXIT_ATTENTION
    }
}

pub async fn report(g: &GlobalArgs, a: &ReportArgs) -> u8 {
    let (_fleet, report) = match open_and_scan(g).await {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    // One report format for the CLI and the console's export.
    let format = match a.format {
        Format::Md => crate::present::Format::Md,
        Format::Json => crate::present::Format::Json,
        Format::Csv => crate::present::Format::Csv,
    };
    let runs = crate::rollout::summary::load_runs();
    let text = crate::present::report_file(&report, &runs, format, &now(), super::output::active_context());
    match &a.out {
        Some(p) => {
            if let Err(e) = std::fs::write(p, &text) {
                return fail(format_args!("{}: cannot write: {e}", p.display()));
            }
            eprintln!("report written to {}", p.display());
        }
        None => print!("{text}"),
    }
    EXIT_OK
}
