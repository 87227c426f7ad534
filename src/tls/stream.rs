//! [`TlsStream`]: TLS over a connected [`TcpStream`] or [`UnixStream`], with the plain
//! streams' owned-buffer API.
//!
//! # How bytes move
//!
//! Ciphertext arrives through one multishot receive into the loop's buffer ring (the same
//! receive transports use): each chunk is fed to the engine, which has rustls decrypt its
//! records in place, in the ring buffer, and a read copies the plaintext into the caller's
//! buffer. Ciphertext to send is collected into one owned `Vec` per flush
//! and written as one op; the `Vec` comes back with the op and is reused.
//!
//! The receive runs ahead of the reader: bytes the peer sends while the application is not
//! reading land in ring buffers (as many as the ring has free when they arrive; the ring's
//! cap bounds the loop's total), not in the socket, and wait there until read. A receive
//! that finds the ring empty stops, and the rest waits in the socket, where TCP flow control
//! slows the peer.
//!
//! # Drops and timeouts lose nothing
//!
//! Everything in flight lives in the stream, not in the futures: the receive and any chunk
//! the engine has not taken, the write op and the ciphertext it carries. A read dropped by a
//! timeout loses no plaintext (plaintext reaches the caller's buffer only when the read
//! returns). A write dropped after its plaintext was encrypted still sends it — a sealed
//! record cannot be taken back without corrupting the stream — and the next read, write,
//! flush or shutdown carries the send on.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker, ready};

use rustls::pki_types::CertificateDer;

use super::engine::{Chunk, Engine, Plain};
use super::{TlsError, TlsInfo};
use crate::buf::{IoBuf, IoBufMut};
use crate::net::{RecvStream, TcpStream, Turn, UnixStream};

/// The most plaintext one write encrypts before sending (four full records).
const WRITE_CHUNK: usize = 64 * 1024;

/// Bytes a dropped read of the plain socket left are read through it in pieces this big.
const RESCUE_READ: usize = 16 * 1024;

pub(crate) mod sealed {
    /// A connected stream TLS can run over (sealed: [`TcpStream`](crate::net::TcpStream) and
    /// [`UnixStream`](crate::net::UnixStream)).
    pub trait Socket: crate::net::HasStreamCore + std::os::fd::AsFd + 'static {
        /// Who the peer is, for error messages.
        fn peer_description(&self) -> String;
        /// Shuts the write side down after close_notify went out.
        fn shutdown_write(&self) -> std::io::Result<()>;
    }
}

/// A connected stream TLS can run over: [`TcpStream`] or [`UnixStream`].
pub trait TlsSocket: sealed::Socket {}

impl sealed::Socket for TcpStream {
    fn peer_description(&self) -> String {
        match self.peer_addr() {
            Ok(addr) => addr.to_string(),
            Err(_) => "an unknown TCP peer".to_owned(),
        }
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}
impl TlsSocket for TcpStream {}

impl sealed::Socket for UnixStream {
    fn peer_description(&self) -> String {
        match self.peer_addr() {
            Ok(addr) => format!("unix socket {addr:?}"),
            Err(_) => "an unknown unix socket peer".to_owned(),
        }
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}
impl TlsSocket for UnixStream {}

type RescueFuture = Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<u8>)>>>;

/// A TLS connection over `S`, client or server side, after its handshake.
///
/// Made by [`TlsConnector::connect`](super::TlsConnector::connect) and
/// [`TlsAcceptor::accept`](super::TlsAcceptor::accept). Reads and writes take `&self` and
/// own their buffers, as on [`TcpStream`]; reads run one at a time (so do writes), in the
/// order they were started. [`shutdown`](Self::shutdown) sends close_notify: a peer sees a
/// stream dropped without it as truncated. See the [module docs](super) for an example.
pub struct TlsStream<S: TlsSocket> {
    socket: Rc<S>,
    inner: RefCell<Inner>,
    read_turn: Turn,
    write_turn: Turn,
    peer: String,
    shutdown_timeout: std::cell::Cell<std::time::Duration>,
}

struct Inner {
    engine: Engine,
    recv: Recv,
    send: Send,
    /// The server name the client asked for (SNI), either side.
    server_name: Option<String>,
    /// close_notify was queued (futures-io `poll_close`).
    closing: bool,
    /// Receiving is paused (a transport's `pause_reading`): the receive is stopped in the
    /// kernel once what it already received was fed.
    paused: bool,
}

/// The receive side: the multishot receive, or a read of bytes a dropped plain read left.
enum Recv {
    /// Not started: the next poll looks for rescued bytes first.
    Idle,
    Rescue(RescueFuture),
    Ring(Box<RecvStream<'static>>),
    /// The socket ended (end of file or an error, reported once).
    Done,
}

/// The send side. Ciphertext goes to the socket's poll-based writer (the one its
/// `futures_io::AsyncWrite` impl uses), which sends it with a task of its own: a short send
/// goes on without waiting for this stream to be polled again.
struct Send {
    /// Ciphertext taken from the engine and not yet handed over (the reusable buffer).
    out: Vec<u8>,
    /// A write failed: every later send reports it.
    failed: Option<(io::ErrorKind, String)>,
}

impl<S: TlsSocket> TlsStream<S> {
    pub(crate) fn new(
        socket: S,
        conn: super::engine::Conn,
        server_name: Option<String>,
        received: Vec<u8>,
    ) -> TlsStream<S> {
        let peer = socket.peer_description();
        let mut engine = Engine::new(conn);
        engine.preload(received);
        TlsStream {
            socket: Rc::new(socket),
            inner: RefCell::new(Inner {
                engine,
                recv: Recv::Idle,
                send: Send {
                    out: Vec::new(),
                    failed: None,
                },
                server_name,
                closing: false,
                paused: false,
            }),
            read_turn: Turn::default(),
            write_turn: Turn::default(),
            peer,
            shutdown_timeout: std::cell::Cell::new(super::DEFAULT_SHUTDOWN_TIMEOUT),
        }
    }

