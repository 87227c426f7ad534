//! Message operations: `sendmsg`/`recvmsg` with a peer address and ancillary data.
//!
//! io_uring: `IORING_OP_SENDMSG` / `IORING_OP_RECVMSG`; epoll: `sendmsg`/`recvmsg` with
//! `MSG_DONTWAIT` when the socket is ready. The `msghdr`, its iovec, the address and the
//! control buffer live in memory owned by the op: the kernel holds pointers into them until the
//! op's completion, and none of them moves when the op future does.
//!
//! Receives always pass `MSG_CMSG_CLOEXEC`, so a descriptor that arrives by `SCM_RIGHTS` is
//! close-on-exec from its first instant. Received descriptors become [`OwnedFd`]s as soon as
//! the op completes; if nobody awaits the op any more, they are closed when its resources are
//! released: a dropped receive never leaks a passed descriptor.

use std::io;
use std::mem;
use std::os::fd::{OwnedFd, RawFd};

use io_uring::{opcode, squeue, types::Fd};
use socket2::{SockAddr, SockAddrStorage};

use super::cmsg::{Control, ControlMessage, ControlSpace};
use super::readiness::{cqe_result, limit_iovecs};
use super::{Op, sealed::OperationImpl, to_result};
use crate::buf::{self, IoBuf, IoBufMut};
use crate::driver::{Completion, Describe, Mode, Perform, Performed, Syscall};

/// A `msghdr` with the iovec, address and control buffer it points to.
struct Parts {
    msg: libc::msghdr,
    iov: libc::iovec,
    addr: SockAddrStorage,
    /// The receive's control buffer (empty for sends: their [`Control`] lives in the op).
    control: ControlSpace,
}

impl Parts {
    /// The SQE that sends this header on `fd` (`MSG_NOSIGNAL`: a closed peer is `EPIPE`).
    fn send_entry(&self, fd: RawFd) -> squeue::Entry {
        opcode::SendMsg::new(Fd(fd), &raw const self.msg)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
    }

    /// The same send for the epoll backend.
    fn send_syscall(&mut self, fd: RawFd) -> Syscall {
        let call = MsgCall {
            fd,
            msg: &raw mut self.msg,
            send: true,
        };
        Syscall::on_writable(fd, call)
    }

    /// Caps the message's data, in its own `iov`, at `max` bytes (see [`Describe::limit`]).
    fn limit(&mut self, fd: RawFd, max: usize) -> bool {
        limit_msg(&mut self.msg, fd, std::slice::from_mut(&mut self.iov), max)
    }

