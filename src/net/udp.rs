//! UDP: [`UdpSocket`].

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use socket2::{Domain, Socket, Type};

use super::adopt::{self, AdoptOnDrop, Adopted};
use super::with_addr;
use crate::buf::{self, IoBuf, IoBufMut};
use crate::op;

/// A UDP socket.
///
/// A `recv`/`recv_from` future dropped while the kernel owns its op (a timeout gave up on it)
/// is adopted by the socket: the datagram it receives goes to the next receive instead of
/// being lost (truncated to that call's buffer, as `recvfrom(2)` truncates).
///
/// ```
/// use ringloop::net::UdpSocket;
/// # ringloop::run(async {
/// let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
/// let (n, _) = a.send_to(b"ping".as_slice(), b.local_addr().unwrap()).await;
/// assert_eq!(n.unwrap(), 4);
/// let (res, buf) = b.recv_from(Vec::with_capacity(64)).await;
/// let (n, from) = res.unwrap();
/// assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
/// # });
/// ```
pub struct UdpSocket {
    /// Keeps the socket registered with the epoll backend; dropped before `socket` closes.
    _registration: op::Registration,
    socket: Socket,
    /// A dropped receive still in flight: the datagram and its sender.
    adopted: Adopted<io::Result<(Vec<u8>, SocketAddr)>>,
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl UdpSocket {
    /// Binds to `addr`.
    ///
    /// # Errors
    ///
    /// Socket or bind errors (address in use...); the message names the address.
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        let setup = || -> io::Result<Socket> {
            let socket = Socket::new(
                Domain::for_address(addr),
                Type::DGRAM.nonblocking().cloexec(),
                None,
            )?;
            socket.bind(&addr.into())?;
            Ok(socket)
        };
        Ok(UdpSocket::wrap(
            setup().map_err(|e| with_addr(e, "bind", addr))?,
        ))
    }

    /// Sets the default peer: `send` goes there and only its datagrams are received.
    pub fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        self.socket
            .connect(&addr.into())
            .map_err(|e| with_addr(e, "connect to", addr))
    }

    /// Sends the initialised bytes of `buf` as one datagram to `addr`.
    pub async fn send_to<B: IoBuf>(&self, buf: B, addr: SocketAddr) -> (io::Result<usize>, B) {
        op::sendmsg_to(self.socket.as_raw_fd(), buf, Some(addr)).await
    }

    fn wrap(socket: Socket) -> UdpSocket {
        UdpSocket {
            _registration: op::Registration::new(socket.as_raw_fd()),
            socket,
            adopted: RefCell::new(None),
        }
    }

    /// Receives one datagram into the spare capacity of `buf` (truncated if longer), with
    /// its sender's address. A datagram an earlier, dropped receive got comes first.
    pub async fn recv_from<B: IoBufMut>(&self, mut buf: B) -> (io::Result<(usize, SocketAddr)>, B) {
        match adopt::resume(&self.adopted).await {
            // Cancelled (runtime shutdown): nothing was received; receive afresh.
            Some(Err(e)) if e.raw_os_error() == Some(libc::ECANCELED) => {}
            Some(Ok((datagram, from))) => {
                let n = buf::fill_from(&mut buf, &datagram);
                return (Ok((n, from)), buf);
            }
            Some(Err(e)) => return (Err(e), buf),
            None => {}
        }
        let op = op::recvmsg_from(self.socket.as_raw_fd(), buf);
        AdoptOnDrop::new(&self.adopted, op, received_from::<B>).await
    }

    /// Sends one datagram to the connected peer.
    pub async fn send<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        op::send(self.socket.as_raw_fd(), buf).await
    }

    /// Receives one datagram from the connected peer (see [`recv_from`](Self::recv_from)).
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        let (res, buf) = self.recv_from(buf).await;
        (res.map(|(n, _)| n), buf)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        as_ip(self.socket.local_addr()?)
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        as_ip(self.socket.peer_addr()?)
    }

    /// `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.socket.set_broadcast(on)
    }

    /// Wraps a std socket (switched to non-blocking).
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket::wrap(Socket::from(socket)))
    }

    /// Gives back a std socket (non-blocking).
    ///
    /// # Errors
    ///
    /// `InvalidInput` while a dropped receive is still in flight (handing the socket over
    /// would lose its datagram: receive it first).
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        if self.adopted.borrow().is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "UdpSocket::into_std: a dropped receive is still in flight",
            ));
        }
        Ok(self.socket.into())
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// The datagram a completed receive added to its buffer, with its sender.
fn received_from<B: IoBufMut>(
    (res, buf): (io::Result<(usize, SocketAddr)>, B),
) -> io::Result<(Vec<u8>, SocketAddr)> {
    res.map(|(n, from)| {
        let init = buf::init_bytes(&buf, 0);
        (init[init.len() - n..].to_vec(), from)
    })
}

fn as_ip(addr: socket2::SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket"))
}
