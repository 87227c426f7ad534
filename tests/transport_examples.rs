//! The transport examples work: the code of `examples/echo_protocol.rs` and
//! `examples/udp_echo.rs` is compiled into this test (their `main` is not run) and their
//! servers are started on a free port and echo, on both backends.

// Each example includes its own copy of `examples/common/shutdown.rs`, as when it is built
// alone.
#![allow(clippy::duplicate_mod)]

mod support;
mod transport_support;

#[allow(dead_code)]
#[path = "../examples/echo_protocol.rs"]
mod echo_protocol;
#[allow(dead_code)]
#[path = "../examples/udp_echo.rs"]
mod udp_echo;

use std::rc::Rc;

use ringloop::net::{TcpStream, UdpSocket};
use support::assert_bytes_eq;
use transport_support::{TEST_LIMIT, any_loopback_port, pattern};

both_backends! {
    /// The `echo_protocol` server sends back 2 MiB byte-exact and closes after the client's
    /// half-close.
    fn echo_protocol_example_echoes(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "echo_protocol_example_echoes");
        rt.block_on(async {
            let server = echo_protocol::start("127.0.0.1:0").await.unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let client = Rc::new(TcpStream::connect(addr).await.unwrap());
            let data = pattern(2 * 1024 * 1024);
            let writer = Rc::clone(&client);
            let payload = data.clone();
            ringloop::spawn(async move {
                writer.write_all(payload).await.0.unwrap();
                writer.shutdown(std::net::Shutdown::Write).unwrap();
            });
            let mut echoed = Vec::new();
            loop {
                let (res, buf) = client.read(Vec::with_capacity(64 * 1024)).await;
                if res.unwrap() == 0 {
                    break;
                }
                echoed.extend_from_slice(&buf);
            }
            assert_bytes_eq("echo", &echoed, &data);
            server.close();
            server.wait_closed().await;
        });
    }

    /// The `udp_echo` endpoint sends a datagram back to its sender.
    fn udp_echo_example_echoes(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "udp_echo_example_echoes");
        rt.block_on(async {
            let endpoint = udp_echo::start(any_loopback_port()).await.unwrap();
            let addr = endpoint.sockname().unwrap().as_inet().unwrap();
            let client = UdpSocket::bind(any_loopback_port()).unwrap();
            let (res, _) = client.send_to(b"marco".as_slice(), addr).await;
            res.unwrap();
            let (res, buf) = client.recv_from(Vec::with_capacity(64)).await;
            let (n, from) = res.unwrap();
            assert_eq!((&buf[..n], from), (&b"marco"[..], addr));
            endpoint.close();
        });
    }
}
