//! [`Lock`]: asyncio's `asyncio.Lock`.

use std::cell::Cell;
use std::fmt;

use super::WaitList;

/// A mutual-exclusion lock for the tasks of one loop, as asyncio's `asyncio.Lock`.
///
/// [`acquire`](Lock::acquire) waits until the lock is free and returns a [`LockGuard`] that
/// releases it when dropped (asyncio's `async with lock:`). Waiting tasks take the lock in the
/// order they asked for it, and a task arriving while others wait queues behind them even if
/// the lock is momentarily free.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use ringloop::sync::Lock;
///
/// ringloop::run(async {
///     let lock = Rc::new(Lock::new());
///     let log = Rc::new(RefCell::new(Vec::new()));
///     let tasks: Vec<_> = (0..3)
///         .map(|i| {
///             let (lock, log) = (lock.clone(), log.clone());
///             ringloop::spawn(async move {
///                 let _held = lock.acquire().await;
///                 log.borrow_mut().push(format!("{i} in"));
///                 ringloop::yield_now().await; // others run, but cannot enter
///                 log.borrow_mut().push(format!("{i} out"));
///             })
///         })
///         .collect();
///     for task in tasks {
///         task.await.unwrap();
///     }
///     assert_eq!(*log.borrow(), ["0 in", "0 out", "1 in", "1 out", "2 in", "2 out"]);
/// });
/// ```
///
/// # Cancellation
///
/// A task cancelled while waiting (its `acquire` future dropped) leaves the queue; one cancelled
/// after the lock was released to it but before it ran hands the turn to the next waiter. The
/// lock is never lost.
///
/// # Differences from asyncio
///
/// A single-loop type, like asyncio's (share it with `Rc`). Releasing is the guard's drop;
/// asyncio's explicit `release()` exists for code that keeps the lock past the guard
/// ([`LockGuard::forget`]), and releasing a free lock is an error value, [`NotLocked`], where
/// asyncio raises `RuntimeError`.
#[derive(Default)]
pub struct Lock {
    /// The current acquisition's number (0: free). A guard releases only its own acquisition,
    /// so an explicit [`Lock::release`] cannot be undone by a stale guard.
    held: Cell<u64>,
    /// The last acquisition's number.
    acquisitions: Cell<u64>,
    waiters: WaitList,
}

/// Holds a [`Lock`]; dropping it releases the lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    acquisition: u64,
}

/// [`Lock::release`] on a lock that is not held (asyncio's `RuntimeError: Lock is not
/// acquired`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotLocked;

impl fmt::Display for NotLocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the lock is not acquired")
    }
}

impl std::error::Error for NotLocked {}

impl Lock {
    /// A free lock.
    pub fn new() -> Lock {
        Lock::default()
    }

    /// Whether the lock is held.
    pub fn locked(&self) -> bool {
        self.held.get() != 0
    }

    /// Waits for the lock and takes it.
    pub async fn acquire(&self) -> LockGuard<'_> {
        if let Some(guard) = self.try_acquire() {
            return guard;
        }
        loop {
            self.waiters.wait().await;
            // Woken by a release: the lock is free and nobody may have taken it since, as the
            // fast path queues behind a woken waiter.
            if !self.locked() {
                return self.take();
            }
        }
    }

    /// Takes the lock if it is free and no task is waiting for it.
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        (!self.locked() && self.waiters.is_empty()).then(|| self.take())
    }

    /// Releases the lock, as asyncio's `Lock.release()`: for a lock whose guard was given up
    /// with [`LockGuard::forget`]. A guard still alive for the same acquisition no longer
    /// releases anything when dropped.
    ///
    /// ```
    /// use ringloop::sync::{Lock, NotLocked};
    ///
    /// ringloop::run(async {
    ///     let lock = Lock::new();
    ///     lock.acquire().await.forget();
    ///     assert!(lock.locked());
    ///     assert_eq!(lock.release(), Ok(()));
    ///     assert_eq!(lock.release(), Err(NotLocked));
    /// });
    /// ```
    pub fn release(&self) -> Result<(), NotLocked> {
        if !self.locked() {
            return Err(NotLocked);
        }
        self.unlock();
        Ok(())
    }

    fn take(&self) -> LockGuard<'_> {
        let acquisition = self.acquisitions.get() + 1;
        self.acquisitions.set(acquisition);
        self.held.set(acquisition);
        LockGuard {
            lock: self,
            acquisition,
        }
    }

    fn unlock(&self) {
        self.held.set(0);
        self.waiters.notify_one();
    }
}

impl LockGuard<'_> {
    /// Keeps the lock held without this guard: release it with [`Lock::release`].
    pub fn forget(self) {
        std::mem::forget(self);
    }

    /// The lock this guard holds.
    pub fn lock(&self) -> &Lock {
        self.lock
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if self.lock.held.get() == self.acquisition {
            self.lock.unlock();
        }
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}
