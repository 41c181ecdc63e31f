//! The console's state machine: keys become typed [`Action`]s, one dispatcher ([`App::dispatch`])
//! applies them to the state (refusing mutations under `--read-only` right there) and returns the
//! [`Effect`]s the runtime must carry out (scans, plans, applies: always on spawned tasks, whose
//! results come back as [`Msg`]s through [`App::on_msg`]). No IO here: the whole console can be
//! driven in tests by feeding keys and messages.

//!
//! This file holds the state and the dispatcher; each view's handlers are in a file of their
//! own below it (`agents.rs`, `hosts.rs`, `plan.rs`, `rollout.rs`, `audit.rs`, plus `input.rs`
//! for the one-line input and `keys.rs` for the key map), and the state types they keep in
//! [`super::model`].

mod agents;
mod audit;
mod hosts;
mod input;
mod keys;
mod plan;
mod rollout;
mod runs;

use std::collections::{BTreeMap, BTreeSet};

use crossterm::event::KeyEvent;

use super::action::{Action, Effect, Mode, Msg, PlanFor, Popup, SortKey, Status, StatusKind, View};
use super::model::input::LineInput;
use super::model::plan::PlanView;
use super::model::run::RunProgress;
use crate::fleet::VerifyReport;
use crate::present::{stalled_causes, summary_line, why_text};
use crate::rollout::journal::RunOptions;
use crate::rollout::summary::RunSummary;
use crate::scan::{AgentState, FleetReport, HostState};

#[derive(Debug, Clone)]
pub struct AppOptions {
    pub read_only: bool,
    /// `Fleet::describe()` of the source.
    pub source: String,
    pub no_color: bool,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions { read_only: false, source: String::new(), no_color: false, size: (120, 40) }
    }
}

pub use super::model::filter::AgentIx;

pub struct App {
    pub read_only: bool,
    /// The named context in force, if any (the header names it; the runtime sets it).
    pub context: Option<String>,
    pub source: String,
    pub no_color: bool,
    pub size: (u16, u16),
    pub report: FleetReport,
    /// Hosts answered so far in the scan in progress; `None` when no scan runs.
    pub scanning: Option<usize>,
    pub scan_error: Option<String>,
    pub summary: String,
    pub why: String,
    pub(super) causes: Vec<(usize, &'static str)>,
    pub view: View,
    pub(super) stack: Vec<View>,
    pub popup: Option<Popup>,
    pub mode: Mode,
    pub input: LineInput,
    pub filter: String,
    pub(super) filter_before: String,
    /// The agents table's rows (filtered, sorted); rebuilt by [`App::sync`].
    pub rows: Vec<AgentIx>,
    /// The widest host and agent name of `rows` as shown (measured once per rebuild of the
    /// rows, not once a frame: at 10,000 rows that measuring was most of a frame).
    pub name_widths: std::cell::Cell<Option<(u16, u16)>>,
    pub sel: usize,
    pub offset: usize,
    pub host_sel: usize,
    pub host_offset: usize,
    /// In the Hosts view, the root cause in focus (above the hosts: `k` from the first host
    /// reaches them); Enter filters the agents to that cause.
    pub cause_sel: Option<usize>,
    pub sort: SortKey,
    pub sort_rev: bool,
    pub marks: BTreeSet<String>,
    pub detail: Option<String>,
    pub detail_scroll: usize,
    pub rollout_scroll: usize,
    pub audit_scroll: usize,
    pub plan: Option<PlanView>,
    pub planning: Option<PlanFor>,
    pub run: Option<RunProgress>,
    pub runs: Vec<RunSummary>,
    pub run_sel: usize,
    /// The run opened in the Run view (Enter in the Runs view).
    pub run_detail: Option<super::model::runs::RunDetail>,
    pub verify: BTreeMap<String, Result<VerifyReport, String>>,
    pub verifying: usize,
    pub status: Option<Status>,
    /// A run's summary a later message covers, until that message goes.
    pub held_summary: Option<Status>,
    pub opts: RunOptions,
    /// What every apply confirmation starts from (nothing typed in a cancelled one carries over).
    pub apply_defaults: super::model::confirm::ApplyForm,
    pub quit_after_run: bool,
    pub quitting: bool,
    /// Text for the terminal's clipboard (OSC 52), taken by the renderer, which owns the terminal.
    pub clipboard: Option<String>,
    /// Agents in the report (all, unfiltered); kept by [`App::sync`].
    pub total: usize,
    /// The rows need rebuilding (filter, sort or data changed).
    pub(super) dirty: bool,
    /// The data changed: the summary lines need recomputing too.
    pub(super) data_dirty: bool,
    /// The filter's index and its last results (see [`super::model::filter_index`]).
    pub(super) filter_index: super::model::filter_index::FilterIndex,
}

impl App {
    pub fn new(o: AppOptions) -> App {
        let mut app = App {
            read_only: o.read_only,
            context: None,
            source: o.source,
            no_color: o.no_color,
            size: o.size,
            report: FleetReport::default(),
            scanning: None,
            scan_error: None,
            summary: String::new(),
            why: String::new(),
            view: View::Agents,
            stack: Vec::new(),
            popup: None,
            mode: Mode::Normal,
            input: LineInput::default(),
            filter: String::new(),
            filter_before: String::new(),
            cause_sel: None,
            causes: Vec::new(),
            clipboard: None,
            audit_scroll: 0,
            rows: Vec::new(),
            name_widths: std::cell::Cell::new(None),
            sel: 0,
            offset: 0,
            host_sel: 0,
            host_offset: 0,
            sort: SortKey::Verdict,
            sort_rev: false,
            marks: BTreeSet::new(),
            detail: None,
            detail_scroll: 0,
            rollout_scroll: 0,
            plan: None,
            planning: None,
            run: None,
            runs: Vec::new(),
            run_sel: 0,
            run_detail: None,
            verify: BTreeMap::new(),
            verifying: 0,
            status: None,
            held_summary: None,
            opts: RunOptions { canary: 1, wave: "25%".into(), max_errors: "0".into() },
            apply_defaults: Default::default(),
            quit_after_run: false,
            quitting: false,
            total: 0,
            dirty: true,
            data_dirty: true,
            filter_index: Default::default(),
        };
        app.sync();
        app
    }

