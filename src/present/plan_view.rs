//! The plan as a human reviews it: agents grouped by identical change, each group led by what
//! the change means (the effective sandbox mode and approval policy before → after), the
//! ~290-line managed block folded to one line with its version and sha256.
//!
//! Pure (no IO): the CLI's `plan` and interactive `apply` confirmation and the console's Plan
//! view all render from [`group_plan`]; `--full` (CLI) and Enter (console) show every line.
//! Grouping compares the diffs with their `<redacted:N>` placeholders renumbered, so two agents
//! whose files differ only in which secret sits where still group together — the secrets
//! themselves never reach this module.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::codex::argv::CliOverrides;
use crate::codex::config::{effective, parse};
use crate::codex::redact::canonical_placeholders;
use crate::plan::{AgentPlan, Plan};
use crate::term_safe;

/// The effective sandbox mode and approval policy, each with the layer it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eff {
    pub mode: String,
    pub mode_source: String,
    pub policy: String,
    pub policy_source: String,
}

impl Eff {
    fn of(e: &crate::codex::config::Effective) -> Eff {
        Eff {
            mode: e.sandbox_mode.value.clone(),
            mode_source: e.sandbox_mode.source.as_str().into(),
            policy: e.approval_policy.value.clone(),
            policy_source: e.approval_policy.source.as_str().into(),
        }
    }
    /// `sandbox_mode workspace-write (config), approval_policy on-request (default)`.
    pub fn long(&self) -> String {
        format!("sandbox_mode {} ({}), approval_policy {} ({})", self.mode, self.mode_source, self.policy, self.policy_source)
    }
    /// `workspace-write / on-request`.
    pub fn short(&self) -> String {
        format!("{} / {}", self.mode, self.policy)
    }
}

/// What the console or CLI knows about one planned agent beyond the plan itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentContext {
    /// The effective values now.
    pub before: Option<Eff>,
    /// Why there are none (codex cannot read its config), when so.
    pub before_why: Option<String>,
    /// `codex --version` as the probe read it.
    pub codex_version: Option<String>,
}

/// Each planned agent's context from the scan it was planned from.
pub fn contexts(report: &crate::scan::FleetReport) -> BTreeMap<String, AgentContext> {
    report
        .agents()
        .map(|a| {
            let before = a.diagnosis.effective.as_ref().map(Eff::of);
            let before_why = a
                .diagnosis
                .has(crate::diagnose::Code::ConfigInvalid)
                .then(|| "config.toml invalid (codex does not start)".to_string());
            let codex_version = a.read.probe.as_ref().ok().and_then(|p| p.codex_version.clone());
            (a.id(), AgentContext { before, before_why, codex_version })
        })
        .collect()
}

/// A context lookup over [`contexts`] for [`group_plan`] / [`grouped_lines`].
pub fn lookup(map: &BTreeMap<String, AgentContext>) -> impl Fn(&AgentPlan) -> AgentContext + '_ {
    move |a| map.get(&a.agent.id()).cloned().unwrap_or_default()
}

/// One identical change and the agents it is planned for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanGroup {
    /// Agent ids, in plan order.
    pub ids: Vec<String>,
    /// Codex versions among the group's agents, with counts.
    pub versions: BTreeMap<String, usize>,
    /// `before → after` of the effective sandbox mode and approval policy, with their layers.
    pub meaning: String,
    /// The same, values only (`workspace-write / on-request → danger-full-access / never`).
    pub meaning_short: String,
    pub restart: bool,
    pub notes: Vec<String>,
    /// (path, written by apply, unified diff) of the group's first agent.
    pub files: Vec<(String, bool, String)>,
}

/// The effective values a config text gives on its own (the planned agents have no layer
/// above their config: those that do are attention, never planned).
fn effective_of(text: &str) -> Option<Eff> {
    let doc = parse(text).ok()?;
    Some(Eff::of(&effective(&doc, &CliOverrides::default(), None)))
}

fn after_of(a: &AgentPlan) -> Option<Eff> {
    let cfg = a
        .files
        .iter()
        .find(|f| a.config_path.as_deref() == Some(f.path.as_str()))
        .or_else(|| a.files.iter().find(|f| f.path.ends_with("/config.toml")))?;
    effective_of(&cfg.after_redacted)
}

/// Group the plan's agents by identical change (same files, same diffs up to placeholder
/// numbering, same restart and notes, same meaning), largest group first, then plan order.
pub fn group_plan(plan: &Plan, ctx: &dyn Fn(&AgentPlan) -> AgentContext) -> Vec<PlanGroup> {
    let mut groups: Vec<(String, PlanGroup)> = Vec::new();
    for a in &plan.agents {
        let c = ctx(a);
        let unknown = c.before_why.clone().unwrap_or_else(|| "unknown".into());
        let (before_long, before_short) = match &c.before {
            Some(e) => (e.long(), e.short()),
            None => (unknown.clone(), unknown),
        };
        let (meaning, meaning_short) = match after_of(a) {
            Some(e) => (format!("{before_long} → {}", e.long()), format!("{before_short} → {}", e.short())),
            // Only the boot emitter changes: the config stays as it is, and stays so at restarts.
            None => (
                format!("{before_long}, unchanged: only the boot emitter changes (it stops rewriting config.toml at each start)"),
                format!("{before_short}, unchanged (boot emitter only)"),
            ),
        };
        let mut key = format!("{meaning}\n{}\n{}\n", a.restart, a.notes.join("\n"));
        for f in &a.files {
            key.push_str(&format!("{}\n{}\n{}\n", f.path, f.write, canonical_placeholders(&f.diff)));
        }
        let pos = match groups.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                groups.push((
                    key,
                    PlanGroup {
                        ids: Vec::new(),
                        versions: BTreeMap::new(),
                        meaning,
                        meaning_short,
                        restart: a.restart,
                        notes: a.notes.clone(),
                        files: a.files.iter().map(|f| (f.path.clone(), f.write, f.diff.clone())).collect(),
                    },
                ));
                groups.len() - 1
            }
        };
        let g = &mut groups[pos].1;
        g.ids.push(a.agent.id());
        *g.versions.entry(c.codex_version.unwrap_or_else(|| "version unknown".into())).or_default() += 1;
    }
    let mut out: Vec<PlanGroup> = groups.into_iter().map(|(_, g)| g).collect();
    out.sort_by_key(|g| std::cmp::Reverse(g.ids.len())); // stable: plan order among equals
    out
}

