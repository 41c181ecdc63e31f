//! Contexts through the binary, with `XDG_CONFIG_HOME` on a temporary directory: the context is
//! chosen by `--context` over `CODEX_FLEET_CONTEXT` over the file's `current_context`; a setting
//! comes from a flag over the tool's environment variable over the context over the built-in
//! default (seen both in `context show` and in what the demo fleet actually is); a read-only
//! context refuses `apply` and `--read-only=false` with exit 2, and nothing is run; `context use`
//! keeps the file's comments; a broken file is an exit 2 that names file, line and key.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const CONFIG: &str = r#"# contexts for the night shift
current_context = "small"   # the everyday one

[contexts.small]
source = "demo"
demo_scale = "2x3"
demo_latency = 1

[contexts.other]
source = "demo"
demo_scale = "4x3"
demo_latency = 1
canary = 2
wave = 1
profile = "ctx-profile"

# production: look, never touch
[contexts.prod-ro]
source = "demo"
demo_latency = 1
read_only = true
"#;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(config: Option<&str>) -> Env {
        let dir = tempfile::tempdir().unwrap();
        if let Some(c) = config {
            std::fs::create_dir_all(dir.path().join("codex-fleet")).unwrap();
            std::fs::write(dir.path().join("codex-fleet/config.toml"), c).unwrap();
        }
        Env { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("codex-fleet/config.toml")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_codex-fleet"));
        c.args(args)
            .env("XDG_CONFIG_HOME", self.dir.path())
            .env("CODEX_FLEET_STATE_DIR", self.state())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        for v in ["CODEX_FLEET_CONTEXT", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "DOCKER_HOST"] {
            c.env_remove(v);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn json(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let out = self.run(args, env);
        assert!(out.status.code().is_some_and(|c| c < 2), "{args:?}: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}"))
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `v` with the time worked out from the clock when the report is made masked: a session
/// record's `harm` says "since HH:MM UTC" (now minus the stalled minutes), which moves on when
/// two scans straddle a minute's turn (seen in CI: 20:37 then 20:38). The rest of `harm` is
/// compared as it is.
fn without_clock(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("harm", Value::String(s)) => (k.clone(), Value::String(mask_since(s))),
                    _ => (k.clone(), without_clock(v)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_clock).collect()),
        v => v.clone(),
    }
}

