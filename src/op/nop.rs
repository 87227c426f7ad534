//! `IORING_OP_NOP`: a round trip through the backend, nothing else.

use std::io;

use io_uring::{opcode, squeue};

use super::{Op, sealed::OperationImpl, to_result};
use crate::driver::{Completion, Describe, Mode, Perform, Performed, Syscall};

/// The no-op operation; see [`nop`].
#[derive(Clone, Copy, Debug)]
pub struct Nop;

/// An operation that does nothing: it measures the cost of one submit/complete round trip.
///
/// ```
/// # ringloop::run(async {
/// ringloop::op::nop().await.unwrap();
/// # });
/// ```
pub fn nop() -> Op<Nop> {
    Op::new(Nop)
}

impl Describe for Nop {
    fn opcode(&self) -> u8 {
        opcode::Nop::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Nop::new().build()
    }
    fn syscall(&mut self) -> Syscall {
        Syscall::at_once(-1, Nop)
    }
}

impl Perform for Nop {
    /// Completes at once with 0.
    unsafe fn perform(&self, _mode: Mode) -> Performed {
        Performed::plain(0)
    }
}

impl OperationImpl for Nop {
    type Output = io::Result<()>;
    fn complete(self, done: Completion) -> io::Result<()> {
        to_result(done.result).map(drop)
    }
}
