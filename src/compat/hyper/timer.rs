//! [`Timer`]: hyper's `rt::Timer` on the loop's timers, with a `Send + Sync` sleep.
//!
//! hyper keeps its sleeps in connection state that it declares `Send + Sync`, so
//! [`time::Sleep`](crate::time::Sleep), which holds the loop in an `Rc`, will not do. A
//! [`Sleep`] holds the loop's [`Handle`] (an `Arc`) and the key of the timer it registered,
//! plain data, and reaches the loop's timer table through the handle, on the loop's thread:
//!
//! - the first poll registers a timer that wakes the polling task at the deadline (the
//!   same entry `time::sleep` uses: no callback, no lock); later polls update its waker and
//!   complete once the loop has fired it;
//! - `reset` and drop remove the timer at once (O(1), see the runtime's timer table), so a
//!   header-read timeout dropped when the headers arrive leaves nothing in the loop;
//! - a sleep dropped on another thread sends the removal to the loop
//!   (`call_soon_threadsafe`); one dropped after its loop is gone has nothing to remove.
//!
//! A sleep is polled where hyper's connection futures run: on the loop's thread (ringloop's
//! I/O types belong to their loop). Polling it on any other thread panics, as the handle's
//! `call_at` does.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::runtime::Handle;
use crate::runtime::timer::TimerKey;

/// hyper's [`rt::Timer`](::hyper::rt::Timer) on a ringloop loop's timers: what
/// `header_read_timeout`, HTTP/2 keep-alive pings and the client's timeouts wait on.
///
/// ```
/// use std::time::{Duration, Instant};
/// use hyper::rt::Timer as _;
/// # ringloop::run(async {
/// let timer = ringloop::hyper::Timer::new();
/// let start = Instant::now();
/// timer.sleep(Duration::from_millis(5)).await;
/// assert!(start.elapsed() >= Duration::from_millis(5));
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct Timer {
    handle: Handle,
}

impl Timer {
    /// A timer on the loop running on this thread.
    ///
    /// # Panics
    ///
    /// Outside a ringloop loop thread.
    pub fn new() -> Timer {
        Timer {
            handle: Handle::current(),
        }
    }

    /// A timer on the loop of `handle` (its sleeps must be polled on that loop's thread).
    ///
    /// ```
    /// # ringloop::run(async {
    /// let timer = ringloop::hyper::Timer::with_handle(ringloop::Handle::current());
    /// # let _ = timer;
    /// # });
    /// ```
    pub fn with_handle(handle: Handle) -> Timer {
        Timer { handle }
    }
}

impl Default for Timer {
    /// [`Timer::new`].
    fn default() -> Timer {
        Timer::new()
    }
}

impl ::hyper::rt::Timer for Timer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn ::hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn ::hyper::rt::Sleep>> {
        Box::pin(Sleep {
            handle: self.handle.clone(),
            deadline,
            registered: None,
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn ::hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Sleep>() {
            Some(ours) => ours.get_mut().reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// The sleep a [`Timer`] makes: `Send + Sync`, polled on its loop's thread.
///
/// ```
/// use std::time::Duration;
/// use hyper::rt::Timer as _;
/// fn send_sync<T: Send + Sync>(_: &T) {}
/// # ringloop::run(async {
/// let timer = ringloop::hyper::Timer::new();
/// let mut sleep = timer.sleep(Duration::from_secs(60));
/// send_sync(&sleep);
/// timer.reset(&mut sleep, std::time::Instant::now() + Duration::from_millis(1));
/// sleep.await;
/// # });
/// ```
pub struct Sleep {
    handle: Handle,
    deadline: Instant,
    /// The timer registered by the first poll, until it fires or is removed.
    registered: Option<TimerKey>,
}

impl Sleep {
    /// Moves the deadline; the timer is registered again by the next poll.
    fn reset(&mut self, deadline: Instant) {
        self.deregister();
        self.deadline = deadline;
    }

    fn deregister(&mut self) {
        let Some(key) = self.registered.take() else {
            return;
        };
        match self.handle.local_if_current() {
            Some(lp) => lp.timers.borrow_mut().remove(key),
            None => {
                // Another thread: the loop removes it (a closed loop has no timers left).
                self.handle.call_soon_threadsafe(move || {
                    if let Some(lp) = crate::runtime::current_context() {
                        lp.timers.borrow_mut().remove(key);
                    }
                });
            }
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let lp = self.handle.local("ringloop::hyper::Sleep::poll");
        match self.registered {
            Some(key) => {
                let mut timers = lp.timers.borrow_mut();
                if timers.is_pending(key) {
                    timers.set_waker(key, cx.waker());
                    return Poll::Pending;
                }
                drop(timers);
                self.registered = None;
                Poll::Ready(())
            }
            None => {
                if Instant::now() >= self.deadline {
                    return Poll::Ready(());
                }
                let key = lp
                    .timers
                    .borrow_mut()
                    .insert_waker(self.deadline, cx.waker().clone());
                self.registered = Some(key);
                Poll::Pending
            }
        }
    }
}

impl ::hyper::rt::Sleep for Sleep {}

// hyper's `Sleep` demands it; the fields are a handle (an `Arc`), an `Instant` and a key.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Sleep>();
    send_sync::<Timer>();
};

impl Drop for Sleep {
    fn drop(&mut self) {
        self.deregister();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}
