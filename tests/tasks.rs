//! Tasks: `spawn` and `JoinHandle` (values, `is_finished`, panics, `cancel`), `yield_now`
//! fairness, `spawn_blocking`, and completion tokens that wake only the task that owns the op.

mod support;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ringloop::{Handle, JoinError, op, yield_now};

/// A future that counts how often it is polled.
struct CountPolls<F> {
    inner: F,
    polls: Rc<Cell<usize>>,
}

impl<F: Future + Unpin> Future for CountPolls<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.set(self.polls.get() + 1);
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// Panics with a known payload; typed so the task has an ordinary output.
fn explode() -> u32 {
    panic!("boom in task")
}

both_backends! {
    /// `spawn` runs each future to completion and its `JoinHandle` yields the future's value,
    /// including for tasks spawned from inside other tasks.
    fn spawn_and_join_values(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "spawn_and_join_values");
        rt.block_on(async {
            let handles: Vec<_> = (0..50u64)
                .map(|i| {
                    ringloop::spawn(async move {
                        yield_now().await;
                        i * i
                    })
                })
                .collect();
            for (i, handle) in (0..50u64).zip(handles) {
                assert_eq!(handle.await.expect("task ok"), i * i);
            }
            let outer = ringloop::spawn(async {
                let inner = ringloop::spawn(async { "inner" });
                (inner.await.expect("inner ok"), "outer")
            });
            assert_eq!(outer.await.expect("outer ok"), ("inner", "outer"));
        });
    }

    /// `JoinHandle::is_finished` is false while the task is parked and true once it returned,
    /// before the handle is awaited.
    fn is_finished_tracks_completion(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "is_finished_tracks_completion");
        rt.block_on(async {
            let gate = Handle::current().create_future::<u32>();
            let task = ringloop::spawn({
                let gate = gate.clone();
                async move { gate.await.expect("not cancelled") + 1 }
            });
            for _ in 0..10 {
                yield_now().await;
                assert!(!task.is_finished(), "task is parked on the gate");
            }
            gate.set_result(41).expect("first set_result");
            support::yield_until("the task finished", || task.is_finished()).await;
            assert_eq!(task.await.expect("task ok"), 42);
        });
    }

    /// A dropped `JoinHandle` detaches its task, which still runs to completion.
    fn dropped_join_handle_detaches(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "dropped_join_handle_detaches");
        rt.block_on(async {
            let done = Handle::current().create_future::<&'static str>();
            drop(ringloop::spawn({
                let done = done.clone();
                async move {
                    yield_now().await;
                    done.set_result("detached task ran").expect("first set_result");
                }
            }));
            assert_eq!(done.await, Ok("detached task ran"));
        });
    }

    /// A panic inside a task is caught and reported as `JoinError::is_panic` with its payload;
    /// its in-flight op is cancelled, and the loop keeps running the other tasks.
    fn panic_in_task_is_reported(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "panic_in_task_is_reported");
        rt.block_on(async {
            let (r, _w) = support::pipe();
            let fd = r.as_raw_fd();
            let before = ringloop::spawn(async {
                yield_now().await;
                "before"
            });
            let boom = ringloop::spawn(async move {
                let mut read = op::read(fd, Vec::with_capacity(16));
                assert!(futures_lite::future::poll_once(&mut read).await.is_none());
                yield_now().await;
                let value = explode();
                drop(read);
                value
            });
            let after = ringloop::spawn(async {
                yield_now().await;
                yield_now().await;
                "after"
            });
            let err: JoinError = boom.await.expect_err("the task panicked");
            assert!(err.is_panic() && !err.is_cancelled(), "{err:?}");
            let payload = err.into_panic();
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in task"));
            assert_eq!(before.await.expect("task ok"), "before");
            assert_eq!(after.await.expect("task ok"), "after");
            support::settle_inflight(0).await;
            let later = ringloop::spawn(async { 3 });
            assert_eq!(later.await.expect("task ok"), 3);
        });
    }

    /// `JoinHandle::cancel` of a task parked in an `op::read` on a pipe drops it, cancels the
    /// read in the kernel (the op table drains to 0), awaiting gives `is_cancelled`, and the
    /// cancelled read consumed nothing: data written afterwards is read in full.
    fn cancel_task_cancels_inflight_read(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "cancel_task_cancels_inflight_read");
        rt.block_on(async {
            let (r, w) = support::pipe();
            let fd = r.as_raw_fd();
            let task = ringloop::spawn(async move {
                let (res, buf) = op::read(fd, Vec::with_capacity(64)).await;
                (res.map_err(|e| e.to_string()), buf)
            });
            support::settle_inflight(1).await;
            assert!(!task.is_finished());
            task.cancel();
            let err = task.await.expect_err("a cancelled task yields an error");
            assert!(err.is_cancelled() && !err.is_panic(), "{err:?}");
            support::settle_inflight(0).await;

            support::write_all(&w, b"after the cancel");
            let got = support::read_fd_exact(fd, 16, "the bytes written after the cancel").await;
            assert_eq!(got, b"after the cancel");
        });
    }

    /// `yield_now` sends the task to the back of the run queue: three yielding tasks interleave
    /// round-robin.
    fn yield_now_interleaves_tasks(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "yield_now_interleaves_tasks");
        rt.block_on(async {
            let order: Rc<RefCell<Vec<(char, u32)>>> = Rc::default();
            let tasks: Vec<_> = ['a', 'b', 'c']
                .into_iter()
                .map(|name| {
                    let order = order.clone();
                    ringloop::spawn(async move {
                        for round in 0..3 {
                            order.borrow_mut().push((name, round));
                            yield_now().await;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("task ok");
            }
            let expected: Vec<(char, u32)> =
                (0..3).flat_map(|round| ['a', 'b', 'c'].map(|name| (name, round))).collect();
            assert_eq!(*order.borrow(), expected);
        });
    }

    /// A task that yields in a tight loop does not starve I/O: a pipe read started while it spins
    /// completes while it is still spinning (it gives up after 5 s, which fails the test).
    fn busy_yielder_does_not_starve_io(rt) {
        let _wd = support::watchdog(Duration::from_secs(15), "busy_yielder_does_not_starve_io");
        rt.block_on(async {
            let (r, w) = support::pipe();
            let fd = r.as_raw_fd();
            let stop = Rc::new(Cell::new(false));
            let busy = ringloop::spawn({
                let stop = stop.clone();
                async move {
                    let start = Instant::now();
                    let mut turns = 0u64;
                    while !stop.get() {
                        if start.elapsed() > Duration::from_secs(5) {
                            return Err(turns);
                        }
                        yield_now().await;
                        turns += 1;
                    }
                    Ok(turns)
                }
            });
            let reader = ringloop::spawn(async move {
                let (res, buf) = op::read(fd, Vec::with_capacity(64)).await;
                (res.map_err(|e| e.to_string()), buf)
            });
            support::settle_inflight(1).await;
            support::write_all(&w, b"not starved");
            let (res, buf) = reader.await.expect("reader ok");
            // The bytes, or their first few when the read is short.
            let n = res.expect("read");
            assert!((1..=11).contains(&n), "read {n} bytes");
            assert_eq!(buf, &b"not starved"[..n]);
            stop.set(true);
            let turns = busy.await.expect("busy task ok");
            assert!(
                turns.is_ok(),
                "the read completed only after the busy task gave up: {turns:?}"
            );
        });
    }

    /// `spawn_blocking` runs the closure off the loop thread and its result wakes a loop that is
    /// asleep with nothing else to do.
    fn spawn_blocking_returns_value_and_wakes_loop(rt) {
        let _wd = support::watchdog(
            Duration::from_secs(10),
            "spawn_blocking_returns_value_and_wakes_loop",
        );
        rt.block_on(async {
            let loop_thread = std::thread::current().id();
            let start = Instant::now();
            let blocking = ringloop::spawn_blocking(move || {
                // Not synchronisation: keeps the closure running until the loop is asleep, so the
                // result has to wake it.
                std::thread::sleep(Duration::from_millis(100));
                (std::thread::current().id() != loop_thread, 42)
            });
            let (off_loop, value) = blocking.await.expect("blocking task ok");
            assert!(off_loop, "spawn_blocking ran on the loop thread");
            assert_eq!(value, 42);
            assert!(start.elapsed() < Duration::from_secs(5), "woke after {:?}", start.elapsed());
        });
    }

    /// A completion wakes only the task that owns the op: with two tasks each reading its own
    /// pipe, writing to pipe A completes task A without polling task B.
    fn token_wakes_only_its_task(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "token_wakes_only_its_task");
        rt.block_on(async {
            let (ra, wa) = support::pipe();
            let (rb, wb) = support::pipe();
            let polls_a = Rc::new(Cell::new(0));
            let polls_b = Rc::new(Cell::new(0));
            let task_a = ringloop::spawn(CountPolls {
                inner: op::read(ra.as_raw_fd(), Vec::with_capacity(16)),
                polls: polls_a.clone(),
            });
            let task_b = ringloop::spawn(CountPolls {
                inner: op::read(rb.as_raw_fd(), Vec::with_capacity(16)),
                polls: polls_b.clone(),
            });
            support::settle_inflight(2).await;
            let b_before = polls_b.get();
            assert!(b_before >= 1);

            support::write_all(&wa, b"for a");
            // Each read gets its pipe's bytes, or their first few when it is short.
            let (res, buf) = task_a.await.expect("task a ok");
            let n = res.expect("read a");
            assert!((1..=5).contains(&n), "read a: {n} bytes");
            assert_eq!(buf, &b"for a"[..n]);
            support::yield_turns(10).await;
            assert_eq!(polls_b.get(), b_before, "task B was polled by A's completion");
            assert!(!task_b.is_finished());

            support::write_all(&wb, b"for b");
            let (res, buf) = task_b.await.expect("task b ok");
            let n = res.expect("read b");
            assert!((1..=5).contains(&n), "read b: {n} bytes");
            assert_eq!(buf, &b"for b"[..n]);
            assert!(polls_b.get() > b_before);
        });
    }

    /// `JoinHandle::cancel` called from another thread cancels a task parked on a pipe read:
    /// the handle reports the cancellation and the read is cancelled in the kernel.
    fn cancel_from_another_thread(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "cancel_from_another_thread");
        rt.block_on(async {
            let (r, _w) = support::pipe();
            let fd = r.as_raw_fd();
            let task = ringloop::spawn(async move {
                let (res, _buf) = op::read(fd, Vec::with_capacity(8)).await;
                res.map(|n| n as u32)
            });
            support::settle_inflight(1).await;
            let task = std::thread::spawn(move || {
                task.cancel();
                task
            })
            .join()
            .expect("canceller thread");
            let err = task.await.expect_err("cancelled before any data");
            assert!(err.is_cancelled(), "{err}");
            support::settle_inflight(0).await;
        });
    }
}

/// `spawn` outside a running loop panics (with a message) instead of losing the task.
#[test]
fn spawn_outside_runtime_panics() {
    let outcome = std::panic::catch_unwind(|| drop(ringloop::spawn(async {})));
    assert!(outcome.is_err(), "spawn outside block_on must panic");
}
