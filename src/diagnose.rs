//! Findings and verdicts: a pure function from what was read about one agent (its config, how
//! codex is started, the probe's evidence, its emitter and writable layer) to the contract's
//! finding codes, each with the verbatim line that proves it, and a verdict.
//!
//! The incident's lesson is that "idle" hid "cannot run any command": so a finding is only
//! ever raised with evidence, and the verdict says whether the agent can work *now* (stalled),
//! works but is not on the durable fix or would lose it (at-risk), or cannot be judged (unknown).

use serde::{Deserialize, Serialize};

use crate::codex::argv::{parse_all, CliOverrides};
use crate::codex::config::{
    effective_in, misplaced_keys, parse_spanned, Effective, OtherLayers, Requirements, DANGER_FULL_ACCESS, NEVER,
    SYSTEM_CONFIG_PATH,
};
use crate::codex::emitter::{classify, EmitterState, EMITTER_PATH};
use crate::probe::{Outcome, ProbeReport, Signature, Step};

/// The stable finding codes of the contract, in the order they are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    ConfigInvalid,
    ConfigKeyMisplaced,
    SandboxEnabled,
    ApprovalNotNever,
    CliOverride,
    UsernsBlocked,
    UidmapWriteDenied,
    NetnsLoopbackDenied,
    BwrapMissing,
    SandboxWillFail,
    GiteaUnreachable,
    EmitterNotIdempotent,
    FixNotInImage,
    HostUnreachable,
    ProbeFailed,
    RequirementsForbidFix,
    ProjectConfigOverrides,
}

impl Code {
    pub const ALL: [Code; 17] = [
        Code::ConfigInvalid,
        Code::ConfigKeyMisplaced,
        Code::SandboxEnabled,
        Code::ApprovalNotNever,
        Code::CliOverride,
        Code::UsernsBlocked,
        Code::UidmapWriteDenied,
        Code::NetnsLoopbackDenied,
        Code::BwrapMissing,
        Code::SandboxWillFail,
        Code::GiteaUnreachable,
        Code::EmitterNotIdempotent,
        Code::FixNotInImage,
        Code::HostUnreachable,
        Code::ProbeFailed,
        Code::RequirementsForbidFix,
        Code::ProjectConfigOverrides,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::ConfigInvalid => "config-invalid",
            Code::ConfigKeyMisplaced => "config-key-misplaced",
            Code::SandboxEnabled => "sandbox-enabled",
            Code::ApprovalNotNever => "approval-not-never",
            Code::CliOverride => "cli-override",
            Code::UsernsBlocked => "userns-blocked",
            Code::UidmapWriteDenied => "uidmap-write-denied",
            Code::NetnsLoopbackDenied => "netns-loopback-denied",
            Code::BwrapMissing => "bwrap-missing",
            Code::SandboxWillFail => "sandbox-will-fail",
            Code::GiteaUnreachable => "gitea-unreachable",
            Code::EmitterNotIdempotent => "emitter-not-idempotent",
            Code::FixNotInImage => "fix-not-in-image",
            Code::HostUnreachable => "host-unreachable",
            Code::ProbeFailed => "probe-failed",
            Code::RequirementsForbidFix => "requirements-forbid-fix",
            Code::ProjectConfigOverrides => "project-config-overrides",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Unknown,
    Stalled,
    AtRisk,
    Healthy,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Unknown => "unknown",
            Verdict::Stalled => "stalled",
            Verdict::AtRisk => "at-risk",
            Verdict::Healthy => "healthy",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub code: Code,
    /// The verbatim line or value that proves it.
    pub evidence: String,
}

/// Everything read about one agent. Config and emitter texts may be the probe's redacted
/// copies: placeholders do not change their structure.
#[derive(Debug, Clone, Default, Hash)]
pub struct AgentEvidence<'a> {
    /// `$CODEX_HOME/config.toml`; `None` when the file does not exist.
    pub config_text: Option<&'a str>,
    /// The probe's report, or why there is none.
    pub probe: Option<&'a ProbeReport>,
    pub probe_error: Option<&'a str>,
    /// How the container starts (Entrypoint + Cmd).
    pub start_command: &'a [String],
    /// The boot emitter as it is in the container; `None` when there is none.
    pub emitter_text: Option<&'a str>,
    /// The image's own emitter, when the backend could read it.
    pub image_emitter_text: Option<&'a str>,
    /// `docker diff` lines (`C /path`, `A /path`, `D /path`).
    pub layer_changes: &'a [String],
    /// Path of config.toml in the container (for matching layer changes).
    pub config_path: Option<&'a str>,
    /// The boot check's WARN line from the container log, if any.
    pub boot_warn: Option<&'a str>,
    /// codex's other layers, redacted like config.toml: `/etc/codex/config.toml`,
    /// `/etc/codex/requirements.toml`, `/etc/codex/managed_config.toml`, and a project's
    /// `.codex/config.toml` with the directory holding that `.codex`.
    pub system_text: Option<&'a str>,
    pub requirements_text: Option<&'a str>,
    pub managed_text: Option<&'a str>,
    pub project: Option<(&'a str, &'a str)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    /// What codex will do; `None` when it cannot be known (invalid config, no probe).
    pub effective: Option<Effective>,
    pub cli: CliOverrides,
}

