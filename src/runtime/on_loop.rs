//! [`on_loop`]: a loop-bound future made `Send` by a check instead of by its contents.
//!
//! ringloop's I/O futures hold their loop in an `Rc` and are not `Send`; frameworks written
//! for a work-stealing runtime ask for `Send` anyway (axum's handlers, tower middleware, a
//! `BoxFuture`). They do not move the future: served on ringloop, a hyper connection and
//! everything it awaits is polled by one task on the loop's thread. [`OnLoop`] states that
//! as a checked promise:
//!
//! - it records the loop it was made on, and every poll asserts that the thread polling it
//!   runs that loop (a loop never leaves its thread, so this is the same thread that made
//!   the future): polled anywhere else it panics before touching the future;
//! - dropped on its loop's thread (inside or outside that loop), it drops the future there
//!   and then; dropped on any other thread (which only happens to a future moved off its
//!   loop, a bug the first poll would have reported), it leaks the future rather than run its
//!   destructor on a thread it does not belong to. Posting it back to the loop to be dropped there is not an option: the
//!   future may borrow from the frame that is dropping it.
//!
//! The cost is one allocation when it is made (the future is boxed, so the wrapper is
//! `Unpin` and projecting the pin needs no `unsafe`) and one thread-local lookup per poll;
//! the rest of the runtime pays nothing (its own futures stay `Rc`-based).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::context::{self, Shared};

/// Makes `fut`, which may hold `Rc`s and other loop-bound state, `Send`: the result may be
/// moved between threads, but only the thread running this loop may poll it (any other
/// panics) or drop it (any other leaks it).
///
/// The use it is made for: an axum handler (axum requires `Send` futures) that awaits
/// ringloop's own timers, files and sockets, served by hyper on the loop:
///
/// ```
/// use std::time::Duration;
/// fn needs_send<F: std::future::Future + Send>(f: F) -> F { f }
/// # ringloop::run(async {
/// let body = needs_send(async {
///     ringloop::on_loop(async {
///         ringloop::time::sleep(Duration::from_millis(1)).await; // holds the loop in an Rc
///         ringloop::fs::read("Cargo.toml").await.map(|b| b.len())
///     })
///     .await
/// })
/// .await;
/// assert!(body.unwrap() > 0);
/// # });
/// ```
///
/// # Panics
///
/// Outside a ringloop loop thread; and, when the future is polled, if the polling thread
/// does not run the loop it was made on (a task of another runtime, a thread pool).
pub fn on_loop<F: Future>(fut: F) -> OnLoop<F> {
    let shared = context::with_expect("ringloop::on_loop", |cx| cx.shared.clone());
    OnLoop {
        fut: Some(Box::pin(fut)),
        shared,
    }
}

/// The future [`on_loop`] returns: `Send` and `Sync` whatever it wraps, polled only on its
/// loop's thread.
#[must_use = "futures do nothing unless polled"]
pub struct OnLoop<F: Future> {
    /// `None` once the output has been returned (the future is dropped at once, on the loop).
    fut: Option<Pin<Box<F>>>,
    /// The loop that made it; the only one whose thread may touch `fut`.
    shared: Arc<Shared>,
}

impl<F: Future> OnLoop<F> {
    fn on_own_loop(&self) -> bool {
        context::with(|cx| cx.is(&self.shared)) == Some(true)
    }
}

// SAFETY: the only non-`Send` part is `fut`, and `OnLoop` touches it only on the thread that
// made it, the one running the loop in `shared` (a loop never leaves its thread): each poll
// checks that this loop runs on the polling thread, each drop that it is that thread; on any
// other thread the box is leaked, untouched.
unsafe impl<F: Future> Send for OnLoop<F> {}

// SAFETY: a shared reference gives access to nothing of `fut`: every method that reaches it
// takes `Pin<&mut Self>` or `&mut self`.
unsafe impl<F: Future> Sync for OnLoop<F> {}

impl<F: Future> Future for OnLoop<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if !self.on_own_loop() {
            off_loop_poll();
        }
        let fut = self
            .fut
            .as_mut()
            .expect("ringloop::OnLoop polled after it completed");
        let out = std::task::ready!(fut.as_mut().poll(cx));
        self.fut = None;
        Poll::Ready(out)
    }
}

#[cold]
fn off_loop_poll() -> ! {
    panic!(
        "a ringloop::OnLoop future was polled on a thread that does not run its loop; it holds \
         that loop's I/O and must be awaited by a task of that loop"
    )
}

impl<F: Future> Drop for OnLoop<F> {
    fn drop(&mut self) {
        let Some(fut) = self.fut.take() else {
            return;
        };
        if self.on_own_loop() || std::thread::current().id() == self.shared.thread {
            drop(fut);
        } else {
            // No other thread may run the future's destructor, and the loop cannot be asked
            // to: the future may borrow from a frame that ends with this drop. Leaked.
            std::mem::forget(fut);
        }
    }
}

impl<F: Future> fmt::Debug for OnLoop<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnLoop")
            .field("done", &self.fut.is_none())
            .finish_non_exhaustive()
    }
}
