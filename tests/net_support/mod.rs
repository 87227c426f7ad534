//! Helpers shared by the socket tests (`net_tcp_*`, `net_unix`, `net_fd_passing`,
//! `net_split`): a fixture holding the fd lock, a watchdog and a runtime; loopback listeners
//! and connected pairs; byte patterns; read helpers bounded in time; reading a TCP or Unix
//! stream each way ringloop offers ([`read_len`]); fd-count assertions.
//!
//! Every socket test opens descriptors and some count them, so every test holds
//! `support::serial()` (through [`fixture`]) and builds its runtime only after taking it.
//! Not every test file uses every helper, hence `dead_code` is allowed for this module.
#![allow(dead_code)]

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use ringloop::buf::BufRing;
use ringloop::net::{RecvStream, TcpListener, TcpStream, UnixStream};
use ringloop::{Backend, Handle, Runtime, time, yield_now};

use crate::support::{self, Watchdog, describe_open_fds, open_fds};

/// How long one test may run before its watchdog aborts the process.
pub const TEST_LIMIT: Duration = Duration::from_secs(30);
/// How long a read that must succeed may wait before the test fails (instead of hanging until
/// the watchdog takes the whole test binary down).
pub const READ_LIMIT: Duration = Duration::from_secs(10);

/// The fd-counting lock, a watchdog and a runtime on one backend. Fields drop in declaration
/// order: the runtime first (under the watchdog), the lock last.
pub struct Fixture {
    pub rt: Runtime,
    _watchdog: Watchdog,
    _serial: MutexGuard<'static, ()>,
}

/// Takes the fd lock, arms a [`TEST_LIMIT`] watchdog naming `what`, then builds the runtime.
pub fn fixture(backend: Backend, what: &str) -> Fixture {
    fixture_within(backend, what, TEST_LIMIT)
}

/// As [`fixture`], with a watchdog of `limit`.
pub fn fixture_within(backend: Backend, what: &str, limit: Duration) -> Fixture {
    let serial = support::serial();
    let watchdog = support::watchdog(limit, &format!("{what} on {backend:?}"));
    Fixture {
        rt: support::runtime(backend),
        _watchdog: watchdog,
        _serial: serial,
    }
}

/// `127.0.0.1:0`: loopback, any free port.
pub fn any_loopback_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// `len` bytes of a pattern that does not repeat every power of two: byte `i` is `i * 31 % 251`.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Asserts that `err` is what writing to (or reading from) a closed or reset peer gives.
pub fn assert_peer_gone(what: &str, err: &io::Error) {
    assert!(
        matches!(
            err.kind(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
        ),
        "{what}: want BrokenPipe or ConnectionReset, got {:?}: {err}",
        err.kind()
    );
}

/// A listener on a free loopback port, and its address.
pub fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind(any_loopback_port()).expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("listener local_addr");
    (listener, addr)
}

/// A connected `(client, server)` pair on loopback. The connect completes from the listen
/// backlog, so no accept needs to be pending for it.
pub async fn connected_pair() -> (TcpStream, TcpStream) {
    let (listener, addr) = listen();
    let client = TcpStream::connect(addr).await.expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    (client, server)
}

/// Reads until EOF in reads of at most `chunk` bytes; returns everything read.
pub async fn read_to_end(stream: &TcpStream, chunk: usize) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    loop {
        let (n, buf) = stream.read(Vec::with_capacity(chunk)).await;
        if n? == 0 {
            return Ok(all);
        }
        all.extend_from_slice(&buf);
    }
}

/// Writes back everything it reads until EOF; returns the bytes echoed.
pub async fn echo(stream: &TcpStream) -> io::Result<Vec<u8>> {
    let mut echoed = Vec::new();
    loop {
        let (n, buf) = stream.read(Vec::with_capacity(16 * 1024)).await;
        if n? == 0 {
            return Ok(echoed);
        }
        echoed.extend_from_slice(&buf);
        let (written, _) = stream.write_all(buf).await;
        written?;
    }
}

/// `read_exact` of `len` bytes that fails the test after [`READ_LIMIT`] instead of hanging.
pub async fn read_exactly(stream: &TcpStream, len: usize, what: &str) -> Vec<u8> {
    match time::timeout(READ_LIMIT, stream.read_exact(Vec::with_capacity(len))).await {
        Ok((Ok(()), buf)) => buf,
        Ok((Err(err), buf)) => panic!("{what}: read_exact failed after {} bytes: {err}", buf.len()),
        Err(_) => panic!("{what}: no {len} bytes arrived within {READ_LIMIT:?}"),
    }
}

/// The libtest name `both_backends!` gives the `backend` variant of a test.
pub fn variant_name(backend: Backend) -> &'static str {
    match backend {
        Backend::IoUring => "io_uring",
        Backend::Epoll => "epoll",
        Backend::Auto => panic!("both_backends! never runs a test on Backend::Auto"),
    }
}

