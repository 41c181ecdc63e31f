//! Scan of a test fleet on the real Docker engine, with the real codex 0.133.0: each container
//! in one of the incident's states gets the verdict and findings its state implies, with the
//! verbatim evidence (bwrap's own words on this kernel, codex's parse error, curl's error);
//! containers that cannot be read (one that stops during the probe, one without a shell) get
//! a clear per-agent error and the rest of the scan completes. Fails instead of skipping under
//! CI when the engine or the images are missing.

mod common;
mod docker_support;

use codex_fleet::codex::emitter::fix_emitter;
use codex_fleet::diagnose::{Code, Verdict};
use codex_fleet::fleet::Fleet;
use codex_fleet::scan::{scan, AgentState};
use docker_support::*;

fn find<'a>(r: &'a codex_fleet::scan::FleetReport, f: &TestFleet, suffix: &str) -> &'a AgentState {
    let name = f.name(suffix);
    r.agents().find(|a| a.read.agent.name == name).unwrap_or_else(|| panic!("{name} not in the scan"))
}

fn show(a: &AgentState) -> String {
    format!(
        "{} {:?} {:?} probe={:?}",
        a.read.agent.name,
        a.diagnosis.verdict,
        a.diagnosis.findings,
        a.read.probe.as_ref().map(|p| (&p.bwrap, &p.prompt_input, &p.gitea_plain, &p.gitea_codex, &p.effective))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_of_the_incident_fleet() {
    let Some(img) = images() else { return };
    let started = std::time::Instant::now();
    let mut f = TestFleet::new("scan", img.clone());
    let original = fixture("emitter/scripts/original.sh");
    let fixed = fix_emitter(&original).unwrap().text;
    // Stops its PID 1 as soon as a probe starts in it.
    let watcher = "i=0; while [ $i -lt 3000 ]; do if pgrep -f 'codex-fleet [p]robe' >/dev/null; then exit 3; fi; \
                   sleep 0.1; i=$((i+1)); done";
    f.add(vec![
        Spec::new("seccomp-default", &img.runtime_codex),
        Spec::new("unconfined", &img.runtime_codex).arg("--security-opt").arg("seccomp=unconfined"),
        Spec::new("pr77", &img.runtime_codex).emitter(&fixture("emitter/scripts/template-pr77.sh")),
        Spec { restarts: 1, ..Spec::new("dup-prepends", &img.runtime_codex).emitter(&fixture("emitter/scripts/hotpatch-1.sh")) },
        Spec::new("into-table", &img.runtime),
        Spec { restarts: 1, ..Spec::new("layer-fixed", &img.runtime_codex).emitter(&fixed) },
        Spec::new("net-none", &img.runtime_codex).arg("--network").arg("none"),
        Spec {
            cmd: ["codex", "--sandbox", "workspace-write", "app-server"].map(String::from).to_vec(),
            ..Spec::new("cli-override", &img.runtime)
        },
        Spec::new("meta.labels_x", &img.runtime)
            .arg("--label")
            .arg("cf.note=$(touch /tmp/pwned); echo \"x\" '; rm -rf / #`id`")
            .arg("--label")
            .arg("cf.api_token=not-a-real-secret-value-42"),
        Spec {
            entrypoint: Some("/bin/sh".into()),
            cmd: vec!["-c".into(), watcher.into()],
            no_wait: true,
            ..Spec::new("exits", &img.runtime_codex)
        },
        Spec { no_wait: true, ..Spec::new("noshell", &img.noshell) },
    ]);
    // Keys appended after the last table: inside [mcp_servers.molecule.env], ignored by codex.
    let (ok, _) = f.exec(
        "into-table",
        Some("agent"),
        &["sh", "-c", "printf 'sandbox_mode = \"danger-full-access\"\\napproval_policy = \"never\"\\n' >> \"$CODEX_HOME/config.toml\""],
    );
    assert!(ok);
    // Container names cannot carry shell metacharacters on this engine: it refuses them.
    let refused = docker(&["create", "--name", "cf-x;touch /tmp/y", "--label", "codex-fleet-test=1", &img.noshell]);
    assert!(!refused.status.success(), "the engine accepted a name with metacharacters");
    eprintln!("fleet up in {:?}", started.elapsed());

    let fleet = f.fleet().await;
    let t = std::time::Instant::now();
    let report = scan(&fleet, |_| {}).await.expect("scan");
    eprintln!("scan of {} agents in {:?}", report.agents().count(), t.elapsed());
    for a in report.agents() {
        eprintln!("{}", show(a));
    }
    assert_eq!(report.hosts.len(), 1);
    assert!(report.hosts[0].host.reachable);
    assert!(report.hosts[0].host.id.starts_with("docker:"));
    assert_eq!(report.agents().count(), 11, "every agent container is in the report, the Gitea stand-in is not");

    // Default seccomp: user namespaces refused; the sandboxed default cannot start.
    let a = find(&report, &f, "seccomp-default");
    assert_eq!(a.diagnosis.verdict, Verdict::Stalled, "{}", show(a));
    for c in [Code::SandboxEnabled, Code::UsernsBlocked, Code::SandboxWillFail, Code::EmitterNotIdempotent] {
        assert!(a.diagnosis.has(c), "{c} missing: {}", show(a));
    }
    let ev = a.diagnosis.evidence(Code::UsernsBlocked).unwrap();
    assert!(ev.contains("No permissions to create new namespace"), "bwrap's own words: {ev}");
    let p = a.read.probe.as_ref().unwrap();
    assert!(p.codex_version.as_deref().unwrap_or("").contains("0.133.0"), "{:?}", p.codex_version);
    assert!(p.gitea_codex.stderr.contains("No permissions to create new namespace"), "codex sandbox: {:?}", p.gitea_codex);
    assert_eq!(p.gitea_plain.status, Some(200));
    let j = codex_fleet::scan::agent_json(a);
    assert_eq!(j["probes"]["userns"], "denied");
    assert_eq!(j["effective"]["sandbox_mode"], "read-only");
    assert!(a.read.start_command.contains(&"/usr/local/bin/start.sh".to_string()), "{:?}", a.read.start_command);
    assert_eq!(a.read.user, "agent");
    assert!(a.read.boot_warn.is_none(), "Gitea answered the boot check: {:?}", a.read.boot_warn);

    // seccomp=unconfined: codex's sandbox can start; not on the fix, so at risk only.
    let a = find(&report, &f, "unconfined");
    assert_eq!(a.diagnosis.verdict, Verdict::AtRisk, "{}", show(a));
    assert!(a.diagnosis.has(Code::SandboxEnabled) && !a.diagnosis.has(Code::UsernsBlocked), "{}", show(a));
    assert!(!a.diagnosis.has(Code::SandboxWillFail), "{}", show(a));
    assert_eq!(a.read.probe.as_ref().unwrap().gitea_plain.status, Some(200));
    assert_eq!(codex_fleet::scan::agent_json(a)["probes"]["userns"], "ok");

    // Template PR #77: workspace-write + network access, still needs a user namespace.
    let a = find(&report, &f, "pr77");
    assert_eq!(a.diagnosis.verdict, Verdict::Stalled, "{}", show(a));
    assert!(a.diagnosis.evidence(Code::SandboxEnabled).unwrap().contains("workspace-write"), "{}", show(a));
    assert!(a.diagnosis.has(Code::SandboxWillFail) && a.diagnosis.has(Code::UsernsBlocked), "{}", show(a));

    // Two starts of the prepending hotpatch: duplicate keys, codex refuses the config.
    let a = find(&report, &f, "dup-prepends");
    assert_eq!(a.diagnosis.verdict, Verdict::Stalled, "{}", show(a));
    let ev = a.diagnosis.evidence(Code::ConfigInvalid).unwrap_or_else(|| panic!("{}", show(a)));
    assert!(ev.contains("duplicate"), "{ev}");
    assert!(a.diagnosis.has(Code::EmitterNotIdempotent), "{}", show(a));

    // Keys appended into a table.
    let a = find(&report, &f, "into-table");
    let ev = a.diagnosis.evidence(Code::ConfigKeyMisplaced).unwrap_or_else(|| panic!("{}", show(a)));
    assert!(ev.contains("sandbox_mode"), "{ev}");
    assert!(a.diagnosis.has(Code::SandboxEnabled), "the trapped key is ignored: {}", show(a));
    assert!(a.read.probe.as_ref().unwrap().codex_path.is_none(), "the image without codex");

    // Fixed only in the writable layer: the emitter changed against its image.
    let a = find(&report, &f, "layer-fixed");
    assert_eq!(a.diagnosis.verdict, Verdict::AtRisk, "{}", show(a));
    let ev = a.diagnosis.evidence(Code::FixNotInImage).unwrap_or_else(|| panic!("{}", show(a)));
    assert!(ev.starts_with("C /usr/local/bin/codex_mcp_config.sh"), "{ev}");
    assert!(a.read.layer_changes.iter().any(|l| l == "C /usr/local/bin/codex_mcp_config.sh"));
    let e = a.diagnosis.effective.as_ref().unwrap();
    assert!(e.is_fixed(), "{e:?}");

    // --network none: Gitea unreachable; the boot check's WARN line is read from the log.
    let a = find(&report, &f, "net-none");
    assert_eq!(a.diagnosis.verdict, Verdict::Stalled, "{}", show(a));
    let ev = a.diagnosis.evidence(Code::GiteaUnreachable).unwrap_or_else(|| panic!("{}", show(a)));
    assert!(ev.starts_with("curl:"), "curl's own words: {ev}");
    let warn = a.read.boot_warn.as_deref().unwrap_or_else(|| panic!("no WARN line: {}", show(a)));
    assert!(warn.starts_with("WARN") && warn.contains("/api/v1/version"), "{warn}");

    // A codex command-line override in the start command.
    let a = find(&report, &f, "cli-override");
    let ev = a.diagnosis.evidence(Code::CliOverride).unwrap_or_else(|| panic!("{}", show(a)));
    assert!(ev.contains("workspace-write"), "{ev}");

    // Labels with shell metacharacters: read as data, never run; secret-looking values redacted.
    let a = find(&report, &f, "meta.labels_x");
    assert!(a.read.probe.is_ok(), "{}", show(a));
    assert_eq!(a.read.labels["cf.note"], "$(touch /tmp/pwned); echo \"x\" '; rm -rf / #`id`");
    assert!(!a.read.labels["cf.api_token"].contains("not-a-real-secret"), "{:?}", a.read.labels);
    assert!(!f.exec("meta.labels_x", None, &["test", "-e", "/tmp/pwned"]).0);

    // A container that stops while it is probed; one without a shell.
    let a = find(&report, &f, "exits");
    assert_eq!(a.diagnosis.verdict, Verdict::Unknown, "{}", show(a));
    let e = a.read.probe.as_ref().unwrap_err();
    assert!(e.contains("stopped during the probe"), "{e}");
    assert!(a.diagnosis.has(Code::ProbeFailed));
    let a = find(&report, &f, "noshell");
    assert_eq!(a.diagnosis.verdict, Verdict::Unknown, "{}", show(a));
    let e = a.read.probe.as_ref().unwrap_err();
    assert!(e.contains("no shell"), "{e}");

    // The whole report as operators script against it.
    let j = report.to_json();
    assert_eq!(j["summary"]["agents"], 11);
    assert_eq!(j["summary"]["unknown"], 2);
    let text = serde_json::to_string(&j).unwrap();
    assert!(!text.contains("not-a-real-secret"));

    // The plan: what a config change cannot cure is listed as needing attention.
    let plan = codex_fleet::plan::plan(&report, &[], &fleet.describe(), "now");
    let attention: Vec<&str> = plan.attention.iter().map(|a| a.agent.name.as_str()).collect();
    for s in ["net-none", "cli-override", "exits", "noshell"] {
        assert!(attention.contains(&f.name(s).as_str()), "{s} not in attention: {attention:?}");
    }
    let planned: Vec<&str> = plan.agents.iter().map(|a| a.agent.name.as_str()).collect();
    for s in ["seccomp-default", "unconfined", "pr77", "dup-prepends", "into-table"] {
        assert!(planned.contains(&f.name(s).as_str()), "{s} not planned: {planned:?}");
    }
    eprintln!("total {:?}", started.elapsed());
}
