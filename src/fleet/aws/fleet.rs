//! The `Fleet` operations over EC2 + SSM.
//!
//! A scan is one command round trip, whatever the fleet's size:
//! 1. one `scan` command per region (by `Targets` when the whole tagged fleet is scanned, else
//!    by <= 50 ids, their progress read by one shared call a region): each host lists its codex containers, inspects them, runs the probe as the
//!    agent user and prints a gzip+base64-framed summary in which every free-text item (file
//!    contents, stderr) is replaced by `@HASH:LEN`, kept on the host. 8 agents fit the 2,500
//!    characters `ListCommandInvocations` returns per host, so the results of 50 hosts come in
//!    one call. After the summary the same answer carries those texts (`#cft` frame, within
//!    the 24,000 characters of `GetCommandInvocation`): the console reads them from a few
//!    hosts that hold the texts it has not seen yet (greedy cover), without another command.
//! 2. only a text no answer could carry (too big) is fetched with a second command (`blobs`),
//!    once, from one host that has it.
//!
//! Then each agent's probe output is put back together byte for byte and read by the one
//! probe parser.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::host_script::{self, kv, unpct, Item, ItemOutput, Payload};
use super::batch::InFlight;
use super::ssm::{invocation_output, Dest, InvResult, SendSpec, SharedProgress};
use super::AwsFleet;
use crate::fleet::{
    AgentRead, AgentRef, BackupRequest, Fleet, FleetError, Host, HostRead, LockKey, LockOutcome, RestoreRequest, VerifyReport,
    WriteReceipt, WriteRequest,
};

/// One container as a scan's first round saw it.
#[derive(Debug, Clone, Default)]
struct Partial {
    c: BTreeMap<String, String>,
    diff: Vec<String>,
    warn: Option<String>,
    probe: Vec<String>,
    error: Option<String>,
}

/// A scan answer's agents' partials, and whether its output was cut (read it whole then).
fn parse_answer(name: &str, inv: InvResult) -> (InvResult, Result<Vec<Partial>, String>, bool) {
    let raw = host_script::parse_output(&inv.output);
    let truncated = matches!(raw, Err(host_script::OutputError::Truncated));
    let parsed = match raw {
        Ok(o) if !inv.undelivered() => Ok(o),
        _ => invocation_output(name, &inv),
    };
    let agents = parsed
        .map_err(|e| e.to_string())
        .and_then(|o| o.items.iter().map(|i| parse_agents(&i.lines)).collect::<Result<Vec<_>, _>>().map(|v| v.concat()));
    (inv, agents, truncated)
}

/// Probe outputs already parsed, by the output as the host sent it (its long texts named by
/// content hash, `KEY=@HASH:LEN`, each checked against its content when it arrived, so equal
/// keys are equal outputs): a fleet's agents are mostly replicas whose probes answer alike,
/// and parsing each again (percent-decoding its emitter and config) was the biggest share of a
/// big scan's own CPU (`perf`, docs/benchmarks.md); putting the texts back only to look the
/// output up was a fifth of what was left (measured). An agent never gets another agent's
/// report unless their outputs are equal.
#[derive(Default)]
pub(crate) struct ProbeMemo(HashMap<String, Result<crate::probe::ProbeReport, String>>);

/// At most this many outputs are kept (cleared when full: a fleet of all-different agents
/// then costs one lookup an agent).
const PROBE_MEMO_MAX: usize = 256;

impl ProbeMemo {
    /// The report of the output `key` stands for; `text` puts it back whole (only when it
    /// was not parsed before).
    fn parse(memo: &Mutex<ProbeMemo>, key: String, text: impl FnOnce() -> String) -> Result<crate::probe::ProbeReport, String> {
        if let Some(r) = memo.lock().unwrap().0.get(&key) {
            return r.clone();
        }
        let r = crate::probe::parse(&text()).map_err(|e| format!("probe output unreadable: {e}"));
        let mut m = memo.lock().unwrap();
        if m.0.len() >= PROBE_MEMO_MAX {
            m.0.clear();
        }
        m.0.insert(key, r.clone());
        r
    }
}

/// The probe memo's key: the probe's lines as sent, after the key their text names are under
/// (one string, built once an agent: this is a big scan's hot path).
fn memo_key(key: &str, probe: &[String]) -> String {
    let mut k = String::with_capacity(key.len() + probe.iter().map(|l| l.len() + 1).sum::<usize>());
    k.push_str(key);
    for l in probe {
        k.push('\n');
        k.push_str(l);
    }
    k
}

