//! Backend selection under real faults: `Backend::Auto` must come up on epoll, run real I/O and
//! say why, when `io_uring_setup` is denied (seccomp), when memlock is tiny, and when
//! `RINGLOOP_BACKEND` says so; an explicit `Backend::IoUring` that cannot start is an error, never
//! a panic.
//!
//! Each fault is installed in a child process (the test binary re-executed for one test), because
//! a seccomp filter or a dropped capability cannot be undone. The child tests (`child_*`) return
//! at once unless `RINGLOOP_TEST_CHILD` is set, so they are no-ops in a normal run; the parent
//! tests start them and check their exit status.

mod seccomp_support;
mod support;

use std::os::fd::{AsRawFd as _, OwnedFd};
use std::time::{Duration, Instant};

use ringloop::{Backend, BackendKind, Runtime, op, time};
use support::{CHILD_ENV, assert_child_passed, child_output_text, child_role, run_child};

/// Runs the child test `name` with `RINGLOOP_TEST_CHILD=role` and the extra `env`, asserting it
/// passed; returns everything it printed.
fn run_child_role(name: &str, role: &str, env: &[(&str, &str)]) -> String {
    let mut full_env = vec![(CHILD_ENV, role)];
    full_env.extend_from_slice(env);
    let output = run_child(name, &full_env);
    assert_child_passed(name, &output);
    child_output_text(&output)
}

/// Runs the child test `name` in the `env` role with `RINGLOOP_BACKEND=value`, asserting it passed.
fn run_env_child(name: &str, value: &str) {
    run_child_role(name, "env", &[("RINGLOOP_BACKEND", value)]);
}

// ---------------------------------------------------------------------------------------------
// Parents
// ---------------------------------------------------------------------------------------------

/// With `io_uring_setup` denied by seccomp with EPERM, `Backend::Auto` comes up on epoll, runs
/// I/O and reports EPERM as the reason.
#[test]
fn auto_falls_back_to_epoll_when_io_uring_setup_is_eperm() {
    run_child_role("child_auto_under_seccomp", "EPERM", &[]);
}

/// With `io_uring_setup` denied with ENOSYS (a kernel without io_uring), `Backend::Auto` comes up
/// on epoll, runs I/O and reports ENOSYS.
#[test]
fn auto_falls_back_to_epoll_when_io_uring_setup_is_enosys() {
    run_child_role("child_auto_under_seccomp", "ENOSYS", &[]);
}

/// EACCES (e.g. an LSM such as SELinux denying io_uring) is a fallback reason too.
/// (`kernel.io_uring_disabled` denies with EPERM, not EACCES: the errno of the EPERM test above.)
#[test]
fn auto_falls_back_to_epoll_when_io_uring_setup_is_eacces() {
    run_child_role("child_auto_under_seccomp", "EACCES", &[]);
}

/// ENOMEM (memlock or memory limits at ring setup) is a fallback reason too.
#[test]
fn auto_falls_back_to_epoll_when_io_uring_setup_is_enomem() {
    run_child_role("child_auto_under_seccomp", "ENOMEM", &[]);
}

/// An explicit `Backend::IoUring` under a filter returning EPERM makes `build()` return an error
/// naming EPERM; nothing panics.
#[test]
fn explicit_io_uring_is_an_error_when_setup_is_eperm() {
    run_child_role("child_explicit_io_uring_under_seccomp", "EPERM", &[]);
}

/// An explicit `Backend::IoUring` under a filter returning ENOSYS makes `build()` return an
/// error naming ENOSYS; nothing panics.
#[test]
fn explicit_io_uring_is_an_error_when_setup_is_enosys() {
    run_child_role("child_explicit_io_uring_under_seccomp", "ENOSYS", &[]);
}

/// With RLIMIT_MEMLOCK at 8 KiB and CAP_IPC_LOCK dropped, `Backend::Auto` still starts (on
/// whichever backend the kernel allows) and runs I/O.
#[test]
fn auto_starts_and_runs_io_with_tiny_memlock_limit() {
    let printed = run_child_role("child_auto_with_tiny_memlock", "memlock", &[]);
    // Shown with `--nocapture`: which backend a memlock-limited process gets on this kernel.
    println!("{printed}");
}

/// `RINGLOOP_BACKEND=epoll` makes a builder's `Backend::Auto` choose epoll.
#[test]
fn env_epoll_makes_auto_choose_epoll() {
    run_env_child("child_auto_with_env", "epoll");
}

