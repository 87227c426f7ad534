//! Networking: sockets whose I/O goes through the loop's backend as owned-buffer ops, and
//! name resolution on the blocking pool.
//!
//! A socket type is thin: a descriptor (set up through `socket2`) plus methods that build ops.
//! Sockets are created non-blocking and close-on-exec; on io_uring the kernel waits for
//! readiness itself, on epoll the ops wait in the fd's queue. Methods take `&self` and owned
//! buffers, and give the buffers back with the result.
//!
//! # Types
//!
//! * TCP: [`TcpListener`] (with [`ListenOptions`]) and [`TcpStream`], which connects to
//!   anything [`ToSocketAddrs`] names (`"host:port"` is resolved by [`lookup_host`] on the
//!   blocking pool) and has vectored reads and writes.
//! * UDP: [`UdpSocket`], whose `sendmsg`/`recvmsg` carry ancillary data
//!   ([`ControlMessage`], [`ReceivedDatagram`], [`PacketInfo`]; see [`ancillary`]).
//! * Unix: [`UnixListener`], [`UnixStream`] and [`UnixDatagram`], on filesystem paths or
//!   Linux abstract names, passing descriptors with `send_with_fds`/`recv_with_fds`.
//! * Halves: [`TcpStream::into_split`] and [`UnixStream::into_split`] give an
//!   [`OwnedReadHalf`] and an [`OwnedWriteHalf`] that two tasks can own
//!   ([`ReuniteError`] when reuniting halves of different streams).
//!
//! # Cancelling by drop loses nothing
//!
//! A read, accept or receive future dropped while the kernel owns its op (a `timeout` gave up
//! on it) is *adopted* by its socket (`adopt.rs`): the op stays in flight, and the socket's
//! next call of that kind takes its result first — bytes, a connection, a datagram, passed
//! descriptors. Dropping the socket cancels an adopted op; whatever it received then is
//! closed or freed, never leaked.
//!
//! Receives of one socket (reads, accepts, datagram receives) run one at a time: one started
//! while another is in flight waits for it to finish or be dropped (`turn.rs`). So
//! concurrent reads get the bytes in the order they were started, and receives dropped
//! together leave one adopted op, which loses nothing. Writes never wait for reads.
//!
//! # futures-io and tokio traits
//!
//! The stream types and their halves implement futures-io's `AsyncRead`/`AsyncWrite` (and
//! tokio's, feature `tokio-io`) with the same guarantee: the receive a `poll_read` starts
//! waits in the stream's adopted slot, so abandoning the poll loses nothing; see
//! [`TcpStream`]'s docs for when a `poll_write`'s error is reported.
//!
//! # Implementation
//!
//! `stream.rs` is the byte-stream core both stream types wrap (reads with adoption, writes,
//! fd passing, and under `stream/` the poll-based reads and writes that `io_traits.rs` turns
//! into futures-io's `AsyncRead`/`AsyncWrite` impls); `adopt.rs` holds a dropped receive's op and `turn.rs` orders receives; `split.rs` shares it between halves through an `Rc` (the loop is
//! single-threaded); `resolve.rs` turns [`ToSocketAddrs`] values into addresses.
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
mod incoming;
mod io_traits;
mod recv;
mod resolve;
mod split;
mod stream;
mod tcp;
mod turn;
mod udp;
mod unix;

pub use ancillary::{ControlMessage, PacketInfo, ReceivedDatagram};
pub use incoming::Incoming;
pub use recv::RecvStream;
pub use resolve::{ToSocketAddrs, lookup_host};
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReuniteError, SplitStream};
pub use tcp::{ListenOptions, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};

#[cfg(feature = "hyper")]
pub(crate) use io_traits::PollReadWith;
/// For layers over a connected stream (TLS): its shared core, reached through the sealed
/// trait both stream types implement.
#[cfg(feature = "tls")]
pub(crate) use split::sealed::Sealed as HasStreamCore;
#[cfg(feature = "tls")]
pub(crate) use turn::Turn;

use std::io;
use std::net::SocketAddr;

/// Adds the address to an error's message, keeping its kind.
pub(crate) fn with_addr(e: io::Error, what: &str, addr: SocketAddr) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {addr}: {e}"))
}
