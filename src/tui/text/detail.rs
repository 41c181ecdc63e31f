//! The agent detail's lines: identity, effective permissions, findings with their evidence
//! verbatim, the probe's steps, config.toml with the lines findings point at.

use std::sync::LazyLock;

use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use regex::Regex;

use super::theme::Theme;
use super::wrap::{safe_line, wrap_line};
use crate::diagnose::Code;
use crate::fleet::VerifyReport;
use crate::present::verdict_label;
use crate::scan::{AgentState, HostState};

static LINE_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bline (\d+)").unwrap());

fn kv(t: &Theme, k: &str, v: impl Into<String>) -> Line<'static> {
    Line::from(vec![Span::styled(format!("  {k:<26}"), t.dim()), Span::raw(v.into())])
}

fn section(t: &Theme, s: &str) -> Line<'static> {
    Line::from(Span::styled(s.to_string(), t.bold().add_modifier(Modifier::UNDERLINED)))
}

/// The agent detail as lines: what the Detail view draws, and what bounds its scrolling.
/// `marked`: the agent is marked; `verify`: its last boot assertion; `columns`: the
/// terminal's width (long lines wrap under their value).
pub fn detail_lines(
    theme: Theme,
    marked: bool,
    verify: Option<&Result<VerifyReport, String>>,
    columns: u16,
    h: &HostState,
    a: &AgentState,
) -> Vec<Line<'static>> {
    let t = theme;
    let r = &a.read;
    let d = &a.diagnosis;
    let mut out: Vec<Line<'static>> = Vec::new();
    out.push(Line::from(vec![
        Span::styled(format!("{} ", a.id()), t.bold()),
        Span::styled(verdict_label(d.verdict), t.verdict(d.verdict)),
        Span::raw(if marked { "  ● marked" } else { "" }),
    ]));
    out.push(kv(&t, "host", format!("{} ({}, {})", h.host.name, h.host.id, h.host.location)));
    out.push(kv(&t, "container", format!("{} ({})", r.agent.name, r.agent.container_id.get(..12).unwrap_or(&r.agent.container_id))));
    out.push(kv(&t, "image", r.image.clone()));
    out.push(kv(&t, "state", format!("{} (restarts {}, started {})", r.state, r.restart_count, r.started_at)));
    out.push(kv(&t, "agent user", r.user.clone()));
    match &d.effective {
        Some(e) => {
            out.push(kv(&t, "effective sandbox_mode", format!("{} (from {})", e.sandbox_mode.value, e.sandbox_mode.source.as_str())));
            out.push(kv(&t, "effective approval_policy", format!("{} (from {})", e.approval_policy.value, e.approval_policy.source.as_str())));
            out.push(kv(&t, "network_access", e.network_access.to_string()));
        }
        None => out.push(kv(&t, "effective permissions", "unknown (config does not parse, or no probe)")),
    }
    if !r.start_command.is_empty() {
        out.push(kv(&t, "command", r.start_command.join(" ")));
    }
    out.push(Line::raw(""));
    out.push(section(&t, "Findings (evidence verbatim)"));
    if d.findings.is_empty() {
        out.push(Line::styled("  (none)", t.ok()));
    }
    for fi in &d.findings {
        out.push(Line::from(vec![
            Span::styled(format!("  {:<24}", fi.code.as_str()), t.bold()),
            Span::raw(fi.evidence.clone()),
        ]));
    }
    out.push(Line::raw(""));
    out.push(section(&t, "Probe evidence"));
    match &r.probe {
        Ok(p) => {
            let step = |s: &crate::probe::Step| {
                let err = s.stderr.lines().next().unwrap_or("").to_string();
                let rc = s.rc.map(|c| format!(" rc={c}")).unwrap_or_default();
                Line::from(vec![
                    Span::styled(s.outcome.as_str().to_string(), t.outcome(s.outcome)),
                    Span::raw(format!("{rc} {err}")),
                ])
            };
            let with_key = |k: &str, mut l: Line<'static>| {
                l.spans.insert(0, Span::styled(format!("  {k:<26}"), t.dim()));
                l
            };
            out.push(kv(&t, "uid/gid", format!("{}/{} {}", opt(p.uid), opt(p.gid), p.user.clone().unwrap_or_default())));
            out.push(kv(&t, "CapEff", p.cap_eff.clone().unwrap_or_else(|| "?".into())));
            out.push(kv(&t, "uid_map", p.uid_map.clone().unwrap_or_else(|| "?".into())));
            out.push(with_key("unshare --user", step(&p.userns)));
            out.push(with_key("unshare --map-root-user", step(&p.userns_map_root)));
            out.push(with_key("bwrap (codex's probe)", step(&p.bwrap)));
            out.push(kv(&t, "bwrap path", p.bwrap_path.clone().unwrap_or_else(|| "none".into())));
            out.push(kv(
                &t,
                "codex",
                format!("{} {}", p.codex_version.clone().unwrap_or_else(|| "absent".into()), p.codex_path.clone().unwrap_or_default()),
            ));
            out.push(with_key("codex debug prompt-input", step(&p.prompt_input)));
            if let Some(e) = &p.effective {
                out.push(kv(
                    &t,
                    "codex says",
                    format!(
                        "sandbox_mode={} approval_policy={} network_access={}",
                        e.sandbox_mode.clone().unwrap_or_else(|| "?".into()),
                        e.approval_policy.clone().unwrap_or_else(|| "?".into()),
                        e.network_access.map(|b| b.to_string()).unwrap_or_else(|| "?".into())
                    ),
                ));
            }
            let http = |hh: &crate::probe::Http| {
                let (s, st) = match hh.status {
                    Some(200) => ("200".to_string(), t.ok()),
                    Some(c) => (c.to_string(), t.error()),
                    None => ("no answer".to_string(), t.error()),
                };
                Line::from(vec![Span::styled(s, st), Span::raw(format!(" {}", hh.stderr.lines().next().unwrap_or("")))])
            };
            out.push(with_key("gitea (plain)", http(&p.gitea_plain)));
            out.push(with_key("gitea (through codex)", http(&p.gitea_codex)));
            out.push(Line::raw(""));
            config_lines(&t, d, p, &mut out);
            out.push(Line::raw(""));
            out.push(section(&t, "Emitter and image"));
            if p.emitter.sha256.is_some() {
                out.push(kv(
                    &t,
                    "boot emitter",
                    format!("{} (sha256 {})", p.emitter.path, short(p.emitter.sha256.as_deref())),
                ));
                let state = d
                    .evidence(Code::EmitterNotIdempotent)
                    .map(|e| e.split_once(": ").map(|x| x.1).unwrap_or(e).to_string())
                    .unwrap_or_else(|| "emits the fix idempotently".into());
                out.push(kv(&t, "emitter state", state));
            } else {
                out.push(kv(&t, "boot emitter", "none in this container: config.toml is what the fix writes"));
            }
        }
        Err(e) => {
            out.push(Line::from(vec![Span::styled("  probe failed: ", t.error()), Span::raw(e.clone())]));
            out.push(Line::raw(""));
            out.push(section(&t, "Emitter and image"));
        }
    }
    out.push(kv(&t, "image", r.image.clone()));
    match d.evidence(Code::FixNotInImage) {
        Some(e) => out.push(Line::from(vec![
            Span::styled(format!("  {:<26}", "image/layer"), t.dim()),
            Span::styled("fix-not-in-image ", t.warn()),
            Span::raw(e.to_string()),
        ])),
        None if d.effective.as_ref().is_some_and(|e| e.is_fixed()) => {
            out.push(kv(&t, "image/layer", "the fix survives a re-provision"))
        }
        None => out.push(kv(&t, "image/layer", "not fixed yet")),
    }
    if !r.layer_changes.is_empty() {
        out.push(kv(&t, "writable layer", r.layer_changes.join("  ")));
    }
    if let Some(v) = verify {
        out.push(Line::raw(""));
        out.push(section(&t, "Verify (boot assertion)"));
        match v {
            Ok(v) => {
                for (name, ok, ev) in &v.checks {
                    let (g, st) = if *ok { ("✓ pass", t.ok()) } else { ("✗ fail", t.error()) };
                    out.push(Line::from(vec![
                        Span::styled(format!("  {name:<26}"), t.dim()),
                        Span::styled(g, st),
                        Span::raw(format!(" {ev}")),
                    ]));
                }
            }
            Err(e) => out.push(Line::from(vec![Span::styled("  ✗ fail ", t.error()), Span::raw(e.clone())])),
        }
    }
    let width = columns.saturating_sub(2) as usize;
    out.into_iter().map(safe_line).flat_map(|l| wrap_line(l, width)).collect()
}



fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "?".into())
}

fn short(s: Option<&str>) -> String {
    s.map(|s| s.get(..12).unwrap_or(s).to_string() + "…").unwrap_or_else(|| "-".into())
}

/// config.toml with line numbers; findings that name a line point at it.
fn config_lines(t: &Theme, d: &crate::diagnose::Diagnosis, p: &crate::probe::ProbeReport, out: &mut Vec<Line<'static>>) {
    let Some(text) = &p.config.redacted else {
        out.push(section(t, "config.toml"));
        out.push(kv(t, "config.toml", if p.config.sha256.is_some() { "not read" } else { "absent (codex defaults apply)" }));
        return;
    };
    out.push(section(
        t,
        &format!("config.toml {} (sha256 {}), secrets redacted", p.config.path, short(p.config.sha256.as_deref())),
    ));
    let mut marks: Vec<(usize, Code)> = Vec::new();
    for fi in &d.findings {
        if matches!(fi.code, Code::ConfigInvalid | Code::ConfigKeyMisplaced) {
            for c in LINE_RE.captures_iter(&fi.evidence) {
                if let Ok(n) = c[1].parse::<usize>() {
                    marks.push((n, fi.code));
                }
            }
        }
    }
    let top_level_key = |l: &str, k: &str| {
        let l = l.trim_start();
        l.starts_with(k) && l[k.len()..].trim_start().starts_with('=')
    };
    // A key line is marked only when that line is where the effective value comes from: with
    // `-s` on the command line (source cli) the file's line is not the cause.
    let from_config = |mode: bool| {
        d.effective.as_ref().is_some_and(|e| if mode { &e.sandbox_mode } else { &e.approval_policy }.source.as_str() == "config")
    };
    let mut in_table = false;
    for (i, l) in text.lines().enumerate() {
        let n = i + 1;
        if l.trim_start().starts_with('[') {
            in_table = true;
        }
        let mut codes: Vec<Code> = marks.iter().filter(|(m, _)| *m == n).map(|(_, c)| *c).collect();
        if !in_table {
            if top_level_key(l, "sandbox_mode") && d.has(Code::SandboxEnabled) && from_config(true) {
                codes.push(Code::SandboxEnabled);
            }
            if top_level_key(l, "approval_policy") && d.has(Code::ApprovalNotNever) && from_config(false) {
                codes.push(Code::ApprovalNotNever);
            }
        }
        let mut spans = vec![Span::styled(format!("  {n:>4} │ "), t.dim())];
        if codes.is_empty() {
            spans.push(Span::raw(l.to_string()));
        } else {
            spans.push(Span::styled(l.to_string(), t.warn().add_modifier(Modifier::BOLD)));
            let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
            spans.push(Span::styled(format!("   ◀ {}", names.join(", ")), t.error()));
        }
        out.push(Line::from(spans));
    }
}