/// `RINGLOOP_BACKEND=io_uring` makes a builder's `Backend::Auto` choose io_uring.
#[test]
fn env_io_uring_makes_auto_choose_io_uring() {
    run_env_child("child_auto_with_env", "io_uring");
}

/// `RINGLOOP_BACKEND=auto` leaves the choice to probing, which picks io_uring where it works.
#[test]
fn env_auto_probes() {
    run_env_child("child_auto_with_env", "auto");
}

/// An explicit builder choice wins over `RINGLOOP_BACKEND`.
#[test]
fn explicit_builder_backend_wins_over_env() {
    run_env_child("child_explicit_backend_with_env", "epoll");
    run_env_child("child_explicit_backend_with_env", "io_uring");
}

/// A bogus `RINGLOOP_BACKEND` value is reported clearly and never panics.
#[test]
fn env_bogus_value_is_reported() {
    run_env_child("child_auto_with_env", "kqueue-please");
}

/// `RINGLOOP_BACKEND=epoll` with io_uring denied still works: the override and the fault agree.
#[test]
fn env_epoll_under_seccomp_runs_on_epoll() {
    run_child_role(
        "child_auto_under_seccomp",
        "EPERM",
        &[("RINGLOOP_BACKEND", "epoll")],
    );
}

// ---------------------------------------------------------------------------------------------
// Children (no-ops unless RINGLOOP_TEST_CHILD is set)
// ---------------------------------------------------------------------------------------------

/// Child: under a seccomp filter failing `io_uring_setup` with the errno named by the role,
/// `Backend::Auto` comes up on epoll, names the errno, and runs real I/O.
#[test]
fn child_auto_under_seccomp() {
    let Some((role, errno)) = seccomp_child() else {
        return;
    };

    let rt = Runtime::builder()
        .backend(Backend::Auto)
        .build()
        .unwrap_or_else(|e| panic!("Auto must fall back to epoll under seccomp({role}): {e}"));
    let report = rt.backend_report();
    println!("backend report under seccomp({role}):\n{report}");

    assert_eq!(report.backend(), BackendKind::Epoll, "{report}");
    if std::env::var("RINGLOOP_BACKEND").as_deref() == Ok("epoll") {
        // Forced to epoll: io_uring was never tried, so no errno need be reported.
        run_real_io(&rt);
        return;
    }
    assert_eq!(report.errno(), Some(errno), "{report}");
    let reason = report
        .fallback_reason()
        .unwrap_or_else(|| panic!("a fallback must give a reason:\n{report}"));
    assert!(
        reason.contains(&role),
        "reason {reason:?} does not name {role}"
    );
    assert!(
        report.to_string().contains(&role),
        "the report's Display does not name {role}:\n{report}"
    );
    run_real_io(&rt);
}

/// Child: under the seccomp filter, an explicit `Backend::IoUring` is an `Err` naming the errno.
#[test]
fn child_explicit_io_uring_under_seccomp() {
    let Some((role, _errno)) = seccomp_child() else {
        return;
    };

    match Runtime::builder().backend(Backend::IoUring).build() {
        Ok(rt) => panic!(
            "io_uring_setup is denied, yet an explicit io_uring runtime was built:\n{}",
            rt.backend_report()
        ),
        Err(err) => {
            println!("explicit io_uring under seccomp({role}): {err}");
            assert!(
                err.to_string().contains(&role),
                "the error does not name {role}: {err}"
            );
        }
    }
}

/// Child: with RLIMIT_MEMLOCK = 8 KiB and no CAP_IPC_LOCK, Auto starts and runs I/O on whichever
/// backend it chose; an explicit io_uring either starts or is an error, never a panic.
#[test]
fn child_auto_with_tiny_memlock() {
    let Some(_role) = child_role() else { return };
    limit_memlock(8 * 1024);

    let explicit = Runtime::builder().backend(Backend::IoUring).build();
    match &explicit {
        Ok(rt) => println!(
            "explicit io_uring with tiny memlock: started\n{}",
            rt.backend_report()
        ),
        Err(err) => println!("explicit io_uring with tiny memlock: {err}"),
    }
    drop(explicit);

    let rt = Runtime::builder()
        .backend(Backend::Auto)
        .build()
        .unwrap_or_else(|e| panic!("Auto must start with a tiny memlock limit: {e}"));
    let report = rt.backend_report();
    println!("Auto with tiny memlock:\n{report}");
    if report.backend() == BackendKind::Epoll {
        assert!(
            report.fallback_reason().is_some(),
            "an Auto runtime on epoll must say why:\n{report}"
        );
    }
    run_real_io(&rt);
}

