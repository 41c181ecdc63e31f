//! End to end through the binary on `--demo` (the real AWS backend over the simulated AWS),
//! one process per command as an operator's script runs them, the fleet's state kept in a
//! `--demo-state` file between them: scan -> plan (no secret) -> the refusals (no terminal,
//! read-only: nothing changes) -> apply with a canary and waves -> scan (no longer stalled) ->
//! verify -> runs -> report -> rollback (back to the first scan's verdicts).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod common;

const SECRETS: [&str; 3] = ["sk-demo", "Bearer mm-", "whsec_"];

struct Demo {
    dir: tempfile::TempDir,
}

impl Demo {
    fn new() -> Demo {
        Demo { dir: tempfile::tempdir().unwrap() }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("demo-state.json")
    }

    /// Run `codex-fleet --demo ... ARGS` with stdin not a terminal.
    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_codex-fleet"))
            .args(["--demo", "--demo-latency", "10", "--demo-state"])
            .arg(self.state())
            .args(args)
            .env("CODEX_FLEET_STATE_DIR", self.dir.path().join("state"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run codex-fleet");
        for s in SECRETS {
            assert!(!String::from_utf8_lossy(&out.stdout).contains(s), "{args:?}: a secret on stdout: {s}");
            assert!(!String::from_utf8_lossy(&out.stderr).contains(s), "{args:?}: a secret on stderr: {s}");
        }
        out
    }

    fn json(&self, args: &[&str], want_exit: i32) -> Value {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(want_exit), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout)))
    }
}

