//! The rollout engine's outcome, lock and journal rules, through the binary on the demo fleet
//! (`--demo-state`, so the simulated hosts outlive each process):
//! - an answer that never came (`lose_answer` fault: the host acts, the answer is lost) is
//!   `unknown`, halts the run, and resume or rollback ask the host before acting; no lock is
//!   left behind (lock, write, restart, restore);
//! - one run, one process (the journal's exclusive lock), `unlock --run`;
//! - a torn journal tail is cut and said, a bad record elsewhere is corruption (exit 2, file
//!   and line), an unwritable state directory is exit 2 with the path;
//! - resume refuses finished runs and halted ones without `--continue-halted`; `runs` keeps the
//!   run's counts after a rollback; re-applying a plan says "already applied by run X";
//! - rollback of a regenerated config.toml is conditional, and leaves every file as it was.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const CANARY: &str = "codex-default-lo-00"; // a boot emitter rewritten; config.toml regenerated
const SECOND: &str = "codex-approval-04"; // no emitter: config.toml written

struct World {
    _dir: tempfile::TempDir,
    demo: PathBuf,
    state: PathBuf,
    plan: PathBuf,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let w = World { demo: dir.path().join("demo.json"), state: dir.path().join("state"), plan: dir.path().join("plan.json"), _dir: dir };
        std::fs::create_dir_all(&w.state).unwrap();
        let (code, _, err) = w.run(&["plan", "--out", w.plan.to_str().unwrap(), "--agent", CANARY, "--agent", SECOND]);
        assert_eq!(code, 1, "changes planned: {err}");
        w
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

    fn apply(&self) -> (i32, String, String) {
        self.run(&["apply", "--yes", "--plan", self.plan.to_str().unwrap(), "--canary", "1", "--wave", "50%"])
    }

    fn state_json(&self) -> Value {
        serde_json::from_slice(&std::fs::read(&self.demo).unwrap()).unwrap()
    }

    fn edit_agent(&self, name: &str, f: impl FnOnce(&mut Value)) {
        let mut v = self.state_json();
        let a = v["agents"].as_object_mut().unwrap().values_mut().flat_map(|l| l.as_array_mut().unwrap().iter_mut()).find(|a| a["name"] == name).unwrap();
        f(a);
        std::fs::write(&self.demo, serde_json::to_string(&v).unwrap()).unwrap();
    }

    /// The host acts on `op` for `name`, and its answer is lost.
    fn lose_answer(&self, name: &str, op: &str) {
        self.edit_agent(name, |a| a["faults"]["lose_answer"].as_array_mut().unwrap().push(op.into()));
    }

    /// (config.toml, emitter) of every agent.
    fn files(&self) -> BTreeMap<String, (Value, Value)> {
        let v = self.state_json();
        let mut out = BTreeMap::new();
        for (host, list) in v["agents"].as_object().unwrap() {
            for a in list.as_array().unwrap() {
                out.insert(format!("{host}/{}", a["name"].as_str().unwrap()), (a["config"].clone(), a["emitter"].clone()));
            }
        }
        out
    }

    /// Agents whose host lock is held.
    fn locks(&self) -> Vec<String> {
        let v = self.state_json();
        v["agents"].as_object().unwrap().values().flat_map(|l| l.as_array().unwrap().iter()).filter(|a| !a["lock"].is_null()).map(|a| a["name"].as_str().unwrap().to_string()).collect()
    }

    fn run_id(&self) -> String {
        let mut ids: Vec<String> = std::fs::read_dir(self.state.join("runs")).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        ids.sort();
        ids.pop().unwrap()
    }

    fn journal(&self, run: &str) -> PathBuf {
        self.state.join("runs").join(run).join("journal.jsonl")
    }

