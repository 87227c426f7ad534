//! The blocking pool: threads for work that must not run on a loop thread.
//!
//! Used by `spawn_blocking` (asyncio's `run_in_executor`) and by the epoll backend for
//! operations epoll cannot poll (regular files). Threads are started on demand up to a bound
//! (`Builder::blocking_threads`); jobs beyond it wait in a FIFO queue. A thread idle for
//! `Builder::blocking_idle_timeout` exits, so an idle runtime holds no pool threads.
//!
//! # Shutdown
//!
//! When the runtime drops, [`Pool::shutdown`] drops the jobs that have not started (their
//! `spawn_blocking` tasks end as cancelled), then waits up to `Builder::blocking_shutdown_timeout`
//! for the running jobs. Threads still busy after that are detached: they finish their job
//! (nothing can interrupt a blocking call) and exit; the runtime's drop returns without them.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A unit of blocking work.
pub type Job = Box<dyn FnOnce() + Send>;

/// A bounded, lazily grown thread pool.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    work_ready: Condvar,
    /// Notified when the last thread exits.
    all_exited: Condvar,
    max_threads: usize,
    idle_timeout: Duration,
}

struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    shutdown: bool,
}

impl Pool {
    /// A pool of at most `max_threads` threads.
    pub fn new(max_threads: usize, idle_timeout: Duration) -> Self {
        Pool {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    shutdown: false,
                }),
                work_ready: Condvar::new(),
                all_exited: Condvar::new(),
                max_threads: max_threads.max(1),
                idle_timeout,
            }),
        }
    }

    /// Queues `job`; starts a thread when none is idle and the bound allows.
    pub fn execute(&self, job: Job) {
        let mut state = lock(&self.inner.state);
        if state.shutdown {
            // Nobody submits after shutdown; a job that does is dropped, like a queued one.
            drop(state);
            drop(job);
            return;
        }
        state.queue.push_back(job);
        if state.idle > 0 {
            self.inner.work_ready.notify_one();
        } else if state.threads < self.inner.max_threads {
            let inner = self.inner.clone();
            let spawned = std::thread::Builder::new()
                .name("ringloop-blocking".into())
                .spawn(move || inner.work());
            if spawned.is_ok() {
                state.threads += 1;
            }
            // When no thread can be started, the job waits for a running thread.
        }
    }

    /// Drops the jobs not started yet, then waits up to `timeout` for the running ones;
    /// returns whether every thread exited in time (the others are detached).
    pub fn shutdown(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let not_started = {
            let mut state = lock(&self.inner.state);
            state.shutdown = true;
            std::mem::take(&mut state.queue)
        };
        self.inner.work_ready.notify_all();
        // Dropped outside the lock: a job's drop may run arbitrary code.
        drop(not_started);
        let mut state = lock(&self.inner.state);
        while state.threads > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .inner
                .all_exited
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Threads alive now (running a job or idle).
    pub fn threads(&self) -> usize {
        lock(&self.inner.state).threads
    }
}

impl Inner {
    fn work(&self) {
        let mut state = lock(&self.state);
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                // A panicking job must not take the pool thread down with it; spawn_blocking
                // catches panics itself, so this only guards internal jobs.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                state = lock(&self.state);
                continue;
            }
            if state.shutdown {
                break;
            }
            state.idle += 1;
            let (next, timeout) = self
                .work_ready
                .wait_timeout(state, self.idle_timeout)
                .unwrap_or_else(|e| e.into_inner());
            state = next;
            state.idle -= 1;
            if timeout.timed_out() && state.queue.is_empty() {
                break;
            }
        }
        state.threads -= 1;
        if state.threads == 0 {
            self.all_exited.notify_all();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Jobs run outside the lock, so a poisoned lock only means a panic in our own bookkeeping.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
