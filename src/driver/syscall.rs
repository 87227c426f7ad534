//! The readiness half of an operation, as the driver sees it: a call it can wait for and
//! perform without knowing which call it is.
//!
//! An op describes itself to io_uring as an SQE and to the other backends as a [`Syscall`]:
//! the descriptor it acts on, what it waits for ([`Wait`]), a few flags about how its results
//! behave, and the call itself — the op's arguments (raw pointers into memory the op table
//! owns until the op completes) stored with the function that performs them ([`Perform`],
//! implemented next to each op in `op/`). The driver never names a socket or file call: it
//! waits, performs, and posts the result.
//!
//! A call is performed in one of three [`Mode`]s: without blocking (`RWF_NOWAIT`,
//! `MSG_DONTWAIT`, a zero timeout: not ready is `-EAGAIN`), blocking (on a pool thread), or,
//! for a read or write on a pollable fd whose kernel refuses `RWF_NOWAIT` (`EOPNOTSUPP`: pipes
//! and sockets on older kernels, Linux 6.1 among them), another non-blocking way the backend
//! found for that fd: see [`NoWaitFallback`].

use std::mem::{MaybeUninit, align_of, size_of};
use std::os::fd::RawFd;

/// Which readiness a call waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Direction {
    pub read: bool,
    pub write: bool,
}

/// What a call waits for before it is performed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Nothing: performed at once, and never blocks (nop, close).
    Nothing,
    /// Cannot be polled and may block (filesystem calls): performed on the blocking pool,
    /// never on the loop thread.
    Pool,
    /// The fd's readiness: the call is tried without blocking, and again each time the fd
    /// becomes ready, until it no longer says `EAGAIN`.
    Ready(Direction),
}

/// How a call is performed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Never blocks: not ready is `-EAGAIN`.
    NoWait,
    /// May block (a pool thread).
    Blocking,
    /// A read or write that may fall back ([`Syscall::has_nowait_fallback`]) on an fd that
    /// refused `RWF_NOWAIT`: performed the way given, still without blocking.
    Fallback(NoWaitFallback),
}

impl Mode {
    /// Whether the call must not block (every mode but [`Blocking`](Mode::Blocking)).
    pub fn nowait(self) -> bool {
        self != Mode::Blocking
    }
}

/// What performing a call did.
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

/// A call's arguments and how to perform them; each op family implements it for its call
/// (`op/`). The arguments are copied into the [`Syscall`], so they are plain values and raw
/// pointers into memory the op owns, at most four words.
pub trait Perform: Copy + 'static {
    /// Performs the call the way `mode` says.
    ///
    /// # Safety
    ///
    /// Every pointer in `self` must be valid for the lengths it gives, as when the op built
    /// the call (the op table keeps the op's memory alive until its completion).
    unsafe fn perform(&self, mode: Mode) -> Performed;
}

/// Room for a call's arguments.
type Args = MaybeUninit<[usize; 4]>;

/// The bits of `Syscall::flags` (see the builder method of each).
const CLOSES_FD: u8 = 1;
const DRAINS: u8 = 2;
const ENDS_AT_EOF: u8 = 4;
const NOWAIT_FALLBACK: u8 = 8;

/// An op's readiness half: what it waits for and the call that performs it.
#[derive(Clone, Copy)]
pub struct Syscall {
    fd: RawFd,
    wait: Wait,
    flags: u8,
    /// A `P: Perform`, written by [`Syscall::new`] together with `perform`.
    args: Args,
    /// `perform_as::<P>` for that `P`.
    perform: unsafe fn(&Args, Mode) -> Performed,
}

/// Reads the `P` that `args` holds and performs it.
///
/// # Safety
///
/// `args` holds a `P` (as [`Syscall::new`] pairs them), whose pointers are valid as
/// [`Perform::perform`] requires.
unsafe fn perform_as<P: Perform>(args: &Args, mode: Mode) -> Performed {
    // SAFETY: `Syscall::new` wrote a `P` at the start of `args`, which is large and aligned
    // enough for it (checked there), and nothing writes it since.
    let call = unsafe { &*args.as_ptr().cast::<P>() };
    // SAFETY: the caller guarantees the call's pointers are valid for its lengths.
    unsafe { call.perform(mode) }
}

impl Syscall {
    /// The call `call` on `fd` (-1: none), waiting for `wait`.
    pub fn new<P: Perform>(fd: RawFd, wait: Wait, call: P) -> Syscall {
        const {
            assert!(
                size_of::<P>() <= size_of::<Args>(),
                "a call has at most four words"
            );
            assert!(align_of::<P>() <= align_of::<Args>());
        }
        let mut args = Args::uninit();
        // SAFETY: `P` fits in `args` and its alignment suffices (asserted above).
        unsafe { args.as_mut_ptr().cast::<P>().write(call) };
        Syscall {
            fd,
            wait,
            flags: 0,
            args,
            perform: perform_as::<P>,
        }
    }

