//! Queues between the tasks of one loop, as asyncio's `asyncio.Queue`, `PriorityQueue` and
//! `LifoQueue` (Python 3.13, with `shutdown`).
//!
//! ```
//! use std::rc::Rc;
//! use ringloop::queue::Queue;
//!
//! ringloop::run(async {
//!     let queue = Rc::new(Queue::new(2)); // at most 2 items waiting
//!     let consumer = ringloop::spawn({
//!         let queue = queue.clone();
//!         async move {
//!             let mut sum = 0;
//!             while let Ok(n) = queue.get().await {
//!                 sum += n;
//!                 queue.task_done().unwrap();
//!             }
//!             sum // the queue was shut down and drained
//!         }
//!     });
//!     for n in 1..=10 {
//!         queue.put(n).await.unwrap(); // waits while 2 items are queued
//!     }
//!     queue.join().await; // every item taken and marked done
//!     queue.shutdown(false);
//!     assert_eq!(consumer.await.unwrap(), 55);
//! });
//! ```
//!
//! # Cancellation
//!
//! A `get` takes its item in the poll that returns it, so a `get` cancelled (dropped) while
//! waiting loses no item; a `put` inserts in the poll that returns, so a cancelled `put`
//! inserts nothing. A task woken for an item or a free slot and cancelled before it ran passes
//! the wake-up to the next waiter.
//!
//! # Differences from asyncio
//!
//! Single-loop types (share them with `Rc`), like asyncio's. `maxsize` 0 means unbounded (asyncio:
//! any `maxsize <= 0`). Errors are values: [`put_nowait`](BaseQueue::put_nowait) and a `put` refused
//! after [`shutdown`](BaseQueue::shutdown) give the item back. A `get` may take an item a woken
//! getter was about to take, as in asyncio (the woken one waits again); `put`s likewise.
//! For queues between threads or loops use the channels in `ringloop::sync`.

mod order;

use std::cell::{Cell, RefCell};
use std::fmt;

pub use order::{Fifo, Lifo, Order, Priority};

use crate::sync::{Event, WaitList};

/// The queue behind [`Queue`], [`LifoQueue`] and [`PriorityQueue`], which differ only in
/// their [`Order`]. See the [module docs](self).
pub struct BaseQueue<T, O: Order<T>> {
    items: RefCell<O::Store>,
    maxsize: usize,
    /// Items put and not yet marked done with `task_done`.
    unfinished: Cell<usize>,
    /// Set while `unfinished` is 0.
    finished: Event,
    shut_down: Cell<bool>,
    getters: WaitList,
    putters: WaitList,
}

/// A first-in, first-out queue (asyncio's `asyncio.Queue`); its methods are
/// [`BaseQueue`]'s.
pub type Queue<T> = BaseQueue<T, Fifo>;

/// A last-in, first-out queue (asyncio's `asyncio.LifoQueue`).
///
/// ```
/// ringloop::run(async {
///     let stack = ringloop::queue::LifoQueue::new(0);
///     for n in [1, 2, 3] {
///         stack.put_nowait(n).unwrap();
///     }
///     assert_eq!(stack.get().await, Ok(3));
/// });
/// ```
pub type LifoQueue<T> = BaseQueue<T, Lifo>;

/// A queue that gives the smallest item first (asyncio's `asyncio.PriorityQueue`; use a tuple
/// `(priority, item)` as Python code does, or `std::cmp::Reverse` for largest first).
///
/// ```
/// ringloop::run(async {
///     let jobs = ringloop::queue::PriorityQueue::new(0);
///     jobs.put_nowait((2, "later")).unwrap();
///     jobs.put_nowait((1, "first")).unwrap();
///     assert_eq!(jobs.get().await, Ok((1, "first")));
/// });
/// ```
pub type PriorityQueue<T> = BaseQueue<T, Priority>;

/// `get` or `join` on a queue shut down (and, for `get`, empty); `put` on a queue shut down,
/// with the item given back (asyncio's `QueueShutDown`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct QueueShutDown<T = ()>(pub T);

