//! Unit tests of the owned-buffer traits and `Slice`: no syscalls, so they also run under miri
//! (`ci/miri.sh`), which checks the raw-pointer arithmetic behind them.

use super::{IoBuf, IoBufMut, fill_from, init_bytes, mark_filled, spare};

#[test]
fn a_vec_is_read_into_its_spare_capacity() {
    let mut buf = Vec::with_capacity(8);
    buf.extend_from_slice(b"ab");
    assert_eq!((buf.bytes_init(), buf.bytes_total()), (2, buf.capacity()));
    assert_eq!(fill_from(&mut buf, b"cdef"), 4);
    assert_eq!(buf, b"abcdef");
    let room = buf.capacity() - 6;
    assert_eq!(
        fill_from(&mut buf, &[b'x'; 64]),
        room,
        "fills only what fits"
    );
    assert_eq!(buf.len(), buf.capacity());
    assert_eq!(init_bytes(&buf, 4), &buf[4..]);
    assert_eq!(
        init_bytes(&buf, 100),
        b"",
        "an offset past the end is empty"
    );
}

#[test]
fn spare_and_mark_filled_work_like_a_kernel_read() {
    let mut buf = Vec::with_capacity(16);
    buf.extend_from_slice(b"head:");
    let (ptr, len) = spare(&mut buf);
    assert_eq!(len, buf.capacity() - 5);
    // What the kernel does with the pointer it was given.
    // SAFETY: `ptr` points to `len >= 4` writable bytes of the Vec's spare capacity.
    unsafe { std::ptr::copy_nonoverlapping(b"body".as_ptr(), ptr, 4) };
    // SAFETY: 4 bytes were just written at the start of the spare capacity.
    unsafe { mark_filled(&mut buf, 4) };
    assert_eq!(buf, b"head:body");
    // `set_init` never shrinks what is initialised.
    // SAFETY: 2 <= bytes_init; nothing new is claimed.
    unsafe { buf.set_init(2) };
    assert_eq!(buf, b"head:body");
}

#[test]
fn a_slice_sees_and_fills_only_its_range() {
    let slice = vec![0u8; 4].slice(1..3);
    assert_eq!((slice.begin(), slice.end()), (1, 3));
    assert_eq!((slice.bytes_init(), slice.bytes_total()), (2, 2));
    assert_eq!(&slice[..], &[0, 0]);

    // A read into part of an empty Vec's capacity.
    let mut slice = Vec::with_capacity(10).slice(..6);
    assert_eq!((slice.bytes_init(), slice.bytes_total()), (0, 6));
    assert_eq!(fill_from(&mut slice, b"0123456789"), 6);
    assert_eq!(&slice[..], b"012345");
    let inner = slice.into_inner();
    assert_eq!(inner, b"012345");

    // A slice starting beyond the initialised bytes sees none of them.
    let slice = b"hello world".to_vec().slice(6..);
    assert_eq!(&slice[..], b"world");
    assert_eq!(slice.get_ref().len(), 11);
    let late = Vec::<u8>::with_capacity(8).slice(4..8);
    assert_eq!(late.bytes_init(), 0);
    assert!(late.is_empty());
}

#[test]
fn a_slice_of_a_slice_adds_the_offsets() {
    let inner = vec![b'.'; 12];
    let outer = inner.slice(2..10);
    let nested = outer.slice(3..5);
    assert_eq!(&nested[..], b"..");
    // SAFETY: both pointers are derived from the same live allocation.
    let offset = unsafe {
        nested
            .stable_ptr()
            .offset_from(nested.get_ref().get_ref().as_ptr())
    };
    assert_eq!(offset, 5);
}

#[test]
#[should_panic(expected = "out of bounds")]
fn a_slice_past_the_capacity_panics() {
    let _ = Vec::<u8>::with_capacity(4).slice(2..5);
}

#[test]
fn static_and_boxed_buffers_expose_their_bytes() {
    let s: &'static str = "text";
    assert_eq!(init_bytes(&s, 1), b"ext");
    let b: &'static [u8] = b"bytes";
    assert_eq!(init_bytes(&b, 0), b"bytes");
    let mut boxed: Box<[u8]> = vec![0u8; 3].into_boxed_slice();
    assert_eq!((boxed.bytes_init(), boxed.bytes_total()), (3, 3));
    assert_eq!(
        fill_from(&mut boxed, b"xyz"),
        0,
        "a full box has no spare room"
    );
    assert_eq!(&boxed[..], &[0, 0, 0]);
}
