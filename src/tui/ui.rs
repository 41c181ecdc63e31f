//! Rendering: a pure function of the state, `draw(frame, &app)`. Status is always a word and
//! a glyph; colour only repeats it (and disappears under NO_COLOR). Tables build only the rows
//! that fit on screen.

use std::sync::LazyLock;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;
use regex::Regex;

use super::app::{App, Mode, Pending, Popup, RunKind, RunPhase, StatusKind, View};
use crate::cli::output::verdict_label;
use crate::diagnose::{Code, ProbeSummary, Verdict};
use crate::probe::Outcome as ProbeOutcome;
use crate::rollout::journal::{Outcome, RunState};
use crate::rollout::lifecycle::RunAction;
use crate::scan::{AgentState, HostState};

/// Footer lines below the main area; the header is two lines plus the why line, wrapped.
const FOOTER: u16 = 2;
/// The why line wraps to at most this many lines (the rest is in the Hosts view's causes box).
const WHY_LINES: usize = 3;

/// Rows of a bordered table with a header row on the app's terminal.
pub fn table_rows(app: &App) -> usize {
    app.size.1.saturating_sub(header_height(app) + FOOTER + 2 + 1) as usize
}

fn header_height(app: &App) -> u16 {
    2 + why_lines(app).len() as u16
}

/// The header's "why" text: the root causes, or what is known while the scan runs (never
/// "nothing is stalled" before any host answered).
pub fn why_text(app: &App) -> String {
    match app.scanning {
        Some(0) if app.total == 0 => "why: scanning… (the root causes appear as hosts answer)".to_string(),
        Some(_) => format!("why (so far): {}", app.why),
        None if app.report.hosts.is_empty() && app.summary.is_empty() => "why: no data yet".to_string(),
        None => format!("why: {}", app.why),
    }
}

/// The why text wrapped to the terminal's width (at "; " between causes where it can), at most
/// [`WHY_LINES`] lines, the last one ending in "…" when cut.
pub fn why_lines(app: &App) -> Vec<String> {
    wrap_words(&why_text(app), (app.size.0 as usize).saturating_sub(2).max(20), WHY_LINES)
}

/// Greedy word wrap at blanks (char-counted); a word longer than the width is cut.
fn wrap_words(text: &str, width: usize, max: usize) -> Vec<String> {
    let mut lines: Vec<String> = vec![String::new()];
    for word in text.split(' ') {
        let cur = lines.last_mut().unwrap();
        let (n, w) = (cur.chars().count(), word.chars().count());
        if n > 0 && n + 1 + w > width {
            lines.push(String::new());
        }
        let cur = lines.last_mut().unwrap();
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    for l in &mut lines {
        if l.chars().count() > width {
            *l = l.chars().take(width.saturating_sub(1)).collect::<String>() + "…";
        }
    }
    if lines.len() > max {
        lines.truncate(max);
        let last = lines.last_mut().unwrap();
        let keep = width.saturating_sub(2);
        if last.chars().count() > keep {
            *last = last.chars().take(keep).collect();
        }
        last.push_str(" …");
    }
    lines
}

/// `s` in at most `w` columns: whole when it fits, else its middle elided (`…`), keeping more
/// of the end (three quarters) than of the start (fleet names differ at their ends: `ws-us-east-2-1003`).
pub fn elide_middle(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        return s.to_string();
    }
    if w <= 1 {
        return "…".chars().take(w).collect();
    }
    let head = (w - 1) / 4;
    let tail = w - 1 - head;
    let chars: Vec<char> = s.chars().collect();
    chars[..head].iter().chain(std::iter::once(&'…')).chain(chars[n - tail..].iter()).collect()
}

/// Styles; with NO_COLOR only modifiers remain (the words and glyphs carry the meaning).
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }
    pub fn verdict(&self, v: Verdict) -> Style {
        match v {
            Verdict::Stalled => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Verdict::Unknown => self.fg(Color::Magenta),
            Verdict::AtRisk => self.fg(Color::Yellow),
            Verdict::Healthy => self.fg(Color::Green),
        }
    }
    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    pub fn bold(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }
    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan)
    }
    pub fn outcome(&self, o: ProbeOutcome) -> Style {
        match o {
            ProbeOutcome::Ok => self.ok(),
            ProbeOutcome::Denied => self.error(),
            ProbeOutcome::Absent => self.dim(),
            ProbeOutcome::Error => self.warn(),
        }
    }
}

fn theme(app: &App) -> Theme {
    Theme { color: !app.no_color }
}

/// The whole screen.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let [header, main, footer] =
        Layout::vertical([Constraint::Length(header_height(app)), Constraint::Min(3), Constraint::Length(FOOTER)]).areas(area);
    draw_header(f, header, app);
    match app.view {
        View::Hosts => draw_hosts(f, main, app),
        View::Agents => draw_agents(f, main, app),
        View::Detail => draw_detail(f, main, app),
        View::Plan => draw_plan(f, main, app),
        View::Rollout => draw_rollout(f, main, app),
        View::Audit => draw_audit(f, main, app),
    }
    draw_footer(f, footer, app);
    match &app.popup {
        Some(Popup::Help) => draw_help(f, area, app),
        Some(Popup::Confirm(p)) => draw_confirm(f, area, app, p),
        Some(Popup::QuitRun) => draw_quit(f, area, app),
        None => {}
    }
}

