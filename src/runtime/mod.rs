//! The event loop: asyncio's loop on a completion ring.
//!
//! # How a loop tick works
//!
//! 1. Poll the future passed to [`Runtime::block_on`] if it was woken.
//! 2. Run the ready queue — tasks and `call_soon` callbacks, FIFO — at most the entries queued
//!    when the tick starts and at most [`BUDGET`], so a task that keeps waking itself cannot
//!    starve I/O.
//! 3. Move work posted by other threads (remote wake-ups, `call_soon_threadsafe`) into the
//!    ready queue, fire due timers.
//! 4. Park the driver: every SQE of the tick goes to the kernel in one `io_uring_enter`; it
//!    sleeps until the next timer deadline when nothing is ready, and collects completions,
//!    which wake the tasks parked on their tokens.

mod context;
mod future;
mod handle;
mod on_loop;
mod runner;
mod task;
pub(crate) mod timer;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::blocking::Pool;
use crate::driver::context::LoopCore;
use crate::driver::{self, Backend, BackendReport, Driver};
pub(crate) use context::LoopContext;
use context::Shared;
pub use future::{Cancelled, InvalidStateError, LoopFuture};
pub use handle::{CallbackHandle, Handle, TimerHandle};
pub use on_loop::{OnLoop, on_loop};
pub use runner::Runner;
pub use task::{JoinError, JoinHandle, spawn, spawn_blocking, yield_now};

pub(crate) use context::{current as current_context, with as with_context};

/// Most ready entries run in one loop tick before I/O is looked at again.
pub const BUDGET: usize = 256;

/// Configures and builds a [`Runtime`].
///
/// ```
/// use ringloop::{Backend, Runtime};
/// let rt = Runtime::builder().backend(Backend::Auto).entries(128).build().unwrap();
/// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    backend: Backend,
    entries: u32,
    cq_entries: Option<u32>,
    blocking_threads: usize,
    blocking_idle_timeout: Duration,
    blocking_shutdown_timeout: Duration,
    io_shutdown_timeout: Duration,
    max_batch: u32,
    max_batch_delay: Duration,
    fault_seed: Option<u64>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            backend: Backend::Auto,
            entries: 256,
            cq_entries: None,
            blocking_threads: 64,
            blocking_idle_timeout: Duration::from_secs(10),
            blocking_shutdown_timeout: Duration::from_secs(5),
            io_shutdown_timeout: Duration::from_secs(5),
            max_batch: driver::DEFAULT_MAX_BATCH,
            max_batch_delay: driver::DEFAULT_MAX_DELAY,
            fault_seed: None,
        }
    }
}

impl Builder {
    /// Which backend to use (default [`Backend::Auto`]; `RINGLOOP_BACKEND` overrides `Auto`).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Submission-queue entries of the ring (default 256). Ops beyond it are not lost: a full
    /// SQ is flushed to the kernel and filled again.
    pub fn entries(mut self, entries: u32) -> Self {
        self.entries = entries.max(1);
        self
    }

    /// Completion-queue entries (default twice `entries`). Completions beyond it wait in the
    /// kernel's overflow list and are drained, not lost.
    pub fn cq_entries(mut self, cq_entries: u32) -> Self {
        self.cq_entries = Some(cq_entries.max(1));
        self
    }

    /// Most threads of the blocking pool (default 64).
    pub fn blocking_threads(mut self, n: usize) -> Self {
        self.blocking_threads = n.max(1);
        self
    }

    /// How long a blocking-pool thread waits for work before it exits (default 10 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = ringloop::Runtime::builder()
    ///     .blocking_idle_timeout(Duration::from_millis(100))
    ///     .build()
    ///     .unwrap();
    /// rt.block_on(async { ringloop::spawn_blocking(|| ()).await.unwrap() });
    /// assert!(rt.blocking_pool_threads() <= 1);
    /// ```
    pub fn blocking_idle_timeout(mut self, timeout: Duration) -> Self {
        self.blocking_idle_timeout = timeout;
        self
    }