impl Diagnosis {
    pub fn codes(&self) -> Vec<Code> {
        self.findings.iter().map(|f| f.code).collect()
    }

    pub fn has(&self, code: Code) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }

    pub fn evidence(&self, code: Code) -> Option<&str> {
        self.findings.iter().find(|f| f.code == code).map(|f| f.evidence.as_str())
    }

    /// An agent on a host SSM cannot reach: nothing known but that.
    pub fn unreachable(evidence: &str) -> Diagnosis {
        let findings = vec![Finding { code: Code::HostUnreachable, evidence: evidence.to_string() }];
        Diagnosis { verdict: Verdict::Unknown, findings, effective: None, cli: CliOverrides::default() }
    }
}

/// Verdict from findings, first match wins (contract order).
pub fn verdict_of(codes: &[Code]) -> Verdict {
    let any = |set: &[Code]| codes.iter().any(|c| set.contains(c));
    if any(&[Code::HostUnreachable, Code::ProbeFailed]) {
        Verdict::Unknown
    } else if any(&[Code::ConfigInvalid, Code::SandboxWillFail, Code::GiteaUnreachable]) {
        Verdict::Stalled
    } else if any(&[
        Code::SandboxEnabled,
        Code::ApprovalNotNever,
        Code::EmitterNotIdempotent,
        Code::FixNotInImage,
        Code::RequirementsForbidFix,
        Code::ProjectConfigOverrides,
    ]) {
        Verdict::AtRisk
    } else {
        Verdict::Healthy
    }
}

/// Findings collected with one evidence line per code (the first, most direct one).
#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, code: Code, evidence: impl Into<String>) {
        if !self.0.iter().any(|f| f.code == code) {
            self.0.push(Finding { code, evidence: evidence.into() });
        }
    }
    fn has(&self, code: Code) -> bool {
        self.0.iter().any(|f| f.code == code)
    }
    fn get(&self, code: Code) -> Option<&str> {
        self.0.iter().find(|f| f.code == code).map(|f| f.evidence.as_str())
    }
}

/// The first non-empty stderr line, else a synthesized `rc N` line.
fn step_evidence(what: &str, s: &Step) -> String {
    match s.stderr.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(l) => l.to_string(),
        None => match s.rc {
            Some(rc) => format!("{what}: exit status {rc}"),
            None => format!("{what}: {}", s.outcome.as_str()),
        },
    }
}

/// The verbatim line of a step's stderr that shows the failure its signature names: the line
/// these strings (codex's own matcher's, plus Debian bwrap 0.8's "create new namespace") find
/// for that finding, else the first non-empty line. Which failure it was is the host's answer
/// (the signature letter of `assets/probe.sh`'s `result`, the one rule set): this only picks
/// the line to show, so a scan that has not read the stderr yet reaches the same verdict.
pub fn evidence_line(stderr: &str, code: Code) -> Option<String> {
    match classify_sandbox_error(stderr) {
        Some((c, l)) if c == code => Some(l),
        _ => stderr.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string),
    }
}

