//! Scan scaling on the demo fleet (the real AWS backend over the simulated AWS): wall time,
//! AWS API calls and peak memory per fleet size, at a given simulated SSM latency.
//!
//!   cargo bench --bench scan_scaling -- [LATENCY_MS] [SCALES...]
//!   e.g. cargo bench --bench scan_scaling -- 1500 1x8 10x8 100x8 1000x8
//!
//! Each scale runs in a process of its own (peak RSS is per process).

use std::time::{Duration, Instant};

use codex_fleet::sim::{demo_fleet_with_sim, parse_scale, DemoOptions};

fn peak_rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map(|k| k / 1024.0)
        .unwrap_or(0.0)
}

fn one(latency: u64, scale: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (h, a) = parse_scale(scale).unwrap();
        let opts = DemoOptions { scale: Some((h, a)), latency: Duration::from_millis(latency), ..Default::default() };
        let (fleet, sim) = demo_fleet_with_sim(opts).await.unwrap();
        let t = Instant::now();
        let report = codex_fleet::scan::scan(&fleet, |_| {}).await.unwrap();
        let wall = t.elapsed();
        let s = report.summary();
        let calls = sim.stats.snapshot();
        println!(
            "| {scale} | {latency} | {} | {} | {:.2} | {} | {} | {} | {:.0} |",
            s.hosts,
            s.agents,
            wall.as_secs_f64(),
            sim.stats.total(),
            calls.get("SendCommand").copied().unwrap_or(0),
            calls.get("GetCommandInvocation").copied().unwrap_or(0),
            peak_rss_mb()
        );
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if let [flag, latency, scale] = args.as_slice() {
        if flag == "one" {
            one(latency.parse().unwrap(), scale);
            return;
        }
    }
    let latency = args.first().cloned().unwrap_or_else(|| "1500".into());
    let scales: Vec<String> = if args.len() > 1 { args[1..].to_vec() } else { ["1x8", "10x8", "100x8", "1000x8"].map(String::from).to_vec() };
    println!("| scale | latency ms | hosts | agents | scan s | API calls | SendCommand | GetCommandInvocation | peak RSS MB |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let me = std::env::current_exe().unwrap();
    for s in scales {
        let st = std::process::Command::new(&me).args(["one", &latency, &s]).status().unwrap();
        assert!(st.success());
    }
}
