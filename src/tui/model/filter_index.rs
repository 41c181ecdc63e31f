//! The agents table's filter, kept up with the operator's typing (issue 15, item 3).
//!
//! What a filter matches is defined by [`from_scratch`] (the console's filter before this module,
//! kept as the reference): the whole filter naming a root cause of the why line selects the
//! agents stalled by it; otherwise every whitespace-separated term (lower-cased) must match the
//! agent by `app::matches_term`. [`FilterIndex`] gives exactly the same rows, in the same order,
//! without redoing everything on each keystroke:
//!
//! - **an index of the searchable words**, built once per change of the report (lazily, when a
//!   filter is first used): agent names and host ids/names ASCII-lower-cased into one buffer
//!   each (one SIMD `memmem` pass finds a term in every row), container ids, and each distinct
//!   (verdict, finding codes) pair with its root cause, so those words are matched once per pair
//!   and not once per agent;
//! - **the sorted order of all rows**, built once per change of the report or of the sort: a
//!   filtered table is a subsequence of it (the sort is stable), so a keystroke never sorts;
//! - **the last results** (a few): a filter that implies an earlier one (the operator typed more
//!   characters, or added a term) only re-checks that earlier result's rows; going back to an
//!   earlier filter (Backspace) finds it again; anything else is a pass over the index.

use std::collections::{HashMap, VecDeque};

use memchr::memmem::Finder;

use super::filter::{matches_term, verdict_rank, AgentIx, HOST_TERM};
use crate::present::root_cause;
use crate::tui::action::SortKey;
use crate::diagnose::{Code, Verdict};
use crate::scan::{AgentState, FleetReport};

/// How many earlier results are kept to narrow from (or to go back to).
const KEEP: usize = 16;

