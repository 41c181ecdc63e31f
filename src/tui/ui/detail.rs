//! The Detail view: one agent's lines (see [`crate::tui::text::detail`]), scrolled.

use super::*;

/// The agent detail as lines, for `app`'s terminal.
pub fn detail_lines(app: &App, h: &HostState, a: &AgentState) -> Vec<Line<'static>> {
    crate::tui::text::detail::detail_lines(theme(app), app.marks.contains(&a.id()), app.verify.get(&a.id()), app.size.0, h, a)
}

pub(super) fn draw_detail(f: &mut Frame, area: Rect, app: &App) {
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