    fn runs(&self) -> Vec<Value> {
        let (code, out, err) = self.run(&["runs", "--json"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()["runs"].as_array().unwrap().clone()
    }

    fn the_run(&self, run: &str) -> Value {
        self.runs().into_iter().find(|r| r["run_id"] == run).unwrap()
    }
}

fn outcomes(json_out: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(json_out).unwrap();
    v["waves"].as_array().unwrap().iter().flat_map(|w| w["agents"].as_array().unwrap().iter()).map(|a| a["outcome"].as_str().unwrap().to_string()).collect()
}

/// For each step whose answer can be lost: the run halts with that agent `unknown` (never
/// `failed`), resume refuses without `--continue-halted`, and then either resume finishes
/// with every agent verified, or rollback puts every file back byte for byte; never a lock
/// left behind.
#[test]
fn a_lost_answer_is_unknown_halts_and_resume_or_rollback_ask_the_host() {
    for (op, on) in [("lock", CANARY), ("write", SECOND), ("restart", SECOND), ("write", CANARY), ("restart", CANARY)] {
        for finish in ["resume", "rollback"] {
            let w = World::new();
            let original = w.files();
            w.lose_answer(on, op);
            let (code, out, err) = w.apply();
            assert_eq!(code, 1, "{op} on {on}: {out}\n{err}");
            let run = w.run_id();
            let r = w.the_run(&run);
            assert_eq!(r["state"], "halted", "{op} on {on}: {r}");
            assert_eq!(r["unknown"], 1, "{op} on {on}: {r}");
            assert_eq!(r["failed"], 0, "{op} on {on}: an unanswered step is not a failure: {r}");
            assert!(r["detail"].as_str().unwrap().contains("no answer"), "{r}");
            assert!(err.contains("unknown"), "{err}");
            let (code, _, err) = w.run(&["apply", "--resume", &run, "--yes"]);
            assert_eq!(code, 2, "a halted run is resumed only on request: {err}");
            assert!(err.contains("--continue-halted"), "{err}");
            if finish == "resume" {
                let (code, out, err) = w.run(&["apply", "--resume", &run, "--continue-halted", "--yes", "--json"]);
                assert_eq!(code, 0, "{op} on {on}: {out}\n{err}");
                let o = outcomes(&out);
                assert!(o.len() == 2 && o.iter().all(|o| o == "verified"), "{op} on {on}: {o:?}");
                assert_eq!(w.the_run(&run)["state"], "done");
            } else {
                let (code, out, err) = w.run(&["rollback", "--run", &run, "--yes"]);
                assert_eq!(code, 0, "{op} on {on}: {out}\n{err}");
                assert_eq!(w.files(), original, "{op} on {on}: not byte-identical after the rollback");
                if op == "lock" {
                    assert!(out.contains("nothing to roll back"), "{out}");
                }
                let r = w.the_run(&run);
                assert_eq!(r["state"], "rolled-back", "{r}");
                assert_eq!(r["unknown"], 1, "the run's own counts are kept: {r}");
            }
            assert_eq!(w.locks(), Vec::<String>::new(), "{op} on {on} then {finish}: a lock left behind");
        }
    }
}

/// A restore whose answer is lost: the rollback reports it (exit 1), a second rollback asks
/// the host and finishes; every file as it was, no lock left.
#[test]
fn a_lost_restore_answer_is_reported_and_a_second_rollback_finishes() {
    let w = World::new();
    let original = w.files();
    let (code, out, err) = w.apply();
    assert_eq!(code, 0, "{out}\n{err}");
    let run = w.run_id();
    w.lose_answer(CANARY, "restore");
    let (code, out, err) = w.run(&["rollback", "--run", &run, "--yes"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("rollback-failed") && out.contains("no answer"), "{out}");
    assert_ne!(w.the_run(&run)["state"], "rolled-back");
    let (code, out, err) = w.run(&["rollback", "--run", &run, "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(w.files(), original, "not byte-identical after the second rollback");
    assert_eq!(w.locks(), Vec::<String>::new());
    // The run's own counts stay; the rollback's are added.
    let r = w.the_run(&run);
    assert_eq!((r["verified"].as_u64(), r["state"].as_str()), (Some(2), Some("rolled-back")), "{r}");
    assert_eq!(r["rollback"]["rolled_back"], 2, "{r}");
    let (_, table, _) = w.run(&["runs"]);
    assert!(table.contains("2 verified") && table.contains("rollback: 2 rolled back"), "{table}");
    // Finished runs are not resumed.
    let (code, _, err) = w.run(&["apply", "--resume", &run, "--yes", "--continue-halted"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rolled-back") && err.contains("nothing to resume"), "{err}");
}

fn state_of(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?.1.trim_start().chars().next()
}

/// One run, one process: while a process holds a run, resume and rollback are refused and say
/// who holds it; once it is gone, a torn last record is cut (and said) and the run resumes.
#[test]
fn one_run_one_process_and_a_torn_tail_is_cut() {
    let w = World::new();
    let mut child = w
        .cmd(&["apply", "--yes", "--plan", w.plan.to_str().unwrap(), "--canary", "1", "--wave", "50%"])
        .env("CODEX_FLEET_PAUSE_AT_RECORD", "6")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while state_of(child.id()) != Some('T') {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before record 6");
        assert!(Instant::now() < deadline, "never reached record 6");
        std::thread::sleep(Duration::from_millis(5));
    }
    let run = w.run_id();
    for args in [vec!["apply", "--resume", run.as_str(), "--yes"], vec!["rollback", "--run", run.as_str(), "--yes"], vec!["unlock", "--run", run.as_str(), "--yes"]] {
        let (code, _, err) = w.run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("held by another process") && err.contains(&format!("pid {}", child.id())), "{args:?}: {err}");
    }
    assert_eq!(w.the_run(&run)["state"], "running");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(w.the_run(&run)["state"], "interrupted");
    // A record torn by a crash mid-write.
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(w.journal(&run)).unwrap().write_all(b"{\"type\":\"step\",\"ti").unwrap();
    let (code, out, err) = w.run(&["apply", "--resume", &run, "--yes", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("cut a torn last record at line 7"), "{err}");
    assert!(outcomes(&out).iter().all(|o| o == "verified"), "{out}");
    assert_eq!(w.locks(), Vec::<String>::new());
    // Every line of the journal is a record again.
    for (i, l) in std::fs::read_to_string(w.journal(&run)).unwrap().lines().enumerate() {
        assert!(serde_json::from_str::<Value>(l).is_ok(), "line {}: {l}", i + 1);
    }
}

/// A bad record anywhere but at the end is corruption: exit 2 naming the file and line, and
/// the journal is left as it is. An unwritable state directory: exit 2 with the path.
#[test]
fn a_corrupt_journal_and_io_errors_are_exit_2_with_where() {
    let w = World::new();
    let (code, _, err) = w.apply();
    assert_eq!(code, 0, "{err}");
    let run = w.run_id();
    let path = w.journal(&run);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "{\"type\":\"step\",\"garbage\"";
    let bad = lines.join("\n") + "\n";
    std::fs::write(&path, &bad).unwrap();
    for args in [vec!["rollback", "--run", run.as_str(), "--yes"], vec!["apply", "--resume", run.as_str(), "--yes"], vec!["runs"]] {
        let (code, _, err) = w.run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(&format!("{}:3: corrupt journal record", path.display())), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), bad, "left as it is");

    let file = w.state.join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let o = w.cmd(&["apply", "--yes", "--plan", w.plan.to_str().unwrap()]).env("CODEX_FLEET_STATE_DIR", &file).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
}

/// Applying a plan a second time names the run that applied it; a rollback of a run that
/// wrote nothing says so; a config.toml changed after the run (a key rotated) is kept.
#[test]
fn reapply_nothing_to_roll_back_and_a_rotated_config_is_kept() {
    let w = World::new();
    let (code, _, err) = w.apply();
    assert_eq!(code, 0, "{err}");
    let run = w.run_id();
    let (code, _, err) = w.apply();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("{CANARY}: already applied by run {run}")) && err.contains("nothing to apply"), "{err}");
    assert!(!err.contains("changed since the plan"), "{err}");

    // Somebody rotates a key in the regenerated config.toml after the run.
    let original = w.files();
    w.edit_agent(CANARY, |a| {
        let c = a["config"].as_str().unwrap().to_string();
        a["config"] = Value::String(c + "# rotated after the run\n");
    });
    let rotated = w.files();
    let (code, out, err) = w.run(&["rollback", "--run", &run, "--yes"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("no longer holds what the run left there"), "{out}");
    let now = w.files();
    let id = now.keys().find(|k| k.ends_with(CANARY)).unwrap().clone();
    // Kept: not restored over. (The restart the restored emitter needs runs that emitter over
    // it, as every start before the run did.)
    assert!(now[&id].0.as_str().unwrap().contains("# rotated after the run"), "the rotated config.toml is kept: {:?} (was {:?})", now[&id].0, rotated[&id].0);
    assert_ne!(now[&id].1, original[&id].1, "the emitter is put back");
    assert_eq!(w.locks(), Vec::<String>::new());

    // A run halted on a canary whose lock went unanswered never wrote: nothing to roll back.
    let w = World::new();
    w.lose_answer(CANARY, "lock");
    let (code, _, _) = w.apply();
    assert_eq!(code, 1);
    let run = w.run_id();
    assert_eq!(w.locks(), vec![CANARY.to_string()], "the lock happened; its answer was lost");
    let (code, out, err) = w.run(&["rollback", "--run", &run, "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("nothing to roll back"), "{out}");
    assert_eq!(w.locks(), Vec::<String>::new());
}

/// `unlock --run` breaks a lock a run left behind (here: a lock whose answer was lost), after
/// taking the run's journal lock; journaled and audited.
#[test]
fn unlock_breaks_a_stale_lock_journaled_and_audited() {
    let w = World::new();
    w.lose_answer(CANARY, "lock");
    let (code, _, _) = w.apply();
    assert_eq!(code, 1);
    let run = w.run_id();
    assert_eq!(w.locks(), vec![CANARY.to_string()]);
    let (code, _, err) = w.run(&["unlock", "--run", &run]);
    assert_eq!(code, 2, "no terminal, no --yes: {err}");
    let (code, _, err) = w.run(&["--read-only", "unlock", "--run", &run, "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(w.locks(), vec![CANARY.to_string()]);
    let (code, _, err) = w.run(&["unlock", "--run", &run, "--agent", "no-such-agent", "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no-such-agent"), "{err}");
    let (code, out, err) = w.run(&["unlock", "--run", &run, "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("unlocked"), "{out}");
    assert_eq!(w.locks(), Vec::<String>::new());
    let journal = std::fs::read_to_string(w.journal(&run)).unwrap();
    assert!(journal.contains("\"action\":\"unlock\"") && journal.contains("unlock --run"), "{journal}");
    let audit = std::fs::read_to_string(w.state.join("audit.jsonl")).unwrap();
    assert!(audit.lines().any(|l| l.contains("\"action\":\"unlock\"") && l.contains(&run)), "{audit}");
}
