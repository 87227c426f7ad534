//! asyncio's Transports and Protocols: callback-style networking on top of [`crate::net`].
//!
//! A *protocol* ([`Protocol`], [`BufferedProtocol`], [`DatagramProtocol`]) is your type with
//! callbacks; a *transport* ([`Transport`], [`DatagramTransport`]) is the handle you write
//! through. The loop functions connect the two: [`create_connection`] and [`create_server`]
//! (giving a [`Server`]) for TCP, [`create_unix_connection`] and [`create_unix_server`] for
//! Unix sockets, [`create_datagram_endpoint`] for UDP, and [`subprocess_exec`] /
//! [`subprocess_shell`] (with a [`SubprocessProtocol`]) for child processes.
//!
//! ```
//! use ringloop::transport::{self, Protocol, Transport};
//!
//! /// Upper-cases what it receives and sends it back.
//! struct Shout(Option<Transport>);
//! impl Protocol for Shout {
//!     fn connection_made(&mut self, t: Transport) { self.0 = Some(t); }
//!     fn data_received(&mut self, data: &[u8]) {
//!         let _ = self.0.as_ref().unwrap().write(&data.to_ascii_uppercase());
//!     }
//! }
//!
//! #[derive(Default)]
//! struct Collect(Vec<u8>);
//! impl Protocol for Collect {
//!     fn data_received(&mut self, data: &[u8]) { self.0.extend_from_slice(data); }
//! }
//!
//! # ringloop::run(async {
//! let server = transport::create_server(|| Shout(None), "127.0.0.1:0").await.unwrap();
//! let addr = server.local_addrs()[0].as_inet().unwrap();
//! let (t, collected) = transport::create_connection(Collect::default, addr).await.unwrap();
//! t.write(b"hi there").unwrap();
//! # while collected.borrow().0.len() < 8 { ringloop::time::sleep(std::time::Duration::from_millis(1)).await; }
//! assert_eq!(collected.borrow().0, b"HI THERE");
//! t.close();
//! server.close();
//! server.wait_closed().await;
//! # });
//! ```
//!
//! # How a transport works
//!
//! Each transport has one task that owns the socket and the protocol. It does all the I/O
//! (one receive and one send in flight at most) and makes every protocol callback.
//!
//! The handle ([`Transport`], [`DatagramTransport`]) and the task share one *core*
//! (`core::Core`), the same for streams and datagrams:
//!
//! - the lifecycle phase (`phase::Phase`, below), which decides whether a write is accepted
//!   and when the socket closes;
//! - the write buffer's size and its flow control (`flow.rs`): the water marks, and the
//!   `pause_writing`/`resume_writing` notes they queue for the task to deliver;
//! - the reading switch (`pause_reading`; a datagram endpoint has none, so it stays on);
//! - the extra info captured when the transport was made (addresses, descriptor), which every
//!   accessor (`get_extra_info`, `peername`, `fd`...) reads;
//! - a wake-up: handle methods only change the core and wake the task, and the task reads the
//!   core between callbacks.
//!
//! Only what waits to be sent differs: a stream's bytes, an endpoint's queue of datagrams.
//! Each task has the same first steps on every turn: deliver a queued note, then end if the
//! phase asks it to (aborting, or closing with everything sent), then do its own I/O.
//!
//! A stream's lifecycle is below; the read direction adds a pause switch and the peer's EOF,
//! which do not decide when the socket closes. A datagram endpoint has no `write_eof`: it goes
//! `Open`, then `Closing` or `Aborting`, then `Closed`.
//!
//! ```text
//!            write_eof                 buffer sent: shutdown(SHUT_WR)
//!   Open ──────────────▶ EofPending ─────────────────────────────────▶ WriteShut
//!    │                       │                                             │
//!    │ close / eof_received  │ close                                close  │
//!    ▼ returned false        ▼                                             ▼
//!  Closing ◀──────────────────────────────────────────────────────────────┘
//!    │ buffer sent                        abort / I/O error (from any phase but Closed)
//!    ▼                                          │ buffer dropped
//!  Closed ◀──────── connection_lost(err) ◀── Aborting(err)
//!    ▲
//!    └──────────── connection_lost(None) ◀── (from Closing)
//! ```
//!
//! - `write` is accepted only in `Open`: it fails with `InvalidInput` after `write_eof` and
//!   with `NotConnected` once closing or closed (a Rust caller learns that its bytes will not
//!   be sent, where asyncio would log and drop them).
//! - Reads are issued in `Open`, `EofPending` and `WriteShut`, unless paused
//!   ([`Transport::pause_reading`]) or the peer's EOF arrived. `eof_received` is called once;
//!   returning `false` closes the transport, `true` keeps it open for writing.
//! - A reset or other I/O error moves to `Aborting(Some(err))`: the protocol sees
//!   `connection_lost(Some(err))`, never a panic.
//!
//! # Callbacks never re-enter
//!
//! A protocol may call any transport method from inside any callback. Those methods never
//! call the protocol: `pause_writing` caused by a `write` inside `data_received`, for
//! example, is queued and delivered by the task after `data_received` returns. So a protocol
//! never sees one of its callbacks start while another is running.
//!
//! # Who owns the protocol
//!
//! The transport's task does: it needs `&mut` access for every callback, for as long as the
//! connection lives, and it is the only one that can make a callback (`shared::OwnedProtocol`).
//! [`create_connection`], [`create_datagram_endpoint`] and the subprocess functions also
//! return a [`SharedProtocol`], like asyncio's `(transport, protocol)` pair: a view onto the
//! protocol the task owns, borrowed like a `RefCell`, so the caller can read what the protocol
//! collected, also after the transport has ended. A borrow may be held across an await: a
//! callback that falls due meanwhile waits, asleep, for the borrow to end (it is postponed,
//! never dropped, and nothing panics); the borrow's guard wakes the task when it is dropped,
//! so the wait costs no polling. A [`create_server`] factory can hand each protocol a shared
//! handle (an `Rc`) if the server's owner needs to reach connections.
//!
//! # Lifetimes and failures
//!
//! - A transport lives until it is closed, aborted or lost, even if every handle is dropped
//!   (its task holds the socket, as asyncio's loop holds its transports). A [`Server`] serves
//!   until [`Server::close`].
//! - A protocol callback that panics ends its own transport: the task stops, the socket
//!   closes, and no further callback (not even `connection_lost`) is made. Other connections
//!   and the server's accept loop go on.
//! - Dropping the runtime drops the transport tasks with it: their sockets close without
//!   `connection_lost`.
//! - A process killed by a signal it does not handle (SIGTERM by default, `kill -9` always)
//!   leaves its io_uring to the kernel, which tears it down *after* the process is gone: the
//!   requests still in flight (a listener's accept, a socket's receive) keep their sockets, so
//!   a server's port stays bound for a few to tens of milliseconds and a server restarted at
//!   once fails with `AddrInUse` (`SO_REUSEADDR`, set on every listener as std sets it, does
//!   not cover a socket that still listens). On epoll the sockets close with the process. To
//!   release the port on time, handle SIGINT/SIGTERM ([`crate::signal`]), close the server,
//!   and return from `block_on` so the runtime is dropped: that cancels every request and
//!   waits for the kernel to finish them. See [`Server`] for the pattern; after a `kill -9`,
//!   retry the bind for a moment.
//!
//! # Reading and buffers
//!
//! A stream transport receives with one multishot receive into the loop's shared buffer
//! ring (io_uring: a registered provided-buffer ring; epoll: the same from a user-space
//! pool), so an idle connection holds no receive buffer and one submission serves every
//! chunk. `data_received` sees each chunk in place; the buffer returns to the ring when the
//! callback returns. `pause_reading` stops the receive in the kernel; chunks it had already
//! received are delivered after `resume_reading`, never dropped. Writes are copied into the transport's buffer and sent by the task with owned-buffer write
//! ops; `get_write_buffer_size` counts bytes buffered or in flight.

