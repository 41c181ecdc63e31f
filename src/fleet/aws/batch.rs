//! Agent operations coalesced into shared SSM commands (issue 15, item 4: rollout throughput).
//!
//! The rollout engine takes each agent through its steps on its own, journaling every step
//! before it is taken, and a wave runs its agents side by side. Sent one command per agent
//! operation, a 1,000-host wave would be SendCommand-bound (10 a second): ~9 operations per
//! agent, 8,000 agents, over two hours. Here every agent operation (lock, read, backup, write,
//! restore, restart, wait, unlock) is queued instead; the first operation of a kind to arrive
//! waits a few milliseconds for the others of its wave (they arrive together: their previous
//! step answered in the same listing), and the whole queue goes out as a few commands of at
//! most 50 instances, each instance carrying the items of all its queued agents. The host runs
//! its items one after the other (`assets/host-ops.sh`), each on its own container and on its
//! own conditions (a write stays conditional on its own previewed content), and prints each
//! item's answer in its own frame; each agent gets exactly its item's answer back:
//! - one item's refusal (a changed file, a lock held, a container gone) is that agent's alone;
//!   its host-mates' items run and answer as usual (the command's `MaxErrors` is 100%);
//! - a host whose answer never came (timed out, cut, cancelled, lost) leaves every item it
//!   carried without an answer: `unknown` for each of those agents, never `failed`;
//! - a host the command was not delivered to is `Unreachable` for its items (nothing ran).
//!
//! Nothing changes above the `Fleet` trait: the journal keeps one record per agent and step,
//! written before the step is queued, and the answer is journaled per agent when it arrives.
//!
//! Polling is one `ListCommandInvocations` page per command (at most 50 instances: one page,
//! outputs included), first at about the command latency seen so far, then every
//! [`POLL_EVERY`]; a client-side token bucket keeps the polls and sends under SSM's quotas
//! (a throttled call costs a backoff of 300 ms or more).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::host_script::{self, Item, ItemOutput, OutputError, Payload};
use super::ssm::{invocation_output, is_terminal, Dest, InvResult, SendSpec};
use super::{AwsFleet, RegionClients};
use crate::fleet::FleetError;

/// How long the queue must stay quiet before it goes out (agents answered in the same listing
/// come back within a few milliseconds of each other, journal records included).
pub const GATHER_QUIET: Duration = Duration::from_millis(20);
/// The longest an operation waits for others to join it.
pub const GATHER_MAX: Duration = Duration::from_millis(150);
/// While other commands are in flight, the queue stays open until it has been quiet for longer
/// than one poll ([`POLL_EVERY`]), up to [`GATHER_MAX_BUSY`]: a wave's hosts answer a step over
/// 0.8..1.2 of the latency, a few polls apart, and each poll's answers sent as their own
/// commands made a 1000x8 apply ~1,270 small commands, each polled on its own, until the polls
/// hit SSM's 20 a second (measured, docs/benchmarks.md). The slowest host of a wave (it sets
/// the wave's time) waits one quiet window a step at most.
pub const GATHER_QUIET_BUSY: Duration = Duration::from_millis(250);
pub const GATHER_MAX_BUSY: Duration = Duration::from_millis(700);
/// Polling interval once the command latency seen so far has passed.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// At most this many items for one instance in one command (they run one after the other).
pub const ITEMS_PER_HOST: usize = 16;
/// At most this many bytes of item values in one command (our own cap: a command's parameters
/// travel in the SendCommand request and are kept by SSM).
pub const PAYLOAD_BUDGET: usize = 192 * 1024;
/// SSM's own limit of instance ids per SendCommand.
pub const IDS_PER_COMMAND: usize = 50;

type Reply = Result<ItemOutput, FleetError>;

/// How `invocation_output` says a host's whole answer was longer than SSM returns.
const TOO_BIG: &str = "output exceeds what SSM returns (truncated)";