fn classify_sandbox_error(stderr: &str) -> Option<(Code, String)> {
    for line in stderr.lines() {
        let l = line.trim();
        if l.contains("RTM_NEWADDR") || l.contains("RTM_NEWLINK") {
            return Some((Code::NetnsLoopbackDenied, l.to_string()));
        }
        if l.contains("setting up uid map") || l.contains("/proc/self/uid_map") {
            return Some((Code::UidmapWriteDenied, l.to_string()));
        }
        if l.contains("create new namespace") || l.contains("create a new namespace") {
            return Some((Code::UsernsBlocked, l.to_string()));
        }
        if l.contains("bubblewrap is unavailable") {
            return Some((Code::BwrapMissing, l.to_string()));
        }
    }
    None
}

/// The finding a host-side stderr signature stands for.
fn signature_code(s: Signature) -> Option<Code> {
    match s {
        Signature::NetnsLoopback => Some(Code::NetnsLoopbackDenied),
        Signature::UidMap => Some(Code::UidmapWriteDenied),
        Signature::UsernsCreate => Some(Code::UsernsBlocked),
        Signature::BwrapUnavailable => Some(Code::BwrapMissing),
        _ => None,
    }
}

fn signature_words(s: Signature) -> &'static str {
    match s {
        Signature::NetnsLoopback => "loopback: Failed RTM_NEWADDR/RTM_NEWLINK",
        Signature::UidMap => "setting up uid map: Permission denied",
        Signature::UsernsCreate => "no permission to create a new namespace",
        Signature::BwrapUnavailable => "bubblewrap is unavailable",
        Signature::ConfigError => "codex rejected its config",
        Signature::PermissionDenied => "Operation not permitted",
        Signature::Timeout => "timed out",
    }
}

fn in_layer(changes: &[String], path: &str) -> Option<String> {
    changes
        .iter()
        .find(|c| {
            let p = c.get(2..).unwrap_or("").trim();
            (c.starts_with('C') || c.starts_with('A')) && p == path
        })
        .cloned()
}

/// Diagnoses already made, by their evidence: agents of one image and one config mostly have
/// the same evidence, and [`diagnose`] (a config parse, the emitter classified, every layer
/// walked) was a quarter of the CPU of reading a 1000x8 fleet's answers (measured). Keyed by a
/// hash of the *whole* evidence, keyed itself (SipHash with a key random to the process, which
/// no container sees: it cannot make its evidence collide with another agent's on purpose; by
/// chance, 2^-64 a pair): an agent only gets the diagnosis of evidence equal to its own, which
/// [`diagnose`], a pure function, would have made the same.
#[derive(Default)]
pub struct DiagnosisMemo {
    key: std::collections::hash_map::RandomState,
    made: std::sync::Mutex<std::collections::HashMap<u64, Diagnosis>>,
}

impl DiagnosisMemo {
    /// Distinct evidences kept at most (a fleet has a handful of kinds of agents; past this,
    /// the rest are diagnosed one by one).
    pub const MAX: usize = 1024;

    /// [`diagnose`], or the diagnosis of an equal evidence made before.
    pub fn diagnose(&self, ev: &AgentEvidence) -> Diagnosis {
        use std::hash::BuildHasher;
        let key = self.key.hash_one(ev);
        if let Some(d) = self.made.lock().unwrap().get(&key) {
            return d.clone();
        }
        let d = diagnose(ev);
        let mut made = self.made.lock().unwrap();
        if made.len() < Self::MAX {
            made.insert(key, d.clone());
        }
        d
    }

