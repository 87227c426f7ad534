//! Completion tokens and the op table.
//!
//! Every operation handed to a backend gets a slot in [`OpTable`]; the slot's
//! [`CompletionToken`] (slab index + generation) is the `user_data` of its SQE, so a late or
//! duplicate completion can never reach a reused slot.
//!
//! The life of a slot is one enum, [`Lifecycle`]:
//!
//! ```text
//!  Submitted(waker) --completion--> Completed(result, flags) --polled--> slot freed
//!       |
//!       +--future dropped--> Orphaned(resources) --final completion--> resources dropped, slot freed
//!
//!  Streaming(queue, waker)   multishot: each completion with F_MORE is queued; the first one
//!       |                    without F_MORE ends the stream; the slot is freed once drained
//!       +--stream dropped--> Orphaned (as above: freed by the final completion)
//! ```
//!
//! An orphan keeps everything the kernel may still touch (buffers, iovecs) until the op's own
//! final completion arrives. Every completion that reaches an orphan — and every one a dropped
//! stream left untaken — goes through [`Orphan::release`], so what it carries is given back:
//! an fd is closed, a provided buffer returns to its ring.

use std::collections::VecDeque;
use std::task::{Poll, Waker};

use slab::Slab;

/// Identifies one in-flight operation: slab index in the low 32 bits, generation in the high 32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletionToken(u64);

impl CompletionToken {
    /// Completions carrying this are the runtime's own bookkeeping (cancels, link timeouts).
    pub const IGNORED: u64 = u64::MAX;
    /// The completion of the read on the wake-up eventfd.
    pub const WAKE: u64 = u64::MAX - 1;

    #[inline]
    fn new(index: usize, generation: u32) -> Self {
        CompletionToken(index as u64 | (u64::from(generation) << 32))
    }

    /// The value placed in `user_data`.
    #[inline]
    pub fn user_data(self) -> u64 {
        self.0
    }

    /// Reads a token back from `user_data`.
    #[inline]
    pub fn from_user_data(data: u64) -> Self {
        CompletionToken(data)
    }

    #[inline]
    fn index(self) -> usize {
        (self.0 & u64::from(u32::MAX)) as usize
    }

    #[inline]
    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// Where an operation is in its life. Each variant states what it owns.
pub enum Lifecycle {
    /// Handed to the backend; the awaiting task's waker (none until first polled).
    Submitted { waker: Option<Waker> },
    /// The backend posted the result; the awaiting future has not collected it yet.
    Completed { result: i32, flags: u32 },
    /// The awaiting future was dropped while the kernel still owned the op. `resources` are
    /// the buffers and structures the kernel may touch; each completion that arrives is
    /// released through them, and they are dropped with the op's final completion.
    Orphaned { resources: Box<dyn Orphan> },
    /// A multishot op (boxed: rarer, and larger than the other states).
    Streaming(Box<Stream>),
}

/// The state of a multishot op: completions not yet taken by the stream, the stream's waker,
/// and whether the final completion (without `F_MORE`) has arrived.
pub struct Stream {
    queue: VecDeque<Completion>,
    waker: Option<Waker>,
    ended: bool,
}

/// What an op whose future is gone leaves in the table: everything the kernel may still touch,
/// and the knowledge of what a completion carries that must be given back.
pub trait Orphan: 'static {
    /// Gives back what `done` carries (close a returned fd, recycle a provided buffer). Called
    /// once for each completion the op posts after its future is gone, or had posted untaken.
    fn release(&mut self, done: Completion);
}

/// `IORING_CQE_F_MORE`: more completions will follow for this op.
pub const F_MORE: u32 = 1 << 1;

impl Lifecycle {
    /// Whether the backend may still post completions for the op.
    fn is_live(&self) -> bool {
        match self {
            Lifecycle::Completed { .. } => false,
            Lifecycle::Streaming(stream) => !stream.ended,
            _ => true,
        }
    }
}

struct Slot {
    generation: u32,
    lifecycle: Lifecycle,
    /// An explicit cancel was asked for: `ECANCELED` is then the caller's own doing.
    cancel_requested: bool,
    /// A linked timeout guards the op: an `ECANCELED` it did not ask for means it expired.
    has_deadline: bool,
    /// The backend's own note about the op (-1 when none): epoll records the fd the op waits
    /// on; io_uring the flush epoch in which its SQE was queued.
    note: i64,
}

/// Slab-indexed table of every operation the backend owns.
pub struct OpTable {
    slots: Slab<Slot>,
    next_generation: u32,
    /// While set, completions are recorded here instead of delivered (the fault injector
    /// delays and reorders them; see `faults.rs`).
    captured: Option<Vec<(CompletionToken, i32, u32)>>,
}

/// What a finished operation gives back.
#[derive(Clone, Copy, Debug)]
pub struct Completion {
    /// The syscall result: a count, an fd, or a negated errno.
    pub result: i32,
    /// CQE flags.
    pub flags: u32,
}

