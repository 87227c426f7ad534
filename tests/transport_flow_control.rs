//! Flow control on both backends: `pause_writing` when the write buffer rises above the
//! high-water mark, `resume_writing` when it drains to the low-water mark, no byte lost or
//! reordered; `pause_reading` stops `data_received` until `resume_reading`, losing nothing.

mod support;
mod transport_support;

use std::rc::Rc;
use std::time::Duration;

use ringloop::net::{TcpListener, TcpStream};
use ringloop::transport::{self, Protocol, Transport};
use support::assert_bytes_eq;
use transport_support::{
    Callback, Recorder, Shared, TEST_LIMIT, any_loopback_port, pattern, wait_until,
};

const HIGH: usize = 16 * 1024;
const LOW: usize = 4 * 1024;
/// Bytes the test writes after the peer resumes reading.
const AFTER_RESUME: usize = 1024 * 1024;
/// Upper bound on what may be written before the transport must have paused the protocol.
const PAUSE_BOUND: usize = 256 * 1024 * 1024;

/// Spawns a task that reads `stream` to EOF and returns the bytes.
fn read_all(stream: Rc<TcpStream>) -> ringloop::JoinHandle<Vec<u8>> {
    ringloop::spawn(async move {
        let mut all = Vec::new();
        loop {
            let (res, buf) = stream.read(Vec::with_capacity(256 * 1024)).await;
            match res.expect("peer read") {
                0 => return all,
                _ => all.extend_from_slice(&buf),
            }
        }
    })
}

/// Pauses itself after every `data_received` and asserts no data arrives while paused.
#[derive(Default)]
struct PauseEach {
    transport: Option<Transport>,
    paused: bool,
    received: Vec<u8>,
    calls: usize,
}

impl Protocol for PauseEach {
    fn connection_made(&mut self, transport: Transport) {
        self.transport = Some(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        assert!(!self.paused, "data_received while reading was paused");
        self.received.extend_from_slice(data);
        self.calls += 1;
        self.paused = true;
        let t = self.transport.as_ref().unwrap();
        t.pause_reading();
        assert!(!t.is_reading());
    }
}

both_backends! {
    /// With marks of 16 KiB/4 KiB and a peer that does not read, writing eventually makes the
    /// transport call `pause_writing` (once, with the buffer above 16 KiB). When the peer reads
    /// again, `resume_writing` follows with the buffer at or below 4 KiB. Everything written,
    /// before and after, reaches the peer byte-exact.
    fn pause_and_resume_writing_lose_no_data(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "pause_and_resume_writing_lose_no_data");
        rt.block_on(async {
            let listener = TcpListener::bind(any_loopback_port()).unwrap();
            let addr = listener.local_addr().unwrap();
            let (t, recorder) = transport::create_connection(Recorder::default, addr)
                .await
                .unwrap();
            let (peer, _) = listener.accept().await.unwrap();
            t.set_write_buffer_limits(Some(HIGH), Some(LOW)).unwrap();
            assert_eq!(t.get_write_buffer_limits(), (LOW, HIGH));

            let mut sent = Vec::new();
            let chunk = pattern(8 * 1024);
            // Until the protocol is paused with the buffer above the mark. A slow completion
            // may pause and resume it before the socket is full (the fault injector delays
            // completions): only a full socket keeps it paused.
            let pauses = || recorder.borrow().count(&Callback::PauseWriting);
            let resumes = || recorder.borrow().count(&Callback::ResumeWriting);
            while !(pauses() > resumes() && t.get_write_buffer_size() > HIGH) {
                assert!(sent.len() < PAUSE_BOUND, "no pause_writing after {} bytes", sent.len());
                t.write(&chunk).unwrap();
                sent.extend_from_slice(&chunk);
                ringloop::yield_now().await;
            }
            let paused = pauses();
            assert_eq!(resumes(), paused - 1);

            let reader = read_all(Rc::new(peer));
            wait_until("resume_writing", || resumes() == paused).await;
            assert!(t.get_write_buffer_size() <= LOW);

            let tail = pattern(AFTER_RESUME);
            t.write(&tail).unwrap();
            sent.extend_from_slice(&tail);
            t.close();
            let got = reader.await.unwrap();
            assert_bytes_eq("peer received", &got, &sent);

            // Pauses and resumes alternate, starting with a pause.
            let r = recorder.borrow();
            let flow: Vec<_> = r
                .log
                .iter()
                .filter(|c| matches!(c, Callback::PauseWriting | Callback::ResumeWriting))
                .collect();
            for (i, c) in flow.iter().enumerate() {
                let want = if i % 2 == 0 { Callback::PauseWriting } else { Callback::ResumeWriting };
                assert_eq!(**c, want, "flow-control callbacks out of order: {flow:?}");
            }
        });
    }

