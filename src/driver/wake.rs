//! Waking a loop thread from other threads.
//!
//! One eventfd per loop. The io_uring backend keeps a read of it in flight; the epoll backend
//! has it registered. `notified` makes repeated wake-ups cost one eventfd write until the loop
//! takes the notification.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::{io, mem};

/// The thread-safe half of a driver: wake-ups from other threads.
pub struct Unparker {
    eventfd: OwnedFd,
    notified: AtomicBool,
}

impl Unparker {
    /// `nonblocking` for the epoll backend, which reads the eventfd itself.
    pub fn new(nonblocking: bool) -> io::Result<Self> {
        let flags = libc::EFD_CLOEXEC | if nonblocking { libc::EFD_NONBLOCK } else { 0 };
        // SAFETY: plain syscall; the result is checked below.
        let fd = unsafe { libc::eventfd(0, flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Unparker {
            // SAFETY: eventfd(2) returned a fresh descriptor that we own.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
            notified: AtomicBool::new(false),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    /// Wakes the loop if it sleeps (or makes its next sleep return at once).
    pub fn unpark(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a local u64 to our eventfd.
            unsafe {
                libc::write(
                    self.fd(),
                    (&one as *const u64).cast(),
                    mem::size_of::<u64>(),
                )
            };
        }
    }

    /// Takes the pending notification; true if some thread called `unpark` since last time.
    pub fn take_notification(&self) -> bool {
        self.notified.load(Ordering::Relaxed) && self.notified.swap(false, Ordering::AcqRel)
    }

    /// Resets the eventfd counter (epoll backend).
    pub fn drain_eventfd(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a local u64; the fd is non-blocking on epoll.
        unsafe {
            libc::read(
                self.fd(),
                (&mut value as *mut u64).cast(),
                mem::size_of::<u64>(),
            )
        };
    }
}
