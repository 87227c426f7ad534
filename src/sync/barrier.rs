//! [`Barrier`]: asyncio's `asyncio.Barrier` (Python 3.11).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use super::WaitList;

/// Makes `parties` tasks wait for each other, as asyncio's `asyncio.Barrier`: each
/// [`wait`](Barrier::wait) blocks until `parties` tasks are waiting, then all of them go on
/// together and the barrier is ready for the next round.
///
/// ```
/// use std::rc::Rc;
/// use ringloop::sync::Barrier;
///
/// ringloop::run(async {
///     let barrier = Rc::new(Barrier::new(3));
///     let tasks: Vec<_> = (0..3)
///         .map(|_| {
///             let barrier = barrier.clone();
///             ringloop::spawn(async move { barrier.wait().await.unwrap() })
///         })
///         .collect();
///     let mut arrivals = Vec::new();
///     for task in tasks {
///         arrivals.push(task.await.unwrap());
///     }
///     arrivals.sort();
///     assert_eq!(arrivals, [0, 1, 2]);
/// });
/// ```
///
/// [`abort`](Barrier::abort) breaks the barrier: every waiting task and every later `wait` gets
/// [`BrokenBarrierError`] until [`reset`](Barrier::reset), which also breaks the current round
/// for the tasks waiting in it and then makes the barrier usable again.
///
/// # Cancellation
///
/// A task cancelled while waiting leaves the round (the round then needs one more task), as
/// in asyncio; the barrier does not break.
///
/// # Differences from asyncio
///
/// A single-loop type (share it with `Rc`). asyncio blocks tasks arriving while the last round
/// drains; here a round ends at once for all its tasks, so a task arriving after it is simply
/// the first of the next round.
pub struct Barrier {
    parties: usize,
    /// Tasks waiting in the current round.
    count: Cell<usize>,
    round: RefCell<Rc<Round>>,
    broken: Cell<bool>,
    waiters: WaitList,
}

/// One round of a [`Barrier`]: how it ended, once it has.
#[derive(Default)]
struct Round {
    ended: Cell<Option<Result<(), BrokenBarrierError>>>,
}

/// The barrier was broken ([`Barrier::abort`]) or reset ([`Barrier::reset`]) while the task
/// waited, or was broken when it arrived (asyncio's `BrokenBarrierError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokenBarrierError;

impl fmt::Display for BrokenBarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the barrier is broken")
    }
}

impl std::error::Error for BrokenBarrierError {}

/// Leaves the round if dropped before it ended: a `wait` cancelled while waiting.
struct Leave<'a> {
    barrier: &'a Barrier,
    round: Rc<Round>,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        if self.round.ended.get().is_none() {
            self.barrier.count.set(self.barrier.count.get() - 1);
        }
    }
}

impl Barrier {
    /// A barrier for `parties` tasks.
    ///
    /// # Panics
    ///
    /// When `parties` is zero (asyncio raises `ValueError`).
    pub fn new(parties: usize) -> Barrier {
        assert!(parties > 0, "a Barrier needs at least one party");
        Barrier {
            parties,
            count: Cell::new(0),
            round: RefCell::default(),
            broken: Cell::new(false),
            waiters: WaitList::default(),
        }
    }

    /// Waits until `parties` tasks wait; returns this task's arrival index in its round, from
    /// 0 to `parties - 1` (the last to arrive gets `parties - 1` and releases the others).
    pub async fn wait(&self) -> Result<usize, BrokenBarrierError> {
        if self.broken.get() {
            return Err(BrokenBarrierError);
        }
        let index = self.count.get();
        if index + 1 == self.parties {
            self.end_round(Ok(()));
            return Ok(index);
        }
        self.count.set(index + 1);
        let leave = Leave {
            barrier: self,
            round: self.round.borrow().clone(),
        };
        loop {
            if let Some(ended) = leave.round.ended.get() {
                return ended.map(|()| index);
            }
            self.waiters.wait().await;
        }
    }

    /// Breaks the barrier: the tasks waiting and every later `wait` get
    /// [`BrokenBarrierError`], until [`reset`](Barrier::reset).
    pub fn abort(&self) {
        self.broken.set(true);
        self.end_round(Err(BrokenBarrierError));
    }

    /// Ends the current round with [`BrokenBarrierError`] for the tasks waiting in it, and
    /// makes the barrier usable again (also after [`abort`](Barrier::abort)).
    pub fn reset(&self) {
        self.end_round(Err(BrokenBarrierError));
        self.broken.set(false);
    }

    /// The number of tasks a round needs.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// The tasks waiting in the current round.
    pub fn n_waiting(&self) -> usize {
        self.count.get()
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        self.broken.get()
    }

    fn end_round(&self, how: Result<(), BrokenBarrierError>) {
        let ended = self.round.replace(Rc::default());
        ended.ended.set(Some(how));
        self.count.set(0);
        self.waiters.notify_all();
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .finish()
    }
}
