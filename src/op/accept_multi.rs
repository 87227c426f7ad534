//! Multishot accept: one submission, a completion per connection.
//!
//! io_uring: `IORING_OP_ACCEPT` with `IORING_ACCEPT_MULTISHOT`. epoll: `accept4` queued on the
//! listener, repeated until `EAGAIN` on each readiness report. A connection accepted after the
//! stream was dropped is closed, never leaked.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types::Fd};

use super::net::AcceptCall;
use super::sealed::OperationImpl;
use super::stream::{OpStream, sealed::MultishotImpl};
use super::to_result;
use crate::driver::{Completion, Describe, Syscall};

/// The multishot accept op; see [`accept_multishot`].
pub struct AcceptMulti {
    fd: RawFd,
}

/// Accepts connections on listening socket `fd` as a stream of new sockets (close-on-exec).
/// The peer's address is not reported (ask the socket). The stream ends on an error.
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// listener.set_nonblocking(true).unwrap();
/// let addr = listener.local_addr().unwrap();
/// let mut conns = ringloop::op::accept_multishot(listener.as_raw_fd());
/// let clients: Vec<_> = (0..3).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
/// for _ in &clients {
///     let fd = conns.next().await.unwrap().unwrap();
///     let peer = socket2::SockRef::from(&fd).peer_addr().unwrap().as_socket().unwrap();
///     assert!(clients.iter().any(|c| c.local_addr().unwrap() == peer));
/// }
/// # });
/// ```
pub fn accept_multishot(fd: RawFd) -> OpStream<AcceptMulti> {
    OpStream::new(AcceptMulti { fd })
}

fn accepted(done: Completion) -> io::Result<OwnedFd> {
    let fd = to_result(done.result)?;
    // SAFETY: the kernel created this descriptor for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

impl Describe for AcceptMulti {
    fn opcode(&self) -> u8 {
        opcode::AcceptMulti::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::AcceptMulti::new(Fd(self.fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        let call = AcceptCall {
            fd: self.fd,
            addr: std::ptr::null_mut(),
            len: std::ptr::null_mut(),
        };
        // Accepts until EAGAIN on each report: the listener's edge is not raised again for
        // connections already queued.
        Syscall::on_readable(self.fd, call).draining()
    }
    fn multishot(&self) -> bool {
        true
    }
}

impl OperationImpl for AcceptMulti {
    type Output = io::Result<OwnedFd>;
    const RETURNS_FD: bool = true;
    fn complete(self, done: Completion) -> Self::Output {
        accepted(done)
    }
}

impl MultishotImpl for AcceptMulti {
    type Item = io::Result<OwnedFd>;
    fn item(&mut self, done: Completion) -> Self::Item {
        accepted(done)
    }
}
