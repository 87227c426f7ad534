//! Where a [`BufRing`]'s buffers go when nothing is received, when a stream ends, and when it is
//! dropped: idle receives hold no buffer, EOF and a reset are reported once (then `None`),
//! `in_use` counts untaken completions, a dropped `RecvStream` gives back the buffers its queued
//! completions held, a ring dropped while a receive is in flight neither crashes the loop nor
//! leaks an fd, and rings and `RingBuf`s that outlive their runtime are harmless (dropped later,
//! or used on a later runtime on the same thread).
//!
//! Every test opens sockets and some count fds, so every test holds `support::serial()` and
//! builds its runtime only after taking it.

mod net_support;
mod seccomp_support;
mod support;

use std::cell::RefCell;
use std::io::{self, ErrorKind};
use std::net::Shutdown;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future::poll_once;
use net_support::{Fixture, connected_pair, fixture_within, listen, variant_name};
use ringloop::buf::{BufRing, RingBuf};
use ringloop::net::TcpStream;
use ringloop::{Backend, time};
use support::{
    assert_bytes_eq, describe_open_fds, open_fds, settle_inflight, yield_turns,
    yield_until_deadline,
};

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// The fd-counting lock, a [`TEST_LIMIT`] watchdog naming `what`, and a runtime on `backend`.
fn fixture(backend: Backend, what: &str) -> Fixture {
    fixture_within(backend, what, TEST_LIMIT)
}
/// How long a result that must arrive may take before the test fails.
const READ_LIMIT: Duration = Duration::from_secs(10);
/// The child role of the tests that run in a child process.
const CHILD_ROLE: &str = "late-use";
/// The child role of the tests that run where the kernel cannot report a ring's head.
const NO_PBUF_STATUS_ROLE: &str = "no-pbuf-status";

/// `len` bytes of a pattern that does not repeat every power of two.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// A ring of `max` buffers of `buf_size` bytes, `initial` of them allocated at once.
fn ring(buf_size: usize, initial: u16, max: u16) -> BufRing {
    BufRing::builder()
        .buf_size(buf_size)
        .initial(initial)
        .max(max)
        .build()
        .expect("BufRing::build")
}

/// Bytes waiting in `stream`'s receive queue, seen with a non-blocking `MSG_PEEK`.
fn bytes_waiting(stream: &TcpStream) -> usize {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 64 * 1024];
    match socket2::SockRef::from(stream).peek(&mut buf) {
        Ok(n) => n,
        Err(err) if err.kind() == ErrorKind::WouldBlock => 0,
        Err(err) => panic!("peek: {err}"),
    }
}

/// Asserts that `err` is what reading from a reset peer gives.
fn assert_reset(what: &str, err: &io::Error) {
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        ),
        "{what}: want ConnectionReset, got {:?}: {err}",
        err.kind()
    );
}

/// Receives on `stream` until `count` chunks are held at once, and returns them; fails the test
/// if they do not all arrive within [`READ_LIMIT`] (for instance because buffers were lost).
async fn hold_chunks(stream: &TcpStream, ring: &BufRing, count: usize) -> Vec<RingBuf> {
    let mut recv = stream.recv_multishot(ring);
    let mut held = Vec::with_capacity(count);
    while held.len() < count {
        match time::timeout(READ_LIMIT, recv.next()).await {
            Ok(Some(Ok(buf))) => held.push(buf),
            Ok(other) => panic!("chunk {}: {other:?}", held.len()),
            Err(_) => panic!(
                "only {} of {count} chunks could be held at once: {ring:?}, in use {}",
                held.len(),
                ring.in_use()
            ),
        }
    }
    recv.stop();
    held
}

