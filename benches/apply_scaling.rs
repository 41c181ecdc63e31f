//! Rollout throughput on the demo fleet (the real AWS backend over the simulated AWS): one whole
//! `apply` (canary 1, then waves) of every planned agent, against the floor that the command
//! latency and SSM's quotas impose (docs/benchmarks.md, "Apply throughput"): wall time, AWS API
//! calls by kind, and the outcomes.
//!
//!   cargo bench --bench apply_scaling -- [LATENCY_MS] [WAVE] [SCALES...]
//!   e.g. cargo bench --bench apply_scaling -- 1500 25% 10x8 100x8 1000x8
//!
//! Each scale runs in a process of its own. The scan and plan before the apply are not timed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use codex_fleet::sim::{demo_fleet_with_sim, parse_scale, DemoOptions};
use codex_fleet::fleet::Fleet;
use codex_fleet::rollout::engine::{self, EngineConfig, Size};
use codex_fleet::rollout::journal::{Journal, RunOptions};

/// What one host adds to a command on top of the latency (the simulated host's own time,
/// `src/sim/world.rs`): `docker restart` 150 ms, a stable container's `wait` 100 ms.
const RESTART_EXTRA: f64 = 0.150;
const WAIT_EXTRA: f64 = 0.100;

fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = s.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0 // utime, stime (fields 14, 15; clock ticks of 10 ms)
}

fn one(latency: u64, wave: &str, scale: &str) {
    let state = tempfile::tempdir().unwrap();
    std::env::set_var("CODEX_FLEET_STATE_DIR", state.path());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (h, a) = parse_scale(scale).unwrap();
        let base = Duration::from_millis(latency);
        let opts = DemoOptions { scale: Some((h, a)), latency: base, ..Default::default() };
        let (fleet, sim) = demo_fleet_with_sim(opts).await.unwrap();
        let report = codex_fleet::scan::scan(&fleet, |_| {}).await.unwrap();
        let plan = codex_fleet::plan::plan(&report, &[], &fleet.describe(), "2026-12-01T00:00:00Z");
        let cfg = EngineConfig {
            canary: 1,
            wave: Size::parse(wave).unwrap(),
            max_errors: Size::Percent(100),
            stable_timeout: Duration::from_secs(120),
            holder: "bench@apply".into(),
        };
        // The floor: per wave, the slowest host's chain of round trips (each step of an agent
        // waits for the answer to the one before it; a wave waits for its last agent).
        let ids: Vec<String> = plan.agents.iter().map(|a| a.agent.id()).collect();
        let waves = engine::waves(&ids, cfg.canary, cfg.wave);
        let by_id: BTreeMap<String, &codex_fleet::plan::AgentPlan> = plan.agents.iter().map(|a| (a.agent.id(), a)).collect();
        let mut floor_latency = 0.0;
        let mut min_sends = 0usize;
        let mut steps_total = 0usize;
        for w in &waves {
            let mut worst: f64 = 0.0;
            let mut hosts = std::collections::BTreeSet::new();
            let mut max_steps = 0;
            for id in w {
                let ap = by_id[id];
                // lock, check, backup (config.toml), the writes, restart, wait, verify, unlock
                let writes = ap.files.iter().filter(|f| f.write).count();
                let steps = 2 + usize::from(ap.config_file().is_some()) + writes + usize::from(ap.restart) + 3;
                let lat = sim.world.latency_for(&ap.agent.host, base).as_secs_f64();
                let extra = if ap.restart { RESTART_EXTRA } else { 0.0 } + WAIT_EXTRA;
                worst = worst.max(steps as f64 * lat + extra);
                hosts.insert(ap.agent.host.clone());
                max_steps = max_steps.max(steps);
            }
            floor_latency += worst;
            min_sends += max_steps * hosts.len().div_ceil(50);
            steps_total += max_steps;
        }
        // SendCommand: 10 a second after a burst of 20.
        let floor_quota = (min_sends.saturating_sub(20)) as f64 / 10.0;
        let floor = floor_latency.max(floor_quota);

        let run_id = Journal::new_run_id();
        let ropts = RunOptions { canary: cfg.canary, wave: wave.to_string(), max_errors: "100%".into() };
        let j = engine::start(&plan, &ropts, &run_id).unwrap();
        let (_tx, stop) = tokio::sync::watch::channel(false);
        let before = sim.stats.snapshot();
        let throttled0 = sim.stats.throttled.load(std::sync::atomic::Ordering::Relaxed);
        let cpu0 = cpu_seconds();
        let t = Instant::now();
        let why: std::sync::Mutex<BTreeMap<String, usize>> = Default::default();
        let on_event = |e: engine::Event| {
            if let engine::Event::Agent { outcome, .. } = e {
                let w = format!("{outcome:?}");
                if !w.starts_with("Verified") {
                    *why.lock().unwrap().entry(w.chars().take(300).collect()).or_default() += 1;
                }
            }
        };
        let res = engine::execute(&fleet, j, &cfg, stop, &on_event).await.unwrap();
        for (w, n) in why.lock().unwrap().iter().take(5) {
            eprintln!("{scale}: {n} x {w}");
        }
        let wall = t.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        let after = sim.stats.snapshot();
        let d = |k: &str| after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0);
        let total: u64 = after.keys().map(|k| d(k)).sum();
        let throttled = sim.stats.throttled.load(std::sync::atomic::Ordering::Relaxed) - throttled0;
        println!(
            "| {scale} | {latency} | {wave} | {} | {} | {} | {:.1} | {:.1} | {:.2} | {total} | {} | {} | {} | {throttled} | {:.0} | {}/{}/{}/{} |",
            h,
            plan.agents.len(),
            waves.len(),
            wall,
            floor,
            wall / floor,
            d("SendCommand"),
            d("ListCommandInvocations") + d("ListCommands"),
            d("GetCommandInvocation"),
            cpu,
            res.verified,
            res.failed,
            res.skipped,
            res.unknown,
        );
        eprintln!(
            "{scale}: floor {floor:.1} s = max(latency path {floor_latency:.1} s over {} waves and {steps_total} round trips, SendCommand quota {floor_quota:.1} s for {min_sends} commands)",
            waves.len()
        );
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if let [flag, latency, wave, scale] = args.as_slice() {
        if flag == "one" {
            one(latency.parse().unwrap(), wave, scale);
            return;
        }
    }
    let latency = args.first().cloned().unwrap_or_else(|| "1500".into());
    let wave = args.get(1).cloned().unwrap_or_else(|| "25%".into());
    let scales: Vec<String> = if args.len() > 2 { args[2..].to_vec() } else { ["10x8", "100x8", "1000x8"].map(String::from).to_vec() };
    println!("| scale | latency ms | wave | hosts | planned agents | waves | apply s | floor s | ratio | API calls | SendCommand | List* | GetCommandInvocation | throttled | CPU s | verified/failed/skipped/unknown |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let me = std::env::current_exe().unwrap();
    for s in scales {
        let st = std::process::Command::new(&me).args(["one", &latency, &wave, &s]).status().unwrap();
        assert!(st.success());
    }
}
