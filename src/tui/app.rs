//! The console's state machine: keys become typed [`Action`]s, one dispatcher ([`App::dispatch`])
//! applies them to the state (refusing mutations under `--read-only` right there) and returns the
//! [`Effect`]s the runtime must carry out (scans, plans, applies: always on spawned tasks, whose
//! results come back as [`Msg`]s through [`App::on_msg`]). No IO here: the whole console can be
//! driven in tests by feeding keys and messages.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::cli::fleet_cmds::{root_cause, stalled_causes, summary_line, why_text};
use crate::diagnose::{Diagnosis, Verdict};
use crate::fleet::VerifyReport;
use crate::plan::Plan;
use crate::rollout::engine::{waves, Event, RunResult, Size};
use crate::rollout::journal::{Outcome, RunOptions, RunState, Step};
use crate::scan::{AgentState, FleetReport, HostState};

/// Report formats the audit view exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Md,
    Json,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "md" | "markdown" => Some(Format::Md),
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
    pub fn ext(self) -> &'static str {
        match self {
            Format::Md => "md",
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Fleet overview: hosts, reachability, counts by verdict.
    Hosts,
    /// The agents table.
    Agents,
    /// One agent in full.
    Detail,
    /// Diff preview of a plan.
    Plan,
    /// Apply / rollout progress.
    Rollout,
    /// Re-provision audit and run history.
    Audit,
}

impl View {
    pub fn title(self) -> &'static str {
        match self {
            View::Hosts => "Hosts",
            View::Agents => "Agents",
            View::Detail => "Agent",
            View::Plan => "Plan",
            View::Rollout => "Rollout",
            View::Audit => "Audit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Verdict,
    Host,
    Name,
    Mode,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Verdict => SortKey::Host,
            SortKey::Host => SortKey::Name,
            SortKey::Name => SortKey::Mode,
            SortKey::Mode => SortKey::Verdict,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Verdict => "verdict",
            SortKey::Host => "host",
            SortKey::Name => "name",
            SortKey::Mode => "mode",
        }
    }
}

/// What a plan being computed is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFor {
    Preview,
    Apply,
}

/// Editing keys of the one-line input (filter, command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Insert(char),
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    Clear,
}

/// Everything the operator can ask for. Produced from keys by [`App::action_for`]; applied by
/// [`App::dispatch`], the one place where `--read-only` is enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Quit,
    Back,
    Help,
    Refresh,
    Verify,
    Move(isize),
    Top,
    Bottom,
    PageUp,
    PageDown,
    Open,
    NextView,
    Go(View),
    ToggleMark,
    MarkVisible,
    ClearMarks,
    Sort,
    ReverseSort,
    Preview,
    Apply,
    StartFilter,
    StartCommand,
    /// `c`: copy the agent in focus's id (what `--agent` takes) to the clipboard.
    CopyId,
    /// Tab on the `:` line: complete the command word (or its argument).
    Complete,
    /// `J` / `K` in the audit view: scroll the by-image list (j/k move in the runs).
    ScrollAudit(isize),
    /// `n` / `N` in the plan view: the next / previous group of identical changes.
    NextGroup(isize),
    /// `e` in the audit view: the command line, prefilled with an export command.
    StartExport,
    Edit(Edit),
    SubmitInput,
    CancelInput,
    /// Run a command-line command (`hosts`, `agents`, `audit`, `rollout`, `export md FILE`...).
    Command(String),
    ConfirmYes,
    ConfirmNo,
    CycleCanary,
    CycleWave,
    CycleMaxErrors,
    PauseResume,
    Abort,
    /// Roll back the run in context (the rollout view's run, or the audit view's selected run).
    Rollback,
    QuitDetach,
    QuitAbort,
    ClosePopup,
    Export { format: Format, path: PathBuf },
    Resize(u16, u16),
}

impl Action {
    /// Actions that change the fleet (or a run). Refused under `--read-only`.
    pub fn is_mutating(&self) -> bool {
        matches!(self, Action::Apply | Action::ConfirmYes | Action::PauseResume | Action::Abort | Action::Rollback)
    }
}

/// Work for the runtime, always done off the UI loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Scan,
    Plan { ids: Vec<String>, purpose: PlanFor },
    Apply { plan: Plan, opts: RunOptions },
    Resume { run_id: String },
    /// Ask the running engine to stop after the steps in flight.
    Stop,
    Rollback { run_id: String },
    Verify { ids: Vec<String> },
    LoadRuns,
    Export { format: Format, path: PathBuf },
    Quit,
}

/// One run in the journal, as the audit view lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub run_id: String,
    pub state: String,
    pub started: String,
    pub operator: String,
    pub agents: usize,
    pub verified: usize,
    pub failed: usize,
    pub skipped: usize,
    pub unfinished: usize,
}

/// Results coming back from spawned tasks.
#[derive(Debug, Clone)]
pub enum Msg {
    /// A host answered the scan.
    Host(HostState),
    ScanDone(Result<FleetReport, String>),
    Planned { plan: Plan, ids: Vec<String>, purpose: PlanFor },
    RunStarted { run_id: String },
    RunEvent(Event),
    RunDone(Result<RunResult, String>),
    RollbackDone { run_id: String, result: Result<Vec<(String, Outcome)>, String> },
    Verified { id: String, result: Result<VerifyReport, String> },
    Runs(Vec<RunSummary>),
    Exported(Result<PathBuf, String>),
}

