//! Multishot receive and accept under completion-queue pressure: with a CQ far smaller than
//! the completions one arrival produces, the kernel may end a multishot op early (a final
//! completion without `F_MORE`, or completions parked in its overflow list). `RecvStream` and
//! `Incoming` must re-arm and lose nothing. The ring sizes are io_uring knobs; the epoll backend
//! ignores them and must pass too.
//!
//! Every test opens sockets, so every test holds `support::serial()` and builds its runtime
//! only after taking it.

mod support;

use std::collections::HashSet;
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::time::Duration;

use ringloop::buf::BufRing;
use ringloop::net::{TcpListener, TcpStream};
use ringloop::{Backend, Runtime, time};
use support::assert_bytes_eq;

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(60);
/// How long a result that must arrive may take before the test fails.
const WAIT_LIMIT: Duration = Duration::from_secs(10);
/// Submission-queue entries of the small ring.
const SQ_ENTRIES: u32 = 4;
/// Completion-queue entries of the small ring.
const CQ_ENTRIES: u32 = 8;

/// A runtime on exactly `backend` with a [`SQ_ENTRIES`]-entry SQ and a [`CQ_ENTRIES`]-entry CQ.
fn small_ring(backend: Backend) -> Runtime {
    Runtime::builder()
        .backend(backend)
        .entries(SQ_ENTRIES)
        .cq_entries(CQ_ENTRIES)
        .build()
        .unwrap_or_else(|e| panic!("small runtime on {backend:?}: {e}"))
}

/// A listener on a free loopback port, and its address.
fn listen() -> (TcpListener, SocketAddr) {
    let listener =
        TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("listener local_addr");
    (listener, addr)
}

/// `len` bytes of a pattern that does not repeat every power of two.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

both_backends! {
    /// 4 MiB through a multishot receive with 256 buffers of 1 KiB ready — up to 256
    /// completions per arrival into an 8-entry CQ — arrive exactly, and every buffer returns.
    fn recv_multishot_survives_a_tiny_cq(backend: Backend) {
        const TOTAL: usize = 4 << 20;
        let _serial = support::serial();
        let _watchdog = support::watchdog(
            TEST_LIMIT,
            &format!("recv_multishot_survives_a_tiny_cq on {backend:?}"),
        );
        let rt = small_ring(backend);
        rt.block_on(async {
            let ring = BufRing::builder()
                .buf_size(1024)
                .initial(256)
                .max(256)
                .build()
                .expect("BufRing::build");
            let (listener, addr) = listen();
            let client = TcpStream::connect(addr).await.expect("connect");
            let (server, _) = listener.accept().await.expect("accept");
            let writer = ringloop::spawn(async move {
                let (written, _) = client.write_all(pattern(TOTAL)).await;
                written.expect("client write_all");
                client.shutdown(Shutdown::Write).expect("shutdown(Write)");
            });
            let mut recv = server.recv_multishot(&ring);
            let mut received = Vec::with_capacity(TOTAL);
            loop {
                match time::timeout(WAIT_LIMIT, recv.next()).await {
                    Ok(Some(Ok(buf))) => received.extend_from_slice(&buf),
                    Ok(Some(Err(err))) => panic!("receive after {} bytes: {err}", received.len()),
                    Ok(None) => break,
                    Err(_) => panic!("stalled after {} bytes: {ring:?}", received.len()),
                }
            }
            assert_bytes_eq("4 MiB through an 8-entry CQ", &received, &pattern(TOTAL));
            writer.await.expect("writer task");
            drop(recv);
            assert_eq!(ring.in_use(), 0, "buffers lent at the end: {ring:?}");
        });
    }

    /// 200 clients connecting at once to one `incoming()` stream with an 8-entry CQ: each is
    /// accepted exactly once.
    fn incoming_survives_a_tiny_cq(backend: Backend) {
        const CLIENTS: usize = 200;
        let _serial = support::serial();
        let _watchdog =
            support::watchdog(TEST_LIMIT, &format!("incoming_survives_a_tiny_cq on {backend:?}"));
        let rt = small_ring(backend);
        rt.block_on(async {
            let (listener, addr) = listen();
            let mut incoming = listener.incoming();
            // Armed before the clients come, so one arrival can complete many accepts.
            assert!(
                futures_lite::future::poll_once(incoming.next()).await.is_none(),
                "a connection before any client"
            );
            support::yield_turns(10).await;
            // Plain blocking connects complete from the backlog: no loop turn between them.
            let clients: Vec<_> = (0..CLIENTS)
                .map(|_| std::net::TcpStream::connect(addr).expect("std connect"))
                .collect();
            let want: HashSet<SocketAddr> =
                clients.iter().map(|c| c.local_addr().expect("local_addr")).collect();
            let mut seen = HashSet::new();
            for n in 0..CLIENTS {
                let stream = time::timeout(WAIT_LIMIT, incoming.next())
                    .await
                    .unwrap_or_else(|_| panic!("only {n} of {CLIENTS} connections accepted"))
                    .expect("incoming");
                let peer = stream.peer_addr().expect("peer_addr");
                assert!(seen.insert(peer), "{peer} accepted twice");
            }
            assert_eq!(seen, want, "the accepted peers are the clients");
        });
    }
}
