//! Unix domain sockets: [`UnixListener`], [`UnixStream`] and [`UnixDatagram`].
//!
//! Addresses are [`std::os::unix::net::SocketAddr`]: a filesystem path
//! ([`SocketAddr::from_pathname`]), a Linux abstract name (`SocketAddr::from_abstract_name`
//! from [`std::os::linux::net::SocketAddrExt`]: no file, gone with the last socket), or
//! unnamed (an unbound or `pair()` socket). Methods that take a path accept anything
//! `AsRef<Path>`; the `*_addr` variants take a `SocketAddr` for abstract names. Errors name the
//! path or name they concern.
//!
//! Both socket types can pass descriptors (`SCM_RIGHTS`): `send_with_fds` sends copies of
//! borrowed descriptors, `recv_with_fds` returns them as [`OwnedFd`](std::os::fd::OwnedFd)s,
//! close-on-exec. A receive whose descriptors do not fit fails, closing the ones that came.

mod datagram;
mod listener;
mod stream;

pub use datagram::UnixDatagram;
pub use listener::UnixListener;
pub use stream::UnixStream;

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use socket2::{Domain, SockAddr, Socket, Type};

/// The socket2 form of `addr`, for bind, connect and send.
pub(crate) fn to_sockaddr(addr: &SocketAddr) -> io::Result<SockAddr> {
    if let Some(path) = addr.as_pathname() {
        return SockAddr::unix(path);
    }
    if let Some(name) = addr.as_abstract_name() {
        // socket2 reads a leading NUL as "abstract".
        let mut bytes = Vec::with_capacity(name.len() + 1);
        bytes.push(0);
        bytes.extend_from_slice(name);
        return SockAddr::unix(std::ffi::OsStr::from_bytes(&bytes));
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "an unnamed Unix socket address cannot be bound or connected to",
    ))
}

/// The std form of an address the kernel gave back (accept, recvfrom, getsockname).
pub(crate) fn from_sockaddr(addr: &SockAddr) -> io::Result<SocketAddr> {
    if let Some(path) = addr.as_pathname() {
        return SocketAddr::from_pathname(path);
    }
    if let Some(name) = addr.as_abstract_namespace() {
        return SocketAddr::from_abstract_name(name);
    }
    if addr.family() != libc::AF_UNIX as libc::sa_family_t && addr.len() > 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a Unix socket address",
        ));
    }
    unnamed()
}

/// An unnamed address. std cannot build one directly, so one is taken from an unbound
/// socket, once per process.
fn unnamed() -> io::Result<SocketAddr> {
    static UNNAMED: OnceLock<SocketAddr> = OnceLock::new();
    if let Some(addr) = UNNAMED.get() {
        return Ok(addr.clone());
    }
    let addr = std::os::unix::net::UnixDatagram::unbound()?.local_addr()?;
    Ok(UNNAMED.get_or_init(|| addr).clone())
}

/// How an address reads in a message: its path, `@name` for an abstract name, or `(unnamed)`.
pub(crate) fn describe(addr: &SocketAddr) -> String {
    if let Some(path) = addr.as_pathname() {
        return path.display().to_string();
    }
    if let Some(name) = addr.as_abstract_name() {
        return format!("@{}", String::from_utf8_lossy(name));
    }
    "(unnamed)".to_owned()
}

/// Adds what was done and to which address to an error's message, keeping its kind.
pub(crate) fn with_unix_addr(e: io::Error, what: &str, addr: &SocketAddr) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", describe(addr)))
}

/// The address for `path`; an error names the path.
pub(crate) fn path_addr(path: &Path, what: &str) -> io::Result<SocketAddr> {
    SocketAddr::from_pathname(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{what} {}: {e}", path.display())))
}

/// A new non-blocking, close-on-exec Unix socket of `ty`.
pub(crate) fn new_socket(ty: Type) -> io::Result<Socket> {
    Socket::new(Domain::UNIX, ty.nonblocking().cloexec(), None)
}

/// The address a socket is bound to.
pub(crate) fn local_addr(socket: &Socket) -> io::Result<SocketAddr> {
    from_sockaddr(&socket.local_addr()?)
}

/// The address of a socket's peer.
pub(crate) fn peer_addr(socket: &Socket) -> io::Result<SocketAddr> {
    from_sockaddr(&socket.peer_addr()?)
}
