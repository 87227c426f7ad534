//! asyncio's Streams: [`open_connection`] and [`start_server`] (TCP),
//! [`open_unix_connection`] and [`start_unix_server`] (Unix sockets) give a [`StreamReader`]
//! (buffered, framed reads: `readline`, `readuntil`, `readexactly`) and a [`StreamWriter`]
//! (`write`, then `drain` for backpressure) for each connection.
//!
//! ```
//! use ringloop::streams::{open_connection, start_server};
//! # ringloop::run(async {
//! // An upper-casing line server.
//! let server = start_server(
//!     |mut reader, writer| async move {
//!         while let Ok(line) = reader.readline().await {
//!             if line.is_empty() {
//!                 break; // EOF
//!             }
//!             let _ = writer.write(&line.to_ascii_uppercase());
//!         }
//!     },
//!     "127.0.0.1:0",
//! )
//! .await
//! .unwrap();
//! let addr = server.local_addrs()[0].as_inet().unwrap();
//!
//! let (mut reader, writer) = open_connection(addr).await.unwrap();
//! writer.write(b"hello\n").unwrap();
//! assert_eq!(reader.readline().await.unwrap(), b"HELLO\n");
//! writer.close();
//! server.close();
//! server.wait_closed().await;
//! # });
//! ```
//!
//! # How it works
//!
//! As in asyncio, streams are a protocol on a [`Transport`].
//! The connection's protocol feeds every received chunk into the reader through a
//! [`StreamFeeder`], the peer's EOF into `feed_eof` and a connection error into
//! `set_exception`; `pause_writing`/`resume_writing` and `connection_lost` wake the writer's
//! `drain` and `wait_closed`.
//!
//! Both directions are bounded. Reading: past twice the reader's limit the protocol pauses
//! the transport's reading, and resumes it once the reader has drained to the limit. Writing:
//! `drain` waits while the transport's write buffer is above its high-water mark (64 KiB by
//! default, see [`Transport::set_write_buffer_limits`](crate::transport::Transport::set_write_buffer_limits)).
//!
//! The reader and the writer share the connection: it closes when the writer is closed or
//! when both are dropped. The peer's EOF does not close it (the writer may go on writing).
//!
//! # Differences from asyncio
//!
//! Rust has no exceptions to raise and no garbage collector to finalise a stream, so:
//! - framed reads return [`ReadError`]; a line over the limit leaves its bytes in the reader
//!   (asyncio's `readline` discards them), and bytes received before a connection error are
//!   read before the error is reported;
//! - `read(-1)` is [`StreamReader::read_until_eof`];
//! - `write` returns an error once the writer is closing, where asyncio drops the bytes.
//!
//! The asyncio names `read`, `close` are inherent methods, so they win over the futures-io
//! extension methods of the same name: call those as `AsyncReadExt::read(&mut reader, buf)`
//! and `AsyncWriteExt::close(&mut writer)`.

mod duplex;
mod error;
mod feeder;
mod protocol;
mod reader;
#[cfg(feature = "tls")]
mod tls;
mod writer;

pub use duplex::Duplex;
pub use error::{IncompleteReadError, LimitOverrunError, ReadError};
pub use feeder::StreamFeeder;
pub use reader::{DEFAULT_LIMIT, StreamReader};
#[cfg(feature = "tls")]
pub use tls::{
    open_tls_connection, open_unix_tls_connection, start_tls_server, start_unix_tls_server,
};
pub use writer::StreamWriter;

use std::future::Future;
use std::io;
use std::path::Path;
use std::rc::Rc;

use crate::transport::{self, HostAddr, Server, SharedProtocol, Transport};
use protocol::StreamProtocol;

/// Connects to `addr` (a [`SocketAddr`](std::net::SocketAddr) or `"host:port"`, trying each
/// resolved address in turn) and returns the connection's reader and writer, with the
/// [`DEFAULT_LIMIT`].
///
/// ```
/// use ringloop::streams::open_connection;
/// # ringloop::run(async {
/// let listener = ringloop::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
/// let addr = listener.local_addr().unwrap();
/// let (_reader, writer) = open_connection(addr).await.unwrap();
/// let peer = writer.get_extra_info("peername").unwrap();
/// assert_eq!(peer.as_addr().unwrap().as_inet(), Some(addr));
/// # });
/// ```
///
/// # Errors
///
/// A failed lookup, or the connect error (naming the address).
pub async fn open_connection(
    addr: impl Into<HostAddr>,
) -> io::Result<(StreamReader, StreamWriter)> {
    open_connection_with_limit(addr, DEFAULT_LIMIT).await
}

