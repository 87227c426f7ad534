//! TCP: [`TcpListener`] and [`TcpStream`] (whose reads and writes live in the shared
//! [`stream`](super::stream) core).

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use super::adopt::{self, Adopted, AdoptedAccept};
use super::resolve::{self, ToSocketAddrs};
use super::split::{OwnedReadHalf, OwnedWriteHalf};
use super::stream::{Family, StreamSocket};
use super::with_addr;
use crate::buf::{IoBuf, IoBufMut};
use crate::op;

/// Options for [`TcpListener::bind_with`].
///
/// ```
/// use ringloop::net::{ListenOptions, TcpListener};
/// # ringloop::run(async {
/// let opts = ListenOptions::new().reuseport(true).backlog(128);
/// let listener = TcpListener::bind_with("127.0.0.1:0".parse().unwrap(), &opts).unwrap();
/// # drop(listener);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct ListenOptions {
    reuseaddr: bool,
    reuseport: bool,
    backlog: i32,
    v6only: Option<bool>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions::new()
    }
}

impl ListenOptions {
    /// `SO_REUSEADDR` on, `SO_REUSEPORT` off, backlog 1024, `IPV6_V6ONLY` as the system has it.
    pub fn new() -> Self {
        ListenOptions {
            reuseaddr: true,
            reuseport: false,
            backlog: 1024,
            v6only: None,
        }
    }
    /// `SO_REUSEADDR`.
    pub fn reuseaddr(mut self, on: bool) -> Self {
        self.reuseaddr = on;
        self
    }
    /// `SO_REUSEPORT`: several listeners (one per loop thread) share the port.
    pub fn reuseport(mut self, on: bool) -> Self {
        self.reuseport = on;
        self
    }
    /// The `listen(2)` backlog.
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }
    /// `IPV6_V6ONLY` for IPv6 addresses.
    pub fn v6only(mut self, on: bool) -> Self {
        self.v6only = Some(on);
        self
    }
}

/// A TCP socket listening for connections.
///
/// An accept future dropped while the kernel owns its op is not cancelled: the listener
/// adopts the op, and the next `accept` takes its connection first. A connection that races a
/// timeout is therefore served, not closed. Dropping the listener cancels an adopted accept
/// (a connection it got anyway is closed, never leaked).
pub struct TcpListener {
    /// Keeps the socket registered with the epoll backend; dropped before `socket` closes.
    _registration: op::Registration,
    socket: Socket,
    adopted: AdoptedAccept,
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl TcpListener {
    /// Binds to `addr` with [`ListenOptions::new`].
    ///
    /// # Errors
    ///
    /// Socket, bind or listen errors; the message names the address.
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind_with(addr, &ListenOptions::new())
    }

    /// Binds to `addr` with the given options.
    ///
    /// # Errors
    ///
    /// Socket, bind or listen errors; the message names the address.
    pub fn bind_with(addr: SocketAddr, opts: &ListenOptions) -> io::Result<TcpListener> {
        let setup = || -> io::Result<Socket> {
            let socket = new_socket(addr)?;
            socket.set_reuse_address(opts.reuseaddr)?;
            if opts.reuseport {
                socket.set_reuse_port(true)?;
            }
            if let (Some(v6only), SocketAddr::V6(_)) = (opts.v6only, addr) {
                socket.set_only_v6(v6only)?;
            }
            socket.bind(&addr.into())?;
            socket.listen(opts.backlog)?;
            Ok(socket)
        };
        Ok(TcpListener::wrap(
            setup().map_err(|e| with_addr(e, "bind", addr))?,
        ))
    }

