//! The interactive console (`codex-fleet` with no command): ratatui + crossterm + tokio.
//!
//! Input -> [`Action`] -> one dispatcher ([`App::dispatch`], where `--read-only` is enforced)
//! -> state; rendering ([`draw`]) is a pure function of the state, done on its own thread and
//! coalesced: nothing is redrawn unless something changed, so an idle console costs nothing.
//! Scans, plans, applies and verifies run on spawned tasks and report back as [`Msg`]s; the UI
//! loop never awaits IO.

pub mod action;
pub mod app;
#[doc(hidden)]
pub mod fixtures;
pub mod log;
pub mod model;
pub mod text;
pub mod ui;

use std::io::{IsTerminal, Write};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crossterm::event::{Event as TermEvent, EventStream, MouseEventKind};
use crossterm::{execute, terminal};
use futures::StreamExt;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tokio::sync::{mpsc, watch};

pub use action::{Action, Edit, Effect, Mode, Msg, Pending, PlanFor, Popup, SortKey, Status, StatusKind, View};
pub use app::{App, AppOptions};
pub use model::filter::AgentIx;
pub use model::input::{complete, LineInput, COMMANDS};
pub use model::plan::{plan_lines, plan_subset, subset, PlanView};
pub use model::run::{AgentRun, RunKind, RunPhase, RunProgress};
pub use crate::present::Format;
pub use crate::rollout::summary::RunSummary;
pub use ui::draw;

use crate::exit::{EXIT_FAILURE, EXIT_OK};
use crate::present::report_file;
use crate::rollout::summary::load_runs;
use crate::source::{self, SourceArgs};
use crate::fleet::Fleet;
use crate::rollout::engine::{self, EngineConfig, Size};
use crate::rollout::journal::{now, operator, read as read_journal, Journal, RunOptions};
use crate::rollout::view::RunView;
use log::tlog;

/// Run the console until the operator quits; returns the exit status (0; 2 when it cannot
/// start: no terminal, or the fleet source cannot be opened).
/// `context` is the named context in force (the header names it).
pub fn run(source: &SourceArgs, read_only: bool, context: Option<&str>) -> u8 {
    run_with_defaults(source, read_only, context, model::confirm::ApplyForm::default())
}

/// [`run`], every apply confirmation starting from `defaults` (the context's rollout options).
pub fn run_with_defaults(source: &SourceArgs, read_only: bool, context: Option<&str>, defaults: model::confirm::ApplyForm) -> u8 {
    let src = source.clone();
    // Under --read-only the fleet handle itself refuses every mutation.
    let open: Opener = Box::pin(async move { source::open(&src).await.map(|f| crate::fleet::read_only::guard(f, read_only)) });
    run_with(read_only, context.map(str::to_string), defaults, open)
}

/// A fleet source being opened.
pub type Opener = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Box<dyn Fleet>, String>> + Send>>;

/// The console over the fleet `open` yields (`run` passes `source::open`).
pub fn run_with(read_only: bool, context: Option<String>, defaults: model::confirm::ApplyForm, open: Opener) -> u8 {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!("codex-fleet: the console needs a terminal; use a command instead (scan, plan, apply --yes, report)");
        return EXIT_FAILURE;
    }
    let log_path = log::init();
    tlog!("console start (read-only: {read_only}, log {log_path:?})");
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("codex-fleet: cannot start the async runtime: {e}");
            return EXIT_FAILURE;
        }
    };
    let code = rt.block_on(console(read_only, context, defaults, open));
    // Tasks still running (a detached run) end with the process; the journal keeps the run
    // resumable.
    rt.shutdown_background();
    tlog!("console exit {code}");
    code
}

/// Put the terminal back: raw mode off, main screen, no mouse capture, cursor shown.
pub fn restore_terminal() {
    let _ = terminal::disable_raw_mode();
    let mut out = std::io::stdout();
    let _ = execute!(
        out,
        crossterm::event::DisableMouseCapture,
        terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = out.flush();
}

/// Restores the terminal when dropped (normal exit and unwinding alike).
struct TermGuard;

impl Drop for TermGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn enter_terminal() -> std::io::Result<TermGuard> {
    // A panic anywhere restores the terminal before the message is printed.
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        tlog!("panic: {info}");
        prev(info);
    }));
    terminal::enable_raw_mode()?;
    let guard = TermGuard;
    execute!(
        std::io::stdout(),
        terminal::EnterAlternateScreen,
        crossterm::event::EnableMouseCapture,
        terminal::Clear(terminal::ClearType::All)
    )?;
    Ok(guard)
}

