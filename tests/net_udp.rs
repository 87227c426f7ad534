//! UDP and name resolution on both backends: `send_to`/`recv_from` round trips and source
//! addresses, `connect` + `send`/`recv`, truncation of a datagram larger than the buffer,
//! `recv_from` cancelled by a timeout losing no datagram (idle, at its first poll, and racing a
//! sender), many receivers pending at once, `lookup_host`, and binding an address already in use.
//!
//! Every socket is on loopback; every receive that must succeed is bounded by [`RECV_LIMIT`] and
//! every test by a [`TEST_LIMIT`] watchdog.

mod support;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use ringloop::net::{UdpSocket, lookup_host};
use ringloop::{Backend, Runtime, time};
use support::{Watchdog, settle_inflight, yield_turns};

/// How long one test may run before its watchdog aborts the process. Also the limit of the
/// `lookup_host` test, whose failing lookup may wait for a resolver that is not there.
const TEST_LIMIT: Duration = Duration::from_secs(30);
/// How long a receive that must succeed may wait before the test fails (instead of hanging until
/// the watchdog takes the whole test binary down).
const RECV_LIMIT: Duration = Duration::from_secs(10);
/// Room for any datagram the tests send whole.
const DATAGRAM_ROOM: usize = 2048;

/// A watchdog and a runtime on one backend. Fields drop in declaration order: the runtime first,
/// while the watchdog still guards its shutdown.
struct Fixture {
    rt: Runtime,
    _watchdog: Watchdog,
}

/// Arms a [`TEST_LIMIT`] watchdog naming `what`, then builds the runtime.
fn fixture(backend: Backend, what: &str) -> Fixture {
    let watchdog = support::watchdog(TEST_LIMIT, &format!("{what} on {backend:?}"));
    Fixture {
        rt: support::runtime(backend),
        _watchdog: watchdog,
    }
}

/// `127.0.0.1:0`: loopback, any free port.
fn any_loopback_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// A socket bound to a free loopback port, and the address it got.
fn bound() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind(any_loopback_port()).expect("bind 127.0.0.1:0");
    let addr = socket.local_addr().expect("local_addr");
    assert!(addr.ip().is_loopback(), "bound to 127.0.0.1, got {addr}");
    assert_ne!(addr.port(), 0, "binding port 0 picks a real port");
    (socket, addr)
}

/// `len` bytes of a pattern that differs per `seed` and does not repeat every power of two.
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7) % 251) as u8)
        .collect()
}

/// Sends `payload` as one datagram to `to`; asserts all of it went and the buffer came back.
async fn send_datagram(socket: &UdpSocket, payload: Vec<u8>, to: SocketAddr, what: &str) {
    let len = payload.len();
    let (sent, back) = socket.send_to(payload, to).await;
    let n = sent.unwrap_or_else(|e| panic!("{what}: send_to {to}: {e}"));
    assert_eq!(n, len, "{what}: send_to sends a datagram whole");
    assert_eq!(back.len(), len, "{what}: send_to gives the buffer back");
}

/// One datagram received into a buffer with `capacity` bytes of room, and its source; fails the
/// test after [`RECV_LIMIT`] instead of hanging.
async fn recv_datagram(socket: &UdpSocket, capacity: usize, what: &str) -> (Vec<u8>, SocketAddr) {
    match time::timeout(RECV_LIMIT, socket.recv_from(Vec::with_capacity(capacity))).await {
        Ok((Ok((n, from)), buf)) => {
            assert_eq!(
                n,
                buf.len(),
                "{what}: recv_from's count vs the bytes filled in"
            );
            (buf, from)
        }
        Ok((Err(e), _)) => panic!("{what}: recv_from: {e}"),
        Err(_) => panic!("{what}: no datagram arrived within {RECV_LIMIT:?}"),
    }
}

/// The size of datagram `i` of the round-trip test: 1 and 1400 bytes at the ends, sizes spread
/// over 1..=1400 in between.
fn datagram_len(i: usize) -> usize {
    match i {
        0 => 1,
        99 => 1400,
        _ => 1 + i * 617 % 1400,
    }
}

/// The datagram meant for receiver `i`, of a length that differs per receiver.
fn receiver_message(i: usize) -> Vec<u8> {
    format!("receiver {i:02} gets {}", "y".repeat(i)).into_bytes()
}