const BLOCK_START: &str = ">>> codex-fleet managed block";
const BLOCK_END: &str = "<<< codex-fleet managed block";

/// A diff's lines with every managed block folded to one line naming its version, its length
/// and the sha256 of its text (unless `full`).
pub fn fold_managed_block(diff: &str, full: bool) -> Vec<String> {
    let lines: Vec<&str> = diff.lines().collect();
    if full {
        return lines.iter().map(|l| l.to_string()).collect();
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.contains(BLOCK_START) {
            if let Some(len) = lines[i..].iter().position(|x| x.contains(BLOCK_END)) {
                let block = &lines[i..=i + len];
                let prefix = l.chars().next().filter(|c| matches!(c, '+' | '-' | ' ')).unwrap_or(' ');
                let text: Vec<&str> = block.iter().map(|x| x.get(1..).unwrap_or("")).collect();
                let sha = hex::encode(Sha256::digest(text.join("\n").as_bytes()));
                let version = l
                    .split(BLOCK_START)
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .unwrap_or("?")
                    .to_string();
                out.push(format!(
                    "{prefix}# [codex-fleet managed block {version}: {} lines, sha256 {}… folded; --full or Enter shows them]",
                    block.len(),
                    &sha[..12]
                ));
                i += len + 1;
                continue;
            }
        }
        out.push(l.to_string());
        i += 1;
    }
    out
}

/// Agent ids as one line, or the first `max` and a count.
fn id_list(ids: &[String], max: usize) -> String {
    let shown: Vec<String> = ids.iter().take(max).map(|i| term_safe::line(i).into_owned()).collect();
    if ids.len() > max {
        format!("{} … and {} more", shown.join(", "), ids.len() - max)
    } else {
        shown.join(", ")
    }
}

/// The grouped plan as text lines: a header per group (`== same change on N agent(s)`), its
/// meaning, agents, versions and notes, then its diffs (folded unless `full`); the attention
/// list; the totals. Host-supplied text is made terminal-safe.
pub fn grouped_lines(plan: &Plan, ctx: &dyn Fn(&AgentPlan) -> AgentContext, full: bool) -> Vec<String> {
    let mut out = Vec::new();
    let groups = group_plan(plan, ctx);
    for (gi, g) in groups.iter().enumerate() {
        out.push(format!(
            "== group {}/{}: same change on {} agent(s) (restart: {})",
            gi + 1,
            groups.len(),
            g.ids.len(),
            if g.restart { "yes" } else { "no" }
        ));
        out.push(format!("   means: {}", term_safe::line(&g.meaning)));
        out.push(format!("   agents: {}", id_list(&g.ids, if full { usize::MAX } else { 8 })));
        let versions: Vec<String> = g.versions.iter().map(|(v, n)| format!("{} ×{n}", term_safe::line(v))).collect();
        out.push(format!("   codex: {}", versions.join(", ")));
        for n in &g.notes {
            out.push(format!("   note: {}", term_safe::line(n)));
        }
        for (path, write, diff) in &g.files {
            if !write {
                out.push(format!("   {} is regenerated by the emitter at restart; expected result:", term_safe::line(path)));
            }
            out.extend(fold_managed_block(diff, full).iter().map(|l| term_safe::line(l).into_owned()));
        }
    }
    if !plan.attention.is_empty() {
        out.push(String::new());
        out.push("needs attention (not planned):".into());
        for a in &plan.attention {
            out.push(format!("  {}: {}", term_safe::line(&a.agent.id()), term_safe::line(&a.reason)));
        }
    }
    out.push(String::new());
    out.push(format!(
        "{} agent(s) to change in {} group(s), {} needing attention",
        plan.agents.len(),
        groups.len(),
        plan.attention.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_the_managed_block_to_one_line() {
        let diff = "--- a\n+++ b\n@@ -1 +1,4 @@\n+# >>> codex-fleet managed block v1 (core#2128) >>>\n+x\n+# <<< codex-fleet managed block v1 (core#2128) <<<\n exit 0\n";
        let f = fold_managed_block(diff, false);
        assert_eq!(f.len(), 5, "{f:?}");
        assert!(f[3].starts_with("+# [codex-fleet managed block v1: 3 lines, sha256 "), "{f:?}");
        assert_eq!(f[4], " exit 0");
        assert_eq!(fold_managed_block(diff, true).len(), 7);
        // An unterminated block is not folded (nothing hidden that is not the whole block).
        let cut = "+# >>> codex-fleet managed block v1 >>>\n+x\n";
        assert_eq!(fold_managed_block(cut, false).len(), 2);
    }

    #[test]
    fn meaning_of_a_config_text() {
        let m = effective_of("sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n").unwrap();
        assert_eq!(m.long(), "sandbox_mode danger-full-access (config), approval_policy never (config)");
        assert_eq!(m.short(), "danger-full-access / never");
    }
}
