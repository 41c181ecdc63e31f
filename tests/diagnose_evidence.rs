//! Diagnosis from recorded evidence: the incident's exact strings cannot be produced on this
//! kernel (they need Ubuntu's AppArmor userns restriction), so they are fed in as the probe
//! would report them.

use codex_fleet::diagnose::{diagnose, verdict_of, AgentEvidence, Code, ProbeSummary, Verdict};
use codex_fleet::probe::{CodexEffective, Http, Outcome, ProbeReport, Step};

const RTM: &str = "bwrap: loopback: Failed RTM_NEWADDR: Operation not permitted";
const UIDMAP_BWRAP: &str = "bwrap: setting up uid map: Permission denied";
const UIDMAP_UNSHARE: &str = "unshare: write failed /proc/self/uid_map: Operation not permitted";
const USERNS_DEBIAN: &str = "bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces. See <https://deb.li/bubblewrap> or <file:///usr/share/doc/bubblewrap/README.Debian.gz>.";

fn ok() -> Step {
    Step { outcome: Outcome::Ok, rc: Some(0), stderr: String::new(), ..Default::default() }
}
fn denied(stderr: &str) -> Step {
    // with the signature letter the probe's own rules give it on the host
    Step { outcome: Outcome::Denied, rc: Some(1), stderr: stderr.into(), signature: codex_fleet::probe::host_signature(stderr) }
}

/// A healthy-looking container: namespaces work, gitea answers.
fn base() -> ProbeReport {
    ProbeReport {
        format: 1,
        uid: Some(1000),
        uid_map: Some("0 0 4294967295".into()),
        userns: ok(),
        userns_map_root: ok(),
        bwrap: ok(),
        bwrap_path: Some("/usr/bin/bwrap".into()),
        prompt_input: ok(),
        gitea_plain: Http { status: Some(200), outcome: Outcome::Ok, stderr: String::new(), ..Default::default() },
        gitea_codex: Http { status: Some(200), outcome: Outcome::Ok, stderr: String::new(), ..Default::default() },
        ..Default::default()
    }
}

const FIXED: &str = "sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n";
/// A boot emitter carrying the managed block, as fix_emitter produces it.
fn fixed_emitter() -> String {
    codex_fleet::codex::emitter::fix_emitter("#!/bin/sh\nset -eu\necho configured\n").unwrap().text
}

fn codes(ev: &AgentEvidence) -> (Verdict, Vec<Code>) {
    let d = diagnose(ev);
    (d.verdict, d.codes())
}

#[test]
fn incident_default_sandbox_with_loopback_denied() {
    let mut p = base();
    p.bwrap = denied(RTM);
    p.gitea_codex = Http { status: None, outcome: Outcome::Denied, stderr: RTM.into(), signature: codex_fleet::probe::host_signature(RTM), ..Default::default() };
    let d = diagnose(&AgentEvidence { config_text: Some("model = \"o3\"\n"), probe: Some(&p), ..Default::default() });
    assert_eq!(d.verdict, Verdict::Stalled);
    assert_eq!(
        d.codes(),
        [Code::SandboxEnabled, Code::ApprovalNotNever, Code::NetnsLoopbackDenied, Code::SandboxWillFail]
    );
    assert_eq!(d.evidence(Code::NetnsLoopbackDenied), Some(RTM));
    assert!(d.evidence(Code::SandboxWillFail).unwrap().contains(RTM));
    let e = d.effective.unwrap();
    assert_eq!((e.sandbox_mode.value.as_str(), e.sandbox_mode.source.as_str()), ("read-only", "default"));
}

#[test]
fn incident_pr77_workaround_dies_at_uid_map() {
    let mut p = base();
    p.userns_map_root = denied(UIDMAP_UNSHARE);
    p.bwrap = denied(UIDMAP_BWRAP);
    let cfg = "sandbox_mode = \"workspace-write\"\n[sandbox_workspace_write]\nnetwork_access = true\n";
    let d = diagnose(&AgentEvidence { config_text: Some(cfg), probe: Some(&p), ..Default::default() });
    assert_eq!(d.verdict, Verdict::Stalled);
    assert!(d.has(Code::UidmapWriteDenied) && d.has(Code::SandboxWillFail), "{:?}", d.codes());
    assert_eq!(d.evidence(Code::UidmapWriteDenied), Some(UIDMAP_BWRAP));
    let s = ProbeSummary::of(&p);
    assert_eq!((s.userns, s.uid_map_write), (Outcome::Ok, Outcome::Denied));
}

