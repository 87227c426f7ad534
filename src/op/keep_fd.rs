//! Keeping a shared descriptor open for as long as an op may use it.
//!
//! An op names its fd by number. If its future is dropped while the blocking pool still has
//! the call queued (epoll, or an io_uring kernel without the op's opcode), and the owner then
//! closes the fd, the number can be reused by the next open, and the late call would act on
//! the wrong file. [`keep_fd`] wraps an op so that
//! it holds a reference to the descriptor: the fd is closed only when the owner *and* every
//! op that uses it are done, orphans included.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::{Op, State, sealed::OperationImpl};
use crate::driver::{Completion, Describe, Syscall};

/// An op holding its descriptor open; see [`keep_fd`].
pub(crate) struct KeepFd<T> {
    inner: T,
    _fd: Arc<OwnedFd>,
}

/// Makes `op` (not yet polled) hold `fd` until its completion has been taken.
pub(crate) fn keep_fd<T: OperationImpl>(mut op: Op<T>, fd: &Arc<OwnedFd>) -> Op<KeepFd<T>> {
    assert!(
        matches!(op.state, State::Idle { .. }),
        "keep_fd wraps an op before its first poll"
    );
    let idle = match op.state {
        State::Idle { deadline, at_once } => (deadline, at_once),
        _ => (None, false),
    };
    op.state = State::Done;
    let inner = op.data.take().expect("an idle op has its data");
    let mut kept = Op::new(KeepFd {
        inner,
        _fd: fd.clone(),
    });
    kept.state = State::Idle {
        deadline: idle.0,
        at_once: idle.1,
    };
    kept
}

impl<T: OperationImpl> Describe for KeepFd<T> {
    fn opcode(&self) -> u8 {
        self.inner.opcode()
    }
    fn uring_entry(&mut self) -> io_uring::squeue::Entry {
        self.inner.uring_entry()
    }
    fn syscall(&mut self) -> Syscall {
        self.inner.syscall()
    }
    fn multishot(&self) -> bool {
        self.inner.multishot()
    }
    fn buf_group(&self) -> Option<u16> {
        self.inner.buf_group()
    }
    fn limit(&mut self, max: usize) -> bool {
        self.inner.limit(max)
    }
}

impl<T: OperationImpl> OperationImpl for KeepFd<T> {
    type Output = T::Output;
    const RETURNS_FD: bool = T::RETURNS_FD;
    fn complete(self, done: Completion) -> Self::Output {
        self.inner.complete(done)
    }
    fn release(&mut self, done: Completion) {
        self.inner.release(done);
    }
}
