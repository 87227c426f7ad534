//! The epoll half of an operation: the plain syscall that performs it.
//!
//! An op describes itself to io_uring as an SQE and to epoll as a [`Syscall`]: raw pointers
//! into memory the op table owns until the op completes. The epoll backend performs it with
//! `RWF_NOWAIT` when the fd is ready (or optimistically), and the blocking pool performs it
//! without that flag for fds epoll cannot poll.

use std::os::fd::RawFd;

/// A syscall with raw arguments, as an SQE would carry them.
#[derive(Clone, Copy, Debug)]
pub enum Syscall {
    /// Completes at once with 0.
    Nop,
    /// `preadv2(fd, [buf..buf+len], offset)`; offset -1 = current file position.
    Read {
        fd: RawFd,
        buf: *mut u8,
        len: usize,
        offset: i64,
    },
    /// `pwritev2(fd, [buf..buf+len], offset)`.
    Write {
        fd: RawFd,
        buf: *const u8,
        len: usize,
        offset: i64,
    },
    /// `preadv2(fd, iov, count, offset)`.
    Readv {
        fd: RawFd,
        iov: *const libc::iovec,
        count: usize,
        offset: i64,
    },
    /// `pwritev2(fd, iov, count, offset)`.
    Writev {
        fd: RawFd,
        iov: *const libc::iovec,
        count: usize,
        offset: i64,
    },
    /// Readiness of `fd` for `events` (POLLIN/POLLOUT); the result is the revents mask.
    Poll { fd: RawFd, events: i16 },
    /// `close(fd)`.
    Close { fd: RawFd },
    /// `accept4(fd, addr, len, SOCK_CLOEXEC)`; the result is the new fd.
    Accept {
        fd: RawFd,
        addr: *mut libc::sockaddr,
        len: *mut libc::socklen_t,
    },
    /// `connect(fd, addr, len)`, retried after writability until it settles.
    Connect {
        fd: RawFd,
        addr: *const libc::sockaddr,
        len: libc::socklen_t,
    },
    /// `send(fd, buf, len, MSG_NOSIGNAL)`.
    Send {
        fd: RawFd,
        buf: *const u8,
        len: usize,
    },
    /// `recv(fd, buf, len, 0)`.
    Recv { fd: RawFd, buf: *mut u8, len: usize },
    /// `sendmsg(fd, msg, MSG_NOSIGNAL)`.
    SendMsg { fd: RawFd, msg: *const libc::msghdr },
    /// `recvmsg(fd, msg, MSG_CMSG_CLOEXEC)`.
    RecvMsg { fd: RawFd, msg: *mut libc::msghdr },
    /// `recv(fd, ...)` into a buffer `source` picks, as io_uring's buffer select does: the
    /// completion's flags carry `IORING_CQE_F_BUFFER` and the buffer id. No buffer free:
    /// `-ENOBUFS`. Nothing received: the buffer goes back to `source`.
    RecvSelect {
        fd: RawFd,
        source: *const (dyn BufferSource + 'static),
        /// A stream socket: a receive that fills less than its buffer has drained the
        /// socket (datagram sockets return one datagram at a time, however many wait).
        stream: bool,
    },
    /// A filesystem call; it may block and cannot be polled, so epoll runs it on the pool.
    Fs(super::fs_call::FsCall),
}

/// What [`Syscall::perform_full`] did.
#[derive(Clone, Copy, Debug)]
pub struct Performed {
    /// The result or a negated errno, like a CQE's.
    pub result: i32,
    /// The completion's flags (a buffer select names its buffer).
    pub flags: u32,
    /// A stream receive got less than it asked for: the socket is empty now, and the next
    /// data will raise a new edge, so there is no need to try again until then (tokio makes
    /// the same inference). Saves an `EAGAIN` call per chunk.
    pub drained: bool,
}

impl Performed {
    fn plain(result: i32) -> Performed {
        Performed {
            result,
            flags: 0,
            drained: false,
        }
    }
}

/// Lends user-space buffers to an emulated buffer-select receive ([`Syscall::RecvSelect`]).
pub trait BufferSource {
    /// A free buffer: its id, address and length; `None` when every buffer is lent out.
    fn take(&self) -> Option<(u16, *mut u8, usize)>;
    /// Returns a buffer that received nothing.
    fn give_back(&self, bid: u16);
}

/// `IORING_CQE_F_BUFFER`: the completion's upper 16 flag bits name the buffer used.
pub const F_BUFFER: u32 = 1;
/// `IORING_CQE_BUFFER_SHIFT`.
pub const BUFFER_SHIFT: u32 = 16;

/// Which readiness a syscall waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Direction {
    pub read: bool,
    pub write: bool,
}

