//! The loop's state, reachable from the thread running it.
//!
//! A [`LoopContext`] is what asyncio calls the event loop: the ready queue (FIFO; a
//! `call_soon` callback is queued as a tiny task, so callbacks and tasks keep one order), the
//! timers, the registry of parked tasks, and the driver. Only the loop thread touches it;
//! other threads reach the loop through [`Shared`]: the remote queue and the driver's unparker.
//!
//! It is the runtime's half of the loop context (`driver::context`): the driver layer holds
//! the crate's one thread-local, which points to the loop entered on the thread — its bottom
//! half ([`LoopCore`]: the driver, the shared receive ring) and this half, which the driver
//! keeps as `dyn Any` (it may not name a type of a layer above it) and [`with`] asks for as a
//! `LoopContext`.
//! [`enter`] enters a loop for `block_on` and for the runtime's drop.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use super::task::{self, JoinHandle, TaskMeta};
use super::timer::Timers;
use crate::blocking::Pool;
use crate::driver::context::{self as driver_context, LoopCore};
use crate::driver::{BackendReport, DriverRef, Unparker};

/// A task ready to run.
pub type Runnable = async_task::Runnable<TaskMeta>;

/// A callback scheduled with `call_soon` (or due from `call_later`).
pub struct Callback {
    pub cancelled: Arc<AtomicBool>,
    pub f: Box<dyn FnOnce()>,
}

/// Hashes task ids (sequential integers) with one multiplication.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Parked tasks by id.
pub type TaskRegistry = HashMap<u64, Waker, BuildHasherDefault<IdHasher>>;

/// Work handed to the loop by other threads.
pub enum Remote {
    Task(Runnable),
    Callback(Arc<AtomicBool>, Box<dyn FnOnce() + Send>),
}

/// The part of a loop other threads may touch.
pub struct Shared {
    pub unparker: Arc<Unparker>,
    pub remote: Mutex<RemoteQueue>,
    pub pool: Pool,
    /// The id of the next task spawned from another thread (`Handle::spawn`): odd numbers,
    /// so they never meet the loop's own, even ones (`LoopContext::next_task_id`).
    pub next_remote_id: AtomicU64,
    /// Which backend runs and why, for `Runtime::backend_report` and `Handle::backend_report`.
    pub report: BackendReport,
    /// The thread that built the runtime, the only one that runs it (a `Runtime` is not
    /// `Send`).
    pub thread: std::thread::ThreadId,
}

/// Work posted to the loop by other threads, until the loop closes.
#[derive(Default)]
pub struct RemoteQueue {
    items: VecDeque<Remote>,
    /// The runtime was dropped: nothing will run what is posted now.
    closed: bool,
}

impl Shared {
    pub fn new(unparker: Arc<Unparker>, pool: Pool, report: BackendReport) -> Shared {
        Shared {
            unparker,
            remote: Mutex::default(),
            pool,
            next_remote_id: AtomicU64::new(1),
            report,
            thread: std::thread::current().id(),
        }
    }

    /// Posts `item` to the loop and wakes it; gives the item back once the loop has closed.
    pub fn push_remote(&self, item: Remote) -> Result<(), Remote> {
        {
            let mut remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
            if remote.closed {
                return Err(item);
            }
            remote.items.push_back(item);
        }
        self.unparker.unpark();
        Ok(())
    }

    /// Takes what was posted.
    fn take_remote(&self) -> VecDeque<Remote> {
        let mut remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut remote.items)
    }

    /// Closes the remote queue (the runtime's last step): later posts are given back.
    pub fn close_remote(&self) {
        self.remote.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
    }
}

/// The loop thread's view of a runtime.
pub struct LoopContext {
    /// The bottom half: the driver, and what the layers below the runtime keep per loop.
    pub core: Rc<LoopCore>,
    pub ready: RefCell<VecDeque<Runnable>>,
    /// How many ready entries the current (or last) pass of `run_ready` runs; 1 while
    /// `block_on` polls its main future, which it polls on its own.
    pub pass_len: Cell<usize>,
    pub timers: RefCell<Timers>,
    /// Wakers of the tasks that have parked at least once and are not finished, so
    /// cancellation and shutdown can reach a task parked anywhere. A task that never parks is
    /// always in the ready queue or running, and is never registered.
    pub tasks: RefCell<TaskRegistry>,
    /// Id of the next spawned task: even numbers from 2 (0 is "not a registrable task"; odd
    /// ones are for tasks spawned from other threads, `Shared::next_remote_id`).
    pub next_task_id: Cell<u64>,
    /// Tasks spawned on the loop thread whose future is not yet done or dropped
    /// (`Stats::tasks`).
    pub live_tasks: Cell<u64>,
    pub shared: Arc<Shared>,
    pub shutting_down: Cell<bool>,
    /// `add_reader`/`add_writer` watches: (fd, is_reader) → the watching task.
    pub watchers: RefCell<HashMap<(i32, bool), JoinHandle<()>>>,
    /// `add_signal_handler` registrations by signal number (owned by `crate::signal`; dropping
    /// one stops it).
    pub signal_handlers: RefCell<HashMap<i32, Box<dyn std::any::Any>>>,
}

