//! Provided-buffer rings and multishot receive on both backends: a large stream arrives exactly
//! (kernel ring, and the user-space pool that io_uring falls back to with single-shot receives),
//! many connections share a tiny ring without losing a byte, holding every buffer blocks
//! receiving without losing data, a receive waiting for a buffer does not busy-loop,
//! `stop`/`resume` loses and duplicates nothing, and a received buffer can be written back as it
//! is.
//!
//! How buffers are returned (idle receives, EOF and reset, dropped streams and rings) is checked
//! in `buf_ring_release.rs`.
//!
//! Every test opens sockets, so every test holds `support::serial()` and builds its runtime only
//! after taking it (see [`Fixture`]).

mod net_support;
mod seccomp_support;
mod support;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::Shutdown;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future::poll_once;
use net_support::{Fixture, connected_pair, fixture_within, listen, variant_name};
use ringloop::buf::{BufRing, RingBuf};
use ringloop::net::{RecvStream, TcpStream};
use ringloop::{Backend, time};
use support::{assert_bytes_eq, yield_turns, yield_until_deadline};

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// The fd-counting lock, a [`TEST_LIMIT`] watchdog naming `what`, and a runtime on `backend`.
fn fixture(backend: Backend, what: &str) -> Fixture {
    fixture_within(backend, what, TEST_LIMIT)
}
/// How long a chunk that must arrive may take before the test fails (instead of hanging until
/// the watchdog takes the whole test binary down).
const READ_LIMIT: Duration = Duration::from_secs(10);

/// `len` bytes of stream `seed`, a pattern that does not repeat every power of two: byte `i` is
/// `(i + 97 * seed) * 31 % 251`, so streams with different seeds differ too.
fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i + 97 * seed) * 31 % 251) as u8)
        .collect()
}

/// A ring of `max` buffers of `buf_size` bytes, `initial` of them allocated at once.
fn ring(buf_size: usize, initial: u16, max: u16, kernel: bool) -> BufRing {
    BufRing::builder()
        .buf_size(buf_size)
        .initial(initial)
        .max(max)
        .kernel(kernel)
        .build()
        .expect("BufRing::build")
}

/// Asserts the ring is registered with the kernel exactly when asked for on io_uring.
fn assert_ring_mode(ring: &BufRing, backend: Backend, kernel: bool) {
    let want = kernel && backend == Backend::IoUring;
    assert_eq!(
        ring.is_kernel(),
        want,
        "kernel({kernel}) on {backend:?}: is_kernel() (a kernel ring needs Linux 5.19+)"
    );
}

/// Every chunk until `None`, each of at most `buf_size` bytes; fails the test on an error or
/// when no chunk comes within [`READ_LIMIT`].
async fn receive_all(recv: &mut RecvStream<'_>, buf_size: usize, what: &str) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        match time::timeout(READ_LIMIT, recv.next()).await {
            Ok(Some(Ok(buf))) => {
                assert!(
                    !buf.is_empty() && buf.len() <= buf_size,
                    "{what}: a chunk of {} bytes from {buf_size}-byte buffers",
                    buf.len()
                );
                all.extend_from_slice(&buf);
            }
            Ok(Some(Err(err))) => panic!("{what}: error after {} bytes: {err}", all.len()),
            Ok(None) => return all,
            Err(_) => panic!(
                "{what}: no chunk within {READ_LIMIT:?} after {} bytes",
                all.len()
            ),
        }
    }
}

/// Spawns a client task writing `data` to `client` then shutting down its write side.
fn spawn_writer(client: TcpStream, data: Vec<u8>) -> ringloop::JoinHandle<TcpStream> {
    ringloop::spawn(async move {
        let (written, _) = client.write_all(data).await;
        written.expect("client write_all");
        client
            .shutdown(Shutdown::Write)
            .expect("client shutdown(Write)");
        client
    })
}

