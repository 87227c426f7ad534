//! Operations: the NOP round trip, and cancelling an op the kernel holds.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use criterion::Criterion;
use futures_lite::future::poll_once;

use crate::backends::on_each_backend;

/// `nop/1` and `nop/32`: tasks awaiting `op::nop()` in a loop, one NOP in flight per task.
pub fn nop(c: &mut Criterion) {
    on_each_backend(c, "nop/1", |iters| nops_in_flight(1, iters));
    on_each_backend(c, "nop/32", |iters| nops_in_flight(32, iters));
}

/// `tasks` tasks share `iters` NOPs, each awaiting one at a time; the time of them all.
async fn nops_in_flight(tasks: u64, iters: u64) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let share = iters / tasks + u64::from(task < iters % tasks);
            ringloop::spawn(async move {
                for _ in 0..share {
                    ringloop::op::nop().await.expect("nop failed");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("nop task failed");
    }
    start.elapsed()
}

/// `nop/1/on_loop`: `nop/1` with each NOP awaited through a fresh `ringloop::on_loop`
/// wrapper, as an axum handler awaiting ringloop I/O does: what the wrapper adds to an op
/// (one allocation, one loop check per poll).
pub fn nop_on_loop(c: &mut Criterion) {
    on_each_backend(c, "nop/1/on_loop", |iters| async move {
        let start = Instant::now();
        ringloop::spawn(async move {
            for _ in 0..iters {
                ringloop::on_loop(ringloop::op::nop())
                    .await
                    .expect("nop failed");
            }
        })
        .await
        .expect("nop task failed");
        start.elapsed()
    });
}

/// `op_cancel`: a read of an empty pipe is submitted (polled once), then cancelled with
/// `op.cancel().await`, which resolves once the op's own completion (`ECANCELED`) is in.
pub fn op_cancel(c: &mut Criterion) {
    on_each_backend(c, "op_cancel", |iters| async move {
        let (rx, _tx) = std::io::pipe().expect("pipe");
        let mut buf = Vec::with_capacity(64);
        let start = Instant::now();
        for _ in 0..iters {
            let mut read = ringloop::op::read(rx.as_raw_fd(), buf);
            assert!(
                poll_once(&mut read).await.is_none(),
                "an empty pipe was read"
            );
            let (res, back) = read.cancel().await;
            assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
            buf = back;
        }
        start.elapsed()
    });
}