    /// A call performed once `fd` is readable.
    pub fn on_readable<P: Perform>(fd: RawFd, call: P) -> Syscall {
        Self::on_ready(fd, true, false, call)
    }

    /// A call performed once `fd` is writable.
    pub fn on_writable<P: Perform>(fd: RawFd, call: P) -> Syscall {
        Self::on_ready(fd, false, true, call)
    }

    /// A call performed once `fd` is ready in the directions given.
    pub fn on_ready<P: Perform>(fd: RawFd, read: bool, write: bool, call: P) -> Syscall {
        Self::new(fd, Wait::Ready(Direction { read, write }), call)
    }

    /// A call performed at once, which never blocks (`fd`: the one it acts on, or -1).
    pub fn at_once<P: Perform>(fd: RawFd, call: P) -> Syscall {
        Self::new(fd, Wait::Nothing, call)
    }

    /// A call on the blocking pool (it may block and cannot be polled).
    pub fn on_pool<P: Perform>(call: P) -> Syscall {
        Self::new(-1, Wait::Pool, call)
    }

    fn with(mut self, flag: u8) -> Syscall {
        self.flags |= flag;
        self
    }

    /// Performing the call closes `fd`: the backend first forgets what it knew about it (its
    /// registration, the ops waiting on it).
    pub fn closing_fd(self) -> Syscall {
        self.with(CLOSES_FD)
    }

    /// A multishot call repeated until `EAGAIN` on each readiness report (receives and
    /// accepts: an edge is not reported again for data already there). Without it, a
    /// multishot call reports once per edge (a poll).
    pub fn draining(self) -> Syscall {
        self.with(DRAINS)
    }

    /// A multishot stream that a result of 0 (end of file) ends too, not only an error.
    pub fn ending_at_eof(self) -> Syscall {
        self.with(ENDS_AT_EOF)
    }

    /// A read or write tried with `RWF_NOWAIT`: where the fd refuses it (`-EOPNOTSUPP`), the
    /// backend finds a [`NoWaitFallback`] for the fd and performs it in [`Mode::Fallback`].
    pub fn with_nowait_fallback(self) -> Syscall {
        self.with(NOWAIT_FALLBACK)
    }

    /// The descriptor the call waits on or closes (-1: none).
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// What the call waits for.
    pub fn wait(&self) -> Wait {
        self.wait
    }

    /// See [`closing_fd`](Self::closing_fd).
    pub fn closes_fd(&self) -> bool {
        self.flags & CLOSES_FD != 0
    }

    /// See [`draining`](Self::draining).
    pub fn drains(&self) -> bool {
        self.flags & DRAINS != 0
    }

    /// Whether `result` ends a multishot op: an error, or end of file where
    /// [`ending_at_eof`](Self::ending_at_eof) says so.
    pub fn ends_stream(&self, result: i32) -> bool {
        result < 0 || (result == 0 && self.flags & ENDS_AT_EOF != 0)
    }

    /// See [`with_nowait_fallback`](Self::with_nowait_fallback).
    pub fn has_nowait_fallback(&self) -> bool {
        self.flags & NOWAIT_FALLBACK != 0
    }

    /// Performs the call.
    ///
    /// # Safety
    ///
    /// The op's memory must be alive and unmoved since it built this call (the op table owns
    /// it until the completion), as [`Perform::perform`] requires.
    pub unsafe fn perform(&self, mode: Mode) -> Performed {
        // SAFETY: `perform` was paired with `args` by `new`; the caller guarantees the
        // pointers are valid.
        unsafe { (self.perform)(&self.args, mode) }
    }
}

impl std::fmt::Debug for Syscall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syscall")
            .field("fd", &self.fd)
            .field("wait", &self.wait)
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

/// Lends user-space buffers to an emulated buffer-select receive (io_uring's
/// `IOSQE_BUFFER_SELECT` without a kernel ring): the op's call takes one per receive, and its
/// completion names it with [`F_BUFFER`] and the buffer id.
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

/// How a read or write is performed without blocking on a *pollable* fd whose kernel refuses
/// `RWF_NOWAIT` with `EOPNOTSUPP`. The pool is no way out for such an fd: a pipe read nobody
/// writes would hold a pool thread forever, and could be neither cancelled nor timed out.
/// The epoll backend finds it once per fd ([`probe`](Self::probe)); the op performs it.
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
        if socket_type(fd).is_some() {
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

/// The type of socket `fd` is (`SOCK_STREAM`, `SOCK_DGRAM`, ...), from `SO_TYPE`; None where
/// `fd` is not a socket (`ENOTSOCK` above all).
pub fn socket_type(fd: RawFd) -> Option<libc::c_int> {
    let mut ty: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
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
    (r == 0).then_some(ty)
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
