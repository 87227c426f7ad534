//! Unix signals as async events: [`ctrl_c`], the [`Signals`] stream, and (on the loop
//! [`Handle`](crate::Handle)) asyncio's `add_signal_handler` / `remove_signal_handler`.
//!
//! ```
//! # ringloop::run(async {
//! let mut signals = ringloop::signal::Signals::new([libc::SIGUSR1]).unwrap();
//! // SAFETY: kill(2) on our own pid with a signal we listen for.
//! unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
//! assert_eq!(signals.recv().await.unwrap(), libc::SIGUSR1);
//! # });
//! ```
//!
//! # How it works
//!
//! A listener blocks its signals in the loop thread (`pthread_sigmask`) and reads them from a
//! non-blocking `signalfd`: a `read(2)` on the loop thread itself, and when it finds nothing
//! (`EAGAIN`), a readiness op ([`op::poll_add`]) on the fd, then the read again — a wake-up
//! that finds nothing (another listener took the signal) just waits again. The read stays on
//! the loop thread because a signalfd yields the signals pending for the thread that reads it:
//! a ring read punted to an io-wq worker, or the epoll backend's blocking-pool read (used where
//! the kernel has no `RWF_NOWAIT` for signalfd, before Linux 6.7), would not see a signal
//! forwarded to the loop thread and came back with `EAGAIN`. Masks are
//! reference-counted per thread and signal: the mask is put back as it was when the last
//! listener of a signal on that thread is dropped.
//!
//! # Threads
//!
//! A signal mask belongs to one thread, and a process-directed signal (`kill`, Ctrl-C in a
//! terminal) goes to *any* thread that does not block it — where its default action may kill
//! the process before the loop ever sees it. So while a signal has a listener anywhere in the
//! process, its disposition is a small forwarding handler that re-sends the signal with
//! `tgkill` to a listening loop thread (where it is blocked, so it waits for the signalfd).
//! The previous disposition (handler, `SIG_IGN` or `SIG_DFL`) is restored when the last
//! listener in the process goes away; signals still pending then are discarded. Code that
//! installs its own handler for the same signal while ringloop listens replaces the forwarder.
//!
//! What remains of the caveat: a forwarded signal reaches the loop as a `tgkill` from this
//! process, so the original sender is not known (ringloop reports only the number); when loops
//! on several threads listen for one signal, which of them reads a given instance is
//! unspecified; and a thread must not unblock a signal a loop on it listens for. Threads
//! started *by* a loop thread after it registered inherit the blocked mask (the signal then
//! waits in the process queue for the signalfd, which is what we want). Child processes: std's
//! `Command` resets the signal mask in the child; code that forks by other means must do so
//! itself, or the child starts with the listened-for signals blocked.
//!
//! # Delivery
//!
//! Each signal instance is read once, by one listener: two [`Signals`] for the same signal
//! (or a `Signals` and [`ctrl_c`]) compete for it. Like all standard signals, several
//! instances of one signal raised before the loop reads them may coalesce into one.

mod handler;
mod registration;

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::driver::signal as sys;
use crate::op::{self, Interest, Op, PollAdd};
use registration::Registration;

/// A stream of the signals in a set, read from a signalfd.
///
/// Creating it blocks the signals in the calling thread, which must be the loop's thread;
/// dropping it restores the mask (see the [module docs](self)).
///
/// ```
/// use futures_lite::StreamExt;
/// # ringloop::run(async {
/// let mut signals = ringloop::signal::Signals::new([libc::SIGUSR2, libc::SIGHUP]).unwrap();
/// // SAFETY: kill(2) on our own pid with a signal we listen for.
/// unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
/// assert_eq!(signals.next().await.unwrap().unwrap(), libc::SIGHUP);
/// # });
/// ```
pub struct Signals {
    // Field order: the readiness wait (which borrows the fd number) goes before the fd closes,
    // and the fd before the mask is restored.
    readable: Option<Op<PollAdd>>,
    received: VecDeque<i32>,
    fd: OwnedFd,
    registration: Registration,
}

