//! TCP on both backends: echo round trips and addresses, many concurrent connections, refused
//! connects, half-close, writes to a closed or reset peer (an error, never SIGPIPE), `read_exact`
//! at an early EOF, a large write through a tiny send buffer, cancelled accepts that leak no fd,
//! read timeouts that lose no data, and `connect_timeout`.
//!
//! Every test opens sockets and one counts open fds, so every test holds `support::serial()` and
//! builds its runtime only after taking it (see [`Fixture`]).

mod support;

use std::cell::RefCell;
use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::os::unix::process::ExitStatusExt as _;
use std::rc::Rc;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use futures_lite::future::poll_once;
use ringloop::net::{TcpListener, TcpStream};
use ringloop::{Backend, Handle, Runtime, time, yield_now};
use support::{Watchdog, describe_open_fds, open_fds, settle_inflight, yield_turns};

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(30);
/// How long a read that must succeed may wait before the test fails (instead of hanging until
/// the watchdog takes the whole test binary down).
const READ_LIMIT: Duration = Duration::from_secs(5);
/// The child role of `write_after_peer_closed_is_an_error_not_sigpipe`: SIGPIPE at its default
/// action (terminate), which the Rust runtime otherwise sets to "ignore" for every test.
const SIGPIPE_DEFAULT_ROLE: &str = "sigpipe-default";

/// The fd-counting lock, a watchdog and a runtime on one backend. Fields drop in declaration
/// order: the runtime first (under the watchdog), the lock last.
struct Fixture {
    rt: Runtime,
    _watchdog: Watchdog,
    _serial: MutexGuard<'static, ()>,
}

/// Takes the fd lock, arms a [`TEST_LIMIT`] watchdog naming `what`, then builds the runtime.
fn fixture(backend: Backend, what: &str) -> Fixture {
    let serial = support::serial();
    let watchdog = support::watchdog(TEST_LIMIT, &format!("{what} on {backend:?}"));
    Fixture {
        rt: support::runtime(backend),
        _watchdog: watchdog,
        _serial: serial,
    }
}

/// `127.0.0.1:0`: loopback, any free port.
fn any_loopback_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// `len` bytes of a pattern that does not repeat every power of two: byte `i` is `i * 31 % 251`.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Asserts that `err` is what writing to (or reading from) a closed or reset peer gives.
fn assert_peer_gone(what: &str, err: &io::Error) {
    assert!(
        matches!(
            err.kind(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
        ),
        "{what}: want BrokenPipe or ConnectionReset, got {:?}: {err}",
        err.kind()
    );
}

/// A listener on a free loopback port, and its address.
fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind(any_loopback_port()).expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("listener local_addr");
    (listener, addr)
}

/// A connected `(client, server)` pair on loopback. The connect completes from the listen
/// backlog, so no accept needs to be pending for it.
async fn connected_pair() -> (TcpStream, TcpStream) {
    let (listener, addr) = listen();
    let client = TcpStream::connect(addr).await.expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    (client, server)
}

/// Reads until EOF in reads of at most `chunk` bytes; returns everything read.
async fn read_to_end(stream: &TcpStream, chunk: usize) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    loop {
        let (n, buf) = stream.read(Vec::with_capacity(chunk)).await;
        if n? == 0 {
            return Ok(all);
        }
        all.extend_from_slice(&buf);
    }
}

/// Writes back everything it reads until EOF; returns the bytes echoed.
async fn echo(stream: &TcpStream) -> io::Result<Vec<u8>> {
    let mut echoed = Vec::new();
    loop {
        let (n, buf) = stream.read(Vec::with_capacity(16 * 1024)).await;
        if n? == 0 {
            return Ok(echoed);
        }
        echoed.extend_from_slice(&buf);
        let (written, _) = stream.write_all(buf).await;
        written?;
    }
}

/// `read_exact` of `len` bytes that fails the test after [`READ_LIMIT`] instead of hanging.
async fn read_exactly(stream: &TcpStream, len: usize, what: &str) -> Vec<u8> {
    match time::timeout(READ_LIMIT, stream.read_exact(Vec::with_capacity(len))).await {
        Ok((Ok(()), buf)) => buf,
        Ok((Err(err), buf)) => panic!("{what}: read_exact failed after {} bytes: {err}", buf.len()),
        Err(_) => panic!("{what}: no {len} bytes arrived within {READ_LIMIT:?}"),
    }
}

