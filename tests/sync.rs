//! `ringloop::sync`: asyncio's Lock, Event, Condition, Semaphore, BoundedSemaphore and
//! Barrier — FIFO service, mutual exclusion and permit counts that survive random
//! cancellations, the hand-off of a wake-up whose task was cancelled before it ran, and the
//! errors of bad releases.

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use ringloop::sync::{
    Barrier, BoundedSemaphore, BrokenBarrierError, Condition, Event, Lock, NotLocked, Semaphore,
    TooManyReleases,
};
use ringloop::{JoinHandle, spawn, time, yield_now};

/// Counts a task inside a critical section until dropped (also when the task is cancelled
/// inside it).
struct Inside(Rc<Cell<u32>>);

impl Inside {
    fn enter(count: &Rc<Cell<u32>>) -> Inside {
        count.set(count.get() + 1);
        Inside(count.clone())
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Spawns `n` tasks that each mark `asked[i]`, then take the lock, log `i` and hold it until
/// `release` is set.
fn queue_on_lock(
    lock: &Rc<Lock>,
    n: usize,
    asked: &Rc<RefCell<Vec<bool>>>,
    log: &Rc<RefCell<Vec<usize>>>,
) -> Vec<JoinHandle<()>> {
    (0..n)
        .map(|i| {
            let (lock, asked, log) = (lock.clone(), asked.clone(), log.clone());
            spawn(async move {
                asked.borrow_mut()[i] = true;
                let _held = lock.acquire().await;
                log.borrow_mut().push(i);
                yield_now().await;
            })
        })
        .collect()
}

both_backends! {
    /// Tasks get the lock in the order they asked for it, one at a time; a task arriving while
    /// others wait queues behind them even when the lock is free for a moment.
    fn lock_serves_waiters_in_fifo_order(rt) {
        let _wd = support::watchdog(Duration::from_secs(20), "lock_serves_waiters_in_fifo_order");
        rt.block_on(async {
            let lock = Rc::new(Lock::new());
            let asked = Rc::new(RefCell::new(vec![false; 20]));
            let log = Rc::new(RefCell::new(Vec::new()));
            let held = lock.acquire().await;
            let tasks = queue_on_lock(&lock, 20, &asked, &log);
            support::yield_until("all 20 tasks wait for the lock", || {
                asked.borrow().iter().all(|&a| a)
            })
            .await;
            assert!(lock.try_acquire().is_none(), "held");
            drop(held);
            assert!(
                lock.try_acquire().is_none(),
                "free, but the woken waiter comes first"
            );
            for task in tasks {
                task.await.unwrap();
            }
            assert_eq!(*log.borrow(), (0..20).collect::<Vec<_>>());
            assert!(!lock.locked());
            assert!(lock.try_acquire().is_some());
        });
    }

    /// The task the lock was released to is cancelled before it runs: the next waiter gets the
    /// lock, and the cancelled one never held it.
    fn lock_handed_to_a_cancelled_waiter_goes_to_the_next(rt) {
        let _wd = support::watchdog(
            Duration::from_secs(20),
            "lock_handed_to_a_cancelled_waiter_goes_to_the_next",
        );
        rt.block_on(async {
            let lock = Rc::new(Lock::new());
            let asked = Rc::new(RefCell::new(vec![false; 3]));
            let log = Rc::new(RefCell::new(Vec::new()));
            let held = lock.acquire().await;
            let mut tasks = queue_on_lock(&lock, 3, &asked, &log);
            support::yield_until("the 3 tasks wait", || asked.borrow().iter().all(|&a| a)).await;
            drop(held); // wakes task 0 ...
            tasks[0].cancel(); // ... which is cancelled before it runs
            let first = tasks.remove(0);
            assert!(first.await.unwrap_err().is_cancelled());
            for task in tasks {
                task.await.unwrap();
            }
            assert_eq!(*log.borrow(), [1, 2]);
            assert!(!lock.locked());
        });
    }

    /// 60 tasks take the lock 30 times each while a chaos task cancels random workers and
    /// timeouts of random length cut acquires short: mutual exclusion always holds, and at the
    /// end the lock is free and nobody waits (no acquisition was lost).
    fn lock_survives_random_cancellations(rt) {
        let _wd = support::watchdog(Duration::from_secs(60), "lock_survives_random_cancellations");
        const SEED: u64 = 0x5EED_1001;
        rt.block_on(async {
            let lock = Rc::new(Lock::new());
            let inside = Rc::new(Cell::new(0u32));
            let entered = Rc::new(Cell::new(0u32));
            let timed_out = Rc::new(Cell::new(0u32));
            let rng = Rc::new(RefCell::new(support::Rng::new(SEED)));
            let workers: Vec<_> = (0..60)
                .map(|_| {
                    let (lock, inside, entered, rng) =
                        (lock.clone(), inside.clone(), entered.clone(), rng.clone());
                    let timed_out = timed_out.clone();
                    spawn(async move {
                        for _ in 0..30 {
                            let wait_us = rng.borrow_mut().below(300);
                            let Ok(_held) =
                                time::timeout(Duration::from_micros(wait_us), lock.acquire()).await
                            else {
                                timed_out.set(timed_out.get() + 1);
                                continue;
                            };
                            let _inside = Inside::enter(&inside);
                            entered.set(entered.get() + 1);
                            assert_eq!(inside.get(), 1, "seed {SEED:#x}: two tasks hold the lock");
                            let turns = rng.borrow_mut().below(3);
                            for _ in 0..turns {
                                yield_now().await;
                            }
                        }
                    })
                })
                .collect();
            // Chaos: cancel a random worker every few turns, wherever it is.
            for _ in 0..20 {
                let turns = rng.borrow_mut().below(20);
                for _ in 0..turns {
                    yield_now().await;
                }
                let victim = rng.borrow_mut().below(workers.len() as u64) as usize;
                workers[victim].cancel();
            }
            let mut cancelled = 0;
            for worker in workers {
                if let Err(e) = worker.await {
                    assert!(e.is_cancelled(), "seed {SEED:#x}: {e}");
                    cancelled += 1;
                }
            }
            eprintln!(
                "{} acquisitions, {} timed out, {cancelled} workers cancelled",
                entered.get(),
                timed_out.get()
            );
            assert!(entered.get() > 0, "seed {SEED:#x}: nobody ever got the lock");
            assert!(timed_out.get() > 0, "seed {SEED:#x}: no acquire was cut short");
            assert!(cancelled > 0, "seed {SEED:#x}: no worker was cancelled");
            assert!(!lock.locked(), "seed {SEED:#x}: the lock was lost ({cancelled} cancelled)");
            let held = lock.try_acquire();
            assert!(held.is_some(), "seed {SEED:#x}: someone is still queued");
        });
    }

    /// `release()` of a free lock is `NotLocked`; a forgotten guard's lock is released
    /// explicitly, and a guard whose acquisition was released that way releases nothing when
    /// dropped (it cannot free a lock another task took since).
    fn lock_release_errors_and_forgotten_guards(rt) {
        rt.block_on(async {
            let lock = Lock::new();
            assert_eq!(lock.release(), Err(NotLocked));
            lock.acquire().await.forget();
            assert!(lock.locked());
            assert_eq!(lock.release(), Ok(()));
            assert_eq!(lock.release(), Err(NotLocked));

            let stale = lock.acquire().await;
            assert_eq!(lock.release(), Ok(()));
            let current = lock.acquire().await;
            drop(stale);
            assert!(lock.locked(), "a stale guard freed the lock another holder took");
            drop(current);
            assert!(!lock.locked());
        });
    }

    /// A semaphore of 3 under 40 workers with random timeouts and cancellations: never more than
    /// 3 inside, and every permit is back at the end.
    fn semaphore_survives_random_cancellations(rt) {
        let _wd = support::watchdog(
            Duration::from_secs(60),
            "semaphore_survives_random_cancellations",
        );
        const SEED: u64 = 0x5EED_2002;
        rt.block_on(async {
            let sem = Rc::new(Semaphore::new(3));
            let inside = Rc::new(Cell::new(0u32));
            let rng = Rc::new(RefCell::new(support::Rng::new(SEED)));
            let timed_out = Rc::new(Cell::new(0u32));
            let workers: Vec<_> = (0..40)
                .map(|_| {
                    let (sem, inside, rng) = (sem.clone(), inside.clone(), rng.clone());
                    let timed_out = timed_out.clone();
                    spawn(async move {
                        for _ in 0..30 {
                            let wait_us = rng.borrow_mut().below(200);
                            let Ok(_permit) =
                                time::timeout(Duration::from_micros(wait_us), sem.acquire()).await
                            else {
                                timed_out.set(timed_out.get() + 1);
                                continue;
                            };
                            let _inside = Inside::enter(&inside);
                            assert!(inside.get() <= 3, "seed {SEED:#x}: {} inside", inside.get());
                            let turns = rng.borrow_mut().below(3);
                            for _ in 0..turns {
                                yield_now().await;
                            }
                        }
                    })
                })
                .collect();
            for _ in 0..15 {
                let turns = rng.borrow_mut().below(20);
                for _ in 0..turns {
                    yield_now().await;
                }
                let victim = rng.borrow_mut().below(workers.len() as u64) as usize;
                workers[victim].cancel();
            }
            for worker in workers {
                if let Err(e) = worker.await {
                    assert!(e.is_cancelled(), "seed {SEED:#x}: {e}");
                }
            }
            assert!(timed_out.get() > 0, "seed {SEED:#x}: no acquire was cut short");
            assert_eq!(sem.available(), 3, "seed {SEED:#x}: a permit was lost");
            assert!(!sem.locked());
        });
    }

    /// A permit released to a waiter that is cancelled before it runs goes to the next waiter.
    fn semaphore_wake_up_of_a_cancelled_waiter_goes_to_the_next(rt) {
        rt.block_on(async {
            let sem = Rc::new(Semaphore::new(0));
            let got = Rc::new(RefCell::new(Vec::new()));
            let asked = Rc::new(Cell::new(0));
            let mut waiters: Vec<_> = (0..2)
                .map(|i| {
                    let (sem, got, asked) = (sem.clone(), got.clone(), asked.clone());
                    spawn(async move {
                        asked.set(asked.get() + 1);
                        sem.acquire().await.forget();
                        got.borrow_mut().push(i);
                    })
                })
                .collect();
            // Each registers in the poll that counts it.
            support::yield_until("both wait", || asked.get() == 2).await;
            sem.release();
            waiters[0].cancel();
            assert!(waiters.remove(0).await.unwrap_err().is_cancelled());
            waiters.remove(0).await.unwrap();
            assert_eq!(*got.borrow(), [1]);
            assert_eq!(sem.available(), 0);
        });
    }

    /// A `BoundedSemaphore` refuses a release past its initial count; permits kept with
    /// `forget` come back with `release`.
    fn bounded_semaphore_refuses_too_many_releases(rt) {
        rt.block_on(async {
            let sem = BoundedSemaphore::new(2);
            assert_eq!(sem.release(), Err(TooManyReleases));
            let permit = sem.acquire().await;
            sem.acquire().await.forget();
            assert_eq!(sem.available(), 0);
            assert!(sem.try_acquire().is_none());
            assert_eq!(sem.release(), Ok(()));
            drop(permit);
            assert_eq!(sem.available(), 2);
            assert_eq!(sem.release(), Err(TooManyReleases));
            assert_eq!(sem.available(), 2);
        });
    }

    /// `notify(1)` wakes the longest waiter; `wait_for` re-checks its predicate; a waiter
    /// notified and then cancelled before it runs passes the notification on.
    fn condition_notify_wait_for_and_cancelled_waiters(rt) {
        let _wd = support::watchdog(
            Duration::from_secs(20),
            "condition_notify_wait_for_and_cancelled_waiters",
        );
        rt.block_on(async {
            let cond = Rc::new(Condition::new());
            let woke = Rc::new(RefCell::new(Vec::new()));
            let waiting = Rc::new(Cell::new(0));
            let mut waiters: Vec<_> = (0..3)
                .map(|i| {
                    let (cond, woke, waiting) = (cond.clone(), woke.clone(), waiting.clone());
                    spawn(async move {
                        let held = cond.acquire().await;
                        waiting.set(waiting.get() + 1);
                        let _held = held.wait().await;
                        woke.borrow_mut().push(i);
                    })
                })
                .collect();
            support::yield_until("3 waiters", || waiting.get() == 3).await;
            assert!(!cond.locked(), "wait releases the lock");
            {
                let held = cond.acquire().await;
                assert_eq!(held.notify(1), 1);
                // Task 0 was notified; cancel it before it runs.
                waiters[0].cancel();
            }
            assert!(waiters.remove(0).await.unwrap_err().is_cancelled());
            waiters.remove(0).await.unwrap();
            assert_eq!(*woke.borrow(), [1], "the notification went on to task 1");
            {
                let held = cond.acquire().await;
                assert_eq!(held.notify_all(), 1);
            }
            waiters.remove(0).await.unwrap();
            assert_eq!(*woke.borrow(), [1, 2]);

            // wait_for: woken by notifications until the predicate holds.
            let value = Rc::new(Cell::new(0));
            let checker = spawn({
                let (cond, value) = (cond.clone(), value.clone());
                async move {
                    let held = cond.acquire().await;
                    let _held = held.wait_for(|| value.get() >= 3).await;
                    value.get()
                }
            });
            for v in 1..=3 {
                yield_now().await;
                let held = cond.acquire().await;
                value.set(v);
                held.notify_all();
            }
            assert_eq!(checker.await.unwrap(), 3);
            assert!(!cond.locked());
        });
    }

    /// Rounds of a 4-party barrier give each task a distinct index; a waiter cancelled
    /// mid-round leaves it (the barrier does not break); `abort` breaks the waiting tasks and
    /// later waits until `reset`.
    fn barrier_rounds_cancellation_abort_and_reset(rt) {
        let _wd = support::watchdog(
            Duration::from_secs(20),
            "barrier_rounds_cancellation_abort_and_reset",
        );
        rt.block_on(async {
            let barrier = Rc::new(Barrier::new(4));
            for _round in 0..3 {
                let tasks: Vec<_> = (0..4)
                    .map(|_| {
                        let barrier = barrier.clone();
                        spawn(async move { barrier.wait().await })
                    })
                    .collect();
                let mut indices = Vec::new();
                for task in tasks {
                    indices.push(task.await.unwrap().unwrap());
                }
                indices.sort();
                assert_eq!(indices, [0, 1, 2, 3]);
            }

            let early: Vec<_> = (0..2)
                .map(|_| {
                    let barrier = barrier.clone();
                    spawn(async move { barrier.wait().await })
                })
                .collect();
            support::yield_until("2 waiting", || barrier.n_waiting() == 2).await;
            early[1].cancel();
            support::yield_until("the cancelled one left", || barrier.n_waiting() == 1).await;
            assert!(!barrier.broken());

            barrier.abort();
            assert!(barrier.broken());
            let mut early = early.into_iter();
            assert_eq!(early.next().unwrap().await.unwrap(), Err(BrokenBarrierError));
            assert_eq!(barrier.wait().await, Err(BrokenBarrierError));

            barrier.reset();
            assert!(!barrier.broken());
            let again: Vec<_> = (0..4)
                .map(|_| {
                    let barrier = barrier.clone();
                    spawn(async move { barrier.wait().await })
                })
                .collect();
            for task in again {
                assert!(task.await.unwrap().is_ok());
            }

            // reset() breaks only the round in progress.
            let waiting = spawn({
                let barrier = barrier.clone();
                async move { barrier.wait().await }
            });
            support::yield_until("1 waiting", || barrier.n_waiting() == 1).await;
            barrier.reset();
            assert_eq!(waiting.await.unwrap(), Err(BrokenBarrierError));
            assert!(!barrier.broken());
            assert_eq!(barrier.n_waiting(), 0);
        });
    }

    /// `set` wakes every waiter; after `clear`, `wait` waits again.
    fn event_set_wakes_all_and_clear_rearms(rt) {
        rt.block_on(async {
            let event = Rc::new(Event::new());
            let waiting = Rc::new(Cell::new(0));
            let waiters: Vec<_> = (0..5)
                .map(|_| {
                    let (event, waiting) = (event.clone(), waiting.clone());
                    spawn(async move {
                        waiting.set(waiting.get() + 1);
                        event.wait().await;
                    })
                })
                .collect();
            support::yield_until("5 waiters", || waiting.get() == 5).await;
            event.set();
            for waiter in waiters {
                waiter.await.unwrap();
            }
            event.wait().await;
            event.clear();
            assert!(!event.is_set());
            let r = time::timeout(Duration::from_millis(5), event.wait()).await;
            assert!(r.is_err(), "a cleared event waits");
        });
    }
}
