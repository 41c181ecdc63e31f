//! `codex-fleet fix-config` through the real binary: exit statuses, output, writes.

use std::fs;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_codex-fleet")).args(args).output().unwrap()
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn copy_fixture(name: &str) -> (tempfile::TempDir, String) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("config.toml");
    fs::copy(format!("tests/fixtures/config/{name}"), &p).unwrap();
    (d, p.to_str().unwrap().to_string())
}

#[test]
fn diff_by_default_redacted_and_nothing_written() {
    let (_d, p) = copy_fixture("minimax-provider.toml");
    let before = fs::read(&p).unwrap();
    let o = run(&["fix-config", &p]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    let out = s(&o.stdout);
    assert!(out.contains("+sandbox_mode = \"danger-full-access\""), "{out}");
    for secret in ["mmx-7f3c9a1b2d4e6f8091a2b3c4d5e6f708", "mol_live_9d8c7b6a5f4e3d2c1b0a", "eyJhbGciOiJIUzI1NiJ9"] {
        assert!(!out.contains(secret) && !s(&o.stderr).contains(secret));
    }
    assert_eq!(fs::read(&p).unwrap(), before);
}

#[test]
fn check_exits_1_when_a_change_is_needed_and_0_when_fixed() {
    let (_d, p) = copy_fixture("pr77-workaround.toml");
    assert_eq!(run(&["fix-config", "--check", &p]).status.code(), Some(1));
    let (_d2, p2) = copy_fixture("already-fixed.toml");
    let o = run(&["fix-config", "--check", &p2]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
}

#[test]
fn write_is_atomic_backed_up_and_idempotent() {
    let (d, p) = copy_fixture("hotpatch-mixed.toml");
    let original = fs::read(&p).unwrap();
    let o = run(&["fix-config", "--write", &p]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    let expected = fs::read_to_string("tests/fixtures/config-golden/hotpatch-mixed.toml").unwrap();
    assert_eq!(fs::read_to_string(&p).unwrap(), expected);
    let backups: Vec<_> = fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("config.toml.bak-"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(backups[0].ends_with('Z'), "UTC timestamp: {}", backups[0]);
    assert_eq!(fs::read(d.path().join(&backups[0])).unwrap(), original);
    // A second --write changes nothing and makes no second backup.
    let o = run(&["fix-config", "--write", &p]);
    assert_eq!(o.status.code(), Some(0));
    assert!(s(&o.stderr).contains("already fixed"));
    assert_eq!(fs::read_dir(d.path()).unwrap().count(), 2);
    assert_eq!(run(&["fix-config", "--check", &p]).status.code(), Some(0));
}

#[test]
fn stdout_prints_the_whole_fixed_document() {
    let (_d, p) = copy_fixture("crlf.toml");
    let o = run(&["fix-config", "--stdout", &p]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(o.stdout, fs::read("tests/fixtures/config-golden/crlf.toml").unwrap());
}

#[test]
fn refusals_exit_2_naming_line_and_column() {
    let (_d, p) = copy_fixture("garbage.refused.toml");
    let o = run(&["fix-config", "--write", &p]);
    assert_eq!(o.status.code(), Some(2));
    let err = s(&o.stderr);
    assert!(err.contains(&format!("{p}:2:6:")), "{err}");
    assert!(err.contains("nothing written"), "{err}");
    let o = run(&["fix-config", "/nonexistent/config.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(s(&o.stderr).contains("/nonexistent/config.toml: cannot read"));
}

#[test]
fn usage_errors_and_read_only_exit_2() {
    let (_d, p) = copy_fixture("pr77-workaround.toml");
    let before = fs::read(&p).unwrap();
    assert_eq!(run(&["fix-config", "--check", "--write", &p]).status.code(), Some(2));
    assert_eq!(run(&["fix-config", "--stdout", "--write", &p]).status.code(), Some(2));
    let o = run(&["--read-only", "fix-config", "--write", &p]);
    assert_eq!(o.status.code(), Some(2));
    assert!(s(&o.stderr).contains("--read-only"));
    let o = run(&["fix-config", "--write", &p, "--read-only"]);
    assert_eq!(o.status.code(), Some(2), "global flags after the command too");
    assert_eq!(fs::read(&p).unwrap(), before);
    assert_eq!(run(&["fix-config"]).status.code(), Some(2));
}

#[test]
fn json_output() {
    let (_d, p) = copy_fixture("chatgpt-subscription.toml");
    let o = run(&["fix-config", "--json", &p]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["changed"], true);
    assert_eq!(v["written"], false);
    assert_eq!(v["misplaced"][0]["key"], "cli_auth_credentials_store");
    assert!(v["diff"].as_str().unwrap().contains("+approval_policy = \"never\""));
}

#[test]
fn json_refusal_is_a_json_document_and_nothing_is_written() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("config.toml");
    // Not TOML codex can read: a key with no value.
    fs::write(&p, "sandbox_mode\n").unwrap();
    let o = run(&["fix-config", "--json", "--write", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", s(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON document on stdout");
    assert_eq!(v["format"], "codex-fleet/fix-config");
    assert_eq!(v["written"], false);
    assert!(v["error"].as_str().unwrap().contains("nothing written"), "{v}");
    assert_eq!(fs::read(&p).unwrap(), b"sandbox_mode\n");
    let missing = run(&["fix-config", "--json", "/nonexistent/config.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&missing.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("cannot read"), "{v}");
}

#[test]
fn help_lists_only_what_works() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let h = s(&o.stdout);
    for cmd in ["fix-config", "scan", "show", "plan", "apply", "runs", "verify", "rollback", "report"] {
        assert!(h.contains(&format!("  {cmd} ")), "{cmd} missing from --help:\n{h}");
    }
    assert!(h.contains("--docker"), "{h}");
    for sub in ["fix-config", "scan", "apply", "rollback"] {
        assert_eq!(run(&[sub, "--help"]).status.code(), Some(0), "{sub} --help");
    }
}

/// A byte-order mark codex refuses (not at the start) is refused with line and column, and the
/// file is not touched; `--codex-version` makes the fix follow what that release accepts.
#[test]
fn bom_refused_and_codex_version_followed() {
    let (_d, p) = copy_fixture("bom-mid-file.refused.toml");
    let before = fs::read(&p).unwrap();
    let o = run(&["fix-config", "--write", &p]);
    assert_eq!(o.status.code(), Some(2));
    assert!(s(&o.stderr).contains(&format!("{p}:3:2:")), "{}", s(&o.stderr));
    assert_eq!(fs::read(&p).unwrap(), before, "nothing written");

    let (_d2, p) = copy_fixture("legacy-profile.toml");
    let o = run(&["fix-config", "--stdout", "--codex-version", "0.163.0", &p]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    assert!(!s(&o.stdout).contains("profile = \"review\""), "{}", s(&o.stdout));
    assert!(s(&o.stderr).contains("codex 0.163.0 refuses it"), "{}", s(&o.stderr));
    let o = run(&["fix-config", "--stdout", "--codex-version", "0.133.0", &p]);
    assert!(s(&o.stdout).contains("profile = \"review\""), "0.133 honours the selector");
    let o = run(&["fix-config", "--codex-version", "latest", &p]);
    assert_eq!(o.status.code(), Some(2), "a version that is not one is a usage error");
}
