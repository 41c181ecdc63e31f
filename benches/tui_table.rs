//! Drawing the agents table with 10,000 agents on a 200x50 buffer (target: median ≤ 2 ms a
//! frame). Only the visible window of rows is built, so the cost does not grow with the fleet.

use std::hint::black_box;
use std::time::Duration;

use codex_fleet::tui::fixtures::large_fleet;
use codex_fleet::tui::{draw, Action, App, AppOptions};
use criterion::{criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn bench(c: &mut Criterion) {
    let report = large_fleet(1250, 8);
    assert_eq!(report.agents().count(), 10_000);
    let mut app = App::with_report(AppOptions { size: (200, 50), source: "bench".into(), ..Default::default() }, report);
    let mut term = Terminal::new(TestBackend::new(200, 50)).unwrap();

    // Each frame moves the selection, so every frame really re-renders the window.
    c.bench_function("agents_table_10k_200x50", |b| {
        let mut down = true;
        b.iter(|| {
            app.dispatch(Action::Move(if down { 1 } else { -1 }));
            down = !down;
            term.draw(|f| draw(f, black_box(&app))).unwrap();
        })
    });

    // The same frames in CPU time of this thread: what a frame costs, whatever else the machine
    // is doing (CI and shared machines run several builds at once).
    c.bench_function("agents_table_10k_200x50_cpu_time", |b| {
        let mut down = true;
        b.iter_custom(|iters| {
            let t0 = thread_cpu();
            for _ in 0..iters {
                app.dispatch(Action::Move(if down { 1 } else { -1 }));
                down = !down;
                term.draw(|f| draw(f, black_box(&app))).unwrap();
            }
            thread_cpu() - t0
        })
    });

    // Mid-table, scrolling by a page per frame (a new window of rows every frame).
    app.dispatch(Action::Top);
    c.bench_function("agents_table_10k_200x50_page_scroll", |b| {
        b.iter(|| {
            if app.sel + app.page() >= app.rows.len() {
                app.dispatch(Action::Top);
            }
            app.dispatch(Action::PageDown);
            term.draw(|f| draw(f, black_box(&app))).unwrap();
        })
    });

    // Re-filtering 10,000 rows (one keystroke in `/`).
    c.bench_function("filter_10k_rows", |b| {
        let mut flip = false;
        b.iter(|| {
            flip = !flip;
            app.dispatch(Action::Command(format!("filter {}", if flip { "stalled" } else { "at-risk" })));
        })
    });
}

/// CPU time consumed by the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is always supported on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

criterion_group!(benches, bench);
criterion_main!(benches);
