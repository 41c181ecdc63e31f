//! The simulated fleet behind the simulated AWS: EC2 instances with an SSM agent and a Docker
//! engine, each running codex agent containers with real files (config.toml, the boot
//! emitter), a writable layer, a restart count, a log's boot check, namespace primitives that
//! work or are refused, and a network path to Gitea that works or not.
//!
//! A host runs what SSM delivers: it reads the script's payload header
//! ([`crate::fleet::aws::host_script::decode`]) and executes each operation against this state,
//! answering in exactly the bytes the real host script prints (the probe's own format via
//! [`crate::probe::render_detail`], agent-ops' format for mutations), so the console parses
//! them with the one parser. A restart runs the boot emitter with its real semantics: a fixed
//! emitter applies the managed block ([`crate::codex::fix`]), a hotpatch prepends its keys
//! again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codex::argv::parse_all;
use crate::codex::config::parse as parse_config;
use crate::codex::emitter::{classify, EmitterState, EMITTER_PATH};
use crate::codex::fix::{fix, FixOptions};
use crate::codex::redact::{redact, restore};
use crate::fleet::aws::host_script::{self, pct, Item, ItemOutput};
use crate::probe::{self, CodexEffective, CodexProcess, FileInfo, Http, Outcome, ProbeReport, Signature, Step};

pub const STATE_FORMAT: u32 = 1;

/// What a host's shell printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptResult {
    pub stdout: String,
    pub stderr: String,
    pub rc: i32,
    /// Time the script takes beyond SSM's latency (waits, restarts).
    pub extra_time: Duration,
    /// The script did its work but its answer is lost (`AgentFaults::lose_answer`).
    pub lost: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimHost {
    pub instance_id: String,
    pub name: String,
    pub region: String,
    pub reservation: String,
    pub tags: BTreeMap<String, String>,
    /// EC2 state: running, stopped.
    pub ec2_state: String,
    pub ssm_managed: bool,
    /// The SSM agent is connected (PingStatus Online).
    pub online: bool,
    pub agent_version: String,
    pub docker_version: String,
}

impl SimHost {
    pub fn ping_status(&self) -> &'static str {
        if self.online {
            "Online"
        } else {
            "ConnectionLost"
        }
    }
}

/// Namespace primitives and network of a container (from its host's kernel and runtime).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Primitives {
    pub userns: bool,
    pub uid_map_write: bool,
    pub netns_loopback: bool,
    /// bwrap bundled with codex / on PATH.
    pub bwrap: bool,
    /// Gitea's answer from the container; None: nothing answered.
    pub gitea_status: Option<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimAgent {
    pub container_id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub restart_count: u64,
    pub boots: u64,
    pub user: String,
    pub uid: u32,
    pub codex_home: String,
    pub start_command: Vec<String>,
    pub codex_version: String,
    /// Real bytes (secrets included): only the simulated host sees them.
    pub config: Option<String>,
    pub emitter: Option<String>,
    /// The emitter as the image has it (writable layer = differences).
    pub image_emitter: Option<String>,
    /// config.toml edited by hand in the writable layer (no emitter regenerates it).
    pub config_in_layer: bool,
    pub prims: Primitives,
    /// The probe cannot run in this container (why, verbatim).
    pub probe_broken: Option<String>,
    /// Backups inside the container: path -> content.
    pub backups: BTreeMap<String, String>,
    /// `run_id TAB holder TAB since TAB token` (agent-ops.sh's lock directory, as one string).
    pub lock: Option<String>,
    pub faults: AgentFaults,
    /// codex's other config layers in this container (absent in states saved before them).
    #[serde(default)]
    pub layers: SimLayers,
    /// What codex's session records of the last 24 h say (none: no sessions dir).
    #[serde(default)]
    pub sessions: Option<crate::probe::SessionStats>,
}

impl super::judge::Judged for SimAgent {
    /// What the demo's codex judge is given of this agent (see [`super::judge`]).
    fn codex_files(&self) -> super::judge::CodexFiles<'_> {
        super::judge::CodexFiles {
            version: &self.codex_version,
            home: &self.codex_home,
            cwd: SIM_CWD,
            config: &self.config,
            system: &self.layers.system,
            requirements: &self.layers.requirements,
            managed: &self.layers.managed,
            project: &self.layers.project,
        }
    }
}

/// The files codex reads besides `$CODEX_HOME/config.toml`: real bytes, as for `config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct SimLayers {
    /// `/etc/codex/config.toml`.
    pub system: Option<String>,
    /// `/etc/codex/requirements.toml`.
    pub requirements: Option<String>,
    /// `/etc/codex/managed_config.toml`.
    pub managed: Option<String>,
    /// `/workspace/.codex/config.toml` (codex runs in /workspace).
    pub project: Option<String>,
}

/// Where the simulated agents' codex runs (its working directory).
pub const SIM_CWD: &str = "/workspace";

/// Fault knobs of one agent (issue 6's tests turn them on).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AgentFaults {
    /// The container does not come back after a restart (exits, restart policy loops).
    pub restart_fails: bool,
    /// The boot assertion fails after the restart (Gitea through codex refused).
    pub verify_fails: bool,
    /// Somebody edits config.toml/emitter right before the next write (plan is stale).
    pub change_before_write: bool,
    /// Commands on this agent's host run this much longer (command timeout tests).
    pub slow_ms: u64,
    /// Operations (`write`, `restore`, `lock`, `restart`, ...) whose next answer is lost: the
    /// host carries the operation out, then SSM reports the command timed out with its output
    /// cut (each entry is used once). The console cannot know whether it happened: `unknown`.
    #[serde(default)]
    pub lose_answer: Vec<String>,
}

/// Fleet-wide fault knobs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Faults {
    /// Host instance id -> after this many more mutating operations it loses its SSM
    /// connection (a host going offline mid-wave).
    pub offline_after: BTreeMap<String, u32>,
    /// How long a command for an offline host stays pending before SSM gives up delivering.
    pub offline_delivery_ms: u64,
    /// Hosts that lie about texts: every text their scan answers carry after the summary, and
    /// every text their `blobs` item returns, is another text under the real one's name (a
    /// compromised host serving a forged config for the names its agents share with others).
    #[serde(default)]
    pub forge_texts: BTreeSet<String>,
}

