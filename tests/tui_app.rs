//! The console's state machine driven by key events, with no terminal: what each key does,
//! what work it asks for (effects), and the --read-only refusals at the dispatcher.

use codex_fleet::diagnose::Verdict;
use codex_fleet::rollout::engine::{Event, RunResult};
use codex_fleet::rollout::journal::{Outcome, RunState};
use codex_fleet::tui::{Format, Mode, Msg, Pending, PlanFor, Popup, RunPhase, SortKey, StatusKind};
use codex_fleet::tui::fixtures::{app, incident_fleet, keys, large_fleet, settle};
use codex_fleet::tui::{Action, App, AppOptions, Effect, View};
use codex_fleet::tui::model::confirm::ApplyForm;

fn read_only_app() -> App {
    App::with_report(
        AppOptions { read_only: true, size: (120, 40), source: "fixture".into(), ..Default::default() },
        incident_fleet(),
    )
}

fn visible_names(a: &App) -> Vec<String> {
    a.rows.iter().map(|ix| a.agent_at(*ix).unwrap().read.agent.name.clone()).collect()
}

#[test]
fn starts_on_the_agents_table_stalled_first() {
    let a = app(120, 40);
    assert_eq!(a.view, View::Agents);
    let verdicts: Vec<Verdict> = a.rows.iter().map(|ix| a.agent_at(*ix).unwrap().diagnosis.verdict).collect();
    assert_eq!(verdicts.first(), Some(&Verdict::Stalled));
    assert_eq!(verdicts.last(), Some(&Verdict::Healthy));
    assert_eq!(a.rows.len(), 12);
}

#[test]
fn filter_matches_name_host_verdict_and_codes() {
    let mut a = app(120, 40);
    keys(&mut a, "/uidmap");
    assert_eq!(a.mode, Mode::Filter);
    assert_eq!(visible_names(&a), ["codex-review-2"], "finding code, live while typing");
    keys(&mut a, "<enter>");
    assert_eq!(a.mode, Mode::Normal);
    assert_eq!(a.filter, "uidmap");

    keys(&mut a, "/<bs><bs><bs><bs><bs><bs>ws-ops-1<enter>");
    assert_eq!(visible_names(&a).len(), 4, "host name");
    keys(&mut a, "/<end> at-risk<enter>");
    assert!(visible_names(&a).is_empty(), "terms are AND-ed: no at-risk agent on ws-ops-1");
    keys(&mut a, "<esc>");
    assert!(a.filter.is_empty(), "Esc clears the filter");
    keys(&mut a, "/at-risk<enter>");
    assert_eq!(visible_names(&a), ["codex-build-3", "codex-build-4"], "verdict");
    keys(&mut a, "/build-1<esc>");
    assert_eq!(a.filter, "at-risk", "Esc while typing restores the filter");
    keys(&mut a, "<esc>/codex-ops-2<enter>");
    assert_eq!(visible_names(&a), ["codex-ops-2"], "name");
}

#[test]
fn navigation_keys() {
    let mut a = app(120, 13); // a page of 4 rows (the why line takes two)
    assert_eq!(a.page(), 4);
    keys(&mut a, "jj");
    assert_eq!(a.sel, 2);
    keys(&mut a, "k<down><up><up>");
    assert_eq!(a.sel, 0);
    keys(&mut a, "G");
    assert_eq!(a.sel, 11);
    assert!(a.offset <= 11 && a.offset + 4 > 11, "the selection stays on screen");
    keys(&mut a, "g");
    assert_eq!((a.sel, a.offset), (0, 0));
    keys(&mut a, "<pgdn>");
    assert_eq!(a.sel, 4);
    keys(&mut a, "<pgup>");
    assert_eq!(a.sel, 0);
}

#[test]
fn sort_cycles_and_reverses_keeping_the_selection() {
    let mut a = app(120, 40);
    keys(&mut a, "jj");
    let id = a.selected_agent().unwrap().id();
    keys(&mut a, "s");
    assert_eq!(a.sort, SortKey::Host);
    assert_eq!(a.selected_agent().unwrap().id(), id);
    keys(&mut a, "ss");
    assert_eq!(a.sort, SortKey::Mode);
    keys(&mut a, "s");
    assert_eq!(a.sort, SortKey::Verdict);
    keys(&mut a, "S");
    assert_eq!(a.agent_at(a.rows[0]).unwrap().diagnosis.verdict, Verdict::Healthy);
}

#[test]
fn marks_and_targets() {
    let mut a = app(120, 40);
    let first = a.selected_agent().unwrap().id();
    keys(&mut a, "<space>");
    assert!(a.marks.contains(&first));
    assert_eq!(a.sel, 1, "space moves on");
    keys(&mut a, "<space>");
    assert_eq!(a.targets().len(), 2, "p/a/v act on the marked agents");
    keys(&mut a, "u");
    assert!(a.marks.is_empty());
    assert_eq!(a.targets().len(), 1, "else on the selected one");
    keys(&mut a, "/stalled<enter>*");
    assert_eq!(a.marks.len(), 7, "* marks every visible row");
}

#[test]
fn enter_opens_detail_and_esc_goes_back() {
    let mut a = app(120, 40);
    keys(&mut a, "<enter>");
    assert_eq!(a.view, View::Detail);
    assert_eq!(a.detail.as_deref(), Some(a.selected_agent().unwrap().id().as_str()));
    keys(&mut a, "jjj");
    assert_eq!(a.detail_scroll, 3);
    keys(&mut a, "<esc>");
    assert_eq!(a.view, View::Agents);
    a.dispatch(Action::Go(View::Hosts));
    keys(&mut a, "<enter>");
    let host = a.report.hosts[0].host.clone();
    assert_eq!((a.view, a.filter.clone()), (View::Agents, format!("host={}", host.id)), "a host opens exactly its agents");
    assert!(!a.rows.is_empty());
    for ix in &a.rows {
        assert_eq!(a.host_of(*ix).unwrap().host.id, host.id, "another host's agent under {}", host.name);
    }
}