fn verdicts(scan: &Value) -> BTreeMap<String, String> {
    scan["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["agents"].as_array().unwrap().iter())
        .map(|a| (a["id"].as_str().unwrap().to_string(), a["verdict"].as_str().unwrap().to_string()))
        .collect()
}

fn agent_of(scan: &Value, id: &str) -> Value {
    scan["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["agents"].as_array().unwrap().iter())
        .find(|a| a["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_default()
}

#[test]
fn scan_plan_refusals_apply_verify_report_rollback() {
    let d = Demo::new();

    // scan: exit 1 (stalled agents, an unreachable host), the contract's fields.
    let first = d.json(&["scan", "--json"], 1);
    let s = &first["summary"];
    assert!(s["hosts"].as_u64().unwrap() >= 8, "{s}");
    assert!(s["agents"].as_u64().unwrap() >= 40, "{s}");
    assert!(s["unreachable_hosts"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["stalled"].as_u64().unwrap() >= 1, "{s}");
    let a0 = &first["hosts"][0]["agents"][0];
    for f in ["id", "name", "host", "verdict", "findings", "evidence", "effective", "probes"] {
        assert!(!a0[f].is_null(), "scan --json: agent field `{f}` missing: {a0}");
    }
    let before = verdicts(&first);
    let files0 = common::demo_primary_files(&d.state());
    // The demo's state file now exists; a scan does not change it again.
    let state0 = read(&d.state());
    assert!(!state0.is_empty(), "--demo-state file written");

    // plan --out: changes planned (exit 1), attention listed with reasons, no secret anywhere.
    let plan_file = d.dir.path().join("plan.json");
    let plan = d.json(&["plan", "--json", "--out", plan_file.to_str().unwrap()], 1);
    let planned: Vec<String> = plan["agents"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().into()).collect();
    let attention: Vec<String> = plan["attention"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().into()).collect();
    assert!(planned.len() >= 10, "{plan}");
    assert!(!attention.is_empty(), "{plan}");
    for a in plan["attention"].as_array().unwrap() {
        assert!(!a["reason"].as_str().unwrap_or("").is_empty(), "attention without a reason: {a}");
    }
    for a in plan["agents"].as_array().unwrap() {
        for f in a["files"].as_array().unwrap() {
            assert_eq!(f["before_sha256"].as_str().unwrap().len(), 64, "{f}");
            assert!(f["diff"].as_str().unwrap().contains("danger-full-access"), "{f}");
        }
    }
    let saved = String::from_utf8(read(&plan_file)).unwrap();
    for s in SECRETS {
        assert!(!saved.contains(s), "the saved plan holds a secret: {s}");
    }
    // The providers' secrets were there to leak: the plan shows them redacted.
    assert!(saved.contains("REDACTED") || saved.contains("redacted"), "no redaction marker in the plan");

    // Refusals: no --yes without a terminal; --read-only. Both exit 2 and change nothing.
    let pf = plan_file.to_str().unwrap();
    let out = d.run(&["apply", "--plan", pf]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--yes") && err.contains("terminal"), "{err}");
    let out = d.run(&["--read-only", "apply", "--yes", "--plan", pf]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--read-only"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = d.run(&["rollback", "--run", "nonexistent", "--yes", "--read-only"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(read(&d.state()), state0, "a refused command changed the fleet");
    let runs = d.json(&["runs", "--json"], 0);
    assert_eq!(runs["runs"].as_array().unwrap().len(), 0, "a refused apply started a run: {runs}");

    // apply: canary of 1, waves of 25%: every planned agent verified.
    let out = d.run(&["apply", "--yes", "--plan", pf, "--canary", "1", "--wave", "25%", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "apply:\n{err}");
    let run_id = err.lines().next().and_then(|l| l.strip_prefix("run ")).unwrap_or_else(|| panic!("first stderr line: {err}"));
    let applied: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(applied["run_id"], run_id);
    let waves = applied["waves"].as_array().unwrap();
    assert_eq!(waves[0]["agents"].as_array().unwrap().len(), 1, "the canary is one agent: {applied}");
    assert!(waves.len() >= 3, "canary then waves: {applied}");
    let quarter = planned.len().div_ceil(4);
    for w in &waves[1..] {
        assert!(w["agents"].as_array().unwrap().len() <= quarter, "a wave above 25%: {w}");
    }
    let done: Vec<&str> = waves.iter().flat_map(|w| w["agents"].as_array().unwrap()).map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(done.len(), planned.len());
    for w in waves {
        for a in w["agents"].as_array().unwrap() {
            assert_eq!(a["outcome"], "verified", "{a}");
        }
    }

    // After: no agent on a reachable host is stalled except those needing attention.
    let after = d.json(&["scan", "--json"], 1);
    for (id, v) in verdicts(&after) {
        if v == "stalled" {
            assert!(attention.contains(&id), "{id} still stalled and was not an attention agent");
        }
        if planned.contains(&id) {
            assert!(v == "healthy" || v == "at-risk", "{id} is {v} after the fix: {}", agent_of(&after, &id));
        }
    }
    // Applying again plans nothing for the fixed agents.
    let again = d.json(&["plan", "--json"], 0);
    assert_eq!(again["agents"].as_array().unwrap().len(), 0, "a second plan after the fix: {again}");

    // verify: the planned agents pass the boot assertion (others may not: network faults).
    let v = d.json(&["verify", "--json"], 1);
    for a in v["agents"].as_array().unwrap() {
        if planned.contains(&a["id"].as_str().unwrap().to_string()) {
            assert_eq!(a["passed"], true, "{a}");
        }
    }
    let mut args = vec!["verify", "--json"];
    for id in &planned {
        args.extend(["--agent", id.as_str()]);
    }
    // Only reachable hosts' agents named, all pass: 0, though a host is unreachable (verify's
    // status is about the agents it verified).
    let v = d.json(&args, 0);
    assert_eq!(v["agents"].as_array().unwrap().len(), planned.len());
    assert!(v["agents"].as_array().unwrap().iter().all(|a| a["passed"] == true), "{v}");

    // runs and report.
    let runs = d.json(&["runs", "--json"], 0);
    assert_eq!(runs["runs"][0]["run_id"], run_id);
    assert_eq!(runs["runs"][0]["state"], "done");
    let report = d.json(&["report", "--format", "json"], 0);
    assert!(report.to_string().contains(run_id), "the report names the run");

    // rollback: byte for byte; the fleet is back to the first scan's verdicts.
    let out = d.run(&["rollback", "--run", run_id, "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "rollback: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(common::demo_primary_files(&d.state()), files0, "files not byte-identical after the rollback");
    // Same verdicts, except where the original emitter is not idempotent: the rollback's restart
    // runs it again (it prepends once more: that agent was at-risk for exactly this reason).
    let back = verdicts(&d.json(&["scan", "--json"], 1));
    let flaky: Vec<String> = first["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["agents"].as_array().unwrap().iter())
        .filter(|a| a["findings"].as_array().unwrap().iter().any(|f| f == "emitter-not-idempotent"))
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    for (id, v) in &before {
        if !flaky.contains(id) {
            assert_eq!(back.get(id), Some(v), "{id} after the rollback");
        }
    }
    let runs = d.json(&["runs", "--json"], 0);
    assert_eq!(runs["runs"][0]["state"], "rolled-back");
}

#[test]
fn usage_errors_and_help() {
    let d = Demo::new();
    let out = d.run(&["--demo-scale", "0x8", "scan"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--demo-scale"));
    let out = Command::new(env!("CARGO_BIN_EXE_codex-fleet")).args(["--demo", "--docker", "scan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("choose one fleet source"));
    let out = Command::new(env!("CARGO_BIN_EXE_codex-fleet")).args(["--tag", "novalue", "scan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEY=VALUE"));
    let help = Command::new(env!("CARGO_BIN_EXE_codex-fleet")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for f in ["--demo", "--demo-scale", "--demo-latency", "--demo-state", "--aws", "--tag", "--instance", "--region", "--profile", "--endpoint-url"] {
        assert!(help.contains(f), "--help lacks {f}");
    }
}

#[test]
fn no_credentials_names_demo_and_docker() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_codex-fleet"))
        .args(["scan", "--region", "eu-west-1"])
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // No instance metadata service on this machine: fail fast instead of waiting on it.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--demo") && err.contains("--docker"), "{err}");
}

/// The hosts' count of mutating operations, kept in the demo's state file.
fn mutations(state: &Path) -> serde_json::Map<String, Value> {
    let v: Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    v["mutations"].as_object().cloned().unwrap_or_default()
}

#[test]
fn read_only_makes_zero_mutating_calls_across_every_command() {
    let d = Demo::new();
    // A run to roll back and resume, made without --read-only.
    let out = d.run(&["apply", "--yes", "--canary", "1", "--wave", "100%"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let run_id = String::from_utf8_lossy(&out.stderr).lines().next().unwrap().strip_prefix("run ").unwrap().to_string();
    let before = mutations(&d.state());
    assert!(before.get("write").and_then(|v| v.as_u64()).unwrap_or(0) > 0, "the counter counts: {before:?}");
    let plan = d.dir.path().join("p.json");
    let agent = {
        let scan = d.json(&["scan", "--json"], 1);
        scan["hosts"][0]["agents"][0]["id"].as_str().unwrap().to_string()
    };
    let p = plan.to_str().unwrap();
    for args in [
        vec!["scan"],
        vec!["scan", "--json"],
        vec!["show", agent.as_str()],
        vec!["plan", "--out", p],
        vec!["apply", "--yes"],
        vec!["apply", "--yes", "--plan", p],
        vec!["apply", "--resume", run_id.as_str(), "--yes"],
        vec!["verify"],
        vec!["runs"],
        vec!["rollback", "--run", run_id.as_str(), "--yes"],
        vec!["report", "--format", "md"],
    ] {
        let mut a = vec!["--read-only"];
        a.extend(args.iter().copied());
        let out = d.run(&a);
        let code = out.status.code();
        assert!(code.is_some(), "{args:?} died");
        if matches!(args[0], "apply" | "rollback") {
            assert_eq!(code, Some(2), "{args:?} must be refused");
        }
        assert_eq!(mutations(&d.state()), before, "--read-only {args:?} made a mutating call");
    }
}
