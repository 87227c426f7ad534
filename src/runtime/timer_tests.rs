//! Unit tests of the timer heap: no syscalls, so they also run under miri (`ci/miri.sh`).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use super::Timers;
use crate::runtime::context::Callback;

/// A waker that records its label in a shared log when woken.
struct Labelled {
    label: u32,
    log: Arc<Mutex<Vec<u32>>>,
}

impl Wake for Labelled {
    fn wake(self: Arc<Self>) {
        self.log.lock().unwrap().push(self.label);
    }
}

fn waker(label: u32, log: &Arc<Mutex<Vec<u32>>>) -> Waker {
    Waker::from(Arc::new(Labelled {
        label,
        log: Arc::clone(log),
    }))
}

/// Fires every timer due at `now`, wakes them in order, and returns the labels woken.
fn fire(timers: &mut Timers, now: Instant, log: &Arc<Mutex<Vec<u32>>>) -> Vec<u32> {
    let (mut wake, mut calls) = (Vec::new(), Vec::new());
    timers.fire(now, &mut wake, &mut calls);
    assert!(calls.is_empty());
    wake.into_iter().for_each(Waker::wake);
    std::mem::take(&mut *log.lock().unwrap())
}

#[test]
fn timers_fire_in_deadline_order_and_ties_in_creation_order() {
    let log = Arc::default();
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut timers = Timers::default();
    for (label, at) in [(1, 30), (2, 10), (3, 20), (4, 10), (5, 0), (6, 20)] {
        timers.insert_waker(t0 + ms(at), waker(label, &log));
    }
    assert_eq!(fire(&mut timers, t0, &log), [5]);
    assert_eq!(fire(&mut timers, t0 + ms(15), &log), [2, 4]);
    assert_eq!(fire(&mut timers, t0 + ms(100), &log), [3, 6, 1]);
    assert!(timers.is_empty());
}

#[test]
fn fire_returns_the_next_live_deadline() {
    let log = Arc::default();
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut timers = Timers::default();
    let early = timers.insert_waker(t0 + ms(5), waker(1, &log));
    timers.insert_waker(t0 + ms(50), waker(2, &log));
    let (mut wake, mut calls) = (Vec::new(), Vec::new());
    assert_eq!(timers.fire(t0, &mut wake, &mut calls), Some(t0 + ms(5)));
    // A removed timer's stale heap entry does not count as the next deadline.
    timers.remove(early);
    assert_eq!(timers.fire(t0, &mut wake, &mut calls), Some(t0 + ms(50)));
    assert!(wake.is_empty());
}

#[test]
fn removed_timers_never_fire_and_keys_are_not_confused_after_reuse() {
    let log = Arc::default();
    let t0 = Instant::now();
    let mut timers = Timers::default();
    let first = timers.insert_waker(t0, waker(1, &log));
    assert!(timers.is_pending(first));
    timers.remove(first);
    assert!(!timers.is_pending(first));
    // The slab slot is reused; the old key must not reach the new timer.
    let second = timers.insert_waker(t0, waker(2, &log));
    assert!(!timers.is_pending(first));
    timers.remove(first);
    assert!(timers.is_pending(second));
    assert_eq!(fire(&mut timers, t0, &log), [2]);
    assert!(
        !timers.is_pending(second),
        "a fired timer is no longer pending"
    );
}

#[test]
fn set_waker_replaces_the_waker_of_a_pending_timer_only() {
    let log = Arc::default();
    let t0 = Instant::now();
    let mut timers = Timers::default();
    let key = timers.insert_waker(t0, waker(1, &log));
    timers.set_waker(key, &waker(2, &log));
    assert_eq!(fire(&mut timers, t0, &log), [2]);
    // On a fired timer: nothing happens.
    timers.set_waker(key, &waker(3, &log));
    assert_eq!(fire(&mut timers, t0, &log), Vec::<u32>::new());
}