/// "since 20:37 UTC" -> "since HH:MM UTC"; anything else as it is.
fn mask_since(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("since ") {
        let (head, tail) = rest.split_at(i + "since ".len());
        out.push_str(head);
        let t = tail.as_bytes();
        if t.len() >= 5 && t[2] == b':' && [0, 1, 3, 4].iter().all(|&k| t[k].is_ascii_digit()) {
            out.push_str("HH:MM");
            rest = &tail[5..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// (hosts, agents) of a `scan --json`, and the context it names.
fn scanned(v: &Value) -> (u64, u64, Value) {
    (v["summary"]["hosts"].as_u64().unwrap(), v["summary"]["agents"].as_u64().unwrap(), v["context"].clone())
}

#[test]
fn the_context_is_chosen_flag_over_env_over_the_file() {
    let e = Env::new(Some(CONFIG));
    let scan = ["scan", "--json"];
    assert_eq!(scanned(&e.json(&scan, &[])), (2, 6, "small".into()), "current_context");
    let v = e.json(&scan, &[("CODEX_FLEET_CONTEXT", "other")]);
    assert_eq!((scanned(&v).0, scanned(&v).2), (4, "other".into()), "env over the file");
    let flag = ["--context", "small", "scan", "--json"];
    assert_eq!(scanned(&e.json(&flag, &[("CODEX_FLEET_CONTEXT", "other")])), (2, 6, "small".into()), "flag over env");
    // A flag over the context's setting.
    let v = e.json(&["--context", "other", "--demo-scale", "5x1", "scan", "--json"], &[]);
    assert_eq!((scanned(&v).0, scanned(&v).2), (5, "other".into()), "--demo-scale over the context's");
    // No file: the built-in defaults (the demo's 8 hosts), and no context named.
    let bare = Env::new(None);
    let v = bare.json(&["--demo", "--demo-latency", "1", "scan", "--json"], &[]);
    assert_eq!(scanned(&v), (8, 42, Value::Null), "built-in");
    assert_eq!(v["format"], "codex-fleet/scan");
    assert_eq!(v["version"], 1);
}

fn setting(show: &Value, key: &str) -> (String, String) {
    let s = show["settings"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap_or_else(|| panic!("no {key} in {show}"));
    (s["value"].as_str().unwrap().to_string(), s["origin"].as_str().unwrap().to_string())
}

#[test]
fn each_setting_is_flag_over_env_over_context_over_built_in() {
    let e = Env::new(Some(CONFIG));
    let show = e.json(&["--context", "other", "context", "show", "--json"], &[]);
    assert_eq!(setting(&show, "profile"), ("ctx-profile".into(), "context other".into()));
    assert_eq!(setting(&show, "demo_scale"), ("4x3".into(), "context other".into()));
    assert_eq!(setting(&show, "gitea_url"), ("https://git.moleculesai.app".into(), "built-in".into()));
    assert_eq!(setting(&show, "canary"), ("2".into(), "context other".into()));
    let show = e.json(&["--context", "other", "context", "show", "--json"], &[("AWS_PROFILE", "env-profile")]);
    assert_eq!(setting(&show, "profile"), ("env-profile".into(), "env AWS_PROFILE".into()));
    let show = e.json(&["--context", "other", "--profile", "flag-profile", "context", "show", "--json"], &[("AWS_PROFILE", "env-profile")]);
    assert_eq!(setting(&show, "profile"), ("flag-profile".into(), "flag".into()));
    // `context show NAME` shows another context without selecting it.
    let show = e.json(&["context", "show", "prod-ro", "--json"], &[]);
    assert_eq!(show["context"], "prod-ro");
    assert_eq!(setting(&show, "read_only"), ("true".into(), "context prod-ro".into()));
}

#[test]
fn rollout_defaults_come_from_the_context_unless_a_flag_gives_them() {
    let e = Env::new(Some(CONFIG));
    let waves = |v: &Value| v["waves"].as_array().unwrap().iter().map(|w| w["agents"].as_array().unwrap().len()).collect::<Vec<_>>();
    let state = e.dir.path().join("demo.json");
    let st = state.to_str().unwrap();
    // other: 4 hosts x 3 agents, canary 2, waves of 1.
    let v = e.json(&["--context", "other", "--demo-state", st, "apply", "--yes", "--json"], &[]);
    let planned: usize = waves(&v).iter().sum();
    assert!(planned >= 4, "the demo plans most agents of 4x3: {v}");
    assert_eq!(waves(&v)[0], 2, "the context's canary");
    assert!(waves(&v)[1..].iter().all(|n| *n == 1), "the context's waves of 1: {:?}", waves(&v));
    let state2 = e.dir.path().join("demo2.json");
    let v = e.json(&["--context", "other", "--demo-state", state2.to_str().unwrap(), "apply", "--yes", "--json", "--canary", "1"], &[]);
    assert_eq!(waves(&v)[0], 1, "--canary over the context's");
}

#[test]
fn a_read_only_context_refuses_every_mutation_and_its_override() {
    let e = Env::new(Some(CONFIG));
    let state = e.dir.path().join("demo.json");
    let st = state.to_str().unwrap();
    let before = e.json(&["--context", "prod-ro", "--demo-state", st, "scan", "--json"], &[]);
    let out = e.run(&["--context", "prod-ro", "--demo-state", st, "apply", "--yes"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
    let out = e.run(&["--context", "prod-ro", "--demo-state", st, "--read-only=false", "apply", "--yes"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("context prod-ro is read-only"), "{}", stderr(&out));
    let out = e.run(&["--context", "prod-ro", "--demo-state", st, "rollback", "--run", "x", "--yes"], &[]);
    assert_eq!(out.status.code(), Some(2));
    // The env var selects it just as well, and the refusal stands.
    let out = e.run(&["--demo-state", st, "apply", "--yes"], &[("CODEX_FLEET_CONTEXT", "prod-ro")]);
    assert_eq!(out.status.code(), Some(2));
    let after = e.json(&["--context", "prod-ro", "--demo-state", st, "scan", "--json"], &[]);
    assert_eq!(mask_since("0 succeeded since 20:37 UTC; since 5:0"), "0 succeeded since HH:MM UTC; since 5:0");
    assert_eq!(without_clock(&before["hosts"]), without_clock(&after["hosts"]), "nothing changed on the fleet");
    assert!(!e.state().join("runs").exists() || std::fs::read_dir(e.state().join("runs")).unwrap().count() == 0, "no run was journaled");
    // --read-only=false is fine where the context allows writes.
    let out = e.run(&["--context", "small", "--read-only=false", "runs"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn context_list_and_use_keep_the_file_as_it_was() {
    let e = Env::new(Some(CONFIG));
    let out = e.run(&["context", "list"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.starts_with('*') && l.contains("small")), "{text}");
    assert!(text.lines().any(|l| l.contains("prod-ro") && l.contains("read-only")), "{text}");
    let v = e.json(&["context", "list", "--json"], &[]);
    assert_eq!(v["format"], "codex-fleet/context-list");
    assert_eq!(v["current"], "small");

    let out = e.run(&["context", "use", "other"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let now = std::fs::read_to_string(e.config()).unwrap();
    assert_eq!(now, CONFIG.replace("current_context = \"small\"", "current_context = \"other\""), "only the value changed");
    assert_eq!(std::fs::read_to_string(e.config().with_file_name("config.toml.bak-previous")).unwrap(), CONFIG);
    assert_eq!(scanned(&e.json(&["scan", "--json"], &[])).2, "other");

    let out = e.run(&["context", "use", "nope"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no context `nope`") && stderr(&out).contains("prod-ro"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(e.config()).unwrap(), now, "nothing written");

    // A file without current_context gets it at the top, comments kept.
    let e = Env::new(Some(&CONFIG.replace("current_context = \"small\"   # the everyday one\n", "")));
    assert_eq!(e.run(&["context", "use", "prod-ro"], &[]).status.code(), Some(0));
    let text = std::fs::read_to_string(e.config()).unwrap();
    assert!(text.starts_with("current_context = \"prod-ro\"\n# contexts for the night shift\n"), "{text}");
    assert!(text.contains("# production: look, never touch"), "{text}");
}

fn expect_error(config: &str, words: &[&str]) {
    let e = Env::new(Some(config));
    let out = e.run(&["scan", "--json"], &[]);
    assert_eq!(out.status.code(), Some(2), "{config}");
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(err.contains(&e.config().display().to_string()), "names the file: {err}");
    for w in words {
        assert!(err.contains(w), "`{w}` not in: {err}");
    }
}

#[test]
fn a_broken_config_file_is_refused_naming_what_and_where() {
    expect_error("[contexts.a]\nsource = \"demo\"\nsource = \"aws\"\n", &["line 3"]);
    expect_error("[contexts.a]\nsoruce = \"demo\"\n", &["[contexts.a]", "unknown key `soruce`"]);
    expect_error("[contexts.a]\nsource = \"k8s\"\n", &["k8s"]);
    expect_error("[contexts.a]\nwave = \"lots\"\n", &["wave"]);
    // The flags' own checks (rollout::options): a wave of nobody, a restart timeout of zero.
    expect_error("[contexts.a]\nwave = 0\n", &["`wave`: wave size: `0`: a wave has at least one agent"]);
    expect_error("[contexts.a]\nstable_timeout = 0\n", &["`stable_timeout`: restart timeout: `0`: at least 1 second"]);
    expect_error("current_context = \"b\"\n[contexts.a]\n", &["names no [contexts.b]"]);
    let e = Env::new(None);
    let out = e.run(&["--context", "prod", "scan"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}
