//! Agent selectors: what `--agent SEL` (and `show SEL`) may name, resolved exactly. Pure.
//!
//! The grammar (docs/reference.md, "Selecting agents"):
//! - `HOST/CONTAINER`: HOST is a host's id (an EC2 instance id, the Docker engine's host id)
//!   or its name, compared whole; CONTAINER is a container name, a full container id, or a
//!   prefix of 12 or more hex digits of one. It must name exactly one agent.
//! - `CONTAINER` alone: the same container forms, across the whole fleet, accepted only when
//!   exactly one agent answers to it; otherwise the error lists every match as `HOST/CONTAINER`.
//!
//! Nothing is a substring: `ws-us-east-2-100` never reaches `ws-us-east-2-1000`.

use std::fmt;

use crate::fleet::AgentRef;

pub use crate::fleet::MIN_ID_PREFIX;

/// One agent as a selector sees it: its reference and its host's name.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub agent: &'a AgentRef,
    /// The host's name (the host id is `agent.host`).
    pub host_name: &'a str,
}

/// A host whose agents are unknown (unreachable): named in the error of a selector that
/// points at it, rather than "no agent".
#[derive(Debug, Clone, Copy)]
pub struct DarkHost<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectError {
    /// Nothing answers to the selector.
    NoMatch { sel: String },
    /// More than one agent answers: every match, as `HOST/CONTAINER` (host name, then id).
    Ambiguous { sel: String, matches: Vec<String> },
    /// The selector's HOST is known but unreachable: its agents could not be read.
    HostUnreachable { sel: String, host: String },
    /// Empty, or an empty HOST or CONTAINER part.
    Malformed { sel: String },
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::NoMatch { sel } => write!(
                f,
                "no agent `{sel}` (use HOST/CONTAINER as `scan` lists it, a container name unique in the fleet, \
                 or a container id prefix of {MIN_ID_PREFIX}+ hex digits)"
            ),
            SelectError::Ambiguous { sel, matches } => write!(
                f,
                "`{sel}` names {} agents: {}; name one as HOST/CONTAINER",
                matches.len(),
                matches.join(", ")
            ),
            SelectError::HostUnreachable { sel, host } => {
                write!(f, "`{sel}`: host {host} is unreachable; its agents could not be read")
            }
            SelectError::Malformed { sel } => {
                write!(f, "`{sel}` is not an agent selector (HOST/CONTAINER or CONTAINER, neither part empty)")
            }
        }
    }
}

/// How a match is listed in an ambiguity error: `HOSTNAME/CONTAINER` when the host has a name
/// of its own, with the exact id form (what `scan --json` prints as `id`) beside it.
fn listed(c: &Candidate) -> String {
    if c.host_name.is_empty() || c.host_name == c.agent.host {
        c.agent.id()
    } else {
        format!("{}/{} ({})", c.host_name, c.agent.name, c.agent.id())
    }
}

/// Resolve one selector to exactly one candidate (its index in `cands`).
pub fn resolve_one(cands: &[Candidate], dark: &[DarkHost], sel: &str) -> Result<usize, SelectError> {
    let bad = || SelectError::Malformed { sel: sel.to_string() };
    let hits: Vec<usize> = match sel.split_once('/') {
        Some((host, c)) => {
            if host.is_empty() || c.is_empty() || c.contains('/') {
                return Err(bad());
            }
            let hits: Vec<usize> = cands
                .iter()
                .enumerate()
                .filter(|(_, x)| (x.agent.host == host || x.host_name == host) && x.agent.container_matches(c))
                .map(|(i, _)| i)
                .collect();
            if hits.is_empty() {
                if let Some(d) = dark.iter().find(|d| d.id == host || d.name == host) {
                    let host = if d.name.is_empty() || d.name == d.id { d.id.to_string() } else { format!("{} ({})", d.name, d.id) };
                    return Err(SelectError::HostUnreachable { sel: sel.to_string(), host });
                }
            }
            hits
        }
        None => {
            if sel.is_empty() {
                return Err(bad());
            }
            cands.iter().enumerate().filter(|(_, x)| x.agent.container_matches(sel)).map(|(i, _)| i).collect()
        }
    };
    match hits.as_slice() {
        [] => Err(SelectError::NoMatch { sel: sel.to_string() }),
        [one] => Ok(*one),
        many => Err(SelectError::Ambiguous { sel: sel.to_string(), matches: many.iter().map(|i| listed(&cands[*i])).collect() }),
    }
}