/// Child: `Backend::Auto` with `RINGLOOP_BACKEND` set picks what the variable says.
#[test]
fn child_auto_with_env() {
    let Some(_role) = child_role() else { return };
    let var = std::env::var("RINGLOOP_BACKEND").expect("the parent sets RINGLOOP_BACKEND");

    let built = Runtime::builder().backend(Backend::Auto).build();
    match var.as_str() {
        "epoll" => {
            let rt = built.expect("RINGLOOP_BACKEND=epoll must build");
            assert_backend_then_run_io(&rt, BackendKind::Epoll, "RINGLOOP_BACKEND=epoll");
        }
        "io_uring" => {
            let rt = built.expect("RINGLOOP_BACKEND=io_uring must build where io_uring works");
            assert_backend_then_run_io(&rt, BackendKind::IoUring, "RINGLOOP_BACKEND=io_uring");
        }
        "auto" => {
            let rt = built.expect("RINGLOOP_BACKEND=auto must build");
            assert_backend_then_run_io(
                &rt,
                BackendKind::IoUring,
                "probing should pick io_uring on this host",
            );
        }
        bogus => bogus_env_outcome(bogus, built),
    }
}

/// Child: an explicit builder backend ignores `RINGLOOP_BACKEND`.
#[test]
fn child_explicit_backend_with_env() {
    let Some(_role) = child_role() else { return };
    let var = std::env::var("RINGLOOP_BACKEND").expect("the parent sets RINGLOOP_BACKEND");
    let (explicit, kind) = match var.as_str() {
        "epoll" => (Backend::IoUring, BackendKind::IoUring),
        _ => (Backend::Epoll, BackendKind::Epoll),
    };
    let rt = Runtime::builder()
        .backend(explicit)
        .build()
        .unwrap_or_else(|e| panic!("explicit {explicit:?} with RINGLOOP_BACKEND={var}: {e}"));
    assert_backend_then_run_io(
        &rt,
        kind,
        "an explicit builder backend wins over the variable",
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// What a bogus `RINGLOOP_BACKEND` must produce: an error naming the variable and the bad value.
fn bogus_env_outcome(bogus: &str, built: std::io::Result<Runtime>) {
    match built {
        Err(err) => {
            println!("RINGLOOP_BACKEND={bogus}: {err}");
            let text = err.to_string();
            assert!(
                text.contains("RINGLOOP_BACKEND") && text.contains(bogus),
                "the error for a bogus RINGLOOP_BACKEND must name the variable and the value: {text}"
            );
        }
        Ok(rt) => {
            // Falling back to probing is acceptable only if the report says the value was ignored.
            let report = rt.backend_report().to_string();
            println!("RINGLOOP_BACKEND={bogus}:\n{report}");
            assert!(
                report.contains(bogus),
                "a bogus RINGLOOP_BACKEND was silently ignored; the report should mention it:\n{report}"
            );
            run_real_io(&rt);
        }
    }
}

/// In a child started for a seccomp role (an errno name): installs the filter failing
/// `io_uring_setup` with that errno and returns the role and the errno. `None`, so the child
/// returns at once, outside a child run or on an architecture the filter does not know.
fn seccomp_child() -> Option<(String, i32)> {
    let role = child_role()?;
    let errno = errno_from_name(&role);
    seccomp::deny_io_uring_setup(errno).then_some((role, errno))
}

/// Prints `rt`'s backend report, asserts it runs on `kind` (`why` says why that backend is
/// expected) and runs real I/O on it.
fn assert_backend_then_run_io(rt: &Runtime, kind: BackendKind, why: &str) {
    println!("{}", rt.backend_report());
    assert_eq!(
        rt.backend_report().backend(),
        kind,
        "{why}:\n{}",
        rt.backend_report()
    );
    run_real_io(rt);
}

fn errno_from_name(name: &str) -> i32 {
    match name {
        "EPERM" => libc::EPERM,
        "ENOSYS" => libc::ENOSYS,
        "EACCES" => libc::EACCES,
        "ENOMEM" => libc::ENOMEM,
        other => panic!("unknown errno name in {CHILD_ENV}: {other}"),
    }
}

/// Real I/O on `rt`: a message through a pipe (write op, read op, close op) and a timer.
fn run_real_io(rt: &Runtime) {
    let (reader, writer) = support::pipe();
    let kind = rt.backend_report().backend();
    rt.block_on(async move {
        // A pipe may take and give the message in pieces: write the rest until all is
        // written, read until EOF.
        let message = b"ringloop fallback works".to_vec();
        let mut sent = 0;
        while sent < message.len() {
            let (written, _) = op::write(writer.as_raw_fd(), message[sent..].to_vec()).await;
            let n = written.expect("write to pipe");
            assert!(
                n > 0,
                "a write of {} bytes wrote none",
                message.len() - sent
            );
            sent += n;
        }
        close(writer).await;

        let mut received = Vec::new();
        loop {
            let (read, buf) = op::read(reader.as_raw_fd(), Vec::with_capacity(64)).await;
            if read.expect("read from pipe") == 0 {
                break;
            }
            received.extend_from_slice(&buf);
        }
        assert_eq!(received, message);
        close(reader).await;

        let start = Instant::now();
        time::sleep(Duration::from_millis(10)).await;
        assert!(start.elapsed() >= Duration::from_millis(10));

        let task = ringloop::spawn(async { 6 * 7 });
        assert_eq!(task.await.expect("task"), 42);
    });
    println!("real I/O ran on {kind}");
}

async fn close(fd: OwnedFd) {
    op::close(fd).await.expect("close");
}

/// Sets RLIMIT_MEMLOCK to `bytes` and drops CAP_IPC_LOCK (which would bypass the limit) from the
/// bounding, effective and permitted sets of this thread, verifying the drop.
fn limit_memlock(bytes: libc::rlim_t) {
    const CAP_IPC_LOCK: u32 = 14;
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }

    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: `limit` is a valid rlimit for setrlimit(2) to read.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) };
    assert_eq!(
        rc,
        0,
        "setrlimit(MEMLOCK): {}",
        std::io::Error::last_os_error()
    );

    // Dropping from the bounding set needs CAP_SETPCAP; as a non-root user the capability is
    // absent anyway, so a failure here is not an error.
    // SAFETY: PR_CAPBSET_DROP takes a capability number and touches no memory of ours.
    let _ = unsafe {
        libc::prctl(
            libc::PR_CAPBSET_DROP,
            CAP_IPC_LOCK as libc::c_ulong,
            0,
            0,
            0,
        )
    };

    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget(2) with a v3 header writes two CapData structs, which `data` provides.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
    let bit = 1u32 << CAP_IPC_LOCK; // capability 14 lives in the first 32-bit word
    data[0].effective &= !bit;
    data[0].permitted &= !bit;
    data[0].inheritable &= !bit;
    // SAFETY: capset(2) with a v3 header reads two CapData structs from `data`.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());

    let status = std::fs::read_to_string("/proc/thread-self/status").expect("thread status");
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).expect("CapEff is hex"))
        .expect("CapEff line");
    assert_eq!(
        cap_eff & u64::from(bit),
        0,
        "CAP_IPC_LOCK is still effective"
    );
    println!("RLIMIT_MEMLOCK={bytes} bytes, CAP_IPC_LOCK dropped (CapEff={cap_eff:x})");
}

