//! Owned-buffer operations: the proactor's verbs.
//!
//! Each op is a future that owns everything the kernel may touch. Awaiting it submits it to
//! the current loop's backend and parks the task on its completion token; the result comes
//! back together with the buffers: `(io::Result<usize>, B)`.
//!
//! ```
//! use std::os::fd::AsRawFd;
//! # ringloop::run(async {
//! let (rx, tx) = std::io::pipe().unwrap();
//! let (res, _) = ringloop::op::write(tx.as_raw_fd(), b"hello".as_slice()).await;
//! assert_eq!(res.unwrap(), 5);
//! let (res, buf) = ringloop::op::read(rx.as_raw_fd(), Vec::with_capacity(16)).await;
//! assert_eq!(res.unwrap(), 5);
//! assert_eq!(buf, b"hello");
//! # });
//! ```
//!
//! # Cancellation
//!
//! Dropping an op that the kernel owns queues `IORING_OP_ASYNC_CANCEL` (epoll: removes the
//! waiting op); its buffers stay in the runtime's op table until the op's own completion
//! arrives and are dropped then, exactly once. An op dropped in the loop tick that started it
//! never reaches the kernel at all. [`Op::cancel`] cancels and returns the op's *real*
//! outcome: if the kernel finished first, the data is there, not lost. A plain drop cannot
//! return anything, so a read the kernel completed just before the drop takes its bytes with
//! it: await `cancel()` where that matters, or use the [`net`](crate::net) types, whose
//! streams and listeners adopt a dropped read or accept and hand its result to the next one.
//!
//! # Who owns what
//!
//! Each file of this module defines one op family and owns both of its halves, side by side:
//! the SQE for io_uring, and the readiness half (a `driver::Syscall`): which fd it waits on
//! and for what, and the op's own call that performs it (`preadv2`, `sendmsg`, `statx`, ...).
//! `readiness.rs` holds what several ops share (the read/write call with its ways around a
//! kernel that refuses `RWF_NOWAIT`), `fs_call.rs` the filesystem calls. The driver knows no
//! op by name: it submits the SQE, or waits for the fd and performs the call, or (where the
//! kernel lacks the op's opcode, which each op declares) performs the call on the blocking
//! pool. An op may also be made to transfer less than it asked for, as the kernel may
//! (`Describe::limit`), for fault injection.

mod accept_multi;
mod close;
mod cmsg;
mod file;
mod fs;
mod fs_call;
mod keep_fd;
mod msg;
mod net;
mod nop;
pub(crate) mod pipe;
mod poll;
mod readiness;
mod recv_multi;
mod registration;
mod rw;
mod rwv;
mod stream;
pub(crate) mod waitid;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::driver::{self, Completion, CompletionToken, DriverRef, Start};

pub use accept_multi::{AcceptMulti, accept_multishot};
pub use close::{Close, close};
pub(crate) use cmsg::set_int_option;
pub use cmsg::{Control, ControlMessage};
pub use file::{Fallocate, Fsync, Ftruncate, Splice, fallocate, fsync, ftruncate, splice};
pub use fs::{
    LinkAt, MkdirAt, OpenAt, RenameAt, Statx, SymlinkAt, UnlinkAt, linkat, mkdirat, openat,
    renameat, statx, symlinkat, unlinkat,
};
pub(crate) use keep_fd::{KeepFd, keep_fd};
pub use msg::{
    Received, RecvMsg, SendMsg, SendMsgVectored, control_space, fds_space, recvmsg, sendmsg,
    sendmsg_vectored,
};
pub(crate) use net::recv_stream;
pub use net::{Accept, Connect, Recv, Send, accept, connect, recv, send};
pub use nop::{Nop, nop};
pub use poll::{Interest, PollAdd, PollMultishot, poll_add, poll_multishot};
pub(crate) use recv_multi::recv_multishot_stream;
pub use recv_multi::{RecvMulti, recv_multishot};
pub(crate) use registration::Registration;
pub use rw::{Read, Write, read, read_at, write, write_at};
pub use rwv::{ReadVectored, WriteVectored, readv, readv_at, writev, writev_at};
pub use stream::{Multishot, OpStream};

#[cfg(test)]
mod limit_tests;
#[cfg(test)]
mod resubmit_tests;

pub(crate) mod sealed {
    use crate::driver::{Completion, Describe};

