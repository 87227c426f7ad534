//! [`UnixStream`]: a connected Unix stream socket.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;

use socket2::{Socket, Type};

use super::{local_addr, new_socket, path_addr, peer_addr, to_sockaddr, with_unix_addr};
use crate::buf::{IoBuf, IoBufMut};
use crate::net::split::{self, OwnedReadHalf, OwnedWriteHalf};
use crate::net::stream::{Family, StreamSocket};

/// A connected Unix stream socket. Reads, writes and their guarantees are those of
/// [`TcpStream`](crate::net::TcpStream): methods take `&self`, a dropped read is adopted so no
/// byte is lost, and [`into_split`](Self::into_split) gives two tasks a half each. It can also
/// pass descriptors ([`send_with_fds`](Self::send_with_fds)).
///
/// ```
/// use ringloop::net::UnixStream;
/// # ringloop::run(async {
/// let (a, b) = UnixStream::pair().unwrap();
/// let (res, _) = a.write_all(b"ping".as_slice()).await;
/// res.unwrap();
/// let (res, buf) = b.read_exact(Vec::with_capacity(4)).await;
/// res.unwrap();
/// assert_eq!(buf, b"ping");
/// # });
/// ```
pub struct UnixStream {
    inner: StreamSocket,
}

impl std::fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixStream")
            .field("socket", self.inner.socket())
            .finish_non_exhaustive()
    }
}

impl UnixStream {
    /// Connects to the socket bound at `path`.
    ///
    /// # Errors
    ///
    /// The connection's error (no such file, refused, `WouldBlock` when the listener's backlog
    /// is full); the message names the path.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let addr = path_addr(path.as_ref(), "connect to")?;
        UnixStream::connect_addr(&addr).await
    }

    /// Connects to `addr`, a path or an abstract name (see
    /// [`UnixListener::bind_addr`](super::UnixListener::bind_addr) for an example).
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); the message names the path or `@name`.
    pub async fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        // A Unix connect never waits: it succeeds, or fails at once (`EAGAIN` when the
        // listener's backlog is full, as with std and tokio). Readiness cannot tell when a
        // full backlog frees up, so there is nothing to hand to the backend.
        let setup = || -> io::Result<Socket> {
            let socket = new_socket(Type::STREAM)?;
            socket.connect(&to_sockaddr(addr)?)?;
            Ok(socket)
        };
        let socket = setup().map_err(|e| with_unix_addr(e, "connect to", addr))?;
        Ok(UnixStream::wrap(socket))
    }

    /// A pair of connected, unnamed streams (`socketpair(2)`).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let ty = Type::STREAM.nonblocking().cloexec();
        let (a, b) = Socket::pair(socket2::Domain::UNIX, ty, None)?;
        Ok((UnixStream::wrap(a), UnixStream::wrap(b)))
    }

    fn wrap(socket: Socket) -> UnixStream {
        UnixStream {
            inner: StreamSocket::new(socket, Family::Unix),
        }
    }

    pub(crate) fn from_owned(fd: OwnedFd) -> io::Result<UnixStream> {
        Ok(UnixStream {
            inner: StreamSocket::from_owned(fd, Family::Unix)?,
        })
    }

    /// Reads into the spare capacity of `buf`; `Ok(0)` means the peer closed its side. Bytes
    /// an earlier, dropped read received come first.
    pub async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.inner.read(buf).await
    }

    /// Reads into the spare capacity of each buffer in turn (one `readv`); `Ok(0)` is EOF.
    pub async fn readv<B: IoBufMut>(&self, bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
        self.inner.readv(bufs).await
    }

    /// Reads until the spare capacity of `buf` is full. On early EOF the error is
    /// [`io::ErrorKind::UnexpectedEof`] and `buf` holds the bytes that did arrive.
    pub async fn read_exact<B: IoBufMut>(&self, buf: B) -> (io::Result<()>, B) {
        self.inner.read_exact(buf).await
    }

    /// Writes the initialised bytes of `buf`; may write fewer. A closed peer gives
    /// `BrokenPipe`, never `SIGPIPE`.
    pub async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.inner.write(buf).await
    }

    /// Writes the initialised bytes of each buffer in turn in one `sendmsg`; may write fewer.
    pub async fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
        self.inner.writev(bufs).await
    }

    /// Writes all initialised bytes of `buf`.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        self.inner.write_all(buf).await
    }

    /// Sends the initialised bytes of `buf` (which must not be empty) with copies of `fds`
    /// (`SCM_RIGHTS`): the descriptors travel with the first byte. The copies belong to the
    /// send until the kernel has taken them, so the caller may close its own at once. May
    /// send fewer bytes than given: send the rest with [`write_all`](Self::write_all).
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use ringloop::net::UnixStream;
    /// # ringloop::run(async {
    /// let (a, b) = UnixStream::pair().unwrap();
    /// let (rx, tx) = std::io::pipe().unwrap();
    /// let (n, _) = a.send_with_fds(b"!".as_slice(), &[tx.as_fd()]).await;
    /// assert_eq!(n.unwrap(), 1);
    /// drop(tx);
    /// let (res, _) = b.recv_with_fds(Vec::with_capacity(8), 4).await;
    /// let (n, fds) = res.unwrap();
    /// assert_eq!((n, fds.len()), (1, 1));
    /// std::io::Write::write_all(&mut std::fs::File::from(fds.into_iter().next().unwrap()), b"via fd").unwrap();
    /// let mut got = String::new();
    /// std::io::Read::read_to_string(&mut &rx, &mut got).unwrap();
    /// assert_eq!(got, "via fd");
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `buf` is empty while `fds` is not (a stream sends descriptors with
    /// a byte); else the send's error.
    pub async fn send_with_fds<B: IoBuf>(
        &self,
        buf: B,
        fds: &[BorrowedFd<'_>],
    ) -> (io::Result<usize>, B) {
        if buf.bytes_init() == 0 && !fds.is_empty() {
            let e = io::Error::new(
                io::ErrorKind::InvalidInput,
                "send_with_fds on a stream needs at least one byte to carry the descriptors",
            );
            return (Err(e), buf);
        }
        self.inner.send_with_fds(buf, fds).await
    }

    /// Reads into the spare capacity of `buf`, with up to `max_fds` descriptors passed along
    /// (close-on-exec). See [`send_with_fds`](Self::send_with_fds) for an example.
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
        self.inner.recv_with_fds(buf, max_fds).await
    }

    /// Splits the stream into a read half and a write half two tasks can own (see
    /// [`TcpStream::into_split`](crate::net::TcpStream::into_split)).
    pub fn into_split(self) -> (OwnedReadHalf<UnixStream>, OwnedWriteHalf<UnixStream>) {
        split::split(self)
    }

    /// Shuts down the read, write or both halves (`shutdown(2)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.socket().shutdown(how)
    }

    /// The local address (unnamed unless the socket was bound).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(self.inner.socket())
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        peer_addr(self.inner.socket())
    }

    /// Wraps a connected std stream (switched to non-blocking).
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        Ok(UnixStream::wrap(Socket::from(stream)))
    }

    /// Gives back a std stream (non-blocking).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if a dropped read is still in flight or left bytes or descriptors
    /// behind (read them first).
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        Ok(self.inner.into_socket("UnixStream")?.into())
    }
}

impl split::sealed::Sealed for UnixStream {
    fn stream_socket(&self) -> &StreamSocket {
        &self.inner
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.socket().as_raw_fd()
    }
}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.socket().as_fd()
    }
}
