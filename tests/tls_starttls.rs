//! STARTTLS: a plain connection upgraded to TLS in place — streams on both sides
//! (`StreamWriter::start_tls`), a protocol's transport (`Transport::start_tls`) against a
//! `TlsStream` made over a `TcpStream` that already carried plain data and a read dropped
//! by a timeout, a failed upgrade, and an upgrade asked of a transport that already runs TLS.
#![cfg(feature = "tls")]

mod support;
mod transport_support;

use std::cell::RefCell;
use std::io::ErrorKind;
use std::rc::Rc;
use std::time::Duration;

use ringloop::net::TcpStream;
use ringloop::streams;
use ringloop::time;
use ringloop::tls::TlsConnector;
use ringloop::transport::{self, Protocol, StartTls, Transport};
use support::tls::{Pair, Pki};
use transport_support::{Recorder, TEST_LIMIT, any_loopback_port, pattern, wait_until};

fn setup() -> Pair {
    Pair::new(&[], &[])
}

both_backends! {
    /// Both sides on streams: a plain line each way, the upgrade, then 200 KB echoed through
    /// TLS; the extra info says TLS only after the upgrade; bytes the server's reader had
    /// buffered before are still read.
    fn streams_upgrade_both_sides(rt) {
        let _wd = support::watchdog(TEST_LIMIT, "streams_upgrade_both_sides");
        let s = setup();
        rt.block_on(async {
            let acceptor = s.acceptor.clone();
            let server = streams::start_server(
                move |mut reader, writer| {
                    let acceptor = acceptor.clone();
                    async move {
                        assert_eq!(reader.readline().await.unwrap(), b"HELLO\n");
                        assert_eq!(reader.readline().await.unwrap(), b"STARTTLS\n");
                        assert!(writer.get_extra_info("tls_version").is_none());
                        writer.write(b"220 go ahead\n").unwrap();
                        writer.start_tls(StartTls::server(&acceptor)).await.unwrap();
                        assert_eq!(writer.get_extra_info("tls_version").unwrap().as_text(), Some("TLSv1.3"));
                        loop {
                            let data = reader.read(64 * 1024).await.unwrap();
                            if data.is_empty() {
                                break;
                            }
                            writer.write(&data).unwrap();
                            writer.drain().await.unwrap();
                        }
                        writer.close();
                    }
                },
                any_loopback_port(),
            )
            .await
            .unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let (mut reader, writer) = streams::open_connection(addr).await.unwrap();
            // Two lines in one write: the second waits in the server's reader buffer.
            writer.write(b"HELLO\nSTARTTLS\n").unwrap();
            assert_eq!(reader.readline().await.unwrap(), b"220 go ahead\n");
            writer.start_tls(StartTls::client(&s.connector, "localhost")).await.unwrap();
            assert_eq!(writer.get_extra_info("server_hostname").unwrap().as_text(), Some("localhost"));
            let data = pattern(200_000);
            writer.write(&data).unwrap();
            writer.write_eof();
            let mut got = Vec::new();
            loop {
                let chunk = reader.read(64 * 1024).await.unwrap();
                if chunk.is_empty() {
                    break;
                }
                got.extend_from_slice(&chunk);
            }
            support::assert_bytes_eq("echoed after STARTTLS", &got, &data);
            server.close();
            server.wait_closed().await;
        });
    }

    /// A protocol's transport upgraded by a task, against a client `TlsStream` made over a
    /// `TcpStream` whose earlier read was dropped by a timeout while the kernel held it: the
    /// adopted read's bytes (the server's first handshake bytes) reach the TLS engine.
    fn transport_upgrade_against_a_tls_stream(rt) {
        let _wd = support::watchdog(TEST_LIMIT, "transport_upgrade_against_a_tls_stream");
        let s = setup();
        rt.block_on(async {
            let made: Rc<RefCell<Option<Rc<RefCell<Starttls>>>>> = Rc::default();
            let factory = made.clone();
            let server = transport::create_server(
                move || {
                    let p = Rc::new(RefCell::new(Starttls::default()));
                    *factory.borrow_mut() = Some(p.clone());
                    Forward(p)
                },
                any_loopback_port(),
            )
            .await
            .unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(&b"STARTTLS\n"[..]).await.0.unwrap();
            let (res, reply) = tcp.read_exact(Vec::with_capacity(4)).await;
            res.unwrap();
            assert_eq!(reply, b"220\n");

            let server_side = made.borrow().clone().unwrap();
            assert!(server_side.borrow().asked);
            let transport = server_side.borrow().transport.clone().unwrap();
            let acceptor = s.acceptor.clone();
            let upgrading = ringloop::spawn(async move {
                transport.start_tls(StartTls::server(&acceptor)).await
            });
            // Nothing to read yet: the read is dropped by its timeout while in the kernel.
            let r = time::timeout(Duration::from_millis(20), tcp.read(Vec::with_capacity(64))).await;
            assert!(r.is_err());
            let tls = s.connector.connect("localhost", tcp).await.expect("client handshake");
            upgrading.await.unwrap().expect("server upgrade");
            tls.write_all(&b"secret\n"[..]).await.0.unwrap();
            let (res, echo) = tls.read_exact(Vec::with_capacity(7)).await;
            res.unwrap();
            assert_eq!(echo, b"secret\n");
            let t = server_side.borrow().transport.clone().unwrap();
            assert_eq!(t.get_extra_info("tls_version").unwrap().as_text(), Some("TLSv1.3"));
            assert_eq!(t.get_extra_info("server_hostname").unwrap().as_text(), Some("localhost"));
            let err = t.start_tls(StartTls::server(&s.acceptor)).await.expect_err("already TLS");
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            // Still serving after the refused second upgrade.
            tls.write_all(&b"again\n"[..]).await.0.unwrap();
            let (res, echo) = tls.read_exact(Vec::with_capacity(6)).await;
            res.unwrap();
            assert_eq!(echo, b"again\n");
            tls.shutdown().await.unwrap();
            wait_until("the server side lost", || server_side.borrow().lost.is_some()).await;
            assert_eq!(server_side.borrow().lost.as_ref().unwrap(), &None);
            server.close();
            server.wait_closed().await;
        });
    }

    /// An upgrade whose handshake fails (the client does not trust the server): `start_tls`
    /// returns the reason, and the protocol gets `connection_lost` with it.
    fn failed_upgrade_ends_the_connection(rt) {
        let _wd = support::watchdog(TEST_LIMIT, "failed_upgrade_ends_the_connection");
        let s = setup();
        let stranger = Pki::new();
        let untrusting = TlsConnector::new(stranger.client(&[]));
        rt.block_on(async {
            let acceptor = s.acceptor.clone();
            let server = streams::start_server(
                move |mut reader, writer| {
                    let acceptor = acceptor.clone();
                    async move {
                        let _ = reader.readline().await;
                        writer.write(b"220\n").unwrap();
                        let _ = writer.start_tls(StartTls::server(&acceptor)).await;
                    }
                },
                any_loopback_port(),
            )
            .await
            .unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let (t, client) = transport::create_connection(Recorder::default, addr).await.unwrap();
            t.write(b"STARTTLS\n").unwrap();
            wait_until("the 220", || client.borrow().received == b"220\n").await;
            let err = t.start_tls(StartTls::client(&untrusting, "localhost")).await.expect_err("untrusted");
            assert!(err.to_string().contains("UnknownIssuer"), "{err}");
            wait_until("connection_lost", || client.borrow().lost()).await;
            assert_eq!(client.borrow().lost_with(), Some(Some(ErrorKind::InvalidData)));
            server.close();
            server.wait_closed().await;
        });
    }
}

/// Plain until `STARTTLS\n`, which it answers with `220\n` (the test's task then upgrades
/// its transport); echoes everything after.
#[derive(Default)]
struct Starttls {
    transport: Option<Transport>,
    line: Vec<u8>,
    asked: bool,
    lost: Option<Option<ErrorKind>>,
}

impl Protocol for Starttls {
    fn connection_made(&mut self, t: Transport) {
        self.transport = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        let t = self.transport.as_ref().unwrap();
        if self.asked {
            t.write(data).unwrap();
            return;
        }
        // The command may come in pieces (short writes under the fault injector).
        self.line.extend_from_slice(data);
        if self.line == b"STARTTLS\n" {
            self.asked = true;
            t.write(b"220\n").unwrap();
        }
    }
    fn connection_lost(&mut self, err: Option<std::io::Error>) {
        self.lost = Some(err.map(|e| e.kind()));
    }
}

struct Forward(Rc<RefCell<Starttls>>);

impl Protocol for Forward {
    fn connection_made(&mut self, t: Transport) {
        self.0.borrow_mut().connection_made(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.0.borrow_mut().data_received(data);
    }
    fn connection_lost(&mut self, err: Option<std::io::Error>) {
        self.0.borrow_mut().connection_lost(err);
    }
}