async fn console(read_only: bool, context: Option<String>, defaults: model::confirm::ApplyForm, open: Opener) -> u8 {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let size = terminal::size().unwrap_or((80, 24));
    let app = Arc::new(Mutex::new(App::new(AppOptions {
        read_only,
        source: "opening the fleet source…".into(),
        no_color,
        size,
    })));
    app.lock().unwrap().context = context;
    app.lock().unwrap().apply_defaults = defaults;
    let guard = match enter_terminal() {
        Ok(g) => g,
        Err(e) => {
            restore_terminal();
            eprintln!("codex-fleet: cannot set up the terminal: {e}");
            return EXIT_FAILURE;
        }
    };
    let terminal = match Terminal::new(CrosstermBackend::new(std::io::stdout())) {
        Ok(t) => t,
        Err(e) => {
            drop(guard);
            eprintln!("codex-fleet: cannot set up the terminal: {e}");
            return EXIT_FAILURE;
        }
    };

    // The renderer: its own thread, drawing the latest state when told something changed,
    // at most ~60 times a second however fast changes come.
    let (redraw, redraw_rx) = std_mpsc::channel::<bool>();
    let render_app = app.clone();
    let renderer = std::thread::Builder::new()
        .name("render".into())
        .spawn(move || render_loop(terminal, render_app, redraw_rx))
        .expect("spawn the render thread");
    let _ = redraw.send(true); // first frame right away

    // The fleet source opens off the UI loop; effects wait for it.
    let (msg_tx, mut msg_rx) = mpsc::unbounded_channel::<Msg>();
    let mut exec = Exec { fleet: None, queued: Vec::new(), tx: msg_tx, stop: None, app: app.clone(), read_only, gate: Arc::default() };
    let (open_tx, mut open_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = open_tx.send(open.await);
    });
    {
        let mut a = app.lock().unwrap();
        a.scanning = Some(0);
    }
    exec.queued.push(Effect::Scan);

    let mut events = EventStream::new();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut open_done = false;
    let mut code = EXIT_OK;
    let mut failure: Option<String> = None;
    'main: loop {
        let mut effects: Vec<Effect>;
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(ev)) => {
                    let mut a = app.lock().unwrap();
                    match ev {
                        TermEvent::Key(k) => effects = a.handle_key(k),
                        TermEvent::Resize(w, h) => effects = a.dispatch(Action::Resize(w, h)),
                        TermEvent::Mouse(m) => match m.kind {
                            MouseEventKind::ScrollDown => effects = a.dispatch(Action::Move(3)),
                            MouseEventKind::ScrollUp => effects = a.dispatch(Action::Move(-3)),
                            _ => continue 'main,
                        },
                        _ => continue 'main,
                    }
                }
                Some(Err(e)) => {
                    failure = Some(format!("reading the terminal failed: {e}"));
                    break 'main;
                }
                None => break 'main,
            },
            msg = msg_rx.recv() => {
                let Some(msg) = msg else { continue };
                let mut a = app.lock().unwrap();
                effects = a.on_msg(msg);
                // Take in everything that is already there before drawing once.
                while let Ok(m) = msg_rx.try_recv() {
                    effects.extend(a.on_msg(m));
                }
                a.sync();
            }
            opened = &mut open_rx, if !open_done => {
                open_done = true;
                match opened {
                    Ok(Ok(f)) => {
                        let fleet: Arc<dyn Fleet> = Arc::from(f);
                        tlog!("source opened: {}", fleet.describe());
                        app.lock().unwrap().source = fleet.describe();
                        exec.fleet = Some(fleet);
                        effects = std::mem::take(&mut exec.queued);
                        effects.push(Effect::LoadRuns);
                    }
                    Ok(Err(e)) => {
                        failure = Some(e);
                        code = EXIT_FAILURE;
                        break 'main;
                    }
                    Err(_) => break 'main,
                }
            }
            _ = async { match sigterm.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending::<()>().await } } => {
                tlog!("SIGTERM: detaching (any run stays resumable)");
                break 'main;
            }
        }
        for e in effects {
            if exec.run(e) {
                break 'main;
            }
        }
        if redraw.send(true).is_err() {
            failure = Some("the renderer stopped".into());
            code = EXIT_FAILURE;
            break 'main;
        }
    }
    let _ = redraw.send(false);
    let _ = renderer.join();
    drop(guard);
    // Leaving a run behind: say which, and how to pick it up (the terminal is back to normal).
    if let Some(r) = app.lock().unwrap().run.as_ref().filter(|r| r.phase.active() || r.phase == RunPhase::Paused) {
        if let Some(id) = &r.run_id {
            let how = if r.kind == RunKind::Apply { "codex-fleet apply --resume" } else { "codex-fleet rollback --run" };
            eprintln!("codex-fleet: left run {id} unfinished ({}); it stays in the journal: `{how} {id}` picks it up", r.phase.as_str());
        }
    }
    if let Some(f) = failure {
        tlog!("failure: {f}");
        eprintln!("codex-fleet: {f}");
        if code == EXIT_OK {
            code = EXIT_FAILURE;
        }
    }
    code
}

