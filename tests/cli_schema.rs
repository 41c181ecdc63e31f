//! Real `--json` outputs of the binary on `--demo` (scan, show, plan, the saved plan file, apply,
//! runs, report, verify, rollback), of `context list|show` over a config file and of `fix-config`
//! (fixed, already fixed, refused) validated against docs/schema/ with a JSON Schema validator;
//! each schema names its document's `format`, and the finding codes a schema accepts are exactly
//! the ones the diagnosis raises.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use codex_fleet::diagnose::Code;
use serde_json::Value;

use common::schema::{check, schema, schema_dir, Local, BASE};

struct Demo {
    dir: tempfile::TempDir,
    scale: &'static str,
}

/// The binary with its state and config (`XDG_CONFIG_HOME`) in `dir`, and none of the
/// environment variables a context setting yields to unless `env` sets them.
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_codex-fleet"));
    c.args(args)
        .env("CODEX_FLEET_STATE_DIR", dir.join("state"))
        .env("XDG_CONFIG_HOME", dir)
        .stdin(Stdio::null());
    for v in ["CODEX_FLEET_CONTEXT", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "DOCKER_HOST"] {
        c.env_remove(v);
    }
    c.envs(env.iter().copied()).output().unwrap()
}

/// stdout as JSON, whatever the exit status (a refusal is a document too).
fn stdout_json(args: &[&str], out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}\n{}", String::from_utf8_lossy(&out.stderr)))
}

