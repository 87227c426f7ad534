//! Socket operations: accept, connect, send, recv.
//!
//! io_uring: `IORING_OP_ACCEPT` / `CONNECT` / `SEND` / `RECV`. epoll: `accept4`, `connect`
//! (retried after writability until it settles), `send`/`recv` with `MSG_DONTWAIT`, when the
//! socket is ready. Sends always carry `MSG_NOSIGNAL`: a closed peer is an `EPIPE` error, never
//! a `SIGPIPE` that kills the process. Socket addresses live in boxes owned by the op, so the
//! kernel's pointer stays valid however the op future moves.

use std::io;
use std::mem;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types::Fd};
use socket2::{SockAddr, SockAddrStorage};

use super::readiness::{cqe_result, limit_len, spare_within};
use super::{Op, filled, sealed::OperationImpl, to_result};
use crate::buf::{IoBuf, IoBufMut};
use crate::driver::{Completion, Describe, Mode, Perform, Performed, Syscall};

/// Storage the kernel writes the peer's address into.
struct AddrOut {
    storage: SockAddrStorage,
    len: libc::socklen_t,
}

/// The accept op; see [`accept`].
pub struct Accept {
    fd: RawFd,
    addr: Box<AddrOut>,
}

/// Accepts a connection on listening socket `fd`: the new socket (close-on-exec) and the
/// peer's address (IP or Unix: `SockAddr::as_socket` / `as_pathname` read it). A connection
/// accepted for an accept nobody awaits any more is closed.
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// listener.set_nonblocking(true).unwrap();
/// let addr = listener.local_addr().unwrap();
/// let client = std::thread::spawn(move || std::net::TcpStream::connect(addr).unwrap());
/// let (fd, peer) = ringloop::op::accept(listener.as_raw_fd()).await.unwrap();
/// assert_eq!(peer.as_socket(), Some(client.join().unwrap().local_addr().unwrap()));
/// # drop(fd);
/// # });
/// ```
pub fn accept(fd: RawFd) -> Op<Accept> {
    Op::new(Accept {
        fd,
        addr: Box::new(AddrOut {
            storage: SockAddrStorage::zeroed(),
            len: mem::size_of::<SockAddrStorage>() as libc::socklen_t,
        }),
    })
}

impl Describe for Accept {
    fn opcode(&self) -> u8 {
        opcode::Accept::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Accept::new(
            Fd(self.fd),
            (&raw mut self.addr.storage).cast(),
            &raw mut self.addr.len,
        )
        .flags(libc::SOCK_CLOEXEC)
        .build()
    }
    fn syscall(&mut self) -> Syscall {
        let call = AcceptCall {
            fd: self.fd,
            addr: (&raw mut self.addr.storage).cast(),
            len: &raw mut self.addr.len,
        };
        Syscall::on_readable(self.fd, call)
    }
}

/// `accept4(fd, addr, len, SOCK_CLOEXEC)`, once the listener is readable; the result is the
/// new fd. Null `addr` and `len` leave the peer's address out (multishot accept).
#[derive(Clone, Copy)]
pub(super) struct AcceptCall {
    pub(super) fd: RawFd,
    pub(super) addr: *mut libc::sockaddr,
    pub(super) len: *mut libc::socklen_t,
}

impl Perform for AcceptCall {
    unsafe fn perform(&self, _mode: Mode) -> Performed {
        // `addr`/`len` are both null, or the op's boxed sockaddr storage and its length.
        // SAFETY: `addr`/`len` are null or valid for the kernel to write (the caller's contract).
        let fd = unsafe { libc::accept4(self.fd, self.addr, self.len, libc::SOCK_CLOEXEC) };
        Performed::plain(cqe_result(fd as isize))
    }
}

impl OperationImpl for Accept {
    type Output = io::Result<(OwnedFd, SockAddr)>;
    const RETURNS_FD: bool = true;

    fn complete(self, done: Completion) -> Self::Output {
        let fd = to_result(done.result)?;
        // SAFETY: the kernel created this descriptor for us; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        // SAFETY: the kernel wrote a socket address of `len` bytes into the storage.
        let addr = unsafe { SockAddr::new(self.addr.storage, self.addr.len) };
        Ok((fd, addr))
    }
}

/// The connect op; see [`connect`].
pub struct Connect {
    fd: RawFd,
    addr: Box<SockAddr>,
}

