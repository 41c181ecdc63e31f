//! The Audit view: past runs, then the by-image audit (see [`crate::tui::text::audit`]).

use super::*;

/// The audit's lines, for `app`'s theme.
pub fn audit_lines(app: &App) -> Vec<Line<'static>> {
    crate::tui::text::audit::audit_lines(theme(app), &app.report)
}

pub(super) fn draw_audit(f: &mut Frame, area: Rect, app: &App) {
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
