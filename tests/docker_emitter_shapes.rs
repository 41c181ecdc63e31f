//! The managed block fixes the file codex reads, whoever runs the boot emitter (issue #11, item
//! 1), on the real Docker engine with the real codex 0.133.0 inside as the judge. Five emitter
//! shapes, one container each (two for the root-then-drop shape):
//!   a. the emitter run as the agent;
//!   b. run as root (HOME=/root, no CODEX_HOME), then a privilege drop: `setpriv` (b1) and a
//!      `su`-style drop whose PID 1 stays `su` (b2); the emitter writes root's own file, the
//!      agent's config.toml lives in the agent's home;
//!   c. CODEX_HOME set only in the agent's environment (the container's; the entrypoint runs
//!      the emitter without it, as sudo's env_reset would);
//!   d. the emitter writes the agent's file through its own variable (`CFG=/home/agent/...`);
//!   e. config.toml rendered from a template (`cat > "$CFG" <<EOF`), then appended to.
//! Each: scan, plan (the emitter is written, naming the agent's config.toml), apply through the
//! Docker backend (canary, then a wave), rollback (the emitter and config.toml restored byte for
//! byte), apply again, two more restarts with codex saying danger-full-access and never and the
//! keys exactly once in the agent's file, and a re-plan that changes nothing. The entrypoint shapes are
//! containers with a custom command on the runtime image (no new image recipes).

mod common;
mod docker_support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use codex_fleet::codex::emitter::installed_target;
use codex_fleet::fleet::{AgentRef, Fleet};
use codex_fleet::plan::plan;
use codex_fleet::rollout::engine::{self, EngineConfig, Size};
use codex_fleet::rollout::journal::{Outcome, Phase, Record, RunOptions, RunState, Step};
use codex_fleet::scan::{scan, AgentState};
use docker_support::*;

const APP: &str = "exec -a codex bash /usr/local/lib/codex-fleet-test/app-server";
const AS_ROOT: &str = "env -u CODEX_HOME HOME=/root /usr/local/bin/codex_mcp_config.sh || echo '[start] emitter failed'";
const AS_AGENT: &str = "setpriv --reuid=1000 --regid=1000 --init-groups env HOME=/home/agent /usr/local/bin/codex_mcp_config.sh || echo '[start] emitter failed'";
const ALT_HOME: &str = "/home/agent/codex-home";

/// The agent's own config.toml before the fix (shapes whose emitter does not write it).
const SEEDED: &str = "# the agent's own settings\nmodel = \"gpt-5-codex\"\nsandbox_mode = \"workspace-write\"\n\n[tui]\nanimations = false\n";

struct Shape {
    suffix: &'static str,
    entry: String,
    /// The agent's config.toml.
    config: String,
    emitter: Option<String>,
    extra: Vec<&'static str>,
    /// Written by the agent after the first boot (the emitter does not write this file).
    seed: bool,
}

