//! [`UnixDatagram`]: a Unix datagram socket.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;

use socket2::{SockAddr, Socket, Type};

use super::{
    from_sockaddr, local_addr, new_socket, path_addr, peer_addr, to_sockaddr, with_unix_addr,
};
use crate::buf::{self, IoBuf, IoBufMut};
use crate::net::adopt::{self, AdoptOnDrop, Adopted};
use crate::net::stream::{control_with, truncated};
use crate::op::{self, Control};

/// A datagram a dropped receive got, kept for the next receive.
struct Datagram {
    bytes: Vec<u8>,
    from: SockAddr,
    fds: Vec<OwnedFd>,
    flags: i32,
}

/// A Unix datagram socket: bound to a path or an abstract name, unbound, or one of a
/// connected [`pair`](Self::pair).
///
/// A receive dropped while the kernel owns its op is adopted, as for
/// [`UdpSocket`](crate::net::UdpSocket): its datagram (and any descriptors) goes to the next
/// receive.
///
/// ```
/// use ringloop::net::UnixDatagram;
/// # ringloop::run(async {
/// let dir = std::env::temp_dir();
/// let path = dir.join(format!("ringloop-doc-dgram-{}", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// let server = UnixDatagram::bind(&path).unwrap();
/// let client = UnixDatagram::unbound().unwrap();
/// let (n, _) = client.send_to(b"ping".as_slice(), &path).await;
/// assert_eq!(n.unwrap(), 4);
/// let (res, buf) = server.recv_from(Vec::with_capacity(16)).await;
/// let (n, from) = res.unwrap();
/// assert_eq!((&buf[..n], from.is_unnamed()), (&b"ping"[..], true));
/// std::fs::remove_file(&path).unwrap();
/// # });
/// ```
pub struct UnixDatagram {
    /// Keeps the socket registered with the epoll backend; dropped before `socket` closes.
    _registration: op::Registration,
    socket: Socket,
    adopted: Adopted<io::Result<Datagram>>,
}