/// Bytes waiting in `stream`'s receive queue, seen with a non-blocking `MSG_PEEK`.
fn bytes_waiting(stream: &TcpStream) -> usize {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    match socket2::SockRef::from(stream).peek(&mut buf) {
        Ok(n) => n,
        Err(err) if err.kind() == ErrorKind::WouldBlock => 0,
        Err(err) => panic!("peek: {err}"),
    }
}

/// 4 MiB written at once reach a multishot receive exactly, in chunks no larger than a buffer,
/// and every buffer is back once the chunks are dropped.
fn large_stream_arrives_exactly(backend: Backend, kernel: bool) {
    const TOTAL: usize = 4 << 20;
    // Not a power of two, so chunk boundaries fall everywhere in the pattern.
    const BUF_SIZE: usize = 4000;
    let fx = fixture(backend, &format!("large_stream kernel({kernel})"));
    fx.rt.block_on(async {
        let ring = ring(BUF_SIZE, 4, 64, kernel);
        assert_ring_mode(&ring, backend, kernel);
        let (client, server) = connected_pair().await;
        let writer = spawn_writer(client, pattern(0, TOTAL));
        let mut recv = server.recv_multishot(&ring);
        let received = receive_all(&mut recv, BUF_SIZE, "4 MiB stream").await;
        assert_bytes_eq("4 MiB through a buffer ring", &received, &pattern(0, TOTAL));
        assert!(!recv.is_receiving(), "the stream ended at EOF");
        writer.await.expect("writer task");
        assert_eq!(
            ring.in_use(),
            0,
            "buffers lent after every chunk was dropped"
        );
        assert!(ring.buffers() <= ring.max_buffers(), "{ring:?}");
    });
}

/// 32 connections sending 128 KiB each at once, all received through one ring of at most four
/// 1 KiB buffers: each connection's bytes arrive exactly, and the ring never holds more than
/// its four buffers.
fn many_connections_share_a_tiny_ring(backend: Backend, kernel: bool) {
    const CONNS: usize = 32;
    const PER_CONN: usize = 128 * 1024;
    const BUF_SIZE: usize = 1024;
    let fx = fixture(
        backend,
        &format!("many_connections_share_a_tiny_ring kernel({kernel})"),
    );
    fx.rt.block_on(async {
        let ring = ring(BUF_SIZE, 1, 4, kernel);
        assert_eq!(ring.max_buffers(), 4, "max(4) is a power of two already");
        let (listener, addr) = listen();
        let clients: Vec<_> = (0..CONNS)
            .map(|c| {
                ringloop::spawn(async move {
                    let client = TcpStream::connect(addr).await.expect("connect");
                    let local = client.local_addr().expect("client local_addr");
                    let (written, _) = client.write_all(pattern(c, PER_CONN)).await;
                    written.unwrap_or_else(|e| panic!("client {c}: write_all: {e}"));
                    client.shutdown(Shutdown::Write).expect("shutdown(Write)");
                    (local, c, client)
                })
            })
            .collect();

        let peak_buffers = Rc::new(Cell::new(0));
        let mut handlers = Vec::with_capacity(CONNS);
        for _ in 0..CONNS {
            let (stream, peer) = listener.accept().await.expect("accept");
            let ring = ring.clone();
            let peak_buffers = Rc::clone(&peak_buffers);
            handlers.push(ringloop::spawn(async move {
                let mut recv = stream.recv_multishot(&ring);
                let mut all = Vec::with_capacity(PER_CONN);
                // Stretched on slow (emulated) machines: 32 connections take turns on 4 buffers.
                while let Some(chunk) = time::timeout(support::scaled(READ_LIMIT), recv.next())
                    .await
                    .unwrap_or_else(|_| panic!("{peer}: stalled after {} bytes", all.len()))
                {
                    all.extend_from_slice(&chunk.expect("receive"));
                    peak_buffers.set(peak_buffers.get().max(ring.buffers()));
                }
                (peer, all)
            }));
        }
        let mut sent_by = std::collections::HashMap::new();
        for client in clients {
            let (local, c, client) = client.await.expect("client task");
            sent_by.insert(local, (c, client));
        }
        for handler in handlers {
            let (peer, received) = handler.await.expect("handler task");
            let (c, _) = sent_by
                .get(&peer)
                .expect("an accepted peer is one of the clients");
            assert_bytes_eq(
                &format!("connection {c}"),
                &received,
                &pattern(*c, PER_CONN),
            );
        }
        assert!(
            peak_buffers.get() <= ring.max_buffers(),
            "the ring grew to {} buffers, beyond its max {}",
            peak_buffers.get(),
            ring.max_buffers()
        );
        assert_eq!(
            ring.in_use(),
            0,
            "buffers lent after every chunk was dropped"
        );
    });
}