struct Pending {
    instance: String,
    item: Item,
    tx: oneshot::Sender<Reply>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    region: String,
    op: String,
    timeout: Duration,
    /// One item per instance and command (a read sent again because several did not fit).
    alone: bool,
}

/// A token bucket on our side (rate per second, burst): wait for a token instead of being
/// throttled by SSM.
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: f64) -> Bucket {
        Bucket { rate, burst, tokens: burst, at: Instant::now() }
    }
    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
    }
    /// Take a token now only if more than `keep` stay for the calls that must not wait.
    fn take_spare(&mut self, keep: usize) -> bool {
        self.refill();
        if self.tokens >= keep as f64 + 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
    /// Take a token now, or say how long until one is there.
    fn take(&mut self) -> Option<Duration> {
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// The queues of operations waiting to go out, and what the batching learnt.
pub(crate) struct Batcher {
    queues: Mutex<HashMap<Key, Vec<Pending>>>,
    /// SendCommand (SSM: 10/s, burst 20) and List/GetCommandInvocation (20/s, burst 40), a
    /// little under SSM's quotas, each region's its own (AWS counts request rates per account
    /// and Region: a fleet in two regions lists twice as fast).
    send_bucket: Buckets,
    poll_bucket: Buckets,
    /// ListCommands (SSM: 20/s, burst 40): a scan's progress polls.
    list_bucket: Buckets,
    /// Fastest answer seen so far (send to a host's terminal status): the first poll waits
    /// for about that long.
    fastest: Mutex<Option<Duration>>,
    /// Commands sent whose answers are not all in (their answers bring more operations).
    in_flight: std::sync::atomic::AtomicUsize,
    /// Scan commands (of shared-progress groups, every region) whose last listing is still to
    /// come: an early listing leaves a token for each (counted over every region, so a
    /// region's bucket keeps at least what its own commands are owed).
    pub(crate) owed: std::sync::atomic::AtomicUsize,
}

impl Default for Batcher {
    fn default() -> Self {
        Batcher {
            queues: Mutex::new(HashMap::new()),
            send_bucket: Buckets::new(9.5, 18.0),
            poll_bucket: Buckets::new(super::ssm::INV_RATE, 36.0),
            list_bucket: Buckets::new(19.0, 36.0),
            fastest: Mutex::new(None),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            owed: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

/// One command counted (in flight; owed its last listing) until its polling ends, however it
/// ends.
pub(crate) struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> InFlight<'a> {
    pub(crate) fn count(n: &'a std::sync::atomic::AtomicUsize) -> InFlight<'a> {
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One quota's bucket in each region.
struct Buckets {
    rate: f64,
    burst: f64,
    by_region: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    fn new(rate: f64, burst: f64) -> Buckets {
        Buckets { rate, burst, by_region: Mutex::new(HashMap::new()) }
    }

    fn with<R>(&self, region: &str, f: impl FnOnce(&mut Bucket) -> R) -> R {
        let mut m = self.by_region.lock().unwrap();
        if let Some(b) = m.get_mut(region) {
            return f(b);
        }
        f(m.entry(region.to_string()).or_insert_with(|| Bucket::new(self.rate, self.burst)))
    }
}

/// Wait for a token of `region`'s bucket.
async fn acquire(b: &Buckets, region: &str) {
    loop {
        match b.with(region, Bucket::take) {
            None => return,
            Some(d) => tokio::time::sleep(d).await,
        }
    }
}

/// The bytes `it` adds to a command whose long values so far are `sent` (their hashes): a long
/// value the command carries already costs its name only ([`host_script::render`] sends it once).
fn value_bytes(it: &Item, sent: &mut HashSet<u64>) -> usize {
    // (A hash collision would only count one value too few against our own budget.)
    let fresh = |v: &String, sent: &mut HashSet<u64>| {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        v.hash(&mut h);
        v.len() < host_script::SHARE_MIN || sent.insert(h.finish())
    };
    it.fields.iter().map(|(k, v)| k.len() + if fresh(v, sent) { v.len() } else { 0 }).sum::<usize>() + it.instance.len() + it.op.len()
}

/// Split a queue into commands: at most [`IDS_PER_COMMAND`] instances, [`ITEMS_PER_HOST`]
/// items per instance and [`PAYLOAD_BUDGET`] bytes of values each; an instance is never twice
/// in one command (its items share its one invocation). Order is kept within an instance.
fn split(list: Vec<Pending>, per_host: usize) -> Vec<Vec<Pending>> {
    let mut by_host: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
    for p in list {
        by_host.entry(p.instance.clone()).or_default().push(p);
    }
    // Per host, chunks of ITEMS_PER_HOST; a host's k-th chunk goes into the k-th round.
    let mut rounds: Vec<Vec<Vec<Pending>>> = Vec::new();
    for (_, mut items) in by_host {
        let mut k = 0;
        while !items.is_empty() {
            let rest = items.split_off(items.len().min(per_host));
            if rounds.len() <= k {
                rounds.push(Vec::new());
            }
            rounds[k].push(std::mem::replace(&mut items, rest));
            k += 1;
        }
    }
    let mut out = Vec::new();
    for round in rounds {
        let mut cur: Vec<Pending> = Vec::new();
        let (mut hosts, mut bytes) = (0usize, 0usize);
        let mut sent = HashSet::new();
        for chunk in round {
            let mut with = sent.clone();
            let mut b: usize = chunk.iter().map(|p| value_bytes(&p.item, &mut with)).sum();
            if !cur.is_empty() && (hosts + 1 > IDS_PER_COMMAND || bytes + b > PAYLOAD_BUDGET) {
                out.push(std::mem::take(&mut cur));
                hosts = 0;
                bytes = 0;
                with = HashSet::new();
                b = chunk.iter().map(|p| value_bytes(&p.item, &mut with)).sum();
            }
            sent = with;
            hosts += 1;
            bytes += b;
            cur.extend(chunk);
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    out
}

/// Texts at least this long are named by hash in a read when the console holds them already.
pub const KNOWN_MIN: usize = 256;
/// At most this many hashes named in one read item.
pub const KNOWN_MAX: usize = 48;

impl AwsFleet {
    /// A token of our side's bucket for `ListCommandInvocations` and `GetCommandInvocation`
    /// (SSM counts them against one quota): every such call of the scan and of the batcher
    /// waits here for its turn, rather than being throttled and backing off for longer.
    pub(crate) async fn inv_token(&self, region: &str) {
        acquire(&self.batch.poll_bucket, region).await;
    }

    /// A token of the same bucket as [`Self::inv_token`], now, but only if `keep` stay: for a
    /// call worth making only with tokens to spare (an early listing).
    pub(crate) fn spare_inv_token(&self, region: &str, keep: usize) -> bool {
        self.batch.poll_bucket.with(region, |b| b.take_spare(keep))
    }

    /// A token of our side's bucket for `ListCommands` (a scan's progress polls, every
    /// command's every 125 ms: many commands at once wait their turn). One bucket for the
    /// whole fleet, not one a region: it paces the progress polls (a shared group's one call a
    /// region a beat, every 50 ms near the end), which a region's own quota would let run at
    /// twice the rate in a two-region fleet (`tests/demo_ssm.rs` counts them).
    pub(crate) async fn list_token(&self) {
        acquire(&self.batch.list_bucket, "*").await;
    }

    /// The hashes of the long texts (config files, emitters) the console holds, for a read's
    /// `KNOWN` field: the host sends such a text as `@HASH:LEN` instead of whole (most agents of
    /// a fleet hold one of a handful of emitters and configs; whole, 8 agents' reads do not fit
    /// one listing, or even GetCommandInvocation's 24,000 characters), and the key they are
    /// named under (the read's `NONCE`: the host names its texts by it, and so is its answer read).
    pub(crate) fn known_texts(&self) -> (String, String) {
        let b = self.blobs.lock().unwrap();
        let mut v: Vec<(&String, usize)> = b.iter().filter(|(_, t)| t.len() >= KNOWN_MIN).map(|(h, t)| (h, t.len())).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        (b.key().to_string(), v.iter().take(KNOWN_MAX).map(|(h, _)| h.as_str()).collect::<Vec<_>>().join(" "))
    }

    /// Keep the long free-text values of a read's probe lines (`KEY=VALUE`, as the probe prints
    /// them) by their hash, as a scan's fetched texts are kept.
    pub(crate) fn learn_texts(&self, probe: &[String]) {
        let mut b = self.blobs.lock().unwrap();
        for l in probe {
            if let Some((k, v)) = l.split_once('=') {
                if host_script::is_blob_key(k) && v.len() >= KNOWN_MIN && !v.starts_with('@') {
                    b.learn(v.to_string());
                }
            }
        }
    }

    fn host_name(&self, instance: &str) -> String {
        self.hosts.lock().unwrap().get(instance).map(|(_, h)| h.name.clone()).unwrap_or_else(|| instance.to_string())
    }

    /// Run one agent operation's item on `instance`, in a command shared with the other
    /// operations of its kind queued meanwhile; its own item's answer.
    pub(crate) async fn batched(&self, instance: &str, item: Item, timeout: Duration) -> Reply {
        let r = self.batched_in(instance, item.clone(), timeout, false).await;
        // A read that did not fit with its host-mates' (a host's answer is at most 24,000
        // characters): read again on its own. Only reads: they change nothing.
        match r {
            Err(FleetError::Other(m)) if matches!(item.op.as_str(), "read" | "wait") && m.ends_with(TOO_BIG) => {
                self.batched_in(instance, item, timeout, true).await
            }
            r => r,
        }
    }

    async fn batched_in(&self, instance: &str, item: Item, timeout: Duration, alone: bool) -> Reply {
        let region = {
            let hosts = self.hosts.lock().unwrap();
            hosts.get(instance).map(|(r, _)| r.clone()).unwrap_or_else(|| self.regions[0].region.clone())
        };
        let key = Key { region, op: item.op.clone(), timeout, alone };
        let (tx, rx) = oneshot::channel();
        let leader = {
            let mut q = self.batch.queues.lock().unwrap();
            let v = q.entry(key.clone()).or_default();
            v.push(Pending { instance: instance.to_string(), item, tx });
            v.len() == 1
        };
        if leader {
            // Gather: until the queue stays quiet for GATHER_QUIET (or GATHER_MAX), then until
            // SSM's quota lets a command go (the queue keeps growing meanwhile).
            let t0 = Instant::now();
            let busy = self.batch.in_flight.load(std::sync::atomic::Ordering::Relaxed) > 0;
            let (quiet, max) = if busy { (GATHER_QUIET_BUSY, GATHER_MAX_BUSY) } else { (GATHER_QUIET, GATHER_MAX) };
            let mut seen = 1;
            loop {
                tokio::time::sleep(quiet.min(max.saturating_sub(t0.elapsed())).max(Duration::from_millis(1))).await;
                let n = self.batch.queues.lock().unwrap().get(&key).map_or(0, Vec::len);
                if n == seen || t0.elapsed() >= max {
                    break;
                }
                seen = n;
            }
            acquire(&self.batch.send_bucket, &key.region).await;
            let list = self.batch.queues.lock().unwrap().remove(&key).unwrap_or_default();
            let mut cmds = split(list, if key.alone { 1 } else { ITEMS_PER_HOST });
            // The first command has its send token already; the others take theirs.
            let jobs = cmds.drain(..).enumerate().map(|(i, c)| {
                let key = key.clone();
                async move {
                    if i > 0 {
                        acquire(&self.batch.send_bucket, &key.region).await;
                    }
                    self.run_batch(&key, c).await
                }
            });
            futures::future::join_all(jobs).await;
        }
        rx.await.unwrap_or_else(|_| {
            Err(FleetError::Other("no answer: the command carrying this operation was abandoned before its answer came".into()))
        })
    }

    /// One command: send, poll, hand each item its answer.
    async fn run_batch(&self, key: &Key, list: Vec<Pending>) {
        let Some(rc) = self.region(&key.region) else {
            for p in list {
                let _ = p.tx.send(Err(FleetError::Other(format!("no clients for region {}", key.region))));
            }
            return;
        };
        let deadline = Instant::now() + key.timeout;
        let mut order: Vec<String> = Vec::new();
        let mut waiting: HashMap<String, Vec<(usize, oneshot::Sender<Reply>)>> = HashMap::new();
        let mut items = Vec::with_capacity(list.len());
        for (i, p) in list.into_iter().enumerate() {
            if !waiting.contains_key(&p.instance) {
                order.push(p.instance.clone());
            }
            waiting.entry(p.instance.clone()).or_default().push((i + 1, p.tx));
            items.push(p.item);
        }
        let run = items.iter().find_map(|i| i.get("RUN")).unwrap_or("-").to_string();
        let n = items.len();
        let payload = Payload { run: run.clone(), z: true, items };
        let spec = SendSpec {
            dest: Dest::Ids(order.clone()),
            script: host_script::render(&payload),
            comment: format!("codex-fleet {} x{n} run={run}", key.op),
            // Every host at once; one host's refusal (exit 1) must not stop the others.
            max_concurrency: "100%".into(),
            max_errors: "100%".into(),
            exec_timeout: key.timeout,
            delivery_timeout: Duration::from_secs(30),
        };
        let sent = Instant::now();
        let id = match self.send(rc, &spec, deadline).await {
            Ok(id) => id,
            Err(e) => {
                for l in waiting.into_values() {
                    for (_, tx) in l {
                        let _ = tx.send(Err(e.clone()));
                    }
                }
                return;
            }
        };
        let _flight = InFlight::count(&self.batch.in_flight);
        let first = self.batch.fastest.lock().unwrap().map(|d| d.mul_f64(0.9)).unwrap_or(POLL_EVERY).max(POLL_EVERY);
        let mut wait = first;
        let mut done: HashSet<String> = HashSet::new();
        loop {
            let now = Instant::now();
            if self.cancelled() {
                self.cancel_command(rc, &id).await;
                for l in waiting.drain().map(|(_, l)| l) {
                    for (_, tx) in l {
                        let _ = tx.send(Err(FleetError::Other("cancelled".into())));
                    }
                }
                return;
            }
            if now >= deadline {
                self.cancel_command(rc, &id).await;
                for (inst, l) in waiting.drain() {
                    let name = self.host_name(&inst);
                    for (_, tx) in l {
                        let _ = tx.send(Err(FleetError::Timeout(format!("no answer from {name} before the deadline (command {id} cancelled)"))));
                    }
                }
                return;
            }
            tokio::time::sleep(wait.min(deadline - now)).await;
            wait = POLL_EVERY;
            let mut token: Option<String> = None;
            loop {
                self.inv_token(&rc.region).await;
                let page = self
                    .call(deadline, || {
                        rc.ssm
                            .list_command_invocations()
                            .command_id(&id)
                            .details(true)
                            .max_results(50)
                            .set_next_token(token.clone())
                            .send()
                    })
                    .await;
                let page = match page {
                    Ok(p) => p,
                    // Eventual consistency right after SendCommand, or a throttle past our
                    // backoff: ask again at the next poll (the deadline still holds).
                    Err(_) => break,
                };
                for inv in page.command_invocations() {
                    let Some(inst) = inv.instance_id() else { continue };
                    let status = inv.status().map(|s| s.as_str().to_string()).unwrap_or_default();
                    if done.contains(inst) || !is_terminal(&status) || !waiting.contains_key(inst) {
                        continue;
                    }
                    done.insert(inst.to_string());
                    let plugin = inv.command_plugins().first();
                    let r = InvResult {
                        instance: inst.to_string(),
                        detail: inv.status_details().unwrap_or(&status).to_string(),
                        status,
                        rc: plugin.map(|p| p.response_code()).unwrap_or(-1),
                        output: plugin.and_then(|p| p.output()).unwrap_or("").to_string(),
                    };
                    if !r.undelivered() {
                        let took = sent.elapsed();
                        let mut f = self.batch.fastest.lock().unwrap();
                        if f.is_none_or(|d| took < d) {
                            *f = Some(took);
                        }
                    }
                    let l = waiting.remove(inst).unwrap_or_default();
                    self.answer(rc, &id, r, l, deadline).await;
                }
                token = page.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            if waiting.is_empty() {
                return;
            }
        }
    }

    /// Hand one host's answer to each of its items.
    async fn answer(&self, rc: &RegionClients, id: &str, mut r: InvResult, items: Vec<(usize, oneshot::Sender<Reply>)>, deadline: Instant) {
        let name = self.host_name(&r.instance);
        // Cut at the listing's 2,500 characters: the whole answer (24,000) from GetCommandInvocation.
        if matches!(host_script::parse_output(&r.output), Err(OutputError::Truncated))
            && !r.undelivered()
            && matches!(r.status.as_str(), "Success" | "Failed")
        {
            if let Ok(Some(full)) = self.get_invocation(rc, id, &r.instance, deadline).await {
                r = full;
            }
        }
        match invocation_output(&name, &r) {
            Err(e) => {
                for (_, tx) in items {
                    let _ = tx.send(Err(e.clone()));
                }
            }
            Ok(out) => {
                let mut by_seq: HashMap<usize, ItemOutput> = out.items.into_iter().map(|it| (it.seq, it)).collect();
                for (seq, tx) in items {
                    let reply = by_seq
                        .remove(&seq)
                        .ok_or_else(|| FleetError::Other(format!("{name}: no answer for item {seq} in the host's output")));
                    let _ = tx.send(reply);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(instance: &str, n: usize) -> Pending {
        let (tx, _rx) = oneshot::channel();
        Pending { instance: instance.into(), item: Item::new(instance, "lock").with("CONTENT", "x".repeat(n)), tx }
    }

    #[test]
    fn split_keeps_an_instance_once_per_command_and_fifty_instances_at_most() {
        let mut list = Vec::new();
        for h in 0..120 {
            for _ in 0..20 {
                list.push(p(&format!("i-{h:03}"), 10));
            }
        }
        let cmds = split(list, ITEMS_PER_HOST);
        let mut total = 0;
        for c in &cmds {
            let mut per: HashMap<&str, usize> = HashMap::new();
            for x in c {
                *per.entry(x.instance.as_str()).or_default() += 1;
            }
            assert!(per.len() <= IDS_PER_COMMAND, "{} instances", per.len());
            assert!(per.values().all(|n| *n <= ITEMS_PER_HOST));
            total += c.len();
        }
        assert_eq!(total, 120 * 20);
        // 120 hosts: 3 commands of <= 50 for the first 16 items each, 3 more for the other 4.
        assert_eq!(cmds.len(), 6);
        // A big payload is split further; a long value many items carry counts once a command.
        let big: Vec<Pending> = (0..10).map(|h| p(&format!("i-{h}"), PAYLOAD_BUDGET / 3 + h)).collect();
        assert!(split(big, ITEMS_PER_HOST).len() >= 4);
        let same: Vec<Pending> = (0..10).map(|h| p(&format!("i-{h}"), PAYLOAD_BUDGET / 3)).collect();
        assert_eq!(split(same, ITEMS_PER_HOST).len(), 1);
        let one: Vec<Pending> = (0..3).map(|_| p("i-1", 1)).collect();
        assert_eq!(split(one, 1).len(), 3, "alone: one item per instance and command");
    }
}