/// One agent's read from its scan record, the texts it refers to resolved from `texts` (their
/// names under `key`: the memo keys on the names, so on the key too).
fn assemble(key: &str, host: &Host, p: &Partial, texts: &HashMap<String, String>, memo: &Mutex<ProbeMemo>) -> AgentRead {
    let c = |k: &str| p.c.get(k).map(|v| unpct(v)).unwrap_or_default();
    // The image id of a scan travels by reference (host_script::reduce_value).
    let image_id = match p.c.get("iid").and_then(|v| host_script::value_ref(v)) {
        Some((h, _)) => texts.get(h).map(|v| unpct(v)).unwrap_or_default(),
        None => c("iid"),
    };
    let labels = host_script::parse_labels(&c("lb"));
    let probe = match &p.error {
        Some(e) => Err(e.clone()),
        None => {
            let missing = p.probe.iter().filter_map(|l| host_script::blob_ref(l)).find(|(_, h, _)| !texts.contains_key(*h));
            match missing {
                Some((k, h, _)) => Err(format!("the probe's {k} text ({h}) could not be fetched")),
                None => ProbeMemo::parse(memo, memo_key(key, &p.probe), || {
                    let mut text = String::new();
                    for l in &p.probe {
                        match host_script::blob_ref(l).and_then(|(k, h, _)| texts.get(h).map(|v| (k, v))) {
                            Some((k, v)) => {
                                text.push_str(k);
                                text.push('=');
                                text.push_str(v);
                            }
                            None => text.push_str(l),
                        }
                        text.push('\n');
                    }
                    text
                }),
            }
        }
    };
    AgentRead {
        agent: AgentRef { host: host.id.clone(), container_id: c("id"), name: c("name") },
        image: c("image"),
        image_id,
        labels,
        state: c("st"),
        restart_count: c("rc").parse().unwrap_or(0),
        started_at: c("at"),
        user: c("u"),
        start_command: c("cmd").lines().map(str::to_string).collect(),
        layer_changes: p.diff.clone(),
        boot_warn: p.warn.clone(),
        probe,
    }
}

impl Partial {
    /// `(hash, len)` of the texts this agent's probe output refers to.
    fn refs(&self) -> Vec<(String, usize)> {
        let iid = self.c.get("iid").and_then(|v| host_script::value_ref(v));
        let probe = self.probe.iter().filter_map(|l| host_script::blob_ref(l)).map(|(_, h, n)| (h, n));
        iid.into_iter().chain(probe).map(|(h, n)| (h.to_string(), n)).collect()
    }
}

/// A host, its region, and the texts (hash, length) its agents refer to.
pub type Wanted = (Host, String, Vec<(String, usize)>);

/// One host's scan answer as read: its agents' partials (or why not), and the command id.
type Answered = (Host, Result<Vec<Partial>, String>, String);

/// A host's records (module doc of [`host_script`]: one per container, framed by the host).
/// Only the host's own line kinds are read; a record must name a full container id, once.
fn parse_agents(lines: &[String]) -> Result<Vec<Partial>, String> {
    let mut out: Vec<Partial> = Vec::new();
    for l in lines {
        let (tag, rest) = l.split_once(' ').unwrap_or((l.as_str(), ""));
        match (tag, out.last_mut()) {
            ("c", _) => out.push(Partial { c: kv(rest), ..Default::default() }),
            ("d", Some(p)) => p.diff.push(unpct(rest)),
            ("w", Some(p)) => p.warn = Some(unpct(rest)),
            ("e", Some(p)) => p.error = Some(unpct(rest)),
            ("p", Some(p)) => p.probe = unpct(rest).lines().map(str::to_string).collect(),
            _ => {}
        }
    }
    let mut seen = HashSet::new();
    for p in &out {
        let id = p.c.get("id").map(String::as_str).unwrap_or("");
        if !host_script::is_full_id(id) {
            return Err(format!("the host's answer names a container without a full id ({id:?}): not read"));
        }
        if !seen.insert(id) {
            return Err(format!("the host's answer names container {id} twice: not read"));
        }
    }
    Ok(out)
}

impl AwsFleet {
    fn host_of(&self, id: &str) -> Host {
        self.hosts.lock().unwrap().get(id).map(|(_, h)| h.clone()).unwrap_or_else(|| Host {
            id: id.to_string(),
            name: id.to_string(),
            location: self.regions[0].region.clone(),
            reachable: true,
            unreachable_reason: None,
            agent_version: None,
        })
    }

    /// An agent's read from its partial, with the texts put back (named under `key`).
    fn assemble(&self, key: &str, host: &Host, p: &Partial) -> AgentRead {
        assemble(key, host, p, &self.texts_of(key, std::slice::from_ref(p)), &self.probe_memo)
    }

    /// The texts `parts` refer to (by their names under `key`) that the console holds (a
    /// snapshot: assembling them then needs no lock and can run anywhere).
    fn texts_of(&self, key: &str, parts: &[Partial]) -> HashMap<String, String> {
        let blobs = self.blobs.lock().unwrap();
        parts.iter().flat_map(|p| p.refs()).filter_map(|(h, _)| blobs.get(key, &h).map(|v| (h, v.clone()))).collect()
    }

