//! A small fleet in the incident's states, built from realistic `AgentRead`/`ProbeReport` values
//! and diagnosed by the real `AgentState::from_read`: the console's snapshot tests, app tests
//! and benchmarks render it. Not used by the product itself.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::codex::emitter::{fix_emitter_for, EMITTER_PATH};
use crate::fleet::{AgentRead, AgentRef, Host};
use crate::probe::{CodexEffective, CodexProcess, FileInfo, Http, Outcome, ProbeReport, Step};
use crate::scan::{AgentState, FleetReport, HostState};

/// The incident's recorded strings (see tests/diagnose_evidence.rs).
pub const RTM: &str = "bwrap: loopback: Failed RTM_NEWADDR: Operation not permitted";
pub const UIDMAP_BWRAP: &str = "bwrap: setting up uid map: Permission denied";
pub const UIDMAP_UNSHARE: &str = "unshare: write failed /proc/self/uid_map: Operation not permitted";
pub const USERNS_DEBIAN: &str = "bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces. See <https://deb.li/bubblewrap> or <file:///usr/share/doc/bubblewrap/README.Debian.gz>.";
pub const UNSHARE_EPERM: &str = "unshare: unshare failed: Operation not permitted";
pub const CURL_DNS: &str = "curl: (6) Could not resolve host: git.moleculesai.app";

pub const IMAGE_OLD: &str = "ghcr.io/molecule-ai/workspace-codex:2026.10.2";
pub const IMAGE_NEW: &str = "ghcr.io/molecule-ai/workspace-codex:2026.11.1";

const CONFIG_PATH: &str = "/home/agent/.codex/config.toml";
const HOTPATCH_EMITTER: &str = include_str!("../../tests/fixtures/emitter/scripts/hotpatch-1.sh");
const ORIGINAL_EMITTER: &str = include_str!("../../tests/fixtures/emitter/scripts/original.sh");

/// The provider section every agent carries, as the probe hands it over (secrets redacted on
/// the host).
const PROVIDER: &str = "\n[model_providers.minimax]\nname = \"MiniMax\"\nbase_url = \"https://api.minimax.io/v1\"\nenv_key = \"MINIMAX_API_KEY\"\n\n[mcp_servers.molecule]\ncommand = \"/opt/molecule-venv/bin/python3\"\nargs = [\"-m\", \"molecule_runtime.mcp\"]\n\n[mcp_servers.molecule.env]\nWORKSPACE_ID = \"ws-7f3a\"\nMOLECULE_TOKEN = \"<redacted:1>\"\n";

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn ok() -> Step {
    Step { outcome: Outcome::Ok, rc: Some(0), stderr: String::new(), ..Default::default() }
}

fn denied(stderr: &str) -> Step {
    // with the signature letter the probe's own rules give it on the host
    Step { outcome: Outcome::Denied, rc: Some(1), stderr: stderr.into(), signature: crate::probe::host_signature(stderr) }
}

fn file(path: &str, text: Option<&str>) -> FileInfo {
    FileInfo {
        path: path.into(),
        sha256: text.map(sha),
        size: text.map(|t| t.len() as u64),
        redacted: text.map(Into::into),
        outcome: if text.is_some() { Outcome::Ok } else { Outcome::Absent },
    }
}

/// A container whose namespaces work and whose Gitea answers.
fn base_probe(config: Option<&str>, emitter: Option<&str>) -> ProbeReport {
    ProbeReport {
        format: 1,
        uid: Some(1000),
        gid: Some(1000),
        user: Some("agent".into()),
        cap_eff: Some("0000000000000000".into()),
        uid_map: Some("0 0 4294967295".into()),
        subuid: Outcome::Absent,
        userns: ok(),
        userns_map_root: ok(),
        bwrap: ok(),
        bwrap_path: Some("/usr/bin/bwrap".into()),
        codex_path: Some("/usr/local/bin/codex".into()),
        codex_version: Some("codex-cli 0.133.0".into()),
        codex_processes: vec![CodexProcess {
            pid: 41,
            argv: vec!["codex".into(), "app-server".into()],
            cwd: Some("/workspace".into()),
        }],
        prompt_input: ok(),
        effective: None,
        codex_home: Some("/home/agent/.codex".into()),
        config: file(CONFIG_PATH, config),
        emitter: file(EMITTER_PATH, emitter),
        gitea_plain: Http { status: Some(200), outcome: Outcome::Ok, stderr: String::new(), ..Default::default() },
        gitea_codex: Http { status: Some(200), outcome: Outcome::Ok, stderr: String::new(), ..Default::default() },
        ..Default::default()
    }
}

