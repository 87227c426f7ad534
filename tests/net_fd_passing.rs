//! Passing descriptors (`SCM_RIGHTS`) over Unix stream and datagram sockets on both backends:
//! a pipe's write end sent across works on the far side, arrives close-on-exec, and is the
//! only copy left (the pipe sees EOF once it is closed); more descriptors than asked for fail
//! the receive and close every one that came; a receive dropped before or after its
//! descriptors arrived leaks none. Open fds are counted before and after every test.
//!
//! Every test holds the fd lock through `net_support::fixture` (see `tests/net_support`).

mod net_support;
mod support;

use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use futures_lite::future::poll_once;
use net_support::*;
use ringloop::net::{UnixDatagram, UnixStream};
use ringloop::{Backend, time};
use support::{open_fds, settle_inflight};

/// The two socket kinds under test, behind one interface.
enum Pair {
    Stream(UnixStream, UnixStream),
    Datagram(UnixDatagram, UnixDatagram),
}

impl Pair {
    fn new(stream: bool) -> Pair {
        if stream {
            let (a, b) = UnixStream::pair().expect("stream pair");
            Pair::Stream(a, b)
        } else {
            let (a, b) = UnixDatagram::pair().expect("datagram pair");
            Pair::Datagram(a, b)
        }
    }

    async fn send(&self, msg: &'static [u8], fds: &[BorrowedFd<'_>]) -> usize {
        let (n, _) = match self {
            Pair::Stream(a, _) => a.send_with_fds(msg, fds).await,
            Pair::Datagram(a, _) => a.send_with_fds(msg, fds).await,
        };
        n.expect("send_with_fds")
    }

    async fn recv(&self, max_fds: usize) -> (std::io::Result<(usize, Vec<OwnedFd>)>, Vec<u8>) {
        let buf = Vec::with_capacity(64);
        let recv = async {
            match self {
                Pair::Stream(_, b) => b.recv_with_fds(buf, max_fds).await,
                Pair::Datagram(_, b) => b.recv_with_fds(buf, max_fds).await,
            }
        };
        time::timeout(READ_LIMIT, recv)
            .await
            .expect("the message arrives")
    }
}

/// Whether `fd` has `FD_CLOEXEC` set.
fn is_cloexec(fd: &OwnedFd) -> bool {
    // SAFETY: F_GETFD on a descriptor we own reads its flags and changes nothing.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    assert!(
        flags >= 0,
        "fcntl(F_GETFD): {}",
        std::io::Error::last_os_error()
    );
    flags & libc::FD_CLOEXEC != 0
}

/// Reads the pipe's read end until EOF (failing the test after [`READ_LIMIT`]): EOF proves
/// every copy of the write end is closed.
async fn read_pipe_to_eof(rx: &OwnedFd) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let read = ringloop::op::read(rx.as_raw_fd(), Vec::with_capacity(256));
        let (n, buf) = time::timeout(READ_LIMIT, read)
            .await
            .expect("EOF on the pipe: a copy of its write end is still open somewhere");
        if n.expect("pipe read") == 0 {
            return all;
        }
        all.extend_from_slice(&buf);
    }
}

/// Sends a pipe's write end over a stream or datagram pair and checks it works, arrives
/// close-on-exec and is the only copy left; the fd count returns to where it was.
fn pass_a_pipe_write_end(backend: Backend, stream: bool, what: &str) {
    let fx = fixture(backend, what);
    fx.rt.block_on(async {
        settle_inflight(0).await;
        let before = open_fds();
        let (rx, tx) = support::pipe();
        let pair = Pair::new(stream);
        assert_eq!(pair.send(b"F", &[tx.as_fd()]).await, 1);
        // Only the passed copy may keep the pipe open from here on.
        drop(tx);
        let (res, buf) = pair.recv(4).await;
        let (n, fds) = res.expect("recv_with_fds");
        assert_eq!((n, &buf[..], fds.len()), (1, &b"F"[..], 1));
        let passed = fds.into_iter().next().expect("one fd");
        assert!(
            is_cloexec(&passed),
            "a passed descriptor arrives close-on-exec"
        );
        support::write_all(&passed, b"through the passed fd");
        drop(passed);
        let got = read_pipe_to_eof(&rx).await;
        support::assert_bytes_eq(
            "bytes through the passed fd",
            &got,
            b"through the passed fd",
        );
        drop((rx, pair));
        settle_inflight(0).await;
        assert_fd_count_returns_to(before, what).await;
    });
}

/// Sends three descriptors to a receive that takes one: the receive fails with
/// `InvalidData`, its byte is in the buffer, and every descriptor that came is closed (the
/// pipe sees EOF, the fd count returns).
fn too_many_fds_are_all_closed(backend: Backend, stream: bool, what: &str) {
    let fx = fixture(backend, what);
    fx.rt.block_on(async {
        settle_inflight(0).await;
        let before = open_fds();
        let (rx, tx) = support::pipe();
        let pair = Pair::new(stream);
        let three = [tx.as_fd(), tx.as_fd(), tx.as_fd()];
        assert_eq!(pair.send(b"T", &three).await, 1);
        drop(tx);
        let (res, buf) = pair.recv(1).await;
        let err = res.expect_err("three descriptors into room for one");
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
        assert_eq!(buf, b"T", "the byte that came with them is in the buffer");
        assert!(read_pipe_to_eof(&rx).await.is_empty());
        drop((rx, pair));
        settle_inflight(0).await;
        assert_fd_count_returns_to(before, what).await;
    });
}

