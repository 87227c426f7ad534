//! Child processes leak no file descriptors: pipes and pidfds are closed whether the child
//! is waited for, communicated with, or dropped unwaited (and then reaped in the background).

mod support;

use std::time::Duration;

use ringloop::process::{Command, Stdio};
use support::{describe_open_fds, open_fds, serial, watchdog};

both_backends! {
    /// 50 children with all three pipes, half communicated with and half dropped running,
    /// leave the fd count where it was once the runtime is gone, and no zombie behind.
    fn children_leak_no_fds(backend: Backend) {
        let _guard = serial();
        let _wd = watchdog(Duration::from_secs(60), "children_leak_no_fds");
        let before = open_fds();
        let rt = support::runtime(backend);
        let before_rt = open_fds();
        let mut pids = Vec::new();
        rt.block_on(async {
            for i in 0..50 {
                let mut child = Command::new("cat")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                pids.push(child.id());
                if i % 2 == 0 {
                    let out = child.communicate(Some(b"x".to_vec())).await.unwrap();
                    assert_eq!(out.stdout, b"x");
                } else {
                    // Closing its pipes ends cat; the dropped Child is reaped in the background.
                    let _ = child.stdin.take();
                    drop(child);
                }
            }
            // Let the background reapers finish (reaped, and their pidfds closed).
            support::yield_until_deadline("background reapers", || {
                pids.iter().all(|&pid| !is_zombie_or_alive(pid)) && open_fds() == before_rt
            })
            .await;
        });
        assert_eq!(open_fds(), before_rt, "fds leaked: {:?}", describe_open_fds());
        drop(rt);
        assert_eq!(open_fds(), before, "fds leaked: {:?}", describe_open_fds());
    }
}

both_backends! {
    /// Subprocess transports, run to `connection_lost` (one of them killed early), leave no
    /// fd behind: pipes, pidfds and the transport's signalling pidfd are all closed.
    fn subprocess_transports_leak_no_fds(backend: Backend) {
        let _guard = serial();
        let _wd = watchdog(Duration::from_secs(60), "subprocess_transports_leak_no_fds");
        let rt = support::runtime(backend);
        let before = open_fds();
        rt.block_on(async {
            struct Quiet;
            impl ringloop::transport::SubprocessProtocol for Quiet {}
            for i in 0..20 {
                let (t, _) = ringloop::transport::subprocess_shell(|| Quiet, "cat; echo done")
                    .await
                    .unwrap();
                let stdin = t.get_pipe_transport(0).unwrap();
                stdin.write(b"some input").unwrap();
                if i % 4 == 0 {
                    t.kill().unwrap();
                } else {
                    stdin.close();
                }
                t.wait_closed().await;
            }
            support::yield_until_deadline("transport tasks gone", || open_fds() == before).await;
        });
        assert_eq!(open_fds(), before, "fds leaked: {:?}", describe_open_fds());
    }
}

/// Whether `pid` still exists as our child (running or a zombie waiting to be reaped).
fn is_zombie_or_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
