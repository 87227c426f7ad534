//! Provided-buffer rings; see [`BufRing`].

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU16, Ordering};
use std::task::Waker;

use crate::driver::{self, BufferSource, DriverCell, buf_ring::KernelBufRing, context};

/// The current loop's shared receive ring (64 KiB buffers, growing up to 1024 of them), made
/// on first use and kept in the loop's context until the runtime goes: transports receive into
/// it, so an idle connection holds no buffer. 64 KiB: a bulk transfer arrives in a quarter of
/// the completions 16 KiB would take, and a TLS chunk holds whole records (16 KiB of
/// plaintext plus their framing) that rustls decrypts where the kernel wrote them; a small
/// message still touches only the pages it fills. At most 1024 of them: 64 MiB, the most
/// received data the loop holds ahead of its readers (bytes beyond wait in the sockets).
pub(crate) fn loop_ring() -> io::Result<BufRing> {
    let kept = context::with_loop(|core| {
        core.loop_ring()
            .borrow()
            .as_ref()
            .and_then(|ring| ring.downcast_ref::<BufRing>())
            .cloned()
    })
    .flatten();
    if let Some(ring) = kept {
        return Ok(ring);
    }
    let ring = BufRing::builder()
        .buf_size(64 * 1024)
        .initial(16)
        .max(1024)
        .build()?;
    // `build` succeeded, so a loop is entered.
    context::with_loop(|core| *core.loop_ring().borrow_mut() = Some(Box::new(ring.clone())));
    Ok(ring)
}

/// How many buffers of `core`'s shared receive ring are lent out (0 before it is made).
pub(crate) fn loop_ring_lent(core: &context::LoopCore) -> usize {
    core.loop_ring()
        .borrow()
        .as_ref()
        .and_then(|ring| ring.downcast_ref::<BufRing>())
        .map_or(0, BufRing::in_use)
}

/// Whether `ring` is the current loop's shared ring, which every transport and stream of the
/// loop receives into (so another socket may take its last buffer at any time).
pub(crate) fn is_loop_ring(ring: &BufRing) -> bool {
    context::with_loop(|core| {
        core.loop_ring()
            .borrow()
            .as_ref()
            .and_then(|kept| kept.downcast_ref::<BufRing>())
            .is_some_and(|kept| Rc::ptr_eq(&kept.shared, &ring.shared))
    })
    .unwrap_or(false)
}

/// Drops the current loop's shared ring, if it has one (the runtime is going away).
pub(crate) fn drop_loop_ring() {
    let mine = context::with_loop(|core| core.loop_ring().borrow_mut().take()).flatten();
    drop(mine);
}

/// The largest ring the kernel accepts.
const MAX_ENTRIES: u16 = 1 << 15;

/// Builds a [`BufRing`]; see [`BufRing::builder`].
#[derive(Clone, Debug)]
pub struct BufRingBuilder {
    buf_size: usize,
    initial: u16,
    max: u16,
    kernel: bool,
}

impl BufRingBuilder {
    /// Bytes per buffer (default 4096).
    pub fn buf_size(mut self, size: usize) -> Self {
        self.buf_size = size;
        self
    }

    /// Buffers allocated at once (default 16).
    pub fn initial(mut self, n: u16) -> Self {
        self.initial = n;
        self
    }

    /// The most buffers the ring may grow to (default 1024; rounded up to a power of two,
    /// at most 32 768). Receivers beyond that wait for a buffer to come back.
    pub fn max(mut self, n: u16) -> Self {
        self.max = n;
        self
    }

    /// Whether to register the ring with the kernel when the backend can (default true);
    /// false serves buffers from user space on every backend (for tests and comparisons).
    pub fn kernel(mut self, on: bool) -> Self {
        self.kernel = on;
        self
    }

