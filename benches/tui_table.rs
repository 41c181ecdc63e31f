//! Drawing the agents table with 10,000 agents on a 200x50 buffer (target: median ≤ 2 ms a
//! frame). Only the visible window of rows is built, so the cost does not grow with the fleet.
//!
//! And the filter's keystrokes (`/`) at 10,000 and 100,000 agents (target: median ≤ 2 ms and
//! ≤ 20 ms a keystroke): typing words character by character, Backspace, a new word no kept
//! result covers (a pass over the index), against the filter from scratch (the code before the
//! index). Each keystroke is the whole `App::dispatch` (input edit, filter, selection kept).

use std::hint::black_box;
use std::time::{Duration, Instant};

use codex_fleet::tui::Edit;
use codex_fleet::tui::model::filter_index::from_scratch;
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

    // Re-filtering 10,000 rows from scratch (one keystroke in `/` before the filter index):
    // every agent matched against the filter, then the rows sorted.
    c.bench_function("filter_10k_rows", |b| {
        let mut flip = false;
        b.iter(|| {
            flip = !flip;
            black_box(from_scratch(&app.report, app.causes(), if flip { "stalled" } else { "at-risk" }, app.sort, app.sort_rev))
        })
    });

    keystrokes(c, "filter_keystroke_10k", &mut app, 100, false);
    drop(app);

    let report = large_fleet(12_500, 8);
    assert_eq!(report.agents().count(), 100_000);
    let mut app = App::with_report(AppOptions { size: (200, 50), source: "bench".into(), ..Default::default() }, report);
    keystrokes(c, "filter_keystroke_100k", &mut app, 20, true);
}

/// Words an operator types (a verdict, an agent, a root cause, a host, a container id, a
/// finding code): more keystrokes in all than the results the index keeps, so typing a word
/// again never finds its own earlier results.
const WORDS: [&str; 7] = ["stalled", "codex-0042", "bubblewrap", "ws-01", "rtm_newaddr", "at-risk", "uidmap"];

/// One keystroke's time, each: `dispatch` of the key, nothing else (resetting is not timed).
fn keystrokes(c: &mut Criterion, group: &str, app: &mut App, samples: usize, scratch: bool) {
    let mut g = c.benchmark_group(group);
    g.sample_size(samples);
    let chars: Vec<Vec<char>> = WORDS.iter().map(|w| w.chars().collect()).collect();
    let reset = |app: &mut App| {
        app.dispatch(Action::Command("filter".into()));
        app.dispatch(Action::StartFilter);
    };

    // Typing a word character by character into an empty `/` (the first character is a pass
    // over the index; each next one narrows the result before it).
    let (mut w, mut i) = (0, 0);
    g.bench_function("type", |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            for _ in 0..iters {
                if i == 0 {
                    reset(app);
                }
                let t0 = Instant::now();
                app.dispatch(Action::Edit(Edit::Insert(chars[w][i])));
                took += t0.elapsed();
                i += 1;
                if i == chars[w].len() {
                    (w, i) = ((w + 1) % chars.len(), 0);
                }
            }
            took
        })
    });

    // Backspace after typing a word, down to an empty filter (each one goes back to a filter
    // typed just before).
    let (mut w, mut left) = (0, 0);
    g.bench_function("backspace", |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            for _ in 0..iters {
                if left == 0 {
                    reset(app);
                    for ch in &chars[w] {
                        app.dispatch(Action::Edit(Edit::Insert(*ch)));
                    }
                    left = chars[w].len();
                    w = (w + 1) % chars.len();
                }
                let t0 = Instant::now();
                app.dispatch(Action::Edit(Edit::Backspace));
                took += t0.elapsed();
                left -= 1;
            }
            took
        })
    });

    // A filter no kept result covers (an edit in the middle, a paste, `:filter`): one pass over
    // the index. 97 host prefixes, none implying another.
    let mut n = 0;
    g.bench_function("new_word", |b| {
        b.iter(|| {
            n = (n + 1) % 97;
            app.dispatch(Action::Command(format!("filter ws-{n:02}")));
        })
    });

    if scratch {
        let mut flip = false;
        g.bench_function("from_scratch", |b| {
            b.iter(|| {
                flip = !flip;
                black_box(from_scratch(&app.report, app.causes(), if flip { "stalled" } else { "at-risk" }, app.sort, app.sort_rev))
            })
        });
    }
    g.finish();
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
