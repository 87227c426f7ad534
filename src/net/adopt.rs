//! Adopting dropped operations, so that cancelling by drop loses nothing.
//!
//! A socket method's future may be dropped while the kernel owns its op (a `timeout` or a
//! `select` gave up on it). Cancelling the op then races its completion: a datagram, the bytes
//! of a read or a connection may already be in the op's hands, and dropping the op would drop
//! them. Instead the socket *adopts* the op: [`AdoptOnDrop`] moves it, still in flight, into the
//! socket's [`Adopted`] slot, and the socket's next call first [`resume`]s it and uses its
//! result. Dropping the socket drops the adopted op, which cancels it in the kernel.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use socket2::SockAddr;

use crate::op::{self, Op, Operation};

/// A socket's slot for one adopted op, already mapped to the result the socket needs.
pub(crate) type Adopted<T> = RefCell<Option<Pin<Box<dyn Future<Output = T>>>>>;

/// Awaits the adopted op, if there is one. If this await is itself dropped, the op goes back
/// into the slot for the next call.
pub(crate) async fn resume<T>(slot: &Adopted<T>) -> Option<T> {
    let adopted = slot.borrow_mut().take()?;
    let mut guard = PutBack {
        slot,
        adopted: Some(adopted),
    };
    let out = poll_fn(|cx| {
        let adopted = guard.adopted.as_mut().expect("present until ready");
        adopted.as_mut().poll(cx)
    })
    .await;
    guard.adopted = None;
    Some(out)
}

struct PutBack<'a, T> {
    slot: &'a Adopted<T>,
    adopted: Option<Pin<Box<dyn Future<Output = T>>>>,
}

impl<T> Drop for PutBack<'_, T> {
    fn drop(&mut self) {
        if let Some(adopted) = self.adopted.take() {
            *self.slot.borrow_mut() = Some(adopted);
        }
    }
}

/// Awaits `op`; if dropped while the kernel owns it, moves it into `slot`, its output mapped
/// by `adopt` (which runs when the adopted op completes).
pub(crate) struct AdoptOnDrop<
    'a,
    O: Operation,
    T: 'static,
    F: FnOnce(O::Output) -> T + Unpin + 'static,
> {
    slot: &'a Adopted<T>,
    op: Option<Op<O>>,
    adopt: Option<F>,
}

impl<'a, O: Operation, T: 'static, F: FnOnce(O::Output) -> T + Unpin + 'static>
    AdoptOnDrop<'a, O, T, F>
{
    pub(crate) fn new(slot: &'a Adopted<T>, op: Op<O>, adopt: F) -> Self {
        AdoptOnDrop {
            slot,
            op: Some(op),
            adopt: Some(adopt),
        }
    }
}

impl<O: Operation, T: 'static, F: FnOnce(O::Output) -> T + Unpin + 'static> Future
    for AdoptOnDrop<'_, O, T, F>
{
    type Output = O::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O::Output> {
        // Ops and the closure are Unpin, so the future is too.
        let this = &mut *self;
        let op = this.op.as_mut().expect("polled after completion");
        let out = std::task::ready!(Pin::new(op).poll(cx));
        this.op = None;
        Poll::Ready(out)
    }
}

impl<O: Operation, T: 'static, F: FnOnce(O::Output) -> T + Unpin + 'static> Drop
    for AdoptOnDrop<'_, O, T, F>
{
    fn drop(&mut self) {
        let (Some(op), Some(adopt)) = (self.op.take(), self.adopt.take()) else {
            return;
        };
        if op.is_in_flight() {
            *self.slot.borrow_mut() = Some(Box::pin(async move { adopt(op.await) }));
        }
    }
}

/// A listener's slot for an adopted accept.
pub(crate) type AdoptedAccept = Adopted<io::Result<(OwnedFd, SockAddr)>>;

/// Accepts on listening socket `fd`; a connection an earlier, dropped accept received (held
/// in `slot`) comes first, and an accept dropped now is adopted into `slot`.
pub(crate) async fn accept(fd: RawFd, slot: &AdoptedAccept) -> io::Result<(OwnedFd, SockAddr)> {
    let rescued = match resume(slot).await {
        // An adopted accept cancelled by runtime shutdown: accept afresh.
        Some(Err(e)) if e.raw_os_error() == Some(libc::ECANCELED) => None,
        other => other,
    };
    match rescued {
        Some(result) => result,
        None => AdoptOnDrop::new(slot, op::accept(fd), std::convert::identity).await,
    }
}