    /// Boxes the parts and points the header at its own iovec and address (the address is
    /// left out when `addr` is `None` and `room_for_addr` is false).
    fn boxed(iov: libc::iovec, addr: Option<&SockAddr>, room_for_addr: bool) -> Box<Parts> {
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let msg: libc::msghdr = unsafe { mem::zeroed() };
        let mut parts = Box::new(Parts {
            msg,
            iov,
            addr: SockAddrStorage::zeroed(),
            control: ControlSpace::default(),
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
            None if room_for_addr => mem::size_of::<SockAddrStorage>(),
            None => 0,
        };
        if namelen > 0 {
            parts.msg.msg_name = (&raw mut parts.addr).cast();
            parts.msg.msg_namelen = namelen as libc::socklen_t;
        }
        parts.msg.msg_iov = &raw mut parts.iov;
        parts.msg.msg_iovlen = 1;
        parts
    }

    fn set_control(&mut self, (ptr, len): (*mut libc::c_void, usize)) {
        self.msg.msg_control = ptr;
        self.msg.msg_controllen = len as _;
    }
}

/// Caps a message's data at `max` bytes (see [`Describe::limit`]); `iovs` are the iovecs its
/// header points to.
fn limit_msg(msg: &mut libc::msghdr, fd: RawFd, iovs: &mut [libc::iovec], max: usize) -> bool {
    match limit_iovecs(fd, iovs, max) {
        Some(keep) => {
            msg.msg_iovlen = keep as _;
            true
        }
        None => false,
    }
}

/// `sendmsg(fd, msg, MSG_NOSIGNAL)` or `recvmsg(fd, msg, MSG_CMSG_CLOEXEC)`, once the socket
/// is ready.
#[derive(Clone, Copy)]
struct MsgCall {
    fd: RawFd,
    msg: *mut libc::msghdr,
    send: bool,
}

impl Perform for MsgCall {
    unsafe fn perform(&self, mode: Mode) -> Performed {
        // SAFETY: `msg` and what it points to live in the op's box (the caller's contract).
        Performed::plain(unsafe {
            if self.send {
                sendmsg_now(self.fd, self.msg, mode.nowait())
            } else {
                recvmsg_now(self.fd, self.msg, mode.nowait())
            }
        })
    }
}

/// `sendmsg(2)` with `MSG_NOSIGNAL` (a closed peer is `EPIPE`, never `SIGPIPE`), and with
/// `MSG_DONTWAIT` when it must not block. Returns a CQE-style result.
///
/// # Safety
///
/// `msg` and what it points to are valid for the call.
pub(super) unsafe fn sendmsg_now(fd: RawFd, msg: *const libc::msghdr, nowait: bool) -> i32 {
    let flags = libc::MSG_NOSIGNAL | if nowait { libc::MSG_DONTWAIT } else { 0 };
    // SAFETY: the caller guarantees `msg` and its buffers are valid.
    cqe_result(unsafe { libc::sendmsg(fd, msg, flags) })
}

/// `recvmsg(2)` with `MSG_CMSG_CLOEXEC` (passed descriptors are close-on-exec from the start,
/// as the SQE asks too), and with `MSG_DONTWAIT` when it must not block. Returns a CQE-style
/// result.
///
/// # Safety
///
/// `msg` and what it points to are valid for the call, its buffers for writes.
pub(super) unsafe fn recvmsg_now(fd: RawFd, msg: *mut libc::msghdr, nowait: bool) -> i32 {
    let flags = libc::MSG_CMSG_CLOEXEC | if nowait { libc::MSG_DONTWAIT } else { 0 };
    // SAFETY: the caller guarantees `msg` and its buffers are valid.
    cqe_result(unsafe { libc::recvmsg(fd, msg, flags) })
}

impl Drop for Parts {
    fn drop(&mut self) {
        // A receive nobody completed (its future was dropped while the kernel owned it): the
        // kernel may have installed descriptors in the control buffer. `msg_controllen` is what
        // it wrote (or still the capacity, over zeroed bytes that decode to nothing).
        self.control.set_written(controllen(&self.msg));
        drop(self.control.take());
    }
}

/// The send-message op; see [`sendmsg`].
pub struct SendMsg<B> {
    fd: RawFd,
    buf: B,
    /// Owned until the completion: the kernel reads it (and the descriptors it names).
    _control: Control,
    parts: Box<Parts>,
}

/// Sends the initialised bytes of `buf` on socket `fd` as one message, to `to` (or to the
/// connected peer when `None`), with the ancillary data in `control`. `MSG_NOSIGNAL` is always
/// set.
///
/// ```
/// use std::os::fd::AsRawFd;
/// use ringloop::op::Control;
/// # ringloop::run(async {
/// let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// let to = b.local_addr().unwrap().into();
/// let (n, _) = ringloop::op::sendmsg(a.as_raw_fd(), b"hey".as_slice(), Some(to), Control::new()).await;
/// assert_eq!(n.unwrap(), 3);
/// let (res, buf) = ringloop::op::recvmsg(b.as_raw_fd(), Vec::with_capacity(16), 0).await;
/// let msg = res.unwrap();
/// assert_eq!((msg.len, &buf[..]), (3, &b"hey"[..]));
/// assert_eq!(msg.from.as_socket(), Some(a.local_addr().unwrap()));
/// # });
/// ```
pub fn sendmsg<B: IoBuf>(
    fd: RawFd,
    buf: B,
    to: Option<SockAddr>,
    mut control: Control,
) -> Op<SendMsg<B>> {
    let iov = libc::iovec {
        iov_base: buf.stable_ptr() as *mut _,
        iov_len: buf.bytes_init(),
    };
    let mut parts = Parts::boxed(iov, to.as_ref(), false);
    parts.set_control(control.raw());
    Op::new(SendMsg {
        fd,
        buf,
        _control: control,
        parts,
    })
}

impl<B: IoBuf> Describe for SendMsg<B> {
    fn opcode(&self) -> u8 {
        opcode::SendMsg::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        self.parts.send_entry(self.fd)
    }
    fn syscall(&mut self) -> Syscall {
        self.parts.send_syscall(self.fd)
    }
    fn limit(&mut self, max: usize) -> bool {
        self.parts.limit(self.fd, max)
    }
}

impl<B: IoBuf> OperationImpl for SendMsg<B> {
    type Output = (io::Result<usize>, B);
    fn complete(self, done: Completion) -> Self::Output {
        (to_result(done.result), self.buf)
    }
}

/// The vectored send-message op; see [`sendmsg_vectored`].
pub struct SendMsgVectored<B> {
    fd: RawFd,
    bufs: Vec<B>,
    /// Owned until the completion: the kernel reads the iovecs through the header.
    iovecs: Vec<libc::iovec>,
    parts: Box<Parts>,
}

/// Sends the initialised bytes of each buffer in turn as one message on socket `fd` (to the
/// connected peer). Unlike [`writev`](super::writev), a closed peer is an `EPIPE` error,
/// never a `SIGPIPE` (`MSG_NOSIGNAL`). May send fewer bytes than given.
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let bufs = vec![b"ab".as_slice(), b"cd".as_slice()];
/// let (n, _) = ringloop::op::sendmsg_vectored(a.as_raw_fd(), bufs).await;
/// assert_eq!(n.unwrap(), 4);
/// let (_, buf) = ringloop::op::recv(b.as_raw_fd(), Vec::with_capacity(8)).await;
/// assert_eq!(buf, b"abcd");
/// # });
/// ```
pub fn sendmsg_vectored<B: IoBuf>(fd: RawFd, bufs: Vec<B>) -> Op<SendMsgVectored<B>> {
    let mut iovecs: Vec<libc::iovec> = bufs
        .iter()
        .map(|b| libc::iovec {
            iov_base: b.stable_ptr() as *mut _,
            iov_len: b.bytes_init(),
        })
        .collect();
    let empty = libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    };
    let mut parts = Parts::boxed(empty, None, false);
    parts.msg.msg_iov = iovecs.as_mut_ptr();
    parts.msg.msg_iovlen = iovecs.len() as _;
    Op::new(SendMsgVectored {
        fd,
        bufs,
        iovecs,
        parts,
    })
}

