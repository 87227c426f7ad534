//! Closing a descriptor through the backend (`IORING_OP_CLOSE`; `close(2)` on epoll).

use std::io;
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types::Fd};

use super::readiness::cqe_result;
use super::{Op, sealed::OperationImpl, to_result};
use crate::driver::{Completion, Describe, Mode, Perform, Performed, Syscall};

/// The close op; see [`close`].
pub struct Close {
    /// Owned until handed to the backend; dropped (closed synchronously) if never submitted.
    fd: Option<OwnedFd>,
    raw: RawFd,
}

/// Closes `fd` asynchronously and reports the error `close(2)` gives, which dropping an
/// `OwnedFd` would ignore.
///
/// ```
/// # ringloop::run(async {
/// let (rx, _tx) = std::io::pipe().unwrap();
/// ringloop::op::close(rx.into()).await.unwrap();
/// # });
/// ```
pub fn close(fd: OwnedFd) -> Op<Close> {
    Op::new(Close {
        fd: Some(fd),
        raw: -1,
    })
}

impl Close {
    fn take(&mut self) -> RawFd {
        if let Some(fd) = self.fd.take() {
            self.raw = fd.into_raw_fd();
        }
        self.raw
    }
}

impl Describe for Close {
    fn opcode(&self) -> u8 {
        opcode::Close::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Close::new(Fd(self.take())).build()
    }
    fn syscall(&mut self) -> Syscall {
        CloseCall(self.take()).syscall()
    }
}

/// `close(fd)`, at once (it never blocks on a descriptor epoll can wait on).
#[derive(Clone, Copy)]
pub(super) struct CloseCall(pub(super) RawFd);

impl CloseCall {
    /// The readiness half of a close: performed at once, after the backend has forgotten the
    /// fd (its registration, the ops waiting on it).
    pub(super) fn syscall(self) -> Syscall {
        Syscall::at_once(self.0, self).closing_fd()
    }
}

impl Perform for CloseCall {
    unsafe fn perform(&self, _mode: Mode) -> Performed {
        // SAFETY: the op owns the fd (taken from its `OwnedFd`); it is closed once, here.
        Performed::plain(cqe_result(unsafe { libc::close(self.0) } as isize))
    }
}

impl OperationImpl for Close {
    type Output = io::Result<()>;
    fn complete(self, done: Completion) -> io::Result<()> {
        to_result(done.result).map(drop)
    }
}
