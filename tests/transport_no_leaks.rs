//! Transports leak no descriptor, on both backends: connections that end every way (close,
//! abort, peer EOF, peer reset, write_eof then close, a server closed with clients aborted),
//! plus datagram endpoints and a Unix server, leave the process's open fds as they were once
//! everything has reported `connection_lost` and the runtime is dropped.

mod support;
mod transport_support;

use std::net::Shutdown;
use std::time::Duration;

use ringloop::net::TcpStream;
use ringloop::transport;
use transport_support::{Recorder, Shared, TEST_LIMIT, any_loopback_port, wait_until};

/// Connections per way of ending.
const ROUNDS: usize = 10;

both_backends! {
    /// Open fds after the runtime is dropped equal those before it was built.
    fn transports_leak_no_fds(backend: Backend) {
        let _serial = support::serial();
        let _watchdog = support::watchdog(TEST_LIMIT, "transports_leak_no_fds");
        let before = support::open_fds();
        let path = std::env::temp_dir().join(format!("ringloop-noleak-{backend:?}-{}.sock", std::process::id()));
        {
            let rt = support::runtime(backend);
            rt.block_on(async {
                let shared = Shared::default();
                let factory = shared.clone();
                let server = transport::create_server(move || factory.add(Recorder::echoing), any_loopback_port())
                    .await
                    .unwrap();
                let addr = server.local_addrs()[0].as_inet().unwrap();
                let mut clients = Vec::new();
                for round in 0..ROUNDS {
                    // Through a transport: close, abort, write_eof + close.
                    let (t, r) = transport::create_connection(Recorder::default, addr).await.unwrap();
                    t.write(b"ping").unwrap();
                    match round % 3 {
                        0 => t.close(),
                        1 => t.abort(),
                        _ => {
                            t.write_eof();
                            t.close();
                        }
                    }
                    clients.push(r);
                    // Raw peers: half-close, reset, plain drop.
                    let peer = TcpStream::connect(addr).await.unwrap();
                    match round % 3 {
                        0 => peer.shutdown(Shutdown::Write).unwrap(),
                        1 => peer.set_linger(Some(Duration::ZERO)).unwrap(),
                        _ => {}
                    }
                    drop(peer);
                }
                // One client left open, closed by aborting the server's clients.
                let (_open, open_r) = transport::create_connection(Recorder::default, addr).await.unwrap();
                wait_until("every connection accepted", || shared.len() == 2 * ROUNDS + 1).await;
                server.close();
                server.abort_clients();
                server.wait_closed().await;
                wait_until("every client lost", || {
                    open_r.borrow().lost() && clients.iter().all(|r| r.borrow().lost())
                })
                .await;

                let (udp, udp_r) = transport::create_datagram_endpoint(
                    Recorder::datagram,
                    Some(any_loopback_port()),
                    None,
                )
                .unwrap();
                udp.close();
                wait_until("datagram endpoint lost", || udp_r.borrow().lost()).await;

                let unix = transport::create_unix_server(Recorder::default, &path).await.unwrap();
                let (t, r) = transport::create_unix_connection(Recorder::default, &path).await.unwrap();
                t.close();
                wait_until("unix client lost", || r.borrow().lost()).await;
                unix.close();
                unix.abort_clients();
                unix.wait_closed().await;
            });
        }
        let after = support::open_fds();
        assert_eq!(after, before, "fds leaked: {:?}", support::describe_open_fds());
        assert!(!path.exists());
    }
}
