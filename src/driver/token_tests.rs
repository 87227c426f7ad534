//! Unit tests of the op table: no syscalls, so they also run under miri (`ci/miri.sh`).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Poll, Wake, Waker};

use super::{Completion, CompletionToken, F_MORE, OpTable, Orphan};

/// A waker that counts its wake-ups.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let count = Arc::new(CountingWaker::default());
    (Arc::clone(&count), Waker::from(count))
}

/// Orphaned resources that log every completion released through them, and their drop.
struct Logged {
    log: Rc<RefCell<Vec<String>>>,
    /// Heap memory the kernel would own: miri reports it if it is leaked or freed twice.
    _buffer: Vec<u8>,
}

impl Orphan for Logged {
    fn release(&mut self, done: Completion) {
        self.log
            .borrow_mut()
            .push(format!("release {}", done.result));
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        self.log.borrow_mut().push("drop".into());
    }
}

fn logged(log: &Rc<RefCell<Vec<String>>>) -> Box<dyn Orphan> {
    Box::new(Logged {
        log: Rc::clone(log),
        _buffer: vec![7; 64],
    })
}

#[test]
fn a_completion_wakes_the_parked_task_and_is_polled_once() {
    let mut table = OpTable::new();
    let (count, waker) = counting_waker();
    let token = table.insert(false, false);
    assert!(table.poll(token, &waker).is_none());
    assert!(table.is_pending(token));
    table.complete(token, 42, 0);
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert!(!table.is_pending(token));
    let done = table.poll(token, &waker).expect("completed");
    assert_eq!((done.result, done.flags), (42, 0));
    assert!(table.is_empty(), "polling the completion frees the slot");
    assert!(
        table.poll(token, &waker).is_none(),
        "a freed slot yields nothing"
    );
}

#[test]
fn stale_and_unknown_tokens_never_reach_a_reused_slot() {
    let mut table = OpTable::new();
    let (_, waker) = counting_waker();
    let old = table.insert(false, false);
    table.complete(old, 1, 0);
    table.poll(old, &waker).expect("completed");
    let new = table.insert(false, false);
    assert_ne!(old, new, "a reused slot gets a new generation");
    // A duplicate completion for the old op: ignored.
    table.complete(old, 99, 0);
    assert!(table.is_pending(new));
    assert!(table.poll(old, &waker).is_none());
    table.complete(
        CompletionToken::from_user_data(u64::from(u32::MAX) << 8),
        5,
        0,
    );
    table.complete(new, 2, 0);
    assert_eq!(table.poll(new, &waker).expect("completed").result, 2);
}

#[test]
fn a_cancel_the_caller_did_not_ask_for_on_a_deadline_op_is_a_timeout() {
    let mut table = OpTable::new();
    let (_, waker) = counting_waker();
    let timed = table.insert(true, false);
    table.complete(timed, -libc::ECANCELED, 0);
    assert_eq!(table.poll(timed, &waker).unwrap().result, -libc::ETIMEDOUT);
    let cancelled = table.insert(true, false);
    assert!(table.request_cancel(cancelled));
    table.complete(cancelled, -libc::ECANCELED, 0);
    assert_eq!(
        table.poll(cancelled, &waker).unwrap().result,
        -libc::ECANCELED
    );
}

#[test]
fn an_orphan_keeps_its_resources_until_its_final_completion() {
    let log = Rc::default();
    let mut table = OpTable::new();
    let token = table.insert(false, false);
    assert!(
        table.orphan(token, logged(&log)),
        "still in the kernel's hands"
    );
    assert_eq!(table.len(), 1);
    assert!(log.borrow().is_empty(), "resources freed while in flight");
    assert_eq!(table.pending_tokens(), [token]);
    table.complete(token, 3, 0);
    assert_eq!(*log.borrow(), ["release 3", "drop"]);
    assert!(table.is_empty());
}

#[test]
fn orphaning_a_completed_op_releases_its_result_at_once() {
    let log = Rc::default();
    let mut table = OpTable::new();
    let token = table.insert(false, false);
    table.complete(token, 9, 0);
    assert!(!table.orphan(token, logged(&log)), "nothing left to cancel");
    assert_eq!(*log.borrow(), ["release 9", "drop"]);
    assert!(table.is_empty());
    assert!(!table.request_cancel(token));
}

