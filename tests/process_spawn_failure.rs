//! `Command::spawn` that fails after the fork leaves no child behind, running or zombie, on
//! both backends: the child is killed and reaped before the error (which names the program
//! and the step) is returned.
//!
//! The failures are injected in a re-executed copy of this test binary (a lowered
//! `RLIMIT_NOFILE`, a seccomp filter), so the harness's own process is unaffected.

mod seccomp_support;
mod support;

use ringloop::process::{Command, Stdio};

/// What a child test role injects before spawning.
const FD_LIMIT: &str = "fd_limit";
const SETFL_DENIED: &str = "setfl_denied";

/// Child role names: `<injection>:<backend>`.
fn role(injection: &str, backend: ringloop::Backend) -> String {
    format!("{injection}:{}", support::backend_role(backend))
}

/// The injection and backend this process was re-executed for, if it is such a child.
fn child_injection() -> Option<(String, ringloop::Backend)> {
    let role = support::child_role()?;
    let (injection, backend) = role.split_once(':')?;
    let backend = match backend {
        "io_uring" => ringloop::Backend::IoUring,
        _ => ringloop::Backend::Epoll,
    };
    Some((injection.to_owned(), backend))
}

/// Whether this process has no child at all (running, stopped or zombie): `waitid(P_ALL)`
/// without waiting or reaping fails with `ECHILD`.
fn no_child_left() -> bool {
    // SAFETY: an all-zero siginfo_t is a valid value for waitid(2) to fill in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WSTOPPED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: `info` is a writable siginfo_t; P_ALL ignores the id.
    let rc = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) };
    rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
}

/// Lowers the soft `RLIMIT_NOFILE` to a little above the highest open fd and fills every
/// slot left, so the next call that needs a descriptor fails with `EMFILE`.
fn exhaust_fds() -> Vec<std::os::fd::OwnedFd> {
    let highest = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap_or(2);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `limit`.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
    limit.rlim_cur = highest + 8;
    // SAFETY: setrlimit reads one rlimit; lowering the soft limit is always allowed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let mut held = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(file) => held.push(file.into()),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return held,
            Err(e) => panic!("filling the fd table: {e}"),
        }
    }
}

/// A seccomp filter that fails `fcntl(fd, F_SETFL, ..)` with `EPERM` on every thread: making
/// a pipe non-blocking, the step after `pidfd_open`, then fails.
mod deny_setfl {
    use crate::seccomp_support::{When, fail_syscall};

    /// Installs the filter; false (after saying so) on an architecture it does not know.
    pub fn install() -> bool {
        fail_syscall(
            libc::SYS_fcntl,
            When::ArgEquals(1, libc::F_SETFL as u32),
            libc::EPERM,
        )
    }
}

/// The child side of both tests: injects the failure, spawns, checks the error and that no
/// child is left.
#[test]
fn child_spawn_after_injected_failure() {
    let Some((injection, backend)) = child_injection() else {
        return; // only meaningful when re-executed by a test below
    };
    let rt = support::runtime(backend);
    rt.block_on(async {
        assert!(no_child_left(), "a child before the test started");
        let (result, program, step) = match injection.as_str() {
            FD_LIMIT => {
                let held = exhaust_fds();
                // Inherited streams: spawning itself needs no descriptor, pidfd_open does.
                let result = Command::new("true").spawn();
                drop(held);
                (result, "\"true\"", "pidfd_open")
            }
            SETFL_DENIED => {
                if !deny_setfl::install() {
                    return;
                }
                // `cat` ends once its stdin closes, so a child left behind cannot outlive the
                // test; it would stay a zombie, which `no_child_left` sees.
                let result = Command::new("cat")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn();
                (result, "\"cat\"", "stdin pipe")
            }
            other => panic!("unknown injection {other}"),
        };
        let err = result.expect_err("spawn must fail under the injected fault");
        let text = err.to_string();
        assert!(
            no_child_left(),
            "spawn failed but left a child behind ({text})"
        );
        assert!(
            text.contains(program) && text.contains(step),
            "the error does not name {program} and {step}: {text}"
        );
    });
}

fn run(injection: &str, backend: ringloop::Backend) {
    let role = role(injection, backend);
    let output = support::run_child(
        "child_spawn_after_injected_failure",
        &[(support::CHILD_ENV, role.as_str())],
    );
    support::assert_child_passed(&role, &output);
}

both_backends! {
    /// `pidfd_open` fails with `EMFILE` after the fork (the fd table is full): the spawned
    /// child is killed and reaped, and the error names `pidfd_open` and the program.
    fn pidfd_open_failure_leaves_no_child(backend: Backend) {
        run(FD_LIMIT, backend);
    }

    /// Making the child's stdin pipe non-blocking fails (seccomp denies `F_SETFL`), the step
    /// after `pidfd_open`: the child is killed and reaped, and the error names the pipe.
    fn pipe_adoption_failure_leaves_no_child(backend: Backend) {
        run(SETFL_DENIED, backend);
    }
}