    /// Who the peer is, for messages.
    pub(crate) fn peer(&self) -> &str {
        &self.peer
    }

    /// Sets how long [`shutdown`](Self::shutdown) may wait for close_notify to go out
    /// (30 s by default, asyncio's `ssl_shutdown_timeout`).
    pub fn set_shutdown_timeout(&self, timeout: std::time::Duration) {
        self.shutdown_timeout.set(timeout);
    }

    /// Runs the handshake to its end (the caller bounds it with the handshake timeout).
    pub(crate) async fn handshake(&self) -> io::Result<()> {
        let what = if self.inner.borrow().engine.is_client() {
            "TLS handshake with"
        } else {
            "TLS handshake from"
        };
        loop {
            let flushed = poll_fn(|cx| self.poll_send_all(cx)).await;
            let handshaking = self.inner.borrow().engine.is_handshaking();
            if !handshaking {
                let sni = self.inner.borrow().engine.sni();
                if let Some(server) = sni {
                    self.inner.borrow_mut().server_name = Some(server);
                }
                return flushed.map_err(|e| context(e, what, &self.peer));
            }
            flushed.map_err(|e| context(e, what, &self.peer))?;
            let fed = poll_fn(|cx| self.poll_feed(cx)).await;
            match fed {
                Ok(true) => {}
                Ok(false) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{what} {}: the peer closed the connection", self.peer),
                    ));
                }
                Err(e) => {
                    // The engine queued an alert saying why: send it, as far as it goes.
                    let _ = poll_fn(|cx| self.poll_send_all(cx)).await;
                    return Err(context(e, what, &self.peer));
                }
            }
        }
    }

    /// Reads decrypted bytes into the spare capacity of `buf`; `Ok(0)` at a clean end of the
    /// stream (the peer's close_notify). A peer that closed the connection without
    /// close_notify gives an [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) error instead,
    /// once every byte before it was read.
    pub async fn read<B: IoBufMut>(&self, mut buf: B) -> (io::Result<usize>, B) {
        let _turn = self.read_turn.take().await;
        let res = poll_fn(|cx| self.poll_read_into(cx, &mut Owned(&mut buf))).await;
        (res, buf)
    }

    /// Reads until `buf` is full; an [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) error if
    /// the stream ends first.
    pub async fn read_exact<B: IoBufMut>(&self, mut buf: B) -> (io::Result<()>, B) {
        let _turn = self.read_turn.take().await;
        while buf.bytes_init() < buf.bytes_total() {
            match poll_fn(|cx| self.poll_read_into(cx, &mut Owned(&mut buf))).await {
                Ok(0) => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "TLS stream from {}: ended before the buffer was full",
                            self.peer
                        ),
                    );
                    return (Err(e), buf);
                }
                Ok(_) => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Encrypts up to 64 KiB of `buf` and sends it; returns how many plaintext bytes were
    /// taken once their ciphertext is in the kernel.
    pub async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        let _turn = self.write_turn.take().await;
        let res = self.write_in_turn(crate::buf::init_bytes(&buf, 0)).await;
        (res, buf)
    }

    /// Sends all of `buf`.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        let _turn = self.write_turn.take().await;
        let mut at = 0;
        let len = buf.bytes_init();
        while at < len {
            match self.write_in_turn(crate::buf::init_bytes(&buf, at)).await {
                Ok(n) => at += n,
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    async fn write_in_turn(&self, data: &[u8]) -> io::Result<usize> {
        // What an earlier, dropped write left goes first.
        poll_fn(|cx| self.poll_send_all(cx)).await?;
        let n = {
            let mut inner = self.inner.borrow_mut();
            let data = &data[..data.len().min(WRITE_CHUNK)];
            inner.engine.write_plain(data)?
        };
        poll_fn(|cx| self.poll_send_all(cx)).await?;
        Ok(n)
    }

    /// Waits until every byte written so far is in the kernel.
    pub async fn flush(&self) -> io::Result<()> {
        let _turn = self.write_turn.take().await;
        poll_fn(|cx| self.poll_send_all(cx)).await
    }

    /// Sends close_notify and shuts the socket's write side down: the peer reads a clean end
    /// of the stream. Reading stays possible (TLS 1.3 allows half-close). Bounded by the
    /// shutdown timeout (30 s unless set: [`set_shutdown_timeout`](Self::set_shutdown_timeout)
    /// or the connector's or acceptor's `shutdown_timeout`), which counts a write still in
    /// progress: past it, a `TimedOut` error.
    pub async fn shutdown(&self) -> io::Result<()> {
        let limit = self.shutdown_timeout.get();
        // The limit covers waiting for a write in progress too: a peer that stopped
        // reading must not hold the close for ever.
        let closing = async {
            let _turn = self.write_turn.take().await;
            self.queue_close_notify();
            poll_fn(|cx| self.poll_send_all(cx)).await
        };
        match crate::time::timeout(limit, closing).await {
            Ok(sent) => sent?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "TLS shutdown with {}: close_notify not sent within {limit:?}",
                        self.peer
                    ),
                ));
            }
        }
        shut_write(&*self.socket)
    }

    /// What was negotiated: protocol version, cipher suite, ALPN protocol, the peer's
    /// certificates, the server name.
    pub fn info(&self) -> TlsInfo {
        let inner = self.inner.borrow();
        TlsInfo::of(inner.engine.common(), inner.server_name.clone())
    }

    /// The ALPN protocol the handshake agreed on, if any.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.inner
            .borrow()
            .engine
            .common()
            .alpn_protocol()
            .map(<[u8]>::to_vec)
    }

    /// The certificate chain the peer presented (end entity first); empty if it sent none.
    pub fn peer_certificates(&self) -> Vec<CertificateDer<'static>> {
        self.inner
            .borrow()
            .engine
            .common()
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default()
    }

    /// The socket underneath.
    pub fn get_ref(&self) -> &S {
        &self.socket
    }

    /// Polls a read into `buf` (no turn: the caller holds it, or `&mut self` does).
    fn poll_read_into<T: Sink + ?Sized>(
        &self,
        cx: &mut Context<'_>,
        sink: &mut T,
    ) -> Poll<io::Result<usize>> {
        loop {
            {
                let mut inner = self.inner.borrow_mut();
                match sink.take_from(&mut inner.engine) {
                    Ok(Plain::Data(n)) => return Poll::Ready(Ok(n)),
                    Ok(Plain::Eof) => return Poll::Ready(Ok(0)),
                    Ok(Plain::WouldBlock) => {}
                    Err(e) => return Poll::Ready(Err(context(e, "TLS stream from", &self.peer))),
                }
            }
            // The engine may have something to say (a key update, an alert): send it along.
            if let Poll::Ready(Err(e)) = self.poll_send_all(cx) {
                return Poll::Ready(Err(e));
            }
            match ready!(self.poll_feed(cx)) {
                Ok(_) => {}
                Err(e) => {
                    let _ = self.poll_send_all(cx);
                    return Poll::Ready(Err(context(e, "TLS stream from", &self.peer)));
                }
            }
        }
    }

    /// Feeds the engine: what is left of the last chunk, else the next chunk received.
    /// `Ok(false)` once the socket ended (the engine was told).
    fn poll_feed(&self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        if !inner.engine.wants_chunk() {
            if inner.recv_done() {
                return Poll::Ready(Ok(false));
            }
            inner.engine.process_pending().map_err(tls_io)?;
            return Poll::Ready(Ok(true));
        }
        loop {
            match &mut inner.recv {
                Recv::Idle => {
                    inner.recv = if self.socket.stream_socket().has_rescued() {
                        let socket = Rc::clone(&self.socket);
                        Recv::Rescue(Box::pin(async move {
                            socket
                                .stream_socket()
                                .read(Vec::with_capacity(RESCUE_READ))
                                .await
                        }))
                    } else {
                        let ring = crate::buf::loop_ring()?;
                        Recv::Ring(Box::new(RecvStream::owning(Rc::clone(&self.socket), &ring)))
                    };
                }
                Recv::Rescue(read) => {
                    let (res, bytes) = ready!(read.as_mut().poll(cx));
                    inner.recv = Recv::Idle;
                    match res {
                        Ok(0) => return Poll::Ready(inner.end().map(|()| false)),
                        Ok(_) => {
                            inner.engine.feed(Chunk::Owned(bytes)).map_err(tls_io)?;
                            return Poll::Ready(Ok(true));
                        }
                        Err(e) => {
                            inner.recv = Recv::Done;
                            return Poll::Ready(Err(e));
                        }
                    }
                }
                Recv::Ring(recv) => {
                    if inner.paused && recv.is_receiving() {
                        recv.stop();
                    } else if !inner.paused {
                        recv.resume();
                    }
                    return Poll::Ready(match ready!(recv.poll_next_chunk(cx)) {
                        Some(Ok(chunk)) => inner
                            .engine
                            .feed(Chunk::Ring(chunk))
                            .map(|()| true)
                            .map_err(tls_io),
                        None if recv.is_finished() => inner.end().map(|()| false),
                        // Paused, and what was received before the pause is fed: the
                        // caller polls again once reading resumes.
                        None => return Poll::Pending,
                        Some(Err(e)) => {
                            inner.recv = Recv::Done;
                            Err(e)
                        }
                    });
                }
                Recv::Done => return Poll::Ready(Ok(false)),
            }
        }
    }

    /// Sends every ciphertext byte the engine has; ready when all of it is in the kernel.
    fn poll_send_all(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        let send = &mut inner.send;
        let core = self.socket.stream_socket();
        loop {
            if let Some((kind, msg)) = &send.failed {
                return Poll::Ready(Err(io::Error::new(*kind, msg.clone())));
            }
            if let Err(e) = ready!(core.poll_flush(cx)) {
                let msg = format!("TLS stream to {}: sending failed: {e}", self.peer);
                send.failed = Some((e.kind(), msg));
                continue;
            }
            if send.out.is_empty() {
                if !inner.engine.wants_write() {
                    return Poll::Ready(Ok(()));
                }
                inner.engine.take_ciphertext(&mut send.out);
                if send.out.is_empty() {
                    return Poll::Ready(Ok(()));
                }
            }
            // Taken, since the flush above found nothing unsent; an error sending it is the
            // next flush's.
            core.write_vec(&mut send.out);
        }
    }
}