#[test]
fn a_stream_queues_completions_until_the_final_one() {
    let mut table = OpTable::new();
    let (count, waker) = counting_waker();
    let token = table.insert(false, true);
    assert!(table.poll_stream(token, &waker).is_pending());
    table.complete(token, 1, F_MORE);
    table.complete(token, 2, F_MORE);
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        1,
        "the parked waker is taken once"
    );
    table.complete(token, 0, 0);
    let mut got = Vec::new();
    while let Poll::Ready(Some(done)) = table.poll_stream(token, &waker) {
        got.push(done.result);
    }
    assert_eq!(got, [1, 2, 0]);
    assert!(
        table.is_empty(),
        "the slot goes once the final completion is taken"
    );
}

#[test]
fn a_dropped_stream_releases_what_it_had_queued_and_what_follows() {
    let log = Rc::default();
    let mut table = OpTable::new();
    let token = table.insert(false, true);
    table.complete(token, 10, F_MORE);
    table.complete(token, 11, F_MORE);
    assert!(table.orphan(token, logged(&log)));
    assert_eq!(*log.borrow(), ["release 10", "release 11"]);
    table.complete(token, 12, F_MORE);
    table.complete(token, -libc::ECANCELED, 0);
    let cancelled = format!("release {}", -libc::ECANCELED);
    assert_eq!(
        *log.borrow(),
        ["release 10", "release 11", "release 12", &cancelled, "drop"]
    );
    assert!(table.is_empty());
}

#[test]
fn notes_belong_to_one_op() {
    let mut table = OpTable::new();
    let (_, waker) = counting_waker();
    let token = table.insert(false, false);
    assert_eq!(table.note(token), None);
    table.set_note(token, 17);
    assert_eq!(table.note(token), Some(17));
    table.complete(token, 0, 0);
    table.poll(token, &waker).unwrap();
    let next = table.insert(false, false);
    assert_eq!(table.note(token), None);
    assert_eq!(
        table.note(next),
        None,
        "a reused slot starts without a note"
    );
}

#[test]
fn leak_remaining_forgets_orphans_without_dropping_them() {
    thread_local! {
        static DROPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    struct Counted;
    impl Orphan for Counted {
        fn release(&mut self, _: Completion) {}
    }
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.with(|d| d.set(d.get() + 1));
        }
    }
    let mut table = OpTable::new();
    let token = table.insert(false, false);
    // `Counted` is zero-sized: its box allocates nothing, so forgetting it leaks no memory.
    assert!(table.orphan(token, Box::new(Counted)));
    table.leak_remaining();
    assert!(table.is_empty());
    assert_eq!(
        DROPS.with(|d| d.get()),
        0,
        "resources the kernel may still touch were dropped"
    );
}

/// Only an `ECANCELED` nobody asked for, on an op without a deadline, counts as the kernel
/// giving up unasked (what `Driver::poll_op` resubmits).
#[test]
fn cancelled_unasked_only_without_request_or_deadline() {
    let mut table = OpTable::new();
    let unasked = table.insert(false, false);
    table.complete(unasked, -libc::ECANCELED, 0);
    assert!(table.cancelled_unasked(unasked));
    table.discard_completed(unasked);
    assert!(
        !table.cancelled_unasked(unasked),
        "a discarded slot is gone"
    );
    assert!(table.is_empty());

    let requested = table.insert(false, false);
    assert!(table.request_cancel(requested));
    table.complete(requested, -libc::ECANCELED, 0);
    assert!(!table.cancelled_unasked(requested));

    let timed = table.insert(true, false);
    table.complete(timed, -libc::ECANCELED, 0);
    assert!(
        !table.cancelled_unasked(timed),
        "a linked timeout's ECANCELED is ETIMEDOUT"
    );

    let failed = table.insert(false, false);
    table.complete(failed, -libc::EBADF, 0);
    assert!(!table.cancelled_unasked(failed));

    let pending = table.insert(false, false);
    assert!(!table.cancelled_unasked(pending));
    table.discard_completed(pending);
    assert_eq!(table.len(), 4, "discard frees completed slots only");
}
