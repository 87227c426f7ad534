//! Descriptors are never leaked by the file API, on both backends: a thousand files opened
//! and dropped without `close` leave the fd count where it was, and so do opens whose futures
//! are dropped right after their first poll (the kernel or the pool may still complete them;
//! the runtime closes the fd that completion carries).
//!
//! Both tests count `/proc/self/fd`, so they hold `support::serial()`.

mod fs_support;
mod support;

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use fs_support::TempDir;
use ringloop::fs::{File, OpenOptions};

both_backends! {
    /// 1 000 files opened (some created) and dropped without `close` leak no descriptor.
    fn dropped_files_leak_no_fd(backend: Backend) {
        let _serial = support::serial();
        let _dog = support::watchdog(Duration::from_secs(60), "dropped files");
        let dir = TempDir::new("dropped-files");
        std::fs::write(dir.join("existing"), b"x").unwrap();
        let rt = support::runtime(backend);
        rt.block_on(async {
            support::yield_turns(2).await;
            let before = support::open_fds();
            for i in 0..1000 {
                let file = if i % 2 == 0 {
                    File::open(dir.join("existing")).await.unwrap()
                } else {
                    File::create(dir.join(&format!("new-{i}"))).await.unwrap()
                };
                drop(file);
            }
            assert_eq!(support::open_fds(), before, "{:?}", support::describe_open_fds());
        });
    }

    /// Open futures dropped right after their first poll (or a tick or two later, once the
    /// kernel has the open), many times over, leak no fd once their completions have arrived
    /// (the op table empties).
    fn cancelled_opens_leak_no_fd(backend: Backend) {
        let _serial = support::serial();
        let _dog = support::watchdog(Duration::from_secs(60), "cancelled opens");
        let dir = TempDir::new("cancelled-opens");
        std::fs::write(dir.join("existing"), b"x").unwrap();
        let rt = support::runtime(backend);
        rt.block_on(async {
            support::yield_turns(2).await;
            let before = support::open_fds();
            let baseline = ringloop::Handle::current().inflight_ops();
            let mut started = 0;
            for i in 0..500 {
                let path = if i % 2 == 0 {
                    dir.join("existing")
                } else {
                    dir.join(&format!("made-{i}"))
                };
                let opts = {
                    let mut o = OpenOptions::new();
                    o.read(true).write(true).create(true);
                    o
                };
                let mut open = pin!(opts.open(&path));
                let first = std::future::poll_fn(|cx| Poll::Ready(open.as_mut().poll(cx))).await;
                match first {
                    Poll::Pending => started += 1,
                    Poll::Ready(file) => drop(file.unwrap()),
                }
                // Mostly let the open reach the kernel (an op dropped in the tick that
                // started it is never submitted), sometimes long enough to complete.
                for _ in 0..i % 3 {
                    ringloop::yield_now().await;
                }
            }
            assert!(started > 0, "no open was still in flight when dropped");
            support::settle_inflight(baseline).await;
            assert_eq!(support::open_fds(), before, "{:?}", support::describe_open_fds());
        });
    }
}