    /// Which of `hashes` (names under `key`) the console holds the texts of.
    fn held<'a>(&self, key: &str, hashes: impl IntoIterator<Item = &'a String>) -> HashSet<String> {
        let blobs = self.blobs.lock().unwrap();
        hashes.into_iter().filter(|h| blobs.contains(key, h)).cloned().collect()
    }

    /// Hand one host's agents on, assembled on the blocking pool: parsing the probe outputs
    /// is the biggest share of a big scan's own CPU (`perf`, docs/benchmarks.md), and on the
    /// answers' one task it ran one host after another.
    fn hand_on(&self, tx: &tokio::sync::mpsc::Sender<HostRead>, key: &str, host: Host, parts: Vec<Partial>) -> tokio::task::JoinHandle<()> {
        let texts = self.texts_of(key, &parts);
        let (tx, memo, key) = (tx.clone(), self.probe_memo.clone(), key.to_string());
        tokio::spawn(async move {
            let h = host.clone();
            let read = tokio::spawn(crate::cpu::run(move || parts.iter().map(|p| assemble(&key, &h, p, &texts, &memo)).collect()));
            let agents = read.await.map_err(|e| format!("reading this host's answer failed: {e}"));
            let _ = tx.send(HostRead { host, agents }).await;
        })
    }

    fn scan_item(&self, instance: &str, nonce: &str) -> Item {
        let mut it = Item::new(instance, "scan")
            .with("FILTER", self.opts.agent_filter.clone())
            .with("GITEA", self.opts.gitea_url.clone())
            .with("NONCE", nonce);
        if let Some(u) = &self.opts.agent_user {
            it = it.with("AGENT_USER", u.clone());
        }
        it
    }

    /// Round 1 in one region: each host's partials (or why not), handed to `out` as its
    /// answer comes in (the caller assembles and diagnoses them while the slower hosts of the
    /// command are still running).
    async fn scan_region(&self, region: &str, hosts: &[Host], nonce: &str, deadline: Instant, out: &tokio::sync::mpsc::UnboundedSender<Answered>) {
        let Some(rc) = self.region(region) else {
            for h in hosts {
                let _ = out.send((h.clone(), Err(format!("no clients for region {region}")), String::new()));
            }
            return;
        };
        let ids: HashSet<String> = hosts.iter().map(|h| h.id.clone()).collect();
        let known_reachable: HashSet<String> = self
            .hosts
            .lock()
            .unwrap()
            .values()
            .filter(|(r, h)| r == region && h.reachable)
            .map(|(_, h)| h.id.clone())
            .collect();
        let whole_fleet = self.opts.instances.is_empty() && ids == known_reachable && ids.len() > 1;
        let payload = Payload { run: nonce.to_string(), z: true, items: vec![self.scan_item("*", nonce)] };
        let script = host_script::render(&payload);
        let mut dests = Vec::new();
        if whole_fleet {
            dests.push(Dest::Tags(self.opts.effective_tags()));
        } else {
            let mut v: Vec<String> = ids.iter().cloned().collect();
            v.sort();
            for c in v.chunks(50) {
                dests.push(Dest::Ids(c.to_vec()));
            }
        }
        let by_id: HashMap<&str, &Host> = hosts.iter().map(|h| (h.id.as_str(), h)).collect();
        let shared = (dests.len() > 1).then(SharedProgress::new);
        let shared = shared.as_ref();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, InvResult)>();
        let runs: Vec<_> = dests.into_iter().map(|dest| {
            let expect: HashSet<String> = match &dest {
                Dest::Ids(v) => v.iter().cloned().collect(),
                Dest::Tags(_) => ids.clone(),
            };
            let spec = SendSpec {
                dest,
                script: script.clone(),
                comment: format!("codex-fleet scan run={nonce}"),
                max_concurrency: "100%".into(),
                max_errors: "100%".into(),
                exec_timeout: Duration::from_secs(300),
                delivery_timeout: Duration::from_secs(60),
            };
            let tx = tx.clone();
            async move {
                // Owed its last listing from before it is sent (see `Batcher::owed`).
                let _owed = shared.map(|_| InFlight::count(&self.batch.owed));
                let r = match self.send(rc, &spec, deadline).await {
                    Ok(id) => self.poll_many(rc, &id, Some(&expect), shared, deadline, |r| drop(tx.send((id.clone(), r)))).await,
                    Err(e) => Err(e),
                };
                (expect, r)
            }
        }).collect();
        drop(tx);
        // Each answer read as it comes, while the polls go on; several at once (a listing
        // brings up to 50, and reading one is mostly CPU on the blocking pool).
        let read_each = async {
            let mut answered: HashSet<String> = HashSet::new();
            let mut reads = futures::stream::FuturesUnordered::new();
            let mut open = true;
            loop {
                tokio::select! {
                    r = rx.recv(), if open => match r {
                        Some((cid, inv)) => {
                            let Some(h) = by_id.get(inv.instance.as_str()).copied() else { continue };
                            answered.insert(inv.instance.clone());
                            reads.push(async move {
                                let agents = self.read_answer(rc, &cid, h, inv, nonce, deadline).await;
                                (h.clone(), agents, cid)
                            });
                        }
                        None => open = false,
                    },
                    Some(read) = futures::StreamExt::next(&mut reads), if !reads.is_empty() => {
                        let _ = out.send(read);
                    }
                    else => break,
                }
            }
            answered
        };
        let (polls, answered) = tokio::join!(futures::future::join_all(runs), read_each);
        for (expect, r) in polls {
            let why = match r {
                Ok(_) if Instant::now() < deadline => {
                    "SSM did not run the scan on this host (not targeted: no SSM agent registered for it, or it no longer matches the tags)".to_string()
                }
                Ok(_) => "no answer from the host before the scan's deadline".to_string(),
                Err(e) => e.to_string(),
            };
            let mut missing: Vec<&String> = expect.iter().filter(|i| !answered.contains(*i)).collect();
            missing.sort();
            for m in missing {
                if let Some(h) = by_id.get(m.as_str()) {
                    let _ = out.send(((*h).clone(), Err(why.clone()), String::new()));
                }
            }
        }
    }

    /// One host's scan answer: its agents' partials, the texts it carries kept.
    async fn read_answer(&self, rc: &super::RegionClients, cid: &str, h: &Host, inv: InvResult, nonce: &str, deadline: Instant) -> Result<Vec<Partial>, String> {
        // Unpacking and parsing a thousand answers is CPU: on the blocking pool, side by side.
        let parse = |inv: InvResult| {
            let name = h.name.clone();
            async move { crate::cpu::run(move || parse_answer(&name, inv)).await }
        };
        let (mut inv, mut agents, truncated) = parse(inv).await;
        if truncated && !inv.undelivered() {
            // Cut at ListCommandInvocations' 2,500 characters: the full 24,000.
            if let Ok(Some(full)) = self.get_invocation(rc, cid, &h.id, deadline).await {
                (inv, agents, _) = parse(full).await;
            }
        }
        if let Ok(parts) = &agents {
            // An answer read whole carries its texts too (unpacked and checked only while some
            // are new: a fleet's hosts mostly hold the same few).
            let refs: Vec<(String, usize)> = parts.iter().flat_map(|p| p.refs()).collect();
            let new = {
                let b = self.blobs.lock().unwrap();
                refs.iter().any(|(h, _)| !b.contains(nonce, h))
            };
            if new {
                self.accept_texts(&h.id, nonce, &refs, &inv.output);
            }
        }
        agents
    }

    /// Keep the texts of a scan answer's texts frame that this host's records refer to and
    /// that are what their hash (under the scan's `nonce`) says.
    fn accept_texts(&self, instance: &str, nonce: &str, refs: &[(String, usize)], output: &str) {
        let texts = host_script::unpack_texts(output);
        if texts.is_empty() {
            return;
        }
        let asked: HashSet<&str> = refs.iter().map(|(h, _)| h.as_str()).collect();
        let mut b = self.blobs.lock().unwrap();
        for (h, v) in texts {
            if !(asked.contains(h.as_str()) && b.accept(nonce, &h, v)) {
                self.note(format!("scan answer of {instance}: text {h} refused (not named by its records, or not what its hash says)"));
            }
        }
    }

    /// Round 1, continued: the texts a scan kept travel in its own answers, after the summary
    /// (beyond the listing's 2,500 characters). Read them with `GetCommandInvocation` from a
    /// few hosts that hold them (greedy: the host naming the most texts still unknown first),
    /// no other command. At most three passes (an answer carries the small texts first when
    /// not all fit its 24,000 characters: a big one is looked for in another host's answer);
    /// what none carried is left to the `blobs` command.
    async fn read_texts(&self, waiting: &[(Host, String, String, Vec<(String, usize)>)], nonce: &str, deadline: Instant) {
        let mut tried: HashSet<&str> = HashSet::new();
        for _pass in 0..3 {
            let known = self.held(nonce, waiting.iter().flat_map(|(_, _, _, refs)| refs.iter().map(|(h, _)| h)));
            let mut left: HashSet<&str> = waiting
                .iter()
                .flat_map(|(_, _, _, refs)| refs.iter().map(|(h, _)| h.as_str()))
                .filter(|h| !known.contains(*h))
                .collect();
            let mut batch = Vec::new();
            while !left.is_empty() {
                let best = waiting
                    .iter()
                    .filter(|(h, _, cid, _)| !cid.is_empty() && !tried.contains(h.id.as_str()))
                    .map(|w| (w.3.iter().filter(|(h, _)| left.contains(h.as_str())).count(), w))
                    .filter(|(n, _)| *n > 0)
                    .max_by_key(|(n, _)| *n);
                let Some((_, w)) = best else { break };
                tried.insert(w.0.id.as_str());
                for (h, _) in &w.3 {
                    left.remove(h.as_str());
                }
                batch.push(w);
            }
            if batch.is_empty() {
                break;
            }
            let reads = batch.into_iter().map(|(host, region, cid, refs)| async move {
                let Some(rc) = self.region(region) else { return };
                if let Ok(Some(inv)) = self.get_invocation(rc, cid, &host.id, deadline).await {
                    self.accept_texts(&host.id, nonce, refs, &inv.output);
                }
            });
            futures::future::join_all(reads).await;
        }
    }

    /// Round 2: fetch the texts not seen yet, each once, from hosts that have them.
    async fn fetch_blobs(&self, wanted: &[Wanted], nonce: &str, deadline: Instant) {
        let known = self.held(nonce, wanted.iter().flat_map(|(_, _, refs)| refs.iter().map(|(h, _)| h)));
        let by_region = blob_commands(wanted, &known);
        let mut jobs = Vec::new();
        for (region, list) in by_region {
            for chunk in list.chunks(50) {
                let region = region.clone();
                let chunk = chunk.to_vec();
                jobs.push(async move {
                    let Some(rc) = self.region(&region) else { return };
                    let payload = Payload {
                        run: nonce.to_string(),
                        z: true,
                        items: chunk
                            .iter()
                            .map(|(h, t)| Item::new(&h.id, "blobs").with("NONCE", nonce).with("HASHES", t.join(" ")))
                            .collect(),
                    };
                    let spec = SendSpec {
                        dest: Dest::Ids(chunk.iter().map(|(h, _)| h.id.clone()).collect()),
                        script: host_script::render(&payload),
                        comment: format!("codex-fleet scan-details run={nonce}"),
                        max_concurrency: "100%".into(),
                        max_errors: "100%".into(),
                        exec_timeout: Duration::from_secs(120),
                        delivery_timeout: Duration::from_secs(60),
                    };
                    let cid = match self.send(rc, &spec, deadline).await {
                        Ok(c) => c,
                        Err(e) => return self.note(format!("scan details in {region}: {e}")),
                    };
                    let expect: HashSet<String> = chunk.iter().map(|(h, _)| h.id.clone()).collect();
                    let mut got = Vec::new();
                    match self.poll_many(rc, &cid, Some(&expect), None, deadline, |r| got.push(r)).await {
                        Ok(missing) if !missing.is_empty() => {
                            self.note(format!("scan details in {region}: no answer from {} before the deadline", missing.join(", ")))
                        }
                        Ok(_) => {}
                        Err(e) => self.note(format!("scan details in {region}: {e}")),
                    }
                    for inv in got {
                        let out = match host_script::parse_output(&inv.output) {
                            Ok(o) => Ok(o),
                            Err(_) => match self.get_invocation(rc, &cid, &inv.instance, deadline).await {
                                Ok(Some(full)) => host_script::parse_output(&full.output),
                                _ => Err(host_script::OutputError::Truncated),
                            },
                        };
                        if let Err(e) = &out {
                            self.note(format!("scan details from {}: {e:?} (status {} {}, {} chars)", inv.instance, inv.status, inv.detail, inv.output.len()));
                        }
                        if let Ok(o) = out {
                            // Only the texts asked of this host, and only when they are what
                            // their hash says: a host answers for the hashes its scan named.
                            let asked: HashSet<&str> = chunk
                                .iter()
                                .filter(|(h, _)| h.id == inv.instance)
                                .flat_map(|(_, t)| t.iter().map(String::as_str))
                                .collect();
                            let mut b = self.blobs.lock().unwrap();
                            for l in o.items.iter().flat_map(|i| i.lines.iter()) {
                                let t: Vec<&str> = l.splitn(3, ' ').collect();
                                // `b HASH VALUE` (any value, "-" included); `m HASH`: not kept.
                                if let ["b", h, v] = t.as_slice() {
                                    if !(asked.contains(h) && b.accept(nonce, h, v.to_string())) {
                                        self.note(format!("scan details from {}: text {h} refused (not asked of it, or not what its hash says)", inv.instance));
                                    }
                                }
                            }
                        }
                    }
                });
            }
        }
        futures::future::join_all(jobs).await;
    }

    /// Run one agent operation and return its item's output.
    async fn agent_op(&self, agent: &AgentRef, item: Item, z: bool, timeout: Duration) -> Result<ItemOutput, FleetError> {
        let op = item.op.clone();
        // The host acts only on the container this full id names (it checks with docker).
        if !host_script::is_full_id(&agent.container_id) {
            return Err(FleetError::Refused(format!(
                "{op} on {}: no full container id ({:?}); scan again",
                agent.id(),
                agent.container_id
            )));
        }
        let item = Item { instance: agent.host.clone(), ..item.with("CONTAINER", agent.container_id.clone()) };
        let host = self.host_of(&agent.host);
        // Shared with the other agents' operations of the same kind queued meanwhile (batch.rs);
        // the answer is this item's own. (`z`: a shared command's output is always compressed.)
        let _ = z;
        let it = self.batched(&agent.host, item, timeout).await.map_err(|e| match e {
            FleetError::Unreachable { reason, .. } => FleetError::Unreachable { host: host.name.clone(), reason },
            e => e,
        })?;
        if it.lines.iter().any(|l| l.starts_with("gone ")) {
            return Err(FleetError::AgentGone { agent: agent.id() });
        }
        if let Some(l) = it.lines.first().and_then(|l| l.strip_prefix("err refused ")) {
            return Err(FleetError::Refused(unpct(l)));
        }
        Ok(it)
    }

    fn first_line(it: &ItemOutput) -> (String, String) {
        let l = it.lines.iter().find(|l| l.starts_with("ok") || l.starts_with("err") || l.starts_with("held")).cloned().unwrap_or_default();
        let (a, b) = l.split_once(' ').unwrap_or((l.as_str(), ""));
        (a.to_string(), b.to_string())
    }

    fn op_error(rest: &str) -> FleetError {
        let (kind, msg) = rest.split_once(' ').unwrap_or((rest, ""));
        FleetError::Other(format!("{kind}: {}", unpct(msg)))
    }

    /// An agent's read from a read's (or wait's) answer, its texts named under `key`.
    fn read_from(&self, agent: &AgentRef, key: &str, it: &ItemOutput) -> Result<AgentRead, FleetError> {
        let parts = parse_agents(&it.lines).map_err(FleetError::Other)?;
        let p = parts.into_iter().next().ok_or_else(|| FleetError::AgentGone { agent: agent.id() })?;
        // Texts sent whole are kept, so that the next read names them by hash (batch.rs).
        self.learn_texts(&p.probe);
        let host = self.host_of(&agent.host);
        let read = self.assemble(key, &host, &p);
        if read.agent.container_id != agent.container_id {
            return Err(FleetError::AgentGone { agent: agent.id() });
        }
        Ok(read)
    }

    fn timeout(&self) -> Duration {
        self.opts.op_timeout
    }
}