fn shapes() -> Vec<Shape> {
    let setpriv = format!("exec setpriv --reuid=1000 --regid=1000 --init-groups bash -c '{APP}'");
    let su = format!("exec su -s /bin/bash agent -c '{APP}'");
    let dflt = CONFIG.to_string();
    vec![
        Shape { suffix: "a-agent", entry: format!("{AS_AGENT}; {setpriv}"), config: dflt.clone(), emitter: None, extra: vec![], seed: false },
        Shape { suffix: "b1-setpriv", entry: format!("{AS_ROOT}; {setpriv}"), config: dflt.clone(), emitter: None, extra: vec![], seed: true },
        Shape { suffix: "b2-su", entry: format!("{AS_ROOT}; {su}"), config: dflt.clone(), emitter: None, extra: vec![], seed: true },
        Shape {
            suffix: "c-codex-home",
            entry: format!("{AS_ROOT}; {setpriv}"),
            config: format!("{ALT_HOME}/config.toml"),
            emitter: None,
            extra: vec!["-e", "CODEX_HOME=/home/agent/codex-home"],
            seed: true,
        },
        Shape {
            suffix: "d-variable",
            entry: format!("{AS_ROOT}; {setpriv}"),
            config: dflt.clone(),
            emitter: Some(fixture("emitter/shapes/variable-target.sh")),
            extra: vec![],
            seed: false,
        },
        Shape {
            suffix: "e-template",
            entry: format!("{AS_ROOT}; {setpriv}"),
            config: dflt,
            emitter: Some(fixture("emitter/shapes/template-heredoc.sh")),
            extra: vec![],
            seed: false,
        },
    ]
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Top-level (before the first table) lines that assign `key`.
fn count_top_level(config: &str, key: &str) -> usize {
    let mut n = 0;
    for l in config.lines() {
        let t = l.trim_start();
        if t.starts_with('[') {
            break;
        }
        if t.split('=').next().is_some_and(|k| k.trim() == key) && t.contains('=') {
            n += 1;
        }
    }
    n
}

/// Booted: a process whose argv[0] is `codex` runs as the agent (PID 1 may be `su`).
fn wait_codex(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let o = docker(&["top", name, "-eo", "pid,uid,args"]);
        let out = String::from_utf8_lossy(&o.stdout);
        if o.status.success() && out.lines().any(|l| l.split_whitespace().skip(1).take(2).eq(["1000", "codex"])) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} did not boot: {out}\n{}", String::from_utf8_lossy(&docker(&["logs", name]).stdout));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Write `content` to `path` in a container as the agent (its directory made first).
fn put_as_agent(name: &str, path: &str, content: &str) {
    let mut c = Command::new("docker")
        .args(["exec", "-i", "-u", "agent", name, "sh", "-c", "mkdir -p \"${1%/*}\" && cat >\"$1\"", "sh", path])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(content.as_bytes()).unwrap();
    assert!(c.wait().unwrap().success(), "writing {path} into {name}");
}

fn agent_of(report: &codex_fleet::scan::FleetReport, name: &str) -> AgentRef {
    report.agents().find(|a| a.read.agent.name == name).unwrap_or_else(|| panic!("{name} not in the scan")).read.agent.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_emitter_shape_fixes_the_file_codex_reads() {
    let Some(img) = images() else { return };
    let _state = state_dir();
    let t0 = Instant::now();
    let shapes = shapes();
    let mut f = TestFleet::new("shapes", img.clone());
    f.add(
        shapes
            .iter()
            .map(|s| {
                let mut spec = Spec::new(s.suffix, &img.runtime_codex);
                for a in &s.extra {
                    spec = spec.arg(a);
                }
                if let Some(e) = &s.emitter {
                    spec = spec.emitter(e);
                }
                Spec { entrypoint: Some("/bin/bash".into()), cmd: vec!["-c".into(), s.entry.clone()], no_wait: true, ..spec }
            })
            .collect(),
    );
    for s in &shapes {
        wait_codex(&f.name(s.suffix));
        if s.seed {
            put_as_agent(&f.name(s.suffix), &s.config, SEEDED);
        }
    }
    // What the agents' config.toml are before the fix, and that none is right yet.
    let originals: Vec<(Vec<u8>, Vec<u8>)> = shapes.iter().map(|s| (f.read(s.suffix, EMITTER), f.read(s.suffix, &s.config))).collect();
    for (s, (_, c)) in shapes.iter().zip(&originals) {
        assert_eq!(count_top_level(&String::from_utf8_lossy(c), "approval_policy"), 0, "{}", s.suffix);
    }
    // The root-run shapes' own codex home is root's, not the agent's: v1 would have fixed it.
    let (ok, _) = f.exec("b1-setpriv", None, &["test", "-f", "/root/.codex/config.toml"]);
    assert!(ok, "b1: the emitter, run as root, writes root's file");
    eprintln!("fleet up in {:?}", t0.elapsed());

    let fleet = f.fleet().await;
    let report = scan(&fleet, |_| {}).await.unwrap();
    let mut p = plan(&report, &[], &fleet.describe(), "now");
    assert!(p.attention.is_empty(), "{:?}", p.to_json());
    assert_eq!(p.agents.len(), shapes.len(), "{:?}", p.to_json());
    for s in &shapes {
        let ap = p.agents.iter().find(|a| a.agent.name == f.name(s.suffix)).unwrap_or_else(|| panic!("{} not planned", s.suffix));
        assert_eq!(ap.config_path.as_deref(), Some(s.config.as_str()), "{}: the config as the scan found it", s.suffix);
        let em = ap.files.iter().find(|x| x.write).unwrap_or_else(|| panic!("{}: {:?}", s.suffix, ap.files));
        assert_eq!(em.path, EMITTER);
        assert_eq!(installed_target(&em.after_redacted), Some(Some(s.config.clone())), "{}: the block names the agent's file", s.suffix);
    }
    p.agents.sort_by(|a, b| a.agent.name.cmp(&b.agent.name));

    // Apply: a canary, then the rest in one wave.
    let run_id = format!("r-{}", f.run);
    let opts = RunOptions { canary: 1, wave: "5".into(), max_errors: "0".into() };
    let cfg = EngineConfig {
        canary: 1,
        wave: Size::Count(5),
        max_errors: Size::Count(0),
        stable_timeout: Duration::from_secs(120),
        holder: "docker-emitter-shapes-test".into(),
    };
    let journal = engine::start(&p, &opts, &run_id).unwrap();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    let res = engine::execute(&fleet, journal, &cfg, stop, &|_| {}).await.unwrap();
    eprintln!("apply in {:?}", t.elapsed());
    assert_eq!(res.state, RunState::Done, "{res:?}");
    assert!(res.all_verified(), "{res:?}");

    // Rollback: every file back byte for byte (the journal's restore receipts carry the
    // originals' sha256); the emitter read back; the agent's own file too where the emitter
    // does not regenerate it.
    let rb = engine::rollback(&fleet, &run_id, &cfg, &|_| {}).await.unwrap();
    assert_eq!(rb.len(), shapes.len(), "{rb:?}");
    assert!(rb.iter().all(|(_, o)| *o == Outcome::RolledBack), "{rb:?}");
    let records = codex_fleet::rollout::journal::read(&run_id).unwrap();
    for (s, (em, cf)) in shapes.iter().zip(&originals) {
        assert_eq!(&f.read(s.suffix, EMITTER), em, "{}: emitter restored byte for byte", s.suffix);
        let id = format!("{}/{}", fleet.host().id, f.name(s.suffix));
        for (path, original) in [(EMITTER, em), (s.config.as_str(), cf)] {
            let restored = records.iter().any(|r| {
                matches!(r, Record::Step { agent, step: Step::Restore, phase: Phase::Done, path: Some(p), sha256: Some(h), .. }
                    if *agent == id && p == path && *h == sha256_hex(original))
            });
            assert!(restored, "{}: {path} restored to the original bytes", s.suffix);
        }
        if s.seed {
            assert_eq!(&f.read(s.suffix, &s.config), cf, "{}: config.toml restored byte for byte", s.suffix);
        }
    }
    // Apply again (a new run, from a new scan), then the restarts.
    let report = scan(&fleet, |_| {}).await.unwrap();
    let mut p = plan(&report, &[], &fleet.describe(), "now");
    assert_eq!(p.agents.len(), shapes.len(), "rolled back: planned again: {:?}", p.to_json());
    p.agents.sort_by(|a, b| a.agent.name.cmp(&b.agent.name));
    let run2 = format!("r2-{}", f.run);
    let journal = engine::start(&p, &opts, &run2).unwrap();
    let (_stop_tx2, stop2) = tokio::sync::watch::channel(false);
    let res = engine::execute(&fleet, journal, &cfg, stop2, &|_| {}).await.unwrap();
    assert!(res.all_verified(), "{res:?}");

    // Two restarts each (side by side): codex says danger-full-access and never, the keys are
    // in the agent's file exactly once, owned by the agent, and the boot log names that file.
    let (f, fleet, report) = (&f, &fleet, &report);
    let per_agent = shapes.iter().map(|s| async move {
        let a = agent_of(report, &f.name(s.suffix));
        for i in 0..2 {
            fleet.restart(&a).await.unwrap();
            let read = fleet.wait_stable(&a, Duration::from_secs(120)).await.unwrap();
            let st = AgentState::from_read(read);
            let pr = st.read.probe.as_ref().unwrap_or_else(|e| panic!("{} restart {i}: {e}", s.suffix));
            let e = pr.effective.clone().unwrap_or_default();
            assert_eq!(e.sandbox_mode.as_deref(), Some("danger-full-access"), "{} restart {i}: codex says {:?}", s.suffix, pr.prompt_input);
            assert_eq!(e.approval_policy.as_deref(), Some("never"), "{} restart {i}", s.suffix);
            assert_eq!(pr.config.path, s.config, "{}", s.suffix);
            let config = String::from_utf8(f.read(s.suffix, &s.config)).unwrap();
            assert_eq!(count_top_level(&config, "sandbox_mode"), 1, "{} restart {i}:\n{config}", s.suffix);
            assert_eq!(count_top_level(&config, "approval_policy"), 1, "{} restart {i}:\n{config}", s.suffix);
            assert_eq!(config.matches("danger-full-access").count(), 1, "{}:\n{config}", s.suffix);
            assert!(f.stat(s.suffix, &s.config).starts_with("agent:agent "), "{}: {}", s.suffix, f.stat(s.suffix, &s.config));
        }
        let logs = docker(&["logs", &f.name(s.suffix)]);
        let out = String::from_utf8_lossy(&logs.stdout);
        assert!(out.contains(&format!("[codex-fleet] {}: sandbox_mode", s.config)), "{}: {out}", s.suffix);
        assert!(!String::from_utf8_lossy(&logs.stderr).contains("WARNING: could not ensure"), "{}", s.suffix);
    });
    futures::future::join_all(per_agent).await;

    // The root-run shapes never touched root's own config with the fix.
    for s in ["b1-setpriv", "b2-su", "c-codex-home", "d-variable", "e-template"] {
        let (_, root_cfg) = f.exec(s, None, &["sh", "-c", "cat /root/.codex/config.toml 2>/dev/null || true"]);
        assert!(!root_cfg.contains("danger-full-access"), "{s}: root's file fixed:\n{root_cfg}");
    }
    // Nothing more to plan.
    let report2 = scan(fleet, |_| {}).await.unwrap();
    let p2 = plan(&report2, &[], &fleet.describe(), "now");
    assert!(p2.agents.is_empty() && p2.attention.is_empty(), "re-plan: {:?}", p2.to_json());

    eprintln!("total {:?}", t0.elapsed());
}
