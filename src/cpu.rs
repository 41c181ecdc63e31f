//! CPU-heavy work of a scan (unpacking answers, putting probe outputs together, diagnosing) on
//! the blocking pool, at most as many tasks at a time as the machine has cores.
//!
//! Why: a big scan's answers come in faster than two cores read them, and with every answer
//! on a blocking thread of its own the runtime's threads (the next listing page, the next
//! poll) got a small share of the cores: a listing of 15 pages, each asked for when the one
//! before came back, took 0.4 s instead of 0.2 s, and its last page is what the operator
//! waits for. One task fewer than the cores was slower still (the answers then lagged behind
//! the listing); as many as the cores was the best of the three on the 2-core machine
//! (docs/benchmarks.md).

use std::sync::LazyLock;

use tokio::sync::Semaphore;

static SLOTS: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    Semaphore::new(cores.max(1))
});

/// Run `f` on the blocking pool once a slot is free. A panic in `f` is resumed here.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let _slot = SLOTS.acquire().await.expect("the CPU slots are never closed");
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
