//! The code's layout has no import circles: a module (a file under `src/`) never reaches itself
//! through the modules it uses, and the top-level modules (`cli`, `tui`, `present`, `fleet`,
//! `sim`, ...) form layers, each using only those below it.
//!
//! Read from the source, not from rustc: every `crate::`, `super::` and `self::` path (in `use`
//! declarations and inline), with `{...}` groups expanded, resolved to the longest module it
//! names. A module and its own ancestors may use each other (a parent declares its children,
//! and a child file of `impl App` uses `super::App`); test modules (`#[cfg(test)]` and what
//! follows it) are left out. See docs/architecture.md for the layers this keeps.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn modules(root: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().and_then(|x| x.to_str()) != Some("rs") {
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().with_extension("");
            let mut m: Module = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            if m.last().map(String::as_str) == Some("mod") {
                m.pop();
            }
            if m == ["lib"] || m == ["main"] {
                m.clear();
            }
            out.insert(m, p);
        }
    }
    out
}

/// The source without comments and test modules (string contents are kept: a path inside a
/// string is rare and harmless here).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Parse a path tree starting at `s` (just after `crate::`, `super::`, `self::`), appending
/// every full path it names to `out` (relative to `prefix`).
fn tree(s: &[u8], mut i: usize, prefix: &[String], out: &mut Vec<Module>) -> usize {
    let mut path: Vec<String> = prefix.to_vec();
    loop {
        if s.get(i) == Some(&b'{') {
            i += 1;
            loop {
                while s.get(i).is_some_and(|c| c.is_ascii_whitespace() || *c == b',') {
                    i += 1;
                }
                if s.get(i) == Some(&b'}') || i >= s.len() {
                    return i + 1;
                }
                let before = i;
                i = tree(s, i, &path, out);
                if i == before {
                    i += 1;
                }
            }
        }
        let start = i;
        while s.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
            i += 1;
        }
        if i == start {
            out.push(path);
            return i;
        }
        let seg = String::from_utf8_lossy(&s[start..i]).into_owned();
        if seg != "self" {
            path.push(seg);
        }
        if s.get(i) == Some(&b':') && s.get(i + 1) == Some(&b':') {
            i += 2;
        } else {
            out.push(path);
            return i;
        }
    }
}

/// Every module path `m`'s code names.
fn references(m: &Module, text: &str) -> Vec<Module> {
    let s = code(text);
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let boundary = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b':');
        let rest = &b[i..];
        let base: Option<(Module, usize)> = if !boundary {
            None
        } else if rest.starts_with(b"crate::") {
            Some((Vec::new(), 7))
        } else if rest.starts_with(b"self::") {
            Some((m.clone(), 6))
        } else if rest.starts_with(b"super::") {
            let mut cur = m.clone();
            let mut j = 0;
            while b[i + j..].starts_with(b"super::") {
                cur.pop();
                j += 7;
            }
            Some((cur, j))
        } else {
            None
        };
        match base {
            Some((prefix, skip)) => {
                let mut found = Vec::new();
                i = tree(b, i + skip, &prefix, &mut found);
                out.extend(found);
            }
            None => i += 1,
        }
    }
    out
}

fn resolve(mods: &BTreeMap<Module, PathBuf>, path: &Module) -> Option<Module> {
    (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| mods.contains_key(p))
}