both_backends! {
    /// 200 connections, each with a receive pending on one shared ring of 8 buffers: once the
    /// loop has settled no buffer is lent and the ring has not grown (an idle receive holds
    /// none); then 100 bytes on one connection take exactly one buffer per chunk they arrive in
    /// (one when they arrive whole), until those `RingBuf`s are dropped.
    fn idle_receives_hold_no_buffer(backend: Backend) {
        const CONNS: usize = 200;
        const INITIAL: u16 = 8;
        let fx = fixture(backend, "idle_receives_hold_no_buffer");
        fx.rt.block_on(async {
            settle_inflight(0).await;
            let ring = ring(2048, INITIAL, 1024);
            let (listener, addr) = listen();
            // What each reader received, chunk by chunk, held.
            let firsts: Rc<RefCell<Vec<Vec<RingBuf>>>> =
                Rc::new(RefCell::new((0..CONNS).map(|_| Vec::new()).collect()));
            let mut clients = Vec::with_capacity(CONNS);
            let mut readers = Vec::with_capacity(CONNS);
            for i in 0..CONNS {
                clients.push(TcpStream::connect(addr).await.expect("connect"));
                let (server, _) = listener.accept().await.expect("accept");
                let (ring, firsts) = (ring.clone(), Rc::clone(&firsts));
                readers.push(ringloop::spawn(async move {
                    let mut recv = server.recv_multishot(&ring);
                    let mut received = 0;
                    while received < 100 {
                        let Some(Ok(buf)) = recv.next().await else {
                            break;
                        };
                        received += buf.len();
                        firsts.borrow_mut()[i].push(buf);
                    }
                }));
            }
            drop(listener);
            settle_inflight(CONNS).await;
            // Turns enough for io_uring to submit the receives and the kernel to arm them.
            yield_turns(100).await;
            assert_eq!(ring.in_use(), 0, "buffers lent to idle receives: {ring:?}");
            assert_eq!(ring.buffers(), usize::from(INITIAL), "the ring grew for idle receives");

            let target = CONNS / 2;
            let (written, _) = clients[target].write_all(pattern(100)).await;
            written.expect("client write_all");
            yield_until_deadline("the 100 bytes reach their reader", || {
                firsts.borrow()[target].iter().map(|c| c.len()).sum::<usize>() >= 100
            })
            .await;
            let chunks = std::mem::take(&mut firsts.borrow_mut()[target]);
            let bytes: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_bytes_eq("the chunks", &bytes, &pattern(100));
            assert_eq!(ring.in_use(), chunks.len(), "buffers lent for the held chunks");
            assert!(firsts.borrow().iter().all(Vec::is_empty), "other readers got data");
            drop(chunks);
            assert_eq!(ring.in_use(), 0, "buffers lent after the chunks were dropped");
            assert_eq!(ring.buffers(), usize::from(INITIAL), "the ring grew for one chunk");

            // Closing the clients ends the other readers at EOF.
            drop(clients);
            for reader in readers {
                time::timeout(READ_LIMIT, reader)
                    .await
                    .expect("a reader did not see EOF")
                    .expect("reader task");
            }
            settle_inflight(0).await;
            assert_eq!(ring.in_use(), 0, "buffers lent at the end");
        });
    }

    /// After the peer shuts down writing, `next()` yields the bytes sent, then `None`, and
    /// `None` again on later calls (EOF is reported once, never as an error); `is_receiving`
    /// is false afterwards and `resume` does not revive the stream.
    fn eof_is_reported_once(backend: Backend) {
        let fx = fixture(backend, "eof_is_reported_once");
        fx.rt.block_on(async {
            let ring = ring(1024, 4, 16);
            let (client, server) = connected_pair().await;
            let data = pattern(10_000);
            let (written, _) = client.write_all(data.clone()).await;
            written.expect("client write_all");
            client.shutdown(Shutdown::Write).expect("shutdown(Write)");

            let mut recv = server.recv_multishot(&ring);
            let mut received = Vec::new();
            loop {
                match time::timeout(READ_LIMIT, recv.next()).await {
                    Ok(Some(Ok(buf))) => received.extend_from_slice(&buf),
                    Ok(Some(Err(err))) => panic!("an error instead of EOF: {err}"),
                    Ok(None) => break,
                    Err(_) => panic!("no EOF after {} bytes", received.len()),
                }
            }
            assert_bytes_eq("bytes before EOF", &received, &data);
            for call in 0..3 {
                let again = time::timeout(READ_LIMIT, recv.next()).await;
                assert!(
                    matches!(again, Ok(None)),
                    "call {call} after EOF: want None, got {:?}",
                    again.map(|r| r.map(|c| c.map(|b| b.len())))
                );
            }
            assert!(!recv.is_receiving(), "receiving after EOF");
            recv.resume();
            assert!(recv.next().await.is_none(), "resume revived a stream at EOF");
            assert_eq!(ring.in_use(), 0, "buffers lent after EOF");
        });
    }

    /// A receive pending on an idle connection when the peer resets it (linger 0, then close)
    /// yields `ConnectionReset`, then `None` on every later call — never a panic or a hang.
    fn reset_is_an_error_then_none(backend: Backend) {
        let fx = fixture(backend, "reset_is_an_error_then_none");
        fx.rt.block_on(async {
            settle_inflight(0).await;
            let ring = ring(1024, 4, 16);
            let (client, server) = connected_pair().await;
            let reader = {
                let ring = ring.clone();
                ringloop::spawn(async move {
                    let mut recv = server.recv_multishot(&ring);
                    let first = recv.next().await.map(|r| r.map(|b| b.len()));
                    let mut later = Vec::new();
                    for _ in 0..3 {
                        later.push(recv.next().await.map(|r| r.map(|b| b.len())));
                    }
                    (first, later, recv.is_receiving())
                })
            };
            settle_inflight(1).await;
            yield_turns(20).await;
            assert!(!reader.is_finished(), "a receive on an idle connection finished");

            client.set_linger(Some(Duration::ZERO)).expect("set_linger(0)");
            drop(client);
            let (first, later, receiving) = time::timeout(READ_LIMIT, reader)
                .await
                .expect("the pending receive did not end after the reset")
                .expect("reader task");
            match first {
                Some(Err(err)) => assert_reset("receive pending during the reset", &err),
                other => panic!("want a ConnectionReset error, got {other:?}"),
            }
            for (call, item) in later.iter().enumerate() {
                assert!(item.is_none(), "call {call} after the reset: {item:?}");
            }
            assert!(!receiving, "receiving after the reset");
            settle_inflight(0).await;
            assert_eq!(ring.in_use(), 0, "buffers lent after the reset");
        });
    }

    /// `in_use()` counts, as documented, the buffers waiting in completions the stream has not
    /// taken yet; see [`in_use_counts_untaken_completions_with`].
    fn in_use_counts_untaken_completions(backend: Backend) {
        in_use_counts_untaken_completions_with(backend);
    }

    /// As `in_use_counts_untaken_completions` where the kernel cannot report a buffer ring's
    /// head (before Linux 6.8; `IORING_REGISTER_PBUF_STATUS` denied by seccomp in a child):
    /// the driver counts the head from completions, so untaken ones still count as in use.
    fn in_use_counts_untaken_completions_without_pbuf_status(backend: Backend) {
        let Some(role) = support::child_role() else {
            run_as_child_in_role(
                "in_use_counts_untaken_completions_without_pbuf_status",
                backend,
                NO_PBUF_STATUS_ROLE,
            );
            return;
        };
        assert_eq!(role, NO_PBUF_STATUS_ROLE, "unexpected child role");
        if seccomp_support::deny_pbuf_status() {
            in_use_counts_untaken_completions_with(backend);
        }
    }

    /// A `RecvStream` dropped while its completions (6 KiB in 1 KiB buffers, or all 8 buffers
    /// when the kernel receives the bytes in smaller pieces) are queued and untaken gives
    /// those buffers back: once the op table settles none is lent, and all 8
    /// buffers of the ring (which cannot grow) can be filled and held at once again.
    fn dropped_stream_returns_queued_buffers(backend: Backend) {
        const BUFS: u16 = 8;
        let fx = fixture(backend, "dropped_stream_returns_queued_buffers");
        fx.rt.block_on(async {
            settle_inflight(0).await;
            let ring = ring(1024, BUFS, BUFS);
            let (client, server) = connected_pair().await;
            let mut recv = server.recv_multishot(&ring);
            assert!(poll_once(recv.next()).await.is_none(), "a chunk before any data");

            let (written, _) = client.write_all(pattern(6 * 1024)).await;
            written.expect("client write_all");
            // All the bytes have left the socket, or they have filled every buffer: they are in
            // buffers, in completions nobody has taken.
            yield_until_deadline("the receive consumed the bytes or filled the ring", || {
                bytes_waiting(&server) == 0 || ring.in_use() == usize::from(BUFS)
            })
            .await;
            yield_turns(10).await;
            drop(recv);
            settle_inflight(0).await;
            assert_eq!(ring.in_use(), 0, "buffers lent after the stream was dropped: {ring:?}");
            assert_eq!(ring.buffers(), usize::from(BUFS), "{ring:?}");

            // Every buffer is usable again: hold all of them at once.
            let (written, _) = client.write_all(pattern(usize::from(BUFS) * 1024)).await;
            written.expect("client write_all");
            let held = hold_chunks(&server, &ring, usize::from(BUFS)).await;
            assert_eq!(ring.in_use(), usize::from(BUFS), "{ring:?}");
            drop(held);
            settle_inflight(0).await;
            assert_eq!(ring.in_use(), 0, "buffers lent at the end: {ring:?}");
        });
    }

    /// The user's `BufRing` dropped while a receive using it is in flight: the receive still
    /// delivers; then the receive is dropped with the ring's last handle while data arrives, the
    /// loop runs on, and a new ring works. A second runtime's ring dropped with its receive in
    /// flight at shutdown leaves nothing behind: the runtime shuts down cleanly, the fd count
    /// returns to what it was before either runtime, and a third runtime on the same thread
    /// receives through a new ring.
    fn dropped_ring_with_receive_in_flight(backend: Backend) {
        let _serial = support::serial();
        let _watchdog = support::watchdog(
            TEST_LIMIT,
            &format!("dropped_ring_with_receive_in_flight on {backend:?}"),
        );
        let before = open_fds();

        let rt = support::runtime(backend);
        rt.block_on(async {
            let ring = ring(1024, 2, 4);
            let (client, server) = connected_pair().await;
            let server = Rc::new(server);
            let reader = {
                let (server, ring) = (Rc::clone(&server), ring.clone());
                ringloop::spawn(async move {
                    let mut recv = server.recv_multishot(&ring);
                    // "first", in as many chunks as the kernel receives it in.
                    let mut first = Vec::new();
                    while first.len() < 5 {
                        let chunk = recv.next().await.expect("a chunk").expect("receive");
                        first.extend_from_slice(&chunk);
                    }
                    // Dropped with its receive in flight, and the ring's last handle.
                    drop(ring);
                    first
                })
            };
            drop(ring);
            settle_inflight(1).await;
            yield_turns(10).await;
            let (written, _) = client.write_all(b"first".as_slice()).await;
            written.expect("client write_all");
            let first = time::timeout(READ_LIMIT, reader)
                .await
                .expect("the receive of a dropped ring did not deliver")
                .expect("reader task");
            assert_eq!(first, b"first", "bytes through the dropped ring");
            let (written, _) = client.write_all(pattern(4096)).await;
            written.expect("client write_all");
            settle_inflight(0).await;
            yield_turns(10).await;

            assert_new_ring_receives().await;
        });
        drop(rt);

        let rt = support::runtime(backend);
        let client = rt.block_on(async {
            let ring = ring(1024, 2, 4);
            let (listener, addr) = listen();
            let client = std::net::TcpStream::connect(addr).expect("std connect");
            let (server, _) = listener.accept().await.expect("accept");
            let reader = ringloop::spawn(async move {
                let mut recv = server.recv_multishot(&ring);
                drop(ring);
                while let Some(chunk) = recv.next().await {
                    drop(chunk);
                }
            });
            settle_inflight(1).await;
            yield_turns(10).await;
            assert!(!reader.is_finished(), "a receive on an idle connection finished");
            // The runtime shuts down with the receive in flight, its task holding the ring's
            // last handle.
            client
        });
        drop(rt);
        drop(client);

        let rt = support::runtime(backend);
        rt.block_on(assert_new_ring_receives());
        drop(rt);

        let after = open_fds();
        assert_eq!(
            after,
            before,
            "fds open before the runtimes: {before}, after: {after}:\n{}",
            describe_open_fds().join("\n")
        );
    }

    /// A `BufRing` that outlives its runtime does not disturb later runtimes on the same
    /// thread, whether it is dropped between runtimes or inside the next one (after that
    /// runtime registered a ring of its own): a ring created there receives 10 000 bytes
    /// exactly.
    fn ring_outliving_its_runtime_leaves_the_next_alone(backend: Backend) {
        let _serial = support::serial();
        let _watchdog = support::watchdog(
            TEST_LIMIT,
            &format!("ring_outliving_its_runtime_leaves_the_next_alone on {backend:?}"),
        );
        let make_ring = || {
            let rt = support::runtime(backend);
            let kept = rt.block_on(async {
                let kept = ring(1024, 2, 4);
                assert_new_ring_receives().await;
                kept
            });
            drop(rt);
            kept
        };

        let kept = make_ring();
        drop(kept);
        let rt = support::runtime(backend);
        rt.block_on(assert_new_ring_receives());
        drop(rt);

        let kept = make_ring();
        let rt = support::runtime(backend);
        rt.block_on(async {
            let ring = ring(1024, 2, 16);
            drop(kept);
            assert_receives_through(&ring).await;
        });
    }

    /// A `RingBuf` taken out of its runtime and dropped after the runtime is gone neither
    /// crashes nor corrupts memory: its bytes are still readable and the drop is harmless.
    /// Runs in a child process, as a crash here would take the test binary down.
    fn ring_buf_dropped_after_its_runtime(backend: Backend) {
        let Some(role) = support::child_role() else {
            run_as_child("ring_buf_dropped_after_its_runtime", backend);
            return;
        };
        assert_eq!(role, CHILD_ROLE, "unexpected child role");
        let _watchdog = support::watchdog(TEST_LIMIT, "ring_buf_dropped_after_its_runtime");
        let rt = support::runtime(backend);
        let (chunk, ring) = rt.block_on(async {
            let ring = ring(1024, 2, 4);
            let (client, server) = connected_pair().await;
            let (written, _) = client.write_all(pattern(100)).await;
            written.expect("client write_all");
            let mut recv = server.recv_multishot(&ring);
            let chunk = recv.next().await.expect("a chunk").expect("receive");
            recv.stop();
            while recv.next().await.is_some() {}
            (chunk, ring)
        });
        drop(rt);
        assert_bytes_eq("a chunk after its runtime", &chunk, &pattern(100));
        drop(chunk);
        drop(ring);
    }

    /// A `BufRing` kept from a runtime that is gone, used for a receive on a later runtime,
    /// gives data or an error — never a crash, a hang or bytes in the wrong place — and can be
    /// dropped there. Runs in a child process, as a crash would take the test binary down.
    fn ring_used_on_a_later_runtime(backend: Backend) {
        let Some(role) = support::child_role() else {
            run_as_child("ring_used_on_a_later_runtime", backend);
            return;
        };
        assert_eq!(role, CHILD_ROLE, "unexpected child role");
        let _watchdog = support::watchdog(TEST_LIMIT, "ring_used_on_a_later_runtime");
        let rt = support::runtime(backend);
        let kept = rt.block_on(async { ring(1024, 1, 4) });
        drop(rt);
        let rt = support::runtime(backend);
        rt.block_on(async {
            let (client, server) = connected_pair().await;
            let data = pattern(10_000);
            let (written, _) = client.write_all(data.clone()).await;
            written.expect("client write_all");
            client.shutdown(Shutdown::Write).expect("shutdown(Write)");
            let mut recv = server.recv_multishot(&kept);
            let mut received = Vec::new();
            loop {
                match time::timeout(READ_LIMIT, recv.next()).await {
                    Ok(Some(Ok(buf))) => received.extend_from_slice(&buf),
                    Ok(Some(Err(err))) => {
                        eprintln!("a ring of a runtime gone: {err}");
                        break;
                    }
                    Ok(None) => break,
                    Err(_) => panic!("stalled after {} bytes: {kept:?}", received.len()),
                }
            }
            assert_bytes_eq("bytes received", &received, &data[..received.len()]);
            drop(recv);
            drop(kept);
            assert_new_ring_receives().await;
        });
    }
}

