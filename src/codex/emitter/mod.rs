//! The idempotent boot emitter (`/usr/local/bin/codex_mcp_config.sh`). See issue #2, item 4.
//!
//! The Molecule codex image regenerates `$CODEX_HOME/config.toml` at every container start, and
//! this script is the last step that writes it. Incident core#2128 was "hotpatched" by appending
//! a block to it that PREPENDS `sandbox_mode = ...` (first with `[sandbox_workspace_write]
//! network_access = true`, later `danger-full-access` + `approval_policy = "never"`) to
//! config.toml: every restart adds another copy, duplicate keys make the TOML invalid and codex
//! refuses to start. Fixing config.toml alone does not survive a restart, so the durable fix
//! changes the emitter: [`fix_emitter`] removes such hotpatches (and earlier versions of our
//! own block) and places ONE marked block ([`managed_block`]) where it runs after everything
//! else that writes config.toml. The block edits config.toml structurally (line-level TOML
//! lexing in awk: only the two keys and the earlier workaround's table are touched) and is a
//! no-op when the file is already right, so restarts are byte-stable.
//!
//! Pure: text in, text out. The shell structure is read with a small scanner (quotes, heredocs,
//! compound commands) because the placement must be right: a block placed after an `exit`, or
//! inside a function that is never called, would silently not run.

use regex::Regex;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::LazyLock;

mod scanner;
use scanner::{scan, split_lines, Kind, Line, Stmt};

/// Where the Molecule codex image keeps the boot emitter.
pub const EMITTER_PATH: &str = "/usr/local/bin/codex_mcp_config.sh";

/// The current managed block, kept as a shell asset so it can be read, linted and run alone.
const BLOCK: &str = include_str!("../../../assets/emitter-block.sh");

/// First line of any version of the managed block; the version follows.
const BEGIN_PREFIX: &str = "# >>> codex-fleet managed block v";
/// Last line of any version of the managed block.
const END_PREFIX: &str = "# <<< codex-fleet managed block v";
/// The block's one generated line, the file it fixes: `  _cf_cfg='/abs/path/config.toml'`
/// (`''`: computed at boot from `$CODEX_HOME` / `$HOME` of whoever runs the emitter).
const TARGET_PREFIX: &str = "  _cf_cfg='";
/// The longest target path a block names.
const TARGET_MAX: usize = 1024;

/// What the emitter script does today with codex's sandbox keys (for the finding
/// `emitter-not-idempotent`: anything but `Fixed` is a finding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmitterState {
    /// Emits `danger-full-access` + `never` idempotently: codex-fleet's current block in the
    /// right place, or the template's own fixed emission (template PR #82: strip, then prepend).
    Fixed,
    /// Carries a hotpatch that prepends sandbox keys on every start without removing earlier
    /// copies (duplicate keys after the second restart), or emits them mid-script that way.
    HotpatchNotIdempotent,
    /// Does not emit the durable fix: no sandbox keys at all (the pre-core#2128 script), or
    /// only the template's superseded `workspace-write` + `network_access` emission (PR #77).
    NoSandboxEmission,
    /// Carries codex-fleet's managed block, but an older or edited version, or not where it
    /// runs last.
    OlderManagedBlock,
}

/// The emitter script after the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitterFix {
    /// The whole script; byte-identical to the input outside the replaced parts.
    pub text: String,
    /// False when the script already was in the fixed shape (`text` is then the input).
    pub changed: bool,
    /// Human notes, one per replaced part ("lines 120-127: hotpatch that prepends ...").
    pub replaced: Vec<String>,
}

/// Why a script cannot be fixed safely. Nothing is changed in that case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmitterError {
    /// The script's structure does not allow a safe, automatic placement.
    #[error("{EMITTER_PATH} line {line}: {what}")]
    Unsafe { line: usize, what: String },
    /// The agent's config path (read from the container) is not one the block may name.
    #[error("the agent's config path {0:?} is not an absolute path of safe characters ending in /config.toml: the managed block will not name it; check the agent's CODEX_HOME")]
    UnsafeTarget(String),
}

/// True when `path` may be written into the managed block as its target: an absolute path of
/// letters, digits and `._-+@/` only (so single quotes make it a shell literal, and nothing in
/// it can be read as shell syntax or a terminal escape), no `.`/`..` component, ending in
/// `/config.toml`, at most [`TARGET_MAX`] bytes. The path comes from the container: untrusted.
pub fn safe_target(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= TARGET_MAX
        && path.ends_with("/config.toml")
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-+@/".contains(&b))
        && path.split('/').all(|c| c != "." && c != "..")
}

fn unsafe_at(line: usize, what: impl Into<String>) -> EmitterError {
    EmitterError::Unsafe { line, what: what.into() }
}

/// The exact text of the current managed block without a named target (it computes
/// `${CODEX_HOME:-$HOME/.codex}/config.toml` at boot); LF line endings (a CRLF script gets CRLF).
pub fn managed_block() -> &'static str {
    BLOCK
}

