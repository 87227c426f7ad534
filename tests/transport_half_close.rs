//! Half-close on both backends: the peer's EOF reaches `eof_received` exactly once; returning
//! `true` keeps the write side open, `false` closes the transport; `write_eof` shuts down only
//! the write side, so the transport keeps receiving.

mod support;
mod transport_support;

use std::io::ErrorKind;
use std::net::Shutdown;

use ringloop::net::{TcpListener, TcpStream};
use ringloop::transport;
use support::assert_bytes_eq;
use transport_support::{Callback, Recorder, Shared, TEST_LIMIT, any_loopback_port, wait_until};

/// Reads from `stream` until EOF.
async fn read_to_end(stream: &TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let (res, buf) = stream.read(Vec::with_capacity(64 * 1024)).await;
        match res.expect("read") {
            0 => return all,
            _ => all.extend_from_slice(&buf),
        }
    }
}

both_backends! {
    /// A peer that sends and then shuts down its write side: the protocol gets the data, then
    /// `eof_received` once; having answered `true`, it can still write, and the peer reads that
    /// reply before the EOF that `close` sends. `connection_lost(None)` comes last.
    fn eof_received_once_then_write_side_stays_open(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "eof_received_once_then_write_side_stays_open");
        rt.block_on(async {
            let shared = Shared::default();
            let factory = shared.clone();
            let server = transport::create_server(
                move || factory.add(|| Recorder { keep_open: true, ..Recorder::default() }),
                any_loopback_port(),
            )
            .await
            .unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let peer = TcpStream::connect(addr).await.unwrap();
            peer.write_all(b"question".as_slice()).await.0.unwrap();
            peer.shutdown(Shutdown::Write).unwrap();

            wait_until("the server saw EOF", || {
                shared.len() == 1 && shared.get(0).borrow().count(&Callback::Eof) == 1
            })
            .await;
            let recorder = shared.get(0);
            let transport = recorder.borrow().transport.clone().unwrap();
            assert!(!transport.is_closing(), "eof_received returned true: still open");
            transport.write(b"answer").expect("write after the peer's EOF");
            transport.close();

            assert_bytes_eq("peer reads", &read_to_end(&peer).await, b"answer");
            wait_until("connection_lost", || recorder.borrow().lost()).await;
            {
                let r = recorder.borrow();
                assert_bytes_eq("server received", &r.received, b"question");
                assert_eq!(r.count(&Callback::Eof), 1);
                assert_eq!(r.log.last(), Some(&Callback::Lost(None)));
            }
            server.close();
            server.wait_closed().await;
        });
    }

    /// When `eof_received` returns `false`, the transport closes by itself: the peer reads
    /// what was written before the EOF (the buffer is flushed), then EOF.
    fn eof_received_false_closes_after_flushing(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "eof_received_false_closes_after_flushing");
        rt.block_on(async {
            let shared = Shared::default();
            let factory = shared.clone();
            let server = transport::create_server(
                move || factory.add(Recorder::echoing),
                any_loopback_port(),
            )
            .await
            .unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let peer = TcpStream::connect(addr).await.unwrap();
            let data = transport_support::pattern(300_000);
            peer.write_all(data.clone()).await.0.unwrap();
            peer.shutdown(Shutdown::Write).unwrap();
            assert_bytes_eq("echo before EOF", &read_to_end(&peer).await, &data);
            wait_until("connection_lost", || shared.get(0).borrow().lost()).await;
            let r = shared.get(0);
            let r = r.borrow();
            assert_eq!(r.count(&Callback::Eof), 1);
            assert_eq!(r.lost_with(), Some(None));
            assert!(r.transport.as_ref().unwrap().is_closing());
        });
    }

    /// `write_eof` sends EOF after the buffered bytes while reading goes on: the peer reads
    /// the data and EOF, then replies, and the transport still receives the reply. Writing
    /// after `write_eof` fails with `InvalidInput`.
    fn write_eof_shuts_only_the_write_side(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "write_eof_shuts_only_the_write_side");
        rt.block_on(async {
            let listener = TcpListener::bind(any_loopback_port()).unwrap();
            let addr = listener.local_addr().unwrap();
            let (client, recorder) = transport::create_connection(
                || Recorder { keep_open: true, ..Recorder::default() },
                addr,
            )
            .await
            .unwrap();
            let (peer, _) = listener.accept().await.unwrap();
            assert!(client.can_write_eof());
            client.write(b"request").unwrap();
            client.write_eof();
            let err = client.write(b"more").expect_err("write after write_eof");
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(!client.is_closing());

            assert_bytes_eq("peer reads", &read_to_end(&peer).await, b"request");
            peer.write_all(b"reply".as_slice()).await.0.unwrap();
            drop(peer);
            wait_until("the client saw the reply and EOF", || {
                recorder.borrow().count(&Callback::Eof) == 1
            })
            .await;
            assert_bytes_eq("client received", &recorder.borrow().received, b"reply");
            client.close();
            wait_until("connection_lost", || recorder.borrow().lost()).await;
            assert_eq!(recorder.borrow().lost_with(), Some(None));
        });
    }
}
