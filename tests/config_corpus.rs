//! The fixer over a corpus of real-world config.toml shapes, against checked-in golden
//! outputs (`UPDATE_GOLDEN=1 cargo test --test config_corpus` rewrites them; review the diff).

use std::fs;
use std::path::{Path, PathBuf};

use codex_fleet::codex::diff::unified_diff;
use codex_fleet::codex::fix::{fix, FixOptions};

/// Secret values planted in the corpus: none may ever show in a diff.
const PLANTED_SECRETS: &[&str] = &[
    "mmx-7f3c9a1b2d4e6f8091a2b3c4d5e6f708",
    "eyJhbGciOiJIUzI1NiJ9",
    "mol_live_9d8c7b6a5f4e3d2c1b0a",
];

fn corpus() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir("tests/fixtures/config")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    assert!(v.len() >= 20, "corpus went missing");
    v
}

fn golden(name: &str) -> PathBuf {
    Path::new("tests/fixtures/config-golden").join(name)
}

fn check_golden(path: PathBuf, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with UPDATE_GOLDEN=1 and review", path.display()));
    assert_eq!(actual, expected, "{} differs from the fixer's output", path.display());
}

#[test]
fn corpus_matches_golden_outputs() {
    for input in corpus() {
        let name = input.file_name().unwrap().to_str().unwrap().to_string();
        let text = fs::read_to_string(&input).unwrap();
        let result = fix(&text, &FixOptions::default());
        if name.contains(".refused.") {
            let p = result.expect_err(&format!("{name} must be refused"));
            check_golden(golden(&name.replace(".toml", ".txt")), &format!("{p}\n"));
            continue;
        }
        let out = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        check_golden(golden(&name), &out.text);
        let diff = unified_diff("/home/agent/.codex/config.toml", &text, &out.text);
        check_golden(golden(&name.replace(".toml", ".diff")), &diff);
        for s in PLANTED_SECRETS {
            assert!(!diff.contains(s), "{name}: secret in diff");
        }
        // Idempotent: a second pass changes nothing, to the byte.
        let again = fix(&out.text, &FixOptions::default()).unwrap();
        assert!(!again.changed, "{name}: second pass changed:\n{}", again.text);
        assert_eq!(again.text, out.text);
    }
}

#[test]
fn fixed_keys_once_at_top_level() {
    for input in corpus() {
        let name = input.file_name().unwrap().to_str().unwrap();
        if name.contains(".refused.") {
            continue;
        }
        let out = fix(&fs::read_to_string(&input).unwrap(), &FixOptions::default()).unwrap();
        let first_table = out
            .text
            .lines()
            .position(|l| l.trim_start().starts_with('['))
            .unwrap_or(usize::MAX);
        for key in ["sandbox_mode", "approval_policy"] {
            let at: Vec<usize> = out
                .text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.trim_start().starts_with(key))
                .map(|(i, _)| i)
                .collect();
            // Inactive profiles may keep their own copy; root copies are exactly one.
            let root: Vec<&usize> = at.iter().filter(|i| **i < first_table).collect();
            assert_eq!(root.len(), 1, "{name}: {key} at lines {at:?}\n{}", out.text);
        }
    }
}

#[test]
fn misplaced_non_fixed_keys_are_left_and_reported() {
    let text = fs::read_to_string("tests/fixtures/config/chatgpt-subscription.toml").unwrap();
    let out = fix(&text, &FixOptions::default()).unwrap();
    let keys: Vec<&str> = out.misplaced.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["cli_auth_credentials_store", "forced_login_method"]);
    assert!(out.text.contains("cli_auth_credentials_store=\"file\""));
}
