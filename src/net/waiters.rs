//! [`Waiters`]: the tasks waiting on one op in flight (a send several tasks depend on), woken
//! together whichever of them polled the op last.

use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};

/// The wakers of the tasks waiting on an op in flight. The op is polled with
/// `Waker::from(Arc<Waiters>)`, which wakes them all.
#[derive(Default)]
pub(crate) struct Waiters(Mutex<Vec<Waker>>);

impl Waiters {
    /// Adds `waker` (once) to those woken when the op completes.
    pub(crate) fn add(&self, waker: &Waker) {
        let mut wakers = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }

    /// Wakes every waiter but `current` (which is running).
    pub(crate) fn wake_others(&self, current: &Waker) {
        let wakers = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        for w in wakers {
            if !w.will_wake(current) {
                w.wake();
            }
        }
    }

    /// Wakes every waiter.
    pub(crate) fn wake_all(&self) {
        let wakers = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        for w in wakers {
            w.wake();
        }
    }
}

impl Wake for Waiters {
    fn wake(self: Arc<Self>) {
        self.wake_all();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_all();
    }
}
