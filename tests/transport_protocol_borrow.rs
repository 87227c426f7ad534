//! The protocol returned by `create_connection` (or `subprocess_shell`) is shared with the
//! transport's tasks: a callback that falls due while the caller holds a borrow of it (across
//! an await) waits for the borrow to end, then runs; nothing panics and nothing is lost. The
//! wait is asleep: the borrow's guard wakes the task when dropped, so the loop does not turn
//! (nor enter the kernel) over and over while the borrow is held. On both backends.

// Holding a borrow across an await is exactly the situation under test.
#![allow(clippy::await_holding_refcell_ref)]

mod support;
mod transport_support;

use std::time::Duration;

use ringloop::net::TcpListener;
use ringloop::transport::{self, SubprocessProtocol};
use transport_support::{Recorder, TEST_LIMIT, any_loopback_port, wait_until};

/// How long the tests hold a borrow with a callback waiting for it.
const HOLD: Duration = Duration::from_millis(200);

/// Most kernel entries (`io_uring_enter`/`epoll_wait`) the loop may make while the borrow is
/// held: a handful for the I/O that completes meanwhile and the hold's own timer. Retrying the
/// callback on a timer or by yielding makes one or more per millisecond held.
const MAX_ENTERS_WHILE_HELD: u64 = 20;

/// Collects what a child writes to stdout and whether it was told about the exit.
#[derive(Default)]
struct Output {
    stdout: Vec<u8>,
    lost: bool,
}

impl SubprocessProtocol for Output {
    fn pipe_data_received(&mut self, fd: i32, data: &[u8]) {
        if fd == 1 {
            self.stdout.extend_from_slice(data);
        }
    }
    fn connection_lost(&mut self, _err: Option<std::io::Error>) {
        self.lost = true;
    }
}

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

    /// While the test holds a borrow for 200 ms with `data_received` due, the stream
    /// transport's task sleeps: the loop enters the kernel at most 20 times (it retried every
    /// millisecond before, about 200 times). Dropping the borrow wakes it.
    fn stream_task_sleeps_while_the_protocol_is_borrowed(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "stream_task_sleeps_while_the_protocol_is_borrowed");
        rt.block_on(async {
            let listener = TcpListener::bind(any_loopback_port()).unwrap();
            let addr = listener.local_addr().unwrap();
            let (_t, recorder) = transport::create_connection(Recorder::default, addr).await.unwrap();
            let (peer, _) = listener.accept().await.unwrap();
            let held = recorder.borrow();
            let before = rt.stats().kernel_enters;
            peer.write_all(b"while borrowed".as_slice()).await.0.unwrap();
            drop(peer);
            ringloop::time::sleep(HOLD).await;
            let enters = rt.stats().kernel_enters - before;
            assert!(held.received.is_empty());
            drop(held);
            assert!(
                enters <= MAX_ENTERS_WHILE_HELD,
                "{enters} kernel entries while the protocol was borrowed for {HOLD:?}"
            );
            wait_until("delivered after the borrow ended", || recorder.borrow().lost()).await;
            assert_eq!(recorder.borrow().received, b"while borrowed");
        });
    }

    /// The same for a subprocess transport: its stdout reader sleeps while the test holds a
    /// borrow of the protocol for 200 ms with `pipe_data_received` due (it yielded in a loop
    /// before, spinning the loop at full speed, and entering the kernel every few turns since
    /// the child's exit and its stderr keep ops in flight), and delivers once it is dropped.
    fn subprocess_pipes_sleep_while_the_protocol_is_borrowed(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "subprocess_pipes_sleep_while_the_protocol_is_borrowed");
        rt.block_on(async {
            let (t, output) = transport::subprocess_shell(Output::default, "echo borrowed; exec cat").await.unwrap();
            let held = output.borrow();
            let before = rt.stats().kernel_enters;
            ringloop::time::sleep(HOLD).await;
            let enters = rt.stats().kernel_enters - before;
            assert!(held.stdout.is_empty() && !held.lost);
            drop(held);
            // `cat` ends at the end of its stdin.
            t.get_pipe_transport(0).expect("stdin is piped").close();
            assert!(
                enters <= MAX_ENTERS_WHILE_HELD,
                "{enters} kernel entries while the protocol was borrowed for {HOLD:?}"
            );
            ringloop::time::timeout(Duration::from_secs(10), t.wait_closed()).await.expect("wait_closed");
            let out = output.borrow();
            assert_eq!(out.stdout, b"borrowed\n");
            assert!(out.lost);
        });
    }
}