#[test]
fn cancelling_many_timers_compacts_the_heap() {
    let log = Arc::default();
    let t0 = Instant::now();
    let mut timers = Timers::default();
    let keep = timers.insert_waker(t0 + Duration::from_secs(1), waker(0, &log));
    for round in 0..20u32 {
        let keys: Vec<_> = (0..50)
            .map(|i| timers.insert_waker(t0 + Duration::from_millis(u64::from(i)), waker(i, &log)))
            .collect();
        keys.into_iter().for_each(|k| timers.remove(k));
        assert!(
            timers.heap.len() <= 2 * 64 + 50,
            "round {round}: heap of {} entries for one live timer",
            timers.heap.len()
        );
    }
    assert!(timers.is_pending(keep));
    assert_eq!(fire(&mut timers, t0 + Duration::from_secs(2), &log), [0]);
}

#[test]
fn callbacks_go_to_the_caller_and_clear_returns_the_pending_ones() {
    let log = Arc::default();
    let t0 = Instant::now();
    let mut timers = Timers::default();
    let callback = |n: u32, ran: &Arc<Mutex<Vec<u32>>>| {
        let ran = Arc::clone(ran);
        Callback {
            cancelled: Arc::new(AtomicBool::new(false)),
            f: Box::new(move || ran.lock().unwrap().push(n)),
        }
    };
    timers.insert_callback(t0, callback(1, &log));
    timers.insert_callback(t0 + Duration::from_secs(60), callback(2, &log));
    timers.insert_waker(t0 + Duration::from_secs(60), waker(3, &log));
    let (mut wake, mut calls) = (Vec::new(), Vec::new());
    timers.fire(t0, &mut wake, &mut calls);
    assert!(wake.is_empty());
    calls.into_iter().for_each(|c| (c.f)());
    assert_eq!(std::mem::take(&mut *log.lock().unwrap()), [1]);
    // Shutdown: the pending callback comes back (to be dropped), the waker is dropped unwoken.
    let left = timers.clear();
    assert_eq!(left.len(), 1);
    assert!(timers.is_empty());
    drop(left);
    assert!(log.lock().unwrap().is_empty());
}

/// The heap against a sorted list: random pushes (with repeated deadlines) and pops, in
/// random order, always pop the least entry.
#[test]
fn due_heap_pops_in_order_under_random_pushes_and_pops() {
    use super::{Due, DueHeap};
    let t0 = Instant::now();
    // A fixed-seed xorshift, so a failure repeats.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut heap, mut model) = (DueHeap::default(), Vec::new());
    let rounds = if cfg!(miri) { 300 } else { 5000 };
    for seq in 0..rounds {
        if next() % 3 == 0 {
            model.sort_unstable();
            let want = (!model.is_empty()).then(|| model.remove(0));
            assert!(heap.pop() == want, "pop {seq}: heap and model disagree");
        } else {
            let due = Due {
                when: t0 + Duration::from_micros(next() % 50),
                seq,
                key: (next() % 8) as usize,
            };
            heap.push(due.when, due.seq, due.key);
            model.push(due);
        }
        assert_eq!(heap.len(), model.len());
    }
    model.sort_unstable();
    for (i, want) in model.into_iter().enumerate() {
        assert!(
            heap.pop() == Some(want),
            "drain {i}: heap and model disagree"
        );
    }
    assert!(heap.pop().is_none());
}

/// Cancelling the newest timer, still the heap's last entry, leaves no stale entry behind;
/// cancelling an older one leaves one, skipped when it surfaces.
#[test]
fn cancelling_the_newest_timer_leaves_no_stale_heap_entry() {
    let log = Arc::default();
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut timers = Timers::default();
    let first = timers.insert_waker(t0 + ms(10), waker(1, &log));
    for _ in 0..1000 {
        let newest = timers.insert_waker(t0 + ms(20), waker(2, &log));
        timers.remove(newest);
    }
    assert_eq!(timers.heap.len(), 1, "one live timer, one entry");
    let second = timers.insert_waker(t0 + ms(20), waker(3, &log));
    timers.remove(first);
    assert_eq!(timers.heap.len(), 2, "the older timer's entry stays, stale");
    assert!(timers.is_pending(second));
    assert_eq!(fire(&mut timers, t0 + ms(30), &log), [3]);
    assert_eq!(
        timers.heap.len(),
        0,
        "the stale entry went when it surfaced"
    );
}