impl OpTable {
    pub fn new() -> Self {
        OpTable {
            slots: Slab::with_capacity(256),
            next_generation: 1,
            captured: None,
        }
    }

    /// Number of operations the backend owns, orphans included.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Opens a slot for a new operation (a stream of completions when `multishot`).
    #[inline]
    pub fn insert(&mut self, has_deadline: bool, multishot: bool) -> CompletionToken {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let lifecycle = if multishot {
            Lifecycle::Streaming(Box::new(Stream {
                queue: VecDeque::new(),
                waker: None,
                ended: false,
            }))
        } else {
            Lifecycle::Submitted { waker: None }
        };
        let index = self.slots.insert(Slot {
            generation,
            lifecycle,
            cancel_requested: false,
            has_deadline,
            note: -1,
        });
        assert!(index < u32::MAX as usize - 2, "op table index overflow");
        CompletionToken::new(index, generation)
    }

    #[inline]
    fn slot_mut(&mut self, token: CompletionToken) -> Option<&mut Slot> {
        self.slots
            .get_mut(token.index())
            .filter(|slot| slot.generation == token.generation())
    }

    /// Records a completion posted by the backend; wakes the awaiting task, or drops an
    /// orphan's resources. Unknown or stale tokens are ignored.
    #[inline]
    pub fn complete(&mut self, token: CompletionToken, result: i32, flags: u32) {
        if let Some(captured) = &mut self.captured {
            captured.push((token, result, flags));
            return;
        }
        self.deliver(token, result, flags);
    }

    /// Records completions in `into` instead of delivering them, until
    /// [`end_capture`](Self::end_capture).
    pub fn start_capture(&mut self, into: Vec<(CompletionToken, i32, u32)>) {
        self.captured = Some(into);
    }

    /// Delivers completions again; returns those recorded since
    /// [`start_capture`](Self::start_capture), in the order the backend posted them.
    pub fn end_capture(&mut self) -> Vec<(CompletionToken, i32, u32)> {
        self.captured.take().unwrap_or_default()
    }