/// A message of a length that differs per client, naming the client.
pub fn numbered_message(i: usize) -> Vec<u8> {
    format!("client {i:03} says {}\n", "x".repeat(i)).into_bytes()
}

/// Whether the server side of `client`'s connection has been closed: a non-blocking read sees
/// EOF or a reset rather than "would block".
pub fn peer_has_closed(client: &std::net::TcpStream) -> bool {
    use std::io::Read as _;
    client.set_nonblocking(true).expect("set_nonblocking");
    let mut byte = [0u8; 1];
    match (&*client).read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("the server never writes, yet a client read data"),
        Err(err) if err.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// Bytes waiting in `stream`'s receive queue, seen with a non-blocking `MSG_PEEK` (consumes
/// nothing).
pub fn bytes_waiting(stream: &impl std::os::fd::AsFd) -> usize {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 256];
    match socket2::SockRef::from(stream).peek(&mut buf) {
        Ok(n) => n,
        Err(err) if err.kind() == ErrorKind::WouldBlock => 0,
        Err(err) => panic!("peek: {err}"),
    }
}

/// Waits (bounded, on the running loop) for the open-fd count to return to `before` — a close
/// the runtime issued may still be on its way — then asserts it, listing the fds if not.
pub async fn assert_fd_count_returns_to(before: usize, what: &str) {
    let deadline = Instant::now() + READ_LIMIT;
    while open_fds() != before && Instant::now() < deadline {
        yield_now().await;
    }
    let after = open_fds();
    assert_eq!(
        after,
        before,
        "{what}: {before} fds open before, {after} after (in flight: {}):\n{}",
        Handle::current().inflight_ops(),
        describe_open_fds().join("\n")
    );
}

/// A socket path in the temp directory, unique to this process, test and backend, removed
/// (if it exists) when created and when dropped.
pub struct TempPath(pub PathBuf);

impl TempPath {
    /// The path for `what` on `backend`.
    pub fn new(what: &str, backend: Backend) -> Self {
        let name = format!("ringloop-{}-{what}-{backend:?}.sock", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_file(&path);
        TempPath(path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A unique abstract socket name for `what` on `backend` (no file, gone with its socket).
pub fn abstract_name(what: &str, backend: Backend) -> String {
    format!("ringloop-{}-{what}-{backend:?}", std::process::id())
}

/// The ways of reading a stream socket that [`read_len`] tries: `TcpStream` and `UnixStream`
/// have them as inherent methods, which no trait of ringloop's unites.
pub trait ReadWays: futures_lite::AsyncRead + Unpin {
    /// The owned-buffer `read`.
    fn read_owned(&self, buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)>;
    /// The multishot receive stream.
    fn multishot<'a>(&'a self, ring: &BufRing) -> RecvStream<'a>;
}

impl ReadWays for TcpStream {
    fn read_owned(&self, buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)> {
        self.read(buf)
    }
    fn multishot<'a>(&'a self, ring: &BufRing) -> RecvStream<'a> {
        self.recv_multishot(ring)
    }
}

impl ReadWays for UnixStream {
    fn read_owned(&self, buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)> {
        self.read(buf)
    }
    fn multishot<'a>(&'a self, ring: &BufRing) -> RecvStream<'a> {
        self.recv_multishot(ring)
    }
}

/// Reads `len` bytes from `stream` the way `way` names: `"read"` (owned-buffer reads),
/// `"recv_multishot"` (the multishot receive stream) or `"poll_read"` (futures-io's
/// `AsyncRead`). Unbounded: the caller bounds it in time.
pub async fn read_len<S: ReadWays>(stream: &mut S, len: usize, way: &str) -> Vec<u8> {
    let mut got = Vec::new();
    match way {
        "read" => {
            while got.len() < len {
                let (n, buf) = stream.read_owned(Vec::with_capacity(len)).await;
                assert!(
                    n.expect("read") > 0,
                    "end of file after {} bytes",
                    got.len()
                );
                got.extend_from_slice(&buf);
            }
        }
        "recv_multishot" => {
            let ring = BufRing::builder().build().expect("BufRing");
            let mut chunks = stream.multishot(&ring);
            while got.len() < len {
                let chunk = chunks.next().await.expect("end of file").expect("receive");
                got.extend_from_slice(&chunk);
            }
        }
        "poll_read" => {
            let mut buf = vec![0; len];
            while got.len() < len {
                let n = futures_lite::AsyncReadExt::read(stream, &mut buf)
                    .await
                    .expect("poll read");
                assert!(n > 0, "end of file after {} bytes", got.len());
                got.extend_from_slice(&buf[..n]);
            }
        }
        other => unreachable!("no way of reading named {other}"),
    }
    got
}