    /// A console showing `report` as if a scan had just finished (tests, benchmarks).
    pub fn with_report(o: AppOptions, report: FleetReport) -> App {
        let mut app = App::new(o);
        app.report = report;
        app.dirty = true;
        app.data_dirty = true;
        app.sync();
        app
    }

    // ------------------------------------------------------------------------------------
    // Derived state

    /// Rebuild what depends on the data, the filter and the sort (rows, summary lines) if any
    /// of them changed. Cheap when nothing did.
    pub fn sync(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        if std::mem::take(&mut self.data_dirty) {
            self.summary = summary_line(&self.report);
            self.causes = stalled_causes(&self.report);
            self.why = why_text(&self.causes);
            self.total = self.report.hosts.iter().map(|h| h.agents.len()).sum();
            self.filter_index.invalidate();
        }
        self.rebuild_rows();
        self.clamp();
    }

    pub(super) fn clamp(&mut self) {
        self.sel = self.sel.min(self.rows.len().saturating_sub(1));
        self.host_sel = self.host_sel.min(self.report.hosts.len().saturating_sub(1));
        self.run_sel = self.run_sel.min(self.runs.len().saturating_sub(1));
        let h = self.page();
        follow(&mut self.offset, self.sel, h);
        follow(&mut self.host_offset, self.host_sel, h);
    }

    /// Rows of a table that fit on screen (same arithmetic as the layout in `ui`).
    pub fn page(&self) -> usize {
        super::text::layout::table_rows(self.size, &self.why_line()).max(1)
    }

    pub fn agent_at(&self, ix: AgentIx) -> Option<&AgentState> {
        self.report.hosts.get(ix.0 as usize).and_then(|h| h.agents.get(ix.1 as usize))
    }

    pub fn host_of(&self, ix: AgentIx) -> Option<&HostState> {
        self.report.hosts.get(ix.0 as usize)
    }

    pub fn selected_agent(&self) -> Option<&AgentState> {
        self.rows.get(self.sel).and_then(|ix| self.agent_at(*ix))
    }

