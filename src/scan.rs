//! A scan: discover hosts, read their agents, diagnose each one. The result is a value
//! (`FleetReport`) that every view renders: the CLI table, `scan --json`, the console, reports.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::diagnose::{Code, Diagnosis, ProbeSummary, Verdict};
use crate::fleet::{AgentRead, Fleet, FleetError, Host, HostRead};

/// One agent as the console knows it: what was read and what it means.
#[derive(Debug, Clone, Serialize)]
pub struct AgentState {
    pub read: AgentRead,
    pub diagnosis: Diagnosis,
}

impl AgentState {
    pub fn from_read(read: AgentRead) -> AgentState {
        Self::from_read_in(read, None)
    }

    /// [`Self::from_read`], the diagnosis through `memo` when given.
    pub fn from_read_in(read: AgentRead, memo: Option<&crate::diagnose::DiagnosisMemo>) -> AgentState {
        let diagnosis = read.diagnose_in(memo);
        AgentState { read, diagnosis }
    }

    pub fn id(&self) -> String {
        self.read.agent.id()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HostState {
    pub host: Host,
    pub agents: Vec<AgentState>,
}

impl HostState {
    pub fn from_read(r: HostRead) -> HostState {
        Self::from_read_in(r, None)
    }

    /// [`Self::from_read`], the diagnoses through `memo` when given.
    pub fn from_read_in(r: HostRead, memo: Option<&crate::diagnose::DiagnosisMemo>) -> HostState {
        let mut host = r.host;
        let agents = match r.agents {
            Ok(a) => a.into_iter().map(|a| AgentState::from_read_in(a, memo)).collect(),
            Err(e) => {
                host.reachable = false;
                host.unreachable_reason.get_or_insert(e);
                Vec::new()
            }
        };
        HostState { host, agents }
    }

    /// Its agents' file contents made the ones `texts` keeps (see [`crate::probe::Text`]).
    pub fn share_texts(&mut self, texts: &mut crate::probe::Interner) {
        for a in &mut self.agents {
            if let Ok(p) = &mut a.read.probe {
                p.share_texts(texts);
            }
        }
    }

    /// Host-level findings: `host-unreachable` with its evidence.
    pub fn findings(&self) -> Vec<(Code, String)> {
        if self.host.reachable {
            Vec::new()
        } else {
            let why = self.host.unreachable_reason.clone().unwrap_or_else(|| "not reachable".into());
            vec![(Code::HostUnreachable, why)]
        }
    }
}

/// Counts of the contract's `summary` block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub hosts: usize,
    pub unreachable_hosts: usize,
    pub agents: usize,
    pub healthy: usize,
    pub stalled: usize,
    pub at_risk: usize,
    pub unknown: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FleetReport {
    pub hosts: Vec<HostState>,
}

impl FleetReport {
    pub fn agents(&self) -> impl Iterator<Item = &AgentState> {
        self.hosts.iter().flat_map(|h| h.agents.iter())
    }

    /// The one agent `sel` names (`crate::select`'s rules), if exactly one.
    pub fn find(&self, sel: &str) -> Option<&AgentState> {
        self.select(std::slice::from_ref(&sel.to_string())).ok().and_then(|v| v.into_iter().next())
    }

    /// Resolve `--agent` selectors exactly (`crate::select`): the agents they name, in scan
    /// order, each once; or every selector's error (no match, ambiguous, unreachable host).
    pub fn select(&self, sels: &[String]) -> Result<Vec<&AgentState>, Vec<crate::select::SelectError>> {
        use crate::select::{resolve, Candidate, DarkHost};
        let mut all = Vec::new();
        let mut cands = Vec::new();
        for h in &self.hosts {
            for a in &h.agents {
                all.push(a);
                cands.push(Candidate { agent: &a.read.agent, host_name: &h.host.name });
            }
        }
        let dark: Vec<DarkHost> =
            self.hosts.iter().filter(|h| !h.host.reachable).map(|h| DarkHost { id: &h.host.id, name: &h.host.name }).collect();
        resolve(&cands, &dark, sels).map(|ix| ix.into_iter().map(|i| all[i]).collect())
    }

    /// The host an agent was read on.
    pub fn host_of(&self, a: &AgentState) -> Option<&HostState> {
        self.hosts.iter().find(|h| h.host.id == a.read.agent.host)
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary { hosts: self.hosts.len(), ..Default::default() };
        for h in &self.hosts {
            if !h.host.reachable {
                s.unreachable_hosts += 1;
            }
            for a in &h.agents {
                s.agents += 1;
                match a.diagnosis.verdict {
                    Verdict::Healthy => s.healthy += 1,
                    Verdict::Stalled => s.stalled += 1,
                    Verdict::AtRisk => s.at_risk += 1,
                    Verdict::Unknown => s.unknown += 1,
                }
            }
        }
        s
    }

    /// `scan` exits 1 when anything needs attention.
    pub fn all_healthy(&self) -> bool {
        let s = self.summary();
        s.unreachable_hosts == 0 && s.agents == s.healthy
    }

    /// The contract's `scan --json` document.
    pub fn to_json(&self) -> Value {
        json!({
            "hosts": self.hosts.iter().map(host_json).collect::<Vec<_>>(),
            "summary": self.summary(),
        })
    }
}

fn host_json(h: &HostState) -> Value {
    json!({
        "id": h.host.id,
        "name": h.host.name,
        "location": h.host.location,
        "reachable": h.host.reachable,
        "findings": h.findings().iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        "evidence": h.findings().iter().map(|(c, e)| (c.as_str().to_string(), Value::String(e.clone()))).collect::<Map<_, _>>(),
        "agents": h.agents.iter().map(agent_json).collect::<Vec<_>>(),
    })
}

/// One agent in the contract's shape (plus a few extra fields operators find useful).
pub fn agent_json(a: &AgentState) -> Value {
    let d = &a.diagnosis;
    let effective = d.effective.as_ref().map(|e| {
        json!({
            "sandbox_mode": e.sandbox_mode.value,
            "sandbox_mode_source": e.sandbox_mode.source.as_str(),
            "approval_policy": e.approval_policy.value,
            "approval_policy_source": e.approval_policy.source.as_str(),
            "network_access": e.network_access,
        })
    });
    let probes = a.read.probe.as_ref().ok().map(|p| {
        let s = ProbeSummary::of(p);
        json!({
            "uid_map": s.uid_map,
            "userns": s.userns.as_str(),
            "uid_map_write": s.uid_map_write.as_str(),
            "netns_loopback": s.netns_loopback.as_str(),
            "gitea_http": s.gitea_http,
            "bwrap": p.bwrap.outcome.as_str(),
            "codex_version": p.codex_version,
        })
    });
    // codex's session records: counts and a time only
    let sessions = a.read.probe.as_ref().ok().and_then(|p| p.sessions.as_ref()).map(|s| {
        json!({
            "readable": !s.error,
            "commands_24h": s.commands,
            "sandbox_denials_24h": s.sandbox_denials,
            "succeeded_24h": s.succeeded,
            "stalled_minutes": s.stalled_minutes,
            "harm": s.harm(std::time::SystemTime::now()),
        })
    });
    json!({
        "id": a.id(),
        "name": a.read.agent.name,
        "host": a.read.agent.host,
        "container_id": a.read.agent.container_id,
        "image": a.read.image,
        "state": a.read.state,
        "verdict": d.verdict.as_str(),
        "findings": d.findings.iter().map(|f| f.code.as_str()).collect::<Vec<_>>(),
        "evidence": d.findings.iter().map(|f| (f.code.as_str().to_string(), Value::String(f.evidence.clone()))).collect::<Map<_, _>>(),
        "effective": effective,
        "probes": probes,
        "sessions": sessions,
    })
}

/// Discover and read the whole fleet; `on_host` sees each host as it answers (the console
/// streams them in).
pub async fn scan(fleet: &dyn Fleet, mut on_host: impl FnMut(&HostState)) -> Result<FleetReport, FleetError> {
    scan_counting(fleet, |h, _| on_host(h)).await
}

/// `scan`, with the number of hosts discovered passed along with each answer (for progress).
pub async fn scan_counting(fleet: &dyn Fleet, mut on_host: impl FnMut(&HostState, usize)) -> Result<FleetReport, FleetError> {
    let hosts = fleet.discover().await?;
    let total = hosts.len();
    let mut on_host = move |s: &HostState| on_host(s, total);
    let order: Vec<String> = hosts.iter().map(|h| h.id.clone()).collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let reachable: Vec<Host> = hosts.iter().filter(|h| h.reachable).cloned().collect();
    let mut states: Vec<HostState> = hosts
        .iter()
        .filter(|h| !h.reachable)
        .map(|h| HostState { host: h.clone(), agents: Vec::new() })
        .collect();
    for s in &states {
        on_host(s);
    }
    let run = fleet.scan(&reachable, tx);
    // Each host's answer is parsed and diagnosed on the blocking pool as it arrives (a
    // thousand hosts' worth is seconds of CPU: it must not serialize behind one task), and
    // handed on in the order the diagnoses finish.
    let collect = async {
        let mut got = Vec::new();
        let mut texts = crate::probe::Interner::new();
        let memo = std::sync::Arc::new(crate::diagnose::DiagnosisMemo::default());
        let mut pending = futures::stream::FuturesUnordered::new();
        let mut open = true;
        loop {
            tokio::select! {
                r = rx.recv(), if open => match r {
                    Some(r) => {
                        let memo = memo.clone();
                        pending.push(crate::cpu::run(move || HostState::from_read_in(r, Some(&memo))))
                    }
                    None => open = false,
                },
                Some(mut s) = futures::StreamExt::next(&mut pending), if !pending.is_empty() => {
                    s.share_texts(&mut texts);
                    on_host(&s);
                    got.push(s);
                }
                else => break,
            }
        }
        got
    };
    let (res, got) = tokio::join!(run, collect);
    res?;
    states.extend(got);
    // Hosts that never answered are unreachable, not silently missing.
    let answered: std::collections::HashSet<String> = states.iter().map(|s| s.host.id.clone()).collect();
    for h in &reachable {
        if !answered.contains(&h.id) {
            let mut host = h.clone();
            host.reachable = false;
            host.unreachable_reason = Some("no answer from the host".into());
            states.push(HostState { host, agents: Vec::new() });
        }
    }
    let rank: std::collections::HashMap<&str, usize> = order.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    states.sort_by_key(|s| rank.get(s.host.id.as_str()).copied().unwrap_or(usize::MAX));
    for s in &mut states {
        s.agents.sort_by(|a, b| a.read.agent.name.cmp(&b.read.agent.name));
    }
    Ok(FleetReport { hosts: states })
}

/// Diagnose what a backend read (see [`AgentRead::diagnose`]).
pub fn diagnose_read(r: &AgentRead) -> Diagnosis {
    r.diagnose()
}
