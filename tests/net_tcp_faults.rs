//! TCP faults on both backends give clear errors, never panics or signals: refused connects
//! and connect deadlines name the address, unknown hosts are named, writes to a closed or
//! reset peer fail (never SIGPIPE), a write after our own shutdown fails, and a reset fails a
//! pending read or a write in flight.
//!
//! Every test holds the fd lock through `net_support::fixture` (see `tests/net_support`).

mod net_support;
mod support;

use std::io::ErrorKind;
use std::net::Shutdown;
use std::os::unix::process::ExitStatusExt as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use net_support::*;
use ringloop::net::{ListenOptions, TcpListener, TcpStream};
use ringloop::time;
use support::{settle_inflight, yield_turns};

/// The child role of `write_after_peer_closed_is_an_error_not_sigpipe`: SIGPIPE at its default
/// action (terminate), which the Rust runtime otherwise sets to "ignore" for every test.
const SIGPIPE_DEFAULT_ROLE: &str = "sigpipe-default";

both_backends! {
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

    /// `connect_timeout` to a listener whose accept queue is full (backlog 0, filled by earlier
    /// clients; the kernel drops further SYNs) fails with `TimedOut` once its deadline passes,
    /// not before and not much after, and the message names the address.
    fn connect_deadline_gives_timed_out_naming_the_address(backend: Backend) {
        const DEADLINE: Duration = Duration::from_millis(300);
        let fx = fixture(backend, "connect_deadline_gives_timed_out_naming_the_address");
        fx.rt.block_on(async {
            let opts = ListenOptions::new().backlog(0);
            let listener = TcpListener::bind_with(any_loopback_port(), &opts).expect("bind");
            let addr = listener.local_addr().expect("local_addr");
            let mut queued = Vec::new();
            // Bounded: a backlog of 0 queues one or two connections, then SYNs are dropped.
            for _ in 0..8 {
                let started = Instant::now();
                match TcpStream::connect_timeout(addr, DEADLINE).await {
                    Ok(stream) => queued.push(stream),
                    Err(err) => {
                        let took = started.elapsed();
                        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
                        assert!(err.to_string().contains(&addr.to_string()), "{err} names {addr}");
                        assert!(took >= DEADLINE - Duration::from_millis(5), "gave up after {took:?}");
                        assert!(took < DEADLINE * 10, "gave up only after {took:?}");
                        drop((queued, listener));
                        settle_inflight(0).await;
                        return;
                    }
                }
            }
            panic!("8 connects to a listener with backlog 0 all succeeded: nothing timed out");
        });
    }

    /// After our own `shutdown(Write)`, a write fails with `BrokenPipe` (never a signal, never
    /// a silent success), and the peer sees the bytes sent before, then EOF — and EOF again on
    /// the next read, with no byte repeated.
    fn write_after_own_shutdown_is_an_error(backend: Backend) {
        let fx = fixture(backend, "write_after_own_shutdown_is_an_error");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let (written, _) = client.write_all(b"last words".as_slice()).await;
            written.expect("write before the shutdown");
            client.shutdown(Shutdown::Write).expect("shutdown(Write)");
            let (written, _) = client.write(b"too late".as_slice()).await;
            let err = written.expect_err("a write after shutdown(Write)");
            assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");

            let got = read_to_end(&server, 4).await.expect("server reads to EOF");
            support::assert_bytes_eq("bytes before the shutdown", &got, b"last words");
            for attempt in 0..3 {
                let (n, buf) = server.read(Vec::with_capacity(16)).await;
                assert_eq!(n.expect("read after EOF"), 0, "read {attempt} after EOF: {buf:?}");
            }
        });
    }

    /// Connecting to a host name that cannot resolve, as `"host:port"` or `(host, port)`, fails
    /// with an error whose message names the host.
    fn unknown_host_error_names_the_host(backend: Backend) {
        let fx = fixture(backend, "unknown_host_error_names_the_host");
        fx.rt.block_on(async {
            // `.invalid` never resolves (RFC 6761).
            let host = "no-such-host.invalid";
            let err = match TcpStream::connect(format!("{host}:80")).await {
                Ok(_) => panic!("connected to {host}"),
                Err(err) => err,
            };
            assert!(err.to_string().contains(host), "{err:?} should name {host}");
            let err = match TcpStream::connect((host, 80)).await {
                Ok(_) => panic!("connected to {host}"),
                Err(err) => err,
            };
            assert!(err.to_string().contains(host), "{err:?} should name {host}");
        });
    }

    /// A host name that resolves but whose every address refuses fails with
    /// `ConnectionRefused`, and the message names both the host and the address tried.
    fn refused_host_name_names_host_and_address(backend: Backend) {
        let fx = fixture(backend, "refused_host_name_names_host_and_address");
        fx.rt.block_on(async {
            let port = {
                let free = std::net::TcpListener::bind(any_loopback_port()).expect("std bind");
                free.local_addr().expect("std local_addr").port()
            };
            let err = match TcpStream::connect(format!("localhost:{port}")).await {
                Ok(_) => panic!("connected to localhost:{port}, where nobody listens"),
                Err(err) => err,
            };
            assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
            let message = err.to_string();
            assert!(message.contains(&format!("localhost:{port}")), "{message} names the host");
            assert!(message.contains(&format!(":{port}: ")), "{message} names the address");
        });
    }
}
