//! futures-io's `AsyncRead`/`AsyncWrite` on `TcpStream`, `UnixStream` and their owned halves,
//! on both backends: a poll-based read abandoned mid-flight loses no byte (and interleaves
//! with the owned-buffer `read`), 1 MiB round-trips through every type, a write error reaches
//! the writer by its flush at the latest, bytes a `poll_write` accepted reach the peer
//! even when the stream or its write half is dropped right after, and a writer alone in its
//! turn of the loop sends at once on io_uring and still delivers every byte in order.
//!
//!
//! `fs::File` through futures-io moves its cursor as the owned-buffer methods do, and a
//! `File` dropped right after `write_all` still writes every accepted byte.
//!
//! Every test holds the fd lock through `net_support::fixture`.

mod fs_support;
mod net_support;
mod support;

use std::time::{Duration, Instant};

use futures_lite::future::poll_once;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use net_support::*;
use ringloop::net::{TcpStream, UnixStream};
use ringloop::time;
use support::Rng;

const MIB: usize = 1024 * 1024;

/// Byte `i` of the numbered sequence: the low byte of `i` mixed with its second byte, so a
/// byte lost or repeated anywhere shifts every later one.
fn numbered(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i ^ (i >> 8) ^ (i >> 16)) as u8).collect()
}

/// Writes `data` through futures-io in chunks of random size, flushes and closes.
async fn write_chunks<W: AsyncWrite + Unpin>(mut w: W, data: Vec<u8>, seed: u64) -> W {
    let mut rng = Rng::new(seed);
    let mut at = 0;
    while at < data.len() {
        let n = (1 + rng.below(48 * 1024) as usize).min(data.len() - at);
        w.write_all(&data[at..at + n]).await.expect("write_all");
        at += n;
        if rng.below(4) == 0 {
            ringloop::yield_now().await;
        }
    }
    w.flush().await.expect("flush");
    w.close().await.expect("close");
    w
}

/// Reads to end of file through futures-io, failing the test after `READ_LIMIT`.
async fn read_all<R: AsyncRead + Unpin>(mut r: R, what: &str) -> Vec<u8> {
    let mut got = Vec::new();
    match time::timeout(READ_LIMIT * 3, r.read_to_end(&mut got)).await {
        Ok(Ok(_)) => got,
        Ok(Err(e)) => panic!("{what}: read_to_end failed after {} bytes: {e}", got.len()),
        Err(_) => panic!(
            "{what}: no end of file within {:?} ({} bytes)",
            READ_LIMIT * 3,
            got.len()
        ),
    }
}

/// A stream's owned-buffer read, for [`read_mixed`].
trait OwnedRead: AsyncRead + Unpin {
    async fn owned_read(&self, buf: Vec<u8>) -> (std::io::Result<usize>, Vec<u8>);
}

impl OwnedRead for TcpStream {
    async fn owned_read(&self, buf: Vec<u8>) -> (std::io::Result<usize>, Vec<u8>) {
        TcpStream::read(self, buf).await
    }
}

impl OwnedRead for ringloop::net::OwnedReadHalf<UnixStream> {
    async fn owned_read(&self, buf: Vec<u8>) -> (std::io::Result<usize>, Vec<u8>) {
        self.read(buf).await
    }
}

/// Reads `total` bytes from `stream`, mixing at random: a poll-based read polled once and
/// abandoned if pending, a poll-based read dropped by a short timeout, an owned-buffer read
/// dropped by a short timeout, and reads of both kinds run to completion.
async fn read_mixed<S: OwnedRead>(stream: &mut S, total: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut got = Vec::with_capacity(total);
    let deadline = Instant::now() + support::scaled(READ_LIMIT * 3);
    while got.len() < total {
        assert!(
            Instant::now() < deadline,
            "seed {seed}: only {} of {total} bytes within the limit",
            got.len()
        );
        let size = 1 + rng.below(20_000) as usize;
        let short = Duration::from_micros(rng.below(1500));
        match rng.below(5) {
            0 => {
                let mut buf = vec![0; size];
                if let Some(res) = poll_once(AsyncReadExt::read(stream, &mut buf)).await {
                    let n = res.expect("poll-based read");
                    got.extend_from_slice(&buf[..n]);
                }
            }
            1 => {
                let mut buf = vec![0; size];
                if let Ok(res) = time::timeout(short, AsyncReadExt::read(stream, &mut buf)).await {
                    let n = res.expect("poll-based read");
                    got.extend_from_slice(&buf[..n]);
                }
            }
            2 => {
                let read = stream.owned_read(Vec::with_capacity(size));
                if let Ok((res, buf)) = time::timeout(short, read).await {
                    res.expect("owned read");
                    got.extend_from_slice(&buf);
                }
            }
            3 => {
                let mut buf = vec![0; size];
                let n = AsyncReadExt::read(stream, &mut buf)
                    .await
                    .expect("poll-based read");
                assert!(n > 0, "seed {seed}: end of file after {} bytes", got.len());
                got.extend_from_slice(&buf[..n]);
            }
            _ => {
                let (res, buf) = stream.owned_read(Vec::with_capacity(size)).await;
                assert!(res.expect("owned read") > 0, "seed {seed}: end of file");
                got.extend_from_slice(&buf);
            }
        }
    }
    got
}