impl<B: IoBuf> Describe for SendMsgVectored<B> {
    fn opcode(&self) -> u8 {
        opcode::SendMsg::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        self.parts.send_entry(self.fd)
    }
    fn syscall(&mut self) -> Syscall {
        self.parts.send_syscall(self.fd)
    }
    fn limit(&mut self, max: usize) -> bool {
        limit_msg(&mut self.parts.msg, self.fd, &mut self.iovecs, max)
    }
}

impl<B: IoBuf> OperationImpl for SendMsgVectored<B> {
    type Output = (io::Result<usize>, Vec<B>);
    fn complete(self, done: Completion) -> Self::Output {
        (to_result(done.result), self.bufs)
    }
}

/// `msg_controllen` as a length (glibc's is a size_t, musl's a socklen_t).
#[allow(clippy::unnecessary_cast)]
fn controllen(msg: &libc::msghdr) -> usize {
    msg.msg_controllen as usize
}

/// The receive-message op; see [`recvmsg`].
pub struct RecvMsg<B> {
    fd: RawFd,
    buf: B,
    parts: Box<Parts>,
}

/// One received message: its length, its sender and its ancillary data.
#[derive(Debug)]
pub struct Received {
    /// Bytes received into the buffer.
    pub len: usize,
    /// The sender's address (unnamed for a connected stream socket).
    pub from: SockAddr,
    /// Control messages other than `SCM_RIGHTS`, in the order they came.
    pub control: Vec<ControlMessage>,
    /// Descriptors passed by `SCM_RIGHTS` (close-on-exec).
    pub fds: Vec<OwnedFd>,
    /// `msg_flags`: `MSG_TRUNC` (the datagram was longer than the buffer), `MSG_CTRUNC` (the
    /// ancillary data did not fit; descriptors that did not fit were closed by the kernel).
    pub flags: i32,
}

