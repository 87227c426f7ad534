//! Unix domain sockets on both backends: stream echo on a path and on an abstract name, with
//! the addresses each end reports; datagrams between bound, unbound and paired sockets;
//! vectored I/O; adoption of dropped accepts, reads and receives (nothing lost, no fd leaked);
//! and errors that name the path.
//!
//! Every test holds the fd lock through `net_support::fixture` (see `tests/net_support`).

mod net_support;
mod support;

use std::io::ErrorKind;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_lite::future::poll_once;

use net_support::*;
use ringloop::net::{UnixDatagram, UnixListener, UnixStream};
use ringloop::time;
use support::{open_fds, settle_inflight};

/// Echoes everything `stream` reads back to it until EOF; returns the byte count.
async fn echo_unix(stream: &UnixStream) -> usize {
    let mut total = 0;
    loop {
        let (n, buf) = stream.read(Vec::with_capacity(8192)).await;
        let n = n.expect("server read");
        if n == 0 {
            return total;
        }
        total += n;
        let (res, _) = stream.write_all(buf).await;
        res.expect("server write_all");
    }
}

/// Sends `msg` through `client` to an echo server and checks it comes back whole.
async fn round_trip(client: &UnixStream, msg: &[u8]) {
    let (res, _) = client.write_all(msg.to_vec()).await;
    res.expect("client write_all");
    let read = time::timeout(READ_LIMIT, client.read_exact(Vec::with_capacity(msg.len())));
    let (res, back) = read.await.expect("the echo arrives");
    res.expect("client read_exact");
    support::assert_bytes_eq("echo", &back, msg);
}

/// Waits on the loop until fewer than the `sent` bytes queued on `socket` remain (a receive
/// the kernel owns took them all, or its first few when a stream read is short; a datagram
/// goes whole), then one more tick so the completion reaches the op table. No event says a
/// receive completed for a future nobody polls, so this waits with short timers (which park
/// the loop in the kernel, where the receive completes).
async fn wait_until_taken(socket: &impl std::os::fd::AsFd, sent: usize) {
    let deadline = Instant::now() + READ_LIMIT;
    while bytes_waiting(socket) >= sent && Instant::now() < deadline {
        time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        bytes_waiting(socket) < sent,
        "a submitted receive took none of the {sent} bytes queued"
    );
    time::sleep(Duration::from_millis(1)).await;
}

