//! An op the runtime's shutdown cancels reports `ECANCELED` — the error adopters (the `net`
//! types that take over a dropped read) and `Op::cancel` callers look for — even when it had a
//! deadline of its own: shutdown is a cancel, not a timeout.

mod support;

use std::future::Future;
use std::os::fd::AsRawFd as _;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ringloop::{Backend, Runtime, op};
use support::{pipe, watchdog};

/// A deadline far beyond the test's life: the op cannot time out by itself.
const DEADLINE: Duration = Duration::from_secs(600);
/// How long dropping the runtime may take before the watchdog calls it a hang.
const DROP_LIMIT: Duration = Duration::from_secs(10);

/// How long the runtime's drop may wait for cancelled ops: far beyond the watchdog, so a drop
/// that waits for an op that will never finish trips the watchdog instead of passing slowly.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(120);

/// A runtime on exactly `backend` whose drop waits up to [`SHUTDOWN_GRACE`] for ops.
fn runtime(backend: Backend) -> Runtime {
    support::runtime_with_shutdown_grace(backend, SHUTDOWN_GRACE)
}

both_backends! {
    /// A read with a deadline, in flight when the runtime is dropped, completes with
    /// `ECANCELED` (not `ETIMEDOUT`); its future, kept past the runtime, collects that result,
    /// and the drop does not wait for that finished-but-uncollected op.
    fn deadline_op_in_flight_at_shutdown_reports_cancelled(backend: Backend) {
        let rt = runtime(backend);
        let (rx, _tx) = pipe();
        // The op leaves `block_on` unawaited on purpose: it must outlive the runtime.
        #[allow(clippy::async_yields_async)]
        let mut read = rt.block_on(async {
            let mut read = op::read(rx.as_raw_fd(), Vec::with_capacity(8)).timeout(DEADLINE);
            let polled = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut read).poll(cx))).await;
            assert!(polled.is_pending(), "nobody wrote to the pipe");
            ringloop::yield_now().await;
            read
        });
        let dog = watchdog(DROP_LIMIT, "dropping a runtime with a deadline read in flight");
        drop(rt);
        dog.disarm();
        let Poll::Ready((res, _buf)) =
            Pin::new(&mut read).poll(&mut Context::from_waker(Waker::noop()))
        else {
            panic!("the shutdown did not complete the read it cancelled");
        };
        let err = res.expect_err("nobody wrote: the read cannot have succeeded");
        assert_eq!(
            err.raw_os_error(),
            Some(libc::ECANCELED),
            "a read cancelled by the shutdown reports ECANCELED, got {err} ({:?})",
            err.kind()
        );
    }
}
