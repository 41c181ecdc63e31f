//! The one-line input (the `/` filter and the `:` command line): editing, Tab completion, and
//! the commands it runs.

use std::path::PathBuf;

use crate::tui::action::{Action, Effect, Mode, Popup, SortKey, View};
use super::App;
use crate::present::Format;
use crate::tui::model::input::{complete, LineInput};

impl App {
    /// Keys of the filter and command line.
    pub(super) fn input_action(&mut self, action: Action) -> Vec<Effect> {
        let mut fx = Vec::new();
        match action {
            Action::StartFilter => {
                if !matches!(self.view, View::Agents) {
                    self.go(View::Agents);
                }
                self.filter_before = self.filter.clone();
                self.input = LineInput::selecting(&self.filter);
                self.mode = Mode::Filter;
            }
            Action::Complete => {
                let (text, choices) = complete(&self.input.text);
                if choices.len() > 1 {
                    self.info(format!("one of: {}", choices.join(" ")));
                } else {
                    self.clear_status();
                }
                self.input = LineInput::with(&text);
            }
            Action::StartCommand => {
                self.input = LineInput::default();
                self.mode = Mode::Command;
            }
            Action::Edit(e) => {
                self.input.apply(e);
                if self.mode == Mode::Filter {
                    self.filter = self.input.text.clone();
                    self.sel = 0;
                    self.dirty = true;
                }
            }
            Action::CancelInput => {
                if self.mode == Mode::Filter {
                    self.filter = std::mem::take(&mut self.filter_before);
                    self.dirty = true;
                }
                self.mode = Mode::Normal;
            }
            Action::SubmitInput => {
                let mode = std::mem::replace(&mut self.mode, Mode::Normal);
                let text = std::mem::take(&mut self.input).text;
                if mode == Mode::Command {
                    fx.extend(self.dispatch_inner(Action::Command(text)));
                } else {
                    self.filter = text.trim().to_string();
                    self.dirty = true;
                }
            }
            Action::Command(c) => fx.extend(self.command(&c)),
            _ => {}
        }
        fx
    }

    pub(super) fn command(&mut self, c: &str) -> Vec<Effect> {
        let mut words = c.split_whitespace();
        let Some(cmd) = words.next() else { return Vec::new() };
        let cmd = cmd.trim_start_matches(':');
        match cmd {
            "hosts" | "host" | "overview" => self.goto(View::Hosts),
            "agents" | "agent" => self.goto(View::Agents),
            "audit" => self.goto(View::Audit),
            "runs" => self.goto(View::Runs),
            "rollout" | "run" => self.goto(View::Rollout),
            "plan" => self.goto(View::Plan),
            "help" => {
                self.popup = Some(Popup::Help);
                Vec::new()
            }
            "q" | "quit" => self.dispatch_inner(Action::Quit),
            "export" | "report" => {
                let fmt = words.next().unwrap_or("md");
                let Some(format) = Format::parse(fmt) else {
                    self.error(format!("export: unknown format `{fmt}` (md, json or csv)"));
                    return Vec::new();
                };
                let path = words
                    .next()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(format!("codex-fleet-report-{}.{}", crate::fsutil::utc_stamp(), format.ext())));
                self.dispatch_inner(Action::Export { format, path })
            }
            "filter" => {
                self.filter = words.collect::<Vec<_>>().join(" ");
                self.dirty = true;
                self.goto(View::Agents)
            }
            "sort" => {
                match words.next() {
                    Some("verdict") => self.sort = SortKey::Verdict,
                    Some("host") => self.sort = SortKey::Host,
                    Some("name") => self.sort = SortKey::Name,
                    Some("mode") => self.sort = SortKey::Mode,
                    _ => self.error("sort: verdict, host, name or mode"),
                }
                self.dirty = true;
                Vec::new()
            }
            other => {
                self.error(format!(
                    "unknown command `:{other}` (hosts, agents, audit, rollout, plan, export md|json|csv [FILE], help, quit)"
                ));
                Vec::new()
            }
        }
    }
}
