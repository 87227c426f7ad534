//! A read into a [`Slice`](ringloop::buf::Slice) that starts past the initialised bytes of
//! its buffer never exposes memory nobody wrote: the bytes read land at the slice's start and
//! the gap before it is zero-filled — through a plain read, a vectored read, and the bytes a
//! dropped (adopted) stream read hands to the next read, on both backends.
//!
//! The buffers are made from memory that held `0xAA` and was then cleared, so a gap that was
//! only *claimed* initialised (the bug) shows up as `0xAA` instead of zeros.
//!
//! A pipe or a stream may give a read fewer bytes than are waiting: each test takes the `n`
//! bytes the read returned, and the property holds for them (the gap, then the first `n`).

mod net_support;
mod support;

use std::os::fd::AsRawFd;
use std::time::Duration;

use net_support::{connected_pair, fixture};
use ringloop::buf::IoBuf;
use ringloop::{op, time};

/// An empty `Vec` with room for `capacity` bytes whose memory held `0xAA` before it was
/// cleared (so its spare capacity is not zero by chance).
fn stale_vec(capacity: usize) -> Vec<u8> {
    let mut v = vec![0xAA; capacity];
    v.clear();
    v
}

both_backends! {
    /// `read(fd, Vec::with_capacity(16).slice(4..8))`: the Vec ends as four zero bytes, then
    /// the bytes read (all four unless the read is short).
    fn read_into_a_slice_past_the_initialised_bytes(backend: Backend) {
        let f = fixture(backend, "read_into_a_slice_past_the_initialised_bytes");
        f.rt.block_on(async {
            let (rx, tx) = support::pipe();
            support::write_all(&tx, b"data");
            let (n, slice) = op::read(rx.as_raw_fd(), stale_vec(16).slice(4..8)).await;
            let n = n.expect("read");
            assert!((1..=4).contains(&n), "read {n} bytes");
            assert_eq!(&slice[..], &b"data"[..n]);
            let v = slice.into_inner();
            assert_eq!(v, &b"\0\0\0\0data"[..4 + n], "bytes 0..4 were never written");
        });
    }

    /// A read of nothing (end of file) into such a slice leaves the buffer empty.
    fn end_of_file_into_a_slice_changes_nothing(backend: Backend) {
        let f = fixture(backend, "end_of_file_into_a_slice_changes_nothing");
        f.rt.block_on(async {
            let (rx, tx) = support::pipe();
            drop(tx);
            let (n, slice) = op::read(rx.as_raw_fd(), stale_vec(16).slice(4..8)).await;
            assert_eq!(n.expect("read"), 0);
            assert!(slice.into_inner().is_empty());
        });
    }

    /// A vectored read into two slices past their buffers' initialised bytes: each buffer is
    /// its zeroed gap, then its share of the bytes (a buffer a short read left empty stays
    /// empty).
    fn readv_into_slices_past_the_initialised_bytes(backend: Backend) {
        let f = fixture(backend, "readv_into_slices_past_the_initialised_bytes");
        f.rt.block_on(async {
            let (rx, tx) = support::pipe();
            support::write_all(&tx, b"abcdef");
            let bufs = vec![stale_vec(8).slice(2..6), stale_vec(8).slice(5..8)];
            let (n, bufs) = op::readv(rx.as_raw_fd(), bufs).await;
            let n = n.expect("readv");
            assert!((1..=6).contains(&n), "readv read {n} bytes");
            let got: Vec<Vec<u8>> = bufs.into_iter().map(|s| s.into_inner()).collect();
            assert_eq!(got[0], &b"\0\0abcd"[..2 + n.min(4)]);
            if n > 4 {
                assert_eq!(got[1], &b"\0\0\0\0\0ef"[..5 + n - 4]);
            } else {
                assert!(got[1].is_empty(), "a buffer the read did not reach: {:?}", got[1]);
            }
        });
    }

    /// Bytes a dropped stream read received are copied into the next read's buffer: into a
    /// slice past the initialised bytes, the gap is zeroed too (before the bytes read: all
    /// four, or the first few when a read is short).
    fn rescued_bytes_into_a_slice_past_the_initialised_bytes(backend: Backend) {
        let f = fixture(backend, "rescued_bytes_into_a_slice_past_the_initialised_bytes");
        f.rt.block_on(async {
            let (client, server) = connected_pair().await;
            // Nothing sent yet: the read times out in flight and the stream adopts it.
            let idle = time::timeout(Duration::from_millis(10), server.read(Vec::with_capacity(64)));
            assert!(idle.await.is_err(), "nothing was sent, yet the read finished");
            let (res, _) = client.write_all(b"data".as_slice()).await;
            res.expect("write_all");
            let (n, slice) = server.read(stale_vec(16).slice(4..8)).await;
            let n = n.expect("read");
            assert!((1..=4).contains(&n), "read {n} bytes");
            let want = &b"\0\0\0\0data"[..4 + n];
            assert_eq!(slice.into_inner(), want, "bytes 0..4 were never written");
        });
    }
}
