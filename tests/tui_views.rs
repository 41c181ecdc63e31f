//! Snapshot tests of every console view (ratatui TestBackend + insta), on a roomy terminal and
//! on a narrow 80x24 one, plus checks of the cells whose style carries meaning.

use codex_fleet::diagnose::Verdict;
use codex_fleet::rollout::engine::{Event, RunResult};
use codex_fleet::rollout::journal::{Outcome, RunState, Step};
use codex_fleet::tui::{Msg, RunSummary};
use codex_fleet::tui::fixtures::{app, keys, render, settle};
use codex_fleet::tui::{Action, App, AppOptions, Effect, View};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;

fn snap(name: &str, t: &Terminal<TestBackend>) {
    insta::assert_snapshot!(name, t.backend());
}

/// Position of the first cell of `text` on screen.
fn find(buf: &Buffer, text: &str) -> Option<(u16, u16)> {
    let w = buf.area.width;
    for y in 0..buf.area.height {
        let line: String = (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect();
        if let Some(i) = line.find(text) {
            // Convert a byte offset into a column (every symbol here is one column wide).
            let col = line[..i].chars().count() as u16;
            return Some((col, y));
        }
    }
    None
}

fn runs() -> Vec<RunSummary> {
    vec![
        RunSummary {
            run_id: "20261103T031502Z-4f2a1c".into(),
            state: "done".into(),
            started: "2026-11-03T03:15:02Z".into(),
            operator: "oncall@bastion".into(),
            agents: 6,
            verified: 6,
            failed: 0,
            skipped: 0,
            unfinished: 0,
        },
        RunSummary {
            run_id: "20261102T221740Z-09be33".into(),
            state: "interrupted".into(),
            started: "2026-11-02T22:17:40Z".into(),
            operator: "oncall@bastion".into(),
            agents: 3,
            verified: 1,
            failed: 0,
            skipped: 0,
            unfinished: 2,
        },
    ]
}

#[test]
fn agents_table_wide() {
    let a = app(140, 30);
    snap("agents_140x30", &render(&a));
}

#[test]
fn agents_table_narrow_80x24() {
    let a = app(80, 24);
    snap("agents_80x24", &render(&a));
}

#[test]
fn agents_filtered_and_marked() {
    let mut a = app(140, 30);
    keys(&mut a, "/stalled<enter><space><space>");
    snap("agents_filtered_marked", &render(&a));
}

#[test]
fn agents_streaming_in() {
    // A scan in progress: one host answered so far.
    let mut a = App::new(AppOptions { size: (120, 20), source: "fixture".into(), ..Default::default() });
    a.scanning = Some(0);
    let fleet = codex_fleet::tui::fixtures::incident_fleet();
    a.on_msg(Msg::Host(fleet.hosts[1].clone()));
    a.sync();
    snap("agents_streaming", &render(&a));
}

#[test]
fn hosts_overview() {
    let mut a = app(140, 30);
    a.dispatch(Action::Go(View::Hosts));
    snap("hosts_140x30", &render(&a));
    let mut n = app(80, 24);
    n.dispatch(Action::Go(View::Hosts));
    snap("hosts_80x24", &render(&n));
}

fn open_detail(a: &mut App, name: &str) {
    keys(a, &format!("/{name}<enter><enter>"));
    assert_eq!(a.view, View::Detail);
}

#[test]
fn detail_duplicate_prepends() {
    let mut a = app(130, 70);
    open_detail(&mut a, "codex-review-3");
    snap("detail_duplicate_prepends", &render(&a));
}

#[test]
fn detail_keys_in_table_points_at_the_line() {
    let mut a = app(130, 70);
    open_detail(&mut a, "codex-build-1");
    let t = render(&a);
    snap("detail_keys_in_table", &t);
    // The misplaced key's config line is marked, in a style that stands out, and named.
    let (x, y) = find(t.backend().buffer(), "◀ config-key-misplaced").expect("pointer");
    assert!(t.backend().buffer()[(x, y)].modifier.contains(Modifier::BOLD) || t.backend().buffer()[(x, y)].fg == Color::Red);
}

#[test]
fn detail_narrow_80x24_scrolls() {
    let mut a = app(80, 24);
    open_detail(&mut a, "codex-review-2");
    snap("detail_80x24_top", &render(&a));
    keys(&mut a, "G");
    snap("detail_80x24_bottom", &render(&a));
}

#[test]
fn plan_preview_of_marked_agents() {
    let mut a = app(120, 60);
    keys(&mut a, "/review-1<enter><space><esc>/build-1<enter><space><esc>");
    let fx = keys(&mut a, "p");
    let fx = settle(&mut a, fx);
    assert!(fx.is_empty());
    assert_eq!(a.view, View::Plan);
    snap("plan_preview", &render(&a));
}

#[test]
fn plan_preview_of_an_attention_agent_says_why() {
    let mut a = app(120, 16);
    keys(&mut a, "/build-2<enter>");
    let fx = keys(&mut a, "p");
    settle(&mut a, fx);
    let t = render(&a);
    snap("plan_attention", &t);
    assert!(find(t.backend().buffer(), "needs attention").is_some());
}

#[test]
fn apply_confirmation_lists_what_changes() {
    let mut a = app(120, 40);
    keys(&mut a, "/stalled<enter>*");
    let fx = keys(&mut a, "a");
    settle(&mut a, fx);
    let t = render(&a);
    snap("confirm_apply", &t);
    let (x, y) = find(t.backend().buffer(), "[y/N]").expect("[y/N] shown");
    assert_eq!(t.backend().buffer()[(x, y)].fg, Color::Red);
}

#[test]
fn apply_confirmation_narrow_80x24() {
    let mut a = app(80, 24);
    keys(&mut a, "/stalled<enter>*");
    let fx = keys(&mut a, "a");
    settle(&mut a, fx);
    snap("confirm_apply_80x24", &render(&a));
}

fn started_run(a: &mut App) {
    keys(a, "/review<enter>*");
    let fx = keys(a, "a");
    let fx = settle(a, fx);
    assert!(fx.is_empty());
    let fx = keys(a, "y");
    assert!(matches!(fx.as_slice(), [Effect::Apply { .. }]));
    a.on_msg(Msg::RunStarted { run_id: "20261103T031502Z-4f2a1c".into() });
}

#[test]
fn rollout_live_progress() {
    let mut a = app(120, 30);
    started_run(&mut a);
    let ids = a.run.as_ref().unwrap().ids.clone();
    a.on_msg(Msg::RunEvent(Event::Wave { index: 0, agents: vec![ids[0].clone()] }));
    a.on_msg(Msg::RunEvent(Event::Agent { agent: ids[0].clone(), outcome: Outcome::Verified }));
    a.on_msg(Msg::RunEvent(Event::Wave { index: 1, agents: ids[1..].to_vec() }));
    a.on_msg(Msg::RunEvent(Event::Step {
        agent: ids[1].clone(),
        step: Step::Write,
        phase: "begin",
        detail: "/usr/local/bin/codex_mcp_config.sh".into(),
    }));
    a.on_msg(Msg::RunEvent(Event::Step { agent: ids[2].clone(), step: Step::Restart, phase: "begin", detail: String::new() }));
    a.sync();
    snap("rollout_running", &render(&a));
}

#[test]
fn rollout_halted_and_finished() {
    let mut a = app(100, 24);
    started_run(&mut a);
    let ids = a.run.as_ref().unwrap().ids.clone();
    a.on_msg(Msg::RunEvent(Event::Wave { index: 0, agents: vec![ids[0].clone()] }));
    a.on_msg(Msg::RunEvent(Event::Agent {
        agent: ids[0].clone(),
        outcome: Outcome::Failed("after restart: sandbox_mode = \"read-only\" (from default)".into()),
    }));
    a.on_msg(Msg::RunEvent(Event::Halted { reason: "the canary failed (1 of 1)".into() }));
    let fx = a.on_msg(Msg::RunDone(Ok(RunResult {
        run_id: "20261103T031502Z-4f2a1c".into(),
        state: RunState::Halted,
        detail: String::new(),
        waves: vec![],
        verified: 0,
        failed: 1,
        skipped: 0,
        unknown: 0,
        untouched: ids[1..].to_vec(),
    })));
    assert!(fx.contains(&Effect::Scan), "a finished run re-scans: {fx:?}");
    a.sync();
    snap("rollout_halted", &render(&a));
}

#[test]
fn audit_view() {
    let mut a = app(130, 30);
    let fx = a.dispatch(Action::Command("audit".into()));
    assert_eq!(fx, vec![Effect::LoadRuns]);
    a.on_msg(Msg::Runs(runs()));
    snap("audit_130x30", &render(&a));
    let mut n = app(80, 24);
    n.dispatch(Action::Command("audit".into()));
    n.on_msg(Msg::Runs(runs()));
    snap("audit_80x24", &render(&n));
}

#[test]
fn help_lists_every_key_and_hides_mutations_in_read_only() {
    let mut a = app(100, 40);
    keys(&mut a, "?");
    let t = render(&a);
    snap("help", &t);
    assert!(find(t.backend().buffer(), "apply the same set").is_some());

    let mut ro = App::with_report(
        AppOptions { read_only: true, size: (100, 40), source: "fixture".into(), ..Default::default() },
        codex_fleet::tui::fixtures::incident_fleet(),
    );
    keys(&mut ro, "?");
    let t = render(&ro);
    snap("help_read_only", &t);
    let buf = t.backend().buffer();
    assert!(find(buf, "apply the same set").is_none());
    assert!(find(buf, "pause / resume").is_none());
    assert!(find(buf, "roll back the run").is_none());
    assert!(find(buf, "read-only:").is_some());
}

#[test]
fn command_mode_and_quit_popup() {
    let mut a = app(100, 20);
    keys(&mut a, ":aud");
    snap("command_mode", &render(&a));
    keys(&mut a, "<esc>");
    started_run(&mut a);
    keys(&mut a, "q");
    snap("quit_during_run", &render(&a));
}

#[test]
fn verdict_cells_carry_word_glyph_and_colour() {
    let a = app(140, 30);
    let t = render(&a);
    let buf = t.backend().buffer();
    for (text, v, color) in [
        ("✗ stalled", Verdict::Stalled, Color::Red),
        ("! at-risk", Verdict::AtRisk, Color::Yellow),
        ("? unknown", Verdict::Unknown, Color::Magenta),
        ("✓ healthy", Verdict::Healthy, Color::Green),
    ] {
        let (x, y) = find(buf, text).unwrap_or_else(|| panic!("{text} on screen"));
        // The selected row is reversed; look at a row that is not selected for the colour.
        let cell = &buf[(x, y)];
        assert_eq!(cell.fg, color, "{v:?}");
    }
    // The selected row (the first) is shown reversed.
    let (_, y) = find(buf, "✗ stalled").unwrap();
    assert!(buf[(3, y)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn no_color_keeps_meaning_without_colour() {
    let mut a = app(140, 30);
    a.no_color = true;
    let t = render(&a);
    let buf = t.backend().buffer();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            let c = &buf[(x, y)];
            assert_eq!((c.fg, c.bg), (Color::Reset, Color::Reset), "colour at {x},{y}: {:?}", c.symbol());
        }
    }
    for w in ["✗ stalled", "! at-risk", "? unknown", "✓ healthy"] {
        assert!(find(buf, w).is_some(), "{w}");
    }
    snap("agents_no_color", &t);
}

#[test]
fn resize_keeps_the_selection_visible() {
    let mut a = app(120, 40);
    keys(&mut a, "G");
    a.dispatch(Action::Resize(80, 12));
    let t = render(&a);
    let sel = a.selected_agent().unwrap().read.agent.name.clone();
    assert!(find(t.backend().buffer(), &sel).is_some(), "{sel} visible after resize");
}

/// A fleet whose host and container names share long prefixes, as real fleets' do
/// (`ws-us-east-2-100` / `-1000`, `codex-cli-override-00` / `-04`).
fn prefix_sharing_app(w: u16, h: u16) -> App {
    let mut fleet = codex_fleet::tui::fixtures::incident_fleet();
    for (i, hs) in fleet.hosts.iter_mut().enumerate() {
        hs.host.name = format!("ws-us-east-2-100{}", "0".repeat(i));
        for (j, a) in hs.agents.iter_mut().enumerate() {
            a.read.agent.name = format!("codex-cli-override-{i}{j}");
            a.read.agent.host = hs.host.id.clone();
        }
    }
    App::with_report(AppOptions { size: (w, h), source: "fixture".into(), ..Default::default() }, fleet)
}

fn screen_lines(t: &Terminal<TestBackend>) -> Vec<String> {
    let buf = t.backend().buffer();
    (0..buf.area.height).map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect()).collect()
}

#[test]
fn identities_stay_whole_or_distinct_at_every_size() {
    for (w, h) in [(80u16, 24u16), (160, 45), (220, 60)] {
        let a = prefix_sharing_app(w, h);
        let t = render(&a);
        snap(&format!("identities_{w}x{h}"), &t);
        let lines = screen_lines(&t);
        // The (host, agent) cells of every row on screen are distinct: no identity is cut into
        // another one.
        let mut seen = std::collections::BTreeSet::new();
        for ix in a.rows.iter().take(codex_fleet::tui::ui::table_rows(&a)) {
            let host = &a.host_of(*ix).unwrap().host.name;
            let agent = &a.agent_at(*ix).unwrap().read.agent.name;
            let (hc, ac) = if w >= 160 {
                (host.clone(), agent.clone())
            } else {
                let cols = codex_fleet::tui::ui::AgentColumns::new(&a, w - 2);
                cols.cells(host, agent)
            };
            if w >= 160 {
                assert!(lines.iter().any(|l| l.contains(&hc) && l.contains(&ac)), "{w}x{h}: {host} {agent} whole on one line");
            } else {
                assert!(lines.iter().any(|l| l.contains(&hc) && l.contains(&ac)), "{w}x{h}: `{hc}` `{ac}` on one line");
            }
            assert!(seen.insert((hc.clone(), ac.clone())), "{w}x{h}: `{hc}` `{ac}` is ambiguous");
        }
    }
}

#[test]
fn elided_names_keep_their_ends() {
    use codex_fleet::tui::ui::{elide_middle, findings_cell};
    assert_eq!(elide_middle("ws-us-east-2-1000", 40), "ws-us-east-2-1000");
    assert_eq!(elide_middle("ws-us-east-2-1000", 10), "ws…-2-1000");
    assert_eq!(elide_middle("codex-cli-override-04", 12).chars().count(), 12);
    assert!(elide_middle("codex-cli-override-04", 12).ends_with("ride-04"));
    assert_eq!(findings_cell(&["sandbox-enabled", "uidmap-write-denied", "gitea-unreachable"], 40), "sandbox-enabled,uidmap-write-denied +1");
    assert_eq!(findings_cell(&["sandbox-enabled"], 40), "sandbox-enabled");
    assert_eq!(findings_cell(&["sandbox-enabled", "x"], 5), "+2");
}

#[test]
fn the_why_line_wraps_instead_of_being_cut() {
    let a = app(60, 24);
    let lines = screen_lines(&render(&a));
    let why: Vec<&String> = lines.iter().take(5).filter(|l| !l.trim().is_empty()).collect();
    let words: Vec<&str> = a.why.split_whitespace().collect();
    let shown: String = lines.iter().take(5).map(|l| l.trim().to_string()).collect::<Vec<_>>().join(" ");
    let last = words.last().unwrap();
    assert!(shown.contains(last) || shown.contains('…'), "the why line ends on screen or says it is cut: {why:?}");
    assert!(shown.contains(words[2]), "{why:?}");
}

#[test]
fn read_only_is_first_in_the_title_and_survives_60_columns() {
    let a = App::with_report(
        AppOptions { read_only: true, size: (60, 20), source: "demo us-east-2,eu-west-1 tag:role=codex-agent (built-in model)".into(), ..Default::default() },
        codex_fleet::tui::fixtures::incident_fleet(),
    );
    let lines = screen_lines(&render(&a));
    assert!(lines[0].contains("READ-ONLY"), "{:?}", lines[0]);
    assert!(lines[0].contains("demo"), "the demo says so: {:?}", lines[0]);
}

#[test]
fn runs_view_and_one_run_opened() {
    use codex_fleet::rollout::lifecycle::{AgentOutcome, AgentStanding, RunStatus};
    let mut a = app(130, 30);
    let fx = a.dispatch(Action::Command("runs".into()));
    assert_eq!(fx, vec![Effect::LoadRuns]);
    a.on_msg(Msg::Runs(runs()));
    a.sync();
    keys(&mut a, "j");
    let t = render(&a);
    snap("runs_130x30", &t);
    // The footer offers what the selected (interrupted) run allows, and only that.
    let footer: String = (0..130).map(|x| t.backend().buffer()[(x, 29)].symbol().to_string()).collect();
    assert!(footer.contains("P resume") && footer.contains("B roll back"), "{footer}");
    let mut n = app(80, 24);
    n.dispatch(Action::Command("runs".into()));
    n.on_msg(Msg::Runs(runs()));
    n.sync();
    snap("runs_80x24", &render(&n));
    let footer: String = (0..80).map(|x| render(&n).backend().buffer()[(x, 23)].symbol().to_string()).collect();
    assert!(!footer.contains("P resume") && footer.contains("B roll back"), "a done run only rolls back: {footer}");

    let fx = keys(&mut a, "<enter>");
    assert!(matches!(&fx[..], [Effect::LoadRun { .. }]));
    let run_id = a.run_detail.as_ref().unwrap().run_id.clone();
    let agent = |id: &str, wave, outcome, reason: Option<&str>| AgentOutcome {
        id: id.into(),
        wave,
        outcome,
        applied: None,
        reason: reason.map(String::from),
        last_step: None,
    };
    let status = RunStatus { run_id: run_id.clone(), state: RunState::Interrupted, detail: "its process stopped before finishing (no state recorded)".into(), rollback_begun: false, holder: None };
    a.on_msg(Msg::RunOutcomes {
        run_id,
        result: Ok((
            status,
            vec![
                agent("i-0a1b2c3d4e5f60001/codex-review-1", Some(0), AgentStanding::Verified, None),
                agent("i-0a1b2c3d4e5f60001/codex-review-2", Some(1), AgentStanding::Stopped, Some("the run stopped during its restart step")),
                agent("i-0a1b2c3d4e5f60002/codex-build-1", None, AgentStanding::NotReached, Some("the run stopped before its wave")),
            ],
        )),
    });
    a.sync();
    snap("run_outcomes_130x30", &render(&a));
}
