//! Adopting dropped operations, so that cancelling by drop loses nothing.
//!
//! A socket method's future may be dropped while the kernel owns its op (a `timeout` or a
//! `select` gave up on it). Cancelling the op then races its completion: a datagram, the bytes
//! of a read or a connection may already be in the op's hands, and dropping the op would drop
//! them. Instead the socket *adopts* the op: [`AdoptOnDrop`] moves it, still in flight, into the
//! socket's [`Adopted`] slot, and the socket's next call first [`resume`]s it and uses its
//! result. Dropping the socket drops the adopted op, which cancels it in the kernel.
//!
//! A slot holds one op, so only one receive of a socket may own an op at a time: every
//! receive first takes the slot's [`Turn`](super::turn), and keeps it while it resumes the
//! adopted op and while its own op is in flight. Two receives dropped together therefore
//! leave one adopted op, never two competing for the slot.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use socket2::SockAddr;

use super::turn::{TakeTurn, Turn};
use crate::op::{self, Op, Operation};

/// An adopted op, already mapped to the result the socket needs.
type AdoptedOp<T> = Pin<Box<dyn Future<Output = T>>>;

/// A socket's slot for one adopted op, and the turn its receives take (see the module docs).
pub(crate) struct Adopted<T> {
    op: RefCell<Option<AdoptedOp<T>>>,
    turn: Turn,
}

impl<T> Default for Adopted<T> {
    fn default() -> Self {
        Adopted {
            op: RefCell::new(None),
            turn: Turn::default(),
        }
    }
}

impl<T> Adopted<T> {
    /// Waits until no other receive of the socket owns an op or waits to; the guard keeps
    /// the turn until dropped.
    pub(crate) fn take_turn(&self) -> TakeTurn<'_> {
        self.turn.take()
    }

    /// Whether no receive owns the turn (for a poll-based read, which takes none); if one
    /// does, `waker` is woken when it lets go. See [`Turn::poll_free`].
    pub(crate) fn poll_turn_free(&self, waker: &std::task::Waker) -> bool {
        self.turn.poll_free(waker)
    }

    /// Whether an adopted op is in the slot.
    pub(crate) fn is_occupied(&self) -> bool {
        self.op.borrow().is_some()
    }

    /// Drops the adopted op, if any, which cancels it in the kernel.
    pub(crate) fn cancel(&self) {
        let op = self.op.borrow_mut().take();
        drop(op);
    }

    /// Puts `op` into the slot. The turn keeps receives from filling it twice; only a
    /// dropped receive stream, which reads without the turn, can have filled it meanwhile
    /// (one way of reading per stream is documented): that op is then dropped, cancelled.
    pub(crate) fn put(&self, op: AdoptedOp<T>) {
        let old = self.op.borrow_mut().replace(op);
        drop(old);
    }
}

/// Awaits the adopted op, if there is one. If this await is itself dropped, the op goes back
/// into the slot for the next call. Call it holding the slot's turn.
pub(crate) async fn resume<T>(slot: &Adopted<T>) -> Option<T> {
    let adopted = slot.op.borrow_mut().take()?;
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
    adopted: Option<AdoptedOp<T>>,
}

impl<T> Drop for PutBack<'_, T> {
    fn drop(&mut self) {
        if let Some(adopted) = self.adopted.take() {
            self.slot.put(adopted);
        }
    }
}

/// Awaits `op`; if dropped while the kernel owns it, moves it into `slot`, its output mapped
/// by `adopt` (which runs when the adopted op completes). Await it holding the slot's turn,
/// after [`resume`] emptied the slot.
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
            self.slot.put(Box::pin(async move { adopt(op.await) }));
        }
    }
}

/// Polls the adopted op in `slot`, if there is one: `Ready(None)` when the slot is empty.
pub(crate) fn poll_adopted<T>(slot: &Adopted<T>, cx: &mut Context<'_>) -> Poll<Option<T>> {
    let mut adopted = slot.op.borrow_mut();
    let Some(op) = adopted.as_mut() else {
        return Poll::Ready(None);
    };
    let out = std::task::ready!(op.as_mut().poll(cx));
    *adopted = None;
    Poll::Ready(Some(out))
}

/// A listener's slot for an adopted accept.
pub(crate) type AdoptedAccept = Adopted<io::Result<(OwnedFd, SockAddr)>>;

/// Accepts on listening socket `fd`; a connection an earlier, dropped accept received (held
/// in `slot`) comes first, and an accept dropped now is adopted into `slot`.
pub(crate) async fn accept(fd: RawFd, slot: &AdoptedAccept) -> io::Result<(OwnedFd, SockAddr)> {
    let _turn = slot.take_turn().await;
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