    /// How long dropping the runtime waits for blocking jobs still running (default 5 s).
    /// Jobs not started by then are dropped at once (their tasks end as cancelled); jobs still
    /// running after the timeout are detached: their threads finish them and exit on their own.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = ringloop::Runtime::builder()
    ///     .blocking_shutdown_timeout(Duration::from_millis(50))
    ///     .build()
    ///     .unwrap();
    /// drop(rt);
    /// ```
    pub fn blocking_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.blocking_shutdown_timeout = timeout;
        self
    }

    /// How long dropping the runtime waits for the kernel to finish the in-flight ops it
    /// cancels (default 5 s). Cancellation is normally immediate; an op the kernel cannot
    /// interrupt (a blocking-pool job on epoll, some file I/O on io_uring) is waited for up to
    /// this long, then its buffers are leaked rather than freed while the kernel may still
    /// write into them. Ops that already finished are never waited for.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = ringloop::Runtime::builder()
    ///     .io_shutdown_timeout(Duration::from_secs(1))
    ///     .build()
    ///     .unwrap();
    /// drop(rt);
    /// ```
    pub fn io_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.io_shutdown_timeout = timeout;
        self
    }

    /// Wraps the backend in the fault injector, seeded with `seed`: a test tool that perturbs
    /// the backend only in ways the kernel is allowed to (short reads and writes, interrupted
    /// waits, `ENOBUFS`, delayed and reordered completions, cancels that lose the race, a tiny
    /// io_uring ring that overflows, spurious epoll readiness). The same seed makes the same
    /// decisions. `RINGLOOP_FAULT_SEED` does the same for every runtime of a process, and
    /// `RINGLOOP_BACKEND=faults` (or `faults+epoll`) picks it from the environment.
    /// [`Runtime::stats`] counts the faults injected.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = ringloop::Runtime::builder().fault_injection(42).build().unwrap();
    /// assert_eq!(rt.backend_report().fault_seed(), Some(42));
    /// rt.block_on(async {
    ///     for _ in 0..200 {
    ///         ringloop::op::nop().await.unwrap();
    ///         ringloop::yield_now().await; // the loop turns: the injector acts at each wait
    ///     }
    ///     ringloop::time::sleep(Duration::from_millis(1)).await;
    /// });
    /// assert!(rt.stats().faults_injected > 0);
    /// ```
    pub fn fault_injection(mut self, seed: u64) -> Self {
        self.fault_seed = Some(seed);
        self
    }

    /// Completion coalescing on io_uring (default: up to 8 completions, at most 20 µs).
    ///
    /// Under load from many sources a loop that wakes for every completion enters the kernel
    /// once per two or three of them. With coalescing, a blocking wait asks the kernel for
    /// several completions but waits at most `max_delay` for them (`IORING_FEAT_MIN_TIMEOUT`,
    /// Linux 6.12; older kernels and the epoll backend ignore this). The batch size adapts: it
    /// grows by one while waits find at least two more completions than they asked for (one more
    /// is what a lone request/response connection sees) and drops back to one
    /// when a wait comes up short, so a loop serving one request at a time keeps waiting for
    /// one and pays no delay. What coalescing can add is at most `max_delay`, to the one
    /// wake-up that ends a burst; a timer due sooner than `max_delay` is never waited past.
    ///
    /// `completion_batching(1, Duration::ZERO)` turns it off (every wait returns at the
    /// first completion), for latency-critical loops.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = ringloop::Runtime::builder()
    ///     .completion_batching(16, Duration::from_micros(50))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(rt.block_on(async { 2 * 21 }), 42);
    /// ```
    pub fn completion_batching(mut self, max_batch: u32, max_delay: Duration) -> Self {
        self.max_batch = max_batch;
        self.max_batch_delay = max_delay;
        self
    }

    /// Builds the runtime: probes io_uring when asked, falls back to epoll under `Auto`.
    ///
    /// # Errors
    ///
    /// When the requested backend cannot run; the message names the errno and what to change.
    pub fn build(self) -> io::Result<Runtime> {
        let pool = Pool::new(self.blocking_threads, self.blocking_idle_timeout);
        let config = driver::Config {
            backend: self.backend,
            entries: self.entries,
            cq_entries: self.cq_entries.unwrap_or(self.entries.saturating_mul(2)),
            max_batch: self.max_batch,
            max_delay: self.max_batch_delay,
            shutdown_grace: self.io_shutdown_timeout,
            fault_seed: self.fault_seed,
        };
        let (driver, report) = Driver::new(&config, pool.clone())?;
        let shared = Arc::new(Shared::new(driver.unparker().clone(), pool, report));
        let cx = Rc::new(LoopContext {
            core: Rc::new(LoopCore::new(Rc::new(driver::DriverCell::new(driver)))),
            ready: RefCell::new(VecDeque::with_capacity(256)),
            pass_len: Cell::new(0),
            timers: RefCell::new(timer::Timers::default()),
            tasks: RefCell::new(Default::default()),
            next_task_id: Cell::new(2),
            live_tasks: Cell::new(0),
            shared,
            shutting_down: Cell::new(false),
            watchers: RefCell::new(Default::default()),
            signal_handlers: RefCell::new(Default::default()),
        });
        Ok(Runtime {
            cx,
            blocking_shutdown_timeout: self.blocking_shutdown_timeout,
        })
    }
}

