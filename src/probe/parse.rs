//! The one parser of the probe's output (every backend uses it), and the encoding both the
//! script and the demo's renderer ([`super::render`]) write.
//!
//! # Format 1
//! ```text
//! #cfp 1 s                      header: format version, `s` summary or `d` detail
//! id=1000:1000:agent cap=0 ...  items `key=value`; summary: one line, detail: one per line
//! #cfp 1 end 17                 trailer: the number of items (missing = truncated)
//! ```
//! Values hold no blanks: free text is percent-encoded (`%XX`, bytes outside
//! `[A-Za-z0-9._~/:@+=-]`). Items, in the script's order:
//!
//! | key | value |
//! |---|---|
//! | `err` | probe could not run (then it is the only item) |
//! | `id` | `uid:gid:user` |
//! | `cap` | CapEff hex (summary: leading zeros dropped) or `-` |
//! | `um` | uid_map lines joined by `;`, blanks folded and sent as `_`; `-` unreadable |
//! | `su` | /etc/subuid entry: `o` / `a` / `e` |
//! | `sc` | `unprivileged_userns_clone,max_user_namespaces,apparmor_restrict_unprivileged_userns`, `-` absent |
//! | `px` | summary: `pid/argv0base,arg1,...;pid/...` (argv[1] as basename too after `node`), or `pid;pid*` when argv did not fit in 90 bytes |
//! | `p` | detail, one per process: `pid,cwd-or--,arg0,arg1,...` |
//! | `ns` | steps `unshare --user`, `unshare --user --map-root-user`, bwrap probe |
//! | `bw` | bwrap path, `+` bundled with codex (summary), `-` none; `bwb=1` bundled (detail) |
//! | `cx` | codex path or `-`; then `cv` (version without `codex-cli `, `!text` otherwise, `-`), `pi` (prompt-input step), `ef` |
//! | `ef` | effective mode: sandbox `D`/`W`/`R`, approval `N`/`R`/`F`/`U`, network `1`/`0`; `-` unknown, `(text)` other |
//! | `ch` | CODEX_HOME |
//! | `cf`, `em` | config.toml / emitter: `sha256:size` (summary: 12 hex digits), `-` absent, `!` unreadable, `?` for no hash tool; `emp` emitter path if not the default |
//! | `cfx`, `emx` | redacted content (mode `files`) |
//! | `gp`, `gc` | Gitea plain / through codex: `step:status` (status empty if nothing answered), `a` absent |
//! | `sy`, `rq`, `mc` | `/etc/codex/config.toml`, `requirements.toml`, `managed_config.toml`, as `cf` (detail and files only); `syx`, `rqx`, `mcx` their redacted content |
//! | `pjd`, `pj`, `pjx` | the project directory whose `.codex/config.toml` codex may load (nearest from its cwd up to the project root), that file as `cf`, its content; `pj=-` none |
//! | `ly` | summary only, when any exists: letters of the layer files present (`s` system, `r` requirements, `m` managed_config, `p` project) |
//! | `hs` | codex's session records of the last 24 h: `N,D,S,A` commands, sandbox denials, succeeded, minutes since the current run of denials began (`-` none); `e` unreadable; absent: no sessions dir |
//! | `e.<step>` | detail: the step's stderr (un, ur, bw, pi, gp, gc) |
//!
//! A step is an outcome letter (`o` ok, `d` denied, `a` absent, `e` error), the exit code if
//! any, and a [`Signature`] letter if its stderr matched one. Unknown keys are ignored (newer
//! probes may add items), unknown values of known keys are errors.

use super::model::*;
use thiserror::Error;

/// The emitter the probe hashes unless told otherwise (an `emp` item).
pub const DEFAULT_EMITTER: &str = "/usr/local/bin/codex_mcp_config.sh";
/// What a summary's `bw=+` (codex's bundled bwrap) becomes in [`ProbeReport::bwrap_path`].
pub const BUNDLED_BWRAP: &str = "codex-resources/bwrap";
/// The format version this parser reads and the script writes.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("no probe header (`#cfp {FORMAT} s|d`) in the output")]
    NoHeader,
    #[error(
        "line {line}: probe output format {version} is not supported (this console reads {FORMAT})"
    )]
    UnsupportedVersion { line: usize, version: String },
    #[error("truncated: no trailer `#cfp {FORMAT} end N` after the header on line {header_line} ({items} items read)")]
    Truncated { header_line: usize, items: usize },
    #[error("line {line}: trailer says {declared} items, {found} were read (output damaged)")]
    CountMismatch {
        line: usize,
        declared: usize,
        found: usize,
    },
    #[error("line {line}: item {item:?} is not key=value")]
    BadItem { line: usize, item: String },
    #[error("line {line}: bad value for {key}: {value:?} ({why})")]
    BadValue {
        line: usize,
        key: String,
        value: String,
        why: &'static str,
    },
}

const SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~/:@+=-";

/// Percent-encode exactly as the probe's awk does.
pub fn pct_encode(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if SAFE.contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02x}"));
        }
    }
    o
}

/// Decode `%XX` (either case); invalid UTF-8 becomes U+FFFD.
pub fn pct_decode(s: &str) -> Result<String, &'static str> {
    // Runs without an escape are copied whole (a scan decodes every agent's emitter, ~4.6 KB,
    // and this was the biggest share of parsing a scan's answers, measured).
    let b = s.as_bytes();
    let mut o = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let Some(j) = memchr::memchr(b'%', &b[i..]) else {
            o.extend_from_slice(&b[i..]);
            break;
        };
        o.extend_from_slice(&b[i..i + j]);
        i += j;
        let hex = |c: u8| (c as char).to_digit(16);
        match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (Some(h), Some(l)) => o.push((h * 16 + l) as u8),
            _ => {
                let h = s.get(i + 1..i + 3).ok_or("truncated %-escape")?;
                o.push(u8::from_str_radix(h, 16).map_err(|_| "bad %-escape")?);
            }
        }
        i += 3;
    }
    Ok(String::from_utf8(o).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

pub(crate) fn outcome_code(o: Outcome) -> char {
    match o {
        Outcome::Ok => 'o',
        Outcome::Denied => 'd',
        Outcome::Absent => 'a',
        Outcome::Error => 'e',
    }
}

fn outcome_from(c: char) -> Option<Outcome> {
    Some(match c {
        'o' => Outcome::Ok,
        'd' => Outcome::Denied,
        'a' => Outcome::Absent,
        'e' => Outcome::Error,
        _ => return None,
    })
}

/// `o0`, `d1u`, `et`, `a`: outcome, rc, signature.
fn step_value(v: &str) -> Result<Step, &'static str> {
    let mut ch = v.chars();
    let outcome = ch
        .next()
        .and_then(outcome_from)
        .ok_or("step must start with o/d/a/e")?;
    let rest = ch.as_str();
    let digits = rest.bytes().take_while(|c| c.is_ascii_digit()).count();
    let rc = if digits > 0 {
        Some(rest[..digits].parse().map_err(|_| "bad exit code")?)
    } else {
        None
    };
    let sig = &rest[digits..];
    let signature = match sig.len() {
        0 => None,
        1 => Some(
            Signature::from_code(sig.chars().next().unwrap()).ok_or("unknown signature letter")?,
        ),
        _ => return Err("trailing garbage after the step"),
    };
    Ok(Step {
        outcome,
        rc,
        stderr: String::new(),
        signature,
    })
}

fn http_value(v: &str) -> Result<Http, &'static str> {
    if v == "a" {
        return Ok(Http {
            outcome: Outcome::Absent,
            ..Http::default()
        });
    }
    let (s, code) = v.split_once(':').ok_or("expected step:status")?;
    let st = step_value(s)?;
    let status = if code.is_empty() {
        None
    } else {
        Some(code.parse().map_err(|_| "bad HTTP status")?)
    };
    Ok(Http {
        status,
        outcome: st.outcome,
        rc: st.rc,
        signature: st.signature,
        stderr: String::new(),
    })
}

fn opt(v: &str) -> Result<Option<String>, &'static str> {
    if v == "-" {
        Ok(None)
    } else {
        pct_decode(v).map(Some)
    }
}