#[test]
fn workspace_write_with_network_is_not_stopped_by_loopback_alone() {
    let mut p = base();
    p.bwrap = denied(RTM);
    let cfg = "sandbox_mode = \"workspace-write\"\napproval_policy = \"never\"\nsandbox_workspace_write.network_access = true\n";
    let (v, c) = codes(&AgentEvidence { config_text: Some(cfg), probe: Some(&p), ..Default::default() });
    assert_eq!(v, Verdict::AtRisk, "{c:?}");
    assert!(c.contains(&Code::NetnsLoopbackDenied) && !c.contains(&Code::SandboxWillFail));
}

#[test]
fn duplicate_prepends_are_config_invalid() {
    let cfg = "sandbox_mode = \"danger-full-access\"\nsandbox_mode = \"danger-full-access\"\n";
    let d = diagnose(&AgentEvidence { config_text: Some(cfg), probe: Some(&base()), ..Default::default() });
    assert_eq!(d.verdict, Verdict::Stalled);
    assert_eq!(d.codes(), [Code::ConfigInvalid]);
    assert!(d.evidence(Code::ConfigInvalid).unwrap().contains("line 2, column 1: duplicate key `sandbox_mode`"));
    assert!(d.effective.is_none());
}

#[test]
fn codex_refusing_the_config_is_config_invalid_in_its_words() {
    let mut p = base();
    p.prompt_input = Step {
        outcome: Outcome::Error,
        rc: Some(1),
        stderr: "Error: /home/agent/.codex/config.toml:17:12: `wire_api = \"chat\"` is no longer supported.".into(),
        ..Default::default()
    };
    p.prompt_input.signature = codex_fleet::probe::host_signature(&p.prompt_input.stderr);
    let (v, c) = codes(&AgentEvidence { config_text: Some(FIXED), probe: Some(&p), ..Default::default() });
    assert_eq!((v, c), (Verdict::Stalled, vec![Code::ConfigInvalid]));
}

#[test]
fn keys_appended_into_a_table_on_this_kernel() {
    let mut p = base();
    p.userns = denied("unshare: unshare failed: Operation not permitted");
    p.userns_map_root = denied("unshare: unshare failed: Operation not permitted");
    p.bwrap = denied(USERNS_DEBIAN);
    let cfg = "[mcp_servers.molecule.env]\nWORKSPACE_ID = \"x\"\nsandbox_mode = \"danger-full-access\"\n";
    let d = diagnose(&AgentEvidence { config_text: Some(cfg), probe: Some(&p), ..Default::default() });
    assert_eq!(d.verdict, Verdict::Stalled);
    for c in [Code::ConfigKeyMisplaced, Code::SandboxEnabled, Code::UsernsBlocked, Code::SandboxWillFail] {
        assert!(d.has(c), "{c} missing from {:?}", d.codes());
    }
    assert!(d.evidence(Code::ConfigKeyMisplaced).unwrap().starts_with("line 3: `sandbox_mode` sits inside [mcp_servers.molecule.env]"));
    let s = ProbeSummary::of(&p);
    assert_eq!((s.userns, s.uid_map_write, s.netns_loopback), (Outcome::Denied, Outcome::Error, Outcome::Error));
}

#[test]
fn cli_override_beats_a_fixed_config() {
    let fe = fixed_emitter();
    let mut p = base();
    p.bwrap = denied(USERNS_DEBIAN);
    let cmd: Vec<String> = ["sh", "-c", "exec codex --sandbox workspace-write app-server"].map(String::from).to_vec();
    let d = diagnose(&AgentEvidence {
        config_text: Some(FIXED),
        probe: Some(&p),
        start_command: &cmd,
        emitter_text: Some(&fe),
        ..Default::default()
    });
    assert_eq!(d.verdict, Verdict::Stalled);
    assert_eq!(d.evidence(Code::CliOverride), Some("codex started with --sandbox workspace-write"));
    assert_eq!(d.effective.as_ref().unwrap().sandbox_mode.source.as_str(), "cli");
}

#[test]
fn fixed_only_in_the_writable_layer_is_at_risk() {
    let fe = fixed_emitter();
    let layer = vec!["C /usr/local/bin".to_string(), "C /usr/local/bin/codex_mcp_config.sh".to_string()];
    let d = diagnose(&AgentEvidence {
        config_text: Some(FIXED),
        probe: Some(&base()),
        emitter_text: Some(&fe),
        layer_changes: &layer,
        ..Default::default()
    });
    assert_eq!(d.verdict, Verdict::AtRisk);
    assert_eq!(d.codes(), [Code::FixNotInImage]);
    assert!(d.evidence(Code::FixNotInImage).unwrap().starts_with("C /usr/local/bin/codex_mcp_config.sh"));
}

