//! Networking: sockets whose I/O goes through the loop's backend as owned-buffer ops, and
//! name resolution on the blocking pool.
//!
//! A socket type is thin: a descriptor (set up through `socket2`) plus methods that build ops.
//! Sockets are created non-blocking and close-on-exec; on io_uring the kernel waits for
//! readiness itself, on epoll the ops wait in the fd's queue.
//!
//! ```
//! use ringloop::net::{TcpListener, TcpStream};
//! # ringloop::run(async {
//! let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = ringloop::spawn(async move {
//!     let (stream, _) = listener.accept().await.unwrap();
//!     let (res, buf) = stream.read(Vec::with_capacity(64)).await;
//!     res.unwrap();
//!     let (res, _) = stream.write_all(buf).await;
//!     res.unwrap();
//! });
//! let client = TcpStream::connect(addr).await.unwrap();
//! let (res, _) = client.write_all(b"ping".as_slice()).await;
//! res.unwrap();
//! let (res, echo) = client.read_exact(Vec::with_capacity(4)).await;
//! res.unwrap();
//! assert_eq!(echo, b"ping");
//! server.await.unwrap();
//! # });
//! ```

mod adopt;
mod incoming;
mod recv;
mod tcp;
mod udp;

pub use incoming::Incoming;
pub use recv::RecvStream;
pub use tcp::{ListenOptions, TcpListener, TcpStream};
pub use udp::UdpSocket;

use std::io;
use std::net::SocketAddr;

/// Adds the address to an error's message, keeping its kind.
pub(crate) fn with_addr(e: io::Error, what: &str, addr: SocketAddr) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {addr}: {e}"))
}

/// Resolves `"host:port"` (or `"ip:port"`) to socket addresses. Resolution can block, so it
/// runs on the blocking pool, never on the loop thread.
///
/// ```
/// # ringloop::run(async {
/// let addrs = ringloop::net::lookup_host("127.0.0.1:8080").await.unwrap();
/// assert_eq!(addrs, ["127.0.0.1:8080".parse().unwrap()]);
/// # });
/// ```
///
/// # Errors
///
/// A malformed input or a failed lookup; the message names `host`. No address found is
/// [`io::ErrorKind::NotFound`].
pub async fn lookup_host(host: &str) -> io::Result<Vec<SocketAddr>> {
    // An address needs no resolver: answer at once.
    if let Ok(addr) = host.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let name = host.to_owned();
    let resolved = crate::spawn_blocking(move || {
        std::net::ToSocketAddrs::to_socket_addrs(&name).map(|it| it.collect::<Vec<_>>())
    })
    .await
    .map_err(|e| io::Error::other(format!("lookup of {host} did not finish: {e}")))?;
    let addrs = resolved.map_err(|e| io::Error::new(e.kind(), format!("lookup of {host}: {e}")))?;
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("lookup of {host}: no addresses"),
        ));
    }
    Ok(addrs)
}