    /// Creates the ring on the current runtime.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero buffer size or count, or outside a runtime; the kernel's
    /// error if registering the ring fails for another reason than lack of support.
    pub fn build(self) -> io::Result<BufRing> {
        if self.buf_size == 0 || self.buf_size > u32::MAX as usize || self.max == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "BufRing: buffer size {} and max {} must be positive (size below 4 GiB)",
                    self.buf_size, self.max
                ),
            ));
        }
        let driver = driver::current().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "BufRing::build: not inside a ringloop runtime (use ringloop::run)",
            )
        })?;
        let entries = self.max.min(MAX_ENTRIES).next_power_of_two();
        let (mode, is_uring) = {
            let mut d = driver.borrow_mut();
            let is_uring = d.is_uring();
            let kernel = if self.kernel && is_uring {
                d.register_buf_ring(entries)?
            } else {
                None
            };
            (kernel.map_or(Mode::Pool, Mode::Kernel), is_uring)
        };
        let shared = Rc::new(Shared {
            driver: Rc::downgrade(&driver),
            buf_size: self.buf_size,
            max: entries,
            single_shot: matches!(mode, Mode::Pool) && is_uring,
            mode,
            state: RefCell::new(State {
                bufs: Vec::new(),
                blocks: Vec::new(),
                free: Vec::new(),
                tail: 0,
                in_ring: 0,
                waiters: Vec::new(),
            }),
        });
        shared.grow(self.initial.max(1).min(entries));
        Ok(BufRing { shared })
    }
}

/// A group of receive buffers that the kernel (or the epoll backend) picks from when data
/// arrives. Cheap to clone: clones share the buffers.
///
/// A pending receive normally owns its buffer, so 10 000 idle connections with a read each
/// hold 10 000 buffers. With a [`BufRing`] a receive names a *group* instead; the kernel takes
/// a buffer from the group only when data arrives, and the completion says which. An idle
/// connection holds no buffer at all.
///
/// # How it works
///
/// * **io_uring** — the ring is registered with `IORING_REGISTER_PBUF_RING`. Every buffer is
///   in one of three places: *in the ring* (the kernel may fill it), *in a completion* (filled,
///   not yet handed out), or *lent* to the user as a [`RingBuf`]. Dropping a `RingBuf` writes
///   its descriptor back at the ring's tail. When a receive finds the ring empty it ends with
///   `ENOBUFS` (the data stays in the socket); the receiver then grows the ring (up to its cap)
///   or waits for a buffer to come back, and re-arms. Nothing is lost.
/// * **epoll** — the same API is served from a user-space pool: when the socket is ready the
///   backend takes a free buffer, receives into it, and posts the completion with the buffer's
///   id, exactly as the kernel does. Idle connections hold no buffer here either.
/// * **io_uring without buffer rings** (kernels before 5.19) — receives fall back to one
///   single-shot receive at a time into a pool buffer.
///
/// ```
/// use ringloop::buf::BufRing;
/// use ringloop::net::{TcpListener, TcpStream};
/// # ringloop::run(async {
/// let ring = BufRing::builder().buf_size(4096).build().unwrap();
/// let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
/// let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
/// let (server, _) = listener.accept().await.unwrap();
/// let (res, _) = client.write_all(b"hello".as_slice()).await;
/// res.unwrap();
/// client.shutdown(std::net::Shutdown::Write).unwrap();
/// let mut received = Vec::new();
/// let mut recv = server.recv_multishot(&ring);
/// while let Some(buf) = recv.next().await {
///     received.extend_from_slice(&buf.unwrap()); // the buffer goes back to the ring here
/// }
/// assert_eq!(received, b"hello");
/// # });
/// ```
#[derive(Clone)]
pub struct BufRing {
    shared: Rc<Shared>,
}

impl fmt::Debug for BufRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.borrow();
        f.debug_struct("BufRing")
            .field("kernel", &self.is_kernel())
            .field("buf_size", &self.shared.buf_size)
            .field("buffers", &state.bufs.len())
            .field("max", &self.shared.max)
            .finish()
    }
}

impl BufRing {
    /// A builder with the defaults: 4 KiB buffers, 16 at first, growing up to 1024.
    ///
    /// ```
    /// # ringloop::run(async {
    /// let ring = ringloop::buf::BufRing::builder().buf_size(2048).initial(4).max(64).build().unwrap();
    /// assert_eq!(ring.buf_size(), 2048);
    /// assert_eq!(ring.buffers(), 4);
    /// # });
    /// ```
    pub fn builder() -> BufRingBuilder {
        BufRingBuilder {
            buf_size: 4096,
            initial: 16,
            max: 1024,
            kernel: true,
        }
    }

    /// Whether the kernel picks the buffers (a registered io_uring buffer ring).
    pub fn is_kernel(&self) -> bool {
        matches!(self.shared.mode, Mode::Kernel(_))
    }

    /// Bytes per buffer.
    pub fn buf_size(&self) -> usize {
        self.shared.buf_size
    }

