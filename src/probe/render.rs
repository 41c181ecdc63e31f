//! Writing a [`ProbeReport`] in exactly the probe script's output format, so that the demo
//! fleet's simulated hosts answer with the bytes a real container would, and go through the
//! same [`super::parse`] as real output. Item order and encodings follow `assets/probe.sh`.

use super::model::*;
use super::parse::{outcome_code, pct_encode, BUNDLED_BWRAP, DEFAULT_EMITTER, FORMAT};

fn step(s: &Step) -> String {
    let mut o = outcome_code(s.outcome).to_string();
    if let Some(rc) = s.rc {
        o.push_str(&rc.to_string());
    }
    if let Some(g) = s.signature {
        o.push(g.code());
    }
    o
}

fn http(h: &Http) -> String {
    if h.outcome == Outcome::Absent && h.rc.is_none() && h.status.is_none() {
        return "a".into();
    }
    let s = Step {
        outcome: h.outcome,
        rc: h.rc,
        stderr: String::new(),
        signature: h.signature,
    };
    format!(
        "{}:{}",
        step(&s),
        h.status.map(|c| c.to_string()).unwrap_or_default()
    )
}

fn opt(v: &Option<String>) -> String {
    v.as_deref().map(pct_encode).unwrap_or_else(|| "-".into())
}

fn file(f: &FileInfo, summary: bool) -> String {
    match (f.outcome, &f.sha256, f.size) {
        (Outcome::Absent, _, _) => "-".into(),
        (_, Some(h), Some(z)) => {
            let h = if summary {
                &h[..h.len().min(12)]
            } else {
                h.as_str()
            };
            format!("{h}:{z}")
        }
        (_, None, Some(z)) => format!("?:{z}"),
        _ => "!".into(),
    }
}

fn ef(e: &CodexEffective) -> String {
    let other = |s: &str| format!("({s})");
    let s = match e.sandbox_mode.as_deref() {
        Some("danger-full-access") => "D".into(),
        Some("workspace-write") => "W".into(),
        Some("read-only") => "R".into(),
        None => "-".into(),
        Some(o) => other(o),
    };
    let a = match e.approval_policy.as_deref() {
        Some("never") => "N".into(),
        Some("on-request") => "R".into(),
        Some("on-failure") => "F".into(),
        Some("untrusted") => "U".into(),
        None => "-".into(),
        Some(o) => other(o),
    };
    let n = match e.network_access {
        Some(true) => "1",
        Some(false) => "0",
        None => "-",
    };
    format!("{s}{a}{n}")
}

/// The summary's `px`, as the script builds it: npm's `node .../codex` launchers dropped when a
/// native codex (their child, same argv) is listed; argv (argv[0], and argv[1] after `node`, as
/// basenames) while it fits in 90 bytes, else the pids and `*`.
fn px(r: &ProbeReport) -> String {
    let base = |a: &str| a.rsplit('/').next().unwrap_or(a).to_string();
    let is_node = |p: &CodexProcess| p.argv.first().is_some_and(|a| base(a).starts_with("node"));
    let any_native = r.codex_processes.iter().any(|p| !is_node(p));
    let kept: Vec<&CodexProcess> = r
        .codex_processes
        .iter()
        .filter(|p| !(any_native && is_node(p)))
        .collect();
    let pids = kept
        .iter()
        .map(|p| p.pid.to_string())
        .collect::<Vec<_>>()
        .join(";")
        + "*";
    if r.codex_processes_elided {
        return pids;
    }
    let full = kept
        .iter()
        .map(|p| {
            let node = is_node(p);
            let argv: Vec<String> = p
                .argv
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    pct_encode(&if i == 0 || (i == 1 && node) {
                        base(a)
                    } else {
                        a.clone()
                    })
                })
                .collect();
            format!("{}/{}", p.pid, argv.join(","))
        })
        .collect::<Vec<_>>()
        .join(";");
    if full.len() > 90 {
        pids
    } else {
        full
    }
}

