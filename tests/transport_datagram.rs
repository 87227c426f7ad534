//! Datagram transports on both backends: an echo endpoint returns every datagram to its
//! sender, whole and in order; ICMP errors reach `error_received` without ending the
//! endpoint; `sendto` checks its address and refuses once closing; `close` ends with
//! `connection_lost(None)`.

mod support;
mod transport_support;

use std::io::{self, ErrorKind};
use std::net::SocketAddr;

use ringloop::transport::{self, DatagramProtocol, DatagramTransport};
use transport_support::{TEST_LIMIT, any_loopback_port, pattern, wait_until};

/// Logs datagrams and errors; echoes when asked.
#[derive(Default)]
struct Endpoint {
    transport: Option<DatagramTransport>,
    echo: bool,
    datagrams: Vec<(Vec<u8>, SocketAddr)>,
    errors: Vec<ErrorKind>,
    lost: Option<Option<ErrorKind>>,
}

impl DatagramProtocol for Endpoint {
    fn connection_made(&mut self, transport: DatagramTransport) {
        self.transport = Some(transport);
    }
    fn datagram_received(&mut self, data: &[u8], addr: SocketAddr) {
        assert!(self.lost.is_none(), "datagram after connection_lost");
        self.datagrams.push((data.to_vec(), addr));
        if self.echo {
            self.transport
                .as_ref()
                .unwrap()
                .sendto(data, Some(addr))
                .expect("echo sendto");
        }
    }
    fn error_received(&mut self, err: io::Error) {
        self.errors.push(err.kind());
    }
    fn connection_lost(&mut self, err: Option<io::Error>) {
        assert!(self.lost.is_none(), "connection_lost twice");
        self.lost = Some(err.map(|e| e.kind()));
    }
}

both_backends! {
    /// Datagrams of sizes 0 to 60,000 bytes sent to an echo endpoint come back whole, in order,
    /// from the server's address; the server saw them from the client's address.
    fn datagram_echo_round_trip(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "datagram_echo_round_trip");
        rt.block_on(async {
            let (server, server_side) = transport::create_datagram_endpoint(
                || Endpoint { echo: true, ..Endpoint::default() },
                Some(any_loopback_port()),
                None,
            )
            .unwrap();
            let server_addr = server.sockname().unwrap().as_inet().unwrap();
            let (client, client_side) =
                transport::create_datagram_endpoint(Endpoint::default, None, Some(server_addr)).unwrap();
            assert_eq!(client.peername().unwrap().as_inet(), Some(server_addr));
            let client_addr = client.sockname().unwrap().as_inet().unwrap();

            let sizes = [0, 1, 100, 1500, 9000, 60_000];
            for (i, &size) in sizes.iter().enumerate() {
                // One at a time, so loopback never has to drop one.
                client.sendto(&pattern(size), None).unwrap();
                wait_until("the echo", || client_side.borrow().datagrams.len() == i + 1).await;
            }
            for (i, &size) in sizes.iter().enumerate() {
                let (data, from) = &client_side.borrow().datagrams[i];
                assert_eq!(data, &pattern(size), "datagram {i} ({size} bytes)");
                assert_eq!(*from, server_addr);
                assert_eq!(server_side.borrow().datagrams[i].1, client_addr);
            }
            client.close();
            server.close();
            wait_until("both closed", || {
                client_side.borrow().lost.is_some() && server_side.borrow().lost.is_some()
            })
            .await;
            assert_eq!(client_side.borrow().lost, Some(None));
            assert_eq!(server.fd(), None);
        });
    }

    /// A connected endpoint whose peer port is closed gets `ConnectionRefused` through
    /// `error_received` and stays open (not closing, no `connection_lost`); `close` then ends
    /// it with `connection_lost(None)`.
    fn icmp_error_goes_to_error_received(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "icmp_error_goes_to_error_received");
        rt.block_on(async {
            // A port with nothing bound: bind, note the address, close.
            let closed_port = std::net::UdpSocket::bind(any_loopback_port()).unwrap().local_addr().unwrap();
            let (client, side) =
                transport::create_datagram_endpoint(Endpoint::default, None, Some(closed_port)).unwrap();
            wait_until("error_received(ConnectionRefused)", || {
                let _ = client.sendto(b"anyone?", None);
                side.borrow().errors.contains(&ErrorKind::ConnectionRefused)
            })
            .await;
            assert!(!client.is_closing(), "an ICMP error does not end the endpoint");
            assert!(side.borrow().lost.is_none());
            client.close();
            wait_until("connection_lost", || side.borrow().lost.is_some()).await;
            assert_eq!(side.borrow().lost, Some(None));
        });
    }

    /// `sendto` without an address on an unconnected endpoint, or with another address than
    /// the connected peer, is `InvalidInput`; after `close` or `abort` it is `NotConnected`.
    fn sendto_checks_address_and_state(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "sendto_checks_address_and_state");
        rt.block_on(async {
            let (open, open_side) =
                transport::create_datagram_endpoint(Endpoint::default, Some(any_loopback_port()), None).unwrap();
            assert_eq!(open.sendto(b"x", None).unwrap_err().kind(), ErrorKind::InvalidInput);
            let elsewhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
            let me = open.sockname().unwrap().as_inet().unwrap();
            let (connected, _) =
                transport::create_datagram_endpoint(Endpoint::default, None, Some(me)).unwrap();
            assert_eq!(connected.sendto(b"x", Some(elsewhere)).unwrap_err().kind(), ErrorKind::InvalidInput);
            connected.sendto(b"x", Some(me)).expect("sendto the connected peer by name");
            connected.abort();
            assert!(connected.is_closing());
            assert_eq!(connected.sendto(b"x", None).unwrap_err().kind(), ErrorKind::NotConnected);
            open.close();
            assert_eq!(open.sendto(b"x", Some(me)).unwrap_err().kind(), ErrorKind::NotConnected);
            wait_until("closed", || open_side.borrow().lost.is_some()).await;
            assert!(matches!(
                transport::create_datagram_endpoint(Endpoint::default, None, None),
                Err(e) if e.kind() == ErrorKind::InvalidInput
            ));
        });
    }
}