    /// Records a completion: wakes the awaiting task, or drops an orphan's resources.
    pub fn deliver(&mut self, token: CompletionToken, result: i32, flags: u32) {
        let Some(slot) = self.slot_mut(token) else {
            return;
        };
        let result = if result == -libc::ECANCELED && slot.has_deadline && !slot.cancel_requested {
            -libc::ETIMEDOUT
        } else {
            result
        };
        let more = flags & F_MORE != 0;
        match &mut slot.lifecycle {
            Lifecycle::Streaming(stream) => {
                stream.queue.push_back(Completion { result, flags });
                stream.ended |= !more;
                if let Some(w) = stream.waker.take() {
                    w.wake();
                }
                return;
            }
            Lifecycle::Orphaned { resources } => {
                resources.release(Completion { result, flags });
                if !more {
                    // The final completion: the kernel is done with the resources.
                    self.slots.remove(token.index());
                }
                return;
            }
            _ => {}
        }
        match std::mem::replace(&mut slot.lifecycle, Lifecycle::Completed { result, flags }) {
            Lifecycle::Submitted { waker } => {
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            Lifecycle::Orphaned { .. } | Lifecycle::Completed { .. } | Lifecycle::Streaming(_) => {}
        }
    }

    /// Polls a multishot op: the next completion, `None` once the final one was taken
    /// (the slot is then freed), or pending with `waker` parked.
    pub fn poll_stream(
        &mut self,
        token: CompletionToken,
        waker: &Waker,
    ) -> Poll<Option<Completion>> {
        let Some(slot) = self.slot_mut(token) else {
            return Poll::Ready(None);
        };
        let Lifecycle::Streaming(stream) = &mut slot.lifecycle else {
            return Poll::Ready(None);
        };
        if let Some(done) = stream.queue.pop_front() {
            return Poll::Ready(Some(done));
        }
        if stream.ended {
            self.slots.remove(token.index());
            return Poll::Ready(None);
        }
        match &mut stream.waker {
            Some(w) if w.will_wake(waker) => {}
            parked => *parked = Some(waker.clone()),
        }
        Poll::Pending
    }

    /// Polls an operation: its completion if posted (freeing the slot), else parks `waker`.
    #[inline]
    pub fn poll(&mut self, token: CompletionToken, waker: &Waker) -> Option<Completion> {
        let slot = self.slot_mut(token)?;
        match &mut slot.lifecycle {
            Lifecycle::Completed { result, flags } => {
                let done = Completion {
                    result: *result,
                    flags: *flags,
                };
                self.slots.remove(token.index());
                Some(done)
            }
            Lifecycle::Submitted { waker: parked } => {
                match parked {
                    Some(w) if w.will_wake(waker) => {}
                    _ => *parked = Some(waker.clone()),
                }
                None
            }
            Lifecycle::Orphaned { .. } | Lifecycle::Streaming(_) => None,
        }
    }

    /// Whether the op completed with an `ECANCELED` that no one asked for: no cancel was
    /// requested and no linked timeout guards it (with one, that `ECANCELED` reads as
    /// `ETIMEDOUT`). On io_uring this is the kernel giving up on work it never started (see
    /// [`Driver::poll_op`](super::Driver::poll_op)).
    pub fn cancelled_unasked(&self, token: CompletionToken) -> bool {
        self.slots.get(token.index()).is_some_and(|slot| {
            slot.generation == token.generation()
                && !slot.cancel_requested
                && !slot.has_deadline
                && matches!(
                    slot.lifecycle,
                    Lifecycle::Completed { result, .. } if result == -libc::ECANCELED
                )
        })
    }

    /// Frees the slot of a completed op whose completion nobody will take (it is resubmitted).
    pub fn discard_completed(&mut self, token: CompletionToken) {
        if self
            .slot_mut(token)
            .is_some_and(|slot| matches!(slot.lifecycle, Lifecycle::Completed { .. }))
        {
            self.slots.remove(token.index());
        }
    }

    /// The awaiting future is gone. Returns true when the op is still in the kernel's hands
    /// (the caller must then queue a cancel); false when it had already completed and
    /// everything is released.
    pub fn orphan(&mut self, token: CompletionToken, mut resources: Box<dyn Orphan>) -> bool {
        let Some(slot) = self.slot_mut(token) else {
            return false;
        };
        if !slot.lifecycle.is_live() {
            // Already finished: what a completed op or a stream's queue carries is released.
            let slot = self.slots.remove(token.index());
            match slot.lifecycle {
                Lifecycle::Completed { result, flags } => {
                    resources.release(Completion { result, flags })
                }
                Lifecycle::Streaming(mut stream) => {
                    stream.queue.drain(..).for_each(|c| resources.release(c))
                }
                _ => {}
            }
            return false;
        }
        // Completions a stream had queued but nobody took (fds, buffers) are released now.
        if let Lifecycle::Streaming(stream) = &mut slot.lifecycle {
            stream.queue.drain(..).for_each(|c| resources.release(c));
        }
        slot.lifecycle = Lifecycle::Orphaned { resources };
        true
    }

    /// Marks an explicit cancel. Returns false if the op already completed (nothing to cancel).
    pub fn request_cancel(&mut self, token: CompletionToken) -> bool {
        match self.slot_mut(token) {
            Some(slot) => {
                slot.cancel_requested = true;
                slot.lifecycle.is_live()
            }
            None => false,
        }
    }

    /// Whether the backend is done with the op: it is known and will post no more completions.
    pub fn is_finished(&self, token: CompletionToken) -> bool {
        self.slots
            .get(token.index())
            .is_some_and(|s| s.generation == token.generation() && !s.lifecycle.is_live())
    }

    /// Ops the backend may still post completions for.
    pub fn live(&self) -> usize {
        self.slots
            .iter()
            .filter(|(_, s)| s.lifecycle.is_live())
            .count()
    }

    /// Whether the op has not completed yet.
    pub fn is_pending(&self, token: CompletionToken) -> bool {
        self.slots.get(token.index()).is_some_and(|s| {
            s.generation == token.generation()
                && !matches!(s.lifecycle, Lifecycle::Completed { .. })
        })
    }

    /// Records the backend's note about a live op (see `Slot::note`).
    pub fn set_note(&mut self, token: CompletionToken, note: i64) {
        if let Some(slot) = self.slot_mut(token) {
            slot.note = note;
        }
    }

    /// The backend's note about an op, if the op is known and a note was set.
    pub fn note(&self, token: CompletionToken) -> Option<i64> {
        self.slots
            .get(token.index())
            .filter(|s| s.generation == token.generation() && s.note >= 0)
            .map(|s| s.note)
    }

    /// Tokens of every operation still owned by the backend.
    pub fn pending_tokens(&self) -> Vec<CompletionToken> {
        self.slots
            .iter()
            .filter(|(_, s)| s.lifecycle.is_live())
            .map(|(i, s)| CompletionToken::new(i, s.generation))
            .collect()
    }

    /// Shutdown gave up waiting: the kernel may still write into the resources of the ops it
    /// has not finished, so those are leaked rather than freed. Finished ops keep their slots:
    /// their futures may still collect the result (or, dropped, release what it carries).
    pub fn leak_remaining(&mut self) {
        let live: Vec<usize> = self
            .slots
            .iter()
            .filter(|(_, s)| s.lifecycle.is_live())
            .map(|(i, _)| i)
            .collect();
        for i in live {
            if let Lifecycle::Orphaned { resources } = self.slots.remove(i).lifecycle {
                std::mem::forget(resources);
            }
        }
    }
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
