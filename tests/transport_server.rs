//! Servers on both backends: `close` stops accepting but leaves live connections alone;
//! `wait_closed` returns only once the listeners are closed and every connection has
//! finished; `serve_forever` returns on `close`, and dropping it closes the server; a busy
//! port is an error naming the address.

mod support;
mod transport_support;

use std::io::ErrorKind;
use std::time::Duration;

use futures_lite::future::poll_once;
use ringloop::net::TcpStream;
use ringloop::transport;
use transport_support::{Recorder, Shared, TEST_LIMIT, any_loopback_port, wait_until};

/// Connects until the port refuses (the listener is closed); panics after a bounded wait.
async fn wait_until_refused(addr: std::net::SocketAddr) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return,
            // Queued in the backlog as the listener closed: reset. Try again.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("connect to a closing server: {e}"),
            Ok(stream) => drop(stream),
        }
        assert!(std::time::Instant::now() < deadline, "{addr} still accepts");
        ringloop::time::sleep(Duration::from_millis(1)).await;
    }
}

both_backends! {
    /// With three live connections, `close` makes the port refuse new ones at once, but
    /// `wait_closed` stays pending; the connections still echo. Once all three are closed
    /// (two by the clients, one by the server side), `wait_closed` returns.
    fn wait_closed_waits_for_live_connections(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "wait_closed_waits_for_live_connections");
        rt.block_on(async {
            let shared = Shared::default();
            let factory = shared.clone();
            let server = transport::create_server(move || factory.add(Recorder::echoing), any_loopback_port())
                .await
                .unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let mut clients = Vec::new();
            for _ in 0..3 {
                clients.push(transport::create_connection(Recorder::default, addr).await.unwrap());
            }
            wait_until("three accepted", || server.active_connections() == 3).await;

            server.close();
            assert!(!server.is_serving());
            let mut wait = Box::pin(server.wait_closed());
            assert!(poll_once(&mut wait).await.is_none());
            wait_until_refused(addr).await;
            assert!(poll_once(&mut wait).await.is_none(), "wait_closed with live connections");

            // Connections still work after close.
            let (t, r) = &clients[0];
            t.write(b"still here").unwrap();
            wait_until("echo after close", || r.borrow().received == b"still here").await;

            clients[0].0.close();
            clients[1].0.close();
            wait_until("two connections gone", || server.active_connections() == 1).await;
            assert!(poll_once(&mut wait).await.is_none(), "one connection is still live");
            // The last one is closed from the server side.
            let last = (0..3)
                .map(|i| shared.get(i))
                .find(|r| !r.borrow().lost())
                .unwrap();
            last.borrow().transport.as_ref().unwrap().close();
            ringloop::time::timeout(Duration::from_secs(10), wait).await.expect("wait_closed");
            assert_eq!(server.active_connections(), 0);
            wait_until("client saw the close", || clients[2].1.borrow().lost()).await;
        });
    }

    /// `serve_forever` returns `Ok` when another task closes the server; on a closed server it
    /// is an error. A `serve_forever` that is dropped (its task cancelled) closes the server.
    fn serve_forever_ends_with_close(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "serve_forever_ends_with_close");
        rt.block_on(async {
            let server = transport::create_server(Recorder::default, any_loopback_port()).await.unwrap();
            server.start_serving().await;
            let closer = server.clone();
            ringloop::spawn(async move { closer.close() });
            server.serve_forever().await.expect("serve_forever");
            assert!(!server.is_serving());
            assert_eq!(server.serve_forever().await.unwrap_err().kind(), ErrorKind::NotConnected);
            server.wait_closed().await;

            let server = transport::create_server(Recorder::default, any_loopback_port()).await.unwrap();
            let forever = server.clone();
            let task = ringloop::spawn(async move { forever.serve_forever().await });
            ringloop::yield_now().await;
            assert!(server.is_serving());
            task.cancel();
            assert!(task.await.unwrap_err().is_cancelled());
            assert!(!server.is_serving(), "dropping serve_forever closes the server");
            server.wait_closed().await;
        });
    }

    /// Binding a port that is in use fails with `AddrInUse`, and the message names the address.
    fn busy_port_is_an_error_naming_the_address(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "busy_port_is_an_error_naming_the_address");
        rt.block_on(async {
            let first = transport::create_server(Recorder::default, any_loopback_port()).await.unwrap();
            let addr = first.local_addrs()[0].as_inet().unwrap();
            let err = transport::create_server(Recorder::default, addr).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AddrInUse);
            assert!(err.to_string().contains(&addr.to_string()), "{err}");
            first.close();
            first.wait_closed().await;
        });
    }
}