#[async_trait]
impl Fleet for AwsFleet {
    fn describe(&self) -> String {
        let regions: Vec<&str> = self.regions.iter().map(|r| r.region.as_str()).collect();
        let sel = if self.opts.instances.is_empty() {
            self.opts.effective_tags().iter().map(|(k, v)| format!("tag:{k}={v}")).collect::<Vec<_>>().join(",")
        } else {
            self.opts.instances.join(",")
        };
        if let Some(note) = &self.demo_note {
            // the demo: say who judges its agents' codex (a real binary, or the built-in model)
            return format!("demo {} {sel} ({note})", regions.join(","));
        }
        format!("aws {} {sel}", regions.join(","))
    }

    async fn discover(&self) -> Result<Vec<Host>, FleetError> {
        let jobs = self.regions.iter().map(|rc| async move {
            let mut hosts = super::ec2::describe_instances(self, rc).await?;
            if !hosts.is_empty() {
                super::ec2::ping_status(self, rc, &mut hosts).await;
            }
            Ok::<_, FleetError>((rc.region.clone(), hosts))
        });
        let mut all = Vec::new();
        let mut map = self.hosts.lock().unwrap().clone();
        for r in futures::future::join_all(jobs).await {
            let (region, hosts) = r?;
            for h in hosts {
                map.insert(h.id.clone(), (region.clone(), h.clone()));
                all.push(h);
            }
        }
        *self.hosts.lock().unwrap() = map;
        all.sort_by(|a, b| a.location.cmp(&b.location).then(a.name.cmp(&b.name)));
        Ok(all)
    }

