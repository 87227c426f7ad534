//! When the loop's own wait in the kernel fails for good — here because the ring's or the epoll
//! instance's descriptor is replaced by `/dev/null` — the runtime does not panic:
//! `try_block_on` returns the error, naming the call, the descriptor and the errno, and
//! `block_on` runs on without the backend, failing new ops with that errno.
//!
//! The tests replace a descriptor of their own runtime, found by comparing `/proc/self/fd`
//! before and after building it, so they hold [`FD_LOCK`]: no other test of this binary may
//! open descriptors meanwhile.

mod support;

use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::AsRawFd as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ringloop::{Backend, Runtime, op, time};
use support::{runtime, watchdog};

/// Serialises this binary's tests: each looks for the descriptors its runtime opened.
static FD_LOCK: Mutex<()> = Mutex::new(());
/// How long a test may take before the watchdog calls it a hang.
const LIMIT: Duration = Duration::from_secs(20);

fn fd_lock() -> MutexGuard<'static, ()> {
    FD_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The descriptors open now, with what they point at.
fn open_fds() -> BTreeSet<(i32, String)> {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let fd = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect()
}

/// Builds a runtime on `backend`; returns it, its ring (or epoll) descriptor, and the errno
/// a wait fails with once [`break_wait`] has replaced that descriptor: `EOPNOTSUPP`
/// (io_uring_enter on a file that is no ring) or `EINVAL` (epoll_wait on one that is no
/// epoll instance).
fn runtime_and_wait_fd(backend: Backend) -> (Runtime, i32, i32) {
    let before = open_fds();
    let rt = runtime(backend);
    let (kind, errno) = match backend {
        Backend::IoUring => ("anon_inode:[io_uring]", libc::EOPNOTSUPP),
        _ => ("anon_inode:[eventpoll]", libc::EINVAL),
    };
    let opened: Vec<i32> = open_fds()
        .difference(&before)
        .filter(|(_, target)| target == kind)
        .map(|(fd, _)| *fd)
        .collect();
    assert_eq!(
        opened.len(),
        1,
        "the runtime opened exactly one {kind}: {opened:?}"
    );
    (rt, opened[0], errno)
}

/// Makes `fd` a descriptor of `/dev/null`: the runtime's next wait in the kernel fails.
fn break_wait(fd: i32) {
    let null = File::open("/dev/null").expect("open /dev/null");
    // SAFETY: both descriptors are open; dup2 atomically makes `fd` a second descriptor of
    // /dev/null, which the runtime then owns in place of its ring/epoll descriptor.
    let rc = unsafe { libc::dup2(null.as_raw_fd(), fd) };
    assert_eq!(rc, fd, "dup2: {}", std::io::Error::last_os_error());
}

/// A runtime on `backend` whose next wait fails, and the errno it fails with.
fn runtime_with_broken_wait(backend: Backend) -> (Runtime, i32) {
    let (rt, fd, errno) = runtime_and_wait_fd(backend);
    break_wait(fd);
    (rt, errno)
}

both_backends! {
    /// A wait that fails for good does not panic `block_on`: the future runs to its end (a
    /// timer still fires), and an op started afterwards fails with the wait's errno.
    fn block_on_runs_on_after_the_wait_fails(backend: Backend) {
        let _lock = fd_lock();
        let _dog = watchdog(LIMIT, "block_on after the loop's wait failed");
        let (rt, errno) = runtime_with_broken_wait(backend);
        // A timer fires, and then a nop fails with the wait's errno. The first wait may come
        // only after a later sleep: on a slow (emulated) machine the first 20 ms can pass
        // before the loop parks, and a park whose deadline has passed does not wait.
        let res = rt.block_on(async {
            let started = std::time::Instant::now();
            loop {
                time::sleep(Duration::from_millis(20)).await;
                let res = op::nop().await;
                if res.is_err() || started.elapsed() > support::scaled(LIMIT) / 2 {
                    return res;
                }
            }
        });
        let err = res.expect_err("a nop after the wait failed reports the failure");
        assert_eq!(err.raw_os_error(), Some(errno), "{err}");
        drop(rt);
    }

    /// `try_block_on` returns the failure as an error naming the call, the descriptor and the
    /// errno — at the failing wait, and at once on later calls.
    fn try_block_on_reports_the_failure_with_context(backend: Backend) {
        let _lock = fd_lock();
        let _dog = watchdog(LIMIT, "try_block_on after the loop's wait failed");
        let (rt, errno) = runtime_with_broken_wait(backend);
        let err = rt
            .try_block_on(time::sleep(Duration::from_secs(60)))
            .expect_err("the wait fails: the sleep cannot end first");
        let text = err.to_string();
        let call = match backend {
            Backend::IoUring => "io_uring_enter on ring fd",
            _ => "epoll_wait on epoll fd",
        };
        assert!(text.contains(call), "names the call and descriptor: {text}");
        assert!(text.contains(&format!("os error {errno}")), "names the errno: {text}");
        assert_eq!(err.kind(), std::io::Error::from_raw_os_error(errno).kind(), "{text}");
        let again = rt
            .try_block_on(async { 1 })
            .expect_err("the loop still cannot wait");
        assert_eq!(again.to_string(), text);
        drop(rt);
    }
}

/// On epoll, an op waiting for readiness when the wait fails is handed back with the wait's
/// errno (its buffer never went to the kernel), so the task awaiting it finishes.
#[test]
fn epoll_waiting_op_fails_with_the_wait() {
    let _lock = fd_lock();
    let _dog = watchdog(LIMIT, "a waiting read after epoll_wait failed");
    let (rx, _tx) = support::pipe();
    let (rt, fd, errno) = runtime_and_wait_fd(Backend::Epoll);
    // The task's handle leaves `block_on` unawaited on purpose: it is awaited after the break.
    #[allow(clippy::async_yields_async)]
    let read = rt.block_on(async {
        let rx = rx.as_raw_fd();
        let read = ringloop::spawn(async move { op::read(rx, Vec::with_capacity(8)).await.0 });
        let h = ringloop::Handle::current();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while h.inflight_ops() == 0 && std::time::Instant::now() < deadline {
            ringloop::yield_now().await;
        }
        assert_eq!(h.inflight_ops(), 1, "the read waits for readiness");
        read
    });
    break_wait(fd);
    let res = rt.block_on(read).expect("the read's task finishes");
    let err = res.expect_err("nobody wrote: the read fails with the wait");
    assert_eq!(err.raw_os_error(), Some(errno), "{err}");
    drop(rt);
}