both_backends! {
    /// A pipe's write end passed over a Unix stream writes into the pipe on the far side.
    fn pipe_write_end_over_a_stream(backend: Backend) {
        pass_a_pipe_write_end(backend, true, "pipe_write_end_over_a_stream");
    }

    /// A pipe's write end passed over a Unix datagram pair writes into the pipe.
    fn pipe_write_end_over_a_datagram(backend: Backend) {
        pass_a_pipe_write_end(backend, false, "pipe_write_end_over_a_datagram");
    }

    /// Over a stream, more descriptors than the receive asked for fail it and are closed.
    fn too_many_fds_over_a_stream_are_closed(backend: Backend) {
        too_many_fds_are_all_closed(backend, true, "too_many_fds_over_a_stream_are_closed");
    }

    /// Over a datagram pair, more descriptors than asked for fail the receive and are closed.
    fn too_many_fds_over_a_datagram_are_closed(backend: Backend) {
        too_many_fds_are_all_closed(backend, false, "too_many_fds_over_a_datagram_are_closed");
    }

    /// A `recv_with_fds` that times out is adopted: the descriptor sent afterwards reaches the
    /// next `recv_with_fds` with its byte, on a stream and on a datagram pair.
    fn timed_out_receive_hands_fds_to_the_next(backend: Backend) {
        let fx = fixture(backend, "timed_out_receive_hands_fds_to_the_next");
        fx.rt.block_on(async {
            for stream in [true, false] {
                let (rx, tx) = support::pipe();
                let pair = Pair::new(stream);
                let idle = time::timeout(Duration::from_micros(200), pair.recv(2));
                assert!(idle.await.is_err(), "an idle receive finished");
                assert_eq!(pair.send(b"A", &[tx.as_fd()]).await, 1);
                drop(tx);
                let (res, buf) = pair.recv(2).await;
                let (n, fds) = res.expect("recv_with_fds after a timed-out one");
                assert_eq!((n, &buf[..], fds.len()), (1, &b"A"[..], 1), "stream: {stream}");
                drop(fds);
                assert!(read_pipe_to_eof(&rx).await.is_empty());
            }
        });
    }

    /// 50 rounds of: a `recv_with_fds` submitted, a descriptor sent to it, a short wait of
    /// varying length, then the receive and its socket dropped — whether the kernel delivered
    /// the descriptor to the dropped receive or not, none leaks: the pipe sees EOF and the fd
    /// count returns to where it was.
    fn receive_dropped_with_its_fds_leaks_none(backend: Backend) {
        let fx = fixture(backend, "receive_dropped_with_its_fds_leaks_none");
        fx.rt.block_on(async {
            settle_inflight(0).await;
            let before = open_fds();
            for round in 0..50u64 {
                let (rx, tx) = support::pipe();
                let (a, b) = UnixStream::pair().expect("pair");
                let mut recv = Box::pin(b.recv_with_fds(Vec::with_capacity(8), 4));
                assert!(poll_once(&mut recv).await.is_none(), "nothing sent yet");
                let (n, _) = a.send_with_fds(b"D".as_slice(), &[tx.as_fd()]).await;
                assert_eq!(n.expect("send_with_fds"), 1);
                drop(tx);
                // Not synchronisation: varies whether the receive completes before the drop.
                time::sleep(Duration::from_micros(round * 40)).await;
                drop(recv);
                drop((a, b));
                assert!(read_pipe_to_eof(&rx).await.is_empty(), "round {round}");
            }
            settle_inflight(0).await;
            assert_fd_count_returns_to(before, "after 50 dropped receives").await;
        });
    }

    /// A stream cannot carry descriptors without a byte: `send_with_fds` of an empty buffer
    /// fails with `InvalidInput`, sends nothing and leaves no descriptor open.
    fn empty_stream_message_cannot_carry_fds(backend: Backend) {
        let fx = fixture(backend, "empty_stream_message_cannot_carry_fds");
        fx.rt.block_on(async {
            let before = open_fds();
            let (rx, tx) = support::pipe();
            let (a, b) = UnixStream::pair().expect("pair");
            let (res, _) = a.send_with_fds(b"".as_slice(), &[tx.as_fd()]).await;
            let err = res.expect_err("descriptors with no byte");
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            drop((tx, a));
            let (res, _) = b.recv_with_fds(Vec::with_capacity(8), 1).await;
            let (n, fds) = res.expect("recv after the peer closed");
            assert_eq!((n, fds.len()), (0, 0), "EOF, no descriptor");
            assert!(read_pipe_to_eof(&rx).await.is_empty());
            drop((rx, b));
            assert_fd_count_returns_to(before, "after a refused empty send").await;
        });
    }
}
