//! [`Transport`]: the handle of a stream connection (asyncio's `Transport`), its
//! [`StreamBuffer`], and [`start`], which wires a socket and a protocol to a new transport.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;

use super::core::{Core, SendBuffer, TaskCore};
use super::extra::{ExtraInfo, SocketInfo, TransportAddr};
use super::phase::Phase;
use super::protocol::Protocol;
use super::shared::{OwnedProtocol, SharedProtocol};
use super::socket::StreamSocket;
use super::task;

/// The handle of a stream connection. Clones are cheap and share the connection.
///
/// Writes are copied into the transport's write buffer and sent in the background by the
/// transport's task; flow control tells the protocol when the buffer runs high
/// ([`Protocol::pause_writing`]). No method calls the protocol: callbacks come from the task,
/// after the current one returns.
///
/// ```
/// use ringloop::transport::{self, Protocol, Transport};
///
/// struct Echo(Option<Transport>);
/// impl Protocol for Echo {
///     fn connection_made(&mut self, t: Transport) { self.0 = Some(t); }
///     fn data_received(&mut self, data: &[u8]) {
///         let _ = self.0.as_ref().unwrap().write(data);
///     }
/// }
///
/// #[derive(Default)]
/// struct Client { got: Vec<u8>, eof: bool }
/// impl Protocol for Client {
///     fn data_received(&mut self, data: &[u8]) { self.got.extend_from_slice(data); }
///     fn eof_received(&mut self) -> bool { self.eof = true; false }
/// }
///
/// # ringloop::run(async {
/// let server = transport::create_server(|| Echo(None), "127.0.0.1:0").await.unwrap();
/// let addr = server.local_addrs()[0].as_inet().unwrap();
/// let (client, protocol) = transport::create_connection(Client::default, addr).await.unwrap();
/// client.write(b"hello").unwrap();
/// # while protocol.borrow().got.len() < 5 { ringloop::time::sleep(std::time::Duration::from_millis(1)).await; }
/// assert_eq!(protocol.borrow().got, b"hello");
/// client.close();
/// server.close();
/// server.wait_closed().await;
/// # });
/// ```
#[derive(Clone)]
pub struct Transport {
    core: Rc<RefCell<Core<StreamBuffer>>>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.borrow().fmt_handle("Transport", f)
    }
}

/// The bytes a stream transport has to send.
#[derive(Default)]
pub(crate) struct StreamBuffer {
    /// Bytes accepted by `write` and not yet handed to a write op.
    buffer: Vec<u8>,
    /// Bytes handed to the write op in flight and not yet sent.
    in_flight: usize,
    /// A TLS upgrade asked for by [`Transport::start_tls`], for the task to make once what
    /// was written before it is sent.
    #[cfg(feature = "tls")]
    pub(crate) upgrade: Option<super::tls::Upgrade>,
}

impl SendBuffer for StreamBuffer {
    fn size(&self) -> usize {
        self.buffer.len() + self.in_flight
    }

    fn drop_unsent(&mut self) {
        self.buffer = Vec::new();
        // An upgrade asked for is dropped too: its caller learns the transport went.
        #[cfg(feature = "tls")]
        {
            self.upgrade = None;
        }
    }
}

impl Core<StreamBuffer> {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.check_writable("write")?;
        if data.is_empty() {
            return Ok(());
        }
        self.outgoing.buffer.extend_from_slice(data);
        self.grew();
        Ok(())
    }

    fn write_eof(&mut self) {
        if let Phase::Open = self.phase {
            self.phase = Phase::EofPending;
            self.wake();
        }
    }

    /// Whether nothing waits to be handed to a write op.
    pub(crate) fn nothing_buffered(&self) -> bool {
        self.outgoing.buffer.is_empty()
    }

    /// Moves the buffered bytes out for a write op, leaving `spare` (empty) in their place.
    pub(crate) fn take_buffer(&mut self, spare: Vec<u8>) -> Option<Vec<u8>> {
        if self.outgoing.buffer.is_empty() {
            return None;
        }
        let chunk = std::mem::replace(&mut self.outgoing.buffer, spare);
        self.outgoing.in_flight += chunk.len();
        Some(chunk)
    }

    /// `n` bytes of the write in flight were sent.
    pub(crate) fn sent(&mut self, n: usize) {
        self.outgoing.in_flight -= n;
        self.drained();
    }
}

