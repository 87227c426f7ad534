//! The loop's state, reachable from the thread running it.
//!
//! A [`LoopContext`] is what asyncio calls the event loop: the ready queue (tasks and
//! `call_soon` callbacks, FIFO), the timers, the registry of live tasks, and the driver.
//! Only the loop thread touches it; other threads reach the loop through [`Shared`]: the
//! remote queue and the driver's unparker.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use slab::Slab;

use super::task::{CANCELLING, JoinHandle, TaskMeta};
use super::timer::Timers;
use crate::blocking::Pool;
use crate::driver::{self, DriverRef, Unparker};

/// A task ready to run.
pub type Runnable = async_task::Runnable<TaskMeta>;

/// A callback scheduled with `call_soon` (or due from `call_later`).
pub struct Callback {
    pub cancelled: Arc<AtomicBool>,
    pub f: Box<dyn FnOnce()>,
}

/// An entry of the ready queue.
pub enum Ready {
    Task(Runnable),
    Callback(Callback),
}

/// Work handed to the loop by other threads.
pub enum Remote {
    Task(Runnable),
    Callback(Arc<AtomicBool>, Box<dyn FnOnce() + Send>),
}

/// The part of a loop other threads may touch.
pub struct Shared {
    pub unparker: Arc<Unparker>,
    pub remote: Mutex<VecDeque<Remote>>,
    pub pool: Pool,
}

impl Shared {
    pub fn push_remote(&self, item: Remote) {
        self.remote
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(item);
        self.unparker.unpark();
    }
}

/// The loop thread's view of a runtime.
pub struct LoopContext {
    pub driver: DriverRef,
    pub ready: RefCell<VecDeque<Ready>>,
    pub timers: RefCell<Timers>,
    /// Wakers of every live local task, so shutdown can reach tasks parked anywhere.
    pub tasks: RefCell<Slab<Option<Waker>>>,
    pub shared: Arc<Shared>,
    pub shutting_down: Cell<bool>,
    /// `add_reader`/`add_writer` watches: (fd, is_reader) → the watching task.
    pub watchers: RefCell<HashMap<(i32, bool), JoinHandle<()>>>,
}

thread_local! {
    static CONTEXT: RefCell<Option<Rc<LoopContext>>> = const { RefCell::new(None) };
}

/// Runs `f` with the loop running on this thread, if any.
#[inline]
pub fn with<R>(f: impl FnOnce(&Rc<LoopContext>) -> R) -> Option<R> {
    CONTEXT
        .try_with(|c| c.borrow().as_ref().map(f))
        .ok()
        .flatten()
}

/// The loop running on this thread; panics with `what` when there is none.
pub fn expect(what: &str) -> Rc<LoopContext> {
    with(Rc::clone).unwrap_or_else(|| {
        panic!(
            "{what} must be called from a ringloop loop thread (inside block_on / ringloop::run)"
        )
    })
}

/// Makes a loop current on this thread for its lifetime; restores the previous one after.
pub struct Enter {
    prev: Option<Rc<LoopContext>>,
    prev_driver: Option<DriverRef>,
}

impl Enter {
    pub fn new(cx: &Rc<LoopContext>) -> Enter {
        let prev = CONTEXT.with(|c| c.borrow_mut().replace(cx.clone()));
        let prev_driver = driver::set_current(Some(cx.driver.clone()));
        Enter { prev, prev_driver }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let prev = self.prev.take();
        let _ = CONTEXT.try_with(|c| *c.borrow_mut() = prev);
        driver::set_current(self.prev_driver.take());
    }
}

impl LoopContext {
    /// Whether this context belongs to the loop `shared` describes.
    #[inline]
    pub fn is(&self, shared: &Arc<Shared>) -> bool {
        Arc::ptr_eq(&self.shared, shared)
    }

    /// Moves work posted by other threads into the ready queue.
    pub fn drain_remote(&self) {
        let items: VecDeque<Remote> =
            std::mem::take(&mut *self.shared.remote.lock().unwrap_or_else(|e| e.into_inner()));
        let mut ready = self.ready.borrow_mut();
        for item in items {
            ready.push_back(match item {
                Remote::Task(r) => Ready::Task(r),
                Remote::Callback(cancelled, f) => Ready::Callback(Callback { cancelled, f }),
            });
        }
    }

    /// Runs up to `budget` ready entries (at most those queued when it starts, so a task that
    /// keeps waking itself yields to I/O every tick).
    pub fn run_ready(&self, budget: usize) {
        let n = self.ready.borrow().len().min(budget);
        for _ in 0..n {
            let Some(item) = self.ready.borrow_mut().pop_front() else {
                break;
            };
            match item {
                Ready::Task(runnable) => {
                    crate::op::reset_budget();
                    if self.shutting_down.get()
                        || runnable.metadata().cancelled.load(Ordering::Acquire)
                    {
                        // The task drops its future (its ops are cancelled in the kernel) and
                        // completes with a cancellation error.
                        CANCELLING.set(true);
                        runnable.run();
                        CANCELLING.set(false);
                    } else {
                        runnable.run();
                    }
                }
                Ready::Callback(cb) => {
                    // A loop that is shutting down drops its callbacks unrun.
                    if !cb.cancelled.load(Ordering::Acquire) && !self.shutting_down.get() {
                        (cb.f)();
                    }
                }
            }
        }
    }

    /// Wakes the local task registered under `key` (a cancelled task then gets dropped).
    pub fn wake_task(&self, key: usize) {
        let waker = self.tasks.borrow().get(key).cloned().flatten();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Cancels every task (each drops its future and completes) and empties the ready queue;
    /// bounded, since dropping a future may spawn or wake others.
    pub fn shutdown_tasks(&self) {
        self.shutting_down.set(true);
        for _ in 0..16 {
            let wakers: Vec<Waker> = self.tasks.borrow_mut().drain().flatten().collect();
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