fn render_loop<W: Write>(mut terminal: Terminal<CrosstermBackend<W>>, app: Arc<Mutex<App>>, rx: std_mpsc::Receiver<bool>) {
    const FRAME: Duration = Duration::from_millis(16);
    let mut last: Option<Instant> = None;
    while let Ok(mut go) = rx.recv() {
        if let Some(l) = last {
            let since = l.elapsed();
            if since < FRAME {
                std::thread::sleep(FRAME - since);
            }
        }
        // Coalesce: one frame for every change that arrived meanwhile.
        while let Ok(m) = rx.try_recv() {
            go &= m;
        }
        if !go {
            break;
        }
        let res = {
            let mut a = app.lock().unwrap();
            let clip = a.clipboard.take();
            terminal.draw(|f| ui::draw(f, &a)).map(|_| ()).and_then(|_| match clip {
                Some(text) => osc52(terminal.backend_mut(), &text),
                None => Ok(()),
            })
        };
        if let Err(e) = res {
            tlog!("draw failed: {e}");
            break;
        }
        last = Some(Instant::now());
    }
}

/// Put `text` on the terminal's clipboard: OSC 52 (xterm, tmux with `set-clipboard on`, kitty,
/// iTerm2, Windows Terminal...). The text is an agent id the console built; base64 keeps any
/// byte of it from being read as a control sequence.
fn osc52<W: Write>(w: &mut W, text: &str) -> std::io::Result<()> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    write!(w, "\x1b]52;c;{b64}\x07")?;
    w.flush()
}

/// Carries out effects: every one on a spawned task that reports back through `tx`.
struct Exec {
    fleet: Option<Arc<dyn Fleet>>,
    queued: Vec<Effect>,
    tx: mpsc::UnboundedSender<Msg>,
    stop: Option<watch::Sender<bool>>,
    app: Arc<Mutex<App>>,
    read_only: bool,
    /// Where the canary gate of the run in progress waits for the operator's answer.
    gate: GateSlot,
}

type GateSlot = Arc<Mutex<Option<tokio::sync::oneshot::Sender<engine::GateDecision>>>>;

/// The restart timeout when the operator typed none (a resume: the journal does not keep it).
const RESTART_TIMEOUT: Duration = Duration::from_secs(120);

fn engine_config(opts: &RunOptions, restart_timeout: Duration) -> EngineConfig {
    EngineConfig {
        canary: opts.canary,
        wave: Size::parse(&opts.wave).unwrap_or(Size::Percent(25)),
        max_errors: Size::parse(&opts.max_errors).unwrap_or(Size::Count(0)),
        stable_timeout: restart_timeout,
        holder: operator(),
    }
}