/// The managed block that fixes `target` (see [`safe_target`]; `None`: computed at boot).
/// Panics on an unsafe target: callers check with [`safe_target`] first.
pub fn managed_block_for(target: Option<&str>) -> String {
    let Some(t) = target else { return BLOCK.to_string() };
    assert!(safe_target(t), "unsafe managed block target {t:?}");
    let empty = format!("{TARGET_PREFIX}'\n");
    assert_eq!(BLOCK.matches(&empty).count(), 1, "the block asset has one target line");
    BLOCK.replacen(&empty, &format!("{TARGET_PREFIX}{t}'\n"), 1)
}

/// The file an installed managed block fixes: `Some(Some(path))` for a v2 block that names
/// one, `Some(None)` for a block that computes it at boot (v1, or v2 without a target), `None`
/// when the script has no managed block.
pub fn installed_target(script: &str) -> Option<Option<String>> {
    let lines = split_lines(script);
    let managed = find_managed(&lines).ok()?;
    managed.last().map(|m| m.target.clone())
}

/// The config.toml the emitter writes through a variable of its own, when it names one
/// literally (`CFG=/home/agent/.codex/config.toml`, then `> "$CFG"`, `>> "$CFG"`, `tee "$CFG"`
/// or `mv ... "$CFG"`). `None` when it names none, or several different ones.
pub fn emitter_target(script: &str) -> Option<String> {
    let lines = split_lines(script);
    let managed = find_managed(&lines).ok()?;
    let mut skip = vec![false; lines.len()];
    for m in &managed {
        for k in skip.iter_mut().take(m.end + 1).skip(m.start) {
            *k = true;
        }
    }
    let (stmts, _) = scan(&lines, &skip).ok()?;
    let kept: Vec<&Stmt> = stmts.iter().collect();
    target_variable(&kept)
}

/// What `script` does today; see [`EmitterState`].
pub fn classify(script: &str) -> EmitterState {
    // A fleet has a handful of distinct emitters and thousands of agents: remember the verdict
    // per text (pure function, bounded cache). Measured: a 1000x8 demo scan spent ~7% of its
    // CPU classifying the same few scripts again (docs/benchmarks.md).
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static MEMO: OnceLock<Mutex<HashMap<String, EmitterState>>> = OnceLock::new();
    let memo = MEMO.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(s) = memo.lock().unwrap().get(script) {
        return *s;
    }
    let s = classify_uncached(script);
    let mut m = memo.lock().unwrap();
    if m.len() >= 64 {
        m.clear();
    }
    m.insert(script.to_string(), s);
    s
}

fn classify_uncached(script: &str) -> EmitterState {
    match fix_inner(script, Want::Keep) {
        Ok((fix, info)) => {
            if !fix.changed {
                EmitterState::Fixed
            } else if info.hotpatches > 0 {
                EmitterState::HotpatchNotIdempotent
            } else if info.managed > 0 {
                EmitterState::OlderManagedBlock
            } else {
                EmitterState::NoSandboxEmission
            }
        }
        Err(_) => {
            let code: String = split_lines(script)
                .iter()
                .filter(|l| !l.text.trim_start().starts_with('#'))
                .map(|l| format!("{}\n", l.text))
                .collect();
            if !emitted_keys(&code).is_empty() {
                EmitterState::HotpatchNotIdempotent
            } else if script.lines().any(|l| l.starts_with(BEGIN_PREFIX)) {
                EmitterState::OlderManagedBlock
            } else {
                EmitterState::NoSandboxEmission
            }
        }
    }
}

/// The version of `script` whose sandbox emission is idempotent: hotpatches and older managed
/// blocks removed, the current [`managed_block`] placed to run last (before a final `exit`).
/// Every other byte, line endings included, is kept. Idempotent: fixing the result again
/// changes nothing.
///
/// The block names the file the emitter writes through a variable of its own
/// ([`emitter_target`]) when it names one, else computes it at boot; [`fix_emitter_for`] names
/// the agent's config.toml as the scan found it.
pub fn fix_emitter(script: &str) -> Result<EmitterFix, EmitterError> {
    fix_inner(script, Want::Derive).map(|(fix, _)| fix)
}

/// [`fix_emitter`] for an agent whose config.toml the scan found at `agent_config` (the file
/// codex reads, whoever runs the emitter): the block fixes that file. `None`: as
/// [`fix_emitter`]. An `agent_config` that is not a [`safe_target`] is refused.
pub fn fix_emitter_for(script: &str, agent_config: Option<&str>) -> Result<EmitterFix, EmitterError> {
    let want = match agent_config {
        Some(p) if !safe_target(p) => return Err(EmitterError::UnsafeTarget(p.to_string())),
        Some(p) => Want::Path(p.to_string()),
        None => Want::Derive,
    };
    fix_inner(script, want).map(|(fix, _)| fix)
}

/// Which file the placed block fixes.
enum Want {
    /// This one (the agent's config.toml as the scan found it).
    Path(String),
    /// The emitter's own literal target variable, else computed at boot.
    Derive,
    /// The current block's own target where there is one (classification: any target counts).
    Keep,
}