/// [`open_connection`] with the reader's limit (asyncio's `limit=`).
///
/// # Errors
///
/// As [`open_connection`].
pub async fn open_connection_with_limit(
    addr: impl Into<HostAddr>,
    limit: usize,
) -> io::Result<(StreamReader, StreamWriter)> {
    let made = transport::create_connection(|| StreamProtocol::new(limit, None), addr).await?;
    into_pair(made)
}

/// Listens on `addr` and runs `client_connected_cb(reader, writer)` as a new task for each
/// connection (asyncio's `start_server`). Serving starts at once; stop it with
/// [`Server::close`].
///
/// See the [module docs](self) for an example.
///
/// # Errors
///
/// A failed lookup, or a bind/listen error (naming the address).
pub async fn start_server<F, Fut>(
    client_connected_cb: F,
    addr: impl Into<HostAddr>,
) -> io::Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    start_server_with_limit(client_connected_cb, addr, DEFAULT_LIMIT).await
}

/// [`start_server`] with the readers' limit (asyncio's `limit=`).
///
/// # Errors
///
/// As [`start_server`].
pub async fn start_server_with_limit<F, Fut>(
    client_connected_cb: F,
    addr: impl Into<HostAddr>,
    limit: usize,
) -> io::Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    transport::create_server(server_protocols(client_connected_cb, limit), addr).await
}

/// Connects to the Unix socket at `path` and returns the connection's reader and writer
/// (asyncio's `open_unix_connection`), with the [`DEFAULT_LIMIT`].
///
/// ```
/// use ringloop::streams::{open_unix_connection, start_unix_server};
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-streams-{}", std::process::id()));
/// let server = start_unix_server(
///     |_reader, writer| async move {
///         let _ = writer.write(b"hello over a unix socket\n");
///     },
///     &path,
/// )
/// .await
/// .unwrap();
/// let (mut reader, _writer) = open_unix_connection(&path).await.unwrap();
/// assert_eq!(reader.readline().await.unwrap(), b"hello over a unix socket\n");
/// server.close();
/// server.wait_closed().await;
/// # });
/// ```
///
/// # Errors
///
/// The connect error (no such file, refused...); the message names the path.
pub async fn open_unix_connection(
    path: impl AsRef<Path>,
) -> io::Result<(StreamReader, StreamWriter)> {
    open_unix_connection_with_limit(path, DEFAULT_LIMIT).await
}

/// [`open_unix_connection`] with the reader's limit.
///
/// # Errors
///
/// As [`open_unix_connection`].
pub async fn open_unix_connection_with_limit(
    path: impl AsRef<Path>,
    limit: usize,
) -> io::Result<(StreamReader, StreamWriter)> {
    let made = transport::create_unix_connection(|| StreamProtocol::new(limit, None), path).await?;
    into_pair(made)
}

/// Listens on the Unix socket `path` and runs `client_connected_cb(reader, writer)` as a new
/// task for each connection (asyncio's `start_unix_server`); see
/// [`open_unix_connection`] for an example. The socket file is handled as
/// [`transport::create_unix_server`] does.
///
/// # Errors
///
/// A bind/listen error (naming the path).
pub async fn start_unix_server<F, Fut>(
    client_connected_cb: F,
    path: impl AsRef<Path>,
) -> io::Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    start_unix_server_with_limit(client_connected_cb, path, DEFAULT_LIMIT).await
}

/// [`start_unix_server`] with the readers' limit.
///
/// # Errors
///
/// As [`start_unix_server`].
pub async fn start_unix_server_with_limit<F, Fut>(
    client_connected_cb: F,
    path: impl AsRef<Path>,
    limit: usize,
) -> io::Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    transport::create_unix_server(server_protocols(client_connected_cb, limit), path).await
}

/// The reader and writer a client's `connection_made` paired.
fn into_pair(
    (_transport, protocol): (Transport, SharedProtocol<StreamProtocol>),
) -> io::Result<(StreamReader, StreamWriter)> {
    let pair = protocol.borrow_mut().take_pair();
    pair.ok_or_else(|| io::Error::other("open_connection: the transport made no connection"))
}

/// A server's protocol factory: each connection's reader and writer go to `callback`, run
/// as a new task.
fn server_protocols<F, Fut>(callback: F, limit: usize) -> impl Fn() -> StreamProtocol + 'static
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let callback = Rc::new(callback);
    move || {
        let callback = Rc::clone(&callback);
        let on_connect = Box::new(move |reader, writer| {
            crate::spawn(callback(reader, writer));
        });
        StreamProtocol::new(limit, Some(on_connect))
    }
}
