//! Property tests over generated config.toml documents: the fix parses, is effective, keeps
//! every unrelated key, value and comment, and a second pass is byte-identical. Refusals
//! never write.

use std::collections::BTreeMap;

use codex_fleet::codex::argv::CliOverrides;
use codex_fleet::codex::config::{effective, parse};
use codex_fleet::codex::fix::{fix, FixOptions};
use proptest::prelude::*;

/// One piece of a document, with what the fix may do to it.
#[derive(Debug, Clone)]
struct Piece {
    text: String,
    /// (dotted path, rendered value) pairs the fix must keep.
    keeps: Vec<(String, String)>,
    /// Comment lines the fix must keep.
    comments: Vec<String>,
}

fn root_piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        "[a-z]{3,8}".prop_map(|v| Piece {
            text: format!("model = \"{v}\"\n"),
            keeps: vec![("model".into(), format!("\"{v}\""))],
            comments: vec![]
        }),
        prop_oneof![Just("read-only"), Just("workspace-write"), Just("danger-full-access")].prop_map(|m| Piece {
            text: format!("sandbox_mode = \"{m}\"\n"),
            keeps: vec![],
            comments: vec![]
        }),
        prop_oneof![Just("on-request"), Just("on-failure"), Just("never")].prop_map(|m| Piece {
            text: format!("approval_policy = '{m}'\n"),
            keeps: vec![],
            comments: vec![]
        }),
        (1u32..5000).prop_map(|n| Piece {
            text: format!("project_doc_max_bytes = {n} # limit\n"),
            keeps: vec![("project_doc_max_bytes".into(), n.to_string())],
            comments: vec![]
        }),
        "[a-z ]{1,20}".prop_map(|c| Piece {
            text: format!("# note {c}\n"),
            keeps: vec![],
            comments: vec![format!("# note {c}")]
        }),
        Just(Piece { text: "sandbox_workspace_write.network_access = true\n".into(), keeps: vec![], comments: vec![] }),
    ]
}

fn table_piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        ("[a-z]{2,6}", "[a-z]{2,6}").prop_map(|(n, c)| Piece {
            text: format!("\n# server {n}\n[mcp_servers.{n}]\ncommand = \"{c}\"\n"),
            keeps: vec![(format!("mcp_servers.{n}.command"), format!("\"{c}\""))],
            comments: vec![format!("# server {n}")]
        }),
        ("[a-z]{2,6}", "[A-Za-z0-9]{24,30}").prop_map(|(n, s)| Piece {
            text: format!("[model_providers.{n}]\nbase_url = \"https://{n}.example\"\nenv_key = \"X_API_KEY\"\nexperimental_bearer_token = \"sk-{s}\"\n"),
            keeps: vec![
                (format!("model_providers.{n}.base_url"), format!("\"https://{n}.example\"")),
                (format!("model_providers.{n}.env_key"), "\"X_API_KEY\"".into()),
                (format!("model_providers.{n}.experimental_bearer_token"), format!("\"sk-{s}\"")),
            ],
            comments: vec![]
        }),
        "[a-z]{2,6}".prop_map(|n| Piece {
            text: format!("[mcp_servers.{n}.env]\nTOKEN_NAME = \"v\"\nsandbox_mode = \"danger-full-access\"\nforced_login_method = \"chatgpt\"\n"),
            keeps: vec![
                (format!("mcp_servers.{n}.env.TOKEN_NAME"), "\"v\"".into()),
                (format!("mcp_servers.{n}.env.forced_login_method"), "\"chatgpt\"".into()),
            ],
            comments: vec![]
        }),
        Just(Piece { text: "[sandbox_workspace_write]\nnetwork_access = true\n".into(), keeps: vec![], comments: vec![] }),
        Just(Piece {
            text: "[sandbox_workspace_write]\nnetwork_access = true\nwritable_roots = [\"/w\"]\n".into(),
            keeps: vec![("sandbox_workspace_write.writable_roots".into(), "[\"/w\"]".into())],
            comments: vec![]
        }),
        "[a-z]{2,6}".prop_map(|d| Piece {
            text: format!("[projects.\"/{d}\"]\ntrust_level = \"trusted\"\n"),
            keeps: vec![(format!("projects./{d}.trust_level"), "\"trusted\"".into())],
            comments: vec![]
        }),
    ]
}