#[test]
fn config_fixed_by_hand_over_a_hotpatch_emitter() {
    let emitter = "#!/bin/sh\nprintf 'sandbox_mode = \"danger-full-access\"\\n' | cat - \"$CFG\" > \"$CFG.new\"\n";
    let d = diagnose(&AgentEvidence {
        config_text: Some(FIXED),
        probe: Some(&base()),
        emitter_text: Some(emitter),
        ..Default::default()
    });
    assert_eq!(d.verdict, Verdict::AtRisk);
    assert_eq!(d.codes(), [Code::EmitterNotIdempotent, Code::FixNotInImage]);
}

#[test]
fn fully_fixed_is_healthy_even_where_namespaces_are_refused() {
    let fe = fixed_emitter();
    let mut p = base();
    p.userns = denied("unshare: unshare failed: Operation not permitted");
    p.bwrap = denied(USERNS_DEBIAN);
    p.effective = Some(CodexEffective {
        sandbox_mode: Some("danger-full-access".into()),
        approval_policy: Some("never".into()),
        network_access: Some(true),
    });
    let d = diagnose(&AgentEvidence {
        config_text: Some(FIXED),
        probe: Some(&p),
        emitter_text: Some(&fe),
        ..Default::default()
    });
    assert_eq!(d.verdict, Verdict::Healthy, "{:?}", d.findings);
    assert_eq!(d.codes(), [Code::UsernsBlocked], "primitives are still reported");
}

#[test]
fn gitea_unreachable_is_stalled_with_curls_words() {
    let mut p = base();
    p.gitea_plain = Http {
        status: None,
        outcome: Outcome::Error,
        stderr: "curl: (6) Could not resolve host: git.moleculesai.app".into(),
        ..Default::default()
    };
    let d = diagnose(&AgentEvidence { config_text: Some(FIXED), probe: Some(&p), ..Default::default() });
    assert_eq!(d.verdict, Verdict::Stalled);
    assert_eq!(d.evidence(Code::GiteaUnreachable), Some("curl: (6) Could not resolve host: git.moleculesai.app"));
}

#[test]
fn codex_says_otherwise_codex_wins() {
    // A key shape our model reads as fixed but codex does not: codex's word is the verdict.
    let mut p = base();
    p.effective = Some(CodexEffective { sandbox_mode: Some("read-only".into()), ..Default::default() });
    let d = diagnose(&AgentEvidence { config_text: Some(FIXED), probe: Some(&p), ..Default::default() });
    assert!(d.has(Code::SandboxEnabled));
}

#[test]
fn bwrap_missing_under_a_sandboxed_mode() {
    let mut p = base();
    p.bwrap = Step { outcome: Outcome::Absent, rc: None, stderr: String::new(), ..Default::default() };
    p.bwrap_path = None;
    let (v, c) = codes(&AgentEvidence { config_text: None, probe: Some(&p), ..Default::default() });
    assert_eq!(v, Verdict::Stalled);
    assert!(c.contains(&Code::BwrapMissing) && c.contains(&Code::SandboxWillFail));
}

#[test]
fn no_probe_is_unknown() {
    let d = diagnose(&AgentEvidence { probe_error: Some("container exited during the probe"), ..Default::default() });
    assert_eq!((d.verdict, d.codes()), (Verdict::Unknown, vec![Code::ProbeFailed]));
    assert_eq!(d.evidence(Code::ProbeFailed), Some("container exited during the probe"));
}

#[test]
fn verdict_order_first_match_wins() {
    use Code::*;
    assert_eq!(verdict_of(&[HostUnreachable, ConfigInvalid]), Verdict::Unknown);
    assert_eq!(verdict_of(&[ProbeFailed]), Verdict::Unknown);
    assert_eq!(verdict_of(&[SandboxEnabled, GiteaUnreachable]), Verdict::Stalled);
    assert_eq!(verdict_of(&[SandboxWillFail]), Verdict::Stalled);
    assert_eq!(verdict_of(&[FixNotInImage, ConfigKeyMisplaced]), Verdict::AtRisk);
    assert_eq!(verdict_of(&[ApprovalNotNever]), Verdict::AtRisk);
    assert_eq!(verdict_of(&[EmitterNotIdempotent]), Verdict::AtRisk);
    assert_eq!(
        verdict_of(&[ConfigKeyMisplaced, CliOverride, UsernsBlocked, UidmapWriteDenied, NetnsLoopbackDenied, BwrapMissing]),
        Verdict::Healthy
    );
    // Every code has a stable, distinct spelling.
    let names: std::collections::BTreeSet<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(names.len(), 17);
    for c in Code::ALL {
        assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
    }
}

