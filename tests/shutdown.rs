//! Dropping a runtime is a complete shutdown: it returns promptly even with many operations in
//! flight, closes every fd it opened, and drops every buffer the kernel held exactly once.
//!
//! These tests count process-wide resources (open fds), so each holds `support::serial()`.

mod support;

use std::os::fd::{AsRawFd as _, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ringloop::buf::{IoBuf, IoBufMut};
use ringloop::{Handle, JoinHandle, op, time};
use support::{describe_open_fds, open_fds, pipe, runtime, serial, watchdog};

/// Pending operations per test: enough to overflow a default 256-entry submission queue.
const IN_FLIGHT: usize = 1000;
/// Pipes the reads are spread over (several pending reads share a pipe).
const PIPES: usize = 50;
/// How long a runtime drop may take before the watchdog calls it a hang.
const DROP_LIMIT: Duration = Duration::from_secs(10);

/// Counts buffers made and dropped, per test (tests on both backends run concurrently).
#[derive(Default)]
struct DropCounter {
    created: AtomicUsize,
    dropped: AtomicUsize,
    filled: AtomicUsize,
}

impl DropCounter {
    fn created(&self) -> usize {
        self.created.load(Ordering::SeqCst)
    }
    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
    fn filled(&self) -> usize {
        self.filled.load(Ordering::SeqCst)
    }
}

/// A read buffer that reports its creation and its drop to a [`DropCounter`].
struct CountedBuf {
    bytes: Vec<u8>,
    counter: Arc<DropCounter>,
}

impl CountedBuf {
    fn new(counter: &Arc<DropCounter>, capacity: usize) -> Self {
        counter.created.fetch_add(1, Ordering::SeqCst);
        CountedBuf {
            bytes: Vec::with_capacity(capacity),
            counter: Arc::clone(counter),
        }
    }
}

impl Drop for CountedBuf {
    fn drop(&mut self) {
        self.counter.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: the pointer is the Vec's heap allocation, which does not move when `CountedBuf` moves;
// `len` bytes are initialised and `capacity` bytes are allocated.
unsafe impl IoBuf for CountedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.bytes.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.bytes.len()
    }
    fn bytes_total(&self) -> usize {
        self.bytes.capacity()
    }
}

// SAFETY: as for `IoBuf`; the mutable pointer is the same stable heap allocation.
unsafe impl IoBufMut for CountedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.bytes.as_mut_ptr()
    }

    unsafe fn set_init(&mut self, pos: usize) {
        if pos > self.bytes.len() {
            // SAFETY: the caller guarantees the first `pos` bytes (within capacity) are
            // initialised.
            unsafe { self.bytes.set_len(pos) };
        }
    }
}

/// Waits, a bounded number of loop turns, until the runtime holds `n` in-flight operations.
async fn until_inflight(n: usize) {
    for _ in 0..100_000 {
        if Handle::current().inflight_ops() >= n {
            return;
        }
        ringloop::yield_now().await;
    }
    panic!(
        "only {} of {n} operations became in flight",
        Handle::current().inflight_ops()
    );
}

