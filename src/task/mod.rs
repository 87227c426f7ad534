//! asyncio's task layer: structured concurrency ([`TaskGroup`]), [`gather`], [`wait`],
//! [`as_completed`], [`shield`], [`wait_for`] and the movable deadline of asyncio's
//! `timeout()` ([`timeout_scope`]), next to the basics re-exported from the crate root
//! ([`spawn`], [`JoinHandle`], [`yield_now`]).
//!
//! | asyncio | ringloop |
//! | --- | --- |
//! | `asyncio.TaskGroup`, `tg.create_task` | [`TaskGroup`], [`TaskGroup::spawn`] ([`GroupHandle`] for children) |
//! | `ExceptionGroup` of a group | [`GroupError`] of [`Failure`]s |
//! | `asyncio.gather(*aws)` | [`gather`] |
//! | `gather(..., return_exceptions=True)` | [`gather_return_exceptions`] |
//! | `asyncio.wait(aws, timeout, return_when)` | [`wait`] with [`ReturnWhen`] |
//! | `asyncio.as_completed(aws)` | [`as_completed`] (a `Stream`) |
//! | `asyncio.shield(aw)` | [`shield`] |
//! | `asyncio.wait_for(aw, timeout)` | [`wait_for`] (= [`time::timeout`](crate::time::timeout)) |
//! | `asyncio.timeout(delay)`, `timeout_at(when)` | [`timeout_scope`], [`timeout_scope_at`] |
//! | `Timeout.reschedule`, `when`, `expired` | [`TimeoutScope::reschedule`], [`when`](TimeoutScope::when), [`expired`](TimeoutScope::expired) |
//!
//! Cancellation is ringloop's everywhere: a task is cancelled by dropping its future, which
//! cancels its ring ops in the kernel; there is no `CancelledError` raised inside it.

mod combinators;
mod group;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

pub use combinators::{
    AsCompleted, ReturnWhen, Waited, as_completed, gather, gather_return_exceptions, wait,
};
pub use group::{Child, Failure, GroupError, GroupHandle, TaskGroup};

use crate::time::{Elapsed, Timeout};
pub use crate::{JoinError, JoinHandle, spawn, spawn_blocking, yield_now};

/// Runs `fut` as its own task, so that it goes on when the caller stops waiting for it
/// (asyncio's `shield`): dropping the returned handle — the awaiting task being cancelled —
/// detaches the task instead of cancelling it.
///
/// ```
/// use std::rc::Rc;
/// use std::time::Duration;
/// use ringloop::sync::Event;
///
/// ringloop::run(async {
///     let saved = Rc::new(Event::new());
///     let save = ringloop::task::shield({
///         let saved = saved.clone();
///         async move {
///             ringloop::time::sleep(Duration::from_millis(5)).await;
///             saved.set();
///         }
///     });
///     // The caller gives up after 1 ms; the shielded work does not.
///     assert!(ringloop::time::timeout(Duration::from_millis(1), save).await.is_err());
///     saved.wait().await;
/// });
/// ```
pub fn shield<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn(fut)
}

/// asyncio's `wait_for`: [`time::timeout`](crate::time::timeout) under its asyncio name.
pub fn wait_for<F: Future>(timeout: Duration, fut: F) -> Timeout<F> {
    crate::time::timeout(timeout, fut)
}

/// A deadline for a block of work that can be moved while the work runs, as asyncio's
/// `async with asyncio.timeout(delay) as cm:` with `cm.reschedule(...)`.
///
/// Made by [`timeout_scope`] or [`timeout_scope_at`]; [`run`](TimeoutScope::run) runs a
/// future under it. Clones share the deadline, so the work itself can move it.
///
/// ```
/// use std::time::{Duration, Instant};
/// use ringloop::task::timeout_scope;
///
/// ringloop::run(async {
///     let scope = timeout_scope(Some(Duration::from_millis(5)));
///     let extend = scope.clone();
///     let r = scope
///         .run(async move {
///             // Not enough time: ask for more, from inside.
///             extend.reschedule(Some(Instant::now() + Duration::from_millis(50)));
///             ringloop::time::sleep(Duration::from_millis(10)).await;
///             "done"
///         })
///         .await;
///     assert_eq!(r, Ok("done"));
///     assert!(!scope.expired());
/// });
/// ```
#[derive(Clone)]
pub struct TimeoutScope {
    state: Rc<ScopeState>,
}

struct ScopeState {
    when: Cell<Option<Instant>>,
    expired: Cell<bool>,
    /// The task running the scope, woken when the deadline moves.
    waker: RefCell<Option<Waker>>,
}

/// A scope whose deadline is `delay` from now; `None`: no deadline until
/// [`reschedule`](TimeoutScope::reschedule)d (asyncio's `timeout(None)`).
pub fn timeout_scope(delay: Option<Duration>) -> TimeoutScope {
    timeout_scope_at(delay.map(|d| Instant::now() + d))
}

/// A scope with the deadline `when` (asyncio's `timeout_at`).
pub fn timeout_scope_at(when: Option<Instant>) -> TimeoutScope {
    TimeoutScope {
        state: Rc::new(ScopeState {
            when: Cell::new(when),
            expired: Cell::new(false),
            waker: RefCell::new(None),
        }),
    }
}

impl TimeoutScope {
    /// The deadline, if any.
    pub fn when(&self) -> Option<Instant> {
        self.state.when.get()
    }

    /// Moves the deadline (`None`: no deadline); a running scope takes the new one at once.
    pub fn reschedule(&self, when: Option<Instant>) {
        self.state.when.set(when);
        if let Some(waker) = self.state.waker.borrow().as_ref() {
            waker.wake_by_ref();
        }
    }

    /// Whether the deadline passed while the scope ran (and cut the work short).
    pub fn expired(&self) -> bool {
        self.state.expired.get()
    }

    /// Runs `fut` until it finishes or the deadline passes; then it is dropped (its ops
    /// cancelled) and the result is [`Elapsed`].
    pub async fn run<F: Future>(&self, fut: F) -> Result<F::Output, Elapsed> {
        let mut fut = pin!(fut);
        let mut sleep: Option<crate::time::Sleep> = None;
        let result = poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            match &mut *self.state.waker.borrow_mut() {
                Some(w) if w.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            let Some(when) = self.state.when.get() else {
                sleep = None;
                return Poll::Pending;
            };
            let sleep = match &mut sleep {
                Some(s) if s.deadline() == when => s,
                _ => sleep.insert(crate::time::sleep_until(when)),
            };
            if std::pin::Pin::new(sleep).poll(cx).is_ready() {
                self.state.expired.set(true);
                return Poll::Ready(Err(Elapsed::new()));
            }
            Poll::Pending
        })
        .await;
        self.state.waker.borrow_mut().take();
        result
    }
}

impl fmt::Debug for TimeoutScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutScope")
            .field("when", &self.when())
            .field("expired", &self.expired())
            .finish()
    }
}
