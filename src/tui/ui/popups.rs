//! Popups: help, the confirmation that holds the exact action, and quitting during a run.

use super::*;

pub(super) fn centered(area: Rect, w: u16, h: u16) -> Rect {
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
        (":", "command: hosts agents audit runs rollout plan filter sort export quit", false),
        ("c", "copy the agent's id (what --agent takes) to the clipboard", false),
        ("space", "mark / unmark the agent", false),
        ("*", "mark every visible agent", false),
        ("u", "clear the marks", false),
        ("s S", "sort by verdict, host, name, mode / reverse", false),
        ("p", "diff preview of the marked agents, else the selected one", false),
        ("n N Enter", "preview: next / previous group of changes; unfold", false),
        ("a", "apply the same set, after a confirmation [y/N]", true),
        ("c w e t", "in the apply confirmation: type the canary, wave size, max errors, restart timeout", true),
        ("p", "in the apply confirmation: pause after the canary (then y continues, N pauses)", true),
        ("v", "verify: the boot assertion on the marked / selected agents", false),
        ("r", "refresh: scan the fleet again", false),
        ("P", "rollout: pause / resume", true),
        ("X", "rollout: abort after the steps in flight (resumable)", true),
        ("B", "roll back the run (rollout view, or the run selected in audit or runs)", true),
        ("Enter", "runs: open the run (each agent's outcome and reason)", false),
        ("P B", "runs: resume / roll back the selected run (a live holder refuses)", true),
        ("e", "audit: export the report (md, json, csv)", false),
        ("J K", "audit: scroll the by-image list", false),
        ("?", "this help", false),
        ("q", "quit (during a run: detach, or abort after the current step)", false),
    ]
}

pub(super) fn draw_help(f: &mut Frame, area: Rect, app: &App) {
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

pub(super) fn draw_confirm(f: &mut Frame, area: Rect, app: &App, p: &Pending) {
    let t = theme(app);
    let mut lines: Vec<Line> = Vec::new();
    let title;
    match p {
        Pending::Apply { plan, form } => {
            title = " Apply the durable fix ";
            let attention = plan.attention.len().min(2) + usize::from(!plan.attention.is_empty()) + usize::from(plan.attention.len() > 2);
            // Everything but the agent list must always fit: the prompt above all.
            let groups = crate::present::plan_view::group_plan(plan, &crate::present::plan_view::lookup(&crate::present::plan_view::contexts(&app.report)));
            let meanings = groups.len().min(3) + usize::from(groups.len() > 3);
            let fixed = 1 + attention + 9 + meanings + usize::from(form.error().is_some());
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
            // The options, typed: the key that edits each, its value, its error if it has one.
            for fld in crate::tui::model::confirm::Field::ALL {
                let editing = form.editing == Some(fld);
                let value = crate::term_safe::line(form.value(fld)).into_owned();
                let bad = form.field_error(fld).is_some();
                let vstyle = if editing { t.bold().add_modifier(Modifier::REVERSED) } else if bad { t.error() } else { t.bold() };
                lines.push(Line::from(vec![
                    Span::styled(format!(" {} ", fld.key()), t.bold()),
                    Span::raw(format!("{:<19}", fld.label())),
                    Span::styled(format!("[{value}{}]", if editing { "▏" } else { "" }), vstyle),
                    Span::styled(format!("{:pad$}{}", "", fld.hint(), pad = 9usize.saturating_sub(value.chars().count())), t.dim()),
                ]));
            }
            lines.push(Line::from(vec![
                Span::styled(" p ", t.bold()),
                Span::raw(format!("{:<19}", "pause after canary")),
                Span::styled(if form.pause_after_canary { "[yes]" } else { "[no]" }, t.bold()),
                Span::styled(if form.pause_after_canary { "      ask before the waves go on" } else { "       ask before the waves go on" }, t.dim()),
            ]));
            if let Some(e) = form.error() {
                lines.push(Line::styled(format!("✗ {e}"), t.error()));
            }
            lines.push(Line::styled("Writes are conditional on the previewed content; backups are kept.", t.dim()));
            lines.push(Line::raw(""));
            if form.editing.is_some() {
                lines.push(Line::styled("typing an option: Enter when done", t.dim()));
            } else if form.error().is_some() {
                lines.push(Line::from(vec![Span::styled("Fix the option to confirm ", t.bold()), Span::styled("(N cancels)", t.error())]));
            } else {
                lines.push(Line::from(vec![Span::styled("Apply to these agents? ", t.bold()), Span::styled("[y/N]", t.error())]));
            }
        }
        Pending::Rollback { run_id, agents } => {
            title = " Roll back a run ";
            lines.push(Line::styled(format!("Roll back run {run_id}"), t.bold()));
            lines.push(Line::raw(format!("Every file the run changed, on up to {agents} agent(s), is restored byte")));
            lines.push(Line::raw("for byte where it still holds what the run left; then each agent restarts."));
            lines.push(Line::raw(""));
            lines.push(Line::from(vec![Span::styled("Roll back? ", t.bold()), Span::styled("[y/N]", t.error())]));
        }
        Pending::Resume { run_id, continue_halted, agents } => {
            title = " Resume a run ";
            let what = if *continue_halted { "Continue past the halt of run" } else { "Resume run" };
            lines.push(Line::styled(format!("{what} {run_id}"), t.bold()));
            lines.push(Line::raw(format!("The waves not finished, of its {agents} planned agent(s), go on with the options it")));
            lines.push(Line::raw("started with; the agents it already finished are not touched again."));
            lines.push(Line::styled(format!("(the same as `codex-fleet apply --resume {run_id}{}`)", if *continue_halted { " --continue-halted" } else { "" }), t.dim()));
            lines.push(Line::raw(""));
            lines.push(Line::from(vec![Span::styled("Resume? ", t.bold()), Span::styled("[y/N]", t.error())]));
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

pub(super) fn draw_gate(f: &mut Frame, area: Rect, app: &App, run_id: &str, canary: usize, waves_left: usize, agents_left: usize) {
    let t = theme(app);
    let lines = vec![
        Line::styled(format!("Run {run_id}: the canary ({canary} agent(s)) verified."), t.bold()),
        Line::raw(format!("{waves_left} wave(s) to go, {agents_left} agent(s).")),
        Line::raw(""),
        Line::from(vec![Span::styled("canary verified: continue? ", t.bold()), Span::styled("[y/N]", t.error())]),
        Line::styled(format!("N pauses here, resumable: `codex-fleet apply --resume {run_id}` (or P)"), t.dim()),
    ];
    let longest = lines.iter().map(|l| l.width()).max().unwrap_or(0) as u16 + 2;
    let r = centered(area, longest.max(50), lines.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(Block::bordered().title(" Canary ").title_style(t.error())), r);
}

pub(super) fn draw_quit(f: &mut Frame, area: Rect, app: &App) {
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