/// The console's filter before the index, kept as the definition of what a filter selects (and
/// in order to measure the index against it): filter every agent, then sort.
pub fn from_scratch(
    report: &FleetReport,
    causes: &[(usize, &'static str)],
    filter: &str,
    sort: SortKey,
    rev: bool,
) -> Vec<AgentIx> {
    let terms: Vec<String> = filter.split_whitespace().map(str::to_lowercase).collect();
    // A filter that is a whole root cause of the why line (Enter on a cause in the Hosts
    // view, or typed) selects exactly the agents stalled by it.
    let cause = causes.iter().map(|(_, c)| *c).find(|c| c.eq_ignore_ascii_case(filter.trim()));
    let mut rows = Vec::new();
    for (hi, h) in report.hosts.iter().enumerate() {
        for (ai, a) in h.agents.iter().enumerate() {
            let hit = match &cause {
                Some(c) => root_cause(a) == Some(c),
                None => terms.iter().all(|t| matches_term(h, a, t)),
            };
            if hit {
                rows.push((hi as u32, ai as u32));
            }
        }
    }
    sort_rows(report, &mut rows, sort, rev);
    rows
}

/// The agents table's order (stable: agents that compare equal stay in report order).
pub fn sort_rows(report: &FleetReport, rows: &mut [AgentIx], sort: SortKey, rev: bool) {
    let get = |ix: &AgentIx| (&report.hosts[ix.0 as usize], &report.hosts[ix.0 as usize].agents[ix.1 as usize]);
    let mode = |a: &AgentState| a.diagnosis.effective.as_ref().map(|e| e.sandbox_mode.value.clone()).unwrap_or_default();
    match sort {
        SortKey::Verdict => rows.sort_by(|x, y| {
            let ((hx, ax), (hy, ay)) = (get(x), get(y));
            (verdict_rank(ax.diagnosis.verdict), &hx.host.name, &ax.read.agent.name)
                .cmp(&(verdict_rank(ay.diagnosis.verdict), &hy.host.name, &ay.read.agent.name))
        }),
        SortKey::Host => rows.sort_by(|x, y| {
            let ((hx, ax), (hy, ay)) = (get(x), get(y));
            (&hx.host.name, &ax.read.agent.name).cmp(&(&hy.host.name, &ay.read.agent.name))
        }),
        SortKey::Name => rows.sort_by(|x, y| get(x).1.read.agent.name.cmp(&get(y).1.read.agent.name)),
        SortKey::Mode => rows.sort_by(|x, y| {
            let ((hx, ax), (hy, ay)) = (get(x), get(y));
            (mode(ax), &hx.host.name, &ax.read.agent.name).cmp(&(mode(ay), &hy.host.name, &ay.read.agent.name))
        }),
    }
    if rev {
        rows.reverse();
    }
}

/// What a filter asks for, parsed as [`from_scratch`] parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Query {
    All,
    Cause(&'static str),
    Terms(Vec<String>),
}

impl Query {
    fn parse(filter: &str, causes: &[(usize, &'static str)]) -> Query {
        if let Some(c) = causes.iter().map(|(_, c)| *c).find(|c| c.eq_ignore_ascii_case(filter.trim())) {
            return Query::Cause(c);
        }
        let terms: Vec<String> = filter.split_whitespace().map(str::to_lowercase).collect();
        if terms.is_empty() {
            Query::All
        } else {
            Query::Terms(terms)
        }
    }

    /// Does every row matching `self` match `earlier` too (so `self`'s rows are `earlier`'s
    /// rows that match `self`)? `All` is implied by anything; a cause only by itself.
    fn implies(&self, earlier: &Query) -> bool {
        match (self, earlier) {
            (_, Query::All) => true,
            (Query::Terms(new), Query::Terms(old)) => old.iter().all(|t| new.iter().any(|n| term_implies(n, t))),
            (a, b) => a == b,
        }
    }
}

/// Does an agent matching term `new` always match term `old`? A term matches by substring
/// (names, host, verdict, codes, root cause) or by prefix (container id): a longer term that
/// starts with `old` implies it. `host=X` matches one host exactly, so only itself implies it,
/// and it implies no other term.
fn term_implies(new: &str, old: &str) -> bool {
    new == old || (!new.starts_with(HOST_TERM) && !old.starts_with(HOST_TERM) && new.starts_with(old))
}

/// Strings side by side in one buffer, each followed by `\n` (a filter term never holds
/// whitespace, so no match spans two of them).
#[derive(Default)]
struct Strings {
    buf: Vec<u8>,
    /// `starts[i]..starts[i + 1] - 1` is string `i`.
    starts: Vec<u32>,
}

impl Strings {
    fn push(&mut self, s: &str, lower: bool) {
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        let at = self.buf.len();
        self.buf.extend_from_slice(s.as_bytes());
        if lower {
            self.buf[at..].make_ascii_lowercase();
        }
        self.buf.push(b'\n');
        self.starts.push(self.buf.len() as u32);
    }

    fn get(&self, i: usize) -> &[u8] {
        &self.buf[self.starts[i] as usize..self.starts[i + 1] as usize - 1]
    }

    /// Mark (`hits[i] = true`) every string holding `f`'s needle: one pass over the buffer.
    fn mark(&self, f: &Finder, hits: &mut [bool]) {
        let mut i = 0;
        for at in f.find_iter(&self.buf) {
            let at = at as u32;
            while self.starts[i + 1] <= at {
                i += 1;
            }
            hits[i] = true;
        }
    }
}

/// One distinct (verdict, finding codes) pair of the fleet: the root cause follows from it.
struct Class {
    verdict: &'static str,
    codes: Vec<&'static str>,
    cause: Option<&'static str>,
}

/// The searchable words of every row (rows in report order).
struct Keys {
    host_of: Vec<u32>,
    class_of: Vec<u32>,
    /// Agent names, ASCII-lower-cased.
    names: Strings,
    /// Container ids as they are (matched by prefix, case and all).
    cids: Strings,
    /// Host ids and names, ASCII-lower-cased, one per host.
    host_ids: Strings,
    host_names: Strings,
    classes: Vec<Class>,
}

impl Keys {
    fn build(report: &FleetReport) -> Keys {
        let n: usize = report.hosts.iter().map(|h| h.agents.len()).sum();
        let mut k = Keys {
            host_of: Vec::with_capacity(n),
            class_of: Vec::with_capacity(n),
            names: Strings::default(),
            cids: Strings::default(),
            host_ids: Strings::default(),
            host_names: Strings::default(),
            classes: Vec::new(),
        };
        let mut seen: HashMap<(Verdict, Vec<Code>), u32> = HashMap::new();
        for (hi, h) in report.hosts.iter().enumerate() {
            k.host_ids.push(&h.host.id, true);
            k.host_names.push(&h.host.name, true);
            for a in &h.agents {
                let d = &a.diagnosis;
                let key = (d.verdict, d.codes());
                let class = match seen.get(&key) {
                    Some(c) => *c,
                    None => {
                        let c = k.classes.len() as u32;
                        k.classes.push(Class {
                            verdict: d.verdict.as_str(),
                            codes: key.1.iter().map(|c| c.as_str()).collect(),
                            cause: root_cause(a),
                        });
                        seen.insert(key, c);
                        c
                    }
                };
                k.host_of.push(hi as u32);
                k.class_of.push(class);
                k.names.push(&a.read.agent.name, true);
                k.cids.push(&a.read.agent.container_id, false);
            }
        }
        k
    }
}

/// One term, matched against the index.
struct Term<'t> {
    text: &'t str,
    /// `host=X`: only `host_hit` counts.
    host_only: bool,
    finder: Finder<'t>,
    host_hit: Vec<bool>,
    class_hit: Vec<bool>,
    /// Per row (when the term is checked against every row): the name holds the term.
    name_hit: Option<Vec<bool>>,
}

impl<'t> Term<'t> {
    fn new(k: &Keys, text: &'t str, every_row: bool) -> Term<'t> {
        let hosts = k.host_ids.starts.len().saturating_sub(1);
        if let Some(x) = text.strip_prefix(HOST_TERM) {
            // `eq_ignore_ascii_case` against a term that has no ASCII capital (it is lower-cased).
            let host_hit = (0..hosts).map(|h| k.host_ids.get(h) == x.as_bytes() || k.host_names.get(h) == x.as_bytes()).collect();
            return Term { text, host_only: true, finder: Finder::new(text), host_hit, class_hit: Vec::new(), name_hit: None };
        }
        let finder = Finder::new(text);
        let mut host_hit = vec![false; hosts];
        k.host_ids.mark(&finder, &mut host_hit);
        k.host_names.mark(&finder, &mut host_hit);
        let class_hit = k
            .classes
            .iter()
            .map(|c| {
                c.verdict.contains(text)
                    || c.codes.iter().any(|code| code.contains(text))
                    || c.cause.is_some_and(|w| w.to_ascii_lowercase().contains(text))
            })
            .collect();
        let name_hit = every_row.then(|| {
            let mut hits = vec![false; k.host_of.len()];
            k.names.mark(&finder, &mut hits);
            hits
        });
        Term { text, host_only: false, finder, host_hit, class_hit, name_hit }
    }

    fn hit(&self, k: &Keys, r: usize) -> bool {
        if self.host_hit[k.host_of[r] as usize] {
            return true;
        }
        if self.host_only {
            return false;
        }
        self.class_hit[k.class_of[r] as usize]
            || match &self.name_hit {
                Some(h) => h[r],
                None => self.finder.find(k.names.get(r)).is_some(),
            }
            || k.cids.get(r).starts_with(self.text.as_bytes())
    }
}

/// The agents table's rows for a filter, incrementally (see the module's documentation).
/// Call [`FilterIndex::invalidate`] whenever the report changes.
#[derive(Default)]
pub struct FilterIndex {
    /// Every row, in report order: `base[r]`.
    base: Vec<AgentIx>,
    /// Built lazily, at the first filter after a change of the report.
    keys: Option<Keys>,
    /// All rows (indices into `base`) in table order, and the sort it is for.
    order: Option<(SortKey, bool, Vec<u32>)>,
    /// The latest results first (rows in table order), all for `order`.
    recent: VecDeque<(Query, Vec<u32>)>,
}

impl FilterIndex {
    /// The report changed: forget the index, the order and the results.
    pub fn invalidate(&mut self) {
        *self = FilterIndex::default();
    }

    /// Exactly `from_scratch(report, causes, filter, sort, rev)`, for the report this index
    /// was last invalidated for.
    pub fn rows(
        &mut self,
        report: &FleetReport,
        causes: &[(usize, &'static str)],
        filter: &str,
        sort: SortKey,
        rev: bool,
    ) -> Vec<AgentIx> {
        if self.order.as_ref().is_none_or(|(s, r, _)| (*s, *r) != (sort, rev)) {
            if self.base.is_empty() {
                self.base = report
                    .hosts
                    .iter()
                    .enumerate()
                    .flat_map(|(hi, h)| (0..h.agents.len()).map(move |ai| (hi as u32, ai as u32)))
                    .collect();
            }
            let mut rows = self.base.clone();
            sort_rows(report, &mut rows, sort, rev);
            // `base` is in report order: host `h`'s agents start at `first[h]`.
            let mut first = Vec::with_capacity(report.hosts.len());
            let mut n = 0u32;
            for h in &report.hosts {
                first.push(n);
                n += h.agents.len() as u32;
            }
            self.order = Some((sort, rev, rows.iter().map(|ix| first[ix.0 as usize] + ix.1).collect()));
            self.recent.clear();
        }
        let q = Query::parse(filter, causes);
        self.hits(report, &q)
    }

    fn hits(&mut self, report: &FleetReport, q: &Query) -> Vec<AgentIx> {
        let base = &self.base;
        let rows_of = |hits: &[u32]| -> Vec<AgentIx> { hits.iter().map(|r| base[*r as usize]).collect() };
        let order = &self.order.as_ref().expect("order built").2;
        if *q == Query::All {
            return rows_of(order);
        }
        if let Some(i) = self.recent.iter().position(|(p, _)| p == q) {
            let found = self.recent.remove(i).expect("in range");
            self.recent.push_front(found);
            return rows_of(&self.recent[0].1);
        }
        let k = self.keys.get_or_insert_with(|| Keys::build(report));
        // The smallest earlier result this filter narrows.
        let from = self.recent.iter().filter(|(p, _)| q.implies(p)).min_by_key(|(_, rows)| rows.len());
        let (rows, old): (&[u32], Option<&Query>) = match from {
            Some((p, rows)) => (rows, Some(p)),
            None => (order, None),
        };
        let out: Vec<u32> = match q {
            Query::All => unreachable!("returned above"),
            Query::Cause(c) => rows.iter().copied().filter(|r| k.classes[k.class_of[*r as usize] as usize].cause == Some(*c)).collect(),
            Query::Terms(terms) => {
                // Terms an earlier filter had as they are hold for all its rows already.
                let already = |t: &String| matches!(old, Some(Query::Terms(o)) if o.contains(t));
                let every_row = rows.len() * 4 > k.host_of.len();
                let mut todo: Vec<&String> = terms.iter().filter(|t| !already(t)).collect();
                todo.dedup();
                let todo: Vec<Term> = todo.into_iter().map(|t| Term::new(k, t, every_row)).collect();
                rows.iter().copied().filter(|r| todo.iter().all(|t| t.hit(k, *r as usize))).collect()
            }
        };
        let rows = rows_of(&out);
        self.recent.push_front((q.clone(), out));
        self.recent.truncate(KEEP);
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::present::stalled_causes;
    use crate::tui::fixtures::{incident_fleet, large_fleet};
    use proptest::prelude::*;

    fn both(ix: &mut FilterIndex, r: &FleetReport, filter: &str, sort: SortKey, rev: bool) -> Vec<AgentIx> {
        let causes = stalled_causes(r);
        let got = ix.rows(r, &causes, filter, sort, rev);
        assert_eq!(got, from_scratch(r, &causes, filter, sort, rev), "filter {filter:?}, sort {sort:?} rev {rev}");
        got
    }

    /// The incident fleet and a larger one, with names in capitals and beyond ASCII.
    fn fleets() -> Vec<FleetReport> {
        let mut big = large_fleet(23, 5);
        big.hosts[3].host.name = "WS-Ops-Σ".into();
        big.hosts[4].agents[1].read.agent.name = "Codex-STRASSE-straße".into();
        big.hosts[5].agents[1].read.agent.name = "codex-0005-00".into(); // twice the same name on a host
        big.hosts[6].host.id = "I-0AB".into();
        // Container ids of their own (the fixture's repeat), matched by prefix.
        for (h, hs) in big.hosts.iter_mut().enumerate() {
            for (i, a) in hs.agents.iter_mut().enumerate() {
                a.read.agent.container_id = format!("{:08x}", ((h * 5 + i) as u64 * 2_654_435_761) % (1 << 32));
            }
        }
        vec![incident_fleet(), big]
    }

    #[test]
    fn typing_narrows_and_backspace_goes_back() {
        let r = incident_fleet();
        let mut ix = FilterIndex::default();
        let mut text = String::new();
        for c in "st uid".chars() {
            text.push(c);
            both(&mut ix, &r, &text, SortKey::Verdict, false);
        }
        while text.pop().is_some() {
            both(&mut ix, &r, &text, SortKey::Verdict, false);
        }
        assert!(ix.recent.len() > 3, "results kept to go back to");
    }

    #[test]
    fn the_words_of_the_console() {
        let r = incident_fleet();
        let mut ix = FilterIndex::default();
        let causes = stalled_causes(&r);
        assert!(causes.len() >= 2);
        for (n, c) in &causes {
            assert_eq!(both(&mut ix, &r, c, SortKey::Verdict, false).len(), *n, "{c}");
            assert_eq!(both(&mut ix, &r, &c.to_uppercase(), SortKey::Verdict, false).len(), *n, "{c} in capitals");
        }
        let id = r.hosts[1].host.id.clone();
        for f in [
            "no bubblewrap",
            "rtm_newaddr",
            "RTM_NEWADDR",
            "uidmap",
            "at-risk",
            "stalled",
            "healthy unknown",
            &format!("host={id}"),
            &format!("HOST={}", id.to_uppercase()),
            &format!("host={}", r.hosts[0].host.name),
            "host=",
            "host",
            &id[..6],
            "gitea",
        ] {
            both(&mut ix, &r, f, SortKey::Verdict, false);
        }
        assert!(!both(&mut ix, &r, "rtm_newaddr", SortKey::Host, true).is_empty());
    }

    #[test]
    fn a_container_id_matches_by_prefix_so_typing_before_a_term_does_not_narrow() {
        let mut r = large_fleet(2, 2);
        for h in &mut r.hosts {
            for a in &mut h.agents {
                a.read.agent.container_id = "ffff".into();
            }
        }
        r.hosts[0].agents[0].read.agent.container_id = "01aa".into();
        let mut ix = FilterIndex::default();
        let one = both(&mut ix, &r, "1", SortKey::Verdict, false);
        assert!(!one.contains(&(0, 0)), "codex-0000-00 on ws-0000 has no 1 but in its container id");
        assert!(both(&mut ix, &r, "01", SortKey::Verdict, false).contains(&(0, 0)), "its container id starts with 01");
    }

    #[test]
    fn a_prefix_term_does_not_imply_by_substring() {
        // Container ids match by prefix: `0a` matches an id that `a` … does not imply.
        assert!(term_implies("abc", "ab"));
        assert!(!term_implies("xab", "ab"));
        assert!(!term_implies("host=ab", "host=a"));
        assert!(!term_implies("host=a", "host"));
        assert!(term_implies("host=a", "host=a"));
        let t = |v: &[&str]| Query::Terms(v.iter().map(|s| s.to_string()).collect());
        assert!(t(&["stalled", "ws"]).implies(&t(&["st"])));
        assert!(!t(&["stalled"]).implies(&t(&["st", "w"])));
        assert!(!Query::Cause("no bubblewrap").implies(&t(&["no"])));
        assert!(t(&["no"]).implies(&Query::All));
    }

    /// One edit of the filter line (or of the sort, or of the data).
    #[derive(Debug, Clone)]
    enum Edit {
        Type(usize, char),
        Paste(usize, &'static str),
        Delete(usize),
        Clear,
        Sort(SortKey),
        Reverse,
        OtherFleet,
    }

    const WORDS: [&str; 16] = [
        "no bubblewrap",
        "RTM_NEWADDR",
        "sandbox cannot",
        "stalled",
        "at-risk",
        "host=",
        "host=ws-0003",
        "host=i-00000000000000004",
        "uidmap",
        "codex-",
        "ws-ops",
        "i-0",
        "STRASSE",
        "ß",
        "σ",
        "config.toml invalid (codex exits at start)",
    ];

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            8 => (0..40usize, prop::sample::select("abcdefgilmnorstuwxz0123456789-_= .()AS".chars().collect::<Vec<_>>())).prop_map(|(i, c)| Edit::Type(i, c)),
            2 => (0..40usize, prop::sample::select(WORDS.to_vec())).prop_map(|(i, w)| Edit::Paste(i, w)),
            4 => (0..40usize).prop_map(Edit::Delete),
            1 => Just(Edit::Clear),
            1 => prop::sample::select(vec![SortKey::Verdict, SortKey::Host, SortKey::Name, SortKey::Mode]).prop_map(Edit::Sort),
            1 => Just(Edit::Reverse),
            1 => Just(Edit::OtherFleet),
        ]
    }

    fn at(s: &str, i: usize) -> usize {
        let b: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
        b[i % b.len()]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Whatever the operator types, deletes or pastes, the index gives what filtering from
        /// scratch gives, row for row.
        #[test]
        fn incremental_equals_from_scratch(edits in prop::collection::vec(edit(), 1..40)) {
            let fleets = fleets();
            let (mut f, mut text, mut sort, mut rev) = (0usize, String::new(), SortKey::Verdict, false);
            let mut ix = FilterIndex::default();
            for e in edits {
                match e {
                    Edit::Type(i, c) => { let i = at(&text, i); text.insert(i, c) }
                    Edit::Paste(i, w) => { let i = at(&text, i); text.insert_str(i, w) }
                    Edit::Delete(i) => { if !text.is_empty() { let i = at(&text, i % text.chars().count()); text.remove(i); } }
                    Edit::Clear => text.clear(),
                    Edit::Sort(s) => sort = s,
                    Edit::Reverse => rev = !rev,
                    Edit::OtherFleet => { f = (f + 1) % fleets.len(); ix.invalidate() }
                }
                let r = &fleets[f];
                let causes = stalled_causes(r);
                let got = ix.rows(r, &causes, &text, sort, rev);
                prop_assert_eq!(got, from_scratch(r, &causes, &text, sort, rev), "filter {:?}", text);
            }
        }
    }
}