/// With both buffers of a 2-buffer ring held by the user, the receive gets nothing more (the
/// ring does not grow, the held bytes are not overwritten, the rest waits in the socket); once
/// they are dropped the blocked receive wakes and everything arrives exactly.
fn holding_every_buffer_blocks_without_loss(backend: Backend, kernel: bool) {
    const TOTAL: usize = 64 * 1024;
    const BUF_SIZE: usize = 1024;
    let fx = fixture(backend, &format!("holding_every_buffer kernel({kernel})"));
    fx.rt.block_on(async {
        let ring = ring(BUF_SIZE, 2, 2, kernel);
        let (client, server) = connected_pair().await;
        let server = Rc::new(server);
        let writer = spawn_writer(client, pattern(3, TOTAL));

        // The reader hands every chunk over without dropping it.
        let held: Rc<RefCell<VecDeque<RingBuf>>> = Rc::default();
        let reader = {
            let (server, ring, held) = (Rc::clone(&server), ring.clone(), Rc::clone(&held));
            ringloop::spawn(async move {
                let mut recv = server.recv_multishot(&ring);
                while let Some(chunk) = recv.next().await {
                    held.borrow_mut().push_back(chunk.expect("receive"));
                }
            })
        };
        yield_until_deadline("both buffers are lent", || held.borrow().len() == 2).await;
        yield_until_deadline("the rest of the bytes wait in the socket", || {
            bytes_waiting(&server) > 0
        })
        .await;
        yield_turns(200).await;
        assert_eq!(
            held.borrow().len(),
            2,
            "chunks received with every buffer held"
        );
        assert!(
            !reader.is_finished(),
            "the reader ended with every buffer held"
        );
        assert_eq!(
            (ring.in_use(), ring.buffers()),
            (2, 2),
            "in use, allocated: {ring:?}"
        );
        let held_bytes: Vec<u8> = held
            .borrow()
            .iter()
            .flat_map(|b| b.iter().copied())
            .collect();
        assert_bytes_eq("held chunks", &held_bytes, &pattern(3, held_bytes.len()));
        let mut received = Vec::with_capacity(TOTAL);

        // Dropping them wakes the reader, which is parked waiting for a buffer.
        loop {
            yield_until_deadline("a chunk or the end of the stream", || {
                !held.borrow().is_empty() || reader.is_finished()
            })
            .await;
            let chunks: Vec<RingBuf> = held.borrow_mut().drain(..).collect();
            if chunks.is_empty() {
                break;
            }
            for chunk in chunks {
                received.extend_from_slice(&chunk);
            }
        }
        assert_bytes_eq("all bytes after the release", &received, &pattern(3, TOTAL));
        reader.await.expect("reader task");
        writer.await.expect("writer task");
        assert_eq!(ring.in_use(), 0, "buffers lent at the end");
    });
}