/// Spawns `IN_FLIGHT` tasks, each reading into a counted buffer from one of `pipes`; a read that
/// returns data bumps `counter.filled`.
fn spawn_pending_reads(pipes: &[RawFd], counter: &Arc<DropCounter>) -> Vec<JoinHandle<()>> {
    (0..IN_FLIGHT)
        .map(|i| {
            let fd = pipes[i % pipes.len()];
            let buf = CountedBuf::new(counter, 64);
            let counter = Arc::clone(counter);
            ringloop::spawn(async move {
                let (result, _buf) = op::read(fd, buf).await;
                if matches!(result, Ok(n) if n > 0) {
                    counter.filled.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect()
}

fn read_ends(pipes: &[(OwnedFd, OwnedFd)]) -> Vec<RawFd> {
    pipes.iter().map(|(r, _)| r.as_raw_fd()).collect()
}

/// Asserts that the process has exactly `before` fds open, listing them if not.
fn assert_no_fd_leak(before: usize, what: &str) {
    let after = open_fds();
    assert_eq!(
        after,
        before,
        "{what}: {before} fds were open before, {after} after:\n{}",
        describe_open_fds().join("\n")
    );
}

both_backends! {
    /// Dropping a runtime with 1 000 reads pending on pipes nobody writes returns promptly,
    /// leaves no fd open and drops each of the 1 000 buffers exactly once.
    fn drop_with_1000_pending_reads_frees_everything(backend: Backend) {
        let _serial = serial();
        let fds_before = open_fds();
        let counter = Arc::new(DropCounter::default());
        let pipes: Vec<(OwnedFd, OwnedFd)> = (0..PIPES).map(|_| pipe()).collect();
        let fds = read_ends(&pipes);

        let rt = runtime(backend);
        rt.block_on(async {
            drop(spawn_pending_reads(&fds, &counter));
            until_inflight(IN_FLIGHT).await;
        });
        assert_eq!(rt.inflight_ops(), IN_FLIGHT, "ops in flight before the drop");
        assert_eq!(counter.created(), IN_FLIGHT);
        assert_eq!(counter.dropped(), 0, "buffers dropped while their reads were pending");

        let dog = watchdog(DROP_LIMIT, "dropping a runtime with 1000 pending reads");
        drop(rt);
        dog.disarm();

        assert_eq!(counter.filled(), 0, "a read on a silent pipe returned data");
        assert_eq!(counter.dropped(), counter.created(), "buffers dropped vs created");
        drop(pipes);
        assert_no_fd_leak(fds_before, "runtime with 1000 pending reads");
    }

    /// Reads that complete in the kernel but are never observed by their task (data arrives
    /// just before the drop) still have their buffers dropped exactly once, with no fd left.
    fn drop_with_unobserved_completions_frees_everything(backend: Backend) {
        let _serial = serial();
        let fds_before = open_fds();
        let counter = Arc::new(DropCounter::default());
        let pipes: Vec<(OwnedFd, OwnedFd)> = (0..PIPES).map(|_| pipe()).collect();
        let fds = read_ends(&pipes);

        let rt = runtime(backend);
        rt.block_on(async {
            drop(spawn_pending_reads(&fds, &counter));
            until_inflight(IN_FLIGHT).await;
        });
        // One byte into every other pipe: one pending read on each of those may now complete
        // in the kernel, but the loop never runs again to hand the result to its task.
        for (_, writer) in pipes.iter().step_by(2) {
            // SAFETY: `writer` is an open pipe write end and the one-byte source is valid.
            let n = unsafe { libc::write(writer.as_raw_fd(), b"x".as_ptr().cast(), 1) };
            assert_eq!(n, 1, "write: {}", std::io::Error::last_os_error());
        }

        let dog = watchdog(DROP_LIMIT, "dropping a runtime with unobserved completions");
        drop(rt);
        dog.disarm();

        assert_eq!(counter.dropped(), counter.created(), "buffers dropped vs created");
        assert_eq!(counter.created(), IN_FLIGHT);
        drop(pipes);
        assert_no_fd_leak(fds_before, "runtime with unobserved completions");
    }

    /// Tasks cancelled just before the drop leave orphaned operations whose cancellation is
    /// still in progress; the drop waits for them, frees each buffer once and closes every fd.
    fn drop_with_orphaned_ops_frees_everything(backend: Backend) {
        let _serial = serial();
        let fds_before = open_fds();
        let counter = Arc::new(DropCounter::default());
        let pipes: Vec<(OwnedFd, OwnedFd)> = (0..PIPES).map(|_| pipe()).collect();
        let fds = read_ends(&pipes);

        let rt = runtime(backend);
        rt.block_on(async {
            let tasks = spawn_pending_reads(&fds, &counter);
            until_inflight(IN_FLIGHT).await;
            for task in &tasks {
                task.cancel();
            }
            // One turn lets the loop drop the cancelled futures, orphaning their reads.
            ringloop::yield_now().await;
        });

        let dog = watchdog(DROP_LIMIT, "dropping a runtime with orphaned ops");
        drop(rt);
        dog.disarm();

        assert_eq!(counter.filled(), 0, "a read on a silent pipe returned data");
        assert_eq!(counter.dropped(), counter.created(), "buffers dropped vs created");
        drop(pipes);
        assert_no_fd_leak(fds_before, "runtime with orphaned ops");
    }

    /// Dropping a runtime whose tasks wait on far-off timers returns at once instead of
    /// waiting for the timers, and drops every task.
    fn drop_with_pending_timers_returns_promptly(backend: Backend) {
        let _serial = serial();
        let fds_before = open_fds();
        let counter = Arc::new(DropCounter::default());

        let rt = runtime(backend);
        rt.block_on(async {
            for _ in 0..IN_FLIGHT {
                let buf = CountedBuf::new(&counter, 0);
                ringloop::spawn(async move {
                    time::sleep(Duration::from_secs(3600)).await;
                    drop(buf);
                });
            }
            // Every task has registered its timer once each has been polled; one full turn
            // over the spawned tasks is enough, give the loop a few.
            for _ in 0..4 {
                ringloop::yield_now().await;
            }
        });

        let dog = watchdog(DROP_LIMIT, "dropping a runtime with pending timers");
        drop(rt);
        dog.disarm();

        assert_eq!(counter.created(), IN_FLIGHT);
        assert_eq!(counter.dropped(), IN_FLIGHT, "tasks' captured values dropped");
        assert_no_fd_leak(fds_before, "runtime with pending timers");
    }

    /// Creating, using and dropping many runtimes in a row leaks no fd (ring, epoll, eventfd,
    /// timerfd, ...).
    fn repeated_runtimes_leak_no_fd(backend: Backend) {
        let _serial = serial();
        let fds_before = open_fds();
        let dog = watchdog(Duration::from_secs(60), "creating and dropping 50 runtimes");
        for _ in 0..50 {
            let rt = runtime(backend);
            rt.block_on(async {
                op::nop().await.expect("nop");
                time::sleep(Duration::from_millis(1)).await;
                ringloop::spawn(async {}).await.expect("task");
            });
            drop(rt);
        }
        dog.disarm();
        assert_no_fd_leak(fds_before, "50 runtimes created and dropped");
    }
}
