//! Tasks: spawning and joining, yielding.

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;

use crate::backends::on_each_backend;

/// `spawn_join`: spawn a task and await its `JoinHandle`, one at a time.
pub fn spawn_join(c: &mut Criterion) {
    on_each_backend(c, "spawn_join", |iters| async move {
        let start = Instant::now();
        for i in 0..iters {
            let value = ringloop::spawn(async move { i })
                .await
                .expect("task failed");
            black_box(value);
        }
        start.elapsed()
    });
}

/// `yield`: a task calling `yield_now().await` in a loop.
pub fn yield_now(c: &mut Criterion) {
    on_each_backend(c, "yield", |iters| async move {
        let start = Instant::now();
        ringloop::spawn(async move {
            for _ in 0..iters {
                ringloop::yield_now().await;
            }
        })
        .await
        .expect("yielding task failed");
        start.elapsed()
    });
}

/// `yield/on_loop`: `yield` inside one `ringloop::on_loop` wrapper: the loop check the
/// wrapper makes on every poll.
pub fn yield_on_loop(c: &mut Criterion) {
    on_each_backend(c, "yield/on_loop", |iters| async move {
        let start = Instant::now();
        ringloop::spawn(ringloop::on_loop(async move {
            for _ in 0..iters {
                ringloop::yield_now().await;
            }
        }))
        .await
        .expect("yielding task failed");
        start.elapsed()
    });
}
