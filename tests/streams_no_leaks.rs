//! Stream connections leak nothing: after many connections that end every way (closed by the
//! client, by the server, dropped unclosed, and by a server callback that panics), the server
//! closed, the open-fd count is back where it started, and the panicking callback did not
//! take the server down.
//!
//! The test counts process-wide fds, so each one holds `support::serial()`.

mod support;

use std::time::{Duration, Instant};

use ringloop::Handle;
use ringloop::streams::{open_connection, start_server};
use support::{describe_open_fds, open_fds};

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(60);
/// How long closes issued by the runtime may take to land.
const CLOSE_LIMIT: Duration = Duration::from_secs(10);

/// Waits (bounded, on the running loop) for the open-fd count to return to `before`, then
/// asserts it, listing the fds if not.
async fn assert_fd_count_returns_to(before: usize) {
    let deadline = Instant::now() + CLOSE_LIMIT;
    while open_fds() != before && Instant::now() < deadline {
        ringloop::yield_now().await;
    }
    let after = open_fds();
    assert_eq!(
        after,
        before,
        "{before} fds open before, {after} after (ops in flight: {}):\n{}",
        Handle::current().inflight_ops(),
        describe_open_fds().join("\n")
    );
}

both_backends! {
    /// 200 connections, a quarter ending each way (the server closes after the client's EOF
    /// or at once, drops both halves, or its callback panics; the client closes every other
    /// one and drops the rest), leave no fd open once the server is closed; the server
    /// keeps serving after the panics.
    fn connections_leak_no_fd(backend: Backend) {
        let _serial = support::serial();
        let _w = support::watchdog(TEST_LIMIT, "connections_leak_no_fd");
        let rt = support::runtime(backend);
        rt.block_on(async {
            support::settle_inflight(0).await;
            let before = open_fds();
            let server = start_server(
                |mut reader, writer| async move {
                    let line = reader.readline().await.unwrap_or_default();
                    match line.as_slice() {
                        b"panic\n" => panic!("a client callback panics (on purpose)"),
                        b"server closes\n" => {
                            writer.write(b"bye\n").unwrap();
                            writer.close();
                        }
                        b"echo\n" => {
                            let rest = reader.read_until_eof().await.unwrap_or_default();
                            writer.writelines([&line[..], &rest]).unwrap();
                            writer.close();
                        }
                        // Answer, then drop both halves without closing.
                        _ => {
                            let _ = writer.write(&line);
                        }
                    }
                },
                "127.0.0.1:0",
            )
            .await
            .unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let requests: [&[u8]; 4] = [b"echo\n", b"server closes\n", b"drop\n", b"panic\n"];
            for i in 0..200 {
                let request = requests[i % 4];
                let (mut reader, writer) = open_connection(addr).await.unwrap();
                writer.write(request).unwrap();
                writer.write_eof();
                let answer = reader.read_until_eof().await;
                match request {
                    b"panic\n" => assert_eq!(answer.unwrap(), b""),
                    b"server closes\n" => assert_eq!(answer.unwrap(), b"bye\n"),
                    _ => assert_eq!(answer.unwrap(), request),
                }
                if i % 2 == 0 {
                    writer.close();
                    writer.wait_closed().await.unwrap();
                }
            }
            server.close();
            server.wait_closed().await;
            assert_fd_count_returns_to(before).await;
        });
    }
}
