//! UDP: [`UdpSocket`].

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use socket2::{Domain, Socket, Type};

use super::adopt::{self, AdoptOnDrop, Adopted};
use super::ancillary::{ControlMessage, ReceivedDatagram};
use super::with_addr;
use crate::buf::{self, IoBuf, IoBufMut};
use crate::op::{self, Control};

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
    /// A dropped receive still in flight: the datagram, its sender and its control messages.
    adopted: Adopted<io::Result<(Vec<u8>, ReceivedDatagram)>>,
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
        self.sendmsg(buf, Some(addr), &[]).await
    }

    /// Sends the initialised bytes of `buf` as one datagram to `to` (the connected peer when
    /// `None`), with ancillary data (for example [`ControlMessage::ip_ttl`]).
    ///
    /// ```
    /// use ringloop::net::{ControlMessage, UdpSocket};
    /// # ringloop::run(async {
    /// let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// b.set_recv_ttl(true).unwrap();
    /// let to = Some(b.local_addr().unwrap());
    /// let (n, _) = a.sendmsg(b"hop".as_slice(), to, &[ControlMessage::ip_ttl(9)]).await;
    /// assert_eq!(n.unwrap(), 3);
    /// let (res, _) = b.recvmsg(Vec::with_capacity(16), ControlMessage::space(4)).await;
    /// let msg = res.unwrap();
    /// assert_eq!(msg.control[0].as_ip_ttl(), Some(9));
    /// # });
    /// ```
    pub async fn sendmsg<B: IoBuf>(
        &self,
        buf: B,
        to: Option<SocketAddr>,
        control: &[ControlMessage],
    ) -> (io::Result<usize>, B) {
        let mut encoded = Control::new();
        for m in control {
            encoded.push(m.level, m.kind, &m.data);
        }
        let res = op::sendmsg(self.socket.as_raw_fd(), buf, to.map(Into::into), encoded).await;
        match (res, to) {
            ((Err(e), buf), Some(to)) => (Err(with_addr(e, "send to", to)), buf),
            (res, _) => res,
        }
    }

    fn wrap(socket: Socket) -> UdpSocket {
        UdpSocket {
            _registration: op::Registration::new(socket.as_raw_fd()),
            socket,
            adopted: Adopted::default(),
        }
    }

    /// Receives one datagram into the spare capacity of `buf` (truncated if longer), with
    /// its sender's address. A datagram an earlier, dropped receive got comes first.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> (io::Result<(usize, SocketAddr)>, B) {
        let (res, buf) = self.recvmsg(buf, 0).await;
        (res.map(|d| (d.len, d.from)), buf)
    }

    /// Receives one datagram with up to `control_len` bytes of ancillary data (size it with
    /// [`ControlMessage::space`]); see [`sendmsg`](Self::sendmsg) for an example. A datagram
    /// an earlier, dropped receive got comes first, with the control messages that receive
    /// had room for.
    pub async fn recvmsg<B: IoBufMut>(
        &self,
        mut buf: B,
        control_len: usize,
    ) -> (io::Result<ReceivedDatagram>, B) {
        let _turn = self.adopted.take_turn().await;
        match adopt::resume(&self.adopted).await {
            // Cancelled (runtime shutdown): nothing was received; receive afresh.
            Some(Err(e)) if e.raw_os_error() == Some(libc::ECANCELED) => {}
            Some(Ok((datagram, mut meta))) => {
                meta.len = buf::fill_from(&mut buf, &datagram);
                meta.truncated |= meta.len < datagram.len();
                return (Ok(meta), buf);
            }
            Some(Err(e)) => return (Err(e), buf),
            None => {}
        }
        let op = op::recvmsg(self.socket.as_raw_fd(), buf, control_len);
        let (res, buf) = AdoptOnDrop::new(&self.adopted, op, received_from::<B>).await;
        (res.and_then(datagram_of), buf)
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

    /// `IP_RECVTTL`: received datagrams carry their TTL ([`ControlMessage::as_ip_ttl`]).
    pub fn set_recv_ttl(&self, on: bool) -> io::Result<()> {
        self.set_ip_option(libc::IP_RECVTTL, on)
    }

    /// `IP_PKTINFO`: received datagrams say where they arrived
    /// ([`ControlMessage::as_ip_pktinfo`]).
    pub fn set_recv_pktinfo(&self, on: bool) -> io::Result<()> {
        self.set_ip_option(libc::IP_PKTINFO, on)
    }

    /// `IP_RECVTOS`: received datagrams carry their TOS byte ([`ControlMessage::as_ip_tos`]).
    pub fn set_recv_tos(&self, on: bool) -> io::Result<()> {
        self.socket.set_recv_tos_v4(on)
    }

    fn set_ip_option(&self, name: i32, on: bool) -> io::Result<()> {
        op::set_int_option(
            self.socket.as_raw_fd(),
            libc::IPPROTO_IP,
            name,
            i32::from(on),
        )
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
        if self.adopted.is_occupied() {
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

/// The datagram a completed receive added to its buffer, with its sender and controls.
fn received_from<B: IoBufMut>(
    (res, buf): (io::Result<op::Received>, B),
) -> io::Result<(Vec<u8>, ReceivedDatagram)> {
    let msg = res?;
    let init = buf::init_bytes(&buf, 0);
    let bytes = init[init.len() - msg.len..].to_vec();
    Ok((bytes, datagram_of(msg)?))
}

fn datagram_of(msg: op::Received) -> io::Result<ReceivedDatagram> {
    Ok(ReceivedDatagram {
        len: msg.len,
        truncated: msg.truncated(),
        control_truncated: msg.control_truncated(),
        from: as_ip(msg.from)?,
        control: msg.control,
    })
}

fn as_ip(addr: socket2::SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket"))
}