/// Resolve every selector; the chosen candidates' indices, in `cands` order, each once. Every
/// selector that fails is reported (not just the first).
pub fn resolve(cands: &[Candidate], dark: &[DarkHost], sels: &[String]) -> Result<Vec<usize>, Vec<SelectError>> {
    let mut chosen = Vec::new();
    let mut errors = Vec::new();
    for s in sels {
        match resolve_one(cands, dark, s) {
            Ok(i) => chosen.push(i),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    chosen.sort_unstable();
    chosen.dedup();
    Ok(chosen)
}

/// Errors as one message (one per line after the first).
pub fn describe(errors: &[SelectError]) -> String {
    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(host: &str, name: &str, cid: &str) -> AgentRef {
        AgentRef { host: host.into(), container_id: cid.into(), name: name.into() }
    }

    /// Two hosts whose names share a prefix, a third of the same stem, a container name on two
    /// hosts, and container ids sharing 11 hex digits.
    fn fleet() -> (Vec<AgentRef>, Vec<&'static str>) {
        let agents = vec![
            agent("i-0aaa", "codex-a", "0123456789abcdef0000"),
            agent("i-0aaa", "codex-shared", "0123456789abffff1111"),
            agent("i-0bbb", "codex-shared", "fedcba9876543210aaaa"),
            agent("i-0bbb", "codex-b", "fedcba98765432100bbb"),
            agent("i-0ccc", "codex-c", "cccccccccccccccccccc"),
        ];
        let names = vec!["ws-us-east-2-100", "ws-us-east-2-100", "ws-us-east-2-1000", "ws-us-east-2-1000", "ws-us-east-2-1001"];
        (agents, names)
    }

    fn cands<'a>(agents: &'a [AgentRef], names: &'a [&'static str]) -> Vec<Candidate<'a>> {
        agents.iter().zip(names).map(|(agent, n)| Candidate { agent, host_name: n }).collect()
    }

    fn one(sel: &str) -> Result<String, SelectError> {
        let (a, n) = fleet();
        let c = cands(&a, &n);
        let dark = [DarkHost { id: "i-0dead", name: "ws-us-east-2-10" }];
        resolve_one(&c, &dark, sel).map(|i| a[i].id())
    }

    #[test]
    fn host_slash_container_by_host_name_or_id() {
        assert_eq!(one("ws-us-east-2-100/codex-a").unwrap(), "i-0aaa/codex-a");
        assert_eq!(one("i-0aaa/codex-a").unwrap(), "i-0aaa/codex-a");
        assert_eq!(one("ws-us-east-2-1000/codex-shared").unwrap(), "i-0bbb/codex-shared");
        assert_eq!(one("i-0aaa/codex-shared").unwrap(), "i-0aaa/codex-shared");
    }

    #[test]
    fn host_part_is_never_a_prefix_or_substring() {
        // -100 is a prefix of -1000: the agent on -1000 is not reached through -100
        assert!(matches!(one("ws-us-east-2-100/codex-b"), Err(SelectError::NoMatch { .. })));
        assert!(matches!(one("ws-us-east-2-10/codex-a"), Err(SelectError::HostUnreachable { .. })));
        assert!(matches!(one("ws-us-east-2/codex-a"), Err(SelectError::NoMatch { .. })));
        assert!(matches!(one("i-0aa/codex-a"), Err(SelectError::NoMatch { .. })));
        assert!(matches!(one("WS-US-EAST-2-100/codex-a"), Err(SelectError::NoMatch { .. })));
    }

    #[test]
    fn container_part_forms() {
        // full id, 12+ hex prefix, name; never a shorter prefix, never a name prefix
        assert_eq!(one("i-0aaa/0123456789abcdef0000").unwrap(), "i-0aaa/codex-a");
        assert_eq!(one("i-0aaa/0123456789abcd").unwrap(), "i-0aaa/codex-a");
        assert!(matches!(one("i-0aaa/0123456789ab"), Err(SelectError::Ambiguous { .. })));
        assert!(matches!(one("i-0aaa/0123456789a"), Err(SelectError::NoMatch { .. })));
        assert!(matches!(one("i-0aaa/codex-"), Err(SelectError::NoMatch { .. })));
        assert!(matches!(one("i-0aaa/codex"), Err(SelectError::NoMatch { .. })));
        // a 12-hex prefix on the wrong host
        assert!(matches!(one("i-0bbb/0123456789ab"), Err(SelectError::NoMatch { .. })));
    }

    #[test]
    fn bare_name_only_when_unique() {
        assert_eq!(one("codex-a").unwrap(), "i-0aaa/codex-a");
        assert_eq!(one("codex-c").unwrap(), "i-0ccc/codex-c");
        match one("codex-shared") {
            Err(SelectError::Ambiguous { matches, .. }) => assert_eq!(
                matches,
                vec![
                    "ws-us-east-2-100/codex-shared (i-0aaa/codex-shared)".to_string(),
                    "ws-us-east-2-1000/codex-shared (i-0bbb/codex-shared)".to_string()
                ]
            ),
            other => panic!("{other:?}"),
        }
        let e = one("codex-shared").unwrap_err().to_string();
        assert!(e.contains("names 2 agents") && e.contains("HOST/CONTAINER"), "{e}");
    }

    #[test]
    fn bare_id_prefix_unique_or_ambiguous() {
        assert_eq!(one("cccccccccccc").unwrap(), "i-0ccc/codex-c");
        assert_eq!(one("fedcba9876543210aaaa").unwrap(), "i-0bbb/codex-shared");
        // shared by two containers
        assert!(matches!(one("fedcba987654"), Err(SelectError::Ambiguous { .. })));
        assert!(matches!(one("0123456789a"), Err(SelectError::NoMatch { .. })));
        assert_eq!(one("0123456789ab").unwrap_err(), SelectError::Ambiguous {
            sel: "0123456789ab".into(),
            matches: vec![
                "ws-us-east-2-100/codex-a (i-0aaa/codex-a)".into(),
                "ws-us-east-2-100/codex-shared (i-0aaa/codex-shared)".into()
            ]
        });
        // not hex: never a prefix
        assert!(matches!(one("0123456789ag"), Err(SelectError::NoMatch { .. })));
    }

    #[test]
    fn nothing_and_malformed() {
        assert!(matches!(one("nosuch"), Err(SelectError::NoMatch { .. })));
        assert!(matches!(one(""), Err(SelectError::Malformed { .. })));
        assert!(matches!(one("/codex-a"), Err(SelectError::Malformed { .. })));
        assert!(matches!(one("i-0aaa/"), Err(SelectError::Malformed { .. })));
        assert!(matches!(one("i-0aaa/codex-a/x"), Err(SelectError::Malformed { .. })));
        assert!(one("nosuch").unwrap_err().to_string().contains("no agent `nosuch`"));
    }

    #[test]
    fn a_host_without_its_own_name_is_listed_by_id() {
        let a = vec![agent("h1", "x", "aaaaaaaaaaaaaaaa"), agent("h2", "x", "bbbbbbbbbbbbbbbb")];
        let c: Vec<Candidate> = a.iter().map(|agent| Candidate { agent, host_name: &agent.host }).collect();
        match resolve_one(&c, &[], "x") {
            Err(SelectError::Ambiguous { matches, .. }) => assert_eq!(matches, vec!["h1/x", "h2/x"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(resolve_one(&c, &[], "h2/x"), Ok(1));
    }

    #[test]
    fn many_selectors_union_in_fleet_order_and_every_error() {
        let (a, n) = fleet();
        let c = cands(&a, &n);
        let sels = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(resolve(&c, &[], &sels(&["codex-c", "i-0aaa/codex-a", "codex-a"])), Ok(vec![0, 4]));
        assert_eq!(resolve(&c, &[], &[]), Ok(vec![]));
        let e = resolve(&c, &[], &sels(&["codex-a", "nosuch", "codex-shared"])).unwrap_err();
        assert_eq!(e.len(), 2);
        let msg = describe(&e);
        assert!(msg.contains("`nosuch`") && msg.contains("`codex-shared` names 2"), "{msg}");
    }
}
