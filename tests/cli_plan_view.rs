//! The plan as a human reviews it, through the binary on the demo: agents grouped by identical
//! change, each group led by what it means, the managed block folded (`--full` shows every
//! line); the same grouping in the interactive `apply` confirmation.

use std::process::{Command, Output, Stdio};

fn demo(dir: &std::path::Path, scale: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_codex-fleet"))
        .args(["--demo", "--demo-latency", "10", "--demo-scale", scale, "--demo-state"])
        .arg(dir.join("demo-state.json"))
        .args(args)
        .env("CODEX_FLEET_STATE_DIR", dir.join("state"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run codex-fleet")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn identical_changes_are_grouped_and_the_managed_block_folded() {
    let dir = tempfile::tempdir().unwrap();
    // Twenty hosts of the same archetypes: the commonest kind of change is planned on >= 10
    // agents.
    let grouped = demo(dir.path(), "20x8", &["plan"]);
    assert_eq!(grouped.status.code(), Some(1), "{}", String::from_utf8_lossy(&grouped.stderr));
    let g = text(&grouped);
    let full = text(&demo(dir.path(), "20x8", &["plan", "--full"]));

    let headers: Vec<&str> = g.lines().filter(|l| l.starts_with("== group ")).collect();
    assert!(!headers.is_empty(), "{g}");
    let sizes: Vec<usize> = headers
        .iter()
        .map(|h| h.split("same change on ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap())
        .collect();
    let planned: usize = sizes.iter().sum();
    let total_line = g.lines().find(|l| l.contains("agent(s) to change in")).expect("totals line");
    assert!(total_line.starts_with(&format!("{planned} agent(s) to change in {} group(s)", headers.len())), "{total_line}");
    assert!(sizes[0] >= 10, "the largest group holds one archetype on every host: {sizes:?}");
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "largest group first: {sizes:?}");

    // Each group is led by its meaning: before -> after, with the layers.
    let means: Vec<&str> = g.lines().filter(|l| l.starts_with("   means: ")).collect();
    assert_eq!(means.len(), headers.len());
    for m in &means {
        assert!(
            m.ends_with("→ sandbox_mode danger-full-access (config), approval_policy never (config)") || m.contains("only the boot emitter changes"),
            "{m}"
        );
        assert!(!m.contains("unknown"), "the demo's agents all have a known before: {m}");
    }
    assert!(means.iter().any(|m| m.contains("workspace-write")), "{means:?}");
    assert!(means.iter().any(|m| m.starts_with("   means: config.toml invalid")), "the duplicate-prepend agents: {means:?}");

    // The managed block: one line per group when folded, whole with --full.
    assert!(!g.contains(">>> codex-fleet managed block"), "folded");
    assert!(g.contains("# [codex-fleet managed block v"), "{g}");
    assert!(full.contains(">>> codex-fleet managed block"), "--full shows the block");
    // A review of ten identical agents fits a screen or two, the full text does not.
    let per_group = g.lines().count() / headers.len();
    assert!(per_group < 60, "{per_group} lines per group");
    assert!(full.lines().count() > 5 * g.lines().count(), "grouped {} vs full {}", g.lines().count(), full.lines().count());
    // Every planned agent is named in the grouped text (8 shown per group, then a count).
    let named: usize = g
        .lines()
        .filter(|l| l.starts_with("   agents: "))
        .map(|l| {
            let shown = l.matches(", ").count() + 1;
            let more: usize = l.split("… and ").nth(1).map(|r| r.split(' ').next().unwrap().parse().unwrap()).unwrap_or(0);
            shown + more
        })
        .sum();
    assert_eq!(named, planned);
}

#[test]
fn the_audit_report_says_what_each_image_needs_and_names_every_host() {
    let dir = tempfile::tempdir().unwrap();
    let md = text(&demo(dir.path(), "8x6", &["report", "--format", "md"]));
    let json: serde_json::Value = serde_json::from_str(&text(&demo(dir.path(), "8x6", &["report", "--format", "json"]))).unwrap();
    let csv = text(&demo(dir.path(), "8x6", &["report", "--format", "csv"]));

    // Hosts by name and id; the unreachable one named with why.
    let hosts = json["fleet"]["hosts"].as_array().unwrap();
    let down: Vec<&serde_json::Value> = hosts.iter().filter(|h| h["reachable"] == false).collect();
    assert!(!down.is_empty(), "the demo has an unreachable host");
    for h in &down {
        let (name, id) = (h["name"].as_str().unwrap(), h["id"].as_str().unwrap());
        assert!(md.contains(&format!("- host {name} ({id}): ")), "md names {name} ({id}) as not reached:\n{md}");
        assert!(json["unreachable_hosts"].as_array().unwrap().iter().any(|u| u["id"] == id));
    }
    // Per image: agents, findings, files (path + sha256), what the build needs.
    let audit = json["audit"].as_array().unwrap();
    assert!(!audit.is_empty());
    for img in audit {
        let image = img["image"].as_str().unwrap();
        assert!(md.contains(&format!("### Image `{image}`: ")), "{md}");
        assert!(!img["needs"].as_array().unwrap().is_empty(), "{img}");
        for a in img["agents"].as_array().unwrap() {
            assert!(a["host_name"].as_str().unwrap().starts_with("ws-"), "{a}");
            assert!(a["host_id"].as_str().unwrap().starts_with("i-"), "{a}");
        }
    }
    let files: Vec<&serde_json::Value> =
        audit.iter().flat_map(|i| i["agents"].as_array().unwrap()).flat_map(|a| a["files"].as_array().unwrap()).collect();
    assert!(files.iter().any(|f| f["path"] == "/usr/local/bin/codex_mcp_config.sh" && f["sha256"].is_string()), "{files:?}");
    assert!(md.contains("**The image needs:**"), "{md}");
    // csv: an image column, host name and id, one row per agent of the reached hosts.
    let mut rows = csv.lines();
    assert_eq!(rows.next().unwrap(), "host_name,host_id,agent,image,verdict,sandbox_mode,sandbox_mode_source,approval_policy,findings");
    let agents: usize = hosts.iter().map(|h| h["agents"].as_array().map(|a| a.len()).unwrap_or(0)).sum();
    let body: Vec<&str> = rows.collect();
    assert_eq!(body.len(), agents);
    assert!(body.iter().all(|r| r.starts_with("ws-") && r.split(',').nth(1).unwrap().starts_with("i-")), "{csv}");
}
