//! Servers on both backends: `close` stops accepting but leaves live connections alone;
//! `wait_closed` returns only once the listeners are closed and every connection has
//! finished; `close_clients` flushes and closes the live connections, `abort_clients` drops
//! their buffers, including those of connections accepted whose transport is not made yet;
//! `serve_forever` returns on `close`, and dropping it closes the server; a busy port is an
//! error naming the address.

mod support;
mod transport_support;

use std::io::ErrorKind;
use std::time::Duration;

use futures_lite::future::poll_once;
use ringloop::net::TcpStream;
use ringloop::transport;
use transport_support::{Recorder, Shared, TEST_LIMIT, any_loopback_port, wait_until};

/// Reads from `stream` until EOF.
async fn read_to_end(stream: &TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let (res, buf) = stream.read(Vec::with_capacity(256 * 1024)).await;
        match res.expect("read") {
            0 => return all,
            _ => all.extend_from_slice(&buf),
        }
    }
}

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

    /// `close_clients` closes every live server-side connection after flushing it: each client
    /// reads everything the server wrote, then EOF, and `wait_closed` can complete.
    /// `abort_clients` drops what the server had buffered: the client gets less than was
    /// written.
    fn close_clients_flushes_and_abort_clients_drops(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "close_clients_flushes_and_abort_clients_drops");
        rt.block_on(async {
            let shared = Shared::default();
            let factory = shared.clone();
            let server = transport::create_server(move || factory.add(Recorder::default), any_loopback_port())
                .await
                .unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let mut peers = Vec::new();
            for _ in 0..2 {
                peers.push(TcpStream::connect(addr).await.unwrap());
            }
            wait_until("two accepted", || shared.len() == 2).await;
            let big = transport_support::pattern(32 * 1024 * 1024);
            let small = transport_support::pattern(100_000);
            for i in 0..2 {
                let t = shared.get(i).borrow().transport.clone().unwrap();
                t.write(&small).unwrap();
            }
            server.close_clients();
            for peer in &peers {
                assert_eq!(read_to_end(peer).await, small, "close_clients flushes");
            }
            server.close();
            ringloop::time::timeout(Duration::from_secs(10), server.wait_closed()).await.expect("wait_closed");

            // A server that answers with 32 MiB, to a client that does not read yet.
            let shared = Shared::default();
            let factory = shared.clone();
            let answer = big.clone();
            let server = transport::create_server(
                move || {
                    let answer = answer.clone();
                    factory.add(move || Recorder { reply: Some(answer), ..Recorder::default() })
                },
                any_loopback_port(),
            )
            .await
            .unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let peer = TcpStream::connect(addr).await.unwrap();
            peer.write_all(b"go".as_slice()).await.0.unwrap();
            wait_until("the reply is stuck behind the peer", || {
                shared.len() == 1 && {
                    let t = shared.get(0).borrow().transport.clone().unwrap();
                    let size = t.get_write_buffer_size();
                    size > 0 && size < big.len()
                }
            })
            .await;
            server.abort_clients();
            let got = read_to_end(&peer).await;
            assert!(got.len() < big.len(), "abort_clients must drop the buffer");
            assert_eq!(got, big[..got.len()], "what arrived is a prefix");
            wait_until("connection_lost", || shared.get(0).borrow().lost()).await;
            assert_eq!(shared.get(0).borrow().lost_with(), Some(None));
            server.close();
            server.wait_closed().await;
        });
    }

    /// A connection accepted just before `close_clients`, whose task has not made its transport
    /// yet (the protocol factory has not run), is closed too once its transport exists: the
    /// client reads EOF and `wait_closed` returns. Before, its transport missed the call and
    /// the server waited for the client to hang up.
    fn close_clients_reaches_a_connection_not_started_yet(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "close_clients_reaches_a_connection_not_started_yet");
        rt.block_on(async {
            let made = std::rc::Rc::new(std::cell::Cell::new(0));
            let count = std::rc::Rc::clone(&made);
            let server = transport::create_server(
                move || {
                    count.set(count.get() + 1);
                    Recorder::default()
                },
                any_loopback_port(),
            )
            .await
            .unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            // A blocking connect (loopback completes it in the kernel), so the loop runs
            // nothing before the yields below.
            let client = TcpStream::from_std(std::net::TcpStream::connect(addr).unwrap()).unwrap();
            // Yielding keeps this task in the ready queue, so it runs between the accept task
            // (which counts the connection and queues its task) and that connection task.
            support::yield_until_deadline("accepted", || server.active_connections() == 1).await;
            assert_eq!(made.get(), 0, "the connection's task ran already: the test missed its window");
            server.close_clients();
            server.close();
            let eof = ringloop::time::timeout(Duration::from_secs(10), read_to_end(&client)).await;
            assert_eq!(eof.expect("the client gets EOF"), b"");
            ringloop::time::timeout(Duration::from_secs(10), server.wait_closed())
                .await
                .expect("wait_closed after close_clients");
            assert_eq!(made.get(), 1);
        });
    }

    /// A protocol factory that panics for one connection ends only that connection (its
    /// client sees EOF or a reset); the server goes on accepting and serving others.
    fn panicking_factory_ends_only_its_connection(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "panicking_factory_ends_only_its_connection");
        rt.block_on(async {
            let made = std::rc::Rc::new(std::cell::Cell::new(0));
            let count = std::rc::Rc::clone(&made);
            let server = transport::create_server(
                move || {
                    count.set(count.get() + 1);
                    assert!(count.get() != 1, "test: the first protocol fails to build");
                    Recorder::echoing()
                },
                any_loopback_port(),
            )
            .await
            .unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let first = TcpStream::connect(addr).await.unwrap();
            let (res, _) = first.read(Vec::with_capacity(8)).await;
            assert!(matches!(res, Ok(0) | Err(_)), "the failed connection is closed: {res:?}");
            let (t, r) = transport::create_connection(Recorder::default, addr).await.unwrap();
            t.write(b"second").unwrap();
            wait_until("the second connection echoes", || r.borrow().received == b"second").await;
            assert_eq!(made.get(), 2);
            t.close();
            server.close();
            server.wait_closed().await;
        });
    }
}
