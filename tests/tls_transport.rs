//! TLS transports and streams: a Protocol sees plaintext only (1 MiB echoed byte-exact,
//! `eof_received` on close_notify, `connection_lost(None)` after a clean close), the TLS keys
//! of `get_extra_info`, flow control counting plaintext not yet sent, a truncation reported as
//! `connection_lost(UnexpectedEof)`, a plaintext client failing its handshake only, and the
//! streams API (`open_tls_connection`, `start_tls_server`, Unix variants) unchanged above it.
#![cfg(feature = "tls")]

mod support;
mod transport_support;

use std::io::ErrorKind;

use ringloop::net::TcpStream;
use ringloop::streams;
use ringloop::transport::{self, ExtraInfo};
use support::tls::Pair;
use transport_support::{
    Callback, Recorder, Shared, TEST_LIMIT, any_loopback_port, pattern, wait_until,
};

fn setup() -> Pair {
    Pair::new(&[b"h2", b"http/1.1"], &[b"http/1.1"])
}

both_backends! {
    /// 1 MiB through an echoing server protocol and back, byte-exact; then the client's
    /// `write_eof` (close_notify) reaches the server as `eof_received`, the server closes, and
    /// both sides see `connection_lost(None)`. The TLS extra info is there on both sides.
    fn protocol_echo_and_clean_close(rt) {
        let _wd = support::watchdog(TEST_LIMIT, "protocol_echo_and_clean_close");
        let s = setup();
        rt.block_on(async {
            let servers = Shared::default();
            let factory = servers.clone();
            let server = transport::create_tls_server(
                move || factory.add(Recorder::echoing),
                any_loopback_port(),
                s.acceptor.clone(),
            )
            .await
            .unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let (t, client) = transport::create_tls_connection(Recorder::default, addr, &s.connector, "localhost")
                .await
                .unwrap();
            assert_eq!(t.get_extra_info("tls_version").unwrap().as_text(), Some("TLSv1.3"));
            assert_eq!(t.get_extra_info("alpn_protocol").unwrap().as_bytes(), Some(&b"http/1.1"[..]));
            assert_eq!(t.get_extra_info("server_hostname").unwrap().as_text(), Some("localhost"));
            assert!(t.get_extra_info("cipher").unwrap().as_text().unwrap().starts_with("TLS13_"));
            match t.get_extra_info("peercert") {
                Some(ExtraInfo::Certificates(chain)) => assert_eq!(chain.len(), 1),
                other => panic!("peercert: {other:?}"),
            }
            assert!(matches!(t.get_extra_info("ssl_object"), Some(ExtraInfo::Tls(_))));
            assert!(t.get_extra_info("peername").is_some(), "the plain keys stay");

            let data = pattern(1 << 20);
            for piece in data.chunks(50_000) {
                t.write(piece).unwrap();
            }
            wait_until("the echo is back", || client.borrow().received.len() == data.len()).await;
            support::assert_bytes_eq("echoed", &client.borrow().received, &data);
            let server_side = servers.get(0);
            assert_eq!(
                server_side.borrow().transport.as_ref().unwrap()
                    .get_extra_info("server_hostname").unwrap().as_text(),
                Some("localhost"),
                "the server sees the client's SNI"
            );

            // close_notify: eof_received (which returns false: the server closes).
            t.write_eof();
            wait_until("the server's eof_received", || server_side.borrow().count(&Callback::Eof) == 1).await;
            wait_until("both sides lost", || client.borrow().lost() && server_side.borrow().lost()).await;
            assert_eq!(server_side.borrow().lost_with(), Some(None), "{:?}", server_side.borrow().log);
            assert_eq!(client.borrow().lost_with(), Some(None), "{:?}", client.borrow().log);
            server.close();
            server.wait_closed().await;
        });
    }

    /// A peer that closes the TCP connection without close_notify: the protocol gets
    /// `connection_lost` with `UnexpectedEof`, not `eof_received`.
    fn truncation_is_an_error(rt) {
        let _wd = support::watchdog(TEST_LIMIT, "truncation_is_an_error");
        let s = setup();
        rt.block_on(async {
            let servers = Shared::default();
            let factory = servers.clone();
            let server = transport::create_tls_server(
                move || factory.add(Recorder::default),
                any_loopback_port(),
                s.acceptor.clone(),
            )
            .await
            .unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let tls = s.connector.connect("localhost", TcpStream::connect(addr).await.unwrap()).await.unwrap();
            tls.write_all(&b"partial"[..]).await.0.unwrap();
            wait_until("the server got the bytes", || {
                servers.len() == 1 && servers.get(0).borrow().received == b"partial"
            })
            .await;
            // End the TCP stream without close_notify. (Not by dropping the stream: a socket
            // closed with unread bytes — session tickets still in the kernel, say — sends a
            // reset instead of an end of file.)
            tls.get_ref().shutdown(std::net::Shutdown::Write).unwrap();
            let server_side = servers.get(0);
            wait_until("the server lost the connection", || server_side.borrow().lost()).await;
            assert_eq!(server_side.borrow().lost_with(), Some(Some(ErrorKind::UnexpectedEof)));
            assert_eq!(server_side.borrow().count(&Callback::Eof), 0, "no clean EOF");
            server.close();
            server.wait_closed().await;
        });
    }

    /// Flow control counts plaintext not yet sent: writing 4 MiB to a peer that does not
    /// read pauses writing; once the peer reads everything, writing resumes and
    /// `get_write_buffer_size` returns to 0.
    fn flow_control_counts_unsent_plaintext(rt) {
        let _wd = support::watchdog(TEST_LIMIT, "flow_control_counts_unsent_plaintext");
        let s = setup();
        rt.block_on(async {
            let listener = ringloop::net::TcpListener::bind(any_loopback_port()).unwrap();
            let addr = listener.local_addr().unwrap();
            let acceptor = s.acceptor.clone();
            let peer = ringloop::spawn(async move {
                let (tcp, _) = listener.accept().await.unwrap();
                acceptor.accept(tcp).await.unwrap()
            });
            let (t, client) = transport::create_tls_connection(Recorder::default, addr, &s.connector, "localhost")
                .await
                .unwrap();
            let peer = peer.await.unwrap();
            let data = pattern(4 << 20);
            t.write(&data).unwrap();
            assert!(t.get_write_buffer_size() > 0);
            wait_until("pause_writing", || client.borrow().count(&Callback::PauseWriting) == 1).await;
            let (res, got) = peer.read_exact(Vec::with_capacity(data.len())).await;
            res.unwrap();
            support::assert_bytes_eq("received", &got, &data);
            wait_until("resume_writing", || client.borrow().count(&Callback::ResumeWriting) == 1).await;
            assert_eq!(t.get_write_buffer_size(), 0);
            t.abort();
        });
    }

    /// A plaintext client fails its handshake, and the acceptor's hook hears why and from
    /// whom; the TLS server goes on serving.
    fn plaintext_client_does_not_stop_the_server(rt) {
        let _wd = support::watchdog(TEST_LIMIT, "plaintext_client_does_not_stop_the_server");
        let s = setup();
        let failures = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let heard = std::sync::Arc::clone(&failures);
        let acceptor = s
            .acceptor
            .clone()
            .on_handshake_error(move |e| heard.lock().unwrap().push((e.kind(), e.to_string())));
        rt.block_on(async {
            let servers = Shared::default();
            let factory = servers.clone();
            let server = transport::create_tls_server(
                move || factory.add(Recorder::echoing),
                any_loopback_port(),
                acceptor,
            )
            .await
            .unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let plain = TcpStream::connect(addr).await.unwrap();
            // The server may close before all of it is written: that is fine.
            let _ = plain.write_all(&b"hello?\r\n\r\n"[..]).await;
            loop {
                let (n, _) = plain.read(Vec::with_capacity(64)).await;
                if n.unwrap_or(0) == 0 {
                    break;
                }
            }
            assert_eq!(servers.len(), 0, "no protocol for a failed handshake");
            let peer = plain.local_addr().unwrap().to_string();
            wait_until("the hook to hear of the failure", || failures.lock().unwrap().len() == 1).await;
            {
                let failures = failures.lock().unwrap();
                let (kind, text) = &failures[0];
                assert_eq!(*kind, ErrorKind::InvalidData, "{text}");
                assert!(text.contains(&peer), "names the peer {peer}: {text}");
                assert!(text.contains("TLS handshake from"), "{text}");
            }
            let (t, client) = transport::create_tls_connection(Recorder::default, addr, &s.connector, "localhost")
                .await
                .unwrap();
            t.write(b"still serving").unwrap();
            wait_until("the echo", || client.borrow().received == b"still serving").await;
            t.close();
            server.close();
            server.close_clients();
            server.wait_closed().await;
        });
        assert_eq!(failures.lock().unwrap().len(), 1, "the TLS client's handshake succeeded");
    }

    /// Streams over TLS, TCP and Unix: `readline` / `write` / `drain` unchanged; the
    /// server's `close` sends close_notify, which the client reads as EOF.
    fn streams_over_tls(rt) {
        let _wd = support::watchdog(TEST_LIMIT, "streams_over_tls");
        let s = setup();
        // In the test's own directory: the two backends' tests run at once.
        let path = s.pki.dir.path().join("streams.sock");
        rt.block_on(async {
            let serve = |mut reader: streams::StreamReader, writer: streams::StreamWriter| async move {
                while let Ok(line) = reader.readline().await {
                    if line.is_empty() {
                        break;
                    }
                    writer.write(&line.to_ascii_uppercase()).unwrap();
                    writer.drain().await.unwrap();
                }
                writer.close();
            };
            let tcp_server = streams::start_tls_server(serve, any_loopback_port(), s.acceptor.clone()).await.unwrap();
            let unix_server = streams::start_unix_tls_server(serve, &path, s.acceptor.clone()).await.unwrap();
            let addr = tcp_server.local_addrs()[0].as_inet().unwrap();
            let tcp = streams::open_tls_connection(addr, &s.connector, "localhost").await.unwrap();
            let unix = streams::open_unix_tls_connection(&path, &s.connector, "localhost").await.unwrap();
            for (mut reader, writer) in [tcp, unix] {
                for i in 0..100 {
                    writer.write(format!("line {i}\n").as_bytes()).unwrap();
                }
                writer.drain().await.unwrap();
                for i in 0..100 {
                    let line = reader.readline().await.unwrap();
                    assert_eq!(line, format!("LINE {i}\n").as_bytes());
                }
                writer.write_eof();
                assert_eq!(reader.read(100).await.unwrap(), b"", "close_notify: EOF");
                assert!(reader.at_eof());
                writer.close();
            }
            tcp_server.close();
            unix_server.close();
            tcp_server.wait_closed().await;
            unix_server.wait_closed().await;
        });
    }
}
