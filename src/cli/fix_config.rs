//! `codex-fleet fix-config FILE`: the durable fix for one local config.toml.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{fail, GlobalArgs, EXIT_ATTENTION, EXIT_OK};
use crate::codex::diff::unified_diff;
use crate::codex::fix::{fix, FixOptions};
use crate::codex::version::CodexVersion;
use crate::fsutil::{replace_with_backup, utc_stamp};

#[derive(Debug, Args)]
#[command(after_help = "Exit status: 0 ok (or nothing to change); 1 with --check when a change is needed; \
2 when FILE cannot be read or fixed safely (the message names line and column; nothing is written).")]
pub struct FixConfigArgs {
    /// The config.toml to fix.
    pub file: PathBuf,
    /// Print the whole fixed document instead of the diff.
    #[arg(long, conflicts_with_all = ["write", "check"])]
    pub stdout: bool,
    /// Rewrite FILE in place (atomically), keeping the original as FILE.bak-<UTC timestamp>.
    #[arg(long, conflicts_with = "check")]
    pub write: bool,
    /// Exit 1 when a change is needed (prints the diff); writes nothing.
    #[arg(long)]
    pub check: bool,
    /// The legacy profile codex is started with (`codex --profile NAME`): its keys are fixed too.
    #[arg(long, value_name = "NAME")]
    pub codex_profile: Option<String>,
    /// The codex release that reads FILE (e.g. 0.163.0): nothing it refuses is written (a
    /// legacy `profile = ...` selector is removed for 0.134 and later). Default: any release.
    #[arg(long, value_name = "VERSION", value_parser = parse_codex_version)]
    pub codex_version: Option<CodexVersion>,
}

fn parse_codex_version(s: &str) -> Result<CodexVersion, String> {
    CodexVersion::parse(s).ok_or_else(|| format!("`{s}` is not a codex version (like 0.163.0)"))
}

pub fn run(g: &GlobalArgs, a: &FixConfigArgs) -> u8 {
    let path = a.file.display().to_string();
    // A refusal is said on stderr and, under --json, as a JSON document on stdout too: a script
    // reading stdout gets an answer it can parse, not nothing.
    let fail = |msg: String| -> u8 {
        if g.json {
            let v = json!({ "file": path, "changed": false, "written": false, "error": msg });
            super::output::print_json(&super::output::document("fix-config", v));
        }
        fail(msg)
    };
    if a.write && g.read_only {
        return fail("refused: --read-only forbids --write".into());
    }
    let bytes = match std::fs::read(&a.file) {
        Ok(b) => b,
        Err(e) => return fail(format!("{path}: cannot read: {e}")),
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return fail(format!("{path}: not UTF-8, so not TOML codex can read; nothing written"));
    };
    let opts = FixOptions { cli_profile: a.codex_profile.clone(), codex_version: a.codex_version };
    let out = match fix(text, &opts) {
        Ok(o) => o,
        Err(p) => {
            return fail(format!(
                "{path}:{}:{}: {}; this is not a shape codex-fleet repairs, nothing written",
                p.location.line, p.location.column, p.message
            ))
        }
    };
    let diff = unified_diff(&format!("/{}", path.trim_start_matches('/')), text, &out.text);

    let mut backup = None;
    if a.write && out.changed {
        match replace_with_backup(&a.file, &bytes, out.text.as_bytes(), &utc_stamp()) {
            Ok(b) => backup = Some(b.display().to_string()),
            Err(e) => return fail(e.to_string()),
        }
    }

    if g.json {
        let v = json!({
            "file": path,
            "changed": out.changed,
            "written": backup.is_some(),
            "backup": backup,
            "diff": diff,
            "changes": out.changes,
            "repaired_lines": out.repaired.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            "misplaced": out.misplaced,
        });
        super::output::print_json(&super::output::document("fix-config", v));
    } else if a.stdout {
        print!("{}", out.text);
    } else {
        print!("{diff}");
    }

    if !g.json {
        if !out.changed {
            eprintln!("{path}: already fixed, nothing to change");
        } else {
            for c in &out.changes {
                eprintln!("{path}: {c}");
            }
        }
        for m in &out.misplaced {
            eprintln!("{path}: note: {} (left in place)", m.evidence());
        }
        if let Some(b) = &backup {
            eprintln!("{path}: written; original kept as {b}");
        }
    }
    if a.check && out.changed {
        EXIT_ATTENTION
    } else {
        EXIT_OK
    }
}
