//! Waiting for a child process to exit, through its pidfd.
//!
//! io_uring: `IORING_OP_WAITID` (kernel 6.7+) with `P_PIDFD`, into a `siginfo_t` the op owns.
//! Where the kernel lacks the opcode (the CQE says `EINVAL`), and always on epoll: wait for
//! the pidfd to become readable (it does when the child exits; `IORING_OP_POLL_ADD` or epoll).
//! Either way the child is then reaped with `waitid(P_PIDFD, WNOHANG)` on the loop thread.
//!
//! The ring's waitid passes `WNOWAIT`: it only observes the exit and leaves the child
//! waitable. That makes a wait cancel-safe: if a dropped wait's op completes anyway (the
//! cancel lost the race), the status has not been consumed by a completion nobody reads,
//! and the next wait still finds it.
//!
//! Also here: the other pidfd system calls a child handle needs (`pidfd_open`,
//! `pidfd_send_signal`).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};

use io_uring::{opcode, squeue};

use super::poll::PollCall;
use super::{Interest, Op, poll_add, sealed::OperationImpl, to_result};
use crate::driver::{Completion, Describe, Syscall};

/// `P_PIDFD` (linux/wait.h); not every libc version exports it.
const P_PIDFD: libc::idtype_t = 3;

/// Set once a ring has refused `IORING_OP_WAITID`: later waits go straight to readiness.
static WAITID_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// Opens a pidfd for `pid` (close-on-exec, as `pidfd_open(2)` always makes it).
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just created this descriptor for us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `signal` to the process behind `pidfd` (`pidfd_send_signal(2)`): no pid-reuse race.
pub(crate) fn pidfd_send_signal(pidfd: RawFd, signal: i32) -> io::Result<()> {
    // SAFETY: a null siginfo pointer asks the kernel to fill in the defaults of kill(2).
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reaps the child behind `pidfd` if it has exited (`waitid(P_PIDFD, WEXITED | WNOHANG)`).
pub(crate) fn try_reap(pidfd: RawFd) -> io::Result<Option<ExitStatus>> {
    let mut info: libc::siginfo_t = zeroed_siginfo();
    loop {
        // SAFETY: `info` is a valid siginfo_t owned by this frame.
        let r = unsafe {
            libc::waitid(
                P_PIDFD,
                pidfd as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            )
        };
        if r == 0 {
            return Ok(exit_status(&info));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Waits until the child behind `pidfd` exits and reaps it.
pub(crate) async fn reap(pidfd: RawFd) -> io::Result<ExitStatus> {
    reap_with(pidfd, Path::Auto).await
}

/// How [`reap_with`] learns of the exit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Path {
    /// The ring's waitid unless a ring refused it before (epoll: always readiness).
    Auto,
    /// Pidfd readiness, as on kernels without `IORING_OP_WAITID` (tests the fallback).
    #[cfg_attr(not(test), allow(dead_code))]
    Readiness,
}

async fn reap_with(pidfd: RawFd, path: Path) -> io::Result<ExitStatus> {
    loop {
        if path == Path::Auto && !WAITID_UNSUPPORTED.load(Ordering::Relaxed) {
            match Op::new(WaitId::new(pidfd)).await {
                Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
                    // An old kernel without the opcode (or without P_PIDFD or WNOWAIT for it).
                    WAITID_UNSUPPORTED.store(true, Ordering::Relaxed);
                    continue;
                }
                res => res?,
            }
        } else {
            poll_add(pidfd, Interest::READABLE).await?;
        }
        if let Some(status) = try_reap(pidfd)? {
            return Ok(status);
        }
    }
}

fn zeroed_siginfo() -> libc::siginfo_t {
    // SAFETY: siginfo_t is plain old data; all-zero is a valid value (si_pid 0 = "none").
    unsafe { std::mem::zeroed() }
}

/// The exit status a filled `siginfo_t` describes, or None when no child had exited
/// (`WNOHANG` leaves `si_pid` zero).
fn exit_status(info: &libc::siginfo_t) -> Option<ExitStatus> {
    // SAFETY: the fields read are those waitid fills for SIGCHLD-style information.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return None;
    }
    // Rebuild the waitpid(2)-style status word ExitStatus is made from.
    let raw = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        _ => return None,
    };
    Some(ExitStatus::from_raw(raw))
}

/// The wait op: `IORING_OP_WAITID` (`WEXITED | WNOWAIT`) on io_uring, pidfd readiness on
/// epoll. Completes once the child has exited, without reaping it.
struct WaitId {
    pidfd: RawFd,
    /// Written by the kernel; boxed so it stays put while the op table moves the op.
    info: Box<libc::siginfo_t>,
}

impl WaitId {
    fn new(pidfd: RawFd) -> WaitId {
        WaitId {
            pidfd,
            info: Box::new(zeroed_siginfo()),
        }
    }
}

impl Describe for WaitId {
    fn opcode(&self) -> u8 {
        opcode::WaitId::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        let info: *mut libc::siginfo_t = &mut *self.info;
        let options = libc::WEXITED | libc::WNOWAIT;
        opcode::WaitId::new(P_PIDFD, self.pidfd as libc::id_t, options)
            .infop(info.cast_const())
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        PollCall::new(self.pidfd, libc::POLLIN).syscall()
    }
}

impl OperationImpl for WaitId {
    type Output = io::Result<()>;
    fn complete(self, done: Completion) -> io::Result<()> {
        to_result(done.result).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backend, Runtime};
    use std::os::fd::AsRawFd;

    /// Both ways of learning of the exit, on both backends, reap the child with its status
    /// (the readiness path is what kernels without `IORING_OP_WAITID` use on io_uring).
    #[test]
    fn both_wait_paths_reap_on_both_backends() {
        for backend in [Backend::IoUring, Backend::Epoll] {
            for path in [Path::Auto, Path::Readiness] {
                let rt = Runtime::builder().backend(backend).build().unwrap();
                // Reaped below through its pidfd, which std's lint cannot see.
                #[allow(clippy::zombie_processes)]
                let child = std::process::Command::new("sh")
                    .args(["-c", "sleep 0.05; exit 6"])
                    .spawn()
                    .unwrap();
                let pidfd = pidfd_open(child.id()).unwrap();
                assert_eq!(try_reap(pidfd.as_raw_fd()).unwrap(), None, "still running");
                let status = rt.block_on(reap_with(pidfd.as_raw_fd(), path)).unwrap();
                assert_eq!(status.code(), Some(6), "{backend:?} {path:?}");
                // Reaped: nothing is left to wait for.
                let again = try_reap(pidfd.as_raw_fd()).unwrap_err();
                assert_eq!(again.raw_os_error(), Some(libc::ECHILD));
            }
        }
    }
}
