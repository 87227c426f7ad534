//! The loop's timers: a slab of entries and a min-heap of deadlines.
//!
//! Insert is O(log n); cancel is O(1) (the slab entry goes, its heap entry becomes stale and
//! is skipped when it surfaces); the heap is compacted when stale entries outnumber live ones,
//! so creating and cancelling many timeouts does not grow memory. Entries with equal deadlines
//! fire in the order they were created (the sequence number breaks ties).
//!
//! The heap is our own ([`DueHeap`]), not `std`'s `BinaryHeap`, for two reasons measured on
//! the `timeout_cancel` benchmark (a timeout registered and dropped at once, the commonest
//! life of a timeout):
//! * Cancelling the newest timer removes its heap entry outright when it is still the last
//!   one (a later deadline than every other, the usual case for a fresh timeout), so that
//!   pattern leaves no stale entries and never compacts. `BinaryHeap` cannot pop its last
//!   element.
//! * A push keeps the new entry in registers while it sifts up and writes it once. In
//!   `BinaryHeap::push` it is written and read straight back, and as `Instant` is a word and a
//!   32-bit field, the compiler may read the 32-bit half back as a word — a load the CPU cannot
//!   forward from the narrower store, which stalled every registration in one build and not in
//!   another.

use std::task::Waker;
use std::time::Instant;

use slab::Slab;

use super::context::Callback;

/// Identifies a timer entry: slab key plus a sequence number that is never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerKey {
    key: usize,
    seq: u64,
}

enum Action {
    Wake(Option<Waker>),
    Call(Callback),
}

struct Entry {
    seq: u64,
    action: Action,
}

/// A heap entry, ordered by deadline, then by creation (`seq`); `key` is the slab slot.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    when: Instant,
    seq: u64,
    key: usize,
}

/// A min-heap of [`Due`] entries in a `Vec` (the children of `i` at `2i + 1` and `2i + 2`).
#[derive(Default)]
struct DueHeap(Vec<Due>);

impl DueHeap {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn peek(&self) -> Option<&Due> {
        self.0.first()
    }

    /// Takes the entry's fields, not a `Due`: a `Due` is passed by pointer, to memory the
    /// caller has just written field by field, and copying it from there with wider loads
    /// stalled (see the module docs); the fields come in registers.
    #[inline]
    fn push(&mut self, when: Instant, seq: u64, key: usize) {
        let due = Due { when, seq, key };
        let mut hole = self.0.len();
        self.0.push(due);
        while hole > 0 {
            let parent = (hole - 1) / 2;
            if self.0[parent] <= due {
                break;
            }
            self.0[hole] = self.0[parent];
            hole = parent;
        }
        self.0[hole] = due;
    }

    fn pop(&mut self) -> Option<Due> {
        let last = self.0.pop()?;
        let Some(&top) = self.0.first() else {
            return Some(last);
        };
        // `last` sifts down from the root.
        let len = self.0.len();
        let mut hole = 0;
        loop {
            let left = 2 * hole + 1;
            if left >= len {
                break;
            }
            let child = if left + 1 < len && self.0[left + 1] < self.0[left] {
                left + 1
            } else {
                left
            };
            if last <= self.0[child] {
                break;
            }
            self.0[hole] = self.0[child];
            hole = child;
        }
        self.0[hole] = last;
        Some(top)
    }

    /// Removes `due` if it is the last entry (removing a leaf keeps the heap a heap).
    fn remove_if_last(&mut self, due: impl FnOnce(&Due) -> bool) -> bool {
        if self.0.last().is_some_and(due) {
            self.0.pop();
            return true;
        }
        false
    }

    /// Keeps the entries `keep` accepts (a sorted array is a heap).
    fn retain(&mut self, keep: impl FnMut(&Due) -> bool) {
        self.0.retain(keep);
        self.0.sort_unstable();
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

#[derive(Default)]
pub struct Timers {
    entries: Slab<Entry>,
    heap: DueHeap,
    seq: u64,
}

impl Timers {
    // Inlined into `insert_waker` and `insert_callback`, so that the `Action` is built where
    // the slab stores it: passed by pointer, it was written by the caller and copied here with
    // a load wider than the caller's stores, which the CPU cannot forward (a stall on every
    // timer registration).
    #[inline(always)]
    fn insert(&mut self, when: Instant, action: Action) -> TimerKey {
        self.seq += 1;
        let seq = self.seq;
        let key = self.entries.insert(Entry { seq, action });
        self.heap.push(when, seq, key);
        TimerKey { key, seq }
    }

    /// A timer that wakes `waker` at `when`.
    pub fn insert_waker(&mut self, when: Instant, waker: Waker) -> TimerKey {
        self.insert(when, Action::Wake(Some(waker)))
    }

    /// A timer that queues `cb` as a ready callback at `when`.
    pub fn insert_callback(&mut self, when: Instant, cb: Callback) -> TimerKey {
        self.insert(when, Action::Call(cb))
    }

    fn entry_mut(&mut self, t: TimerKey) -> Option<&mut Entry> {
        self.entries.get_mut(t.key).filter(|e| e.seq == t.seq)
    }

    /// Whether the timer has not fired (nor been removed).
    pub fn is_pending(&self, t: TimerKey) -> bool {
        self.entries.get(t.key).is_some_and(|e| e.seq == t.seq)
    }

    /// Replaces the waker of a pending timer.
    pub fn set_waker(&mut self, t: TimerKey, waker: &Waker) {
        if let Some(Entry {
            action: Action::Wake(w),
            ..
        }) = self.entry_mut(t)
        {
            match w {
                Some(old) if old.will_wake(waker) => {}
                _ => *w = Some(waker.clone()),
            }
        }
    }

    /// Cancels a timer.
    pub fn remove(&mut self, t: TimerKey) {
        if self.is_pending(t) {
            self.entries.remove(t.key);
            if self.heap.remove_if_last(|due| due.seq == t.seq) {
                return;
            }
            if self.heap.len() > 64 && self.heap.len() > 2 * self.entries.len() {
                let entries = &self.entries;
                self.heap
                    .retain(|due| entries.get(due.key).is_some_and(|e| e.seq == due.seq));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes every timer due at `now`: wakers go to `wake`, callbacks to `calls` (the caller
    /// wakes and queues them once it holds no borrow). Returns the next deadline.
    pub fn fire(
        &mut self,
        now: Instant,
        wake: &mut Vec<Waker>,
        calls: &mut Vec<Callback>,
    ) -> Option<Instant> {
        while let Some(&Due { when, seq, key }) = self.heap.peek() {
            if self.entries.get(key).is_none_or(|e| e.seq != seq) {
                self.heap.pop();
                continue;
            }
            if when > now {
                return Some(when);
            }
            self.heap.pop();
            match self.entries.remove(key).action {
                Action::Wake(Some(w)) => wake.push(w),
                Action::Wake(None) => {}
                Action::Call(cb) => calls.push(cb),
            }
        }
        None
    }

    /// Drops every timer (runtime shutdown).
    pub fn clear(&mut self) -> Vec<Callback> {
        self.heap.clear();
        self.entries
            .drain()
            .filter_map(|e| match e.action {
                Action::Call(cb) => Some(cb),
                Action::Wake(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "timer_tests.rs"]
mod tests;