impl std::fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl UnixDatagram {
    /// A socket bound to the filesystem path `path`.
    ///
    /// # Errors
    ///
    /// Socket or bind errors; the message names the path.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        let addr = path_addr(path.as_ref(), "bind")?;
        UnixDatagram::bind_addr(&addr)
    }

    /// A socket bound to `addr`, a path or an abstract name.
    ///
    /// # Errors
    ///
    /// Socket or bind errors; the message names the path or `@name`.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        let setup = || -> io::Result<Socket> {
            let socket = new_socket(Type::DGRAM)?;
            socket.bind(&to_sockaddr(addr)?)?;
            Ok(socket)
        };
        let socket = setup().map_err(|e| with_unix_addr(e, "bind", addr))?;
        Ok(UnixDatagram::wrap(socket))
    }

    /// An unbound socket: it can send, and receive replies only once connected to a peer
    /// that knows where to answer (peers see it as unnamed).
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(UnixDatagram::wrap(new_socket(Type::DGRAM)?))
    }

    /// A pair of connected, unnamed sockets (`socketpair(2)`).
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let ty = Type::DGRAM.nonblocking().cloexec();
        let (a, b) = Socket::pair(socket2::Domain::UNIX, ty, None)?;
        Ok((UnixDatagram::wrap(a), UnixDatagram::wrap(b)))
    }

    fn wrap(socket: Socket) -> UnixDatagram {
        UnixDatagram {
            _registration: op::Registration::new(socket.as_raw_fd()),
            socket,
            adopted: Adopted::default(),
        }
    }

    /// Sets the default peer to the socket at `path`: `send` goes there and only its
    /// datagrams are received.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.connect_addr(&path_addr(path.as_ref(), "connect to")?)
    }

    /// Sets the default peer to `addr`, a path or an abstract name.
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        to_sockaddr(addr)
            .and_then(|to| self.socket.connect(&to))
            .map_err(|e| with_unix_addr(e, "connect to", addr))
    }

    /// Sends the initialised bytes of `buf` as one datagram to the socket at `path`.
    pub async fn send_to<B: IoBuf>(
        &self,
        buf: B,
        path: impl AsRef<Path>,
    ) -> (io::Result<usize>, B) {
        match path_addr(path.as_ref(), "send to") {
            Ok(addr) => self.send_to_addr(buf, &addr).await,
            Err(e) => (Err(e), buf),
        }
    }

    /// Sends the initialised bytes of `buf` as one datagram to `addr`.
    pub async fn send_to_addr<B: IoBuf>(
        &self,
        buf: B,
        addr: &SocketAddr,
    ) -> (io::Result<usize>, B) {
        let to = match to_sockaddr(addr) {
            Ok(to) => to,
            Err(e) => return (Err(with_unix_addr(e, "send to", addr)), buf),
        };
        let (res, buf) = op::sendmsg(self.socket.as_raw_fd(), buf, Some(to), Control::new()).await;
        (res.map_err(|e| with_unix_addr(e, "send to", addr)), buf)
    }

    /// Sends one datagram to the connected peer.
    pub async fn send<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        op::send(self.socket.as_raw_fd(), buf).await
    }

    /// Sends one datagram to the connected peer with copies of `fds` (`SCM_RIGHTS`; see
    /// [`UnixStream::send_with_fds`](super::UnixStream::send_with_fds)).
    pub async fn send_with_fds<B: IoBuf>(
        &self,
        buf: B,
        fds: &[BorrowedFd<'_>],
    ) -> (io::Result<usize>, B) {
        let control = match control_with(fds) {
            Ok(c) => c,
            Err(e) => return (Err(e), buf),
        };
        op::sendmsg(self.socket.as_raw_fd(), buf, None, control).await
    }

    /// Receives one datagram into the spare capacity of `buf` (truncated if longer), with
    /// its sender's address. A datagram an earlier, dropped receive got comes first.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> (io::Result<(usize, SocketAddr)>, B) {
        let (res, buf) = self.receive(buf, None).await;
        (
            res.and_then(|(n, from, _)| Ok((n, from_sockaddr(&from)?))),
            buf,
        )
    }

    /// Receives one datagram from the connected peer (see [`recv_from`](Self::recv_from)).
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        let (res, buf) = self.receive(buf, None).await;
        (res.map(|(n, _, _)| n), buf)
    }

    /// Receives one datagram with up to `max_fds` descriptors passed along (close-on-exec).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidData`] if more than `max_fds` descriptors came: those that
    /// arrived are closed (none leaks) and the bytes are in `buf`.
    pub async fn recv_with_fds<B: IoBufMut>(
        &self,
        buf: B,
        max_fds: usize,
    ) -> (io::Result<(usize, Vec<OwnedFd>)>, B) {
        let (res, buf) = self.receive(buf, Some(max_fds)).await;
        (res.map(|(n, _, fds)| (n, fds)), buf)
    }

    /// One receive; `max_fds` is `None` for a plain receive, whose passed descriptors (if a
    /// peer sent any) the kernel discards.
    async fn receive<B: IoBufMut>(
        &self,
        mut buf: B,
        max_fds: Option<usize>,
    ) -> (io::Result<(usize, SockAddr, Vec<OwnedFd>)>, B) {
        let _turn = self.adopted.take_turn().await;
        let datagram = match adopt::resume(&self.adopted).await {
            // Cancelled (runtime shutdown): nothing was received; receive afresh.
            Some(Err(e)) if e.raw_os_error() == Some(libc::ECANCELED) => None,
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => return (Err(e), buf),
            None => None,
        };
        let (len, datagram) = match datagram {
            Some(d) => (buf::fill_from(&mut buf, &d.bytes), d),
            None => {
                let op = op::recvmsg(self.socket.as_raw_fd(), buf, fds_room(max_fds));
                let (res, b) = AdoptOnDrop::new(&self.adopted, op, datagram_of::<B>).await;
                buf = b;
                match res {
                    Ok(msg) => (
                        msg.len,
                        Datagram {
                            bytes: Vec::new(),
                            from: msg.from,
                            fds: msg.fds,
                            flags: msg.flags,
                        },
                    ),
                    Err(e) => return (Err(e), buf),
                }
            }
        };
        if let Some(max) = max_fds
            && (datagram.flags & libc::MSG_CTRUNC != 0 || datagram.fds.len() > max)
        {
            return (Err(truncated(len, datagram.fds.len(), max)), buf);
        }
        (Ok((len, datagram.from, datagram.fds)), buf)
    }

    /// The local address (unnamed unless bound).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(&self.socket)
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        peer_addr(&self.socket)
    }

    /// Shuts down the read, write or both directions (`shutdown(2)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.shutdown(how)
    }

    /// Wraps a std socket (switched to non-blocking).
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        socket.set_nonblocking(true)?;
        Ok(UnixDatagram::wrap(Socket::from(socket)))
    }

    /// Gives back a std socket (non-blocking).
    ///
    /// # Errors
    ///
    /// `InvalidInput` while a dropped receive is still in flight (receive its datagram first).
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixDatagram> {
        if self.adopted.is_occupied() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "UnixDatagram::into_std: a dropped receive is still in flight",
            ));
        }
        Ok(self.socket.into())
    }
}

/// Control buffer room for `max_fds` descriptors (none for a plain receive).
fn fds_room(max_fds: Option<usize>) -> usize {
    max_fds.map_or(0, op::fds_space)
}

/// The datagram a completed receive added to its buffer, with its sender and descriptors.
fn datagram_of<B: IoBufMut>((res, buf): (io::Result<op::Received>, B)) -> io::Result<Datagram> {
    let msg = res?;
    let init = buf::init_bytes(&buf, 0);
    Ok(Datagram {
        bytes: init[init.len() - msg.len..].to_vec(),
        flags: msg.flags,
        from: msg.from,
        fds: msg.fds,
    })
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl AsFd for UnixDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