impl Exec {
    /// Start `e`; true when the console must quit.
    fn run(&mut self, e: Effect) -> bool {
        if matches!(e, Effect::Quit) {
            return true;
        }
        // The dispatcher refuses mutations under --read-only; this is the belt to its braces.
        if self.read_only && matches!(e, Effect::Apply { .. } | Effect::Resume { .. } | Effect::Rollback { .. }) {
            tlog!("refused under --read-only: {e:?}");
            return false;
        }
        let Some(fleet) = self.fleet.clone() else {
            if !matches!(e, Effect::LoadRuns | Effect::LoadRun { .. } | Effect::CheckRun { .. } | Effect::Export { .. }) {
                self.queued.push(e);
                return false;
            }
            return self.run_local(e);
        };
        let tx = self.tx.clone();
        match e {
            Effect::Scan => {
                tlog!("scan");
                tokio::spawn(async move {
                    let t = tx.clone();
                    let r = crate::scan::scan(fleet.as_ref(), move |h| {
                        let _ = t.send(Msg::Host(h.clone()));
                    })
                    .await
                    .map_err(|e| e.to_string());
                    if let Err(e) = &r {
                        tlog!("scan failed: {e}");
                    }
                    let _ = tx.send(Msg::ScanDone(r));
                });
            }
            Effect::Plan { ids, purpose } => {
                let sub = subset(&self.app.lock().unwrap().report, &ids);
                let source = fleet.describe();
                tokio::task::spawn_blocking(move || {
                    let plan = crate::plan::plan(&sub, &[], &source, &now());
                    let _ = tx.send(Msg::Planned { plan, ids, purpose });
                });
            }
            Effect::Apply { plan, opts, restart_timeout, pause_after_canary } => {
                let (stop_tx, stop_rx) = watch::channel(false);
                self.stop = Some(stop_tx);
                let slot = pause_after_canary.then(|| self.gate.clone());
                tokio::spawn(async move {
                    let run_id = Journal::new_run_id();
                    tlog!("apply: run {run_id}, {} agent(s), {opts:?}", plan.agents.len());
                    let journal = match engine::start(&plan, &opts, &run_id) {
                        Ok(j) => j,
                        Err(e) => {
                            let _ = tx.send(Msg::RunDone(Err(format!("cannot create the run journal: {e}"))));
                            return;
                        }
                    };
                    let _ = tx.send(Msg::RunStarted { run_id: run_id.clone() });
                    execute_run(fleet, journal, &opts, restart_timeout, false, slot, stop_rx, tx).await;
                });
            }
            Effect::Resume { run_id } => {
                let (stop_tx, stop_rx) = watch::channel(false);
                self.stop = Some(stop_tx);
                tokio::spawn(async move {
                    tlog!("resume run {run_id}");
                    // The run's lock first (refused, with who holds it, while any process acts
                    // for the run); then the same rules as `apply --resume`.
                    let journal = match Journal::open(&run_id) {
                        Ok(j) => j,
                        Err(e) => {
                            let _ = tx.send(Msg::RunDone(Err(e.to_string())));
                            return;
                        }
                    };
                    let view = read_journal(&run_id).map_err(|e| e.to_string()).and_then(|r| RunView::from_records(&r).ok_or_else(|| "no start record".to_string()));
                    let view = match view.and_then(|v| crate::rollout::lifecycle::may_resume(&crate::rollout::lifecycle::status_with(&v, false), true).map(|_| v)) {
                        Ok(v) => v,
                        Err(e) => {
                            let _ = tx.send(Msg::RunDone(Err(e)));
                            return;
                        }
                    };
                    let halted = view.state(false) == crate::rollout::journal::RunState::Halted;
                    execute_run(fleet, journal, &view.options, RESTART_TIMEOUT, halted, None, stop_rx, tx).await;
                });
            }
            Effect::GateAnswer(d) => {
                tlog!("canary gate: {d:?}");
                if let Some(s) = self.gate.lock().unwrap().take() {
                    let _ = s.send(d);
                }
            }
            Effect::Stop => {
                tlog!("stop requested");
                if let Some(s) = &self.stop {
                    let _ = s.send(true);
                }
            }
            Effect::Rollback { run_id } => {
                tokio::spawn(async move {
                    tlog!("rollback run {run_id}");
                    let cfg = engine_config(&RunOptions { canary: 0, wave: "100%".into(), max_errors: "0".into() }, RESTART_TIMEOUT);
                    let t = tx.clone();
                    let on_event = move |e: engine::Event| {
                        let _ = t.send(Msg::RunEvent(e));
                    };
                    let result = engine::rollback(fleet.as_ref(), &run_id, &cfg, &on_event).await.map_err(|e| e.to_string());
                    let _ = tx.send(Msg::RollbackDone { run_id, result });
                });
            }
            Effect::Verify { ids } => {
                let refs: Vec<(String, crate::fleet::AgentRef)> = {
                    let a = self.app.lock().unwrap();
                    ids.iter().filter_map(|id| a.find_agent(id).map(|(_, ag)| (id.clone(), ag.read.agent.clone()))).collect()
                };
                tokio::spawn(async move {
                    futures::stream::iter(refs)
                        .for_each_concurrent(16, |(id, r)| {
                            let fleet = fleet.clone();
                            let tx = tx.clone();
                            async move {
                                let result = fleet.verify(&r).await.map_err(|e| e.to_string());
                                let _ = tx.send(Msg::Verified { id, result });
                            }
                        })
                        .await;
                });
            }
            e @ (Effect::LoadRuns | Effect::LoadRun { .. } | Effect::CheckRun { .. } | Effect::Export { .. }) => return self.run_local(e),
            Effect::Quit => return true,
        }
        false
    }

