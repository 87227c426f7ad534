//! The epoll half of an operation: the plain syscall that performs it.
//!
//! An op describes itself to io_uring as an SQE and to epoll as a [`Syscall`]: raw pointers
//! into memory the op table owns until the op completes. The epoll backend performs it with
//! `RWF_NOWAIT` when the fd is ready (or optimistically), and the blocking pool performs it
//! without that flag for fds epoll cannot poll. Where the kernel refuses `RWF_NOWAIT` on a
//! pollable fd (`EOPNOTSUPP`: pipes and sockets on older kernels, Linux 6.1 among them), a
//! read or write is performed another non-blocking way instead: see [`NoWaitFallback`].

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

/// Most iovecs a write capped at `PIPE_BUF` keeps (the rest is left for the next write).
const CAPPED_IOVECS: usize = 8;

/// A call capped at `PIPE_BUF` bytes, owning the capped copies of a vectored write's iovecs.
struct CappedCall {
    call: Syscall,
    iovs: [libc::iovec; CAPPED_IOVECS],
}

impl CappedCall {
    /// Performs the capped call without `RWF_NOWAIT`.
    ///
    /// # Safety
    ///
    /// As for [`Syscall::perform`] on the uncapped call.
    unsafe fn perform(&self, nowait: bool) -> i32 {
        let call = match self.call {
            Syscall::Writev {
                fd, count, offset, ..
            } => Syscall::Writev {
                fd,
                iov: self.iovs.as_ptr(),
                count,
                offset,
            },
            call => call,
        };
        // SAFETY: the capped iovecs point into the op's buffers, within their lengths, and
        // live in `self` across the call.
        unsafe { call.perform(nowait) }
    }
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
    /// A result without flags.
    pub fn plain(result: i32) -> Performed {
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

/// Linux's `PIPE_BUF`: a write of at most this many bytes into a pipe is atomic, so a blocking
/// write that small into a pipe with a free slot (it polls writable) does not block.
const PIPE_BUF: usize = 4096;

/// How a read or write is performed without blocking on a *pollable* fd whose kernel refuses
/// `RWF_NOWAIT` with `EOPNOTSUPP`. The pool is no way out for such an fd: a pipe read nobody
/// writes would hold a pool thread forever, and could be neither cancelled nor timed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoWaitFallback {
    /// A socket: `recv`/`send` (`recvmsg`/`sendmsg` when vectored) with `MSG_DONTWAIT`, which
    /// never blocks on any kernel, whatever the fd's `O_NONBLOCK` flag.
    Socket,
    /// `O_NONBLOCK` is set: the plain `readv`/`writev` cannot block.
    NonBlocking,
    /// A blocking fd (pipe, FIFO, tty): performed only when a zero-timeout `poll(2)` reports it
    /// ready (`POLLIN`/`POLLHUP` for a read, `POLLOUT` for a write), a write capped at
    /// `PIPE_BUF` bytes. This assumes nobody else reads or writes the fd between that poll and
    /// the call: another reader draining the pipe (or another writer filling it) in between
    /// would block the loop thread until the pipe changes again. A tty's writable room may be
    /// less than `PIPE_BUF`, so a tty write may block briefly too.
    PollFirst,
}

impl NoWaitFallback {
    /// Finds the fallback for `fd`: `SO_TYPE` answers for a socket (anything else, `ENOTSOCK`
    /// above all, means it is not one), then `F_GETFL` tells whether `O_NONBLOCK` is set.
    pub fn probe(fd: RawFd) -> NoWaitFallback {
        let mut ty: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `ty` and `len` are valid for writes and `len` holds `ty`'s size.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                (&raw mut ty).cast(),
                &mut len,
            )
        };
        if r == 0 {
            return NoWaitFallback::Socket;
        }
        // SAFETY: F_GETFL takes no argument and touches no memory.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags >= 0 && flags & libc::O_NONBLOCK != 0 {
            NoWaitFallback::NonBlocking
        } else {
            NoWaitFallback::PollFirst
        }
    }
}

