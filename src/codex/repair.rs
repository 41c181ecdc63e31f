//! Repair of exactly the invalid shapes that repeated "prepend this block" hotpatches leave,
//! and nothing else.
//!
//! Each container start ran the hotpatch again, so config.toml grew copies of
//! `sandbox_mode = ...` / `approval_policy = ...` at the top and, with the first workaround,
//! copies of `[sandbox_workspace_write]\nnetwork_access = true` (the second copy of the table
//! header is itself a TOML error, and the older copy's `sandbox_mode` line ends up *inside*
//! the newer copy's table). codex refuses the whole file. These shapes are mechanical, so they
//! are repaired line by line: drop repeated copies of the hotpatch's own keys within one
//! table, and merge a `[sandbox_workspace_write]` header that repeats the table right above
//! it. Anything else invalid is refused with the parser's line and column, in the user's own
//! line numbering, and nothing is written.

use super::config::{parse, Location, ParseProblem};

/// A repaired text and the lines removed from the original (1-based numbers, verbatim text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    pub text: String,
    pub removed: Vec<(usize, String)>,
}

const SWS: &str = "sandbox_workspace_write";
/// The keys the hotpatches wrote, by the table they wrote them to.
const HOTPATCH_ROOT_KEYS: &[&str] = &[
    "sandbox_mode",
    "approval_policy",
    "sandbox_workspace_write.network_access",
];
const HOTPATCH_SWS_KEYS: &[&str] = &["network_access", "sandbox_mode", "approval_policy"];

/// Normalise a key or table path: unquote simple quoted parts, drop blanks around dots.
fn norm_path(raw: &str) -> String {
    raw.split('.')
        .map(|p| p.trim().trim_matches('"').trim_matches('\''))
        .collect::<Vec<_>>()
        .join(".")
}

/// `[table]` header -> its normalised name. `[[array]]` headers count as tables too (never
/// merged: a repeated array header is legal).
fn header(line: &str) -> Option<(String, bool)> {
    let t = line.trim();
    let t = t.split_once('#').map(|(a, _)| a.trim_end()).unwrap_or(t);
    if let Some(inner) = t.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
        return Some((norm_path(inner), true));
    }
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    if inner.contains(',') || inner.contains('[') || inner.trim().is_empty() {
        return None;
    }
    Some((norm_path(inner), false))
}