fn file_value(f: &mut FileInfo, v: &str) -> Result<(), &'static str> {
    match v {
        "-" => f.outcome = Outcome::Absent,
        "!" => f.outcome = Outcome::Error,
        _ => {
            let (h, z) = v.split_once(':').ok_or("expected sha256:size")?;
            f.size = Some(z.parse().map_err(|_| "bad size")?);
            if h == "?" {
                f.outcome = Outcome::Error;
            } else {
                if h.len() < 12 || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err("bad sha256");
                }
                f.outcome = Outcome::Ok;
                f.sha256 = Some(h.to_ascii_lowercase());
            }
        }
    }
    Ok(())
}

/// One component of `ef`: a letter or `(text)`.
fn ef_parts(v: &str) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut rest = v;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('(') {
            let e = r.find(')').ok_or("unclosed ( in ef")?;
            out.push(format!("({})", &r[..e]));
            rest = &r[e + 1..];
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c.to_string());
            rest = &rest[c.len_utf8()..];
        }
    }
    if out.len() != 3 {
        return Err("ef needs three parts");
    }
    Ok(out)
}

fn ef_value(v: &str) -> Result<CodexEffective, &'static str> {
    let p = ef_parts(v)?;
    let text = |s: &str| {
        s.strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .map(String::from)
    };
    let sandbox_mode = match p[0].as_str() {
        "D" => Some("danger-full-access".into()),
        "W" => Some("workspace-write".into()),
        "R" => Some("read-only".into()),
        "-" => None,
        o => Some(text(o).ok_or("unknown sandbox letter")?),
    };
    let approval_policy = match p[1].as_str() {
        "N" => Some("never".into()),
        "R" => Some("on-request".into()),
        "F" => Some("on-failure".into()),
        "U" => Some("untrusted".into()),
        "-" => None,
        o => Some(text(o).ok_or("unknown approval letter")?),
    };
    let network_access = match p[2].as_str() {
        "1" => Some(true),
        "0" => Some(false),
        "-" => None,
        _ => return Err("network must be 1, 0 or -"),
    };
    Ok(CodexEffective {
        sandbox_mode,
        approval_policy,
        network_access,
    })
}

fn proc_summary(v: &str) -> Result<(Vec<CodexProcess>, bool), &'static str> {
    if let Some(pids) = v.strip_suffix('*') {
        let ps = pids
            .split(';')
            .map(|p| {
                p.parse().map(|pid| CodexProcess {
                    pid,
                    ..Default::default()
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "bad pid")?;
        return Ok((ps, true));
    }
    let mut ps = Vec::new();
    for one in v.split(';') {
        let (pid, argv) = one.split_once('/').ok_or("expected pid/argv")?;
        let argv = argv
            .split(',')
            .map(pct_decode)
            .collect::<Result<Vec<_>, _>>()?;
        ps.push(CodexProcess {
            pid: pid.parse().map_err(|_| "bad pid")?,
            argv,
            cwd: None,
        });
    }
    Ok((ps, false))
}

fn proc_detail(v: &str) -> Result<CodexProcess, &'static str> {
    let mut it = v.split(',');
    let pid = it.next().unwrap_or("").parse().map_err(|_| "bad pid")?;
    let cwd = opt(it.next().ok_or("expected pid,cwd,argv")?)?;
    let argv = it.map(pct_decode).collect::<Result<Vec<_>, _>>()?;
    Ok(CodexProcess { pid, argv, cwd })
}

/// The layer file an item (`sy`, `rq`, `mc`, `pj`) speaks of, reported from now on (absent
/// until an item says otherwise; the system files at their fixed paths).
fn layer<'a>(r: &'a mut ProbeReport, key: &str) -> &'a mut FileInfo {
    use crate::codex::config::{MANAGED_CONFIG_PATH, REQUIREMENTS_PATH, SYSTEM_CONFIG_PATH};
    let (slot, path) = match key {
        "sy" => (&mut r.system_config, SYSTEM_CONFIG_PATH),
        "rq" => (&mut r.requirements, REQUIREMENTS_PATH),
        "mc" => (&mut r.managed_config, MANAGED_CONFIG_PATH),
        _ => (&mut r.project_config, ""),
    };
    slot.get_or_insert_with(|| FileInfo { path: path.into(), outcome: Outcome::Absent, ..Default::default() })
}

