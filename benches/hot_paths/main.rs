//! Micro-benchmarks of ringloop's hot paths, each on io_uring and on epoll: `cargo bench`.
//!
//! One criterion group per path, one function per backend, so the output reads
//! `nop/1/io_uring`, `nop/1/epoll`, `spawn_join/io_uring`, ... Each number is the time of one
//! iteration (one op, one task, one yield, one timer), measured inside a running loop: the
//! runtime is built once per backend, outside the timing.
//!
//! | group | one iteration |
//! | --- | --- |
//! | `nop/1`, `nop/32` | one `op::nop()` awaited by a task, with 1 or 32 tasks (NOPs in flight) |
//! | `nop/1/on_loop` | `nop/1`, each NOP awaited through a fresh `ringloop::on_loop` wrapper |
//! | `spawn_join` | spawn a task and await its `JoinHandle` |
//! | `yield` | one `yield_now().await` in a task |
//! | `yield/on_loop` | the same inside one `ringloop::on_loop` wrapper (its check per poll) |
//! | `timer/sleep_1us` | register a 1 µs sleep and wait for the loop to fire it |
//! | `timer/timeout_cancel` | register a 10 s `time::timeout` (one poll) and drop it |
//! | `op_cancel` | submit a read of an empty pipe, then `op.cancel().await` it |
//!
//! For quick iteration: `cargo bench -- nop` runs the groups whose name contains `nop`;
//! `cargo bench -- --test` runs each benchmark once (CI's smoke run). The side-by-side
//! comparison with tokio, monoio and a bare io_uring loop stays `examples/compare`.

mod backends;
mod ops;
mod tasks;
mod timers;

criterion::criterion_group! {
    name = hot_paths;
    config = backends::config();
    targets = ops::nop, ops::nop_on_loop, tasks::spawn_join, tasks::yield_now,
        tasks::yield_on_loop, timers::sleep, timers::timeout_cancel, ops::op_cancel
}
criterion::criterion_main!(hot_paths);