fn render(r: &ProbeReport, summary: bool) -> String {
    let mut items: Vec<(String, String)> = Vec::new();
    let mut it = |k: &str, v: String| items.push((k.to_string(), v));
    if let Some(e) = &r.probe_error {
        it("err", pct_encode(e));
    } else {
        let num = |v: Option<u32>| v.map(|x| x.to_string()).unwrap_or_default();
        it(
            "id",
            format!(
                "{}:{}:{}",
                num(r.uid),
                num(r.gid),
                pct_encode(r.user.as_deref().unwrap_or(""))
            ),
        );
        it(
            "cap",
            match &r.cap_eff {
                None => "-".into(),
                Some(c) if summary => {
                    let t = c.trim_start_matches('0');
                    if t.is_empty() {
                        "0".into()
                    } else {
                        t.to_string()
                    }
                }
                Some(c) => c.clone(),
            },
        );
        it("um", opt(&r.uid_map.as_ref().map(|m| m.replace(' ', "_"))));
        it("su", outcome_code(r.subuid).to_string());
        it(
            "sc",
            [
                &r.sysctl_unprivileged_userns_clone,
                &r.sysctl_max_user_namespaces,
                &r.sysctl_apparmor_restrict_unprivileged_userns,
            ]
            .map(opt)
            .join(","),
        );
        if summary {
            if !r.codex_processes.is_empty() {
                it("px", px(r));
            }
        } else {
            for p in &r.codex_processes {
                let mut v = vec![p.pid.to_string(), opt(&p.cwd)];
                v.extend(p.argv.iter().map(|a| pct_encode(a)));
                it("p", v.join(","));
            }
        }
        it(
            "ns",
            format!(
                "{},{},{}",
                step(&r.userns),
                step(&r.userns_map_root),
                step(&r.bwrap)
            ),
        );
        if !summary {
            for (k, s) in [
                ("e.un", &r.userns),
                ("e.ur", &r.userns_map_root),
                ("e.bw", &r.bwrap),
            ] {
                if !s.stderr.is_empty() {
                    it(k, pct_encode(&s.stderr));
                }
            }
        }
        match &r.bwrap_path {
            None => it("bw", "-".into()),
            Some(_) if summary && r.bwrap_bundled => it("bw", "+".into()),
            Some(p) => {
                it("bw", pct_encode(p));
                if r.bwrap_bundled {
                    it("bwb", "1".into());
                }
            }
        }
        if let Some(cx) = &r.codex_path {
            it("cx", pct_encode(cx));
            it(
                "cv",
                match r.codex_version.as_deref() {
                    None => "-".into(),
                    Some(v) => match v.strip_prefix("codex-cli ") {
                        Some(x) => pct_encode(x),
                        None => format!("!{}", pct_encode(v)),
                    },
                },
            );
            it("pi", step(&r.prompt_input));
            if !summary && !r.prompt_input.stderr.is_empty() {
                it("e.pi", pct_encode(&r.prompt_input.stderr));
            }
            if let Some(e) = &r.effective {
                it("ef", ef(e));
            }
        } else {
            it("cx", "-".into());
        }
        it("ch", pct_encode(r.codex_home.as_deref().unwrap_or("")));
        it("cf", file(&r.config, summary));
        if let (false, Some(x)) = (summary, &r.config.redacted) {
            it("cfx", pct_encode(x));
        }
        if r.emitter.path != DEFAULT_EMITTER && !r.emitter.path.is_empty() {
            it("emp", pct_encode(&r.emitter.path));
        }
        it("em", file(&r.emitter, summary));
        if let (false, Some(x)) = (summary, &r.emitter.redacted) {
            it("emx", pct_encode(x));
        }
        let layers = [("sy", 's', &r.system_config), ("rq", 'r', &r.requirements), ("mc", 'm', &r.managed_config)];
        if summary {
            let ly: String = layers
                .iter()
                .chain([&("pj", 'p', &r.project_config)])
                .filter(|(_, _, f)| f.as_ref().is_some_and(|f| f.outcome != Outcome::Absent))
                .map(|(_, c, _)| *c)
                .collect();
            if !ly.is_empty() {
                it("ly", ly);
            }
        } else {
            for (k, _, f) in layers {
                if let Some(f) = f {
                    it(k, file(f, false));
                    if let Some(x) = &f.redacted {
                        it(&format!("{k}x"), pct_encode(x));
                    }
                }
            }
            if let Some(f) = &r.project_config {
                match f.path.strip_suffix("/.codex/config.toml") {
                    Some(dir) if f.outcome != Outcome::Absent => {
                        it("pjd", pct_encode(if dir.is_empty() { "/" } else { dir }));
                        it("pj", file(f, false));
                        if let Some(x) = &f.redacted {
                            it("pjx", pct_encode(x));
                        }
                    }
                    _ => it("pj", "-".into()),
                }
            }
        }
        if let Some(h) = &r.sessions {
            it(
                "hs",
                if h.error {
                    "e".into()
                } else {
                    format!(
                        "{},{},{},{}",
                        h.commands,
                        h.sandbox_denials,
                        h.succeeded,
                        h.stalled_minutes.map(|m| m.to_string()).unwrap_or_else(|| "-".into())
                    )
                },
            );
        }
        it("gp", http(&r.gitea_plain));
        if !summary && !r.gitea_plain.stderr.is_empty() {
            it("e.gp", pct_encode(&r.gitea_plain.stderr));
        }
        it("gc", http(&r.gitea_codex));
        if !summary && !r.gitea_codex.stderr.is_empty() {
            it("e.gc", pct_encode(&r.gitea_codex.stderr));
        }
    }
    let n = items.len();
    let body: Vec<String> = items.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let (mode, sep) = if summary { ("s", " ") } else { ("d", "\n") };
    format!(
        "#cfp {FORMAT} {mode}\n{}\n#cfp {FORMAT} end {n}\n",
        body.join(sep)
    )
}