fn draw_header(f: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let mut title = vec![Span::styled(" codex-fleet ", t.bold().add_modifier(Modifier::REVERSED))];
    // First, so that no width cuts it off.
    if app.read_only {
        title.push(Span::raw(" "));
        title.push(Span::styled("READ-ONLY", t.warn().add_modifier(Modifier::BOLD | Modifier::REVERSED)));
    }
    title.extend([Span::raw(" "), Span::styled(app.view.title(), t.bold()), Span::raw(format!(" · {}", app.source))]);
    if let Some(c) = crate::cli::context::active() {
        title.push(Span::raw(format!(" · context {c}")));
    }
    if let Some(n) = app.scanning {
        title.push(Span::styled(format!(" · scanning… {n} host(s) answered"), t.accent()));
    }
    if app.planning.is_some() {
        title.push(Span::styled(" · planning…", t.accent()));
    }
    if app.verifying > 0 {
        title.push(Span::styled(format!(" · verifying {}…", app.verifying), t.accent()));
    }
    if let Some(r) = &app.run {
        if r.phase.active() || r.phase == RunPhase::Paused {
            let done = r.agents.values().filter(|a| a.outcome.is_some()).count();
            title.push(Span::styled(format!(" · run {}: {done}/{}", r.phase.as_str(), r.ids.len()), t.accent()));
        }
    }
    let summary = if app.summary.is_empty() { "no data yet".to_string() } else { app.summary.clone() };
    let why_style = if app.scanning.is_some() {
        t.accent()
    } else if app.why.starts_with("stalled") {
        t.error()
    } else {
        t.ok()
    };
    let mut lines = vec![Line::from(title), Line::from(Span::raw(format!(" {summary}")))];
    lines.extend(why_lines(app).into_iter().map(|l| Line::from(vec![Span::raw(" "), Span::styled(l, why_style)])));
    f.render_widget(Paragraph::new(lines), area);
}

/// Key hints of the footer: (key, what, mutating).
fn hints(app: &App) -> Vec<(&'static str, &'static str, bool)> {
    let mut h = match app.view {
        View::Hosts => vec![("enter", "agents", false), ("/", "filter", false), ("p", "preview", false), ("a", "apply", true)],
        View::Agents => vec![
            ("enter", "detail", false),
            ("c", "copy id", false),
            ("/", "filter", false),
            ("space", "mark", false),
            ("*", "mark all", false),
            ("s", "sort", false),
            ("p", "preview", false),
            ("a", "apply", true),
            ("v", "verify", false),
        ],
        View::Detail => vec![("j/k", "scroll", false), ("p", "preview", false), ("a", "apply", true), ("v", "verify", false)],
        View::Plan => vec![("j/k", "scroll", false), ("n/N", "next/prev group", false), ("enter", "fold/unfold", false), ("a", "apply", true)],
        // Only what the run's state allows.
        View::Rollout => match app.run.as_ref() {
            Some(r) if matches!(r.phase, RunPhase::Starting | RunPhase::Running) => vec![("P", "pause", true), ("X", "abort", true)],
            Some(r) if matches!(r.phase, RunPhase::Pausing | RunPhase::Stopping) => vec![],
            // Paused or finished: what the run's state allows (rollout::lifecycle::allowed_actions).
            Some(r) => match if r.phase == RunPhase::Paused { Some(RunState::Interrupted) } else { r.state } {
                Some(s) => crate::rollout::lifecycle::allowed_actions(s)
                    .iter()
                    .filter_map(|a| match a {
                        RunAction::Resume | RunAction::ContinueHalted if r.kind == RunKind::Apply => Some(("P", "resume", true)),
                        RunAction::Rollback => Some(("B", "roll back", true)),
                        _ => None,
                    })
                    .collect(),
                // A rollback that did not finish, a run that failed: roll back (again).
                None => vec![("B", "roll back", true)],
            },
            None => vec![],
        },
        View::Audit => vec![("e", "export", false), ("j/k", "run", false), ("B", "roll back run", true)],
    };
    h.extend([("r", "refresh", false), (":", "command", false), ("?", "help", false), ("esc", "back", false), ("q", "quit", false)]);
    h.retain(|(_, _, m)| !(app.read_only && *m));
    h
}

fn draw_footer(f: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let [status, keys] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    match app.mode {
        Mode::Filter | Mode::Command => {
            let prefix = if app.mode == Mode::Filter { "/" } else { ":" };
            let text_style = if app.input.selected { Style::new().add_modifier(Modifier::REVERSED) } else { Style::new() };
            let line = Line::from(vec![Span::styled(prefix, t.bold()), Span::styled(app.input.text.clone(), text_style)]);
            f.render_widget(Paragraph::new(line), status);
            let x = status.x + 1 + app.input.text.chars().take(app.input.cursor).count() as u16;
            f.set_cursor_position((x.min(status.right().saturating_sub(1)), status.y));
        }
        Mode::Normal => {
            if let Some(s) = &app.status {
                let style = if s.kind == StatusKind::Error { t.error() } else { Style::new() };
                f.render_widget(Paragraph::new(Span::styled(format!(" {}", s.text), style)), status);
            }
        }
    }
    let mut spans = Vec::new();
    for (k, what, _) in hints(app) {
        spans.push(Span::styled(format!(" {k}"), t.bold()));
        spans.push(Span::styled(format!(" {what} "), t.dim()));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), keys);
}

// ---------------------------------------------------------------------------------------------
// Hosts

fn counts(h: &HostState) -> [usize; 4] {
    let mut c = [0; 4];
    for a in &h.agents {
        c[match a.diagnosis.verdict {
            Verdict::Stalled => 0,
            Verdict::AtRisk => 1,
            Verdict::Unknown => 2,
            Verdict::Healthy => 3,
        }] += 1;
    }
    c
}