both_backends! {
    /// Numbered bytes read through poll-based reads that are abandoned at random points
    /// (polled once and left pending, or dropped by a timeout) mixed with owned-buffer reads
    /// (some dropped by a timeout too) come out exactly in order: no byte lost, none repeated.
    fn abandoned_poll_reads_lose_no_byte(backend: Backend) {
        let fx = fixture(backend, "abandoned_poll_reads_lose_no_byte");
        fx.rt.block_on(async {
            for seed in [1u64, 7, 42] {
                let (client, mut server) = connected_pair().await;
                let total = 512 * 1024;
                let writer = ringloop::spawn(write_chunks(client, numbered(total), seed));
                let got = read_mixed(&mut server, total, seed ^ 0x5eed).await;
                support::assert_bytes_eq(&format!("seed {seed}"), &got, &numbered(total));
                let mut rest = [0u8; 16];
                let n = time::timeout(READ_LIMIT, AsyncReadExt::read(&mut server, &mut rest)).await;
                assert_eq!(n.expect("end of file in time").expect("read"), 0, "seed {seed}: bytes after the end");
                writer.await.expect("writer task");
            }
        });
    }

    /// The same through the read half of a `UnixStream`.
    fn abandoned_poll_reads_on_a_unix_half_lose_no_byte(backend: Backend) {
        let fx = fixture(backend, "abandoned_poll_reads_on_a_unix_half_lose_no_byte");
        fx.rt.block_on(async {
            for seed in [3u64, 11] {
                let (a, b) = UnixStream::pair().expect("socketpair");
                let (mut r, _w) = b.into_split();
                let total = 512 * 1024;
                let writer = ringloop::spawn(write_chunks(a, numbered(total), seed));
                let got = read_mixed(&mut r, total, seed ^ 0xface).await;
                support::assert_bytes_eq(&format!("seed {seed}"), &got, &numbered(total));
                writer.await.expect("writer task");
            }
        });
    }

    /// 1 MiB written through futures-io on a `TcpStream` is echoed back byte for byte by a
    /// server copying between its owned halves, and read back through the client's read half
    /// while its write half writes.
    fn tcp_and_halves_round_trip_1mib(backend: Backend) {
        let fx = fixture(backend, "tcp_and_halves_round_trip_1mib");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let echo = ringloop::spawn(async move {
                let (r, mut w) = server.into_split();
                let n = futures_lite::io::copy(r, &mut w).await.expect("echo copy");
                w.close().await.expect("close the echo");
                n
            });
            let (r, w) = client.into_split();
            let data = numbered(MIB);
            let writer = ringloop::spawn(write_chunks(w, data.clone(), 3));
            let back = read_all(r, "echo").await;
            support::assert_bytes_eq("echoed through halves", &back, &data);
            assert_eq!(echo.await.expect("echo task"), MIB as u64);
            writer.await.expect("writer task");
        });
    }

    /// 1 MiB through futures-io on a whole `TcpStream` each way: written and closed by one
    /// side, read to end of file by the other.
    fn tcp_stream_round_trip_1mib(backend: Backend) {
        let fx = fixture(backend, "tcp_stream_round_trip_1mib");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let data = numbered(MIB);
            let writer = ringloop::spawn(write_chunks(client, data.clone(), 5));
            let got = read_all(server, "whole stream").await;
            support::assert_bytes_eq("through the whole stream", &got, &data);
            writer.await.expect("writer task");
        });
    }

    /// The same on `UnixStream`: whole streams one way, halves the other.
    fn unix_stream_and_halves_round_trip_1mib(backend: Backend) {
        let fx = fixture(backend, "unix_stream_and_halves_round_trip_1mib");
        fx.rt.block_on(async {
            let (a, b) = UnixStream::pair().expect("socketpair");
            let data = numbered(MIB);
            let writer = ringloop::spawn(write_chunks(a, data.clone(), 9));
            let got = read_all(b, "unix stream").await;
            support::assert_bytes_eq("through a unix stream", &got, &data);
            writer.await.expect("writer task");

            let (a, b) = UnixStream::pair().expect("socketpair");
            let (_ar, aw) = a.into_split();
            let (br, _bw) = b.into_split();
            let writer = ringloop::spawn(write_chunks(aw, data.clone(), 11));
            let got = read_all(br, "unix halves").await;
            support::assert_bytes_eq("through unix halves", &got, &data);
            writer.await.expect("writer task");
        });
    }

    /// A peer that closed its socket makes the writer's sends fail: the error of a write
    /// `poll_write` accepted is reported by the next `poll_write`, or by `poll_flush` at the
    /// latest, never swallowed. (Bounded by time: the reset reaches the writer after its
    /// first send to the closed peer.)
    fn write_error_reaches_the_writer(backend: Backend) {
        let fx = fixture(backend, "write_error_reaches_the_writer");
        fx.rt.block_on(async {
            let (mut client, server) = connected_pair().await;
            drop(server);
            let chunk = vec![7u8; 16 * 1024];
            let deadline = Instant::now() + support::scaled(READ_LIMIT);
            let err = loop {
                assert!(Instant::now() < deadline, "no write error within {READ_LIMIT:?}");
                if let Err(e) = AsyncWriteExt::write(&mut client, &chunk).await {
                    break e;
                }
                // Every accepted write is settled by the flush: its error comes here if
                // not at the next write.
                if let Err(e) = client.flush().await {
                    break e;
                }
            };
            assert_peer_gone("write to a closed peer", &err);
            // Reported once; the socket's own state keeps failing later sends.
            let again = AsyncWriteExt::write_all(&mut client, &chunk).await.and(client.flush().await);
            let again = again.expect_err("a write after the error");
            assert_peer_gone("a later write", &again);
        });
    }

    /// Bytes `poll_write` accepted reach the peer when the stream is dropped right after
    /// `write_all` (no flush): the stream finishes sending them before it closes. The same
    /// for a write half, whose drop shuts the write side down only after them.
    fn dropped_writers_still_send_accepted_bytes(backend: Backend) {
        let fx = fixture(backend, "dropped_writers_still_send_accepted_bytes");
        fx.rt.block_on(async {
            let data = numbered(256 * 1024);
            let (mut client, server) = connected_pair().await;
            AsyncWriteExt::write_all(&mut client, &data).await.expect("write_all");
            drop(client);
            let got = read_all(server, "after the stream's drop").await;
            support::assert_bytes_eq("sent after the stream was dropped", &got, &data);

            let (client, server) = connected_pair().await;
            let (r, mut w) = client.into_split();
            AsyncWriteExt::write_all(&mut w, &data).await.expect("write_all on the half");
            drop(w);
            let got = read_all(server, "after the half's drop").await;
            support::assert_bytes_eq("sent after the half was dropped", &got, &data);
            drop(r);
        });
    }

    /// An owned-buffer write after `poll_write`s waits for the bytes they accepted: the peer
    /// sees everything in the order it was written.
    fn owned_writes_follow_accepted_bytes(backend: Backend) {
        let fx = fixture(backend, "owned_writes_follow_accepted_bytes");
        fx.rt.block_on(async {
            let (mut client, server) = connected_pair().await;
            let data = numbered(300 * 1024);
            let (first, second) = data.split_at(200 * 1024);
            AsyncWriteExt::write_all(&mut client, first).await.expect("poll-based write_all");
            let (res, _) = TcpStream::write_all(&client, second.to_vec()).await;
            res.expect("owned write_all");
            client.close().await.expect("close");
            let got = read_all(server, "mixed writes").await;
            support::assert_bytes_eq("poll-based then owned writes", &got, &data);
        });
    }

    /// A writer alone in its turn of the loop sends at once on io_uring, handing the kernel
    /// only what would wait (`Stats::ops_at_once`); epoll always does. Through a 4 KiB send
    /// buffer, so sends made at once stop short and the rest goes on in the kernel, replies
    /// of 1 byte to 200 KiB arrive whole and in order, written by `poll_write`, by owned-buffer
    /// writes, and by both in turn (an owned write after unflushed `poll_write`s). The client
    /// is a blocking thread, as in the HTTP benchmark, so the replying task runs alone.
    fn a_lone_writer_sends_at_once(backend: Backend) {
        const SIZES: [usize; 5] = [1, 64, 3000, 16 * 1024, 200 * 1024];
        let fx = fixture(backend, "a_lone_writer_sends_at_once");
        let (listener, addr) = listen();
        let client = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(addr).expect("client connect");
            stream.set_read_timeout(Some(support::scaled(READ_LIMIT))).expect("read timeout");
            // Every size with every way of writing: the replier picks the way by round % 3.
            for (round, size) in SIZES.iter().cycle().take(SIZES.len() * 3).enumerate() {
                stream.write_all(&(*size as u32).to_le_bytes()).expect("client request");
                let mut got = vec![0; *size];
                stream.read_exact(&mut got).unwrap_or_else(|e| {
                    panic!("reply {round} ({size} bytes): {e}")
                });
                support::assert_bytes_eq(&format!("reply {round}"), &got, &numbered(*size));
            }
        });
        fx.rt.block_on(async {
            let (mut server, _) = listener.accept().await.expect("accept");
            server.set_send_buffer_size(4096).expect("set_send_buffer_size");
            let mut request = [0u8; 4];
            for round in 0.. {
                match AsyncReadExt::read_exact(&mut server, &mut request).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                    Err(e) => panic!("request {round}: {e}"),
                }
                let reply = numbered(u32::from_le_bytes(request) as usize);
                let (a, b) = reply.split_at(reply.len() / 2);
                match round % 3 {
                    0 => {
                        AsyncWriteExt::write_all(&mut server, a).await.expect("poll write");
                        AsyncWriteExt::write_all(&mut server, b).await.expect("poll write");
                        server.flush().await.expect("flush");
                    }
                    1 => {
                        let (res, _) = TcpStream::write_all(&server, reply.clone()).await;
                        res.expect("owned write_all");
                    }
                    _ => {
                        AsyncWriteExt::write_all(&mut server, a).await.expect("poll write");
                        let (res, _) = TcpStream::write_all(&server, b.to_vec()).await;
                        res.expect("owned write_all after poll writes");
                    }
                }
            }
        });
        client.join().expect("client thread");
        let at_once = fx.rt.stats().ops_at_once;
        if backend == ringloop::Backend::IoUring {
            assert!(at_once > 0, "no send was made at once on io_uring");
        } else {
            assert_eq!(at_once, 0, "epoll counts no op as made at once");
        }
    }

    /// `fs::File` through futures-io: written with `write_all` and flushed, the cursor at
    /// the end; after `seek(0)` a poll-based read hands out 10 bytes (reading ahead), and an
    /// owned-buffer `read` then continues at byte 10, not after the read-ahead; a poll-based
    /// `read_to_end` returns the rest. A `File` dropped right after `write_all`, unflushed,
    /// still writes every byte it accepted.
    fn file_cursor_and_dropped_writes(backend: Backend) {
        let fx = fixture(backend, "file_cursor_and_dropped_writes");
        fx.rt.block_on(async {
            let dir = fs_support::TempDir::new("io-traits-file");
            let data = numbered(200 * 1024);
            let path = dir.join("data");
            let mut file = ringloop::fs::File::options()
                .read(true)
                .write(true)
                .create(true)
                .open(&path)
                .await
                .expect("open");
            AsyncWriteExt::write_all(&mut file, &data).await.expect("write_all");
            AsyncWriteExt::flush(&mut file).await.expect("flush");
            assert_eq!(file.stream_position(), data.len() as u64);
            file.seek(std::io::SeekFrom::Start(0)).await.expect("seek");
            let mut head = [0u8; 10];
            AsyncReadExt::read_exact(&mut file, &mut head).await.expect("poll-based read");
            assert_eq!(&head[..], &data[..10]);
            assert_eq!(file.stream_position(), 10);
            // (May be short: the fault injector shortens reads.)
            let (res, owned) = file.read(Vec::with_capacity(100)).await;
            let n = res.expect("owned read");
            assert!(n > 0, "end of file at byte 10");
            assert_eq!(&owned[..], &data[10..10 + n], "the owned read continues at the cursor");
            let mut rest = Vec::new();
            AsyncReadExt::read_to_end(&mut file, &mut rest).await.expect("read_to_end");
            support::assert_bytes_eq("the rest", &rest, &data[10 + n..]);
            file.close().await.expect("close");

            let path = dir.join("dropped");
            let mut file = ringloop::fs::File::create(&path).await.expect("create");
            AsyncWriteExt::write_all(&mut file, &data).await.expect("write_all");
            drop(file);
            let len = data.len() as u64;
            support::yield_until("the dropped file's bytes are written", || {
                std::fs::metadata(&path).is_ok_and(|m| m.len() == len)
            })
            .await;
            let written = std::fs::read(&path).expect("read back");
            support::assert_bytes_eq("written after the drop", &written, &data);
        });
    }
}
