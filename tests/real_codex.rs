//! The real codex binaries judge the fixer: every fixed corpus file, given to
//! `codex debug prompt-input` (no model, no network, ~0.2 s), must make codex itself say
//! `danger-full-access` + `never`. Both the incident's generation (0.133) and the current one
//! (0.163) are asked. A version may reject an input for a reason the fix does not own (the
//! legacy `profile =` selector in >= 0.147, `default_permissions` in 0.13x): only those skip.

mod common;

use std::fs;
use std::process::Command;

use codex_fleet::codex::fix::{fix, FixOptions};

/// Errors a codex version raises for config features of another generation.
fn version_rejects(version: &str, stderr: &str, config: &str) -> bool {
    let modern = !version.starts_with("0.13");
    (modern && config.lines().any(|l| l.trim_start().starts_with("profile")) && stderr.contains("profile"))
        || (!modern && config.contains("default_permissions") && stderr.contains("default_permissions"))
        || (!modern && stderr.contains("unknown built-in profile"))
}

struct Verdict {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn ask_codex(bin: &std::path::Path, config: &str) -> Verdict {
    let home = common::codex_safe_tempdir();
    fs::write(home.path().join("config.toml"), config).unwrap();
    let out = Command::new(bin)
        .args(["debug", "prompt-input"])
        .env("CODEX_HOME", home.path())
        .env("HOME", home.path())
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    Verdict {
        ok: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        stdout,
    }
}

fn judge(version: &str) {
    let Some(bin) = common::codex_bin(version) else { return };
    let mut judged = 0;
    let mut skipped = Vec::new();
    let mut inputs: Vec<_> = fs::read_dir("tests/fixtures/config").unwrap().map(|e| e.unwrap().path()).collect();
    inputs.sort();
    for input in inputs {
        let name = input.file_name().unwrap().to_string_lossy().to_string();
        if name.contains(".refused.") {
            continue;
        }
        let fixed = fix(&fs::read_to_string(&input).unwrap(), &FixOptions::default()).unwrap().text;
        let v = ask_codex(&bin, &fixed);
        if !v.ok && version_rejects(version, &v.stderr, &fixed) {
            skipped.push(name);
            continue;
        }
        assert!(v.ok, "codex {version} rejected the fixed {name}:\n{}\n--- config ---\n{fixed}", v.stderr);
        assert!(
            v.stdout.contains("`sandbox_mode` is `danger-full-access`"),
            "codex {version} on fixed {name}: not danger-full-access:\n{}",
            v.stdout.lines().filter(|l| l.contains("sandbox")).collect::<Vec<_>>().join("\n")
        );
        assert!(
            v.stdout.contains("Approval policy is currently never"),
            "codex {version} on fixed {name}: approval not never"
        );
        judged += 1;
    }
    eprintln!("codex {version}: judged {judged} fixed files, skipped {skipped:?} (rejected by this version)");
    assert!(judged >= 15, "too few files judged by codex {version}: {judged}");
}

#[test]
fn codex_0_133_says_fixed() {
    judge("0.133.0");
}

#[test]
fn codex_0_163_says_fixed() {
    judge("0.163.0");
}

/// The judge can fail: the unfixed incident shapes are NOT danger-full-access to codex.
#[test]
fn codex_sees_the_incident_states_as_broken() {
    let Some(bin) = common::codex_bin("0.133.0") else { return };
    let pr77 = fs::read_to_string("tests/fixtures/config/pr77-workaround.toml").unwrap();
    let v = ask_codex(&bin, &pr77);
    assert!(v.ok, "{}", v.stderr);
    assert!(v.stdout.contains("`sandbox_mode` is `workspace-write`"));
    let dup = fs::read_to_string("tests/fixtures/config/hotpatch-dfa-x3.toml").unwrap();
    let v = ask_codex(&bin, &dup);
    assert!(!v.ok, "codex must refuse duplicate keys");
    assert!(v.stderr.contains("duplicate key"), "{}", v.stderr);
    let trapped = fs::read_to_string("tests/fixtures/config/appended-into-table.toml").unwrap();
    let v = ask_codex(&bin, &trapped);
    assert!(v.ok, "{}", v.stderr);
    assert!(!v.stdout.contains("`sandbox_mode` is `danger-full-access`"), "key after a table header is ignored");
}