/// A destructive action held by the confirmation popup, exactly as it will be dispatched.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    Apply { plan: Plan, opts: RunOptions },
    Rollback { run_id: String, agents: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    Help,
    Confirm(Pending),
    /// `q` while a run is in progress: detach or abort.
    QuitRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Filter,
    Command,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineInput {
    pub text: String,
    /// Cursor position in chars.
    pub cursor: usize,
    /// The whole text is selected: typing replaces it, Backspace clears it, a cursor key keeps
    /// it (`/` opens on the current filter this way, like a browser's address bar).
    pub selected: bool,
}

impl LineInput {
    pub fn with(text: &str) -> LineInput {
        LineInput { text: text.into(), cursor: text.chars().count(), selected: false }
    }
    /// `text`, wholly selected (see [`LineInput::selected`]).
    pub fn selecting(text: &str) -> LineInput {
        LineInput { selected: !text.is_empty(), ..LineInput::with(text) }
    }
    fn byte(&self, c: usize) -> usize {
        self.text.char_indices().nth(c).map(|(i, _)| i).unwrap_or(self.text.len())
    }
    pub fn apply(&mut self, e: Edit) {
        if std::mem::take(&mut self.selected) && matches!(e, Edit::Insert(_) | Edit::Backspace | Edit::Delete) {
            self.text.clear();
            self.cursor = 0;
            if !matches!(e, Edit::Insert(_)) {
                return;
            }
        }
        let n = self.text.chars().count();
        match e {
            Edit::Insert(ch) => {
                let b = self.byte(self.cursor);
                self.text.insert(b, ch);
                self.cursor += 1;
            }
            Edit::Backspace if self.cursor > 0 => {
                let b = self.byte(self.cursor - 1);
                self.text.remove(b);
                self.cursor -= 1;
            }
            Edit::Delete if self.cursor < n => {
                let b = self.byte(self.cursor);
                self.text.remove(b);
            }
            Edit::Left => self.cursor = self.cursor.saturating_sub(1),
            Edit::Right => self.cursor = (self.cursor + 1).min(n),
            Edit::Home => self.cursor = 0,
            Edit::End => self.cursor = n,
            Edit::Clear => *self = LineInput::default(),
            _ => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusKind {
    Info,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub kind: StatusKind,
    pub text: String,
    /// A run's summary: background news (a scan ending) does not replace it; a key does.
    pub pinned: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Apply,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPhase {
    Starting,
    Running,
    /// Stop requested to pause: finishing the steps in flight.
    Pausing,
    Paused,
    /// Stop requested to abort: finishing the steps in flight.
    Stopping,
    Finished,
}

impl RunPhase {
    pub fn active(self) -> bool {
        matches!(self, RunPhase::Starting | RunPhase::Running | RunPhase::Pausing | RunPhase::Stopping)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            RunPhase::Starting => "starting",
            RunPhase::Running => "running",
            RunPhase::Pausing => "pausing after the steps in flight",
            RunPhase::Paused => "paused (resumable)",
            RunPhase::Stopping => "aborting after the steps in flight",
            RunPhase::Finished => "finished",
        }
    }
}

/// One agent's progress in the run on screen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentRun {
    pub step: Option<Step>,
    pub phase: String,
    pub detail: String,
    pub outcome: Option<Outcome>,
}

/// The run (apply or rollback) this console started.
#[derive(Debug, Clone, PartialEq)]
pub struct RunProgress {
    pub kind: RunKind,
    pub run_id: Option<String>,
    pub opts: RunOptions,
    /// Planned agent ids in plan order.
    pub ids: Vec<String>,
    pub waves: Vec<Vec<String>>,
    pub current_wave: Option<usize>,
    pub agents: BTreeMap<String, AgentRun>,
    pub phase: RunPhase,
    pub aborted: bool,
    pub state: Option<RunState>,
    pub halted: Option<String>,
    pub error: Option<String>,
}

impl RunProgress {
    pub fn count(&self, word: &str) -> usize {
        self.agents.values().filter(|a| a.outcome.as_ref().is_some_and(|o| o.word() == word)).count()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanView {
    pub plan: Plan,
    /// The agents asked for (marked, else the selected one).
    pub ids: Vec<String>,
    pub lines: Vec<String>,
    pub scroll: usize,
    /// Every line (Enter toggles): the managed block unfolded, every agent named.
    pub full: bool,
}

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

/// Index of an agent: (host, agent) in `report.hosts`.
pub type AgentIx = (u32, u32);

pub struct App {
    pub read_only: bool,
    pub source: String,
    pub no_color: bool,
    pub size: (u16, u16),
    pub report: FleetReport,
    /// Hosts answered so far in the scan in progress; `None` when no scan runs.
    pub scanning: Option<usize>,
    pub scan_error: Option<String>,
    pub summary: String,
    pub why: String,
    causes: Vec<(usize, &'static str)>,
    pub view: View,
    stack: Vec<View>,
    pub popup: Option<Popup>,
    pub mode: Mode,
    pub input: LineInput,
    pub filter: String,
    filter_before: String,
    /// The agents table's rows (filtered, sorted); rebuilt by [`App::sync`].
    pub rows: Vec<AgentIx>,
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
    pub verify: BTreeMap<String, Result<VerifyReport, String>>,
    pub verifying: usize,
    pub status: Option<Status>,
    pub opts: RunOptions,
    pub quit_after_run: bool,
    pub quitting: bool,
    /// Text for the terminal's clipboard (OSC 52), taken by the renderer, which owns the terminal.
    pub clipboard: Option<String>,
    /// Agents in the report (all, unfiltered); kept by [`App::sync`].
    pub total: usize,
    /// The rows need rebuilding (filter, sort or data changed).
    dirty: bool,
    /// The data changed: the summary lines need recomputing too.
    data_dirty: bool,
    filter_index: super::filter_index::FilterIndex,
}

const CANARY_CHOICES: [usize; 4] = [1, 2, 5, 0];
const WAVE_CHOICES: [&str; 5] = ["25%", "50%", "100%", "1", "10%"];
const MAX_ERR_CHOICES: [&str; 3] = ["0", "1", "10%"];

fn cycle<T: PartialEq + Clone>(choices: &[T], cur: &T) -> T {
    let i = choices.iter().position(|c| c == cur).map(|i| i + 1).unwrap_or(0);
    choices[i % choices.len()].clone()
}

/// Severity order for the default sort: what blocks the pipeline first.
pub fn verdict_rank(v: Verdict) -> u8 {
    match v {
        Verdict::Stalled => 0,
        Verdict::Unknown => 1,
        Verdict::AtRisk => 2,
        Verdict::Healthy => 3,
    }
}

/// The part of `report` holding exactly the agents `ids` (to plan them off the UI loop).
pub fn subset(report: &FleetReport, ids: &[String]) -> FleetReport {
    let want: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    FleetReport {
        hosts: report
            .hosts
            .iter()
            .filter(|h| h.agents.iter().any(|a| want.contains(a.id().as_str())))
            .map(|h| HostState {
                host: h.host.clone(),
                agents: h.agents.iter().filter(|a| want.contains(a.id().as_str())).cloned().collect(),
            })
            .collect(),
    }
}

/// The plan for exactly `ids`, made the way `plan` makes it for the whole fleet: agents that a
/// config change cannot cure are listed as needing attention (with why), never planned.
pub fn plan_subset(report: &FleetReport, ids: &[String], source: &str, created: &str) -> Plan {
    crate::plan::plan(&subset(report, ids), &[], source, created)
}

impl App {
    pub fn new(o: AppOptions) -> App {
        let mut app = App {
            read_only: o.read_only,
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
            verify: BTreeMap::new(),
            verifying: 0,
            status: None,
            opts: RunOptions { canary: 1, wave: "25%".into(), max_errors: "0".into() },
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
        let keep = self.selected_agent().map(|a| (a.read.agent.host.clone(), a.read.agent.name.clone()));
        // Filter and sort (incrementally: the index of the searchable words, the sorted order and
        // the last results are kept between keystrokes; see `filter_index`).
        self.rows = self.filter_index.rows(&self.report, &self.causes, &self.filter, self.sort, self.sort_rev);
        if let Some((host, name)) = keep {
            let same = |a: &AgentState| a.read.agent.name == name && a.read.agent.host == host;
            if let Some(i) = self.rows.iter().position(|ix| self.agent_at(*ix).is_some_and(same)) {
                self.sel = i;
            }
        }
        self.clamp();
    }

    fn clamp(&mut self) {
        self.sel = self.sel.min(self.rows.len().saturating_sub(1));
        self.host_sel = self.host_sel.min(self.report.hosts.len().saturating_sub(1));
        self.run_sel = self.run_sel.min(self.runs.len().saturating_sub(1));
        let h = self.page();
        follow(&mut self.offset, self.sel, h);
        follow(&mut self.host_offset, self.host_sel, h);
    }

    /// Rows of a table that fit on screen (same arithmetic as the layout in `ui`).
    pub fn page(&self) -> usize {
        super::ui::table_rows(self).max(1)
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

    fn info(&mut self, text: impl Into<String>) {
        self.status = Some(Status { kind: StatusKind::Info, text: text.into(), pinned: false });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.status = Some(Status { kind: StatusKind::Error, text: text.into(), pinned: false });
    }

    /// News nobody asked for just now (a scan ending): shown unless a run's summary is pinned.
    fn background_info(&mut self, text: impl Into<String>) {
        if !self.status.as_ref().is_some_and(|s| s.pinned) {
            self.info(text);
        }
    }

    fn go(&mut self, v: View) {
        if self.view != v {
            self.stack.push(self.view);
            self.stack.retain(|x| *x != v);
            self.view = v;
        }
    }

    fn back(&mut self) {
        self.view = self.stack.pop().unwrap_or(match self.view {
            View::Agents | View::Hosts => View::Hosts,
            _ => View::Agents,
        });
    }

    // ------------------------------------------------------------------------------------
    // Keys -> actions

    /// The action a key means here and now (mode, popup, view), if any.
    pub fn action_for(&self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            return Some(Action::Quit);
        }
        if self.mode != Mode::Normal {
            return Some(match key.code {
                KeyCode::Esc => Action::CancelInput,
                KeyCode::Enter => Action::SubmitInput,
                KeyCode::Tab if self.mode == Mode::Command => Action::Complete,
                KeyCode::Backspace => Action::Edit(Edit::Backspace),
                KeyCode::Delete => Action::Edit(Edit::Delete),
                KeyCode::Left => Action::Edit(Edit::Left),
                KeyCode::Right => Action::Edit(Edit::Right),
                KeyCode::Home => Action::Edit(Edit::Home),
                KeyCode::End => Action::Edit(Edit::End),
                KeyCode::Char('u') if ctrl => Action::Edit(Edit::Clear),
                KeyCode::Char('a') if ctrl => Action::Edit(Edit::Home),
                KeyCode::Char('e') if ctrl => Action::Edit(Edit::End),
                KeyCode::Char(c) if !ctrl => Action::Edit(Edit::Insert(c)),
                _ => return None,
            });
        }
        match &self.popup {
            Some(Popup::Help) => {
                return match key.code {
                    KeyCode::Char('q') | KeyCode::Char('?') | KeyCode::Esc | KeyCode::Enter => Some(Action::ClosePopup),
                    _ => None,
                }
            }
            Some(Popup::Confirm(p)) => {
                return Some(match key.code {
                    KeyCode::Char('y') | KeyCode::Char('Y') => Action::ConfirmYes,
                    KeyCode::Char('c') if matches!(p, Pending::Apply { .. }) => Action::CycleCanary,
                    KeyCode::Char('w') if matches!(p, Pending::Apply { .. }) => Action::CycleWave,
                    KeyCode::Char('e') if matches!(p, Pending::Apply { .. }) => Action::CycleMaxErrors,
                    _ => Action::ConfirmNo,
                })
            }
            Some(Popup::QuitRun) => {
                return match key.code {
                    KeyCode::Char('d') | KeyCode::Char('D') => Some(Action::QuitDetach),
                    KeyCode::Char('a') | KeyCode::Char('A') => Some(Action::QuitAbort),
                    KeyCode::Esc | KeyCode::Char('n') | KeyCode::Char('q') => Some(Action::ClosePopup),
                    _ => None,
                }
            }
            None => {}
        }
        Some(match key.code {
            KeyCode::Char('q') => Action::Quit,
            KeyCode::Esc => Action::Back,
            KeyCode::Char('?') => Action::Help,
            KeyCode::Char('r') => Action::Refresh,
            KeyCode::Char('v') => Action::Verify,
            KeyCode::Char('j') | KeyCode::Down => Action::Move(1),
            KeyCode::Char('k') | KeyCode::Up => Action::Move(-1),
            KeyCode::Char('g') | KeyCode::Home => Action::Top,
            KeyCode::Char('G') | KeyCode::End => Action::Bottom,
            KeyCode::PageUp => Action::PageUp,
            KeyCode::PageDown => Action::PageDown,
            KeyCode::Char('b') if ctrl => Action::PageUp,
            KeyCode::Char('f') if ctrl => Action::PageDown,
            KeyCode::Enter => Action::Open,
            KeyCode::Tab => Action::NextView,
            KeyCode::Char(' ') => Action::ToggleMark,
            KeyCode::Char('*') => Action::MarkVisible,
            KeyCode::Char('u') => Action::ClearMarks,
            KeyCode::Char('s') => Action::Sort,
            KeyCode::Char('S') => Action::ReverseSort,
            KeyCode::Char('p') => Action::Preview,
            KeyCode::Char('a') => Action::Apply,
            KeyCode::Char('/') => Action::StartFilter,
            KeyCode::Char('c') if matches!(self.view, View::Agents | View::Detail) => Action::CopyId,
            KeyCode::Char(':') => Action::StartCommand,
            KeyCode::Char('e') if self.view == View::Audit => Action::StartExport,
            KeyCode::Char('n') if self.view == View::Plan => Action::NextGroup(1),
            KeyCode::Char('N') if self.view == View::Plan => Action::NextGroup(-1),
            KeyCode::Char('J') if self.view == View::Audit => Action::ScrollAudit(1),
            KeyCode::Char('K') if self.view == View::Audit => Action::ScrollAudit(-1),
            KeyCode::Char('P') if self.view == View::Rollout => Action::PauseResume,
            KeyCode::Char('X') if self.view == View::Rollout => Action::Abort,
            KeyCode::Char('B') if matches!(self.view, View::Rollout | View::Audit) => Action::Rollback,
            _ => return None,
        })
    }

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

    fn dispatch_inner(&mut self, action: Action) -> Vec<Effect> {
        let mut fx = Vec::new();
        match action {
            Action::Quit => {
                if self.run_active() {
                    self.popup = Some(Popup::QuitRun);
                } else {
                    self.quitting = true;
                    fx.push(Effect::Quit);
                }
            }
            Action::QuitDetach => {
                self.popup = None;
                self.quitting = true;
                fx.push(Effect::Quit);
            }
            Action::QuitAbort => {
                self.popup = None;
                if self.run_active() {
                    self.quit_after_run = true;
                    if let Some(r) = &mut self.run {
                        r.phase = RunPhase::Stopping;
                        r.aborted = true;
                    }
                    self.info("aborting after the steps in flight, then quitting");
                    fx.push(Effect::Stop);
                } else {
                    self.quitting = true;
                    fx.push(Effect::Quit);
                }
            }
            Action::ClosePopup => self.popup = None,
            Action::Back => {
                if self.popup.take().is_some() {
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
                    if self.view == View::Audit {
                        fx.push(Effect::LoadRuns);
                    }
                }
            }
            Action::Verify => {
                let ids = self.targets();
                if ids.is_empty() {
                    self.error("nothing to verify: select or mark agents");
                } else {
                    self.verifying += ids.len();
                    for id in &ids {
                        self.verify.remove(id);
                    }
                    self.info(format!("verifying {} agent(s)…", ids.len()));
                    fx.push(Effect::Verify { ids });
                }
            }
            Action::Move(d) => self.move_by(d),
            Action::Top => self.move_to(0),
            Action::Bottom => self.move_to(usize::MAX),
            Action::PageUp => self.move_by(-(self.page() as isize)),
            Action::PageDown => self.move_by(self.page() as isize),
            Action::Open => match self.view {
                View::Hosts => {
                    if let Some((_, cause)) = self.cause_sel.and_then(|i| self.causes.get(i)) {
                        self.filter = cause.to_string();
                        self.dirty = true;
                        self.go(View::Agents);
                    } else if let Some(h) = self.report.hosts.get(self.host_sel) {
                        // That host's identity, exactly: never a substring of other hosts' names
                        // (`ws-us-east-2-100` must not pull in -1000 and -1001).
                        self.filter = format!("{HOST_TERM}{}", h.host.id);
                        self.dirty = true;
                        self.go(View::Agents);
                    }
                }
                View::Agents => {
                    if let Some(a) = self.selected_agent() {
                        self.detail = Some(a.id());
                        self.detail_scroll = 0;
                        self.go(View::Detail);
                    }
                }
                View::Plan => {
                    // Enter folds / unfolds: the managed block's lines and every agent's id.
                    let report = &self.report;
                    if let Some(p) = &mut self.plan {
                        p.full = !p.full;
                        p.lines = plan_lines(&p.plan, &p.ids, report, p.full);
                        p.scroll = p.scroll.min(p.lines.len().saturating_sub(1));
                    }
                }
                _ => {}
            },
            Action::NextView => {
                let next = match self.view {
                    View::Hosts => View::Agents,
                    View::Agents | View::Detail | View::Plan if self.run.is_some() => View::Rollout,
                    View::Agents | View::Detail | View::Plan | View::Rollout => View::Audit,
                    View::Audit => View::Hosts,
                };
                fx.extend(self.goto(next));
            }
            Action::Go(v) => fx.extend(self.goto(v)),
            Action::ToggleMark => {
                if let Some(id) = match self.view {
                    View::Agents => self.selected_agent().map(|a| a.id()),
                    View::Detail => self.detail.clone(),
                    _ => None,
                } {
                    if !self.marks.remove(&id) {
                        self.marks.insert(id);
                    }
                    if self.view == View::Agents {
                        self.move_by(1);
                    }
                }
            }
            Action::MarkVisible => {
                let ids: Vec<String> = self.rows.iter().filter_map(|ix| self.agent_at(*ix)).map(|a| a.id()).collect();
                let n = ids.len();
                self.marks.extend(ids);
                self.info(format!("marked {n} agent(s) ({} in all)", self.marks.len()));
            }
            Action::ClearMarks => {
                self.marks.clear();
                self.info("marks cleared");
            }
            Action::Sort => {
                self.sort = self.sort.next();
                self.dirty = true;
            }
            Action::ReverseSort => {
                self.sort_rev = !self.sort_rev;
                self.dirty = true;
            }
            Action::Preview | Action::Apply => {
                let purpose = if action == Action::Apply { PlanFor::Apply } else { PlanFor::Preview };
                if purpose == PlanFor::Apply && self.run_active() {
                    self.error("a run is in progress; wait for it, or pause/abort it in the rollout view");
                    return fx;
                }
                let ids = self.targets();
                if ids.is_empty() {
                    self.error("select or mark agents first (space marks, * marks every visible row)");
                } else {
                    self.planning = Some(purpose);
                    self.info(format!("planning {} agent(s)…", ids.len()));
                    fx.push(Effect::Plan { ids, purpose });
                }
            }
            Action::StartFilter => {
                if !matches!(self.view, View::Agents) {
                    self.go(View::Agents);
                }
                self.filter_before = self.filter.clone();
                self.input = LineInput::selecting(&self.filter);
                self.mode = Mode::Filter;
            }
            Action::NextGroup(d) => {
                if let Some(p) = &mut self.plan {
                    let starts: Vec<usize> =
                        p.lines.iter().enumerate().filter(|(_, l)| l.starts_with("== ")).map(|(i, _)| i).collect();
                    let next = if d > 0 {
                        starts.iter().find(|&&i| i > p.scroll).copied()
                    } else {
                        starts.iter().rev().find(|&&i| i < p.scroll).copied()
                    };
                    match next {
                        Some(i) => p.scroll = i,
                        None => self.info(if d > 0 { "last group" } else { "first group" }),
                    }
                }
            }
            Action::ScrollAudit(d) => {
                // Wrapped lines count too: allow up to three screen lines per logical line.
                let n = super::ui::audit_lines(self).len() * 3;
                self.audit_scroll = self.audit_scroll.saturating_add_signed(d).min(n.saturating_sub(1));
            }
            Action::Complete => {
                let (text, choices) = complete(&self.input.text);
                if choices.len() > 1 {
                    self.info(format!("one of: {}", choices.join(" ")));
                } else {
                    self.status = None;
                }
                self.input = LineInput::with(&text);
            }
            Action::CopyId => {
                let id = match self.view {
                    View::Detail => self.detail_agent().map(|(_, a)| a.id()),
                    _ => self.selected_agent().map(|a| a.id()),
                };
                match id {
                    Some(id) => {
                        // The id is printed too: terminals without OSC 52 lose the copy silently,
                        // and the status line can still be selected with the mouse.
                        self.info(format!("copied to the clipboard (OSC 52): {id}"));
                        self.clipboard = Some(id);
                    }
                    None => self.error("nothing to copy: select an agent"),
                }
            }
            Action::StartCommand => {
                self.input = LineInput::default();
                self.mode = Mode::Command;
            }
            Action::StartExport => {
                let stamp = crate::fsutil::utc_stamp();
                self.input = LineInput::with(&format!("export md codex-fleet-report-{stamp}.md"));
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
            Action::ConfirmNo => {
                self.popup = None;
                self.info("not confirmed; nothing changed");
            }
            Action::CycleCanary | Action::CycleWave | Action::CycleMaxErrors => {
                if let Some(Popup::Confirm(Pending::Apply { opts, .. })) = &mut self.popup {
                    match action {
                        Action::CycleCanary => opts.canary = cycle(&CANARY_CHOICES, &opts.canary),
                        Action::CycleWave => opts.wave = cycle(&WAVE_CHOICES.map(String::from), &opts.wave),
                        _ => opts.max_errors = cycle(&MAX_ERR_CHOICES.map(String::from), &opts.max_errors),
                    }
                    self.opts = opts.clone();
                }
            }
            Action::ConfirmYes => match self.popup.take() {
                Some(Popup::Confirm(Pending::Apply { plan, opts })) => {
                    let ids: Vec<String> = plan.agents.iter().map(|a| a.agent.id()).collect();
                    let wave = Size::parse(&opts.wave).unwrap_or(Size::Percent(25));
                    self.run = Some(RunProgress {
                        kind: RunKind::Apply,
                        run_id: None,
                        waves: waves(&ids, opts.canary, wave),
                        agents: ids.iter().map(|id| (id.clone(), AgentRun::default())).collect(),
                        ids,
                        opts: opts.clone(),
                        current_wave: None,
                        phase: RunPhase::Starting,
                        aborted: false,
                        state: None,
                        halted: None,
                        error: None,
                    });
                    self.marks.clear();
                    self.go(View::Rollout);
                    self.info("run starting");
                    fx.push(Effect::Apply { plan, opts });
                }
                Some(Popup::Confirm(Pending::Rollback { run_id, .. })) => {
                    self.run = Some(RunProgress {
                        kind: RunKind::Rollback,
                        run_id: Some(run_id.clone()),
                        opts: self.opts.clone(),
                        ids: Vec::new(),
                        waves: Vec::new(),
                        current_wave: None,
                        agents: BTreeMap::new(),
                        phase: RunPhase::Running,
                        aborted: false,
                        state: None,
                        halted: None,
                        error: None,
                    });
                    self.go(View::Rollout);
                    self.info(format!("rolling back run {run_id}"));
                    fx.push(Effect::Rollback { run_id });
                }
                other => self.popup = other,
            },
            Action::PauseResume => match self.run.as_mut() {
                Some(r) if r.kind == RunKind::Apply && r.phase == RunPhase::Running => {
                    r.phase = RunPhase::Pausing;
                    fx.push(Effect::Stop);
                    self.info("pausing after the steps in flight");
                }
                Some(r) if r.phase == RunPhase::Paused => {
                    if let Some(id) = r.run_id.clone() {
                        r.phase = RunPhase::Running;
                        fx.push(Effect::Resume { run_id: id });
                        self.info("resuming");
                    }
                }
                _ => self.error("no run to pause or resume"),
            },
            Action::Abort => match self.run.as_mut() {
                Some(r) if r.kind == RunKind::Apply && matches!(r.phase, RunPhase::Running | RunPhase::Starting | RunPhase::Pausing) => {
                    r.phase = RunPhase::Stopping;
                    r.aborted = true;
                    fx.push(Effect::Stop);
                    self.info("aborting after the steps in flight; the run stays resumable");
                }
                Some(r) if r.phase == RunPhase::Paused => {
                    r.phase = RunPhase::Finished;
                    r.aborted = true;
                    let id = r.run_id.clone().unwrap_or_default();
                    self.info(format!("aborted; resume later with `codex-fleet apply --resume {id}`"));
                }
                _ => self.error("no run in progress"),
            },
            Action::Rollback => {
                let run_id = match self.view {
                    View::Rollout => self
                        .run
                        .as_ref()
                        .filter(|r| r.kind == RunKind::Apply && !r.phase.active())
                        .and_then(|r| r.run_id.clone()),
                    View::Audit => self.runs.get(self.run_sel).map(|r| r.run_id.clone()),
                    _ => None,
                };
                match run_id {
                    _ if self.run_active() => self.error("a run is in progress"),
                    Some(run_id) => {
                        let agents = self.runs.iter().find(|r| r.run_id == run_id).map(|r| r.agents).unwrap_or_else(|| {
                            self.run.as_ref().map(|r| r.ids.len()).unwrap_or(0)
                        });
                        self.popup = Some(Popup::Confirm(Pending::Rollback { run_id, agents }));
                    }
                    None => self.error("no finished run here to roll back"),
                }
            }
            Action::Export { format, path } => {
                self.info(format!("exporting to {}…", path.display()));
                fx.push(Effect::Export { format, path });
            }
            Action::Resize(w, h) => {
                self.size = (w, h);
                self.clamp();
            }
        }
        fx
    }

    fn goto(&mut self, v: View) -> Vec<Effect> {
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
            View::Audit => fx.push(Effect::LoadRuns),
            _ => {}
        }
        self.go(v);
        fx
    }

    fn command(&mut self, c: &str) -> Vec<Effect> {
        let mut words = c.split_whitespace();
        let Some(cmd) = words.next() else { return Vec::new() };
        let cmd = cmd.trim_start_matches(':');
        match cmd {
            "hosts" | "host" | "overview" => self.goto(View::Hosts),
            "agents" | "agent" => self.goto(View::Agents),
            "audit" => self.goto(View::Audit),
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

    fn move_to(&mut self, pos: usize) {
        match self.view {
            View::Agents => self.sel = pos.min(self.rows.len().saturating_sub(1)),
            View::Hosts => {
                self.cause_sel = None;
                self.host_sel = pos.min(self.report.hosts.len().saturating_sub(1));
            }
            View::Audit => self.run_sel = pos.min(self.runs.len().saturating_sub(1)),
            View::Detail => {
                let n = self.detail_agent().map(|(h, a)| super::ui::detail_lines(self, h, a).len()).unwrap_or(0);
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

    fn move_by(&mut self, d: isize) {
        if self.view == View::Hosts && self.move_in_causes(d) {
            return;
        }
        let cur = match self.view {
            View::Agents => self.sel,
            View::Hosts => self.host_sel,
            View::Audit => self.run_sel,
            View::Detail => self.detail_scroll,
            View::Plan => self.plan.as_ref().map(|p| p.scroll).unwrap_or(0),
            View::Rollout => self.rollout_scroll,
        };
        self.move_to(cur.saturating_add_signed(d));
    }

    /// Up from the first host enters the root causes above the hosts; down from the last cause
    /// leaves them. True when the move was taken here.
    fn move_in_causes(&mut self, d: isize) -> bool {
        let n = self.causes().len();
        match self.cause_sel {
            _ if n == 0 => {
                self.cause_sel = None;
                false
            }
            Some(i) => {
                let j = i as isize + d;
                if j < 0 {
                    self.cause_sel = Some(0);
                } else if j as usize >= n {
                    self.cause_sel = None;
                    self.host_sel = 0;
                } else {
                    self.cause_sel = Some(j as usize);
                }
                true
            }
            None if d < 0 && self.host_sel == 0 => {
                self.cause_sel = Some(n - 1);
                true
            }
            None => false,
        }
    }

    // ------------------------------------------------------------------------------------
    // Results from tasks

    /// Take in one result from a spawned task. Call [`App::sync`] after a batch.
    pub fn on_msg(&mut self, msg: Msg) -> Vec<Effect> {
        let mut fx = Vec::new();
        match msg {
            Msg::Host(h) => {
                self.upsert_host(h);
                if let Some(n) = &mut self.scanning {
                    *n += 1;
                }
                self.dirty = true;
                self.data_dirty = true;
            }
            Msg::ScanDone(r) => {
                self.scanning = None;
                match r {
                    Ok(report) => {
                        // The final report is in discovery order; keep agents known from before
                        // on hosts that stopped answering (as `unknown`).
                        let old = std::mem::take(&mut self.report);
                        self.report = report;
                        for h in old.hosts {
                            if let Some(nh) = self.report.hosts.iter_mut().find(|x| x.host.id == h.host.id) {
                                if !nh.host.reachable && nh.agents.is_empty() {
                                    nh.agents = stale_agents(&nh.host, h.agents);
                                }
                            }
                        }
                        self.background_info(format!("scan done: {}", summary_line(&self.report)));
                    }
                    Err(e) => {
                        self.error(format!("scan failed: {e}"));
                        self.scan_error = Some(e);
                    }
                }
                self.dirty = true;
                self.data_dirty = true;
            }
            Msg::Planned { plan, ids, purpose } => {
                self.planning = None;
                let lines = plan_lines(&plan, &ids, &self.report, false);
                match purpose {
                    PlanFor::Preview => {
                        self.plan = Some(PlanView { plan, ids, lines, scroll: 0, full: false });
                        self.go(View::Plan);
                        self.status = None;
                    }
                    PlanFor::Apply => {
                        if plan.agents.is_empty() {
                            let n = plan.attention.len();
                            self.plan = Some(PlanView { plan, ids, lines, scroll: 0, full: false });
                            self.go(View::Plan);
                            self.error(format!("nothing to apply: no change planned ({n} need attention, shown here)"));
                        } else {
                            self.plan = Some(PlanView { plan: plan.clone(), ids, lines, scroll: 0, full: false });
                            self.status = None;
                            self.popup = Some(Popup::Confirm(Pending::Apply { plan, opts: self.opts.clone() }));
                        }
                    }
                }
            }
            Msg::RunStarted { run_id } => {
                if let Some(r) = &mut self.run {
                    r.run_id = Some(run_id.clone());
                    if r.phase == RunPhase::Starting {
                        r.phase = RunPhase::Running;
                    }
                }
                self.info(format!("run {run_id} started"));
            }
            Msg::RunEvent(e) => {
                if let Some(r) = &mut self.run {
                    match e {
                        Event::Wave { index, agents } => {
                            r.current_wave = Some(index);
                            if r.waves.len() <= index {
                                r.waves.resize(index + 1, Vec::new());
                            }
                            r.waves[index] = agents;
                        }
                        Event::Step { agent, step, phase, detail } => {
                            let a = r.agents.entry(agent).or_default();
                            a.step = Some(step);
                            a.phase = phase.to_string();
                            a.detail = detail;
                        }
                        Event::Agent { agent, outcome } => {
                            r.agents.entry(agent).or_default().outcome = Some(outcome);
                        }
                        Event::Halted { reason } => r.halted = Some(reason),
                    }
                }
            }
            Msg::RunDone(res) => {
                let mut rescan = false;
                if let Some(r) = &mut self.run {
                    match res {
                        Ok(result) => {
                            r.state = Some(result.state);
                            r.phase = if r.phase == RunPhase::Pausing && result.state == RunState::Interrupted {
                                RunPhase::Paused
                            } else {
                                RunPhase::Finished
                            };
                            let mut text = format!(
                                "run {}: {} — {} verified, {} failed, {} skipped, {} untouched",
                                result.run_id,
                                if r.aborted { "aborted (resumable)" } else { result.state.as_str() },
                                result.verified,
                                result.failed,
                                result.skipped,
                                result.untouched.len()
                            );
                            if result.verified > 0 {
                                // Fixed agents turn at-risk (fix-not-in-image): the audit says what
                                // the image needs.
                                text.push_str(" · next: :audit (what the image still needs)");
                            }
                            let kind = if result.all_verified() { StatusKind::Info } else { StatusKind::Error };
                            self.status = Some(Status { kind, text, pinned: true });
                        }
                        Err(e) => {
                            r.phase = RunPhase::Finished;
                            r.error = Some(e.clone());
                            self.status = Some(Status { kind: StatusKind::Error, text: format!("run failed: {e}"), pinned: true });
                        }
                    }
                    rescan = r.phase == RunPhase::Finished;
                }
                if self.quit_after_run {
                    self.quitting = true;
                    fx.push(Effect::Quit);
                } else if rescan {
                    self.scanning = Some(0);
                    fx.push(Effect::Scan);
                    fx.push(Effect::LoadRuns);
                }
            }
            Msg::RollbackDone { run_id, result } => {
                if let Some(r) = &mut self.run {
                    r.phase = RunPhase::Finished;
                    match &result {
                        Ok(v) => {
                            for (id, o) in v {
                                r.agents.entry(id.clone()).or_default().outcome = Some(o.clone());
                            }
                            if v.iter().all(|(_, o)| o.is_rolled_back()) {
                                r.state = Some(RunState::RolledBack);
                            }
                        }
                        Err(e) => r.error = Some(e.clone()),
                    }
                }
                match result {
                    Ok(v) => {
                        let ok = v.iter().filter(|(_, o)| o.is_rolled_back()).count();
                        let text = format!("rollback of {run_id}: {ok} of {} agent(s) restored", v.len());
                        if ok == v.len() {
                            self.info(text)
                        } else {
                            self.error(text)
                        }
                    }
                    Err(e) => self.error(format!("rollback of {run_id} failed: {e}")),
                }
                if self.quit_after_run {
                    self.quitting = true;
                    fx.push(Effect::Quit);
                } else {
                    self.scanning = Some(0);
                    fx.push(Effect::Scan);
                    fx.push(Effect::LoadRuns);
                }
            }
            Msg::Verified { id, result } => {
                self.verifying = self.verifying.saturating_sub(1);
                self.verify.insert(id, result);
                if self.verifying == 0 {
                    let pass = self.verify.values().filter(|r| r.as_ref().is_ok_and(|v| v.passed)).count();
                    let n = self.verify.len();
                    let mut text = format!("verify: {pass} of {n} agent(s) pass the boot assertion");
                    // Name the first one that did not, and what failed: the operator's next look.
                    if let Some((id, r)) = self.verify.iter().find(|(_, r)| !r.as_ref().is_ok_and(|v| v.passed)) {
                        let why = match r {
                            Ok(v) => v
                                .checks
                                .iter()
                                .find(|(_, ok, _)| !ok)
                                .map(|(name, _, ev)| format!("{name}: {ev}"))
                                .unwrap_or_else(|| "failed".into()),
                            Err(e) => format!("unknown: {e}"),
                        };
                        text.push_str(&format!(" · {id} {}", crate::term_safe::line(&why)));
                        if n - pass > 1 {
                            text.push_str(&format!(" (+{} more)", n - pass - 1));
                        }
                    }
                    if pass == n {
                        self.info(text)
                    } else {
                        self.error(text)
                    }
                }
            }
            Msg::Runs(runs) => {
                self.runs = runs;
                self.clamp();
            }
            Msg::Exported(r) => match r {
                Ok(p) => self.info(format!("report written to {}", p.display())),
                Err(e) => self.error(format!("export failed: {e}")),
            },
        }
        fx
    }

    fn upsert_host(&mut self, mut h: HostState) {
        match self.report.hosts.iter_mut().find(|x| x.host.id == h.host.id) {
            Some(old) => {
                if !h.host.reachable && h.agents.is_empty() {
                    h.agents = stale_agents(&h.host, std::mem::take(&mut old.agents));
                }
                *old = h;
            }
            None => self.report.hosts.push(h),
        }
    }
}

/// Agents known from an earlier scan on a host that no longer answers: `unknown`.
fn stale_agents(host: &crate::fleet::Host, agents: Vec<AgentState>) -> Vec<AgentState> {
    let why = host.unreachable_reason.clone().unwrap_or_else(|| "not reachable".into());
    agents
        .into_iter()
        .map(|mut a| {
            a.diagnosis = Diagnosis::unreachable(&why);
            a
        })
        .collect()
}

fn follow(offset: &mut usize, sel: usize, h: usize) {
    if sel < *offset {
        *offset = sel;
    } else if sel >= *offset + h {
        *offset = sel + 1 - h;
    }
}

/// The `:` commands and their arguments, for Tab completion (kept in step with
/// [`App::command`] by a test).
pub const COMMANDS: [&str; 10] = ["agents", "audit", "export", "filter", "help", "hosts", "plan", "quit", "rollout", "sort"];
const ARGS: [(&str, &[&str]); 2] = [("sort", &["host", "mode", "name", "verdict"]), ("export", &["csv", "json", "md"])];

/// Complete the `:` line: the command word, or the first argument of `sort` / `export`. Returns
/// the new text (extended to the longest common prefix; a blank after a unique completion) and
/// the candidates.
pub fn complete(text: &str) -> (String, Vec<&'static str>) {
    let (head, word, choices): (&str, &str, &[&str]) = match text.split_once(' ') {
        None => ("", text, &COMMANDS),
        Some((cmd, rest)) if !rest.contains(' ') => match ARGS.iter().find(|(c, _)| *c == cmd) {
            Some((_, args)) => (&text[..cmd.len() + 1], rest, args),
            None => return (text.to_string(), Vec::new()),
        },
        Some(_) => return (text.to_string(), Vec::new()),
    };
    let hits: Vec<&'static str> = choices.iter().copied().filter(|c| c.starts_with(word)).collect();
    match hits.as_slice() {
        [] => (text.to_string(), hits),
        [one] => (format!("{head}{one} "), hits),
        many => {
            let mut common = many[0].to_string();
            for h in &many[1..] {
                while !h.starts_with(&common) {
                    common.pop();
                }
            }
            (format!("{head}{}", if common.len() > word.len() { &common } else { word }), hits)
        }
    }
}

/// Does `hay` contain `needle` (already lower-case), ignoring ASCII case? No allocation: this
/// runs for every agent on every keystroke of the filter.
fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// A filter term that names one host exactly: `host=ID` or `host=NAME`, compared whole
/// (ignoring ASCII case, as every filter term). Enter on a host in the Hosts view sets it.
pub const HOST_TERM: &str = "host=";

/// Does one filter term match this agent (name, host, container id, verdict, finding codes,
/// and the root cause in the words the "why" line writes: "no bubblewrap", "RTM_NEWADDR")?
pub(super) fn matches_term(h: &HostState, a: &AgentState, t: &str) -> bool {
    if let Some(x) = t.strip_prefix(HOST_TERM) {
        return h.host.id.eq_ignore_ascii_case(x) || h.host.name.eq_ignore_ascii_case(x);
    }
    let has = |s: &str| contains_ci(s, t);
    has(&a.read.agent.name)
        || has(&h.host.name)
        || has(&h.host.id)
        || a.read.agent.container_id.starts_with(t)
        || a.diagnosis.verdict.as_str().contains(t)
        || a.diagnosis.findings.iter().any(|f| f.code.as_str().contains(t))
        || root_cause(a).is_some_and(has)
}

/// The plan view's text: the grouped preview (see [`crate::plan_view`]), after the agents asked
/// for that need nothing.
pub fn plan_lines(plan: &Plan, ids: &[String], report: &FleetReport, full: bool) -> Vec<String> {
    let mut out = Vec::new();
    let covered: BTreeSet<String> = plan
        .agents
        .iter()
        .map(|a| a.agent.id())
        .chain(plan.attention.iter().map(|a| a.agent.id()))
        .collect();
    // The agents that need nothing: one line, not one each.
    let idle: Vec<&String> = ids.iter().filter(|id| !covered.contains(*id)).collect();
    if !idle.is_empty() {
        let shown: Vec<String> = idle.iter().take(if full { usize::MAX } else { 4 }).map(|s| s.to_string()).collect();
        let more = if idle.len() > shown.len() { format!(" … and {} more", idle.len() - shown.len()) } else { String::new() };
        out.push(format!("== nothing to change on {} agent(s) (already on the durable fix): {}{more}", idle.len(), shown.join(", ")));
    }
    let ctx = crate::plan_view::contexts(report);
    out.extend(crate::plan_view::grouped_lines(plan, &crate::plan_view::lookup(&ctx), full));
    out
}