/// Whether this kernel performs `preadv2(RWF_NOWAIT)` on a pipe (rather than refusing it with
/// `EOPNOTSUPP`), probed on an empty non-blocking pipe of our own, so it never blocks.
pub fn rwf_nowait_on_pipes() -> bool {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two c_ints, which pipe2(2) fills in.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return false;
    }
    let mut byte = 0u8;
    let iov = libc::iovec {
        iov_base: (&raw mut byte).cast(),
        iov_len: 1,
    };
    // SAFETY: `iov` describes one writable byte on our stack; fds[0] is the open read end.
    let r = unsafe { libc::preadv2(fds[0], &iov, 1, -1, libc::RWF_NOWAIT) };
    let errno = std::io::Error::last_os_error().raw_os_error();
    for fd in fds {
        // SAFETY: both fds came from pipe2(2) above and each is closed once, here.
        unsafe { libc::close(fd) };
    }
    r < 0 && errno == Some(libc::EAGAIN)
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

    /// Whether this is a read or a write that the epoll backend performs with `RWF_NOWAIT`,
    /// hence one that can fall back to a [`NoWaitFallback`].
    pub fn is_read_write(&self) -> bool {
        matches!(
            self,
            Syscall::Read { .. }
                | Syscall::Write { .. }
                | Syscall::Readv { .. }
                | Syscall::Writev { .. }
        )
    }

    /// Performs a read or write without `RWF_NOWAIT`, never blocking, the way `how` says
    /// (see [`NoWaitFallback`] for the one assumption `PollFirst` makes). Not ready: `-EAGAIN`.
    /// Any other call is performed as by `perform(true)`.
    ///
    /// # Safety
    ///
    /// As for [`perform`](Self::perform).
    pub unsafe fn perform_fallback(&self, how: NoWaitFallback) -> i32 {
        let (fd, write) = match *self {
            Syscall::Read { fd, .. } | Syscall::Readv { fd, .. } => (fd, false),
            Syscall::Write { fd, .. } | Syscall::Writev { fd, .. } => (fd, true),
            // SAFETY: the caller guarantees the op's pointers are valid for their lengths.
            _ => return unsafe { self.perform(true) },
        };
        match how {
            // SAFETY: the caller guarantees the op's buffers and iovecs are valid for their
            // lengths; the message built from them lives for the call.
            NoWaitFallback::Socket => unsafe { self.perform_on_socket() },
            // SAFETY: the caller guarantees the op's pointers are valid for their lengths;
            // O_NONBLOCK keeps the plain call from blocking.
            NoWaitFallback::NonBlocking => unsafe { self.perform(false) },
            NoWaitFallback::PollFirst => {
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
                        return -e.unwrap_or(libc::EIO);
                    }
                }
                if pfd.revents & libc::POLLNVAL != 0 {
                    return -libc::EBADF;
                }
                if pfd.revents & ready == 0 {
                    return -libc::EAGAIN;
                }
                // SAFETY: the caller guarantees the op's pointers are valid for their lengths
                // (capping only shortens them); the fd polled ready and a write is capped at
                // PIPE_BUF, so the plain call does not block (see `PollFirst`).
                unsafe { self.capped_at_pipe_buf().perform(false) }
            }
        }
    }

    /// A read or write on a socket with `MSG_DONTWAIT`.
    ///
    /// # Safety
    ///
    /// As for [`perform`](Self::perform).
    unsafe fn perform_on_socket(&self) -> i32 {
        let vectored = |fd: RawFd, iov: *const libc::iovec, count: usize, write: bool| {
            // SAFETY: an all-zero msghdr is valid (no name, no control data).
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = iov as *mut libc::iovec;
            msg.msg_iovlen = count as _;
            let call = if write {
                Syscall::SendMsg { fd, msg: &msg }
            } else {
                Syscall::RecvMsg { fd, msg: &mut msg }
            };
            // SAFETY: `msg` lives across the call; its iovecs are the op's, valid per the
            // caller's contract.
            unsafe { call.perform(true) }
        };
        match *self {
            Syscall::Read { fd, buf, len, .. } => {
                // SAFETY: the caller guarantees `buf` is valid for writes of `len` bytes.
                unsafe { Syscall::Recv { fd, buf, len }.perform(true) }
            }
            Syscall::Write { fd, buf, len, .. } => {
                // SAFETY: the caller guarantees `buf` is valid for reads of `len` bytes.
                unsafe { Syscall::Send { fd, buf, len }.perform(true) }
            }
            Syscall::Readv { fd, iov, count, .. } => vectored(fd, iov, count, false),
            Syscall::Writev { fd, iov, count, .. } => vectored(fd, iov, count, true),
            // SAFETY: the caller guarantees the op's pointers are valid for their lengths.
            _ => unsafe { self.perform(true) },
        }
    }

    /// The same call, a write limited to its first `PIPE_BUF` bytes and `CAPPED_IOVECS`
    /// iovecs (a short write, which every writer handles); a read unchanged.
    fn capped_at_pipe_buf(&self) -> CappedCall {
        let mut capped = CappedCall {
            call: *self,
            iovs: [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; CAPPED_IOVECS],
        };
        match *self {
            Syscall::Write {
                fd,
                buf,
                len,
                offset,
            } => {
                capped.call = Syscall::Write {
                    fd,
                    buf,
                    len: len.min(PIPE_BUF),
                    offset,
                }
            }
            Syscall::Writev {
                fd,
                iov,
                count,
                offset,
            } => {
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
                    capped.iovs[n] = libc::iovec {
                        iov_base: v.iov_base,
                        iov_len: take,
                    };
                    n += 1;
                    room -= take;
                }
                capped.call = Syscall::Writev {
                    fd,
                    iov: std::ptr::null(),
                    count: n,
                    offset,
                };
            }
            _ => {}
        }
        capped
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