/// What the TLS transport's link uses: the stream's halves without turns (the transport's
/// task is the stream's only user).
impl<S: TlsSocket> TlsStream<S> {
    /// The next decrypted bytes (at most `max`), `None` at the clean end; `reading` false
    /// pauses receiving (bytes already received are still decrypted and returned).
    pub(crate) fn poll_plain(
        &self,
        cx: &mut Context<'_>,
        reading: bool,
        max: usize,
    ) -> Poll<io::Result<Option<Vec<u8>>>> {
        self.inner.borrow_mut().paused = !reading;
        // Sized by what was decrypted: no `max`-sized allocation per poll.
        let mut buf = Vec::new();
        match ready!(self.poll_read_into(cx, &mut Grow(&mut buf, max))) {
            Ok(0) => Poll::Ready(Ok(None)),
            Ok(_) => Poll::Ready(Ok(Some(buf))),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Whether a receive is live (or holds received chunks).
    pub(crate) fn is_receiving(&self) -> bool {
        match &self.inner.borrow().recv {
            Recv::Ring(recv) => recv.is_active(),
            Recv::Rescue(_) => true,
            Recv::Idle | Recv::Done => false,
        }
    }

    /// Encrypts as much of `data` as the engine takes now (nothing while ciphertext waits to
    /// be sent beyond the engine's buffer limit).
    pub(crate) fn encrypt(&self, data: &[u8]) -> io::Result<usize> {
        self.inner
            .borrow_mut()
            .engine
            .write_plain(&data[..data.len().min(WRITE_CHUNK)])
    }

    /// Sends the ciphertext the engine has; ready when it is all in the kernel.
    pub(crate) fn poll_send(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send_all(cx)
    }

    /// Queues close_notify.
    pub(crate) fn queue_close_notify(&self) {
        let mut inner = self.inner.borrow_mut();
        if !inner.closing {
            inner.closing = true;
            inner.engine.close_notify();
        }
    }
}

impl Inner {
    fn recv_done(&self) -> bool {
        matches!(self.recv, Recv::Done)
    }

    /// The socket reached end of file.
    fn end(&mut self) -> io::Result<()> {
        self.recv = Recv::Done;
        self.engine.feed_eof().map_err(tls_io)
    }
}

impl<S: TlsSocket> AsFd for TlsStream<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl<S: TlsSocket> AsRawFd for TlsStream<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_fd().as_raw_fd()
    }
}

