//! The TLS examples work: `tls_echo_server` (a generated self-signed pair, 1 MiB echoed to a
//! client that trusts exactly that certificate, a clean stop) and `https_get` (URL parsing,
//! and GETs against a local HTTPS server answering with a Content-Length body, a chunked body,
//! and a body ended by the connection's close).
#![cfg(feature = "tls")]

mod support;

#[allow(dead_code)]
#[path = "../examples/https_get.rs"]
mod https_get;
#[allow(dead_code)]
#[path = "../examples/tls_echo_server.rs"]
mod tls_echo_server;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use https_get::Url;
use ringloop::net::{TcpListener, TcpStream};
use ringloop::tls::{self, TlsAcceptor, TlsConnector};
use support::tls::Pki;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn https_get_parses_urls() {
    let url = |s| Url::parse(s).unwrap();
    assert_eq!(
        url("https://example.com"),
        Url {
            host: "example.com".into(),
            port: 443,
            target: "/".into()
        }
    );
    assert_eq!(
        url("https://localhost:7443/a/b?c=d"),
        Url {
            host: "localhost".into(),
            port: 7443,
            target: "/a/b?c=d".into()
        }
    );
    assert_eq!(
        url("https://h?q"),
        Url {
            host: "h".into(),
            port: 443,
            target: "/?q".into()
        }
    );
    assert_eq!(
        url("https://[::1]:8443/x"),
        Url {
            host: "::1".into(),
            port: 8443,
            target: "/x".into()
        }
    );
    for bad in [
        "http://example.com/",
        "https://",
        "https://h:99999/",
        "https://[::1/",
        "https://u@h/",
    ] {
        let e = Url::parse(bad).expect_err(bad);
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains(bad), "the URL is named: {e}");
    }
}

both_backends! {
    /// The echo server with a generated certificate: its fingerprint is the SHA-256 of the
    /// certificate a client receives; 1 MiB comes back byte-exact; stopping it closes the
    /// connection with close_notify.
    fn tls_echo_server_example_echoes(rt) {
        let _wd = support::watchdog(Duration::from_secs(60), "tls_echo_server_example_echoes");
        let identity = tls_echo_server::Identity::self_signed().unwrap();
        let fp = identity.generated_fingerprint.clone().unwrap();
        assert_eq!(fp.len(), 32 * 3 - 1, "{fp}");
        let mut roots = tls::RootCertStore::empty();
        roots.add(identity.chain[0].clone()).unwrap();
        let mut config = tls::client_config(roots);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = TlsConnector::new(Arc::new(config));
        rt.block_on(async {
            let server = tls_echo_server::start("127.0.0.1:0", identity.acceptor().unwrap()).await.unwrap();
            let tcp = TcpStream::connect(server.addr).await.unwrap();
            let tls = std::rc::Rc::new(connector.connect("localhost", tcp).await.unwrap());
            assert_eq!(tls.alpn_protocol().as_deref(), Some(&b"http/1.1"[..]));
            assert_eq!(tls_echo_server::fingerprint(&tls.peer_certificates()[0]), fp);
            let data = pattern(1 << 20);
            let writer = {
                let (tls, data) = (tls.clone(), data.clone());
                ringloop::spawn(async move {
                    for piece in data.chunks(32 * 1024) {
                        tls.write_all(piece.to_vec()).await.0.unwrap();
                    }
                })
            };
            let (res, got) = tls.read_exact(Vec::with_capacity(data.len())).await;
            res.unwrap();
            support::assert_bytes_eq("echoed", &got, &data);
            writer.await.unwrap();
            // Stopping the server sends close_notify on the open connection.
            let stopping = ringloop::spawn(server.stop());
            assert_eq!(tls.read(Vec::with_capacity(8)).await.0.unwrap(), 0);
            tls.shutdown().await.unwrap();
            stopping.await.unwrap();
        });
    }

    /// `https_get` against a local server trusting the test CA: a Content-Length body, a
    /// chunked body, a body ended by close (without close_notify), and an untrusted server.
    fn https_get_example_reads_responses(rt) {
        let _wd = support::watchdog(Duration::from_secs(60), "https_get_example_reads_responses");
        let pki = Pki::new();
        let leaf = pki.leaf("server", &["localhost"]);
        let acceptor = TlsAcceptor::new(pki.server(&leaf, &[]));
        let connector = TlsConnector::new(Arc::new(tls::client_config(tls::roots_from_pem(pki.ca_pem()).unwrap())));
        let responses: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\nTrailer: t\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nServer: test\r\n\r\nto the end",
        ];
        rt.block_on(async {
            let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = ringloop::spawn(async move {
                for (i, response) in responses.into_iter().enumerate() {
                    let (tcp, _) = listener.accept().await.unwrap();
                    let tls = acceptor.accept(tcp).await.unwrap();
                    let mut request = Vec::new();
                    while !request.ends_with(b"\r\n\r\n") {
                        let (n, buf) = tls.read(Vec::with_capacity(1024)).await;
                        assert!(n.unwrap() > 0, "the request ended early");
                        request.extend_from_slice(&buf);
                    }
                    let request = String::from_utf8(request).unwrap();
                    assert!(request.starts_with("GET /path?q=1 HTTP/1.1\r\n"), "{request}");
                    assert!(request.contains("Host: localhost\r\n"), "{request}");
                    tls.write_all(response.to_vec()).await.0.unwrap();
                    if i < 2 {
                        // The client may be gone already (it had the whole body): a close
                        // racing with its close may fail, and that is fine.
                        let _ = tls.shutdown().await;
                    }
                    // The last one ends with the connection, without close_notify.
                }
                listener
            });
            let url = Url::parse(&format!("https://localhost:{port}/path?q=1")).unwrap();
            let r = https_get::get(&url, &connector).await.unwrap();
            assert_eq!(r.status_line, "HTTP/1.1 200 OK");
            assert_eq!(r.header("content-type"), Some("text/plain"));
            assert_eq!(r.body, b"hello");
            assert_eq!(r.tls_version, Some("TLSv1.3"));
            let r = https_get::get(&url, &connector).await.unwrap();
            assert_eq!(r.status_line, "HTTP/1.1 201 Created");
            assert_eq!(r.body, b"abcdefg");
            let r = https_get::get(&url, &connector).await.unwrap();
            assert_eq!(r.status_line, "HTTP/1.1 404 Not Found");
            assert_eq!(r.header("Server"), Some("test"));
            assert_eq!(r.body, b"to the end");

            // A server the CA did not sign: the GET fails naming the reason.
            let listener = server.await.unwrap();
            let stranger = Pki::new();
            let other = stranger.leaf("other", &["localhost"]);
            let acceptor = TlsAcceptor::new(stranger.server(&other, &[]));
            let serving = ringloop::spawn(async move {
                let (tcp, _) = listener.accept().await.unwrap();
                let _ = acceptor.accept(tcp).await;
            });
            let e = https_get::get(&url, &connector).await.expect_err("untrusted");
            assert!(e.to_string().contains("UnknownIssuer"), "{e}");
            serving.await.unwrap();
        });
    }
}