both_backends! {
    /// A listener bound to a path echoes 1 byte to 200 KiB back byte for byte; the listener and
    /// the client's peer address are that path, and the accepted peer (a client that never
    /// bound) is unnamed.
    fn stream_echo_on_a_path(backend: Backend) {
        let fx = fixture(backend, "stream_echo_on_a_path");
        let path = TempPath::new("echo", backend);
        fx.rt.block_on(async {
            let listener = UnixListener::bind(&path.0).expect("bind");
            assert_eq!(listener.local_addr().expect("local_addr").as_pathname(), Some(&*path.0));
            let server = ringloop::spawn(async move {
                let (stream, peer) = listener.accept().await.expect("accept");
                assert!(peer.is_unnamed(), "an unbound client is unnamed: {peer:?}");
                echo_unix(&stream).await
            });
            let client = UnixStream::connect(&path.0).await.expect("connect");
            assert_eq!(client.peer_addr().expect("peer_addr").as_pathname(), Some(&*path.0));
            assert!(client.local_addr().expect("local_addr").is_unnamed());
            for msg in [b"x".to_vec(), pattern(200 * 1024), b"bye".to_vec()] {
                round_trip(&client, &msg).await;
            }
            client.shutdown(Shutdown::Write).expect("shutdown(Write)");
            let echoed = server.await.expect("server task");
            assert_eq!(echoed, 1 + 200 * 1024 + 3, "bytes the server echoed");
        });
    }

    /// A listener on an abstract name (no file is created) echoes a message; both ends report
    /// the name.
    fn stream_echo_on_an_abstract_name(backend: Backend) {
        let fx = fixture(backend, "stream_echo_on_an_abstract_name");
        let name = abstract_name("abstract-echo", backend);
        fx.rt.block_on(async {
            let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract addr");
            let listener = UnixListener::bind_addr(&addr).expect("bind_addr");
            let local = listener.local_addr().expect("local_addr");
            assert_eq!(local.as_abstract_name(), Some(name.as_bytes()));
            let server = ringloop::spawn(async move {
                let (stream, _) = listener.accept().await.expect("accept");
                echo_unix(&stream).await
            });
            let client = UnixStream::connect_addr(&addr).await.expect("connect_addr");
            let peer = client.peer_addr().expect("peer_addr");
            assert_eq!(peer.as_abstract_name(), Some(name.as_bytes()));
            round_trip(&client, b"abstract hello").await;
            drop(client);
            assert_eq!(server.await.expect("server task"), 14);
        });
    }

    /// Datagrams keep their boundaries: between two sockets bound to paths (the receiver sees
    /// the sender's path), from an unbound socket (unnamed sender), and over a connected
    /// `pair()` with `send`/`recv`; a datagram longer than the buffer is cut to it.
    fn datagrams_between_bound_unbound_and_paired_sockets(backend: Backend) {
        let fx = fixture(backend, "datagrams_between_bound_unbound_and_paired_sockets");
        let a_path = TempPath::new("dgram-a", backend);
        let b_path = TempPath::new("dgram-b", backend);
        fx.rt.block_on(async {
            let a = UnixDatagram::bind(&a_path.0).expect("bind a");
            let b = UnixDatagram::bind(&b_path.0).expect("bind b");
            for msg in [&b"one"[..], b"two two", b""] {
                let (n, _) = a.send_to(msg, &b_path.0).await;
                assert_eq!(n.expect("send_to"), msg.len());
            }
            for msg in [&b"one"[..], b"two two", b""] {
                let (res, buf) = b.recv_from(Vec::with_capacity(64)).await;
                let (n, from) = res.expect("recv_from");
                assert_eq!((&buf[..n], from.as_pathname()), (msg, Some(&*a_path.0)));
            }

            let unbound = UnixDatagram::unbound().expect("unbound");
            let (n, _) = unbound.send_to(b"anonymous".as_slice(), &b_path.0).await;
            assert_eq!(n.expect("send_to from unbound"), 9);
            let (res, buf) = b.recv_from(Vec::with_capacity(4)).await;
            let (n, from) = res.expect("recv_from");
            assert_eq!((&buf[..n], from.is_unnamed()), (&b"anon"[..], true), "cut to 4 bytes");

            let (x, y) = UnixDatagram::pair().expect("pair");
            let (n, _) = x.send(b"paired".as_slice()).await;
            assert_eq!(n.expect("send"), 6);
            let (n, buf) = y.recv(Vec::with_capacity(64)).await;
            assert_eq!(&buf[..n.expect("recv")], b"paired");
        });
    }

    /// `writev` then `readv` on a stream pair carry the bytes in order, the read filling its
    /// buffers one after another. (A stream may take or give fewer bytes than asked: a short
    /// `writev` is followed by one of what it left, and the bytes a short `readv` left wait
    /// for the next read.)
    fn vectored_io_on_a_stream_pair(backend: Backend) {
        let fx = fixture(backend, "vectored_io_on_a_stream_pair");
        fx.rt.block_on(async {
            let (a, b) = UnixStream::pair().expect("pair");
            let sent = b"abcdefgh";
            let parts: [&[u8]; 2] = [b"abc", b"defgh"];
            let mut written = 0;
            while written < sent.len() {
                // What `written` bytes left of the two buffers.
                let mut skip = written;
                let mut bufs = Vec::new();
                for part in parts {
                    let skipped = skip.min(part.len());
                    skip -= skipped;
                    if skipped < part.len() {
                        bufs.push(part[skipped..].to_vec());
                    }
                }
                let (n, _) = a.writev(bufs).await;
                let n = n.expect("writev");
                assert!(n > 0, "a writev wrote nothing");
                written += n;
            }
            assert_eq!(written, sent.len());
            let bufs = vec![Vec::with_capacity(2), Vec::with_capacity(10)];
            let (n, bufs) = b.readv(bufs).await;
            let n = n.expect("readv");
            assert!((1..=sent.len()).contains(&n), "readv read {n} bytes");
            let in_first = n.min(2);
            assert_eq!(
                (&bufs[0][..], &bufs[1][..]),
                (&sent[..in_first], &sent[in_first..n])
            );
            if n < sent.len() {
                let (res, rest) = b.read_exact(Vec::with_capacity(sent.len() - n)).await;
                res.expect("read_exact");
                assert_eq!(rest, &sent[n..]);
            }
        });
    }

    /// An accept that times out is adopted by the listener: the connection that arrives next
    /// goes to the following accept, not to a closed socket; 200 such timed-out accepts leave
    /// at most one op in flight and, once everything is dropped, exactly the fds open before.
    fn dropped_accepts_are_adopted_and_leak_no_fd(backend: Backend) {
        let fx = fixture(backend, "dropped_accepts_are_adopted_and_leak_no_fd");
        let path = TempPath::new("adopt-accept", backend);
        fx.rt.block_on(async {
            settle_inflight(0).await;
            let before = open_fds();
            let listener = UnixListener::bind(&path.0).expect("bind");
            for _ in 0..200 {
                let idle = time::timeout(Duration::from_micros(50), listener.accept()).await;
                assert!(idle.is_err(), "nobody connected, yet an accept finished");
            }
            assert!(ringloop::Handle::current().inflight_ops() <= 1, "one adopted accept");
            let client = UnixStream::connect(&path.0).await.expect("connect");
            let (server, _) = time::timeout(READ_LIMIT, listener.accept())
                .await
                .expect("the adopted accept hands over the connection")
                .expect("accept");
            let (res, _) = server.write_all(b"adopted".as_slice()).await;
            res.expect("server write");
            let (res, buf) = client.read_exact(Vec::with_capacity(7)).await;
            res.expect("client read");
            assert_eq!(buf, b"adopted");
            drop((client, server, listener));
            settle_inflight(0).await;
            assert_fd_count_returns_to(before, "after 200 timed-out Unix accepts").await;
        });
    }

    /// A read submitted, then dropped after the kernel gave it the peer's bytes (or their
    /// first few, when the read is short), loses nothing: the next reads get those bytes in
    /// full, even through a smaller buffer (the rest waits for the read after).
    fn dropped_read_is_adopted(backend: Backend) {
        let fx = fixture(backend, "dropped_read_is_adopted");
        fx.rt.block_on(async {
            let (a, b) = UnixStream::pair().expect("pair");
            for round in 0..20 {
                let mut read = Box::pin(a.read(Vec::with_capacity(64)));
                assert!(poll_once(&mut read).await.is_none(), "round {round}: nothing sent");
                let msg = format!("round {round:02} bytes");
                let (res, _) = b.write_all(msg.clone().into_bytes()).await;
                res.expect("write");
                wait_until_taken(&a, msg.len()).await;
                drop(read);
                let (n, first) = time::timeout(READ_LIMIT, a.read(Vec::with_capacity(5)))
                    .await
                    .expect("the dropped read's bytes reach the next read");
                let n = n.expect("read");
                assert!((1..=5).contains(&n), "round {round}: {n} bytes in a 5-byte buffer");
                let (res, rest) = a.read_exact(Vec::with_capacity(msg.len() - n)).await;
                res.expect("read_exact");
                assert_eq!([first, rest].concat(), msg.as_bytes(), "round {round}");
            }
        });
    }

    /// A datagram receive submitted, then dropped after the kernel gave it a datagram, loses
    /// nothing: the next receive gets that datagram (on a pair, and from an unnamed sender on
    /// a bound socket).
    fn dropped_datagram_receive_is_adopted(backend: Backend) {
        let fx = fixture(backend, "dropped_datagram_receive_is_adopted");
        let path = TempPath::new("adopt-dgram", backend);
        fx.rt.block_on(async {
            let server = UnixDatagram::bind(&path.0).expect("bind");
            let (x, y) = UnixDatagram::pair().expect("pair");
            for round in 0..20u8 {
                let mut recv = Box::pin(y.recv(Vec::with_capacity(8)));
                assert!(poll_once(&mut recv).await.is_none(), "round {round}: nothing sent");
                let (n, _) = x.send(vec![round; 3]).await;
                assert_eq!(n.expect("send"), 3);
                wait_until_taken(&y, 3).await;
                drop(recv);
                let (n, buf) = time::timeout(READ_LIMIT, y.recv(Vec::with_capacity(8)))
                    .await
                    .expect("the dropped receive's datagram reaches the next receive");
                assert_eq!(&buf[..n.expect("recv")], &[round; 3], "round {round}");
            }
            let mut recv = Box::pin(server.recv_from(Vec::with_capacity(8)));
            assert!(poll_once(&mut recv).await.is_none(), "nothing sent to the server yet");
            let (n, _) = x.send_to(b"late".as_slice(), &path.0).await;
            assert_eq!(n.expect("send_to"), 4);
            wait_until_taken(&server, 4).await;
            drop(recv);
            let (res, buf) = time::timeout(READ_LIMIT, server.recv_from(Vec::with_capacity(8)))
                .await
                .expect("the dropped receive's datagram reaches the next receive");
            let (n, from) = res.expect("recv_from");
            assert_eq!((&buf[..n], from.is_unnamed()), (&b"late"[..], true));
        });
    }

    /// A message carrying descriptors ends a receive on a Unix stream early (the kernel does
    /// not glue bytes across it), so a short receive there does not mean the socket is empty:
    /// the bytes sent after it arrive by every way of reading — owned-buffer reads, the
    /// multishot receive stream, and poll-based reads — and none waits for more data to come.
    fn bytes_behind_passed_descriptors_arrive(backend: Backend) {
        let fx = fixture(backend, "bytes_behind_passed_descriptors_arrive");
        fx.rt.block_on(async {
            let passed = std::fs::File::open("/dev/null").expect("open /dev/null");
            let tail = vec![b't'; 3000];
            let expected = [&b"head"[..], &tail[..]].concat();
            for way in ["read", "recv_multishot", "poll_read"] {
                let (a, mut b) = UnixStream::pair().expect("pair");
                let (res, _) = a.send_with_fds(b"head".as_slice(), &[passed.as_fd()]).await;
                // A stream send may take fewer bytes (the fault injector makes it so): the
                // rest of the head follows with the tail.
                let sent = res.expect("send_with_fds");
                let (res, _) = a.write_all([&b"head"[sent..], &tail[..]].concat()).await;
                res.expect("write_all");
                // A short timer parks the loop in the kernel, so the epoll backend takes the
                // readiness these bytes raised before the read starts; and nothing more is sent:
                // a reader that waits for new data waits forever.
                time::sleep(Duration::from_millis(1)).await;
                let got = time::timeout(READ_LIMIT, read_len(&mut b, expected.len(), way)).await;
                let got = got.unwrap_or_else(|_| {
                    panic!("{way}: the bytes behind the descriptors never arrived")
                });
                support::assert_bytes_eq(way, &got, &expected);
            }
        });
    }

    /// Connecting to a path where nothing is bound fails with `NotFound` naming the path;
    /// binding a path that exists fails with `AddrInUse` naming it; a datagram to a missing
    /// path fails naming it.
    fn errors_name_the_path(backend: Backend) {
        let fx = fixture(backend, "errors_name_the_path");
        let path = TempPath::new("missing", backend);
        fx.rt.block_on(async {
            let shown = path.0.display().to_string();
            let err = UnixStream::connect(&path.0).await.expect_err("connect to a missing path");
            assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
            assert!(err.to_string().contains(&shown), "{err} should name {shown}");

            let _listener = UnixListener::bind(&path.0).expect("bind");
            let err = UnixListener::bind(&path.0).expect_err("bind an existing path");
            assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
            assert!(err.to_string().contains(&shown), "{err} should name {shown}");

            let missing = TempPath::new("missing-dgram", backend);
            let sender = UnixDatagram::unbound().expect("unbound");
            let (res, _) = sender.send_to(b"x".as_slice(), &missing.0).await;
            let err = res.expect_err("send_to a missing path");
            let shown = missing.0.display().to_string();
            assert!(err.to_string().contains(&shown), "{err} should name {shown}");
        });
    }
}
