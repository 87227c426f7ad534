//! A read into a [`Slice`](ringloop::buf::Slice) that starts past the initialised bytes of
//! its buffer never exposes memory nobody wrote: the bytes read land at the slice's start and
//! the gap before it is zero-filled — through a plain read, a vectored read, and the bytes a
//! dropped (adopted) stream read hands to the next read, on both backends.
//!
//! The buffers are made from memory that held `0xAA` and was then cleared, so a gap that was
//! only *claimed* initialised (the bug) shows up as `0xAA` instead of zeros.

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
    /// the four bytes read.
    fn read_into_a_slice_past_the_initialised_bytes(backend: Backend) {
        let f = fixture(backend, "read_into_a_slice_past_the_initialised_bytes");
        f.rt.block_on(async {
            let (rx, tx) = support::pipe();
            support::write_all(&tx, b"data");
            let (n, slice) = op::read(rx.as_raw_fd(), stale_vec(16).slice(4..8)).await;
            assert_eq!(n.expect("read"), 4);
            assert_eq!(&slice[..], b"data");
            let v = slice.into_inner();
            assert_eq!(v, b"\0\0\0\0data", "bytes 0..4 were never written");
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
    /// its zeroed gap, then its share of the bytes.
    fn readv_into_slices_past_the_initialised_bytes(backend: Backend) {
        let f = fixture(backend, "readv_into_slices_past_the_initialised_bytes");
        f.rt.block_on(async {
            let (rx, tx) = support::pipe();
            support::write_all(&tx, b"abcdef");
            let bufs = vec![stale_vec(8).slice(2..6), stale_vec(8).slice(5..8)];
            let (n, bufs) = op::readv(rx.as_raw_fd(), bufs).await;
            assert_eq!(n.expect("readv"), 6);
            let got: Vec<Vec<u8>> = bufs.into_iter().map(|s| s.into_inner()).collect();
            assert_eq!(got[0], b"\0\0abcd");
            assert_eq!(got[1], b"\0\0\0\0\0ef");
        });
    }

    /// Bytes a dropped stream read received are copied into the next read's buffer: into a
    /// slice past the initialised bytes, the gap is zeroed too.
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
            assert_eq!(n.expect("read"), 4);
            assert_eq!(slice.into_inner(), b"\0\0\0\0data", "bytes 0..4 were never written");
        });
    }
}
