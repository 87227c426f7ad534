//! A `RecvStream` dropped while receiving loses nothing: chunks it had received but not
//! yielded go to the socket's next `read`, in order, before anything read afresh — through a
//! kernel ring and through the user-space pool (io_uring's single-shot path), on both
//! backends. End of file seen by the dropped stream is seen again by the read.

mod net_support;
mod support;

use futures_lite::future::poll_once;
use net_support::{connected_pair, fixture, pattern, read_to_end};
use ringloop::buf::BufRing;
use ringloop::net::TcpStream;
use support::{assert_bytes_eq, yield_turns};

fn ring(kernel: bool) -> BufRing {
    BufRing::builder()
        .buf_size(1024)
        .initial(8)
        .max(64)
        .kernel(kernel)
        .build()
        .expect("BufRing::build")
}

/// Writes `data` in 700-byte pieces, then shuts down writing.
fn send_all(client: TcpStream, data: Vec<u8>) -> ringloop::JoinHandle<TcpStream> {
    ringloop::spawn(async move {
        for piece in data.chunks(700) {
            let (res, _) = client.write_all(piece.to_vec()).await;
            res.expect("write_all");
        }
        client
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        client
    })
}

/// Takes `k` chunks from a receive stream (for `k == 0`: polls it once, arming it), lets
/// more queue, drops it, then reads to end of file; returns everything received.
async fn drop_after(server: &TcpStream, ring: &BufRing, k: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunks = server.recv_multishot(ring);
    if k == 0
        && let Some(Some(chunk)) = poll_once(chunks.next()).await
    {
        got.extend_from_slice(&chunk.expect("chunk"));
    }
    for _ in 0..k {
        match chunks.next().await {
            Some(chunk) => got.extend_from_slice(&chunk.expect("chunk")),
            None => break,
        }
    }
    yield_turns(k % 3).await;
    drop(chunks);
    got.extend(read_to_end(server, 500).await.expect("read_to_end"));
    got
}

both_backends! {
    /// Chunks a dropped stream had queued come back through the next read, in order.
    fn queued_chunks_go_to_the_next_read(backend: Backend) {
        let f = fixture(backend, "queued_chunks_go_to_the_next_read");
        f.rt.block_on(async {
            for kernel in [true, false] {
                let ring = ring(kernel);
                let (client, server) = connected_pair().await;
                let sent = pattern(64 * 1024);
                let writer = send_all(client, sent.clone());
                let mut chunks = server.recv_multishot(&ring);
                let first = chunks.next().await.expect("a chunk").expect("chunk");
                writer.await.expect("writer");
                // More chunks arrive and queue while this task is not polling (buffers wait in
                // completions beside the one `first` holds) — except on io_uring's single-shot
                // path, which receives one chunk per poll: there the queue holds nothing more.
                if backend == ringloop::Backend::Epoll || ring.is_kernel() {
                    support::yield_until("more chunks queued in the stream", || {
                        ring.in_use() > 1
                    })
                    .await;
                }
                drop(chunks);
                let mut got = first.to_vec();
                got.extend(read_to_end(&server, 4096).await.expect("read_to_end"));
                assert_bytes_eq(&format!("kernel ring {kernel}"), &got, &sent);
            }
        });
    }

    /// Receive streams dropped at every point of a 64 KiB transfer (after 0 to 40 chunks,
    /// with and without time for more to queue): nothing lost, duplicated or reordered, and
    /// every buffer back in its ring.
    fn streams_dropped_anywhere_lose_nothing(backend: Backend) {
        let f = fixture(backend, "streams_dropped_anywhere_lose_nothing");
        f.rt.block_on(async {
            for kernel in [true, false] {
                let ring = ring(kernel);
                for k in [0, 1, 2, 3, 5, 8, 13, 21, 40] {
                    let (client, server) = connected_pair().await;
                    let sent = pattern(64 * 1024);
                    let writer = send_all(client, sent.clone());
                    let got = drop_after(&server, &ring, k).await;
                    drop(writer.await.expect("writer"));
                    let what = format!("kernel ring {kernel}, dropped after {k} chunks");
                    assert_bytes_eq(&what, &got, &sent);
                    assert_eq!(ring.in_use(), 0, "{what}: every buffer back in the ring");
                }
            }
        });
    }

    /// A stream dropped after it saw the data and the end of file: the read gets the data,
    /// then end of file.
    fn end_of_file_after_a_dropped_stream(backend: Backend) {
        let f = fixture(backend, "end_of_file_after_a_dropped_stream");
        f.rt.block_on(async {
            let ring = ring(true);
            let (client, server) = connected_pair().await;
            let writer = send_all(client, b"last words".to_vec());
            drop(writer.await.expect("writer"));
            let mut chunks = server.recv_multishot(&ring);
            let mut got = Vec::new();
            if let Some(Some(chunk)) = poll_once(chunks.next()).await {
                got.extend_from_slice(&chunk.expect("chunk"));
            }
            yield_turns(10).await;
            drop(chunks);
            got.extend(read_to_end(&server, 4096).await.expect("read_to_end"));
            assert_eq!(got, b"last words");
        });
    }
}
