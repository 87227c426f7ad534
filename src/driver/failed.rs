//! A driver whose backend wait failed for good.
//!
//! `io_uring_enter` and `epoll_wait` fail transiently (`EINTR`, `EAGAIN`, `EBUSY`, `ETIME`):
//! the backends retry those, or return to the loop, in one place each. Any other error means
//! the ring or the epoll instance cannot be used any more (its descriptor was closed or
//! replaced, the kernel tore the ring down). Panicking would take the whole program down for
//! what may be one loop of many, so the driver instead:
//!
//! * records a [`ParkFailure`]: the errno and a message naming the backend, the call and the
//!   descriptor; [`Runtime::try_block_on`](crate::Runtime::try_block_on) returns it as an
//!   error;
//! * fails what it safely can with that errno: every op still in user space (epoll's waiting
//!   ops, io_uring SQEs not yet handed over) and every op submitted later. An op io_uring has
//!   already handed to the kernel stays pending: the kernel may still write into its buffers,
//!   so they cannot be given back;
//! * keeps the loop alive without the backend: a park then sleeps on the wake-up eventfd (with
//!   `poll(2)`), bounded by the next timer, so timers, other tasks, the blocking pool and
//!   wake-ups from other threads still work.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::Unparker;

/// Why the driver's backend can no longer be used.
#[derive(Clone, Debug)]
pub struct ParkFailure {
    /// The errno the backend's wait failed with.
    pub errno: i32,
    /// What failed, with the errno and its context.
    pub message: String,
}

impl ParkFailure {
    /// `call` failed with `err` (e.g. "io_uring_enter on ring fd 7").
    pub fn new(call: &str, err: &io::Error) -> ParkFailure {
        let errno = err.raw_os_error().unwrap_or(libc::EIO);
        ParkFailure {
            errno,
            message: format!(
                "ringloop: the loop's wait failed: {call}: {err}; the loop runs on without its \
                 backend: ops not yet handed to the kernel and every later op fail with errno \
                 {errno}, ops the kernel holds stay pending"
            ),
        }
    }

    /// The failure as an `io::Error` of the errno's kind, carrying the message.
    pub fn to_io_error(&self) -> io::Error {
        io::Error::new(
            io::Error::from_raw_os_error(self.errno).kind(),
            self.message.clone(),
        )
    }
}

/// Makes the eventfd non-blocking, so draining it can never block the loop (the failed ring
/// may still hold a read of it).
pub fn prepare_eventfd(fd: RawFd) {
    // SAFETY: F_GETFL/F_SETFL on our own eventfd; a failure leaves the flags as they were.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// A park without the backend: sleeps until a wake-up through `unparker` or `timeout`.
pub fn park_on_eventfd(unparker: &Unparker, timeout: Option<Duration>) {
    // `Duration::as_millis` truncates, so round up: a sub-millisecond timer must not turn
    // into a busy loop of zero timeouts.
    let ms = match timeout {
        None => -1,
        Some(t) => t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32,
    };
    let mut pfd = libc::pollfd {
        fd: unparker.fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, which lives across the call.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n > 0 && pfd.revents & libc::POLLIN != 0 {
        unparker.drain_eventfd();
    }
}
