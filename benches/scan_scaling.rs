//! Scan scaling on the demo fleet (the real AWS backend over the simulated AWS): wall time,
//! AWS API calls and memory per fleet size, at a given simulated SSM latency.
//!
//!   cargo bench --bench scan_scaling -- [LATENCY_MS] [SCALES...]
//!   e.g. cargo bench --bench scan_scaling -- 1500 1x8 10x8 100x8 1000x8
//!
//! Each scale runs in a process of its own (peak RSS is per process). The simulated AWS runs
//! in that process too; a counting allocator tells its memory from the console's own: every
//! allocation is tagged with whose code made it (`codex_fleet::sim::in_sim`: the simulator's
//! HTTP handler, its hosts and its fleet), a free is counted against the tag it was made with,
//! and the peak of each side's live heap is reported.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use codex_fleet::sim::{demo_fleet_with_sim, parse_scale, DemoOptions};

/// Live and peak heap bytes: [console, simulator].
static LIVE: [AtomicIsize; 2] = [AtomicIsize::new(0), AtomicIsize::new(0)];
static PEAK: [AtomicIsize; 2] = [AtomicIsize::new(0), AtomicIsize::new(0)];
/// Header before each block: whose it is (the block's own alignment, at least this).
const HEADER: usize = 16;

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let a = l.align().max(HEADER);
        let base = System.alloc(Layout::from_size_align_unchecked(l.size() + a, a));
        if base.is_null() {
            return base;
        }
        let who = usize::from(codex_fleet::sim::in_sim());
        let p = base.add(a);
        (p.sub(HEADER) as *mut usize).write(who);
        let live = LIVE[who].fetch_add(l.size() as isize, Ordering::Relaxed) + l.size() as isize;
        PEAK[who].fetch_max(live, Ordering::Relaxed);
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let a = l.align().max(HEADER);
        let who = (p.sub(HEADER) as *const usize).read();
        LIVE[who & 1].fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p.sub(a), Layout::from_size_align_unchecked(l.size() + a, a));
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn mb(b: isize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

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
        let before = LIVE[0].load(Ordering::Relaxed);
        let t = Instant::now();
        let report = codex_fleet::scan::scan(&fleet, |_| {}).await.unwrap();
        let wall = t.elapsed();
        let s = report.summary();
        let calls = sim.stats.snapshot();
        println!(
            "| {scale} | {latency} | {} | {} | {:.2} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            s.hosts,
            s.agents,
            wall.as_secs_f64(),
            sim.stats.total(),
            calls.get("SendCommand").copied().unwrap_or(0),
            calls.get("GetCommandInvocation").copied().unwrap_or(0),
            peak_rss_mb(),
            mb(PEAK[0].load(Ordering::Relaxed)),
            mb(LIVE[0].load(Ordering::Relaxed) - before),
            mb(PEAK[1].load(Ordering::Relaxed)),
        );
        drop(report);
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
    println!("| scale | latency ms | hosts | agents | scan s | API calls | SendCommand | GetCommandInvocation | peak RSS MB | console heap peak MB | console heap kept MB | simulator heap peak MB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let me = std::env::current_exe().unwrap();
    for s in scales {
        let st = std::process::Command::new(&me).args(["one", &latency, &s]).status().unwrap();
        assert!(st.success());
    }
}
