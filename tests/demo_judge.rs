//! The demo judged by the real codex: `scripts/test.sh` sets `CODEX_FLEET_DEMO_CODEX` to the
//! cached real binaries, so every demo test (cli_demo, demo_e2e, rollout_faults, ...) runs with
//! the simulated agents' `codex debug prompt-input` answered by the real codex of each agent's
//! version. Here: the demo says so in its description line, and the product's built-in model of
//! codex agrees with the real codex on every demo agent, before and after the fix.

mod common;

use codex_fleet::codex::argv::CliOverrides;
use codex_fleet::sim::{demo, judge, world};

fn real_judge() -> Option<judge::Judge> {
    let mut j = judge::Judge::default();
    for v in ["0.133.0", "0.163.0"] {
        j.by_version.insert(v.into(), common::codex_bin(v)?);
    }
    Some(j)
}

#[test]
fn the_built_in_model_agrees_with_the_real_codex_on_every_demo_agent() {
    let Some(j) = real_judge() else { return };
    let st = demo::default_fleet();
    let mut checked = 0;
    let mut disagree = Vec::new();
    for a in st.agents.values().flatten() {
        if a.probe_broken.is_some() {
            continue;
        }
        let codex = j.codex_for(&a.codex_version).unwrap_or_else(|| panic!("no codex {}", a.codex_version));
        let mut fixed = a.clone();
        fixed.config = a.config.as_deref().and_then(|c| codex_fleet::codex::fix::fixed_text(c).ok());
        for (what, a) in [("as found", a), ("fixed", &fixed)] {
            let real = judge::answer(codex, a).unwrap_or_else(|e| panic!("{}: {e}", a.name));
            // prompt-input runs without the command line (as the probe runs it)
            let model = world::builtin_answer(a, &CliOverrides::default());
            let view = |x: &(codex_fleet::probe::Step, Option<codex_fleet::probe::CodexEffective>)| {
                (x.0.outcome, x.1.as_ref().map(|e| (e.sandbox_mode.clone(), e.approval_policy.clone())))
            };
            if view(&real) != view(&model) {
                disagree.push(format!("{} {what} (codex {}): real {:?} / model {:?}", a.name, a.codex_version, real, model));
            }
            checked += 1;
        }
    }
    assert!(checked >= 80, "{checked}");
    assert!(disagree.is_empty(), "the built-in model and the real codex disagree:\n{}", disagree.join("\n"));
}

/// Under `scripts/test.sh` the demo is judged by the real codex and its description line says
/// which; the value's forms are parsed as documented.
#[test]
fn the_demo_says_who_judges_it() {
    if std::env::var_os(judge::ENV).is_none() {
        common::require_or_skip::<()>(&format!("{} (scripts/test.sh sets it)", judge::ENV));
        return;
    }
    let d = judge::description();
    assert!(d.starts_with("judged by the real codex 0.133.0, codex 0.163.0"), "{d}");
    let Some(j) = real_judge() else { return };
    let p133 = j.by_version["0.133.0"].display().to_string();
    let one = judge::Judge::parse(&p133).unwrap();
    assert_eq!(one.codex_for("0.999.0").map(|p| p.display().to_string()), Some(p133.clone()));
    let per = judge::Judge::parse(&format!("0.133.0={p133}")).unwrap();
    assert!(per.codex_for("0.163.0").is_none(), "an unlisted version is judged by the built-in model");
    assert!(judge::Judge::parse("0.133.0=/nonexistent/codex").unwrap_err().contains("/nonexistent/codex"));
}