/// `N,D,S,A` or `e`.
fn sessions_value(v: &str) -> Result<SessionStats, &'static str> {
    if v == "e" {
        return Ok(SessionStats { error: true, ..Default::default() });
    }
    let p: Vec<&str> = v.split(',').collect();
    if p.len() != 4 {
        return Err("expected commands,denials,succeeded,minutes");
    }
    let n = |s: &str| s.parse::<u32>().map_err(|_| "counts are numbers");
    Ok(SessionStats {
        error: false,
        commands: n(p[0])?,
        sandbox_denials: n(p[1])?,
        succeeded: n(p[2])?,
        stalled_minutes: if p[3] == "-" { None } else { Some(n(p[3])?) },
    })
}

/// Parse one agent's probe output (a summary or a detail). Text before the header (a
/// backend's framing, stray stderr) and after the trailer is ignored.
pub fn parse(text: &str) -> Result<ProbeReport, ParseError> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut k = 0;
    let (header_line, detail) = loop {
        let l = lines.get(k).ok_or(ParseError::NoHeader)?;
        let t: Vec<&str> = l.split_whitespace().collect();
        if t.first() == Some(&"#cfp") && t.len() == 3 && t[2] != "end" {
            if t[1] != FORMAT.to_string() {
                return Err(ParseError::UnsupportedVersion {
                    line: k + 1,
                    version: t[1].into(),
                });
            }
            match t[2] {
                "s" => break (k + 1, false),
                "d" => break (k + 1, true),
                _ => {}
            }
        }
        k += 1;
    };
    let mut items: Vec<(usize, &str, &str)> = Vec::new();
    let mut trailer = None;
    for (n, l) in lines.iter().enumerate().skip(header_line) {
        // The same split either way (ASCII whitespace is Unicode's but for the vertical tab);
        // the ASCII one is several times faster on long values.
        let ascii = l.is_ascii() && memchr::memchr(0x0b, l.as_bytes()).is_none();
        let t: Vec<&str> = if ascii { l.split_ascii_whitespace().collect() } else { l.split_whitespace().collect() };
        if t.first() == Some(&"#cfp") {
            if t.len() == 4 && t[1] == FORMAT.to_string() && t[2] == "end" {
                let declared = t[3].parse().map_err(|_| ParseError::BadItem {
                    line: n + 1,
                    item: l.to_string(),
                })?;
                trailer = Some((n + 1, declared));
                break;
            }
            // A second header: the first output was cut off.
            break;
        }
        for it in t {
            let (key, val) = it.split_once('=').ok_or(ParseError::BadItem {
                line: n + 1,
                item: it.into(),
            })?;
            items.push((n + 1, key, val));
        }
    }
    let (tline, declared) = trailer.ok_or(ParseError::Truncated {
        header_line,
        items: items.len(),
    })?;
    if declared != items.len() {
        return Err(ParseError::CountMismatch {
            line: tline,
            declared,
            found: items.len(),
        });
    }

    let mut r = ProbeReport {
        format: FORMAT,
        detail,
        subuid: Outcome::Absent,
        prompt_input: Step {
            outcome: Outcome::Absent,
            ..Step::default()
        },
        gitea_plain: Http {
            outcome: Outcome::Absent,
            ..Http::default()
        },
        gitea_codex: Http {
            outcome: Outcome::Absent,
            ..Http::default()
        },
        ..ProbeReport::default()
    };
    r.emitter.path = DEFAULT_EMITTER.into();
    r.emitter.outcome = Outcome::Absent;
    r.config.outcome = Outcome::Absent;
    for (line, key, val) in items {
        let bad = |why: &'static str| ParseError::BadValue {
            line,
            key: key.into(),
            value: val.into(),
            why,
        };
        match key {
            "err" => r.probe_error = Some(pct_decode(val).map_err(bad)?),
            "id" => {
                let mut p = val.splitn(3, ':');
                let (u, g, n) = (
                    p.next().unwrap_or(""),
                    p.next().ok_or(bad("expected uid:gid:user"))?,
                    p.next().ok_or(bad("expected uid:gid:user"))?,
                );
                r.uid = if u.is_empty() {
                    None
                } else {
                    Some(u.parse().map_err(|_| bad("bad uid"))?)
                };
                r.gid = if g.is_empty() {
                    None
                } else {
                    Some(g.parse().map_err(|_| bad("bad gid"))?)
                };
                let n = pct_decode(n).map_err(bad)?;
                r.user = (!n.is_empty()).then_some(n);
            }
            "cap" => {
                r.cap_eff = match val {
                    "-" => None,
                    v if v.bytes().all(|c| c.is_ascii_hexdigit()) && !v.is_empty() => {
                        Some(format!("{v:0>16}"))
                    }
                    _ => return Err(bad("CapEff must be hex")),
                }
            }
            "um" => r.uid_map = opt(val).map_err(bad)?.map(|m| m.replace('_', " ")),
            "su" => {
                r.subuid = val
                    .chars()
                    .next()
                    .filter(|_| val.len() == 1)
                    .and_then(outcome_from)
                    .ok_or(bad("o/a/e"))?
            }
            "sc" => {
                let v: Vec<&str> = val.split(',').collect();
                if v.len() != 3 {
                    return Err(bad("three sysctls"));
                }
                r.sysctl_unprivileged_userns_clone = opt(v[0]).map_err(bad)?;
                r.sysctl_max_user_namespaces = opt(v[1]).map_err(bad)?;
                r.sysctl_apparmor_restrict_unprivileged_userns = opt(v[2]).map_err(bad)?;
            }
            "px" => {
                let (ps, elided) = proc_summary(val).map_err(bad)?;
                r.codex_processes = ps;
                r.codex_processes_elided = elided;
            }
            "p" => r.codex_processes.push(proc_detail(val).map_err(bad)?),
            "ns" => {
                let v: Vec<&str> = val.split(',').collect();
                if v.len() != 3 {
                    return Err(bad("three steps"));
                }
                let keep = |old: &Step, mut s: Step| {
                    s.stderr = old.stderr.clone();
                    s
                };
                r.userns = keep(&r.userns, step_value(v[0]).map_err(bad)?);
                r.userns_map_root = keep(&r.userns_map_root, step_value(v[1]).map_err(bad)?);
                r.bwrap = keep(&r.bwrap, step_value(v[2]).map_err(bad)?);
            }
            "bw" => {
                r.bwrap_path = match val {
                    "+" => {
                        r.bwrap_bundled = true;
                        Some(BUNDLED_BWRAP.into())
                    }
                    _ => opt(val).map_err(bad)?,
                }
            }
            "bwb" => r.bwrap_bundled = val == "1",
            "cx" => r.codex_path = opt(val).map_err(bad)?,
            "cv" => {
                r.codex_version = match val {
                    "-" => None,
                    v => match v.strip_prefix('!') {
                        Some(t) => Some(pct_decode(t).map_err(bad)?),
                        None => Some(format!("codex-cli {}", pct_decode(v).map_err(bad)?)),
                    },
                }
            }
            "pi" => {
                let s = step_value(val).map_err(bad)?;
                r.prompt_input = Step {
                    stderr: std::mem::take(&mut r.prompt_input.stderr),
                    ..s
                };
            }
            "ef" => r.effective = Some(ef_value(val).map_err(bad)?),
            "ch" => r.codex_home = Some(pct_decode(val).map_err(bad)?),
            "cf" => file_value(&mut r.config, val).map_err(bad)?,
            "em" => file_value(&mut r.emitter, val).map_err(bad)?,
            "emp" => r.emitter.path = pct_decode(val).map_err(bad)?,
            "cfx" => r.config.redacted = Some(pct_decode(val).map_err(bad)?.into()),
            "emx" => r.emitter.redacted = Some(pct_decode(val).map_err(bad)?.into()),
            "sy" | "rq" | "mc" | "pj" => file_value(layer(&mut r, &key[..2]), val).map_err(bad)?,
            "syx" | "rqx" | "mcx" | "pjx" => layer(&mut r, &key[..2]).redacted = Some(pct_decode(val).map_err(bad)?.into()),
            "pjd" => {
                let d = pct_decode(val).map_err(bad)?;
                layer(&mut r, "pj").path = format!("{}/.codex/config.toml", d.trim_end_matches('/'));
            }
            "ly" => {
                for c in val.chars() {
                    let k = match c {
                        's' => "sy",
                        'r' => "rq",
                        'm' => "mc",
                        'p' => "pj",
                        _ => return Err(bad("layer letters are s, r, m, p")),
                    };
                    layer(&mut r, k).outcome = Outcome::Ok;
                }
            }
            "hs" => r.sessions = Some(sessions_value(val).map_err(bad)?),
            "gp" => {
                r.gitea_plain = Http {
                    stderr: std::mem::take(&mut r.gitea_plain.stderr),
                    ..http_value(val).map_err(bad)?
                }
            }
            "gc" => {
                r.gitea_codex = Http {
                    stderr: std::mem::take(&mut r.gitea_codex.stderr),
                    ..http_value(val).map_err(bad)?
                }
            }
            _ if key.starts_with("e.") => {
                let e = pct_decode(val).map_err(bad)?;
                match &key[2..] {
                    "un" => r.userns.stderr = e,
                    "ur" => r.userns_map_root.stderr = e,
                    "bw" => r.bwrap.stderr = e,
                    "pi" => r.prompt_input.stderr = e,
                    "gp" => r.gitea_plain.stderr = e,
                    "gc" => r.gitea_codex.stderr = e,
                    _ => {}
                }
            }
            _ => {} // an item of a newer probe
        }
    }
    if let Some(ch) = &r.codex_home {
        r.config.path = format!("{}/config.toml", ch.trim_end_matches('/'));
    }
    Ok(r)
}

