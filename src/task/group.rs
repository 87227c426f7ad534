//! [`TaskGroup`]: asyncio's `asyncio.TaskGroup`.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use slab::Slab;

use crate::JoinHandle;
use crate::sync::{Event, WaitList};

/// Children that run together and fail together, as asyncio's `asyncio.TaskGroup`.
///
/// [`spawn`](TaskGroup::spawn) starts a child: a future returning `Result<T, E>`.
/// [`join`](TaskGroup::join) waits for every child. The first child that fails — returns
/// `Err` or panics — cancels all the others (their futures are dropped, so their ring ops are
/// cancelled in the kernel, their buffers kept by the runtime until the kernel is done);
/// `join` then waits for them and returns the failures in a [`GroupError`] (asyncio's
/// `ExceptionGroup`; see below for why it holds one).
///
/// ```
/// use std::time::Duration;
/// use ringloop::task::{Failure, TaskGroup};
///
/// ringloop::run(async {
///     let group = TaskGroup::new();
///     let fast = group.spawn(async { Ok::<_, String>(1) });
///     let slow = group.spawn(async {
///         ringloop::time::sleep(Duration::from_secs(60)).await;
///         Ok(2)
///     });
///     group.spawn(async { Err::<i32, _>("the bad one".to_string()) });
///
///     let error = group.join().await.unwrap_err();
///     assert!(matches!(error.failures(), [Failure::Error(e)] if e == "the bad one"));
///     assert_eq!(fast.result(), Some(1)); // finished before the failure
///     assert_eq!(slow.result(), None); // cancelled by it, long before its minute
/// });
/// ```
///
/// Cancelling the task that awaits `join` (dropping the `join` future), or dropping the group
/// without joining it, cancels the children. A child can spawn siblings and stop the group
/// through a [`GroupHandle`]; [`GroupHandle::stop`] cancels every child without counting it a
/// failure, so `join` returns `Ok` — the built-in form of asyncio users' "raise a sentinel
/// exception and catch it" workaround (cpython#123956). Groups nest: a child can run a group
/// of its own, which its cancellation cancels in turn.
///
/// # Differences from asyncio
///
/// A cancelled child is dropped, not resumed with a `CancelledError` it could turn into
/// another error, and the first failure's cancellation reaches every sibling before it runs
/// again: so siblings cannot fail after the first failure, and [`GroupError`] holds one failure
/// where asyncio's `ExceptionGroup` may collect several (the list keeps asyncio's shape).
///
/// asyncio's `async with` body is itself part of the group; here the body is the code between
/// `TaskGroup::new` and `join`, and a failure in it is yours to handle (drop the group to
/// cancel the children). A child of a group that has failed or stopped is not started: its
/// [`Child::result`] is `None` (asyncio raises `RuntimeError` at `create_task`).
pub struct TaskGroup<E> {
    inner: Rc<Inner<E>>,
}

/// A clonable handle to a [`TaskGroup`], for its children: spawn siblings, stop the group.
pub struct GroupHandle<E> {
    inner: Rc<Inner<E>>,
}

/// One child of a [`TaskGroup`]: its result once it finished.
pub struct Child<T> {
    slot: Rc<Slot<T>>,
}

/// Why a child failed.
pub enum Failure<E> {
    /// It returned `Err`.
    Error(E),
    /// It panicked (the payload, as `std::panic::catch_unwind` gives it).
    Panic(Box<dyn Any + Send>),
}

/// Every failure of a [`TaskGroup`], in the order they happened (asyncio's `ExceptionGroup`).
pub struct GroupError<E> {
    failures: Vec<Failure<E>>,
}

struct Inner<E> {
    /// The children still running, by key.
    children: RefCell<Slab<JoinHandle<()>>>,
    failures: RefCell<Vec<Failure<E>>>,
    /// A child failed or `stop` was called: the rest are being cancelled, no new child starts.
    winding_down: Cell<bool>,
    /// `join` returned: no new child starts.
    closed: Cell<bool>,
    /// Woken when the last child finishes.
    idle: WaitList,
}

struct Slot<T> {
    out: RefCell<Option<T>>,
    done: Event,
}

impl<E: 'static> Default for TaskGroup<E> {
    fn default() -> Self {
        TaskGroup::new()
    }
}

impl<E: 'static> TaskGroup<E> {
    /// An empty group.
    pub fn new() -> Self {
        TaskGroup {
            inner: Rc::new(Inner {
                children: RefCell::default(),
                failures: RefCell::default(),
                winding_down: Cell::new(false),
                closed: Cell::new(false),
                idle: WaitList::default(),
            }),
        }
    }

    /// Starts `fut` as a child; see [`GroupHandle::spawn`].
    pub fn spawn<T, F>(&self, fut: F) -> Child<T>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        spawn_child(&self.inner, fut)
    }

    /// A handle for the children: spawn siblings, stop the group.
    pub fn handle(&self) -> GroupHandle<E> {
        GroupHandle {
            inner: self.inner.clone(),
        }
    }

    /// Stops the group: see [`GroupHandle::stop`].
    pub fn stop(&self) {
        self.inner.wind_down();
    }

    /// The children running now.
    pub fn len(&self) -> usize {
        self.inner.children.borrow().len()
    }

    /// Whether no child is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits for every child (also those spawned meanwhile); `Ok` if none failed, else every
    /// failure. Dropping this future before it completes cancels the children.
    pub async fn join(self) -> Result<(), GroupError<E>> {
        while !self.inner.children.borrow().is_empty() {
            self.inner.idle.wait().await;
        }
        self.inner.closed.set(true);
        let failures = std::mem::take(&mut *self.inner.failures.borrow_mut());
        if failures.is_empty() {
            Ok(())
        } else {
            Err(GroupError { failures })
        }
    }
}