fn draw_hosts(f: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    // Root causes, one per line, above the hosts.
    let causes = app.causes();
    let cause_h = if causes.is_empty() { 0 } else { (causes.len() as u16 + 2).min(area.height / 2) };
    let [top, bottom] = Layout::vertical([Constraint::Length(cause_h), Constraint::Min(3)]).areas(area);
    if cause_h > 0 {
        let lines: Vec<Line> = causes
            .iter()
            .enumerate()
            .map(|(i, (n, c))| {
                let l = Line::from(vec![Span::styled(" ✗ ", t.error()), Span::raw(format!("{n} {c}"))]);
                if app.cause_sel == Some(i) {
                    l.style(t.selected())
                } else {
                    l
                }
            })
            .collect();
        let title = if app.cause_sel.is_some() {
            " Why is the pipeline stalled · enter: its agents "
        } else {
            " Why is the pipeline stalled (stalled agents by root cause; k from the first host selects one) "
        };
        f.render_widget(Paragraph::new(lines).block(Block::bordered().title(title)), top);
    }
    let rows_h = bottom.height.saturating_sub(3) as usize;
    let mut off = app.host_offset.min(app.host_sel);
    if app.host_sel >= off + rows_h.max(1) {
        off = app.host_sel + 1 - rows_h.max(1);
    }
    let hosts = &app.report.hosts;
    let end = hosts.len().min(off + rows_h);
    let rows: Vec<Row> = hosts[off.min(end)..end]
        .iter()
        .map(|h| {
            let c = counts(h);
            let (ssm, style) = if h.host.reachable { ("✓ online", t.ok()) } else { ("✗ unreachable", t.error()) };
            let detail = if h.host.reachable {
                h.host.agent_version.as_ref().map(|v| format!("SSM agent {v}")).unwrap_or_default()
            } else {
                format!("host-unreachable: {}", h.host.unreachable_reason.clone().unwrap_or_default())
            };
            let n = |i: usize, v: Verdict| {
                if c[i] == 0 {
                    Cell::from("0").style(t.dim())
                } else {
                    Cell::from(c[i].to_string()).style(t.verdict(v))
                }
            };
            Row::new(vec![
                Cell::from(h.host.name.clone()),
                Cell::from(h.host.id.clone()),
                Cell::from(ssm).style(style),
                Cell::from(h.agents.len().to_string()),
                n(0, Verdict::Stalled),
                n(1, Verdict::AtRisk),
                n(2, Verdict::Unknown),
                n(3, Verdict::Healthy),
                Cell::from(detail),
            ])
        })
        .collect();
    let header = Row::new(["HOST", "ID", "SSM", "AGENTS", "✗ STALLED", "! AT-RISK", "? UNKNOWN", "✓ HEALTHY", "DETAIL"])
        .style(t.bold());
    // Identities whole: the columns are as wide as the longest name and id.
    let name_w = hosts.iter().map(|h| h.host.name.chars().count()).max().unwrap_or(0).clamp(4, 40) as u16;
    let id_w = hosts.iter().map(|h| h.host.id.chars().count()).max().unwrap_or(0).clamp(2, 40) as u16;
    let widths = [
        Constraint::Length(name_w),
        Constraint::Length(id_w),
        Constraint::Length(13),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Fill(1),
    ];
    let title = format!(" Hosts ({}) · {} unreachable ", hosts.len(), hosts.iter().filter(|h| !h.host.reachable).count());
    let table = Table::new(rows, widths).header(header).block(Block::bordered().title(title)).row_highlight_style(t.selected());
    let mut st = TableState::default().with_selected((!hosts.is_empty() && app.cause_sel.is_none()).then(|| app.host_sel - off));
    f.render_stateful_widget(table, bottom, &mut st);
}

// ---------------------------------------------------------------------------------------------
// Agents

fn probe_word(o: ProbeOutcome) -> &'static str {
    o.as_str()
}

fn probe_glyph(o: ProbeOutcome) -> &'static str {
    match o {
        ProbeOutcome::Ok => "✓",
        ProbeOutcome::Denied => "✗",
        ProbeOutcome::Absent => "-",
        ProbeOutcome::Error => "?",
    }
}

fn draw_agents(f: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let total = app.total;
    let mut title = format!(" Agents {}/{} · sort {}{} ", app.rows.len(), total, app.sort.as_str(), if app.sort_rev { " ↑" } else { "" });
    if !app.filter.is_empty() {
        title.push_str(&format!("· filter “{}” ", app.filter));
    }
    if !app.marks.is_empty() {
        title.push_str(&format!("· {} marked ", app.marks.len()));
    }
    let block = Block::bordered().title(title);
    let inner_w = area.width.saturating_sub(2);
    let rows_h = area.height.saturating_sub(3) as usize;
    // The visible window only.
    let h = rows_h.max(1);
    let mut off = app.offset.min(app.sel);
    if app.sel >= off + h {
        off = app.sel + 1 - h;
    }
    let end = app.rows.len().min(off + rows_h);
    let cols = AgentColumns::new(app, inner_w);
    let rows: Vec<Row> = app.rows[off.min(end)..end]
        .iter()
        .filter_map(|ix| Some((app.host_of(*ix)?, app.agent_at(*ix)?)))
        .map(|(h, a)| agent_row(&t, app, h, a, &cols))
        .collect();
    let (header, widths) = cols.header();
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.bold()))
        .block(block)
        .row_highlight_style(t.selected());
    let mut st = TableState::default().with_selected((!app.rows.is_empty()).then(|| app.sel - off));
    f.render_stateful_widget(table, area, &mut st);
    if app.rows.is_empty() {
        let msg = if app.scanning.is_some() && total == 0 {
            "scanning: rows appear as hosts answer…"
        } else if total == 0 {
            "no agents"
        } else {
            "no agent matches the filter (Esc clears it)"
        };
        let inner = Rect { x: area.x + 2, y: area.y + 2, width: area.width.saturating_sub(4), height: 1 };
        f.render_widget(Paragraph::new(Span::styled(msg, t.dim())), inner);
    }
}

/// The agents table's layout at one width: identifiers first and whole (their columns sized from
/// the data; when they must shrink, their middles are elided, never their distinguishing ends),
/// then what fits; FINDINGS last, cut to whole codes with `+N`.
pub struct AgentColumns {
    /// `wide` (>= 110 columns): one column per probe and the findings; `narrow`: the probes as
    /// glyphs; below 80 the sandbox columns go too, never the identities.
    kind: ColumnKind,
    host_w: u16,
    agent_w: u16,
    findings_w: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    Wide,
    Narrow,
    Tiny,
}

impl AgentColumns {
    pub fn new(app: &App, inner_w: u16) -> AgentColumns {
        let kind = match inner_w {
            w if w >= 110 => ColumnKind::Wide,
            w if w >= 78 => ColumnKind::Narrow,
            _ => ColumnKind::Tiny,
        };
        // Fixed columns and the one-blank gaps between all columns.
        let fixed: u16 = match kind {
            ColumnKind::Wide => 1 + 10 + 28 + 6 + 6 + 6 + 5 + 9,
            ColumnKind::Narrow => 1 + 10 + 18 + 7 + 5 + 5 + 7,
            ColumnKind::Tiny => 1 + 10 + 5 + 5 + 5,
        };
        let min_findings = if kind == ColumnKind::Wide { 12 } else { 0 };
        let (mut host_w, mut agent_w) = (4u16, 5u16);
        for ix in &app.rows {
            if let (Some(h), Some(a)) = (app.host_of(*ix), app.agent_at(*ix)) {
                // Measured as shown: host text made visible first (escapes grow).
                host_w = host_w.max(crate::term_safe::line(&h.host.name).chars().count() as u16);
                agent_w = agent_w.max(crate::term_safe::line(&a.read.agent.name).chars().count() as u16);
            }
        }
        let room = inner_w.saturating_sub(fixed + min_findings);
        if host_w + agent_w > room {
            // Shrink both in proportion, the agent keeping at least half of the room.
            let total = host_w + agent_w;
            let h = ((room as u32 * host_w as u32) / total.max(1) as u32) as u16;
            host_w = h.clamp(4.min(room), room.saturating_sub(room / 2).max(4.min(room)));
            agent_w = room.saturating_sub(host_w);
        }
        let findings_w = inner_w.saturating_sub(fixed + host_w + agent_w);
        AgentColumns { kind, host_w, agent_w, findings_w }
    }