/// Creates the transport for `socket`, calls `connection_made` on `protocol`, and returns the
/// future that runs the transport (spawn it) with the handles.
///
/// For code in the crate that serves connections itself (see
/// [`Server::start`](super::Server::start)).
///
/// The task owns the protocol; the [`SharedProtocol`] returned is the caller's view of it.
pub(crate) fn start<S: StreamSocket, P: Protocol>(
    socket: S,
    protocol: P,
) -> (Transport, SharedProtocol<P>, impl Future<Output = ()>) {
    let info = SocketInfo::capture(&socket);
    start_link(task::PlainLink::new(socket), info, protocol)
}

/// [`start`] over any link (a TLS session: `tls_link`).
pub(crate) fn start_link<L: task::Link, P: Protocol>(
    link: L,
    info: SocketInfo,
    mut protocol: P,
) -> (Transport, SharedProtocol<P>, impl Future<Output = ()>) {
    let transport = Transport {
        core: Core::shared(info),
    };
    protocol.connection_made(transport.clone());
    let protocol = OwnedProtocol::new(protocol);
    let view = protocol.view();
    let run = task::run(link, TaskCore(Rc::clone(&transport.core)), protocol);
    (transport, view, run)
}

impl Transport {
    /// Queues `data` to be sent (copied into the write buffer).
    ///
    /// # Errors
    ///
    /// `NotConnected` once the transport is closing or closed (after `close`, `abort`, or a
    /// lost connection: nothing is sent then); `InvalidInput` after `write_eof`.
    pub fn write(&self, data: &[u8]) -> io::Result<()> {
        self.core.borrow_mut().write(data)
    }