/// What a lying host (`Faults::forge_texts`) serves instead of `v`.
pub fn forged_text(instance: &str, v: &str) -> String {
    format!("forged-by-{instance} {v}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorldState {
    pub format: u32,
    pub seed: u64,
    pub hosts: Vec<SimHost>,
    /// instance id -> its containers.
    pub agents: BTreeMap<String, Vec<SimAgent>>,
    pub faults: Faults,
    /// Mutating operations the hosts carried out, by operation (`write`, `restart`, ...):
    /// kept with the state so that a test can count them across processes (`--read-only`
    /// must leave this untouched).
    #[serde(default)]
    pub mutations: BTreeMap<String, u64>,
}

/// The fleet, shared by the simulated AWS and its hosts; optionally persisted in a file
/// (`--demo-state`) so it outlives the process.
pub struct World {
    state: Mutex<WorldState>,
    file: Option<PathBuf>,
    /// Per-host blob stores of the last scans (nonce -> hash -> value), as the real host keeps
    /// them in a private directory.
    blobs: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

impl World {
    pub fn new(state: WorldState, file: Option<PathBuf>) -> World {
        World { state: Mutex::new(state), file, blobs: Mutex::new(BTreeMap::new()) }
    }

    /// Load `file` if it holds a fleet, else start from `fresh` (and save it there).
    pub fn load_or(file: Option<PathBuf>, fresh: impl FnOnce() -> WorldState) -> Result<World, String> {
        if let Some(f) = &file {
            if f.exists() {
                let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
                let st: WorldState = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
                if st.format != STATE_FORMAT {
                    return Err(format!("{}: demo state format {} (expected {STATE_FORMAT})", f.display(), st.format));
                }
                return Ok(World::new(st, file));
            }
        }
        let w = World::new(fresh(), file);
        w.save();
        Ok(w)
    }

    fn save_locked(&self, st: &WorldState) {
        if let Some(f) = &self.file {
            let tmp = f.with_extension("tmp");
            if let Ok(text) = serde_json::to_string(st) {
                if std::fs::write(&tmp, text).is_ok() {
                    let _ = std::fs::rename(&tmp, f);
                }
            }
        }
    }

    pub fn save(&self) {
        let st = self.state.lock().unwrap();
        self.save_locked(&st);
    }

    /// Re-read the state file (another process may have changed the fleet).
    fn reload(&self, st: &mut WorldState) {
        if let Some(f) = &self.file {
            if let Ok(text) = std::fs::read_to_string(f) {
                if let Ok(s) = serde_json::from_str::<WorldState>(&text) {
                    *st = s;
                }
            }
        }
    }

    pub fn snapshot_hosts(&self) -> Vec<SimHost> {
        self.state.lock().unwrap().hosts.clone()
    }

    pub fn host(&self, id: &str) -> Option<SimHost> {
        self.state.lock().unwrap().hosts.iter().find(|h| h.instance_id == id).cloned()
    }

    pub fn seed_hash(&self) -> u64 {
        self.state.lock().unwrap().seed
    }

    /// Change the fleet (tests: faults, offline hosts, edits behind the console's back).
    pub fn with<R>(&self, f: impl FnOnce(&mut WorldState) -> R) -> R {
        let mut st = self.state.lock().unwrap();
        self.reload(&mut st);
        let r = f(&mut st);
        self.save_locked(&st);
        r
    }

    pub fn offline_delivery_wait(&self) -> Duration {
        let ms = self.state.lock().unwrap().faults.offline_delivery_ms;
        Duration::from_millis(if ms == 0 { 3_000 } else { ms })
    }

    /// Deterministic per-host spread of the command latency (0.8x .. 1.2x), plus a slow
    /// agent's extra time.
    pub fn latency_for(&self, instance: &str, base: Duration) -> Duration {
        let h = Sha256::digest(instance.as_bytes());
        let f = 0.8 + (h[0] as f64 / 255.0) * 0.4;
        base.mul_f64(f)
    }

    /// Run one script on `instance`.
    pub async fn execute(&self, instance: &str, script: &str) -> ScriptResult {
        self.execute_decoded(instance, &host_script::decode(script)).await
    }

    /// Run one script on `instance`, its payload read already (a command's hosts all run the
    /// same script: the simulated SSM reads it once a command, not once a host).
    pub async fn execute_decoded(&self, instance: &str, payload: &Result<host_script::Payload, String>) -> ScriptResult {
        let payload = match payload {
            Ok(p) => p,
            Err(e) => {
                return ScriptResult { stderr: format!("codex-fleet host script: bad payload: {e}\n"), rc: 2, ..Default::default() }
            }
        };
        let mut outs = Vec::new();
        let mut extra = Duration::ZERO;
        let mut side_by_side = Duration::ZERO;
        let mut lost = false;
        let mut forging = false;
        let mine = |i: &Item| i.instance == "*" || i.instance == instance;
        if payload.items.iter().all(|i| matches!(i.op.as_str(), "scan" | "blobs")) {
            // Reads only: a copy of the host under the lock, the work outside it.
            let (host, agents, slow) = {
                let mut st = self.state.lock().unwrap();
                self.reload(&mut st);
                for item in payload.items.iter().filter(|i| mine(i)) {
                    lost |= take_lost_answer(&mut st, instance, item);
                }
                self.save_locked(&st);
                let agents = st.agents.get(instance).cloned().unwrap_or_default();
                let slow = agents.iter().map(|x| x.faults.slow_ms).max().unwrap_or(0);
                forging = st.faults.forge_texts.contains(instance);
                (st.hosts.iter().find(|h| h.instance_id == instance).cloned(), agents, slow)
            };
            for (k, item) in payload.items.iter().enumerate().filter(|(_, i)| mine(i)) {
                let (lines, rc, t) = if item.op == "scan" {
                    self.scan_host(host.as_ref(), &agents, instance, &payload.run, item)
                } else {
                    self.blobs_item(instance, &payload.run, item, forging)
                };
                extra += t;
                outs.push(ItemOutput { seq: k + 1, op: item.op.clone(), lines, rc });
            }
            extra += Duration::from_millis(slow);
        } else {
            let mut st = self.state.lock().unwrap();
            self.reload(&mut st);
            let mutating = payload.items.iter().any(|i| MUTATING.contains(&i.op.as_str()) && (i.instance == "*" || i.instance == instance));
            for (k, item) in payload.items.iter().enumerate() {
                if item.instance != "*" && item.instance != instance {
                    continue;
                }
                lost |= take_lost_answer(&mut st, instance, item);
                let (lines, rc, t) = self.run_item(&mut st, instance, &payload.run, item);
                if MUTATING.contains(&item.op.as_str()) {
                    *st.mutations.entry(item.op.clone()).or_default() += 1;
                }
                // Items on containers run side by side on the host (host-ops.sh start_items):
                // the command takes as long as the slowest; a scan's time adds up.
                if matches!(item.op.as_str(), "scan" | "blobs") {
                    extra += t;
                } else {
                    side_by_side = side_by_side.max(t);
                }
                outs.push(ItemOutput { seq: k + 1, op: item.op.clone(), lines, rc });
            }
            extra += side_by_side;
            if let Some(slow) = st.agents.get(instance).map(|a| a.iter().map(|x| x.faults.slow_ms).max().unwrap_or(0)) {
                extra += Duration::from_millis(slow);
            }
            if mutating {
                if let Some(n) = st.faults.offline_after.get_mut(instance) {
                    if *n == 0 {
                        if let Some(h) = st.hosts.iter_mut().find(|h| h.instance_id == instance) {
                            h.online = false;
                        }
                    } else {
                        *n -= 1;
                    }
                }
            }
            self.save_locked(&st);
        }
        let plain = host_script::frame(instance, &outs);
        let mut stdout = if payload.z { host_script::pack(&plain) } else { plain };
        // A scan's texts follow its summary, in what is left of the 24,000 characters (host-ops.sh).
        let scan = payload.items.iter().find(|i| i.op == "scan" && (i.instance == "*" || i.instance == instance));
        if let (true, Some(item)) = (payload.z, scan) {
            let nonce = item.get("NONCE").unwrap_or(payload.run.as_str());
            if let Some(store) = self.blobs.lock().unwrap().get(&format!("{instance}/{nonce}")) {
                let budget = host_script::ANSWER_LIMIT.saturating_sub(host_script::packed_len(&stdout) + 40);
                if forging {
                    let forged: BTreeMap<String, String> = store.iter().map(|(h, v)| (h.clone(), forged_text(instance, v))).collect();
                    stdout.push_str(&host_script::pack_texts(&forged, budget));
                } else {
                    stdout.push_str(&host_script::pack_texts(store, budget));
                }
            }
        }
        // The script exits 1 when an operation failed (SSM then says Failed, output and all).
        let rc = i32::from(outs.iter().any(|o| o.rc != 0));
        ScriptResult { stdout, stderr: String::new(), rc, extra_time: extra, lost }
    }

    /// A scan of one host: what it reads changes nothing, so it runs on a copy of the host's
    /// agents, outside the world's lock (a thousand hosts render their answers side by side).
    fn scan_host(&self, host: Option<&SimHost>, agents: &[SimAgent], instance: &str, run: &str, item: &Item) -> (Vec<String>, i32, Duration) {
        let gitea = item.get("GITEA").unwrap_or("https://git.moleculesai.app").to_string();
        let filter: crate::fleet::filter::AgentFilter = item.get("FILTER").unwrap_or("image=codex").parse().unwrap_or_default();
        let matching: Vec<&SimAgent> = agents.iter().filter(|a| filter.matches(&a.name, &a.image, &a.labels)).collect();
        let nonce = item.get("NONCE").unwrap_or(run).to_string();
        let mut lines = vec![format!("h docker={} n={}", pct(host.map(|h| h.docker_version.as_str()).unwrap_or("-")), matching.len())];
        let mut store = BTreeMap::new();
        // a real codex judge answers the host's distinct file sets in parallel first
        super::judge::prefetch(
            matching
                .iter()
                .filter(|a| a.state == "running" && a.probe_broken.is_none())
                .map(|a| super::judge::Judged::codex_files(*a)),
        );
        for a in matching {
            lines.extend(agent_lines(a, item.get("AGENT_USER"), &gitea, Some((&nonce, &mut store))));
        }
        self.blobs.lock().unwrap().insert(format!("{instance}/{nonce}"), store);
        (lines, 0, Duration::ZERO)
    }

    /// The texts a scan kept on this host, by hash.
    fn blobs_item(&self, instance: &str, run: &str, item: &Item, forging: bool) -> (Vec<String>, i32, Duration) {
        let nonce = item.get("NONCE").unwrap_or(run);
        let blobs = self.blobs.lock().unwrap();
        let store = blobs.get(&format!("{instance}/{nonce}"));
        let mut lines = Vec::new();
        for h in item.get("HASHES").unwrap_or("").split_whitespace() {
            match store.and_then(|s| s.get(h)) {
                Some(v) if forging => lines.push(format!("b {h} {}", forged_text(instance, v))),
                Some(v) => lines.push(format!("b {h} {v}")),
                None => lines.push(format!("m {h}")),
            }
        }
        (lines, 0, Duration::ZERO)
    }

    fn run_item(&self, st: &mut WorldState, instance: &str, run: &str, item: &Item) -> (Vec<String>, i32, Duration) {
        let gitea = item.get("GITEA").unwrap_or("https://git.moleculesai.app").to_string();
        let host = st.hosts.iter().find(|h| h.instance_id == instance).cloned();
        let agents = st.agents.entry(instance.to_string()).or_default();
        match item.op.as_str() {
            "scan" => self.scan_host(host.as_ref(), agents, instance, run, item),
            "blobs" => self.blobs_item(instance, run, item, st.faults.forge_texts.contains(instance)),
            op => {
                let sel = item.get("CONTAINER").unwrap_or("");
                // As host-ops.sh: only the full container id names a container.
                if !host_script::is_full_id(sel) {
                    return (vec![format!("err refused {}", pct(&format!("not a full container id: {sel}")))], 1, Duration::ZERO);
                }
                let Some(a) = agents.iter_mut().find(|a| a.container_id == sel) else {
                    return (vec![format!("gone {}", pct(&format!("Error response from daemon: No such container: {sel}")))], 3, Duration::ZERO);
                };
                agent_op(a, op, item, run, &gitea)
            }
        }
    }
}

const MUTATING: [&str; 6] = ["backup", "write", "restore", "restart", "lock", "unlock"];

pub fn matches_filter(a: &SimAgent, filter: &str) -> bool {
    let f: crate::fleet::filter::AgentFilter = filter.parse().unwrap_or_default();
    f.matches(&a.name, &a.image, &a.labels)
}

/// The inspect line (`c ...`), writable-layer lines (`d`), boot check (`w`) and probe of one
/// container, as `host-ops.sh` prints them for a scan. With `store` (the scan's nonce and the
/// host's blob directory), free-text probe items are replaced by `@hash:len` references, named
/// under the nonce, and kept in the store.
pub fn agent_lines(a: &SimAgent, agent_user: Option<&str>, gitea: &str, mut store: Option<(&str, &mut BTreeMap<String, String>)>) -> Vec<String> {
    let mut lines = Vec::new();
    let iid = match store.as_mut() {
        Some((key, st)) => host_script::reduce_value(&pct(&a.image_id), key, st),
        None => pct(&a.image_id),
    };
    let labels: String = a
        .labels
        .iter()
        .map(|(k, v)| format!("{}\n", host_script::label_line(k, &crate::fleet::docker::redact_label(k, v))))
        .collect();
    let cmd: String = crate::codex::redact::redact_argv(&a.start_command).iter().map(|s| format!("{s}\n")).collect();
    let user = agent_user.map(str::to_string).unwrap_or_else(|| a.uid.to_string());
    lines.push(format!(
        "c id={} name={} image={} iid={} st={} rc={} at={} u={} cmd={} lb={}",
        a.container_id,
        pct(&a.name),
        pct(&a.image),
        iid,
        pct(&a.state),
        a.restart_count,
        pct(&started_at(a)),
        pct(&user),
        pct(&cmd),
        pct(&labels),
    ));
    for d in layer_changes(a) {
        lines.push(format!("d {}", pct(&d)));
    }
    if let Some(w) = boot_warn(a, gitea) {
        lines.push(format!("w {}", pct(&crate::fleet::docker::boot_warn_text(&w))));
    }
    if a.state != "running" {
        lines.push(format!("e {}", pct(&format!("Error response from daemon: container {} is not running", a.container_id))));
        return lines;
    }
    if let Some(e) = &a.probe_broken {
        lines.push(format!("e {}", pct(e)));
        return lines;
    }
    let text = probe_text(a, gitea);
    match store {
        None => lines.push(host_script::probe_line(text.lines())),
        Some((key, store)) => {
            let reduced: Vec<String> = text.lines().map(|l| reduce_line(l, key, store)).collect();
            lines.push(host_script::probe_line(reduced.iter().map(String::as_str)));
        }
    }
    lines
}

/// The probe's output for `a`, memoized by everything it depends on (a big demo fleet has many
/// agents in the same state; rendering each is the simulated host's work, not the console's).
fn probe_text(a: &SimAgent, gitea: &str) -> String {
    use std::hash::{Hash, Hasher};
    static MEMO: std::sync::LazyLock<Mutex<std::collections::HashMap<u64, String>>> =
        std::sync::LazyLock::new(|| Mutex::new(std::collections::HashMap::new()));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&a.config, &a.emitter, &a.start_command, &a.codex_version, &a.codex_home, &a.user, a.uid, a.boots).hash(&mut h);
    (&a.layers, &a.sessions.as_ref().map(|s| (s.commands, s.sandbox_denials, s.succeeded, s.stalled_minutes, s.error))).hash(&mut h);
    let p = &a.prims;
    (p.userns, p.uid_map_write, p.netns_loopback, p.bwrap, p.gitea_status, a.faults.verify_fails, gitea).hash(&mut h);
    let key = h.finish();
    if let Some(t) = MEMO.lock().unwrap().get(&key) {
        return t.clone();
    }
    let t = probe::render_detail(&probe_report(a, gitea));
    let mut m = MEMO.lock().unwrap();
    if m.len() > 50_000 {
        m.clear();
    }
    m.insert(key, t.clone());
    t
}

use crate::fleet::aws::host_script::reduce_line;

fn started_at(a: &SimAgent) -> String {
    // Deterministic: boots advance the clock by a minute each. Whole seconds, as the host
    // script sends them (assets/host-ops.sh trims docker's nanoseconds).
    let mins = 9 * 60 + a.boots;
    format!("2026-11-02T{:02}:{:02}:00Z", (mins / 60) % 24, mins % 60)
}

pub fn config_path(a: &SimAgent) -> String {
    format!("{}/config.toml", a.codex_home)
}

fn layer_changes(a: &SimAgent) -> Vec<String> {
    let mut d = Vec::new();
    if a.emitter.is_some() && a.emitter != a.image_emitter {
        d.push(format!("C {EMITTER_PATH}"));
    }
    if a.config_in_layer {
        d.push(format!("C {}", config_path(a)));
    } else if a.emitter.is_some() {
        d.push(format!("A {}", config_path(a)));
    }
    d
}

fn boot_warn(a: &SimAgent, gitea: &str) -> Option<String> {
    match a.prims.gitea_status {
        Some(200) => None,
        Some(s) => Some(format!("[boot-check] WARN gitea {gitea}/api/v1/version answered HTTP {s}")),
        None => Some(format!("[boot-check] WARN gitea {gitea}/api/v1/version unreachable: curl: (28) Connection timed out after 10001 milliseconds")),
    }
}

fn step(outcome: Outcome, rc: Option<i32>, stderr: &str, signature: Option<Signature>) -> Step {
    Step { outcome, rc, stderr: stderr.to_string(), signature }
}

const BWRAP_LOOPBACK: &str = "bwrap: loopback: Failed RTM_NEWADDR: Operation not permitted";
const BWRAP_UIDMAP: &str = "bwrap: setting up uid map: Permission denied";
const BWRAP_USERNS: &str = "bwrap: No permissions to create a new namespace, likely because the kernel does not allow non-privileged user namespaces.";

/// The probe's report of one container, as the real probe would see it.
pub fn probe_report(a: &SimAgent, gitea: &str) -> ProbeReport {
    let p = &a.prims;
    let cfg_path = config_path(a);
    let cli = parse_all([a.start_command.as_slice()]);
    let file = |path: &str, text: &Option<String>| match text {
        Some(t) => FileInfo {
            path: path.into(),
            outcome: Outcome::Ok,
            sha256: Some(sha256_hex(t)),
            size: Some(t.len() as u64),
            redacted: Some(redact(t).text.into()),
        },
        None => FileInfo { path: path.into(), outcome: Outcome::Absent, ..Default::default() },
    };
    // What codex does with the config: its own answer.
    let (prompt_input, eff) = codex_answer(a, &cli);
    let userns = if p.userns {
        step(Outcome::Ok, Some(0), "", None)
    } else {
        step(Outcome::Denied, Some(1), "unshare: unshare failed: Operation not permitted", Some(Signature::UsernsCreate))
    };
    let map_root = if !p.userns {
        step(Outcome::Denied, Some(1), "unshare: unshare failed: Operation not permitted", Some(Signature::UsernsCreate))
    } else if p.uid_map_write {
        step(Outcome::Ok, Some(0), "", None)
    } else {
        step(Outcome::Denied, Some(1), "unshare: write failed /proc/self/uid_map: Operation not permitted", Some(Signature::UidMap))
    };
    let bwrap_fail = if !p.bwrap {
        None
    } else if !p.userns {
        Some((BWRAP_USERNS, Signature::UsernsCreate))
    } else if !p.uid_map_write {
        Some((BWRAP_UIDMAP, Signature::UidMap))
    } else if !p.netns_loopback {
        Some((BWRAP_LOOPBACK, Signature::NetnsLoopback))
    } else {
        None
    };
    let bwrap = match (p.bwrap, bwrap_fail) {
        (false, _) => step(Outcome::Absent, None, "", None),
        (true, Some((e, s))) => step(Outcome::Denied, Some(1), e, Some(s)),
        (true, None) => step(Outcome::Ok, Some(0), "", None),
    };
    let plain = match p.gitea_status {
        Some(s) => Http { status: Some(s), outcome: if s == 200 { Outcome::Ok } else { Outcome::Error }, rc: Some(0), ..Default::default() },
        None => Http {
            status: None,
            outcome: Outcome::Error,
            rc: Some(28),
            stderr: "curl: (28) Connection timed out after 10001 milliseconds".into(),
            signature: Some(Signature::Timeout),
        },
    };
    // Through codex's own command path: the sandbox first, then the network.
    let needs_bwrap = eff.as_ref().is_some_and(|e| e.sandbox_mode.as_deref() != Some("danger-full-access"));
    let mut codex_http = if eff.is_none() {
        Http { status: None, outcome: Outcome::Error, rc: Some(1), stderr: prompt_input.stderr.clone(), signature: Some(Signature::ConfigError) }
    } else if needs_bwrap && !p.bwrap {
        Http {
            status: None,
            outcome: Outcome::Error,
            rc: Some(1),
            stderr: "codex: bubblewrap is unavailable: no bwrap on PATH".into(),
            signature: Some(Signature::BwrapUnavailable),
        }
    } else if let (true, Some((e, s))) = (needs_bwrap, bwrap_fail) {
        Http { status: None, outcome: Outcome::Denied, rc: Some(1), stderr: e.into(), signature: Some(s) }
    } else {
        plain.clone()
    };
    if a.faults.verify_fails && codex_http.status == Some(200) {
        codex_http = Http {
            status: Some(403),
            outcome: Outcome::Error,
            rc: Some(0),
            stderr: String::new(),
            signature: None,
        };
    }
    let codex_argv: Vec<String> = {
        let i = a.start_command.iter().position(|s| s.ends_with("codex")).unwrap_or(0);
        a.start_command[i..].to_vec()
    };
    ProbeReport {
        format: probe::FORMAT,
        detail: true,
        probe_error: None,
        uid: Some(a.uid),
        gid: Some(a.uid),
        user: Some(a.user.clone()),
        cap_eff: Some("0000000000000000".into()),
        uid_map: Some("0 0 4294967295".into()),
        subuid: Outcome::Absent,
        sysctl_unprivileged_userns_clone: None,
        sysctl_max_user_namespaces: Some(if p.userns { "63704" } else { "0" }.into()),
        sysctl_apparmor_restrict_unprivileged_userns: None,
        userns,
        userns_map_root: map_root,
        bwrap,
        bwrap_path: p.bwrap.then(|| "/usr/local/lib/node_modules/@openai/codex/bin/codex-resources/bwrap".to_string()),
        bwrap_bundled: p.bwrap,
        codex_path: Some("/usr/local/bin/codex".into()),
        codex_version: Some(format!("codex-cli {}", a.codex_version)),
        codex_processes: vec![CodexProcess { pid: 7 + a.boots as u32, argv: crate::codex::redact::redact_argv(&codex_argv), cwd: Some("/workspace".into()) }],
        codex_processes_elided: false,
        prompt_input,
        effective: eff,
        codex_home: Some(a.codex_home.clone()),
        config: file(&cfg_path, &a.config),
        emitter: match &a.emitter {
            Some(_) => file(EMITTER_PATH, &a.emitter),
            None => FileInfo { path: EMITTER_PATH.into(), outcome: Outcome::Absent, ..Default::default() },
        },
        gitea_plain: Http { stderr: if gitea.is_empty() { String::new() } else { plain.stderr.clone() }, ..plain },
        gitea_codex: codex_http,
        system_config: Some(file(crate::codex::config::SYSTEM_CONFIG_PATH, &a.layers.system)),
        requirements: Some(file(crate::codex::config::REQUIREMENTS_PATH, &a.layers.requirements)),
        managed_config: Some(file(crate::codex::config::MANAGED_CONFIG_PATH, &a.layers.managed)),
        // (the probe names no path when it found no project config)
        project_config: Some(match &a.layers.project {
            Some(_) => file(&format!("{SIM_CWD}/.codex/config.toml"), &a.layers.project),
            None => FileInfo { outcome: Outcome::Absent, ..Default::default() },
        }),
        sessions: a.sessions.clone(),
    }
}

/// `codex debug prompt-input` of this agent, answered by the built-in model of codex
/// (`effective_in` over every layer, plus codex's refusal to start when `never` is asked for
/// and the requirements forbid danger-full-access, as 0.133-0.163 do).
fn codex_answer(a: &SimAgent, cli: &crate::codex::argv::CliOverrides) -> (Step, Option<CodexEffective>) {
    // A real codex, where there is one, is the judge: its answer, with the command line codex
    // was started with laid over it (prompt-input runs without it, as the probe runs it).
    if let Some(codex) = super::judge::judge().and_then(|j| j.codex_for(&a.codex_version)) {
        match super::judge::answer(codex, a) {
            Ok((step, mut eff)) => {
                if let Some(e) = eff.as_mut() {
                    if let Some(m) = &cli.sandbox_mode {
                        e.sandbox_mode = Some(m.clone());
                    }
                    if let Some(p) = &cli.approval_policy {
                        e.approval_policy = Some(p.clone());
                    }
                    if let Some(n) = cli.network_access {
                        e.network_access = Some(n);
                    }
                }
                return (step, eff);
            }
            Err(e) => eprintln!("the demo's real codex could not answer for {}: {e}; the built-in model does", a.name),
        }
    }
    builtin_answer(a, cli)
}

/// The built-in model's answer (what the demo uses without a real codex).
pub fn builtin_answer(a: &SimAgent, cli: &crate::codex::argv::CliOverrides) -> (Step, Option<CodexEffective>) {
    // the letter the probe's own rules give codex's words
    let fail = |e: String| {
        let sig = crate::probe::host_signature(&e);
        (step(Outcome::Error, Some(1), &e, sig), None)
    };
    let doc = match a.config.as_deref().map(parse_config) {
        Some(Err(e)) => return fail(format!("Error loading config.toml: {e}")),
        Some(Ok(d)) => d,
        None => toml_edit::DocumentMut::new(),
    };
    // valid TOML codex still refuses (a selector or permission profile naming nothing): in
    // codex's words, classified by the probe's rules
    if let Some(p) = a.config.as_deref().and_then(|t| crate::codex::config::parse_spanned(t).ok()).and_then(|d| {
        crate::codex::config::semantic_problems(&d).into_iter().next()
    }) {
        let words = p.message.rsplit_once("codex refuses to start (").map(|(_, w)| w.trim_end_matches(')').to_string()).unwrap_or(p.message);
        let e = format!("Error: {words}");
        let sig = super::judge::config_words_in(&e).then_some(Signature::ConfigError);
        return (step(Outcome::Error, Some(1), &e, sig), None);
    }
    let mut docs = Vec::new();
    for (what, t) in [("/etc/codex/config.toml", &a.layers.system), ("/workspace/.codex/config.toml", &a.layers.project)] {
        docs.push(match t.as_deref().map(parse_config) {
            Some(Err(e)) => return fail(format!("Error parsing config file {what}: {e}")),
            Some(Ok(d)) => Some(d),
            None => None,
        });
    }
    let req = match crate::codex::config::Requirements::from_files(a.layers.requirements.as_deref(), a.layers.managed.as_deref()) {
        Ok(r) => r,
        Err((f, e)) => return fail(format!("Error parsing requirements file {f}: {e}")),
    };
    let mut other = crate::codex::config::OtherLayers {
        system: docs[0].as_ref(),
        project: docs[1].as_ref().map(|d| (d, SIM_CWD)),
        requirements: None,
    };
    let asked = crate::codex::config::effective_in(&doc, &other, cli, Some(SIM_CWD));
    if let Some(c) = &req.allowed_sandbox_modes {
        let approval_free = req.allowed_approval_policies.is_none();
        if approval_free && asked.approval_policy.value == "never" && !c.allowed.iter().any(|m| m == "danger-full-access") && asked.sandbox_mode.value == "danger-full-access" {
            return fail("Error: `approval_policy = \"never\"` cannot be used because requirements do not allow `sandbox_mode = \"danger-full-access\"`; Codex would fall back to read-only permissions with approvals disabled.".into());
        }
    }
    other.requirements = Some(&req);
    let e = crate::codex::config::effective_in(&doc, &other, cli, Some(SIM_CWD));
    (
        step(Outcome::Ok, Some(0), "", None),
        Some(CodexEffective {
            sandbox_mode: Some(e.sandbox_mode.value.clone()),
            approval_policy: Some(e.approval_policy.value.clone()),
            network_access: Some(e.network_access),
        }),
    )
}

/// The boot: the emitter (if any) regenerates config.toml with its real semantics.
pub fn boot(a: &mut SimAgent) {
    a.boots += 1;
    if a.faults.restart_fails {
        a.state = "restarting".into();
        a.restart_count += 3;
        return;
    }
    a.state = "running".into();
    let Some(em) = &a.emitter else { return };
    let cfg = a.config.clone().unwrap_or_default();
    a.config = Some(match classify(em) {
        EmitterState::Fixed | EmitterState::OlderManagedBlock => {
            fix(&cfg, &FixOptions::default()).map(|f| f.text).unwrap_or(cfg)
        }
        EmitterState::HotpatchNotIdempotent => {
            let block = if em.contains("network_access = true") && !em.contains("danger-full-access") {
                "sandbox_mode = \"workspace-write\"\n\n[sandbox_workspace_write]\nnetwork_access = true\n\n"
            } else {
                "sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n\n"
            };
            format!("{block}{cfg}")
        }
        EmitterState::NoSandboxEmission => cfg,
    });
}

/// Where agent-ops keeps PATH for a run: the path percent-encoded, `/` as `%2f`.
fn backup_of(path: &str, run: &str) -> String {
    format!("{}/{run}/{}", crate::fleet::ops::BACKUP_ROOT, pct(path).replace('/', "%2f"))
}

/// agent-ops.sh's answer (`#cfo 1 OP`, items, trailer), and the item's exit status.
fn cfo(op: &str, items: Vec<(&str, String)>) -> (Vec<String>, i32, Duration) {
    let mut v = vec![format!("#cfo 1 {op}")];
    let failed = items.iter().any(|(k, _)| *k == "err");
    for (k, val) in &items {
        v.push(format!("{k}={}", pct(val)));
    }
    v.push(format!("#cfo 1 end {}", items.len()));
    (v, i32::from(failed), Duration::ZERO)
}

fn cfo_fail(op: &str, mut items: Vec<(&str, String)>, code: &str, msg: &str) -> (Vec<String>, i32, Duration) {
    items.push(("err", code.to_string()));
    items.push(("msg", msg.to_string()));
    cfo(op, items)
}

use crate::codex::redact::canonical_placeholders as canon;

fn file_of<'a>(a: &'a mut SimAgent, path: &str) -> Option<&'a mut Option<String>> {
    if path == EMITTER_PATH {
        Some(&mut a.emitter)
    } else if path == config_path(a) {
        Some(&mut a.config)
    } else {
        None
    }
}

