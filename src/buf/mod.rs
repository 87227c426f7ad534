//! Owned buffers handed to the kernel.
//!
//! A proactor lends a buffer to the kernel for the whole life of an operation, so the buffer
//! must be *owned* by the operation (not borrowed from the caller's stack) and its memory must
//! not move while the value holding it moves. [`IoBuf`] and [`IoBufMut`] describe such buffers;
//! every I/O operation takes one by value and gives it back with the result:
//!
//! ```
//! use std::os::fd::AsRawFd;
//! use ringloop::buf::IoBuf;
//! # ringloop::run(async {
//! let (rx, tx) = std::io::pipe().unwrap();
//! // The buffer moves into the op and comes back with the result.
//! let (n, sent) = ringloop::op::write(tx.as_raw_fd(), b"hello world".to_vec()).await;
//! assert_eq!(n.unwrap(), 11);
//! // Reads fill spare capacity; a slice reads into part of a buffer.
//! let (n, slice) = ringloop::op::read(rx.as_raw_fd(), Vec::with_capacity(16).slice(..5)).await;
//! assert_eq!(n.unwrap(), 5);
//! assert_eq!(slice.into_inner(), b"hello");
//! # drop(sent);
//! # });
//! ```
//!
//! # Implementation
//!
//! Reads fill the *spare capacity* of a buffer (`bytes_init..bytes_total`) and then call
//! [`IoBufMut::set_init`], so `Vec::with_capacity(n)` is the natural read buffer.

mod ring;

use std::ops::{Bound, RangeBounds};

pub use ring::{BufRing, BufRingBuilder, RingBuf};
pub(crate) use ring::{PooledBuf, drop_loop_ring, is_loop_ring, loop_ring, loop_ring_lent};

/// A buffer whose bytes the kernel may read for the duration of an operation.
///
/// # Safety
///
/// `stable_ptr` must point to `bytes_total()` bytes that stay valid, and at the same address,
/// while the value is moved and until it is dropped or mutated through `&mut self`;
/// the first `bytes_init()` of them must be initialised.
pub unsafe trait IoBuf: Unpin + 'static {
    /// Start of the buffer's memory.
    fn stable_ptr(&self) -> *const u8;
    /// Number of initialised bytes (what a write sends).
    fn bytes_init(&self) -> usize;
    /// Capacity in bytes.
    fn bytes_total(&self) -> usize;

    /// Restricts the buffer to `range` (relative to its start), keeping ownership.
    ///
    /// ```
    /// use ringloop::buf::IoBuf;
    /// let s = b"hello world".to_vec().slice(6..);
    /// assert_eq!(&s[..], b"world");
    /// assert_eq!(s.into_inner().len(), 11);
    /// ```
    fn slice(self, range: impl RangeBounds<usize>) -> Slice<Self>
    where
        Self: Sized,
    {
        let begin = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&n) => n + 1,
            Bound::Excluded(&n) => n,
            Bound::Unbounded => self.bytes_total(),
        };
        assert!(
            begin <= end && end <= self.bytes_total(),
            "slice {begin}..{end} out of bounds for a buffer of {} bytes",
            self.bytes_total()
        );
        Slice {
            buf: self,
            begin,
            end,
        }
    }
}

/// A buffer the kernel may write into for the duration of an operation.
///
/// # Safety
///
/// As for [`IoBuf`], and `stable_mut_ptr` must be valid for writes of `bytes_total()` bytes.
pub unsafe trait IoBufMut: IoBuf {
    /// Start of the buffer's memory, for writing.
    fn stable_mut_ptr(&mut self) -> *mut u8;

    /// Marks the first `pos` bytes as initialised (never shrinks what is already initialised).
    ///
    /// # Safety
    ///
    /// The first `pos` bytes must have been initialised, and `pos <= bytes_total()`.
    unsafe fn set_init(&mut self, pos: usize);
}

// SAFETY: a Vec's heap allocation does not move when the Vec value moves; `capacity` bytes are
// allocated and `len` of them are initialised.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: see the `IoBuf` impl; the allocation is writable for `capacity` bytes.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        if self.len() < pos {
            // SAFETY: the caller guarantees `pos` bytes are initialised and within capacity.
            unsafe { self.set_len(pos) };
        }
    }
}

// SAFETY: a boxed slice's allocation does not move with the box; all of it is initialised.
unsafe impl IoBuf for Box<[u8]> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: see the `IoBuf` impl; the allocation is writable.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _pos: usize) {}
}

// SAFETY: static memory never moves and is initialised.
unsafe impl IoBuf for &'static [u8] {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: static memory never moves and is initialised.
unsafe impl IoBuf for &'static str {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

/// A range of an owned buffer; reads and writes see only `begin..end`.
///
/// ```
/// use ringloop::buf::IoBuf;
/// let s = vec![0u8; 8].slice(2..4);
/// assert_eq!((s.begin(), s.end()), (2, 4));
/// ```
///
/// # Reading into a slice past the initialised bytes
///
/// A read fills the slice from its first unfilled byte. A slice may start beyond the part of
/// the buffer that is initialised (`Vec::with_capacity(16).slice(4..8)` starts 4 bytes past
/// an empty `Vec`): the bytes read then land at `begin`, and the gap between the buffer's
/// initialised part and `begin` is **zero-filled** when the read is recorded, so the buffer
/// never claims bytes nobody wrote. A read of nothing (end of file) changes nothing.
///
/// ```
/// use std::os::fd::AsRawFd;
/// use ringloop::buf::IoBuf;
/// # ringloop::run(async {
/// let (rx, tx) = std::io::pipe().unwrap();
/// let (n, _) = ringloop::op::write(tx.as_raw_fd(), b"data".as_slice()).await;
/// assert_eq!(n.unwrap(), 4);
/// let (n, slice) = ringloop::op::read(rx.as_raw_fd(), Vec::with_capacity(16).slice(4..8)).await;
/// assert_eq!(n.unwrap(), 4);
/// assert_eq!(slice.into_inner(), b"\0\0\0\0data");
/// # });
/// ```
#[derive(Debug)]
pub struct Slice<B> {
    buf: B,
    begin: usize,
    end: usize,
}