/// Which of the incident's states an agent is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Default sandbox (read-only) where loopback cannot be configured: stalled.
    LoopbackDenied,
    /// The earlier workaround (workspace-write + network_access) dying at the uid map: stalled.
    UidmapDenied,
    /// Repeated prepends from a hotpatched emitter: duplicate keys, codex exits: stalled.
    DuplicatePrepends,
    /// Keys appended after a table header on a kernel without user namespaces: stalled.
    KeysInTable,
    /// codex started with `--sandbox workspace-write`: stalled, needs attention.
    CliOverride,
    /// Fixed, but only in the container's writable layer: at-risk.
    FixedInLayer,
    /// Config fixed by hand over a hotpatch emitter: at-risk.
    HotpatchEmitter,
    /// Gitea unreachable: stalled, needs attention.
    GiteaDown,
    /// The probe's output could not be read: unknown.
    ProbeFailed,
    /// Fully fixed (emitter in the image carries the managed block): healthy.
    Fixed,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::LoopbackDenied,
        Kind::UidmapDenied,
        Kind::DuplicatePrepends,
        Kind::KeysInTable,
        Kind::CliOverride,
        Kind::FixedInLayer,
        Kind::HotpatchEmitter,
        Kind::GiteaDown,
        Kind::ProbeFailed,
        Kind::Fixed,
    ];
}

const FIXED_KEYS: &str = "sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n";

/// One agent container in state `kind`.
pub fn agent(host: &str, name: &str, kind: Kind) -> AgentRead {
    let fixed_emitter = fix_emitter_for(ORIGINAL_EMITTER, Some(CONFIG_PATH)).expect("the original emitter is fixable").text;
    let mut start_command = vec!["/usr/bin/tini".to_string(), "--".into(), "/entrypoint.sh".into()];
    let mut layer_changes = vec!["C /home/agent".to_string(), "C /home/agent/.codex".into(), format!("C {CONFIG_PATH}")];
    let mut image = IMAGE_OLD;
    let mut probe = match kind {
        Kind::LoopbackDenied => {
            let cfg = format!("model = \"MiniMax-M2\"\nmodel_provider = \"minimax\"\n{PROVIDER}");
            let mut p = base_probe(Some(&cfg), None);
            p.bwrap = denied(RTM);
            p.gitea_codex = Http { status: None, outcome: Outcome::Denied, stderr: RTM.into(), signature: crate::probe::host_signature(RTM), ..Default::default() };
            Ok(p)
        }
        Kind::UidmapDenied => {
            let cfg = format!("model = \"MiniMax-M2\"\nmodel_provider = \"minimax\"\nsandbox_mode = \"workspace-write\"\n\n[sandbox_workspace_write]\nnetwork_access = true\n{PROVIDER}");
            let mut p = base_probe(Some(&cfg), None);
            p.userns_map_root = denied(UIDMAP_UNSHARE);
            p.bwrap = denied(UIDMAP_BWRAP);
            p.gitea_codex = Http { status: None, outcome: Outcome::Denied, stderr: UIDMAP_BWRAP.into(), signature: crate::probe::host_signature(UIDMAP_BWRAP), ..Default::default() };
            Ok(p)
        }
        Kind::DuplicatePrepends => {
            let cfg = format!("{FIXED_KEYS}{FIXED_KEYS}model = \"MiniMax-M2\"\nmodel_provider = \"minimax\"\n{PROVIDER}");
            let mut p = base_probe(Some(&cfg), Some(HOTPATCH_EMITTER));
            p.prompt_input = Step {
                outcome: Outcome::Error,
                rc: Some(1),
                stderr: "Error loading config.toml: duplicate key `sandbox_mode` in document root".into(),
                signature: Some(crate::probe::Signature::ConfigError),
                ..Default::default()
            };
            Ok(p)
        }
        Kind::KeysInTable => {
            let cfg = format!("model = \"MiniMax-M2\"\nmodel_provider = \"minimax\"\n{PROVIDER}{FIXED_KEYS}");
            let mut p = base_probe(Some(&cfg), None);
            p.userns = denied(UNSHARE_EPERM);
            p.userns_map_root = denied(UNSHARE_EPERM);
            p.bwrap = denied(USERNS_DEBIAN);
            p.gitea_codex = Http { status: None, outcome: Outcome::Denied, stderr: USERNS_DEBIAN.into(), signature: crate::probe::host_signature(USERNS_DEBIAN), ..Default::default() };
            Ok(p)
        }
        Kind::CliOverride => {
            let cfg = format!("{FIXED_KEYS}model = \"MiniMax-M2\"\n{PROVIDER}");
            start_command = vec!["sh".into(), "-c".into(), "exec codex --sandbox workspace-write app-server".into()];
            let mut p = base_probe(Some(&cfg), Some(&fixed_emitter));
            p.bwrap = denied(USERNS_DEBIAN);
            p.userns = denied(UNSHARE_EPERM);
            p.userns_map_root = denied(UNSHARE_EPERM);
            p.codex_processes[0].argv = vec!["codex".into(), "--sandbox".into(), "workspace-write".into(), "app-server".into()];
            image = IMAGE_NEW;
            layer_changes.clear();
            Ok(p)
        }
        Kind::FixedInLayer => {
            let cfg = format!("{FIXED_KEYS}model = \"MiniMax-M2\"\n{PROVIDER}");
            layer_changes.push("C /usr/local/bin".into());
            layer_changes.push(format!("C {EMITTER_PATH}"));
            let mut p = base_probe(Some(&cfg), Some(&fixed_emitter));
            p.effective = Some(CodexEffective {
                sandbox_mode: Some("danger-full-access".into()),
                approval_policy: Some("never".into()),
                network_access: Some(true),
            });
            Ok(p)
        }
        Kind::HotpatchEmitter => {
            let cfg = format!("{FIXED_KEYS}model = \"MiniMax-M2\"\n{PROVIDER}");
            Ok(base_probe(Some(&cfg), Some(HOTPATCH_EMITTER)))
        }
        Kind::GiteaDown => {
            let cfg = format!("{FIXED_KEYS}model = \"MiniMax-M2\"\n{PROVIDER}");
            let mut p = base_probe(Some(&cfg), Some(&fixed_emitter));
            p.gitea_plain = Http { status: None, outcome: Outcome::Error, stderr: CURL_DNS.into(), ..Default::default() };
            p.gitea_codex = Http { status: None, outcome: Outcome::Error, stderr: CURL_DNS.into(), ..Default::default() };
            image = IMAGE_NEW;
            layer_changes.clear();
            Ok(p)
        }
        Kind::ProbeFailed => Err("probe output unreadable: container exited during the probe (exit status 137)".to_string()),
        Kind::Fixed => {
            let cfg = format!("{FIXED_KEYS}model = \"MiniMax-M2\"\n{PROVIDER}");
            let mut p = base_probe(Some(&cfg), Some(&fixed_emitter));
            p.userns = denied(UNSHARE_EPERM);
            p.userns_map_root = denied(UNSHARE_EPERM);
            p.bwrap = denied(USERNS_DEBIAN);
            p.effective = Some(CodexEffective {
                sandbox_mode: Some("danger-full-access".into()),
                approval_policy: Some("never".into()),
                network_access: Some(true),
            });
            image = IMAGE_NEW;
            layer_changes.clear();
            Ok(p)
        }
    };
    if let Ok(p) = &mut probe {
        p.user = Some("agent".into());
    }
    let n = name.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    AgentRead {
        agent: AgentRef { host: host.into(), container_id: format!("{n:016x}{:016x}", n.rotate_left(17)), name: name.into() },
        image: image.into(),
        image_id: format!("sha256:{}", sha(image)),
        labels: BTreeMap::from([("com.molecule.role".to_string(), "codex-agent".to_string())]),
        state: "running".into(),
        restart_count: if kind == Kind::DuplicatePrepends { 14 } else { 0 },
        started_at: "2026-11-03T02:41:07Z".into(),
        user: "agent".into(),
        start_command,
        layer_changes,
        boot_warn: None,
        probe,
    }
}