    async fn scan(&self, hosts: &[Host], tx: tokio::sync::mpsc::Sender<HostRead>) -> Result<(), FleetError> {
        let deadline = Instant::now() + self.timeout();
        // A scan's texts are named under its own nonce: renamed now, what the console holds
        // is found by the names the hosts will send (texts.rs: why the names are keyed).
        let nonce = super::texts::new_nonce("scan");
        self.blobs.lock().unwrap().rekey(&nonce);
        let mut by_region: BTreeMap<String, Vec<Host>> = BTreeMap::new();
        {
            let mut map = self.hosts.lock().unwrap();
            for h in hosts {
                let region = map.get(&h.id).map(|(r, _)| r.clone()).unwrap_or_else(|| h.location.clone());
                map.entry(h.id.clone()).or_insert_with(|| (region.clone(), h.clone()));
                by_region.entry(region).or_default().push(h.clone());
            }
        }
        let (out, mut answers) = tokio::sync::mpsc::unbounded_channel::<Answered>();
        let rounds: Vec<_> = by_region
            .iter()
            .map(|(r, hs)| {
                let (nonce, out) = (nonce.clone(), out.clone());
                async move { self.scan_region(r, hs, &nonce, deadline, &out).await }
            })
            .collect();
        drop(out);
        let known = |parts: &[Partial]| {
            let b = self.blobs.lock().unwrap();
            parts.iter().all(|p| p.refs().iter().all(|(h, _)| b.contains(&nonce, h)))
        };
        let region_of = |id: &str| self.hosts.lock().unwrap().get(id).map(|(r, _)| r.clone()).unwrap_or_default();
        // Hosts whose texts are all known go on as they answer; a host naming a text not seen
        // yet has it read from its own answer (GetCommandInvocation) right away, so the hosts
        // after it go on too; what is still missing waits for the end of the round.
        let mut waiting: Vec<(Host, String, String, Vec<Partial>)> = Vec::new();
        // Texts a host's own answer did not bring (too big for what was left of it): not asked
        // of every later host that names them, but looked for once the round ends.
        let mut elsewhere: HashSet<String> = HashSet::new();
        let mut handed = Vec::new();
        let unseen = |parts: &[Partial]| -> Vec<String> {
            let b = self.blobs.lock().unwrap();
            parts.iter().flat_map(|p| p.refs()).filter(|(h, _)| !b.contains(&nonce, h)).map(|(h, _)| h).collect()
        };
        let stream = async {
            // Texts being read from a host's answer right now, and the hosts waiting for them:
            // a read goes on beside the stream (one `GetCommandInvocation`, a token to wait
            // for), so the hosts after it, whose texts are known, go on meanwhile (a dozen
            // reads one after another held the stream ~0.2 s: measured).
            let mut fetching: HashSet<String> = HashSet::new();
            let mut parked: Vec<(Host, String, String, Vec<Partial>)> = Vec::new();
            let mut reads = futures::stream::FuturesUnordered::new();
            let mut open = true;
            loop {
                tokio::select! {
                    r = answers.recv(), if open => {
                        let Some((host, r, cid)) = r else {
                            open = false;
                            continue;
                        };
                        let parts = match r {
                            Err(e) => {
                                let _ = tx.send(HostRead { host, agents: Err(e) }).await;
                                continue;
                            }
                            Ok(parts) => parts,
                        };
                        let missing = unseen(&parts);
                        if missing.is_empty() {
                            handed.push(self.hand_on(&tx, &nonce, host, parts));
                            continue;
                        }
                        let region = region_of(&host.id);
                        let new: Vec<String> = missing.iter().filter(|h| !elsewhere.contains(*h) && !fetching.contains(*h)).cloned().collect();
                        if !cid.is_empty() && !new.is_empty() {
                            fetching.extend(new.iter().cloned());
                            let refs: Vec<(String, usize)> = parts.iter().flat_map(|p| p.refs()).collect();
                            let w = (host.clone(), region.clone(), cid.clone(), refs);
                            let nonce = nonce.as_str();
                            reads.push(async move {
                                self.read_texts(std::slice::from_ref(&w), nonce, deadline).await;
                                new
                            });
                        }
                        if missing.iter().any(|h| fetching.contains(h)) {
                            parked.push((host, region, cid, parts));
                        } else {
                            waiting.push((host, region, cid, parts));
                        }
                    }
                    Some(asked) = futures::StreamExt::next(&mut reads), if !reads.is_empty() => {
                        // What the host's own answer did not bring is not asked of every later
                        // host that names it, but looked for once the round ends.
                        let known = self.blobs.lock().unwrap();
                        for h in asked {
                            fetching.remove(&h);
                            if !known.contains(&nonce, &h) {
                                elsewhere.insert(h);
                            }
                        }
                        drop(known);
                        for (host, region, cid, parts) in std::mem::take(&mut parked) {
                            let missing = unseen(&parts);
                            if missing.is_empty() {
                                handed.push(self.hand_on(&tx, &nonce, host, parts));
                            } else if missing.iter().any(|h| fetching.contains(h)) {
                                parked.push((host, region, cid, parts));
                            } else {
                                waiting.push((host, region, cid, parts));
                            }
                        }
                    }
                    else => break,
                }
            }
            waiting.append(&mut parked);
        };
        tokio::join!(futures::future::join_all(rounds), stream);
        if !waiting.is_empty() {
            let holders: Vec<(Host, String, String, Vec<(String, usize)>)> =
                waiting.iter().map(|(h, r, cid, parts)| (h.clone(), r.clone(), cid.clone(), parts.iter().flat_map(|p| p.refs()).collect())).collect();
            self.read_texts(&holders, &nonce, deadline).await;
        }
        let mut rest = Vec::new();
        for (host, region, _, parts) in waiting {
            if known(&parts) {
                handed.push(self.hand_on(&tx, &nonce, host, parts));
            } else {
                rest.push((host, region, parts));
            }
        }
        if !rest.is_empty() {
            let wanted: Vec<Wanted> = rest.iter().map(|(h, r, parts)| (h.clone(), r.clone(), parts.iter().flat_map(|p| p.refs()).collect())).collect();
            self.fetch_blobs(&wanted, &nonce, deadline).await;
            for (host, _, parts) in rest {
                handed.push(self.hand_on(&tx, &nonce, host, parts));
            }
        }
        futures::future::join_all(handed).await;
        Ok(())
    }

