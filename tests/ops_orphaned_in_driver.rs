//! An op whose future is dropped while the driver itself is running — from a waker the driver
//! calls, or from the drop of another orphan's buffer — is cancelled and its slot freed like
//! any other orphan's: the op table empties and the runtime drops promptly.

mod support;

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use ringloop::buf::{IoBuf, IoBufMut};
use ringloop::{Backend, Handle, Runtime, op};
use support::{pipe, watchdog, write_all};

/// How long a wait on the loop may take before the test calls it stuck.
const WAIT_LIMIT: Duration = Duration::from_secs(5);
/// How long dropping the runtime may take before the watchdog calls it a hang.
const DROP_LIMIT: Duration = Duration::from_secs(10);

/// How long the runtime's drop may wait for cancelled ops: far beyond the watchdog, so a drop
/// that waits for an op that will never finish trips the watchdog instead of passing slowly.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(120);

/// A runtime on exactly `backend` whose drop waits up to [`SHUTDOWN_GRACE`] for ops.
fn runtime(backend: Backend) -> Runtime {
    support::runtime_with_shutdown_grace(backend, SHUTDOWN_GRACE)
}

thread_local! {
    /// Ops a [`DropStashOnWake`] waker drops when it is woken.
    static STASH: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// A waker that drops every op in [`STASH`] when woken: the driver wakes it while it is
/// borrowed, reaping the completion of the op it was given to.
struct DropStashOnWake;

impl Wake for DropStashOnWake {
    fn wake(self: Arc<Self>) {
        let stash = STASH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        drop(stash);
    }
}

/// A read buffer that owns another op: dropping the buffer drops that op.
struct BufHoldingOp {
    bytes: Vec<u8>,
    _held: Box<dyn Any>,
}

// SAFETY: the pointer is the Vec's heap allocation, which does not move with the struct and is
// never reallocated while lent out; len/capacity bound it.
unsafe impl IoBuf for BufHoldingOp {
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

// SAFETY: as for `IoBuf`; `set_init` only grows `len` up to bytes the kernel initialised.
unsafe impl IoBufMut for BufHoldingOp {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.bytes.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        if pos > self.bytes.len() {
            // SAFETY: the caller guarantees the first `pos` bytes are initialised, within the
            // Vec's capacity.
            unsafe { self.bytes.set_len(pos) };
        }
    }
}

/// Polls `fut` once with the current task's context.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

/// A read of `fd` submitted to the running loop (polled once: it is in flight).
async fn read_in_flight(fd: &OwnedFd) -> Box<dyn Any> {
    let mut read = op::read(fd.as_raw_fd(), Vec::with_capacity(8));
    assert!(poll_once(&mut read).await.is_pending(), "nobody wrote yet");
    Box::new(read)
}

/// Yields to the loop until the op table is empty; panics after [`WAIT_LIMIT`].
async fn until_no_ops_in_flight(what: &str) {
    let h = Handle::current();
    let deadline = Instant::now() + WAIT_LIMIT;
    while h.inflight_ops() != 0 && Instant::now() < deadline {
        ringloop::yield_now().await;
    }
    assert_eq!(
        h.inflight_ops(),
        0,
        "{what}: ops still in the op table after {WAIT_LIMIT:?}"
    );
}

/// Drops `rt` under a watchdog.
fn drop_runtime(rt: Runtime, what: &str) {
    let dog = watchdog(DROP_LIMIT, what);
    drop(rt);
    dog.disarm();
}

both_backends! {
    /// A waker run by the driver while it reaps a completion drops another in-flight op: that
    /// op is cancelled and its slot freed, so the op table empties and the runtime drops fast.
    fn op_dropped_by_a_waker_the_driver_runs(backend: Backend) {
        let rt = runtime(backend);
        let (rx_a, tx_a) = pipe();
        let (rx_b, _tx_b) = pipe();
        rt.block_on(async {
            // A: polled with the waker that drops the stash when A completes.
            let mut a = op::read(rx_a.as_raw_fd(), Vec::with_capacity(8));
            let waker = Waker::from(Arc::new(DropStashOnWake));
            let polled = Pin::new(&mut a).poll(&mut Context::from_waker(&waker));
            assert!(polled.is_pending(), "nobody wrote to A yet");
            // B: in flight on a pipe nobody writes to, stashed for the waker to drop.
            let b = read_in_flight(&rx_b).await;
            STASH.with(|s| s.borrow_mut().push(b));
            assert_eq!(Handle::current().inflight_ops(), 2);

            write_all(&tx_a, b"x");
            let deadline = Instant::now() + WAIT_LIMIT;
            while STASH.with(|s| !s.borrow().is_empty()) && Instant::now() < deadline {
                ringloop::yield_now().await;
            }
            assert!(
                STASH.with(|s| s.borrow().is_empty()),
                "A's completion did not wake its waker within {WAIT_LIMIT:?}"
            );
            let (res, buf) = a.await;
            assert_eq!(res.expect("read A"), 1);
            assert_eq!(buf, b"x");
            until_no_ops_in_flight("B dropped by A's waker").await;
        });
        drop_runtime(rt, "runtime after an op was dropped by a waker");
    }

    /// Dropping an in-flight op whose buffer owns another in-flight op: the buffer is dropped
    /// by the driver when the first op's cancellation completes, which drops the second op
    /// inside the driver; both are cancelled and both slots freed.
    fn op_dropped_by_an_orphans_buffer(backend: Backend) {
        let rt = runtime(backend);
        let (rx_a, _tx_a) = pipe();
        let (rx_b, _tx_b) = pipe();
        rt.block_on(async {
            let b = read_in_flight(&rx_b).await;
            let buf = BufHoldingOp {
                bytes: Vec::with_capacity(8),
                _held: b,
            };
            let mut a = op::read(rx_a.as_raw_fd(), buf);
            assert!(poll_once(&mut a).await.is_pending(), "nobody wrote to A yet");
            // Let A reach the kernel, so its cancellation completes inside a later park.
            ringloop::yield_now().await;
            assert_eq!(Handle::current().inflight_ops(), 2);
            drop(a);
            until_no_ops_in_flight("B dropped with A's buffer").await;
        });
        drop_runtime(rt, "runtime after an op was dropped with an orphan's buffer");
    }
}
