//! The demo judged by the real codex: `scripts/test.sh` sets `CODEX_FLEET_DEMO_CODEX` to the
//! six cached real binaries (and `CODEX_FLEET_DEMO_CODEX_CACHE` to a shared answer cache), so
//! every demo test (cli_demo, demo_e2e, rollout_*, ...) runs with the simulated agents'
//! `codex debug prompt-input` answered by the real codex of each agent's version. Here:
//! - a scan reports the real codex's own words, verbatim, where the built-in model says
//!   nothing of the kind (so the answer came from codex, not from the model);
//! - answers are cached on disk by content and a second process reads them from there;
//! - the demo's description line names its judge; the variable's forms parse as documented;
//! - the built-in model agrees with the real codex on every agent of the demo fleet.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use codex_fleet::codex::argv::CliOverrides;
use codex_fleet::sim::{demo, judge, world};
use serde_json::Value;

fn real_judge() -> Option<judge::Judge> {
    let mut j = judge::Judge::default();
    for v in ["0.133.0", "0.163.0"] {
        j.by_version.insert(v.into(), common::codex_bin(v)?);
    }
    Some(j)
}

/// A config codex 0.163 refuses (measured: "approval_policy = \"untrusted\" is no longer
/// supported") and the built-in model takes as valid.
const REFUSED_BY_0163: &str = "approval_policy = \"untrusted\"\nsandbox_mode = \"workspace-write\"\n";

/// The demo fleet with one running 0.163.0 agent (no emitter, no other layer) given `config`;
/// returns the state file and the agent's id as `scan --json` names it.
fn fleet_with(dir: &Path, config: &str) -> (PathBuf, String) {
    let mut st = demo::default_fleet();
    let (host, a) = st
        .agents
        .iter_mut()
        .flat_map(|(h, v)| v.iter_mut().map(move |a| (h.clone(), a)))
        .find(|(_, a)| a.codex_version == "0.163.0" && a.state == "running" && a.probe_broken.is_none() && a.emitter.is_none())
        .expect("a running 0.163.0 agent without emitter in the demo fleet");
    a.config = Some(config.to_string());
    a.layers = Default::default();
    let id = format!("{host}/{}", a.name);
    let f = dir.join("demo-state.json");
    std::fs::write(&f, serde_json::to_string(&st).unwrap()).unwrap();
    (f, id)
}

