//! CPU-heavy work of a scan (unpacking answers, putting probe outputs together, diagnosing) on
//! the blocking pool, at most one task fewer than the machine has cores at a time.
//!
//! Why: a big scan's answers come in faster than two cores read them, and with every answer
//! on a thread of its own the runtime's threads (the next listing page, the next poll) got a
//! small share of the cores: a listing of 15 pages, each asked for when the one before came
//! back, took 0.4 s instead of 0.1 s, and the last page is what the operator waits for
//! (measured on the 2-core machine, docs/benchmarks.md). One core stays for the calls.

use std::sync::LazyLock;

use tokio::sync::Semaphore;

static SLOTS: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    Semaphore::new(cores.saturating_sub(1).max(1))
});

/// Run `f` on the blocking pool once a slot is free. A panic in `f` is resumed here.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let _slot = SLOTS.acquire().await.expect("the CPU slots are never closed");
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