    /// The host and agent cells as this layout shows them.
    pub fn cells(&self, host: &str, agent: &str) -> (String, String) {
        // Host text made visible (escapes as `\x1b…`) before it is measured and cut.
        let (host, agent) = (crate::term_safe::line(host), crate::term_safe::line(agent));
        (elide_middle(&host, self.host_w as usize), elide_middle(&agent, self.agent_w as usize))
    }

    fn header(&self) -> (Vec<&'static str>, Vec<Constraint>) {
        let (h, a) = (Constraint::Length(self.host_w), Constraint::Length(self.agent_w));
        match self.kind {
            ColumnKind::Wide => (
                vec![" ", "HOST", "AGENT", "VERDICT", "SANDBOX (SOURCE)", "USERNS", "UIDMAP", "NETNS", "GITEA", "FINDINGS"],
                vec![
                    Constraint::Length(1),
                    h,
                    a,
                    Constraint::Length(10),
                    Constraint::Length(28),
                    Constraint::Length(6),
                    Constraint::Length(6),
                    Constraint::Length(6),
                    Constraint::Length(5),
                    Constraint::Fill(1),
                ],
            ),
            ColumnKind::Narrow => (
                vec![" ", "HOST", "AGENT", "VERDICT", "SANDBOX", "SOURCE", "U M N", "GITEA"],
                vec![
                    Constraint::Length(1),
                    h,
                    a,
                    Constraint::Length(10),
                    Constraint::Length(18),
                    Constraint::Length(7),
                    Constraint::Length(5),
                    Constraint::Length(5),
                ],
            ),
            ColumnKind::Tiny => (
                vec![" ", "HOST", "AGENT", "VERDICT", "U M N", "GITEA"],
                vec![Constraint::Length(1), h, a, Constraint::Length(10), Constraint::Length(5), Constraint::Length(5)],
            ),
        }
    }
}

/// Finding codes, whole, as many as fit in `w` columns, then `+N` for the rest.
pub fn findings_cell(codes: &[&str], w: usize) -> String {
    let mut out = String::new();
    for (i, c) in codes.iter().enumerate() {
        let rest = codes.len() - i - 1;
        let sep = usize::from(!out.is_empty());
        let more = if rest > 0 { format!(" +{rest}").len() } else { 0 };
        if out.len() + sep + c.len() + more <= w {
            if sep == 1 {
                out.push(',');
            }
            out.push_str(c);
        } else {
            let n = codes.len() - i;
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("+{n}"));
            return out;
        }
    }
    out
}

fn agent_row<'a>(t: &Theme, app: &App, h: &'a HostState, a: &'a AgentState, cols: &AgentColumns) -> Row<'a> {
    let d = &a.diagnosis;
    let mark = if app.marks.contains(&a.id()) { "●" } else { " " };
    let verdict = Cell::from(verdict_label(d.verdict)).style(t.verdict(d.verdict));
    let (mode, source) = d
        .effective
        .as_ref()
        .map(|e| (e.sandbox_mode.value.clone(), e.sandbox_mode.source.as_str()))
        .unwrap_or_else(|| ("?".into(), "?"));
    let probes = a.read.probe.as_ref().ok().map(ProbeSummary::of);
    let gitea = match &probes {
        Some(s) => match s.gitea_http {
            Some(200) => Cell::from("200").style(t.ok()),
            Some(c) => Cell::from(c.to_string()).style(t.error()),
            None => Cell::from("none").style(t.error()),
        },
        None => Cell::from("?").style(t.dim()),
    };
    let mode_style = if mode == crate::codex::config::DANGER_FULL_ACCESS { t.ok() } else { Style::new() };
    let (host, agent) = cols.cells(&h.host.name, &a.read.agent.name);
    let (host, agent) = (Cell::from(host), Cell::from(agent));
    let glyphs = || -> Cell<'static> {
        let unm: Vec<Span> = match &probes {
            Some(s) => [s.userns, s.uid_map_write, s.netns_loopback]
                .into_iter()
                .enumerate()
                .flat_map(|(i, o)| {
                    let sp = Span::styled(probe_glyph(o), t.outcome(o));
                    if i < 2 {
                        vec![sp, Span::raw(" ")]
                    } else {
                        vec![sp]
                    }
                })
                .collect(),
            None => vec![Span::styled("? ? ?", t.dim())],
        };
        Cell::from(Line::from(unm))
    };
    match cols.kind {
        ColumnKind::Tiny => Row::new(vec![Cell::from(mark), host, agent, verdict, glyphs(), gitea]),
        ColumnKind::Narrow => Row::new(vec![
            Cell::from(mark),
            host,
            agent,
            verdict,
            Cell::from(mode).style(mode_style),
            Cell::from(source),
            glyphs(),
            gitea,
        ]),
        ColumnKind::Wide => {
            let p = |o: Option<ProbeOutcome>| match o {
                Some(o) => Cell::from(probe_word(o)).style(t.outcome(o)),
                None => Cell::from("?").style(t.dim()),
            };
            let codes: Vec<&str> = d.findings.iter().map(|f| f.code.as_str()).collect();
            Row::new(vec![
                Cell::from(mark),
                host,
                agent,
                verdict,
                Cell::from(format!("{mode} ({source})")).style(mode_style),
                p(probes.as_ref().map(|s| s.userns)),
                p(probes.as_ref().map(|s| s.uid_map_write)),
                p(probes.as_ref().map(|s| s.netns_loopback)),
                gitea,
                Cell::from(findings_cell(&codes, cols.findings_w as usize)),
            ])
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Detail

static LINE_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bline (\d+)").unwrap());

fn kv(t: &Theme, k: &str, v: impl Into<String>) -> Line<'static> {
    Line::from(vec![Span::styled(format!("  {k:<26}"), t.dim()), Span::raw(v.into())])
}

fn section(t: &Theme, s: &str) -> Line<'static> {
    Line::from(Span::styled(s.to_string(), t.bold().add_modifier(Modifier::UNDERLINED)))
}