#[test]
fn command_mode() {
    let mut a = app(120, 40);
    keys(&mut a, ":hosts<enter>");
    assert_eq!(a.view, View::Hosts);
    let fx = keys(&mut a, ":audit<enter>");
    assert_eq!(a.view, View::Audit);
    assert_eq!(fx, vec![Effect::LoadRuns]);
    keys(&mut a, ":agents<enter>");
    assert_eq!(a.view, View::Agents);
    keys(&mut a, ":rollout<enter>");
    assert_eq!(a.view, View::Agents, "no run yet");
    assert_eq!(a.status.as_ref().unwrap().kind, StatusKind::Error);
    keys(&mut a, ":frobnicate<enter>");
    assert!(a.status.as_ref().unwrap().text.contains("unknown command"));
    let fx = keys(&mut a, ":export csv /tmp/r.csv<enter>");
    assert_eq!(fx, vec![Effect::Export { format: Format::Csv, path: "/tmp/r.csv".into() }]);
    let fx = keys(&mut a, ":q<enter>");
    assert_eq!(fx, vec![Effect::Quit]);
}

#[test]
fn help_opens_and_closes() {
    let mut a = app(120, 40);
    keys(&mut a, "?");
    assert_eq!(a.popup, Some(Popup::Help));
    keys(&mut a, "j");
    assert_eq!(a.popup, Some(Popup::Help), "help is modal");
    keys(&mut a, "<esc>");
    assert_eq!(a.popup, None);
}

#[test]
fn refresh_and_verify_ask_for_work() {
    let mut a = app(120, 40);
    assert_eq!(keys(&mut a, "r"), vec![Effect::Scan]);
    assert_eq!(a.scanning, Some(0));
    assert!(keys(&mut a, "r").is_empty(), "one scan at a time");
    let id = a.selected_agent().unwrap().id();
    assert_eq!(keys(&mut a, "v"), vec![Effect::Verify { ids: vec![id] }]);
}

#[test]
fn streaming_rows_keep_the_selection() {
    let mut a = App::new(AppOptions { size: (120, 40), ..Default::default() });
    let fleet = incident_fleet();
    a.scanning = Some(0);
    a.on_msg(Msg::Host(fleet.hosts[3].clone()));
    a.sync();
    assert_eq!(a.rows.len(), 4);
    keys(&mut a, "j");
    let id = a.selected_agent().unwrap().id();
    for h in &fleet.hosts[..3] {
        a.on_msg(Msg::Host(h.clone()));
    }
    a.sync();
    assert_eq!(a.rows.len(), 12);
    assert_eq!(a.selected_agent().unwrap().id(), id, "rows arriving do not move the cursor's agent");
    a.on_msg(Msg::ScanDone(Ok(fleet.clone())));
    a.sync();
    assert_eq!(a.scanning, None);
    assert_eq!(a.report.hosts[0].host.id, fleet.hosts[0].host.id, "final order is discovery order");
}

#[test]
fn a_host_that_stops_answering_keeps_its_agents_as_unknown() {
    let mut a = app(120, 40);
    let mut h = a.report.hosts[0].clone();
    h.host.reachable = false;
    h.host.unreachable_reason = Some("PingStatus ConnectionLost".into());
    h.agents.clear();
    a.on_msg(Msg::Host(h));
    a.sync();
    let agents = &a.report.hosts[0].agents;
    assert_eq!(agents.len(), 4);
    assert!(agents.iter().all(|x| x.diagnosis.verdict == Verdict::Unknown));
    assert_eq!(agents[0].diagnosis.evidence(codex_fleet::diagnose::Code::HostUnreachable), Some("PingStatus ConnectionLost"));
}

#[test]
fn preview_acts_on_marks_else_selection_and_attention_shows_why() {
    let mut a = app(120, 40);
    keys(&mut a, "/build-2<enter>");
    let fx = keys(&mut a, "p");
    assert_eq!(fx, vec![Effect::Plan { ids: vec!["i-0a1b2c3d4e5f60002/codex-build-2".into()], purpose: PlanFor::Preview }]);
    settle(&mut a, fx);
    assert_eq!(a.view, View::Plan);
    let p = a.plan.as_ref().unwrap();
    assert!(p.plan.agents.is_empty());
    assert_eq!(p.plan.attention.len(), 1);
    assert!(p.lines.iter().any(|l| l.contains("codex's command line overrides config.toml")), "{:#?}", p.lines);

    // A healthy agent: nothing to change, said so.
    keys(&mut a, "<esc><esc>/review-4<enter>");
    let fx = keys(&mut a, "p");
    settle(&mut a, fx);
    assert!(a.plan.as_ref().unwrap().lines[0].contains("nothing to change"));
}

