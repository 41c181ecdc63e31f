//! The boot emitter fix, tested the way it runs: golden outputs of `fix_emitter` over a corpus
//! of real-shaped `codex_mcp_config.sh` scripts, then the fixed scripts (and the managed block
//! alone) executed for real with `sh` (dash here, as in Debian slim images) / `bash` against a
//! corpus of config.toml starting states, several times, with the default awk and with mawk.
//! Where the real codex binaries are cached, codex itself reads every resulting config.
//!
//! `UPDATE_GOLDEN=1 cargo test --test emitter_shell` rewrites the expected files; review the diff.

mod common;

use codex_fleet::codex::emitter::{classify, fix_emitter, fix_emitter_for, installed_target, managed_block, EmitterState};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/emitter")
}

fn update_golden() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

/// Compares `actual` with the checked-in file (or writes it under UPDATE_GOLDEN).
fn golden(path: &Path, actual: &[u8]) {
    if update_golden() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, actual).unwrap();
        return;
    }
    let expected = fs::read(path).unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&*String::from_utf8_lossy(&expected), &*String::from_utf8_lossy(actual))
            .unified_diff()
            .header("expected", "actual")
            .to_string();
        panic!("{} differs from the output:\n{diff}", path.display());
    }
}

fn sorted_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

/// What each script of the corpus does today.
fn expected_state(name: &str) -> EmitterState {
    use EmitterState::*;
    match name {
        "already-fixed" | "template-pr82" => Fixed,
        "older-managed-block" | "managed-block-v1" | "refuse-unterminated-block" => OlderManagedBlock,
        "original" | "posix-exit0" | "template-pr77" | "refuse-code-after-exit" | "refuse-main-exits" => NoSandboxEmission,
        _ => HotpatchNotIdempotent,
    }
}

