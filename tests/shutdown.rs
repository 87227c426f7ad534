//! Dropping a runtime is a complete shutdown: it returns promptly even with many operations in
//! flight, closes every fd it opened, and drops every buffer the kernel held exactly once.
//!
//! These tests count process-wide resources (open fds), so each holds `support::serial()`.

mod support;

use std::cell::Cell;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use ringloop::{Backend, Handle, JoinHandle, Runtime, op, time};
use support::{
    CountedBuf, describe_open_fds, open_fds, pipe, runtime, serial, watchdog, write_all,
};

/// Pending operations per test: enough to overflow a default 256-entry submission queue.
const IN_FLIGHT: usize = 1000;
/// Pipes the reads are spread over (several pending reads share a pipe).
const PIPES: usize = 50;
/// How long a runtime drop may take before the watchdog calls it a hang.
const DROP_LIMIT: Duration = Duration::from_secs(10);

/// Counts buffers made, dropped and filled, per test (tests on both backends run concurrently).
#[derive(Default)]
struct DropCounter {
    created: AtomicUsize,
    dropped: Arc<AtomicUsize>,
    filled: AtomicUsize,
}

impl DropCounter {
    /// A read buffer of `capacity` bytes whose creation and drop this counter records.
    fn buf(&self, capacity: usize) -> CountedBuf {
        self.created.fetch_add(1, Ordering::SeqCst);
        CountedBuf::new(capacity, &self.dropped)
    }
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

/// Waits (bounded by time) until the runtime holds at least `n` in-flight operations.
async fn until_inflight(n: usize) {
    let h = Handle::current();
    support::yield_until(&format!("{n} operations are in flight"), || {
        h.inflight_ops() >= n
    })
    .await;
}

/// The start of a pending-read test: the fd-counting lock held, the number of fds open before
/// the test, a fresh [`DropCounter`] and `PIPES` pipes nobody writes to.
struct Fixture {
    fds_before: usize,
    counter: Arc<DropCounter>,
    pipes: Vec<(OwnedFd, OwnedFd)>,
    /// Declared last so it is released only after everything else is closed.
    _serial: MutexGuard<'static, ()>,
}

impl Fixture {
    fn new() -> Self {
        let serial = serial();
        let fds_before = open_fds();
        Fixture {
            fds_before,
            counter: Arc::new(DropCounter::default()),
            pipes: (0..PIPES).map(|_| pipe()).collect(),
            _serial: serial,
        }
    }

    /// Spawns `IN_FLIGHT` tasks, each reading into a counted buffer from one of the pipes; a read
    /// that returns data bumps `counter.filled`.
    fn spawn_pending_reads(&self) -> Vec<JoinHandle<()>> {
        (0..IN_FLIGHT)
            .map(|i| {
                let fd = self.pipes[i % self.pipes.len()].0.as_raw_fd();
                let buf = self.counter.buf(64);
                let counter = Arc::clone(&self.counter);
                ringloop::spawn(async move {
                    let (result, _buf) = op::read(fd, buf).await;
                    if matches!(result, Ok(n) if n > 0) {
                        counter.filled.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect()
    }

    /// A runtime on `backend` whose loop holds the `IN_FLIGHT` reads of
    /// [`Fixture::spawn_pending_reads`], all in flight, their tasks detached.
    fn runtime_with_detached_reads(&self, backend: Backend) -> Runtime {
        let rt = runtime(backend);
        rt.block_on(async {
            drop(self.spawn_pending_reads());
            until_inflight(IN_FLIGHT).await;
        });
        rt
    }

    /// After the runtime is gone: every buffer made was dropped, and once the pipes are closed
    /// exactly the fds open before the test are open (`what` names the case in the message).
    fn assert_all_freed(self, what: &str) {
        let counter = &self.counter;
        assert_eq!(
            counter.dropped(),
            counter.created(),
            "buffers dropped vs created"
        );
        drop(self.pipes);
        assert_no_fd_leak(self.fds_before, what);
    }
}

/// Drops `rt` under a watchdog that aborts the process, naming `what` ("runtime with ..."), if
/// the drop takes longer than [`DROP_LIMIT`].
fn drop_runtime(rt: Runtime, what: &str) {
    let dog = watchdog(DROP_LIMIT, &format!("dropping a {what}"));
    drop(rt);
    dog.disarm();
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
        let fixture = Fixture::new();
        let rt = fixture.runtime_with_detached_reads(backend);
        let counter = &fixture.counter;
        assert_eq!(rt.inflight_ops(), IN_FLIGHT, "ops in flight before the drop");
        assert_eq!(counter.created(), IN_FLIGHT);
        assert_eq!(counter.dropped(), 0, "buffers dropped while their reads were pending");

        drop_runtime(rt, "runtime with 1000 pending reads");

        assert_eq!(counter.filled(), 0, "a read on a silent pipe returned data");
        fixture.assert_all_freed("runtime with 1000 pending reads");
    }

    /// Reads that complete in the kernel but are never observed by their task (data arrives
    /// just before the drop) still have their buffers dropped exactly once, with no fd left.
    fn drop_with_unobserved_completions_frees_everything(backend: Backend) {
        let fixture = Fixture::new();
        let rt = fixture.runtime_with_detached_reads(backend);
        // One byte into every other pipe: one pending read on each of those may now complete
        // in the kernel, but the loop never runs again to hand the result to its task.
        for (_, writer) in fixture.pipes.iter().step_by(2) {
            write_all(writer, b"x");
        }

        drop_runtime(rt, "runtime with unobserved completions");

        assert_eq!(fixture.counter.created(), IN_FLIGHT);
        fixture.assert_all_freed("runtime with unobserved completions");
    }

    /// Tasks cancelled just before the drop leave orphaned operations whose cancellation is
    /// still in progress; the drop waits for them, frees each buffer once and closes every fd.
    fn drop_with_orphaned_ops_frees_everything(backend: Backend) {
        let fixture = Fixture::new();
        let rt = runtime(backend);
        rt.block_on(async {
            let tasks = fixture.spawn_pending_reads();
            until_inflight(IN_FLIGHT).await;
            for task in &tasks {
                task.cancel();
            }
            // One turn lets the loop drop the cancelled futures, orphaning their reads.
            ringloop::yield_now().await;
        });

        drop_runtime(rt, "runtime with orphaned ops");

        assert_eq!(fixture.counter.filled(), 0, "a read on a silent pipe returned data");
        fixture.assert_all_freed("runtime with orphaned ops");
    }

    /// Dropping a runtime whose tasks wait on far-off timers returns at once instead of
    /// waiting for the timers, and drops every task.
    fn drop_with_pending_timers_returns_promptly(backend: Backend) {
        let _serial = serial();
        let fds_before = open_fds();
        let counter = Arc::new(DropCounter::default());

        let rt = runtime(backend);
        rt.block_on(async {
            let sleeping = Rc::new(Cell::new(0));
            for _ in 0..IN_FLIGHT {
                let buf = counter.buf(0);
                let sleeping = Rc::clone(&sleeping);
                ringloop::spawn(async move {
                    // Counted in the poll that registers the timer (the sleep's first poll).
                    sleeping.set(sleeping.get() + 1);
                    time::sleep(Duration::from_secs(3600)).await;
                    drop(buf);
                });
            }
            support::yield_until("every task registered its timer", || {
                sleeping.get() == IN_FLIGHT
            })
            .await;
        });

        drop_runtime(rt, "runtime with pending timers");

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
