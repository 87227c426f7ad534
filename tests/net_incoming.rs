//! `TcpListener::incoming` (one multishot accept) on both backends: many concurrent clients are
//! each accepted once with the right peer; `Incoming` streams dropped by the thousand (some
//! with connections racing in, some with connections the kernel already accepted for them)
//! leak no fd and close, never lose, those connections; `EMFILE` is yielded and the next call
//! re-arms.
//!
//! Every test opens sockets and most count fds, so every test holds `support::serial()` and
//! builds its runtime only after taking it (see [`Fixture`]).

mod net_support;
mod support;

use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Read as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::time::{Duration, Instant};

use futures_lite::future::poll_once;
use net_support::{Fixture, fixture_within, listen, variant_name};
use ringloop::net::{TcpListener, TcpStream};
use ringloop::{Backend, Handle, time, yield_now};
use support::{describe_open_fds, open_fds, settle_inflight, yield_turns};

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// The fd-counting lock, a [`TEST_LIMIT`] watchdog naming `what`, and a runtime on `backend`.
fn fixture(backend: Backend, what: &str) -> Fixture {
    fixture_within(backend, what, TEST_LIMIT)
}
/// How long an accept or a close that must happen may take before the test fails.
const WAIT_LIMIT: Duration = Duration::from_secs(10);
/// The child role of `emfile_is_yielded_then_next_rearms`.
const EMFILE_ROLE: &str = "emfile";