#[test]
fn managed_block_is_posix_and_named() {
    let b = managed_block();
    let first = b.lines().next().unwrap();
    let last = b.lines().last().unwrap();
    assert!(first.contains("codex-fleet") && first.contains("core#2128") && first.contains("v2"), "{first}");
    assert!(last.contains("codex-fleet") && last.contains("core#2128") && last.contains("v2"), "{last}");
    // One generated line names the target; empty in the asset (computed at boot).
    assert_eq!(b.lines().filter(|l| l.starts_with("  _cf_cfg='")).count(), 1);
    assert!(b.contains("\n  _cf_cfg=''\n"));
    assert!(b.ends_with('\n') && !b.contains('\r'));
    // dash must parse it (a syntax error would abort the whole boot script).
    let out = Command::new("sh").arg("-n").arg(fixtures().join("../../../assets/emitter-block.sh")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // mawk has no regex intervals; the awk program must not use them.
    let awk_start = b.find("awk -v nonl").unwrap();
    let prog = &b[awk_start..];
    let prog = &prog[..prog.find("' \"$_cf_src\"").unwrap()];
    assert!(!regex::Regex::new(r"\{[0-9]+(,[0-9]*)?\}").unwrap().is_match(prog), "regex interval in the awk program");
    for gawk_only in ["gensub(", "asort(", "strftime(", "systime(", "PROCINFO", "FPAT", "RT ", "BEGINFILE", "@include"] {
        assert!(!prog.contains(gawk_only), "gawk extension {gawk_only} in the awk program");
    }
}

#[test]
fn scripts_golden_and_idempotent() {
    let dir = fixtures();
    for script in sorted_files(&dir.join("scripts"), "sh") {
        let name = stem(&script);
        let text = fs::read_to_string(&script).unwrap();
        assert_eq!(classify(&text), expected_state(&name), "classify({name})");
        if name.starts_with("refuse-") {
            let err = fix_emitter(&text).expect_err(&name).to_string();
            golden(&dir.join("expected").join(format!("{name}.err")), format!("{err}\n").as_bytes());
            continue;
        }
        let fix = fix_emitter(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        golden(&dir.join("expected").join(format!("{name}.sh")), fix.text.as_bytes());
        golden(&dir.join("expected").join(format!("{name}.notes")), (fix.replaced.join("\n") + "\n").as_bytes());
        assert_eq!(fix.changed, fix.text != text, "{name}");
        assert_eq!(fix.changed, expected_state(&name) != EmitterState::Fixed, "{name}: changed");
        let again = fix_emitter(&fix.text).unwrap();
        assert!(!again.changed, "{name}: a second fix changes the script again");
        assert_eq!(again.text, fix.text, "{name}");
        assert_eq!(classify(&fix.text), EmitterState::Fixed, "{name}: fixed script not classified Fixed");
        // Line endings are kept: a CRLF script stays CRLF throughout.
        if text.contains("\r\n") {
            assert!(!fix.text.replace("\r\n", "").contains('\n'), "{name}: mixed line endings");
        }
        // Exactly one managed block, and (unless the template already emits the fix) at the
        // end or right before the final exit.
        let begins = fix.text.matches("# >>> codex-fleet managed block").count();
        if name.starts_with("template-pr82") {
            assert_eq!(begins, 0, "{name}");
        } else {
            assert_eq!(begins, 1, "{name}");
            let after = &fix.text[fix.text.find("# <<< codex-fleet managed block").unwrap()..];
            let rest: Vec<&str> = after.lines().skip(1).map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
            assert!(rest.is_empty() || rest == ["exit 0"], "{name}: after the block: {rest:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// config.toml corpus

struct Cfg {
    name: String,
    /// None: config.toml does not exist.
    text: Option<Vec<u8>>,
}

impl Cfg {
    /// `[sandbox_workspace_write]` carries more than network_access: it must stay. Either its
    /// own `writable_roots`, or root keys the hotpatch's prepended header trapped (the
    /// provider's `model_provider`): those stay where they are, for the diagnosis to report.
    fn swr_kept(&self) -> bool {
        self.name == "swr-with-writable-roots" || self.name == "hotpatch-1-x3-provider"
    }
    /// approval_policy is a (granular) table: left alone.
    fn approval_table(&self) -> bool {
        self.name == "approval-granular"
    }
}

fn configs() -> Vec<Cfg> {
    let mut v = vec![Cfg { name: "missing".into(), text: None }];
    for p in sorted_files(&fixtures().join("configs"), "toml") {
        v.push(Cfg { name: stem(&p), text: Some(fs::read(&p).unwrap()) });
    }
    v
}

/// The meaning every run must leave in config.toml.
fn check_config(ctx: &str, cfg: &Cfg, out: &str) {
    let doc: toml_edit::DocumentMut = out.parse().unwrap_or_else(|e| panic!("{ctx}: not TOML: {e}\n{out}"));
    assert_eq!(doc.get("sandbox_mode").and_then(|i| i.as_str()), Some("danger-full-access"), "{ctx}\n{out}");
    if cfg.approval_table() {
        assert!(doc.get("approval_policy").is_some_and(|i| i.as_str().is_none()), "{ctx}: granular table lost\n{out}");
    } else {
        assert_eq!(doc.get("approval_policy").and_then(|i| i.as_str()), Some("never"), "{ctx}\n{out}");
    }
    // Once at the top level: before the first table header, exactly one line each.
    let head: Vec<&str> = out.lines().take_while(|l| !l.trim_start().starts_with('[')).collect();
    for key in ["sandbox_mode", "approval_policy"] {
        let n = head.iter().filter(|l| l.trim_start().starts_with(key) && l[l.find(key).unwrap() + key.len()..].trim_start().starts_with('=')).count();
        assert_eq!(n, 1, "{ctx}: {key} {n} times at the top level\n{out}");
    }
    // No copies trapped in tables (profiles are the operator's own and stay).
    fn walk(ctx: &str, path: &str, t: &dyn toml_edit::TableLike) {
        for (k, item) in t.iter() {
            let p = format!("{path}.{k}");
            if !path.is_empty() && (k == "sandbox_mode" || k == "approval_policy") && !path.starts_with(".profiles") {
                panic!("{ctx}: trapped copy {p}");
            }
            if let Some(sub) = item.as_table_like() {
                walk(ctx, &p, sub);
            }
        }
    }
    walk(ctx, "", doc.as_table());
    match doc.get("sandbox_workspace_write") {
        None => assert!(!cfg.swr_kept(), "{ctx}: [sandbox_workspace_write] with writable_roots removed"),
        Some(t) => {
            assert!(cfg.swr_kept(), "{ctx}: network_access-only sandbox_workspace_write left\n{out}");
            assert!(t.get("writable_roots").is_some() || t.get("model_provider").is_some(), "{ctx}");
        }
    }
    if let Some(p) = doc.get("profiles").and_then(|p| p.get("careful")) {
        assert_eq!(p.get("sandbox_mode").and_then(|i| i.as_str()), Some("read-only"), "{ctx}: profile changed");
    }
}

/// Lines of the starting config that every run must keep: comments and settings, except the
/// sandbox keys being fixed and what the boot script regenerates itself (its molecule tables).
fn must_keep(start: &str) -> Vec<String> {
    let mut keep = Vec::new();
    let mut regenerated = false;
    let mut in_ml = false;
    for raw in start.lines() {
        let l = raw.trim_end_matches('\r');
        let t = l.trim_start();
        if in_ml || t.contains("\"\"\"") {
            if t.matches("\"\"\"").count() == 1 {
                in_ml = !in_ml;
            }
            keep.push(l.to_string());
            continue;
        }
        if t.starts_with('[') {
            regenerated = t.starts_with("[mcp_servers.molecule");
            if t.starts_with("[sandbox_workspace_write]") {
                continue;
            }
        }
        let sandbox = ["sandbox_mode", "approval_policy", "network_access", "sandbox_workspace_write"]
            .iter()
            .any(|k| t.starts_with(k));
        let generated = t.starts_with("# Auto-generated by codex_mcp_config.sh")
            || t.starts_with("# Provides list_peers")
            || t.starts_with("# tools to the codex agent");
        if t.is_empty() || sandbox || generated || regenerated {
            continue;
        }
        keep.push(l.to_string());
    }
    keep
}

fn assert_kept(ctx: &str, start: &str, out: &str) {
    let lines: BTreeSet<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    for k in must_keep(start) {
        assert!(lines.contains(k.as_str()), "{ctx}: lost line {k:?}\n{out}");
    }
}

// ---------------------------------------------------------------------------------------------
// Running for real

struct Env {
    _dir: tempfile::TempDir,
    stub: PathBuf,
    block: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let stub = dir.path().join("stub");
    fs::create_dir(&stub).unwrap();
    // The runtime's interpreter: `python3 -c "import molecule_runtime"` must succeed.
    let py = stub.join("python3");
    fs::write(&py, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&py, fs::Permissions::from_mode(0o755)).unwrap();
    let block = dir.path().join("block.sh");
    fs::write(&block, managed_block()).unwrap();
    Env { stub, block, _dir: dir }
}

/// PATH variants: the system's default awk, and mawk explicitly (plus gawk --posix if present).
fn awk_variants(env: &Env) -> Vec<(String, String)> {
    let base = format!("{}:/usr/local/bin:/usr/bin:/bin", env.stub.display());
    let mut v = vec![("awk".to_string(), base.clone())];
    for (name, wrapper) in [("mawk", "exec mawk \"$@\""), ("gawk", "exec gawk --posix \"$@\"")] {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().unwrap().status.success();
        if !found {
            if name == "mawk" {
                common::require_or_skip::<()>("mawk (apt-get install -y mawk)");
            }
            continue;
        }
        let d = env.stub.parent().unwrap().join(name);
        fs::create_dir_all(&d).unwrap();
        let w = d.join("awk");
        fs::write(&w, format!("#!/bin/sh\n{wrapper}\n")).unwrap();
        fs::set_permissions(&w, fs::Permissions::from_mode(0o755)).unwrap();
        v.push((name.to_string(), format!("{}:{base}", d.display())));
    }
    v
}

/// Runs `script` with `interp` as a container start would, with the runtime stubbed via env.
fn run(interp: &str, script: &Path, home: &Path, codex_home: Option<&Path>, path: &str) -> std::process::Output {
    let mut c = Command::new(interp);
    c.arg(script).env_clear().env("PATH", path).env("HOME", home).env("LC_ALL", "C.UTF-8");
    c.env("MOLECULE_MCP_PYTHON", home.parent().unwrap().join("none")); // not executable: the search runs
    c.env("WORKSPACE_ID", "7d88be80-1c2e-4f5a-9b61-0c3d2e1f4a5b");
    c.env("PLATFORM_URL", "http://platform:8080");
    c.env("MOLECULE_ORG_ID", "3f2a9c4e-8b7d-4e61-a0c5-d9e8f7a6b5c4");
    c.env("CONFIGS_DIR", "/home/agent/.molecule-workspace");
    if let Some(ch) = codex_home {
        c.env("CODEX_HOME", ch);
    }
    c.output().unwrap()
}

/// Runs per (script, config): the first may change the file, the rest must not.
const RUNS: usize = 3;

/// Starts from `cfg`, runs `script` RUNS times; returns the config.toml after each run.
fn runs(ctx: &str, interp: &str, script: &Path, cfg: &Cfg, path: &str, set_codex_home: bool, strict: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let codex_home = home.join(".codex");
    fs::create_dir_all(&codex_home).unwrap();
    let cfg_path = codex_home.join("config.toml");
    if let Some(t) = &cfg.text {
        fs::write(&cfg_path, t).unwrap();
    }
    let mut outs = Vec::new();
    for i in 0..RUNS {
        let o = run(interp, script, &home, set_codex_home.then_some(codex_home.as_path()), path);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{ctx} run {i}: exit {:?}\n{stderr}", o.status.code());
        assert!(!stderr.contains("WARNING: could not ensure"), "{ctx} run {i}: block failed\n{stderr}");
        let bytes = fs::read(&cfg_path).unwrap_or_else(|e| panic!("{ctx} run {i}: {e}"));
        outs.push(String::from_utf8(bytes).unwrap());
        let stray: Vec<_> = fs::read_dir(&codex_home).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n != "config.toml").collect();
        assert!(stray.is_empty(), "{ctx} run {i}: left {stray:?}");
    }
    for i in 2..RUNS {
        if strict {
            assert_eq!(outs[i], outs[1], "{ctx}: run {} differs from run 2", i + 1);
        } else {
            assert_eq!(squeeze_blank_lines(&outs[i]), squeeze_blank_lines(&outs[1]), "{ctx}: run {} differs from run 2", i + 1);
        }
    }
    outs
}

/// The template's own molecule-block strip keeps the blank line above the block it re-appends,
/// so the real-shaped scripts grow config.toml by one blank line per start, fix or no fix (see
/// `template_grows_blank_lines_by_itself`). Runs of those scripts are compared modulo that.
fn squeeze_blank_lines(s: &str) -> String {
    let mut out = String::new();
    let mut blank = false;
    for l in s.split_inclusive('\n') {
        let is_blank = l.trim().is_empty();
        if !(is_blank && blank) {
            out.push_str(l);
        }
        blank = is_blank;
    }
    out
}

/// The managed block alone, as `sh` (dash) runs it: golden config.toml outputs, no rewrite once
/// right (same inode), default CODEX_HOME and explicit CODEX_HOME, default awk and mawk.
#[test]
fn block_alone_on_config_corpus() {
    let env = env();
    let mut finals = BTreeSet::new();
    for (awk, path) in awk_variants(&env) {
        for cfg in configs() {
            for set_codex_home in [false, true] {
                let ctx = format!("block/{awk}/{}/CODEX_HOME={set_codex_home}", cfg.name);
                let outs = runs(&ctx, "sh", &env.block, &cfg, &path, set_codex_home, true);
                golden(&fixtures().join("configs/expected").join(format!("{}.toml", cfg.name)), outs[0].as_bytes());
                assert_eq!(outs[0], outs[1], "{ctx}: second run changed the file");
                check_config(&ctx, &cfg, &outs[0]);
                if let Some(t) = &cfg.text {
                    assert_kept(&ctx, &String::from_utf8_lossy(t), &outs[0]);
                    if cfg.name == "already-fixed" {
                        assert_eq!(outs[0].as_bytes(), &t[..], "{ctx}: an already right file was changed");
                    }
                    if cfg.name == "crlf" {
                        assert!(!outs[0].replace("\r\n", "").contains('\n'), "{ctx}: line endings mixed");
                    }
                    if cfg.name == "no-trailing-newline" {
                        assert!(!outs[0].ends_with('\n'), "{ctx}: a final newline was added");
                    }
                }
                finals.insert(outs[0].clone());
            }
        }
    }
    codex_reads(&finals);
}

/// The fixed scripts of the corpus, executed whole, on every config state.
#[test]
fn fixed_scripts_on_config_corpus() {
    let env = env();
    let variants = awk_variants(&env);
    let dir = tempfile::tempdir().unwrap();
    // (script name, interpreter, fixed script path, awk name, awk path): one job per config.
    let mut jobs = Vec::new();
    for script in sorted_files(&fixtures().join("scripts"), "sh") {
        let name = stem(&script);
        let text = fs::read_to_string(&script).unwrap();
        if name.starts_with("refuse-") || text.contains("\r\n") {
            continue; // refused, or CRLF (no shell runs a CRLF script)
        }
        let fixed = fix_emitter(&text).unwrap().text;
        let path = dir.path().join(format!("{name}.sh"));
        fs::write(&path, &fixed).unwrap();
        // As the container runs it: by its shebang. The POSIX ones run under dash.
        let interp = if fixed.starts_with("#!/bin/sh") { "sh" } else { "bash" };
        for (awk, awk_path) in &variants {
            if awk != "awk" && !name.starts_with("posix") && name != "hotpatch-both" {
                continue; // the awk in the block is covered above; keep the run time in check
            }
            for cfg in configs() {
                jobs.push((name.clone(), interp, path.clone(), awk.clone(), awk_path.clone(), cfg));
            }
        }
    }
    // Each job starts real shells several times: spread them over the machine's cores.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, 4);
    let chunk = jobs.len().div_ceil(threads).max(1);
    let finals: BTreeSet<String> = std::thread::scope(|sc| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| sc.spawn(move || part.iter().filter_map(one_job).collect::<Vec<String>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    codex_reads(&finals);
}

/// Run one fixed script from one config state; returns the final config.toml when it is one
/// codex should be asked to read.
fn one_job(job: &(String, &str, std::path::PathBuf, String, String, Cfg)) -> Option<String> {
    let (name, interp, path, awk, awk_path, cfg) = job;
    // The template's own strip (PR #77 / #82) removes more than the fix does (profiles'
    // sandbox_mode, granular approval tables, writable_roots): only the meaning is checked.
    let template = name.starts_with("template-");
    if template && cfg.name == "comments" {
        // The template's line-based strip cuts into the multi-line string that quotes
        // `[sandbox_workspace_write]`; the block then (rightly) refuses the broken file. Not
        // the fix's doing: skipped.
        return None;
    }
    let ctx = format!("{name}/{awk}/{}", cfg.name);
    // The POSIX fixtures strip their molecule block cleanly: byte-identical runs.
    let outs = runs(&ctx, interp, path, cfg, awk_path, true, name.starts_with("posix"));
    // PR #82's own strip also drops writable_roots and granular tables and does not know the
    // inline `sandbox_workspace_write = {...}` form (inert under danger-full-access): for
    // those, the meaning that matters is checked.
    if template && (cfg.swr_kept() || cfg.approval_table() || cfg.name == "inline-swr") {
        let doc: toml_edit::DocumentMut = outs[1].parse().unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(doc.get("sandbox_mode").and_then(|i| i.as_str()), Some("danger-full-access"), "{ctx}");
        return None;
    }
    for (i, out) in outs.iter().enumerate() {
        check_config(&format!("{ctx} run {}", i + 1), cfg, out);
    }
    if !template {
        if let Some(t) = &cfg.text {
            assert_kept(&ctx, &String::from_utf8_lossy(t), &outs[1]);
        }
        assert!(outs[1].contains("[mcp_servers.molecule.env]"), "{ctx}");
    }
    (name == "original" || name == "posix-exit0").then(|| outs[1].clone())
}

/// The real-shaped template script without any sandbox code grows config.toml by a blank line
/// per start on its own: the non-byte-identity the real-shaped runs tolerate is not the fix's.
#[test]
fn template_grows_blank_lines_by_itself() {
    let env = env();
    let path = format!("{}:/usr/bin:/bin", env.stub.display());
    let cfg = Cfg { name: "chatgpt-subscription".into(), text: Some(fs::read(fixtures().join("configs/chatgpt-subscription.toml")).unwrap()) };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    fs::create_dir_all(home.join(".codex")).unwrap();
    fs::write(home.join(".codex/config.toml"), cfg.text.as_ref().unwrap()).unwrap();
    let script = fixtures().join("scripts/original.sh");
    let mut outs = Vec::new();
    for _ in 0..3 {
        assert!(run("bash", &script, &home, None, &path).status.success());
        outs.push(fs::read_to_string(home.join(".codex/config.toml")).unwrap());
    }
    assert_ne!(outs[1], outs[2], "the template's strip became idempotent: make the real-shaped runs strict");
    assert_eq!(squeeze_blank_lines(&outs[1]), squeeze_blank_lines(&outs[2]));
}

/// Mode and owner survive a rewrite; a new file gets the codex home's owner; an already right
/// file is not rewritten (same inode); an unreadable config is left alone without failing boot.
#[test]
fn block_keeps_mode_owner_and_fails_soft() {
    let env = env();
    let path = format!("{}:/usr/bin:/bin", env.stub.display());
    let root = unsafe_is_root();
    let dir = tempfile::tempdir().unwrap();
    // Traversable by the user the block acts as when a directory on the path is theirs.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let home = dir.path().join("home");
    let ch = home.join(".codex");
    fs::create_dir_all(&ch).unwrap();
    let cfg = ch.join("config.toml");
    fs::write(&cfg, "sandbox_mode = \"workspace-write\"\nsandbox_mode = \"workspace-write\"\n").unwrap();
    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o640)).unwrap();
    if root {
        std::os::unix::fs::chown(&cfg, Some(1000), Some(1000)).unwrap();
    }
    let o = run("sh", &env.block, &home, None, &path);
    assert!(o.status.success());
    let m = fs::metadata(&cfg).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o640);
    if root {
        assert_eq!((m.uid(), m.gid()), (1000, 1000));
    }
    let ino = m.ino();
    run("sh", &env.block, &home, None, &path);
    assert_eq!(fs::metadata(&cfg).unwrap().ino(), ino, "an already right file was rewritten");

    // A new file takes the owner of the codex home.
    fs::remove_file(&cfg).unwrap();
    if root {
        std::os::unix::fs::chown(&ch, Some(1000), Some(1001)).unwrap();
    }
    run("sh", &env.block, &home, None, &path);
    let m = fs::metadata(&cfg).unwrap();
    if root {
        assert_eq!((m.uid(), m.gid()), (1000, 1001));
    }

    // Unparseable config (unterminated string): left byte-identical, boot continues.
    let broken = "model = \"gpt-5\nsandbox_mode = \"workspace-write\"\n";
    fs::write(&cfg, broken).unwrap();
    let script = dir.path().join("boot.sh");
    fs::write(&script, format!("#!/bin/bash\nset -euo pipefail\n{}\necho BOOT-CONTINUES\n", managed_block())).unwrap();
    let o = run("bash", &script, &home, None, &path);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("BOOT-CONTINUES"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 1: unterminated string") && err.contains("WARNING"), "{err}");
    assert_eq!(fs::read_to_string(&cfg).unwrap(), broken);
    let stray: Vec<_> = fs::read_dir(&ch).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n != "config.toml").collect();
    assert!(stray.is_empty(), "{stray:?}");
}

/// v2 run as root (HOME=/root-like, no CODEX_HOME: an entrypoint before its privilege drop)
/// fixes the agent's file it names, as the agent: owner and mode kept, root's own codex home
/// untouched, no rewrite when right; a symlink the agent planted on the path is never followed
/// with root's rights; without a way to act as the agent, nothing is done and boot continues.
#[test]
fn block_as_root_fixes_the_agents_file_as_the_agent() {
    if !unsafe_is_root() {
        eprintln!("skipped: needs root (to run the block as root on another user's file)");
        return;
    }
    let env = env();
    let path = format!("{}:/usr/bin:/bin", env.stub.display());
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let chown = |p: &Path, u: u32| std::os::unix::fs::chown(p, Some(u), Some(u)).unwrap();
    let agent_home = dir.path().join("home/agent");
    let ch = agent_home.join(".codex");
    fs::create_dir_all(&ch).unwrap();
    chown(&agent_home, 1000);
    chown(&ch, 1000);
    let cfg = ch.join("config.toml");
    let start = "model = \"gpt-5\"\nsandbox_mode = \"workspace-write\"\n";
    fs::write(&cfg, start).unwrap();
    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o600)).unwrap();
    chown(&cfg, 1000);
    let root_home = dir.path().join("root");
    fs::create_dir(&root_home).unwrap();
    let target = cfg.to_str().unwrap();
    let script = dir.path().join("boot.sh");
    let text = fix_emitter_for("#!/bin/sh\nset -eu\necho boot\n", Some(target)).unwrap().text;
    assert_eq!(installed_target(&text), Some(Some(target.to_string())));
    fs::write(&script, format!("{text}echo BOOT-CONTINUES\n")).unwrap();

    let o = run("sh", &script, &root_home, None, &path);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !err.contains("WARNING"), "{err}");
    let out = fs::read_to_string(&cfg).unwrap();
    assert_eq!(out.matches("sandbox_mode = \"danger-full-access\"").count(), 1, "{out}");
    assert_eq!(out.matches("approval_policy = \"never\"").count(), 1, "{out}");
    assert!(out.contains("model = \"gpt-5\""));
    let m = fs::metadata(&cfg).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1000, 0o600));
    assert!(!root_home.join(".codex").exists(), "root's own codex home was touched");
    let ino = m.ino();
    let o = run("sh", &script, &root_home, None, &path);
    assert!(o.status.success());
    assert_eq!(fs::metadata(&cfg).unwrap().ino(), ino, "an already right file was rewritten");
    assert_eq!(fs::read_to_string(&cfg).unwrap(), out);
    let stray: Vec<_> = fs::read_dir(&ch).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n != "config.toml").collect();
    assert!(stray.is_empty(), "{stray:?}");

    // A config.toml root wrote into the agent's directory: fixed; it becomes the agent's.
    fs::write(&cfg, start).unwrap();
    chown(&cfg, 0);
    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o644)).unwrap();
    let o = run("sh", &script, &root_home, None, &path);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !err.contains("WARNING") && err.contains("was owned by 0:0"), "{err}");
    let m = fs::metadata(&cfg).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (1000, 0o644));

    // The agent swaps its codex home for a symlink to a directory only root may read: the
    // block acts as the agent, so it can neither read nor replace root's file.
    let secret = dir.path().join("secret");
    fs::create_dir(&secret).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(secret.join("config.toml"), "token = \"root-only\"\n").unwrap();
    fs::rename(&ch, agent_home.join("codex-old")).unwrap();
    std::os::unix::fs::symlink(&secret, &ch).unwrap();
    std::os::unix::fs::lchown(&ch, Some(1000), Some(1000)).unwrap();
    let o = run("sh", &script, &root_home, None, &path);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("WARNING"), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("BOOT-CONTINUES"));
    assert_eq!(fs::read_to_string(secret.join("config.toml")).unwrap(), "token = \"root-only\"\n");
    assert_eq!(fs::read_dir(&secret).unwrap().count(), 1, "nothing created in root's directory");
    fs::remove_file(&ch).unwrap();
    fs::rename(agent_home.join("codex-old"), &ch).unwrap();

    // No setpriv, gosu or su-exec: left as is, said so, boot continues.
    fs::write(&cfg, start).unwrap();
    chown(&cfg, 1000);
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    for tool in ["sh", "awk", "mawk", "stat", "id", "mktemp", "mkdir", "tail", "chmod", "chown", "mv", "rm", "cat"] {
        if let Some(p) = ["/usr/bin", "/bin"].iter().map(|d| Path::new(d).join(tool)).find(|p| p.exists()) {
            std::os::unix::fs::symlink(p, bin.join(tool)).unwrap();
        }
    }
    let o = run("/bin/sh", &script, &root_home, None, &bin.display().to_string());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("none of setpriv, gosu, su-exec") && err.contains("WARNING"), "{err}");
    assert_eq!(fs::read_to_string(&cfg).unwrap(), start);
}

fn unsafe_is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// codex itself (the incident's generation and a current one) reads each resulting config.
fn codex_reads(configs: &BTreeSet<String>) {
    for version in ["0.133.0", "0.163.0"] {
        let Some(bin) = common::codex_bin(version) else { continue };
        for cfg in configs {
            let home = common::codex_safe_tempdir();
            fs::write(home.path().join("config.toml"), cfg).unwrap();
            let o = Command::new(&bin)
                .args(["debug", "prompt-input"])
                .env("CODEX_HOME", home.path())
                .env("HOME", home.path())
                .output()
                .unwrap();
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(o.status.success(), "codex {version}: {}\n{cfg}", String::from_utf8_lossy(&o.stderr));
            assert!(out.contains("`sandbox_mode` is `danger-full-access`"), "codex {version}:\n{cfg}");
            if !cfg.contains("granular") {
                assert!(out.contains("Approval policy is currently never"), "codex {version}:\n{cfg}");
            }
        }
    }
}
