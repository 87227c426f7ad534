//! Dropping a stream whose dropped read is still in flight closes the connection at once: the
//! adopted op is cancelled, then the socket closed, so the kernel holds no reference that
//! keeps the connection open and the peer reads end of file within two seconds. Checked for
//! an adopted `read` and for a dropped receive stream (kernel buffer ring and user-space
//! pool — on io_uring the pool receives one buffer at a time), TCP and Unix, both backends.

mod net_support;
mod support;

use std::future::Future;
use std::io;
use std::time::Duration;

use futures_lite::future::poll_once;
use net_support::{connected_pair, fixture};
use ringloop::buf::{BufRing, RingBuf};
use ringloop::net::{RecvStream, TcpStream, UnixStream};
use ringloop::time;

/// How long the peer may wait for end of file after the stream is dropped.
const EOF_LIMIT: Duration = Duration::from_secs(2);

/// The two stream types, as far as these tests need them.
trait Stream {
    fn read(&self, buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)>;
    fn recv_multishot(&self, ring: &BufRing) -> RecvStream<'_>;
}

impl Stream for TcpStream {
    fn read(&self, buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)> {
        TcpStream::read(self, buf)
    }
    fn recv_multishot(&self, ring: &BufRing) -> RecvStream<'_> {
        TcpStream::recv_multishot(self, ring)
    }
}

impl Stream for UnixStream {
    fn read(&self, buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)> {
        UnixStream::read(self, buf)
    }
    fn recv_multishot(&self, ring: &BufRing) -> RecvStream<'_> {
        UnixStream::recv_multishot(self, ring)
    }
}

/// How the stream's read is dropped in flight before the stream itself is dropped.
#[derive(Clone, Copy, Debug)]
enum DroppedRead {
    /// A `read` that timed out.
    Read,
    /// A receive stream armed and dropped; `kernel`: with a kernel buffer ring.
    RecvStream { kernel: bool },
}

const DROPPED_READS: [DroppedRead; 3] = [
    DroppedRead::Read,
    DroppedRead::RecvStream { kernel: true },
    DroppedRead::RecvStream { kernel: false },
];

/// Leaves a dropped read of `server` in flight (adopted), drops `server`, and checks that
/// `client` reads end of file within [`EOF_LIMIT`].
async fn peer_sees_eof<S: Stream>(client: S, server: S, how: DroppedRead) {
    match how {
        DroppedRead::Read => {
            // Nothing to read: the read times out in flight, and the stream adopts it.
            let idle = time::timeout(
                Duration::from_millis(10),
                server.read(Vec::with_capacity(8)),
            );
            assert!(
                idle.await.is_err(),
                "nothing was sent, yet the read finished"
            );
        }
        DroppedRead::RecvStream { kernel } => {
            let ring = BufRing::builder()
                .buf_size(1024)
                .initial(4)
                .kernel(kernel)
                .build()
                .expect("BufRing::build");
            let mut chunks = server.recv_multishot(&ring);
            let first: Option<Option<io::Result<RingBuf>>> = poll_once(chunks.next()).await;
            assert!(first.is_none(), "nothing was sent, yet a chunk arrived");
            // Every loop turn flushes the submissions: after one, the receive is in the
            // kernel, where only a cancel ends it.
            ringloop::yield_now().await;
            drop(chunks);
        }
    }
    drop(server);
    match time::timeout(EOF_LIMIT, client.read(Vec::with_capacity(8))).await {
        Ok((Ok(0), _)) => {}
        Ok((res, _)) => panic!("{how:?}: the peer wants end of file, got {res:?}"),
        Err(_) => panic!("{how:?}: no end of file within {EOF_LIMIT:?} of dropping the stream"),
    }
}

both_backends! {
    /// TCP: the peer sees end of file at once.
    fn tcp_peer_sees_eof_at_once(backend: Backend) {
        let f = fixture(backend, "tcp_peer_sees_eof_at_once");
        f.rt.block_on(async {
            for how in DROPPED_READS {
                let (client, server) = connected_pair().await;
                peer_sees_eof(client, server, how).await;
            }
        });
    }

    /// Unix: the peer sees end of file at once.
    fn unix_peer_sees_eof_at_once(backend: Backend) {
        let f = fixture(backend, "unix_peer_sees_eof_at_once");
        f.rt.block_on(async {
            for how in DROPPED_READS {
                let (client, server) = UnixStream::pair().expect("UnixStream::pair");
                peer_sees_eof(client, server, how).await;
            }
        });
    }
}
