//! [`Event`]: asyncio's `asyncio.Event`.

use std::cell::Cell;
use std::fmt;

use super::WaitList;

/// A flag tasks can wait for, as asyncio's `asyncio.Event`: [`set`](Event::set) wakes every
/// waiting task, and [`wait`](Event::wait) returns at once while the flag is set, until
/// [`clear`](Event::clear).
///
/// ```
/// use std::rc::Rc;
/// use ringloop::sync::Event;
///
/// ringloop::run(async {
///     let ready = Rc::new(Event::new());
///     let waiter = ringloop::spawn({
///         let ready = ready.clone();
///         async move {
///             ready.wait().await;
///             "saw it"
///         }
///     });
///     ringloop::yield_now().await;
///     assert!(!waiter.is_finished());
///     ready.set();
///     assert_eq!(waiter.await.unwrap(), "saw it");
/// });
/// ```
///
/// A single-loop type, like asyncio's: share it with `Rc`. A task cancelled while waiting
/// simply stops waiting.
#[derive(Default)]
pub struct Event {
    set: Cell<bool>,
    waiters: WaitList,
}

impl Event {
    /// An event whose flag is clear.
    pub fn new() -> Event {
        Event::default()
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Sets the flag and wakes every task waiting for it.
    pub fn set(&self) {
        if !self.set.replace(true) {
            self.waiters.notify_all();
        }
    }

    /// Clears the flag: later [`wait`](Event::wait)s wait for the next [`set`](Event::set).
    pub fn clear(&self) {
        self.set.set(false);
    }

    /// Waits until the flag is set; returns at once if it is.
    ///
    /// A task woken by [`set`](Event::set) returns even if the flag was cleared again before
    /// it ran, as in asyncio: every task waiting at the `set` sees it.
    pub async fn wait(&self) {
        if self.set.get() {
            return;
        }
        self.waiters.wait().await;
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}
