//! The Runs views: every run of the journal with its state word and what it allows, and one
//! run opened: each agent's outcome and reason.

use super::*;
use crate::rollout::lifecycle::{meaning, AgentStanding};
use crate::tui::model::runs::actions_of_word;

fn state_style(t: &Theme, word: &str) -> Style {
    match word {
        "done" | "rolled-back" => t.ok(),
        "halted" | "interrupted" => t.warn(),
        "running" => t.accent(),
        _ => Style::new(),
    }
}

fn allows(actions: &[RunAction]) -> String {
    if actions.is_empty() {
        "nothing".into()
    } else {
        actions.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
    }
}

pub(super) fn draw_runs(f: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let rows_h = area.height.saturating_sub(3) as usize;
    let h = rows_h.max(1);
    let off = if app.run_sel >= h { app.run_sel + 1 - h } else { 0 };
    let end = app.runs.len().min(off + rows_h);
    // Narrow terminals keep what decides (state, counts, what it allows); who and when go.
    let wide = area.width >= 120;
    let rows: Vec<Row> = app.runs[off.min(end)..end]
        .iter()
        .map(|r| {
            let mut counts = format!("{}/{} verified", r.verified, r.agents);
            if r.failed > 0 {
                counts.push_str(&format!(", {} failed", r.failed));
            }
            if r.skipped > 0 {
                counts.push_str(&format!(", {} skipped", r.skipped));
            }
            if r.unfinished > 0 {
                counts.push_str(&format!(", {} unfinished", r.unfinished));
            }
            let mut cells = vec![Cell::from(r.run_id.clone()), Cell::from(r.state.clone()).style(state_style(&t, &r.state))];
            if wide {
                cells.push(Cell::from(r.operator.clone()));
                cells.push(Cell::from(r.started.clone()));
            }
            cells.push(Cell::from(counts));
            cells.push(Cell::from(allows(&actions_of_word(&r.state))).style(t.dim()));
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Length(24), Constraint::Length(11)];
    let mut header = vec!["RUN", "STATE"];
    if wide {
        widths.extend([Constraint::Length(16), Constraint::Length(20)]);
        header.extend(["OPERATOR", "STARTED"]);
    }
    widths.extend([Constraint::Fill(1), Constraint::Length(if wide { 25 } else { 16 })]);
    header.extend(["AGENTS", "ALLOWS"]);
    let title = format!(" Runs · {} in the journal · enter opens a run ", app.runs.len());
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.bold()))
        .block(Block::bordered().title(title))
        .row_highlight_style(t.selected());
    let mut st = TableState::default().with_selected((!app.runs.is_empty()).then(|| app.run_sel - off));
    f.render_stateful_widget(table, area, &mut st);
    if app.runs.is_empty() {
        let inner = Rect { x: area.x + 2, y: area.y + 2, width: area.width.saturating_sub(4), height: 1 };
        f.render_widget(Paragraph::new(Span::styled("no runs in the journal yet", t.dim())), inner);
    }
}

fn standing_style(t: &Theme, s: AgentStanding) -> Style {
    match s {
        AgentStanding::Verified | AgentStanding::RolledBack | AgentStanding::NothingToRollBack => t.ok(),
        AgentStanding::Failed | AgentStanding::RollbackFailed => t.error(),
        AgentStanding::Skipped | AgentStanding::Unknown | AgentStanding::Stopped => t.warn(),
        AgentStanding::NotReached => t.dim(),
    }
}

pub(super) fn draw_run(f: &mut Frame, area: Rect, app: &App) {
    let t = theme(app);
    let Some(d) = &app.run_detail else {
        f.render_widget(Paragraph::new("no run opened").block(Block::bordered()), area);
        return;
    };
    let mut head: Vec<Line> = Vec::new();
    match &d.loaded {
        None => head.push(Line::styled(format!("run {}: reading the journal…", d.run_id), t.dim())),
        Some(Err(e)) => head.push(Line::styled(format!("run {}: {}", d.run_id, crate::term_safe::line(e)), t.error())),
        Some(Ok((s, _))) => {
            let word = s.state.as_str();
            head.push(Line::from(vec![
                Span::styled(format!("run {} ", s.run_id), t.bold()),
                Span::styled(word.to_string(), state_style(&t, word).add_modifier(Modifier::BOLD)),
                Span::styled(format!(" — {}", meaning(s.state)), t.dim()),
            ]));
            if !s.detail.is_empty() {
                head.push(Line::raw(crate::term_safe::line(&s.detail).into_owned()));
            }
            if let Some(h) = &s.holder {
                head.push(Line::styled(format!("held by pid {} ({}) since {}", h.pid, crate::term_safe::line(&h.operator), h.since), t.accent()));
            }
            let offers = crate::tui::model::runs::console_actions(&s.actions());
            head.push(Line::raw(format!("allows: {}", allows(&offers))));
        }
    }
    let head_h = head.len() as u16;
    let [top, bottom] = Layout::vertical([Constraint::Length(head_h + 1), Constraint::Min(3)]).areas(area);
    f.render_widget(Paragraph::new(head).wrap(Wrap { trim: false }), top);
    let agents = d.agents();
    let rows_h = bottom.height.saturating_sub(3) as usize;
    let off = d.scroll.min(agents.len().saturating_sub(1));
    let end = agents.len().min(off + rows_h);
    let rows: Vec<Row> = agents[off.min(end)..end]
        .iter()
        .map(|a| {
            let outcome = match a.applied {
                Some(ap) => format!("{} (was {})", a.outcome.as_str(), ap.as_str()),
                None => a.outcome.as_str().to_string(),
            };
            Row::new(vec![
                Cell::from(a.id.clone()),
                Cell::from(a.wave.map(|w| w.to_string()).unwrap_or_else(|| "-".into())),
                Cell::from(outcome).style(standing_style(&t, a.outcome)),
                Cell::from(a.reason.as_deref().map(|r| crate::term_safe::line(r).into_owned()).unwrap_or_default()),
            ])
        })
        .collect();
    let widths = [Constraint::Length(34), Constraint::Length(5), Constraint::Length(26), Constraint::Fill(1)];
    let table = Table::new(rows, widths)
        .header(Row::new(["AGENT", "WAVE", "OUTCOME", "REASON"]).style(t.bold()))
        .block(Block::bordered().title(format!(" Agents of the run · {} ", agents.len())));
    f.render_widget(table, bottom);
}
