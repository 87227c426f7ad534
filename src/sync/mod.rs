//! Synchronisation between the tasks of one loop, as asyncio's `asyncio.Lock`, `Event`,
//! `Condition`, `Semaphore`, `BoundedSemaphore` and `Barrier`.
//!
//! Like asyncio's, these are single-loop types: no atomics on their paths, and `!Sync`, so
//! tasks share them with `Rc` and they stay on the loop that made them (cross-thread
//! handoff is for channels). Waiters are served in FIFO order, and a task
//! cancelled while waiting (its future dropped) never takes a wake-up, a permit or the lock
//! with it (see `wait_list`).
//!
//! Between threads and loops: the channels [`mpsc`] and [`oneshot`], and
//! [`Handle::spawn`](crate::Handle::spawn).

mod barrier;
mod condition;
mod event;
mod lock;
pub mod mpsc;
pub mod oneshot;
mod semaphore;
mod wait_list;

pub use barrier::{Barrier, BrokenBarrierError};
pub use condition::{Condition, ConditionGuard};
pub use event::Event;
pub use lock::{Lock, LockGuard, NotLocked};
pub use semaphore::{BoundedSemaphore, Permit, Semaphore, TooManyReleases};
pub(crate) use wait_list::WaitList;