/// Counters of what a runtime asked of the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// `io_uring_enter` (or `epoll_wait`) calls.
    pub kernel_enters: u64,
    /// Operations submitted.
    pub ops_submitted: u64,
    /// Of those, operations io_uring never saw: performed at once because they would not
    /// wait (a send made when nothing else was ready to run). Always 0 on epoll, where every
    /// op on a ready fd is performed at once.
    pub ops_at_once: u64,
    /// Faults the fault injector made (0 when it does not run; see
    /// [`Builder::fault_injection`]).
    pub faults_injected: u64,
    /// Tasks spawned on the loop's thread (`spawn`, `TaskGroup` children, callbacks not
    /// included) whose future has neither finished nor been dropped: a leak check. Tasks
    /// spawned from other threads (`Handle::spawn`) are not counted.
    pub tasks: u64,
    /// Buffers of the loop's shared receive ring (the one streams, transports and TLS
    /// receive into) lent out: held by received chunks not yet consumed or dropped. Another
    /// leak check: it returns to 0 when no connection holds received data.
    pub recv_buffers_lent: u64,
}

/// A single-threaded event loop. Not `Send`: a loop lives on the thread that built it.
///
/// Dropping it cancels every task and every in-flight op and waits for their completions, so no
/// buffer is freed while the kernel may still write into it.
///
/// ```
/// let rt = ringloop::Runtime::builder().build().unwrap();
/// let v = rt.block_on(async { ringloop::spawn(async { 5 }).await.unwrap() });
/// assert_eq!(v, 5);
/// println!("{}", rt.backend_report());
/// ```
pub struct Runtime {
    cx: Rc<LoopContext>,
    blocking_shutdown_timeout: Duration,
}

struct MainWaker {
    woken: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if with_context(|cx| cx.is(&self.shared)) != Some(true) {
            self.shared.unparker.unpark();
        }
    }
}

impl Runtime {
    /// A builder with the defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Which backend runs and why.
    pub fn backend_report(&self) -> &BackendReport {
        &self.cx.shared.report
    }

    /// A handle to this loop (asyncio's loop methods), usable from other threads.
    pub fn handle(&self) -> Handle {
        Handle::from_shared(self.cx.shared.clone())
    }

    /// Ops in flight right now: every op the loop has submitted and not yet seen complete,
    /// orphans waiting for their cancel included (an op run on the blocking pool because the
    /// ring lacks its opcode counts like any other). A dropped runtime waits for all of them,
    /// up to [`Builder::io_shutdown_timeout`].
    ///
    /// ```
    /// let rt = ringloop::Runtime::builder().build().unwrap();
    /// assert_eq!(rt.inflight_ops(), 0);
    /// ```
    pub fn inflight_ops(&self) -> usize {
        self.cx.driver().borrow().inflight()
    }

