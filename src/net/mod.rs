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
pub mod ancillary;
mod resolve;
mod split;
mod stream;
mod tcp;
mod udp;
mod unix;

pub use ancillary::{ControlMessage, PacketInfo, ReceivedDatagram};
pub use resolve::{ToSocketAddrs, lookup_host};
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReuniteError, SplitStream};
pub use tcp::{ListenOptions, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};

use std::io;
use std::net::SocketAddr;

/// Adds the address to an error's message, keeping its kind.
pub(crate) fn with_addr(e: io::Error, what: &str, addr: SocketAddr) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {addr}: {e}"))
}