#[test]
fn apply_needs_the_confirmation_which_holds_the_exact_plan() {
    let mut a = app(120, 40);
    keys(&mut a, "/stalled<enter>*");
    let fx = keys(&mut a, "a");
    assert!(matches!(&fx[..], [Effect::Plan { purpose: PlanFor::Apply, .. }]));
    let fx = settle(&mut a, fx);
    assert!(fx.is_empty(), "nothing runs before the confirmation");
    let Some(Popup::Confirm(Pending::Apply { plan, form })) = a.popup.clone() else { panic!("confirmation expected: {:?}", a.popup) };
    assert_eq!(plan.agents.len(), 5);
    assert_eq!(plan.attention.len(), 2, "cli-override and gitea-unreachable are not planned");
    assert_eq!(form, ApplyForm::default());
    assert_eq!((form.canary.as_str(), form.wave.as_str(), form.max_errors.as_str(), form.restart_timeout.as_str()), ("1", "25%", "0", "120"));

    // Options are typed in the popup (the first key replaces the value); any other key than
    // y cancels, and nothing typed in a cancelled confirmation carries over.
    keys(&mut a, "c2<enter>w50%<enter>e1<enter>t90s<enter>p");
    let Some(Popup::Confirm(Pending::Apply { form, .. })) = a.popup.clone() else { panic!() };
    assert_eq!((form.canary.as_str(), form.wave.as_str(), form.max_errors.as_str(), form.restart_timeout.as_str()), ("2", "50%", "1", "90s"));
    assert!(form.pause_after_canary);
    assert!(keys(&mut a, "n").is_empty());
    assert_eq!(a.popup, None);
    assert!(a.status.as_ref().unwrap().text.contains("nothing changed"));
    let fx = keys(&mut a, "a");
    settle(&mut a, fx);
    let Some(Popup::Confirm(Pending::Apply { form, .. })) = a.popup.clone() else { panic!() };
    assert_eq!(form, ApplyForm::default(), "each confirmation starts from the defaults");

    // Again, typed, and yes: the effect carries exactly the plan that was shown and the options.
    keys(&mut a, "c2<enter>w50%<enter>t90s<enter>p");
    let Some(Popup::Confirm(Pending::Apply { plan: shown, .. })) = a.popup.clone() else { panic!() };
    let fx = keys(&mut a, "y");
    match &fx[..] {
        [Effect::Apply { plan, opts, restart_timeout, pause_after_canary }] => {
            assert_eq!(*plan, shown);
            assert_eq!((opts.canary, opts.wave.as_str(), opts.max_errors.as_str()), (2, "50%", "0"));
            assert_eq!(*restart_timeout, std::time::Duration::from_secs(90), "the restart timeout reaches the engine");
            assert!(*pause_after_canary);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.view, View::Rollout);
    let r = a.run.as_ref().unwrap();
    assert_eq!(r.phase, RunPhase::Starting);
    assert_eq!(r.waves.iter().map(Vec::len).collect::<Vec<_>>(), [2, 3], "canary of 2, then waves of 50% of 5 (3)");
}

#[test]
fn enter_does_not_confirm() {
    let mut a = app(120, 40);
    keys(&mut a, "/review-1<enter>");
    let fx = keys(&mut a, "a");
    settle(&mut a, fx);
    assert!(matches!(a.popup, Some(Popup::Confirm(_))));
    assert!(keys(&mut a, "<enter>").is_empty(), "the default is N");
    assert_eq!(a.popup, None);
}

fn run_started(a: &mut App) -> Vec<String> {
    keys(a, "/review<enter>*");
    let fx = keys(a, "a");
    settle(a, fx);
    keys(a, "y");
    a.on_msg(Msg::RunStarted { run_id: "R1".into() });
    a.run.as_ref().unwrap().ids.clone()
}

#[test]
fn pause_resume_abort() {
    let mut a = app(120, 40);
    let ids = run_started(&mut a);
    assert_eq!(a.run.as_ref().unwrap().phase, RunPhase::Running);
    assert_eq!(keys(&mut a, "P"), vec![Effect::Stop]);
    assert_eq!(a.run.as_ref().unwrap().phase, RunPhase::Pausing);
    let interrupted = RunResult {
        run_id: "R1".into(),
        state: RunState::Interrupted,
        detail: String::new(),
        waves: vec![],
        verified: 1,
        failed: 0,
        skipped: 0,
        unknown: 0,
        untouched: ids[1..].to_vec(),
    };
    let fx = a.on_msg(Msg::RunDone(Ok(interrupted.clone())));
    assert!(fx.is_empty(), "a paused run does not re-scan yet");
    assert_eq!(a.run.as_ref().unwrap().phase, RunPhase::Paused);
    assert_eq!(keys(&mut a, "P"), vec![Effect::Resume { run_id: "R1".into() }]);
    assert_eq!(a.run.as_ref().unwrap().phase, RunPhase::Running);
    assert_eq!(keys(&mut a, "X"), vec![Effect::Stop]);
    assert_eq!(a.run.as_ref().unwrap().phase, RunPhase::Stopping);
    let fx = a.on_msg(Msg::RunDone(Ok(interrupted)));
    assert_eq!(fx, vec![Effect::Scan, Effect::LoadRuns], "after the run: re-scan, reload history");
    assert!(a.status.as_ref().unwrap().text.contains("R1: interrupted"), "one word for a stopped run");
}

/// One vocabulary: a pause is `interrupted`, never "halted"; a halted run resumes from the
/// footer's P (what its state allows) and the halt line goes with the resume; a done run after
/// a pause carries nothing of it.
#[test]
fn a_pause_is_interrupted_and_a_resumed_run_keeps_no_halt() {
    let mut a = app(120, 40);
    let ids = run_started(&mut a);
    let result = |state: RunState| RunResult {
        run_id: "R1".into(),
        state,
        detail: String::new(),
        waves: vec![],
        verified: 1,
        failed: 0,
        skipped: 0,
        unknown: 0,
        untouched: ids[1..].to_vec(),
    };
    keys(&mut a, "P");
    a.on_msg(Msg::RunEvent(Event::Paused { reason: "stopped by the operator".into() }));
    a.on_msg(Msg::RunDone(Ok(result(RunState::Interrupted))));
    assert_eq!(a.run.as_ref().unwrap().halted, None, "a pause is not a halt");
    assert_eq!(RunPhase::Paused.as_str(), "interrupted (paused; resumable)");
    assert_eq!(keys(&mut a, "P"), vec![Effect::Resume { run_id: "R1".into() }]);
    a.on_msg(Msg::RunEvent(Event::Halted { reason: "1 failed, more than --max-errors allows (0)".into() }));
    a.on_msg(Msg::RunDone(Ok(result(RunState::Halted))));
    assert_eq!(a.run.as_ref().unwrap().phase, RunPhase::Finished);
    assert!(a.run.as_ref().unwrap().halted.is_some());
    assert_eq!(keys(&mut a, "P"), vec![Effect::Resume { run_id: "R1".into() }], "halted allows continuing");
    assert_eq!(a.run.as_ref().unwrap().halted, None, "the halt is history once resumed");
    a.on_msg(Msg::RunDone(Ok(result(RunState::Done))));
    assert_eq!(a.run.as_ref().unwrap().state, Some(RunState::Done));
    assert_eq!(a.run.as_ref().unwrap().halted, None);
    assert!(keys(&mut a, "P").is_empty(), "a done run cannot be resumed");
}

#[test]
fn run_events_update_progress_and_rollback_needs_confirmation() {
    let mut a = app(120, 40);
    let ids = run_started(&mut a);
    a.on_msg(Msg::RunEvent(Event::Wave { index: 0, agents: vec![ids[0].clone()] }));
    a.on_msg(Msg::RunEvent(Event::Agent { agent: ids[0].clone(), outcome: Outcome::Verified }));
    assert_eq!(a.run.as_ref().unwrap().count("verified"), 1);
    assert!(keys(&mut a, "B").is_empty());
    assert!(a.popup.is_none(), "no roll back while the run is in progress");
    a.on_msg(Msg::RunDone(Ok(RunResult {
        run_id: "R1".into(),
        state: RunState::Done,
        detail: String::new(),
        waves: vec![],
        verified: 3,
        failed: 0,
        skipped: 0,
        unknown: 0,
        untouched: vec![],
    })));
    assert!(keys(&mut a, "B").is_empty());
    assert!(matches!(&a.popup, Some(Popup::Confirm(Pending::Rollback { run_id, .. })) if run_id == "R1"));
    assert_eq!(keys(&mut a, "y"), vec![Effect::Rollback { run_id: "R1".into() }]);
    let fx = a.on_msg(Msg::RollbackDone { run_id: "R1".into(), result: Ok(ids.iter().map(|i| (i.clone(), Outcome::RolledBack)).collect()) });
    assert_eq!(fx, vec![Effect::Scan, Effect::LoadRuns]);
    assert_eq!(a.run.as_ref().unwrap().state, Some(RunState::RolledBack));
}

#[test]
fn quit_during_a_run_asks_detach_or_abort() {
    let mut a = app(120, 40);
    run_started(&mut a);
    assert!(keys(&mut a, "q").is_empty());
    assert_eq!(a.popup, Some(Popup::QuitRun));
    keys(&mut a, "<esc>");
    assert_eq!(a.popup, None, "Esc stays");
    keys(&mut a, "q");
    assert_eq!(keys(&mut a, "a"), vec![Effect::Stop], "abort after the current step");
    assert!(a.quit_after_run);
    let fx = a.on_msg(Msg::RunDone(Ok(RunResult {
        run_id: "R1".into(),
        state: RunState::Interrupted,
        detail: String::new(),
        waves: vec![],
        verified: 0,
        failed: 0,
        skipped: 0,
        unknown: 0,
        untouched: vec![],
    })));
    assert_eq!(fx, vec![Effect::Quit]);

    let mut b = app(120, 40);
    run_started(&mut b);
    keys(&mut b, "q");
    assert_eq!(keys(&mut b, "d"), vec![Effect::Quit], "detach: quit now, the run stays resumable");
}

#[test]
fn quit_without_a_run() {
    let mut a = app(120, 40);
    assert_eq!(keys(&mut a, "q"), vec![Effect::Quit]);
}

#[test]
fn read_only_refuses_mutations_at_the_dispatcher() {
    let mut a = read_only_app();
    keys(&mut a, "/stalled<enter>*");
    for action in [Action::Apply, Action::ConfirmYes, Action::PauseResume, Action::Abort, Action::Rollback, Action::ResumeRun] {
        assert!(action.is_mutating());
        assert!(a.dispatch(action.clone()).is_empty(), "{action:?} refused");
        let s = a.status.clone().unwrap();
        assert_eq!(s.kind, StatusKind::Error);
        assert!(s.text.contains("read-only"), "{}", s.text);
        assert!(a.popup.is_none() && a.run.is_none());
    }
    // The same through keys: no plan is even computed for `a`.
    assert!(keys(&mut a, "a").is_empty());
    assert!(a.planning.is_none());
    // Reading stays possible.
    assert!(matches!(&keys(&mut a, "p")[..], [Effect::Plan { purpose: PlanFor::Preview, .. }]));
    assert!(matches!(&keys(&mut a, "v")[..], [Effect::Verify { .. }]));
    assert_eq!(keys(&mut a, "r"), vec![Effect::Scan]);
}

#[test]
fn read_only_refuses_even_a_confirmation_popup_left_open() {
    // A confirmation cannot be reached in read-only mode; were one there, `y` is still refused.
    let mut a = read_only_app();
    let plan = codex_fleet::tui::plan_subset(&a.report, &["i-0a1b2c3d4e5f60001/codex-review-1".into()], "x", "t");
    a.popup = Some(Popup::Confirm(Pending::Apply { plan, form: ApplyForm::default() }));
    assert!(keys(&mut a, "y").is_empty());
    assert!(a.run.is_none());
}

#[test]
fn resize_is_an_action() {
    let mut a = app(120, 40);
    keys(&mut a, "G");
    a.dispatch(Action::Resize(80, 12));
    assert_eq!(a.size, (80, 12));
    assert!(a.offset + a.page() > a.sel);
}

#[test]
fn enter_on_a_host_selects_that_host_exactly_never_hosts_sharing_its_prefix() {
    // ws-us-east-2-100 is a prefix of -1000 and -1001: a substring filter would take 3 hosts.
    let mut r = large_fleet(1002, 2);
    for (i, h) in r.hosts.iter_mut().enumerate() {
        h.host.name = format!("ws-us-east-2-{i:03}");
    }
    let mut a = App::with_report(AppOptions { size: (160, 45), source: "fixture".into(), ..Default::default() }, r);
    a.dispatch(Action::Go(View::Hosts));
    a.host_sel = 100;
    keys(&mut a, "<enter>");
    let id = a.report.hosts[100].host.id.clone();
    assert_eq!(a.filter, format!("host={id}"));
    assert_eq!(a.rows.len(), 2, "that host's two agents only");
    keys(&mut a, "*");
    let want: Vec<String> = a.report.hosts[100].agents.iter().map(|x| x.id()).collect();
    let mut got = a.targets();
    got.sort();
    assert_eq!(got, want, "* then a would target that host's agents only");
    // typed by hand, by name: the same exact host
    keys(&mut a, "u<esc>/host=ws-us-east-2-100<enter>");
    assert_eq!(a.rows.len(), 2);
    // a bare word stays a substring filter
    keys(&mut a, "<esc>/ws-us-east-2-100<enter>");
    assert_eq!(a.rows.len(), 6, "-100, -1000, -1001 by substring");
}

#[test]
fn slash_opens_on_the_old_filter_selected_so_typing_replaces_it() {
    let mut a = app(120, 40);
    keys(&mut a, "/uidmap<enter>");
    assert_eq!(a.filter, "uidmap");
    keys(&mut a, "/");
    assert!(a.input.selected, "the old filter is selected");
    keys(&mut a, "stalled<enter>");
    assert_eq!(a.filter, "stalled", "typing replaced the old filter (not `uidmapstalled`)");
    keys(&mut a, "/<bs><enter>");
    assert_eq!(a.filter, "", "one Backspace clears a selected filter");
    keys(&mut a, "/uid<enter>/<end>map<enter>");
    assert_eq!(a.filter, "uidmap", "a cursor key keeps the text and types after it");
}

#[test]
fn filter_matches_root_cause_words_as_the_why_line_writes_them() {
    let mut a = app(120, 40);
    let why = a.why.clone();
    assert!(why.starts_with("stalled: "), "{why}");
    // Every root cause of the why line, typed as written, finds exactly its count of agents.
    let causes = a.causes().to_vec();
    assert!(causes.len() >= 2, "{causes:?}");
    for (n, cause) in &causes {
        keys(&mut a, &format!("/{cause}<enter>"));
        assert_eq!(a.rows.len(), *n, "filter `{cause}`");
        assert!(a.rows.iter().all(|ix| a.agent_at(*ix).unwrap().diagnosis.verdict == Verdict::Stalled));
    }
    // Words of a cause, not the whole phrase, in any case.
    keys(&mut a, "/rtm_newaddr<enter>");
    let n_loop = causes.iter().find(|(_, c)| c.contains("RTM_NEWADDR")).map(|(n, _)| *n).unwrap_or(0);
    assert!(n_loop > 0 && a.rows.len() == n_loop, "rtm_newaddr: {} rows, {n_loop} expected", a.rows.len());
}

#[test]
fn enter_on_a_root_cause_in_the_hosts_view_filters_to_its_agents() {
    let mut a = app(120, 40);
    let causes = a.causes().to_vec();
    keys(&mut a, ":hosts<enter>");
    assert_eq!(a.view, View::Hosts);
    assert_eq!(a.cause_sel, None);
    keys(&mut a, "k");
    assert_eq!(a.cause_sel, Some(causes.len() - 1), "up from the first host reaches the last cause");
    keys(&mut a, &"k".repeat(causes.len() + 2));
    let first = a.cause_sel.expect("in the causes");
    assert_eq!(first, 0, "k stops at the first cause");
    keys(&mut a, "<enter>");
    assert_eq!(a.view, View::Agents);
    assert_eq!(a.filter, causes[first].1);
    assert_eq!(a.rows.len(), causes[first].0, "exactly the agents of that cause");
    keys(&mut a, "<esc><esc>");
    assert_eq!(a.view, View::Hosts);
}

#[test]
fn c_copies_the_agent_id_and_prints_it() {
    let mut a = app(120, 40);
    let id = a.selected_agent().unwrap().id();
    keys(&mut a, "c");
    assert_eq!(a.clipboard.as_deref(), Some(id.as_str()));
    let st = a.status.clone().unwrap();
    assert!(st.text.contains(&id), "the id is printed too (terminals without OSC 52): {}", st.text);
}

#[test]
fn tab_completes_commands_and_their_arguments() {
    use codex_fleet::tui::complete;
    assert_eq!(complete("au").0, "audit ");
    assert_eq!(complete("a"), ("a".to_string(), vec!["agents", "audit"]));
    assert_eq!(complete("so").0, "sort ");
    assert_eq!(complete("sort v").0, "sort verdict ");
    assert_eq!(complete("export j").0, "export json ");
    assert_eq!(complete("nosuch").1, Vec::<&str>::new());
    let mut a = app(120, 40);
    keys(&mut a, ":hos<tab><enter>");
    assert_eq!(a.view, View::Hosts, "completed to `hosts ` and run");
    // Every completion is a command the console knows.
    for c in codex_fleet::tui::COMMANDS {
        let mut a = app(120, 40);
        keys(&mut a, &format!(":{c}<enter>"));
        let st = a.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
        assert!(!st.contains("unknown command"), "{c}: {st}");
    }
}

#[test]
fn a_run_summary_stays_when_a_scan_ends_after_it() {
    let mut a = app(120, 40);
    a.status = Some(codex_fleet::tui::Status {
        kind: StatusKind::Info,
        text: "run r-1: done — 3 verified".into(),
        pinned: true,
    });
    a.on_msg(Msg::ScanDone(Ok(incident_fleet())));
    assert!(a.status.as_ref().unwrap().text.starts_with("run r-1"), "{:?}", a.status);
    keys(&mut a, "<esc>");
    assert!(a.status.is_none(), "Esc dismisses it");
}

// ---------------------------------------------------------------------------------------------
// The Runs views: any run of the journal, resumed or rolled back after a liveness check.

fn journal_runs() -> Vec<codex_fleet::tui::RunSummary> {
    let run = |id: &str, state: &str, verified: usize, unfinished: usize| codex_fleet::tui::RunSummary {
        run_id: id.into(),
        state: state.into(),
        started: "2026-11-03T03:15:02Z".into(),
        operator: "oncall@bastion".into(),
        agents: 4,
        verified,
        failed: 0,
        skipped: 0,
        unfinished,
    };
    vec![run("R-done", "done", 4, 0), run("R-killed", "interrupted", 1, 3), run("R-halted", "halted", 1, 3), run("R-live", "running", 1, 3)]
}

fn runs_app() -> App {
    let mut a = app(120, 40);
    assert_eq!(keys(&mut a, ":runs<enter>"), vec![Effect::LoadRuns]);
    assert_eq!(a.view, View::Runs);
    a.on_msg(Msg::Runs(journal_runs()));
    a.sync();
    a
}

fn outcome(id: &str, s: codex_fleet::rollout::lifecycle::AgentStanding, reason: Option<&str>) -> codex_fleet::rollout::lifecycle::AgentOutcome {
    codex_fleet::rollout::lifecycle::AgentOutcome { id: id.into(), wave: Some(0), outcome: s, applied: None, reason: reason.map(String::from), last_step: None }
}

#[test]
fn runs_view_is_reached_by_tab_and_command() {
    let mut a = app(120, 40);
    keys(&mut a, ":audit<enter>");
    assert_eq!(a.view, View::Audit);
    assert_eq!(keys(&mut a, "<tab>"), vec![Effect::LoadRuns]);
    assert_eq!(a.view, View::Runs);
    keys(&mut a, "<tab>");
    assert_eq!(a.view, View::Hosts, "then round to the hosts");
    keys(&mut a, ":ru<tab>");
    assert_eq!(a.input.text.trim_end(), "runs", "the command completes");
    keys(&mut a, "<enter>");
    assert_eq!(a.view, View::Runs);
}

#[test]
fn resume_any_interrupted_run_after_the_liveness_check_and_a_confirmation() {
    let mut a = runs_app();
    // The done run is selected first: it allows roll back only.
    assert!(keys(&mut a, "P").is_empty());
    let s = a.status.clone().unwrap();
    assert_eq!(s.kind, StatusKind::Error);
    assert!(s.text.contains("run R-done is done: it cannot be resumed (it allows rollback)"), "{}", s.text);
    // The interrupted run a killed CLI left: the liveness check first, no popup yet.
    keys(&mut a, "j");
    assert_eq!(
        keys(&mut a, "P"),
        vec![Effect::CheckRun { run_id: "R-killed".into(), action: codex_fleet::rollout::lifecycle::RunAction::Resume }]
    );
    assert!(a.popup.is_none(), "no confirmation before the liveness check answers");
    // A live holder refuses, named.
    let held = "run R-killed is held by another process, alive: pid 4242 (ops@bastion), since 2026-11-03T03:15:02Z; wait for it to finish, or stop it (Ctrl-C, or `kill 4242` on bastion) and try again; refused to resume it";
    a.on_msg(Msg::RunChecked { run_id: "R-killed".into(), action: codex_fleet::rollout::lifecycle::RunAction::Resume, result: Err(held.into()) });
    assert!(a.popup.is_none());
    let s = a.status.clone().unwrap();
    assert_eq!((s.kind, s.text.contains("pid 4242 (ops@bastion)")), (StatusKind::Error, true), "{}", s.text);
    // Nobody holds it: the confirmation holds the exact action.
    keys(&mut a, "P");
    a.on_msg(Msg::RunChecked { run_id: "R-killed".into(), action: codex_fleet::rollout::lifecycle::RunAction::Resume, result: Ok(()) });
    assert_eq!(a.popup, Some(Popup::Confirm(Pending::Resume { run_id: "R-killed".into(), continue_halted: false, agents: 4 })));
    assert!(keys(&mut a, "n").is_empty(), "N: nothing happens");
    assert!(a.popup.is_none() && a.run.is_none());
    keys(&mut a, "P");
    a.on_msg(Msg::RunChecked { run_id: "R-killed".into(), action: codex_fleet::rollout::lifecycle::RunAction::Resume, result: Ok(()) });
    assert_eq!(
        keys(&mut a, "y"),
        vec![Effect::LoadRun { run_id: "R-killed".into() }, Effect::Resume { run_id: "R-killed".into() }],
        "its outcomes are read for the progress"
    );
    assert_eq!(a.view, View::Rollout);
    let r = a.run.as_ref().unwrap();
    assert_eq!((r.run_id.as_deref(), r.phase), (Some("R-killed"), RunPhase::Running));
    // What the killed process finished counts in the progress; the rest is to come.
    use codex_fleet::rollout::lifecycle::{AgentStanding, RunStatus};
    let status = RunStatus { run_id: "R-killed".into(), state: RunState::Interrupted, detail: String::new(), rollback_begun: false, holder: None };
    a.on_msg(Msg::RunOutcomes {
        run_id: "R-killed".into(),
        result: Ok((status, vec![outcome("h1/c1", AgentStanding::Verified, None), outcome("h1/c2", AgentStanding::NotReached, Some("the run stopped before its wave"))])),
    });
    let r = a.run.as_ref().unwrap();
    assert_eq!(r.ids, ["h1/c1", "h1/c2"]);
    assert_eq!(r.count("verified"), 1);
    // The engine's end comes back as for a run started here.
    let fx = a.on_msg(Msg::RunDone(Ok(RunResult {
        run_id: "R-killed".into(),
        state: RunState::Done,
        detail: String::new(),
        waves: vec![],
        verified: 4,
        failed: 0,
        skipped: 0,
        unknown: 0,
        untouched: vec![],
    })));
    assert_eq!(fx, vec![Effect::Scan, Effect::LoadRuns]);
    assert_eq!(a.run.as_ref().unwrap().state, Some(RunState::Done));
}

#[test]
fn a_halted_run_continues_past_its_halt_and_a_running_one_allows_nothing() {
    let mut a = runs_app();
    keys(&mut a, "jj");
    assert_eq!(
        keys(&mut a, "P"),
        vec![Effect::CheckRun { run_id: "R-halted".into(), action: codex_fleet::rollout::lifecycle::RunAction::ContinueHalted }]
    );
    a.on_msg(Msg::RunChecked { run_id: "R-halted".into(), action: codex_fleet::rollout::lifecycle::RunAction::ContinueHalted, result: Ok(()) });
    assert!(matches!(&a.popup, Some(Popup::Confirm(Pending::Resume { continue_halted: true, .. }))));
    keys(&mut a, "<esc>");
    keys(&mut a, "j");
    assert!(keys(&mut a, "P").is_empty() && keys(&mut a, "B").is_empty(), "a live process acts for a running run");
    assert!(a.status.clone().unwrap().text.contains("run R-live is running: it cannot be rolled back (it allows nothing)"));
}

#[test]
fn enter_opens_a_runs_outcomes_and_its_status_narrows_what_it_allows() {
    use codex_fleet::rollout::lifecycle::{AgentStanding, RunAction, RunStatus};
    let mut a = runs_app();
    keys(&mut a, "j");
    assert_eq!(keys(&mut a, "<enter>"), vec![Effect::LoadRun { run_id: "R-killed".into() }]);
    assert_eq!(a.view, View::Run);
    assert_eq!(a.runs_actions(), vec![RunAction::Resume, RunAction::Rollback], "from the list's state word until read");
    let status = RunStatus { run_id: "R-killed".into(), state: RunState::Interrupted, detail: String::new(), rollback_begun: true, holder: None };
    let agents = vec![
        outcome("h1/c1", AgentStanding::RolledBack, None),
        outcome("h1/c2", AgentStanding::Stopped, Some("the run stopped during its write step")),
    ];
    a.on_msg(Msg::RunOutcomes { run_id: "R-killed".into(), result: Ok((status, agents)) });
    assert_eq!(a.run_detail.as_ref().unwrap().agents().len(), 2);
    assert_eq!(a.runs_actions(), vec![RunAction::Rollback], "a rollback begun: only rollback may go on");
    assert!(keys(&mut a, "P").is_empty());
    assert_eq!(keys(&mut a, "B"), vec![Effect::CheckRun { run_id: "R-killed".into(), action: RunAction::Rollback }]);
    a.on_msg(Msg::RunChecked { run_id: "R-killed".into(), action: RunAction::Rollback, result: Ok(()) });
    assert_eq!(a.popup, Some(Popup::Confirm(Pending::Rollback { run_id: "R-killed".into(), agents: 2 })));
    assert_eq!(keys(&mut a, "y"), vec![Effect::Rollback { run_id: "R-killed".into() }]);
    assert_eq!(a.view, View::Rollout);
}

#[test]
fn read_only_refuses_resuming_a_journal_run() {
    let mut a = read_only_app();
    keys(&mut a, ":runs<enter>");
    a.on_msg(Msg::Runs(journal_runs()));
    keys(&mut a, "j");
    assert!(keys(&mut a, "P").is_empty() && keys(&mut a, "B").is_empty());
    assert!(a.status.clone().unwrap().text.contains("read-only"));
}

#[test]
fn an_invalid_option_is_refused_naming_the_field_and_blocks_y() {
    let mut a = app(120, 40);
    keys(&mut a, "/review<enter>*");
    let fx = keys(&mut a, "a");
    settle(&mut a, fx);
    keys(&mut a, "w0<enter>");
    let Some(Popup::Confirm(Pending::Apply { form, .. })) = a.popup.clone() else { panic!() };
    assert_eq!(form.error().unwrap().field, "wave size");
    assert!(keys(&mut a, "y").is_empty(), "y is blocked");
    assert!(matches!(a.popup, Some(Popup::Confirm(Pending::Apply { .. }))), "the popup stays");
    let s = a.status.clone().unwrap();
    assert_eq!(s.kind, StatusKind::Error);
    assert!(s.text.contains("wave size: `0`: a wave has at least one agent"), "{}", s.text);
    for (typed, field) in [("c<bs>two", "canary"), ("e<bs>many", "max errors"), ("t<bs>2h", "restart timeout")] {
        let fx = keys(&mut a, "n");
        assert!(fx.is_empty());
        let fx = keys(&mut a, "a");
        settle(&mut a, fx);
        keys(&mut a, &format!("{typed}<enter>"));
        let Some(Popup::Confirm(Pending::Apply { form, .. })) = a.popup.clone() else { panic!() };
        assert_eq!(form.error().map(|e| e.field), Some(field), "{typed}");
        assert!(keys(&mut a, "y").is_empty());
    }
    // Fixed: y goes through.
    keys(&mut a, "t<bs>300<enter>");
    assert!(matches!(&keys(&mut a, "y")[..], [Effect::Apply { .. }]));
}

#[test]
fn the_canary_gate_asks_and_n_pauses_the_run_resumably() {
    use codex_fleet::rollout::engine::{CanaryVerified, GateDecision};
    let mut a = app(120, 40);
    keys(&mut a, "/review<enter>*");
    let fx = keys(&mut a, "a");
    settle(&mut a, fx);
    keys(&mut a, "p");
    let fx = keys(&mut a, "y");
    assert!(matches!(&fx[..], [Effect::Apply { pause_after_canary: true, .. }]));
    a.on_msg(Msg::RunStarted { run_id: "R1".into() });
    let ids = a.run.as_ref().unwrap().ids.clone();
    let ask = || Msg::CanaryVerified(CanaryVerified { run_id: "R1".into(), agents: vec![ids[0].clone()], waves_left: 2, agents_left: ids.len() - 1 });
    a.on_msg(ask());
    assert!(matches!(a.popup, Some(Popup::CanaryGate { canary: 1, waves_left: 2, .. })));
    assert_eq!(keys(&mut a, "n"), vec![Effect::GateAnswer(GateDecision::Pause)]);
    assert!(a.popup.is_none());
    a.on_msg(Msg::RunDone(Ok(RunResult {
        run_id: "R1".into(),
        state: RunState::Interrupted,
        detail: "paused after the canary".into(),
        waves: vec![],
        verified: 1,
        failed: 0,
        skipped: 0,
        unknown: 0,
        untouched: ids[1..].to_vec(),
    })));
    assert_eq!(a.run.as_ref().unwrap().state, Some(RunState::Interrupted));
    assert_eq!(keys(&mut a, "P"), vec![Effect::Resume { run_id: "R1".into() }], "interrupted: resumable");

    // Another run: y continues.
    let mut b = app(120, 40);
    keys(&mut b, "/review<enter>*");
    let fx = keys(&mut b, "a");
    settle(&mut b, fx);
    keys(&mut b, "py");
    b.on_msg(Msg::RunStarted { run_id: "R1".into() });
    b.on_msg(ask());
    assert_eq!(keys(&mut b, "y"), vec![Effect::GateAnswer(GateDecision::Continue)]);
    // Read-only never gets a run; were the question there, continuing is refused.
    assert!(Action::CanaryContinue.is_mutating() && !Action::CanaryPause.is_mutating());
}

#[test]
fn a_run_summary_stays_under_other_messages_until_esc_dismisses_it() {
    let mut a = app(120, 40);
    let ids = run_started(&mut a);
    a.on_msg(Msg::RunDone(Ok(RunResult {
        run_id: "R1".into(),
        state: RunState::Done,
        detail: String::new(),
        waves: vec![],
        verified: ids.len(),
        failed: 0,
        skipped: 0,
        unknown: 0,
        untouched: vec![],
    })));
    let summary = a.status.clone().unwrap();
    assert!(summary.pinned && summary.text.starts_with("run R1: done"), "{summary:?}");
    // A key's message covers it for a while; Esc brings it back, without leaving the view.
    keys(&mut a, ":nosuch<enter>");
    assert!(a.status.as_ref().unwrap().text.contains("unknown command"));
    a.on_msg(Msg::ScanDone(Ok(incident_fleet())));
    keys(&mut a, "<esc>");
    assert_eq!(a.status.as_ref(), Some(&summary), "the summary again");
    assert_eq!(a.view, View::Rollout);
    keys(&mut a, "jk");
    assert_eq!(a.status.as_ref(), Some(&summary), "moving does not dismiss it");
    keys(&mut a, "<esc>");
    assert!(a.status.is_none() && a.held_summary.is_none(), "Esc dismisses it (and goes back, as Esc does)");
}

#[test]
fn confirmations_start_from_the_contexts_options() {
    let mut a = app(120, 40);
    a.apply_defaults = ApplyForm::from_context(Some("2".into()), None, Some("10%".into()), Some("300".into()));
    keys(&mut a, "/review<enter>*");
    let fx = keys(&mut a, "a");
    settle(&mut a, fx);
    keys(&mut a, "c5<enter>");
    keys(&mut a, "n");
    let fx = keys(&mut a, "a");
    settle(&mut a, fx);
    let Some(Popup::Confirm(Pending::Apply { form, .. })) = a.popup.clone() else { panic!() };
    assert_eq!((form.canary.as_str(), form.wave.as_str(), form.max_errors.as_str(), form.restart_timeout.as_str()), ("2", "25%", "10%", "300"));
    match &keys(&mut a, "y")[..] {
        [Effect::Apply { opts, restart_timeout, .. }] => {
            assert_eq!((opts.canary, opts.max_errors.as_str()), (2, "10%"));
            assert_eq!(*restart_timeout, std::time::Duration::from_secs(300));
        }
        other => panic!("{other:?}"),
    }
}
