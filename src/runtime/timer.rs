//! The loop's timers: a slab of entries and a min-heap of deadlines.
//!
//! Insert is O(log n); cancel is O(1) (the slab entry goes, its heap entry becomes stale and
//! is skipped when it surfaces); the heap is compacted when stale entries outnumber live ones,
//! so creating and cancelling many timeouts does not grow memory. Entries with equal deadlines
//! fire in the order they were created (the sequence number breaks ties).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
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

#[derive(Default)]
pub struct Timers {
    entries: Slab<Entry>,
    heap: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    seq: u64,
}

impl Timers {
    fn insert(&mut self, when: Instant, action: Action) -> TimerKey {
        self.seq += 1;
        let seq = self.seq;
        let key = self.entries.insert(Entry { seq, action });
        self.heap.push(Reverse((when, seq, key)));
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
            if self.heap.len() > 64 && self.heap.len() > 2 * self.entries.len() {
                let entries = &self.entries;
                self.heap.retain(|Reverse((_, seq, key))| {
                    entries.get(*key).is_some_and(|e| e.seq == *seq)
                });
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
        while let Some(&Reverse((when, seq, key))) = self.heap.peek() {
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
