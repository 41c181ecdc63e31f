//! `completions` and `man` through the binary: docs/man/ is what `man --out-dir` generates today
//! (byte for byte, no page missing or left over), `man -l` renders every page without a
//! warning, and the bash script, sourced in a real bash, registers `codex-fleet` and completes a
//! subcommand prefix and a flag prefix.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_codex-fleet"))
}

fn ok(out: Output, what: &str) -> Vec<u8> {
    assert!(out.status.success(), "{what}: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn man_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/man")
}

fn pages(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn docs_man_is_what_the_binary_generates() {
    let tmp = tempfile::tempdir().unwrap();
    ok(bin().args(["man", "--out-dir"]).arg(tmp.path()).output().unwrap(), "man --out-dir");
    let fix = "regenerate them: cargo run -- man --out-dir docs/man";
    assert_eq!(pages(tmp.path()), pages(&man_dir()), "docs/man/ has other pages than the commands; {fix}");
    for p in pages(tmp.path()) {
        let want = std::fs::read(tmp.path().join(&p)).unwrap();
        let have = std::fs::read(man_dir().join(&p)).unwrap();
        assert!(want == have, "docs/man/{p} is stale; {fix}");
    }
    let stdout = ok(bin().arg("man").output().unwrap(), "man");
    assert_eq!(stdout, std::fs::read(man_dir().join("codex-fleet.1")).unwrap(), "`codex-fleet man` differs from docs/man/codex-fleet.1");
}

fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

#[test]
fn every_page_renders_with_man_without_warnings() {
    if !have("man") {
        common::require_or_skip::<()>("man (apt package man-db)");
        return;
    }
    for p in pages(&man_dir()) {
        let out = Command::new("man")
            .args(["--warnings", "-P", "cat", "-l"])
            .arg(man_dir().join(&p))
            .env("MANWIDTH", "80")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&ok(out.clone(), &format!("man -l {p}"))).into_owned();
        assert!(out.stderr.is_empty(), "man -l {p} warns:\n{}", String::from_utf8_lossy(&out.stderr));
        for section in ["NAME", "SYNOPSIS", "OPTIONS"] {
            assert!(text.contains(section), "man -l {p}: no {section}:\n{text}");
        }
        assert!(text.contains("--help"), "man -l {p} does not show the flags:\n{text}");
    }
    let top = String::from_utf8_lossy(&Command::new("man").args(["-P", "cat", "-l"]).arg(man_dir().join("codex-fleet.1")).output().unwrap().stdout)
        .into_owned();
    for sub in ["scan", "plan", "apply", "rollback", "fix-config", "completions"] {
        assert!(top.contains(sub), "codex-fleet(1) does not list `{sub}`:\n{top}");
    }
}

/// Source the bash script, then ask its completion function what `LINE` completes to.
fn bash_complete(script: &Path, words: &[&str]) -> (String, String) {
    let words_q: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let prog = format!(
        "source '{}' || exit 9\n\
         complete -p codex-fleet\n\
         COMP_WORDS=({})\n\
         COMP_CWORD={}\n\
         COMP_LINE='{}'\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         func=$(complete -p codex-fleet | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')\n\
         \"$func\" codex-fleet '{}' '{}'\n\
         echo ---\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        words_q.join(" "),
        words.len() - 1,
        words.join(" "),
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new("bash").args(["--norc", "--noprofile", "-c", &prog]).output().unwrap();
    let text = String::from_utf8(ok(out, "bash")).unwrap();
    let (spec, replies) = text.split_once("---\n").unwrap();
    (spec.to_string(), replies.to_string())
}

#[test]
fn bash_completion_loads_and_completes_commands_and_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("codex-fleet.bash");
    std::fs::write(&script, ok(bin().args(["completions", "bash"]).output().unwrap(), "completions bash")).unwrap();

    let (spec, replies) = bash_complete(&script, &["codex-fleet", "sc"]);
    assert!(spec.starts_with("complete ") && spec.trim_end().ends_with(" codex-fleet"), "complete -p: {spec}");
    let replies: Vec<&str> = replies.lines().collect();
    assert_eq!(replies, ["scan"], "`codex-fleet sc<TAB>`");

    let (_, replies) = bash_complete(&script, &["codex-fleet", "apply", "--ca"]);
    assert_eq!(replies.lines().collect::<Vec<_>>(), ["--canary"], "`codex-fleet apply --ca<TAB>`");

    let (_, replies) = bash_complete(&script, &["codex-fleet", "f"]);
    assert_eq!(replies.lines().collect::<Vec<_>>(), ["fix-config"], "`codex-fleet f<TAB>`");
}

#[test]
fn every_shell_gets_a_script_that_knows_the_commands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let text = String::from_utf8(ok(bin().args(["completions", shell]).output().unwrap(), shell)).unwrap();
        for word in ["codex-fleet", "fix-config", "rollback", "read-only"] {
            assert!(text.contains(word), "completions {shell}: no `{word}`");
        }
    }
    let out = bin().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}