/// Length of the datagram waiting at the head of `socket`'s queue, from a non-blocking
/// `MSG_PEEK` (consumes nothing); `None` when nothing waits.
fn datagram_waiting(socket: &UdpSocket) -> Option<usize> {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); DATAGRAM_ROOM];
    match socket2::SockRef::from(socket).peek(&mut buf) {
        Ok(n) => Some(n),
        Err(err) if err.kind() == ErrorKind::WouldBlock => None,
        Err(err) => panic!("peek: {err}"),
    }
}

both_backends! {
    /// 100 datagrams of 1 to 1400 bytes, sent one at a time from one bound socket to another and
    /// sent back, arrive whole and intact both ways, and `recv_from` names the sender's
    /// `local_addr` as the source each time.
    fn send_to_recv_from_round_trip(backend: Backend) {
        const DATAGRAMS: usize = 100;
        let fx = fixture(backend, "send_to_recv_from_round_trip");
        fx.rt.block_on(async {
            let (a, a_addr) = bound();
            let (b, b_addr) = bound();
            assert_ne!(a_addr, b_addr, "two sockets bound to port 0 get different ports");
            for i in 0..DATAGRAMS {
                let msg = pattern(datagram_len(i), i);
                // Lock-step (one datagram in flight at a time), so loopback loses none.
                send_datagram(&a, msg.clone(), b_addr, &format!("datagram {i} a->b")).await;
                let (got, from) =
                    recv_datagram(&b, DATAGRAM_ROOM, &format!("datagram {i} at b")).await;
                assert_eq!(from, a_addr, "datagram {i}: source seen by b");
                support::assert_bytes_eq(&format!("datagram {i} at b"), &got, &msg);

                send_datagram(&b, got, from, &format!("datagram {i} b->a")).await;
                let (back, from) =
                    recv_datagram(&a, DATAGRAM_ROOM, &format!("datagram {i} at a")).await;
                assert_eq!(from, b_addr, "datagram {i}: source seen by a");
                support::assert_bytes_eq(&format!("datagram {i} back at a"), &back, &msg);
            }
        });
    }

    /// Before `connect`, `peer_addr` is a `NotConnected` error; after `connect(b)`, `peer_addr`
    /// is `b`, `send` reaches `b` (which sees the socket's own address as the source), and `recv`
    /// gets `b`'s reply — and only `b`'s: a datagram from a third socket is not delivered to a
    /// connected socket.
    fn connect_then_send_and_recv(backend: Backend) {
        let fx = fixture(backend, "connect_then_send_and_recv");
        fx.rt.block_on(async {
            let (a, a_addr) = bound();
            let (b, b_addr) = bound();
            let (stranger, _) = bound();

            let err = a.peer_addr().expect_err("peer_addr of an unconnected socket");
            assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");

            a.connect(b_addr).expect("connect");
            assert_eq!(a.peer_addr().expect("peer_addr after connect"), b_addr);
            assert_eq!(a.local_addr().expect("local_addr after connect"), a_addr);

            let (sent, _) = a.send(b"ping from a".to_vec()).await;
            assert_eq!(sent.expect("send on a connected socket"), 11);
            let (got, from) = recv_datagram(&b, DATAGRAM_ROOM, "a's send at b").await;
            assert_eq!(from, a_addr, "source of a connected socket's send");
            support::assert_bytes_eq("a's send at b", &got, b"ping from a");

            // The kernel drops the stranger's datagram: `a` only hears from `b`.
            send_datagram(&stranger, b"stray".to_vec(), a_addr, "stranger->a").await;
            send_datagram(&b, b"pong from b".to_vec(), a_addr, "b->a").await;
            let received =
                time::timeout(RECV_LIMIT, a.recv(Vec::with_capacity(DATAGRAM_ROOM))).await;
            let (n, reply) = received.expect("no reply reached the connected socket");
            assert_eq!(n.expect("recv on a connected socket"), reply.len());
            support::assert_bytes_eq("b's reply at a", &reply, b"pong from b");
        });
    }

    /// A 100-byte datagram received into a buffer with 4 bytes already in it and less spare
    /// room than that fills exactly the spare room (`recv_from` returns the spare capacity, the 4
    /// bytes stay), and the next `recv_from` gets the next datagram, not the rest of the first.
    fn datagram_larger_than_the_buffer_is_truncated(backend: Backend) {
        let fx = fixture(backend, "datagram_larger_than_the_buffer_is_truncated");
        fx.rt.block_on(async {
            let (a, a_addr) = bound();
            let (b, b_addr) = bound();
            let big = pattern(100, 1);
            let small = pattern(10, 2);
            send_datagram(&b, big.clone(), a_addr, "big").await;
            send_datagram(&b, small.clone(), a_addr, "small").await;

            let mut buf = Vec::with_capacity(36);
            buf.extend_from_slice(b"HDR:");
            let spare = buf.capacity() - buf.len();
            assert!(spare < big.len(), "the buffer must be smaller than the datagram");
            let received = time::timeout(RECV_LIMIT, a.recv_from(buf)).await;
            let (result, buf) = received.expect("the big datagram did not arrive");
            let (n, from) = result.expect("recv_from of a datagram larger than the buffer");
            assert_eq!(n, spare, "recv_from fills the spare capacity and no more");
            assert_eq!(from, b_addr, "source of the truncated datagram");
            support::assert_bytes_eq("bytes already in the buffer", &buf[..4], b"HDR:");
            support::assert_bytes_eq("truncated datagram", &buf[4..], &big[..spare]);

            let (next, from) = recv_datagram(&a, DATAGRAM_ROOM, "the datagram after").await;
            assert_eq!(from, b_addr, "source of the next datagram");
            support::assert_bytes_eq("the datagram after a truncated one", &next, &small);
        });
    }

    /// A `recv_from` on an idle socket cut short by `time::timeout` (50 ms, then 49 rounds of
    /// 1 ms) takes nothing: the datagram sent right afterwards reaches a fresh `recv_from`,
    /// every round. Once the sockets are dropped, no op is left in flight.
    fn recv_from_cancelled_by_timeout_loses_nothing(backend: Backend) {
        const ROUNDS: usize = 50;
        let fx = fixture(backend, "recv_from_cancelled_by_timeout_loses_nothing");
        fx.rt.block_on(async {
            let (a, a_addr) = bound();
            let (b, b_addr) = bound();
            for round in 0..ROUNDS {
                let limit = Duration::from_millis(if round == 0 { 50 } else { 1 });
                let idle = time::timeout(limit, a.recv_from(Vec::with_capacity(64))).await;
                if let Ok((result, buf)) = idle {
                    panic!("round {round}: an idle recv_from finished: {result:?}, {buf:?}");
                }
                let msg = format!("round {round:03}").into_bytes();
                send_datagram(&b, msg.clone(), a_addr, &format!("round {round}")).await;
                let (got, from) = recv_datagram(&a, 64, &format!("round {round}")).await;
                assert_eq!(from, b_addr, "round {round}: source");
                support::assert_bytes_eq(&format!("round {round}"), &got, &msg);
            }
            drop((a, b));
            settle_inflight(0).await;
        });
    }

    /// A `recv_from` whose timeout has already passed when it is first polled (zero duration),
    /// with a datagram already waiting: either it returns the datagram, or `Elapsed` and the
    /// datagram reaches the next `recv_from`. 20 rounds; none loses its datagram.
    fn recv_from_timed_out_at_its_first_poll_loses_nothing(backend: Backend) {
        const ROUNDS: usize = 20;
        let fx = fixture(backend, "recv_from_timed_out_at_its_first_poll_loses_nothing");
        fx.rt.block_on(async {
            let (a, a_addr) = bound();
            let (b, b_addr) = bound();
            let mut elapsed = 0;
            for round in 0..ROUNDS {
                let msg = format!("waiting {round:02}").into_bytes();
                send_datagram(&b, msg.clone(), a_addr, &format!("round {round}")).await;
                support::yield_until_deadline("the datagram waits in a's queue", || {
                    datagram_waiting(&a) == Some(msg.len())
                })
                .await;

                let first_poll = time::timeout(Duration::ZERO, a.recv_from(Vec::with_capacity(64)));
                let got = match first_poll.await {
                    Ok((result, buf)) => {
                        let (_, from) = result.expect("recv_from");
                        assert_eq!(from, b_addr, "round {round}: source");
                        buf
                    }
                    Err(_elapsed) => {
                        elapsed += 1;
                        let (buf, from) =
                            recv_datagram(&a, 64, &format!("round {round}, after")).await;
                        assert_eq!(from, b_addr, "round {round}: source");
                        buf
                    }
                };
                support::assert_bytes_eq(&format!("round {round}"), &got, &msg);
            }
            eprintln!("{backend:?}: {elapsed} of {ROUNDS} zero-timeout recv_froms gave Elapsed");
            drop((a, b));
            settle_inflight(0).await;
        });
    }

    /// `recv_from`s cut short by timeouts of 50–450 µs while a peer thread sends 2 000 numbered
    /// datagrams, one at a time (the next only after the last was received) at irregular
    /// intervals of up to 300 µs (3 ms every 50th): every datagram is received, in order. A
    /// datagram that lands while a timed-out `recv_from`'s cancellation is on its way to the
    /// kernel must reach a later `recv_from`, not vanish with the cancelled one. (Lock-step, so
    /// loopback itself drops nothing.)
    fn recv_from_timeouts_racing_a_sender_lose_nothing(backend: Backend) {
        const MESSAGES: usize = 2000;
        let fx = fixture(backend, "recv_from_timeouts_racing_a_sender_lose_nothing");
        let receiver_std = std::net::UdpSocket::bind(any_loopback_port()).expect("std bind");
        let receiver_addr = receiver_std.local_addr().expect("std local_addr");
        let (ack, acks) = mpsc::channel::<usize>();
        let sender_done = Arc::new(AtomicBool::new(false));
        let sender = {
            let sender_done = Arc::clone(&sender_done);
            std::thread::spawn(move || {
                let socket = std::net::UdpSocket::bind(any_loopback_port()).expect("std bind");
                let outcome = (|| {
                    for i in 0..MESSAGES {
                        socket
                            .send_to(format!("{i:07}").as_bytes(), receiver_addr)
                            .expect("std send_to");
                        match acks.recv_timeout(RECV_LIMIT) {
                            Ok(got) if got == i => {}
                            Ok(got) => {
                                return Err(format!("sent {i}, the receiver acknowledged {got}"));
                            }
                            Err(_) => return Err(format!("datagram {i} was never received")),
                        }
                        // Pacing, not synchronisation: land datagrams at varying points of the
                        // receiver's timeouts, with a longer gap now and then that even
                        // millisecond timers (epoll_wait's) see.
                        let gap = if i % 50 == 49 { 3_000 } else { i * 53 % 300 };
                        std::thread::sleep(Duration::from_micros(gap as u64));
                    }
                    Ok(())
                })();
                sender_done.store(true, Ordering::SeqCst);
                outcome
            })
        };
        let (received, timeouts) = fx.rt.block_on(async {
            let socket = UdpSocket::from_std(receiver_std).expect("from_std");
            let mut received = 0usize;
            let mut timeouts = 0usize;
            // Bounded: each round either times out or receives; the sender stops on its own.
            for round in 0..10_000_000usize {
                if received == MESSAGES {
                    break;
                }
                let limit = Duration::from_micros(50 + (round * 37 % 400) as u64);
                match time::timeout(limit, socket.recv_from(Vec::with_capacity(64))).await {
                    Err(_) => {
                        timeouts += 1;
                        if sender_done.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                    Ok((result, buf)) => {
                        result.expect("recv_from");
                        let want = format!("{received:07}").into_bytes();
                        support::assert_bytes_eq(&format!("datagram {received}"), &buf, &want);
                        // The sender may have given up already; its verdict is checked below.
                        let _ = ack.send(received);
                        received += 1;
                    }
                }
            }
            (received, timeouts)
        });
        let outcome = sender.join().expect("sender thread");
        eprintln!("{backend:?}: {received} datagrams received, {timeouts} recv_froms timed out");
        if let Err(why) = outcome {
            panic!("{why}: a recv_from cut short by a timeout took it ({received} received)");
        }
        assert_eq!(received, MESSAGES, "datagrams received");
        assert!(timeouts > 0, "no recv_from timed out: the test raced nothing");
    }

    /// 20 tasks each own a socket and wait in `recv_from` at once; a sender then sends each its
    /// own datagram, in a shuffled order. Every task receives exactly its own datagram, from the
    /// sender's address.
    fn many_concurrent_receivers_each_get_their_own(backend: Backend) {
        const RECEIVERS: usize = 20;
        let fx = fixture(backend, "many_concurrent_receivers_each_get_their_own");
        fx.rt.block_on(async {
            let (sender, sender_addr) = bound();
            let mut addrs = Vec::with_capacity(RECEIVERS);
            let mut receivers = Vec::with_capacity(RECEIVERS);
            for i in 0..RECEIVERS {
                let (socket, addr) = bound();
                addrs.push(addr);
                receivers.push(ringloop::spawn(async move {
                    recv_datagram(&socket, DATAGRAM_ROOM, &format!("receiver {i}")).await
                }));
            }
            yield_turns(10).await;
            for (i, receiver) in receivers.iter().enumerate() {
                assert!(!receiver.is_finished(), "receiver {i} finished before anything was sent");
            }

            // 7 is coprime to 20: a permutation, so the order of sends is not the order of waits.
            for k in 0..RECEIVERS {
                let i = k * 7 % RECEIVERS;
                send_datagram(&sender, receiver_message(i), addrs[i], &format!("to receiver {i}"))
                    .await;
            }
            for (i, receiver) in receivers.into_iter().enumerate() {
                let (got, from) = receiver.await.expect("receiver task");
                assert_eq!(from, sender_addr, "receiver {i}: source");
                support::assert_bytes_eq(&format!("receiver {i}"), &got, &receiver_message(i));
            }
        });
    }

    /// `lookup_host("localhost:80")` gives at least one loopback address, all with port 80;
    /// `lookup_host("127.0.0.1:5353")` gives exactly that address; `lookup_host` of a `.invalid`
    /// name ends (within the watchdog's limit) in an error whose message names the host.
    fn lookup_host_resolves_and_names_failures(backend: Backend) {
        let fx = fixture(backend, "lookup_host_resolves_and_names_failures");
        fx.rt.block_on(async {
            let addrs = lookup_host("localhost:80").await.expect("lookup_host(localhost:80)");
            assert!(!addrs.is_empty(), "localhost resolves to something");
            assert!(
                addrs.iter().any(|a| a.ip().is_loopback()),
                "localhost resolves to a loopback address: {addrs:?}"
            );
            assert!(addrs.iter().all(|a| a.port() == 80), "every address keeps port 80: {addrs:?}");

            let addrs = lookup_host("127.0.0.1:5353").await.expect("lookup_host(127.0.0.1:5353)");
            let want: SocketAddr = "127.0.0.1:5353".parse().expect("parse");
            assert_eq!(addrs, vec![want], "an ip:port resolves to itself alone");

            let err = match lookup_host("no-such-host.invalid:80").await {
                Ok(addrs) => panic!("no-such-host.invalid resolved to {addrs:?}"),
                Err(err) => err,
            };
            let message = err.to_string();
            assert!(
                message.contains("no-such-host.invalid"),
                "the message {message:?} should name the host"
            );
        });
    }

    /// Binding an address another UDP socket holds (neither sets `SO_REUSEADDR`) fails with
    /// `AddrInUse`, and the message names the address; the first socket still works.
    fn bind_to_an_address_in_use_names_it(backend: Backend) {
        let fx = fixture(backend, "bind_to_an_address_in_use_names_it");
        fx.rt.block_on(async {
            let (first, addr) = bound();
            let err = match UdpSocket::bind(addr) {
                Ok(second) => panic!(
                    "a second bind to {addr} succeeded ({:?})",
                    second.local_addr()
                ),
                Err(err) => err,
            };
            assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
            let message = err.to_string();
            assert!(
                message.contains(&addr.to_string()),
                "the message {message:?} should name {addr}"
            );

            send_datagram(&first, b"still here".to_vec(), addr, "to itself").await;
            let (got, from) = recv_datagram(&first, DATAGRAM_ROOM, "from itself").await;
            assert_eq!(from, addr, "source of a datagram to itself");
            support::assert_bytes_eq("datagram to itself", &got, b"still here");
        });
    }
}
