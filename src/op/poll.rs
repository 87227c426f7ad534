//! Readiness of an arbitrary fd — asyncio's `add_reader`/`add_writer` as an op.
//!
//! io_uring: `IORING_OP_POLL_ADD`; epoll: wait for the fd's readiness, then `poll(2)` it.

use std::io;
use std::ops::BitOr;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types::Fd};

use super::readiness::cqe_result;
use super::stream::{OpStream, sealed::MultishotImpl};
use super::{Op, sealed::OperationImpl, to_result};
use crate::driver::{Completion, Describe, Mode, Perform, Performed, Syscall};

/// Readiness to wait for, or that was seen.
///
/// ```
/// use ringloop::op::Interest;
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest(i16);

impl Interest {
    /// Data can be read (or the peer hung up: a read will not block).
    pub const READABLE: Interest = Interest(libc::POLLIN);
    /// Data can be written.
    pub const WRITABLE: Interest = Interest(libc::POLLOUT);

    /// Whether this includes readability.
    pub fn is_readable(self) -> bool {
        self.0 & libc::POLLIN != 0
    }
    /// Whether this includes writability.
    pub fn is_writable(self) -> bool {
        self.0 & libc::POLLOUT != 0
    }
    /// Whether the fd reported an error condition.
    pub fn is_error(self) -> bool {
        self.0 & libc::POLLERR != 0
    }
    /// Whether the peer hung up.
    pub fn is_hup(self) -> bool {
        self.0 & libc::POLLHUP != 0
    }

    fn from_revents(revents: i16) -> Interest {
        let mut bits = revents;
        // A hang-up or error makes both directions "ready": the next call will not block.
        if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            bits |= libc::POLLIN;
        }
        Interest(bits)
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        Interest(self.0 | rhs.0)
    }
}

/// The readiness op; see [`poll_add`].
pub struct PollAdd {
    fd: RawFd,
    interest: Interest,
}

/// Resolves when `fd` is ready for `interest`, with the readiness seen.
///
/// ```
/// use std::os::fd::AsRawFd;
/// use ringloop::op::{poll_add, Interest};
/// # ringloop::run(async {
/// let (rx, tx) = std::io::pipe().unwrap();
/// std::io::Write::write_all(&mut &tx, b"!").unwrap();
/// let ready = poll_add(rx.as_raw_fd(), Interest::READABLE).await.unwrap();
/// assert!(ready.is_readable());
/// # });
/// ```
pub fn poll_add(fd: RawFd, interest: Interest) -> Op<PollAdd> {
    Op::new(PollAdd { fd, interest })
}

impl Describe for PollAdd {
    fn opcode(&self) -> u8 {
        opcode::PollAdd::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(Fd(self.fd), self.interest.0 as u16 as u32).build()
    }
    fn syscall(&mut self) -> Syscall {
        PollCall::new(self.fd, self.interest.0).syscall()
    }
}

/// `poll(2)` of `fd` for `events` once the fd is ready that way; the result is the revents
/// mask. Not ready (a zero-timeout poll said nothing): `-EAGAIN`.
#[derive(Clone, Copy)]
pub(super) struct PollCall {
    fd: RawFd,
    events: i16,
}

impl PollCall {
    pub(super) fn new(fd: RawFd, events: i16) -> PollCall {
        PollCall { fd, events }
    }

    /// The readiness half of a poll: wait for the directions asked, then poll.
    pub(super) fn syscall(self) -> Syscall {
        let read = self.events & libc::POLLIN != 0;
        let write = self.events & libc::POLLOUT != 0;
        Syscall::on_ready(self.fd, read, write, self)
    }
}

impl Perform for PollCall {
    unsafe fn perform(&self, mode: Mode) -> Performed {
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: self.events,
            revents: 0,
        };
        let timeout = if mode.nowait() { 0 } else { -1 };
        // SAFETY: `pfd` is a valid pollfd on our stack.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout) };
        Performed::plain(match n {
            0 => -libc::EAGAIN,
            n if n > 0 => i32::from(pfd.revents),
            n => cqe_result(n as isize),
        })
    }
}

impl OperationImpl for PollAdd {
    type Output = io::Result<Interest>;
    fn complete(self, done: Completion) -> io::Result<Interest> {
        to_result(done.result).map(|r| Interest::from_revents(r as i16))
    }
}

/// The repeating readiness op; see [`poll_multishot`].
pub struct PollMultishot {
    fd: RawFd,
    interest: Interest,
}

/// A stream of readiness reports for `fd` — asyncio's `add_reader`/`add_writer` as a stream.
/// One submission (`IORING_POLL_ADD_MULTI`) yields an item each time the fd *becomes* ready
/// (edge semantics: consume the data, or the next report waits for new data). Dropping the
/// stream cancels the poll.
///
/// ```
/// use std::os::fd::AsRawFd;
/// use ringloop::op::{poll_multishot, Interest};
/// # ringloop::run(async {
/// let (rx, tx) = std::io::pipe().unwrap();
/// let mut ready = poll_multishot(rx.as_raw_fd(), Interest::READABLE);
/// for _ in 0..3 {
///     std::io::Write::write_all(&mut &tx, b"x").unwrap();
///     assert!(ready.next().await.unwrap().unwrap().is_readable());
///     let (n, _) = ringloop::op::read(rx.as_raw_fd(), Vec::with_capacity(8)).await;
///     assert_eq!(n.unwrap(), 1);
/// }
/// # });
/// ```
pub fn poll_multishot(fd: RawFd, interest: Interest) -> OpStream<PollMultishot> {
    OpStream::new(PollMultishot { fd, interest })
}

impl Describe for PollMultishot {
    fn opcode(&self) -> u8 {
        opcode::PollAdd::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(Fd(self.fd), self.interest.0 as u16 as u32)
            .multi(true)
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        // Reports once per readiness edge (not `draining`).
        PollCall::new(self.fd, self.interest.0).syscall()
    }
    fn multishot(&self) -> bool {
        true
    }
}

impl OperationImpl for PollMultishot {
    type Output = io::Result<Interest>;
    fn complete(self, done: Completion) -> io::Result<Interest> {
        to_result(done.result).map(|r| Interest::from_revents(r as i16))
    }
}

impl MultishotImpl for PollMultishot {
    type Item = io::Result<Interest>;
    fn item(&mut self, done: Completion) -> io::Result<Interest> {
        to_result(done.result).map(|r| Interest::from_revents(r as i16))
    }
}
