//! An op on a `File` whose future is dropped while the blocking pool still has the call queued
//! (the epoll backend runs `ftruncate` there) keeps the descriptor open until the call is done:
//! closing the `File` and opening another file that gets the same fd number does not let the
//! late call land on the new file. On io_uring the kernel holds its own file reference; the
//! same body runs there.
//!
//! Where the ring lacks `IORING_OP_FTRUNCATE` (before Linux 6.9) `set_len` runs on the
//! blocking pool on io_uring too; that pool call is an op in flight like a ring op
//! (`inflight_ops` counts it until its descriptor is let go). Forced with
//! `RINGLOOP_MISSING_OPS=op_ftruncate` in a re-executed child, which runs the body several
//! times because the pool thread finishing the call races the loop.
//!
//! The tests hold `support::serial()` because they rely on the lowest free fd number being
//! reused, and count fds.

mod fs_support;
mod support;

use std::future::Future;
use std::os::fd::AsRawFd as _;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use fs_support::TempDir;
use ringloop::fs::OpenOptions;
use support::{CHILD_ENV, assert_child_passed, backend_role, child_backend, run_child};

/// Runs of the body in the child: one run misses the race about one time in three.
const CHILD_RUNS: usize = 20;

/// The child: the body with `IORING_OP_FTRUNCATE` reported missing, so that `set_len` runs
/// on the blocking pool on io_uring as well.
#[test]
fn child_abandoned_op_without_ftruncate() {
    let Some(backend) = child_backend() else {
        return;
    };
    for _ in 0..CHILD_RUNS {
        abandoned_op(backend);
    }
}

both_backends! {
    /// A `set_len(0)` abandoned behind a busy pool, then the `File` dropped and its fd number
    /// reused by another file: the other file keeps its contents, and no fd leaks.
    fn abandoned_op_never_reaches_a_reused_fd(backend: Backend) {
        abandoned_op(backend);
    }

    /// The same with the ring's ftruncate reported missing: the pool call that stands in for
    /// it is counted in `inflight_ops` until it has let the file go.
    fn abandoned_pool_op_counts_as_in_flight(backend: Backend) {
        // Spawning the child opens pipes here, which the fd counts of the other tests see.
        let _serial = support::serial();
        let name = "child_abandoned_op_without_ftruncate";
        let output = run_child(
            name,
            &[(CHILD_ENV, backend_role(backend)), ("RINGLOOP_MISSING_OPS", "op_ftruncate")],
        );
        assert_child_passed(name, &output);
    }
}

/// The body: a `set_len(0)` abandoned behind a busy pool, then the `File` dropped and its fd
/// number reused by another file.
fn abandoned_op(backend: ringloop::Backend) {
    let _serial = support::serial();
    let _dog = support::watchdog(Duration::from_secs(30), "abandoned op");
    let dir = TempDir::new("drop-in-flight");
    let (a, b) = (dir.join("a"), dir.join("b"));
    std::fs::write(&a, b"aaaa").unwrap();
    std::fs::write(&b, b"bbbb").unwrap();
    let rt = ringloop::Runtime::builder()
        .backend(backend)
        .blocking_threads(1)
        .build()
        .unwrap();
    rt.block_on(async {
        support::yield_turns(2).await;
        let fds_before = support::open_fds();
        let baseline = ringloop::Handle::current().inflight_ops();
        let file = OpenOptions::new().write(true).open(&a).await.unwrap();
        let a_fd = file.as_raw_fd();
        // Occupy the only pool thread so that the next pool job waits in the queue.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let blocker = ringloop::spawn_blocking(move || gate.recv());
        {
            let mut truncate = pin!(file.set_len(0));
            let first = std::future::poll_fn(|cx| Poll::Ready(truncate.as_mut().poll(cx))).await;
            assert!(first.is_pending() || backend == ringloop::Backend::IoUring);
        }
        // Let the op reach the kernel on io_uring (an op dropped in its first tick never does).
        support::yield_turns(2).await;
        drop(file);
        let other = std::fs::OpenOptions::new().read(true).open(&b).unwrap();
        if backend == ringloop::Backend::Epoll {
            // The abandoned op still holds fd `a_fd`, so the new file cannot get it.
            assert_ne!(other.as_raw_fd(), a_fd);
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        support::settle_inflight(baseline).await;
        drop(other);
        assert_eq!(std::fs::read(&b).unwrap(), b"bbbb");
        assert_eq!(
            support::open_fds(),
            fds_before,
            "{:?}",
            support::describe_open_fds()
        );
    });
    if backend == ringloop::Backend::Epoll {
        // The abandoned truncate did run, on the file it was meant for. (On io_uring an
        // op dropped in the tick that started it is never submitted.)
        assert_eq!(std::fs::read(&a).unwrap(), b"");
    }
}