/// A detail probe's report laid over a summary's: whatever the detail knows wins (it is the
/// newer and fuller look); what it lacks is kept from the summary.
pub fn merge(summary: &ProbeReport, detail: &ProbeReport) -> ProbeReport {
    let mut r = detail.clone();
    let s = summary;
    macro_rules! keep {
        ($($f:ident).+) => { if r.$($f).+.is_none() { r.$($f).+ = s.$($f).+.clone(); } };
    }
    keep!(uid);
    keep!(gid);
    keep!(user);
    keep!(cap_eff);
    keep!(uid_map);
    keep!(bwrap_path);
    keep!(codex_path);
    keep!(codex_version);
    keep!(effective);
    keep!(codex_home);
    keep!(config.sha256);
    keep!(config.size);
    keep!(config.redacted);
    keep!(emitter.sha256);
    keep!(emitter.size);
    keep!(emitter.redacted);
    keep!(sessions);
    keep!(system_config);
    keep!(requirements);
    keep!(managed_config);
    keep!(project_config);
    if r.codex_processes.is_empty() && !s.codex_processes.is_empty() {
        r.codex_processes = s.codex_processes.clone();
        r.codex_processes_elided = s.codex_processes_elided;
    }
    r.detail = detail.detail || summary.detail;
    r
}