#[test]
fn summary_signatures_alone_are_enough_to_diagnose() {
    use codex_fleet::probe::Signature;
    let mut p = base();
    p.bwrap = Step { outcome: Outcome::Denied, rc: Some(1), signature: Some(Signature::UidMap), ..Default::default() };
    let cfg = "sandbox_mode = \"workspace-write\"\n[sandbox_workspace_write]\nnetwork_access = true\n";
    let d = diagnose(&AgentEvidence { config_text: Some(cfg), probe: Some(&p), ..Default::default() });
    assert_eq!(d.verdict, Verdict::Stalled);
    assert!(d.has(Code::UidmapWriteDenied) && d.has(Code::SandboxWillFail), "{:?}", d.codes());
    assert!(d.evidence(Code::UidmapWriteDenied).unwrap().contains("setting up uid map"));
    p.bwrap.signature = Some(Signature::NetnsLoopback);
    assert_eq!(ProbeSummary::of(&p).netns_loopback, Outcome::Denied);
}

#[test]
fn the_probes_own_error_is_probe_failed() {
    let mut p = base();
    p.probe_error = Some("no writable scratch directory".into());
    let d = diagnose(&AgentEvidence { config_text: Some(FIXED), probe: Some(&p), ..Default::default() });
    assert_eq!((d.verdict, d.codes()), (Verdict::Unknown, vec![Code::ProbeFailed]));
}

/// A managed requirement that forbids the fix is its own finding, with the file and key as
/// evidence; a trusted project's config above the user's is too; both are at-risk at least.
#[test]
fn layers_the_fix_cannot_override() {
    let p = base();
    let fixed = "sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n";
    let req = "allowed_sandbox_modes = [\"read-only\", \"workspace-write\"]\n";
    let d = diagnose(&AgentEvidence { config_text: Some("model = \"x\"\n"), probe: Some(&p), requirements_text: Some(req), ..Default::default() });
    assert!(d.has(Code::RequirementsForbidFix), "{:?}", d.codes());
    assert_eq!(
        d.evidence(Code::RequirementsForbidFix).unwrap(),
        "/etc/codex/requirements.toml: allowed_sandbox_modes = [\"read-only\", \"workspace-write\"] does not allow sandbox_mode = \"danger-full-access\""
    );
    assert_eq!(d.verdict, Verdict::AtRisk);
    // the system layer is below the user's config: no finding, its source named
    let sys = "sandbox_mode = \"workspace-write\"\n";
    let d = diagnose(&AgentEvidence { config_text: Some("model = \"x\"\n"), probe: Some(&p), system_text: Some(sys), ..Default::default() });
    assert_eq!(d.effective.as_ref().unwrap().sandbox_mode.source.as_str(), "system");
    assert!(!d.has(Code::RequirementsForbidFix) && !d.has(Code::ProjectConfigOverrides));
    let d = diagnose(&AgentEvidence { config_text: Some(fixed), probe: Some(&p), system_text: Some(sys), ..Default::default() });
    assert!(!d.has(Code::SandboxEnabled), "{:?}", d.codes());
    // a trusted project's config: its own finding; untrusted: nothing
    let trusting = format!("{fixed}[projects.\"/w\"]\ntrust_level = \"trusted\"\n");
    let proj = "sandbox_mode = \"workspace-write\"\n";
    let d = diagnose(&AgentEvidence { config_text: Some(&trusting), probe: Some(&p), project: Some(("/w", proj)), ..Default::default() });
    assert_eq!(
        d.evidence(Code::ProjectConfigOverrides).unwrap(),
        "/w/.codex/config.toml (a trusted project, read above config.toml): sandbox_mode = \"workspace-write\""
    );
    assert_eq!(d.effective.as_ref().unwrap().sandbox_mode.source.as_str(), "project");
    let d = diagnose(&AgentEvidence { config_text: Some(fixed), probe: Some(&p), project: Some(("/w", proj)), ..Default::default() });
    assert!(!d.has(Code::ProjectConfigOverrides) && !d.has(Code::SandboxEnabled), "{:?}", d.codes());
    // an unreadable layer file stops codex like its own config
    let d = diagnose(&AgentEvidence { config_text: Some(fixed), probe: Some(&p), requirements_text: Some("allowed_sandbox_modes = [\n"), ..Default::default() });
    assert!(d.evidence(Code::ConfigInvalid).unwrap().starts_with("/etc/codex/requirements.toml line 1"), "{:?}", d.findings);
}

