//! Readiness of arbitrary fds: asyncio's `add_reader`/`add_writer` (level-triggered watches on
//! the loop), the multishot readiness stream, and the cooperative budget that keeps a task whose
//! ops complete at once (the epoll backend's fast path) from starving the rest of the loop.

mod support;

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use ringloop::op::{Interest, poll_add, poll_multishot};
use ringloop::{Handle, op, yield_now};

both_backends! {
    /// A reader callback runs again on later loop ticks while the fd stays readable (level
    /// semantics, like asyncio), at most once per tick, and stops after `remove_reader`.
    fn add_reader_is_level_triggered_and_removable(rt) {
        let _dog = support::watchdog(Duration::from_secs(10), "add_reader");
        rt.block_on(async {
            let (rx, tx) = support::pipe();
            let h = Handle::current();
            let calls = Rc::new(Cell::new(0u32));
            let c = calls.clone();
            h.add_reader(rx.as_raw_fd(), move || c.set(c.get() + 1));
            yield_now().await;
            assert_eq!(calls.get(), 0, "no callback before the fd is readable");
            support::write_all(&tx, b"x");
            // Nobody reads the byte, so the fd stays readable and the callback keeps coming.
            support::yield_until_deadline("the reader ran three times", || calls.get() >= 3).await;
            let before = calls.get();
            yield_now().await;
            assert!(calls.get() <= before + 1, "at most one call per loop tick");
            assert!(h.remove_reader(rx.as_raw_fd()));
            assert!(!h.remove_reader(rx.as_raw_fd()), "already removed");
            yield_now().await;
            let after = calls.get();
            support::yield_turns(20).await;
            assert_eq!(calls.get(), after, "no call after remove_reader");
            support::yield_until_deadline("the watch's poll op is gone", || h.inflight_ops() == 0)
                .await;
        });
    }

    /// A writer callback fires for a writable pipe; adding a second writer for the same fd
    /// replaces the first.
    fn add_writer_replaces_the_previous_writer(rt) {
        let _dog = support::watchdog(Duration::from_secs(10), "add_writer");
        rt.block_on(async {
            let (_rx, tx) = support::pipe();
            let h = Handle::current();
            let first = Rc::new(Cell::new(0u32));
            let second = Rc::new(Cell::new(0u32));
            let f = first.clone();
            h.add_writer(tx.as_raw_fd(), move || f.set(f.get() + 1));
            support::yield_until_deadline("the first writer ran", || first.get() > 0).await;
            let s = second.clone();
            h.add_writer(tx.as_raw_fd(), move || s.set(s.get() + 1));
            support::yield_until_deadline("the second writer ran", || second.get() > 0).await;
            let frozen = first.get();
            support::yield_turns(20).await;
            assert_eq!(first.get(), frozen, "the replaced writer stopped");
            assert!(h.remove_writer(tx.as_raw_fd()));
        });
    }

    /// The multishot readiness stream yields one item per new readiness, keeps going across
    /// many reports from one submission, and dropping it drains the op table.
    fn poll_multishot_streams_readiness_until_dropped(rt) {
        let _dog = support::watchdog(Duration::from_secs(10), "poll_multishot");
        rt.block_on(async {
            let (rx, tx) = support::pipe();
            let submitted_before = ringloop::Handle::current().inflight_ops();
            assert_eq!(submitted_before, 0);
            let mut ready = poll_multishot(rx.as_raw_fd(), Interest::READABLE);
            for i in 0..50u8 {
                support::write_all(&tx, &[i]);
                let seen = ready.next().await.expect("stream still live").unwrap();
                assert!(seen.is_readable());
                let (n, buf) = op::read(rx.as_raw_fd(), Vec::with_capacity(8)).await;
                assert_eq!((n.unwrap(), buf), (1, vec![i]), "byte {i} read once");
            }
            assert_eq!(Handle::current().inflight_ops(), 1, "one op for the whole stream");
            drop(ready);
            let h = Handle::current();
            support::yield_until_deadline("the cancelled stream's op completed", || {
                h.inflight_ops() == 0
            })
            .await;
        });
    }

    /// Cancelling a multishot stream ends it: `next` returns `None` (after any error item),
    /// and the op table drains.
    fn cancelled_stream_ends(rt) {
        let _dog = support::watchdog(Duration::from_secs(10), "stream cancel");
        rt.block_on(async {
            let (rx, _tx) = support::pipe();
            let mut ready = poll_multishot(rx.as_raw_fd(), Interest::READABLE);
            // Submit it: one poll that finds nothing.
            let first = futures_lite::future::poll_once(ready.next()).await;
            assert!(first.is_none(), "no readiness yet");
            ready.cancel();
            let mut items = 0;
            while let Some(item) = ready.next().await {
                let err = item.expect_err("only the cancellation can arrive");
                assert_eq!(err.raw_os_error(), Some(libc::ECANCELED));
                items += 1;
                assert!(items <= 1, "the stream ends after its final completion");
            }
            assert_eq!(Handle::current().inflight_ops(), 0);
        });
    }

    /// A task whose ops complete at once (readiness of an fd that stays readable) still yields
    /// to the loop: another task makes progress while it runs.
    fn busy_task_with_instant_ops_does_not_starve_others(rt) {
        let _dog = support::watchdog(Duration::from_secs(10), "coop budget");
        rt.block_on(async {
            let (rx, tx) = support::pipe();
            support::write_all(&tx, b"!");
            let progress = Rc::new(Cell::new(0u32));
            let p = progress.clone();
            let other = ringloop::spawn(async move {
                for _ in 0..10 {
                    p.set(p.get() + 1);
                    yield_now().await;
                }
            });
            let fd = rx.as_raw_fd();
            let busy = ringloop::spawn({
                let progress = progress.clone();
                async move {
                    let mut polls = 0u32;
                    while progress.get() < 10 && polls < 1_000_000 {
                        poll_add(fd, Interest::READABLE).await.unwrap();
                        polls += 1;
                    }
                    polls
                }
            });
            let polls = busy.await.unwrap();
            assert_eq!(progress.get(), 10, "the other task ran to the end during {polls} polls");
            other.await.unwrap();
        });
    }
}