    /// Threads of the blocking pool alive now, running a job or idle (they exit after
    /// [`Builder::blocking_idle_timeout`]).
    ///
    /// ```
    /// let rt = ringloop::Runtime::builder().build().unwrap();
    /// assert_eq!(rt.blocking_pool_threads(), 0);
    /// ```
    pub fn blocking_pool_threads(&self) -> usize {
        self.cx.shared.pool.threads()
    }

    /// What the runtime has asked of the kernel so far.
    pub fn stats(&self) -> Stats {
        let recv_buffers_lent = crate::buf::loop_ring_lent(&self.cx.core) as u64;
        let d = self.cx.driver().borrow();
        Stats {
            kernel_enters: d.kernel_enters(),
            ops_submitted: d.ops_submitted(),
            ops_at_once: d.ops_at_once(),
            faults_injected: d.faults_injected(),
            tasks: self.cx.live_tasks.get(),
            recv_buffers_lent,
        }
    }

    /// Runs `fut` to completion on this thread, running spawned tasks, callbacks and I/O
    /// meanwhile. Tasks still pending when it returns stay in the runtime for the next call.
    ///
    /// If the kernel fails the loop's own wait for good (`io_uring_enter` or `epoll_wait`
    /// failing with anything but a transient `EINTR`/`EAGAIN`/`EBUSY`, which are retried),
    /// `block_on` does not panic: the error is delivered to the ops — those not yet handed to
    /// the kernel and every later one fail with its errno — and the loop runs on without its
    /// backend (tasks, timers, the blocking pool and remote wake-ups still work). An op the
    /// io_uring kernel already holds cannot be failed safely (its buffers may still be
    /// written) and stays pending, so a future awaiting one would wait for ever: use
    /// [`try_block_on`](Self::try_block_on) to stop at that error instead.
    ///
    /// # Panics
    ///
    /// When called from inside a ringloop loop (a loop cannot block itself).
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        match self.run_until(fut, false) {
            Ok(v) => v,
            Err(_) => unreachable!("run_until returns an error only when asked to stop at one"),
        }
    }

    /// As [`block_on`](Self::block_on), but returns an error as soon as the loop's wait in
    /// the kernel fails for good (at once if it already has): the message names the backend,
    /// the call, the descriptor and the errno, and the error's kind is the errno's. `fut` is
    /// dropped then (its ops cancelled where the kernel still can); spawned tasks stay.
    ///
    /// ```
    /// let rt = ringloop::Runtime::builder().build().unwrap();
    /// let v = rt.try_block_on(async { 6 * 7 }).expect("the loop's wait works");
    /// assert_eq!(v, 42);
    /// ```
    ///
    /// # Errors
    ///
    /// The loop's backend cannot wait any more (its ring or epoll descriptor was closed or
    /// replaced, or the kernel tore the ring down).
    ///
    /// # Panics
    ///
    /// When called from inside a ringloop loop (a loop cannot block itself).
    pub fn try_block_on<F: Future>(&self, fut: F) -> io::Result<F::Output> {
        self.run_until(fut, true)
    }

    /// The loop of `block_on`; with `stop_on_failure`, returns the backend's failure instead
    /// of running on without it.
    fn run_until<F: Future>(&self, fut: F, stop_on_failure: bool) -> io::Result<F::Output> {
        assert!(
            with_context(|_| ()).is_none(),
            "block_on called from inside a ringloop loop; spawn the future instead"
        );
        let failure = || -> io::Result<()> {
            match self.cx.driver().borrow().failure() {
                Some(f) if stop_on_failure => Err(f.to_io_error()),
                _ => Ok(()),
            }
        };
        failure()?;
        let _enter = context::enter(&self.cx);
        let main = Arc::new(MainWaker {
            woken: AtomicBool::new(true),
            shared: self.cx.shared.clone(),
        });
        let waker = Waker::from(main.clone());
        let mut task_cx = Context::from_waker(&waker);
        let mut fut = pin!(fut);
        loop {
            if main.woken.swap(false, Ordering::AcqRel) {
                crate::op::reset_budget();
                // The main future is polled on its own, before the ready tasks.
                self.cx.pass_len.set(1);
                if let Poll::Ready(v) = fut.as_mut().poll(&mut task_cx) {
                    return Ok(v);
                }
            }
            self.cx.run_ready(BUDGET);
            self.cx.turn(&main.woken);
            failure()?;
        }
    }
}

