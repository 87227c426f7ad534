//! Message operations: `sendmsg`/`recvmsg` with a peer address (datagram sockets).
//!
//! io_uring: `IORING_OP_SENDMSG` / `IORING_OP_RECVMSG`; epoll: `sendmsg`/`recvmsg` with
//! `MSG_DONTWAIT` when the socket is ready. The `msghdr`, its iovec and the address live
//! together in one box owned by the op: the kernel holds pointers into it until the op's
//! completion, and the box does not move when the op future does.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types::Fd};
use socket2::{SockAddr, SockAddrStorage};

use super::{Op, sealed::OperationImpl, to_result};
use crate::buf::{self, IoBuf, IoBufMut};
use crate::driver::{Completion, Describe, Syscall};

/// A `msghdr` with the iovec and address it points to.
struct Parts {
    msg: libc::msghdr,
    iov: libc::iovec,
    addr: SockAddrStorage,
}

impl Parts {
    /// Boxes the parts and points the header at its own iovec and address.
    fn boxed(iov: libc::iovec, addr: Option<&SockAddr>) -> Box<Parts> {
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let msg: libc::msghdr = unsafe { mem::zeroed() };
        let mut parts = Box::new(Parts {
            msg,
            iov,
            addr: SockAddrStorage::zeroed(),
        });
        let namelen = match addr {
            Some(a) => {
                let len = a.len() as usize;
                // SAFETY: `a` holds `len` initialised bytes, and the storage has room for any
                // socket address; the two do not overlap.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        a.as_ptr().cast::<u8>(),
                        (&raw mut parts.addr).cast::<u8>(),
                        len,
                    )
                };
                len
            }
            None => mem::size_of::<SockAddrStorage>(),
        };
        parts.msg.msg_name = (&raw mut parts.addr).cast();
        parts.msg.msg_namelen = namelen as libc::socklen_t;
        parts.msg.msg_iov = &raw mut parts.iov;
        parts.msg.msg_iovlen = 1;
        parts
    }
}

/// The send-with-address op; see [`sendmsg_to`].
pub struct SendMsg<B> {
    fd: RawFd,
    buf: B,
    parts: Box<Parts>,
}

/// Sends the initialised bytes of `buf` on socket `fd` as one message, to `addr` (or to the
/// connected peer when `None`). `MSG_NOSIGNAL` is always set.
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// let to = b.local_addr().unwrap();
/// let (n, _) = ringloop::op::sendmsg_to(a.as_raw_fd(), b"hey".as_slice(), Some(to)).await;
/// assert_eq!(n.unwrap(), 3);
/// let (res, buf) = ringloop::op::recvmsg_from(b.as_raw_fd(), Vec::with_capacity(16)).await;
/// let (n, from) = res.unwrap();
/// assert_eq!((n, &buf[..], from), (3, &b"hey"[..], a.local_addr().unwrap()));
/// # });
/// ```
pub fn sendmsg_to<B: IoBuf>(fd: RawFd, buf: B, addr: Option<SocketAddr>) -> Op<SendMsg<B>> {
    let iov = libc::iovec {
        iov_base: buf.stable_ptr() as *mut _,
        iov_len: buf.bytes_init(),
    };
    let addr = addr.map(SockAddr::from);
    let mut parts = Parts::boxed(iov, addr.as_ref());
    if addr.is_none() {
        parts.msg.msg_name = std::ptr::null_mut();
        parts.msg.msg_namelen = 0;
    }
    Op::new(SendMsg { fd, buf, parts })
}

impl<B: IoBuf> Describe for SendMsg<B> {
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::SendMsg::new(Fd(self.fd), &raw const self.parts.msg)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        Syscall::SendMsg {
            fd: self.fd,
            msg: &raw const self.parts.msg,
        }
    }
}

impl<B: IoBuf> OperationImpl for SendMsg<B> {
    type Output = (io::Result<usize>, B);
    fn complete(self, done: Completion) -> Self::Output {
        (to_result(done.result), self.buf)
    }
}

/// The receive-with-address op; see [`recvmsg_from`].
pub struct RecvMsg<B> {
    fd: RawFd,
    buf: B,
    parts: Box<Parts>,
}

/// Receives one message from socket `fd` into the spare capacity of `buf`, with the sender's
/// address. A message longer than the spare capacity is truncated, as `recvfrom(2)` does.
///
/// See [`sendmsg_to`] for an example.
pub fn recvmsg_from<B: IoBufMut>(fd: RawFd, mut buf: B) -> Op<RecvMsg<B>> {
    let (ptr, len) = buf::spare(&mut buf);
    let iov = libc::iovec {
        iov_base: ptr.cast(),
        iov_len: len,
    };
    let parts = Parts::boxed(iov, None);
    Op::new(RecvMsg { fd, buf, parts })
}

impl<B: IoBufMut> Describe for RecvMsg<B> {
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::RecvMsg::new(Fd(self.fd), &raw mut self.parts.msg).build()
    }
    fn syscall(&mut self) -> Syscall {
        Syscall::RecvMsg {
            fd: self.fd,
            msg: &raw mut self.parts.msg,
        }
    }
}

impl<B: IoBufMut> OperationImpl for RecvMsg<B> {
    type Output = (io::Result<(usize, SocketAddr)>, B);
    fn complete(mut self, done: Completion) -> Self::Output {
        let n = match to_result(done.result) {
            Ok(n) => n,
            Err(e) => return (Err(e), self.buf),
        };
        // SAFETY: the kernel wrote `n` bytes at the start of the spare capacity.
        unsafe { buf::mark_filled(&mut self.buf, n) };
        let len = self.parts.msg.msg_namelen;
        let storage = mem::replace(&mut self.parts.addr, SockAddrStorage::zeroed());
        // SAFETY: the kernel wrote a socket address of `len` bytes into the storage.
        let addr = unsafe { SockAddr::new(storage, len) }.as_socket();
        match addr {
            Some(addr) => (Ok((n, addr)), self.buf),
            None => {
                let e = io::Error::new(io::ErrorKind::InvalidData, "message from a non-IP socket");
                (Err(e), self.buf)
            }
        }
    }
}
