//! Two receives in flight on one socket lose nothing. Two reads of a stream, both dropped
//! after (some of) the peer's bytes were taken from the socket: the next reads get every
//! byte, in order, once — whichever of the two is dropped first, for TCP and Unix streams. Two
//! datagram receives dropped after a datagram arrived: the next receive gets it. Two accepts
//! dropped after a connection was accepted: the next accept gets it, open. All on both
//! backends. (A socket lets one receive at a time own an op: a second waits for the first to
//! finish or be dropped, so only one op can be adopted.) Two reads awaited together also see
//! the bytes in the order they were sent.

mod net_support;
mod support;

use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::pin;
use std::time::Duration;

use futures_lite::future::{poll_once, zip};
use net_support::{any_loopback_port, connected_pair, fixture, listen, pattern, peer_has_closed};
use ringloop::net::{TcpStream, UdpSocket, UnixStream};
use ringloop::time;
use support::{assert_bytes_eq, yield_until_deadline};

/// Bytes waiting in the receive queue of socket `fd` (`FIONREAD`).
fn unread(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: `fd` is an open socket borrowed for the call; FIONREAD writes one c_int to `n`.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "ioctl(FIONREAD): {}", io::Error::last_os_error());
    n as usize
}

/// Connections waiting in the accept queue of listening TCP socket `fd` (for a listener,
/// `TCP_INFO` reports the queue length as `tcpi_unacked`).
fn accept_backlog(fd: RawFd) -> usize {
    // SAFETY: tcp_info is plain data, for which all zero bytes are a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `fd` is an open socket borrowed for the call; `info` is writable for `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    assert_eq!(
        rc,
        0,
        "getsockopt(TCP_INFO): {}",
        io::Error::last_os_error()
    );
    info.tcpi_unacked as usize
}

/// How long a receive that must succeed may wait.
const LIMIT: Duration = Duration::from_secs(2);

/// The two stream types, as far as these tests need them.
trait Stream: AsRawFd {
    fn read(&self, buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)>;
    fn write_all(&self, buf: Vec<u8>) -> impl Future<Output = (io::Result<()>, Vec<u8>)>;
    fn shutdown_write(&self);
}

impl Stream for TcpStream {
    fn read(&self, buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)> {
        TcpStream::read(self, buf)
    }
    fn write_all(&self, buf: Vec<u8>) -> impl Future<Output = (io::Result<()>, Vec<u8>)> {
        TcpStream::write_all(self, buf)
    }
    fn shutdown_write(&self) {
        self.shutdown(Shutdown::Write).expect("shutdown");
    }
}

impl Stream for UnixStream {
    fn read(&self, buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)> {
        UnixStream::read(self, buf)
    }
    fn write_all(&self, buf: Vec<u8>) -> impl Future<Output = (io::Result<()>, Vec<u8>)> {
        UnixStream::write_all(self, buf)
    }
    fn shutdown_write(&self) {
        self.shutdown(Shutdown::Write).expect("shutdown");
    }
}

async fn read_to_end(stream: &impl Stream) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let (n, buf) = stream.read(Vec::with_capacity(7)).await;
        if n.expect("read") == 0 {
            return all;
        }
        all.extend_from_slice(&buf);
    }
}

/// Starts two reads on `server`, lets (some of) the peer's first bytes be taken from the
/// socket, drops the reads (the second one first if `second_first`), then checks that the rest
/// of the stream is everything the peer sent.
async fn two_dropped_reads(client: &impl Stream, server: &impl Stream, second_first: bool) {
    let what = format!("second read dropped first: {second_first}");
    let mut first = Box::pin(server.read(Vec::with_capacity(64)));
    let mut second = Box::pin(server.read(Vec::with_capacity(64)));
    assert!(
        poll_once(&mut first).await.is_none(),
        "{what}: nothing sent yet"
    );
    assert!(
        poll_once(&mut second).await.is_none(),
        "{what}: nothing sent yet"
    );
    let sent = b"first bytes|";
    let (res, _) = client.write_all(sent.to_vec()).await;
    res.expect("write_all");
    // A read in flight takes them, or its first few (a stream read may be short), from the
    // socket (the futures are not polled meanwhile, so no second read follows a short one).
    let fd = server.as_raw_fd();
    yield_until_deadline("a read took bytes", || unread(fd) < sent.len()).await;
    if second_first {
        drop(second);
        drop(first);
    } else {
        drop(first);
        drop(second);
    }
    let (res, _) = client.write_all(b"second bytes".to_vec()).await;
    res.expect("write_all");
    client.shutdown_write();
    let got = read_to_end(server).await;
    assert_bytes_eq(&what, &got, b"first bytes|second bytes");
}

