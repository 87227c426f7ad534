//! Split streams on both backends: the read and write halves of a TCP or Unix stream, owned by
//! two tasks, run at once (a transfer larger than every socket buffer only finishes if they
//! do); dropping the write half sends EOF while the read half keeps reading; `reunite` gives
//! the stream back, and refuses halves of two different streams.
//!
//! Every test holds the fd lock through `net_support::fixture` (see `tests/net_support`).

mod net_support;
mod support;

use net_support::*;
use ringloop::net::{OwnedReadHalf, OwnedWriteHalf, SplitStream, TcpStream, UnixStream};
use ringloop::time;

/// 4 MiB: more than the socket buffers of both directions hold, so an echo of it completes
/// only if the writer and the reader run at the same time.
const TOTAL: usize = 4 << 20;

/// Writes [`pattern`]`(TOTAL)` through `writer` in 1 000-byte chunks from one task while
/// another reads the echo through `reader`; returns what came back.
async fn echo_through_halves<S: SplitStream + 'static>(
    reader: OwnedReadHalf<S>,
    writer: OwnedWriteHalf<S>,
) -> Vec<u8> {
    let sending = ringloop::spawn(async move {
        for chunk in pattern(TOTAL).chunks(1000) {
            let (res, _) = writer.write_all(chunk.to_vec()).await;
            res.expect("write half");
        }
        // Dropping the write half: the echo server sees EOF and closes.
    });
    let receiving = ringloop::spawn(async move {
        let mut got = Vec::with_capacity(TOTAL);
        loop {
            let read = time::timeout(READ_LIMIT, reader.read(Vec::with_capacity(64 * 1024)));
            let (n, buf) = read.await.expect("the echo keeps coming");
            if n.expect("read half") == 0 {
                return got;
            }
            got.extend_from_slice(&buf);
        }
    });
    sending.await.expect("writer task");
    receiving.await.expect("reader task")
}

both_backends! {
    /// A TCP stream's halves, in two tasks, push 4 MiB through an echo server and read it all
    /// back in order while the writing goes on.
    fn tcp_halves_run_at_once(backend: Backend) {
        let fx = fixture(backend, "tcp_halves_run_at_once");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let echo_task = ringloop::spawn(async move { echo(&server).await.expect("echo") });
            let (reader, writer) = client.into_split();
            let got = echo_through_halves(reader, writer).await;
            support::assert_bytes_eq("echo through TCP halves", &got, &pattern(TOTAL));
            assert_eq!(echo_task.await.expect("echo task").len(), TOTAL);
        });
    }

    /// A Unix stream's halves, in two tasks, push 4 MiB through an echo peer and read it all
    /// back in order.
    fn unix_halves_run_at_once(backend: Backend) {
        let fx = fixture(backend, "unix_halves_run_at_once");
        fx.rt.block_on(async {
            let (client, server) = UnixStream::pair().expect("pair");
            let echo_task = ringloop::spawn(async move {
                let mut total = 0;
                loop {
                    let (n, buf) = server.read(Vec::with_capacity(64 * 1024)).await;
                    let n = n.expect("echo read");
                    if n == 0 {
                        return total;
                    }
                    total += n;
                    let (res, _) = server.write_all(buf).await;
                    res.expect("echo write");
                }
            });
            let (reader, writer) = client.into_split();
            let got = echo_through_halves(reader, writer).await;
            support::assert_bytes_eq("echo through Unix halves", &got, &pattern(TOTAL));
            assert_eq!(echo_task.await.expect("echo task"), TOTAL);
        });
    }

    /// Dropping the write half shuts down writing: the peer reads EOF, and can still send to
    /// the read half, which reads it.
    fn dropping_the_write_half_sends_eof(backend: Backend) {
        let fx = fixture(backend, "dropping_the_write_half_sends_eof");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let (reader, writer) = client.into_split();
            let (res, _) = writer.write_all(b"last".as_slice()).await;
            res.expect("write half");
            drop(writer);
            let got = read_to_end(&server, 16).await.expect("server reads to EOF");
            assert_eq!(got, b"last");
            let (res, _) = server.write_all(b"reply".as_slice()).await;
            res.expect("server write after the client's half-close");
            let (res, buf) = reader.read_exact(Vec::with_capacity(5)).await;
            res.expect("read half after the write half is gone");
            assert_eq!(buf, b"reply");
            assert_eq!(reader.as_ref().peer_addr().unwrap(), server.local_addr().unwrap());
        });
    }

    /// `reunite` of a stream's own halves gives back a working stream (no shutdown happened);
    /// halves of two streams are refused and handed back intact.
    fn reunite_gives_the_stream_back(backend: Backend) {
        let fx = fixture(backend, "reunite_gives_the_stream_back");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let (other, _other_server) = connected_pair().await;
            let (reader, writer) = client.into_split();
            let (other_reader, other_writer) = other.into_split();
            let err = reader.reunite(other_writer).expect_err("halves of two streams");
            let (reader, other_writer) = (err.0, err.1);
            drop((other_reader, other_writer));
            let client: TcpStream = writer.reunite(reader).expect("a stream's own halves");
            let (res, _) = client.write_all(b"whole again".as_slice()).await;
            res.expect("write after reunite");
            let got = read_exactly(&server, 11, "after reunite").await;
            assert_eq!(got, b"whole again");
        });
    }
}
