//! Loops and threads: `Runner` (asyncio.Runner), `Handle::spawn`/`spawn_with` from other
//! threads (asyncio's run_coroutine_threadsafe) with `JoinHandle::wait`, and the channels of
//! `sync::mpsc` and `sync::oneshot` across threads and loops.

mod support;

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ringloop::sync::{mpsc, oneshot};
use ringloop::{Backend, Runner, Runtime};

fn runner(backend: Backend) -> Runner {
    Runtime::builder()
        .backend(backend)
        .build_runner()
        .unwrap_or_else(|e| panic!("cannot build a runner on {backend:?}: {e}"))
}

both_backends! {
    /// One loop serves several runs: a task spawned in the first finishes in the second.
    fn runner_reuses_one_loop(backend: Backend) {
        let _wd = support::watchdog(Duration::from_secs(20), "runner_reuses_one_loop");
        // Every test here opens fds (runtimes): one at a time, for the fd count.
        let _serial = support::serial();
        let runner = runner(backend);
        let (tx, rx) = oneshot::channel();
        let first = runner.run(async move {
            ringloop::spawn(async move {
                ringloop::time::sleep(Duration::from_millis(2)).await;
                tx.send(7).unwrap();
            });
            1
        });
        assert_eq!(first, 1);
        assert_eq!(runner.run(rx), Ok(7));
        assert_eq!(runner.run(async { 2 + 2 }), 4);
        runner.close();
    }

    /// Closing a runner cancels the tasks left — one blocked in a real read — waits for
    /// their ops, and leaks no descriptor; the handle of the cancelled task says so.
    fn runner_close_cancels_what_is_left(backend: Backend) {
        let _wd = support::watchdog(Duration::from_secs(20), "runner_close_cancels_what_is_left");
        // Every test here opens fds (runtimes): one at a time, for the fd count.
        let _serial = support::serial();
        let before = support::open_fds();
        let runner = runner(backend);
        let (r, w) = support::pipe();
        let reader = runner.run(async move {
            let reader = ringloop::spawn(async move {
                let buf = Vec::with_capacity(64);
                let (n, _) = ringloop::op::read(r.as_raw_fd(), buf).await;
                n
            });
            ringloop::yield_now().await;
            // Handed out of the run in an `Option`: the handle is kept, not awaited, here.
            Some(reader)
        })
        .expect("the reader's handle");
        runner.close();
        drop(w);
        let out = reader.wait();
        assert!(out.unwrap_err().is_cancelled(), "the read was cancelled by close");
        assert_eq!(support::open_fds(), before, "{:?}", support::describe_open_fds());
    }

    /// 8 threads spawn 100 000 futures in all onto one loop and wait for each: every result
    /// arrives, right.
    fn spawn_from_eight_threads(backend: Backend) {
        let _wd = support::watchdog(Duration::from_secs(120), "spawn_from_eight_threads");
        // Every test here opens fds (runtimes): one at a time, for the fd count.
        let _serial = support::serial();
        const THREADS: u64 = 8;
        const PER_THREAD: u64 = 12_500;
        let rt = support::runtime(backend);
        let (done_tx, done_rx) = mpsc::channel(THREADS as usize);
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (handle, done) = (rt.handle(), done_tx.clone());
                std::thread::spawn(move || {
                    let handles: Vec<_> = (0..PER_THREAD)
                        .map(|i| {
                            let n = t * PER_THREAD + i;
                            handle.spawn(async move { n * 2 })
                        })
                        .collect();
                    let mut sum = 0;
                    for (i, h) in handles.into_iter().enumerate() {
                        let n = t * PER_THREAD + i as u64;
                        let got = h.wait().unwrap();
                        assert_eq!(got, n * 2);
                        sum += got;
                    }
                    done.send_blocking(()).unwrap();
                    sum
                })
            })
            .collect();
        drop(done_tx);
        rt.block_on(async move {
            for _ in 0..THREADS {
                done_rx.recv().await.unwrap();
            }
        });
        let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        let n = THREADS * PER_THREAD;
        assert_eq!(total, n * (n - 1));
    }

    /// A loop parked in the kernel with nothing to do (no timer, no op) is woken at once by a
    /// spawn from another thread; `spawn_with` runs a future using the loop's own timers; a
    /// panic arrives as a panic and a cancelled task as cancelled.
    fn spawn_wakes_a_parked_loop_and_carries_panics_and_cancels(backend: Backend) {
        let _wd = support::watchdog(
            Duration::from_secs(20),
            "spawn_wakes_a_parked_loop_and_carries_panics_and_cancels",
        );
        // Every test here opens fds (runtimes): one at a time, for the fd count.
        let _serial = support::serial();
        let rt = support::runtime(backend);
        let handle = rt.handle();
        let (done, finished) = oneshot::channel();
        let worker = std::thread::spawn(move || {
            // Not synchronisation (the test passes either way): time for the loop to park
            // in the kernel, so that the spawn has to wake it.
            std::thread::sleep(Duration::from_millis(20));
            let started = Instant::now();
            assert_eq!(handle.spawn(async { 5 }).wait().unwrap(), 5);
            let woke_in = started.elapsed();

            let slept = handle
                .spawn_with(|| async {
                    let start = Instant::now();
                    ringloop::time::sleep(Duration::from_millis(3)).await;
                    start.elapsed()
                })
                .wait()
                .unwrap();
            assert!(slept >= Duration::from_millis(3));

            let panicked = handle.spawn(async { panic!("boom on the loop") }).wait();
            let panic = panicked.unwrap_err();
            assert!(panic.is_panic());
            assert_eq!(panic.into_panic().downcast_ref::<&str>(), Some(&"boom on the loop"));

            let endless = handle.spawn(std::future::pending::<()>());
            endless.cancel();
            assert!(endless.wait().unwrap_err().is_cancelled());

            let endless = handle.spawn_with(|| ringloop::time::sleep(Duration::from_secs(3600)));
            endless.cancel();
            assert!(endless.wait().unwrap_err().is_cancelled());
            done.send(()).unwrap();
            woke_in
        });
        rt.block_on(finished).unwrap();
        let woke_in = worker.join().unwrap();
        eprintln!("{backend:?}: a spawn onto the parked loop came back in {woke_in:?}");
    }

    /// Once the runtime is dropped, a spawn onto its loop answers with a cancellation error at
    /// once instead of hanging; so does a task that was queued when it closed.
    fn spawn_onto_a_closed_loop_is_an_error(backend: Backend) {
        let _wd = support::watchdog(Duration::from_secs(20), "spawn_onto_a_closed_loop_is_an_error");
        // Every test here opens fds (runtimes): one at a time, for the fd count.
        let _serial = support::serial();
        let rt = support::runtime(backend);
        let handle = rt.handle();
        let queued = handle.spawn(async { 1 }); // never run: the loop never runs again
        drop(rt);
        assert!(queued.wait().unwrap_err().is_cancelled());
        assert!(handle.spawn(async { 2 }).wait().unwrap_err().is_cancelled());
        assert!(handle.spawn_with(|| async { 3 }).wait().unwrap_err().is_cancelled());
        let from_thread = std::thread::spawn(move || handle.spawn(async { 4 }).wait());
        assert!(from_thread.join().unwrap().unwrap_err().is_cancelled());
    }

    /// Two loops on two threads: a task of loop A streams numbers to a task of loop B through
    /// an mpsc channel, B answers the sum through a oneshot, and A awaits a task spawned onto
    /// B with `Handle::spawn`.
    fn channels_and_handles_across_two_loops(backend: Backend) {
        let _wd = support::watchdog(Duration::from_secs(30), "channels_and_handles_across_two_loops");
        // Every test here opens fds (runtimes): one at a time, for the fd count.
        let _serial = support::serial();
        let (tx, rx) = mpsc::channel::<u32>(4);
        let (sum_tx, sum_rx) = oneshot::channel();
        let (handle_tx, handle_rx) = oneshot::channel();
        let received = Arc::new(AtomicUsize::new(0));
        let loop_b = std::thread::spawn({
            let received = received.clone();
            move || {
                let rt = support::runtime(backend);
                handle_tx.send(rt.handle()).unwrap();
                rt.block_on(async move {
                    let mut sum = 0;
                    while let Ok(n) = rx.recv().await {
                        sum += n;
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    // Loop A's spawn was posted before its first message, so this loop ran
                    // it before it could see the channel close.
                    sum_tx.send(sum).unwrap();
                });
            }
        });
        let rt_a = support::runtime(backend);
        let sum = rt_a.block_on(async move {
            let b = handle_rx.await.unwrap();
            let on_b = b.spawn(async { std::thread::current().id() });
            for n in 1..=1000 {
                tx.send(n).await.unwrap();
            }
            drop(tx);
            let b_thread = on_b.await.unwrap();
            assert_ne!(b_thread, std::thread::current().id(), "ran on loop B's thread");
            sum_rx.await.unwrap()
        });
        loop_b.join().unwrap();
        assert_eq!(sum, 500_500);
        assert_eq!(received.load(Ordering::Relaxed), 1000);
    }
}
