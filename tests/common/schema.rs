//! JSON documents checked against docs/schema/ with a JSON Schema validator (no network: `$ref`s
//! between the schemas resolve to the files).

use std::path::PathBuf;

use serde_json::Value;

pub const BASE: &str = "https://codex-fleet.invalid/schema/";

pub fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/schema")
}

pub fn schema(name: &str) -> Value {
    let p = schema_dir().join(format!("{name}.schema.json"));
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// `$ref`s between the schemas resolve to docs/schema/, never to the network.
pub struct Local;

impl jsonschema::Retrieve for Local {
    fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri.as_str().strip_prefix(BASE).ok_or_else(|| format!("not a codex-fleet schema: {uri}"))?;
        Ok(serde_json::from_slice(&std::fs::read(schema_dir().join(name))?)?)
    }
}

pub fn check(name: &str, doc: &Value) {
    let v = jsonschema::options().with_retriever(Local).build(&schema(name)).unwrap_or_else(|e| panic!("{name}.schema.json: {e}"));
    let errors: Vec<String> = v.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{name}: the output does not match docs/schema/{name}.schema.json:\n  {}", errors.join("\n  "));
}