mod core;
mod datagram;
mod extra;
mod flow;
mod phase;
mod protocol;
mod reader;
// Crate-visible for other asyncio-layer modules: `server::ClientSlot`, `socket::{StreamSocket,
// SocketListener}` and `stream::start` let them serve connections their own way.
pub(crate) mod server;
mod shared;
pub(crate) mod socket;
pub(crate) mod stream;
mod subprocess;
mod subprocess_pipe;
mod task;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
mod tls_link;

pub use datagram::DatagramTransport;
pub use extra::{ExtraInfo, TransportAddr};
pub use protocol::{BufferedProtocol, DatagramProtocol, Protocol, SubprocessProtocol};
pub use server::Server;
pub use shared::{ProtocolRef, ProtocolRefMut, SharedProtocol};
pub use stream::Transport;
pub use subprocess::{SubprocessTransport, subprocess_command, subprocess_exec, subprocess_shell};
pub use subprocess_pipe::{SubprocessPipeReader, SubprocessPipeWriter};
#[cfg(feature = "tls")]
pub use tls::{
    StartTls, create_tls_connection, create_tls_server, create_unix_tls_connection,
    create_unix_tls_server,
};

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::rc::Rc;

use crate::net::{self, ListenOptions, TcpListener, TcpStream, UdpSocket, UnixStream};