/// `stop`, drain until `None`, `resume`, over and over (sometimes stopping before a single
/// chunk) while the peer writes 2 MiB in 8 KiB writes: every byte arrives once, in order;
/// `is_receiving` follows `stop` and `resume`.
fn stop_drain_resume_loses_nothing(backend: Backend, kernel: bool) {
    const TOTAL: usize = 2 << 20;
    const WRITE: usize = 8 * 1024;
    const BUF_SIZE: usize = 4096;
    const MIN_STOPS: usize = 100;
    let fx = fixture(backend, &format!("stop_drain_resume kernel({kernel})"));
    fx.rt.block_on(async {
        let ring = ring(BUF_SIZE, 4, 16, kernel);
        let (client, server) = connected_pair().await;
        let writer = ringloop::spawn(async move {
            let data = pattern(5, TOTAL);
            for piece in data.chunks(WRITE) {
                let (written, _) = client.write_all(piece.to_vec()).await;
                written.expect("client write_all");
            }
            client.shutdown(Shutdown::Write).expect("shutdown(Write)");
            client
        });

        let mut recv = server.recv_multishot(&ring);
        let mut received = Vec::with_capacity(TOTAL);
        let mut stops = 0;
        'rounds: for round in 0.. {
            if !recv.is_receiving() {
                // `resume` has no effect after EOF, which a drain may have reached.
                assert!(
                    recv.next().await.is_none(),
                    "round {round}: not receiving, not ended"
                );
                break;
            }
            for _ in 0..round % 4 {
                match time::timeout(READ_LIMIT, recv.next()).await {
                    Ok(Some(chunk)) => received.extend_from_slice(&chunk.expect("receive")),
                    Ok(None) => break 'rounds,
                    Err(_) => panic!("round {round}: no chunk after {} bytes", received.len()),
                }
            }
            recv.stop();
            stops += 1;
            assert!(!recv.is_receiving(), "round {round}: receiving after stop");
            // Bounded: each chunk holds at least one byte of the finite stream.
            for _ in 0..=TOTAL {
                match time::timeout(READ_LIMIT, recv.next()).await {
                    Ok(Some(chunk)) => received.extend_from_slice(&chunk.expect("drain")),
                    Ok(None) => break,
                    Err(_) => panic!("round {round}: the stop did not drain"),
                }
            }
            recv.resume();
        }
        assert_bytes_eq("bytes across stops", &received, &pattern(5, TOTAL));
        assert!(
            stops >= MIN_STOPS,
            "only {stops} stops: the test did not exercise stop"
        );
        assert!(recv.next().await.is_none(), "after EOF, next() stays None");
        writer.await.expect("writer task");
        drop(recv);
        assert_eq!(ring.in_use(), 0, "buffers lent at the end");
    });
}

/// A receive that finds no free buffer while another stream's completions (not yet taken by its
/// task) hold them all waits for a buffer instead of re-arming at once: over a 100 ms window in
/// which nothing returns a buffer, the loop submits almost nothing. When the other stream takes
/// and drops its chunks, the waiting receive gets its bytes exactly.
fn receive_waiting_for_a_buffer_does_not_spin_with(backend: Backend) {
    const WINDOW: Duration = Duration::from_millis(100);
    /// Ops a waiting loop may submit in the window (wake-ups, the timer); a receive re-armed
    /// on every turn submits thousands.
    const MAX_OPS_IN_WINDOW: u64 = 20;
    let fx = fixture(backend, "receive_waiting_for_a_buffer_does_not_spin");
    let rt = &fx.rt;
    rt.block_on(async {
        let ring = ring(1024, 2, 2, true);
        let (client_b, server_b) = connected_pair().await;
        let (client_a, server_a) = connected_pair().await;
        let server_b = Rc::new(server_b);

        // B arms its receive, then leaves its completions untaken until the gate opens.
        let gate = ringloop::Handle::current().create_future::<()>();
        let b = {
            let (server_b, ring, gate) = (Rc::clone(&server_b), ring.clone(), gate.clone());
            ringloop::spawn(async move {
                let mut recv = server_b.recv_multishot(&ring);
                assert!(
                    poll_once(recv.next()).await.is_none(),
                    "B: a chunk before any data"
                );
                gate.await.expect("gate");
                let mut got = Vec::new();
                while got.len() < 2048 {
                    let chunk = recv.next().await.expect("B: a chunk").expect("B: receive");
                    got.extend_from_slice(&chunk);
                }
                got
            })
        };
        yield_turns(10).await;
        let (written, _) = client_b.write_all(pattern(11, 2048)).await;
        written.expect("client B write_all");
        // Both buffers hold B's bytes: 2 KiB whole, or the first few pieces when the kernel
        // receives them in smaller ones (the rest then waits in B's socket).
        yield_until_deadline("B's bytes fill both buffers", || ring.in_use() == 2).await;

        let a = {
            let ring = ring.clone();
            ringloop::spawn(async move {
                let mut recv = server_a.recv_multishot(&ring);
                let mut got = Vec::new();
                while got.len() < 512 {
                    let chunk = recv.next().await.expect("A: a chunk").expect("A: receive");
                    got.extend_from_slice(&chunk);
                }
                got
            })
        };
        let (written, _) = client_a.write_all(pattern(12, 512)).await;
        written.expect("client A write_all");
        yield_turns(10).await;

        let before = rt.stats();
        // A measuring window, not synchronisation: no event marks the absence of a busy loop.
        time::sleep(WINDOW).await;
        let submitted = rt.stats().ops_submitted - before.ops_submitted;
        assert!(
            !a.is_finished(),
            "A received with every buffer in B's completions"
        );
        assert!(
            submitted <= MAX_OPS_IN_WINDOW,
            "{submitted} ops submitted in {WINDOW:?} while A waited for a buffer: {ring:?}"
        );

        gate.set_result(()).expect("open the gate");
        let got_b = time::timeout(READ_LIMIT, b)
            .await
            .expect("B finished")
            .expect("B task");
        assert_bytes_eq("B's bytes", &got_b, &pattern(11, 2048));
        let got_a = time::timeout(READ_LIMIT, a)
            .await
            .expect("A finished")
            .expect("A task");
        assert_bytes_eq("A's bytes", &got_a, &pattern(12, 512));
        drop((client_a, client_b));
    });
}