    async fn read_agent(&self, agent: &AgentRef) -> Result<AgentRead, FleetError> {
        let (key, known) = self.known_texts();
        let mut it = Item::new(&agent.host, "read").with("GITEA", self.opts.gitea_url.clone()).with("NONCE", key.as_str()).with("KNOWN", known);
        if let Some(u) = &self.opts.agent_user {
            it = it.with("AGENT_USER", u.clone());
        }
        let out = self.agent_op(agent, it, true, self.timeout()).await?;
        self.read_from(agent, &key, &out)
    }

    async fn backup(&self, agent: &AgentRef, req: &BackupRequest) -> Result<Option<WriteReceipt>, FleetError> {
        let it = Item::new(&agent.host, "backup").with("PATH", req.path.clone()).with("RUN", req.run_id.clone());
        let out = self.agent_op(agent, it, false, self.timeout()).await?;
        ops_output(&out)?.receipt()
    }

    async fn write_file(&self, agent: &AgentRef, req: &WriteRequest) -> Result<WriteReceipt, FleetError> {
        let it = Item::new(&agent.host, "write")
            .with("PATH", req.path.clone())
            .with("BEFORE", req.before_sha256.clone().unwrap_or_else(|| "-".into()))
            .with("CONTENT", req.after_redacted.clone())
            .with("RUN", req.run_id.clone());
        let it = match (&req.before_redacted, &req.before_sha256) {
            (Some(b), Some(_)) => it.with("BEFORE_TEXT", b.clone()),
            _ => it,
        };
        let out = self.agent_op(agent, it, false, self.timeout()).await?;
        let r = ops_output(&out)?.receipt()?;
        Ok(r.map(|r| WriteReceipt { backup_path: if r.backup_path.is_empty() { "-".into() } else { r.backup_path }, ..r })
            .ok_or_else(|| FleetError::Other("write: no receipt from agent-ops".into()))?)
    }