    /// Diagnoses kept.
    pub fn len(&self) -> usize {
        self.made.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub fn diagnose(ev: &AgentEvidence) -> Diagnosis {
    let mut f = Findings::default();

    let Some(probe) = ev.probe else {
        f.add(Code::ProbeFailed, ev.probe_error.unwrap_or("the probe produced no report"));
        return finish(f, None, CliOverrides::default());
    };

    if let Some(e) = &probe.probe_error {
        f.add(Code::ProbeFailed, e.clone());
        return finish(f, None, CliOverrides::default());
    }

    // How codex is started: the container's command and its own codex processes.
    let mut lines: Vec<&[String]> = vec![ev.start_command];
    lines.extend(probe.codex_processes.iter().map(|p| p.argv.as_slice()));
    let cli = parse_all(lines);
    if cli.overrides_fix() {
        f.add(Code::CliOverride, format!("codex started with {}", cli.flags.join(" ")));
    }
    let cwd = probe.codex_processes.iter().find_map(|p| p.cwd.as_deref());

    // The config as codex reads it.
    let doc = match ev.config_text.map(parse_spanned) {
        None => Some(toml_edit::DocumentMut::new()),
        Some(Ok(d)) => {
            if let Some(p) = crate::codex::config::semantic_problems(&d).into_iter().next() {
                f.add(Code::ConfigInvalid, format!("config.toml {p}"));
            }
            let misplaced = misplaced_keys(&d);
            if !misplaced.is_empty() {
                let lines: Vec<String> = misplaced.iter().map(|m| m.evidence()).collect();
                f.add(Code::ConfigKeyMisplaced, lines.join("; "));
            }
            Some(d.into_mut())
        }
        Some(Err(p)) => {
            f.add(Code::ConfigInvalid, format!("config.toml {p}"));
            None
        }
    };
    // codex itself refusing the config (e.g. a value this version no longer accepts) is as
    // fatal as a parse error: its own words are the evidence.
    if probe.prompt_input.outcome != Outcome::Ok && probe.prompt_input.outcome != Outcome::Absent {
        // (the host's letter decides: probe.sh's `c` class is codex's config words, any line
        // naming a config, or an `Error` line; the stderr, when read, is only the evidence)
        if probe.prompt_input.signature == Some(Signature::ConfigError) {
            f.add(Code::ConfigInvalid, step_evidence("codex debug prompt-input", &probe.prompt_input));
        }
    }

    // codex's other layers: a file it cannot read stops it as surely as its own config.
    let layer_doc = |f: &mut Findings, path: &str, text: Option<&str>| match text.map(parse_spanned) {
        Some(Ok(d)) => Some(d.into_mut()),
        Some(Err(p)) => {
            f.add(Code::ConfigInvalid, format!("{path} {p}"));
            None
        }
        None => None,
    };
    let system = layer_doc(&mut f, SYSTEM_CONFIG_PATH, ev.system_text);
    let project_doc = ev.project.and_then(|(dir, t)| layer_doc(&mut f, &format!("{dir}/.codex/config.toml"), Some(t)));
    let requirements = match Requirements::from_files(ev.requirements_text, ev.managed_text) {
        Ok(r) => r,
        Err((path, p)) => {
            f.add(Code::ConfigInvalid, format!("{path} {p}"));
            Requirements::default()
        }
    };
    for e in requirements.forbidding_fix() {
        f.add(Code::RequirementsForbidFix, e);
    }
    let other = OtherLayers {
        system: system.as_ref(),
        project: project_doc.as_ref().zip(ev.project.map(|(d, _)| d)),
        requirements: Some(&requirements),
    };
    let empty = toml_edit::DocumentMut::new();
    if let Some(p) = other.trusted_project(doc.as_ref().unwrap_or(&empty)) {
        let dir = ev.project.map(|(d, _)| d).unwrap_or_default();
        let mut said = Vec::new();
        for key in ["default_permissions", "sandbox_mode", "approval_policy"] {
            if let Some(v) = p.get(key).and_then(|i| i.as_str()) {
                let fixed = matches!((key, v), ("sandbox_mode", DANGER_FULL_ACCESS) | ("approval_policy", NEVER) | ("default_permissions", ":danger-full-access"));
                if !fixed {
                    said.push(format!("{key} = \"{v}\""));
                }
            }
        }
        if !said.is_empty() {
            f.add(
                Code::ProjectConfigOverrides,
                format!("{dir}/.codex/config.toml (a trusted project, read above config.toml): {}", said.join(", ")),
            );
        }
    }

    let eff = doc.as_ref().filter(|_| !f.has(Code::ConfigInvalid)).map(|d| {
        let mut e = effective_in(d, &other, &cli, cwd);
        // codex's own answer (prompt-input) is the judge of what the config means; the
        // command line it was not given stays ours.
        if let Some(said) = &probe.effective {
            if let (Some(m), true) = (&said.sandbox_mode, cli.sandbox_mode.is_none()) {
                e.sandbox_mode.value = m.clone();
            }
            if let (Some(a), true) = (&said.approval_policy, cli.approval_policy.is_none()) {
                e.approval_policy.value = a.clone();
            }
            if let (Some(n), true) = (said.network_access, cli.network_access.is_none()) {
                if e.sandbox_mode.value == "workspace-write" {
                    e.network_access = n;
                }
            }
        }
        e
    });

    if let Some(e) = &eff {
        if e.sandbox_mode.value != DANGER_FULL_ACCESS {
            f.add(
                Code::SandboxEnabled,
                format!("sandbox_mode = \"{}\" (from {})", e.sandbox_mode.value, e.sandbox_mode.source.as_str()),
            );
        }
        if e.approval_policy.value != NEVER {
            f.add(
                Code::ApprovalNotNever,
                format!("approval_policy = \"{}\" (from {})", e.approval_policy.value, e.approval_policy.source.as_str()),
            );
        }
    }

    // Namespace primitives, most direct evidence first: codex's own bwrap start-up probe, the
    // request through codex's command path, then the unshare steps.
    let sources = [
        ("bwrap start-up probe", &probe.bwrap.stderr, probe.bwrap.signature),
        ("codex sandbox -- curl", &probe.gitea_codex.stderr, probe.gitea_codex.signature),
    ];
    for (what, stderr, sig) in sources {
        // The host classified the stderr (probe.sh); its text is only the evidence, and a
        // scan that has not read it yet says so.
        if let Some((s, code)) = sig.and_then(|s| signature_code(s).map(|c| (s, c))) {
            match evidence_line(stderr, code) {
                Some(line) => f.add(code, line),
                None => f.add(code, format!("{what}: {} (stderr not read; `show` fetches it)", signature_words(s))),
            }
        }
    }
    if probe.userns.outcome == Outcome::Denied {
        f.add(Code::UsernsBlocked, step_evidence("unshare --user true", &probe.userns));
    } else if probe.userns.outcome == Outcome::Ok && probe.userns_map_root.outcome == Outcome::Denied {
        f.add(Code::UidmapWriteDenied, step_evidence("unshare --user --map-root-user true", &probe.userns_map_root));
    }
    if probe.bwrap.outcome == Outcome::Absent && probe.bwrap_path.is_none() {
        f.add(Code::BwrapMissing, "no bwrap on PATH and none bundled with codex");
    }

    if let Some(e) = &eff {
        if e.needs_bwrap() {
            let blocking = [Code::BwrapMissing, Code::UsernsBlocked, Code::UidmapWriteDenied]
                .into_iter()
                .chain(e.unshares_net().then_some(Code::NetnsLoopbackDenied))
                .find(|c| f.has(*c));
            if let Some(c) = blocking {
                let why = f.get(c).unwrap_or_default().to_string();
                f.add(
                    Code::SandboxWillFail,
                    format!("sandbox_mode = \"{}\" needs bwrap, and {}: {why}", e.sandbox_mode.value, c.as_str()),
                );
            }
        }
    }

    // Gitea, plainly from the container.
    let g = &probe.gitea_plain;
    if g.outcome != Outcome::Absent && g.status != Some(200) {
        let e = match g.status {
            Some(s) => format!("GET /api/v1/version answered HTTP {s}"),
            None => step_evidence(
                "GET /api/v1/version",
                &Step { outcome: g.outcome, rc: g.rc, stderr: g.stderr.clone(), signature: g.signature },
            ),
        };
        f.add(Code::GiteaUnreachable, e);
    } else if g.outcome == Outcome::Absent {
        if let Some(w) = ev.boot_warn {
            f.add(Code::GiteaUnreachable, w.to_string());
        }
    }

    // Will the fix survive a restart and a re-provision?
    let emitter_state = ev.emitter_text.map(classify);
    if let Some(s) = emitter_state.filter(|s| *s != EmitterState::Fixed) {
        f.add(Code::EmitterNotIdempotent, format!("{EMITTER_PATH}: {}", emitter_words(s)));
    }
    let emitter_in_layer = in_layer(ev.layer_changes, EMITTER_PATH);
    let image_emitter = match (ev.image_emitter_text, &emitter_in_layer) {
        (Some(t), _) => Some(classify(t)),
        (None, None) => emitter_state, // unchanged in the layer: the image has this one
        (None, Some(_)) => None,
    };
    if let (Some(line), Some(EmitterState::Fixed)) = (&emitter_in_layer, emitter_state) {
        if image_emitter != Some(EmitterState::Fixed) {
            f.add(Code::FixNotInImage, format!("{line}: the fixed emitter lives only in the container's writable layer"));
        }
    }
    let config_fixed_by_file = eff.as_ref().is_some_and(|e| {
        e.is_fixed() && e.sandbox_mode.source != crate::codex::config::Source::Cli
    });
    if config_fixed_by_file && image_emitter != Some(EmitterState::Fixed) {
        let config_changed = ev.config_path.and_then(|p| in_layer(ev.layer_changes, p));
        match (ev.emitter_text.is_some(), config_changed) {
            (true, _) if image_emitter.is_some() => f.add(
                Code::FixNotInImage,
                format!(
                    "config.toml is fixed but the image's emitter {}: a re-provision (or restart) loses it",
                    emitter_words(image_emitter.unwrap_or(EmitterState::NoSandboxEmission))
                ),
            ),
            (false, Some(line)) => f.add(
                Code::FixNotInImage,
                format!("{line}: config.toml was fixed in the writable layer and nothing in the image produces it"),
            ),
            _ => {}
        }
    }

    finish(f, eff, cli)
}

fn emitter_words(s: EmitterState) -> &'static str {
    match s {
        EmitterState::Fixed => "emits the fix idempotently",
        EmitterState::HotpatchNotIdempotent => "prepends the sandbox keys again on every start (hotpatch)",
        EmitterState::NoSandboxEmission => "emits no sandbox settings (codex falls back to its sandboxed default)",
        EmitterState::OlderManagedBlock => "carries an older codex-fleet block",
    }
}

fn finish(f: Findings, effective: Option<Effective>, cli: CliOverrides) -> Diagnosis {
    let mut findings = f.0;
    findings.sort_by_key(|x| x.code);
    let verdict = verdict_of(&findings.iter().map(|x| x.code).collect::<Vec<_>>());
    Diagnosis { verdict, findings, effective, cli }
}

/// The `probes` block of `scan --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeSummary {
    pub uid_map: Option<String>,
    pub userns: Outcome,
    pub uid_map_write: Outcome,
    pub netns_loopback: Outcome,
    pub gitea_http: Option<u16>,
}

impl ProbeSummary {
    pub fn of(p: &ProbeReport) -> ProbeSummary {
        let bwrap_says = p.bwrap.signature.and_then(signature_code);
        let uid_map_write = match (p.userns.outcome, p.userns_map_root.outcome) {
            (Outcome::Ok, o) => o,
            _ if bwrap_says == Some(Code::UidmapWriteDenied) => Outcome::Denied,
            (Outcome::Absent, _) => Outcome::Absent,
            _ => Outcome::Error, // no user namespace, so nothing to map: untested
        };
        let netns_loopback = match (bwrap_says, p.bwrap.outcome) {
            (Some(Code::NetnsLoopbackDenied), _) => Outcome::Denied,
            (_, Outcome::Ok) => Outcome::Ok,
            (_, Outcome::Absent) => Outcome::Absent,
            _ => Outcome::Error, // bwrap failed before it reached the network namespace
        };
        ProbeSummary {
            uid_map: p.uid_map.clone(),
            userns: p.userns.outcome,
            uid_map_write,
            netns_loopback,
            gitea_http: p.gitea_plain.status,
        }
    }
}
