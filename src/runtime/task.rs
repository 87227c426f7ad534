//! Tasks: spawned futures, their handles, and cooperative yielding.
//!
//! Task memory, reference counting and wakers come from `async-task`. Each task carries a
//! [`TaskMeta`] in its allocation: the loop it belongs to, a unique id, and its key in the
//! loop's registry of live tasks. [`JoinHandle::cancel`] puts the id in the loop's set of
//! cancel requests and wakes the task; the loop then drops it instead of polling it, and
//! dropping its future drops its ops, which queues their cancellation in the kernel.

use std::any::Any;
use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use super::context::{self, LoopContext, Ready, Remote, Runnable, Shared};

/// Per-task data kept in the task's allocation.
pub struct TaskMeta {
    /// Unique for the loop's lifetime (registry keys are reused, ids are not).
    pub(crate) id: u64,
    shared: Arc<Shared>,
}

/// How a handle reaches its task to cancel it.
enum CancelTarget {
    Local {
        id: u64,
        key: usize,
        shared: Arc<Shared>,
    },
    /// Pool tasks check the flag before they start.
    Blocking(Arc<AtomicBool>),
}

type Panic = Box<dyn Any + Send + 'static>;

/// Why a task produced no value.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    Panicked(Panic),
}

impl JoinError {
    /// The task was cancelled (by [`JoinHandle::cancel`] or runtime shutdown).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panicked(_))
    }

    /// The panic payload; panics if the task was cancelled instead.
    pub fn into_panic(self) -> Panic {
        match self.repr {
            Repr::Panicked(p) => p,
            Repr::Cancelled => panic!("JoinError::into_panic on a cancelled task"),
        }
    }

    fn message(&self) -> String {
        match &self.repr {
            Repr::Cancelled => "task was cancelled".into(),
            Repr::Panicked(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string payload".into());
                format!("task panicked: {msg}")
            }
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinError({})", self.message())
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for JoinError {}

/// An owned permission to await a task's output; dropping it detaches the task.
///
/// ```
/// # ringloop::run(async {
/// let h = ringloop::spawn(async { 40 + 2 });
/// assert_eq!(h.await.unwrap(), 42);
/// # });
/// ```
pub struct JoinHandle<T> {
    task: Option<async_task::FallibleTask<Result<T, Panic>, TaskMeta>>,
    cancel: CancelTarget,
}

impl<T> JoinHandle<T> {
    /// Requests cancellation, like asyncio's `Task.cancel()`: the task's future is dropped
    /// before it is polled again, which cancels its in-flight ops in the kernel. Awaiting the
    /// handle then gives a [`JoinError`] whose `is_cancelled()` is true (unless the task had
    /// already finished). Callable from any thread.
    ///
    /// ```
    /// # ringloop::run(async {
    /// let h = ringloop::spawn(std::future::pending::<()>());
    /// h.cancel();
    /// assert!(h.await.unwrap_err().is_cancelled());
    /// # });
    /// ```
    pub fn cancel(&self) {
        if self.is_finished() {
            return;
        }
        match &self.cancel {
            CancelTarget::Blocking(flag) => flag.store(true, Ordering::Release),
            &CancelTarget::Local {
                id,
                key,
                ref shared,
            } => {
                let request = move |cx: &LoopContext| {
                    cx.cancels.borrow_mut().insert(id);
                    cx.wake_task(key);
                };
                let local = context::with(|cx| {
                    if cx.is(shared) {
                        request(cx);
                        true
                    } else {
                        false
                    }
                });
                if local != Some(true) {
                    shared.push_remote(Remote::Callback(
                        Arc::new(AtomicBool::new(false)),
                        Box::new(move || {
                            context::with(|cx| request(cx));
                        }),
                    ));
                }
            }
        }
    }

    /// Whether the task has finished (completed, panicked or been cancelled and dropped).
    ///
    /// ```
    /// # ringloop::run(async {
    /// let h = ringloop::spawn(async {});
    /// ringloop::yield_now().await;
    /// assert!(h.is_finished());
    /// # });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let task = self
            .task
            .as_mut()
            .expect("JoinHandle polled after completion");
        let out = match Pin::new(task).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(out) => out,
        };
        self.task = None;
        Poll::Ready(match out {
            Some(Ok(v)) => Ok(v),
            Some(Err(p)) => Err(JoinError {
                repr: Repr::Panicked(p),
            }),
            None => Err(JoinError {
                repr: Repr::Cancelled,
            }),
        })
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Removes a task from the registry when its future is dropped (finished or cancelled).
struct Registered {
    key: usize,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        context::with(|cx| {
            cx.tasks.borrow_mut().try_remove(self.key);
            let mut cancels = cx.cancels.borrow_mut();
            if !cancels.is_empty() {
                cancels.remove(&self.id);
            }
        });
    }
}

/// Polls `fut`, turning a panic into an error instead of unwinding through the loop.
async fn catch_panics<F: Future>(fut: F) -> Result<F::Output, Panic> {
    let mut fut = pin!(fut);
    poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(p) => Poll::Ready(Err(p)),
        },
    )
    .await
}

