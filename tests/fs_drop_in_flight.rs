//! An op on a `File` whose future is dropped while the blocking pool still has the call queued
//! (the epoll backend runs `ftruncate` there) keeps the descriptor open until the call is done:
//! closing the `File` and opening another file that gets the same fd number does not let the
//! late call land on the new file. On io_uring the kernel holds its own file reference; the
//! same body runs there.
//!
//! The test holds `support::serial()` because it relies on the lowest free fd number being
//! reused, and counts fds.

mod fs_support;
mod support;

use std::future::Future;
use std::os::fd::AsRawFd as _;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use fs_support::TempDir;
use ringloop::fs::OpenOptions;

both_backends! {
    /// A `set_len(0)` abandoned behind a busy pool, then the `File` dropped and its fd number
    /// reused by another file: the other file keeps its contents, and no fd leaks.
    fn abandoned_op_never_reaches_a_reused_fd(backend: Backend) {
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
            assert_eq!(support::open_fds(), fds_before, "{:?}", support::describe_open_fds());
        });
        if backend == ringloop::Backend::Epoll {
            // The abandoned truncate did run, on the file it was meant for. (On io_uring an
            // op dropped in the tick that started it is never submitted.)
            assert_eq!(std::fs::read(&a).unwrap(), b"");
        }
    }
}