/// [`merge`] as a method.
impl ProbeReport {
    pub fn with_detail(&self, detail: &ProbeReport) -> ProbeReport {
        merge(self, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoder before runs were copied whole: the fast one must answer exactly as it did.
    fn pct_decode_bytewise(s: &str) -> Result<String, &'static str> {
        let b = s.as_bytes();
        let mut o = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let h = s.get(i + 1..i + 3).ok_or("truncated %-escape")?;
                o.push(u8::from_str_radix(h, 16).map_err(|_| "bad %-escape")?);
                i += 3;
            } else {
                o.push(b[i]);
                i += 1;
            }
        }
        Ok(String::from_utf8_lossy(&o).into_owned())
    }

    #[test]
    fn pct_decode_answers_as_the_bytewise_decoder() {
        for s in [
            "", "plain", "%", "%4", "a%41b", "%41%42", "%zz", "%+f", "%-1", "é%41", "%é", "%c3%a9", "%ff%fe", "x%0a%0d%25y", "tail%",
            "%%41", "a b\tc",
        ] {
            assert_eq!(pct_decode(s), pct_decode_bytewise(s), "{s:?}");
        }
    }

    /// Items split the same on the ASCII path as on the Unicode one (U+000B, U+0085 included).
    #[test]
    fn items_split_on_unicode_whitespace() {
        let text = "#cfp 1 s\nv=1\x0bw=2 x=3\u{85}y=4\t z=%41\n#cfp 1 end 5\n";
        assert!(parse(text).is_ok(), "{:?}", parse(text));
        let bad = "#cfp 1 s\nv=1\x0bw=2\n#cfp 1 end 1\n";
        assert!(matches!(parse(bad), Err(ParseError::CountMismatch { found: 2, .. })), "{:?}", parse(bad));
    }
}