/// `key = value` on one line, with a single-line scalar value -> normalised key.
fn simple_assignment(line: &str) -> Option<String> {
    let (k, v) = line.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || k.starts_with('#') || k.starts_with('[') {
        return None;
    }
    let v = v.trim();
    // Only one-line scalars: a string or a bare word/bool. Multi-line values are never touched.
    let scalar = (v.starts_with('"') && !v.starts_with("\"\"\""))
        || (v.starts_with('\'') && !v.starts_with("'''"))
        || v.starts_with("true")
        || v.starts_with("false");
    scalar.then(|| norm_path(k))
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// Try to repair `text`. `Ok(None)`: it parses already. `Err`: it is invalid in a way this
/// does not repair; the problem is located in the original text.
pub fn repair(text: &str) -> Result<Option<Repair>, ParseProblem> {
    let original = match parse(text) {
        Ok(_) => return Ok(None),
        Err(p) => p,
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut keep = vec![true; lines.len()];
    let mut in_multiline: Option<&str> = None;
    // (table name, is array) of the segment we are in; root is "".
    let mut table = (String::new(), false);
    let mut seen_in_table: Vec<String> = Vec::new();
    let mut seen_sws_header = false;

    for (i, line) in lines.iter().enumerate() {
        // Skip the inside of multi-line strings: nothing there is structure.
        if let Some(delim) = in_multiline {
            if line.matches(delim).count() % 2 == 1 {
                in_multiline = None;
            }
            continue;
        }
        for delim in ["\"\"\"", "'''"] {
            if line.matches(delim).count() % 2 == 1 {
                in_multiline = Some(delim);
            }
        }
        if in_multiline.is_some() {
            continue;
        }
        if let Some(h) = header(line) {
            if h.0 == SWS && !h.1 && table.0 == SWS {
                // The same table again right below itself: merge (drop the repeated header).
                keep[i] = false;
                continue;
            }
            if h.0 == SWS && !h.1 {
                if seen_sws_header {
                    // A second copy further down: fine only if it holds nothing but the
                    // hotpatch's keys, blanks and comments; then it goes whole.
                    let end = lines[i + 1..]
                        .iter()
                        .position(|l| header(l).is_some())
                        .map(|p| i + 1 + p)
                        .unwrap_or(lines.len());
                    let only_hotpatch = lines[i + 1..end].iter().all(|l| {
                        is_blank_or_comment(l)
                            || simple_assignment(l).is_some_and(|k| HOTPATCH_SWS_KEYS.contains(&k.as_str()))
                    });
                    if only_hotpatch {
                        for k in keep.iter_mut().take(end).skip(i) {
                            *k = false;
                        }
                    }
                }
                seen_sws_header = true;
            }
            table = h;
            seen_in_table.clear();
            continue;
        }
        if !keep[i] {
            continue;
        }
        if let Some(key) = simple_assignment(line) {
            let repairable = if table.0.is_empty() {
                HOTPATCH_ROOT_KEYS.contains(&key.as_str())
            } else if table.0 == SWS {
                HOTPATCH_SWS_KEYS.contains(&key.as_str())
            } else {
                false
            };
            if repairable {
                if seen_in_table.contains(&key) {
                    keep[i] = false;
                } else {
                    seen_in_table.push(key);
                }
            }
        }
    }

    let mut out = String::with_capacity(text.len());
    let mut removed = Vec::new();
    let mut origin = Vec::new(); // repaired line index -> original line index
    for (i, line) in lines.iter().enumerate() {
        if keep[i] {
            out.push_str(line);
            origin.push(i);
        } else {
            removed.push((i + 1, line.trim_end_matches(['\r', '\n']).to_string()));
        }
    }
    if removed.is_empty() {
        return Err(original);
    }
    match parse(&out) {
        Ok(_) => Ok(Some(Repair { text: out, removed })),
        Err(p) => {
            // Report where the remaining problem is in the user's own file.
            let line = origin.get(p.location.line - 1).map(|o| o + 1).unwrap_or(p.location.line);
            Err(ParseProblem {
                location: Location { line, column: p.location.column },
                message: p.message,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_text_needs_no_repair() {
        assert_eq!(repair("a = 1\n").unwrap(), None);
    }

    #[test]
    fn repeated_root_prepends() {
        let t = "sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\nsandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\nmodel = \"o3\"\n";
        let r = repair(t).unwrap().unwrap();
        assert_eq!(r.text, "sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\nmodel = \"o3\"\n");
        assert_eq!(r.removed.iter().map(|r| r.0).collect::<Vec<_>>(), vec![3, 4]);
    }

    #[test]
    fn repeated_workaround_blocks_merge() {
        let block = "sandbox_mode = \"workspace-write\"\n\n[sandbox_workspace_write]\nnetwork_access = true\n";
        let t = format!("{block}{block}{block}model = \"o3\"\n[mcp_servers.m]\ncommand = \"x\"\n");
        let r = repair(&t).unwrap().unwrap();
        assert!(parse(&r.text).is_ok(), "{}", r.text);
        assert_eq!(r.text.matches("[sandbox_workspace_write]").count(), 1);
        assert!(r.text.contains("model = \"o3\""));
    }

    #[test]
    fn other_invalid_documents_are_refused_in_user_lines() {
        let t = "sandbox_mode = \"a\"\nsandbox_mode = \"b\"\nx = = 1\n";
        let p = repair(t).unwrap_err();
        assert_eq!(p.location.line, 3, "{p}");
        let p = repair("model = \"a\"\nmodel = \"b\"\n").unwrap_err();
        assert_eq!(p.location.line, 2);
    }
}
