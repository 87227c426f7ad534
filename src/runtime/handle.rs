//! The loop handle: asyncio's `call_soon`, `call_later`, `call_at`, `time`,
//! `call_soon_threadsafe` and `create_future`.

use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::context::{self, Callback, LoopContext, Remote, Shared};
use super::future::LoopFuture;
use crate::op::{Interest, poll_add};
use std::os::fd::RawFd;

/// A handle to a loop. Cloneable and `Send`; the methods that take non-`Send` callbacks must
/// be called on the loop's own thread, `call_soon_threadsafe` from anywhere.
///
/// ```
/// # ringloop::run(async {
/// let handle = ringloop::Handle::current();
/// let fut = handle.create_future::<u32>();
/// let f = fut.clone();
/// handle.call_later(std::time::Duration::from_millis(1), move || { f.set_result(7).unwrap(); });
/// assert_eq!(fut.await.unwrap(), 7);
/// # });
/// ```
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

/// Cancels a callback scheduled with `call_soon` or `call_soon_threadsafe`.
#[derive(Clone, Debug)]
pub struct CallbackHandle {
    cancelled: Arc<AtomicBool>,
}

impl CallbackHandle {
    /// The callback will not run (if it has not run yet).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }
    /// Whether `cancel` was called.
    pub fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

/// Cancels a callback scheduled with `call_later` or `call_at`.
#[derive(Clone, Debug)]
pub struct TimerHandle {
    cancelled: Arc<AtomicBool>,
    when: Instant,
}

impl TimerHandle {
    /// The callback will not run (if it has not run yet).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }
    /// Whether `cancel` was called.
    pub fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
    /// When the callback is due.
    pub fn when(&self) -> Instant {
        self.when
    }
}

/// The handle of a task started by [`Handle::spawn_with`], cancelled if the outer task is.
struct CancelOnDrop<T>(Option<super::JoinHandle<T>>);

impl<T> CancelOnDrop<T> {
    async fn finish(mut self) -> T {
        let handle = self.0.as_mut().expect("finished once");
        let out = handle.await;
        self.0 = None;
        match out {
            Ok(v) => v,
            // The outer task reports the panic as its own.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled with the loop's shutdown, which cancels the outer task too.
            Err(_) => std::future::pending().await,
        }
    }
}

impl<T> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.cancel();
        }
    }
}

impl Handle {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Handle {
        Handle { shared }
    }

