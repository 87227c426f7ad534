//! TCP: [`TcpListener`] and [`TcpStream`].

use std::cell::RefCell;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use super::adopt::{self, AdoptOnDrop, Adopted};
use super::with_addr;
use crate::buf::{self, IoBuf, IoBufMut};
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
    adopted: Adopted<io::Result<(OwnedFd, SocketAddr)>>,
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
            adopted: RefCell::new(None),
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
        let rescued = match adopt::resume(&self.adopted).await {
            // An adopted accept cancelled by runtime shutdown: accept afresh.
            Some(Err(e)) if e.raw_os_error() == Some(libc::ECANCELED) => None,
            other => other,
        };
        let (fd, peer) = match rescued {
            Some(result) => result?,
            None => {
                let op = op::accept(self.socket.as_raw_fd());
                AdoptOnDrop::new(&self.adopted, op, std::convert::identity).await?
            }
        };
        let stream = TcpStream::from_owned(fd)?;
        Ok((stream, peer))
    }

    /// Wraps a std listener (switched to non-blocking).
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener::wrap(Socket::from(listener)))
    }

    /// Gives back a std listener (non-blocking). An adopted accept is cancelled first (a
    /// connection it already got is closed).
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        drop(self.adopted.take());
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
/// in an `Rc`) can be read by one while the other writes.
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
pub struct TcpStream {
    /// Keeps the socket registered with the epoll backend; dropped before `socket` closes.
    _registration: op::Registration,
    socket: Socket,
    rescue: Rescue,
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl TcpStream {
    /// Connects to `addr`.
    ///
    /// # Errors
    ///
    /// The connection's error (refused, unreachable...); the message names the address.
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::connect_inner(addr, None).await
    }

    /// Connects to `addr`, giving up after `timeout` (a kernel linked timeout on io_uring)
    /// with [`io::ErrorKind::TimedOut`].
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
    /// As [`connect`](Self::connect), or `TimedOut`.
    pub async fn connect_timeout(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        TcpStream::connect_inner(addr, Some(timeout)).await
    }

    async fn connect_inner(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
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
            _registration: op::Registration::new(socket.as_raw_fd()),
            socket,
            rescue: Rescue::default(),
        }
    }

    fn from_owned(fd: OwnedFd) -> io::Result<TcpStream> {
        // SAFETY: `fd` is an owned, open socket descriptor; ownership moves into the Socket.
        let socket = unsafe { Socket::from_raw_fd(fd.into_raw_fd()) };
        socket.set_nonblocking(true)?;
        Ok(TcpStream::wrap(socket))
    }

    /// Reads into the spare capacity of `buf`; `Ok(0)` means the peer closed its side.
    /// Bytes received by an earlier read that was dropped come first (see the type's docs).
    pub async fn read<B: IoBufMut>(&self, mut buf: B) -> (io::Result<usize>, B) {
        match self.rescue.take_into(&mut buf).await {
            Rescued::Bytes(n) => return (Ok(n), buf),
            Rescued::Eof => return (Ok(0), buf),
            Rescued::Failed(e) => return (Err(e), buf),
            Rescued::Nothing => {}
        }
        let op = op::recv(self.socket.as_raw_fd(), buf);
        AdoptOnDrop::new(&self.rescue.adopted, op, received::<B>).await
    }

    /// Writes the initialised bytes of `buf`; may write fewer. A closed peer gives
    /// `BrokenPipe` (or `ConnectionReset`), never `SIGPIPE`.
    pub async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        op::send(self.socket.as_raw_fd(), buf).await
    }

    /// Writes all initialised bytes of `buf`.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        let total = buf.bytes_init();
        let mut written = 0;
        let mut buf = buf;
        while written < total {
            let (res, slice) = self.write(buf.slice(written..total)).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let e =
                        io::Error::new(io::ErrorKind::WriteZero, "the socket accepted no bytes");
                    return (Err(e), buf);
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Reads until the spare capacity of `buf` is full. On early EOF the error is
    /// [`io::ErrorKind::UnexpectedEof`] and `buf` holds the bytes that did arrive.
    pub async fn read_exact<B: IoBufMut>(&self, buf: B) -> (io::Result<()>, B) {
        let mut buf = buf;
        while buf.bytes_init() < buf.bytes_total() {
            let (res, b) = self.read(buf).await;
            buf = b;
            match res {
                Ok(0) => {
                    let msg = format!(
                        "early EOF: {} of {} bytes arrived",
                        buf.bytes_init(),
                        buf.bytes_total()
                    );
                    return (Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg)), buf);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Shuts down the read, write or both halves (`shutdown(2)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.shutdown(how)
    }

    /// `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.socket.set_tcp_nodelay(on)
    }
    /// Whether `TCP_NODELAY` is on.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.socket.tcp_nodelay()
    }
    /// `SO_LINGER`; `Some(0)` makes close send a reset.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.socket.set_linger(linger)
    }
    /// `SO_KEEPALIVE`.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.socket.set_keepalive(on)
    }
    /// `SO_SNDBUF`.
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        self.socket.set_send_buffer_size(size)
    }
    /// `SO_RCVBUF`.
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        self.socket.set_recv_buffer_size(size)
    }
    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.peer_addr()?.as_socket().ok_or_else(not_ip)
    }
    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(&self.socket)
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
        if !self.rescue.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TcpStream::into_std: a dropped read is still in flight or left bytes unread",
            ));
        }
        Ok(self.socket.into())
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// What a dropped read left for the next one.
#[derive(Default)]
struct Rescue {
    /// Bytes an adopted read received beyond what the next read could take.
    leftover: RefCell<Vec<u8>>,
    /// A read dropped while the kernel owned it, still in flight: the bytes it receives.
    adopted: Adopted<io::Result<Vec<u8>>>,
}

enum Rescued {
    Nothing,
    Bytes(usize),
    Eof,
    Failed(io::Error),
}

impl Rescue {
    fn is_empty(&self) -> bool {
        self.leftover.borrow().is_empty() && self.adopted.borrow().is_none()
    }

    /// Moves rescued bytes into `buf`, first waiting for an adopted read if there is one.
    async fn take_into<B: IoBufMut>(&self, buf: &mut B) -> Rescued {
        if !self.leftover.borrow().is_empty() {
            let mut leftover = self.leftover.borrow_mut();
            let n = buf::fill_from(buf, &leftover);
            leftover.drain(..n);
            return Rescued::Bytes(n);
        }
        match adopt::resume(&self.adopted).await {
            None => Rescued::Nothing,
            Some(Ok(bytes)) if bytes.is_empty() => Rescued::Eof,
            Some(Ok(bytes)) => {
                let n = buf::fill_from(buf, &bytes);
                self.leftover.borrow_mut().extend_from_slice(&bytes[n..]);
                Rescued::Bytes(n)
            }
            // Cancelled (runtime shutdown): nothing was read; read afresh.
            Some(Err(e)) if e.raw_os_error() == Some(libc::ECANCELED) => Rescued::Nothing,
            Some(Err(e)) => Rescued::Failed(e),
        }
    }
}

/// The bytes a completed receive added to its buffer.
fn received<B: IoBufMut>((res, buf): (io::Result<usize>, B)) -> io::Result<Vec<u8>> {
    res.map(|n| {
        let init = buf::init_bytes(&buf, 0);
        init[init.len() - n..].to_vec()
    })
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