/// `in_use()` counts, as documented, the buffers waiting in completions the stream has not
/// taken yet: once the kernel has received 4 KiB into 1 KiB buffers, left untaken, it counts
/// exactly as many buffers as the stream then yields chunks for those 4 KiB (4 when the bytes
/// arrive whole, more when the kernel receives them in pieces), and none once the chunks have
/// been taken and dropped.
fn in_use_counts_untaken_completions_with(backend: Backend) {
    let fx = fixture(backend, "in_use_counts_untaken_completions");
    fx.rt.block_on(async {
        let ring = ring(1024, 8, 8);
        let (client, server) = connected_pair().await;
        let mut recv = server.recv_multishot(&ring);
        assert!(
            poll_once(recv.next()).await.is_none(),
            "a chunk before any data"
        );
        let (written, _) = client.write_all(pattern(4 * 1024)).await;
        written.expect("client write_all");
        yield_until_deadline("the receive consumed the bytes", || {
            bytes_waiting(&server) == 0
        })
        .await;
        yield_turns(10).await;
        let untaken = ring.in_use();
        assert!(
            (4..=8).contains(&untaken),
            "{untaken} buffers in the untaken completions of 4 KiB: {ring:?}"
        );
        let mut chunks = Vec::new();
        let mut received = Vec::new();
        while received.len() < 4 * 1024 {
            let chunk = recv.next().await.expect("a chunk").expect("receive");
            received.extend_from_slice(&chunk);
            chunks.push(chunk);
        }
        assert_eq!(
            chunks.len(),
            untaken,
            "chunks of the 4 KiB the kernel had received vs. buffers in_use() counted"
        );
        assert_bytes_eq("the untaken chunks", &received, &pattern(4 * 1024));
        drop(chunks);
        assert_eq!(
            ring.in_use(),
            0,
            "buffers lent after the chunks were dropped"
        );
    });
}