    /// Effects that need no fleet: the journal and the report file.
    fn run_local(&mut self, e: Effect) -> bool {
        let tx = self.tx.clone();
        match e {
            Effect::LoadRuns => {
                tokio::task::spawn_blocking(move || {
                    let _ = tx.send(Msg::Runs(load_runs()));
                });
            }
            Effect::LoadRun { run_id } => {
                tokio::task::spawn_blocking(move || {
                    let result = crate::rollout::lifecycle::run_outcomes(&run_id);
                    let _ = tx.send(Msg::RunOutcomes { run_id, result });
                });
            }
            Effect::CheckRun { run_id, action } => {
                tokio::task::spawn_blocking(move || {
                    let what = match action {
                        crate::rollout::lifecycle::RunAction::Rollback => "roll back",
                        crate::rollout::lifecycle::RunAction::Unlock => "unlock",
                        _ => "resume",
                    };
                    let result = crate::rollout::lifecycle::may_act(&run_id, what);
                    tlog!("liveness of run {run_id} before {what}: {result:?}");
                    let _ = tx.send(Msg::RunChecked { run_id, action, result });
                });
            }
            Effect::Export { format, path } => {
                let (report, runs, context) = {
                    let a = self.app.lock().unwrap();
                    (a.report.clone(), a.runs.clone(), a.context.clone())
                };
                tokio::task::spawn_blocking(move || {
                    // The same file as `codex-fleet report` writes, naming the context.
                    let text = report_file(&report, &runs, format, &now(), context.as_deref());
                    let r = std::fs::write(&path, text).map(|_| path.clone()).map_err(|e| format!("{}: {e}", path.display()));
                    tlog!("export {format:?}: {r:?}");
                    let _ = tx.send(Msg::Exported(r));
                });
            }
            _ => {}
        }
        false
    }
}

#[allow(clippy::too_many_arguments)]
async fn execute_run(
    fleet: Arc<dyn Fleet>,
    journal: Journal,
    opts: &RunOptions,
    restart_timeout: Duration,
    continue_halted: bool,
    gate_slot: Option<GateSlot>,
    stop: watch::Receiver<bool>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let cfg = engine_config(opts, restart_timeout);
    // Pause after the canary: the question goes to the UI as a message; the engine awaits the
    // operator's key (no answer, e.g. the console gone: pause, resumable).
    let gate_tx = tx.clone();
    let slot = gate_slot.clone();
    let gate = move |cv: engine::CanaryVerified| -> futures::future::BoxFuture<'static, engine::GateDecision> {
        let (answer_tx, answer_rx) = tokio::sync::oneshot::channel();
        if let Some(s) = &slot {
            *s.lock().unwrap() = Some(answer_tx);
        }
        let _ = gate_tx.send(Msg::CanaryVerified(cv));
        Box::pin(async move { answer_rx.await.unwrap_or(engine::GateDecision::Pause) })
    };
    let gate_ref: Option<engine::CanaryGate<'_>> = if gate_slot.is_some() { Some(&gate) } else { None };
    let t = tx.clone();
    let on_event = move |e: engine::Event| {
        let _ = t.send(Msg::RunEvent(e));
    };
    // The console's resume of a run it shows halted is the operator's explicit choice.
    let r = engine::execute_gated(fleet.as_ref(), journal, &cfg, continue_halted, gate_ref, stop, &on_event).await.map_err(|e| e.to_string());
    tlog!("run finished: {r:?}");
    let _ = tx.send(Msg::RunDone(r));
}
