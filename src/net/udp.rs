//! UDP: [`UdpSocket`].

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use socket2::{Domain, Socket, Type};

use super::with_addr;
use crate::buf::{IoBuf, IoBufMut};
use crate::op;

/// A UDP socket.
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
#[derive(Debug)]
pub struct UdpSocket {
    socket: Socket,
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
        Ok(UdpSocket {
            socket: setup().map_err(|e| with_addr(e, "bind", addr))?,
        })
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

    /// Receives one datagram into the spare capacity of `buf` (truncated if longer), with
    /// its sender's address.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> (io::Result<(usize, SocketAddr)>, B) {
        op::recvmsg_from(self.socket.as_raw_fd(), buf).await
    }

    /// Sends one datagram to the connected peer.
    pub async fn send<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        op::send(self.socket.as_raw_fd(), buf).await
    }

    /// Receives one datagram from the connected peer.
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        op::recv(self.socket.as_raw_fd(), buf).await
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
        Ok(UdpSocket {
            socket: Socket::from(socket),
        })
    }

    /// Gives back a std socket (non-blocking).
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
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

fn as_ip(addr: socket2::SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket"))
}