    async fn restore_file(&self, agent: &AgentRef, req: &RestoreRequest) -> Result<WriteReceipt, FleetError> {
        let it = Item::new(&agent.host, "restore")
            .with("PATH", req.path.clone())
            .with("BACKUP", req.backup_path.clone())
            .with("EXPECTED", req.expected_current_sha256.clone().unwrap_or_else(|| "-".into()));
        let out = self.agent_op(agent, it, false, self.timeout()).await?;
        let r = ops_output(&out)?.receipt()?.ok_or_else(|| FleetError::Other("restore: no receipt from agent-ops".into()))?;
        Ok(WriteReceipt { backup_path: req.backup_path.clone(), after_sha256: r.after_sha256 })
    }

    async fn restart(&self, agent: &AgentRef) -> Result<(), FleetError> {
        let out = self.agent_op(agent, Item::new(&agent.host, "restart"), false, self.timeout()).await?;
        match Self::first_line(&out) {
            (ok, _) if ok == "ok" => Ok(()),
            (_, rest) => Err(Self::op_error(&rest)),
        }
    }

    async fn wait_stable(&self, agent: &AgentRef, timeout: Duration) -> Result<AgentRead, FleetError> {
        let (key, known) = self.known_texts();
        let mut it = Item::new(&agent.host, "wait")
            .with("TIMEOUT", timeout.as_secs().max(1).to_string())
            .with("GITEA", self.opts.gitea_url.clone())
            .with("NONCE", key.as_str())
            .with("KNOWN", known);
        if let Some(u) = &self.opts.agent_user {
            it = it.with("AGENT_USER", u.clone());
        }
        let out = self.agent_op(agent, it, true, timeout + Duration::from_secs(60)).await?;
        match Self::first_line(&out) {
            (ok, _) if ok == "ok" => {
                // The container id stays across a restart; re-read from the same output.
                let rest: Vec<String> = out.lines.iter().skip_while(|l| !l.starts_with("c ")).cloned().collect();
                self.read_from(agent, &key, &ItemOutput { lines: rest, ..out.clone() })
            }
            (_, rest) => {
                let (_, msg) = rest.split_once(' ').unwrap_or(("", rest.as_str()));
                Err(FleetError::Timeout(format!("{} did not become stable: {}", agent.id(), unpct(msg))))
            }
        }
    }