/// An echo server that writes every received [`RingBuf`] straight back (`write_all(buf)`)
/// returns 256 KiB exactly, and the buffers all return to the ring.
fn ring_buf_echoes_as_is(backend: Backend, kernel: bool) {
    const TOTAL: usize = 256 * 1024;
    let fx = fixture(backend, &format!("ring_buf_echoes_as_is kernel({kernel})"));
    fx.rt.block_on(async {
        let ring = ring(2048, 4, 32, kernel);
        let (client, server) = connected_pair().await;
        let echo = {
            let ring = ring.clone();
            ringloop::spawn(async move {
                let mut recv = server.recv_multishot(&ring);
                let mut echoed = 0;
                while let Some(chunk) = recv.next().await {
                    let chunk = chunk.expect("receive");
                    let len = chunk.len();
                    let (written, back) = server.write_all(chunk).await;
                    written.expect("echo write_all of a RingBuf");
                    assert_eq!(back.len(), len, "write_all gives the RingBuf back whole");
                    echoed += len;
                }
                echoed
            })
        };
        let client = Rc::new(client);
        let writer = {
            let client = Rc::clone(&client);
            ringloop::spawn(async move {
                let (written, _) = client.write_all(pattern(7, TOTAL)).await;
                written.expect("client write_all");
                client.shutdown(Shutdown::Write).expect("shutdown(Write)");
            })
        };
        let read = time::timeout(READ_LIMIT, client.read_exact(Vec::with_capacity(TOTAL))).await;
        let (result, back) = read.expect("the echo did not come back in time");
        result.expect("client read_exact");
        assert_bytes_eq("echoed through RingBufs", &back, &pattern(7, TOTAL));
        writer.await.expect("writer task");
        assert_eq!(echo.await.expect("echo task"), TOTAL, "bytes echoed");
        assert_eq!(ring.in_use(), 0, "buffers lent after the echo");
    });
}

