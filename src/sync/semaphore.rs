//! [`Semaphore`] and [`BoundedSemaphore`]: asyncio's `asyncio.Semaphore` and
//! `asyncio.BoundedSemaphore`.

use std::cell::Cell;
use std::fmt;

use super::WaitList;

/// A counter of permits for the tasks of one loop, as asyncio's `asyncio.Semaphore`.
///
/// [`acquire`](Semaphore::acquire) waits for a permit and returns a [`Permit`] that gives it
/// back when dropped (asyncio's `async with sem:`). Waiting tasks get permits in the order
/// they asked.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use ringloop::sync::Semaphore;
///
/// ringloop::run(async {
///     let slots = Rc::new(Semaphore::new(2));
///     let inside = Rc::new(Cell::new(0));
///     let tasks: Vec<_> = (0..6)
///         .map(|_| {
///             let (slots, inside) = (slots.clone(), inside.clone());
///             ringloop::spawn(async move {
///                 let _permit = slots.acquire().await;
///                 inside.set(inside.get() + 1);
///                 assert!(inside.get() <= 2, "at most two at a time");
///                 ringloop::yield_now().await;
///                 inside.set(inside.get() - 1);
///             })
///         })
///         .collect();
///     for task in tasks {
///         task.await.unwrap();
///     }
///     assert_eq!(slots.available(), 2);
/// });
/// ```
///
/// # Cancellation
///
/// A task cancelled while waiting leaves the queue; one cancelled after a release woke it but
/// before it ran hands the wake-up to the next waiter. No permit is lost.
///
/// # Differences from asyncio
///
/// A single-loop type (share it with `Rc`). [`release`](Semaphore::release) adds a permit
/// as asyncio's does, for permits kept with [`Permit::forget`]; like asyncio's plain
/// `Semaphore` it may raise the count above the initial value — [`BoundedSemaphore`]
/// refuses to.
pub struct Semaphore {
    permits: Cell<usize>,
    waiters: WaitList,
}

/// A permit of a [`Semaphore`] or [`BoundedSemaphore`]; dropping it gives the permit back.
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct Permit<'a> {
    semaphore: &'a Semaphore,
    /// The bound of a `BoundedSemaphore` (a returned permit never raises the count past it).
    bound: Option<usize>,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            permits: Cell::new(permits),
            waiters: WaitList::default(),
        }
    }

    /// The permits free now.
    pub fn available(&self) -> usize {
        self.permits.get()
    }

    /// Whether an `acquire` would wait (asyncio's `locked()`): no permit is free, or tasks are
    /// already waiting for one.
    pub fn locked(&self) -> bool {
        self.permits.get() == 0 || !self.waiters.is_empty()
    }

    /// Waits for a permit and takes it.
    pub async fn acquire(&self) -> Permit<'_> {
        self.acquire_bounded(None).await
    }

    /// Takes a permit if one is free and no task is waiting for one.
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        self.try_acquire_bounded(None)
    }

    /// Adds a permit, waking the longest-waiting task (asyncio's `release()`).
    pub fn release(&self) {
        self.permits.set(self.permits.get() + 1);
        self.waiters.notify_one();
    }

    async fn acquire_bounded(&self, bound: Option<usize>) -> Permit<'_> {
        if let Some(permit) = self.try_acquire_bounded(bound) {
            return permit;
        }
        loop {
            self.waiters.wait().await;
            // Woken by a release: the permit it added is still there, as the fast path queues
            // behind a woken waiter.
            if self.permits.get() > 0 {
                return self.take(bound);
            }
        }
    }

    fn try_acquire_bounded(&self, bound: Option<usize>) -> Option<Permit<'_>> {
        (self.permits.get() > 0 && self.waiters.is_empty()).then(|| self.take(bound))
    }

    fn take(&self, bound: Option<usize>) -> Permit<'_> {
        self.permits.set(self.permits.get() - 1);
        Permit {
            semaphore: self,
            bound,
        }
    }
}

impl Permit<'_> {
    /// Keeps the permit taken without this guard: give it back with
    /// [`Semaphore::release`] or [`BoundedSemaphore::release`].
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let sem = self.semaphore;
        if self.bound.is_some_and(|bound| sem.permits.get() >= bound) {
            // A `BoundedSemaphore` already given this permit back by an explicit `release`.
            return;
        }
        sem.release();
    }
}

/// A [`Semaphore`] that refuses to be released more often than it was acquired, as asyncio's
/// `asyncio.BoundedSemaphore`: [`release`](BoundedSemaphore::release) past the initial count
/// is an error, [`TooManyReleases`] (asyncio raises `ValueError`).
///
/// ```
/// use ringloop::sync::{BoundedSemaphore, TooManyReleases};
///
/// ringloop::run(async {
///     let sem = BoundedSemaphore::new(1);
///     sem.acquire().await.forget();
///     assert_eq!(sem.release(), Ok(()));
///     assert_eq!(sem.release(), Err(TooManyReleases));
///     assert_eq!(sem.available(), 1);
/// });
/// ```
pub struct BoundedSemaphore {
    inner: Semaphore,
    bound: usize,
}

/// [`BoundedSemaphore::release`] past the initial count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyReleases;

impl fmt::Display for TooManyReleases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoundedSemaphore released too many times")
    }
}

impl std::error::Error for TooManyReleases {}

impl BoundedSemaphore {
    /// A semaphore with `permits` permits, never more.
    pub fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            inner: Semaphore::new(permits),
            bound: permits,
        }
    }

    /// The permits free now.
    pub fn available(&self) -> usize {
        self.inner.available()
    }

    /// Whether an `acquire` would wait; see [`Semaphore::locked`].
    pub fn locked(&self) -> bool {
        self.inner.locked()
    }

    /// Waits for a permit and takes it.
    pub async fn acquire(&self) -> Permit<'_> {
        self.inner.acquire_bounded(Some(self.bound)).await
    }

    /// Takes a permit if one is free and no task is waiting for one.
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        self.inner.try_acquire_bounded(Some(self.bound))
    }

    /// Gives a permit back; an error if every permit is already free. A [`Permit`] still
    /// alive when its permit was given back this way gives nothing back when dropped.
    pub fn release(&self) -> Result<(), TooManyReleases> {
        if self.inner.available() >= self.bound {
            return Err(TooManyReleases);
        }
        self.inner.release();
        Ok(())
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("available", &self.available())
            .field("bound", &self.bound)
            .field("waiters", &self.inner.waiters.len())
            .finish()
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}
