//! Unit tests of a [`BufRing`] serving buffers from user space (the epoll backend's pool and
//! io_uring's single-shot fallback). Built without a runtime, so no syscalls: they also run
//! under miri (`ci/miri.sh`), which checks the lending of raw buffer pointers.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Wake, Waker};

use super::{BufRing, Mode, Shared, State};
use crate::buf::{IoBuf, IoBufMut};
use crate::driver::BufferSource;

/// A user-space pool ring of `initial` buffers of `buf_size` bytes, growing up to `max`.
fn pool(buf_size: usize, initial: u16, max: u16) -> BufRing {
    let shared = Rc::new(Shared {
        driver: Weak::new(),
        buf_size,
        max,
        mode: Mode::Pool,
        single_shot: false,
        state: RefCell::new(State {
            bufs: Vec::new(),
            blocks: Vec::new(),
            free: Vec::new(),
            tail: 0,
            in_ring: 0,
            waiters: Vec::new(),
        }),
    });
    shared.grow(initial);
    BufRing { shared }
}

/// What the epoll backend does when a socket is readable: take a free buffer, receive into
/// it, and post its id. Returns the id.
fn receive(ring: &BufRing, data: &[u8]) -> u16 {
    let (bid, ptr, len) = ring.shared.take().expect("a free buffer");
    assert!(data.len() <= len);
    // SAFETY: `take` lends `len` writable bytes at `ptr` until the buffer is given back.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr, data.len()) };
    bid
}

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn lent_buffers_hold_their_bytes_and_return_on_drop() {
    let ring = pool(16, 4, 4);
    assert_eq!((ring.buffers(), ring.in_use()), (4, 0));
    let a = receive(&ring, b"first");
    let b = receive(&ring, b"second");
    assert_ne!(a, b);
    let first = ring.lend(a, 5);
    let mut second = ring.lend(b, 6);
    assert_eq!(ring.in_use(), 2);
    assert_eq!(&first[..], b"first");
    second[0] = b'S';
    assert_eq!(&second[..], b"Second");
    assert_eq!(second.bytes_init(), 6);
    drop(first);
    assert_eq!(ring.in_use(), 1);
    assert_eq!(second.into_vec(), b"Second");
    assert_eq!(ring.in_use(), 0);
}

#[test]
fn growing_the_ring_keeps_lent_buffers_valid() {
    let ring = pool(8, 1, 64);
    let bid = receive(&ring, b"keep me");
    let held = ring.lend(bid, 7);
    let waker = Waker::from(Arc::new(CountingWaker::default()));
    let mut lent = Vec::new();
    // Each round lends every free buffer, so the ring runs dry and doubles: the table of
    // buffers reallocates, and a lent buffer must not move with it.
    while ring.buffers() < 64 {
        assert!(ring.replenish(&waker), "a dry ring below its cap grows");
        while let Some((bid, ptr, _)) = ring.shared.take() {
            // SAFETY: `take` lends at least one writable byte at `ptr`.
            unsafe { ptr.write(bid as u8) };
            lent.push(ring.lend(bid, 1));
        }
        assert_eq!(&held[..], b"keep me");
    }
    assert!(lent.iter().all(|buf| buf[0] == buf.bid as u8));
    assert_eq!(ring.in_use(), 64);
    drop(lent);
    assert_eq!(&held[..], b"keep me");
    drop(held);
    assert_eq!(ring.in_use(), 0);
}

#[test]
fn a_receiver_waits_at_the_cap_and_is_woken_by_a_returned_buffer() {
    let ring = pool(4, 2, 2);
    let count = Arc::new(CountingWaker::default());
    let waker = Waker::from(Arc::clone(&count));
    let lent: Vec<_> = [receive(&ring, b"a"), receive(&ring, b"b")]
        .into_iter()
        .map(|bid| ring.lend(bid, 1))
        .collect();
    assert!(ring.shared.take().is_none(), "every buffer is lent");
    assert!(
        !ring.replenish(&waker),
        "at the cap with nothing free: wait"
    );
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
    drop(lent);
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        1,
        "a returned buffer wakes the waiter"
    );
    assert!(ring.replenish(&waker));
    assert_eq!(ring.buffers(), 2, "never beyond the cap");
}

#[test]
fn unread_and_given_back_buffers_are_free_again() {
    let ring = pool(4, 2, 2);
    let a = receive(&ring, b"x");
    let b = receive(&ring, b"y");
    ring.recycle_unread(a);
    ring.shared.give_back(b);
    assert_eq!(ring.in_use(), 0);
    let mut seen: Vec<u16> = std::iter::from_fn(|| ring.shared.take().map(|(b, _, _)| b)).collect();
    seen.sort_unstable();
    assert_eq!(seen, [0, 1]);
    seen.into_iter().for_each(|b| ring.shared.give_back(b));
}

#[test]
fn a_pooled_buffer_for_a_single_shot_receive_becomes_a_ring_buf() {
    let ring = pool(8, 1, 1);
    let mut pooled = ring.take_pooled().expect("a free buffer");
    assert!(ring.take_pooled().is_none());
    assert_eq!((pooled.bytes_init(), pooled.bytes_total()), (0, 8));
    let ptr = pooled.stable_mut_ptr();
    // SAFETY: the pooled buffer lends 8 writable bytes at `ptr`.
    unsafe { std::ptr::copy_nonoverlapping(b"pooled".as_ptr(), ptr, 6) };
    // SAFETY: 6 bytes were just written.
    unsafe { pooled.set_init(6) };
    let received = pooled.into_ring_buf();
    assert_eq!(&received[..], b"pooled");
    assert_eq!(ring.in_use(), 1);
    drop(received);
    assert_eq!(ring.in_use(), 0);
    // Dropped without data: straight back to the pool.
    drop(ring.take_pooled().expect("the buffer came back"));
    assert_eq!(ring.in_use(), 0);
}

#[test]
fn a_ring_buf_outlives_every_handle_to_its_ring() {
    let ring = pool(8, 1, 1);
    let bid = receive(&ring, b"last");
    let buf = ring.lend(bid, 4);
    drop(ring);
    assert_eq!(&buf[..], b"last");
    drop(buf);
}

/// How many of the `len / 4096` pages from `addr` (page aligned) are resident.
fn resident_pages(addr: *mut u8, len: usize) -> usize {
    let mut pages = vec![0u8; len.div_ceil(4096)];
    // `pages` has one byte per page of the range, which is what mincore writes.
    // SAFETY: `addr..addr + len` is mapped by the ring, which the caller keeps alive.
    let rc = unsafe { libc::mincore(addr.cast(), len, pages.as_mut_ptr()) };
    assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
    pages.iter().filter(|&&p| p & 1 != 0).count()
}

#[test]
#[cfg_attr(miri, ignore = "miri has no mincore")]
fn buffers_cost_memory_only_where_data_landed() {
    let ring = pool(64 * 1024, 16, 16);
    let start = ring.shared.state.borrow().bufs[0];
    assert_eq!(
        resident_pages(start, 16 * 64 * 1024),
        0,
        "fresh buffers are resident"
    );
    let bid = receive(&ring, &[7; 100]);
    let buf = ring.lend(bid, 100);
    assert_eq!(&buf[..], &[7; 100][..]);
    assert_eq!(
        resident_pages(start, 16 * 64 * 1024),
        1,
        "a 100-byte message costs one page"
    );
}