impl<E> Drop for TaskGroup<E> {
    fn drop(&mut self) {
        // Not joined (or the join was cancelled): the children go too.
        self.inner.cancel_children();
        self.inner.closed.set(true);
    }
}

impl<E: 'static> GroupHandle<E> {
    /// Starts `fut` as a child of the group. If the group is failing, stopping or joined, the
    /// child is not started (its result is `None`).
    pub fn spawn<T, F>(&self, fut: F) -> Child<T>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        spawn_child(&self.inner, fut)
    }

    /// Stops the group without an error: every child is cancelled, and `join` returns `Ok`
    /// unless a child had already failed.
    pub fn stop(&self) {
        self.inner.wind_down();
    }

    /// Whether the group is failing or stopping (its children are being cancelled).
    pub fn is_stopping(&self) -> bool {
        self.inner.winding_down.get()
    }
}

impl<E> Clone for GroupHandle<E> {
    fn clone(&self) -> Self {
        GroupHandle {
            inner: self.inner.clone(),
        }
    }
}

impl<E> Inner<E> {
    fn wind_down(&self) {
        if !self.winding_down.replace(true) {
            self.cancel_children();
        }
    }

    fn cancel_children(&self) {
        for (_, child) in self.children.borrow().iter() {
            child.cancel();
        }
    }

    fn fail(&self, failure: Failure<E>) {
        self.failures.borrow_mut().push(failure);
        self.wind_down();
    }
}

/// Marks a child finished and removes it from its group when its task ends, however it ends
/// (completed, failed, or cancelled before or while it ran).
struct Leave<E, T> {
    inner: Rc<Inner<E>>,
    key: usize,
    slot: Rc<Slot<T>>,
}

impl<E, T> Drop for Leave<E, T> {
    fn drop(&mut self) {
        self.slot.done.set();
        // The child's own handle is dropped outside the borrow: that detaches the task.
        let handle = self.inner.children.borrow_mut().try_remove(self.key);
        drop(handle);
        if self.inner.children.borrow().is_empty() {
            self.inner.idle.notify_all();
        }
    }
}

fn spawn_child<E: 'static, T: 'static, F>(inner: &Rc<Inner<E>>, fut: F) -> Child<T>
where
    F: Future<Output = Result<T, E>> + 'static,
{
    let slot = Rc::new(Slot {
        out: RefCell::new(None),
        done: Event::new(),
    });
    let child = Child { slot: slot.clone() };
    if inner.winding_down.get() || inner.closed.get() {
        slot.done.set();
        return child;
    }
    let key = inner.children.borrow().vacant_key();
    let leave = Leave {
        inner: inner.clone(),
        key,
        slot,
    };
    let handle = crate::spawn(async move {
        let leave = leave;
        let out = CatchUnwind { fut }.await;
        match out {
            Ok(Ok(value)) => *leave.slot.out.borrow_mut() = Some(value),
            Ok(Err(error)) => leave.inner.fail(Failure::Error(error)),
            Err(panic) => leave.inner.fail(Failure::Panic(panic)),
        }
        drop(leave);
    });
    let at = inner.children.borrow_mut().insert(handle);
    debug_assert_eq!(at, key);
    child
}

impl<T> Child<T> {
    /// Whether the child has finished (or was never started).
    pub fn is_finished(&self) -> bool {
        self.slot.done.is_set()
    }

    /// The child's value: `Some` once it succeeded; `None` while it runs, and for a child
    /// that failed, was cancelled or never started.
    pub fn result(&self) -> Option<T> {
        self.slot.out.borrow_mut().take()
    }

    /// Waits until the child has finished, then gives [`result`](Child::result).
    pub async fn join(&self) -> Option<T> {
        if !self.is_finished() {
            self.slot.done.wait().await;
        }
        self.result()
    }
}

pin_project_lite::pin_project! {
    /// Polls `fut`, turning a panic into an error value.
    struct CatchUnwind<F> {
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.project().fut;
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

impl<E> GroupError<E> {
    /// Every failure, in the order they happened.
    pub fn failures(&self) -> &[Failure<E>] {
        &self.failures
    }

    /// Every failure, owned.
    pub fn into_failures(self) -> Vec<Failure<E>> {
        self.failures
    }
}

impl<E> Failure<E> {
    /// The panic's message, when it is a string.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            Failure::Panic(p) => p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str)),
            Failure::Error(_) => None,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(e) => f.debug_tuple("Error").field(e).finish(),
            Failure::Panic(_) => f
                .debug_tuple("Panic")
                .field(&self.panic_message().unwrap_or("non-string payload"))
                .finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(e) => write!(f, "{e}"),
            Failure::Panic(_) => write!(
                f,
                "panicked: {}",
                self.panic_message().unwrap_or("non-string payload")
            ),
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for GroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupError")
            .field("failures", &self.failures)
            .finish()
    }
}

impl<E: fmt::Display> fmt::Display for GroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} child task(s) failed", self.failures.len())?;
        for (i, failure) in self.failures.iter().enumerate() {
            write!(f, "{}{failure}", if i == 0 { ": " } else { "; " })?;
        }
        Ok(())
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for GroupError<E> {}

impl<E> fmt::Debug for TaskGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("children", &self.inner.children.borrow().len())
            .field("stopping", &self.inner.winding_down.get())
            .finish()
    }
}

impl<E> fmt::Debug for GroupHandle<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupHandle").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Child<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("finished", &self.is_finished())
            .finish()
    }
}
