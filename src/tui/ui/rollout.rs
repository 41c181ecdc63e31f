//! The Rollout view: the run on screen, wave by wave, agent by agent.

use super::*;

pub(super) fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width).checked_div(total).unwrap_or(0).min(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

pub(super) fn outcome_span(t: &Theme, o: &Outcome) -> Vec<Span<'static>> {
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

pub(super) fn draw_rollout(f: &mut Frame, area: Rect, app: &App) {
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