both_backends! {
    /// A 4 MiB stream through a kernel-registered ring (io_uring) or the user-space pool
    /// (epoll) arrives exactly; see [`large_stream_arrives_exactly`].
    fn large_stream_kernel_ring(backend: Backend) {
        large_stream_arrives_exactly(backend, true);
    }

    /// A 4 MiB stream through a user-space ring — on io_uring the single-shot pool fallback —
    /// arrives exactly; see [`large_stream_arrives_exactly`].
    fn large_stream_user_pool(backend: Backend) {
        large_stream_arrives_exactly(backend, false);
    }

    /// 32 busy connections through four kernel-ring buffers lose nothing; see
    /// [`many_connections_share_a_tiny_ring`].
    fn tiny_kernel_ring_many_connections(backend: Backend) {
        many_connections_share_a_tiny_ring(backend, true);
    }

    /// 32 busy connections through four user-space pool buffers lose nothing; see
    /// [`many_connections_share_a_tiny_ring`].
    fn tiny_user_pool_many_connections(backend: Backend) {
        many_connections_share_a_tiny_ring(backend, false);
    }

    /// Holding both buffers of a kernel ring blocks receiving without loss; see
    /// [`holding_every_buffer_blocks_without_loss`].
    fn held_kernel_ring_buffers_block_without_loss(backend: Backend) {
        holding_every_buffer_blocks_without_loss(backend, true);
    }

    /// Holding both buffers of a user-space pool blocks receiving without loss; see
    /// [`holding_every_buffer_blocks_without_loss`].
    fn held_user_pool_buffers_block_without_loss(backend: Backend) {
        holding_every_buffer_blocks_without_loss(backend, false);
    }

    /// Repeated stop/drain/resume of a multishot receive loses and duplicates nothing; see
    /// [`stop_drain_resume_loses_nothing`].
    fn stop_resume_kernel_ring(backend: Backend) {
        stop_drain_resume_loses_nothing(backend, true);
    }

    /// Repeated stop/drain/resume with a user-space ring (on io_uring: cancelling single-shot
    /// receives) loses and duplicates nothing; see [`stop_drain_resume_loses_nothing`].
    fn stop_resume_user_pool(backend: Backend) {
        stop_drain_resume_loses_nothing(backend, false);
    }

    /// Received kernel-ring buffers written back as they are echo exactly; see
    /// [`ring_buf_echoes_as_is`].
    fn echo_kernel_ring_buf(backend: Backend) {
        ring_buf_echoes_as_is(backend, true);
    }

    /// Received user-space pool buffers written back as they are echo exactly; see
    /// [`ring_buf_echoes_as_is`].
    fn echo_user_pool_buf(backend: Backend) {
        ring_buf_echoes_as_is(backend, false);
    }

    /// A receive waiting for a buffer held in another stream's untaken completions does not
    /// busy-loop; see [`receive_waiting_for_a_buffer_does_not_spin_with`]. (Kernel ring on
    /// io_uring, user-space pool on epoll. The single-shot fallback never has untaken
    /// completions: it receives one buffer at a time.)
    fn receive_waiting_for_a_buffer_does_not_spin(backend: Backend) {
        receive_waiting_for_a_buffer_does_not_spin_with(backend);
    }

    /// As `receive_waiting_for_a_buffer_does_not_spin` where the kernel cannot report a
    /// buffer ring's head (before Linux 6.8; `IORING_REGISTER_PBUF_STATUS` denied by seccomp
    /// in a child): buffers in untaken completions must not pass for buffers in the ring, or
    /// the receive re-arms into `ENOBUFS` on every turn.
    fn receive_waiting_for_a_buffer_does_not_spin_without_pbuf_status(backend: Backend) {
        const ROLE: &str = "no-pbuf-status";
        let Some(role) = support::child_role() else {
            let _serial = support::serial();
            let name = format!(
                "receive_waiting_for_a_buffer_does_not_spin_without_pbuf_status::{}",
                variant_name(backend)
            );
            let output = support::run_child(&name, &[(support::CHILD_ENV, ROLE)]);
            support::assert_child_passed(&name, &output);
            return;
        };
        assert_eq!(role, ROLE, "unexpected child role");
        if seccomp_support::deny_pbuf_status() {
            receive_waiting_for_a_buffer_does_not_spin_with(backend);
        }
    }
}