/// Two reads awaited together, then the rest: all bytes in the order sent.
async fn two_joined_reads(client: &impl Stream, server: &impl Stream) {
    let sent = pattern(64 * 1024);
    let writer = async {
        for piece in sent.chunks(1000) {
            let (res, _) = client.write_all(piece.to_vec()).await;
            res.expect("write_all");
        }
        client.shutdown_write();
    };
    let reader = async {
        let mut got = Vec::new();
        loop {
            let ((a, ab), (b, bb)) = zip(
                server.read(Vec::with_capacity(700)),
                server.read(Vec::with_capacity(700)),
            )
            .await;
            let (a, b) = (a.expect("read"), b.expect("read"));
            got.extend_from_slice(&ab);
            got.extend_from_slice(&bb);
            if a == 0 || b == 0 {
                got.extend(read_to_end(server).await);
                return got;
            }
        }
    };
    let ((), got) = zip(pin!(writer), pin!(reader)).await;
    assert_bytes_eq("two reads awaited together", &got, &sent);
}

both_backends! {
    /// TCP: two reads in flight, both dropped after (some of) the first bytes were taken:
    /// nothing lost.
    fn tcp_two_dropped_reads_lose_nothing(backend: Backend) {
        let f = fixture(backend, "tcp_two_dropped_reads_lose_nothing");
        f.rt.block_on(async {
            for second_first in [false, true] {
                let (client, server) = connected_pair().await;
                two_dropped_reads(&client, &server, second_first).await;
            }
        });
    }

    /// Unix: the same.
    fn unix_two_dropped_reads_lose_nothing(backend: Backend) {
        let f = fixture(backend, "unix_two_dropped_reads_lose_nothing");
        f.rt.block_on(async {
            for second_first in [false, true] {
                let (client, server) = UnixStream::pair().expect("UnixStream::pair");
                two_dropped_reads(&client, &server, second_first).await;
            }
        });
    }

    /// UDP: two receives in flight, both dropped after a datagram arrived: the next receive
    /// gets it.
    fn udp_two_dropped_receives_lose_nothing(backend: Backend) {
        let f = fixture(backend, "udp_two_dropped_receives_lose_nothing");
        f.rt.block_on(async {
            for second_first in [false, true] {
                let what = format!("second receive dropped first: {second_first}");
                let server = UdpSocket::bind(any_loopback_port()).expect("bind");
                let client = UdpSocket::bind(any_loopback_port()).expect("bind");
                let to = server.local_addr().expect("local_addr");
                let mut first = Box::pin(server.recv_from(Vec::with_capacity(64)));
                let mut second = Box::pin(server.recv_from(Vec::with_capacity(64)));
                assert!(poll_once(&mut first).await.is_none(), "{what}: nothing sent yet");
                assert!(poll_once(&mut second).await.is_none(), "{what}: nothing sent yet");
                let (res, _) = client.send_to(b"datagram".as_slice(), to).await;
                res.expect("send_to");
                let fd = server.as_raw_fd();
                yield_until_deadline("a receive took the datagram", || unread(fd) == 0).await;
                if second_first {
                    drop(second);
                    drop(first);
                } else {
                    drop(first);
                    drop(second);
                }
                match time::timeout(LIMIT, server.recv_from(Vec::with_capacity(64))).await {
                    Ok((res, buf)) => {
                        res.expect("recv_from");
                        assert_eq!(buf, b"datagram", "{what}");
                    }
                    Err(_) => panic!("{what}: the datagram was lost"),
                }
            }
        });
    }

    /// TCP listener: two accepts in flight, both dropped after a connection was accepted:
    /// the next accept gets it, and the client's connection was not closed.
    fn two_dropped_accepts_lose_nothing(backend: Backend) {
        let f = fixture(backend, "two_dropped_accepts_lose_nothing");
        f.rt.block_on(async {
            for second_first in [false, true] {
                let what = format!("second accept dropped first: {second_first}");
                let (listener, addr) = listen();
                let mut first = Box::pin(listener.accept());
                let mut second = Box::pin(listener.accept());
                assert!(poll_once(&mut first).await.is_none(), "{what}: nobody connected yet");
                assert!(poll_once(&mut second).await.is_none(), "{what}: nobody connected yet");
                // A loopback connect completes from the backlog: blocking here is brief.
                let client = std::net::TcpStream::connect(addr).expect("connect");
                let fd = listener.as_raw_fd();
                yield_until_deadline("an accept took the connection", || {
                    accept_backlog(fd) == 0
                })
                .await;
                if second_first {
                    drop(second);
                    drop(first);
                } else {
                    drop(first);
                    drop(second);
                }
                let (stream, peer) = match time::timeout(LIMIT, listener.accept()).await {
                    Ok(accepted) => accepted.expect("accept"),
                    Err(_) => panic!("{what}: the accepted connection was lost"),
                };
                assert_eq!(peer, client.local_addr().expect("local_addr"), "{what}");
                assert!(!peer_has_closed(&client), "{what}: the connection was closed");
                drop(stream);
            }
        });
    }

    /// TCP: pairs of reads awaited together see the bytes in the order they were sent.
    fn tcp_joined_reads_keep_order(backend: Backend) {
        let f = fixture(backend, "tcp_joined_reads_keep_order");
        f.rt.block_on(async {
            let (client, server) = connected_pair().await;
            two_joined_reads(&client, &server).await;
        });
    }
}