/// Whether the server side of a plain client's connection is closed (EOF or reset), checked
/// without blocking. The servers in these tests never write.
fn peer_has_closed(client: &std::net::TcpStream) -> bool {
    client.set_nonblocking(true).expect("set_nonblocking");
    let mut byte = [0u8; 1];
    match (&*client).read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("the server never writes, yet a client read data"),
        Err(err) if err.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// Connections waiting in `listener`'s accept queue (`tcpi_unacked` of a listening socket is
/// its accept backlog).
fn accept_queue_len(listener: &TcpListener) -> u32 {
    // SAFETY: tcp_info is plain old data; all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is writable for `len` bytes and `len` is a valid in/out length.
    let rc = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    info.tcpi_unacked
}

/// Waits (bounded, on the running loop) for the open-fd count to return to `before`, then
/// asserts it, listing the fds if not.
async fn assert_fd_count_returns_to(before: usize, what: &str) {
    let deadline = Instant::now() + WAIT_LIMIT;
    while open_fds() != before && Instant::now() < deadline {
        yield_now().await;
    }
    let after = open_fds();
    assert_eq!(
        after,
        before,
        "{what}: {before} fds open before, {after} after (in flight: {}):\n{}",
        Handle::current().inflight_ops(),
        describe_open_fds().join("\n")
    );
}

/// Waits (bounded) until every client sees its connection closed by the server.
async fn assert_all_closed(clients: &[std::net::TcpStream], what: &str) {
    for (i, client) in clients.iter().enumerate() {
        support::yield_until_deadline(&format!("{what}: client {i} sees EOF or reset"), || {
            peer_has_closed(client)
        })
        .await;
    }
}

both_backends! {
    /// `incoming()` on a socket that is bound but not listening reports the kernel's
    /// `EINVAL` as an error (through the single-accept fallback that a kernel without
    /// multishot accept also takes), and keeps doing so on the next call: no panic, no hang.
    fn incoming_on_a_socket_not_listening_is_an_error(backend: Backend) {
        // It opens fds too: without the lock its runtime and socket showed up in another
        // test's fd count (seen on a slow 6.1 guest with two test threads).
        let fx = fixture(backend, "incoming_on_a_socket_not_listening_is_an_error");
        fx.rt.block_on(async {
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("socket");
            socket.set_nonblocking(true).expect("nonblocking");
            socket
                .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
                .expect("bind");
            let listener = TcpListener::from_std(socket.into()).expect("from_std");
            let mut incoming = listener.incoming();
            for _ in 0..2 {
                let err = time::timeout(Duration::from_secs(5), incoming.next())
                    .await
                    .expect("an error, not a hang")
                    .expect_err("nobody listens, so nothing is accepted");
                assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
            }
        });
    }

    /// 100 clients connecting at once (one task each, each sending its index) are accepted by
    /// one `incoming()` stream: each connection exactly once, its `peer_addr` the client's
    /// `local_addr`, its `local_addr` the listener's, and its first bytes that client's index.
    fn incoming_accepts_concurrent_clients(backend: Backend) {
        const CLIENTS: usize = 100;
        let fx = fixture(backend, "incoming_accepts_concurrent_clients");
        fx.rt.block_on(async {
            let (listener, addr) = listen();
            let clients: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    ringloop::spawn(async move {
                        let client = TcpStream::connect(addr).await.expect("connect");
                        let index = (i as u16).to_le_bytes();
                        let (written, _) = client.write_all(index.to_vec()).await;
                        written.expect("client write_all");
                        (client.local_addr().expect("client local_addr"), i, client)
                    })
                })
                .collect();

            let mut incoming = listener.incoming();
            let mut seen = HashMap::new();
            for n in 0..CLIENTS {
                let stream = time::timeout(WAIT_LIMIT, incoming.next())
                    .await
                    .unwrap_or_else(|_| panic!("only {n} of {CLIENTS} connections accepted"))
                    .expect("incoming");
                assert_eq!(stream.local_addr().expect("local_addr"), addr, "server side");
                let peer = stream.peer_addr().expect("peer_addr");
                let (read, index) =
                    time::timeout(WAIT_LIMIT, stream.read_exact(Vec::with_capacity(2)))
                        .await
                        .expect("the client's index did not arrive");
                read.expect("read the client's index");
                let index = usize::from(u16::from_le_bytes([index[0], index[1]]));
                assert!(seen.insert(peer, index).is_none(), "{peer} accepted twice");
            }
            for client in clients {
                let (local, i, _client) = client.await.expect("client task");
                assert_eq!(seen.get(&local), Some(&i), "client {i} at {local}");
            }
            assert_eq!(seen.len(), CLIENTS, "connections accepted");
        });
    }

    /// 1 000 `Incoming` streams, each polled once then dropped, with a client connecting
    /// before every 10th is created and another connecting (then a few loop turns) before every
    /// 10th is dropped. Once the op table settles, every client's connection was either closed
    /// by the server (taken and dropped, or accepted for a dropped stream and closed) or is
    /// still waiting to be accepted — a fresh `Incoming` takes exactly those, and nothing else
    /// comes. Afterwards exactly the fds open before are open.
    fn dropped_incoming_streams_leak_nothing(backend: Backend) {
        const STREAMS: usize = 1000;
        let fx = fixture(backend, "dropped_incoming_streams_leak_nothing");
        fx.rt.block_on(async {
            settle_inflight(0).await;
            let before = open_fds();
            let (listener, addr) = listen();
            let mut clients = Vec::new();
            let mut taken = 0;
            for i in 0..STREAMS {
                if i % 10 == 0 {
                    // A loopback connect completes from the backlog: blocking here is brief.
                    clients.push(std::net::TcpStream::connect(addr).expect("std connect"));
                }
                let mut incoming = listener.incoming();
                if let Some(accepted) = poll_once(incoming.next()).await {
                    drop(accepted.expect("incoming"));
                    taken += 1;
                    continue;
                }
                if i % 10 == 5 {
                    clients.push(std::net::TcpStream::connect(addr).expect("std connect"));
                    yield_turns(3).await;
                }
                drop(incoming);
            }
            settle_inflight(0).await;

            let waiting: HashSet<SocketAddr> = clients
                .iter()
                .filter(|c| !peer_has_closed(c))
                .map(|c| c.local_addr().expect("client local_addr"))
                .collect();
            eprintln!(
                "{backend:?}: {} clients; {taken} taken at the first poll, {} closed for \
                 dropped streams, {} still waiting",
                clients.len(),
                clients.len() - taken - waiting.len(),
                waiting.len(),
            );
            let closed_for_dropped = clients.len() - taken - waiting.len();
            assert!(
                closed_for_dropped > 0,
                "no connection raced a dropped stream: the test did not exercise the race"
            );
            let mut incoming = listener.incoming();
            for n in 0..waiting.len() {
                let stream = time::timeout(WAIT_LIMIT, incoming.next())
                    .await
                    .unwrap_or_else(|_| panic!("{n} of {} waiting clients accepted", waiting.len()))
                    .expect("incoming");
                let peer = stream.peer_addr().expect("peer_addr");
                assert!(waiting.contains(&peer), "accepted {peer}, which was not waiting");
            }
            yield_turns(20).await;
            assert!(
                poll_once(incoming.next()).await.is_none(),
                "a connection beyond the waiting clients"
            );
            drop(incoming);
            assert_all_closed(&clients, "after the fresh Incoming").await;

            drop((clients, listener));
            settle_inflight(0).await;
            assert_fd_count_returns_to(before, "after 1 000 dropped Incoming streams").await;
        });
    }

    /// An `Incoming` dropped after the kernel accepted 5 connections for it (the listener's
    /// accept queue is empty) but before any was taken closes all 5: each client sees EOF or a
    /// reset, and the fd count returns to what it was.
    fn dropped_incoming_closes_untaken_connections(backend: Backend) {
        const CLIENTS: usize = 5;
        let fx = fixture(backend, "dropped_incoming_closes_untaken_connections");
        fx.rt.block_on(async {
            settle_inflight(0).await;
            let before = open_fds();
            let (listener, addr) = listen();
            let mut incoming = listener.incoming();
            assert!(poll_once(incoming.next()).await.is_none(), "a connection before any client");
            yield_turns(10).await;
            let clients: Vec<_> = (0..CLIENTS)
                .map(|_| std::net::TcpStream::connect(addr).expect("std connect"))
                .collect();
            support::yield_until_deadline("the kernel accepted every connection", || {
                accept_queue_len(&listener) == 0
            })
            .await;
            yield_turns(10).await;
            assert!(
                clients.iter().all(|c| !peer_has_closed(c)),
                "a connection closed before the stream was dropped"
            );
            drop(incoming);
            settle_inflight(0).await;
            assert_all_closed(&clients, "after the drop").await;
            assert_eq!(accept_queue_len(&listener), 0, "connections back in the queue");

            drop((clients, listener));
            assert_fd_count_returns_to(before, "after dropping an Incoming").await;
        });
    }

    /// A runtime dropped while a task's `Incoming` holds connections the kernel accepted for
    /// it (untaken) closes them: the clients see EOF or a reset, and once the runtime is gone
    /// exactly the fds open before it are open.
    fn runtime_shutdown_closes_untaken_connections(backend: Backend) {
        const CLIENTS: usize = 5;
        let _serial = support::serial();
        let _watchdog = support::watchdog(
            TEST_LIMIT,
            &format!("runtime_shutdown_closes_untaken_connections on {backend:?}"),
        );
        let before = open_fds();
        let rt = support::runtime(backend);
        let clients = rt.block_on(async {
            let (listener, addr) = listen();
            let accepting = ringloop::spawn(async move {
                let mut incoming = listener.incoming();
                let first = poll_once(incoming.next()).await;
                assert!(first.is_none(), "a connection before any client");
                // Never polled again: what the kernel accepts waits untaken in the stream.
                std::future::pending::<()>().await;
                drop(incoming);
            });
            yield_turns(10).await;
            let clients: Vec<_> = (0..CLIENTS)
                .map(|_| std::net::TcpStream::connect(addr).expect("std connect"))
                .collect();
            // Each accepted connection is one more open fd in this process.
            let with_clients = open_fds();
            support::yield_until_deadline("the kernel accepted every connection", || {
                open_fds() == with_clients + CLIENTS
            })
            .await;
            assert!(!accepting.is_finished(), "the accepting task ended");
            clients
        });
        drop(rt);
        for (i, client) in clients.iter().enumerate() {
            client.set_read_timeout(Some(WAIT_LIMIT)).expect("set_read_timeout");
            let mut byte = [0u8; 1];
            match (&*client).read(&mut byte) {
                Ok(0) => {}
                Ok(_) => panic!("client {i}: the server never writes, yet data arrived"),
                Err(err) => assert!(
                    matches!(err.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
                    "client {i}: want EOF or a reset after the runtime's shutdown, got {err}"
                ),
            }
        }
        drop(clients);
        let after = open_fds();
        assert_eq!(
            after,
            before,
            "fds open before the runtime: {before}, after: {after}:\n{}",
            describe_open_fds().join("\n")
        );
    }

    /// `incoming()` after an `accept()` that timed out (which the listener adopts) still
    /// delivers the connections that follow, whether a client connects before `incoming()` is
    /// first polled or while it waits: a connection is never stranded in an adopted accept
    /// that only `accept()` would collect.
    fn incoming_after_a_timed_out_accept_gets_the_connections(backend: Backend) {
        let fx = fixture(backend, "incoming_after_a_timed_out_accept_gets_the_connections");
        fx.rt.block_on(async {
            let (listener, addr) = listen();
            // Nobody connects: the accept times out (a timer, not synchronisation: the
            // elapsed timeout is the case under test) and the listener adopts it.
            let idle = time::timeout(Duration::from_millis(5), listener.accept()).await;
            assert!(idle.is_err(), "an accept with no client finished");
            yield_turns(10).await;

            let mut incoming = listener.incoming();
            let cases = [
                (false, "before incoming() is polled"),
                (true, "while incoming() waits"),
            ];
            for (armed_first, when) in cases {
                if armed_first {
                    let waiting = poll_once(incoming.next()).await;
                    assert!(waiting.is_none(), "a connection before the client connected");
                    yield_turns(10).await;
                }
                let client = std::net::TcpStream::connect(addr).expect("std connect");
                let stream = time::timeout(WAIT_LIMIT, incoming.next())
                    .await
                    .unwrap_or_else(|_| panic!("no connection from a client connecting {when}"))
                    .expect("incoming");
                assert_eq!(
                    stream.peer_addr().expect("peer_addr"),
                    client.local_addr().expect("client local_addr"),
                    "the client connecting {when}"
                );
            }
        });
    }

    /// With the fd table full (RLIMIT_NOFILE lowered, then filled with dups), `Incoming` yields
    /// `EMFILE` for a waiting connection (the accept queue keeps it); once fds are closed, the
    /// next call re-arms and accepts that very connection. Runs in a child process: the limit
    /// is process-wide.
    fn emfile_is_yielded_then_next_rearms(backend: Backend) {
        let Some(role) = support::child_role() else {
            // Command::output opens pipes: hold the fd lock while the child runs.
            let _serial = support::serial();
            let name = format!("emfile_is_yielded_then_next_rearms::{}", variant_name(backend));
            let output = support::run_child(&name, &[(support::CHILD_ENV, EMFILE_ROLE)]);
            support::assert_child_passed(&name, &output);
            return;
        };
        assert_eq!(role, EMFILE_ROLE, "unexpected child role");
        let fx = fixture(backend, "emfile_is_yielded_then_next_rearms");
        fx.rt.block_on(async {
            let (listener, addr) = listen();
            // Created now: connecting needs no new fd.
            let client = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("client socket");

            let fillers = fill_fd_table();
            assert!(!fillers.is_empty(), "no fd was free below the lowered limit");
            client.connect(&addr.into()).expect("connect with a full fd table");
            let client_addr = client
                .local_addr()
                .expect("client local_addr")
                .as_socket()
                .expect("an inet address");
            // Armed only now: io_uring reads RLIMIT_NOFILE when it prepares an accept, so an
            // accept armed before the limit was lowered would not see it.
            let mut incoming = listener.incoming();
            // No timeout here: a timer may need an fd. The watchdog bounds the wait.
            match incoming.next().await {
                Err(err) => assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}"),
                Ok(stream) => panic!(
                    "accepted {:?} with a full fd table",
                    stream.peer_addr().map_err(|e| e.to_string())
                ),
            }
            assert_eq!(accept_queue_len(&listener), 1, "the connection stays queued");

            drop(fillers);
            let stream = incoming.next().await.expect("accept after fds were closed");
            assert_eq!(stream.peer_addr().expect("peer_addr"), client_addr, "the same client");
        });
    }
}

/// Lowers RLIMIT_NOFILE to a few above the highest open fd and dups fds until `EMFILE`;
/// returns the dups (closing them frees the table again).
fn fill_fd_table() -> Vec<OwnedFd> {
    let highest = std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .expect("some fd is open");
    let limit = libc::rlimit {
        rlim_cur: highest + 8,
        rlim_max: libc::RLIM_INFINITY,
    };
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `current` is a writable rlimit for getrlimit(2).
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut current) };
    assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
    let limit = libc::rlimit {
        rlim_max: current.rlim_max,
        ..limit
    };
    // SAFETY: `limit` is a valid rlimit for setrlimit(2) to read.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(
        rc,
        0,
        "setrlimit(NOFILE): {}",
        std::io::Error::last_os_error()
    );

    let stdin = std::io::stdin();
    let mut fillers = Vec::new();
    loop {
        use std::os::fd::AsFd as _;
        match stdin.as_fd().try_clone_to_owned() {
            Ok(fd) => fillers.push(fd),
            Err(err) if err.raw_os_error() == Some(libc::EMFILE) => return fillers,
            Err(err) => panic!("dup: {err}"),
        }
    }
}