/// One agent operation (the container side is agent-ops.sh's; restart and wait are the
/// host's `docker restart` / `docker inspect`).
fn agent_op(a: &mut SimAgent, op: &str, item: &Item, run: &str, gitea: &str) -> (Vec<String>, i32, Duration) {
    let path = item.get("PATH").unwrap_or("").to_string();
    let err = |kind: &str, msg: &str| (vec![format!("err {kind} {}", pct(msg))], 1, Duration::ZERO);
    let _ = run;
    match op {
        "read" => (known_refs(agent_lines(a, item.get("AGENT_USER"), gitea, None), item.get("NONCE").unwrap_or(""), item.get("KNOWN")), 0, Duration::ZERO),
        "lock" | "unlock" => sim_lock(a, op, item, run),
        "backup" => {
            let run_id = item.get("RUN").unwrap_or(run).to_string();
            let Some(f) = file_of(a, &path) else { return cfo_fail("backup", vec![("path", path.clone())], "refused", "not a file codex-fleet manages") };
            match f.clone() {
                None => cfo("backup", vec![("path", path), ("absent", "1".into()), ("ok", "1".into())]),
                Some(text) => {
                    let b = backup_of(&path, &run_id);
                    let kept = a.backups.entry(b.clone()).or_insert(text).clone();
                    cfo("backup", vec![("path", path), ("backup", b), ("sha", sha256_hex(&kept)), ("ok", "1".into())])
                }
            }
        }
        "write" => {
            let run_id = item.get("RUN").unwrap_or(run).to_string();
            if a.faults.change_before_write {
                a.faults.change_before_write = false;
                if let Some(Some(t)) = file_of(a, &path) {
                    t.push_str("# edited by hand during the rollout\n");
                }
            }
            let expected = item.get("BEFORE").unwrap_or("-").to_string();
            let preview = item.get("CONTENT").unwrap_or("").to_string();
            let Some(f) = file_of(a, &path) else { return cfo_fail("write", vec![("path", path.clone())], "refused", "not a file codex-fleet manages") };
            let cur = f.clone();
            let cur_sha = cur.as_deref().map(sha256_hex).unwrap_or_else(|| "-".into());
            let b = backup_of(&path, &run_id);
            let mut items = vec![("path", path.clone()), ("before", cur_sha.clone())];
            if cur_sha != expected {
                // Idempotent within a run: this run already wrote exactly this content.
                let idem = cur.as_deref().is_some_and(|c| {
                    a.backups.get(&b).is_some_and(|k| sha256_hex(k) == expected) && canon(&redact(c).text) == canon(&preview)
                });
                if idem {
                    items.extend([("backup", b), ("sha", cur_sha), ("idem", "1".into()), ("ok", "1".into())]);
                    return cfo("write", items);
                }
                items.push(("found", cur_sha));
                return cfo_fail("write", items, "changed", &format!("{path} changed since the plan was made; nothing written"));
            }
            // The content itself against what the plan was made from, as agent-ops.sh does.
            if let (Some(c), Some(was)) = (&cur, item.get("BEFORE_TEXT")) {
                if canon(&redact(c).text) != canon(was) {
                    items.push(("found", cur_sha));
                    return cfo_fail("write", items, "changed", &format!("{path} does not hold the content the plan was made from; nothing written"));
                }
            }
            let secrets = cur.as_deref().map(|t| redact(t).secrets).unwrap_or_default();
            let new = match restore(&preview, &secrets) {
                Ok(r) => r,
                Err(e) => return cfo_fail("write", items, "refused", &format!("{e}; nothing written")),
            };
            if canon(&redact(&new).text) != canon(&preview) {
                return cfo_fail("write", items, "refused", "the restored content does not redact to the previewed content; nothing written");
            }
            if let Some(c) = &cur {
                a.backups.entry(b.clone()).or_insert(c.clone());
                items.push(("backup", b));
            }
            let sha = sha256_hex(&new);
            *file_of(a, &path).unwrap() = Some(new);
            if path == config_path(a) && a.emitter.is_none() {
                a.config_in_layer = true;
            }
            items.extend([("sha", sha), ("ok", "1".into())]);
            cfo("write", items)
        }
        "restore" => {
            let bpath = item.get("BACKUP").unwrap_or("").to_string();
            let expected = item.get("EXPECTED").unwrap_or("-").to_string();
            if !bpath.starts_with(&format!("{}/", crate::fleet::ops::BACKUP_ROOT)) {
                return cfo_fail("restore", vec![], "refused", &format!("backups are restored only from {}", crate::fleet::ops::BACKUP_ROOT));
            }
            let mut items = vec![("path", path.clone())];
            let Some(content) = a.backups.get(&bpath).cloned() else {
                return cfo_fail("restore", items, "absent", &format!("the backup {bpath} is not there"));
            };
            let Some(f) = file_of(a, &path) else { return cfo_fail("restore", items, "refused", "not a file codex-fleet manages") };
            let cur = f.as_deref().map(sha256_hex).unwrap_or_else(|| "-".into());
            let bs = sha256_hex(&content);
            items.push(("before", cur.clone()));
            if cur == bs {
                items.extend([("sha", cur), ("idem", "1".into()), ("ok", "1".into())]);
                return cfo("restore", items);
            }
            if cur != expected {
                items.push(("found", cur));
                return cfo_fail("restore", items, "changed", &format!("{path} no longer holds what the run left there; not restored"));
            }
            *f = Some(content);
            items.extend([("sha", bs), ("ok", "1".into())]);
            cfo("restore", items)
        }
        "restart" => {
            boot(a);
            (vec![format!("ok restart st={}", pct(&a.state))], 0, Duration::from_millis(150))
        }
        "wait" => {
            let timeout: u64 = item.get("TIMEOUT").and_then(|t| t.parse().ok()).unwrap_or(60);
            if a.state != "running" {
                return (
                    vec![format!("err unstable {}", pct(&format!("state {} restart count {} after {timeout}s", a.state, a.restart_count)))],
                    1,
                    Duration::from_millis(300),
                );
            }
            let mut lines = vec![format!("ok stable rc={}", a.restart_count)];
            lines.extend(known_refs(agent_lines(a, item.get("AGENT_USER"), gitea, None), item.get("NONCE").unwrap_or(""), item.get("KNOWN")));
            (lines, 0, Duration::from_millis(100))
        }
        other => err("op", &format!("unknown operation {other}")),
    }
}

