//! Tasks: spawned futures, their handles, and cooperative yielding.
//!
//! Task memory, reference counting and wakers come from `async-task`. Each task carries a
//! [`TaskMeta`] in its allocation: the loop it belongs to, its id, and a cancellation flag.
//! A task that parks (returns `Pending`) registers its waker under its id in the loop's
//! registry until it finishes; one that completes on its first poll never touches it.
//!
//! # Cancellation
//!
//! [`JoinHandle::cancel`] sets the flag and wakes the task through the registry. When the loop
//! next runs a task whose flag is set, it marks the run as a cancelling one ([`cancelling`]);
//! the task's [`TaskFuture`] then drops the user's future — dropping its ops, which queues
//! their cancellation in the kernel — and completes with [`JoinError`]. A task therefore
//! always produces an output: the loop never drops a runnable without running it (runtime
//! shutdown cancels every task the same way), which is what lets a [`JoinHandle`] be a
//! single pointer.

use std::any::Any;
use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use super::context::{self, Callback, LoopContext, Remote, Runnable, Shared};
use crate::driver::context::with_thread;

/// Per-task data kept in the task's allocation.
pub struct TaskMeta {
    /// `id << 1 | cancelled`. The id is unique for the loop's life; 0 marks tasks that are
    /// never registered (blocking-pool jobs, callbacks). The flag is set by
    /// [`JoinHandle::cancel`] and read by the loop before each run.
    state: AtomicU64,
    shared: Arc<Shared>,
}

impl TaskMeta {
    fn new(id: u64, shared: Arc<Shared>) -> Self {
        TaskMeta {
            state: AtomicU64::new(id << 1),
            shared,
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.state.load(Ordering::Relaxed) >> 1
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.state.load(Ordering::Acquire) & 1 != 0
    }

    /// Sets the flag; true if it was already set.
    fn set_cancelled(&self) -> bool {
        self.state.fetch_or(1, Ordering::AcqRel) & 1 != 0
    }
}

/// Whether the task being run must drop its future: its cancellation was requested, or the
/// runtime is shutting down. Per thread (the loop context's `Thread`): a blocking-pool thread
/// sets it for a job too.
#[inline]
pub(crate) fn cancelling() -> bool {
    with_thread(|t| t.cancelling.get())
}

#[inline]
pub(crate) fn set_cancelling(on: bool) {
    with_thread(|t| t.cancelling.set(on));
}

/// The id of the task the loop is running (0: none).
#[inline]
fn current_task() -> u64 {
    with_thread(|t| t.task_id.get())
}

#[inline]
pub(crate) fn set_current_task(id: u64) {
    with_thread(|t| t.task_id.set(id));
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
    fn cancelled() -> Self {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

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
    task: Option<async_task::Task<Result<T, JoinError>, TaskMeta>>,
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
        let Some(task) = &self.task else { return };
        let meta = task.metadata();
        if task.is_finished() || meta.set_cancelled() {
            return;
        }
        let id = meta.id();
        if id == 0 {
            // A pool job: the pool checks the flag before it starts the work.
            return;
        }
        // A parked task must be woken to notice; a queued or running one will anyway.
        if context::with(|cx| cx.is(&meta.shared)) == Some(true) {
            context::with(|cx| cx.wake_task(id));
        } else {
            // Refused only once the loop has closed, when every task of it has finished.
            let _ = meta.shared.push_remote(Remote::Callback(
                Arc::new(AtomicBool::new(false)),
                Box::new(move || {
                    context::with(|cx| cx.wake_task(id));
                }),
            ));
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

    /// Blocks this thread until the task finishes and returns its output: for a thread that
    /// is not running a loop, waiting for a task it gave one with
    /// [`Handle::spawn`](super::Handle::spawn) (asyncio's `concurrent.futures.Future.result()`).
    /// A task awaiting it on another loop just `.await`s the handle.
    ///
    /// ```
    /// let rt = ringloop::Runtime::builder().build().unwrap();
    /// let handle = rt.handle();
    /// let (done, finished) = ringloop::sync::oneshot::channel();
    /// let answer = std::thread::spawn(move || {
    ///     let answer = handle.spawn(async { 6 * 7 }).wait();
    ///     done.send(()).unwrap();
    ///     answer
    /// });
    /// // The loop runs the task while it runs anything: here, until the thread is done.
    /// rt.block_on(finished).unwrap();
    /// assert_eq!(answer.join().unwrap().unwrap(), 42);
    /// ```
    ///
    /// # Panics
    ///
    /// On a thread running a ringloop loop (it would block that loop; await the handle).
    pub fn wait(self) -> Result<T, JoinError> {
        assert!(
            context::with(|_| ()).is_none(),
            "JoinHandle::wait would block a ringloop loop; await the handle instead"
        );
        let waker = std::task::Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut handle = std::pin::pin!(self);
        loop {
            if let Poll::Ready(out) = handle.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::park();
        }
    }
}

/// Unparks the thread blocked in [`JoinHandle::wait`].
struct ThreadWaker(std::thread::Thread);

impl std::task::Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let task = self
            .task
            .as_mut()
            .expect("JoinHandle polled after completion");
        let out = std::task::ready!(Pin::new(task).poll(cx));
        self.task = None;
        Poll::Ready(out)
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

/// A task's entry in the registry of parked tasks (id 0: not registered); removed when the
/// task's future is dropped (finished or cancelled). `counted`: the task was spawned on the
/// loop thread and counts in `LoopContext::live_tasks` (`Stats::tasks`) until then.
struct Registration {
    id: u64,
    counted: bool,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.id != 0 || self.counted {
            context::with(|cx| {
                if self.id != 0 {
                    cx.tasks.borrow_mut().remove(&self.id);
                }
                if self.counted {
                    cx.live_tasks.set(cx.live_tasks.get() - 1);
                }
            });
        }
    }
}

pin_project_lite::pin_project! {
    /// A spawned future as the loop runs it: catches panics, honours cancellation, and
    /// registers itself the first time it parks.
    struct TaskFuture<F> {
        registration: Registration,
        #[pin]
        future: Option<F>,
    }
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = Result<F::Output, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if cancelling() {
            // Dropping the future drops its ops: their cancellation goes to the kernel.
            this.future.set(None);
            return Poll::Ready(Err(JoinError::cancelled()));
        }
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            return Poll::Ready(Err(JoinError::cancelled()));
        };
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => {
                if this.registration.id == 0 {
                    let id = current_task();
                    context::with(|lp| lp.tasks.borrow_mut().insert(id, cx.waker().clone()));
                    this.registration.id = id;
                }
                Poll::Pending
            }
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(JoinError {
                repr: Repr::Panicked(panic),
            })),
        }
    }
}