/// The report as the probe's summary output (what the fleet scan fetches from every agent).
pub fn render_summary(r: &ProbeReport) -> String {
    render(r, true)
}

/// The report as the probe's detail output (stderr, argv with cwd, full hashes; file contents
/// when the report has them, as mode `files` sends).
pub fn render_detail(r: &ProbeReport) -> String {
    render(r, false)
}

/// What a summary probe would have reported of this report: the lossy parts of the summary
/// encoding applied (no stderr, hash prefixes, argv[0] basenames, bundled bwrap path).
pub fn summary_view(r: &ProbeReport) -> ProbeReport {
    super::parse(&render_summary(r)).expect("a rendered summary parses")
}

/// A one-line human digest, e.g. for a console row or a log line.
pub fn summary_line(r: &ProbeReport) -> String {
    if let Some(e) = &r.probe_error {
        return format!("probe error: {e}");
    }
    let o = |s: &Step| s.outcome.as_str();
    let eff = r
        .effective
        .as_ref()
        .map(|e| {
            format!(
                "{}/{}{}",
                e.sandbox_mode.as_deref().unwrap_or("?"),
                e.approval_policy.as_deref().unwrap_or("?"),
                if e.network_access == Some(true) {
                    "+net"
                } else {
                    ""
                }
            )
        })
        .unwrap_or_else(|| "?".into());
    let st = |h: &Http| {
        h.status
            .map(|c| c.to_string())
            .unwrap_or_else(|| h.outcome.as_str().into())
    };
    format!(
        "uid {} | {} | effective {} | userns {} map-root {} bwrap {}{} | gitea {} via codex {}",
        r.uid.map(|u| u.to_string()).unwrap_or_else(|| "?".into()),
        r.codex_version
            .as_deref()
            .unwrap_or(if r.codex_path.is_some() {
                "codex ?"
            } else {
                "no codex"
            }),
        eff,
        o(&r.userns),
        o(&r.userns_map_root),
        o(&r.bwrap),
        if r.bwrap_path.as_deref() == Some(BUNDLED_BWRAP) || r.bwrap_bundled {
            " (bundled)"
        } else {
            ""
        },
        st(&r.gitea_plain),
        st(&r.gitea_codex),
    )
}
