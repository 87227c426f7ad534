//! 1 000 TLS handshakes with random cancellations — the client's handshake dropped after a
//! random number of polls or by a random timeout, streams dropped mid-read, some connections
//! echoing and closing cleanly — leave no descriptor open, no op in flight, no task alive and
//! no receive buffer lent, on both backends.
#![cfg(feature = "tls")]

mod support;

use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future::poll_once;
use ringloop::net::{TcpListener, TcpStream};
use ringloop::time;
use ringloop::tls::{TlsAcceptor, TlsConnector, TlsStream};
use support::Rng;
use support::tls::Pki;

/// Handshakes per backend: 1 000, divided by the time scale where the machine is that much
/// slower (the old-kernel run under QEMU's software CPU: 100).
fn handshakes() -> usize {
    1000 / support::time_scale() as usize
}

/// Serves one connection: echoes until the end (then closes cleanly) or an error.
async fn serve(acceptor: TlsAcceptor, tcp: TcpStream, live: Rc<Cell<usize>>) {
    live.set(live.get() + 1);
    if let Ok(tls) = acceptor.accept(tcp).await {
        echo(&tls).await;
    }
    live.set(live.get() - 1);
}

async fn echo(tls: &TlsStream<TcpStream>) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let (n, b) = tls.read(buf).await;
        buf = b;
        match n {
            Ok(0) => {
                let _ = tls.shutdown().await;
                return;
            }
            Err(_) => return,
            Ok(_) => {
                let (res, b) = tls.write_all(buf).await;
                buf = b;
                if res.is_err() {
                    return;
                }
            }
        }
    }
}

both_backends! {
    fn thousand_cancelled_handshakes_leak_nothing(backend: Backend) {
        let _serial = support::serial();
        let _wd = support::watchdog(Duration::from_secs(300), "thousand_cancelled_handshakes_leak_nothing");
        let pki = Pki::new();
        let leaf = pki.leaf("server", &["localhost"]);
        let acceptor = TlsAcceptor::new(pki.server(&leaf, &[]));
        let connector = TlsConnector::new(pki.client(&[]));
        let seed = support::fault_seed().unwrap_or(0x7115);
        let before = support::open_fds();
        {
            let rt = support::runtime(backend);
            let outcomes = rt.block_on(async {
                let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
                let addr = listener.local_addr().unwrap();
                let live = Rc::new(Cell::new(0));
                let server = {
                    let live = live.clone();
                    ringloop::spawn(async move {
                        loop {
                            let (tcp, _) = listener.accept().await.unwrap();
                            ringloop::spawn(serve(acceptor.clone(), tcp, live.clone()));
                        }
                    })
                };
                let mut rng = Rng::new(seed);
                let mut outcomes = [0usize; 4];
                for i in 0..handshakes() {
                    let tcp = TcpStream::connect(addr).await.unwrap();
                    let mut handshake = Box::pin(connector.connect("localhost", tcp));
                    match rng.below(4) {
                        // Dropped after a few polls, wherever the handshake is.
                        0 => {
                            for _ in 0..rng.below(4) {
                                if poll_once(&mut handshake).await.is_some() {
                                    break;
                                }
                            }
                            outcomes[0] += 1;
                        }
                        // Cut by a timeout of up to a millisecond.
                        1 => {
                            let limit = Duration::from_micros(rng.below(1000));
                            if time::timeout(limit, &mut handshake).await.is_err() {
                                outcomes[1] += 1;
                            }
                        }
                        // Finished, then dropped while a read waits.
                        2 => {
                            let tls = handshake.await.expect("handshake");
                            let r = time::timeout(Duration::from_micros(200), tls.read(Vec::with_capacity(64))).await;
                            assert!(r.is_err(), "nothing was sent");
                            outcomes[2] += 1;
                        }
                        // Finished, echoed, closed cleanly.
                        _ => {
                            let tls = handshake.await.expect("handshake");
                            let msg = format!("round {i}").into_bytes();
                            tls.write_all(msg.clone()).await.0.unwrap();
                            let (res, got) = tls.read_exact(Vec::with_capacity(msg.len())).await;
                            res.unwrap();
                            assert_eq!(got, msg);
                            tls.shutdown().await.unwrap();
                            assert_eq!(tls.read(Vec::with_capacity(8)).await.0.unwrap(), 0);
                            outcomes[3] += 1;
                        }
                    }
                }
                support::yield_until_within(Duration::from_secs(60), "every server connection ended", || {
                    live.get() == 0
                })
                .await;
                server.cancel();
                let _ = server.await;
                outcomes
            });
            eprintln!("{backend:?}: dropped mid-handshake {}, timed out {}, dropped reading {}, clean {}",
                outcomes[0], outcomes[1], outcomes[2], outcomes[3]);
            assert!(outcomes.iter().all(|&n| n > 0), "every way of ending happened: {outcomes:?}");
            // Cancelled receives and the sends of dropped streams finish on the loop.
            support::settle_tasks_and_ops(&rt);
            let stats = rt.stats();
            assert_eq!(stats.tasks, 0, "tasks left");
            assert_eq!(stats.recv_buffers_lent, 0, "receive buffers still lent");
        }
        let after = support::open_fds();
        assert_eq!(after, before, "fds: {:?}", support::describe_open_fds());
    }
}
