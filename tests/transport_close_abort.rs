//! Closing and aborting on both backends: writes after `close`/`abort`/a lost connection fail
//! with `NotConnected`; `close` flushes the buffer first; `abort` drops it and closes at once;
//! a peer's reset reaches `connection_lost(Some(err))`, never a panic; a protocol callback that
//! panics ends only its own transport, which then refuses writes.

mod support;
mod transport_support;

use std::io::ErrorKind;
use std::time::Duration;

use ringloop::net::{TcpListener, TcpStream};
use ringloop::transport;
use support::assert_bytes_eq;
use transport_support::{Recorder, TEST_LIMIT, any_loopback_port, pattern, wait_until};

/// More than loopback's socket buffers can hold, so most of it stays in the transport's buffer
/// while the peer does not read.
const BIG_WRITE: usize = 32 * 1024 * 1024;

/// A client transport connected to a raw peer stream.
async fn connected() -> (
    ringloop::transport::Transport,
    ringloop::transport::SharedProtocol<Recorder>,
    TcpStream,
) {
    let listener = TcpListener::bind(any_loopback_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let (t, recorder) = transport::create_connection(Recorder::default, addr)
        .await
        .unwrap();
    let (peer, _) = listener.accept().await.unwrap();
    (t, recorder, peer)
}

/// Reads from `stream` until EOF or an error; returns the bytes.
async fn read_until_end(stream: &TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let (res, buf) = stream.read(Vec::with_capacity(256 * 1024)).await;
        match res {
            Ok(0) | Err(_) => return all,
            Ok(_) => all.extend_from_slice(&buf),
        }
    }
}

both_backends! {
    /// `close` sends what was buffered before closing: the peer reads all of it, then EOF.
    /// Writing after `close` fails with `NotConnected`, before and after `connection_lost`.
    fn write_after_close_is_an_error(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "write_after_close_is_an_error");
        rt.block_on(async {
            let (t, recorder, peer) = connected().await;
            let data = pattern(3 * 1024 * 1024);
            t.write(&data).unwrap();
            t.close();
            assert!(t.is_closing());
            assert!(!t.is_reading(), "close stops reading");
            let err = t.write(b"late").expect_err("write after close");
            assert_eq!(err.kind(), ErrorKind::NotConnected);
            assert_bytes_eq("peer reads the flushed buffer", &read_until_end(&peer).await, &data);
            wait_until("connection_lost", || recorder.borrow().lost()).await;
            assert_eq!(recorder.borrow().lost_with(), Some(None));
            let err = t.writelines([b"a".as_slice(), b"b"]).expect_err("writelines after close");
            assert_eq!(err.kind(), ErrorKind::NotConnected);
            assert_eq!(t.get_write_buffer_size(), 0);
            assert_eq!(t.fd(), None, "no descriptor once closed");
        });
    }

    /// `abort` drops the buffer: the peer reads only a prefix of what was written (what the
    /// kernel had already taken), then EOF; `connection_lost(None)` follows and the buffer
    /// size is 0. Later writes fail.
    fn abort_drops_buffered_data_and_closes(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "abort_drops_buffered_data_and_closes");
        rt.block_on(async {
            let (t, recorder, peer) = connected().await;
            let data = pattern(BIG_WRITE);
            t.write(&data).unwrap();
            // Let the kernel take what fits; the rest waits in the transport.
            wait_until("the transport is stuck behind the peer", || {
                let size = t.get_write_buffer_size();
                size > 0 && size < BIG_WRITE
            })
            .await;
            t.abort();
            assert!(t.is_closing());
            assert_eq!(t.write(b"x").unwrap_err().kind(), ErrorKind::NotConnected);
            wait_until("connection_lost", || recorder.borrow().lost()).await;
            assert_eq!(recorder.borrow().lost_with(), Some(None));
            assert_eq!(t.get_write_buffer_size(), 0);

            let got = read_until_end(&peer).await;
            assert!(got.len() < BIG_WRITE, "abort must drop the buffer, yet all {} bytes arrived", got.len());
            assert_bytes_eq("what did arrive is a prefix", &got, &data[..got.len()]);
        });
    }

    /// A peer that resets the connection (close with `SO_LINGER` 0) makes the transport's read
    /// fail: the protocol gets `connection_lost(Some(ConnectionReset))`, and writes then fail.
    fn peer_reset_is_connection_lost_with_error(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "peer_reset_is_connection_lost_with_error");
        rt.block_on(async {
            let (t, recorder, peer) = connected().await;
            peer.write_all(b"bye".as_slice()).await.0.unwrap();
            wait_until("the greeting arrived", || recorder.borrow().received == b"bye").await;
            peer.set_linger(Some(Duration::ZERO)).unwrap();
            drop(peer);
            wait_until("connection_lost", || recorder.borrow().lost()).await;
            assert_eq!(recorder.borrow().lost_with(), Some(Some(ErrorKind::ConnectionReset)));
            assert!(t.is_closing());
            assert_eq!(t.write(b"x").unwrap_err().kind(), ErrorKind::NotConnected);
        });
    }

    /// Writing to a peer that has reset fails the transport's write: `connection_lost` gets the
    /// error (`BrokenPipe` or `ConnectionReset`), no SIGPIPE, no panic.
    fn write_to_reset_peer_is_connection_lost_with_error(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "write_to_reset_peer_is_connection_lost_with_error");
        rt.block_on(async {
            let (t, recorder, peer) = connected().await;
            // Stop reading so only the write side can notice.
            t.pause_reading();
            peer.set_linger(Some(Duration::ZERO)).unwrap();
            drop(peer);
            let chunk = pattern(64 * 1024);
            wait_until("connection_lost", || {
                let _ = t.write(&chunk);
                recorder.borrow().lost()
            })
            .await;
            let kind = recorder.borrow().lost_with().unwrap();
            assert!(
                matches!(kind, Some(ErrorKind::BrokenPipe | ErrorKind::ConnectionReset)),
                "want BrokenPipe or ConnectionReset, got {kind:?}"
            );
        });
    }

    /// A `data_received` that panics ends its transport: the handle reports it closing, writes
    /// fail with `NotConnected`, the descriptor is gone, and the peer reads EOF. The loop (and
    /// this test) go on.
    fn panicking_callback_closes_its_transport(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "panicking_callback_closes_its_transport");
        rt.block_on(async {
            struct Explodes;
            impl ringloop::transport::Protocol for Explodes {
                fn data_received(&mut self, _data: &[u8]) {
                    panic!("test: a protocol bug");
                }
            }
            let listener = TcpListener::bind(any_loopback_port()).unwrap();
            let addr = listener.local_addr().unwrap();
            let (t, _protocol) = transport::create_connection(|| Explodes, addr).await.unwrap();
            let (peer, _) = listener.accept().await.unwrap();
            peer.write_all(b"boom".as_slice()).await.0.unwrap();
            wait_until("the transport is closed", || t.is_closing()).await;
            assert_eq!(t.write(b"x").unwrap_err().kind(), ErrorKind::NotConnected);
            assert_eq!(t.fd(), None);
            assert_eq!(read_until_end(&peer).await, b"");
        });
    }
}