fn host(id: &str, name: &str, reachable: bool) -> Host {
    Host {
        id: id.into(),
        name: name.into(),
        location: "us-east-2".into(),
        reachable,
        unreachable_reason: (!reachable).then(|| "PingStatus ConnectionLost (last seen 2026-11-03T01:12:55Z)".into()),
        agent_version: reachable.then(|| "3.3.1802.0".into()),
    }
}

fn host_state(id: &str, name: &str, agents: Vec<AgentRead>) -> HostState {
    HostState { host: host(id, name, true), agents: agents.into_iter().map(AgentState::from_read).collect() }
}

/// The incident fleet: 4 hosts (one unreachable), 12 agents covering every verdict.
pub fn incident_fleet() -> FleetReport {
    use Kind::*;
    let a = |h: &str, n: &str, k| agent(h, n, k);
    FleetReport {
        hosts: vec![
            host_state(
                "i-0a1b2c3d4e5f60001",
                "ws-review-1",
                vec![
                    a("i-0a1b2c3d4e5f60001", "codex-review-1", LoopbackDenied),
                    a("i-0a1b2c3d4e5f60001", "codex-review-2", UidmapDenied),
                    a("i-0a1b2c3d4e5f60001", "codex-review-3", DuplicatePrepends),
                    a("i-0a1b2c3d4e5f60001", "codex-review-4", Fixed),
                ],
            ),
            host_state(
                "i-0a1b2c3d4e5f60002",
                "ws-build-1",
                vec![
                    a("i-0a1b2c3d4e5f60002", "codex-build-1", KeysInTable),
                    a("i-0a1b2c3d4e5f60002", "codex-build-2", CliOverride),
                    a("i-0a1b2c3d4e5f60002", "codex-build-3", FixedInLayer),
                    a("i-0a1b2c3d4e5f60002", "codex-build-4", HotpatchEmitter),
                ],
            ),
            HostState { host: host("i-0a1b2c3d4e5f60003", "ws-build-2", false), agents: Vec::new() },
            host_state(
                "i-0a1b2c3d4e5f60004",
                "ws-ops-1",
                vec![
                    a("i-0a1b2c3d4e5f60004", "codex-ops-1", GiteaDown),
                    a("i-0a1b2c3d4e5f60004", "codex-ops-2", ProbeFailed),
                    a("i-0a1b2c3d4e5f60004", "codex-ops-3", Fixed),
                    a("i-0a1b2c3d4e5f60004", "codex-ops-4", LoopbackDenied),
                ],
            ),
        ],
    }
}