impl Signals {
    /// Listens for `signals` on the current loop.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a number that is not a signal, for `SIGKILL`/`SIGSTOP` (they cannot
    /// be caught), for the fault signals (`SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`) and for the
    /// real-time signals the C library reserves; the kernel's error if the signalfd cannot be
    /// made.
    ///
    /// # Panics
    ///
    /// Outside a ringloop loop thread.
    pub fn new(signals: impl IntoIterator<Item = i32>) -> io::Result<Signals> {
        assert!(
            crate::runtime::with_context(|_| ()).is_some(),
            "Signals::new must be called from a ringloop loop thread (inside block_on / ringloop::run)"
        );
        let signals: Vec<i32> = signals.into_iter().collect();
        for &sig in &signals {
            registration::validate(sig)?;
        }
        let fd = sys::signalfd(&signals)?;
        let registration = Registration::new(&signals)?;
        Ok(Signals {
            readable: None,
            received: VecDeque::new(),
            fd,
            registration,
        })
    }

    /// The signals this stream listens for.
    pub fn signals(&self) -> &[i32] {
        self.registration.signals()
    }

    /// Waits for the next signal; returns its number.
    ///
    /// # Errors
    ///
    /// The kernel's error from reading the signalfd (not expected in practice).
    pub async fn recv(&mut self) -> io::Result<i32> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next signal.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<i32>> {
        loop {
            if let Some(sig) = self.received.pop_front() {
                return Poll::Ready(Ok(sig));
            }
            if self.readable.is_none() {
                match sys::read_pending(self.fd.as_fd(), &mut self.received) {
                    Ok(n) if n > 0 => continue,
                    // Nothing pending (or another listener took it): wait for readiness.
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            let fd = self.fd.as_raw_fd();
            let readable = self
                .readable
                .get_or_insert_with(|| op::poll_add(fd, Interest::READABLE));
            let ready = std::task::ready!(Pin::new(readable).poll(cx));
            self.readable = None;
            ready.map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("waiting for signalfd {fd} to be readable: {e}"),
                )
            })?;
        }
    }
}

impl Stream for Signals {
    type Item = io::Result<i32>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx).map(Some)
    }
}

/// A future that resolves when the process receives `SIGINT` (Ctrl-C); see [`ctrl_c`].
pub struct CtrlC {
    signals: Option<io::Result<Signals>>,
}

/// Waits for `SIGINT` (Ctrl-C). The signal is blocked from the moment this is called (not
/// first polled), so a Ctrl-C right after the call is not lost.
///
/// ```no_run
/// # ringloop::run(async {
/// ringloop::signal::ctrl_c().await.unwrap();
/// println!("interrupted, shutting down");
/// # });
/// ```
///
/// # Panics
///
/// Outside a ringloop loop thread.
pub fn ctrl_c() -> CtrlC {
    CtrlC {
        signals: Some(Signals::new([libc::SIGINT])),
    }
}

impl Future for CtrlC {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.signals.as_mut() {
            Some(Ok(signals)) => signals.poll_recv(cx).map_ok(drop),
            Some(Err(_)) => match this.signals.take() {
                Some(Err(e)) => Poll::Ready(Err(e)),
                _ => unreachable!("matched an error just above"),
            },
            None => panic!("CtrlC polled after it completed with an error"),
        }
    }
}

/// The conventional name of `sig` (`"SIGINT"`, `"SIGRTMIN+3"`), or `"signal N"` for a number
/// Linux does not define.
///
/// ```
/// assert_eq!(ringloop::signal::name(libc::SIGTERM), "SIGTERM");
/// ```
pub fn name(sig: i32) -> String {
    const NAMES: [&str; 32] = [
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    let rtmin = sys::sigrtmin();
    match sig {
        1..=31 => NAMES[sig as usize].to_owned(),
        s if s == rtmin => "SIGRTMIN".to_owned(),
        s if s > rtmin && s <= sys::MAX_SIGNAL => format!("SIGRTMIN+{}", s - rtmin),
        s => format!("signal {s}"),
    }
}