impl Received {
    /// Whether the ancillary data was cut short (`MSG_CTRUNC`).
    pub fn control_truncated(&self) -> bool {
        self.flags & libc::MSG_CTRUNC != 0
    }
    /// Whether the datagram was longer than the buffer (`MSG_TRUNC`).
    pub fn truncated(&self) -> bool {
        self.flags & libc::MSG_TRUNC != 0
    }
}

/// Receives one message from socket `fd` into the spare capacity of `buf`, with the sender's
/// address and up to `control_len` bytes of ancillary data (see [`fds_space`] and
/// [`control_space`] for sizes). A datagram longer than the spare capacity is truncated, as
/// `recvfrom(2)` does.
///
/// See [`sendmsg`] for an example.
pub fn recvmsg<B: IoBufMut>(fd: RawFd, mut buf: B, control_len: usize) -> Op<RecvMsg<B>> {
    let (ptr, len) = buf::spare(&mut buf);
    let iov = libc::iovec {
        iov_base: ptr.cast(),
        iov_len: len,
    };
    let mut parts = Parts::boxed(iov, None, true);
    parts.control = ControlSpace::new(control_len);
    let raw = parts.control.raw();
    parts.set_control(raw);
    Op::new(RecvMsg { fd, buf, parts })
}

/// Bytes of control buffer one message with `data_len` data bytes needs (`CMSG_SPACE`).
///
/// ```
/// assert!(ringloop::op::control_space(4) >= 4);
/// ```
pub fn control_space(data_len: usize) -> usize {
    super::cmsg::space(data_len)
}

/// Bytes of control buffer an `SCM_RIGHTS` message with `fds` descriptors needs.
///
/// ```
/// assert_eq!(ringloop::op::fds_space(2), ringloop::op::control_space(8));
/// ```
pub fn fds_space(fds: usize) -> usize {
    super::cmsg::fds_space(fds)
}

impl<B: IoBufMut> Describe for RecvMsg<B> {
    fn opcode(&self) -> u8 {
        opcode::RecvMsg::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::RecvMsg::new(Fd(self.fd), &raw mut self.parts.msg)
            .flags(libc::MSG_CMSG_CLOEXEC as u32)
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        let call = MsgCall {
            fd: self.fd,
            msg: &raw mut self.parts.msg,
            send: false,
        };
        Syscall::on_readable(self.fd, call)
    }
    fn limit(&mut self, max: usize) -> bool {
        self.parts.limit(self.fd, max)
    }
}

impl<B: IoBufMut> OperationImpl for RecvMsg<B> {
    type Output = (io::Result<Received>, B);
    fn complete(mut self, done: Completion) -> Self::Output {
        let n = match to_result(done.result) {
            Ok(n) => n,
            // Nothing was received (the Parts' drop still closes any descriptor).
            Err(e) => return (Err(e), self.buf),
        };
        // SAFETY: the kernel wrote `n` bytes at the start of the spare capacity.
        unsafe { buf::mark_filled(&mut self.buf, n) };
        let parts = &mut *self.parts;
        parts.control.set_written(controllen(&parts.msg));
        parts.msg.msg_controllen = 0;
        let decoded = parts.control.take();
        let len = parts.msg.msg_namelen;
        let storage = mem::replace(&mut parts.addr, SockAddrStorage::zeroed());
        // SAFETY: the kernel wrote a socket address of `len` bytes into the storage (or set
        // `len` to 0 for an unnamed sender).
        let from = unsafe { SockAddr::new(storage, len) };
        let received = Received {
            len: n,
            from,
            control: decoded.messages,
            fds: decoded.fds,
            flags: parts.msg.msg_flags,
        };
        (Ok(received), self.buf)
    }
}