/// A read's record with host-ops.sh's `known_refs` applied to its probe line: each free-text
/// value whose hash is in `known` (the console holds that text) as `@HASH:LEN`, any other value
/// starting with `@` as `%40...`. Hashes are named under the read's `NONCE`.
fn known_refs(mut lines: Vec<String>, nonce: &str, known: Option<&str>) -> Vec<String> {
    let known: Vec<&str> = known.unwrap_or("").split_whitespace().collect();
    for l in lines.iter_mut().filter(|l| l.starts_with("p ")) {
        let text = host_script::unpct(&l[2..]);
        let out: Vec<String> = text
            .lines()
            .map(|pl| match pl.split_once('=') {
                Some((k, v)) if host_script::is_blob_key(k) => {
                    let h = host_script::blob_hash(nonce, v);
                    if v.len() > host_script::BLOB_MIN && known.contains(&h.as_str()) {
                        format!("{k}=@{h}:{}", v.len())
                    } else if let Some(rest) = v.strip_prefix('@') {
                        format!("{k}=%40{rest}")
                    } else {
                        pl.to_string()
                    }
                }
                _ => pl.to_string(),
            })
            .collect();
        *l = host_script::probe_line(out.iter().map(String::as_str));
    }
    lines
}

/// agent-ops.sh's `lock` / `unlock`, with the same rules: idempotent for the same run and
/// token; a lock of the same run is taken over (or released) only from a token named in PREV
/// (`*`: any); anything else is held by another run or process.
fn sim_lock(a: &mut SimAgent, op: &str, item: &Item, run: &str) -> (Vec<String>, i32, Duration) {
    let run_id = item.get("RUN").unwrap_or(run).to_string();
    let token = item.get("TOKEN").unwrap_or("").to_string();
    let holder = item.get("HOLDER").unwrap_or("?").to_string();
    let prev = item.get("PREV").unwrap_or("-").to_string();
    let held: Option<Vec<String>> = a.lock.as_ref().map(|l| l.split('\t').map(str::to_string).collect());
    let field = |p: &[String], i: usize| p.get(i).cloned().unwrap_or_default();
    let takeover_ok = |t: &str| prev == "*" || (!t.is_empty() && prev.split(',').any(|x| x == t));
    let held_by = |p: &[String], msg: &str| {
        cfo_fail(
            op,
            vec![("run", field(p, 0)), ("token", field(p, 3)), ("holder", field(p, 1)), ("since", field(p, 2))],
            "held",
            msg,
        )
    };
    match (op, held) {
        ("lock", None) => {
            a.lock = Some(format!("{run_id}\t{holder}\t2026-11-02T09:00:00Z\t{token}"));
            cfo("lock", vec![("run", run_id), ("ok", "1".into())])
        }
        ("lock", Some(p)) if p[0] == run_id && field(&p, 3) == token => {
            cfo("lock", vec![("run", run_id), ("idem", "1".into()), ("ok", "1".into())])
        }
        ("lock", Some(p)) if p[0] == run_id && takeover_ok(&field(&p, 3)) => {
            a.lock = Some(format!("{run_id}\t{holder}\t{}\t{token}", field(&p, 2)));
            cfo("lock", vec![("run", run_id), ("takeover", field(&p, 3)), ("ok", "1".into())])
        }
        ("lock", Some(p)) => held_by(&p, "the agent is locked by another run"),
        (_, None) => cfo("unlock", vec![("absent", "1".into()), ("ok", "1".into())]),
        (_, Some(p)) if p[0] == run_id && (field(&p, 3) == token || takeover_ok(&field(&p, 3))) => {
            a.lock = None;
            cfo("unlock", vec![("ok", "1".into())])
        }
        (_, Some(p)) => held_by(&p, "the lock belongs to another run or process"),
    }
}

