//! The Hosts view: the root causes, then one row per host with its agents counted by verdict.

use super::*;

pub(super) fn counts(h: &HostState) -> [usize; 4] {
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

pub(super) fn draw_hosts(f: &mut Frame, area: Rect, app: &App) {
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