/// Where to connect or listen: a socket address, or a `"host:port"` to resolve (on the
/// blocking pool, as [`net::lookup_host`] does).
///
/// ```
/// use ringloop::transport::HostAddr;
/// let a: HostAddr = "localhost:7000".into();
/// let b: HostAddr = "127.0.0.1:7000".parse::<std::net::SocketAddr>().unwrap().into();
/// assert!(matches!(a, HostAddr::Host(_)) && matches!(b, HostAddr::Addr(_)));
/// // asyncio's (host, port) pairs too:
/// assert!(matches!(HostAddr::from(("localhost", 7000)), HostAddr::Host(h) if h == "localhost:7000"));
/// assert!(matches!(HostAddr::from(("::1", 7000)), HostAddr::Addr(a) if a.port() == 7000));
/// ```
#[derive(Clone, Debug)]
pub enum HostAddr {
    /// A resolved address.
    Addr(SocketAddr),
    /// `"host:port"`.
    Host(String),
}

impl From<SocketAddr> for HostAddr {
    fn from(addr: SocketAddr) -> HostAddr {
        HostAddr::Addr(addr)
    }
}

impl From<&str> for HostAddr {
    fn from(host: &str) -> HostAddr {
        HostAddr::Host(host.to_owned())
    }
}

impl From<String> for HostAddr {
    fn from(host: String) -> HostAddr {
        HostAddr::Host(host)
    }
}

impl From<(&str, u16)> for HostAddr {
    fn from((host, port): (&str, u16)) -> HostAddr {
        match host.parse::<IpAddr>() {
            Ok(ip) => HostAddr::Addr(SocketAddr::new(ip, port)),
            // A bare IPv6 literal needs brackets once joined with the port.
            Err(_) if host.contains(':') => HostAddr::Host(format!("[{host}]:{port}")),
            Err(_) => HostAddr::Host(format!("{host}:{port}")),
        }
    }
}

impl From<(IpAddr, u16)> for HostAddr {
    fn from(addr: (IpAddr, u16)) -> HostAddr {
        HostAddr::Addr(addr.into())
    }
}

impl HostAddr {
    async fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        match self {
            HostAddr::Addr(addr) => Ok(vec![*addr]),
            HostAddr::Host(host) => net::lookup_host(host).await,
        }
    }
}

/// Connects to `addr` (each resolved address in turn, until one answers), creates the
/// protocol with `protocol_factory`, and starts its transport; `connection_made` has been
/// called when this returns.
///
/// Returns the transport and the protocol (see the module docs on why the protocol comes back
/// as a [`SharedProtocol`]).
///
/// ```
/// use ringloop::transport::{self, Protocol};
///
/// struct Quiet;
/// impl Protocol for Quiet {}
///
/// # ringloop::run(async {
/// let listener = ringloop::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
/// let addr = listener.local_addr().unwrap();
/// let (transport, _protocol) = transport::create_connection(|| Quiet, addr).await.unwrap();
/// assert_eq!(transport.peername().unwrap().as_inet(), Some(addr));
/// transport.close();
/// # });
/// ```
///
/// # Errors
///
/// A failed lookup, or the last address's connect error (which names the address).
pub async fn create_connection<P, F>(
    protocol_factory: F,
    addr: impl Into<HostAddr>,
) -> io::Result<(Transport, SharedProtocol<P>)>
where
    P: Protocol,
    F: FnOnce() -> P,
{
    let stream = connect_any(addr).await?;
    let (transport, protocol, run) = stream::start(stream, protocol_factory());
    crate::spawn(run);
    Ok((transport, protocol))
}

/// Connects to the first address `addr` resolves to that accepts, in order; the last
/// address's error (naming it) if none does.
pub(crate) async fn connect_any(addr: impl Into<HostAddr>) -> io::Result<TcpStream> {
    let addrs = addr.into().resolve().await?;
    let mut last_err = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
}

/// Listens on every address `addr` resolves to and serves each connection with a new protocol
/// from `protocol_factory`. Serving starts at once (asyncio's `start_serving=True`).
///
/// See [`Server`] for an example.
///
/// # Errors
///
/// A failed lookup, or a bind/listen error (which names the address).
pub async fn create_server<P, F>(
    protocol_factory: F,
    addr: impl Into<HostAddr>,
) -> io::Result<Server>
where
    P: Protocol,
    F: Fn() -> P + 'static,
{
    create_server_with(protocol_factory, addr, &ListenOptions::new()).await
}