    /// Spawns `fut` onto this loop from any thread, as asyncio's `run_coroutine_threadsafe`:
    /// the loop runs it (waking at once if it sleeps in the kernel) next time it runs
    /// anything. The returned [`JoinHandle`](super::JoinHandle) is `Send`: another thread can
    /// block on it ([`wait`](super::JoinHandle::wait)), a task of another loop can await it,
    /// anyone can [`cancel`](super::JoinHandle::cancel) it; it carries the output or the panic.
    ///
    /// ringloop's own I/O futures are not `Send` (they belong to their loop): to run them, use
    /// [`spawn_with`](Handle::spawn_with), which sends a closure that builds the future on the
    /// loop.
    ///
    /// ```
    /// let rt = ringloop::Runtime::builder().build().unwrap();
    /// let handle = rt.handle();
    /// let (done, finished) = ringloop::sync::oneshot::channel();
    /// let worker = std::thread::spawn(move || {
    ///     let sum = handle.spawn(async { (1..=10).sum::<u32>() }).wait().unwrap();
    ///     done.send(()).unwrap();
    ///     sum
    /// });
    /// rt.block_on(finished).unwrap(); // the loop runs until the worker is done
    /// assert_eq!(worker.join().unwrap(), 55);
    /// ```
    ///
    /// Once the runtime has been dropped, the task never runs: its handle gives a
    /// cancellation error at once.
    pub fn spawn<F>(&self, fut: F) -> super::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        super::task::spawn_send(&self.shared, fut)
    }

    /// Spawns the future `make` builds onto this loop, from any thread: `make` is sent to the
    /// loop and called there, so the future may use the loop's own (`!Send`) I/O, timers and
    /// `Rc`s; only `make` and the output cross threads. Otherwise as [`spawn`](Handle::spawn)
    /// (cancelling the handle cancels the future).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = ringloop::Runtime::builder().build().unwrap();
    /// let handle = rt.handle();
    /// let (done, finished) = ringloop::sync::oneshot::channel();
    /// let worker = std::thread::spawn(move || {
    ///     let slept = handle
    ///         .spawn_with(|| async {
    ///             let start = std::time::Instant::now();
    ///             ringloop::time::sleep(Duration::from_millis(2)).await;
    ///             start.elapsed()
    ///         })
    ///         .wait()
    ///         .unwrap();
    ///     done.send(()).unwrap();
    ///     slept
    /// });
    /// rt.block_on(finished).unwrap();
    /// assert!(worker.join().unwrap() >= Duration::from_millis(2));
    /// ```
    pub fn spawn_with<M, F>(&self, make: M) -> super::JoinHandle<F::Output>
    where
        M: FnOnce() -> F + Send + 'static,
        F: std::future::Future + 'static,
        F::Output: Send + 'static,
    {
        super::task::spawn_send(&self.shared, async move {
            // Cancelling (dropping) this task cancels the local one with it.
            let local = CancelOnDrop(Some(super::spawn(make())));
            local.finish().await
        })
    }

    /// The handle of the loop running on this thread.
    ///
    /// # Panics
    ///
    /// Outside a ringloop loop thread.
    pub fn current() -> Handle {
        Handle {
            shared: context::expect("Handle::current").shared.clone(),
        }
    }

    /// Which backend this loop runs on and why (the same report as
    /// [`Runtime::backend_report`](super::Runtime::backend_report)), from inside `run` or
    /// from any thread holding the handle.
    ///
    /// ```
    /// ringloop::run(async {
    ///     let report = ringloop::Handle::current().backend_report().clone();
    ///     println!("serving on {report}");
    ///     let kind = report.backend();
    ///     assert!(matches!(kind, ringloop::BackendKind::IoUring | ringloop::BackendKind::Epoll));
    /// });
    /// ```
    pub fn backend_report(&self) -> &crate::BackendReport {
        &self.shared.report
    }

    /// This handle's loop, if the calling thread runs it.
    #[cfg(feature = "hyper")]
    pub(crate) fn local_if_current(&self) -> Option<Rc<LoopContext>> {
        context::current().filter(|cx| cx.is(&self.shared))
    }

    pub(crate) fn local(&self, what: &str) -> Rc<LoopContext> {
        let cx = context::expect(what);
        assert!(
            cx.is(&self.shared),
            "{what} must be called on its own loop's thread; use call_soon_threadsafe from others"
        );
        cx
    }

    /// Schedules `f` to run on the next loop tick, after callbacks scheduled before it (FIFO).
    ///
    /// ```
    /// # ringloop::run(async {
    /// let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    /// let h = ringloop::Handle::current();
    /// for i in 0..3 {
    ///     let o = order.clone();
    ///     h.call_soon(move || o.borrow_mut().push(i));
    /// }
    /// ringloop::yield_now().await;
    /// assert_eq!(*order.borrow(), [0, 1, 2]);
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// When called from a thread other than the loop's.
    pub fn call_soon(&self, f: impl FnOnce() + 'static) -> CallbackHandle {
        let cx = self.local("Handle::call_soon");
        let cancelled = Arc::new(AtomicBool::new(false));
        cx.queue_callback(Callback {
            cancelled: cancelled.clone(),
            f: Box::new(f),
        });
        CallbackHandle { cancelled }
    }

    /// Schedules `f` to run after `delay`.
    ///
    /// ```
    /// # ringloop::run(async {
    /// let h = ringloop::Handle::current();
    /// let t = h.call_later(std::time::Duration::from_secs(60), || unreachable!());
    /// t.cancel();
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// When called from a thread other than the loop's.
    pub fn call_later(&self, delay: Duration, f: impl FnOnce() + 'static) -> TimerHandle {
        self.call_at(Instant::now() + delay, f)
    }

    /// Schedules `f` to run at `when` (on the loop's clock, [`Handle::time`]). Callbacks due
    /// at the same instant run in the order they were scheduled.
    ///
    /// ```
    /// # ringloop::run(async {
    /// let h = ringloop::Handle::current();
    /// let fut = h.create_future();
    /// let f = fut.clone();
    /// h.call_at(h.time() + std::time::Duration::from_millis(2), move || { let _ = f.set_result(()); });
    /// fut.await.unwrap();
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// When called from a thread other than the loop's.
    pub fn call_at(&self, when: Instant, f: impl FnOnce() + 'static) -> TimerHandle {
        let cx = self.local("Handle::call_at");
        let cancelled = Arc::new(AtomicBool::new(false));
        cx.timers.borrow_mut().insert_callback(
            when,
            Callback {
                cancelled: cancelled.clone(),
                f: Box::new(f),
            },
        );
        TimerHandle { cancelled, when }
    }

    /// The loop's monotonic clock.
    ///
    /// ```
    /// # ringloop::run(async {
    /// let h = ringloop::Handle::current();
    /// assert!(h.time() <= h.time());
    /// # });
    /// ```
    pub fn time(&self) -> Instant {
        Instant::now()
    }

    /// Schedules `f` on the loop from any thread, waking the loop if it sleeps.
    ///
    /// ```
    /// # ringloop::run(async {
    /// let h = ringloop::Handle::current();
    /// let fut = h.create_future::<&str>();
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let h2 = h.clone();
    /// std::thread::spawn(move || {
    ///     h2.call_soon_threadsafe(move || { let _ = tx.send(()); });
    /// });
    /// // The callback runs on the loop; we observe it here.
    /// while rx.try_recv().is_err() { ringloop::time::sleep(std::time::Duration::from_millis(1)).await; }
    /// # let _ = fut;
    /// # });
    /// ```
    pub fn call_soon_threadsafe(&self, f: impl FnOnce() + Send + 'static) -> CallbackHandle {
        let cancelled = Arc::new(AtomicBool::new(false));
        let on_loop = context::with(|cx| cx.is(&self.shared)) == Some(true);
        if on_loop {
            context::with(|cx| {
                cx.queue_callback(Callback {
                    cancelled: cancelled.clone(),
                    f: Box::new(f),
                })
            });
        } else {
            // A closed loop runs nothing: the callback is dropped.
            let _ = self
                .shared
                .push_remote(Remote::Callback(cancelled.clone(), Box::new(f)));
        }
        CallbackHandle { cancelled }
    }

    /// A new asyncio-style future bound to this loop: settable, cancellable, awaitable.
    ///
    /// ```
    /// # ringloop::run(async {
    /// let fut = ringloop::Handle::current().create_future::<i32>();
    /// fut.set_result(3).unwrap();
    /// assert_eq!(fut.await.unwrap(), 3);
    /// # });
    /// ```
    pub fn create_future<T: 'static>(&self) -> LoopFuture<T> {
        LoopFuture::new()
    }

    /// Calls `callback` on the loop whenever `fd` is readable (asyncio's `add_reader`): a
    /// level-triggered watch built from single-shot `poll_add` ops, so the callback runs again
    /// on the next tick while data remains. Replaces an earlier reader of `fd`. An error from
    /// the kernel (e.g. the fd was closed) ends the watch.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// # ringloop::run(async {
    /// let h = ringloop::Handle::current();
    /// let (rx, tx) = std::io::pipe().unwrap();
    /// let fut = h.create_future::<()>();
    /// let f = fut.clone();
    /// h.add_reader(rx.as_raw_fd(), move || { let _ = f.set_result(()); });
    /// std::io::Write::write_all(&mut &tx, b"!").unwrap();
    /// fut.await.unwrap();
    /// assert!(h.remove_reader(rx.as_raw_fd()));
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// When called from a thread other than the loop's.
    pub fn add_reader(&self, fd: RawFd, callback: impl FnMut() + 'static) {
        self.watch(fd, Interest::READABLE, callback, "Handle::add_reader");
    }

    /// Calls `callback` on the loop whenever `fd` is writable (asyncio's `add_writer`).
    ///
    /// # Panics
    ///
    /// When called from a thread other than the loop's.
    pub fn add_writer(&self, fd: RawFd, callback: impl FnMut() + 'static) {
        self.watch(fd, Interest::WRITABLE, callback, "Handle::add_writer");
    }

    /// Stops watching `fd` for reading; true if it was watched.
    ///
    /// # Panics
    ///
    /// When called from a thread other than the loop's.
    pub fn remove_reader(&self, fd: RawFd) -> bool {
        self.unwatch(fd, Interest::READABLE, "Handle::remove_reader")
    }

    /// Stops watching `fd` for writing; true if it was watched.
    ///
    /// # Panics
    ///
    /// When called from a thread other than the loop's.
    pub fn remove_writer(&self, fd: RawFd) -> bool {
        self.unwatch(fd, Interest::WRITABLE, "Handle::remove_writer")
    }

    fn watch(
        &self,
        fd: RawFd,
        interest: Interest,
        mut callback: impl FnMut() + 'static,
        what: &str,
    ) {
        let cx = self.local(what);
        let task = cx.spawn(async move {
            while poll_add(fd, interest).await.is_ok() {
                callback();
                // asyncio runs a reader once per loop iteration while the fd stays ready.
                crate::runtime::yield_now().await;
            }
        });
        if let Some(old) = cx
            .watchers
            .borrow_mut()
            .insert((fd, interest.is_readable()), task)
        {
            old.cancel();
        }
    }

    fn unwatch(&self, fd: RawFd, interest: Interest, what: &str) -> bool {
        let cx = self.local(what);
        let old = cx
            .watchers
            .borrow_mut()
            .remove(&(fd, interest.is_readable()));
        old.map(|task| task.cancel()).is_some()
    }

    /// Runs blocking `f` on the loop's blocking pool; asyncio's `loop.run_in_executor(None,
    /// f)`, the same as [`spawn_blocking`](crate::spawn_blocking).
    ///
    /// ```
    /// # ringloop::run(async {
    /// let h = ringloop::Handle::current();
    /// let n = h.run_in_executor(|| std::fs::metadata(".").is_ok()).await.unwrap();
    /// assert!(n);
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// When called from a thread other than the loop's.
    pub fn run_in_executor<F, T>(&self, f: F) -> super::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.local("Handle::run_in_executor").spawn_blocking(f)
    }

    /// Ops the backend owns right now (see [`Runtime::inflight_ops`](crate::Runtime::inflight_ops)).
    ///
    /// # Panics
    ///
    /// When called from a thread other than the loop's.
    pub fn inflight_ops(&self) -> usize {
        self.local("Handle::inflight_ops")
            .driver()
            .borrow()
            .inflight()
    }
}
