//! Reads and writes on pollable fds whose kernel refuses `RWF_NOWAIT` (`EOPNOTSUPP`: pipes,
//! Unix and TCP sockets on Linux 6.1) stay cancellable: timeouts fire, cancels complete, later
//! data still arrives, and a runtime with many such reads pending drops promptly.
//!
//! The old kernel is played on a new one by a seccomp filter (in a re-executed child process)
//! that fails `preadv2`/`pwritev2` with `RWF_NOWAIT` with `EOPNOTSUPP`. The epoll backend used
//! to send such reads to its blocking pool, where a read nobody writes blocks a pool thread
//! forever: none of these tests finished before their watchdog.

mod seccomp_support;
mod support;

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use futures_lite::future::poll_once;
use ringloop::op;
use seccomp_support::{When, deny_nowait_reads, fail_syscall};
use support::{pipe, runtime, watchdog, write_all};

/// How long a 100 ms timeout may take to fire on a busy machine before the test calls it late.
const LATE: Duration = Duration::from_secs(5);

/// Runs `body` in a child process (the seccomp filter cannot be undone) on `backend`; the
/// parent checks that the child passed.
fn in_child(name: &str, backend: ringloop::Backend, body: impl FnOnce(ringloop::Backend)) {
    if let Some(backend) = support::child_backend() {
        return body(backend);
    }
    let role = support::backend_role(backend);
    let test = format!("{name}::{role}");
    let output = support::run_child(&test, &[(support::CHILD_ENV, role)]);
    support::assert_child_passed(&test, &output);
}

/// Makes `preadv2` and `pwritev2` with `RWF_NOWAIT` fail with `EOPNOTSUPP` in this process, as
/// on Linux 6.1 for pipes and sockets. False (after saying so) where the filter cannot be set.
fn deny_nowait() -> bool {
    deny_nowait_reads()
        && fail_syscall(
            libc::SYS_pwritev2,
            When::ArgHasBits(5, libc::RWF_NOWAIT as u32),
            libc::EOPNOTSUPP,
        )
}

/// A read on `fd` that nobody feeds: pending, then cancelled with `ECANCELED`, consuming
/// nothing; then bytes `peer` writes afterwards reach a later read.
async fn cancel_then_read(fd: i32, mut peer: impl std::io::Write, what: &str) {
    let mut read = op::read(fd, Vec::with_capacity(64));
    assert!(
        poll_once(&mut read).await.is_none(),
        "{what}: nothing was written"
    );
    ringloop::yield_now().await;
    let (res, buf) = read.cancel().await;
    let err = res.expect_err("nothing was written");
    assert_eq!(err.raw_os_error(), Some(libc::ECANCELED), "{what}: {err}");
    assert!(buf.is_empty(), "{what}: a cancelled read returned data");
    support::settle_inflight(0).await;

    let mut read = op::read(fd, Vec::with_capacity(64));
    assert!(
        poll_once(&mut read).await.is_none(),
        "{what}: nothing was written yet"
    );
    peer.write_all(b"later").expect("write to the peer");
    let (res, buf) = read.timeout(LATE).await;
    // The bytes, or their first few when the read is short; the rest follow.
    let n = res.unwrap_or_else(|e| panic!("{what}: read: {e}"));
    assert!((1..=5).contains(&n), "{what}: read {n} bytes");
    assert_eq!(buf, &b"later"[..n], "{what}");
    assert_eq!(
        support::read_fd_exact(fd, 5 - n, what).await,
        &b"later"[n..]
    );
}