/// Runs `f` with the loop entered on this thread, if any.
#[inline]
pub fn with<R>(f: impl FnOnce(&LoopContext) -> R) -> Option<R> {
    driver_context::with_upper(f)
}

/// The loop entered on this thread, if any.
#[inline]
pub fn current() -> Option<Rc<LoopContext>> {
    driver_context::upper()
}

/// The loop entered on this thread; panics with `what` when there is none.
pub fn expect(what: &str) -> Rc<LoopContext> {
    current().unwrap_or_else(|| outside_a_loop(what))
}

/// Runs `f` with the loop entered on this thread; panics with `what` when there is none.
#[inline]
pub fn with_expect<R>(what: &str, f: impl FnOnce(&LoopContext) -> R) -> R {
    with(f).unwrap_or_else(|| outside_a_loop(what))
}

#[cold]
fn outside_a_loop(what: &str) -> ! {
    panic!("{what} must be called from a ringloop loop thread (inside block_on / ringloop::run)")
}

/// Enters `cx` on this thread for the guard's life; the guard's drop restores the loop
/// entered before (and the poll state of the task that was running, if any): see
/// `driver::context::Enter`.
pub fn enter(cx: &Rc<LoopContext>) -> driver_context::Enter {
    driver_context::Enter::new(&cx.core, cx.clone())
}

impl LoopContext {
    /// The loop's driver.
    #[inline]
    pub fn driver(&self) -> &DriverRef {
        self.core.driver()
    }

    /// Whether this context belongs to the loop `shared` describes.
    #[inline]
    pub fn is(&self, shared: &Arc<Shared>) -> bool {
        Arc::ptr_eq(&self.shared, shared)
    }

    /// Moves work posted by other threads into the ready queue.
    pub fn drain_remote(&self) {
        for item in self.shared.take_remote() {
            match item {
                Remote::Task(r) => self.ready.borrow_mut().push_back(r),
                Remote::Callback(cancelled, f) => self.queue_callback(Callback { cancelled, f }),
            }
        }
    }

    /// Runs up to `budget` ready entries (at most those queued when it starts, so a task that
    /// keeps waking itself yields to I/O every tick).
    pub fn run_ready(&self, budget: usize) {
        let n = self.ready.borrow().len().min(budget);
        self.pass_len.set(n);
        for _ in 0..n {
            let Some(runnable) = self.ready.borrow_mut().pop_front() else {
                break;
            };
            crate::op::reset_budget();
            let meta = runnable.metadata();
            task::set_current_task(meta.id());
            if self.shutting_down.get() || meta.is_cancelled() {
                // The task drops its future (its ops are cancelled in the kernel) and
                // completes with a cancellation error; a callback is skipped.
                task::set_cancelling(true);
                runnable.run();
                task::set_cancelling(false);
            } else {
                runnable.run();
            }
        }
    }

    /// Whether the running task runs alone: its pass of `run_ready` runs no other entry and
    /// nothing else is ready, so the loop's next step is to wait in the kernel.
    pub fn runs_alone(&self) -> bool {
        self.pass_len.get() <= 1 && self.ready.borrow().is_empty()
    }

    /// Wakes the parked task `id`, if it is parked (a cancelled task then gets dropped).
    pub fn wake_task(&self, id: u64) {
        let waker = self.tasks.borrow().get(&id).cloned();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Cancels every task (each drops its future and completes) and empties the ready queue;
    /// bounded, since dropping a future may spawn or wake others.
    pub fn shutdown_tasks(&self) {
        self.shutting_down.set(true);
        for _ in 0..16 {
            let wakers: Vec<Waker> = self.tasks.borrow_mut().drain().map(|(_, w)| w).collect();
            for w in wakers {
                w.wake();
            }
            self.drain_remote();
            if self.ready.borrow().is_empty() && self.tasks.borrow().is_empty() {
                break;
            }
            // With `shutting_down` set, every task run is a cancelling one.
            self.run_ready(usize::MAX);
        }
    }
}
