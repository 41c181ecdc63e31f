//! Real `--json` outputs of the binary on `--demo` (scan, plan, the saved plan file, apply, runs,
//! report, verify, rollback) validated against docs/schema/ with a JSON Schema validator; each
//! schema names its document's `format`, and the finding codes a schema accepts are exactly the
//! ones the diagnosis raises.

mod common;

use std::process::{Command, Stdio};

use codex_fleet::diagnose::Code;
use serde_json::Value;

use common::schema::{check, schema, schema_dir, Local, BASE};

struct Demo {
    dir: tempfile::TempDir,
}

impl Demo {
    fn json(&self, args: &[&str]) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_codex-fleet"))
            .args(["--demo", "--demo-latency", "1", "--demo-scale", "3x3", "--demo-state"])
            .arg(self.dir.path().join("demo.json"))
            .args(args)
            .env("CODEX_FLEET_STATE_DIR", self.dir.path().join("state"))
            .env("XDG_CONFIG_HOME", self.dir.path())
            .env_remove("CODEX_FLEET_CONTEXT")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.code().is_some_and(|c| c < 2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}"))
    }
}

#[test]
fn every_json_output_of_a_demo_session_matches_its_schema() {
    let d = Demo { dir: tempfile::tempdir().unwrap() };
    let scan = d.json(&["scan", "--json"]);
    check("scan", &scan);
    assert!(scan["hosts"].as_array().unwrap().iter().any(|h| h["reachable"] == false), "an unreachable host is covered");

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
    let d = Demo { dir: tempfile::tempdir().unwrap() };
    let mut scan = d.json(&["scan", "--json"]);
    scan["hosts"][0]["agents"][0]["verdict"] = "fine".into();
    let v = jsonschema::options().with_retriever(Local).build(&schema("scan")).unwrap();
    assert!(!v.is_valid(&scan), "an unknown verdict passes");
    let mut plan = d.json(&["plan", "--json"]);
    plan["format"] = "codex-fleet/scan".into();
    assert!(!jsonschema::options().with_retriever(Local).build(&schema("plan")).unwrap().is_valid(&plan), "a scan's format passes as a plan");
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
