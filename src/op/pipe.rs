//! The system calls behind child-process pipes that are not ring ops: non-blocking reads and
//! writes performed on the loop thread once the fd is ready, and fd flags.
//!
//! # Writing without SIGPIPE
//!
//! A `write(2)` to a pipe whose reader has gone fails with `EPIPE` *and* raises `SIGPIPE` in
//! the writing thread, which kills the process unless the signal is ignored. The Rust runtime
//! ignores SIGPIPE in binaries it starts, but a library must not depend on that (a C host, or
//! a program that restored the default, would die). Pipes have no `MSG_NOSIGNAL`, and an
//! io_uring write raises the signal too, so pipe writes are never ring ops: they run here, on
//! the loop thread, with SIGPIPE blocked in that thread for the duration of the call. If the
//! write fails with `EPIPE` and a SIGPIPE was not already pending before, the one the write
//! raised (thread-directed, so it is pending on this thread) is consumed with a zero-timeout
//! `sigtimedwait` before the mask is restored. The caller sees `BrokenPipe`, nothing else.

use std::io;
use std::os::fd::RawFd;

/// Sets `O_NONBLOCK` on `fd` (a pipe end we own) so that reads and writes return `EAGAIN`
/// instead of blocking the loop thread.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    set_flag(fd, libc::O_NONBLOCK, true)
}

/// Clears `O_NONBLOCK` on `fd`, before it is handed to a child that expects blocking I/O.
pub(crate) fn set_blocking(fd: RawFd) -> io::Result<()> {
    set_flag(fd, libc::O_NONBLOCK, false)
}

fn set_flag(fd: RawFd, flag: libc::c_int, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on an fd the caller owns; F_GETFL/F_SETFL take no pointers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let new = if on { flags | flag } else { flags & !flag };
    // SAFETY: fcntl on an fd the caller owns; F_SETFL takes an integer, no pointer.
    if new != flags && unsafe { libc::fcntl(fd, libc::F_SETFL, new) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One non-blocking `read(2)` into `buf`; `WouldBlock` when the pipe is empty.
pub(crate) fn read_now(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is a valid, writable slice of `buf.len()` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// One non-blocking `write(2)` of `buf` that cannot raise SIGPIPE (see the module docs);
/// `WouldBlock` when the pipe is full, `BrokenPipe` when its reader is gone.
pub(crate) fn write_now(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    let mut pipe_only = empty_set();
    // SAFETY: `pipe_only` is a valid sigset_t owned by this frame.
    unsafe { libc::sigaddset(&mut pipe_only, libc::SIGPIPE) };
    let mut saved = empty_set();
    // SAFETY: both sets are valid sigset_t values owned by this frame.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &pipe_only, &mut saved) };
    let was_pending = sigpipe_pending();
    let result = loop {
        // SAFETY: `buf` is a valid, readable slice of `buf.len()` bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 {
            break Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            break Err(err);
        }
    };
    if let Err(err) = &result
        && err.raw_os_error() == Some(libc::EPIPE)
        && !was_pending
    {
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // Consumes the SIGPIPE our own write raised (blocked, so pending on this thread), if
        // any: when SIGPIPE is ignored none was queued and the call returns EAGAIN at once.
        // SAFETY: `pipe_only` and `zero` are initialised; a null siginfo pointer is allowed.
        unsafe { libc::sigtimedwait(&pipe_only, std::ptr::null_mut(), &zero) };
    }
    // SAFETY: restores the mask saved above; `saved` is a valid sigset_t.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &saved, std::ptr::null_mut()) };
    result
}

fn empty_set() -> libc::sigset_t {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the whole set.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        set.assume_init()
    }
}

fn sigpipe_pending() -> bool {
    let mut pending = empty_set();
    // SAFETY: `pending` is a valid sigset_t owned by this frame.
    unsafe { libc::sigpending(&mut pending) };
    // SAFETY: `pending` is a sigset_t initialised by sigemptyset and filled by sigpending;
    // sigismember only reads it.
    unsafe { libc::sigismember(&pending, libc::SIGPIPE) == 1 }
}