fn related(a: &Module, b: &Module) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Strongly connected components of more than one node (Tarjan).
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct T<'a> {
        g: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        on: BTreeSet<Module>,
        out: Vec<Vec<Module>>,
    }
    fn visit(t: &mut T, v: &Module) {
        let n = t.index.len();
        t.index.insert(v.clone(), n);
        t.low.insert(v.clone(), n);
        t.stack.push(v.clone());
        t.on.insert(v.clone());
        for w in t.g.get(v).cloned().unwrap_or_default() {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let lw = t.low[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(&w) {
                let iw = t.index[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(&w);
                let done = &w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let mut t = T { g: graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), on: BTreeSet::new(), out: Vec::new() };
    let nodes: Vec<Module> = graph.keys().cloned().collect();
    for v in &nodes {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

fn describe(graph: &BTreeMap<Module, BTreeSet<Module>>, comps: &[Vec<Module>]) -> String {
    let mut s = String::new();
    for c in comps {
        let set: BTreeSet<&Module> = c.iter().collect();
        s.push_str(&format!("circle: {}\n", c.iter().map(name).collect::<Vec<_>>().join(", ")));
        for a in c {
            for b in graph.get(a).into_iter().flatten().filter(|b| set.contains(b)) {
                s.push_str(&format!("  {} -> {}\n", name(a), name(b)));
            }
        }
    }
    s
}

fn graphs() -> (BTreeMap<Module, BTreeSet<Module>>, BTreeMap<Module, BTreeSet<Module>>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&root);
    let mut files: BTreeMap<Module, BTreeSet<Module>> = mods.keys().map(|m| (m.clone(), BTreeSet::new())).collect();
    let mut layers: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (m, p) in &mods {
        let text = std::fs::read_to_string(p).unwrap();
        for r in references(m, &text) {
            let Some(t) = resolve(&mods, &r) else { continue };
            if t != *m && !related(m, &t) {
                files.get_mut(m).unwrap().insert(t.clone());
            }
            if let (Some(a), Some(b)) = (m.first(), t.first()) {
                if a != b {
                    layers.entry(vec![a.clone()]).or_default().insert(vec![b.clone()]);
                }
            }
        }
    }
    (files, layers)
}

#[test]
fn no_module_reaches_itself() {
    let (files, _) = graphs();
    assert!(files.len() > 40, "the source tree was not found ({} modules)", files.len());
    let c = cycles(&files);
    assert!(c.is_empty(), "import circles between modules:\n{}", describe(&files, &c));
}

#[test]
fn top_level_modules_form_layers() {
    let (_, layers) = graphs();
    let c = cycles(&layers);
    assert!(c.is_empty(), "top-level modules use each other:\n{}", describe(&layers, &c));
    // The layers the architecture names: the front ends above presentation, presentation
    // above the engine and the backends; nothing below uses a front end.
    let uses = |a: &str, b: &str| layers.get(&vec![a.to_string()]).is_some_and(|s| s.contains(&vec![b.to_string()]));
    for low in ["present", "rollout", "fleet", "sim", "scan", "plan", "diagnose", "probe", "codex", "source"] {
        for front in ["cli", "tui"] {
            assert!(!uses(low, front), "{low} uses {front}: a front end is used only by what is above it");
        }
    }
    assert!(!uses("tui", "cli"), "the console uses the CLI: shared code belongs below both");
    assert!(!uses("fleet", "sim"), "the AWS backend knows the demo: the demo's wiring belongs above it");
}

/// The checker itself: it finds a circle planted through `use` groups, `super::` and inline
/// paths, and ignores a module using its own parent.
#[test]
fn the_checker_sees_circles() {
    let mut mods = BTreeMap::new();
    for m in [vec![], vec!["a".to_string()], vec!["a".into(), "b".into()], vec!["c".into()], vec!["d".into()]] {
        mods.insert(m, PathBuf::new());
    }
    let refs = |m: &Module, text: &str| -> BTreeSet<Module> {
        references(m, text).iter().filter_map(|r| resolve(&mods, r)).filter(|t| t != m && !related(m, t)).collect()
    };
    let ab: Module = vec!["a".into(), "b".into()];
    let c: Module = vec!["c".into()];
    let d: Module = vec!["d".into()];
    let mut g = BTreeMap::new();
    g.insert(ab.clone(), refs(&ab, "use super::super::c::{x, y::z};\nfn f() { super::Parent::new(); }"));
    g.insert(c.clone(), refs(&c, "fn g() { crate::d::h(); } // crate::a::b::k()"));
    g.insert(d.clone(), refs(&d, "use crate::{a::b::{K, L}, c};"));
    assert_eq!(g[&ab], BTreeSet::from([c.clone()]), "a::b uses c (its parent a does not count)");
    assert_eq!(g[&c], BTreeSet::from([d.clone()]), "a comment is not a use");
    assert_eq!(g[&d], BTreeSet::from([ab.clone(), c.clone()]));
    let found = cycles(&g);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].len(), 3);
}
