//! What the ops' readiness halves share.
//!
//! Each op's [`Perform`] implementation, the call the epoll backend and the blocking pool make,
//! sits next to its SQE in the op's own file. This file holds what several of them use:
//!
//! * [`cqe_result`]: a libc return value as a CQE-style result;
//! * [`RwCall`]: the read or write of [`read`](super::read), [`write`](super::write) and their
//!   vectored forms: `preadv2`/`pwritev2`, with `RWF_NOWAIT` when it must not block, and the
//!   ways around a pollable fd whose kernel refuses that flag ([`NoWaitFallback`]): `recv`/
//!   `send` (`recvmsg`/`sendmsg` when vectored) with `MSG_DONTWAIT` on a socket, the plain call
//!   on an `O_NONBLOCK` fd, else a zero-timeout `poll(2)` first and a write capped at
//!   `PIPE_BUF`;
//! * [`may_transfer_short`], [`limit_len`] and [`limit_iovecs`], for
//!   [`Describe::limit`](crate::driver::Describe::limit).

use std::os::fd::RawFd;

use crate::driver::{Mode, NoWaitFallback, Perform, Performed, Syscall, socket_type};

/// A libc return value (a count, an fd, or -1 with `errno` set) as a CQE-style result: the
/// value, or the negated errno.
pub(crate) fn cqe_result(ret: isize) -> i32 {
    if ret < 0 {
        -std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    } else {
        ret.min(i32::MAX as isize) as i32
    }
}

/// A read or write of one buffer or an iovec array, at an offset or the file position.
#[derive(Clone, Copy)]
pub(crate) struct RwCall {
    fd: RawFd,
    /// The buffer's address, or (vectored) the iovec array's.
    addr: *mut libc::c_void,
    /// The buffer's length, or (vectored) the number of iovecs.
    len: usize,
    /// -1: the current file position.
    offset: i64,
    vectored: bool,
    write: bool,
}

impl RwCall {
    /// A read into (or write from) `len` bytes at `addr`.
    pub(crate) fn buffer(fd: RawFd, addr: *const u8, len: usize, offset: i64, write: bool) -> Self {
        RwCall {
            fd,
            addr: addr as *mut libc::c_void,
            len,
            offset,
            vectored: false,
            write,
        }
    }

    /// A read into (or write from) the `count` iovecs at `iov`.
    pub(crate) fn iovecs(
        fd: RawFd,
        iov: *const libc::iovec,
        count: usize,
        offset: i64,
        write: bool,
    ) -> Self {
        RwCall {
            fd,
            addr: iov as *mut libc::c_void,
            len: count,
            offset,
            vectored: true,
            write,
        }
    }

    /// The readiness half of the op: wait for the fd, then try without blocking (or the
    /// fallback the backend found for the fd).
    pub(crate) fn syscall(self) -> Syscall {
        let call = if self.write {
            Syscall::on_writable(self.fd, self)
        } else {
            Syscall::on_readable(self.fd, self)
        };
        call.with_nowait_fallback()
    }

    /// `preadv2`/`pwritev2` with `flags`.
    ///
    /// # Safety
    ///
    /// `iov` holds `count` iovecs valid for their lengths.
    unsafe fn call(&self, iov: *const libc::iovec, count: usize, flags: i32) -> i32 {
        let (fd, count, offset) = (self.fd, count as libc::c_int, self.offset);
        // SAFETY: the caller guarantees the iovecs are valid for their lengths.
        let ret = unsafe {
            if self.write {
                libc::pwritev2(fd, iov, count, offset, flags)
            } else {
                libc::preadv2(fd, iov, count, offset, flags)
            }
        };
        cqe_result(ret as isize)
    }