/// `io_uring_setup` failing with a chosen errno, through the shared seccomp filter.
mod seccomp {
    use crate::seccomp_support::{When, fail_syscall};

    /// Installs the filter on every thread of this process (TSYNC) and checks that a raw
    /// `io_uring_setup` now fails with `errno`. Returns false (after saying so) on an
    /// architecture the filter does not know.
    pub fn deny_io_uring_setup(errno: i32) -> bool {
        if !fail_syscall(libc::SYS_io_uring_setup, When::Always, errno) {
            return false;
        }
        // Prove the filter bites before testing the runtime against it.
        let mut params = [0u8; 120]; // sizeof(struct io_uring_params)
        // SAFETY: io_uring_setup(2) reads and writes a 120-byte io_uring_params, which `params`
        // provides; if it unexpectedly succeeds the returned fd is closed below.
        let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
        let err = std::io::Error::last_os_error();
        if fd >= 0 {
            // SAFETY: `fd` was just returned by io_uring_setup and is owned by nobody else.
            unsafe { libc::close(fd as libc::c_int) };
            panic!("the seccomp filter did not deny io_uring_setup");
        }
        assert_eq!(err.raw_os_error(), Some(errno), "raw io_uring_setup: {err}");
        println!("seccomp filter installed: io_uring_setup fails with {err}");
        true
    }
}