/// A large fleet for benchmarks: `hosts` hosts of `per_host` agents cycling through every kind.
pub fn large_fleet(hosts: usize, per_host: usize) -> FleetReport {
    // Diagnose each kind once and clone: the benchmark measures drawing, not diagnosis.
    let templates: Vec<AgentState> =
        Kind::ALL.iter().map(|k| AgentState::from_read(agent("h", "a", *k))).collect();
    let mut out = Vec::with_capacity(hosts);
    for h in 0..hosts {
        let id = format!("i-{h:017x}");
        let name = format!("ws-{h:04}");
        let agents = (0..per_host)
            .map(|i| {
                let mut a = templates[(h * per_host + i) % templates.len()].clone();
                a.read.agent.host = id.clone();
                a.read.agent.name = format!("codex-{h:04}-{i:02}");
                a
            })
            .collect();
        out.push(HostState { host: host(&id, &name, true), agents });
    }
    FleetReport { hosts: out }
}

// ---------------------------------------------------------------------------------------------
// Driving the console without a terminal (tests, benchmarks)

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::{plan_subset, App, AppOptions, Effect, Msg};

/// The plan's `created` stamp in tests.
pub const CREATED: &str = "2026-11-03T03:00:00Z";

/// A console of `w`x`h` showing the incident fleet.
pub fn app(w: u16, h: u16) -> App {
    App::with_report(
        AppOptions { read_only: false, source: "fixture: 4 hosts, us-east-2".into(), no_color: false, size: (w, h) },
        incident_fleet(),
    )
}

pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// Type keys: characters as themselves, `<esc>`, `<enter>`, `<space>`, `<tab>`, `<down>`, `<up>`,
/// `<bs>`, `<pgdn>`, `<pgup>` as named. Returns every effect produced.
pub fn keys(app: &mut App, s: &str) -> Vec<Effect> {
    let mut fx = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let (code, n) = if c == '<' {
            match rest.find('>') {
                Some(end) => {
                    let name = &rest[1..end];
                    let code = match name {
                        "esc" => KeyCode::Esc,
                        "enter" => KeyCode::Enter,
                        "space" => KeyCode::Char(' '),
                        "tab" => KeyCode::Tab,
                        "down" => KeyCode::Down,
                        "up" => KeyCode::Up,
                        "bs" => KeyCode::Backspace,
                        "pgdn" => KeyCode::PageDown,
                        "pgup" => KeyCode::PageUp,
                        "end" => KeyCode::End,
                        "home" => KeyCode::Home,
                        "left" => KeyCode::Left,
                        "right" => KeyCode::Right,
                        _ => KeyCode::Char('<'),
                    };
                    if code == KeyCode::Char('<') {
                        (code, 1)
                    } else {
                        (code, end + 1)
                    }
                }
                None => (KeyCode::Char('<'), 1),
            }
        } else {
            (KeyCode::Char(c), c.len_utf8())
        };
        fx.extend(app.handle_key(key(code)));
        rest = &rest[n..];
    }
    fx
}

/// Carry out the pure effects (plans) synchronously, as the runtime would on a task; return
/// the others.
pub fn settle(app: &mut App, fx: Vec<Effect>) -> Vec<Effect> {
    let mut out = Vec::new();
    for e in fx {
        match e {
            Effect::Plan { ids, purpose } => {
                let plan = plan_subset(&app.report, &ids, &app.source, CREATED);
                let more = app.on_msg(Msg::Planned { plan, ids, purpose });
                app.sync();
                out.extend(settle(app, more));
            }
            e => out.push(e),
        }
    }
    out
}

/// Draw the console on a test backend of its own size.
pub fn render(app: &App) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(app.size.0, app.size.1)).expect("test terminal");
    t.draw(|f| super::ui::draw(f, app)).expect("draw");
    t
}