// ---------------------------------------------------------------------------------------------
// What a statement does with the sandbox keys.

static EMIT_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(sandbox_mode|approval_policy)[ \t]*=[ \t]*\\?["'{]"#).unwrap()
});
static EMIT_SWR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?m)((^|[^\\])\[[ \t]*sandbox_workspace_write[ \t]*\\?\]|network_access[ \t]*=[ \t]*(true|false)|sandbox_workspace_write\.network_access)"#).unwrap()
});
static EMIT_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(sandbox_mode|approval_policy)[ \t]*=[ \t]*\\?["']([A-Za-z-]*)"#).unwrap()
});
static STRIP_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\^[ \t]*(sandbox_mode|approval_policy)"#).unwrap());
static STRIP_SWR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\^\\\[[ \t]*sandbox_workspace_write"#).unwrap());

const K_MODE: &str = "sandbox_mode";
const K_APPROVAL: &str = "approval_policy";
const K_SWR: &str = "[sandbox_workspace_write]";

/// The sandbox keys a piece of shell code writes into a TOML file.
fn emitted_keys(code: &str) -> BTreeSet<&'static str> {
    let mut keys = BTreeSet::new();
    for c in EMIT_KEY.captures_iter(code) {
        keys.insert(if &c[1] == K_MODE { K_MODE } else { K_APPROVAL });
    }
    if EMIT_SWR.is_match(code) {
        keys.insert(K_SWR);
    }
    keys
}

/// The keys a piece of shell code strips from config.toml (awk/sed/grep patterns).
fn stripped_keys(code: &str) -> BTreeSet<&'static str> {
    let mut keys = BTreeSet::new();
    for c in STRIP_KEY.captures_iter(code) {
        keys.insert(if &c[1] == K_MODE { K_MODE } else { K_APPROVAL });
    }
    if STRIP_SWR.is_match(code) {
        keys.insert(K_SWR);
    }
    keys
}

/// A short description of what a hotpatch emits, for the notes.
fn describe_emission(code: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in EMIT_VALUE.captures_iter(code) {
        let p = format!("{} = \"{}\"", &c[1], &c[2]);
        if !parts.contains(&p) {
            parts.push(p);
        }
    }
    if EMIT_SWR.is_match(code) {
        parts.push("[sandbox_workspace_write] network_access = true".into());
    }
    parts.join(" + ")
}

/// Commands a hotpatch consists of. Anything else in a block that emits sandbox keys means
/// the block does more than the hotpatch, and removing it would lose that: refuse.
const HOTPATCH_COMMANDS: &[&str] = &[
    "printf", "echo", "cat", "mv", "cp", "rm", "chown", "chmod", "mktemp", "mkdir", "touch", "sed",
    "grep", "test", "[", "true", "false", ":", "export", "tee", "head", "tail", "stat", "id",
    "install", "sync", "command",
];

fn is_terminal(s: &Stmt) -> bool {
    if s.func.is_some() {
        return false;
    }
    match s.first.first().map(String::as_str) {
        Some("exit") | Some("return") => true,
        // `exec >>log 2>&1` only redirects; `exec prog` replaces the shell.
        Some("exec") => s.first.len() > 1,
        _ => false,
    }
}

static ASSIGN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?m)^[ \t]*(?:export[ \t]+|readonly[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$"#).unwrap()
});
static LITERAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^(?:"([^"$`\\]*)"|'([^']*)'|([^ \t;&|<>()$`"'\\]+))[ \t]*(?:;.*|&&.*)?$"#).unwrap()
});