    /// A protocol that writes far past the high-water mark (default 64 KiB) from inside
    /// `data_received` gets `pause_writing` after `data_received` returns, not nested in it
    /// (the recorder panics on re-entry), then `resume_writing` as the peer reads; the peer
    /// gets the whole reply.
    fn pause_writing_is_not_nested_in_data_received(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "pause_writing_is_not_nested_in_data_received");
        rt.block_on(async {
            let reply = pattern(4 * 1024 * 1024);
            let shared = Shared::default();
            let factory = shared.clone();
            let answer = reply.clone();
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
            let peer = Rc::new(TcpStream::connect(addr).await.unwrap());
            peer.write_all(b"go".as_slice()).await.0.unwrap();
            let got = read_all(Rc::clone(&peer)).await.unwrap();
            assert_bytes_eq("peer received", &got, &reply);
            wait_until("connection_lost", || shared.get(0).borrow().lost()).await;
            {
                let recorder = shared.get(0);
                let r = recorder.borrow();
                let data_at = r.log.iter().position(|c| matches!(c, Callback::Data(_))).unwrap();
                let pause_at = r.log.iter().position(|c| *c == Callback::PauseWriting).unwrap();
                assert!(data_at < pause_at, "pause_writing before data_received: {:?}", r.log);
                assert_eq!(r.count(&Callback::PauseWriting), 1);
                assert_eq!(r.count(&Callback::ResumeWriting), 1);
            }
            server.close();
            server.wait_closed().await;
        });
    }

    /// While reading is paused, `data_received` is not called (the protocol pauses itself in
    /// every `data_received` and asserts it is never called while paused); after
    /// `resume_reading` the data flows again, and all of it arrives in order.
    fn pause_reading_stops_data_received_until_resume(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "pause_reading_stops_data_received_until_resume");
        rt.block_on(async {
            let listener = TcpListener::bind(any_loopback_port()).unwrap();
            let addr = listener.local_addr().unwrap();
            let (t, protocol) = transport::create_connection(PauseEach::default, addr)
                .await
                .unwrap();
            let (peer, _) = listener.accept().await.unwrap();

            // Paused before any data: a bounded wait shows nothing is delivered.
            t.pause_reading();
            protocol.borrow_mut().paused = true;
            peer.write_all(b"early".as_slice()).await.0.unwrap();
            ringloop::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(protocol.borrow().calls, 0, "data_received while paused");
            assert!(!t.is_reading());

            let data = pattern(2 * 1024 * 1024);
            let sender = Rc::new(peer);
            let writer = Rc::clone(&sender);
            let payload = data.clone();
            ringloop::spawn(async move { writer.write_all(payload).await.0.unwrap() });

            let total = 5 + data.len();
            while protocol.borrow().received.len() < total {
                protocol.borrow_mut().paused = false;
                t.resume_reading();
                assert!(t.is_reading());
                wait_until("data_received after resume", || protocol.borrow().paused).await;
            }
            let p = protocol.borrow();
            assert_bytes_eq("early bytes", &p.received[..5], b"early");
            assert_bytes_eq("stream bytes", &p.received[5..], &data);
        });
    }
}
