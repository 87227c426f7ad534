//! Child process lifecycle: exit statuses (codes and signals), wait/try_wait, signals sent
//! through the pidfd, and writing to a child that has gone.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use ringloop::process::{Command, Stdio};
use support::{CHILD_ENV, assert_child_passed, child_role, run_child, watchdog};

both_backends! {
    /// `wait()` returns the child's exit code, and a second `wait()` returns it again.
    fn wait_reports_exit_code(rt) {
        let _wd = watchdog(Duration::from_secs(30), "wait_reports_exit_code");
        rt.block_on(async {
            let mut child = Command::new("sh").args(["-c", "exit 42"]).spawn().unwrap();
            let status = child.wait().await.unwrap();
            assert_eq!(status.code(), Some(42));
            assert_eq!(child.wait().await.unwrap().code(), Some(42));
            assert_eq!(child.try_wait().unwrap().map(|s| s.code()), Some(Some(42)));
        });
    }

    /// A child killed by a signal reports it in its exit status (no code, the signal number).
    fn killed_child_reports_signal(rt) {
        let _wd = watchdog(Duration::from_secs(30), "killed_child_reports_signal");
        rt.block_on(async {
            let mut child = Command::new("sleep").arg("60").spawn().unwrap();
            assert!(child.try_wait().unwrap().is_none(), "sleep 60 has not exited yet");
            child.kill().unwrap();
            let status = child.wait().await.unwrap();
            assert_eq!(status.code(), None);
            assert_eq!(status.signal(), Some(libc::SIGKILL));
            // Signals after the reap are a no-op, not an error about a recycled pid.
            child.kill().unwrap();
        });
    }

    /// `terminate()` sends SIGTERM, and a signal the child kills itself with is reported too.
    fn terminate_and_self_signal_are_reported(rt) {
        let _wd = watchdog(Duration::from_secs(30), "terminate_and_self_signal_are_reported");
        rt.block_on(async {
            let mut child = Command::new("sleep").arg("60").spawn().unwrap();
            child.terminate().unwrap();
            assert_eq!(child.wait().await.unwrap().signal(), Some(libc::SIGTERM));

            let mut child = Command::new("sh").args(["-c", "kill -USR1 $$"]).spawn().unwrap();
            assert_eq!(child.wait().await.unwrap().signal(), Some(libc::SIGUSR1));
        });
    }

    /// Waiting does not block the loop: a timer and another task run while a child sleeps,
    /// and a wait dropped by a timeout can be started again.
    fn wait_is_asynchronous_and_cancel_safe(rt) {
        let _wd = watchdog(Duration::from_secs(30), "wait_is_asynchronous_and_cancel_safe");
        rt.block_on(async {
            let mut child = Command::new("sleep").arg("0.3").spawn().unwrap();
            let timed_out = ringloop::time::timeout(Duration::from_millis(20), child.wait()).await;
            assert!(timed_out.is_err(), "sleep 0.3 cannot have exited within 20 ms");
            let ticker = ringloop::spawn(async {
                ringloop::time::sleep(Duration::from_millis(10)).await;
                "ticked"
            });
            assert_eq!(ticker.await.unwrap(), "ticked");
            assert!(child.wait().await.unwrap().success());
        });
    }

    /// A wait dropped after the kernel saw the exit (its completion possibly already
    /// posted) loses nothing: the next wait still gets the status.
    fn dropped_wait_after_exit_loses_no_status(rt) {
        let _wd = watchdog(Duration::from_secs(30), "dropped_wait_after_exit_loses_no_status");
        rt.block_on(async {
            let mut child = Command::new("sh").args(["-c", "exit 9"]).spawn().unwrap();
            let pid = child.id();
            {
                let mut wait = std::pin::pin!(child.wait());
                // Submits the wait (on epoll a fast child may be reaped right here: fine).
                let _ = futures_lite::future::poll_once(&mut wait).await;
                // A round trip through the backend: the wait has been handed to the kernel.
                ringloop::op::nop().await.unwrap();
                // Block until the child has exited, without reaping it.
                // SAFETY: siginfo_t is plain data that waitid fills in.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                // SAFETY: `info` is a valid siginfo_t; WNOWAIT leaves the child waitable.
                let r = unsafe {
                    libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT)
                };
                // ECHILD: the first poll already reaped the child (it exited that fast); the
                // status must still reach the next wait.
                let err = std::io::Error::last_os_error();
                assert!(
                    r == 0 || err.raw_os_error() == Some(libc::ECHILD),
                    "waitid: {err}"
                );
                // Let the loop see the wait's completion (if it came) before the drop.
                ringloop::op::nop().await.unwrap();
            }
            assert_eq!(child.wait().await.unwrap().code(), Some(9));
        });
    }

    /// Dropping the runtime while a task still holds an unwaited child (its drop then runs
    /// during shutdown) does not panic.
    fn runtime_drop_with_live_child_is_clean(backend: Backend) {
        let _wd = watchdog(Duration::from_secs(30), "runtime_drop_with_live_child_is_clean");
        let rt = support::runtime(backend);
        let pid = rt.block_on(async {
            let child = Command::new("sleep").arg("60").stdin(Stdio::piped()).spawn().unwrap();
            let pid = child.id();
            ringloop::spawn(async move {
                let _child = child;
                std::future::pending::<()>().await;
            });
            ringloop::yield_now().await;
            pid
        });
        drop(rt);
        // SAFETY: signalling our own child by pid; it has not been reaped (it is running).
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        // Reap it here, so no zombie outlives the test.
        // SAFETY: a null status pointer is allowed.
        unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), 0) };
    }

    /// Spawning a missing program fails with NotFound naming it.
    fn missing_program_is_not_found(rt) {
        rt.block_on(async {
            let err = Command::new("/nonexistent/ringloop-test").spawn().unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
            assert!(err.to_string().contains("ringloop-test"), "{err}");
        });
    }

    /// Writing to a child that has exited gives BrokenPipe, and this process survives even
    /// with SIGPIPE at its default disposition (checked in a fresh process that restores it).
    fn writing_to_exited_child_is_broken_pipe(backend: Backend) {
        let role = format!("{backend:?}");
        let output = run_child("child_writes_to_exited_child", &[(CHILD_ENV, &role)]);
        assert_child_passed("child_writes_to_exited_child", &output);
    }
}

/// Child role for `writing_to_exited_child_is_broken_pipe`: SIGPIPE back to SIG_DFL (as a C
/// host or a program that restored it would have), then write to a child that exited.
#[test]
fn child_writes_to_exited_child() {
    let Some(role) = child_role() else { return };
    let backend = match role.as_str() {
        "IoUring" => ringloop::Backend::IoUring,
        _ => ringloop::Backend::Epoll,
    };
    // SAFETY: resetting a signal's disposition; this process runs only this test.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let _wd = watchdog(Duration::from_secs(30), "child_writes_to_exited_child");
    support::runtime(backend).block_on(async {
        let mut child = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        assert!(child.wait().await.unwrap().success());
        for _ in 0..3 {
            let (res, _) = stdin.write_all(b"anyone there?".to_vec()).await;
            assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
            let (res, _) = stdin.write(vec![1; 1 << 20]).await;
            assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
        }
    });
    // Still alive, and no SIGPIPE left pending on this thread either.
    // SAFETY: sigset_t is plain data; sigpending overwrites it.
    let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `pending` is a valid sigset_t.
    unsafe { libc::sigpending(&mut pending) };
    // SAFETY: `pending` is a sigset_t that sigpending filled; sigismember only reads it.
    assert_eq!(unsafe { libc::sigismember(&pending, libc::SIGPIPE) }, 0);
}