impl<S: TlsSocket> std::fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("TlsStream")
            .field("peer", &self.peer)
            .field("client", &inner.engine.is_client())
            .field("version", &inner.engine.common().protocol_version())
            .finish_non_exhaustive()
    }
}

/// Poll-based reads into an owned-buffer destination for the foreign-trait adapters in
/// `compat` (hyper's read cursor): `&mut self`, so no turn is needed, as for futures-io.
#[cfg(feature = "hyper")]
impl<S: TlsSocket> TlsStream<S> {
    /// Decrypts into the spare capacity of `buf` (nothing is zeroed); `Ok(0)` at the clean
    /// end, or when `buf` has no spare capacity.
    pub(crate) fn poll_read_spare<B: IoBufMut>(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut B,
    ) -> Poll<io::Result<usize>> {
        self.poll_read_into(cx, &mut Owned(buf))
    }
}

/// futures-io reads: `&mut self`, so no turn is needed.
impl<S: TlsSocket> futures_io::AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_read_into(cx, dst)
    }
}

/// futures-io writes: a write is taken (encrypted) once the previous one's ciphertext is in
/// the kernel, and reported at once; an error sending it is reported by the next write,
/// flush or close.
impl<S: TlsSocket> futures_io::AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_send_all(cx))?;
        let n = {
            let mut inner = this.inner.borrow_mut();
            inner
                .engine
                .write_plain(&data[..data.len().min(WRITE_CHUNK)])?
        };
        // Start the send, without waiting for it: its outcome is the next call's business.
        if let Poll::Ready(Err(e)) = this.poll_send_all(&mut Context::from_waker(Waker::noop())) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_send_all(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.queue_close_notify();
        ready!(this.poll_send_all(cx))?;
        Poll::Ready(shut_write(&*this.socket))
    }
}

