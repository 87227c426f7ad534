//! [`UnixListener`]: a Unix stream socket listening for connections.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;

use socket2::{Socket, Type};

use super::{UnixStream, from_sockaddr, local_addr, new_socket, path_addr, to_sockaddr};
use crate::net::adopt::{self, Adopted, AdoptedAccept};

/// The `listen(2)` backlog of [`UnixListener::bind`].
const BACKLOG: i32 = 1024;

/// A Unix stream socket listening for connections, on a path or an abstract name.
///
/// As with [`TcpListener`](crate::net::TcpListener), an accept future dropped while the
/// kernel owns its op is adopted: its connection goes to the next `accept`. The socket file of
/// a path stays after the listener is dropped, as with std (remove it yourself).
///
/// ```
/// use ringloop::net::{UnixListener, UnixStream};
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-listener-{}", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path).unwrap();
/// let client = UnixStream::connect(&path).await.unwrap();
/// let (server, _peer) = listener.accept().await.unwrap();
/// let (res, _) = client.write_all(b"hi".as_slice()).await;
/// res.unwrap();
/// let (res, buf) = server.read_exact(Vec::with_capacity(2)).await;
/// res.unwrap();
/// assert_eq!(buf, b"hi");
/// std::fs::remove_file(&path).unwrap();
/// # });
/// ```
pub struct UnixListener {
    /// Keeps the socket registered with the epoll backend; dropped before `socket` closes.
    _registration: crate::op::Registration,
    socket: Socket,
    adopted: AdoptedAccept,
}

impl std::fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixListener")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl UnixListener {
    /// Binds to the filesystem path `path` and listens.
    ///
    /// # Errors
    ///
    /// Socket, bind or listen errors (the path exists, its directory does not...); the message
    /// names the path.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let addr = path_addr(path.as_ref(), "bind")?;
        UnixListener::bind_addr(&addr)
    }

    /// Binds to `addr` (a path or an abstract name) and listens.
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::os::unix::net::SocketAddr;
    /// use ringloop::net::{UnixListener, UnixStream};
    /// # ringloop::run(async {
    /// let name = format!("ringloop-doc-abstract-{}", std::process::id());
    /// let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let listener = UnixListener::bind_addr(&addr).unwrap();
    /// let _client = UnixStream::connect_addr(&addr).await.unwrap();
    /// let (_server, _) = listener.accept().await.unwrap();
    /// assert_eq!(listener.local_addr().unwrap().as_abstract_name(), Some(name.as_bytes()));
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind); the message names the path or `@name`.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        let setup = || -> io::Result<Socket> {
            let socket = new_socket(Type::STREAM)?;
            socket.bind(&to_sockaddr(addr)?)?;
            socket.listen(BACKLOG)?;
            Ok(socket)
        };
        let socket = setup().map_err(|e| super::with_unix_addr(e, "bind", addr))?;
        Ok(UnixListener::wrap(socket))
    }

    fn wrap(socket: Socket) -> UnixListener {
        UnixListener {
            _registration: crate::op::Registration::new(socket.as_raw_fd()),
            socket,
            adopted: Adopted::default(),
        }
    }

    /// Accepts a connection (one that an earlier, dropped accept received comes first), with
    /// the peer's address (usually unnamed: clients rarely bind).
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (fd, peer) = adopt::accept(self.socket.as_raw_fd(), &self.adopted).await?;
        let stream = UnixStream::from_owned(fd)?;
        Ok((stream, from_sockaddr(&peer)?))
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(&self.socket)
    }

    /// Wraps a std listener (switched to non-blocking).
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener::wrap(Socket::from(listener)))
    }

    /// Gives back a std listener (non-blocking). An adopted accept is cancelled first (a
    /// connection it already got is closed).
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        self.adopted.cancel();
        Ok(self.socket.into())
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