/// A syscall whose pointers may cross to a pool thread.
pub struct SendSyscall(pub Syscall);

// SAFETY: the pointers in a Syscall refer to memory the op table owns (directly or through an
// orphan) until the op's completion is posted back to the loop, so no other thread touches it
// while the pool thread performs the call.
unsafe impl Send for SendSyscall {}

impl Syscall {
    /// The fd and readiness to wait for, or None for syscalls that run at once.
    pub fn wait_for(&self) -> Option<(RawFd, Direction)> {
        let rd = Direction {
            read: true,
            write: false,
        };
        let wr = Direction {
            read: false,
            write: true,
        };
        match *self {
            Syscall::Nop | Syscall::Close { .. } | Syscall::Fs(_) => None,
            Syscall::Read { fd, .. }
            | Syscall::Readv { fd, .. }
            | Syscall::Accept { fd, .. }
            | Syscall::Recv { fd, .. }
            | Syscall::RecvMsg { fd, .. }
            | Syscall::RecvSelect { fd, .. } => Some((fd, rd)),
            Syscall::Write { fd, .. }
            | Syscall::Writev { fd, .. }
            | Syscall::Connect { fd, .. }
            | Syscall::Send { fd, .. }
            | Syscall::SendMsg { fd, .. } => Some((fd, wr)),
            Syscall::Poll { fd, events } => Some((
                fd,
                Direction {
                    read: events & libc::POLLIN != 0,
                    write: events & libc::POLLOUT != 0,
                },
            )),
        }
    }

    /// Whether the call may block and must run on the blocking pool, never on the loop thread.
    pub fn blocking(&self) -> bool {
        matches!(self, Syscall::Fs(_))
    }

    /// Whether `result` ends a multishot op: an error, or end of file for a receive.
    pub fn ends_stream(&self, result: i32) -> bool {
        match self {
            Syscall::RecvSelect { .. } => result <= 0,
            _ => result < 0,
        }
    }

    /// Whether a multishot op repeats the call until `EAGAIN` on each readiness report
    /// (receives and accepts drain the socket; a poll reports once per edge).
    pub fn drains(&self) -> bool {
        matches!(self, Syscall::RecvSelect { .. } | Syscall::Accept { .. })
    }

    /// Performs the call like [`perform`](Self::perform), also returning the completion's
    /// flags (a buffer select names the buffer it filled).
    ///
    /// # Safety
    ///
    /// As for [`perform`](Self::perform); a `RecvSelect`'s source must be alive.
    pub unsafe fn perform_full(&self, nowait: bool) -> Performed {
        let Syscall::RecvSelect { fd, source, stream } = *self else {
            // SAFETY: every pointer in a non-RecvSelect syscall is valid for its length: the
            // same contract `perform` has, which our caller upholds.
            let result = unsafe { self.perform(nowait) };
            return Performed::plain(result);
        };
        // SAFETY: the caller guarantees the source outlives the op.
        let source = unsafe { &*source };
        let Some((bid, buf, len)) = source.take() else {
            return Performed::plain(-libc::ENOBUFS);
        };
        let recv = Syscall::Recv { fd, buf, len };
        // SAFETY: the source lent `buf` for `len` bytes until it is given back or recycled.
        let result = unsafe { recv.perform(nowait) };
        if result <= 0 {
            source.give_back(bid);
            return Performed::plain(result);
        }
        Performed {
            result,
            flags: F_BUFFER | (u32::from(bid) << BUFFER_SHIFT),
            drained: stream && (result as usize) < len,
        }
    }