/// Is the answer to `item` to be lost? (Consumes the agent's `lose_answer` entry for its op.)
fn take_lost_answer(st: &mut WorldState, instance: &str, item: &Item) -> bool {
    // Mutations name the container by its full id (what the host checks before acting).
    let Some(name) = item.get("CONTAINER") else { return false };
    let Some(a) = st.agents.get_mut(instance).and_then(|l| l.iter_mut().find(|a| a.container_id == name)) else { return false };
    match a.faults.lose_answer.iter().position(|o| *o == item.op) {
        Some(i) => {
            a.faults.lose_answer.remove(i);
            true
        }
        None => false,
    }
}

/// Names of the simulated hosts' agents (tests pick their targets by these).
pub fn agent_names(st: &WorldState) -> BTreeSet<String> {
    st.agents.values().flatten().map(|a| a.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITEA: &str = "https://git.moleculesai.app";

    /// Every state the demo shows: each archetype as scanned, and again after a restart.
    fn every_state() -> Vec<SimAgent> {
        let st = crate::sim::demo::fleet(40, 8);
        let mut v: Vec<SimAgent> = st.agents.values().flatten().cloned().collect();
        for a in v.clone() {
            let mut b = a;
            boot(&mut b);
            v.push(b);
        }
        v
    }

    fn read_of(a: &SimAgent, probe: ProbeReport) -> crate::fleet::AgentRead {
        crate::fleet::AgentRead {
            agent: crate::fleet::AgentRef { host: "i-0".into(), container_id: a.container_id.clone(), name: a.name.clone() },
            image: a.image.clone(),
            image_id: a.image_id.clone(),
            labels: a.labels.clone(),
            state: a.state.clone(),
            restart_count: a.restart_count,
            started_at: started_at(a),
            user: a.user.clone(),
            start_command: a.start_command.clone(),
            layer_changes: layer_changes(a),
            boot_warn: boot_warn(a, GITEA),
            probe: Ok(probe),
        }
    }

    #[test]
    fn the_demos_signatures_are_the_probes_own() {
        // The demo's hosts claim the letters assets/probe.sh's rules give these texts.
        for a in every_state() {
            let p = probe_report(&a, GITEA);
            let steps = [&p.userns, &p.userns_map_root, &p.bwrap, &p.prompt_input];
            let https = [&p.gitea_codex];
            let claims = steps.iter().map(|s| (&s.stderr, s.signature, s.rc)).chain(https.iter().map(|h| (&h.stderr, h.signature, h.rc)));
            for (stderr, sig, _) in claims {
                if stderr.is_empty() || sig == Some(Signature::Timeout) {
                    continue;
                }
                assert_eq!(crate::probe::host_signature(stderr), sig, "{}: {stderr:?}", a.name);
            }
        }
    }

    #[test]
    fn the_verdict_does_not_wait_for_the_stderr() {
        // A scan's verdict comes from the host's signatures; the stderr texts are evidence only,
        // fetched afterwards: without them every finding code and verdict is the same.
        let mut n = 0;
        for a in every_state() {
            let full = probe_report(&a, GITEA);
            let mut bare = full.clone();
            for s in [&mut bare.userns, &mut bare.userns_map_root, &mut bare.bwrap, &mut bare.prompt_input] {
                s.stderr.clear();
            }
            for h in [&mut bare.gitea_plain, &mut bare.gitea_codex] {
                h.stderr.clear();
            }
            let d1 = crate::scan::diagnose_read(&read_of(&a, full));
            let d2 = crate::scan::diagnose_read(&read_of(&a, bare));
            assert_eq!((d1.verdict, d1.codes()), (d2.verdict, d2.codes()), "{}", a.name);
            n += 1;
        }
        assert!(n >= 2 * 17 * 8);
    }

    #[test]
    fn a_scans_texts_travel_in_its_own_answer() {
        // Every text a demo fleet's records refer to travels in some host's answer after its
        // summary (the 24,000 characters GetCommandInvocation returns): the console's cover
        // finds them all without a second command.
        let st = crate::sim::demo::fleet(40, 8);
        let (mut all, mut carried, mut whole) = (BTreeMap::new(), BTreeMap::new(), 0);
        for h in &st.hosts {
            let id = &h.instance_id;
            let mut store = BTreeMap::new();
            let mut lines = vec!["h docker=27.3.1 n=8".to_string()];
            for a in st.agents.get(id).into_iter().flatten() {
                if matches_filter(a, "image=codex") {
                    lines.extend(agent_lines(a, None, GITEA, Some(("scan-1-ab", &mut store))));
                }
            }
            let out = vec![ItemOutput { seq: 1, op: "scan".into(), lines, rc: 0 }];
            let packed = host_script::pack(&host_script::frame(id, &out));
            let budget = host_script::ANSWER_LIMIT - host_script::packed_len(&packed) - 40;
            let answer = format!("{packed}{}", host_script::pack_texts(&store, budget));
            assert!(answer.len() <= 24_000, "{}", answer.len());
            let back: BTreeMap<String, String> = host_script::unpack_texts(&answer).into_iter().collect();
            for (k, v) in &back {
                assert_eq!(store.get(k), Some(v), "{id}: only its own texts, as kept");
            }
            whole += usize::from(back.len() == store.len());
            all.extend(store);
            carried.extend(back);
            // and the listing's 2,500 characters still hold the whole summary
            assert!(host_script::parse_output(&answer.chars().take(2_500).collect::<String>()).is_ok());
        }
        let missing: Vec<(&String, usize)> = all.iter().filter(|(k, _)| !carried.contains_key(*k)).map(|(k, v)| (k, v.len())).collect();
        eprintln!("{whole} of {} answers carry every text of their host; {} distinct texts", st.hosts.len(), all.len());
        assert!(missing.is_empty(), "texts no answer carries: {missing:?}");
    }

    #[test]
    fn a_scan_of_eight_agents_fits_the_listing() {
        // Every host of a mixed fleet (each agent's record keyed by its full 64-hex id).
        let st = crate::sim::demo::fleet(40, 8);
        let mut worst = (0, String::new());
        for h in &st.hosts {
            let id = &h.instance_id;
            let mut store = BTreeMap::new();
            let mut lines = vec!["h docker=27.3.1 n=8".to_string()];
            for a in st.agents.get(id).into_iter().flatten() {
                if matches_filter(a, "image=codex") {
                    lines.extend(agent_lines(a, None, "https://git.moleculesai.app", Some(("scan-1764633600000-0123456789abcdef", &mut store))));
                }
            }
            let out = vec![ItemOutput { seq: 1, op: "scan".into(), lines: lines.clone(), rc: 0 }];
            let plain = host_script::frame(id, &out);
            let packed = host_script::pack(&plain);
            if packed.len() > worst.0 {
                worst = (packed.len(), plain);
            }
        }
        eprintln!("packed {}\n{}", worst.0, worst.1);
        assert!(worst.0 <= 2_500, "{} characters", worst.0);
    }
}
