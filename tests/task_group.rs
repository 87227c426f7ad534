//! `ringloop::task::TaskGroup`: a failing child cancels its siblings — their real ring ops
//! included — and the group reports every failure; panics are failures; cancelling or dropping
//! the group cancels the children; `stop` ends a group without an error; groups nest; 10 000
//! children with one failing leak no task, op, fd or buffer.

mod support;

use std::cell::{Cell, RefCell};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use ringloop::sync::Event;
use ringloop::task::{Failure, TaskGroup};
use ringloop::{op, time};

/// Counts its own drop: a child future holding one was dropped (finished or cancelled).
struct CountDrop(Rc<Cell<usize>>);

impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// A child that blocks in a real read on a pipe nobody writes to, after marking `started`.
fn blocked_reader(
    started: &Rc<Cell<usize>>,
) -> impl std::future::Future<Output = Result<usize, String>> + 'static {
    let started = started.clone();
    async move {
        let (r, _w) = support::pipe();
        started.set(started.get() + 1);
        let (n, _buf) = op::read(r.as_raw_fd(), Vec::with_capacity(64)).await;
        n.map_err(|e| e.to_string())
    }
}

both_backends! {
    /// One child fails while two siblings are blocked in reads: the siblings are cancelled
    /// (their reads cancelled in the kernel, nothing left in flight, no fd left open), a child
    /// that finished first keeps its value, and `join` returns the one failure.
    fn a_failure_cancels_siblings_blocked_in_real_ops(backend: Backend) {
        let _wd = support::watchdog(
            Duration::from_secs(20),
            "a_failure_cancels_siblings_blocked_in_real_ops",
        );
        // Every test here opens fds (runtimes, pipes): one at a time, for the fd counts.
        let _serial = support::serial();
        let fds = support::open_fds();
        let rt = support::runtime(backend);
        rt.block_on(async {
            let started = Rc::new(Cell::new(0));
            let group = TaskGroup::new();
            let done_first = group.spawn(async { Ok::<_, String>(10) });
            let readers = [group.spawn(blocked_reader(&started)), group.spawn(blocked_reader(&started))];
            support::yield_until("both readers blocked", || started.get() == 2).await;
            group.spawn(async { Err::<usize, _>("boom".to_string()) });
            let error = group.join().await.unwrap_err();
            assert_eq!(error.failures().len(), 1);
            assert!(matches!(&error.failures()[0], Failure::Error(e) if e == "boom"));
            assert_eq!(done_first.result(), Some(10));
            for reader in &readers {
                assert!(reader.is_finished());
                assert_eq!(reader.result(), None, "cancelled, no value");
            }
            support::settle_inflight(0).await;
        });
        // The runtime's own descriptors (some made on first use) go with it.
        drop(rt);
        assert_eq!(support::open_fds(), fds, "{:?}", support::describe_open_fds());
    }

    /// A panicking child is a failure like an error (with its message); the process does not
    /// abort. The first failure cancels the rest before they run, so siblings released in the
    /// same turn never get to fail: the group reports the one failure.
    fn a_panic_is_a_failure_and_the_first_failure_wins(backend: Backend) {
        let _wd = support::watchdog(
            Duration::from_secs(20),
            "a_panic_is_a_failure_and_the_first_failure_wins",
        );
        // Every test here opens fds (runtimes, pipes): one at a time, for the fd counts.
        let _serial = support::serial();
        let rt = support::runtime(backend);
        rt.block_on(async {
            let group = TaskGroup::<String>::new();
            let (r, _w) = support::pipe();
            let sibling = group.spawn(async move {
                let (n, _) = op::read(r.as_raw_fd(), Vec::with_capacity(8)).await;
                n.map_err(|e| e.to_string())
            });
            group.spawn::<(), _>(async {
                ringloop::yield_now().await;
                panic!("child panicked")
            });
            let failures = group.join().await.unwrap_err().into_failures();
            assert!(sibling.is_finished());
            assert_eq!(sibling.result(), None, "the sibling's read was cancelled");
            support::settle_inflight(0).await;
            assert!(matches!(failures[..], [Failure::Panic(_)]));
            assert_eq!(failures[0].panic_message(), Some("child panicked"));
            assert_eq!(failures[0].to_string(), "panicked: child panicked");

            let group = TaskGroup::<String>::new();
            let gate = Rc::new(Event::new());
            // Three children released in the same loop turn, all about to fail: the first to
            // run fails, and its cancellation reaches the other two before they run.
            for i in 0..3 {
                let gate = gate.clone();
                group.spawn(async move {
                    gate.wait().await;
                    if i == 1 {
                        panic!("child {i} panicked");
                    }
                    Err::<(), _>(format!("child {i} failed"))
                });
            }
            ringloop::yield_now().await;
            gate.set();
            let failures = group.join().await.unwrap_err().into_failures();
            let described: Vec<String> = failures.iter().map(|f| f.to_string()).collect();
            assert_eq!(described, ["child 0 failed"]);
        });
    }

    /// Cancelling the task that awaits `join` cancels the children; so does dropping a group
    /// that was never joined.
    fn cancelling_the_awaiter_or_dropping_the_group_cancels_children(backend: Backend) {
        let _wd = support::watchdog(
            Duration::from_secs(20),
            "cancelling_the_awaiter_or_dropping_the_group_cancels_children",
        );
        // Every test here opens fds (runtimes, pipes): one at a time, for the fd counts.
        let _serial = support::serial();
        let rt = support::runtime(backend);
        rt.block_on(async {
            let dropped = Rc::new(Cell::new(0));
            let spawn_sleepers = |group: &TaskGroup<()>| {
                for _ in 0..5 {
                    let guard = CountDrop(dropped.clone());
                    group.spawn(async move {
                        let _guard = guard;
                        time::sleep(Duration::from_secs(3600)).await;
                        Ok::<_, ()>(())
                    });
                }
            };
            let group = TaskGroup::new();
            spawn_sleepers(&group);
            let awaiter = ringloop::spawn(group.join());
            support::yield_turns(3).await;
            awaiter.cancel();
            assert!(awaiter.await.unwrap_err().is_cancelled());
            support::yield_until("the 5 children are dropped", || dropped.get() == 5).await;

            let group = TaskGroup::new();
            spawn_sleepers(&group);
            support::yield_turns(3).await;
            drop(group);
            support::yield_until("5 more children are dropped", || dropped.get() == 10).await;
        });
    }

    /// `stop` from inside a child ends the group without an error; a group stopping starts no
    /// new child.
    fn stop_ends_a_group_without_error(backend: Backend) {
        let _wd = support::watchdog(Duration::from_secs(20), "stop_ends_a_group_without_error");
        // Every test here opens fds (runtimes, pipes): one at a time, for the fd counts.
        let _serial = support::serial();
        let rt = support::runtime(backend);
        rt.block_on(async {
            let group = TaskGroup::<String>::new();
            let handle = group.handle();
            let found = Rc::new(RefCell::new(None));
            for i in 0..10u32 {
                let (handle, found) = (handle.clone(), found.clone());
                group.spawn(async move {
                    time::sleep(Duration::from_millis(u64::from(i) * 2)).await;
                    if i == 3 {
                        *found.borrow_mut() = Some(i);
                        handle.stop();
                    }
                    Ok(i)
                });
            }
            assert!(group.join().await.is_ok());
            assert_eq!(*found.borrow(), Some(3));
            assert!(handle.is_stopping());
            let late = handle.spawn(async { Ok(99) });
            assert!(late.is_finished());
            assert_eq!(late.result(), None, "not started");
        });
    }

    /// A child running its own group: the inner failure fails the child, which fails the
    /// outer group; cancelling the outer group cancels the grandchildren.
    fn nested_groups(backend: Backend) {
        let _wd = support::watchdog(Duration::from_secs(20), "nested_groups");
        // Every test here opens fds (runtimes, pipes): one at a time, for the fd counts.
        let _serial = support::serial();
        let rt = support::runtime(backend);
        rt.block_on(async {
            let outer = TaskGroup::<String>::new();
            let grandchildren_dropped = Rc::new(Cell::new(0));
            let dropped = grandchildren_dropped.clone();
            outer.spawn(async move {
                let inner = TaskGroup::<String>::new();
                for _ in 0..3 {
                    let guard = CountDrop(dropped.clone());
                    inner.spawn(async move {
                        let _guard = guard;
                        time::sleep(Duration::from_secs(3600)).await;
                        Ok(())
                    });
                }
                inner.join().await.map_err(|e| format!("inner: {e}"))
            });
            outer.spawn(async {
                time::sleep(Duration::from_millis(2)).await;
                Err::<(), _>("outer sibling failed".to_string())
            });
            let error = outer.join().await.unwrap_err();
            assert_eq!(error.failures().len(), 1);
            assert_eq!(error.to_string(), "1 child task(s) failed: outer sibling failed");
            // The inner group went with its cancelled parent; its children are dropped as the
            // loop reaches them.
            support::yield_until("the 3 grandchildren are dropped", || {
                grandchildren_dropped.get() == 3
            })
            .await;

            let outer = TaskGroup::<String>::new();
            outer.spawn(async {
                let inner = TaskGroup::<String>::new();
                inner.spawn(async { Err::<(), _>("deep".to_string()) });
                inner.join().await.map_err(|e| format!("inner: {e}"))
            });
            let error = outer.join().await.unwrap_err();
            assert_eq!(error.to_string(), "1 child task(s) failed: inner: 1 child task(s) failed: deep");
        });
    }

    /// 10 000 children, one failing: the rest are cancelled, and afterwards nothing is left —
    /// no task registered, no op in flight, no fd, no child future alive.
    fn ten_thousand_children_one_failing_leak_nothing(backend: Backend) {
        let _wd = support::watchdog(
            Duration::from_secs(60),
            "ten_thousand_children_one_failing_leak_nothing",
        );
        // Every test here opens fds (runtimes, pipes): one at a time, for the fd counts.
        let _serial = support::serial();
        let rt = support::runtime(backend);
        let fds = support::open_fds();
        let alive = Rc::new(Cell::new(0usize));
        rt.block_on(async {
            struct Alive(Rc<Cell<usize>>);
            impl Drop for Alive {
                fn drop(&mut self) {
                    self.0.set(self.0.get() - 1);
                }
            }
            let group = TaskGroup::<String>::new();
            let (r, w) = support::pipe();
            let r = Rc::new(r);
            for i in 0..10_000u32 {
                alive.set(alive.get() + 1);
                let guard = Alive(alive.clone());
                let r = r.clone();
                group.spawn(async move {
                    let _guard = guard;
                    if i == 7_777 {
                        time::sleep(Duration::from_millis(1)).await;
                        return Err(format!("child {i} failed"));
                    }
                    if i % 100 == 0 {
                        // Some children wait in the kernel, not only in timers.
                        let (n, _) = op::read(r.as_raw_fd(), Vec::with_capacity(8)).await;
                        n.map_err(|e| e.to_string())?;
                    } else {
                        time::sleep(Duration::from_secs(3600)).await;
                    }
                    Ok(())
                });
            }
            assert!(rt.stats().tasks >= 10_000, "the children count as live tasks");
            let error = group.join().await.unwrap_err();
            assert_eq!(error.failures().len(), 1);
            assert_eq!(alive.get(), 0, "every child's future was dropped");
            support::settle_inflight(0).await;
            drop((r, w));
        });
        assert_eq!(rt.inflight_ops(), 0);
        assert_eq!(rt.stats().tasks, 0, "no task left alive");
        assert_eq!(support::open_fds(), fds);
        drop(rt);
    }
}