/// The agent detail as lines (also used by the state machine to bound scrolling).
pub fn detail_lines(app: &App, h: &HostState, a: &AgentState) -> Vec<Line<'static>> {
    let t = theme(app);
    let r = &a.read;
    let d = &a.diagnosis;
    let mut out: Vec<Line<'static>> = Vec::new();
    out.push(Line::from(vec![
        Span::styled(format!("{} ", a.id()), t.bold()),
        Span::styled(verdict_label(d.verdict), t.verdict(d.verdict)),
        Span::raw(if app.marks.contains(&a.id()) { "  ● marked" } else { "" }),
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
    if let Some(v) = app.verify.get(&a.id()) {
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
    let width = app.size.0.saturating_sub(2) as usize;
    out.into_iter().map(safe_line).flat_map(|l| wrap_line(l, width)).collect()
}

/// Host text made visible, not executed (`term_safe::line` on every span): a terminal escape
/// in a name, an argv or an evidence line shows as `\x1b]52;…`, where ratatui would silently
/// drop the control character and print the rest.
fn safe_line(mut l: Line<'static>) -> Line<'static> {
    for sp in &mut l.spans {
        if let std::borrow::Cow::Owned(s) = crate::term_safe::line(&sp.content) {
            sp.content = s.into();
        }
    }
    l
}

/// Wrap a styled line to `width` columns; continuation lines are indented under the value
/// (the width of the first span when the line is a key/value pair). Evidence stays verbatim.
fn wrap_line(line: Line<'static>, width: usize) -> Vec<Line<'static>> {
    let total: usize = line.spans.iter().map(|s| s.content.chars().count()).sum();
    if width < 20 || total <= width {
        return vec![line];
    }
    let first = line.spans.first().map(|s| s.content.chars().count()).unwrap_or(0);
    let indent = if line.spans.len() > 1 && first <= 30 && first < width / 2 { first } else { 2 };
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut cur: Vec<Span<'static>> = Vec::new();
    let mut col = 0usize;
    for span in line.spans {
        let style = span.style;
        let mut buf = String::new();
        for ch in span.content.chars() {
            if col == width {
                if !buf.is_empty() {
                    cur.push(Span::styled(std::mem::take(&mut buf), style));
                }
                out.push(Line::from(std::mem::take(&mut cur)));
                cur.push(Span::raw(" ".repeat(indent)));
                col = indent;
            }
            buf.push(ch);
            col += 1;
        }
        if !buf.is_empty() {
            cur.push(Span::styled(buf, style));
        }
    }
    if !cur.is_empty() {
        out.push(Line::from(cur));
    }
    out
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

fn draw_detail(f: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let Some((h, a)) = app.detail_agent() else {
        f.render_widget(Paragraph::new("the agent is gone from the last scan").block(Block::bordered()), area);
        return;
    };
    let lines = detail_lines(app, h, a);
    let n = lines.len();
    let inner_h = area.height.saturating_sub(2) as usize;
    let scroll = app.detail_scroll.min(n.saturating_sub(inner_h));
    let visible: Vec<Line> = lines.into_iter().skip(scroll).take(inner_h).collect();
    let title = format!(" Agent {} · {}–{} of {} lines ", crate::term_safe::line(&a.id()), scroll + 1, (scroll + inner_h).min(n), n);
    f.render_widget(Paragraph::new(visible).block(Block::bordered().title(title).title_style(t.bold())), area);
}

// ---------------------------------------------------------------------------------------------
// Plan

fn diff_line(t: &Theme, l: &str) -> Line<'static> {
    let style = if l.starts_with("+++") || l.starts_with("---") {
        t.bold()
    } else if l.starts_with('+') {
        t.ok()
    } else if l.starts_with('-') {
        t.error().remove_modifier(Modifier::BOLD)
    } else if l.starts_with("@@") {
        t.accent()
    } else if l.starts_with("==") {
        t.bold().add_modifier(Modifier::REVERSED)
    } else if l.starts_with("needs attention") {
        t.warn().add_modifier(Modifier::BOLD)
    } else if l.starts_with("   means:") {
        t.accent().add_modifier(Modifier::BOLD)
    } else if l.trim_start().starts_with("note:") || l.trim_start().contains("regenerated by the emitter") {
        t.dim()
    } else {
        Style::new()
    };
    Line::styled(l.to_string(), style)
}

fn draw_plan(f: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let Some(p) = &app.plan else {
        f.render_widget(Paragraph::new("no plan").block(Block::bordered()), area);
        return;
    };
    let inner_h = area.height.saturating_sub(2) as usize;
    let n = p.lines.len();
    let scroll = p.scroll.min(n.saturating_sub(inner_h));
    // Long lines wrap (attention reasons, paths): nothing is cut at the right edge.
    let width = area.width.saturating_sub(2) as usize;
    let lines: Vec<Line> =
        p.lines.iter().skip(scroll).flat_map(|l| wrap_line(diff_line(&t, l), width)).take(inner_h).collect();
    let title = format!(
        " Plan · {} to change · {} need attention · {}–{} of {} lines · n/N group · enter {} ",
        p.plan.agents.len(),
        p.plan.attention.len(),
        scroll + 1,
        (scroll + inner_h).min(n),
        n,
        if p.full { "folds" } else { "unfolds" }
    );
    f.render_widget(Paragraph::new(lines).block(Block::bordered().title(title)), area);
}

// ---------------------------------------------------------------------------------------------
// Rollout

fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width).checked_div(total).unwrap_or(0).min(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

fn outcome_span(t: &Theme, o: &Outcome) -> Vec<Span<'static>> {
    let (g, st) = match o {
        Outcome::Verified => ("✓ verified", t.ok()),
        Outcome::RolledBack => ("↺ rolled-back", t.ok()),
        Outcome::Failed(_) => ("✗ failed", t.error()),
        Outcome::RollbackFailed(_) => ("✗ rollback-failed", t.error()),
        Outcome::Skipped(_) => ("↷ skipped", t.warn()),
        Outcome::Unknown(_) => ("? unknown", t.warn()),
        Outcome::NothingToRollBack => ("- nothing to roll back", t.ok()),
    };
    let why = o.why().map(|w| format!(": {w}")).unwrap_or_default();
    vec![Span::styled(g, st), Span::raw(why)]
}

fn draw_rollout(f: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let Some(r) = &app.run else {
        f.render_widget(Paragraph::new("no run").block(Block::bordered()), area);
        return;
    };
    let mut lines: Vec<Line> = Vec::new();
    let kind = if r.kind == RunKind::Apply { "apply" } else { "rollback" };
    let state = match (r.phase, r.state) {
        // The run's state word, one vocabulary (rollout::journal::RunState).
        (RunPhase::Finished, Some(s)) => s.as_str().to_string(),
        (RunPhase::Finished, None) if r.aborted => RunState::Interrupted.as_str().to_string(),
        (p, _) => p.as_str().to_string(),
    };
    lines.push(Line::from(vec![
        Span::styled(format!("run {} ", r.run_id.clone().unwrap_or_else(|| "(starting)".into())), t.bold()),
        Span::raw(format!("· {kind} · ")),
        Span::styled(state, t.bold()),
    ]));
    if r.kind == RunKind::Apply {
        lines.push(Line::raw(format!(
            "canary {} · waves of {} · max errors {} (over the whole run) · {} planned",
            r.opts.canary,
            r.opts.wave,
            r.opts.max_errors,
            r.ids.len()
        )));
    }
    lines.push(Line::from(vec![
        Span::styled(format!("✓ {} verified", r.count("verified")), t.ok()),
        Span::raw("  "),
        Span::styled(format!("✗ {} failed", r.count("failed")), if r.count("failed") > 0 { t.error() } else { Style::new() }),
        Span::raw("  "),
        Span::styled(format!("↷ {} skipped", r.count("skipped")), if r.count("skipped") > 0 { t.warn() } else { Style::new() }),
        Span::raw(format!("  ↺ {} rolled back", r.count("rolled-back"))),
    ]));
    if let Some(h) = &r.halted {
        lines.push(Line::from(vec![Span::styled("halted: ", t.error()), Span::raw(h.clone())]));
    }
    if let Some(e) = &r.error {
        lines.push(Line::from(vec![Span::styled("error: ", t.error()), Span::raw(e.clone())]));
    }
    if !r.waves.is_empty() {
        lines.push(Line::raw(""));
    }
    for (i, w) in r.waves.iter().enumerate() {
        let done = w.iter().filter(|id| r.agents.get(*id).is_some_and(|a| a.outcome.is_some())).count();
        let bad = w
            .iter()
            .filter(|id| r.agents.get(*id).is_some_and(|a| matches!(a.outcome, Some(Outcome::Failed(_)) | Some(Outcome::Skipped(_)))))
            .count();
        let name = if i == 0 && r.opts.canary > 0 { format!("wave {i} (canary)") } else { format!("wave {i}") };
        let cur = if r.current_wave == Some(i) && r.phase.active() { " ◀ now" } else { "" };
        lines.push(Line::from(vec![
            Span::raw(format!("{name:<17}")),
            Span::styled(bar(done, w.len(), 20), if bad > 0 { t.warn() } else { t.ok() }),
            Span::raw(format!(" {done}/{} done{}{cur}", w.len(), if bad > 0 { format!(", {bad} not verified") } else { String::new() })),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Agents", t.bold().add_modifier(Modifier::UNDERLINED)));
    let ids: Vec<&String> = if r.ids.is_empty() { r.agents.keys().collect() } else { r.ids.iter().collect() };
    let head = lines.len();
    let room = (area.height.saturating_sub(2) as usize).saturating_sub(head);
    let scroll = app.rollout_scroll.min(ids.len().saturating_sub(room.max(1)));
    for id in ids.iter().skip(scroll).take(room) {
        let a = r.agents.get(*id).cloned().unwrap_or_default();
        let mut spans = vec![Span::raw(format!("  {id:<34} "))];
        match (&a.outcome, a.step) {
            (Some(o), _) => spans.extend(outcome_span(&t, o)),
            (None, Some(s)) => {
                let detail = if a.detail.is_empty() { String::new() } else { format!(" {}", a.detail) };
                spans.push(Span::styled(format!("⟳ {} ({}){detail}", s.as_str(), a.phase), t.accent()));
            }
            (None, None) => spans.push(Span::styled("· waiting", t.dim())),
        }
        lines.push(Line::from(spans));
    }
    let title = if r.phase.active() {
        " Rollout · P pause · X abort (after the steps in flight; resumable) "
    } else if r.phase == RunPhase::Paused {
        " Rollout · P resume · X abort "
    } else {
        " Rollout · B roll back this run "
    };
    let title = if app.read_only { " Rollout " } else { title };
    f.render_widget(Paragraph::new(lines).block(Block::bordered().title(title)), area);
}

// ---------------------------------------------------------------------------------------------
// Audit

pub fn audit_lines(app: &App) -> Vec<Line<'static>> {
    let t = theme(app);
    let mut out = Vec::new();
    let audit = super::export::image_audit(&app.report);
    out.push(Line::styled(
        "Lost on re-provision: fixes that live only in a container's writable layer, emitters that are not idempotent",
        t.bold(),
    ));
    // "Nothing lost" only when every agent could be read (the report's rule and words).
    let unknown = crate::cli::fleet_cmds::audit_unknown(&app.report);
    if audit.is_empty() && unknown.is_empty() {
        out.push(Line::styled("  nothing: every fix is in its image", t.ok()));
    } else if audit.is_empty() {
        out.push(Line::raw("  nothing found on the agents that could be read"));
    }
    for img in &audit {
        out.push(Line::from(vec![
            Span::styled("  ! ", t.warn()),
            Span::styled(crate::term_safe::line(&img.image).into_owned(), t.bold()),
            Span::raw(format!(" lacks the fix: {} agent(s)", img.agents.len())),
        ]));
        for n in &img.needs {
            out.push(Line::from(vec![Span::styled("    needs: ", t.accent()), Span::raw(crate::term_safe::line(n).into_owned())]));
        }
        // Every agent: the list scrolls (J/K) rather than ending in "… and N more".
        for a in &img.agents {
            let files: Vec<String> = a
                .files
                .iter()
                .map(|(p, sha)| format!("{} {}", p, sha.as_deref().map(|h| h.get(..12).unwrap_or(h)).unwrap_or("?")))
                .collect();
            out.push(Line::styled(
                crate::term_safe::line(&format!(
                    "      {} ({}) {:<28} {}  {}",
                    a.host_name,
                    a.host_id,
                    a.id.rsplit('/').next().unwrap_or(&a.id),
                    a.findings.join(","),
                    files.join(", ")
                ))
                .into_owned(),
                t.dim(),
            ));
        }
    }
    // What the audit could not see, after what it found (the report names why for each).
    if !unknown.is_empty() {
        out.push(Line::styled(format!("  ? not audited ({}): what a re-provision would lose there is not known", unknown.len()), t.warn()));
        for u in &unknown {
            out.push(Line::styled(format!("      {}", crate::term_safe::line(u)), t.dim()));
        }
    }
    out
}

fn draw_audit(f: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let lines = audit_lines(app);
    let n = lines.len();
    // Wrapped lines counted; the audit may take two thirds of the screen, the runs the rest.
    let inner_w = area.width.saturating_sub(2).max(1) as usize;
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner_w)).sum();
    let top_h = (rows as u16 + 2).min(area.height * 2 / 3).max(3);
    let [top, bottom] = Layout::vertical([Constraint::Length(top_h), Constraint::Min(4)]).areas(area);
    let inner_h = top_h.saturating_sub(2) as usize;
    // Long lines (what an image needs) wrap; J/K scroll by screen lines.
    let scroll = app.audit_scroll.min(n.saturating_sub(1));
    let title = if n > inner_h || scroll > 0 {
        " Audit · by image · J/K scroll · e export md/json/csv ".to_string()
    } else {
        " Audit · by image · e export md/json/csv ".to_string()
    };
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((scroll as u16, 0)).block(Block::bordered().title(title)),
        top,
    );
    let rows_h = bottom.height.saturating_sub(3) as usize;
    let h = rows_h.max(1);
    let off = if app.run_sel >= h { app.run_sel + 1 - h } else { 0 };
    let end = app.runs.len().min(off + rows_h);
    let rows: Vec<Row> = app.runs[off.min(end)..end]
        .iter()
        .map(|r| {
            let st = match r.state.as_str() {
                "done" => t.ok(),
                "halted" | "interrupted" => t.warn(),
                "running" => t.accent(),
                _ => Style::new(),
            };
            Row::new(vec![
                Cell::from(r.run_id.clone()),
                Cell::from(r.state.clone()).style(st),
                Cell::from(r.started.clone()),
                Cell::from(r.operator.clone()),
                Cell::from(format!(
                    "{} planned: {} verified, {} failed, {} skipped, {} unfinished",
                    r.agents, r.verified, r.failed, r.skipped, r.unfinished
                )),
            ])
        })
        .collect();
    let widths = [Constraint::Length(24), Constraint::Length(11), Constraint::Length(20), Constraint::Length(16), Constraint::Fill(1)];
    let title = if app.read_only { " Run history (journal) ".to_string() } else { " Run history (journal) · B roll back the selected run ".to_string() };
    let table = Table::new(rows, widths)
        .header(Row::new(["RUN", "STATE", "STARTED", "OPERATOR", "AGENTS"]).style(t.bold()))
        .block(Block::bordered().title(title))
        .row_highlight_style(t.selected());
    let mut st = TableState::default().with_selected((!app.runs.is_empty()).then(|| app.run_sel - off));
    f.render_stateful_widget(table, bottom, &mut st);
    if app.runs.is_empty() {
        let inner = Rect { x: bottom.x + 2, y: bottom.y + 2, width: bottom.width.saturating_sub(4), height: 1 };
        f.render_widget(Paragraph::new(Span::styled("no runs in the journal yet", t.dim())), inner);
    }
}

// ---------------------------------------------------------------------------------------------
// Popups

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

/// Every key: (keys, what, mutating). Mutating ones are left out under `--read-only`.
pub fn help_entries() -> Vec<(&'static str, &'static str, bool)> {
    vec![
        ("j k ↓ ↑", "move / scroll", false),
        ("g G Home End", "first / last", false),
        ("PgUp PgDn", "page up / down", false),
        ("Enter", "open (host → its agents, root cause → its agents, agent → detail)", false),
        ("Esc", "back (clears the filter first)", false),
        ("Tab", "next view; on the : line, completes the command", false),
        ("/", "filter: name, host, id, verdict, codes, root-cause words", false),
        (":", "command: hosts agents audit rollout plan filter sort export quit", false),
        ("c", "copy the agent's id (what --agent takes) to the clipboard", false),
        ("space", "mark / unmark the agent", false),
        ("*", "mark every visible agent", false),
        ("u", "clear the marks", false),
        ("s S", "sort by verdict, host, name, mode / reverse", false),
        ("p", "diff preview of the marked agents, else the selected one", false),
        ("n N Enter", "preview: next / previous group of changes; unfold", false),
        ("a", "apply the same set, after a confirmation [y/N]", true),
        ("c w e", "in the apply confirmation: canary, wave size, max errors", true),
        ("v", "verify: the boot assertion on the marked / selected agents", false),
        ("r", "refresh: scan the fleet again", false),
        ("P", "rollout: pause / resume", true),
        ("X", "rollout: abort after the steps in flight (resumable)", true),
        ("B", "roll back the run (rollout view, or the run selected in audit)", true),
        ("e", "audit: export the report (md, json, csv)", false),
        ("J K", "audit: scroll the by-image list", false),
        ("?", "this help", false),
        ("q", "quit (during a run: detach, or abort after the current step)", false),
    ]
}

fn draw_help(f: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let mut lines: Vec<Line> = help_entries()
        .into_iter()
        .filter(|(_, _, m)| !(app.read_only && *m))
        .map(|(k, what, _)| Line::from(vec![Span::styled(format!(" {k:<13}"), t.bold()), Span::raw(what)]))
        .collect();
    if app.read_only {
        lines.push(Line::raw(""));
        lines.push(Line::styled(" read-only: apply, pause, abort and roll back are not available", t.warn()));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(" verdicts: ✗ stalled · ? unknown · ! at-risk · ✓ healthy", t.dim()));
    // Sized from the wrapped text: the last line (read-only, the legend) is never cut.
    let w = area.width.saturating_sub(2).min(90);
    let inner = w.saturating_sub(2).max(1) as usize;
    let h = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum::<usize>() as u16 + 2;
    let r = centered(area, w, h);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(Block::bordered().title(" Help · ? or Esc closes ").title_style(t.bold())),
        r,
    );
}

fn draw_confirm(f: &mut Frame, area: Rect, app: &App, p: &Pending) {
    let t = theme(app);
    let mut lines: Vec<Line> = Vec::new();
    let title;
    match p {
        Pending::Apply { plan, opts } => {
            title = " Apply the durable fix ";
            let attention = plan.attention.len().min(2) + usize::from(!plan.attention.is_empty()) + usize::from(plan.attention.len() > 2);
            // Everything but the agent list must always fit: the prompt above all.
            let groups = crate::plan_view::group_plan(plan, &crate::plan_view::lookup(&crate::plan_view::contexts(&app.report)));
            let meanings = groups.len().min(3) + usize::from(groups.len() > 3);
            let fixed = 1 + attention + 5 + meanings;
            let room = (area.height as usize).saturating_sub(4 + fixed).max(1);
            let shown = if plan.agents.len() > room { room.saturating_sub(1).max(1) } else { plan.agents.len() };
            lines.push(Line::styled(format!("{} agent(s) will change:", plan.agents.len()), t.bold()));
            // What the change means, where the eye lands first.
            for g in groups.iter().take(3) {
                lines.push(Line::from(vec![
                    Span::styled(format!("  {} agent(s): ", g.ids.len()), t.bold()),
                    Span::styled(crate::term_safe::line(&g.meaning_short).into_owned(), t.accent()),
                ]));
            }
            if groups.len() > 3 {
                lines.push(Line::raw(format!("  … {} more kinds of change (p shows them)", groups.len() - 3)));
            }
            for ap in plan.agents.iter().take(shown) {
                let mut what: Vec<String> = ap
                    .files
                    .iter()
                    .map(|fp| {
                        let name = fp.path.rsplit('/').next().unwrap_or(&fp.path);
                        if fp.write {
                            format!("write {name}")
                        } else {
                            format!("{name} regenerated")
                        }
                    })
                    .collect();
                if ap.restart {
                    what.push("restart".into());
                }
                lines.push(Line::raw(format!("  {}: {}", ap.agent.id(), what.join(", "))));
            }
            if plan.agents.len() > shown {
                lines.push(Line::raw(format!("  … and {} more (p shows every diff)", plan.agents.len() - shown)));
            }
            if !plan.attention.is_empty() {
                lines.push(Line::styled(format!("{} not planned (need attention; p shows why):", plan.attention.len()), t.warn()));
                for a in plan.attention.iter().take(2) {
                    lines.push(Line::raw(format!("  {}", a.agent.id())));
                }
                if plan.attention.len() > 2 {
                    lines.push(Line::raw(format!("  … and {} more", plan.attention.len() - 2)));
                }
            }
            lines.push(Line::from(vec![
                Span::raw("canary "),
                Span::styled(opts.canary.to_string(), t.bold()),
                Span::raw(" · waves of "),
                Span::styled(opts.wave.clone(), t.bold()),
                Span::raw(" · max errors "),
                Span::styled(opts.max_errors.clone(), t.bold()),
                Span::raw(" · restart timeout "),
                Span::styled("120 s", t.bold()),
                Span::styled("  (c/w/e change)", t.dim()),
            ]));
            lines.push(Line::styled("Writes are conditional on the previewed content; backups are kept.", t.dim()));
            lines.push(Line::raw(""));
            lines.push(Line::from(vec![Span::styled("Apply to these agents? ", t.bold()), Span::styled("[y/N]", t.error())]));
        }
        Pending::Rollback { run_id, agents } => {
            title = " Roll back a run ";
            lines.push(Line::styled(format!("Roll back run {run_id}"), t.bold()));
            lines.push(Line::raw(format!("Every file the run changed, on up to {agents} agent(s), is restored byte")));
            lines.push(Line::raw("for byte where it still holds what the run left; then each agent restarts."));
            lines.push(Line::raw(""));
            lines.push(Line::from(vec![Span::styled("Roll back? ", t.bold()), Span::styled("[y/N]", t.error())]));
        }
    }
    // As wide as its longest line (up to the screen), long lines wrapped: nothing cut.
    let longest = lines.iter().map(|l| l.width()).max().unwrap_or(0) as u16 + 2;
    let w = area.width.saturating_sub(2).min(longest.max(60));
    let wrapped: usize = lines.iter().map(|l| (l.width().max(1)).div_ceil(w.saturating_sub(2).max(1) as usize)).sum();
    let h = wrapped as u16 + 2;
    let r = centered(area, w, h);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(Block::bordered().title(title).title_style(t.error())),
        r,
    );
}

fn draw_quit(f: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let id = app.run.as_ref().and_then(|r| r.run_id.clone()).unwrap_or_default();
    let lines = vec![
        Line::styled("A run is in progress.", t.bold()),
        Line::raw(""),
        Line::from(vec![Span::styled(" d   ", t.bold()), Span::raw("detach: quit now; the run stays resumable:")]),
        Line::styled(format!("     codex-fleet apply --resume {id}"), t.dim()),
        Line::from(vec![Span::styled(" a   ", t.bold()), Span::raw("abort after the current step, then quit")]),
        Line::from(vec![Span::styled(" Esc ", t.bold()), Span::raw("stay")]),
    ];
    let r = centered(area, 72, lines.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(Block::bordered().title(" Quit? ")), r);
}