both_backends! {
    /// A read with a 100 ms timeout on a blocking pipe nobody writes fails with `TimedOut` in
    /// time; data written later reaches a later read; and the epoll backend reports that this
    /// kernel has no `RWF_NOWAIT`.
    fn pipe_read_times_out_without_rwf_nowait(backend: Backend) {
        in_child("pipe_read_times_out_without_rwf_nowait", backend, |backend| {
            if !deny_nowait() {
                return;
            }
            let dog = watchdog(Duration::from_secs(20), "pipe read timeout without RWF_NOWAIT");
            let rt = runtime(backend);
            rt.block_on(async {
                let (r, w) = pipe();
                let fd = r.as_raw_fd();
                let start = Instant::now();
                let (res, buf) = op::read(fd, Vec::with_capacity(64))
                    .timeout(Duration::from_millis(100))
                    .await;
                let err = res.expect_err("nothing was written");
                assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
                assert!(buf.is_empty());
                let took = start.elapsed();
                assert!(took >= Duration::from_millis(100) && took < LATE, "{took:?}");
                support::settle_inflight(0).await;

                let mut read = op::read(fd, Vec::with_capacity(64));
                assert!(poll_once(&mut read).await.is_none(), "nothing was written yet");
                write_all(&w, b"later");
                let (res, buf) = read.timeout(LATE).await;
                // The bytes, or their first few when the read is short; the rest follow.
                let n = res.expect("read after the write");
                assert!((1..=5).contains(&n), "read {n} bytes");
                assert_eq!(buf, &b"later"[..n]);
                let rest = support::read_fd_exact(fd, 5 - n, "the rest").await;
                assert_eq!(rest, &b"later"[n..]);
                support::settle_inflight(0).await;
            });
            if backend == ringloop::Backend::Epoll {
                let features = rt.backend_report().features();
                assert!(features.contains(&("rwf_nowait", false)), "{features:?}");
            }
            dog.disarm();
        });
    }

    /// A pipe end written without `RWF_NOWAIT` (its write completes at once, through the
    /// fallback) and then closed by its owner frees its number; a socket ringloop makes next
    /// reuses it, and a read on that socket that has to wait still gets the bytes written
    /// after it. The epoll backend used to keep the pipe's queue marked registered after the
    /// write, so the socket was never registered and the read waited forever (the
    /// `subprocess_pipe` example hung so on Linux 6.1: its output pipe's number went to the
    /// next child's stdout).
    fn a_socket_reusing_a_closed_pipes_number_gets_its_events(backend: Backend) {
        in_child("a_socket_reusing_a_closed_pipes_number_gets_its_events", backend, |backend| {
            if !deny_nowait() {
                return;
            }
            let dog = watchdog(Duration::from_secs(20), "a reused fd number");
            let rt = runtime(backend);
            rt.block_on(async {
                let (r, w) = pipe();
                let number = w.as_raw_fd();
                let (res, _) = op::write(number, b"x".as_slice()).await;
                assert_eq!(res.expect("write to an empty pipe"), 1);
                drop(w);
                drop(r);
                let (a, b) = ringloop::net::UnixStream::pair().expect("socket pair");
                let (reader, writer) = if a.as_raw_fd() == number { (a, b) } else { (b, a) };
                assert_eq!(reader.as_raw_fd(), number, "the pair did not reuse the pipe's number");
                let mut read = std::pin::pin!(reader.read(Vec::with_capacity(64)));
                assert!(poll_once(&mut read).await.is_none(), "nothing was written yet");
                let (res, _) = writer.write_all(b"later".to_vec()).await;
                res.expect("write to the pair");
                let (res, buf) = ringloop::time::timeout(LATE, read)
                    .await
                    .expect("the read on the reused number never completed");
                let n = res.expect("read after the write");
                assert!((1..=5).contains(&n), "read {n} bytes");
                assert_eq!(buf, &b"later"[..n]);
            });
            dog.disarm();
        });
    }

    /// Writes into a blocking pipe nobody reads fill it, then one times out; everything the
    /// writes reported written is in the pipe, nothing more.
    fn pipe_write_times_out_when_full_without_rwf_nowait(backend: Backend) {
        in_child("pipe_write_times_out_when_full_without_rwf_nowait", backend, |backend| {
            if !deny_nowait() {
                return;
            }
            let dog = watchdog(Duration::from_secs(20), "pipe write into a full pipe");
            let (r, w) = pipe();
            let written = runtime(backend).block_on(async {
                let chunk = vec![7u8; 64 * 1024];
                let mut written = 0;
                loop {
                    let (res, _) = op::write(w.as_raw_fd(), chunk.clone())
                        .timeout(Duration::from_millis(100))
                        .await;
                    match res {
                        Ok(n) => written += n,
                        Err(err) => {
                            assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
                            break;
                        }
                    }
                }
                support::settle_inflight(0).await;
                written
            });
            drop(w);
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut all).expect("drain");
            assert_eq!(all.len(), written, "bytes in the pipe vs bytes reported written");
            assert!(written > 0, "not even an empty pipe took a write");
            dog.disarm();
        });
    }

    /// A cancelled read on a blocking Unix socket and on a blocking TCP socket completes with
    /// `ECANCELED`; data sent afterwards reaches a later read.
    fn cancelled_socket_reads_complete_without_rwf_nowait(backend: Backend) {
        in_child("cancelled_socket_reads_complete_without_rwf_nowait", backend, |backend| {
            if !deny_nowait() {
                return;
            }
            let dog = watchdog(Duration::from_secs(20), "cancel socket reads without RWF_NOWAIT");
            let (unix, unix_peer) = std::os::unix::net::UnixStream::pair().expect("socketpair");
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let tcp = std::net::TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
            let (tcp_peer, _) = listener.accept().expect("accept");
            runtime(backend).block_on(async {
                cancel_then_read(unix.as_raw_fd(), &unix_peer, "unix socket").await;
                cancel_then_read(tcp.as_raw_fd(), &tcp_peer, "tcp socket").await;
                support::settle_inflight(0).await;
            });
            dog.disarm();
        });
    }

    /// Dropping a runtime with 500 reads pending on blocking pipes nobody writes returns.
    fn drop_with_pending_pipe_reads_returns_without_rwf_nowait(backend: Backend) {
        in_child("drop_with_pending_pipe_reads_returns_without_rwf_nowait", backend, |backend| {
            if !deny_nowait() {
                return;
            }
            const READS: usize = 500;
            let pipes: Vec<_> = (0..25).map(|_| pipe()).collect();
            let rt = runtime(backend);
            rt.block_on(async {
                for i in 0..READS {
                    let fd = pipes[i % pipes.len()].0.as_raw_fd();
                    drop(ringloop::spawn(async move {
                        let (res, _) = op::read(fd, Vec::with_capacity(16)).await;
                        assert!(res.is_err(), "a read on a silent pipe returned data");
                    }));
                }
                let h = ringloop::Handle::current();
                support::yield_until("every read is in flight", || h.inflight_ops() >= READS)
                    .await;
            });
            let dog = watchdog(Duration::from_secs(10), "dropping a runtime with pending reads");
            drop(rt);
            dog.disarm();
            drop(pipes);
        });
    }
}