    /// Performs the call without `RWF_NOWAIT`, never blocking, the way `how` says (see
    /// [`NoWaitFallback`] for the one assumption `PollFirst` makes). Not ready: `-EAGAIN`.
    ///
    /// # Safety
    ///
    /// As for [`call`](Self::call).
    unsafe fn fallback(&self, iov: *const libc::iovec, count: usize, how: NoWaitFallback) -> i32 {
        match how {
            // SAFETY: the caller guarantees the iovecs are valid for their lengths.
            NoWaitFallback::Socket => unsafe { self.on_socket(iov, count) },
            // SAFETY: as above; O_NONBLOCK keeps the plain call from blocking.
            NoWaitFallback::NonBlocking => unsafe { self.call(iov, count, 0) },
            NoWaitFallback::PollFirst => {
                if let Err(result) = ready_now(self.fd, self.write) {
                    return result;
                }
                let mut capped = [libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                }; CAPPED_IOVECS];
                let (iov, count) = if self.write {
                    // SAFETY: the caller guarantees `iov` holds `count` valid iovecs.
                    let n = unsafe { cap_at_pipe_buf(iov, count, &mut capped) };
                    (capped.as_ptr(), n)
                } else {
                    (iov, count)
                };
                // SAFETY: the iovecs are the caller's, or capped copies of them (shorter, in
                // `capped`, alive across the call); the fd polled ready and a write is capped
                // at PIPE_BUF, so the plain call does not block (see `PollFirst`).
                unsafe { self.call(iov, count, 0) }
            }
        }
    }

    /// The read or write on a socket, with `MSG_DONTWAIT`.
    ///
    /// # Safety
    ///
    /// As for [`call`](Self::call).
    unsafe fn on_socket(&self, iov: *const libc::iovec, count: usize) -> i32 {
        if !self.vectored {
            let (fd, buf, len) = (self.fd, self.addr.cast::<u8>(), self.len);
            // SAFETY: the caller guarantees `buf` is valid for `len` bytes.
            return unsafe {
                if self.write {
                    super::net::send_now(fd, buf, len, true)
                } else {
                    super::net::recv_now(fd, buf, len, true)
                }
            };
        }
        // SAFETY: an all-zero msghdr is valid (no name, no control data).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov as *mut libc::iovec;
        msg.msg_iovlen = count as _;
        // SAFETY: `msg` lives across the call; its iovecs are the caller's, valid per its
        // contract.
        unsafe {
            if self.write {
                super::msg::sendmsg_now(self.fd, &msg, true)
            } else {
                super::msg::recvmsg_now(self.fd, &mut msg, true)
            }
        }
    }
}

impl Perform for RwCall {
    unsafe fn perform(&self, mode: Mode) -> Performed {
        let one = libc::iovec {
            iov_base: self.addr,
            iov_len: self.len,
        };
        let (iov, count) = if self.vectored {
            (self.addr as *const libc::iovec, self.len)
        } else {
            (&raw const one, 1)
        };
        let result = match mode {
            // SAFETY: the caller guarantees the op's buffers (and iovecs) are valid for their
            // lengths; `one` lives across the call.
            Mode::Fallback(how) => unsafe { self.fallback(iov, count, how) },
            mode => {
                let flags = if mode.nowait() { libc::RWF_NOWAIT } else { 0 };
                // SAFETY: as above; RWF_NOWAIT keeps a call that must not block from blocking.
                unsafe { self.call(iov, count, flags) }
            }
        };
        Performed::plain(result)
    }
}

/// Linux's `PIPE_BUF`: a write of at most this many bytes into a pipe is atomic, so a blocking
/// write that small into a pipe with a free slot (it polls writable) does not block.
const PIPE_BUF: usize = 4096;

/// Most iovecs a write capped at `PIPE_BUF` keeps (the rest is left for the next write).
const CAPPED_IOVECS: usize = 8;

