//! [`Condition`]: asyncio's `asyncio.Condition`.

use std::fmt;

use super::{Lock, LockGuard, WaitList};

/// A lock and a set of tasks waiting to be notified under it, as asyncio's
/// `asyncio.Condition`.
///
/// [`acquire`](Condition::acquire) takes the condition's lock and returns a
/// [`ConditionGuard`]; under it, [`wait`](ConditionGuard::wait) releases the lock, waits for a
/// [`notify`](ConditionGuard::notify) and takes the lock again, and `notify` wakes waiting
/// tasks. Notifying needs the guard, so it cannot be done without the lock (asyncio checks this
/// at run time and raises `RuntimeError`).
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use ringloop::sync::Condition;
///
/// ringloop::run(async {
///     let cond = Rc::new(Condition::new());
///     let items = Rc::new(RefCell::new(Vec::new()));
///     let consumer = ringloop::spawn({
///         let (cond, items) = (cond.clone(), items.clone());
///         async move {
///             let held = cond.acquire().await;
///             let _held = held.wait_for(|| !items.borrow().is_empty()).await;
///             items.borrow_mut().pop()
///         }
///     });
///     ringloop::yield_now().await;
///     {
///         let held = cond.acquire().await;
///         items.borrow_mut().push("work");
///         held.notify(1);
///     }
///     assert_eq!(consumer.await.unwrap(), Some("work"));
/// });
/// ```
///
/// # Cancellation
///
/// A `wait` cancelled while waiting (its future dropped) leaves the queue; one cancelled after
/// it was notified, before it ran or while it waited to take the lock back, passes the
/// notification on to the next waiter. Its guard went into the `wait` future, so the caller
/// does not believe it holds the lock: the lock is not taken back for a cancelled `wait`
/// (asyncio takes it back before re-raising `CancelledError`, as its callers hold the lock in
/// an `async with` block; here the type system says who holds it).
///
/// # Differences from asyncio
///
/// The condition owns its lock; asyncio's can share a `Lock` between several conditions.
pub struct Condition {
    lock: Lock,
    waiters: WaitList,
}

/// Holds a [`Condition`]'s lock; dropping it releases the lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a> {
    condition: &'a Condition,
    guard: LockGuard<'a>,
}

impl Default for Condition {
    fn default() -> Condition {
        Condition::new()
    }
}

impl Condition {
    /// A condition with its own, free lock.
    pub fn new() -> Condition {
        Condition {
            lock: Lock::new(),
            waiters: WaitList::default(),
        }
    }

    /// Waits for the condition's lock and takes it.
    pub async fn acquire(&self) -> ConditionGuard<'_> {
        let guard = self.lock.acquire().await;
        ConditionGuard {
            condition: self,
            guard,
        }
    }

    /// Whether the condition's lock is held.
    pub fn locked(&self) -> bool {
        self.lock.locked()
    }
}

/// Passes a notification on if dropped while armed: a `wait` cancelled after it was notified.
struct PassOn<'a> {
    waiters: &'a WaitList,
    armed: bool,
}

impl Drop for PassOn<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.waiters.notify_one();
        }
    }
}

impl<'a> ConditionGuard<'a> {
    /// Releases the lock, waits until notified, then takes the lock again.
    ///
    /// Like asyncio's, a wake-up is not a promise about the state: check it again, or use
    /// [`wait_for`](ConditionGuard::wait_for).
    pub async fn wait(self) -> ConditionGuard<'a> {
        let condition = self.condition;
        let wait = condition.waiters.wait();
        // Registering (the first poll of `wait`) happens in this same poll, right after the
        // release, so no notification can fall between the two.
        drop(self);
        wait.await;
        let mut pass_on = PassOn {
            waiters: &condition.waiters,
            armed: true,
        };
        let guard = condition.lock.acquire().await;
        pass_on.armed = false;
        ConditionGuard { condition, guard }
    }

    /// Waits until `predicate` is true (checked first, and after each wake-up, with the lock
    /// held).
    pub async fn wait_for(self, mut predicate: impl FnMut() -> bool) -> ConditionGuard<'a> {
        let mut held = self;
        while !predicate() {
            held = held.wait().await;
        }
        held
    }

    /// Wakes up to `n` waiting tasks, the longest-waiting first; returns how many.
    pub fn notify(&self, n: usize) -> usize {
        self.condition.waiters.notify(n)
    }

    /// Wakes every waiting task; returns how many.
    pub fn notify_all(&self) -> usize {
        self.condition.waiters.notify_all()
    }

    /// The lock guard this holds.
    pub fn lock_guard(&self) -> &LockGuard<'a> {
        &self.guard
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.locked())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

impl fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionGuard").finish_non_exhaustive()
    }
}
