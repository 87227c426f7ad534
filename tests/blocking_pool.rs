//! The blocking pool: `run_in_executor` (asyncio's name for `spawn_blocking`), the thread
//! bound, idle threads exiting, and the runtime's graceful shutdown with a timeout.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use ringloop::{Backend, Handle, Runtime};
use support::{watchdog, yield_until_deadline};

fn builder(backend: Backend) -> ringloop::Builder {
    Runtime::builder().backend(backend)
}

/// A gate blocking jobs until the test opens it.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) {
        let (open, cv) = &*self.0;
        let mut open = open.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
    }
    fn open(&self) {
        let (open, cv) = &*self.0;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
}

both_backends! {
    /// `Handle::run_in_executor` runs the closure on a pool thread, not the loop thread, and
    /// its result comes back to the awaiting task.
    fn run_in_executor_runs_off_the_loop(rt) {
        let _dog = watchdog(Duration::from_secs(20), "run_in_executor");
        rt.block_on(async {
            let loop_thread = std::thread::current().id();
            let (value, thread) = Handle::current()
                .run_in_executor(|| (6 * 7, std::thread::current().id()))
                .await
                .expect("job");
            assert_eq!(value, 42);
            assert_ne!(thread, loop_thread, "run_in_executor ran on the loop thread");
        });
    }

    /// With `blocking_threads(2)`, six blocked jobs occupy exactly two threads; the other four
    /// wait in the queue and all six finish once the jobs are released.
    fn pool_never_exceeds_its_bound(backend: Backend) {
        let _dog = watchdog(Duration::from_secs(20), "bounded pool");
        let rt = builder(backend).blocking_threads(2).build().expect("runtime");
        rt.block_on(async {
            let gate = Gate::default();
            let running = Arc::new(AtomicUsize::new(0));
            let most = Arc::new(AtomicUsize::new(0));
            let jobs: Vec<_> = (0..6)
                .map(|i| {
                    let (gate, running, most) = (gate.clone(), running.clone(), most.clone());
                    ringloop::spawn_blocking(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        gate.wait();
                        running.fetch_sub(1, Ordering::SeqCst);
                        i
                    })
                })
                .collect();
            yield_until_deadline("two jobs run", || running.load(Ordering::SeqCst) == 2).await;
            // Gives a bound violation time to show (not a synchronisation: nothing waits on it).
            ringloop::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(running.load(Ordering::SeqCst), 2, "more jobs ran than threads allowed");
            assert_eq!(rt.blocking_pool_threads(), 2);
            gate.open();
            for (i, job) in jobs.into_iter().enumerate() {
                assert_eq!(job.await.expect("job"), i);
            }
            assert_eq!(most.load(Ordering::SeqCst), 2);
        });
    }

    /// Threads idle for `blocking_idle_timeout` exit: three threads started by three
    /// concurrent jobs are all gone soon after the jobs end, and a later job starts a new one.
    fn idle_threads_exit(backend: Backend) {
        let _dog = watchdog(Duration::from_secs(20), "idle pool threads exit");
        let rt = builder(backend)
            .blocking_idle_timeout(Duration::from_millis(50))
            .build()
            .expect("runtime");
        rt.block_on(async {
            let gate = Gate::default();
            let running = Arc::new(AtomicUsize::new(0));
            let jobs: Vec<_> = (0..3)
                .map(|_| {
                    let (gate, running) = (gate.clone(), running.clone());
                    ringloop::spawn_blocking(move || {
                        running.fetch_add(1, Ordering::SeqCst);
                        gate.wait();
                    })
                })
                .collect();
            yield_until_deadline("three jobs run", || running.load(Ordering::SeqCst) == 3).await;
            assert_eq!(rt.blocking_pool_threads(), 3);
            gate.open();
            for job in jobs {
                job.await.expect("job");
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while rt.blocking_pool_threads() > 0 {
                assert!(Instant::now() < deadline, "idle pool threads did not exit");
                ringloop::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(ringloop::spawn_blocking(|| 5).await.expect("job"), 5);
        });
    }

    /// With the default idle timeout (10 s) a thread stays for the next job: right after a job
    /// ends, the pool still has its thread.
    fn default_idle_timeout_keeps_threads(rt) {
        rt.block_on(async {
            ringloop::spawn_blocking(|| ()).await.expect("job");
            assert_eq!(rt.blocking_pool_threads(), 1);
        });
    }

    /// Dropping the runtime waits for a running blocking job (within the shutdown timeout):
    /// when the drop returns, the job has finished.
    fn drop_waits_for_running_jobs(backend: Backend) {
        let _dog = watchdog(Duration::from_secs(20), "drop waits for jobs");
        let rt = builder(backend).build().expect("runtime");
        let started = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        rt.block_on(async {
            let (s, f) = (started.clone(), finished.clone());
            let job = ringloop::spawn_blocking(move || {
                s.store(true, Ordering::SeqCst);
                // The job's work: it takes a while, and the drop below must wait for it.
                std::thread::sleep(Duration::from_millis(200));
                f.store(true, Ordering::SeqCst);
            });
            drop(job);
            yield_until_deadline("the job started", || started.load(Ordering::SeqCst)).await;
        });
        drop(rt);
        assert!(finished.load(Ordering::SeqCst), "the runtime dropped before its job finished");
    }

    /// A job still running when `blocking_shutdown_timeout` passes is detached: the drop
    /// returns after about the timeout, the job keeps running and finishes later; a job
    /// queued behind it that never started is dropped without running.
    fn drop_detaches_jobs_after_the_timeout(backend: Backend) {
        let _dog = watchdog(Duration::from_secs(20), "drop detaches stuck jobs");
        let timeout = Duration::from_millis(100);
        let rt = builder(backend)
            .blocking_threads(1)
            .blocking_shutdown_timeout(timeout)
            .build()
            .expect("runtime");
        let (release, released) = mpsc::channel::<()>();
        let (done, finished) = mpsc::channel::<()>();
        let started = Arc::new(AtomicBool::new(false));
        let queued_ran = Arc::new(AtomicBool::new(false));
        rt.block_on(async {
            let s = started.clone();
            drop(ringloop::spawn_blocking(move || {
                s.store(true, Ordering::SeqCst);
                released.recv().expect("released");
                done.send(()).expect("test alive");
            }));
            let q = queued_ran.clone();
            drop(ringloop::spawn_blocking(move || q.store(true, Ordering::SeqCst)));
            yield_until_deadline("the job started", || started.load(Ordering::SeqCst)).await;
        });
        let dropping = Instant::now();
        drop(rt);
        let took = dropping.elapsed();
        assert!(took >= timeout, "drop returned after {took:?}, before the timeout");
        assert!(took < Duration::from_secs(4), "drop took {took:?}; the job was not detached");
        assert_eq!(Arc::strong_count(&queued_ran), 1, "the queued job was not dropped");
        release.send(()).expect("the detached job is alive");
        finished
            .recv_timeout(Duration::from_secs(10))
            .expect("the detached job finished");
        assert!(!queued_ran.load(Ordering::SeqCst), "a queued job ran after shutdown");
    }
}