/// Runs the `backend` variant of test `name` in a child process, asserting it passed. Like
/// `support::run_child`, plus `--include-ignored`, so that an ignored parent run with
/// `--ignored` runs its (equally ignored) child instead of finding no test to run.
fn run_as_child(name: &str, backend: Backend) {
    run_as_child_in_role(name, backend, CHILD_ROLE);
}

/// [`run_as_child`] with the child role `role`.
fn run_as_child_in_role(name: &str, backend: Backend, role: &str) {
    // Command::output opens pipes: hold the fd lock while the child runs.
    let _serial = support::serial();
    let name = format!("{name}::{}", variant_name(backend));
    let exe = std::env::current_exe().expect("current test executable");
    let output = std::process::Command::new(exe)
        .args([
            &name,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--include-ignored",
        ])
        .env_remove("RINGLOOP_BACKEND")
        .env(support::CHILD_ENV, role)
        .output()
        .unwrap_or_else(|e| panic!("re-executing the test binary for `{name}`: {e}"));
    support::assert_child_passed(&name, &output);
}

/// A new ring on the current runtime receives 10 000 bytes exactly on a new connection.
async fn assert_new_ring_receives() {
    assert_receives_through(&ring(1024, 2, 16)).await;
}

/// `ring` receives 10 000 bytes exactly on a new connection.
async fn assert_receives_through(ring: &BufRing) {
    let (client, server) = connected_pair().await;
    let data = pattern(10_000);
    let (written, _) = client.write_all(data.clone()).await;
    written.expect("client write_all");
    client.shutdown(Shutdown::Write).expect("shutdown(Write)");
    let mut recv = server.recv_multishot(ring);
    let mut received = Vec::new();
    loop {
        match time::timeout(READ_LIMIT, recv.next()).await {
            Ok(Some(Ok(buf))) => received.extend_from_slice(&buf),
            Ok(Some(Err(err))) => panic!("receive through {ring:?} failed: {err}"),
            Ok(None) => break,
            Err(_) => panic!("{ring:?}: stalled after {} bytes", received.len()),
        }
    }
    assert_bytes_eq("bytes through a new ring", &received, &data);
}
