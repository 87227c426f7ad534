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

use super::{Op, filled, sealed::OperationImpl, to_result};
use crate::buf::{self, IoBuf, IoBufMut};
use crate::driver::{Completion, Describe, Syscall};

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
        Syscall::Accept {
            fd: self.fd,
            addr: (&raw mut self.addr.storage).cast(),
            len: &raw mut self.addr.len,
        }
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
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Connect::new(Fd(self.fd), self.addr.as_ptr().cast(), self.addr.len()).build()
    }
    fn syscall(&mut self) -> Syscall {
        Syscall::Connect {
            fd: self.fd,
            addr: self.addr.as_ptr().cast(),
            len: self.addr.len(),
        }
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
    Op::new(Send { fd, buf })
}

impl<B: IoBuf> Describe for Send<B> {
    fn uring_entry(&mut self) -> squeue::Entry {
        let len = self.buf.bytes_init().min(u32::MAX as usize) as u32;
        opcode::Send::new(Fd(self.fd), self.buf.stable_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        Syscall::Send {
            fd: self.fd,
            buf: self.buf.stable_ptr(),
            len: self.buf.bytes_init(),
        }
    }
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
}

/// Receives into the spare capacity of `buf` from socket `fd`; 0 means the peer closed.
///
/// See [`send`] for an example.
pub fn recv<B: IoBufMut>(fd: RawFd, buf: B) -> Op<Recv<B>> {
    Op::new(Recv { fd, buf })
}

impl<B: IoBufMut> Describe for Recv<B> {
    fn uring_entry(&mut self) -> squeue::Entry {
        let (ptr, len) = buf::spare(&mut self.buf);
        opcode::Recv::new(Fd(self.fd), ptr, len as u32).build()
    }
    fn syscall(&mut self) -> Syscall {
        let (buf, len) = buf::spare(&mut self.buf);
        Syscall::Recv {
            fd: self.fd,
            buf,
            len,
        }
    }
}

impl<B: IoBufMut> OperationImpl for Recv<B> {
    type Output = (io::Result<usize>, B);
    fn complete(self, done: Completion) -> Self::Output {
        filled(self.buf, done)
    }
}