/// The libtest name `both_backends!` gives the `backend` variant of a test.
fn variant_name(backend: Backend) -> &'static str {
    match backend {
        Backend::IoUring => "io_uring",
        Backend::Epoll => "epoll",
        Backend::Auto => panic!("both_backends! never runs a test on Backend::Auto"),
    }
}

/// A message of a length that differs per client, naming the client.
fn numbered_message(i: usize) -> Vec<u8> {
    format!("client {i:03} says {}\n", "x".repeat(i)).into_bytes()
}

both_backends! {
    /// Messages of 1 byte to 64 KiB written with `write_all` come back byte for byte through an
    /// echo server, and the two ends agree on addresses: the client's `local_addr` is the address
    /// `accept` returned and the server's `peer_addr`; the client's `peer_addr` is the server's
    /// `local_addr` and the listener's address.
    fn echo_round_trip_and_addresses(backend: Backend) {
        let fx = fixture(backend, "echo_round_trip_and_addresses");
        fx.rt.block_on(async {
            let (listener, addr) = listen();
            let server = ringloop::spawn(async move {
                let (stream, accepted_from) = listener.accept().await.expect("accept");
                let peer = stream.peer_addr().expect("server peer_addr");
                let local = stream.local_addr().expect("server local_addr");
                let echoed = echo(&stream).await.expect("server echo");
                (accepted_from, peer, local, echoed.len())
            });

            let client = TcpStream::connect(addr).await.expect("connect");
            let messages = [
                b"x".to_vec(),
                b"hello, ring".to_vec(),
                pattern(64 * 1024),
                pattern(1000),
            ];
            for msg in &messages {
                let (written, sent) = client.write_all(msg.clone()).await;
                written.expect("client write_all");
                support::assert_bytes_eq("buffer given back by write_all", &sent, msg);
                let back = read_exactly(&client, msg.len(), "echo").await;
                support::assert_bytes_eq("echoed message", &back, msg);
            }
            let client_local = client.local_addr().expect("client local_addr");
            let client_peer = client.peer_addr().expect("client peer_addr");
            // EOF ends the server's echo loop.
            drop(client);

            let (accepted_from, server_peer, server_local, echoed) =
                server.await.expect("server task");
            let total: usize = messages.iter().map(Vec::len).sum();
            assert_eq!(echoed, total, "bytes the server echoed");
            assert_eq!(accepted_from, client_local, "accept's address vs client local_addr");
            assert_eq!(server_peer, client_local, "server peer_addr vs client local_addr");
            assert_eq!(server_local, client_peer, "server local_addr vs client peer_addr");
            assert_eq!(client_peer, addr, "client peer_addr vs listener local_addr");
        });
    }

    /// 100 clients connect at once (one task each), each sends its numbered message and reads
    /// it back; every client finishes exactly once and the server sees each message exactly once.
    fn hundred_concurrent_connections(backend: Backend) {
        const CLIENTS: usize = 100;
        let fx = fixture(backend, "hundred_concurrent_connections");
        fx.rt.block_on(async {
            let (listener, addr) = listen();
            let received = Rc::new(RefCell::new(Vec::new()));
            let server = {
                let received = Rc::clone(&received);
                ringloop::spawn(async move {
                    let mut handlers = Vec::with_capacity(CLIENTS);
                    for _ in 0..CLIENTS {
                        let (stream, _) = listener.accept().await.expect("accept");
                        let received = Rc::clone(&received);
                        handlers.push(ringloop::spawn(async move {
                            let seen = echo(&stream).await.expect("server echo");
                            received.borrow_mut().push(seen);
                        }));
                    }
                    for handler in handlers {
                        handler.await.expect("connection handler task");
                    }
                })
            };

            let clients: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    ringloop::spawn(async move {
                        let msg = numbered_message(i);
                        let client = TcpStream::connect(addr)
                            .await
                            .unwrap_or_else(|e| panic!("client {i}: connect: {e}"));
                        let (written, _) = client.write_all(msg.clone()).await;
                        written.unwrap_or_else(|e| panic!("client {i}: write_all: {e}"));
                        let back = read_exactly(&client, msg.len(), "echo").await;
                        support::assert_bytes_eq(&format!("client {i}: echo"), &back, &msg);
                        client.shutdown(Shutdown::Write).expect("shutdown(Write)");
                        let (n, _) = client.read(Vec::with_capacity(16)).await;
                        assert_eq!(n.expect("read after the server closed"), 0, "client {i}: EOF");
                        i
                    })
                })
                .collect();
            let mut finished = Vec::with_capacity(CLIENTS);
            for client in clients {
                finished.push(client.await.expect("client task"));
            }
            server.await.expect("server task");

            finished.sort_unstable();
            assert_eq!(finished, (0..CLIENTS).collect::<Vec<_>>(), "clients finished");
            let mut seen = received.borrow().clone();
            seen.sort();
            let mut sent: Vec<_> = (0..CLIENTS).map(numbered_message).collect();
            sent.sort();
            assert_eq!(seen.len(), CLIENTS, "connections the server handled");
            assert!(seen == sent, "the server saw each client's message exactly once");
        });
    }

    /// Connecting to a port nobody listens on fails with `ConnectionRefused`, and the error's
    /// message names the address.
    fn connect_refused_names_the_address(backend: Backend) {
        let fx = fixture(backend, "connect_refused_names_the_address");
        fx.rt.block_on(async {
            // A port that was free a moment ago and has no listener now.
            let addr = {
                let std_listener =
                    std::net::TcpListener::bind(any_loopback_port()).expect("std bind");
                std_listener.local_addr().expect("std local_addr")
            };
            let err = match TcpStream::connect(addr).await {
                Ok(_) => panic!("connect to {addr}, where nobody listens, succeeded"),
                Err(err) => err,
            };
            assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
            let message = err.to_string();
            assert!(
                message.contains(&addr.to_string()),
                "the message {message:?} should name {addr}"
            );
        });
    }

    /// After the client's `shutdown(Write)` the server reads the data then EOF, and a second read
    /// is EOF again (not an error); the server can still write and the client reads it all.
    fn half_close_keeps_the_other_direction(backend: Backend) {
        let fx = fixture(backend, "half_close_keeps_the_other_direction");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let (written, _) = client.write_all(b"request".as_slice()).await;
            written.expect("client write_all");
            client.shutdown(Shutdown::Write).expect("client shutdown(Write)");

            // Small reads, so EOF comes after several data reads.
            let request = read_to_end(&server, 3).await.expect("server reads to EOF");
            support::assert_bytes_eq("request", &request, b"request");
            let (n, buf) = server.read(Vec::with_capacity(16)).await;
            assert_eq!(n.expect("a second read after EOF is EOF again, not an error"), 0);
            assert!(buf.is_empty(), "EOF fills nothing");

            let (written, _) = server.write_all(b"response".as_slice()).await;
            written.expect("the server can still write after the client's half-close");
            server.shutdown(Shutdown::Write).expect("server shutdown(Write)");
            let response = read_to_end(&client, 64).await.expect("client reads to EOF");
            support::assert_bytes_eq("response", &response, b"response");
        });
    }

    /// Writing to a peer that has closed its socket fails with `BrokenPipe` or `ConnectionReset`
    /// and never raises SIGPIPE. Runs in a child process with SIGPIPE at its default action
    /// (terminate) — Rust ignores SIGPIPE in every test process, which would hide a missing
    /// `MSG_NOSIGNAL` — so the child passing proves no SIGPIPE was raised.
    fn write_after_peer_closed_is_an_error_not_sigpipe(backend: Backend) {
        let Some(role) = support::child_role() else {
            // Command::output opens pipes: hold the fd lock while the child runs.
            let _serial = support::serial();
            let name = format!(
                "write_after_peer_closed_is_an_error_not_sigpipe::{}",
                variant_name(backend)
            );
            let output = support::run_child(&name, &[(support::CHILD_ENV, SIGPIPE_DEFAULT_ROLE)]);
            assert_ne!(
                output.status.signal(),
                Some(libc::SIGPIPE),
                "the child was killed by SIGPIPE writing to a closed peer\n{}",
                support::child_output_text(&output)
            );
            support::assert_child_passed(&name, &output);
            return;
        };
        assert_eq!(role, SIGPIPE_DEFAULT_ROLE, "unexpected child role");
        // SAFETY: installing SIG_DFL registers no handler code; this child process runs this one
        // test, so no other code depends on SIGPIPE being ignored.
        let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        assert_ne!(previous, libc::SIG_ERR, "signal(SIGPIPE, SIG_DFL) failed");

        let fx = fixture(backend, "write_after_peer_closed_is_an_error_not_sigpipe");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            drop(server);
            // Once the client has read the server's FIN, the close has reached the kernel.
            let (n, _) = client.read(Vec::with_capacity(16)).await;
            assert_eq!(n.expect("read from a closed peer"), 0, "EOF from the closed peer");

            let chunk = pattern(64 * 1024);
            let mut failure = None;
            for attempt in 0..100 {
                let (written, _) = client.write(chunk.clone()).await;
                if let Err(err) = written {
                    failure = Some((attempt, err));
                    break;
                }
            }
            let (attempt, err) =
                failure.expect("100 writes of 64 KiB to a closed peer all succeeded");
            assert_peer_gone(&format!("write {attempt} to a closed peer"), &err);
        });
    }

    /// `read_exact` into a 100-byte buffer when the peer sends 10 bytes and closes fails with
    /// `UnexpectedEof`, and the buffer it gives back holds exactly those 10 bytes.
    fn read_exact_at_early_eof_keeps_the_partial_bytes(backend: Backend) {
        let fx = fixture(backend, "read_exact_at_early_eof_keeps_the_partial_bytes");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let (written, _) = server.write_all(b"ten bytes!".as_slice()).await;
            written.expect("server write_all");
            drop(server);

            let read = time::timeout(READ_LIMIT, client.read_exact(Vec::with_capacity(100))).await;
            let (result, buf) = read.expect("read_exact did not see the EOF");
            let err = result.expect_err("read_exact of 100 bytes from a 10-byte stream");
            assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
            support::assert_bytes_eq("partial bytes given back", &buf, b"ten bytes!");
        });
    }

    /// `write_all` of 1 MiB through a 4 KiB send buffer, to a server reading 7 KiB at a time
    /// and yielding between reads, delivers exactly the 1 MiB pattern, in order.
    fn one_mib_write_all_through_a_tiny_send_buffer(backend: Backend) {
        const TOTAL: usize = 1 << 20;
        const CHUNK: usize = 7 * 1024;
        let fx = fixture(backend, "one_mib_write_all_through_a_tiny_send_buffer");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            client.set_send_buffer_size(4096).expect("set_send_buffer_size");
            let reader = ringloop::spawn(async move {
                let mut received = Vec::with_capacity(TOTAL);
                // Bounded: every read but the last (EOF) returns at least one byte.
                for _ in 0..=TOTAL {
                    let (n, buf) = server.read(Vec::with_capacity(CHUNK)).await;
                    if n.expect("server read") == 0 {
                        break;
                    }
                    received.extend_from_slice(&buf);
                    yield_turns(2).await;
                }
                received
            });

            let (written, sent) = client.write_all(pattern(TOTAL)).await;
            written.expect("write_all of 1 MiB through a 4 KiB send buffer");
            assert_eq!(sent.len(), TOTAL, "write_all gives the whole buffer back");
            client.shutdown(Shutdown::Write).expect("shutdown(Write)");
            let received = reader.await.expect("reader task");
            support::assert_bytes_eq("bytes received", &received, &pattern(TOTAL));
        });
    }

    /// 1 000 accepts polled once and dropped, with a client connecting just before every 5th
    /// drop (half of those after a loop wait, so the accept completes in the kernel before the
    /// drop): the listener keeps at most the one adopted accept in flight, no connection is
    /// closed on the client's back, once the clients and the listener are dropped exactly the
    /// fds open before are open, and the listener still accepts after all the cancellations.
    fn cancelled_accepts_leak_no_fd(backend: Backend) {
        const ACCEPTS: usize = 1000;
        let fx = fixture(backend, "cancelled_accepts_leak_no_fd");
        fx.rt.block_on(async {
            settle_inflight(0).await;
            let before = open_fds();
            let (listener, addr) = listen();
            let mut clients = Vec::new();
            let mut ready_at_once = 0;
            for i in 0..ACCEPTS {
                let mut accept = Box::pin(listener.accept());
                if let Some(accepted) = poll_once(&mut accept).await {
                    // A connection left in the backlog by an earlier iteration.
                    drop(accepted.expect("accept"));
                    ready_at_once += 1;
                    continue;
                }
                if i % 10 == 0 || i % 10 == 5 {
                    // A loopback connect completes from the backlog: blocking here is brief.
                    let client = std::net::TcpStream::connect(addr).expect("std connect");
                    clients.push(client);
                }
                if i % 10 == 5 {
                    // Not synchronisation (no event shows an accept completing for nobody): a
                    // timer makes the loop really wait on the kernel, so the accept completes
                    // before the drop on both backends, and its fd is the orphan's to close.
                    time::sleep(Duration::from_millis(1)).await;
                }
                drop(accept);
            }
            // A dropped accept the kernel owned is adopted by the listener: at most one op.
            support::yield_turns(10).await;
            assert!(
                Handle::current().inflight_ops() <= 1,
                "only the listener's adopted accept stays in flight"
            );

            // An adopted accept hands its connection to the next accept, so the only closed
            // connections are the ones this test accepted and dropped itself.
            let closed_by_server = clients.iter().filter(|c| peer_has_closed(c)).count();
            eprintln!(
                "{backend:?}: {} clients; {ready_at_once} accepts were ready at the first poll",
                clients.len()
            );
            assert_eq!(
                closed_by_server, ready_at_once,
                "a connection was closed by a dropped accept instead of reaching the next one"
            );

            // The listener survives the cancellations.
            let late = TcpStream::connect(addr).await.expect("connect after the cancellations");
            let mut accepted = None;
            // Bounded: each accept takes one connection out of the finite backlog.
            for _ in 0..=clients.len() {
                let (stream, peer) = time::timeout(READ_LIMIT, listener.accept())
                    .await
                    .expect("the listener accepts after 1 000 cancelled accepts")
                    .expect("accept");
                if peer == late.local_addr().expect("local_addr") {
                    accepted = Some(stream);
                    break;
                }
            }
            assert!(accepted.is_some(), "the late client was accepted");

            drop((late, accepted, clients, listener));
            settle_inflight(0).await;
            assert_fd_count_returns_to(before, "after 1 000 cancelled accepts").await;
        });
    }

    /// A `write_all` in flight (16 MiB into a peer that stopped reading) when the peer resets the
    /// connection (linger 0, then close) fails with `ConnectionReset` or `BrokenPipe`; the next
    /// write fails the same way, and a read gives EOF or such an error — never data, never a
    /// panic.
    fn peer_reset_fails_a_write_in_flight(backend: Backend) {
        let fx = fixture(backend, "peer_reset_fails_a_write_in_flight");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            client.set_send_buffer_size(4096).expect("set_send_buffer_size");
            let client = Rc::new(client);
            let writer = {
                let client = Rc::clone(&client);
                ringloop::spawn(async move { client.write_all(pattern(16 << 20)).await.0 })
            };
            // The first bytes arriving show the write is under way; the server then stops
            // reading, so 16 MiB cannot fit in the loopback buffers and the write parks.
            let (n, _) = server.read(Vec::with_capacity(1024)).await;
            assert!(n.expect("server read") > 0, "the write started");
            yield_turns(20).await;
            assert!(!writer.is_finished(), "16 MiB went through a peer that stopped reading");

            server.set_linger(Some(Duration::ZERO)).expect("set_linger(0)");
            drop(server);
            let err = time::timeout(READ_LIMIT, writer)
                .await
                .expect("the write in flight did not end after the peer's reset")
                .expect("writer task")
                .expect_err("write_all to a reset peer");
            assert_peer_gone("write_all in flight during the reset", &err);

            let (written, _) = client.write(b"more".as_slice()).await;
            let err = written.expect_err("write after the reset");
            assert_peer_gone("write after the reset", &err);
            let (read, buf) = client.read(Vec::with_capacity(64)).await;
            match read {
                Ok(n) => assert_eq!(n, 0, "read after the reset gave data: {buf:?}"),
                Err(err) => assert_peer_gone("read after the reset", &err),
            }
        });
    }

    /// A read pending on an idle connection when the peer resets it (linger 0, then close)
    /// fails with `ConnectionReset` (or `BrokenPipe`), not a hang or a panic.
    fn peer_reset_fails_a_pending_read(backend: Backend) {
        let fx = fixture(backend, "peer_reset_fails_a_pending_read");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let reader = ringloop::spawn(async move {
                let (read, buf) = client.read(Vec::with_capacity(64)).await;
                (read, buf.len())
            });
            yield_turns(10).await;
            assert!(!reader.is_finished(), "a read on an idle connection pends");

            server.set_linger(Some(Duration::ZERO)).expect("set_linger(0)");
            drop(server);
            let (read, len) = time::timeout(READ_LIMIT, reader)
                .await
                .expect("the pending read did not end after the peer's reset")
                .expect("reader task");
            match read {
                Ok(n) => panic!("a read pending during a reset returned Ok({n}) ({len} bytes)"),
                Err(err) => assert_peer_gone("read pending during the reset", &err),
            }
        });
    }

    /// `time::timeout` around a read on an idle connection gives `Elapsed`; bytes the peer
    /// writes right afterwards all arrive in a new read (none went to the cancelled read).
    fn read_timeout_loses_no_data(backend: Backend) {
        let fx = fixture(backend, "read_timeout_loses_no_data");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let timed_out =
                time::timeout(Duration::from_millis(50), client.read(Vec::with_capacity(64))).await;
            if let Ok((read, buf)) = timed_out {
                panic!("a read on an idle connection finished: {read:?}, {buf:?}");
            }

            let msg = b"written after the timeout";
            let (written, _) = server.write_all(msg.as_slice()).await;
            written.expect("server write_all");
            let got = read_exactly(&client, msg.len(), "the read after a timed-out read").await;
            support::assert_bytes_eq("bytes after the timeout", &got, msg);
        });
    }

    /// A read whose timeout has already passed when it is first polled (zero duration), with the
    /// peer's bytes already waiting in the socket: either the read returns them, or `Elapsed`
    /// and they all reach the next read. (On io_uring the read's SQE may still be queued, not yet
    /// submitted, when the timeout drops it.)
    fn read_timed_out_at_its_first_poll_loses_no_data(backend: Backend) {
        let fx = fixture(backend, "read_timed_out_at_its_first_poll_loses_no_data");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let msg = b"already waiting";
            let (written, _) = server.write_all(msg.as_slice()).await;
            written.expect("server write_all");
            support::yield_until_deadline("the bytes wait in the client's socket", || {
                bytes_waiting(&client) == msg.len()
            })
            .await;

            let mut got = Vec::new();
            match time::timeout(Duration::ZERO, client.read(Vec::with_capacity(64))).await {
                Ok((read, buf)) => {
                    read.expect("client read");
                    got.extend_from_slice(&buf);
                }
                Err(_elapsed) => {}
            }
            if got.len() < msg.len() {
                let rest = read_exactly(&client, msg.len() - got.len(), "the read after").await;
                got.extend_from_slice(&rest);
            }
            support::assert_bytes_eq("bytes after a read timed out at its first poll", &got, msg);
        });
    }

    /// 200 rounds of: a read timed out after 1 ms, then the peer writes at once, then a new read.
    /// Every round's bytes arrive in full and in order: a cancelled read never swallows data,
    /// even when the data lands while its cancellation is still on the way to the kernel.
    fn repeated_read_timeouts_lose_no_data(backend: Backend) {
        const ROUNDS: usize = 200;
        let fx = fixture(backend, "repeated_read_timeouts_lose_no_data");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            for round in 0..ROUNDS {
                let timed_out =
                    time::timeout(Duration::from_millis(1), client.read(Vec::with_capacity(64)))
                        .await;
                if let Ok((read, buf)) = timed_out {
                    panic!("round {round}: an idle read finished: {read:?}, {buf:?}");
                }
                let msg = format!("round {round:03}").into_bytes();
                let (written, _) = server.write_all(msg.clone()).await;
                written.expect("server write_all");
                let got = read_exactly(&client, msg.len(), &format!("round {round}")).await;
                support::assert_bytes_eq(&format!("round {round}"), &got, &msg);
            }
        });
    }

    /// Reads cut short by timeouts of 50–450 µs while a peer thread writes 2 000 numbered
    /// 8-byte messages about every 200 µs (3 ms every 50th): the bytes read add up to exactly what was sent, in
    /// order. Data that arrives while a timed-out read's cancellation is on its way to the kernel
    /// must reach a later read, not vanish with the cancelled one.
    fn read_timeouts_racing_a_writer_lose_no_data(backend: Backend) {
        const MESSAGES: usize = 2000;
        let fx = fixture(backend, "read_timeouts_racing_a_writer_lose_no_data");
        let std_listener = std::net::TcpListener::bind(any_loopback_port()).expect("std bind");
        let addr = std_listener.local_addr().expect("std local_addr");
        let sent: Vec<u8> = (0..MESSAGES).flat_map(|i| format!("{i:07}\n").into_bytes()).collect();
        let writer = {
            let sent = sent.clone();
            std::thread::spawn(move || {
                use std::io::Write as _;
                let (mut peer, _) = std_listener.accept().expect("std accept");
                for (i, msg) in sent.chunks(8).enumerate() {
                    peer.write_all(msg).expect("peer write");
                    // Pacing, not synchronisation: spread the bytes over many read timeouts,
                    // with a longer gap now and then that even millisecond timers see.
                    let gap = if i % 50 == 49 { 3_000 } else { 200 };
                    std::thread::sleep(Duration::from_micros(gap));
                }
                // Dropping `peer` closes it: the reader's EOF.
            })
        };
        let (received, timeouts) = fx.rt.block_on(async {
            let client = TcpStream::connect(addr).await.expect("connect");
            let mut received = Vec::with_capacity(sent.len());
            let mut timeouts = 0usize;
            // Bounded: each round either times out or reads; the peer's close ends it.
            for round in 0..1_000_000usize {
                let limit = Duration::from_micros(50 + (round * 37 % 400) as u64);
                match time::timeout(limit, client.read(Vec::with_capacity(64))).await {
                    Err(_) => timeouts += 1,
                    Ok((read, buf)) => {
                        if read.expect("client read") == 0 {
                            break;
                        }
                        received.extend_from_slice(&buf);
                    }
                }
            }
            (received, timeouts)
        });
        writer.join().expect("writer thread");
        eprintln!("{backend:?}: {timeouts} reads timed out");
        assert!(timeouts > 0, "no read timed out: the test raced nothing");
        support::assert_bytes_eq("bytes read around the timeouts", &received, &sent);
    }

    /// `connect_timeout` to a live listener succeeds long before its deadline, and a deadline
    /// that passes after the connect leaves the connection working and no op behind.
    fn connect_timeout_to_a_live_listener_succeeds(backend: Backend) {
        let fx = fixture(backend, "connect_timeout_to_a_live_listener_succeeds");
        fx.rt.block_on(async {
            let (listener, addr) = listen();
            let deadline = Duration::from_secs(20);
            let started = Instant::now();
            let client = TcpStream::connect_timeout(addr, deadline)
                .await
                .expect("connect_timeout to a live listener");
            let took = started.elapsed();
            assert!(took < deadline / 2, "connect_timeout took {took:?} of its {deadline:?}");
            let (server, peer) = listener.accept().await.expect("accept");
            assert_eq!(peer, client.local_addr().expect("local_addr"));

            let short = Duration::from_millis(100);
            let client2 = TcpStream::connect_timeout(addr, short)
                .await
                .expect("connect_timeout with a short deadline");
            let (server2, _) = listener.accept().await.expect("accept");
            // Not synchronisation: the point is to be past the deadline of the linked timeout.
            time::sleep(short * 3).await;

            for (c, s) in [(&client, &server), (&client2, &server2)] {
                let (written, _) = c.write_all(b"ping".as_slice()).await;
                written.expect("client write after connect_timeout");
                support::assert_bytes_eq("ping", &read_exactly(s, 4, "ping").await, b"ping");
                let (written, _) = s.write_all(b"pong".as_slice()).await;
                written.expect("server write");
                support::assert_bytes_eq("pong", &read_exactly(c, 4, "pong").await, b"pong");
            }
            drop((client, server, client2, server2, listener));
            settle_inflight(0).await;
        });
    }
}

/// Whether the server side of `client`'s connection has been closed: a non-blocking read sees
/// EOF or a reset rather than "would block".
fn peer_has_closed(client: &std::net::TcpStream) -> bool {
    use std::io::Read as _;
    client.set_nonblocking(true).expect("set_nonblocking");
    let mut byte = [0u8; 1];
    match (&*client).read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("the server never writes, yet a client read data"),
        Err(err) if err.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// Bytes waiting in `stream`'s receive queue, seen with a non-blocking `MSG_PEEK` (consumes
/// nothing).
fn bytes_waiting(stream: &TcpStream) -> usize {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 256];
    match socket2::SockRef::from(stream).peek(&mut buf) {
        Ok(n) => n,
        Err(err) if err.kind() == ErrorKind::WouldBlock => 0,
        Err(err) => panic!("peek: {err}"),
    }
}

/// Waits (bounded, on the running loop) for the open-fd count to return to `before` — a close
/// the runtime issued may still be on its way — then asserts it, listing the fds if not.
async fn assert_fd_count_returns_to(before: usize, what: &str) {
    let deadline = Instant::now() + READ_LIMIT;
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