/// Connects socket `fd` to `addr` (an IP `SocketAddr` or any `socket2::SockAddr`).
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
/// ringloop::op::connect(socket.as_raw_fd(), addr).await.unwrap();
/// assert_eq!(socket.peer_addr().unwrap().as_socket(), Some(addr));
/// # });
/// ```
pub fn connect(fd: RawFd, addr: impl Into<SockAddr>) -> Op<Connect> {
    Op::new(Connect {
        fd,
        addr: Box::new(addr.into()),
    })
}

impl Describe for Connect {
    fn opcode(&self) -> u8 {
        opcode::Connect::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Connect::new(Fd(self.fd), self.addr.as_ptr().cast(), self.addr.len()).build()
    }
    fn syscall(&mut self) -> Syscall {
        let call = ConnectCall {
            fd: self.fd,
            addr: self.addr.as_ptr().cast(),
            len: self.addr.len(),
        };
        Syscall::on_writable(self.fd, call)
    }
}

/// `connect(fd, addr, len)`, retried after writability until it settles.
#[derive(Clone, Copy)]
struct ConnectCall {
    fd: RawFd,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
}

impl Perform for ConnectCall {
    unsafe fn perform(&self, _mode: Mode) -> Performed {
        // SAFETY: `addr` points to the op's boxed sockaddr of `len` bytes.
        let r = unsafe { libc::connect(self.fd, self.addr, self.len) };
        if r == 0 {
            return Performed::plain(0);
        }
        // A non-blocking connect settles over several calls: in progress (wait for
        // writability), then connected (EISCONN) or the connection's error.
        Performed::plain(match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EISCONN) => 0,
            Some(libc::EINPROGRESS) | Some(libc::EALREADY) => -libc::EAGAIN,
            Some(e) => -e,
            None => -libc::EIO,
        })
    }
}

impl OperationImpl for Connect {
    type Output = io::Result<()>;
    fn complete(self, done: Completion) -> io::Result<()> {
        to_result(done.result).map(drop)
    }
}

/// The send op; see [`send`].
pub struct Send<B> {
    fd: RawFd,
    buf: B,
    /// Most bytes to send (see [`Describe::limit`]).
    max: usize,
}

/// Sends the initialised bytes of `buf` on socket `fd` (`MSG_NOSIGNAL`: a closed peer gives
/// `BrokenPipe`, not `SIGPIPE`). May send fewer bytes than given.
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let (n, _) = ringloop::op::send(a.as_raw_fd(), b"hi".as_slice()).await;
/// assert_eq!(n.unwrap(), 2);
/// let (n, buf) = ringloop::op::recv(b.as_raw_fd(), Vec::with_capacity(8)).await;
/// assert_eq!((n.unwrap(), &buf[..]), (2, &b"hi"[..]));
/// # });
/// ```
pub fn send<B: IoBuf>(fd: RawFd, buf: B) -> Op<Send<B>> {
    Op::new(Send {
        fd,
        buf,
        max: usize::MAX,
    })
}

impl<B: IoBuf> Send<B> {
    /// The bytes to send, within the limit.
    fn len(&self) -> usize {
        self.buf.bytes_init().min(self.max)
    }
}