/// The emitter's own literal config target: a variable assigned one literal safe path (every
/// assignment of it the same) and used as a write target. `None` when none or several differ.
fn target_variable(stmts: &[&Stmt]) -> Option<String> {
    // name -> its literal value (None: assigned something else too)
    let mut vars: std::collections::BTreeMap<String, Option<String>> = std::collections::BTreeMap::new();
    let code: String = stmts.iter().map(|s| s.code.as_str()).collect();
    for c in ASSIGN.captures_iter(&code) {
        let lit = LITERAL.captures(&c[2]).and_then(|l| l.get(1).or(l.get(2)).or(l.get(3)).map(|m| m.as_str().to_string()));
        let e = vars.entry(c[1].to_string()).or_insert_with(|| lit.clone());
        if *e != lit {
            *e = None;
        }
    }
    let mut found: BTreeSet<String> = BTreeSet::new();
    for (name, value) in vars {
        let Some(value) = value.filter(|v| safe_target(v)) else { continue };
        let var = format!(r#""?\$(?:\{{{name}\}}|{name}\b)"?"#);
        let write = Regex::new(&format!(
            r#"(?m)(?:>>?|>\|)[ \t]*{var}(?:[ \t;|&)]|$)|\btee[ \t]+(?:-a[ \t]+)?{var}|\bmv[ \t]+(?:-f[ \t]+)?\S+[ \t]+{var}(?:[ \t;|&)]|$)"#
        ));
        if write.is_ok_and(|w| w.is_match(&code)) {
            found.insert(value);
        }
    }
    if found.len() == 1 {
        found.pop_first()
    } else {
        None
    }
}

fn remove_blanks_before(removed: &mut [bool], kinds: &[Kind], from: usize) {
    let mut k = from;
    while k > 0 && kinds[k - 1] == Kind::Blank && !removed[k - 1] {
        k -= 1;
        removed[k] = true;
    }
}

fn mentions_var(code: &str, name: &str) -> bool {
    code.contains(&format!("${name}")) || code.contains(&format!("${{{name}"))
}

#[derive(Debug, Default)]
struct Info {
    hotpatches: usize,
    managed: usize,
}

struct Managed {
    start: usize,
    end: usize,
    version: String,
    /// The current version's text (whatever its target).
    current: bool,
    /// The file it fixes, when it names one (v2 and later).
    target: Option<String>,
}

/// The target a line of a block names, when it is the block's target line: `Some(None)` for
/// `''`, `Some(Some(path))` for a safe path, `None` when the line is not a target line.
fn target_of(line: &str) -> Option<Option<String>> {
    let rest = line.strip_prefix(TARGET_PREFIX)?.strip_suffix('\'')?;
    if rest.is_empty() {
        Some(None)
    } else if safe_target(rest) {
        Some(Some(rest.to_string()))
    } else {
        None
    }
}

fn find_managed(lines: &[Line<'_>]) -> Result<Vec<Managed>, EmitterError> {
    let block_lines: Vec<&str> = BLOCK.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].text;
        if t.starts_with(END_PREFIX) {
            return Err(unsafe_at(i + 1, "end of a codex-fleet managed block without its beginning"));
        }
        if let Some(rest) = t.strip_prefix(BEGIN_PREFIX) {
            let version: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            let mut j = i + 1;
            loop {
                if j >= lines.len() {
                    return Err(unsafe_at(i + 1, "a codex-fleet managed block begins here but never ends"));
                }
                if lines[j].text.starts_with(BEGIN_PREFIX) {
                    return Err(unsafe_at(j + 1, "a codex-fleet managed block begins inside another one"));
                }
                if lines[j].text.starts_with(END_PREFIX) {
                    break;
                }
                j += 1;
            }
            let mut target = None;
            let current = j + 1 - i == block_lines.len()
                && lines[i..=j].iter().zip(&block_lines).all(|(l, b)| {
                    if b.starts_with(TARGET_PREFIX) {
                        match target_of(l.text) {
                            Some(t) => {
                                target = t;
                                true
                            }
                            None => false,
                        }
                    } else {
                        l.text == *b
                    }
                });
            out.push(Managed { start: i, end: j, version, current, target: if current { target } else { None } });
            i = j + 1;
            continue;
        }
        i += 1;
    }
    Ok(out)
}

fn span(a: usize, b: usize) -> String {
    if a == b {
        format!("line {}", a + 1)
    } else {
        format!("lines {}-{}", a + 1, b + 1)
    }
}