/// [`create_server`] with listening options (asyncio's `backlog`, `reuse_address`,
/// `reuse_port`).
///
/// ```
/// use ringloop::net::ListenOptions;
/// use ringloop::transport::{self, Protocol};
///
/// struct Quiet;
/// impl Protocol for Quiet {}
///
/// # ringloop::run(async {
/// let opts = ListenOptions::new().reuseport(true).backlog(16);
/// let server = transport::create_server_with(|| Quiet, "127.0.0.1:0", &opts).await.unwrap();
/// server.close();
/// server.wait_closed().await;
/// # });
/// ```
///
/// # Errors
///
/// As [`create_server`].
pub async fn create_server_with<P, F>(
    protocol_factory: F,
    addr: impl Into<HostAddr>,
    options: &ListenOptions,
) -> io::Result<Server>
where
    P: Protocol,
    F: Fn() -> P + 'static,
{
    let addrs = addr.into().resolve().await?;
    let listeners = addrs
        .into_iter()
        .map(|addr| TcpListener::bind_with(addr, options))
        .collect::<io::Result<Vec<_>>>()?;
    Ok(serve(listeners, protocol_factory))
}

/// Connects to the Unix socket at `path`, creates the protocol and starts its transport (as
/// [`create_connection`] does for TCP).
///
/// ```
/// use ringloop::transport::{self, Protocol};
///
/// struct Quiet;
/// impl Protocol for Quiet {}
///
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-unix-conn-{}", std::process::id()));
/// let server = transport::create_unix_server(|| Quiet, &path).await.unwrap();
/// let (t, _) = transport::create_unix_connection(|| Quiet, &path).await.unwrap();
/// let peer = t.peername().unwrap();
/// assert_eq!(peer.as_unix().unwrap().as_pathname(), Some(path.as_path()));
/// t.close();
/// server.close();
/// server.wait_closed().await;
/// assert!(!path.exists(), "the server removes its socket file");
/// # });
/// ```
///
/// # Errors
///
/// The connect error (no such file, refused...); the message names the path.
pub async fn create_unix_connection<P, F>(
    protocol_factory: F,
    path: impl AsRef<Path>,
) -> io::Result<(Transport, SharedProtocol<P>)>
where
    P: Protocol,
    F: FnOnce() -> P,
{
    let stream = UnixStream::connect(path).await?;
    let (transport, protocol, run) = stream::start(stream, protocol_factory());
    crate::spawn(run);
    Ok((transport, protocol))
}

/// Listens on the Unix socket file `path` and serves each connection with a new protocol
/// from `protocol_factory`, as [`create_server`] does for TCP.
///
/// As in asyncio, a stale socket file at `path` is removed before binding (any other kind of
/// file makes the bind fail), and the socket file is removed when the server's listener closes
/// (if it is still the file the server created).
///
/// See [`create_unix_connection`] for an example.
///
/// # Errors
///
/// Bind or listen errors (the directory does not exist, the path is taken by a file that is
/// not a socket...); the message names the path.
pub async fn create_unix_server<P, F>(
    protocol_factory: F,
    path: impl AsRef<Path>,
) -> io::Result<Server>
where
    P: Protocol,
    F: Fn() -> P + 'static,
{
    let listener = socket::UnixSocketFile::bind(path.as_ref())?;
    Ok(serve(vec![listener], protocol_factory))
}

/// A server of `listeners` whose connections run transports with protocols from `factory`.
fn serve<L, P, F>(listeners: Vec<L>, factory: F) -> Server
where
    L: socket::SocketListener,
    P: Protocol,
    F: Fn() -> P + 'static,
{
    let factory = Rc::new(factory);
    Server::start(listeners, move |stream, slot| {
        let factory = Rc::clone(&factory);
        // The protocol is made inside the connection task: a factory or `connection_made`
        // that panics ends that connection (its socket closes), not the accept loop.
        async move {
            let (transport, _protocol, run) = stream::start(stream, factory());
            let _registration = slot.register(transport);
            run.await;
        }
    })
}

/// Creates a UDP endpoint bound to `local_addr` (default: any port on the unspecified
/// address of `remote_addr`'s family) and, with `remote_addr`, connected to it; creates the
/// protocol and starts the transport. `connection_made` has been called when this returns.
///
/// See [`DatagramTransport`] for an example.
///
/// # Errors
///
/// `InvalidInput` when both addresses are `None`; bind or connect errors (naming the address).
pub fn create_datagram_endpoint<P, F>(
    protocol_factory: F,
    local_addr: Option<SocketAddr>,
    remote_addr: Option<SocketAddr>,
) -> io::Result<(DatagramTransport, SharedProtocol<P>)>
where
    P: DatagramProtocol,
    F: FnOnce() -> P,
{
    let local = match (local_addr, remote_addr) {
        (Some(local), _) => local,
        (None, Some(SocketAddr::V4(_))) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        (None, Some(SocketAddr::V6(_))) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        (None, None) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "create_datagram_endpoint needs a local or a remote address",
            ));
        }
    };
    let socket = UdpSocket::bind(local)?;
    if let Some(remote) = remote_addr {
        socket.connect(remote)?;
    }
    Ok(datagram::start(socket, protocol_factory()))
}