    async fn verify(&self, agent: &AgentRef) -> Result<VerifyReport, FleetError> {
        let read = self.read_agent(agent).await?;
        Ok(verify_report(&read, &self.opts.gitea_url))
    }

    async fn lock(&self, agent: &AgentRef, key: &LockKey) -> Result<LockOutcome, FleetError> {
        let it = Item::new(&agent.host, "lock")
            .with("RUN", key.run_id.as_str())
            .with("HOLDER", key.holder.as_str())
            .with("TOKEN", key.token.as_str())
            .with("PREV", key.takeover_arg());
        let out = self.agent_op(agent, it, false, self.timeout()).await?;
        ops_output(&out)?.lock_outcome()
    }

    async fn unlock(&self, agent: &AgentRef, key: &LockKey) -> Result<(), FleetError> {
        let it = Item::new(&agent.host, "unlock").with("RUN", key.run_id.as_str()).with("TOKEN", key.token.as_str()).with("PREV", key.takeover_arg());
        let out = self.agent_op(agent, it, false, self.timeout()).await?;
        match ops_output(&out)?.error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// agent-ops.sh's answer inside an item, read by its one parser.
fn ops_output(it: &ItemOutput) -> Result<crate::fleet::ops::OpsOutput, FleetError> {
    crate::fleet::ops::parse(&it.lines.join("\n")).map_err(|e| {
        let why = it.lines.iter().find_map(|l| l.strip_prefix("x ")).map(unpct).unwrap_or_default();
        FleetError::Other(format!("{}: agent-ops output unreadable ({e}) {why}", it.op))
    })
}

/// The boot assertion from a fresh read: the Docker backend's one ([`crate::fleet::docker::boot_assertion`]:
/// codex's effective permissions and Gitea through codex's command path, or plain curl in a
/// container without codex), plus codex's own verdict on the config (a config codex cannot
/// parse never passes).
pub fn verify_report(read: &AgentRead, gitea: &str) -> VerifyReport {
    let p = match &read.probe {
        Err(e) => return VerifyReport { passed: false, checks: vec![("probe".to_string(), false, e.clone())] },
        Ok(p) => p,
    };
    let mut v = crate::fleet::docker::boot_assertion(p, gitea);
    let diagnosis = read.diagnose();
    if let Some(e) = diagnosis.evidence(crate::diagnose::Code::ConfigInvalid) {
        v.checks.push(("config.toml parses".to_string(), false, e.to_string()));
        v.passed = false;
    }
    v
}

/// What the texts not seen yet (`known` excluded) cost to fetch: one command per (round,
/// region) of at most 50 hosts, each host's item asking for at most ~30,000 characters so that
/// its packed answer fits GetCommandInvocation's 24,000. Greedy: the host holding the most
/// still-needed texts first. A host picked again goes into the next round's command: an
/// instance id twice in one SendCommand makes two invocations that GetCommandInvocation cannot
/// tell apart (this lost every text of a scan now and then).
pub fn blob_commands(wanted: &[Wanted], known: &HashSet<String>) -> Vec<(String, Vec<(Host, Vec<String>)>)> {
    const BUDGET: usize = 30_000;
    let mut left: HashSet<String> =
        wanted.iter().flat_map(|(_, _, refs)| refs.iter().map(|(h, _)| h.clone())).filter(|h| !known.contains(h)).collect();
    let mut plan: Vec<(Host, String, Vec<String>)> = Vec::new();
    while !left.is_empty() {
        let best = wanted.iter().max_by_key(|(_, _, refs)| refs.iter().filter(|(h, _)| left.contains(h)).count());
        let Some((host, region, refs)) = best else { break };
        let mut take = Vec::new();
        let mut size = 0;
        for (h, n) in refs {
            if left.contains(h) && (take.is_empty() || size + n < BUDGET) && !take.contains(h) {
                take.push(h.clone());
                size += n;
            }
        }
        if take.is_empty() {
            break;
        }
        for h in &take {
            left.remove(h);
        }
        plan.push((host.clone(), region.clone(), take));
    }
    let mut by_round: BTreeMap<(usize, String), Vec<(Host, Vec<String>)>> = BTreeMap::new();
    let mut rounds: HashMap<String, usize> = HashMap::new();
    for (h, r, t) in plan {
        let round = rounds.entry(h.id.clone()).or_insert(0);
        by_round.entry((*round, r)).or_default().push((h, t));
        *round += 1;
    }
    by_round
        .into_iter()
        .flat_map(|((_, region), list)| list.chunks(50).map(|c| (region.clone(), c.to_vec())).collect::<Vec<_>>())
        .collect()
}
