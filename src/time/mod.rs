//! Timers: sleeping, deadlines and intervals on the loop's clock.
//!
//! A timer is registered with the loop lazily, on its first poll, and removed when dropped.
//! [`timeout`] drops the inner future as soon as the deadline passes, so the ops it was
//! awaiting are cancelled in the kernel at once.
//!
//! ```
//! use std::time::Duration;
//! # ringloop::run(async {
//! let slow = ringloop::time::sleep(Duration::from_secs(10));
//! let res = ringloop::time::timeout(Duration::from_millis(5), slow).await;
//! assert!(res.is_err());
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::runtime::{LoopContext, current_context, timer::TimerKey};

/// Future returned by [`sleep`] and [`sleep_until`].
#[must_use = "a sleep does nothing until awaited"]
pub struct Sleep {
    deadline: Instant,
    registered: Option<(Rc<LoopContext>, TimerKey)>,
}

/// Waits until `duration` has passed.
///
/// ```
/// use std::time::{Duration, Instant};
/// # ringloop::run(async {
/// let start = Instant::now();
/// ringloop::time::sleep(Duration::from_millis(3)).await;
/// assert!(start.elapsed() >= Duration::from_millis(3));
/// # });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Waits until `deadline`.
///
/// ```
/// use std::time::{Duration, Instant};
/// # ringloop::run(async {
/// let at = Instant::now() + Duration::from_millis(2);
/// ringloop::time::sleep_until(at).await;
/// assert!(Instant::now() >= at);
/// # });
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        registered: None,
    }
}

impl Sleep {
    /// The instant it completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline (re-registering the timer if it was registered).
    pub fn reset(&mut self, deadline: Instant) {
        self.deregister();
        self.deadline = deadline;
    }

    fn deregister(&mut self) {
        if let Some((cx, key)) = self.registered.take() {
            cx.timers.borrow_mut().remove(key);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &self.registered {
            Some((lp, key)) => {
                let mut timers = lp.timers.borrow_mut();
                if timers.is_pending(*key) {
                    timers.set_waker(*key, cx.waker());
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
                let deadline = self.deadline;
                let lp = current_context()
                    .expect("ringloop::time::sleep polled outside a ringloop runtime");
                let key = lp
                    .timers
                    .borrow_mut()
                    .insert_waker(deadline, cx.waker().clone());
                let registered = (lp, key);
                self.registered = Some(registered);
                Poll::Pending
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.deregister();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// The deadline passed before the future completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed(());

impl Elapsed {
    /// For the other timeouts of the crate (`task::TimeoutScope`).
    pub(crate) fn new() -> Elapsed {
        Elapsed(())
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

pin_project_lite::pin_project! {
    /// Future returned by [`timeout`] and [`timeout_at`].
    #[must_use = "a timeout does nothing until awaited"]
    pub struct Timeout<F> {
        #[pin]
        future: Option<F>,
        sleep: Sleep,
    }
}

/// Runs `future` with a time limit: `Err(Elapsed)` if `duration` passes first, in which case
/// the future is dropped at once (cancelling its ops).
///
/// ```
/// use std::time::Duration;
/// # ringloop::run(async {
/// let v = ringloop::time::timeout(Duration::from_secs(1), async { 7 }).await;
/// assert_eq!(v, Ok(7));
/// # });
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    timeout_at(Instant::now() + duration, future)
}

/// Like [`timeout`], with an absolute deadline.
///
/// ```
/// use std::time::{Duration, Instant};
/// # ringloop::run(async {
/// let deadline = Instant::now() + Duration::from_millis(1);
/// let r = ringloop::time::timeout_at(deadline, std::future::pending::<()>()).await;
/// assert!(r.is_err());
/// # });
/// ```
pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
    Timeout {
        future: Some(future),
        sleep: sleep_until(deadline),
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            return Poll::Ready(Err(Elapsed(())));
        };
        if let Poll::Ready(v) = future.poll(cx) {
            this.future.set(None);
            return Poll::Ready(Ok(v));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => {
                // Drop the inner future now: its in-flight ops are cancelled in the kernel.
                this.future.set(None);
                Poll::Ready(Err(Elapsed(())))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Ticks at a fixed period; see [`interval`].
#[derive(Debug)]
pub struct Interval {
    next: Instant,
    period: Duration,
    sleep: Sleep,
}

/// A ticker whose first tick completes at once and then every `period`. Ticks missed while the
/// task was busy are skipped, not bunched up.
///
/// ```
/// use std::time::Duration;
/// # ringloop::run(async {
/// let mut ticks = ringloop::time::interval(Duration::from_millis(1));
/// for _ in 0..3 {
///     ticks.tick().await;
/// }
/// # });
/// ```
///
/// # Panics
///
/// When `period` is zero.
pub fn interval(period: Duration) -> Interval {
    assert!(!period.is_zero(), "interval period must be non-zero");
    let now = Instant::now();
    Interval {
        next: now,
        period,
        sleep: sleep_until(now),
    }
}

impl Interval {
    /// Waits for the next tick; returns the instant it was scheduled for.
    pub async fn tick(&mut self) -> Instant {
        let scheduled = self.next;
        if self.sleep.deadline() != scheduled {
            self.sleep.reset(scheduled);
        }
        (&mut self.sleep).await;
        let now = Instant::now();
        self.next = scheduled + self.period;
        if self.next <= now {
            let behind = now.duration_since(self.next).as_nanos() / self.period.as_nanos();
            self.next += self.period * (behind as u32 + 1);
        }
        scheduled
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }
}