    /// Buffers allocated so far.
    pub fn buffers(&self) -> usize {
        self.shared.state.borrow().bufs.len()
    }

    /// The most buffers the ring may hold.
    pub fn max_buffers(&self) -> usize {
        usize::from(self.shared.max)
    }

    /// Buffers lent out as [`RingBuf`]s or waiting in completions.
    pub fn in_use(&self) -> usize {
        let available = self.available();
        self.shared.state.borrow().bufs.len() - available
    }

    /// Buffers the kernel (or the pool) can fill right now.
    fn available(&self) -> usize {
        if let Some(n) = self.kernel_available() {
            return n;
        }
        let state = self.shared.state.borrow();
        match self.shared.mode {
            // An estimate: buffers filled for completions nobody has taken yet still count.
            Mode::Kernel(_) => state.in_ring,
            Mode::Pool => state.free.len(),
        }
    }

    /// Kernel mode: the descriptors between the kernel's head and our tail, asked of the
    /// kernel (`None` on kernels before 6.8, or off the ring's runtime).
    fn kernel_available(&self) -> Option<usize> {
        let Mode::Kernel(k) = &self.shared.mode else {
            return None;
        };
        if k.driver_id != driver::current_id() {
            return None;
        }
        let driver = driver::current()?;
        let head = driver.try_borrow().ok()?.buf_ring_head(k.bgid).ok()?;
        Some(usize::from(
            self.shared.state.borrow().tail.wrapping_sub(head),
        ))
    }

    /// An error if the ring is registered with another runtime than the current one.
    pub(crate) fn check_runtime(&self) -> io::Result<()> {
        match &self.shared.mode {
            Mode::Kernel(k) if k.driver_id != driver::current_id() => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "this BufRing is registered with another runtime's io_uring; build one per runtime",
            )),
            _ => Ok(()),
        }
    }

    /// The buffer group id for `IORING_OP_RECV` with buffer select (kernel rings only).
    /// `None` also when the current runtime is not the one the ring was registered with:
    /// its group id means nothing (or another ring) there.
    pub(crate) fn group(&self) -> Option<u16> {
        match &self.shared.mode {
            Mode::Kernel(k) if k.driver_id == driver::current_id() => Some(k.bgid),
            _ => None,
        }
    }

    /// Whether receives must fall back to single shots into pool buffers (io_uring without
    /// buffer rings).
    pub(crate) fn single_shot(&self) -> bool {
        self.shared.single_shot
    }

    /// The user-space pool, for the epoll backend's emulated buffer select. The pointer is
    /// valid while this ring (or a clone) lives.
    pub(crate) fn source(&self) -> *const (dyn BufferSource + 'static) {
        let shared: &Shared = &self.shared;
        shared as *const Shared as *const (dyn BufferSource + 'static)
    }

    /// Takes a buffer out of the pool for a single-shot receive.
    pub(crate) fn take_pooled(&self) -> Option<PooledBuf> {
        let (bid, _, _) = self.shared.take()?;
        Some(PooledBuf {
            ring: self.clone(),
            bid,
            filled: 0,
            handed_out: false,
        })
    }

    /// Turns a completion's buffer `bid` holding `len` bytes into a [`RingBuf`].
    pub(crate) fn lend(&self, bid: u16, len: usize) -> RingBuf {
        let mut state = self.shared.state.borrow_mut();
        if let Mode::Kernel(_) = self.shared.mode {
            state.in_ring -= 1;
        }
        RingBuf {
            ring: self.shared.clone(),
            bid,
            ptr: state.bufs[usize::from(bid)],
            len: len.min(self.shared.buf_size),
        }
    }

    /// A completion's buffer nobody will read (its op was abandoned): back to the ring.
    pub(crate) fn recycle_unread(&self, bid: u16) {
        if let Mode::Kernel(_) = self.shared.mode {
            self.shared.state.borrow_mut().in_ring -= 1;
        }
        self.shared.recycle(bid);
    }

    /// After `ENOBUFS`: true if a receive can be re-armed now (the ring grew, or buffers are
    /// back in it); false if the caller must wait, with `waker` registered.
    ///
    /// The ring grows (doubling, up to its cap) when at least half its buffers are in use:
    /// the working set is then near the ring's size, and a ring kept that small runs dry on
    /// nearly every chunk — each `ENOBUFS` ends a multishot receive that must be re-armed. A
    /// passing shortage (buffers came back meanwhile) only re-arms.
    pub(crate) fn replenish(&self, waker: &Waker) -> bool {
        let have = self.buffers();
        let available = self.available();
        let want = (have * 2).clamp(1, usize::from(self.shared.max));
        let busy = (have - available) * 2 >= have;
        if want > have && (busy || available == 0) {
            self.shared.grow((want - have) as u16);
            return true;
        }
        if available > 0 {
            return true;
        }
        self.shared.state.borrow_mut().waiters.push(waker.clone());
        false
    }
}

