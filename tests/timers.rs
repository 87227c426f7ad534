//! `ringloop::time`: `sleep`/`sleep_until` never wake early, `timeout`/`timeout_at` cancel the
//! inner future's ops when they fire and return `Ok` when it finishes first, and `interval`
//! ticks at once and then once per period.

mod support;

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use ringloop::op;
use ringloop::time::{self, Elapsed};

/// After a cancelled read on `r`: the op table drains, and a message written afterwards is read
/// back whole by new reads (from its first byte), so the cancelled read consumed nothing.
async fn assert_read_was_cancelled(r: &OwnedFd, w: &OwnedFd) {
    support::settle_inflight(0).await;
    let message = b"written after the cancel";
    support::write_all(w, message);
    let what = "the message written after the cancel";
    assert_eq!(
        support::read_fd_exact(r.as_raw_fd(), message.len(), what).await,
        message
    );
}

both_backends! {
    /// A timer that falls due while other tasks run wakes the main future even when nothing
    /// else will ever happen: the loop fires it before deciding how long to wait in the
    /// kernel. (Regression: the main future's wake-up was read before the timers fired, so
    /// the loop waited forever in epoll_wait / io_uring_enter.)
    fn timer_due_while_tasks_run_wakes_the_main_future(rt) {
        let _wd = support::watchdog(
            Duration::from_secs(10),
            "timer_due_while_tasks_run_wakes_the_main_future",
        );
        rt.block_on(async {
            for _ in 0..20 {
                // A CPU-bound task that runs past the main future's timer.
                ringloop::spawn(async {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(1) {
                        std::hint::spin_loop();
                    }
                });
                time::sleep(Duration::from_micros(50)).await;
            }
        });
    }

    /// `sleep(d)` returns no earlier than `d` after it was called; `sleep_until(t)` no earlier
    /// than `t`; a zero sleep and a deadline in the past return promptly.
    fn sleep_waits_at_least_the_duration(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "sleep_waits_at_least_the_duration");
        rt.block_on(async {
            for ms in [1, 10, 50] {
                let d = Duration::from_millis(ms);
                let start = Instant::now();
                time::sleep(d).await;
                assert!(start.elapsed() >= d, "sleep({d:?}) woke after {:?}", start.elapsed());
            }
            let deadline = Instant::now() + Duration::from_millis(30);
            time::sleep_until(deadline).await;
            assert!(Instant::now() >= deadline, "sleep_until woke early");

            let start = Instant::now();
            time::sleep(Duration::ZERO).await;
            time::sleep_until(start - Duration::from_millis(100)).await;
            assert!(start.elapsed() < Duration::from_secs(1), "took {:?}", start.elapsed());
        });
    }

    /// Concurrent sleeps each wake no earlier than their own deadline.
    fn concurrent_sleeps_wake_after_their_deadlines(rt) {
        let _wd = support::watchdog(
            Duration::from_secs(10),
            "concurrent_sleeps_wake_after_their_deadlines",
        );
        rt.block_on(async {
            let base = Instant::now();
            let sleepers: Vec<_> = (0..100u64)
                .rev()
                .map(|i| {
                    let deadline = base + Duration::from_millis(i % 25 * 2);
                    ringloop::spawn(async move {
                        time::sleep_until(deadline).await;
                        (deadline, Instant::now())
                    })
                })
                .collect();
            for sleeper in sleepers {
                let (deadline, woke) = sleeper.await.expect("task ok");
                assert!(woke >= deadline, "woke {:?} early", deadline - woke);
            }
        });
    }

    /// `timeout` around a read on an empty pipe returns `Elapsed` no earlier than its duration
    /// and cancels the read: the op table drains and the read consumed nothing.
    fn timeout_cancels_blocked_read(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "timeout_cancels_blocked_read");
        rt.block_on(async {
            let (r, w) = support::pipe();
            let start = Instant::now();
            let res = time::timeout(
                Duration::from_millis(50),
                op::read(r.as_raw_fd(), Vec::with_capacity(64)),
            )
            .await;
            let _: Elapsed = res.expect_err("nothing was written: the timeout fires");
            assert!(start.elapsed() >= Duration::from_millis(50));
            assert_read_was_cancelled(&r, &w).await;
        });
    }

    /// `timeout_at` fires at its deadline (not before), cancelling the blocked read, and returns
    /// `Ok` when the inner future finishes before the deadline.
    fn timeout_at_fires_at_deadline(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "timeout_at_fires_at_deadline");
        rt.block_on(async {
            let (r, w) = support::pipe();
            let deadline = Instant::now() + Duration::from_millis(40);
            let res = time::timeout_at(deadline, op::read(r.as_raw_fd(), Vec::with_capacity(64)))
                .await;
            let _: Elapsed = res.expect_err("nothing was written: the timeout fires");
            assert!(Instant::now() >= deadline);
            assert_read_was_cancelled(&r, &w).await;

            let far = Instant::now() + Duration::from_secs(5);
            let value = time::timeout_at(far, async { 9 }).await.expect("finishes first");
            assert_eq!(value, 9);
        });
    }

    /// A timeout whose inner future finishes first returns `Ok` with its output, without waiting
    /// for the timer and without disturbing the op's result (the bytes waiting, or their first
    /// few when the read is short).
    fn timeout_returns_ok_when_inner_finishes_first(rt) {
        let _wd = support::watchdog(
            Duration::from_secs(10),
            "timeout_returns_ok_when_inner_finishes_first",
        );
        rt.block_on(async {
            let start = Instant::now();
            let value = time::timeout(Duration::from_secs(5), async { 7 }).await;
            assert_eq!(value.expect("finishes first"), 7);

            let (r, w) = support::pipe();
            support::write_all(&w, b"ready");
            let read = op::read(r.as_raw_fd(), Vec::with_capacity(64));
            let (res, buf) = time::timeout(Duration::from_secs(5), read)
                .await
                .expect("data is ready: the read wins");
            let n = res.expect("read");
            assert!((1..=5).contains(&n), "read {n} bytes");
            assert_eq!(buf, &b"ready"[..n]);

            let slept = time::timeout(
                Duration::from_secs(5),
                time::sleep(Duration::from_millis(10)),
            )
            .await;
            assert!(slept.is_ok());
            assert!(start.elapsed() < Duration::from_secs(4), "took {:?}", start.elapsed());
            support::settle_inflight(0).await;
        });
    }

    /// The first `Interval::tick` completes at once, even with a 10 s period.
    fn interval_first_tick_is_immediate(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "interval_first_tick_is_immediate");
        rt.block_on(async {
            let mut interval = time::interval(Duration::from_secs(10));
            let first = time::timeout(Duration::from_secs(2), interval.tick()).await;
            assert!(first.is_ok(), "the first tick waited for the period");
        });
    }

    /// `Interval` ticks once per period: the n-th tick is no earlier than n periods after the
    /// first, and over a 300 ms window a 50 ms interval ticks between 2 and 7 times.
    fn interval_ticks_once_per_period(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "interval_ticks_once_per_period");
        rt.block_on(async {
            let period = Duration::from_millis(20);
            let mut interval = time::interval(period);
            let mut ticks = Vec::new();
            for _ in 0..6 {
                ticks.push(interval.tick().await);
            }
            for (n, tick) in ticks.iter().enumerate() {
                assert!(*tick >= ticks[0] + period * n as u32, "tick {n} came early");
            }
            assert!(ticks.windows(2).all(|w| w[0] < w[1]), "ticks must increase: {ticks:?}");

            let window = Duration::from_millis(300);
            let mut interval = time::interval(Duration::from_millis(50));
            let mut count = 0u32;
            let counted = time::timeout(window, async {
                loop {
                    interval.tick().await;
                    count += 1;
                }
            })
            .await;
            assert!(counted.is_err(), "the loop only ends by the timeout");
            assert!((2..=7).contains(&count), "{count} ticks in {window:?}");
        });
    }
}