/// `codex-fleet --demo --demo-state STATE ARGS` with the judge environment given (`None`: the
/// variables removed, the built-in model answers).
fn demo(dir: &Path, state: &Path, judge_env: Option<(&str, &Path)>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_codex-fleet"));
    c.args(["--demo", "--demo-latency", "0", "--demo-state"])
        .arg(state)
        .args(args)
        .env("CODEX_FLEET_STATE_DIR", dir.join("state"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    match judge_env {
        Some((v, cache)) => c.env(judge::ENV, v).env(judge::CACHE_ENV, cache),
        None => c.env_remove(judge::ENV).env_remove(judge::CACHE_ENV),
    };
    c.output().expect("run codex-fleet")
}

fn scan(dir: &Path, state: &Path, judge_env: Option<(&str, &Path)>) -> Value {
    let out = demo(dir, state, judge_env, &["scan", "--json"]);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("scan --json: not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)))
}

fn agent<'a>(scan: &'a Value, id: &str) -> &'a Value {
    scan["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["agents"].as_array().unwrap())
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in the scan"))
}

/// Every string anywhere in `v`.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

fn mentions(v: &Value, needle: &str) -> bool {
    let mut all = Vec::new();
    strings(v, &mut all);
    all.iter().any(|s| s.contains(needle))
}

/// The first line codex itself writes on stderr for `config`, run directly (not through the demo).
fn codex_own_first_line(bin: &Path, config: &str) -> String {
    let home = common::codex_safe_tempdir();
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let out = Command::new(bin)
        .args(["debug", "prompt-input"])
        .current_dir(home.path())
        .env("CODEX_HOME", home.path())
        .env("HOME", home.path())
        .env_remove("OPENAI_API_KEY")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(!out.status.success(), "codex accepted {config:?}");
    String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or_default().to_string()
}

#[test]
fn a_scan_reports_what_the_real_codex_says_not_the_model() {
    let Some(bin) = common::codex_bin("0.163.0") else { return };
    let codex_says = codex_own_first_line(&bin, REFUSED_BY_0163);
    assert!(codex_says.contains("no longer supported"), "{codex_says}");

    let dir = common::codex_safe_tempdir();
    let cache = dir.path().join("judge-cache");
    let (state, id) = fleet_with(dir.path(), REFUSED_BY_0163);
    let env = format!("0.163.0={}", bin.display());

    // judged by the real codex: its own words are the agent's evidence, verbatim
    let judged = scan(dir.path(), &state, Some((&env, &cache)));
    let a = agent(&judged, &id);
    assert!(mentions(&a["evidence"], &codex_says), "codex's words missing from the evidence of {id}: {a:#}");
    assert!(a["findings"].as_array().unwrap().iter().any(|f| f == "config-invalid"), "{a:#}");

    // the answers went to the shared cache, private to the user
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(!entries.is_empty(), "nothing cached in {}", cache.display());
    use std::os::unix::fs::PermissionsExt;
    for p in &entries {
        assert_eq!(std::fs::metadata(p).unwrap().permissions().mode() & 0o077, 0, "{} readable by others", p.display());
    }

    // the built-in model: the same fleet, no such words (the answer above came from codex)
    let model = scan(dir.path(), &state, None);
    let a = agent(&model, &id);
    assert!(!mentions(a, &codex_says), "the built-in model now says codex's words itself; pick another case: {a:#}");
}

/// A second process takes the answer from the disk cache instead of running codex: an entry
/// planted under the agent's key (as `judge::key` computes it) is what its scan reports.
#[test]
fn a_second_process_answers_from_the_disk_cache() {
    let Some(bin) = common::codex_bin("0.163.0") else { return };
    let dir = common::codex_safe_tempdir();
    let cache = dir.path().join("judge-cache");
    let (state, id) = fleet_with(dir.path(), REFUSED_BY_0163);
    let env = format!("0.163.0={}", bin.display());
    let first = scan(dir.path(), &state, Some((&env, &cache)));
    assert!(mentions(agent(&first, &id), "no longer supported"));

    // the agent's key from the state file, and its entry on disk
    let st: world::WorldState = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let (host, name) = id.split_once('/').unwrap();
    let a = st.agents[host].iter().find(|a| a.name == name).unwrap();
    let key = judge::key(&bin, a).unwrap();
    let entry = cache.join(format!("{key}.json"));
    let mut v: Value = serde_json::from_slice(&std::fs::read(&entry).expect("the agent's answer is cached under its key")).unwrap();
    assert_eq!(v["key"], key.as_str());
    v["step"]["stderr"] = "Error: planted in the judge cache (no codex says this)".into();
    std::fs::write(&entry, serde_json::to_vec(&v).unwrap()).unwrap();

    let second = scan(dir.path(), &state, Some((&env, &cache)));
    assert!(mentions(agent(&second, &id), "planted in the judge cache"), "{:#}", agent(&second, &id));

    // any change to a file codex reads is another key
    let mut b = a.clone();
    b.config = Some(format!("{REFUSED_BY_0163}# another byte\n"));
    assert_ne!(judge::key(&bin, &b).unwrap(), key);
    let mut c = a.clone();
    c.layers.project = Some(String::new());
    assert_ne!(judge::key(&bin, &c).unwrap(), key, "an empty project config is not an absent one");
    let mut d = a.clone();
    d.codex_version = "0.133.0".into();
    assert_ne!(judge::key(&bin, &d).unwrap(), key);
    assert_ne!(judge::key(&common::codex_bin("0.133.0").unwrap(), a).unwrap(), key);
}

/// The description line names the judge: the real codex versions, or the built-in model.
#[test]
fn the_demo_says_who_judges_it() {
    let Some(bin) = common::codex_bin("0.133.0") else { return };
    let dir = common::codex_safe_tempdir();
    let cache = dir.path().join("judge-cache");
    let (state, _) = fleet_with(dir.path(), "sandbox_mode = \"read-only\"\n");
    // the source line a saved plan records (the console's header shows the same)
    let source = |judge_env: Option<(&str, &Path)>| -> String {
        let saved = dir.path().join("saved-plan.json");
        let out = demo(dir.path(), &state, judge_env, &["plan", "--out", saved.to_str().unwrap()]);
        let v: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap_or_else(|e| {
            panic!("plan --out: {e}: {}", String::from_utf8_lossy(&out.stderr))
        }))
        .unwrap();
        std::fs::remove_file(&saved).unwrap();
        v["source"].as_str().unwrap_or_else(|| panic!("no source in {v:#}")).to_string()
    };
    let env = format!("0.133.0={}", bin.display());
    let s = source(Some((&env, &cache)));
    assert!(s.starts_with("demo ") && s.ends_with("(judged by the real codex 0.133.0)"), "{s}");
    let s = source(None);
    assert!(s.starts_with("demo ") && s.contains("(judged by the built-in codex model; set CODEX_FLEET_DEMO_CODEX"), "{s}");

    // under scripts/test.sh: the whole suite is judged by the six cached versions
    if let Ok(v) = std::env::var(judge::ENV) {
        if !v.trim().is_empty() {
            let d = judge::description();
            for ver in ["0.133.0", "0.136.0", "0.144.4", "0.149.0", "0.153.4", "0.163.0"] {
                assert!(d.contains(&format!("codex {ver}")), "{d}");
            }
        }
    } else {
        common::require_or_skip::<()>(&format!("{} (scripts/test.sh sets it)", judge::ENV));
    }

    // the variable's forms
    let p133 = bin.display().to_string();
    let one = judge::Judge::parse(&p133).unwrap();
    assert_eq!(one.codex_for("0.999.0").map(|p| p.display().to_string()), Some(p133.clone()));
    let per = judge::Judge::parse(&format!("0.133.0={p133}")).unwrap();
    assert!(per.codex_for("0.163.0").is_none(), "an unlisted version is judged by the built-in model");
    assert!(judge::Judge::parse("0.133.0=/nonexistent/codex").unwrap_err().contains("/nonexistent/codex"));
}

#[test]
fn the_built_in_model_agrees_with_the_real_codex_on_every_demo_agent() {
    let Some(j) = real_judge() else { return };
    let st = demo::default_fleet();
    let mut checked = 0;
    let mut disagree = Vec::new();
    for a in st.agents.values().flatten() {
        if a.probe_broken.is_some() {
            continue;
        }
        let codex = j.codex_for(&a.codex_version).unwrap_or_else(|| panic!("no codex {}", a.codex_version));
        let mut fixed = a.clone();
        fixed.config = a.config.as_deref().and_then(|c| codex_fleet::codex::fix::fixed_text(c).ok());
        for (what, a) in [("as found", a), ("fixed", &fixed)] {
            let real = judge::answer(codex, a).unwrap_or_else(|e| panic!("{}: {e}", a.name));
            // prompt-input runs without the command line (as the probe runs it)
            let model = world::builtin_answer(a, &CliOverrides::default());
            let view = |x: &(codex_fleet::probe::Step, Option<codex_fleet::probe::CodexEffective>)| {
                (x.0.outcome, x.1.as_ref().map(|e| (e.sandbox_mode.clone(), e.approval_policy.clone())))
            };
            if view(&real) != view(&model) {
                disagree.push(format!("{} {what} (codex {}): real {:?} / model {:?}", a.name, a.codex_version, real, model));
            }
            checked += 1;
        }
    }
    assert!(checked >= 80, "{checked}");
    assert!(disagree.is_empty(), "the built-in model and the real codex disagree:\n{}", disagree.join("\n"));
}

/// Configs codex refuses although they are valid TOML: the built-in model refuses them as the
/// real codex does, in codex's own first line, on every version the demo runs.
#[test]
fn the_built_in_model_refuses_what_the_real_codex_refuses() {
    let Some(j) = real_judge() else { return };
    let st = demo::default_fleet();
    let base = st.agents.values().flatten().find(|a| a.probe_broken.is_none() && a.emitter.is_none()).unwrap().clone();
    let mut checked = 0;
    for config in [
        "default_permissions = \"locked\"\n",
        "default_permissions = \"locked\"\n[permissions.other]\n",
        "default_permissions = \":full-access\"\n",
        "sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\ndefault_permissions = \"locked\"\n[permissions.locked]\n",
    ] {
        for v in ["0.133.0", "0.163.0"] {
            let mut a = base.clone();
            a.codex_version = v.into();
            a.config = Some(config.into());
            a.layers = Default::default();
            let (real, real_eff) = judge::answer(j.codex_for(v).unwrap(), &a).unwrap();
            let (model, model_eff) = world::builtin_answer(&a, &CliOverrides::default());
            assert_eq!(real.outcome, model.outcome, "codex {v} on {config:?}: real {real:?} / model {model:?}");
            // (accepted, both say a mode: a custom profile is `permissions:NAME` to the model)
            assert_eq!(real_eff.is_some(), model_eff.is_some(), "codex {v} on {config:?}");
            assert_eq!(real.stderr.lines().next(), model.stderr.lines().next(), "codex {v} on {config:?}");
            assert_eq!(real.signature, model.signature, "codex {v} on {config:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 8);
}
