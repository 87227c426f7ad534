//! `ringloop::task`'s asyncio helpers: `gather` (fail-fast and return_exceptions), `wait`
//! with its three `ReturnWhen`s and a timeout, `as_completed`, `shield`, `wait_for`, and the
//! movable deadline of `timeout_scope`.

mod support;

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use ringloop::sync::Event;
use ringloop::task::{
    ReturnWhen, as_completed, gather, gather_return_exceptions, shield, timeout_scope, wait,
    wait_for,
};
use ringloop::{op, spawn, time};

/// Completes when `gate` is set, with `value`.
async fn after(gate: Rc<Event>, value: Result<u32, String>) -> Result<u32, String> {
    gate.wait().await;
    value
}

both_backends! {
    /// `gather` keeps input order whatever the completion order, stops at the first error and
    /// drops (cancels) the others, including one blocked in a real read;
    /// `gather_return_exceptions` waits for all and returns each result.
    fn gather_orders_fails_fast_and_returns_exceptions(rt) {
        let _wd = support::watchdog(
            Duration::from_secs(20),
            "gather_orders_fails_fast_and_returns_exceptions",
        );
        rt.block_on(async {
            let gates: Vec<_> = (0..3).map(|_| Rc::new(Event::new())).collect();
            let order = spawn({
                let gates = gates.clone();
                async move {
                    gather(gates.iter().enumerate().map(|(i, g)| after(g.clone(), Ok(i as u32))))
                        .await
                }
            });
            for gate in gates.iter().rev() {
                gate.set();
                ringloop::yield_now().await;
            }
            assert_eq!(order.await.unwrap(), Ok(vec![0, 1, 2]));

            let (r, _w) = support::pipe();
            let read_dropped = Rc::new(Cell::new(false));
            struct Flag(Rc<Cell<bool>>);
            impl Drop for Flag {
                fn drop(&mut self) {
                    self.0.set(true);
                }
            }
            let blocked = {
                let flag = Flag(read_dropped.clone());
                let fd = r.as_raw_fd();
                async move {
                    let _flag = flag;
                    let (n, _) = op::read(fd, Vec::with_capacity(8)).await;
                    n.map(|n| n as u32).map_err(|e| e.to_string())
                }
            };
            let failing = async {
                ringloop::yield_now().await;
                Err::<u32, _>("fails".to_string())
            };
            let futures: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = _>>>> =
                vec![Box::pin(blocked), Box::pin(failing)];
            assert_eq!(gather(futures).await, Err("fails".to_string()));
            assert!(read_dropped.get(), "the blocked read was dropped with gather");
            support::settle_inflight(0).await;

            let all = gather_return_exceptions([
                Box::pin(async { Ok(1) }) as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>,
                Box::pin(async { Err("two".to_string()) }),
                Box::pin(async { Ok(3) }),
            ])
            .await;
            assert_eq!(all, [Ok(1), Err("two".to_string()), Ok(3)]);
        });
    }

    /// `wait`: FIRST_COMPLETED returns with one done; FIRST_EXCEPTION with the first error;
    /// ALL_COMPLETED with all; a timeout returns what is done so far. Nothing is cancelled:
    /// the pending tasks finish afterwards when their gates open.
    fn wait_three_modes_and_timeout(rt) {
        let _wd = support::watchdog(Duration::from_secs(20), "wait_three_modes_and_timeout");
        rt.block_on(async {
            let gates: Vec<_> = (0..3).map(|_| Rc::new(Event::new())).collect();
            let tasks = |values: [Result<u32, String>; 3]| {
                gates
                    .iter()
                    .zip(values)
                    .map(|(g, v)| spawn(after(g.clone(), v)))
                    .collect::<Vec<_>>()
            };
            // The tasks' own results are their outputs; JoinError would be the `Err` side.
            let flat = |out: &Result<Result<u32, String>, ringloop::JoinError>| {
                out.as_ref().unwrap().clone()
            };

            let first = ringloop::spawn(wait(
                tasks([Ok(0), Ok(1), Ok(2)]),
                ReturnWhen::FirstCompleted,
                None,
            ));
            ringloop::yield_now().await;
            gates[1].set();
            let waited = first.await.unwrap();
            assert_eq!(waited.done.len(), 1);
            assert_eq!(waited.done[0].0, 1);
            assert_eq!(flat(&waited.done[0].1), Ok(1));
            assert_eq!(waited.pending.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 2]);
            gates[0].set();
            gates[2].set();
            for (i, task) in waited.pending {
                assert_eq!(task.await.unwrap(), Ok(i as u32), "task {i} was not cancelled");
            }

            // FIRST_EXCEPTION: a task whose output is an error does not count (the JoinHandle's
            // Err is a JoinError); map the output to surface it.
            let gates2: Vec<_> = (0..3).map(|_| Rc::new(Event::new())).collect();
            let mapped: Vec<_> = gates2
                .iter()
                .zip([Ok(0), Err("bad".to_string()), Ok(2)])
                .map(|(g, v)| Box::pin(after(g.clone(), v)))
                .collect();
            let exc = ringloop::spawn(wait(mapped, ReturnWhen::FirstException, None));
            gates2[0].set();
            ringloop::yield_now().await;
            gates2[1].set();
            let waited = exc.await.unwrap();
            let done: Vec<_> = waited.done.iter().map(|d| d.0).collect();
            assert_eq!(done, [0, 1], "returned at the error");
            assert_eq!(waited.pending.len(), 1);

            let all = ringloop::spawn(wait(
                tasks([Ok(5), Ok(6), Ok(7)]),
                ReturnWhen::AllCompleted,
                None,
            ));
            // The gates are set from the first round: all complete.
            let waited = all.await.unwrap();
            assert_eq!(waited.done.len(), 3);
            assert!(waited.pending.is_empty());

            let closed: Vec<_> = (0..2).map(|_| Rc::new(Event::new())).collect();
            let never: Vec<_> = closed.iter().map(|g| spawn(after(g.clone(), Ok(0)))).collect();
            let start = Instant::now();
            let waited = wait(never, ReturnWhen::AllCompleted, Some(Duration::from_millis(5))).await;
            assert!(start.elapsed() >= Duration::from_millis(5));
            assert!(waited.done.is_empty());
            assert_eq!(waited.pending.len(), 2);
            for (_, task) in &waited.pending {
                task.cancel();
            }
        });
    }

    /// `as_completed` yields in completion order; `shield` keeps running when its awaiter gives
    /// up; `wait_for` is the timeout.
    fn as_completed_shield_and_wait_for(rt) {
        let _wd = support::watchdog(Duration::from_secs(20), "as_completed_shield_and_wait_for");
        rt.block_on(async {
            let gates: Vec<_> = (0..4).map(|_| Rc::new(Event::new())).collect();
            let stream_task = spawn({
                let gates = gates.clone();
                async move {
                    let mut done =
                        as_completed(gates.iter().enumerate().map(|(i, g)| after(g.clone(), Ok(i as u32))));
                    let mut order = Vec::new();
                    while let Some(v) = done.next().await {
                        order.push(v.unwrap());
                    }
                    order
                }
            });
            for i in [2, 0, 3, 1] {
                ringloop::yield_now().await;
                gates[i].set();
            }
            assert_eq!(stream_task.await.unwrap(), [2, 0, 3, 1]);

            let finished = Rc::new(Event::new());
            let shielded = shield({
                let finished = finished.clone();
                async move {
                    time::sleep(Duration::from_millis(5)).await;
                    finished.set();
                    "saved"
                }
            });
            assert!(wait_for(Duration::from_millis(1), shielded).await.is_err());
            assert!(!finished.is_set());
            finished.wait().await;

            assert_eq!(wait_for(Duration::from_secs(5), async { 3 }).await, Ok(3));
        });
    }

    /// A timeout scope fires at its deadline (dropping the work, cancelling its read), can be
    /// pushed later or earlier from inside the work or outside, and can have no deadline.
    fn timeout_scope_fires_and_moves(rt) {
        let _wd = support::watchdog(Duration::from_secs(20), "timeout_scope_fires_and_moves");
        rt.block_on(async {
            let (r, _w) = support::pipe();
            let scope = timeout_scope(Some(Duration::from_millis(5)));
            let start = Instant::now();
            let res = scope
                .run(async {
                    let (n, _) = op::read(r.as_raw_fd(), Vec::with_capacity(8)).await;
                    n
                })
                .await;
            assert!(res.is_err() && scope.expired());
            assert!(start.elapsed() >= Duration::from_millis(5));
            support::settle_inflight(0).await;

            // Pushed later from inside: the work finishes.
            let scope = timeout_scope(Some(Duration::from_millis(5)));
            let inside = scope.clone();
            let res = scope
                .run(async move {
                    inside.reschedule(Some(Instant::now() + Duration::from_secs(10)));
                    time::sleep(Duration::from_millis(20)).await;
                    1
                })
                .await;
            assert_eq!(res, Ok(1));
            assert!(!scope.expired());

            // Brought forward from outside: fires at the new deadline, long before the old.
            let scope = timeout_scope(Some(Duration::from_secs(3600)));
            let outside = scope.clone();
            let mover = spawn(async move {
                time::sleep(Duration::from_millis(2)).await;
                outside.reschedule(Some(Instant::now()));
            });
            let start = Instant::now();
            let res = scope.run(time::sleep(Duration::from_secs(3600))).await;
            assert!(res.is_err() && scope.expired());
            assert!(start.elapsed() < Duration::from_secs(60));
            mover.await.unwrap();

            // No deadline until one is set.
            let scope = timeout_scope(None);
            assert_eq!(scope.when(), None);
            assert_eq!(scope.run(async { 5 }).await, Ok(5));
        });
    }
}
