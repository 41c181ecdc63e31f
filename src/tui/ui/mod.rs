//! Rendering: a pure function of the state, `draw(frame, &app)`. Status is always a word and
//! a glyph; colour only repeats it (and disappears under NO_COLOR). Tables build only the rows
//! that fit on screen.

//!
//! One file per view below this one (`hosts.rs`, `agents.rs`, `detail.rs`, `plan.rs`,
//! `rollout.rs`, `audit.rs`, `popups.rs`); the texts they share with the state machine (styles,
//! layout arithmetic, the detail's and the audit's lines) are [`super::text`]'s.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::action::{Mode, Pending, Popup, StatusKind, View};
use super::app::App;
use super::model::run::{RunKind, RunPhase};
use super::text::wrap::wrap_line;
use crate::diagnose::{ProbeSummary, Verdict};
use crate::present::verdict_label;
use crate::probe::Outcome as ProbeOutcome;
use crate::rollout::journal::{Outcome, RunState};
use crate::rollout::lifecycle::RunAction;
use crate::scan::{AgentState, HostState};

mod agents;
mod audit;
mod detail;
mod hosts;
mod plan;
mod popups;
mod rollout;
mod runs;

pub use agents::{findings_cell, AgentColumns};
pub use audit::audit_lines;
pub use detail::detail_lines;
pub use popups::help_entries;
use agents::*;
use audit::*;
use detail::*;
use hosts::*;
use plan::*;
use popups::*;
use rollout::*;
use runs::*;
pub use crate::tui::text::layout::elide_middle;
use crate::tui::text::layout::FOOTER;
pub use crate::tui::text::theme::Theme;

/// Rows of a bordered table with a header row on the app's terminal.
pub fn table_rows(app: &App) -> usize {
    crate::tui::text::layout::table_rows(app.size, &app.why_line())
}

fn header_height(app: &App) -> u16 {
    crate::tui::text::layout::header_height(&app.why_line(), app.size.0)
}

/// The header's "why" text (see [`App::why_line`]).
pub fn why_text(app: &App) -> String {
    app.why_line()
}

/// The why text wrapped to the terminal's width, at most three lines.
pub fn why_lines(app: &App) -> Vec<String> {
    crate::tui::text::layout::why_lines(&app.why_line(), app.size.0)
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
        View::Runs => draw_runs(f, main, app),
        View::Run => draw_run(f, main, app),
    }
    draw_footer(f, footer, app);
    match &app.popup {
        Some(Popup::Help) => draw_help(f, area, app),
        Some(Popup::Confirm(p)) => draw_confirm(f, area, app, p),
        Some(Popup::QuitRun) => draw_quit(f, area, app),
        Some(Popup::CanaryGate { run_id, canary, waves_left, agents_left }) => draw_gate(f, area, app, run_id, *canary, *waves_left, *agents_left),
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
    if let Some(c) = &app.context {
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
        // Only what the selected run's state allows (rollout::lifecycle::allowed_actions).
        View::Runs | View::Run => {
            let mut h = if app.view == View::Runs { vec![("j/k", "select", false), ("enter", "outcomes", false)] } else { vec![("j/k", "scroll", false)] };
            for a in app.runs_actions() {
                h.push(match a {
                    RunAction::ContinueHalted => ("P", "continue past the halt", true),
                    RunAction::Rollback => ("B", "roll back", true),
                    _ => ("P", "resume", true),
                });
            }
            h
        }
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