fn schedule(runnable: Runnable) {
    let mut slot = Some(runnable);
    context::with(|cx| {
        if let Some(r) = slot.take_if(|r| cx.is(&r.metadata().shared)) {
            cx.ready.borrow_mut().push_back(Ready::Task(r));
        }
    });
    // Woken from another thread (or after its loop is gone): hand it over to the loop.
    if let Some(r) = slot {
        let shared = r.metadata().shared.clone();
        shared.push_remote(Remote::Task(r));
    }
}

impl LoopContext {
    pub fn spawn<F>(self: &Rc<Self>, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let key = self.tasks.borrow_mut().insert(None);
        let id = self.next_task_id.get();
        self.next_task_id.set(id + 1);
        let registered = Registered { key, id };
        let fut = async move {
            let _registered = registered;
            catch_panics(fut).await
        };
        let meta = TaskMeta {
            id,
            shared: self.shared.clone(),
        };
        let (runnable, task) = async_task::Builder::new()
            .metadata(meta)
            .spawn_local(move |_| fut, schedule);
        if let Some(slot) = self.tasks.borrow_mut().get_mut(key) {
            *slot = Some(runnable.waker());
        }
        runnable.schedule();
        JoinHandle {
            task: Some(task.fallible()),
            cancel: CancelTarget::Local {
                id,
                key,
                shared: self.shared.clone(),
            },
        }
    }

    pub fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.shared.pool.clone();
        let meta = TaskMeta {
            id: u64::MAX,
            shared: self.shared.clone(),
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        let flag = cancelled.clone();
        let (runnable, task) = async_task::Builder::new().metadata(meta).spawn(
            move |_| async move { catch_unwind(AssertUnwindSafe(f)) },
            move |runnable: async_task::Runnable<TaskMeta>| {
                let flag = flag.clone();
                pool.execute(Box::new(move || {
                    if flag.load(Ordering::Acquire) {
                        drop(runnable);
                    } else {
                        runnable.run();
                    }
                }));
            },
        );
        runnable.schedule();
        JoinHandle {
            task: Some(task.fallible()),
            cancel: CancelTarget::Blocking(cancelled),
        }
    }
}

/// Spawns a task on the current loop. The future need not be `Send`: it stays on this thread.
///
/// A panic in the task is caught and reported through its [`JoinHandle`]; the loop goes on.
///
/// ```
/// # ringloop::run(async {
/// let shared = std::rc::Rc::new(std::cell::Cell::new(0));
/// let s = shared.clone();
/// ringloop::spawn(async move { s.set(7) }).await.unwrap();
/// assert_eq!(shared.get(), 7);
/// # });
/// ```
///
/// # Panics
///
/// When called outside a ringloop loop thread.
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    context::expect("ringloop::spawn").spawn(fut)
}

/// Runs blocking `f` on the runtime's blocking pool (asyncio's `run_in_executor`); the result
/// wakes the loop.
///
/// ```
/// # ringloop::run(async {
/// let n = ringloop::spawn_blocking(|| (1..=10).sum::<u32>()).await.unwrap();
/// assert_eq!(n, 55);
/// # });
/// ```
///
/// # Panics
///
/// When called outside a ringloop loop thread.
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    context::expect("ringloop::spawn_blocking").spawn_blocking(f)
}

/// Yields to the loop once: other ready tasks, callbacks and I/O get their turn first.
///
/// ```
/// # ringloop::run(async {
/// ringloop::yield_now().await;
/// # });
/// ```
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}
