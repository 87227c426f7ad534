//! One receive at a time per socket: reads of a stream, accepts of a listener, receives of
//! a datagram socket.
//!
//! Socket methods take `&self`, so two receives of one socket can be started together
//! (`join`, two tasks sharing the socket). If both were in the kernel at once, nothing would
//! say which of them got the earlier bytes — io_uring may serve the later-armed one first —
//! and if both were dropped, only one could be adopted (see [`adopt`](super::adopt)): the
//! other's bytes, datagram or connection would be lost. So a receive first takes its socket's
//! [`Turn`]: receives run one after another, first come first served, and a receive waiting
//! for its turn owns no op, so dropping it loses nothing.
//!
//! # Implementation
//!
//! `held` says a receive owns the turn; `queue` (boxed on the first contention, so an idle
//! socket pays 16 bytes, not a queue) holds the receives that asked for it, each under a
//! ticket, with the waker of its last poll. Releasing the turn wakes the first in the queue,
//! which takes the turn when polled (a newcomer queues behind it). A waiting receive that is
//! dropped leaves the queue, passing the wake-up on if it was first.
//!
//! A poll-based read (futures-io or tokio `poll_read`) owns no turn across polls: it only
//! runs while the turn is free, and leaves its op in the socket's adopted slot, which the
//! next holder of the turn resumes first. While the turn is held it waits as `polled`, a
//! single waker (a stream has one poll-based reader: the traits take `&mut self`) woken
//! whenever the turn is released.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A socket's receive side, owned by one receive at a time; see the module docs.
#[derive(Default)]
pub(crate) struct Turn {
    /// A receive owns the turn (a [`TurnGuard`] is alive).
    held: Cell<bool>,
    /// Receives waiting for the turn; `None` until the first one had to wait.
    queue: RefCell<Option<Box<Queue>>>,
}

#[derive(Default)]
struct Queue {
    /// Waiting receives in arrival order: ticket and waker.
    waiting: VecDeque<(u64, Waker)>,
    next_ticket: u64,
    /// The poll-based reader waiting for the turn to be free (see the module docs).
    polled: Option<Waker>,
}

impl Turn {
    /// The waker of the first waiting receive, if the turn is free.
    fn wake_first(&self) -> Option<Waker> {
        if self.held.get() {
            return None;
        }
        let queue = self.queue.borrow();
        queue.as_ref()?.waiting.front().map(|(_, w)| w.clone())
    }
}

impl Turn {
    /// Whether no receive owns the turn. If one does, `waker` is woken when it lets go (and
    /// whenever the turn is released later, until the next call replaces it). A reader that
    /// has an op in flight calls this on every poll, so the holder of the turn taking that
    /// op over wakes it when done.
    pub(crate) fn poll_free(&self, waker: &Waker) -> bool {
        let mut queue = self.queue.borrow_mut();
        let free = !self.held.get();
        let q = queue.get_or_insert_with(Box::default);
        let old = match &mut q.polled {
            Some(w) if w.will_wake(waker) => None,
            slot => slot.replace(waker.clone()),
        };
        drop(queue);
        // A second poll-based reader (through two `&mut` paths to one stream) is not lost:
        // the one replaced is woken to register again.
        if let Some(old) = old {
            old.wake();
        }
        free
    }

    /// Wakes the poll-based reader waiting on the turn, if any.
    fn wake_polled(&self) {
        let waker = self
            .queue
            .borrow_mut()
            .as_deref_mut()
            .and_then(|q| q.polled.take());
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Waits until no other receive owns the turn, then owns it until the guard is dropped.
    pub(crate) fn take(&self) -> TakeTurn<'_> {
        TakeTurn {
            turn: self,
            ticket: None,
        }
    }
}

/// Future of [`Turn::take`].
pub(crate) struct TakeTurn<'a> {
    turn: &'a Turn,
    /// Our place in the queue, once we had to wait.
    ticket: Option<u64>,
}

impl<'a> Future for TakeTurn<'a> {
    type Output = TurnGuard<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TurnGuard<'a>> {
        let turn = self.turn;
        let mut queue = turn.queue.borrow_mut();
        let first = match (self.ticket, queue.as_deref()) {
            (None, q) => q.is_none_or(|q| q.waiting.is_empty()),
            (Some(t), Some(q)) => q.waiting.front().is_some_and(|(f, _)| *f == t),
            (Some(_), None) => unreachable!("a ticket without a queue"),
        };
        if !turn.held.get() && first {
            if self.ticket.take().is_some()
                && let Some(q) = queue.as_deref_mut()
            {
                q.waiting.pop_front();
            }
            turn.held.set(true);
            return Poll::Ready(TurnGuard { turn });
        }
        let q = queue.get_or_insert_with(Box::default);
        match self.ticket {
            None => {
                let ticket = q.next_ticket;
                q.next_ticket += 1;
                q.waiting.push_back((ticket, cx.waker().clone()));
                self.ticket = Some(ticket);
            }
            Some(t) => {
                if let Some((_, w)) = q.waiting.iter_mut().find(|(f, _)| *f == t) {
                    w.clone_from(cx.waker());
                }
            }
        }
        Poll::Pending
    }
}

impl Drop for TakeTurn<'_> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket else {
            return;
        };
        if let Some(q) = self.turn.queue.borrow_mut().as_deref_mut() {
            q.waiting.retain(|(t, _)| *t != ticket);
        }
        let next = self.turn.wake_first();
        // Woken outside the borrow. (Waking one that was already woken is harmless.)
        if let Some(w) = next {
            w.wake();
        }
    }
}

/// Owns a socket's receive turn; dropping it lets the next waiting receive go.
pub(crate) struct TurnGuard<'a> {
    turn: &'a Turn,
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        self.turn.held.set(false);
        let next = self.turn.wake_first();
        if let Some(w) = next {
            w.wake();
        }
        self.turn.wake_polled();
    }
}