    /// The address it listens on (with the port the system chose for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(&self.socket)
    }

    fn wrap(socket: Socket) -> TcpListener {
        TcpListener {
            _registration: op::Registration::new(socket.as_raw_fd()),
            socket,
            adopted: Adopted::default(),
        }
    }

    /// Accepts a connection (one that an earlier, dropped accept received comes first).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ringloop::net::{TcpListener, TcpStream};
    /// # ringloop::run(async {
    /// let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// // Nobody connects in time: the accept is dropped, and adopted by the listener.
    /// let idle = ringloop::time::timeout(Duration::from_millis(5), listener.accept());
    /// assert!(idle.await.is_err());
    /// let client = TcpStream::connect(addr).await.unwrap();
    /// let (_, peer) = listener.accept().await.unwrap();
    /// assert_eq!(peer, client.local_addr().unwrap());
    /// # });
    /// ```
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, peer) = adopt::accept(self.socket.as_raw_fd(), &self.adopted).await?;
        let peer = peer.as_socket().ok_or_else(not_ip)?;
        let stream = TcpStream::from_owned(fd)?;
        Ok((stream, peer))
    }

    /// Polls an accept that an earlier, dropped `accept` left in flight (see the type's
    /// docs); `Ready(None)` when there is none.
    pub(crate) fn poll_adopted_accept(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<io::Result<(OwnedFd, socket2::SockAddr)>>> {
        adopt::poll_adopted(&self.adopted, cx)
    }

    /// Wraps a std listener (switched to non-blocking).
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener::wrap(Socket::from(listener)))
    }

    /// Gives back a std listener (non-blocking). An adopted accept is cancelled first (a
    /// connection it already got is closed).
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        self.adopted.cancel();
        Ok(self.socket.into())
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// A TCP connection. Methods take `&self`, so a stream shared between two tasks (for example
/// in an `Rc`) can be read by one while the other writes; [`into_split`](Self::into_split)
/// gives each task its own half. Reads started together run one after another, in the order
/// they were started, each getting the bytes after the previous one's.
///
/// # Cancelled reads lose nothing
///
/// A read future dropped while the kernel owns its op (a `timeout` or `select` gave up on it)
/// is not cancelled: the stream adopts the op, and the next read first takes whatever that op
/// received. Bytes that arrive in the instant between a timeout firing and its cancellation
/// taking effect therefore reach a later read instead of vanishing with the dropped one.
///
/// ```
/// use std::time::Duration;
/// use ringloop::net::{TcpListener, TcpStream};
/// # ringloop::run(async {
/// let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
/// let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
/// let (server, _) = listener.accept().await.unwrap();
/// // Nothing to read yet: the read times out and is dropped.
/// let idle = ringloop::time::timeout(Duration::from_millis(5), client.read(Vec::with_capacity(8)));
/// assert!(idle.await.is_err());
/// let (res, _) = server.write_all(b"late".as_slice()).await;
/// res.unwrap();
/// let (res, buf) = client.read_exact(Vec::with_capacity(4)).await;
/// res.unwrap();
/// assert_eq!(buf, b"late");
/// # });
/// ```
///
/// # futures-io and tokio traits
///
/// A `TcpStream` (and [`UnixStream`](super::UnixStream), and the owned halves) implements
/// futures-io's `AsyncRead` and `AsyncWrite`, and tokio's with the `tokio-io` feature. The
/// receive a poll starts lives in the stream, so an abandoned poll-based read loses nothing
/// and interleaves with owned-buffer reads; bytes are copied once, from the stream's receive
/// buffer into the caller's slice. `poll_write` accepts up to 64 KiB (copied) and sends them
/// from the stream: an error sending them is reported by the next `poll_write`,
/// `poll_flush` or `poll_close` (so by the flush at the latest), and a stream dropped before
/// they are sent sends them before it closes. `poll_close` flushes and shuts the write side
/// down. The inherent owned-buffer methods share the traits' method names and win, so call
/// the traits' methods by their trait's name:
///
/// ```
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
/// use ringloop::net::{TcpListener, TcpStream};
/// # ringloop::run(async {
/// let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
/// let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
/// let (mut server, _) = listener.accept().await.unwrap();
/// AsyncWriteExt::write_all(&mut client, b"poll-based").await.unwrap();
/// AsyncWriteExt::flush(&mut client).await.unwrap();
/// let mut buf = [0; 4];
/// AsyncReadExt::read_exact(&mut server, &mut buf).await.unwrap();
/// assert_eq!(&buf, b"poll");
/// // The rest waits in the stream for any kind of read: here an owned-buffer one.
/// let (res, rest) = server.read_exact(Vec::with_capacity(6)).await;
/// res.unwrap();
/// assert_eq!(rest, b"-based");
/// # });
/// ```
pub struct TcpStream {
    inner: StreamSocket,
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("socket", self.inner.socket())
            .finish_non_exhaustive()
    }
}

