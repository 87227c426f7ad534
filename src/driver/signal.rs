//! The kernel side of signals: `signalfd`, the thread's signal mask, and the forwarding handler.
//!
//! Everything `unsafe` about signals lives here; `crate::signal` builds the safe registry and
//! the public types on these calls.
//!
//! # The forwarding handler
//!
//! `signalfd` only sees signals that are *blocked* and pending. A mask is per thread, so a
//! process-directed signal (`kill(pid, ..)`, Ctrl-C) may be delivered to another thread that
//! does not block it — the libtest main thread, a thread started before the registration —
//! where its default action would kill the process. While any loop listens for a signal, the
//! process disposition of that signal is [`forward`]: it re-sends the signal to one listening
//! loop thread with `tgkill`, where it is blocked and so stays pending for the signalfd. The
//! previous disposition comes back when the last listener in the process goes away.

use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Highest signal number Linux knows (`_NSIG - 1`).
pub const MAX_SIGNAL: i32 = 64;

/// Slots of a table indexed by signal number (0 unused).
pub const SIGNAL_SLOTS: usize = MAX_SIGNAL as usize + 1;

/// Per signal: the thread id that [`forward`] sends it to (0: none).
static FORWARD_TO: [AtomicI32; SIGNAL_SLOTS] = [const { AtomicI32::new(0) }; SIGNAL_SLOTS];

/// How one thread listens for one signal: the registrations on the thread, and whether the
/// signal was blocked before the first of them blocked it. Kept per thread in the loop
/// context (`driver::context`), because the mask it describes is per thread; counted by
/// `crate::signal`'s registry.
#[derive(Clone, Copy)]
pub struct ThreadListeners {
    pub count: usize,
    pub was_blocked: bool,
}

impl ThreadListeners {
    pub const NONE: ThreadListeners = ThreadListeners {
        count: 0,
        was_blocked: false,
    };
}

/// The process disposition of a signal, saved to be put back later.
pub struct SavedAction(libc::sigaction);

// SAFETY: a sigaction is plain data (a handler address, a mask and flags); it is only read back
// into the kernel by `restore_action`.
unsafe impl Send for SavedAction {}

fn last_error<T>(what: &str) -> io::Result<T> {
    let err = io::Error::last_os_error();
    Err(io::Error::new(err.kind(), format!("{what}: {err}")))
}

fn sigset(signals: &[i32]) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set it is given.
    unsafe { libc::sigemptyset(set.as_mut_ptr()) };
    // SAFETY: initialised by sigemptyset just above.
    let mut set = unsafe { set.assume_init() };
    for &sig in signals {
        // SAFETY: `set` is an initialised sigset; an invalid number only makes it return EINVAL,
        // and callers validate numbers first.
        unsafe { libc::sigaddset(&mut set, sig) };
    }
    set
}

/// A non-blocking, close-on-exec signalfd for `signals`.
pub fn signalfd(signals: &[i32]) -> io::Result<OwnedFd> {
    let set = sigset(signals);
    // SAFETY: `set` is an initialised sigset; -1 asks for a new fd.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    if fd < 0 {
        return last_error(&format!("signalfd for signals {signals:?}"));
    }
    // SAFETY: signalfd returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Records taken per [`read_pending`] call.
const SIGINFOS_PER_READ: usize = 8;

/// Reads what is pending on a non-blocking signalfd, on the calling thread, and appends the
/// signal numbers to `received`; returns how many it read. `WouldBlock` when nothing is pending.
///
/// A signalfd read dequeues the signals pending for the *reading* thread (and the process), so
/// it must run on the loop thread, which blocks them and is where [`forward`] sends them: a
/// read performed by a pool thread or an io-wq worker would not see them. That is why this is a
/// plain `read(2)` here and not a ring read or a blocking-pool read (Linux before 6.7 has no
/// `RWF_NOWAIT` for signalfd, which sent the epoll backend's read to the pool).
pub fn read_pending(fd: BorrowedFd<'_>, received: &mut VecDeque<i32>) -> io::Result<usize> {
    // SAFETY: signalfd_siginfo is plain integers; all-zero is a valid value.
    let mut records: [libc::signalfd_siginfo; SIGINFOS_PER_READ] = unsafe { std::mem::zeroed() };
    // SAFETY: `records` is writable for its whole size; the fd is borrowed, so open.
    let n = unsafe {
        libc::read(
            fd.as_raw_fd(),
            records.as_mut_ptr().cast(),
            std::mem::size_of_val(&records),
        )
    };
    if n < 0 {
        return last_error(&format!("reading signalfd {}", fd.as_raw_fd()));
    }
    let count = n as usize / std::mem::size_of::<libc::signalfd_siginfo>();
    received.extend(records[..count].iter().map(|r| r.ssi_signo as i32));
    Ok(count)
}