/// A document: root pieces then table pieces (no duplicate tables), maybe CRLF, maybe with
/// hotpatch prepends on top.
fn document() -> impl Strategy<Value = (String, Vec<(String, String)>, Vec<String>)> {
    (
        prop::collection::vec(root_piece(), 0..6),
        prop::collection::vec(table_piece(), 0..5),
        0usize..4,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(roots, tables, prepends, crlf, dfa_hotpatch)| {
            let mut text = String::new();
            let mut keeps = Vec::new();
            let mut comments = Vec::new();
            let mut seen_keys = std::collections::HashSet::new();
            for p in roots {
                // Distinct root keys only (duplicates are the repair's business, tested apart).
                let key = p.text.split('=').next().unwrap().trim().to_string();
                if !p.text.starts_with('#') && !seen_keys.insert(key) {
                    continue;
                }
                text.push_str(&p.text);
                keeps.extend(p.keeps);
                comments.extend(p.comments);
            }
            let mut seen_tables = std::collections::HashSet::new();
            for p in tables {
                let header = p.text.lines().find(|l| l.starts_with('[')).unwrap().to_string();
                if header == "[sandbox_workspace_write]" && text.contains("sandbox_workspace_write.") {
                    continue;
                }
                if !seen_tables.insert(if header.starts_with("[sandbox_workspace_write") { "sws".into() } else { header }) {
                    continue;
                }
                text.push_str(&p.text);
                keeps.extend(p.keeps);
                comments.extend(p.comments);
            }
            let block = if dfa_hotpatch {
                "sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n"
            } else {
                "sandbox_mode = \"danger-full-access\"\n"
            };
            // Only prepend onto a document that does not already hold the keys at the root.
            if prepends > 0 && !text.lines().any(|l| l.starts_with("sandbox_mode") || l.starts_with("approval_policy")) {
                text = format!("{}{text}", block.repeat(prepends));
            }
            if crlf {
                text = text.replace('\n', "\r\n");
            }
            (text, keeps, comments)
        })
}

/// Every value in the document by dotted path, rendered as TOML.
fn flatten(text: &str) -> BTreeMap<String, String> {
    let doc: toml_edit::DocumentMut = text.parse().unwrap();
    let mut out = BTreeMap::new();
    fn walk(t: &dyn toml_edit::TableLike, path: String, out: &mut BTreeMap<String, String>) {
        for (k, v) in t.iter() {
            let p = if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
            match v.as_table_like() {
                Some(sub) if !v.is_value() || v.as_inline_table().is_some() => walk(sub, p, out),
                _ => {
                    out.insert(p, v.as_value().map(|v| v.clone().decorated("", "").to_string()).unwrap_or_default());
                }
            }
        }
    }
    walk(doc.as_table(), String::new(), &mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn fix_is_valid_effective_lossless_idempotent((text, keeps, comments) in document()) {
        let out = fix(&text, &FixOptions::default()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let doc = parse(&out.text).map_err(|e| TestCaseError::fail(format!("{e}\n{}", out.text)))?;
        let e = effective(&doc, &CliOverrides::default(), None);
        prop_assert!(e.is_fixed(), "{:?}\n{}", e, out.text);
        let flat = flatten(&out.text);
        for (k, v) in &keeps {
            prop_assert_eq!(flat.get(k), Some(v), "lost {} in\n{}", k, out.text);
        }
        for c in &comments {
            prop_assert!(out.text.contains(c.as_str()), "lost comment {c:?} in\n{}", out.text);
        }
        // Exactly the fix's keys and the removals it is allowed: nothing else disappears.
        let before: BTreeMap<String, String> = match parse(&text) { Ok(_) => flatten(&text), Err(_) => BTreeMap::new() };
        for (k, v) in &before {
            let allowed_gone = k.ends_with("sandbox_mode") || k.ends_with("approval_policy") || k.starts_with("sandbox_workspace_write.network_access");
            if !allowed_gone {
                prop_assert_eq!(flat.get(k), Some(v), "{} changed", k);
            }
        }
        if text.contains("\r\n") {
            prop_assert!(!out.text.replace("\r\n", "").contains('\n'), "line endings mixed");
        }
        let again = fix(&out.text, &FixOptions::default()).unwrap();
        prop_assert!(!again.changed);
        prop_assert_eq!(again.text, out.text);
    }

    #[test]
    fn refusals_name_a_place_and_never_write((text, _, _) in document(), junk in "[=\\[\\]\"]{1,3}", at in 0usize..1000) {
        // Break the document with junk on a line of its own.
        let lines: Vec<&str> = text.lines().collect();
        let at = at % (lines.len() + 1);
        let mut broken: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        broken.insert(at, junk.clone());
        let broken = broken.join("\n");
        prop_assume!(parse(&broken).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, &broken).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_codex-fleet"))
            .args(["fix-config", "--write"]).arg(&path).output().unwrap();
        prop_assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        prop_assert!(err.contains("config.toml:") && err.contains("nothing written"), "{}", err);
        prop_assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
        prop_assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a backup or temp file was left");
    }
}