impl<B: IoBuf> Describe for Send<B> {
    fn opcode(&self) -> u8 {
        opcode::Send::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        let len = self.len().min(u32::MAX as usize) as u32;
        opcode::Send::new(Fd(self.fd), self.buf.stable_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        let call = SendRecvCall {
            fd: self.fd,
            buf: self.buf.stable_ptr() as *mut u8,
            len: self.len(),
            send: true,
            tcp: false,
        };
        call.syscall()
    }
    fn limit(&mut self, max: usize) -> bool {
        limit_len(self.fd, self.len(), max, &mut self.max)
    }
}

/// `send(fd, buf, len, MSG_NOSIGNAL)` or `recv(fd, buf, len, 0)`, once the socket is ready.
#[derive(Clone, Copy)]
struct SendRecvCall {
    fd: RawFd,
    buf: *mut u8,
    len: usize,
    send: bool,
    /// A receive from a TCP socket: one that fills less than `len` has drained it.
    tcp: bool,
}

impl SendRecvCall {
    fn syscall(self) -> Syscall {
        if self.send {
            Syscall::on_writable(self.fd, self)
        } else {
            Syscall::on_readable(self.fd, self)
        }
    }
}

impl Perform for SendRecvCall {
    unsafe fn perform(&self, mode: Mode) -> Performed {
        let (fd, buf, len, nowait) = (self.fd, self.buf, self.len, mode.nowait());
        if self.send {
            // SAFETY: `buf` is the op's data, valid for `len` bytes (the caller's contract).
            return Performed::plain(unsafe { send_now(fd, buf, len, nowait) });
        }
        // SAFETY: `buf` is the receive's spare capacity, valid for `len` bytes (caller's contract).
        let result = unsafe { recv_now(fd, buf, len, nowait) };
        Performed {
            result,
            flags: 0,
            drained: self.tcp && result > 0 && (result as usize) < len,
        }
    }
}

/// `send(2)` with `MSG_NOSIGNAL` (a closed peer is `EPIPE`, never `SIGPIPE`), and with
/// `MSG_DONTWAIT` when it must not block. Returns a CQE-style result.
///
/// # Safety
///
/// `buf` is valid for reads of `len` bytes.
pub(super) unsafe fn send_now(fd: RawFd, buf: *const u8, len: usize, nowait: bool) -> i32 {
    let flags = libc::MSG_NOSIGNAL | if nowait { libc::MSG_DONTWAIT } else { 0 };
    // SAFETY: the caller guarantees `buf` is valid for reads of `len` bytes.
    cqe_result(unsafe { libc::send(fd, buf.cast(), len, flags) })
}

/// `recv(2)`, with `MSG_DONTWAIT` when it must not block. Returns a CQE-style result.
///
/// # Safety
///
/// `buf` is valid for writes of `len` bytes.
pub(super) unsafe fn recv_now(fd: RawFd, buf: *mut u8, len: usize, nowait: bool) -> i32 {
    let flags = if nowait { libc::MSG_DONTWAIT } else { 0 };
    // SAFETY: the caller guarantees `buf` is valid for writes of `len` bytes.
    cqe_result(unsafe { libc::recv(fd, buf.cast(), len, flags) })
}

impl<B: IoBuf> OperationImpl for Send<B> {
    type Output = (io::Result<usize>, B);
    fn complete(self, done: Completion) -> Self::Output {
        (to_result(done.result), self.buf)
    }
}

/// The receive op; see [`recv`].
pub struct Recv<B> {
    fd: RawFd,
    buf: B,
    /// Most bytes to receive (see [`Describe::limit`]).
    max: usize,
    /// `fd` is a TCP socket (see [`recv_stream`]).
    tcp: bool,
}

/// Receives into the spare capacity of `buf` from socket `fd`; 0 means the peer closed.
///
/// See [`send`] for an example.
pub fn recv<B: IoBufMut>(fd: RawFd, buf: B) -> Op<Recv<B>> {
    Op::new(Recv {
        fd,
        buf,
        max: usize::MAX,
        tcp: false,
    })
}

/// [`recv`] from a stream socket that is TCP or not (`tcp`). From TCP, on the epoll backend,
/// a receive that gets less than it asked for tells the driver the socket is empty, so the
/// next receive waits for new data's readiness edge instead of first trying the call for an
/// `EAGAIN` (tokio infers the same from a short read).
///
/// Only TCP: a Unix stream ends a receive early at a message that carries descriptors (the
/// kernel does not glue bytes across it), and a datagram socket returns one datagram at a
/// time however many wait, so there a short receive can leave data that no new edge
/// announces. TCP stops short at urgent data too: the driver stops inferring on a socket once
/// it reported urgent data (`EPOLLPRI`).
pub(crate) fn recv_stream<B: IoBufMut>(fd: RawFd, buf: B, tcp: bool) -> Op<Recv<B>> {
    Op::new(Recv {
        fd,
        buf,
        max: usize::MAX,
        tcp,
    })
}

impl<B: IoBufMut> Recv<B> {
    /// The spare capacity to receive into, within the limit.
    fn target(&mut self) -> (*mut u8, usize) {
        spare_within(&mut self.buf, self.max)
    }
}

impl<B: IoBufMut> Describe for Recv<B> {
    fn opcode(&self) -> u8 {
        opcode::Recv::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        let (ptr, len) = self.target();
        opcode::Recv::new(Fd(self.fd), ptr, len as u32).build()
    }
    fn syscall(&mut self) -> Syscall {
        let (buf, len) = self.target();
        let call = SendRecvCall {
            fd: self.fd,
            buf,
            len,
            send: false,
            tcp: self.tcp,
        };
        call.syscall()
    }
    fn limit(&mut self, max: usize) -> bool {
        let len = self.target().1;
        limit_len(self.fd, len, max, &mut self.max)
    }
}

impl<B: IoBufMut> OperationImpl for Recv<B> {
    type Output = (io::Result<usize>, B);
    fn complete(self, done: Completion) -> Self::Output {
        filled(self.buf, done)
    }
}