fn change_mask(how: libc::c_int, sig: i32) -> io::Result<libc::sigset_t> {
    let set = sigset(&[sig]);
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `set` is initialised; `old` is writable space for the previous mask.
    let rc = unsafe { libc::pthread_sigmask(how, &set, old.as_mut_ptr()) };
    if rc != 0 {
        let err = io::Error::from_raw_os_error(rc);
        return Err(io::Error::new(
            err.kind(),
            format!("pthread_sigmask for signal {sig}: {err}"),
        ));
    }
    // SAFETY: pthread_sigmask succeeded, so it wrote the previous mask.
    Ok(unsafe { old.assume_init() })
}

/// Blocks `sig` in the calling thread; returns whether it was blocked already.
pub fn block(sig: i32) -> io::Result<bool> {
    let old = change_mask(libc::SIG_BLOCK, sig)?;
    // SAFETY: `old` is an initialised sigset.
    Ok(unsafe { libc::sigismember(&old, sig) } == 1)
}

/// Unblocks `sig` in the calling thread.
pub fn unblock(sig: i32) -> io::Result<()> {
    change_mask(libc::SIG_UNBLOCK, sig).map(drop)
}

/// Discards instances of `sig` pending for this thread or the process (it must be blocked), so
/// unblocking it later does not deliver a signal nobody read.
pub fn discard_pending(sig: i32) {
    let set = sigset(&[sig]);
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `set` and `zero` are initialised; a null info pointer is allowed. A zero timeout
    // never blocks; the loop ends when nothing of `sig` is pending (EAGAIN).
    while unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) } == sig {}
}

/// The calling thread's kernel id.
pub fn thread_id() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Sets the thread [`forward`] sends `sig` to (0: nowhere).
pub fn forward_to(sig: i32, tid: i32) {
    FORWARD_TO[sig as usize].store(tid, Ordering::Release);
}

/// The signal handler installed while a signal has listeners: sends the signal on to a loop
/// thread that blocks it. Only async-signal-safe calls; `errno` is preserved.
extern "C" fn forward(sig: libc::c_int) {
    let Some(target) = FORWARD_TO.get(sig as usize) else {
        return;
    };
    let tid = target.load(Ordering::Acquire);
    // SAFETY: gettid has no preconditions and is async-signal-safe.
    if tid == 0 || tid == unsafe { libc::gettid() } {
        // Nobody to forward to, or the target itself runs the handler (it unblocked the signal
        // while leaving): sending it again would only come back here.
        return;
    }
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    let errno = unsafe { *libc::__errno_location() };
    // A stale tid only makes tgkill fail with ESRCH (or hit a reused tid of this process,
    // which then also forwards or ignores it).
    // SAFETY: getpid and tgkill take integers only and are async-signal-safe.
    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sig) };
    // SAFETY: __errno_location returns this thread's errno slot, valid and writable for the
    // thread's life; restoring it keeps the interrupted code's errno intact.
    unsafe { *libc::__errno_location() = errno };
}

/// Installs [`forward`] as the process disposition of `sig`; returns the previous one.
pub fn install_forwarder(sig: i32) -> io::Result<SavedAction> {
    // SAFETY: an all-zero sigaction is a valid value to fill in.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = forward as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action.sa_mask` is writable.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: `action` is initialised and its handler is async-signal-safe; `old` is writable.
    let rc = unsafe { libc::sigaction(sig, &action, old.as_mut_ptr()) };
    if rc != 0 {
        return last_error(&format!("sigaction for signal {sig}"));
    }
    // SAFETY: sigaction succeeded, so it wrote the previous action.
    Ok(SavedAction(unsafe { old.assume_init() }))
}

/// Puts back a disposition saved by [`install_forwarder`].
pub fn restore_action(sig: i32, saved: SavedAction) {
    // SAFETY: `saved` is a disposition the kernel gave us for this signal.
    unsafe { libc::sigaction(sig, &saved.0, std::ptr::null_mut()) };
}

/// `SIGRTMIN` as the C library defines it (it reserves a few real-time signals for itself).
pub fn sigrtmin() -> i32 {
    libc::SIGRTMIN()
}
