//! Timers: one that fires, one that is cancelled.

use std::time::{Duration, Instant};

use criterion::Criterion;
use futures_lite::future::poll_once;

use crate::backends::on_each_backend;

/// `timer/sleep_1us`: a task sleeping 1 µs in a loop: the timer is registered, the loop parks
/// until its deadline and fires it. (A zero sleep is ready at its first poll and registers
/// nothing, so it would not measure the timer.)
pub fn sleep(c: &mut Criterion) {
    on_each_backend(c, "timer/sleep_1us", |iters| async move {
        let start = Instant::now();
        ringloop::spawn(async move {
            for _ in 0..iters {
                ringloop::time::sleep(Duration::from_micros(1)).await;
            }
        })
        .await
        .expect("sleeping task failed");
        start.elapsed()
    });
}

/// `timer/timeout_cancel`: a 10 s `time::timeout` around a future that never finishes, polled
/// once (its timer registers) and dropped (its timer is removed).
pub fn timeout_cancel(c: &mut Criterion) {
    on_each_backend(c, "timer/timeout_cancel", |iters| async move {
        let start = Instant::now();
        for _ in 0..iters {
            let never = std::future::pending::<()>();
            let timeout = ringloop::time::timeout(Duration::from_secs(10), never);
            assert!(poll_once(timeout).await.is_none(), "a 10 s timeout fired");
        }
        start.elapsed()
    });
}