    /// The op-specific half: how it is described and how its completion becomes output.
    pub trait OperationImpl: Describe + Unpin + 'static {
        /// The op's output.
        type Output;
        /// The result is a new fd; an orphan's fd must be closed.
        const RETURNS_FD: bool = false;
        /// Turns the completion into the op's output, giving back owned buffers.
        fn complete(self, done: Completion) -> Self::Output;
        /// Gives back what a completion nobody awaits carries. By default: closes the fd of
        /// an op that [`RETURNS_FD`](Self::RETURNS_FD).
        fn release(&mut self, done: Completion) {
            if Self::RETURNS_FD && done.result >= 0 {
                // SAFETY: the kernel created this descriptor for an op nobody awaits; we own it.
                unsafe { libc::close(done.result) };
            }
        }
    }
}

/// Ops a task may start in one poll before it must yield.
const COOP_BUDGET: u32 = 128;

/// Gives the task about to be polled a fresh budget (called by the loop before each poll).
///
/// On epoll, an op on a ready fd completes inside its first poll; without a budget a task
/// doing back-to-back reads or writes would never yield and could starve timers, other tasks
/// and I/O. Each op started spends one unit; once the budget is spent, a new op is still
/// submitted (it owns its slot and buffers like any other) but the backend is told to defer
/// it to the next `park` instead of performing it inside this poll, so the task returns
/// `Pending`. A deferred op that is then dropped never ran: nothing is lost. On io_uring no op
/// completes at submission, so the budget changes nothing there.
///
/// The count is per thread (the loop context's `Thread`): one poll runs at a time on a thread.
#[inline]
pub(crate) fn reset_budget() {
    driver::context::with_thread(|t| t.ops_this_poll.set(0));
}

#[inline]
fn take_budget() -> bool {
    driver::context::with_thread(|t| {
        let started = t.ops_this_poll.get();
        if started >= COOP_BUDGET {
            return false;
        }
        t.ops_this_poll.set(started + 1);
        true
    })
}

/// An operation ringloop can hand to a backend. Implemented by the types in this module.
pub trait Operation: sealed::OperationImpl {}
impl<T: sealed::OperationImpl> Operation for T {}

/// A submitted (or about to be submitted) operation; await it for its output.
#[must_use = "an op does nothing until awaited"]
pub struct Op<T: Operation> {
    data: Option<T>,
    state: State,
}

enum State {
    /// Not handed to the backend yet; `at_once`: see [`Op::at_once`].
    Idle {
        deadline: Option<Duration>,
        at_once: bool,
    },
    /// The backend owns it; `token` identifies its slot.
    InFlight {
        token: CompletionToken,
        driver: DriverRef,
        /// Times the op was submitted again after an `ECANCELED` the kernel gave unasked (see
        /// [`Driver::poll_op`](crate::driver::Driver::poll_op)).
        resubmits: u32,
    },
    /// Output delivered.
    Done,
}

impl<T: Operation> Op<T> {
    pub(crate) fn new(data: T) -> Self {
        Op {
            data: Some(data),
            state: State::Idle {
                deadline: None,
                at_once: false,
            },
        }
    }

    /// Bounds the op with a kernel linked timeout (`IORING_OP_LINK_TIMEOUT`; a timer on epoll):
    /// when `dur` passes first the op fails with [`io::ErrorKind::TimedOut`].
    /// Has no effect once the op has been polled.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use std::time::Duration;
    /// # ringloop::run(async {
    /// let (rx, _tx) = std::io::pipe().unwrap();
    /// let (res, _buf) = ringloop::op::read(rx.as_raw_fd(), Vec::with_capacity(8))
    ///     .timeout(Duration::from_millis(10))
    ///     .await;
    /// assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    /// # });
    /// ```
    pub fn timeout(mut self, dur: Duration) -> Self {
        if let State::Idle { deadline, .. } = &mut self.state {
            *deadline = Some(dur);
        }
        self
    }

    /// Performs the op at once when first polled, without waiting, on io_uring too (as epoll
    /// does on a ready fd): the kernel gets it only if the call would wait. For a send made
    /// when nothing else is ready to run; see [`Start::AtOnce`]. An op with a deadline or a
    /// spent budget is submitted as usual.
    pub(crate) fn at_once(mut self) -> Self {
        if let State::Idle { at_once, .. } = &mut self.state {
            *at_once = true;
        }
        self
    }

    /// Cancels the op and resolves to its real outcome: the data if the kernel completed it
    /// before the cancel took effect, else an `ECANCELED` error. An op never polled is not
    /// submitted at all.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// # ringloop::run(async {
    /// let (rx, _tx) = std::io::pipe().unwrap();
    /// let mut op = ringloop::op::read(rx.as_raw_fd(), Vec::with_capacity(8));
    /// // Submit it (poll once), then change our mind.
    /// let _ = std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut op).poll(cx))).await;
    /// let (res, _buf) = op.cancel().await;
    /// assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
    /// # });
    /// # use std::future::Future;
    /// ```
    pub fn cancel(self) -> Cancel<T> {
        Cancel {
            op: self,
            requested: false,
        }
    }