impl<B: IoBuf> Slice<B> {
    /// Offset of the slice's start in the inner buffer.
    pub fn begin(&self) -> usize {
        self.begin
    }
    /// Offset of the slice's end in the inner buffer.
    pub fn end(&self) -> usize {
        self.end
    }
    /// Gives back the whole buffer.
    pub fn into_inner(self) -> B {
        self.buf
    }
    /// The inner buffer.
    pub fn get_ref(&self) -> &B {
        &self.buf
    }
}

impl<B: IoBuf> std::ops::Deref for Slice<B> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let init = self.buf.bytes_init().clamp(self.begin, self.end);
        // SAFETY: `begin..init` lies within the inner buffer's initialised bytes.
        unsafe {
            std::slice::from_raw_parts(self.buf.stable_ptr().add(self.begin), init - self.begin)
        }
    }
}

// SAFETY: the slice points into the inner buffer, whose memory is stable; `bytes_init` counts
// only the initialised part of `begin..end`.
unsafe impl<B: IoBuf> IoBuf for Slice<B> {
    fn stable_ptr(&self) -> *const u8 {
        // SAFETY: `begin <= bytes_total` was checked when the slice was made.
        unsafe { self.buf.stable_ptr().add(self.begin) }
    }
    fn bytes_init(&self) -> usize {
        self.buf.bytes_init().clamp(self.begin, self.end) - self.begin
    }
    fn bytes_total(&self) -> usize {
        self.end - self.begin
    }
}

// SAFETY: as for `IoBuf`; the op's writes stay inside `begin..end` of the writable inner
// buffer, and `set_init` marks no byte initialised that nobody wrote (it zeroes a gap first).
unsafe impl<B: IoBufMut> IoBufMut for Slice<B> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: `begin <= bytes_total` was checked when the slice was made.
        unsafe { self.buf.stable_mut_ptr().add(self.begin) }
    }
    unsafe fn set_init(&mut self, pos: usize) {
        if pos == 0 {
            return;
        }
        let inner_init = self.buf.bytes_init();
        if inner_init < self.begin {
            // Marking `begin + pos` bytes of the inner buffer initialised covers the gap
            // `inner_init..begin`, which nobody wrote: zero it first (see the type's docs).
            // The gap ends where the slice's bytes (written by the caller) begin.
            // SAFETY: `inner_init < begin <= bytes_total` of the inner buffer: writable memory.
            unsafe {
                let gap = self.buf.stable_mut_ptr().add(inner_init);
                std::ptr::write_bytes(gap, 0, self.begin - inner_init);
            }
        }
        // The inner buffer's first `begin` bytes are initialised (they were, or were just
        // zeroed), and the caller initialised `pos` bytes from `begin`, inside it.
        // SAFETY: so the first `begin + pos` bytes of the inner buffer are initialised.
        unsafe { self.buf.set_init(self.begin + pos) }
    }
}

/// The initialised bytes of `buf` from `from` on.
pub(crate) fn init_bytes<B: IoBuf>(buf: &B, from: usize) -> &[u8] {
    let init = buf.bytes_init();
    let from = from.min(init);
    // The first `bytes_init()` bytes at `stable_ptr()` are initialised (IoBuf contract).
    // SAFETY: those bytes stay valid and unmoved while `buf` is borrowed.
    unsafe { std::slice::from_raw_parts(buf.stable_ptr().add(from), init - from) }
}

/// Copies as much of `src` as fits into the spare capacity of `buf`; returns how much.
pub(crate) fn fill_from<B: IoBufMut>(buf: &mut B, src: &[u8]) -> usize {
    let init = buf.bytes_init();
    let n = src.len().min(buf.bytes_total() - init);
    // The destination cannot overlap `src`, a shared borrow of other memory.
    // SAFETY: `init + n <= bytes_total`: the destination lies in the buffer's writable memory.
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), buf.stable_mut_ptr().add(init), n);
        buf.set_init(init + n);
    }
    n
}

/// The spare capacity of `buf` as (pointer, length), the length capped to what one SQE can
/// carry (`u32`).
pub(crate) fn spare<B: IoBufMut>(buf: &mut B) -> (*mut u8, usize) {
    let init = buf.bytes_init();
    let len = buf.bytes_total() - init;
    // SAFETY: `init <= bytes_total`, so the pointer stays inside the allocation.
    let ptr = unsafe { buf.stable_mut_ptr().add(init) };
    (ptr, len.min(u32::MAX as usize))
}

/// Marks `n` more bytes of `buf` initialised after the kernel filled its spare capacity.
///
/// # Safety
///
/// The kernel (or a syscall) must have written `n` bytes at the start of the spare capacity.
pub(crate) unsafe fn mark_filled<B: IoBufMut>(buf: &mut B, n: usize) {
    let init = buf.bytes_init() + n;
    // SAFETY: the caller guarantees those `n` bytes were written; `init <= bytes_total`.
    unsafe { buf.set_init(init) };
}

#[cfg(test)]
mod tests;