impl TcpStream {
    /// Connects to `addr`: a [`SocketAddr`], `(ip, port)`, `(host, port)` or `"host:port"`
    /// (see [`ToSocketAddrs`]). A host name is resolved on the blocking pool, and each of its
    /// addresses is tried in turn until one connects.
    ///
    /// ```
    /// use ringloop::net::{TcpListener, TcpStream};
    /// # ringloop::run(async {
    /// let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let port = listener.local_addr().unwrap().port();
    /// let stream = TcpStream::connect(format!("localhost:{port}")).await.unwrap();
    /// assert!(stream.peer_addr().unwrap().ip().is_loopback());
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// A failed lookup, or the last address's error (refused, unreachable...); the message
    /// names the host or address.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        TcpStream::connect_to(resolve::target_of(&addr), None).await
    }

    /// Connects to `addr` (as [`connect`](Self::connect)), giving up once `timeout` has passed
    /// with [`io::ErrorKind::TimedOut`]. The deadline covers the lookup and every attempt;
    /// each attempt is bounded by a kernel linked timeout on io_uring.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ringloop::net::{TcpListener, TcpStream};
    /// # ringloop::run(async {
    /// let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let stream = TcpStream::connect_timeout(addr, Duration::from_secs(5)).await.unwrap();
    /// assert_eq!(stream.peer_addr().unwrap(), addr);
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), or `TimedOut` naming the address.
    pub async fn connect_timeout(
        addr: impl ToSocketAddrs,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        let deadline = Instant::now() + timeout;
        TcpStream::connect_to(resolve::target_of(&addr), Some(deadline)).await
    }

    async fn connect_to(
        target: resolve::Target,
        deadline: Option<Instant>,
    ) -> io::Result<TcpStream> {
        let name = resolve::describe(&target);
        let addrs = match deadline {
            None => resolve::resolve(target).await?,
            Some(d) => crate::time::timeout_at(d, resolve::resolve(target))
                .await
                .map_err(|_| timed_out(&name))??,
        };
        let mut last = None;
        for &addr in &addrs {
            let left = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Err(last.unwrap_or_else(|| timed_out(&name))),
                },
            };
            match TcpStream::connect_one(addr, left).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        let last = last.expect("resolve returns at least one address");
        // The last error names the address it tried; add the host (and the count) if needed.
        let context = match addrs.len() {
            1 if name == addrs[0].to_string() => return Err(last),
            1 => format!("connect to {name}"),
            n => format!("connect to {name} (tried {n} addresses, the last said)"),
        };
        Err(io::Error::new(last.kind(), format!("{context}: {last}")))
    }

    async fn connect_one(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let socket = new_socket(addr).map_err(|e| with_addr(e, "connect to", addr))?;
        let mut connect = op::connect(socket.as_raw_fd(), addr);
        if let Some(t) = timeout {
            connect = connect.timeout(t);
        }
        connect
            .await
            .map_err(|e| with_addr(e, "connect to", addr))?;
        Ok(TcpStream::wrap(socket))
    }

    fn wrap(socket: Socket) -> TcpStream {
        TcpStream {
            inner: StreamSocket::new(socket, Family::Tcp),
        }
    }

    pub(crate) fn from_owned(fd: OwnedFd) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: StreamSocket::from_owned(fd, Family::Tcp)?,
        })
    }

    /// Reads into the spare capacity of `buf`; `Ok(0)` means the peer closed its side.
    /// Bytes received by an earlier read that was dropped come first (see the type's docs).
    pub async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.inner.read(buf).await
    }

    /// Reads into the spare capacity of each buffer in turn (one `readv`); `Ok(0)` is EOF.
    ///
    /// ```
    /// use ringloop::net::{TcpListener, TcpStream};
    /// # ringloop::run(async {
    /// let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    /// let (server, _) = listener.accept().await.unwrap();
    /// let (n, _) = client.writev(vec![b"head".as_slice(), b"body".as_slice()]).await;
    /// assert_eq!(n.unwrap(), 8);
    /// let (res, bufs) = server.readv(vec![Vec::with_capacity(4), Vec::with_capacity(4)]).await;
    /// let n = res.unwrap();
    /// assert_eq!(bufs.concat()[..n], b"headbody"[..n]);
    /// # });
    /// ```
    pub async fn readv<B: IoBufMut>(&self, bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
        self.inner.readv(bufs).await
    }

    /// Writes the initialised bytes of `buf`; may write fewer. A closed peer gives
    /// `BrokenPipe` (or `ConnectionReset`), never `SIGPIPE`.
    pub async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.inner.write(buf).await
    }

    /// Writes the initialised bytes of each buffer in turn in one `sendmsg`; may write fewer.
    /// See [`readv`](Self::readv) for an example.
    pub async fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
        self.inner.writev(bufs).await
    }

    /// Writes all initialised bytes of `buf`.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        self.inner.write_all(buf).await
    }

    /// Reads until the spare capacity of `buf` is full. On early EOF the error is
    /// [`io::ErrorKind::UnexpectedEof`] and `buf` holds the bytes that did arrive.
    pub async fn read_exact<B: IoBufMut>(&self, buf: B) -> (io::Result<()>, B) {
        self.inner.read_exact(buf).await
    }

    /// Splits the stream into halves that two tasks can own: one reads while the other
    /// writes. Dropping the write half shuts down the write direction (the peer sees EOF);
    /// [`OwnedReadHalf::reunite`] puts them back together.
    ///
    /// ```
    /// use ringloop::net::{TcpListener, TcpStream};
    /// # ringloop::run(async {
    /// let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    /// let (server, _) = listener.accept().await.unwrap();
    /// let (reader, writer) = client.into_split();
    /// let sender = ringloop::spawn(async move {
    ///     let (res, _) = writer.write_all(b"ping".as_slice()).await;
    ///     res.unwrap();
    /// });
    /// let (res, buf) = server.read_exact(Vec::with_capacity(4)).await;
    /// res.unwrap();
    /// assert_eq!(buf, b"ping");
    /// sender.await.unwrap();
    /// # drop(reader);
    /// # });
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf<TcpStream>, OwnedWriteHalf<TcpStream>) {
        super::split::split(self)
    }

    /// Shuts down the read, write or both halves (`shutdown(2)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket().shutdown(how)
    }

    /// `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.socket().set_tcp_nodelay(on)
    }
    /// Whether `TCP_NODELAY` is on.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.socket().tcp_nodelay()
    }
    /// `SO_LINGER`; `Some(0)` makes close send a reset.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.socket().set_linger(linger)
    }
    /// `SO_KEEPALIVE`.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.socket().set_keepalive(on)
    }
    /// `SO_SNDBUF`.
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        self.socket().set_send_buffer_size(size)
    }
    /// `SO_RCVBUF`.
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        self.socket().set_recv_buffer_size(size)
    }
    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket().peer_addr()?.as_socket().ok_or_else(not_ip)
    }
    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(self.socket())
    }

    fn socket(&self) -> &Socket {
        self.inner.socket()
    }

    /// Wraps a connected std stream (switched to non-blocking).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream::wrap(Socket::from(stream)))
    }

    /// Gives back a std stream (non-blocking).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if a dropped read is still in flight or left bytes behind (read them
    /// first: handing the socket over would lose them).
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        Ok(self.inner.into_socket("TcpStream")?.into())
    }
}

impl super::split::sealed::Sealed for TcpStream {
    fn stream_socket(&self) -> &StreamSocket {
        &self.inner
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.socket().as_raw_fd()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket().as_fd()
    }
}

fn timed_out(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("connect to {name}: timed out"),
    )
}

fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        None,
    )
}

fn local_addr(socket: &Socket) -> io::Result<SocketAddr> {
    socket.local_addr()?.as_socket().ok_or_else(not_ip)
}

fn not_ip() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "not an IP socket")
}