enum Mode {
    /// Registered with the kernel.
    Kernel(KernelBufRing),
    /// Served from user space (`State::free`).
    Pool,
}

struct Shared {
    /// The driver the ring is registered with (kernel mode), unregistered from it when the
    /// ring goes; a driver already gone took the registration with it.
    driver: Weak<DriverCell>,
    buf_size: usize,
    max: u16,
    mode: Mode,
    single_shot: bool,
    state: RefCell<State>,
}

struct State {
    /// Where each buffer starts (`buf_size` bytes inside one of `blocks`), indexed by id.
    bufs: Vec<*mut u8>,
    /// The memory of the buffers. Blocks never move or shrink, and are unmapped only with the
    /// ring, after every op using it has completed (ops hold a clone).
    blocks: Vec<Block>,
    /// Pool mode: ids of free buffers.
    free: Vec<u16>,
    /// Kernel mode: the next tail index to publish.
    tail: u16,
    /// Kernel mode: buffers in the ring (the kernel may fill them).
    in_ring: usize,
    /// Receivers waiting for a buffer to come back.
    waiters: Vec<Waker>,
}

/// Memory for a ring's buffers: an anonymous private mapping, so a page costs memory only once
/// something is written to it — a 64 KiB buffer a 64-byte message lands in costs one page,
/// and buffers never used cost none (an allocator's zeroed memory may be touched up front).
struct Block {
    ptr: *mut u8,
    len: usize,
}

impl Block {
    /// Maps `len` bytes of zeroed memory; aborts as an allocation failure would if it cannot.
    fn new(len: usize) -> Block {
        // The result is checked against MAP_FAILED before use.
        // SAFETY: an anonymous private mapping at a kernel-chosen address touches no memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            let layout = std::alloc::Layout::from_size_align(len, 4096)
                .unwrap_or(std::alloc::Layout::new::<u8>());
            std::alloc::handle_alloc_error(layout);
        }
        Block {
            ptr: ptr.cast(),
            len,
        }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // Blocks go with the ring's state, after every op and lent buffer holding it is gone.
        // SAFETY: `ptr`/`len` is this block's own mapping, and nothing uses it any more.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

impl Shared {
    /// Allocates `n` more buffers (not beyond the cap) and makes them available.
    fn grow(&self, n: u16) {
        let mut state = self.state.borrow_mut();
        let room = usize::from(self.max) - state.bufs.len();
        let n = usize::from(n).min(room);
        if n == 0 {
            return;
        }
        let block = Block::new(n * self.buf_size);
        let start = block.ptr;
        state.blocks.push(block);
        for i in 0..n {
            let bid = state.bufs.len() as u16;
            // Inside the block just mapped: `n` buffers of `buf_size` bytes.
            state.bufs.push(start.wrapping_add(i * self.buf_size));
            self.provide(&mut state, bid);
        }
    }

    /// Makes buffer `bid` available: at the kernel ring's tail, or in the free list.
    fn provide(&self, state: &mut State, bid: u16) {
        match &self.mode {
            Mode::Kernel(ring) => {
                let mask = ring.len - 1;
                let addr = state.bufs[usize::from(bid)] as u64;
                // The kernel reads only the slots between its head and the published tail, and
                // at most `len` buffers exist, so the slot at `tail & mask` is free.
                // `ring.region` (held) maps `ring.len` descriptors, so the slot is in bounds.
                // SAFETY: slot `tail & mask` is mapped and unseen by the kernel until published.
                unsafe {
                    let entry = &mut *ring
                        .region
                        .entries()
                        .as_ptr()
                        .add(usize::from(state.tail & mask));
                    entry.set_addr(addr);
                    entry.set_len(self.buf_size as u32);
                    entry.set_bid(bid);
                }
                state.tail = state.tail.wrapping_add(1);
                // Publishing with Release makes the descriptor written above visible first.
                // The tail is the first descriptor's reserved field, which the kernel only reads.
                // SAFETY: that field is an aligned u16 inside the mapped region.
                unsafe {
                    let tail = io_uring::types::BufRingEntry::tail(ring.region.entries().as_ptr())
                        as *const AtomicU16;
                    (*tail).store(state.tail, Ordering::Release);
                }
                state.in_ring += 1;
            }
            Mode::Pool => state.free.push(bid),
        }
    }

