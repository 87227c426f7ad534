//! asyncio's `Future`: a value set by callback code and awaited by async code.
//!
//! The state machine is [`State`]: `Pending` until `set_result` or `cancel`, then final.
//! Done callbacks are scheduled on the loop with `call_soon` semantics, never run inline.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::task::{Context, Poll, Waker};

use super::context::{self, Callback};

/// The future was cancelled (asyncio's `CancelledError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the future was cancelled")
    }
}
impl std::error::Error for Cancelled {}

/// The future already has a result or was cancelled (asyncio's `InvalidStateError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidStateError;

impl fmt::Display for InvalidStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the future is already done")
    }
}
impl std::error::Error for InvalidStateError {}

enum State<T> {
    Pending,
    Done(T),
    Cancelled,
}

type DoneCallback<T> = Box<dyn FnOnce(&LoopFuture<T>)>;

struct Inner<T> {
    state: State<T>,
    wakers: Vec<Waker>,
    callbacks: Vec<DoneCallback<T>>,
}

/// A settable, cancellable, awaitable value living on one loop; clones share the value.
///
/// ```
/// # ringloop::run(async {
/// let fut = ringloop::Handle::current().create_future::<String>();
/// fut.add_done_callback(|f| println!("done: {:?}", f.result()));
/// let setter = fut.clone();
/// ringloop::spawn(async move { setter.set_result("hi".into()).unwrap() });
/// assert_eq!(fut.await.unwrap(), "hi");
/// # });
/// ```
pub struct LoopFuture<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

impl<T> Clone for LoopFuture<T> {
    fn clone(&self) -> Self {
        LoopFuture {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for LoopFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.inner.borrow().state {
            State::Pending => "pending",
            State::Done(_) => "done",
            State::Cancelled => "cancelled",
        };
        write!(f, "LoopFuture({state})")
    }
}

impl<T: 'static> LoopFuture<T> {
    pub(crate) fn new() -> Self {
        LoopFuture {
            inner: Rc::new(RefCell::new(Inner {
                state: State::Pending,
                wakers: Vec::new(),
                callbacks: Vec::new(),
            })),
        }
    }

    fn finish(&self, state: State<T>) -> bool {
        let (wakers, callbacks) = {
            let mut inner = self.inner.borrow_mut();
            if !matches!(inner.state, State::Pending) {
                return false;
            }
            inner.state = state;
            (
                std::mem::take(&mut inner.wakers),
                std::mem::take(&mut inner.callbacks),
            )
        };
        for cb in callbacks {
            self.schedule_callback(cb);
        }
        for w in wakers {
            w.wake();
        }
        true
    }

    fn schedule_callback(&self, cb: DoneCallback<T>) {
        let this = self.clone();
        let mut run = Some(move || cb(&this));
        context::with(|cx| {
            if let Some(run) = run.take() {
                cx.queue_callback(Callback {
                    cancelled: Arc::new(AtomicBool::new(false)),
                    f: Box::new(run),
                });
            }
        });
        // No loop on this thread any more (set after `block_on` returned): run it now rather
        // than lose it.
        if let Some(run) = run {
            run();
        }
    }

    /// Sets the result and wakes every awaiter.
    ///
    /// # Errors
    ///
    /// [`InvalidStateError`] if the future already has a result or was cancelled.
    pub fn set_result(&self, value: T) -> Result<(), InvalidStateError> {
        if self.finish(State::Done(value)) {
            Ok(())
        } else {
            Err(InvalidStateError)
        }
    }

    /// Cancels the future; awaiters get [`Cancelled`]. Returns false if it was already done.
    pub fn cancel(&self) -> bool {
        self.finish(State::Cancelled)
    }

    /// Whether it has a result or was cancelled.
    pub fn done(&self) -> bool {
        !matches!(self.inner.borrow().state, State::Pending)
    }

    /// Whether it was cancelled.
    pub fn cancelled(&self) -> bool {
        matches!(self.inner.borrow().state, State::Cancelled)
    }

    /// Calls `f` (on the loop, as a ready callback) once the future is done; at once if it is.
    pub fn add_done_callback(&self, f: impl FnOnce(&LoopFuture<T>) + 'static) {
        if self.done() {
            self.schedule_callback(Box::new(f));
        } else {
            self.inner.borrow_mut().callbacks.push(Box::new(f));
        }
    }
}

impl<T: Clone + 'static> LoopFuture<T> {
    /// The outcome, if done.
    pub fn result(&self) -> Option<Result<T, Cancelled>> {
        match &self.inner.borrow().state {
            State::Pending => None,
            State::Done(v) => Some(Ok(v.clone())),
            State::Cancelled => Some(Err(Cancelled)),
        }
    }
}

impl<T: Clone + 'static> Future for LoopFuture<T> {
    type Output = Result<T, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(out) = self.result() {
            return Poll::Ready(out);
        }
        let mut inner = self.inner.borrow_mut();
        if !inner.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            inner.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
