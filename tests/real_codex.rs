//! The real codex binaries judge the fixer: every fixed corpus file, given to
//! `codex debug prompt-input` (no model, no network, ~0.2 s), must make codex itself say
//! `danger-full-access` + `never`. A matrix of real releases from PyPI is asked (the versions
//! scripts/test.sh caches; table in docs/codex-versions.md):
//! - fixed FOR a version (`FixOptions::codex_version`, what `plan` does with the probe's
//!   `codex --version`): that version must accept the result and say fixed, no exception;
//! - fixed for an unknown version: every version must say fixed, or refuse with exactly its
//!   own measured refusal of an input feature the fixer keeps when it cannot know (the legacy
//!   `profile =` selector, refused from 0.134 on);
//! - every input the fixer refuses, every version refuses too (the fixer refuses whatever
//!   codex refuses, and codex refuses whatever the fixer refuses).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use codex_fleet::codex::fix::{fix, FixOptions};
use codex_fleet::codex::version::CodexVersion;

/// The codex releases the fixer is judged by (keep in step with CODEX_VERSIONS in scripts/test.sh).
const MATRIX: [&str; 6] = ["0.133.0", "0.136.0", "0.144.4", "0.149.0", "0.153.4", "0.163.0"];

struct Verdict {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Verdict {
    fn says_fixed(&self) -> bool {
        self.ok
            && self.stdout.contains("`sandbox_mode` is `danger-full-access`")
            && self.stdout.contains("Approval policy is currently never")
    }
    fn sandbox_line(&self) -> String {
        self.stdout.lines().filter(|l| l.contains("sandbox_mode")).collect::<Vec<_>>().join("\n")
    }
}

fn ask_codex(bin: &Path, config: &str) -> Verdict {
    let home = common::codex_safe_tempdir();
    fs::write(home.path().join("config.toml"), config).unwrap();
    let out = Command::new(bin)
        .args(["debug", "prompt-input"])
        .current_dir(home.path())
        .env("CODEX_HOME", home.path())
        .env("HOME", home.path())
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    Verdict {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

fn corpus() -> Vec<PathBuf> {
    let mut inputs: Vec<_> = fs::read_dir("tests/fixtures/config").unwrap().map(|e| e.unwrap().path()).collect();
    inputs.sort();
    assert!(inputs.len() >= 25, "corpus went missing");
    inputs
}

/// The only refusal a version may answer a version-agnostic fix with: its measured refusal of
/// the legacy `profile = "NAME"` selector (kept when the version is unknown: 0.133 honours it).
fn own_refusal(v: CodexVersion, fixed: &str, stderr: &str) -> bool {
    v.refuses_legacy_profile()
        && fixed.lines().any(|l| l.trim_start().starts_with("profile ") || l.trim_start().starts_with("profile="))
        && stderr.contains("legacy `profile = ")
        && stderr.contains("is no longer supported")
}

fn judge(version: &str) {
    let Some(bin) = common::codex_bin(version) else { return };
    let v = CodexVersion::parse(version).unwrap();
    let (mut judged, mut own_refusals, mut refused) = (0, Vec::new(), 0);
    for input in corpus() {
        let name = input.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(&input).unwrap();
        if name.contains(".refused.") {
            // The fixer refuses it (tests/config_corpus.rs); codex must refuse it as well.
            assert!(fix(&text, &FixOptions::default()).is_err(), "{name}: the fixer accepts it");
            let verdict = ask_codex(&bin, &text);
            assert!(!verdict.ok, "codex {version} accepts {name}, which the fixer refuses:\n{}", verdict.sandbox_line());
            refused += 1;
            continue;
        }
        // Fixed for this version: no exception.
        let opts = FixOptions { codex_version: Some(v), ..Default::default() };
        let fixed = fix(&text, &opts).unwrap_or_else(|e| panic!("{name} for codex {version}: {e}")).text;
        let verdict = ask_codex(&bin, &fixed);
        assert!(
            verdict.says_fixed(),
            "codex {version} on {name} fixed for {version}: ok={} {}\n{}\n--- config ---\n{fixed}",
            verdict.ok,
            verdict.sandbox_line(),
            verdict.stderr.lines().next().unwrap_or("")
        );
        judged += 1;
        // Fixed for an unknown version.
        let any = fix(&text, &FixOptions::default()).unwrap().text;
        if any != fixed {
            let verdict = ask_codex(&bin, &any);
            if !verdict.says_fixed() {
                assert!(
                    !verdict.ok && own_refusal(v, &any, &verdict.stderr),
                    "codex {version} on {name} fixed for any version: {}\n{}",
                    verdict.sandbox_line(),
                    verdict.stderr.lines().next().unwrap_or("")
                );
                own_refusals.push(name);
            }
        }
    }
    eprintln!(
        "codex {version}: {judged} fixed files say danger-full-access + never; {refused} refused inputs refused by codex too; \
         version-agnostic fixes it refuses with its own measured refusal: {own_refusals:?}"
    );
    assert!(judged >= 20, "too few files judged by codex {version}: {judged}");
    assert!(refused >= 5, "too few refused inputs checked with codex {version}: {refused}");
}

#[test]
fn codex_0_133_0_says_fixed() {
    judge(MATRIX[0]);
}

#[test]
fn codex_0_136_0_says_fixed() {
    judge(MATRIX[1]);
}

#[test]
fn codex_0_144_4_says_fixed() {
    judge(MATRIX[2]);
}

#[test]
fn codex_0_149_0_says_fixed() {
    judge(MATRIX[3]);
}

#[test]
fn codex_0_153_4_says_fixed() {
    judge(MATRIX[4]);
}

#[test]
fn codex_0_163_0_says_fixed() {
    judge(MATRIX[5]);
}

/// The version differences the fixer acts on (src/codex/version.rs) are what the real releases
/// do: each boundary is asked of every release in the matrix, so a new release that changes
/// its mind fails here rather than in the field.
#[test]
fn measured_version_differences_hold() {
    let selector = "profile = \"p\"\nsandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n[profiles.p]\nsandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n";
    let untrusted = "sandbox_mode = \"danger-full-access\"\napproval_policy = \"untrusted\"\n";
    for version in MATRIX {
        let Some(bin) = common::codex_bin(version) else { return };
        let v = CodexVersion::parse(version).unwrap();
        let s = ask_codex(&bin, selector);
        assert_eq!(!s.ok, v.refuses_legacy_profile(), "codex {version} on a legacy selector: ok={} {}", s.ok, s.stderr.lines().next().unwrap_or(""));
        if !s.ok {
            assert!(s.stderr.contains("legacy `profile = \"p\"` config is no longer supported"), "{}", s.stderr);
        }
        let u = ask_codex(&bin, untrusted);
        assert_eq!(!u.ok, v.refuses_untrusted(), "codex {version} on untrusted: ok={} {}", u.ok, u.stderr.lines().next().unwrap_or(""));
        if !u.ok {
            assert!(u.stderr.contains("approval_policy = \"untrusted\" is no longer supported"), "{}", u.stderr);
        }
        // What the fixer does about both, for this version: codex accepts it and says fixed.
        for t in [selector, untrusted] {
            let fixed = fix(t, &FixOptions { codex_version: Some(v), ..Default::default() }).unwrap().text;
            assert!(ask_codex(&bin, &fixed).says_fixed(), "codex {version} on\n{fixed}");
        }
    }
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
