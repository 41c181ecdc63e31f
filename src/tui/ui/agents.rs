//! The Agents view: the table, its columns sized from the data, one row per agent.

use super::*;

pub(super) fn probe_word(o: ProbeOutcome) -> &'static str {
    o.as_str()
}

pub(super) fn probe_glyph(o: ProbeOutcome) -> &'static str {
    match o {
        ProbeOutcome::Ok => "✓",
        ProbeOutcome::Denied => "✗",
        ProbeOutcome::Absent => "-",
        ProbeOutcome::Error => "?",
    }
}

pub(super) fn draw_agents(f: &mut Frame, area: Rect, app: &App) {
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
pub(super) enum ColumnKind {
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
        let (mut host_w, mut agent_w) = app.name_widths.get().unwrap_or_else(|| {
            let (mut host_w, mut agent_w) = (4u16, 5u16);
            for ix in &app.rows {
                if let (Some(h), Some(a)) = (app.host_of(*ix), app.agent_at(*ix)) {
                    // Measured as shown: host text made visible first (escapes grow).
                    host_w = host_w.max(crate::term_safe::line(&h.host.name).chars().count() as u16);
                    agent_w = agent_w.max(crate::term_safe::line(&a.read.agent.name).chars().count() as u16);
                }
            }
            app.name_widths.set(Some((host_w, agent_w)));
            (host_w, agent_w)
        });
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

pub(super) fn agent_row<'a>(t: &Theme, app: &App, h: &'a HostState, a: &'a AgentState, cols: &AgentColumns) -> Row<'a> {
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