fn fix_inner(script: &str, want: Want) -> Result<(EmitterFix, Info), EmitterError> {
    let lines = split_lines(script);
    let n = lines.len();
    let mut info = Info::default();
    let mut notes = Vec::new();
    let mut removed = vec![false; n];

    // 1. Managed blocks (any version) are replaced as a whole, with the blank lines before them.
    let managed = find_managed(&lines)?;
    for m in &managed {
        info.managed += 1;
        for r in removed.iter_mut().take(m.end + 1).skip(m.start) {
            *r = true;
        }
        let mut k = m.start;
        while k > 0 && lines[k - 1].text.trim().is_empty() && !removed[k - 1] {
            k -= 1;
            removed[k] = true;
        }
        notes.push(format!(
            "{}: codex-fleet managed block v{}{}",
            span(m.start, m.end),
            m.version,
            if m.current { " (current; re-placed)" } else { " (older or edited)" }
        ));
    }
    let existing_target: Option<Option<String>> = managed.iter().rev().find(|m| m.current).map(|m| m.target.clone());
    let (stmts, kinds) = scan(&lines, &removed)?;

    // 2. Paragraphs: runs of lines not separated by blank lines; managed blocks separate too.
    let mut paras: Vec<Vec<usize>> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        match k {
            Kind::Blank | Kind::Skipped => {
                if !cur.is_empty() {
                    paras.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(i),
        }
    }
    if !cur.is_empty() {
        paras.push(cur);
    }
    let para_stmts = |p: &[usize]| -> Vec<usize> {
        let mut v: Vec<usize> = p
            .iter()
            .filter_map(|&l| if let Kind::Stmt(s) = kinds[l] { Some(s) } else { None })
            .collect();
        v.dedup();
        v
    };

    // 3. Walk back from the end: hotpatches are appended, so they form the script's tail
    //    (possibly around a final `exit`). Stop at the first paragraph that does something else.
    let mut hot_code = String::new();
    let mut last_removed = false;
    for p in paras.iter().rev() {
        let ss = para_stmts(p);
        let work: Vec<usize> = ss.iter().copied().filter(|&s| !is_terminal(&stmts[s])).collect();
        if work.is_empty() {
            if ss.is_empty() && last_removed {
                let text: String = p.iter().map(|&l| lines[l].text.to_ascii_lowercase()).collect();
                if ["hotpatch", "hot-patch", "hot patch", "2128", "sandbox", "bwrap"].iter().any(|w| text.contains(w)) {
                    for &l in p {
                        removed[l] = true;
                    }
                    remove_blanks_before(&mut removed, &kinds, p[0]);
                    notes.push(format!("{}: the hotpatch's comment", span(p[0], *p.last().unwrap())));
                    continue;
                }
            }
            last_removed = false;
            continue;
        }
        // The hotpatch part of the paragraph: from its first statement that emits sandbox keys
        // to the end, plus the assignments just above that feed it.
        let first_emit = work.iter().position(|&s| !emitted_keys(&stmts[s].code).is_empty());
        let mut take: Vec<usize> = match first_emit {
            Some(e) => work[e..].to_vec(),
            None => Vec::new(),
        };
        let mut feeds_from = first_emit.unwrap_or(work.len());
        let mut code: String = take.iter().map(|&s| stmts[s].code.as_str()).collect();
        code.push_str(&hot_code);
        while feeds_from > 0 {
            let st = &stmts[work[feeds_from - 1]];
            let feeds = st.cmds.is_empty()
                && st.func.is_none()
                && !st.assigns.is_empty()
                && st.assigns.iter().all(|a| mentions_var(&code, a));
            if !feeds {
                break;
            }
            feeds_from -= 1;
        }
        if first_emit.is_none() && !(last_removed && feeds_from == 0) {
            break;
        }
        let partial = feeds_from > 0;
        take.splice(0..0, work[feeds_from..first_emit.unwrap_or(work.len())].iter().copied());
        let emits = first_emit.is_some();
        if emits {
            for &s in &take {
                let st = &stmts[s];
                if st.func.is_some() {
                    return Err(unsafe_at(st.start + 1, "sandbox keys are emitted by a function definition at the end of the script; cannot tell how to replace it"));
                }
                if let Some((w, _)) = st.cmds.iter().find(|(w, _)| !HOTPATCH_COMMANDS.contains(&w.as_str())) {
                    return Err(unsafe_at(
                        st.start + 1,
                        format!("this block writes sandbox keys to config.toml but also runs `{w}`; cannot tell which part to replace: edit it by hand"),
                    ));
                }
            }
            info.hotpatches += 1;
        }
        // Remove the taken statements, the comments among them and directly above them (not
        // those directly above a kept `exit`), and the blank lines before them.
        let first_line = stmts[take[0]].start;
        let mut from = first_line;
        while from > 0 && kinds[from - 1] == Kind::Comment && !removed[from - 1] && p.contains(&(from - 1)) {
            from -= 1;
        }
        let keep: BTreeSet<usize> = ss
            .iter()
            .filter(|s| !take.contains(s))
            .flat_map(|&s| stmts[s].start..=stmts[s].end)
            .collect();
        let mut lines_in_p: Vec<usize> = p.iter().copied().filter(|&l| l >= from).collect();
        lines_in_p.sort_unstable();
        let mut last_line = from;
        for (pos, &l) in lines_in_p.iter().enumerate() {
            if keep.contains(&l) {
                continue;
            }
            if kinds[l] == Kind::Comment {
                let next_code = lines_in_p[pos..].iter().find(|&&x| kinds[x] != Kind::Comment);
                if next_code.is_some_and(|x| keep.contains(x)) {
                    continue;
                }
            }
            removed[l] = true;
            last_line = l;
        }
        remove_blanks_before(&mut removed, &kinds, from);
        let taken_code: String = take.iter().map(|&s| stmts[s].code.as_str()).collect();
        let what = if emits {
            format!("hotpatch that prepends {} to config.toml on every start (duplicate keys)", describe_emission(&taken_code))
        } else {
            "the hotpatch's variables".to_string()
        };
        hot_code.push_str(&taken_code);
        notes.push(format!("{}: {}", span(from, last_line), what));
        last_removed = true;
        if partial {
            break;
        }
    }

    // 4. What stays. A top-level unconditional exit ends the script: the block goes before the
    //    first one, and nothing may follow it.
    let kept: Vec<usize> = (0..stmts.len()).filter(|&s| !removed[stmts[s].start]).collect();
    let mut insert_before: Option<usize> = None;
    for (pos, &s) in kept.iter().enumerate() {
        if is_terminal(&stmts[s]) {
            if let Some(&after) = kept[pos + 1..].iter().find(|&&x| !is_terminal(&stmts[x])) {
                return Err(unsafe_at(
                    stmts[after].start + 1,
                    format!("this follows the unconditional `{}` at line {}: cannot tell where the script really ends", stmts[s].first[0], stmts[s].start + 1),
                ));
            }
            let mut at = stmts[s].start;
            while at > 0 && kinds[at - 1] == Kind::Comment && !removed[at - 1] {
                at -= 1;
            }
            insert_before = Some(at);
            break;
        }
    }
    if insert_before.is_none() {
        if let Some(&last) = kept.last() {
            let st = &stmts[last];
            if let Some(cmd) = st.first.first() {
                if let Some(f) = kept.iter().map(|&s| &stmts[s]).find(|f| f.func.as_deref() == Some(cmd.as_str())) {
                    if f.cmds.iter().any(|(w, _)| w == "exit" || w == "exec") {
                        return Err(unsafe_at(
                            st.start + 1,
                            format!("the script ends by calling `{cmd}`, which can exit: a block after it might never run; place it by hand"),
                        ));
                    }
                }
            }
        }
    }

    // 5. Sandbox keys emitted elsewhere must be the template's own strip-then-emit code.
    let mut stripped: BTreeSet<&'static str> = BTreeSet::new();
    let mut template_emits = false;
    let mut values: BTreeSet<String> = BTreeSet::new();
    let mut emits_swr = false;
    for &s in &kept {
        let st = &stmts[s];
        let keys = emitted_keys(&st.code);
        if !keys.is_empty() {
            if let Some(k) = keys.iter().find(|k| !stripped.contains(*k)) {
                return Err(unsafe_at(
                    st.start + 1,
                    format!("`{k}` is written to config.toml here on every start without removing the previous copy, and not at the end of the script where hotpatches go: cannot tell how to replace it; fix by hand"),
                ));
            }
            template_emits = true;
            emits_swr |= keys.contains(K_SWR);
            for c in EMIT_VALUE.captures_iter(&st.code) {
                values.insert(format!("{}={}", &c[1], &c[2]));
            }
        }
        stripped.extend(stripped_keys(&st.code));
    }
    let upstream_fixed = template_emits
        && !emits_swr
        && values == BTreeSet::from(["approval_policy=never".to_string(), "sandbox_mode=danger-full-access".to_string()]);

    // 6. The file the block fixes.
    let target: Option<String> = match want {
        Want::Path(p) => Some(p),
        Want::Keep if existing_target.is_some() => existing_target.clone().flatten(),
        Want::Keep | Want::Derive => {
            let kept_stmts: Vec<&Stmt> = kept.iter().map(|&s| &stmts[s]).collect();
            target_variable(&kept_stmts)
        }
    };
    let block = managed_block_for(target.as_deref());
    if let Some(Some(old)) = &existing_target {
        if target.as_ref() != Some(old) {
            notes.push(format!("the managed block fixed {old}; now {}", target.as_deref().unwrap_or("$CODEX_HOME/config.toml of whoever runs it")));
        }
    }

    // 7. Assemble.
    let eol = if lines.first().is_some_and(|l| l.term == "\r\n") { "\r\n" } else { "\n" };
    let mut out_lines: Vec<(String, String)> = Vec::new(); // (text, term)
    let insert_at = if upstream_fixed { None } else { Some(insert_before.unwrap_or(n)) };
    let push_block = |out: &mut Vec<(String, String)>| {
        while out.last().is_some_and(|(t, _)| t.trim().is_empty()) {
            out.pop();
        }
        if let Some(last) = out.last_mut() {
            if last.1.is_empty() {
                last.1 = eol.to_string();
            }
            out.push((String::new(), eol.to_string()));
        }
        for b in block.lines() {
            out.push((b.to_string(), eol.to_string()));
        }
    };
    let mut skip_blank_after = false;
    for (i, l) in lines.iter().enumerate() {
        if insert_at == Some(i) {
            push_block(&mut out_lines);
            skip_blank_after = true;
        }
        if removed[i] {
            continue;
        }
        if skip_blank_after {
            if l.text.trim().is_empty() {
                continue;
            }
            out_lines.push((String::new(), eol.to_string()));
            skip_blank_after = false;
        }
        out_lines.push((l.text.to_string(), l.term.to_string()));
    }
    if insert_at == Some(n) {
        push_block(&mut out_lines);
    }
    let mut text = String::with_capacity(script.len() + block.len());
    for (t, term) in &out_lines {
        text.push_str(t);
        text.push_str(term);
    }
    let changed = text != script;
    // Notes in script order ("line 7" / "lines 104-117" sort by their first line).
    notes.sort_by_key(|n| {
        n.trim_start_matches("lines ").trim_start_matches("line ").split(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse::<usize>().ok()).unwrap_or(usize::MAX)
    });
    if !changed {
        notes.clear();
    } else if insert_at.is_some() && managed.iter().all(|m| !m.current) {
        let where_ = match insert_before {
            Some(at) => format!("before the final `{}` (line {})", lines[at..].iter().find(|l| !l.text.trim_start().starts_with('#')).map(|l| l.text.trim()).unwrap_or("exit"), at + 1),
            None => "at the end".to_string(),
        };
        let fixes = match &target {
            Some(t) => format!("fixing {t}"),
            None => "fixing $CODEX_HOME/config.toml of whoever runs it".to_string(),
        };
        notes.push(format!("added codex-fleet managed block v2 ({fixes}) {where_}"));
    }
    Ok((EmitterFix { text, changed, replaced: notes }, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = "#!/bin/sh\nset -eu\nCONFIG_TOML=\"$HOME/.codex/config.toml\"\ncat >> \"$CONFIG_TOML\" <<EOF\n[mcp_servers.molecule]\ncommand = \"x\"\nEOF\necho done\n";

    #[test]
    fn appends_block_and_is_idempotent() {
        let f = fix_emitter(ORIGINAL).unwrap();
        assert!(f.changed);
        assert!(f.text.starts_with(ORIGINAL));
        assert!(f.text.ends_with(managed_block()));
        assert_eq!(classify(ORIGINAL), EmitterState::NoSandboxEmission);
        let g = fix_emitter(&f.text).unwrap();
        assert!(!g.changed);
        assert_eq!(g.text, f.text);
        assert_eq!(classify(&f.text), EmitterState::Fixed);
    }

    #[test]
    fn replaces_prepend_hotpatch() {
        let s = format!("{ORIGINAL}\n# HOTPATCH core#2128\nCFG=\"$HOME/.codex/config.toml\"\n{{ printf 'sandbox_mode = \"workspace-write\"\\n\\n[sandbox_workspace_write]\\nnetwork_access = true\\n'; cat \"$CFG\"; }} > \"$CFG.new\" && mv \"$CFG.new\" \"$CFG\"\n");
        assert_eq!(classify(&s), EmitterState::HotpatchNotIdempotent);
        let f = fix_emitter(&s).unwrap();
        assert_eq!(f.text, fix_emitter(ORIGINAL).unwrap().text);
        assert!(f.replaced.iter().any(|r| r.contains("hotpatch that prepends sandbox_mode = \"workspace-write\"")), "{:?}", f.replaced);
    }

    #[test]
    fn block_goes_before_final_exit() {
        let s = "#!/bin/sh\necho hi\n\nexit 0\n";
        let f = fix_emitter(s).unwrap();
        assert_eq!(f.text, format!("#!/bin/sh\necho hi\n\n{}\nexit 0\n", managed_block()));
        assert!(!fix_emitter(&f.text).unwrap().changed);
    }

    #[test]
    fn refuses_code_after_exit() {
        let e = fix_emitter("#!/bin/sh\nexit 0\necho later\n").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
    }

    #[test]
    fn refuses_unterminated_heredoc() {
        let e = fix_emitter("#!/bin/sh\ncat <<EOF\nx\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn exec_and_case_shapes() {
        // `exec` with only redirections does not end the script; `exec prog` does.
        let s = "#!/bin/sh\nexec >>/tmp/log 2>&1\ncase \"${1:-}\" in\n  a) echo a ;;\n  *) : ;;\nesac\necho \"$(date)\" # (done)\nexec gosu agent molecule-runtime\n";
        let f = fix_emitter(s).unwrap();
        let want = format!("#!/bin/sh\nexec >>/tmp/log 2>&1\ncase \"${{1:-}}\" in\n  a) echo a ;;\n  *) : ;;\nesac\necho \"$(date)\" # (done)\n\n{}\nexec gosu agent molecule-runtime\n", managed_block());
        assert_eq!(f.text, want);
        assert!(!fix_emitter(&f.text).unwrap().changed);
    }

    const AGENT: &str = "/home/agent/.codex/config.toml";

    #[test]
    fn block_names_the_agents_config() {
        let f = fix_emitter_for(ORIGINAL, Some(AGENT)).unwrap();
        assert!(f.text.contains("\n  _cf_cfg='/home/agent/.codex/config.toml'\n"), "{}", f.text);
        assert_eq!(f.text.matches("_cf_cfg='").count(), 1);
        assert_eq!(installed_target(&f.text), Some(Some(AGENT.to_string())));
        assert!(f.replaced.iter().any(|n| n.contains("v2 (fixing /home/agent/.codex/config.toml)")), "{:?}", f.replaced);
        // Re-planned for the same file: no change. For another: the target is replaced.
        let again = fix_emitter_for(&f.text, Some(AGENT)).unwrap();
        assert!(!again.changed && again.text == f.text);
        let other = fix_emitter_for(&f.text, Some("/srv/codex/config.toml")).unwrap();
        assert!(other.changed);
        assert_eq!(installed_target(&other.text), Some(Some("/srv/codex/config.toml".into())));
        assert!(other.replaced.iter().any(|n| n.contains("fixed /home/agent/.codex/config.toml; now /srv/codex/config.toml")), "{:?}", other.replaced);
        assert_eq!(other.text.matches("# >>> codex-fleet managed block").count(), 1);
        // Any current block is the fixed shape; the plan decides which file it must name.
        assert_eq!(classify(&f.text), EmitterState::Fixed);
        assert_eq!(classify(&other.text), EmitterState::Fixed);
        // Without a target: computed at boot, as v1 did.
        assert_eq!(installed_target(&fix_emitter(ORIGINAL).unwrap().text), Some(None));
    }

    #[test]
    fn unsafe_targets_are_refused() {
        for bad in [
            "home/agent/.codex/config.toml",
            "/home/agent/.codex/config.toml'; rm -rf / #/config.toml",
            "/home/a b/.codex/config.toml",
            "/home/agent/$(id)/config.toml",
            "/home/agent/../root/config.toml",
            "/home/agent/.codex/config.toml\n",
            "/home/agent/\u{1b}[2J/config.toml",
            "/home/agent/.codex/other.toml",
            "",
        ] {
            assert!(!safe_target(bad), "{bad:?}");
            let e = fix_emitter_for(ORIGINAL, Some(bad)).unwrap_err().to_string();
            assert!(e.contains("not an absolute path of safe characters"), "{e}");
            assert!(!e.contains('\u{1b}') && !e.contains('\n'), "escaped: {e}");
        }
        assert!(safe_target("/data/codex-home_2/.codex/config.toml"));
        // An edited target line is not the current block: it is replaced.
        let f = fix_emitter_for(ORIGINAL, Some(AGENT)).unwrap().text;
        let edited = f.replace("_cf_cfg='/home/agent/.codex/config.toml'", "_cf_cfg='/tmp/$(id)/config.toml'");
        assert_eq!(classify(&edited), EmitterState::OlderManagedBlock);
        assert_eq!(fix_emitter_for(&edited, Some(AGENT)).unwrap().text, f);
    }

    #[test]
    fn the_emitters_own_target_variable() {
        let s = "#!/bin/sh\nset -eu\nCFG=/home/agent/.codex/config.toml\ncat > \"$CFG\" <<EOF\nmodel = \"x\"\nEOF\ncat >>\"${CFG}\" <<EOF\n[t]\nEOF\n";
        assert_eq!(emitter_target(s).as_deref(), Some(AGENT));
        let f = fix_emitter(s).unwrap();
        assert_eq!(installed_target(&f.text), Some(Some(AGENT.into())));
        // The agent's path as the scan found it wins over the variable.
        assert_eq!(installed_target(&fix_emitter_for(s, Some("/srv/c/config.toml")).unwrap().text), Some(Some("/srv/c/config.toml".into())));
        for (s, why) in [
            ("#!/bin/sh\nCFG=/home/agent/.codex/config.toml\necho \"$CFG\"\n", "never written"),
            ("#!/bin/sh\nCFG=\"$HOME/.codex/config.toml\"\necho x > \"$CFG\"\n", "not literal"),
            ("#!/bin/sh\nCFG=/a/config.toml\necho x > \"$CFG\"\nCFG=/b/config.toml\n", "assigned twice"),
            ("#!/bin/sh\nA=/a/config.toml\nB=/b/config.toml\necho x > \"$A\"\necho y >> \"$B\"\n", "two targets"),
            ("#!/bin/sh\nCFG=/a/config.toml\necho x > \"$CFG.tmp\"\n", "another file"),
            ("#!/bin/sh\nCFG='/a b/config.toml'\necho x > \"$CFG\"\n", "unsafe"),
        ] {
            assert_eq!(emitter_target(s), None, "{why}");
        }
        let s = "#!/bin/sh\nexport CFG=\"/x/config.toml\"\nprintf 'a' | tee -a \"$CFG\"\n";
        assert_eq!(emitter_target(s).as_deref(), Some("/x/config.toml"));
        let s = "#!/bin/sh\nCFG='/x/config.toml'\nprintf a > /tmp/n && mv -f /tmp/n $CFG\n";
        assert_eq!(emitter_target(s).as_deref(), Some("/x/config.toml"));
    }

    #[test]
    fn v1_block_is_replaced_by_v2() {
        let v1_fixed = {
            // v1: the v2 text without the generated line, and v1's header.
            let b = managed_block().replace("managed block v2", "managed block v1").replace("  _cf_cfg=''\n", "");
            format!("{ORIGINAL}\n{b}")
        };
        assert_eq!(classify(&v1_fixed), EmitterState::OlderManagedBlock);
        let f = fix_emitter_for(&v1_fixed, Some(AGENT)).unwrap();
        assert_eq!(f.text, fix_emitter_for(ORIGINAL, Some(AGENT)).unwrap().text);
        assert!(f.replaced.iter().any(|n| n.contains("managed block v1 (older or edited)")), "{:?}", f.replaced);
    }

    #[test]
    fn crlf_kept() {
        let s = ORIGINAL.replace('\n', "\r\n");
        let f = fix_emitter(&s).unwrap();
        assert!(f.text.starts_with(&s));
        assert!(!f.text.replace("\r\n", "").contains('\n'));
        assert!(!fix_emitter(&f.text).unwrap().changed);
    }
}
