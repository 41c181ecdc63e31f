//! Exact agent selection and exit statuses a script can trust, through the binary on the demo
//! (the real AWS backend over the simulated AWS), one process per command:
//! - `HOST/CONTAINER` by host name or id; a bare container name only when unique (else exit 2
//!   listing each match); a selector naming nothing exits 2 in every command, nothing done;
//! - a named attention agent stays attention (`plan`), `apply` refuses it unless
//!   `--include-attention`;
//! - no host found exits 2 naming the tag; `verify --agent` is about the agents it verified;
//! - the next plan and the apply confirmation name agents another run still holds a lock on.
//!
//! `--demo-scale 18x1`: one agent per host, archetypes cycling through 17, so host 0 and host 17
//! both run `codex-default-lo-00` (a container name on two hosts); host 5 is unreachable.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

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

    fn run_with(&self, global: &[&str], args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_codex-fleet"))
            .args(["--demo", "--demo-latency", "5", "--demo-scale", "18x1", "--demo-state"])
            .arg(self.state())
            .args(global)
            .args(args)
            .env("CODEX_FLEET_STATE_DIR", self.dir.path().join("state"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run codex-fleet")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(&[], args)
    }

    /// Run, check the exit status, return (stdout, stderr).
    fn expect(&self, args: &[&str], code: i32) -> (String, String) {
        let out = self.run(args);
        let (o, e) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert_eq!(out.status.code(), Some(code), "{args:?}\nstdout:\n{o}\nstderr:\n{e}");
        (o, e)
    }

    fn json(&self, args: &[&str], code: i32) -> Value {
        let (o, _) = self.expect(args, code);
        serde_json::from_str(&o).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{o}"))
    }

    fn mutations(&self) -> serde_json::Map<String, Value> {
        let v: Value = serde_json::from_slice(&std::fs::read(self.state()).unwrap()).unwrap();
        v["mutations"].as_object().cloned().unwrap_or_default()
    }

    fn runs(&self) -> usize {
        self.json(&["runs", "--json"], 0)["runs"].as_array().unwrap().len()
    }
}

/// host id -> host name, and agent name -> [(host id, host name, agent id)].
fn index(scan: &Value) -> BTreeMap<String, Vec<(String, String, String)>> {
    let mut m: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    for h in scan["hosts"].as_array().unwrap() {
        for a in h["agents"].as_array().unwrap() {
            m.entry(a["name"].as_str().unwrap().to_string()).or_default().push((
                h["id"].as_str().unwrap().to_string(),
                h["name"].as_str().unwrap().to_string(),
                a["id"].as_str().unwrap().to_string(),
            ));
        }
    }
    m
}

#[test]
fn selectors_are_exact_and_every_command_refuses_what_names_nothing() {
    let d = Demo::new();
    let scan = d.json(&["scan", "--json"], 1);
    let ix = index(&scan);
    let dup = &ix["codex-default-lo-00"];
    assert_eq!(dup.len(), 2, "the demo at 18x1 has codex-default-lo-00 on two hosts: {dup:?}");

    // A bare name on two hosts: exit 2, each match listed as HOST/CONTAINER; nothing shown.
    let (o, e) = d.expect(&["show", "codex-default-lo-00"], 2);
    assert!(o.is_empty(), "{o}");
    assert!(e.contains("names 2 agents"), "{e}");
    for (hid, hname, _) in dup {
        assert!(e.contains(&format!("{hname}/codex-default-lo-00")) && e.contains(&format!("{hid}/codex-default-lo-00")), "{e}");
    }
    // HOST/CONTAINER by host name and by host id: that one agent.
    let (hid, hname, aid) = &dup[1];
    for sel in [format!("{hname}/codex-default-lo-00"), format!("{hid}/codex-default-lo-00")] {
        let v = d.json(&["show", "--json", &sel], 0);
        assert_eq!(v["id"], aid.as_str(), "{sel}");
    }
    // By a 12-hex prefix of its container id, alone and under its host.
    let cid = scan["hosts"].as_array().unwrap().iter().flat_map(|h| h["agents"].as_array().unwrap()).find(|a| a["id"] == aid.as_str()).unwrap()
        ["container_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(d.json(&["show", "--json", &cid[..12]], 0)["id"], aid.as_str());
    assert_eq!(d.json(&["show", "--json", &format!("{hname}/{}", &cid[..12])], 0)["id"], aid.as_str());
    d.expect(&["show", &cid[..11]], 2);
    // A host name is never a prefix: `ws-us-east-2-00` is not `ws-us-east-2-000`.
    let (_, e) = d.expect(&["show", &format!("{}/codex-default-lo-00", &dup[0].1[..dup[0].1.len() - 1])], 2);
    assert!(e.contains("no agent"), "{e}");
    // A name prefix is never a name.
    d.expect(&["show", "codex-default-lo"], 2);

    // An unreachable host is named as such.
    let dark = scan["hosts"].as_array().unwrap().iter().find(|h| h["reachable"] == false).unwrap();
    let (_, e) = d.expect(&["show", &format!("{}/anything", dark["name"].as_str().unwrap())], 2);
    assert!(e.contains("unreachable"), "{e}");

    // Nothing named: exit 2 naming it, in every command that takes --agent; nothing done, no
    // run started, no run id printed.
    for args in [
        vec!["plan", "--agent", "nosuch-agent"],
        vec!["verify", "--agent", "nosuch-agent"],
        vec!["apply", "--yes", "--agent", "nosuch-agent"],
        vec!["show", "nosuch-agent"],
        // a good one and a bad one: refused as a whole, every bad one named
        vec!["apply", "--yes", "--agent", "codex-ww-uidmap-00", "--agent", "nosuch-agent", "--agent", "codex-default-lo-00"],
    ] {
        let (o, e) = d.expect(&args, 2);
        assert!(e.contains("no agent `nosuch-agent`"), "{args:?}: {e}");
        assert!(!e.lines().any(|l| l.starts_with("run ")), "{args:?}: a run id before the error:\n{e}");
        assert!(o.is_empty(), "{args:?}: {o}");
        if args.contains(&"codex-default-lo-00") {
            assert!(e.contains("`codex-default-lo-00` names 2 agents"), "{e}");
        }
    }
    // The ambiguous name alone, in apply and verify.
    let (_, e) = d.expect(&["apply", "--yes", "--agent", "codex-default-lo-00"], 2);
    assert!(!e.lines().any(|l| l.starts_with("run ")), "{e}");
    d.expect(&["verify", "--agent", "codex-default-lo-00"], 2);
    assert_eq!(d.runs(), 0, "a refused apply started a run");
    assert!(d.mutations().is_empty(), "a refused command changed the fleet: {:?}", d.mutations());

    // Exactly one of the two: plan and apply reach that one only.
    let sel = format!("{hname}/codex-default-lo-00");
    let p = d.json(&["plan", "--json", "--agent", &sel], 1);
    let planned: Vec<&str> = p["agents"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(planned, vec![aid.as_str()], "{p}");
    let (_, e) = d.expect(&["apply", "--yes", "--agent", &sel], 0);
    assert!(e.contains(&format!("{aid}: verified")) && !e.contains(&format!("{}: verified", dup[0].2)), "{e}");
    // verify --agent: about that agent only, though host 5 is unreachable.
    let v = d.json(&["verify", "--json", "--agent", &sel], 0);
    assert_eq!(v["agents"].as_array().unwrap().len(), 1, "{v}");
    assert!(v["unreachable_hosts"].as_u64().unwrap() >= 1, "{v}");
    // The whole fleet: the unreachable host's agents were not verified: 1.
    d.expect(&["verify"], 1);
}

#[test]
fn a_named_attention_agent_stays_attention_and_apply_refuses_it() {
    let d = Demo::new();
    let scan = d.json(&["scan", "--json"], 1);
    let ix = index(&scan);
    // host 4 runs the cli-override archetype: codex's command line overrides config.toml
    let (_, _, cli) = ix["codex-cli-override-00"][0].clone();
    let p = d.json(&["plan", "--json", "--agent", "codex-cli-override-00"], 0);
    assert!(p["agents"].as_array().unwrap().is_empty(), "a named attention agent was planned: {p}");
    let att = &p["attention"][0];
    assert_eq!(att["id"], cli.as_str(), "{p}");
    assert!(att["reason"].as_str().unwrap().contains("command line"), "{att}");
    let (o, _) = d.expect(&["plan", "--agent", "codex-cli-override-00"], 0);
    assert!(o.contains("needs attention") && o.contains("command line") && o.contains("0 agent(s) to change"), "{o}");

    // apply refuses it, naming why and the override flag; nothing done, no run.
    let (_, e) = d.expect(&["apply", "--yes", "--agent", "codex-cli-override-00", "--agent", "codex-ww-uidmap-00"], 2);
    assert!(e.contains("need attention") && e.contains(&cli) && e.contains("--include-attention"), "{e}");
    assert!(!e.lines().any(|l| l.starts_with("run ")), "{e}");
    assert_eq!(d.runs(), 0);
    assert!(d.mutations().is_empty(), "{:?}", d.mutations());
    // Unreachable-host and layer agents cannot be forced either (no config change cures them).
    let (_, e) = d.expect(&["apply", "--yes", "--include-attention", "--agent", "codex-requirements-00"], 2);
    assert!(e.contains("no config change can cure"), "{e}");
    assert_eq!(d.runs(), 0);

    // --include-attention: applied anyway, said first; a run is made.
    let out = d.run(&["apply", "--yes", "--include-attention", "--agent", "codex-cli-override-00"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("applied anyway (--include-attention)"), "{e}");
    assert_eq!(d.runs(), 1);
}

#[test]
fn no_host_found_is_exit_2_naming_the_tag() {
    let d = Demo::new();
    for cmd in [vec!["scan"], vec!["plan"], vec!["verify"], vec!["report"], vec!["show", "x"], vec!["apply", "--yes"]] {
        let out = d.run_with(&["--tag", "Role=nobody"], &cmd);
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {e}");
        assert!(e.contains("no host found") && e.contains("Role=nobody"), "{cmd:?}: {e}");
        assert!(!e.lines().any(|l| l.starts_with("run ")), "{e}");
    }
}

#[test]
fn the_next_plan_and_apply_name_agents_another_run_still_holds() {
    let d = Demo::new();
    d.json(&["scan", "--json"], 1);
    // The write's answer to codex-ww-uidmap-00 is lost: unknown, the run halts, and the agent
    // keeps its lock (until resume or rollback asks its host).
    let mut st: Value = serde_json::from_slice(&std::fs::read(d.state()).unwrap()).unwrap();
    let mut found = 0;
    for list in st["agents"].as_object_mut().unwrap().values_mut() {
        for a in list.as_array_mut().unwrap() {
            if a["name"] == "codex-ww-uidmap-00" {
                a["faults"]["lose_answer"] = serde_json::json!(["write"]);
                found += 1;
            }
        }
    }
    assert_eq!(found, 1);
    std::fs::write(d.state(), serde_json::to_vec(&st).unwrap()).unwrap();
    let out = d.run(&["apply", "--yes", "--canary", "1", "--agent", "codex-ww-uidmap-00"]);
    let e = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{e}");
    let run_id = e.lines().find_map(|l| l.strip_prefix("run ")).unwrap_or_else(|| panic!("{e}")).to_string();
    assert!(e.contains("unknown"), "{e}");

    // The next plan names the agent, the run and who holds it.
    let p = d.json(&["plan", "--json"], 1);
    let held = p["held"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{p}");
    assert!(held[0]["id"].as_str().unwrap().ends_with("/codex-ww-uidmap-00"), "{p}");
    assert_eq!(held[0]["run_id"], run_id.as_str());
    assert!(held[0]["holder"].as_str().unwrap().contains('@'), "{p}");
    assert_eq!(held[0]["state"], "halted");
    let (o, _) = d.expect(&["plan"], 1);
    assert!(o.contains("held by another run's host lock") && o.contains(&format!("run {run_id}")), "{o}");

    // apply names it before it starts (with --yes too), then the rollout skips it.
    let out = d.run(&["apply", "--yes", "--agent", "codex-ww-uidmap-00"]);
    let e = String::from_utf8_lossy(&out.stderr).into_owned();
    let held_at = e.find("held by another run's host lock").unwrap_or_else(|| panic!("{e}"));
    let run_at = e.lines().position(|l| l.starts_with("run ")).map(|i| e.lines().take(i).map(|l| l.len() + 1).sum::<usize>()).unwrap();
    assert!(held_at < run_at, "named before the run starts:\n{e}");
    assert!(e.contains(&format!("run {run_id}")), "{e}");
    assert!(e.contains("skipped") && e.contains("locked by another run"), "{e}");

    // Once released (unlock --run), nothing is held any more.
    d.expect(&["unlock", "--run", &run_id, "--yes", "--agent", "codex-ww-uidmap-00"], 0);
    let p = d.json(&["plan", "--json"], 1);
    assert!(p["held"].as_array().unwrap().is_empty(), "{p}");
}
