//! On a kernel without multishot receive (before Linux 6.0; provided-buffer rings came in
//! 5.19), buffer rings are served from user space and receive streams take one buffer per
//! receive — `recv_multishot` and every stream transport still work. Forced with
//! `RINGLOOP_MISSING_OPS=recv_multishot` in a re-executed child (the variable is read when a
//! runtime is built): the child checks the backend report says `recv_multishot=off` on io_uring
//! and that a new `BufRing` is a user-space one, then moves a large stream through
//! `recv_multishot` and lines through the streams API. On epoll the same body runs (its rings
//! are always user-space).

mod net_support;
mod support;

use std::time::Duration;

use net_support::{connected_pair, pattern};
use ringloop::buf::BufRing;
use ringloop::streams::{open_connection, start_server};
use support::{
    CHILD_ENV, assert_bytes_eq, assert_child_passed, backend_role, child_backend, run_child,
};

const LEN: usize = 512 * 1024;

/// The child: receive streams with multishot receive reported missing.
#[test]
fn child_receives_without_multishot() {
    let Some(backend) = child_backend() else {
        return;
    };
    let _dog = support::watchdog(Duration::from_secs(30), "receive without multishot");
    let rt = support::runtime(backend);
    if backend == ringloop::Backend::IoUring {
        let features = rt.backend_report().features().to_vec();
        assert!(
            features.contains(&("recv_multishot", false)),
            "recv_multishot not reported off: {features:?}"
        );
    }
    rt.block_on(async {
        let ring = BufRing::builder()
            .buf_size(4096)
            .initial(4)
            .max(16)
            .build()
            .expect("BufRing::build");
        assert!(!ring.is_kernel(), "a kernel ring without multishot receive");

        // A large stream through `recv_multishot`, arriving exactly.
        let (client, server) = connected_pair().await;
        let sent = pattern(LEN);
        let writer = ringloop::spawn({
            let sent = sent.clone();
            async move {
                let (res, _) = client.write_all(sent).await;
                res.expect("write_all");
                client
                    .shutdown(std::net::Shutdown::Write)
                    .expect("shutdown");
                client
            }
        });
        let mut got = Vec::with_capacity(LEN);
        let mut chunks = server.recv_multishot(&ring);
        while let Some(chunk) = chunks.next().await {
            got.extend_from_slice(&chunk.expect("chunk"));
        }
        assert_bytes_eq("stream through recv_multishot", &got, &sent);
        drop(writer.await.expect("writer"));

        // The streams API (a transport on the loop's shared ring) echoes lines.
        let server = start_server(
            |mut reader, writer| async move {
                while let Ok(line) = reader.readline().await {
                    if line.is_empty() || writer.write(&line).is_err() {
                        break;
                    }
                }
                writer.close();
            },
            "127.0.0.1:0",
        )
        .await
        .expect("start_server");
        let addr = server.local_addrs()[0].as_inet().expect("an IP address");
        let (mut reader, writer) = open_connection(addr).await.expect("open_connection");
        for i in 0..100 {
            let line = format!("line {i}\n");
            writer.write(line.as_bytes()).expect("write");
            assert_eq!(reader.readline().await.expect("readline"), line.as_bytes());
        }
        writer.close();
        server.close();
    });
}

both_backends! {
    /// With multishot receive reported missing, receive streams and transports still work.
    fn receiving_works_without_multishot(backend: Backend) {
        let role = backend_role(backend);
        let name = "child_receives_without_multishot";
        let output =
            run_child(name, &[(CHILD_ENV, role), ("RINGLOOP_MISSING_OPS", "recv_multishot")]);
        assert_child_passed(name, &output);
    }
}
