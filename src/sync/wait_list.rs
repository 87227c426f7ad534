//! A FIFO list of tasks waiting on one condition of a single-loop primitive: the building block
//! of [`Lock`](super), `Semaphore`, `Condition`, `Event` and the queues.
//!
//! It carries wake-ups, not state: the primitive keeps its own state (locked, permits, items)
//! and a woken waiter checks it again. This is asyncio's model, and it makes cancellation
//! simple to get right:
//!
//! * [`WaitList::notify_one`] wakes the longest-waiting task that has not been woken yet;
//!   [`WaitList::notify_all`] wakes every one.
//! * A woken waiter stays on the list until its [`Wait`] future is polled (and completes) or
//!   dropped, so [`WaitList::is_empty`] is false while a wake-up is on its way. A primitive's
//!   fast path ("free and nobody waiting: take it") therefore never barges in front of a task
//!   it has already woken: waiters are served in FIFO order.
//! * A [`Wait`] dropped after it was woken but before it completed — its task was cancelled
//!   in between — passes the wake-up on to the next waiter, so a cancelled `acquire` never
//!   loses a release. A `Wait` dropped while still waiting just leaves the list.
//!
//! Single-loop types (`Rc`, `Cell`, `RefCell`): no atomics on the hot path, and `!Send`, so
//! the compiler keeps them on their loop. Cross-thread handoff uses the channels instead.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use slab::Slab;

/// A FIFO of waiting tasks; see the module docs.
#[derive(Default)]
pub(crate) struct WaitList {
    inner: RefCell<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Every registered waiter, woken or not, by key.
    waiters: Slab<Waiter>,
    /// The waiters not yet woken, oldest first, as (key, seq). A waiter dropped before it
    /// was woken leaves its entry behind, stale (its slab slot is gone or reused, with another
    /// seq), skipped when it reaches the front: leaving is O(1) however long the list.
    queue: VecDeque<(usize, u64)>,
    /// Stale entries in `queue`; the queue is compacted when they are the majority.
    stale: usize,
    /// The seq of the last waiter registered (seqs are never reused).
    seq: u64,
}

struct Waiter {
    seq: u64,
    woken: bool,
    waker: Option<Waker>,
}

impl Inner {
    /// Removes the oldest waiter not yet woken from the queue and marks it woken; returns its
    /// waker.
    fn wake_front(&mut self) -> Option<Option<Waker>> {
        while let Some((key, seq)) = self.queue.pop_front() {
            match self.waiters.get_mut(key) {
                Some(waiter) if waiter.seq == seq => {
                    waiter.woken = true;
                    return Some(waiter.waker.take());
                }
                _ => self.stale -= 1,
            }
        }
        None
    }

    /// Marks a queue entry stale (its waiter left before it was woken), compacting the queue
    /// when stale entries outnumber live ones.
    fn left_queue(&mut self) {
        self.stale += 1;
        if self.stale > 32 && self.stale * 2 > self.queue.len() {
            let waiters = &self.waiters;
            self.queue
                .retain(|&(key, seq)| waiters.get(key).is_some_and(|w| w.seq == seq));
            self.stale = 0;
        }
    }
}

impl WaitList {
    /// No task is waiting, and no woken task has yet to run.
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.borrow().waiters.is_empty()
    }

    /// Tasks registered (waiting or woken and not yet run).
    pub(crate) fn len(&self) -> usize {
        self.inner.borrow().waiters.len()
    }

    /// Waits for a wake-up. The task is registered at its first poll, at the back of the list.
    pub(crate) fn wait(&self) -> Wait<'_> {
        Wait {
            list: self,
            key: None,
        }
    }

    /// Wakes the longest-waiting task not woken yet; false if there is none.
    pub(crate) fn notify_one(&self) -> bool {
        let Some(waker) = self.inner.borrow_mut().wake_front() else {
            return false;
        };
        // Woken with no borrow held: a waker may run code that uses this list.
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Wakes up to `n` tasks, oldest first; returns how many were woken.
    pub(crate) fn notify(&self, n: usize) -> usize {
        let mut woken = 0;
        while woken < n && self.notify_one() {
            woken += 1;
        }
        woken
    }

    /// Wakes every task waiting now (not those that start waiting after); returns how many.
    pub(crate) fn notify_all(&self) -> usize {
        // Every entry, stale or not: `notify` stops when the queue runs out, and no task can
        // register while this runs (registering needs a poll).
        let n = self.inner.borrow().queue.len();
        self.notify(n)
    }
}

/// Waits for a [`WaitList`] wake-up; returned by [`WaitList::wait`].
///
/// Dropped after the wake-up but before completing, it passes the wake-up on.
#[must_use = "a Wait does nothing until awaited"]
pub(crate) struct Wait<'a> {
    list: &'a WaitList,
    /// The waiter's key once registered.
    key: Option<usize>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.list.inner.borrow_mut();
        let Some(key) = self.key else {
            inner.seq += 1;
            let seq = inner.seq;
            let key = inner.waiters.insert(Waiter {
                seq,
                woken: false,
                waker: Some(cx.waker().clone()),
            });
            inner.queue.push_back((key, seq));
            drop(inner);
            self.key = Some(key);
            return Poll::Pending;
        };
        let waiter = &mut inner.waiters[key];
        if waiter.woken {
            inner.waiters.remove(key);
            drop(inner);
            self.key = None;
            return Poll::Ready(());
        }
        match &mut waiter.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let woken = {
            let mut inner = self.list.inner.borrow_mut();
            let waiter = inner.waiters.remove(key);
            if !waiter.woken {
                inner.left_queue();
            }
            waiter.woken
        };
        if woken {
            // Woken, then cancelled before it ran: the wake-up was meant for someone.
            self.list.notify_one();
        }
    }
}

#[cfg(test)]
#[path = "wait_list_tests.rs"]
mod tests;
