//! Streams over TCP: an echo server from `start_server`, clients from `open_connection`,
//! addresses through `get_extra_info`, many clients at once, and an orderly close seen by
//! both sides.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use ringloop::streams::{open_connection, start_server};
use ringloop::transport::Server;

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// A server that echoes every byte until the client's EOF, then closes.
async fn echo_server() -> (Server, SocketAddr) {
    let server = start_server(
        |mut reader, writer| async move {
            loop {
                match reader.read(4096).await {
                    Ok(data) if !data.is_empty() => {
                        if writer.write(&data).is_err() || writer.drain().await.is_err() {
                            break;
                        }
                    }
                    _ => break,
                }
            }
            writer.close();
        },
        "127.0.0.1:0",
    )
    .await
    .expect("start_server on 127.0.0.1:0");
    let addr = server.local_addrs()[0].as_inet().expect("an IP address");
    (server, addr)
}

both_backends! {
    /// Lines written by an `open_connection` client come back whole from a `start_server`
    /// echo; the client's peername is the server's address; after the client's EOF the
    /// server closes, the client reads EOF and `wait_closed` succeeds.
    fn echo_round_trip(rt) {
        let _w = support::watchdog(TEST_LIMIT, "echo_round_trip");
        rt.block_on(async {
            let (server, addr) = echo_server().await;
            let (mut reader, writer) = open_connection(addr).await.unwrap();
            let peer = writer.get_extra_info("peername").expect("peername");
            assert_eq!(peer.as_addr().and_then(|a| a.as_inet()), Some(addr));
            assert!(writer.get_extra_info("sockname").is_some());
            for i in 0..50 {
                let line = format!("line {i}\n");
                writer.write(line.as_bytes()).unwrap();
                writer.drain().await.unwrap();
                assert_eq!(reader.readline().await.unwrap(), line.as_bytes());
            }
            writer.writelines([&b"two "[..], b"parts\n"]).unwrap();
            assert_eq!(reader.readline().await.unwrap(), b"two parts\n");
            writer.write_eof();
            assert_eq!(reader.read_until_eof().await.unwrap(), b"");
            assert!(reader.at_eof());
            writer.close();
            writer.wait_closed().await.unwrap();
            assert!(writer.is_closing());
            server.close();
            server.wait_closed().await;
        });
    }

    /// Twenty clients at once each get back exactly their own bytes.
    fn many_clients_at_once(rt) {
        let _w = support::watchdog(TEST_LIMIT, "many_clients_at_once");
        rt.block_on(async {
            let (server, addr) = echo_server().await;
            let clients: Vec<_> = (0..20)
                .map(|c| {
                    ringloop::spawn(async move {
                        let (mut reader, writer) = open_connection(addr).await.unwrap();
                        let mut want = Vec::new();
                        for i in 0..100 {
                            let line = format!("client {c} line {i}\n");
                            writer.write(line.as_bytes()).unwrap();
                            want.extend_from_slice(line.as_bytes());
                        }
                        writer.drain().await.unwrap();
                        writer.write_eof();
                        let got = reader.read_until_eof().await.unwrap();
                        support::assert_bytes_eq(&format!("client {c}"), &got, &want);
                        writer.close();
                        writer.wait_closed().await.unwrap();
                    })
                })
                .collect();
            for client in clients {
                client.await.unwrap();
            }
            server.close();
            server.wait_closed().await;
        });
    }

    /// `open_connection` to a port nobody listens on fails with `ConnectionRefused`, naming
    /// the address; a `"host:port"` string is resolved.
    fn connect_errors_and_host_names(rt) {
        let _w = support::watchdog(TEST_LIMIT, "connect_errors_and_host_names");
        rt.block_on(async {
            let (server, addr) = echo_server().await;
            // Each address `localhost` resolves to is tried until one answers.
            let (mut reader, writer) = open_connection(format!("localhost:{}", addr.port()))
                .await
                .unwrap();
            writer.write(b"by name\n").unwrap();
            assert_eq!(reader.readline().await.unwrap(), b"by name\n");
            writer.close();
            server.close();
            server.wait_closed().await;
            // The port is free again once the server's listener has closed.
            let err = open_connection(addr).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
            assert!(err.to_string().contains(&addr.to_string()), "{err}");
        });
    }
}