/// The scan's memo of diagnoses gives each evidence exactly what `diagnose` gives it: evidences
/// that differ in one field only (the start command, a layer change, the boot log's warning,
/// one probe step, the config) are each diagnosed as their own, asked for again in any order.
#[test]
fn the_memo_gives_each_evidence_its_own_diagnosis() {
    use codex_fleet::diagnose::DiagnosisMemo;
    let fe = fixed_emitter();
    let mut rtm = base();
    rtm.bwrap = denied(RTM);
    let mut uidmap = base();
    uidmap.bwrap = denied(UIDMAP_BWRAP);
    let mut effective = base();
    effective.effective = Some(CodexEffective { sandbox_mode: Some("danger-full-access".into()), approval_policy: Some("never".into()), network_access: None });
    let plain = base();
    let cmd: Vec<String> = ["sh", "-c", "exec codex --sandbox workspace-write app-server"].map(String::from).to_vec();
    let layer = vec!["C /usr/local/bin/codex_mcp_config.sh".to_string()];
    let evidences: Vec<AgentEvidence> = vec![
        AgentEvidence { config_text: Some(FIXED), probe: Some(&plain), emitter_text: Some(&fe), ..Default::default() },
        AgentEvidence { config_text: Some(FIXED), probe: Some(&plain), emitter_text: Some(&fe), start_command: &cmd, ..Default::default() },
        AgentEvidence { config_text: Some(FIXED), probe: Some(&plain), emitter_text: Some(&fe), layer_changes: &layer, ..Default::default() },
        AgentEvidence { config_text: Some(FIXED), probe: Some(&plain), emitter_text: Some(&fe), boot_warn: Some("WARN codex sandbox check failed"), ..Default::default() },
        AgentEvidence { config_text: Some(FIXED), probe: Some(&rtm), emitter_text: Some(&fe), ..Default::default() },
        AgentEvidence { config_text: Some("model = \"o3\"\n"), probe: Some(&rtm), ..Default::default() },
        AgentEvidence { config_text: Some("model = \"o3\"\n"), probe: Some(&uidmap), ..Default::default() },
        AgentEvidence { config_text: Some("model = \"o4\"\n"), probe: Some(&uidmap), ..Default::default() },
        AgentEvidence { config_text: None, probe: Some(&effective), ..Default::default() },
        AgentEvidence { probe_error: Some("no report"), ..Default::default() },
    ];
    let memo = DiagnosisMemo::default();
    for round in 0..3 {
        let order: Vec<usize> = if round == 1 { (0..evidences.len()).rev().collect() } else { (0..evidences.len()).collect() };
        for i in order {
            assert_eq!(memo.diagnose(&evidences[i]), diagnose(&evidences[i]), "evidence {i}, round {round}");
        }
    }
    assert_eq!(memo.len(), evidences.len(), "one diagnosis kept per distinct evidence");
    let verdicts: std::collections::HashSet<String> = evidences.iter().map(|e| format!("{:?}", memo.diagnose(e).codes())).collect();
    assert!(verdicts.len() >= 6, "the evidences are told apart: {verdicts:?}");
}

/// Past `DiagnosisMemo::MAX` distinct evidences the memo keeps no more and still diagnoses
/// each one as its own.
#[test]
fn the_memo_is_bounded() {
    use codex_fleet::diagnose::DiagnosisMemo;
    let p = base();
    let configs: Vec<String> = (0..DiagnosisMemo::MAX + 5).map(|i| format!("model = \"m{i}\"\nsandbox_mode = \"{}\"\n", if i % 2 == 0 { "read-only" } else { "danger-full-access" })).collect();
    let memo = DiagnosisMemo::default();
    for c in &configs {
        let ev = AgentEvidence { config_text: Some(c), probe: Some(&p), ..Default::default() };
        assert_eq!(memo.diagnose(&ev), diagnose(&ev));
    }
    assert_eq!(memo.len(), DiagnosisMemo::MAX);
    let last = AgentEvidence { config_text: Some(configs.last().unwrap()), probe: Some(&p), ..Default::default() };
    assert_eq!(memo.diagnose(&last), diagnose(&last), "not kept, diagnosed again");
}