/// Queues `runnable` on its loop: straight into the ready queue on the loop's own thread,
/// else through the loop's remote queue (woken from another thread, or after its loop is
/// gone). Gives it back when that loop has closed.
fn post(runnable: Runnable) -> Option<Runnable> {
    let mut slot = Some(runnable);
    context::with(|cx| {
        if let Some(r) = slot.take_if(|r| cx.is(&r.metadata().shared)) {
            cx.ready.borrow_mut().push_back(r);
        }
    });
    let r = slot?;
    let shared = r.metadata().shared.clone();
    match shared.push_remote(Remote::Task(r)) {
        Err(Remote::Task(r)) => Some(r),
        _ => None,
    }
}

fn schedule(runnable: Runnable) {
    if let Some(r) = post(runnable) {
        // The loop has closed, and this `!Send` task may not be run or dropped off its
        // thread: it is leaked. (Every task that ran on the loop finished at its close;
        // this is one woken afterwards by a waker that outlived the loop.)
        std::mem::forget(r);
    }
}

/// `schedule` for a task spawned from another thread ([`Handle::spawn`](super::Handle)): its
/// future is `Send`, so once its loop has closed it is run here, cancelled — it completes with
/// a cancellation error instead of waiting for a loop that will never run it.
fn schedule_send(runnable: Runnable) {
    if let Some(r) = post(runnable) {
        let was = with_thread(|t| t.cancelling.replace(true));
        r.run();
        set_cancelling(was);
    }
}

impl<F> TaskFuture<F> {
    /// A task's future, not yet registered; `counted` in the loop's live tasks or not.
    fn new(future: F, counted: bool) -> Self {
        TaskFuture {
            registration: Registration { id: 0, counted },
            future: Some(future),
        }
    }
}

/// Spawns `fut` onto the loop of `shared` from any thread: [`Handle::spawn`](super::Handle).
pub(crate) fn spawn_send<F>(shared: &Arc<Shared>, fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let id = shared.next_remote_id.fetch_add(2, Ordering::Relaxed);
    // Made off the loop thread, maybe: not counted in the loop's live tasks.
    let fut = TaskFuture::new(fut, false);
    let (runnable, task) = async_task::Builder::new()
        .metadata(TaskMeta::new(id, shared.clone()))
        .spawn(move |_| fut, schedule_send);
    runnable.schedule();
    JoinHandle { task: Some(task) }
}

impl LoopContext {
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let id = self.next_task_id.get();
        self.next_task_id.set(id + 2);
        self.live_tasks.set(self.live_tasks.get() + 1);
        let fut = TaskFuture::new(fut, true);
        let (runnable, task) = async_task::Builder::new()
            .metadata(TaskMeta::new(id, self.shared.clone()))
            .spawn_local(move |_| fut, schedule);
        // We are on the loop thread: queue it directly rather than through `schedule`.
        self.ready.borrow_mut().push_back(runnable);
        JoinHandle { task: Some(task) }
    }

    /// Queues a callback (asyncio's ready handle) as a one-poll task, so callbacks and tasks
    /// share one FIFO queue. A panicking callback is reported by the panic hook and the loop
    /// goes on, as asyncio logs an exception in a callback and goes on.
    pub fn queue_callback(&self, cb: Callback) {
        let (runnable, task) = async_task::Builder::new()
            .metadata(TaskMeta::new(0, self.shared.clone()))
            .spawn_local(
                move |_| async move {
                    if !cancelling() && !cb.cancelled.load(Ordering::Acquire) {
                        let _ = catch_unwind(AssertUnwindSafe(cb.f));
                    }
                },
                schedule,
            );
        task.detach();
        self.ready.borrow_mut().push_back(runnable);
    }

    pub fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.shared.pool.clone();
        let (runnable, task) = async_task::Builder::new()
            .metadata(TaskMeta::new(0, self.shared.clone()))
            .spawn(
                move |_| async move {
                    // A job cancelled before the pool reached it never runs.
                    if cancelling() {
                        return Err(JoinError::cancelled());
                    }
                    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| JoinError {
                        repr: Repr::Panicked(panic),
                    })
                },
                move |runnable: Runnable| {
                    pool.execute(Box::new(move || {
                        set_cancelling(runnable.metadata().is_cancelled());
                        runnable.run();
                        set_cancelling(false);
                    }));
                },
            );
        runnable.schedule();
        JoinHandle { task: Some(task) }
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
    context::with_expect("ringloop::spawn", |cx| cx.spawn(fut))
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
    context::with_expect("ringloop::spawn_blocking", |cx| cx.spawn_blocking(f))
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
