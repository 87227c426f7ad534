//! `LoopFuture`, the asyncio Future: settable once, cancellable, awaitable by many, and its done
//! callbacks are scheduled through the loop exactly once.

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use ringloop::{Cancelled, Handle, InvalidStateError, LoopFuture};

/// A future completed by the done callback registered through it: resolves once the callback ran.
fn callback_ran<T: 'static>(
    fut: &LoopFuture<T>,
    calls: &Rc<Cell<usize>>,
    seen: impl Fn(&LoopFuture<T>) + 'static,
) -> LoopFuture<()> {
    let ran = Handle::current().create_future::<()>();
    let signal = ran.clone();
    let calls = calls.clone();
    fut.add_done_callback(move |done| {
        calls.set(calls.get() + 1);
        seen(done);
        let _ = signal.set_result(());
    });
    ran
}

both_backends! {
    /// `set_result` makes the future done with that value: `done()`, `result()` and awaiting it
    /// (also through a clone) all report the value.
    fn set_result_then_await(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "set_result_then_await");
        rt.block_on(async {
            let fut = Handle::current().create_future::<u32>();
            assert!(!fut.done() && !fut.cancelled());
            assert_eq!(fut.result(), None);
            fut.set_result(7).expect("first set_result");
            assert!(fut.done() && !fut.cancelled());
            assert_eq!(fut.result(), Some(Ok(7)));
            assert_eq!(fut.clone().await, Ok(7));
            assert_eq!(fut.await, Ok(7));
        });
    }

    /// Tasks awaiting a pending `LoopFuture` are parked until `set_result`, then all get the value.
    fn set_result_wakes_every_waiter(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "set_result_wakes_every_waiter");
        rt.block_on(async {
            let fut = Handle::current().create_future::<String>();
            let waiters: Vec<_> = (0..3).map(|_| ringloop::spawn(fut.clone())).collect();
            support::yield_turns(5).await;
            assert!(waiters.iter().all(|w| !w.is_finished()), "waiters must be parked");
            fut.set_result("value".to_owned()).expect("first set_result");
            for waiter in waiters {
                assert_eq!(waiter.await.expect("task ok"), Ok("value".to_owned()));
            }
        });
    }

    /// `cancel()` on a pending future makes it done and cancelled: waiters get `Err(Cancelled)`, a
    /// second `cancel()` returns false and `set_result` afterwards is an `InvalidStateError`.
    fn cancel_gives_cancelled(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "cancel_gives_cancelled");
        rt.block_on(async {
            let fut = Handle::current().create_future::<u32>();
            let waiter = ringloop::spawn(fut.clone());
            support::yield_turns(5).await;
            assert!(!waiter.is_finished());
            assert!(fut.cancel(), "cancel of a pending future");
            assert!(fut.done() && fut.cancelled());
            assert!(!fut.cancel(), "cancel of a done future returns false");
            let _: InvalidStateError = fut.set_result(1).expect_err("set_result after cancel");
            assert!(matches!(fut.result(), Some(Err(Cancelled { .. }))));
            let woken: Result<u32, Cancelled> = waiter.await.expect("task ok");
            assert!(woken.is_err(), "waiter got {woken:?}");
            assert!(fut.await.is_err());
        });
    }

    /// Done callbacks are scheduled through the loop (not run inside `set_result`), each runs
    /// exactly once, in registration order, and sees the finished future.
    fn done_callbacks_run_once_via_loop(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "done_callbacks_run_once_via_loop");
        rt.block_on(async {
            let fut = Handle::current().create_future::<u32>();
            let order: Rc<RefCell<Vec<u32>>> = Rc::default();
            let calls = Rc::new(Cell::new(0));
            let first = {
                let order = order.clone();
                callback_ran(&fut, &calls, move |done| {
                    assert_eq!(done.result(), Some(Ok(5)));
                    order.borrow_mut().push(1);
                })
            };
            let second = {
                let order = order.clone();
                callback_ran(&fut, &calls, move |done| {
                    assert!(done.done() && !done.cancelled());
                    order.borrow_mut().push(2);
                })
            };
            fut.set_result(5).expect("first set_result");
            assert_eq!(calls.get(), 0, "done callbacks must be scheduled, not run inline");
            first.await.expect("not cancelled");
            second.await.expect("not cancelled");
            support::yield_turns(10).await;
            assert_eq!(calls.get(), 2, "each callback runs exactly once");
            assert_eq!(*order.borrow(), [1, 2]);
        });
    }

    /// A second `set_result` fails with `InvalidStateError`, keeps the first value and does not
    /// run the done callbacks again.
    fn set_result_twice_is_invalid_state(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "set_result_twice_is_invalid_state");
        rt.block_on(async {
            let fut = Handle::current().create_future::<u32>();
            let calls = Rc::new(Cell::new(0));
            let ran = callback_ran(&fut, &calls, |_| {});
            fut.set_result(1).expect("first set_result");
            let _: InvalidStateError = fut.set_result(2).expect_err("second set_result");
            ran.await.expect("not cancelled");
            support::yield_turns(10).await;
            assert_eq!(calls.get(), 1);
            assert_eq!(fut.result(), Some(Ok(1)));
            assert_eq!(fut.await, Ok(1));
        });
    }

    /// A done callback added after the future finished is still scheduled (at once, through the
    /// loop) and runs once; this holds for a cancelled future too.
    fn callback_added_after_done_still_runs(rt) {
        let _wd = support::watchdog(
            Duration::from_secs(10),
            "callback_added_after_done_still_runs",
        );
        rt.block_on(async {
            let h = Handle::current();
            let finished = h.create_future::<u32>();
            finished.set_result(3).expect("first set_result");
            support::yield_turns(2).await;
            let calls = Rc::new(Cell::new(0));
            let ran = callback_ran(&finished, &calls, |done| {
                assert_eq!(done.result(), Some(Ok(3)));
            });
            assert_eq!(calls.get(), 0, "scheduled through the loop, not run inline");
            ran.await.expect("not cancelled");

            let cancelled = h.create_future::<u32>();
            assert!(cancelled.cancel());
            let ran = callback_ran(&cancelled, &calls, |done| assert!(done.cancelled()));
            ran.await.expect("not cancelled");
            support::yield_turns(10).await;
            assert_eq!(calls.get(), 2, "each callback runs exactly once");
        });
    }

    /// Cancelling a future with done callbacks runs them once, and they see it cancelled.
    fn cancel_runs_done_callbacks(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "cancel_runs_done_callbacks");
        rt.block_on(async {
            let fut = Handle::current().create_future::<u32>();
            let calls = Rc::new(Cell::new(0));
            let ran = callback_ran(&fut, &calls, |done| {
                assert!(done.cancelled());
                assert!(matches!(done.result(), Some(Err(_))));
            });
            assert!(fut.cancel());
            ran.await.expect("not cancelled");
            support::yield_turns(10).await;
            assert_eq!(calls.get(), 1);
        });
    }
}