    /// Performs the call. With `nowait`, never blocks: returns `-EAGAIN` instead.
    /// Returns the result or a negated errno, like a CQE.
    ///
    /// # Safety
    ///
    /// The pointers must be valid for the lengths given, as when the op was built.
    pub unsafe fn perform(&self, nowait: bool) -> i32 {
        let flags = if nowait { libc::RWF_NOWAIT } else { 0 };
        // SAFETY (all arms): the caller guarantees the buffers and iovecs are valid.
        let ret: isize = match *self {
            Syscall::Nop => 0,
            Syscall::Read {
                fd,
                buf,
                len,
                offset,
            } => {
                let iov = libc::iovec {
                    iov_base: buf.cast(),
                    iov_len: len,
                };
                // SAFETY: see above: `buf` is valid for `len` bytes of writes.
                unsafe { libc::preadv2(fd, &iov, 1, offset, flags) }
            }
            Syscall::Write {
                fd,
                buf,
                len,
                offset,
            } => {
                let iov = libc::iovec {
                    iov_base: buf as *mut _,
                    iov_len: len,
                };
                // SAFETY: see above: `buf` is valid for `len` bytes of reads.
                unsafe { libc::pwritev2(fd, &iov, 1, offset, flags) }
            }
            Syscall::Readv {
                fd,
                iov,
                count,
                offset,
            } => {
                // SAFETY: see above: `iov` holds `count` valid iovecs.
                unsafe { libc::preadv2(fd, iov, count as i32, offset, flags) }
            }
            Syscall::Writev {
                fd,
                iov,
                count,
                offset,
            } => {
                // SAFETY: see above: `iov` holds `count` valid iovecs.
                unsafe { libc::pwritev2(fd, iov, count as i32, offset, flags) }
            }
            Syscall::Poll { fd, events } => {
                let mut pfd = libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                };
                let timeout = if nowait { 0 } else { -1 };
                // SAFETY: `pfd` is a valid pollfd on our stack.
                let n = unsafe { libc::poll(&mut pfd, 1, timeout) };
                if n == 0 {
                    return -libc::EAGAIN;
                }
                if n > 0 {
                    return i32::from(pfd.revents);
                }
                -1
            }
            // SAFETY: the Close op owns `fd`; it is closed exactly once, here.
            Syscall::Close { fd } => unsafe { libc::close(fd) as isize },
            Syscall::Accept { fd, addr, len } => {
                // SAFETY: `addr`/`len` point to the op's boxed sockaddr storage and its length.
                let r = unsafe { libc::accept4(fd, addr, len, libc::SOCK_CLOEXEC) };
                r as isize
            }
            Syscall::Connect { fd, addr, len } => {
                // SAFETY: `addr` points to the op's boxed sockaddr of `len` bytes.
                let r = unsafe { libc::connect(fd, addr, len) };
                if r == 0 {
                    return 0;
                }
                // A non-blocking connect settles over several calls: in progress (wait for
                // writability), then connected (EISCONN) or the connection's error.
                return match std::io::Error::last_os_error().raw_os_error() {
                    Some(libc::EISCONN) => 0,
                    Some(libc::EINPROGRESS) | Some(libc::EALREADY) => -libc::EAGAIN,
                    Some(e) => -e,
                    None => -libc::EIO,
                };
            }
            Syscall::Send { fd, buf, len } => {
                let flags = libc::MSG_NOSIGNAL | if nowait { libc::MSG_DONTWAIT } else { 0 };
                // SAFETY: `buf` is valid for reads of `len` bytes (see above).
                unsafe { libc::send(fd, buf.cast(), len, flags) }
            }
            Syscall::Recv { fd, buf, len } => {
                let flags = if nowait { libc::MSG_DONTWAIT } else { 0 };
                // SAFETY: `buf` is valid for writes of `len` bytes (see above).
                unsafe { libc::recv(fd, buf.cast(), len, flags) }
            }
            Syscall::SendMsg { fd, msg } => {
                let flags = libc::MSG_NOSIGNAL | if nowait { libc::MSG_DONTWAIT } else { 0 };
                // SAFETY: `msg` and what it points to live in the op's box (see above).
                unsafe { libc::sendmsg(fd, msg, flags) }
            }
            Syscall::RecvMsg { fd, msg } => {
                // Passed descriptors are close-on-exec from the start (the SQE sets it too).
                let flags = libc::MSG_CMSG_CLOEXEC | if nowait { libc::MSG_DONTWAIT } else { 0 };
                // SAFETY: `msg` and what it points to live in the op's box (see above).
                unsafe { libc::recvmsg(fd, msg, flags) }
            }
            // SAFETY: forwarded from the caller; the buffer's id is dropped here, so this
            // path is only for callers that do not need it (none in the runtime).
            Syscall::RecvSelect { .. } => return unsafe { self.perform_full(nowait) }.result,
            // SAFETY: forwarded from the caller (the op owns its paths and buffers).
            Syscall::Fs(call) => return unsafe { call.perform() },
        };
        if ret < 0 {
            -std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO)
        } else {
            ret.min(i32::MAX as isize) as i32
        }
    }
}
