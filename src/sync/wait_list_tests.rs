//! Unit tests of the wait list, polled by hand: no loop, so they also run under miri.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use super::{Wait, WaitList};

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

struct Task {
    wakes: Arc<Count>,
    waker: Waker,
}

impl Task {
    fn new() -> Task {
        let wakes = Arc::new(Count::default());
        Task {
            waker: Waker::from(wakes.clone()),
            wakes,
        }
    }

    fn woken(&self) -> usize {
        self.wakes.0.load(Ordering::Relaxed)
    }

    fn poll(&self, wait: &mut Wait<'_>) -> Poll<()> {
        Pin::new(wait).poll(&mut Context::from_waker(&self.waker))
    }
}

#[test]
fn waiters_are_woken_oldest_first_and_stay_listed_until_they_run() {
    let list = WaitList::default();
    let tasks: Vec<_> = (0..3).map(|_| Task::new()).collect();
    let mut waits: Vec<_> = (0..3).map(|_| list.wait()).collect();
    for (task, wait) in tasks.iter().zip(&mut waits) {
        assert!(task.poll(wait).is_pending());
    }
    assert_eq!(list.len(), 3);

    assert!(list.notify_one());
    assert_eq!(tasks.iter().map(Task::woken).collect::<Vec<_>>(), [1, 0, 0]);
    assert!(!list.is_empty(), "a woken waiter counts until it runs");
    assert!(tasks[1].poll(&mut waits[1]).is_pending(), "not woken yet");
    assert!(tasks[0].poll(&mut waits[0]).is_ready());
    assert_eq!(list.len(), 2);

    assert!(list.notify_one());
    assert!(tasks[1].poll(&mut waits[1]).is_ready());
    assert!(list.notify_one());
    assert!(tasks[2].poll(&mut waits[2]).is_ready());
    assert!(list.is_empty());
    assert!(!list.notify_one(), "nobody left to wake");
}

#[test]
fn a_waiter_dropped_after_its_wake_up_passes_it_on() {
    let list = WaitList::default();
    let (a, b) = (Task::new(), Task::new());
    let (mut wait_a, mut wait_b) = (list.wait(), list.wait());
    assert!(a.poll(&mut wait_a).is_pending());
    assert!(b.poll(&mut wait_b).is_pending());
    assert!(list.notify_one());
    assert_eq!((a.woken(), b.woken()), (1, 0));
    drop(wait_a);
    assert_eq!(
        b.woken(),
        1,
        "the cancelled waiter's wake-up went to the next one"
    );
    assert!(b.poll(&mut wait_b).is_ready());
    assert!(list.is_empty());
}

#[test]
fn a_waiter_dropped_before_its_wake_up_leaves_without_taking_one() {
    let list = WaitList::default();
    let (a, b) = (Task::new(), Task::new());
    let (mut wait_a, mut wait_b) = (list.wait(), list.wait());
    assert!(a.poll(&mut wait_a).is_pending());
    assert!(b.poll(&mut wait_b).is_pending());
    drop(wait_a);
    assert_eq!(list.len(), 1);
    assert!(list.notify_one());
    assert_eq!(b.woken(), 1, "the wake-up skipped the departed waiter");
    assert!(b.poll(&mut wait_b).is_ready());
    // A Wait never polled was never registered: dropping it changes nothing.
    drop(list.wait());
    assert!(list.is_empty());
}

#[test]
fn notify_all_wakes_the_waiters_of_now_and_notify_counts() {
    let list = WaitList::default();
    let tasks: Vec<_> = (0..4).map(|_| Task::new()).collect();
    let mut waits: Vec<_> = (0..4).map(|_| list.wait()).collect();
    for (task, wait) in tasks.iter().zip(&mut waits).take(3) {
        assert!(task.poll(wait).is_pending());
    }
    assert_eq!(list.notify(2), 2);
    assert_eq!(list.notify_all(), 1, "only the third was still unwoken");
    assert!(
        tasks[3].poll(&mut waits[3]).is_pending(),
        "registered after"
    );
    assert_eq!(
        tasks.iter().map(Task::woken).collect::<Vec<_>>(),
        [1, 1, 1, 0]
    );
    assert_eq!(list.notify(5), 1);
    assert_eq!(list.len(), 4, "all woken, none has run");
}

#[test]
fn many_departures_keep_the_queue_small_and_the_order() {
    let list = WaitList::default();
    let tasks: Vec<_> = (0..1000).map(|_| Task::new()).collect();
    let mut waits: Vec<_> = (0..1000).map(|_| list.wait()).collect();
    for (task, wait) in tasks.iter().zip(&mut waits) {
        assert!(task.poll(wait).is_pending());
    }
    // Every waiter but each hundredth leaves, in an order unrelated to arrival.
    let mut kept = Vec::new();
    for (i, wait) in waits.into_iter().enumerate().rev() {
        if i % 100 == 0 {
            kept.push((i, wait));
        } else {
            drop(wait);
        }
    }
    kept.reverse();
    assert_eq!(list.len(), 10);
    assert!(
        list.inner.borrow().queue.len() <= 10 + 2 * 33,
        "queue of {} entries for 10 waiters",
        list.inner.borrow().queue.len()
    );
    for (i, wait) in &mut kept {
        assert!(list.notify_one());
        assert_eq!(tasks[*i].woken(), 1, "waiter {i} is next");
        assert!(tasks[*i].poll(wait).is_ready());
    }
    assert!(list.is_empty());
}