    /// Whether the backend owns the op now (submitted, result not yet taken).
    pub(crate) fn is_in_flight(&self) -> bool {
        matches!(self.state, State::InFlight { .. })
    }

    fn poll_op(&mut self, cx: &mut Context<'_>) -> Poll<T::Output> {
        if let State::Idle { deadline, at_once } = self.state {
            let driver = driver::current()
                .expect("a ringloop op was polled outside a ringloop runtime (use ringloop::run)");
            let data = self.data.as_mut().expect("op data present until done");
            let start = if !take_budget() {
                Start::Defer
            } else if at_once {
                Start::AtOnce
            } else {
                Start::Submit
            };
            let token = driver.borrow_mut().submit(data, deadline, start);
            self.state = State::InFlight {
                token,
                driver,
                resubmits: 0,
            };
        }
        let done = match &mut self.state {
            State::InFlight {
                token,
                driver,
                resubmits,
            } => {
                let data = self.data.as_mut().expect("op data present until done");
                let polled = driver
                    .borrow_mut()
                    .poll_op(token, data, resubmits, cx.waker());
                match polled {
                    None => return Poll::Pending,
                    Some(done) => done,
                }
            }
            State::Done => panic!("a ringloop op was polled after it completed"),
            State::Idle { .. } => unreachable!("submitted above"),
        };
        self.state = State::Done;
        let data = self.data.take().expect("op data present until done");
        Poll::Ready(data.complete(done))
    }
}

impl<T: Operation> Future for Op<T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        self.get_mut().poll_op(cx)
    }
}

impl<T: Operation> Drop for Op<T> {
    fn drop(&mut self) {
        if let State::InFlight { token, driver, .. } = &self.state
            && let Some(data) = self.data.take()
        {
            orphan(driver, *token, data);
        }
    }
}

/// Future returned by [`Op::cancel`].
#[must_use = "cancel does nothing until awaited"]
pub struct Cancel<T: Operation> {
    op: Op<T>,
    requested: bool,
}

impl<T: Operation> Future for Cancel<T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = self.get_mut();
        match &this.op.state {
            State::Idle { .. } => {
                this.op.state = State::Done;
                let data = this.op.data.take().expect("op data present until done");
                Poll::Ready(data.complete(Completion {
                    result: -libc::ECANCELED,
                    flags: 0,
                }))
            }
            State::InFlight { token, driver, .. } => {
                if !this.requested {
                    this.requested = true;
                    driver.borrow_mut().cancel(*token);
                }
                this.op.poll_op(cx)
            }
            State::Done => panic!("a ringloop op was cancelled after it completed"),
        }
    }
}

/// Hands the resources of an op whose future is gone to the op table, which keeps them until
/// the kernel is done (and cancels the op).
///
/// An op dropped from inside the driver (by a waker it runs, or by the drop of another
/// orphan's resources) is handed over as soon as the driver is free again (see
/// [`DriverCell::orphan`](crate::driver::DriverCell::orphan)): it is cancelled and its slot
/// freed like any other orphan's.
pub(crate) fn orphan<T: Operation>(driver: &DriverRef, token: CompletionToken, data: T) {
    driver.orphan(token, Box::new(Abandoned(data)));
}

/// An op's data in the op table after its future is gone.
struct Abandoned<T>(T);

impl<T: Operation> driver::Orphan for Abandoned<T> {
    fn release(&mut self, done: Completion) {
        self.0.release(done);
    }
}

/// The output of a read-like op: the count, and the buffer with the received bytes marked
/// initialised.
pub(crate) fn filled<B: crate::buf::IoBufMut>(
    mut buf: B,
    done: Completion,
) -> (io::Result<usize>, B) {
    let res = to_result(done.result);
    if let Ok(n) = res {
        // SAFETY: the kernel wrote `n` bytes at the start of the spare capacity.
        unsafe { crate::buf::mark_filled(&mut buf, n) };
    }
    (res, buf)
}

/// Converts a CQE-style result into `io::Result<usize>`.
pub(crate) fn to_result(result: i32) -> io::Result<usize> {
    if result < 0 {
        Err(io::Error::from_raw_os_error(-result))
    } else {
        Ok(result as usize)
    }
}
