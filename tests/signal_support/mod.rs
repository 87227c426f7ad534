//! Helpers for the signal tests: run a test body in a child process, raise signals, and read
//! the calling thread's mask and the process disposition.
//!
//! Signal masks and dispositions are process-wide state and libtest runs tests on parallel
//! threads, so every test that listens for a signal re-executes the test binary to run its
//! body alone in a fresh process. That child also has libtest's main thread, which does not
//! block the signal: a `kill(getpid(), ..)` may land there, which exercises the forwarding
//! handler.
//!
//! Not every test file uses every helper, hence `dead_code` is allowed for this module.
#![allow(dead_code)]

use ringloop::Backend;

use crate::support;

/// The child role the signal tests use.
pub const ROLE: &str = "signal";

/// Runs `body` in a child process: in the parent, re-executes the test
/// `{test}::{io_uring|epoll}` and asserts it passed; in the child, runs `body`.
pub fn in_child(test: &str, backend: Backend, body: impl FnOnce(Backend)) {
    match support::child_role() {
        Some(role) => {
            assert_eq!(role, ROLE, "unexpected child role");
            reset_ignored_signals();
            body(backend);
        }
        None => {
            let variant = match backend {
                Backend::IoUring => "io_uring",
                Backend::Epoll => "epoll",
                other => panic!("no test variant for {other:?}"),
            };
            let name = format!("{test}::{variant}");
            let output = support::run_child(&name, &[(support::CHILD_ENV, ROLE)]);
            support::assert_child_passed(&name, &output);
        }
    }
}

/// Gives every signal the test runner's environment left ignored its default disposition, so a
/// child starts from the state the tests assume whatever launched `cargo test`: `nohup`
/// ignores SIGHUP, and a non-interactive shell ignores SIGINT and SIGQUIT in background jobs
/// (`cargo test &`); both are inherited through exec. SIGPIPE stays ignored: the Rust runtime
/// ignores it on purpose.
fn reset_ignored_signals() {
    for sig in 1..=libc::SIGRTMAX() {
        if matches!(sig, libc::SIGKILL | libc::SIGSTOP | libc::SIGPIPE) {
            continue;
        }
        let mut old = std::mem::MaybeUninit::<libc::sigaction>::uninit();
        // SAFETY: a null new action only reads the current one into `old`.
        if unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) } != 0 {
            continue; // a signal number the C library reserves for itself
        }
        // SAFETY: sigaction succeeded, so `old` is initialised.
        if unsafe { old.assume_init() }.sa_sigaction == libc::SIG_IGN {
            // SAFETY: installs the default action; no handler code is involved.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
}

/// Sends `sig` to this whole process (a process-directed signal, as from a shell's `kill`).
pub fn raise_in_process(sig: i32) {
    // SAFETY: kill(2) with our own pid; the tests listen for `sig` before sending it.
    let rc = unsafe { libc::kill(libc::getpid(), sig) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

/// Whether `sig` is blocked in the calling thread.
pub fn blocked_here(sig: i32) -> bool {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: a null new set only reads the current mask into `set`.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), set.as_mut_ptr()) };
    assert_eq!(rc, 0, "pthread_sigmask");
    // SAFETY: pthread_sigmask succeeded, so `set` is initialised.
    unsafe { libc::sigismember(set.as_ptr(), sig) == 1 }
}

/// Whether the process disposition of `sig` is the default action.
pub fn disposition_is_default(sig: i32) -> bool {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a null new action only reads the current one into `old`.
    let rc = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
    assert_eq!(rc, 0, "sigaction");
    // SAFETY: sigaction succeeded, so `old` is initialised.
    unsafe { old.assume_init() }.sa_sigaction == libc::SIG_DFL
}