/// Copies into `capped` the first `PIPE_BUF` bytes of the `count` iovecs at `iov`, in at most
/// `CAPPED_IOVECS` iovecs (a short write, which every writer handles), skipping empty ones.
/// Returns how many it filled.
///
/// # Safety
///
/// `iov` holds `count` valid iovecs.
unsafe fn cap_at_pipe_buf(
    iov: *const libc::iovec,
    count: usize,
    capped: &mut [libc::iovec; CAPPED_IOVECS],
) -> usize {
    let (mut n, mut room) = (0, PIPE_BUF);
    for i in 0..count {
        if n == CAPPED_IOVECS || room == 0 {
            break;
        }
        // SAFETY: `iov` holds `count` valid iovecs (the caller's contract).
        let v = unsafe { *iov.add(i) };
        let take = v.iov_len.min(room);
        if take == 0 {
            continue;
        }
        capped[n] = libc::iovec {
            iov_base: v.iov_base,
            iov_len: take,
        };
        n += 1;
        room -= take;
    }
    n
}

/// A zero-timeout `poll(2)` of `fd` for a read (`POLLIN`/`POLLHUP`) or a write (`POLLOUT`);
/// either counts `POLLERR`, so the call reports the error. Not ready: `Err(-EAGAIN)`; a
/// failed poll: `Err` with its negated errno.
fn ready_now(fd: RawFd, write: bool) -> Result<(), i32> {
    let events = if write { libc::POLLOUT } else { libc::POLLIN };
    let ready = if write {
        libc::POLLOUT | libc::POLLERR
    } else {
        libc::POLLIN | libc::POLLHUP | libc::POLLERR
    };
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: `pfd` is a valid pollfd on our stack; the timeout is zero.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        if n >= 0 {
            break;
        }
        let e = std::io::Error::last_os_error().raw_os_error();
        if e != Some(libc::EINTR) {
            return Err(-e.unwrap_or(libc::EIO));
        }
    }
    if pfd.revents & libc::POLLNVAL != 0 {
        return Err(-libc::EBADF);
    }
    if pfd.revents & ready == 0 {
        return Err(-libc::EAGAIN);
    }
    Ok(())
}

/// Whether a transfer on `fd` may be short the way a stream's is: anything but a socket whose
/// type keeps message boundaries (datagram, seqpacket), which the kernel never splits.
pub(crate) fn may_transfer_short(fd: RawFd) -> bool {
    // Not a socket (a file, a pipe, a tty): a stream of bytes.
    socket_type(fd).is_none_or(|ty| ty == libc::SOCK_STREAM)
}

/// The spare capacity of `buf`, at most `max` bytes of it: where a receive may write.
pub(crate) fn spare_within<B: crate::buf::IoBufMut>(buf: &mut B, max: usize) -> (*mut u8, usize) {
    let (ptr, len) = crate::buf::spare(buf);
    (ptr, len.min(max))
}

/// Caps a one-buffer transfer of `len` bytes on `fd` at `max` by setting the op's `limit`
/// (see [`Describe::limit`](crate::driver::Describe::limit)). True when it asked for more and
/// may be short.
pub(crate) fn limit_len(fd: RawFd, len: usize, max: usize, limit: &mut usize) -> bool {
    let capped = len > max && may_transfer_short(fd);
    if capped {
        *limit = max;
    }
    capped
}

/// Caps a vectored transfer on `fd` at `max` bytes in all (see
/// [`Describe::limit`](crate::driver::Describe::limit)): the iovec that crosses `max` is
/// shortened, those after it are to be left out. Returns how many iovecs to keep, or None,
/// changing nothing, when they hold no more than `max` or `fd` keeps message boundaries.
pub(crate) fn limit_iovecs(fd: RawFd, iovs: &mut [libc::iovec], max: usize) -> Option<usize> {
    let total = iovs.iter().fold(0usize, |t, v| t.saturating_add(v.iov_len));
    if total <= max || !may_transfer_short(fd) {
        return None;
    }
    let mut room = max;
    for (i, v) in iovs.iter_mut().enumerate() {
        if v.iov_len >= room {
            v.iov_len = room;
            return Some(i + 1);
        }
        room -= v.iov_len;
    }
    Some(iovs.len())
}