impl LoopContext {
    /// Fires due timers; returns the next deadline.
    fn fire_timers(&self) -> Option<Instant> {
        if self.timers.borrow().is_empty() {
            return None;
        }
        let mut wake = Vec::new();
        let mut calls = Vec::new();
        let next = self
            .timers
            .borrow_mut()
            .fire(Instant::now(), &mut wake, &mut calls);
        for cb in calls {
            self.queue_callback(cb);
        }
        for w in wake {
            w.wake();
        }
        next
    }

    /// Steps 3 and 4 of a tick: remote work, timers, then the driver. `main_woken` is read
    /// only after the timers fired: a timer due now may wake the main future, which must then
    /// not wait in the kernel for an event that will never come.
    fn turn(&self, main_woken: &AtomicBool) {
        if self.shared.unparker.take_notification() {
            self.drain_remote();
        }
        let next = self.fire_timers();
        let main_woken = main_woken.load(Ordering::Acquire);
        let timeout = if main_woken || !self.ready.borrow().is_empty() {
            Some(Duration::ZERO)
        } else {
            next.map(|d| d.saturating_duration_since(Instant::now()))
        };
        // A failure is kept by the driver, which runs on without its backend; `try_block_on`
        // reads it from there.
        let _ = self.driver().borrow_mut().park(timeout);
        if self.shared.unparker.take_notification() {
            self.drain_remote();
        }
        if next.is_some() {
            self.fire_timers();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(seed) = self.cx.shared.report.fault_seed()
            && std::thread::panicking()
        {
            eprintln!(
                "ringloop: this runtime injected faults; replay with RINGLOOP_FAULT_SEED={seed}"
            );
        }
        let _enter = context::enter(&self.cx);
        let watchers = std::mem::take(&mut *self.cx.watchers.borrow_mut());
        drop(watchers);
        let signal_handlers = std::mem::take(&mut *self.cx.signal_handlers.borrow_mut());
        drop(signal_handlers);
        self.cx.shutdown_tasks();
        let callbacks = self.cx.timers.borrow_mut().clear();
        drop(callbacks);
        // The loop's shared receive ring goes with the loop (receives still in flight keep
        // their share until the driver's shutdown has drained them).
        crate::buf::drop_loop_ring();
        self.cx.driver().shutdown();
        // Tasks posted from other threads until now are run (cancelled) by the pass below;
        // later posts are refused, and a task spawned from another thread then completes
        // there, cancelled.
        self.cx.shared.close_remote();
        self.cx.shutdown_tasks();
        self.cx.shared.pool.shutdown(self.blocking_shutdown_timeout);
    }
}

/// Runs `fut` on a new runtime with the default settings (`Backend::Auto`, or
/// `RINGLOOP_BACKEND`), like `asyncio.run`.
///
/// ```
/// let answer = ringloop::run(async {
///     ringloop::time::sleep(std::time::Duration::from_millis(1)).await;
///     42
/// });
/// assert_eq!(answer, 42);
/// ```
///
/// # Panics
///
/// When no backend can start; build a [`Runtime`] with [`Runtime::builder`] to handle that
/// error instead.
pub fn run<F: Future>(fut: F) -> F::Output {
    let rt = Runtime::builder()
        .build()
        .unwrap_or_else(|e| panic!("ringloop::run: no backend could start: {e}"));
    rt.block_on(fut)
}