/// Where a read puts plaintext: an owned buffer's spare capacity, or a futures-io slice.
trait Sink {
    fn take_from(&mut self, engine: &mut Engine) -> io::Result<Plain>;
}

struct Owned<'a, B>(&'a mut B);

impl<B: IoBufMut> Sink for Owned<'_, B> {
    fn take_from(&mut self, engine: &mut Engine) -> io::Result<Plain> {
        engine.read_plain(self.0)
    }
}

/// A `Vec` that grows by the plaintext there is, up to a bound (a transport's delivery).
struct Grow<'a>(&'a mut Vec<u8>, usize);

impl Sink for Grow<'_> {
    fn take_from(&mut self, engine: &mut Engine) -> io::Result<Plain> {
        engine.read_plain_vec(self.0, self.1)
    }
}

impl Sink for [u8] {
    fn take_from(&mut self, engine: &mut Engine) -> io::Result<Plain> {
        engine.read_plain_slice(self)
    }
}

/// Shuts the write side down after close_notify went out. A peer that already closed the
/// connection (`ENOTCONN`: it read what it wanted and left) leaves nothing to shut down.
fn shut_write<S: TlsSocket>(socket: &S) -> io::Result<()> {
    match socket.shutdown_write() {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

/// A rustls failure as an `io::Error` (its inner error is the [`TlsError`]).
fn tls_io(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TlsError::new(e))
}

/// Adds what was being done, and with whom, to an error.
fn context(e: io::Error, what: &str, peer: &str) -> io::Error {
    let kind = e.kind();
    match e.into_inner() {
        Some(inner) => match inner.downcast::<TlsError>() {
            Ok(tls) => io::Error::new(kind, tls.with_context(format!("{what} {peer}"))),
            Err(other) => io::Error::new(kind, format!("{what} {peer}: {other}")),
        },
        None => io::Error::new(kind, format!("{what} {peer}: {kind}")),
    }
}
