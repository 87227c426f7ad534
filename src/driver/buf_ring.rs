//! Provided-buffer rings (`IORING_REGISTER_PBUF_RING`): the driver's half.
//!
//! The kernel reads buffer descriptors from a ring of [`BufRingEntry`] that lives in memory
//! shared with it. The driver maps the ring ([`Region`]), registers it and owns the group id;
//! the memory is shared (`Rc`) between the driver and the user-facing `BufRing` (in `buf/`),
//! which adds and recycles descriptors through [`KernelBufRing`]. It is unmapped when both let
//! go: the driver lets go only after unregistering (or when the ring closes), so the kernel
//! never reads freed memory, and a `BufRing` that outlives its runtime still writes into
//! mapped memory, which nobody reads any more.
//!
//! How many descriptors the kernel has taken (its *head*) is asked of the kernel where it can
//! say (`IORING_REGISTER_PBUF_STATUS`, Linux 6.8+). Before that the kernel keeps its head to
//! itself, so the driver counts it: every completion that carries a buffer
//! (`IORING_CQE_F_BUFFER`) of an op that selects from this group moved the head by one
//! ([`Region::buffer_taken`]). It counts when the completion *arrives*, so buffers filled for
//! completions nobody has taken yet are not mistaken for buffers still in the ring.
//!
//! A `BufRing` can be dropped while the driver is busy (its last reference held by an orphaned
//! op that completes inside `park`), so its unregistration goes through the driver's queue of
//! deferred work ([`DriverCell::unregister_buf_ring`](super::DriverCell::unregister_buf_ring)),
//! which runs as soon as the driver is free.

use std::cell::Cell;
use std::io;
use std::ptr::NonNull;
use std::rc::Rc;

use io_uring::types::BufRingEntry;

/// A registered ring: where its descriptors live and how many there are.
#[derive(Clone)]
pub struct KernelBufRing {
    /// The buffer group id ops name in `buf_group`.
    pub bgid: u16,
    /// The descriptors' memory.
    pub region: Rc<Region>,
    /// Number of descriptors (a power of two).
    pub len: u16,
    /// The driver that registered it ([`Driver::id`](super::Driver::id)).
    pub driver_id: u64,
}

/// The driver's record of one ring's memory.
pub struct Region {
    pub bgid: u16,
    ptr: NonNull<libc::c_void>,
    bytes: usize,
    /// Descriptors the kernel has taken, counted from completions (wraps like the kernel's
    /// u16 head).
    taken: Cell<u16>,
}

impl Region {
    /// Maps zeroed, page-aligned memory for `len` descriptors.
    pub fn map(bgid: u16, len: u16) -> io::Result<Region> {
        let bytes = usize::from(len) * std::mem::size_of::<BufRingEntry>();
        // SAFETY: an anonymous private mapping; the result is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(Region {
            bgid,
            ptr,
            bytes,
            taken: Cell::new(0),
        })
    }

    /// A completion carrying one of this ring's buffers arrived: the kernel's head moved on.
    pub fn buffer_taken(&self) {
        self.taken.set(self.taken.get().wrapping_add(1));
    }

    /// The kernel's head as counted from completions (see the module docs).
    pub fn counted_head(&self) -> u16 {
        self.taken.get()
    }

    pub fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// The first descriptor; the kernel reads the tail from the first entry's reserved field.
    pub fn entries(&self) -> NonNull<BufRingEntry> {
        self.ptr.cast()
    }
}

impl KernelBufRing {
    pub fn new(region: Rc<Region>, len: u16, driver_id: u64) -> KernelBufRing {
        KernelBufRing {
            bgid: region.bgid,
            region,
            len,
            driver_id,
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and the kernel no longer uses it: the driver lets go of a
        // region only after unregistering it, or when the io_uring itself is closed.
        unsafe { libc::munmap(self.ptr.as_ptr(), self.bytes) };
    }
}
