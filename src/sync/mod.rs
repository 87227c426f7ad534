//! Synchronisation between the tasks of one loop, as asyncio's `asyncio.Lock`, `Event`,
//! `Condition`, `Semaphore`, `BoundedSemaphore` and `Barrier`.
//!
//! Like asyncio's, these are single-loop types: no atomics on their paths, and `!Send`, so
//! they stay on the loop that made them. Waiters are served in FIFO order, and a task
//! cancelled while waiting (its future dropped) never takes a wake-up, a permit or the lock
//! with it (see `wait_list`).

mod event;
mod wait_list;

pub use event::Event;
pub(crate) use wait_list::WaitList;