    pub fn find_agent(&self, id: &str) -> Option<(&HostState, &AgentState)> {
        self.report.hosts.iter().find_map(|h| h.agents.iter().find(|a| a.id() == id).map(|a| (h, a)))
    }

    pub fn detail_agent(&self) -> Option<(&HostState, &AgentState)> {
        self.detail.as_deref().and_then(|id| self.find_agent(id))
    }

    /// The root causes of the "why" line with their counts, most agents first: exactly the
    /// words [`root_cause`] gives each stalled agent (kept by [`App::sync`]).
    pub fn causes(&self) -> &[(usize, &'static str)] {
        &self.causes
    }

    /// The header's "why" text: the root causes, or what is known while the scan runs (never
    /// "nothing is stalled" before any host answered).
    pub fn why_line(&self) -> String {
        match self.scanning {
            Some(0) if self.total == 0 => "why: scanning… (the root causes appear as hosts answer)".to_string(),
            Some(_) => format!("why (so far): {}", self.why),
            None if self.report.hosts.is_empty() && self.summary.is_empty() => "why: no data yet".to_string(),
            None => format!("why: {}", self.why),
        }
    }

    pub fn run_active(&self) -> bool {
        self.run.as_ref().is_some_and(|r| r.phase.active())
    }

    /// The agents `p`, `a` and `v` act on: the marked ones, else the one in focus.
    pub fn targets(&self) -> Vec<String> {
        match self.view {
            View::Detail => return self.detail.iter().cloned().collect(),
            View::Plan => return self.plan.as_ref().map(|p| p.ids.clone()).unwrap_or_default(),
            _ => {}
        }
        if !self.marks.is_empty() {
            return self.marks.iter().cloned().collect();
        }
        match self.view {
            View::Agents => self.selected_agent().map(|a| vec![a.id()]).unwrap_or_default(),
            View::Hosts => self
                .report
                .hosts
                .get(self.host_sel)
                .map(|h| h.agents.iter().map(|a| a.id()).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// A message over a run's pinned summary keeps the summary aside: Esc (or the message
    /// going) brings it back; only Esc on the summary itself dismisses it.
    fn hold_summary(&mut self) {
        if self.status.as_ref().is_some_and(|s| s.pinned) {
            self.held_summary = self.status.take();
        }
    }

    /// The status line goes back to the run's summary, if one is pinned, else to nothing.
    pub(super) fn clear_status(&mut self) {
        if !self.status.as_ref().is_some_and(|s| s.pinned) {
            self.status = self.held_summary.take();
        }
    }

    pub(super) fn info(&mut self, text: impl Into<String>) {
        self.hold_summary();
        self.status = Some(Status { kind: StatusKind::Info, text: text.into(), pinned: false });
    }

    pub(super) fn error(&mut self, text: impl Into<String>) {
        self.hold_summary();
        self.status = Some(Status { kind: StatusKind::Error, text: text.into(), pinned: false });
    }

    /// News nobody asked for just now (a scan ending): shown unless a run's summary is pinned.
    pub(super) fn background_info(&mut self, text: impl Into<String>) {
        if !self.status.as_ref().is_some_and(|s| s.pinned) {
            self.info(text);
        }
    }

    pub(super) fn go(&mut self, v: View) {
        if self.view != v {
            self.stack.push(self.view);
            self.stack.retain(|x| *x != v);
            self.view = v;
        }
    }

    pub(super) fn back(&mut self) {
        self.view = self.stack.pop().unwrap_or(match self.view {
            View::Agents | View::Hosts => View::Hosts,
            _ => View::Agents,
        });
    }

    // ------------------------------------------------------------------------------------
    // Keys -> actions


    /// Key in, effects out (the runtime's entry point for keys).
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        match self.action_for(key) {
            Some(a) => self.dispatch(a),
            None => Vec::new(),
        }
    }

    // ------------------------------------------------------------------------------------
    // The dispatcher

    /// Apply one action. `--read-only` is enforced here: a mutating action is refused, with
    /// a message, before it can produce any effect.
    pub fn dispatch(&mut self, action: Action) -> Vec<Effect> {
        if self.read_only && action.is_mutating() {
            self.popup = None;
            self.error("read-only: apply, rollback, pause and abort are disabled (--read-only)");
            return Vec::new();
        }
        let fx = self.dispatch_inner(action);
        self.sync();
        fx
    }

    pub(super) fn dispatch_inner(&mut self, action: Action) -> Vec<Effect> {
        let fx;
        match action {
            Action::ClosePopup
            | Action::Back
            | Action::Help
            | Action::Refresh
            | Action::Move(_)
            | Action::Top
            | Action::Bottom
            | Action::PageUp
            | Action::PageDown
            | Action::NextView
            | Action::Go(_)
            | Action::Resize(..) => fx = self.navigate(action),
            Action::Open => {
                fx = match self.view {
                    View::Hosts => self.open_host(),
                    View::Agents => self.open_agent(),
                    View::Plan => self.toggle_plan_fold(),
                    View::Runs => self.open_run(),
                    _ => Vec::new(),
                }
            }
            Action::Verify
            | Action::ToggleMark
            | Action::MarkVisible
            | Action::ClearMarks
            | Action::Sort
            | Action::ReverseSort
            | Action::CopyId => fx = self.agents_action(action),
            Action::Preview | Action::Apply | Action::NextGroup(_) => fx = self.plan_action(action),
            Action::StartFilter
            | Action::StartCommand
            | Action::Complete
            | Action::Edit(_)
            | Action::CancelInput
            | Action::SubmitInput
            | Action::Command(_) => fx = self.input_action(action),
            Action::Quit
            | Action::QuitDetach
            | Action::QuitAbort
            | Action::ConfirmYes
            | Action::ConfirmNo
            | Action::FormField(_)
            | Action::FormInsert(_)
            | Action::FormBackspace
            | Action::FormDone
            | Action::TogglePauseAfterCanary
            | Action::CanaryContinue
            | Action::CanaryPause
            | Action::PauseResume
            | Action::Abort => fx = self.run_action(action),
            Action::Rollback if matches!(self.view, View::Runs | View::Run) => fx = self.runs_action(action),
            Action::Rollback => fx = self.run_action(action),
            Action::ResumeRun => fx = self.runs_action(action),
            Action::ScrollAudit(_) | Action::StartExport | Action::Export { .. } => fx = self.audit_action(action),
        }
        fx
    }

    /// Moving around: views, popups, the selection, the terminal's size.
    pub(super) fn navigate(&mut self, action: Action) -> Vec<Effect> {
        let mut fx = Vec::new();
        match action {
            Action::ClosePopup => self.popup = None,
            Action::Back => {
                if self.popup.take().is_some() {
                    self.clear_status();
                    return fx;
                } else if self.held_summary.is_some() && !self.status.as_ref().is_some_and(|s| s.pinned) {
                    // The run's summary again, where nothing else is said.
                    self.status = self.held_summary.take();
                    return fx;
                } else if self.view == View::Agents && !self.filter.is_empty() {
                    self.filter.clear();
                    self.dirty = true;
                } else {
                    self.back();
                }
                self.status = None;
            }
            Action::Help => self.popup = Some(Popup::Help),
            Action::Refresh => {
                if self.scanning.is_some() {
                    self.info("a scan is already running");
                } else {
                    self.scanning = Some(0);
                    self.scan_error = None;
                    fx.push(Effect::Scan);
                    if matches!(self.view, View::Audit | View::Runs) {
                        fx.push(Effect::LoadRuns);
                    }
                    if let (View::Run, Some(d)) = (self.view, &self.run_detail) {
                        fx.push(Effect::LoadRun { run_id: d.run_id.clone() });
                    }
                }
            }
            Action::Move(d) => self.move_by(d),
            Action::Top => self.move_to(0),
            Action::Bottom => self.move_to(usize::MAX),
            Action::PageUp => self.move_by(-(self.page() as isize)),
            Action::PageDown => self.move_by(self.page() as isize),
            Action::NextView => {
                let next = match self.view {
                    View::Hosts => View::Agents,
                    View::Agents | View::Detail | View::Plan if self.run.is_some() => View::Rollout,
                    View::Agents | View::Detail | View::Plan | View::Rollout => View::Audit,
                    View::Audit => View::Runs,
                    View::Runs | View::Run => View::Hosts,
                };
                fx.extend(self.goto(next));
            }
            Action::Go(v) => fx.extend(self.goto(v)),
            Action::Resize(w, h) => {
                self.size = (w, h);
                self.clamp();
            }
            _ => {}
        }
        fx
    }

    pub(super) fn goto(&mut self, v: View) -> Vec<Effect> {
        let mut fx = Vec::new();
        match v {
            View::Rollout if self.run.is_none() => {
                self.error("no run yet: mark agents, then `a` applies the fix");
                return fx;
            }
            View::Plan if self.plan.is_none() => {
                self.error("no plan yet: `p` previews the marked (or selected) agents");
                return fx;
            }
            View::Detail if self.detail.is_none() => return fx,
            View::Run if self.run_detail.is_none() => return fx,
            View::Audit | View::Runs => fx.push(Effect::LoadRuns),
            _ => {}
        }
        self.go(v);
        fx
    }


    pub(super) fn move_to(&mut self, pos: usize) {
        match self.view {
            View::Agents => self.sel = pos.min(self.rows.len().saturating_sub(1)),
            View::Hosts => {
                self.cause_sel = None;
                self.host_sel = pos.min(self.report.hosts.len().saturating_sub(1));
            }
            View::Audit | View::Runs => self.run_sel = pos.min(self.runs.len().saturating_sub(1)),
            View::Run => {
                let page = self.page();
                if let Some(d) = &mut self.run_detail {
                    d.scroll = pos.min(d.agents().len().saturating_sub(page));
                }
            }
            View::Detail => {
                let n = self
                    .detail_agent()
                    .map(|(h, a)| {
                        let theme = super::text::theme::Theme { color: !self.no_color };
                        super::text::detail::detail_lines(theme, self.marks.contains(&a.id()), self.verify.get(&a.id()), self.size.0, h, a).len()
                    })
                    .unwrap_or(0);
                self.detail_scroll = pos.min(n.saturating_sub(self.page()));
            }
            View::Plan => {
                let page = self.page();
                if let Some(p) = &mut self.plan {
                    p.scroll = pos.min(p.lines.len().saturating_sub(page));
                }
            }
            View::Rollout => {
                let n = self.run.as_ref().map(|r| r.ids.len().max(r.agents.len())).unwrap_or(0);
                self.rollout_scroll = pos.min(n.saturating_sub(1));
            }
        }
        self.clamp();
    }

    pub(super) fn move_by(&mut self, d: isize) {
        if self.view == View::Hosts && self.move_in_causes(d) {
            return;
        }
        let cur = match self.view {
            View::Agents => self.sel,
            View::Hosts => self.host_sel,
            View::Audit | View::Runs => self.run_sel,
            View::Run => self.run_detail.as_ref().map(|d| d.scroll).unwrap_or(0),
            View::Detail => self.detail_scroll,
            View::Plan => self.plan.as_ref().map(|p| p.scroll).unwrap_or(0),
            View::Rollout => self.rollout_scroll,
        };
        self.move_to(cur.saturating_add_signed(d));
    }


    // ------------------------------------------------------------------------------------
    // Results from tasks

    /// Take in one result from a spawned task. Call [`App::sync`] after a batch.
    pub fn on_msg(&mut self, msg: Msg) -> Vec<Effect> {
        let fx;
        match msg {
            Msg::Host(_) | Msg::ScanDone(_) => fx = self.scan_msg(msg),
            Msg::Planned { .. } => fx = self.plan_msg(msg),
            Msg::RunStarted { .. } | Msg::RunEvent(_) | Msg::RunDone(_) | Msg::RollbackDone { .. } | Msg::CanaryVerified(_) => fx = self.run_msg(msg),
            Msg::Verified { .. } => fx = self.agents_msg(msg),
            Msg::Runs(_) | Msg::Exported(_) => fx = self.audit_msg(msg),
            Msg::RunOutcomes { .. } | Msg::RunChecked { .. } => fx = self.runs_msg(msg),
        }
        fx
    }

}

fn follow(offset: &mut usize, sel: usize, h: usize) {
    if sel < *offset {
        *offset = sel;
    } else if sel >= *offset + h {
        *offset = sel + 1 - h;
    }
}
