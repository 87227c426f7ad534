//! The protocol returned by `create_connection` is shared with the transport's task: a
//! callback that falls due while the caller holds a borrow of it (across an await) waits for
//! the borrow to end, then runs; nothing panics and nothing is lost. On both backends.

// Holding a borrow across an await is exactly the situation under test.
#![allow(clippy::await_holding_refcell_ref)]

mod support;
mod transport_support;

use std::time::Duration;

use ringloop::net::TcpListener;
use ringloop::transport;
use transport_support::{Recorder, TEST_LIMIT, any_loopback_port, wait_until};

both_backends! {
    /// The test borrows the protocol, lets data arrive and waits 30 ms holding the borrow:
    /// `data_received` cannot have run (the borrow is shared, a callback needs it mutably). After
    /// the borrow ends the data is delivered whole, followed by EOF and `connection_lost`.
    fn callback_waits_for_a_borrow_held_across_an_await(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "callback_waits_for_a_borrow_held_across_an_await");
        rt.block_on(async {
            let listener = TcpListener::bind(any_loopback_port()).unwrap();
            let addr = listener.local_addr().unwrap();
            let (_t, recorder) = transport::create_connection(Recorder::default, addr).await.unwrap();
            let (peer, _) = listener.accept().await.unwrap();
            {
                let held = recorder.borrow();
                peer.write_all(b"while borrowed".as_slice()).await.0.unwrap();
                drop(peer);
                ringloop::time::sleep(Duration::from_millis(30)).await;
                assert!(held.received.is_empty());
            }
            wait_until("delivered after the borrow ended", || recorder.borrow().lost()).await;
            let r = recorder.borrow();
            assert_eq!(r.received, b"while borrowed");
            assert_eq!(r.lost_with(), Some(None));
        });
    }
}