    /// Queues each of `chunks`, in order (asyncio's `writelines`).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write); chunks before a refusal stay queued (a refusal only comes
    /// from the transport's state, so it refuses the first chunk or none).
    pub fn writelines<'a>(&self, chunks: impl IntoIterator<Item = &'a [u8]>) -> io::Result<()> {
        let mut core = self.core.borrow_mut();
        for chunk in chunks {
            core.write(chunk)?;
        }
        Ok(())
    }

    /// Shuts down the write side once the buffer is sent (the peer reads EOF); reading goes on.
    /// Later writes fail. Does nothing if the transport is closing or EOF was already asked for.
    pub fn write_eof(&self) {
        self.core.borrow_mut().write_eof();
    }

    /// Whether [`write_eof`](Self::write_eof) is supported: always, for TCP and Unix streams.
    pub fn can_write_eof(&self) -> bool {
        true
    }

    /// Upgrades the connection to TLS in place (asyncio's `loop.start_tls`, STARTTLS): once
    /// the bytes written before this call are sent, the handshake runs as `tls` says (client
    /// or server side); from then on the protocol reads and writes plaintext through TLS, and
    /// `get_extra_info` answers the TLS keys. Reading stops at the call: bytes that arrive
    /// after it are the peer's handshake, not data. Writes made meanwhile are sent encrypted
    /// after the handshake.
    ///
    /// Unlike asyncio, which returns a new transport, this `Transport` (and its clones) goes
    /// on as the TLS transport.
    ///
    /// # Errors
    ///
    /// The handshake's failure (the transport is then aborted with it, so the protocol gets
    /// `connection_lost` with the error), `InvalidInput` if the transport already runs TLS, or
    /// an error if the transport is closing or closed.
    #[cfg(feature = "tls")]
    pub async fn start_tls(&self, tls: super::StartTls) -> io::Result<()> {
        let reply = {
            let mut core = self.core.borrow_mut();
            core.check_writable("start_tls")?;
            if core.extra_info("ssl_object").is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "start_tls: the transport already runs TLS",
                ));
            }
            if core.outgoing.upgrade.is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "start_tls: an upgrade is already under way",
                ));
            }
            let (tx, rx) = crate::sync::oneshot::channel();
            core.outgoing.upgrade = Some(super::tls::Upgrade { tls, reply: tx });
            core.wake();
            rx
        };
        match reply.await {
            Ok(outcome) => outcome,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "start_tls: the transport closed before the upgrade",
            )),
        }
    }

    /// Closes the transport: reading stops now, the buffered bytes are sent, then the socket
    /// closes and the protocol gets `connection_lost(None)`. Idempotent.
    pub fn close(&self) {
        self.core.borrow_mut().close();
    }

    /// Closes the transport now: buffered bytes are dropped, and the protocol gets
    /// `connection_lost(None)` on the task's next turn.
    pub fn abort(&self) {
        self.core.borrow_mut().abort(None);
    }

    /// Whether the transport is closing or closed.
    pub fn is_closing(&self) -> bool {
        self.core.borrow().phase.is_closing()
    }

    /// Stops reading: no `data_received` (or `eof_received`) until
    /// [`resume_reading`](Self::resume_reading). A read already in flight may complete; its
    /// bytes are held and delivered on resume, so nothing is lost.
    pub fn pause_reading(&self) {
        self.core.borrow_mut().set_reading(false);
    }

    /// Resumes reading after [`pause_reading`](Self::pause_reading).
    pub fn resume_reading(&self) {
        self.core.borrow_mut().set_reading(true);
    }

    /// Whether the transport delivers received data (not paused, not closing).
    pub fn is_reading(&self) -> bool {
        self.core.borrow().delivers_reads()
    }

    /// Sets the write buffer's high- and low-water marks (asyncio's rule: `high` defaults to
    /// 64 KiB, or `4 * low` if only `low` is given; `low` defaults to `high / 4`).
    /// `pause_writing` follows when the buffer rises above `high`, `resume_writing` when it
    /// drains to `low`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `low > high`.
    pub fn set_write_buffer_limits(
        &self,
        high: Option<usize>,
        low: Option<usize>,
    ) -> io::Result<()> {
        self.core.borrow_mut().set_write_buffer_limits(high, low)
    }

    /// The `(low, high)` water marks, in asyncio's order.
    pub fn get_write_buffer_limits(&self) -> (usize, usize) {
        self.core.borrow().write_buffer_limits()
    }

    /// Bytes written and not yet sent (buffered, or in a write op the kernel has not finished).
    pub fn get_write_buffer_size(&self) -> usize {
        self.core.borrow().write_buffer_size()
    }

    /// asyncio's name-based lookup: `"peername"`, `"sockname"` (an [`ExtraInfo::Addr`]) and
    /// `"socket"` (an [`ExtraInfo::Fd`], until the transport closes); on a TLS transport also
    /// `"peercert"`, `"cipher"`, `"alpn_protocol"`, `"server_hostname"`, `"tls_version"` and
    /// `"ssl_object"` (the whole `TlsInfo`). Other names: `None`.
    pub fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        self.core.borrow().extra_info(name)
    }

    /// The peer's address.
    pub fn peername(&self) -> Option<TransportAddr> {
        self.core.borrow().peername()
    }

    /// The local address.
    pub fn sockname(&self) -> Option<TransportAddr> {
        self.core.borrow().sockname()
    }

    /// The socket's descriptor, until the transport closes (for socket options; do not close
    /// it or read from it).
    pub fn fd(&self) -> Option<RawFd> {
        self.core.borrow().fd()
    }
}
