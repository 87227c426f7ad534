//! Stream transports echo on both backends: a `Protocol` server and a `BufferedProtocol`
//! server (whose `get_buffer` hands out small slices) send back every byte, in order, and the
//! callbacks arrive in asyncio's order without re-entering the protocol.

mod support;
mod transport_support;

use std::cell::RefCell;
use std::rc::Rc;

use ringloop::transport::{self, BufferedProtocol, Transport};
use support::assert_bytes_eq;
use transport_support::{Callback, Recorder, Shared, TEST_LIMIT, pattern, wait_until};

/// Bytes sent through each echo: several reads' worth, so chunking and buffering are exercised.
const ECHO_BYTES: usize = 1024 * 1024 + 17;

/// Echoes through a buffer that takes at most `slice` bytes per `get_buffer`.
struct BufferedEcho {
    transport: Option<Transport>,
    buf: Vec<u8>,
    slice: usize,
    get_buffer_calls: Rc<RefCell<usize>>,
}

impl BufferedProtocol for BufferedEcho {
    fn connection_made(&mut self, transport: Transport) {
        self.transport = Some(transport);
    }
    fn get_buffer(&mut self, size_hint: usize) -> &mut [u8] {
        assert!(size_hint > 0, "get_buffer with nothing waiting");
        *self.get_buffer_calls.borrow_mut() += 1;
        self.buf.resize(self.slice, 0);
        &mut self.buf
    }
    fn buffer_updated(&mut self, n: usize) {
        assert!(n <= self.slice);
        let t = self.transport.as_ref().unwrap();
        t.write(&self.buf[..n]).expect("echo write");
    }
}

/// Sends `data` to `addr` through a client transport, half-closes, and returns what came back
/// before the server closed, with the client's callback log.
async fn round_trip(addr: std::net::SocketAddr, data: &[u8]) -> (Vec<u8>, Vec<Callback>) {
    let (client, recorder) = transport::create_connection(Recorder::default, addr)
        .await
        .expect("create_connection");
    client.write(data).expect("client write");
    client.write_eof();
    wait_until("the client's connection is lost", || {
        recorder.borrow().lost()
    })
    .await;
    let r = recorder.borrow();
    (r.received.clone(), r.log.clone())
}

both_backends! {
    /// A `Protocol` echo server returns every byte in order; the client sees
    /// `connection_made`, data, one `eof_received`, then `connection_lost(None)`; the server's
    /// protocol sees the same order (each callback outside any other).
    fn protocol_echo_round_trip(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "protocol_echo_round_trip");
        rt.block_on(async {
            let shared = Shared::default();
            let factory = shared.clone();
            let server = transport::create_server(
                move || factory.add(Recorder::echoing),
                transport_support::any_loopback_port(),
            )
            .await
            .expect("create_server");
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let data = pattern(ECHO_BYTES);
            let (echoed, log) = round_trip(addr, &data).await;
            assert_bytes_eq("echoed bytes", &echoed, &data);
            assert_eq!(log.first(), Some(&Callback::Made));
            assert_eq!(log.last(), Some(&Callback::Lost(None)));
            assert_eq!(log.iter().filter(|c| **c == Callback::Eof).count(), 1);

            wait_until("the server's connection is lost", || {
                shared.len() == 1 && shared.get(0).borrow().lost()
            })
            .await;
            {
                let server_side = shared.get(0);
                let server_side = server_side.borrow();
                assert_bytes_eq("server received", &server_side.received, &data);
                assert_eq!(server_side.count(&Callback::Eof), 1);
                assert_eq!(server_side.lost_with(), Some(None));
            }
            server.close();
            server.wait_closed().await;
        });
    }

    /// A `BufferedProtocol` server whose `get_buffer` offers 7 bytes at a time still echoes
    /// every byte in order (received data is split over as many buffers as it takes).
    fn buffered_protocol_echo_round_trip(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "buffered_protocol_echo_round_trip");
        rt.block_on(async {
            let calls = Rc::new(RefCell::new(0));
            let counted = Rc::clone(&calls);
            let server = transport::create_server(
                move || BufferedEcho {
                    transport: None,
                    buf: Vec::new(),
                    slice: 7,
                    get_buffer_calls: Rc::clone(&counted),
                },
                transport_support::any_loopback_port(),
            )
            .await
            .expect("create_server");
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let data = pattern(64 * 1024 + 3);
            let (echoed, _) = round_trip(addr, &data).await;
            assert_bytes_eq("echoed bytes", &echoed, &data);
            assert!(*calls.borrow() >= data.len() / 7, "get_buffer called {} times", calls.borrow());
            server.close();
            server.wait_closed().await;
        });
    }
}