/// The JSON document of a command that exits 0 or 1.
fn json(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = run(dir, args, env);
    assert!(out.status.code().is_some_and(|c| c < 2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    stdout_json(args, &out)
}

impl Demo {
    fn run(&self, args: &[&str]) -> Output {
        let state = self.dir.path().join("demo.json");
        let mut all = vec!["--demo", "--demo-latency", "1", "--demo-scale", self.scale, "--demo-state", state.to_str().unwrap()];
        all.extend_from_slice(args);
        run(self.dir.path(), &all, &[])
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(out.status.code().is_some_and(|c| c < 2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        stdout_json(args, &out)
    }
}

#[test]
fn every_json_output_of_a_demo_session_matches_its_schema() {
    let d = Demo { dir: tempfile::tempdir().unwrap(), scale: "3x3" };
    let scan = d.json(&["scan", "--json"]);
    check("scan", &scan);
    assert!(scan["hosts"].as_array().unwrap().iter().any(|h| h["reachable"] == false), "an unreachable host is covered");

    // `show` of a stalled agent: a plan with a change.
    let agents = |scan: &Value| -> Vec<Value> { scan["hosts"].as_array().unwrap().iter().flat_map(|h| h["agents"].as_array().unwrap().clone()).collect() };
    let of = |scan: &Value, verdict: &str| -> String {
        agents(scan).iter().find(|a| a["verdict"] == verdict).unwrap_or_else(|| panic!("no {verdict} agent in {scan}"))["id"].as_str().unwrap().to_string()
    };
    let stalled = d.json(&["show", &of(&scan, "stalled"), "--json"]);
    check("show", &stalled);
    assert_eq!(stalled["plan"]["agents"].as_array().unwrap().len(), 1, "{stalled}");
    assert!(stalled["config_redacted"].is_string() && stalled["probes"].is_object(), "{stalled}");
    // An agent on an unreachable host: exit 2, the reason on stderr, no document on stdout.
    let dark = scan["hosts"].as_array().unwrap().iter().find(|h| h["reachable"] == false).unwrap()["id"].as_str().unwrap().to_string();
    let out = d.run(&["show", &format!("{dark}/codex-x"), "--json"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty() && String::from_utf8_lossy(&out.stderr).contains("unreachable"), "{out:?}");
    // An agent whose probe failed (the 8x6 demo has one): verdict unknown, `effective`,
    // `probes` and `config_redacted` null, the plan's attention says why.
    let big = Demo { dir: tempfile::tempdir().unwrap(), scale: "8x6" };
    let unknown = big.json(&["show", &of(&big.json(&["scan", "--json"]), "unknown"), "--json"]);
    check("show", &unknown);
    assert!(unknown["effective"].is_null() && unknown["probes"].is_null() && unknown["config_redacted"].is_null(), "{unknown}");
    assert_eq!(unknown["plan"]["attention"].as_array().unwrap().len(), 1, "{unknown}");

    let saved = d.dir.path().join("fix.plan");
    let plan = d.json(&["plan", "--json", "--out", saved.to_str().unwrap()]);
    check("plan", &plan);
    assert!(!plan["agents"].as_array().unwrap().is_empty(), "a plan with changes is covered");
    check("saved-plan", &serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap());

    let apply = d.json(&["apply", "--plan", saved.to_str().unwrap(), "--yes", "--json"]);
    check("apply", &apply);
    check("runs", &d.json(&["runs", "--json"]));
    // One run, agent by agent (`outcomes`).
    let one = d.json(&["runs", apply["run_id"].as_str().unwrap(), "--json"]);
    check("runs", &one);
    assert!(!one["runs"][0]["outcomes"].as_array().unwrap().is_empty(), "{one}");
    check("report", &d.json(&["report", "--format", "json"]));
    check("verify", &d.json(&["verify", "--json"]));
    let rollback = d.json(&["rollback", "--run", apply["run_id"].as_str().unwrap(), "--yes", "--json"]);
    check("rollback", &rollback);
    // The state after a rollback reads the same way.
    check("runs", &d.json(&["runs", "--json"]));
}

#[test]
fn a_schema_rejects_what_its_document_must_not_be() {
    let d = Demo { dir: tempfile::tempdir().unwrap(), scale: "3x3" };
    let mut scan = d.json(&["scan", "--json"]);
    scan["hosts"][0]["agents"][0]["verdict"] = "fine".into();
    let v = jsonschema::options().with_retriever(Local).build(&schema("scan")).unwrap();
    assert!(!v.is_valid(&scan), "an unknown verdict passes");
    let mut plan = d.json(&["plan", "--json"]);
    plan["format"] = "codex-fleet/scan".into();
    assert!(!jsonschema::options().with_retriever(Local).build(&schema("plan")).unwrap().is_valid(&plan), "a scan's format passes as a plan");
    // show: the agent's part is scan's (through the $ref), the plan is for one agent.
    let id = scan["hosts"].as_array().unwrap().iter().flat_map(|h| h["agents"].as_array().unwrap()).next().unwrap()["id"].as_str().unwrap().to_string();
    let show = d.json(&["show", &id, "--json"]);
    check("show", &show);
    let v = validator("show");
    for (what, bad) in [
        ("an unknown verdict", set(&show, "/verdict", "fine".into())),
        ("a plan of two agents", set(&show, "/plan/agents", { let a = serde_json::json!({ "id": "a", "name": "a", "host": "h", "files": [], "restart": false }); serde_json::json!([a.clone(), a]) })),
        ("no config_redacted", without(&show, "config_redacted")),
        ("a plan's format", set(&show, "/format", "codex-fleet/plan".into())),
    ] {
        assert!(!v.is_valid(&bad), "show: {what} passes");
    }
}

fn validator(name: &str) -> jsonschema::Validator {
    jsonschema::options().with_retriever(Local).build(&schema(name)).unwrap()
}

/// `doc` with the value at the JSON pointer `at` replaced.
fn set(doc: &Value, at: &str, v: Value) -> Value {
    let mut d = doc.clone();
    *d.pointer_mut(at).unwrap_or_else(|| panic!("no {at} in {doc}")) = v;
    d
}

/// `doc` without its top-level `key`.
fn without(doc: &Value, key: &str) -> Value {
    let mut d = doc.clone();
    assert!(d.as_object_mut().unwrap().remove(key).is_some(), "no {key} in {doc}");
    d
}

/// Contexts as an operator keeps them (see tests/cli_context.rs): the current one, one with
/// rollout defaults and a profile, a read-only one.
const CONTEXTS: &str = r#"current_context = "small"

[contexts.small]
source = "demo"
demo_scale = "2x3"
demo_latency = 1

[contexts.other]
source = "demo"
demo_latency = 1
canary = 2
wave = 1
profile = "ctx-profile"

[contexts.prod-ro]
source = "docker"
read_only = true
"#;

#[test]
fn context_list_and_show_match_their_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No config file: no contexts, nothing current.
    let none = json(d, &["context", "list", "--json"], &[]);
    check("context-list", &none);
    assert!(none["contexts"].as_array().unwrap().is_empty() && none["current"].is_null(), "{none}");
    let none = json(d, &["context", "show", "--json"], &[]);
    check("context-show", &none);
    assert!(none["context"].is_null() && none["context_origin"].is_null(), "{none}");

    std::fs::create_dir_all(d.join("codex-fleet")).unwrap();
    std::fs::write(d.join("codex-fleet/config.toml"), CONTEXTS).unwrap();
    let list = json(d, &["context", "list", "--json"], &[]);
    check("context-list", &list);
    assert_eq!(list["contexts"].as_array().unwrap().len(), 3, "{list}");
    assert_eq!(list["current"], "small");
    // Every origin there is: the file's current context, a flag, the tool's environment
    // variable, the context, the built-in default; a named context; a read-only one.
    let mut origins = std::collections::BTreeSet::new();
    for (args, env) in [
        (&["context", "show", "--json"][..], &[][..]),
        (&["--context", "other", "--demo-scale", "5x1", "context", "show", "--json"], &[("AWS_REGION", "eu-west-1")]),
        (&["context", "show", "prod-ro", "--json"], &[]),
    ] {
        let show = json(d, args, env);
        check("context-show", &show);
        assert!(show["context"].is_string(), "{args:?}: {show}");
        origins.insert(show["context_origin"].as_str().unwrap().to_string());
        for s in show["settings"].as_array().unwrap() {
            origins.insert(s["origin"].as_str().unwrap().split(' ').next().unwrap().to_string());
        }
    }
    let want = ["built-in", "context", "current_context", "env", "flag"];
    assert_eq!(origins.into_iter().collect::<Vec<_>>(), want, "the origins covered");

    // What each shape must not be.
    let show = json(d, &["context", "show", "--json"], &[]);
    let v = validator("context-show");
    for (what, bad) in [
        ("an origin of no kind", set(&show, "/settings/0/origin", "somewhere".into())),
        ("a setting of no key", set(&show, "/settings/0/key", "colour".into())),
        ("no settings", without(&show, "settings")),
    ] {
        assert!(!v.is_valid(&bad), "context-show: {what} passes");
    }
    let v = validator("context-list");
    assert!(!v.is_valid(&set(&list, "/contexts/0/source", "ssh".into())), "context-list: an unknown source passes");
    assert!(!v.is_valid(&set(&list, "/contexts/0/name", "a b".into())), "context-list: a name no file can hold passes");
}

#[test]
fn fix_config_matches_its_schema_fixed_already_fixed_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let copy = |fixture: &str| -> String {
        let p = d.join(fixture);
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config").join(fixture), &p).unwrap();
        p.to_str().unwrap().to_string()
    };
    // Fixed and written: a backup, repaired duplicate lines, keys left in other tables.
    let p = copy("hotpatch-mixed.toml");
    let fixed = json(d, &["fix-config", "--json", "--write", &p], &[]);
    check("fix-config", &fixed);
    assert!(fixed["changed"] == true && fixed["written"] == true && fixed["backup"].is_string(), "{fixed}");
    assert!(!fixed["repaired_lines"].as_array().unwrap().is_empty(), "{fixed}");
    assert!(fixed["misplaced"][0]["location"]["line"].is_u64(), "{fixed}");
    // The same file again: nothing to change, nothing written.
    let again = json(d, &["fix-config", "--json", "--write", &p], &[]);
    check("fix-config", &again);
    assert!(again["changed"] == false && again["written"] == false && again["backup"].is_null(), "{again}");
    let already = json(d, &["fix-config", "--json", &copy("already-fixed.toml")], &[]);
    check("fix-config", &already);
    assert_eq!(already["diff"], "", "{already}");
    // Refused (exit 2, a document all the same): not a shape it repairs, and no file at all.
    let refused = [
        vec!["fix-config".to_string(), "--json".into(), "--write".into(), copy("garbage.refused.toml")],
        vec!["fix-config".into(), "--json".into(), d.join("absent.toml").to_str().unwrap().into()],
    ];
    for args in &refused {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(d, &args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let v = stdout_json(&args, &out);
        check("fix-config", &v);
        assert!(v["error"].is_string(), "{v}");
    }

    // What each shape must not be.
    let v = validator("fix-config");
    let refusal = stdout_json(&[], &run(d, &refused[0].iter().map(String::as_str).collect::<Vec<_>>(), &[]));
    for (what, bad) in [
        ("a refusal that changed the file", set(&refusal, "/changed", true.into())),
        ("a refusal that wrote it", set(&refusal, "/written", true.into())),
        ("a fix without its diff", without(&fixed, "diff")),
        ("changes that are no list", set(&fixed, "/changes", Value::Null)),
        ("a fix that is also a refusal", { let mut x = fixed.clone(); x["error"] = "no".into(); x }),
        ("a repaired line 0", set(&fixed, "/repaired_lines/0", 0.into())),
        ("a context-show's format", set(&fixed, "/format", "codex-fleet/context-show".into())),
    ] {
        assert!(!v.is_valid(&bad), "fix-config: {what} passes");
    }
}

#[test]
fn each_schema_names_its_format_and_the_codes_are_the_diagnosis_codes() {
    for e in std::fs::read_dir(schema_dir()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().strip_suffix(".schema.json").unwrap().to_string();
        let s = schema(&name);
        assert_eq!(s["$id"], format!("{BASE}{name}.schema.json"), "{name}: $id");
        jsonschema::meta::validate(&s).unwrap_or_else(|e| panic!("{name}: not a valid schema: {e}"));
        if name != "saved-plan" {
            assert_eq!(s["properties"]["format"]["const"], format!("codex-fleet/{name}"), "{name}: format");
            assert_eq!(s["properties"]["version"]["const"], 1, "{name}: version");
        }
    }
    let codes: Vec<String> = schema("scan")["$defs"]["code"]["enum"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    let want: Vec<String> = Code::ALL.iter().map(|c| c.as_str().to_string()).collect();
    assert_eq!(codes, want, "docs/schema/scan.schema.json's codes and diagnose::Code::ALL differ");
}
