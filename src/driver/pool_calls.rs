//! Ops performed on the blocking pool, their completions posted back to the loop.
//!
//! Two kinds of op run there: calls the epoll backend cannot poll (filesystem calls, regular
//! files), and ops whose opcode the backend lacks (an io_uring kernel without
//! `IORING_OP_FTRUNCATE`), which the driver routes here. Either way the op keeps its slot in
//! the op table, which owns its memory until the completion, and a pool thread performs its
//! [`Syscall`] in [`Mode::Blocking`]. The result is posted to a queue of this loop's and the
//! loop is woken; the next park moves it into the table. Such a call cannot be interrupted:
//! a cancel waits for it.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::syscall::{Mode, Syscall};
use super::token::{CompletionToken, OpTable};
use super::wake::Unparker;
use crate::blocking::Pool;

/// Completions posted by pool threads: `(user_data, result, flags)`.
#[derive(Default)]
struct Posted {
    done: Mutex<Vec<(u64, i32, u32)>>,
    /// Signalled with each post, for a shutdown that waits without the backend.
    posted: Condvar,
}

/// One loop's ops on the blocking pool.
pub struct PoolCalls {
    pool: Pool,
    unparker: Arc<Unparker>,
    posted: Arc<Posted>,
    /// Ops handed to the pool whose completion has not been collected.
    in_flight: usize,
    /// Scratch space for `collect`.
    taken: Vec<(u64, i32, u32)>,
}

/// A call whose pointers may cross to a pool thread.
struct SendSyscall(Syscall);

// SAFETY: the pointers in a Syscall refer to memory the op table owns (directly or through an
// orphan) until the op's completion is posted back to the loop, so no other thread touches it
// while the pool thread performs the call.
unsafe impl Send for SendSyscall {}

impl PoolCalls {
    pub fn new(pool: Pool, unparker: Arc<Unparker>) -> PoolCalls {
        PoolCalls {
            pool,
            unparker,
            posted: Arc::default(),
            in_flight: 0,
            taken: Vec::new(),
        }
    }

    /// Performs `syscall` on a pool thread; its completion is collected by a later
    /// [`collect`](Self::collect).
    pub fn submit(&mut self, table: &mut OpTable, token: CompletionToken, syscall: Syscall) {
        let call = SendSyscall(syscall);
        let (posted, unparker) = (self.posted.clone(), self.unparker.clone());
        let data = token.user_data();
        self.in_flight += 1;
        // No backend note: the op waits on nothing a backend could find or cancel.
        table.set_note(token, -1);
        self.pool.execute(Box::new(move || {
            let call = call;
            // SAFETY: the op table keeps the op's memory alive until this completion is posted.
            let done = unsafe { call.0.perform(Mode::Blocking) };
            let mut queue = posted.done.lock().unwrap_or_else(|e| e.into_inner());
            queue.push((data, done.result, done.flags));
            drop(queue);
            posted.posted.notify_all();
            unparker.unpark();
        }));
    }

    /// Moves the posted completions into `table`. True if there were any.
    ///
    /// Asked on every park (twice), almost always with nothing on the pool: that check is
    /// inlined into the park, and the call with its register saves is made only when ops are
    /// out (it cost a `yield` 50 instructions per loop turn).
    #[inline]
    pub fn collect(&mut self, table: &mut OpTable) -> bool {
        if self.in_flight == 0 {
            return false;
        }
        self.collect_posted(table)
    }

    #[inline(never)]
    fn collect_posted(&mut self, table: &mut OpTable) -> bool {
        std::mem::swap(
            &mut self.taken,
            &mut self.posted.done.lock().unwrap_or_else(|e| e.into_inner()),
        );
        let any = !self.taken.is_empty();
        for (data, result, flags) in self.taken.drain(..) {
            self.in_flight -= 1;
            table.complete(CompletionToken::from_user_data(data), result, flags);
        }
        any
    }

    /// Waits up to `grace` for every op on the pool to complete, collecting their
    /// completions. Needs no backend: the pool's posts are waited for directly.
    pub fn drain(&mut self, table: &mut OpTable, grace: Duration) {
        let started = Instant::now();
        while self.in_flight > 0 {
            self.collect(table);
            let Some(left) = grace.checked_sub(started.elapsed()) else {
                return;
            };
            if self.in_flight == 0 {
                return;
            }
            let queue = self.posted.done.lock().unwrap_or_else(|e| e.into_inner());
            if queue.is_empty() {
                // A post after the check above is not missed: it needs the lock we hold.
                let waited = self.posted.posted.wait_timeout(queue, left);
                drop(waited.unwrap_or_else(|e| e.into_inner()));
            }
        }
    }
}