    /// A lent buffer came back.
    fn recycle(&self, bid: u16) {
        let waiters = {
            let mut state = self.state.borrow_mut();
            self.provide(&mut state, bid);
            std::mem::take(&mut state.waiters)
        };
        for w in waiters {
            w.wake();
        }
    }
}

impl BufferSource for Shared {
    fn take(&self) -> Option<(u16, *mut u8, usize)> {
        let mut state = self.state.borrow_mut();
        let bid = state.free.pop()?;
        Some((bid, state.bufs[usize::from(bid)], self.buf_size))
    }

    fn give_back(&self, bid: u16) {
        self.state.borrow_mut().free.push(bid);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Mode::Kernel(ring) = &self.mode
            && let Some(driver) = self.driver.upgrade()
        {
            driver.unregister_buf_ring(ring.bgid);
        }
    }
}

/// A received buffer lent by a [`BufRing`]; it returns to the ring when dropped.
///
/// Derefs to the received bytes. It is also an [`IoBuf`](super::IoBuf), so it can be written
/// out as it is (an echo server sends the very buffer it received).
pub struct RingBuf {
    ring: Rc<Shared>,
    bid: u16,
    ptr: *mut u8,
    len: usize,
}

impl RingBuf {
    /// Copies the bytes out (and lets the buffer go back to the ring).
    pub fn into_vec(self) -> Vec<u8> {
        self.to_vec()
    }
}

impl fmt::Debug for RingBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingBuf")
            .field("bid", &self.bid)
            .field("len", &self.len)
            .finish()
    }
}

impl Deref for RingBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // Buffer `bid` is out of the ring while this RingBuf holds it, so nothing else
        // writes it.
        // SAFETY: `ptr` is allocated by the ring while lent, and `len` bytes were received.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl DerefMut for RingBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // The buffer is out of the ring and `&mut self` makes this access exclusive.
        // SAFETY: `ptr` is allocated by the ring while lent and holds `len` received bytes.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for RingBuf {
    fn drop(&mut self) {
        self.ring.recycle(self.bid);
    }
}

// The ring's mapped block never moves, and mapped memory starts zeroed.
// SAFETY: the ring (kept alive by this value) holds `len` initialised bytes at `ptr`.
unsafe impl super::IoBuf for RingBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.len
    }
}

/// A pool buffer lent to a single-shot receive (io_uring without buffer rings).
pub(crate) struct PooledBuf {
    ring: BufRing,
    bid: u16,
    filled: usize,
    /// Became a `RingBuf`, which now owns the lending.
    handed_out: bool,
}

impl PooledBuf {
    /// Hands the received bytes to the user as a [`RingBuf`].
    pub(crate) fn into_ring_buf(mut self) -> RingBuf {
        self.handed_out = true;
        let ptr = self.ring.shared.state.borrow().bufs[usize::from(self.bid)];
        RingBuf {
            ring: self.ring.shared.clone(),
            bid: self.bid,
            ptr,
            len: self.filled,
        }
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if !self.handed_out {
            self.ring.shared.recycle(self.bid);
        }
    }
}

// The ring lends the buffer to no one else until it is given back.
// SAFETY: the buffer lives in the ring's mapped block (kept alive by this value), never moving.
unsafe impl super::IoBuf for PooledBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ring.shared.state.borrow().bufs[usize::from(self.bid)].cast_const()
    }
    fn bytes_init(&self) -> usize {
        self.filled
    }
    fn bytes_total(&self) -> usize {
        self.ring.shared.buf_size
    }
}

// SAFETY: as for `IoBuf`; the bytes are writable and `set_init` records what was received.
unsafe impl super::IoBufMut for PooledBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ring.shared.state.borrow().bufs[usize::from(self.bid)]
    }
    unsafe fn set_init(&mut self, pos: usize) {
        self.filled = self.filled.max(pos);
    }
}

#[cfg(test)]
#[path = "ring_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "loop_ring_tests.rs"]
mod loop_ring_tests;