/// Why [`put_nowait`](BaseQueue::put_nowait) refused an item; both give it back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PutNowaitError<T> {
    /// The queue holds `maxsize` items (asyncio's `QueueFull`).
    QueueFull(T),
    /// The queue was shut down (asyncio's `QueueShutDown`).
    QueueShutDown(T),
}

/// Why [`get_nowait`](BaseQueue::get_nowait) found no item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetNowaitError {
    /// The queue is empty (asyncio's `QueueEmpty`).
    QueueEmpty,
    /// The queue is empty and shut down (asyncio's `QueueShutDown`).
    QueueShutDown,
}

/// [`task_done`](BaseQueue::task_done) called more times than items were put (asyncio's
/// `ValueError: task_done() called too many times`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskDoneTooManyTimes;

impl<T> BaseQueue<T, Fifo> {
    /// A FIFO queue holding at most `maxsize` items (0: unbounded).
    pub fn new(maxsize: usize) -> Self {
        BaseQueue::with_order(maxsize)
    }
}

impl<T> BaseQueue<T, Lifo> {
    /// A LIFO queue holding at most `maxsize` items (0: unbounded).
    pub fn new(maxsize: usize) -> Self {
        BaseQueue::with_order(maxsize)
    }
}

impl<T: Ord> BaseQueue<T, Priority> {
    /// A priority queue holding at most `maxsize` items (0: unbounded).
    pub fn new(maxsize: usize) -> Self {
        BaseQueue::with_order(maxsize)
    }
}

impl<T, O: Order<T>> BaseQueue<T, O> {
    fn with_order(maxsize: usize) -> Self {
        let finished = Event::new();
        finished.set();
        BaseQueue {
            items: RefCell::default(),
            maxsize,
            unfinished: Cell::new(0),
            finished,
            shut_down: Cell::new(false),
            getters: WaitList::default(),
            putters: WaitList::default(),
        }
    }

    /// The most items it holds (0: unbounded).
    pub fn maxsize(&self) -> usize {
        self.maxsize
    }

    /// The items in the queue (asyncio's `qsize()`).
    pub fn qsize(&self) -> usize {
        O::len(&self.items.borrow())
    }

    /// Whether the queue holds no item.
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether the queue holds `maxsize` items (never, when unbounded).
    pub fn full(&self) -> bool {
        self.maxsize > 0 && self.qsize() >= self.maxsize
    }

