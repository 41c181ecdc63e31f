//! docs/reference.md against the clap definitions that `--help` prints: every command has a
//! section, every flag clap knows is documented where it belongs (a command's own flags in its
//! section, global flags under "Global flags"), and every flag the page names exists on the
//! command it is named with. Every finding code of the diagnosis is in the findings table, and
//! the table has no code the diagnosis does not raise. The README links the reference, and no
//! document of the repository links anything outside it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use codex_fleet::cli::Cli;
use codex_fleet::diagnose::Code;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn reference() -> String {
    std::fs::read_to_string(repo().join("docs/reference.md")).expect("docs/reference.md")
}

/// Every command path clap knows ("scan", "context use", ...), with its own long flags (not the
/// global ones, not help/version).
fn commands() -> BTreeMap<String, BTreeSet<String>> {
    fn walk(prefix: &str, c: &clap::Command, out: &mut BTreeMap<String, BTreeSet<String>>) {
        for sub in c.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let path = if prefix.is_empty() { sub.get_name().to_string() } else { format!("{prefix} {}", sub.get_name()) };
            let own = sub
                .get_arguments()
                .filter(|a| !a.is_global_set())
                .filter_map(|a| a.get_long())
                .filter(|l| !matches!(*l, "help" | "version"))
                .map(|l| format!("--{l}"))
                .collect();
            out.insert(path.clone(), own);
            walk(&path, sub, out);
        }
    }
    let mut out = BTreeMap::new();
    walk("", &built(), &mut out);
    out
}

/// The command tree as `--help` shows it (built: with the generated --help and --version).
fn built() -> clap::Command {
    let mut c = Cli::command();
    c.build();
    c
}

/// The global long flags (accepted by every command).
fn globals() -> BTreeSet<String> {
    built().get_arguments().filter_map(|a| a.get_long()).map(|l| format!("--{l}")).collect()
}

/// The page split at `## ` / `### ` headings: (heading, body).
fn sections(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![(String::new(), String::new())];
    for line in text.lines() {
        if line.starts_with("## ") || line.starts_with("### ") {
            out.push((line.to_string(), String::new()));
        } else {
            let last = out.last_mut().unwrap();
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    out
}

/// The command a `### \`NAME ARG\`` heading documents: its leading lower-case words.
fn heading_command(heading: &str, known: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
    let inner = heading.trim_start_matches('#').trim().strip_prefix('`')?.split('`').next()?;
    let words: Vec<&str> = inner.split_whitespace().take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-')).collect();
    (1..=words.len()).rev().map(|n| words[..n].join(" ")).find(|c| known.contains_key(c))
}

/// The `--flags` inside backtick spans, each with the span it came from.
fn flags_in(text: &str) -> Vec<(String, String)> {
    let re = regex::Regex::new(r"--[a-z][a-z0-9-]*").unwrap();
    let mut out = Vec::new();
    for (i, span) in text.split('`').enumerate() {
        if i % 2 == 1 {
            for m in re.find_iter(span) {
                out.push((m.as_str().to_string(), span.to_string()));
            }
        }
    }
    out
}

#[test]
fn every_command_and_flag_clap_knows_is_in_the_reference() {
    let text = reference();
    let known = commands();
    let secs = sections(&text);
    let mut missing = Vec::new();
    for (cmd, own) in &known {
        let Some((_, body)) = secs.iter().find(|(h, _)| h.starts_with("### ") && heading_command(h, &known).as_deref() == Some(cmd))
        else {
            missing.push(format!("no `### \\`{cmd} ...\\`` section"));
            continue;
        };
        for f in own {
            if !flags_in(body).iter().any(|(g, _)| g == f) {
                missing.push(format!("`{cmd}`: {f} is not in its section"));
            }
        }
    }
    let global_part: String =
        secs.iter().skip_while(|(h, _)| h != "## Global flags").take_while(|(h, _)| h != "## Commands").map(|(_, b)| b.as_str()).collect();
    for f in globals() {
        if !flags_in(&global_part).iter().any(|(g, _)| *g == f) {
            missing.push(format!("global {f} is not under \"## Global flags\""));
        }
    }
    assert!(missing.is_empty(), "docs/reference.md lags behind --help:\n  {}", missing.join("\n  "));
}

#[test]
fn every_flag_the_reference_names_exists_where_it_is_named() {
    let text = reference();
    let known = commands();
    let globals = globals();
    let any: BTreeSet<String> = known.values().flatten().cloned().chain(globals.iter().cloned()).collect();
    let mut wrong = Vec::new();
    for (heading, body) in sections(&text) {
        let section_cmd = if heading.starts_with("### ") { heading_command(&heading, &known) } else { None };
        for (flag, span) in flags_in(&body) {
            // A span that starts with a command (`apply --plan FILE`) names that command's flag;
            // `codex --profile` is codex's own flag, written as such.
            let first = span.split_whitespace().next().unwrap_or("");
            if first == "codex" {
                continue;
            }
            let cmd = known.keys().filter(|c| span.starts_with(c.as_str())).max_by_key(|c| c.len()).cloned().or(section_cmd.clone());
            let ok = match &cmd {
                Some(c) => known[c].contains(&flag) || globals.contains(&flag),
                None => any.contains(&flag),
            };
            if !ok {
                wrong.push(format!("{heading}: `{span}`: {flag} is not a flag of {}", cmd.as_deref().unwrap_or("any command")));
            }
        }
    }
    assert!(wrong.is_empty(), "docs/reference.md names flags that do not exist:\n  {}", wrong.join("\n  "));
}

#[test]
fn the_findings_table_is_the_diagnosis_codes() {
    let text = reference();
    let (_, body) = sections(&text).into_iter().find(|(h, _)| h == "## Findings and verdicts").expect("## Findings and verdicts");
    let table: BTreeSet<String> = body
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    let codes: BTreeSet<String> = Code::ALL.iter().map(|c| c.as_str().to_string()).collect();
    assert_eq!(table, codes, "the findings table of docs/reference.md and diagnose::Code::ALL differ");
    for v in ["unknown", "stalled", "at-risk", "healthy"] {
        assert!(body.contains(&format!("`{v}`")), "verdict {v} is not described");
    }
}

/// Relative markdown link targets of a file.
fn links(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let re = regex::Regex::new(r"\]\(([^)#\s]+)(#[^)]*)?\)").unwrap();
    re.captures_iter(&text).map(|c| c[1].to_string()).filter(|l| !l.contains("://")).collect()
}

#[test]
fn the_readme_links_the_reference_and_nothing_links_outside_the_repository() {
    let root = repo();
    let readme = root.join("README.md");
    assert!(links(&readme).iter().any(|l| l == "docs/reference.md"), "README.md does not link docs/reference.md");
    let readme_text = std::fs::read_to_string(&readme).unwrap();
    assert!(!readme_text.contains("../"), "README.md points outside the repository");
    let mut docs: Vec<PathBuf> = vec![readme];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            docs.push(p);
        }
    }
    let root_canon = root.canonicalize().unwrap();
    for d in docs {
        for l in links(&d) {
            let target = d.parent().unwrap().join(&l);
            let canon = target.canonicalize().unwrap_or_else(|e| panic!("{}: link `{l}` leads nowhere: {e}", d.display()));
            assert!(canon.starts_with(&root_canon), "{}: link `{l}` leaves the repository", d.display());
        }
    }
}
