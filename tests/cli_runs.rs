//! The run lifecycle through the binary on the demo fleet (its state in a `--demo-state` file,
//! one process per command): `apply --pause-after-canary` (paused, resumable, journaled), then
//! resume or rollback from there; one vocabulary of states and what each allows in `runs`;
//! `runs RUN_ID` agent by agent; the liveness check before resume and rollback; the rollout
//! options' validation naming the field; `fix-config --help` without the fleet flags.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

struct World {
    _dir: tempfile::TempDir,
    demo: PathBuf,
    state: PathBuf,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let demo = dir.path().join("demo.json");
        let state = dir.path().join("state");
        World { _dir: dir, demo, state }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_codex-fleet"));
        c.stdin(Stdio::null())
            .env("NO_COLOR", "1")
            .args(["--demo", "--demo-scale", "2x6", "--demo-latency", "5", "--demo-state"])
            .arg(&self.demo)
            .args(args)
            .env("CODEX_FLEET_STATE_DIR", &self.state);
        c
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let o = self.cmd(args).output().unwrap();
        (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
    }

    fn json(&self, args: &[&str], want: i32) -> Value {
        let (code, out, err) = self.run(args);
        assert_eq!(code, want, "{args:?}: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    fn one_run(&self) -> Value {
        let runs = self.json(&["runs", "--json"], 0);
        assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
        runs["runs"][0].clone()
    }
}

/// The run id `apply` prints as its first line on stderr.
fn run_id_of(stderr: &str) -> String {
    let first = stderr.lines().find(|l| l.starts_with("run ")).unwrap_or_else(|| panic!("no run line: {stderr}"));
    first.trim_start_matches("run ").trim().to_string()
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect()
}

/// Paused after the canary without a terminal; journaled, resumable; `runs` says so in the
/// one vocabulary; resume finishes the waves and the done run keeps nothing of the pause.
#[test]
fn pause_after_canary_then_resume_finishes_the_waves() {
    let w = World::new();
    let (code, out, err) = w.run(&["apply", "--yes", "--pause-after-canary", "--canary", "1", "--wave", "50%"]);
    assert_eq!(code, 1, "paused: not every planned agent verified\n{out}\n{err}");
    let id = run_id_of(&err);
    assert!(out.contains(&format!("run {id}: interrupted — 1 verified, 0 failed")), "{out}");
    assert!(out.contains("interrupted: paused after the canary (1 verified)"), "{out}");
    assert!(out.contains(&format!("resume: codex-fleet apply --resume {id}\n")), "the exact command that resumes it: {out}");
    assert!(out.contains(&format!("rollback: codex-fleet rollback --run {id}\n")), "{out}");

    let r = w.one_run();
    assert_eq!(r["state"], "interrupted", "{r}");
    assert_eq!(strs(&r["actions"]), ["resume", "rollback", "unlock"]);
    assert!(r["detail"].as_str().unwrap().contains("paused after the canary"), "{r}");
    let planned = r["agents"].as_u64().unwrap() as usize;
    assert!(planned >= 3, "a canary and waves after it: {r}");

    // Agent by agent: the canary verified, the others not reached, each with its reason.
    let d = w.json(&["runs", &id, "--json"], 0);
    let outcomes = d["runs"][0]["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), planned);
    let verified: Vec<&Value> = outcomes.iter().filter(|o| o["outcome"] == "verified").collect();
    assert_eq!(verified.len(), 1, "{d}");
    assert_eq!(verified[0]["wave"], 0);
    assert_eq!(verified[0]["last_step"], "unlock");
    for o in outcomes.iter().filter(|o| o["outcome"] != "verified") {
        assert_eq!(o["outcome"], "not-reached", "{o}");
        assert_eq!(o["reason"], "the run stopped before its wave", "{o}");
    }
    let (code, text, _) = w.run(&["runs", &id]);
    assert_eq!(code, 0);
    assert!(text.contains(&format!("run {id}: interrupted (")), "{text}");
    assert!(text.contains(&format!("allows resume: codex-fleet apply --resume {id}")), "{text}");
    assert!(text.contains("0 (canary)") && text.contains("not-reached"), "{text}");

    // Resume: the gate is not asked again (the canary was verified before); the waves go on.
    let (code, out, err) = w.run(&["apply", "--resume", &id, "--yes", "--pause-after-canary"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("run {id}: done — {planned} verified")), "{out}");
    let r = w.one_run();
    assert_eq!(r["state"], "done", "{r}");
    assert_eq!(r["detail"], "", "a done run keeps nothing of its pause: {r}");
    assert_eq!(strs(&r["actions"]), ["rollback"]);
    let (_, text, _) = w.run(&["runs", &id]);
    assert!(!text.contains("paused") && !text.contains("halted"), "{text}");
    let (_, table, _) = w.run(&["runs"]);
    assert!(table.contains("ALLOWS") && table.lines().any(|l| l.contains(&id) && l.contains(" done ") && l.trim_end().ends_with("rollback")), "{table}");
    // A done run cannot be resumed: the refusal says its state.
    let (code, _, err) = w.run(&["apply", "--resume", &id, "--yes"]);
    assert_eq!(code, 2);
    assert!(err.contains(&format!("run {id} is done: there is nothing to resume")), "{err}");
}

/// Rolled back from the pause: the canary's files come back byte for byte; the others were
/// never touched; `runs RUN_ID` says rolled-back (was verified) and not-reached.
#[test]
fn pause_after_canary_then_rollback() {
    let w = World::new();
    // The fleet as it was, before any run.
    let (code, _, err) = w.run(&["scan"]);
    assert_eq!(code, 1, "{err}");
    let before = common::demo_primary_files(&w.demo);
    let (code, _, err) = w.run(&["apply", "--yes", "--pause-after-canary", "--canary", "1", "--wave", "1"]);
    assert_eq!(code, 1, "{err}");
    let id = run_id_of(&err);
    assert_ne!(common::demo_primary_files(&w.demo), before, "the canary was written");
    let (code, out, err) = w.run(&["rollback", "--run", &id, "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(common::demo_primary_files(&w.demo), before, "rolled back byte for byte");
    let d = w.json(&["runs", &id, "--json"], 0);
    let run = &d["runs"][0];
    assert_eq!(run["state"], "rolled-back", "{run}");
    assert_eq!(strs(&run["actions"]), Vec::<&str>::new());
    let outcomes = run["outcomes"].as_array().unwrap();
    let rolled: Vec<&Value> = outcomes.iter().filter(|o| o["outcome"] == "rolled-back").collect();
    assert_eq!(rolled.len(), 1, "{run}");
    assert_eq!(rolled[0]["applied"], "verified");
    assert!(outcomes.iter().filter(|o| o["outcome"] != "rolled-back").all(|o| o["outcome"] == "not-reached"), "{run}");
    // Rolled back: no resume.
    let (code, _, err) = w.run(&["apply", "--resume", &id, "--yes"]);
    assert_eq!(code, 2);
    assert!(err.contains("rolled-back: there is nothing to resume") || err.contains("a rollback of run"), "{err}");
}

fn proc_state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?.1.trim_start().chars().next()
}

/// A run held by a live process (stopped mid-run, its lock held) is refused to resume,
/// rollback and unlock, naming the pid; `runs` says running and allows nothing. Once that
/// process is dead, resume takes the run over and finishes it.
#[test]
fn a_live_holder_is_refused_a_dead_one_is_taken_over() {
    let w = World::new();
    let mut child = w
        .cmd(&["apply", "--yes", "--canary", "1", "--wave", "50%"])
        .env("CODEX_FLEET_PAUSE_AT_RECORD", "4")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while proc_state(child.id()) != Some('T') {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before its 4th record");
        assert!(Instant::now() < deadline, "never reached its 4th record");
        std::thread::sleep(Duration::from_millis(2));
    }
    let pid = child.id();
    let r = w.one_run();
    let id = r["run_id"].as_str().unwrap().to_string();
    assert_eq!(r["state"], "running", "{r}");
    assert_eq!(strs(&r["actions"]), Vec::<&str>::new());
    for (args, what) in [
        (vec!["apply", "--resume", id.as_str(), "--yes"], "resume"),
        (vec!["rollback", "--run", id.as_str(), "--yes"], "roll back"),
        (vec!["unlock", "--run", id.as_str(), "--yes"], "unlock"),
    ] {
        let (code, _, err) = w.run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(&format!("run {id} is held by another process, alive: pid {pid} (")), "{args:?}: {err}");
        assert!(err.contains(&format!("refused to {what} it")), "{args:?}: {err}");
    }
    let (_, text, _) = w.run(&["runs", &id]);
    assert!(text.contains(&format!("held by pid {pid}")) && text.contains("allows: nothing"), "{text}");

    child.kill().unwrap(); // SIGKILL: its lock goes with it, its holder note stays behind
    child.wait().unwrap();
    let r = w.one_run();
    assert_eq!(r["state"], "interrupted", "{r}");
    assert_eq!(strs(&r["actions"]), ["resume", "rollback", "unlock"]);
    let (code, out, err) = w.run(&["apply", "--resume", &id, "--yes"]);
    assert_eq!(code, 0, "a dead holder allows the resume:\n{out}\n{err}");
    assert_eq!(w.one_run()["state"], "done");
}

/// Options checked before anything is done, the message naming the field.
#[test]
fn rollout_options_are_validated_naming_the_field() {
    let w = World::new();
    for (args, field) in [
        (vec!["apply", "--yes", "--wave", "0"], "wave size: `0`"),
        (vec!["apply", "--yes", "--wave", "120%"], "wave size: `120%`"),
        (vec!["apply", "--yes", "--max-errors", "many"], "max errors: `many`"),
        (vec!["apply", "--yes", "--canary=two"], "canary: `two` is not a whole number"),
        (vec!["apply", "--yes", "--stable-timeout", "0"], "restart timeout: `0`"),
        (vec!["apply", "--yes", "--stable-timeout", "2h"], "restart timeout: `2h`"),
    ] {
        let (code, _, err) = w.run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(field), "{args:?}: {err}");
    }
    let (code, _, err) = w.run(&["apply", "--yes", "--pause-after-canary", "--canary", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--pause-after-canary needs a canary"), "{err}");
    let (code, _, err) = w.run(&["runs", "nosuch"]);
    assert_eq!(code, 2);
    assert!(err.contains("no run `nosuch`"), "{err}");
    assert!(!w.state.join("runs").exists() || std::fs::read_dir(w.state.join("runs")).unwrap().next().is_none(), "no run started");
}

/// `fix-config --help` lists what applies to it, not the fleet flags; other commands keep them,
/// and fix-config still parses as before.
#[test]
fn fix_config_help_shows_only_what_applies() {
    let w = World::new();
    for args in [vec!["fix-config", "--help"], vec!["fix-config", "-h"], vec!["help", "fix-config"]] {
        let o = Command::new(env!("CARGO_BIN_EXE_codex-fleet")).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        let h = String::from_utf8_lossy(&o.stdout);
        for want in ["Usage: codex-fleet fix-config", "--write", "--check", "--json", "--read-only"] {
            assert!(h.contains(want), "{args:?}: {want} missing:\n{h}");
        }
        for gone in ["--demo", "--tag", "--region", "--aws", "--docker", "--agent-user", "Fleet source:", "AWS:"] {
            assert!(!h.contains(gone), "{args:?}: {gone} listed:\n{h}");
        }
    }
    let o = Command::new(env!("CARGO_BIN_EXE_codex-fleet")).args(["scan", "--help"]).output().unwrap();
    let h = String::from_utf8_lossy(&o.stdout);
    assert!(h.contains("--demo") && h.contains("--region"), "{h}");
    // Parsing is untouched: a config fixed with --check, global flags before and after.
    let cfg = w._dir.path().join("config.toml");
    std::fs::write(&cfg, "sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_codex-fleet")).args(["--json", "fix-config", "--check"]).arg(&cfg).arg("--read-only").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}

/// On a terminal (a pty from `script`), the gate asks after the canary: `y` goes on with the
/// waves, anything else pauses. The answers are typed ahead: the tty keeps each line until the
/// question that reads it (the plan's confirmation first, then the gate).
#[test]
fn on_a_terminal_the_gate_asks_continue_or_pause() {
    if Command::new("sh").args(["-c", "command -v script"]).output().map(|o| !o.status.success()).unwrap_or(true) {
        common::require_or_skip::<()>("script (util-linux)");
        return;
    }
    for (typed, want) in [("y\ny\n", "done"), ("y\n\n", "interrupted")] {
        let w = World::new();
        let q = |p: &std::path::Path| format!("'{}'", p.display());
        let line = format!(
            "{} --demo --demo-scale 2x6 --demo-latency 5 --demo-state {} apply --pause-after-canary --canary 1 --wave 50%",
            env!("CARGO_BIN_EXE_codex-fleet"),
            q(&w.demo)
        );
        let mut c = Command::new("script");
        c.args(["-qec", &line, "/dev/null"])
            .env("CODEX_FLEET_STATE_DIR", &w.state)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(typed.as_bytes()).unwrap();
        let o = child.wait_with_output().unwrap();
        let screen = String::from_utf8_lossy(&o.stdout);
        assert!(screen.contains("canary verified (") && screen.contains("remaining wave(s)"), "{typed:?}: the gate was not asked:\n{screen}");
        let r = w.one_run();
        assert_eq!(r["state"], want, "{typed:?}: {r}\n{screen}");
        if want == "interrupted" {
            assert!(r["detail"].as_str().unwrap().starts_with("paused after the canary"), "{r}");
            assert_eq!(r["verified"], 1);
        }
    }
}