    /// Whether [`shutdown`](BaseQueue::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down.get()
    }

    /// Puts `item` in, waiting while the queue is full. After [`shutdown`](BaseQueue::shutdown),
    /// gives the item back.
    pub async fn put(&self, item: T) -> Result<(), QueueShutDown<T>> {
        loop {
            if self.shut_down.get() {
                return Err(QueueShutDown(item));
            }
            if !self.full() {
                self.insert(item);
                return Ok(());
            }
            self.putters.wait().await;
        }
    }

    /// Puts `item` in if there is room; gives it back if the queue is full or shut down.
    pub fn put_nowait(&self, item: T) -> Result<(), PutNowaitError<T>> {
        if self.shut_down.get() {
            return Err(PutNowaitError::QueueShutDown(item));
        }
        if self.full() {
            return Err(PutNowaitError::QueueFull(item));
        }
        self.insert(item);
        Ok(())
    }

    /// Takes the next item, waiting while the queue is empty. Once the queue is shut down and
    /// empty (at once after `shutdown(true)`), [`QueueShutDown`].
    pub async fn get(&self) -> Result<T, QueueShutDown> {
        loop {
            match self.get_nowait() {
                Ok(item) => return Ok(item),
                Err(GetNowaitError::QueueShutDown) => return Err(QueueShutDown(())),
                Err(GetNowaitError::QueueEmpty) => self.getters.wait().await,
            }
        }
    }

    /// Takes the next item if there is one.
    pub fn get_nowait(&self) -> Result<T, GetNowaitError> {
        let item = O::pop(&mut self.items.borrow_mut());
        match item {
            Some(item) => {
                self.putters.notify_one();
                Ok(item)
            }
            None if self.shut_down.get() => Err(GetNowaitError::QueueShutDown),
            None => Err(GetNowaitError::QueueEmpty),
        }
    }

    /// Marks one item taken with `get` as processed; [`join`](BaseQueue::join) returns once every
    /// item put has been marked.
    pub fn task_done(&self) -> Result<(), TaskDoneTooManyTimes> {
        let unfinished = self.unfinished.get();
        if unfinished == 0 {
            return Err(TaskDoneTooManyTimes);
        }
        self.mark_done(unfinished);
        Ok(())
    }

    /// Waits until every item put has been marked done with [`task_done`](BaseQueue::task_done)
    /// (returns at once if none is pending).
    pub async fn join(&self) {
        while self.unfinished.get() > 0 {
            self.finished.wait().await;
        }
    }

    /// Shuts the queue down (Python 3.13): `put`s from now on, and those waiting, get
    /// [`QueueShutDown`] with their item; `get`s take what is left, then get `QueueShutDown`.
    /// With `immediate`, what is left is dropped at once (and counted done for `join`), so
    /// `get`s fail at once too.
    pub fn shutdown(&self, immediate: bool) {
        self.shut_down.set(true);
        if immediate {
            let dropped = {
                let mut items = self.items.borrow_mut();
                let mut dropped = Vec::with_capacity(O::len(&items));
                while let Some(item) = O::pop(&mut items) {
                    dropped.push(item);
                }
                dropped
            };
            for _ in &dropped {
                let unfinished = self.unfinished.get();
                if unfinished > 0 {
                    self.mark_done(unfinished);
                }
            }
            // The items are dropped with no borrow held: their destructors may use the queue.
            drop(dropped);
        }
        self.getters.notify_all();
        self.putters.notify_all();
    }

    fn insert(&self, item: T) {
        O::push(&mut self.items.borrow_mut(), item);
        self.unfinished.set(self.unfinished.get() + 1);
        self.finished.clear();
        self.getters.notify_one();
    }

    fn mark_done(&self, unfinished: usize) {
        self.unfinished.set(unfinished - 1);
        if unfinished == 1 {
            self.finished.set();
        }
    }
}

impl<T, O: Order<T>> fmt::Debug for BaseQueue<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("qsize", &self.qsize())
            .field("maxsize", &self.maxsize)
            .field("unfinished", &self.unfinished.get())
            .field("shut_down", &self.shut_down.get())
            .field("getters", &self.getters.len())
            .field("putters", &self.putters.len())
            .finish()
    }
}

impl<T> PutNowaitError<T> {
    /// The item refused.
    pub fn into_inner(self) -> T {
        match self {
            PutNowaitError::QueueFull(item) | PutNowaitError::QueueShutDown(item) => item,
        }
    }
}

impl<T> fmt::Debug for QueueShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueShutDown(..)")
    }
}

impl<T> fmt::Display for QueueShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is shut down")
    }
}

impl<T> std::error::Error for QueueShutDown<T> {}

impl<T> fmt::Debug for PutNowaitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutNowaitError::QueueFull(_) => f.write_str("QueueFull(..)"),
            PutNowaitError::QueueShutDown(_) => f.write_str("QueueShutDown(..)"),
        }
    }
}

impl<T> fmt::Display for PutNowaitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutNowaitError::QueueFull(_) => f.write_str("the queue is full"),
            PutNowaitError::QueueShutDown(_) => f.write_str("the queue is shut down"),
        }
    }
}

impl<T> std::error::Error for PutNowaitError<T> {}

impl fmt::Display for GetNowaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetNowaitError::QueueEmpty => f.write_str("the queue is empty"),
            GetNowaitError::QueueShutDown => f.write_str("the queue is shut down and empty"),
        }
    }
}

impl std::error::Error for GetNowaitError {}

impl fmt::Display for TaskDoneTooManyTimes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called too many times")
    }
}

impl std::error::Error for TaskDoneTooManyTimes {}
