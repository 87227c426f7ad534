//! Owned-buffer ops and their cancellation: dropped ops drain from the op table and free their
//! buffers exactly once, `cancel().await` returns the op's real outcome, `timeout` is a kernel
//! deadline, an op never polled is never submitted; and the basic ops (nop, read/write at an
//! offset, vectored I/O, poll_add, close) work on both backends.

mod support;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_lite::future::poll_once;
use ringloop::op::{self, Interest};
use ringloop::{Handle, yield_now};

/// A regular file in the temp dir with a unique name, removed on drop.
struct TempFile {
    path: PathBuf,
    file: std::fs::File,
}

impl TempFile {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "ringloop-ops-cancel-{}-{tag}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempFile { path, file }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

both_backends! {
    /// A read dropped right after its first poll, with data already waiting, consumes nothing
    /// unless it returned the data: on io_uring the SQE never leaves the loop's queue (it is
    /// removed, not cancelled after the fact), on epoll the data came back in that poll.
    fn read_dropped_in_its_first_tick_consumes_nothing(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "read dropped in first tick");
        rt.block_on(async {
            let (r, w) = support::pipe();
            let mut delivered = Vec::new();
            for round in 0..200u32 {
                let msg = round.to_le_bytes();
                support::write_all(&w, &msg);
                let mut read = op::read(r.as_raw_fd(), Vec::with_capacity(4));
                match poll_once(&mut read).await {
                    Some((res, buf)) => {
                        assert_eq!(res.expect("read"), 4);
                        delivered.extend_from_slice(&buf);
                    }
                    None => {
                        drop(read);
                        support::settle_inflight(0).await;
                        let (res, buf) = op::read(r.as_raw_fd(), Vec::with_capacity(4)).await;
                        assert_eq!(res.expect("read after drop"), 4, "round {round}: bytes lost");
                        delivered.extend_from_slice(&buf);
                    }
                }
            }
            let expected: Vec<u8> = (0..200u32).flat_map(|i| i.to_le_bytes()).collect();
            assert_eq!(delivered, expected);
        });
    }

    /// 10 000 reads in flight on empty pipes (100 pipes × 100 reads), then dropped: the op table
    /// drains to zero once the cancels complete, no buffer is freed while its read is in flight,
    /// and every buffer is dropped exactly once. The pipes' data is untouched afterwards.
    fn dropped_reads_drain_and_free_buffers(rt) {
        let _wd = support::watchdog(
            Duration::from_secs(30),
            "dropped_reads_drain_and_free_buffers",
        );
        rt.block_on(async {
            const PIPES: usize = 100;
            const READS_PER_PIPE: usize = 100;
            const TOTAL: usize = PIPES * READS_PER_PIPE;
            let drops = Arc::new(AtomicUsize::new(0));
            let pipes: Vec<(OwnedFd, OwnedFd)> = (0..PIPES).map(|_| support::pipe()).collect();
            let mut reads = Vec::with_capacity(TOTAL);
            for (r, _) in &pipes {
                for _ in 0..READS_PER_PIPE {
                    let mut read = op::read(r.as_raw_fd(), support::CountedBuf::new(32, &drops));
                    assert!(poll_once(&mut read).await.is_none(), "empty pipe: read must pend");
                    reads.push(read);
                }
            }
            support::settle_inflight(TOTAL).await;
            assert_eq!(drops.load(Ordering::SeqCst), 0, "a buffer was freed while in flight");

            drop(reads);
            support::settle_inflight(0).await;
            assert_eq!(drops.load(Ordering::SeqCst), TOTAL, "every buffer dropped once");
            support::yield_turns(10).await;
            assert_eq!(drops.load(Ordering::SeqCst), TOTAL, "no buffer dropped twice");

            let (r, w) = &pipes[PIPES / 2];
            support::write_all(w, b"still intact");
            let (res, buf) = op::read(r.as_raw_fd(), Vec::with_capacity(32)).await;
            assert_eq!(res.expect("read"), 12);
            assert_eq!(buf, b"still intact");
        });
    }

    /// `cancel().await` racing a completion returns the op's real outcome: either `Ok(n)` with
    /// exactly the bytes written, or `ECANCELED` with the bytes still in the pipe. Over many
    /// rounds no byte is lost or duplicated.
    fn explicit_cancel_racing_completion_loses_nothing(rt) {
        let _wd = support::watchdog(
            Duration::from_secs(30),
            "explicit_cancel_racing_completion_loses_nothing",
        );
        rt.block_on(async {
            const ROUNDS: usize = 300;
            let (r, w) = support::pipe();
            let fd = r.as_raw_fd();
            let mut sent = Vec::new();
            let mut received = Vec::new();
            let (mut completed, mut cancelled) = (0, 0);
            for round in 0..ROUNDS {
                let message = format!("round-{round:05};");
                let mut read = op::read(fd, Vec::with_capacity(64));
                assert!(poll_once(&mut read).await.is_none(), "empty pipe: read must pend");
                // Vary where the write lands: before submission, after it, or after a loop tick
                // that may already have completed the read.
                if round % 3 == 1 {
                    yield_now().await;
                }
                support::write_all(&w, message.as_bytes());
                sent.extend_from_slice(message.as_bytes());
                if round % 3 == 2 {
                    yield_now().await;
                }
                let (res, buf) = read.cancel().await;
                match res {
                    Ok(n) => {
                        assert_eq!(n, message.len(), "round {round}");
                        assert_eq!(buf, message.as_bytes(), "round {round}");
                        received.extend_from_slice(&buf);
                        completed += 1;
                    }
                    Err(err) => {
                        assert_eq!(
                            err.raw_os_error(),
                            Some(libc::ECANCELED),
                            "round {round}: {err}"
                        );
                        assert!(buf.is_empty(), "a cancelled read returned data");
                        cancelled += 1;
                        let (res, buf) = op::read(fd, Vec::with_capacity(64)).await;
                        assert_eq!(res.expect("read after cancel"), message.len(), "round {round}");
                        received.extend_from_slice(&buf);
                    }
                }
            }
            assert_eq!(
                String::from_utf8_lossy(&received),
                String::from_utf8_lossy(&sent),
                "completed {completed}, cancelled {cancelled}"
            );
            support::settle_inflight(0).await;
        });
    }

    /// `Op::timeout` on a read that never completes fails it with `ErrorKind::TimedOut`, no
    /// earlier than the timeout, and the read consumed nothing; a read that completes first is
    /// unaffected.
    fn op_timeout_gives_timed_out(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "op_timeout_gives_timed_out");
        rt.block_on(async {
            let (r, w) = support::pipe();
            let fd = r.as_raw_fd();
            let start = Instant::now();
            let (res, buf) = op::read(fd, Vec::with_capacity(64))
                .timeout(Duration::from_millis(50))
                .await;
            let err = res.expect_err("nothing was written");
            assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
            assert!(buf.is_empty());
            assert!(start.elapsed() >= Duration::from_millis(50), "{:?}", start.elapsed());
            support::settle_inflight(0).await;

            support::write_all(&w, b"on time");
            let (res, buf) = op::read(fd, Vec::with_capacity(64))
                .timeout(Duration::from_secs(5))
                .await;
            assert_eq!(res.expect("data was ready"), 7);
            assert_eq!(buf, b"on time");
            support::settle_inflight(0).await;
        });
    }

    /// Cancelling an op that was never polled resolves with `ECANCELED` without submitting it:
    /// nothing is submitted, nothing enters the op table, and the data it would have read is
    /// still in the pipe.
    fn cancel_of_unpolled_op_never_submits(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "cancel_of_unpolled_op_never_submits");
        rt.block_on(async {
            let (r, w) = support::pipe();
            let fd = r.as_raw_fd();
            support::write_all(&w, b"x");
            let submitted_before = rt.stats().ops_submitted;
            let read = op::read(fd, Vec::with_capacity(8));
            let (res, buf) = read.cancel().await;
            let err = res.expect_err("never polled: cancelled");
            assert_eq!(err.raw_os_error(), Some(libc::ECANCELED), "{err}");
            assert!(buf.is_empty());
            assert_eq!(rt.stats().ops_submitted, submitted_before, "the op was submitted");
            assert_eq!(Handle::current().inflight_ops(), 0);

            let (res, buf) = op::read(fd, Vec::with_capacity(8)).await;
            assert_eq!(res.expect("read"), 1);
            assert_eq!(buf, b"x");
        });
    }

    /// `nop` completes with `Ok(())`, one at a time and 1 000 in flight together.
    fn nop_completes(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "nop_completes");
        rt.block_on(async {
            for _ in 0..100 {
                op::nop().await.expect("nop");
            }
            let mut pending = Vec::new();
            for mut nop in (0..1000).map(|_| op::nop()) {
                match poll_once(&mut nop).await {
                    Some(res) => res.expect("nop"),
                    None => pending.push(nop),
                }
            }
            for nop in pending {
                nop.await.expect("nop");
            }
            support::settle_inflight(0).await;
        });
    }

    /// read/write at the file position and read_at/write_at/readv_at/writev_at at an offset
    /// work on a regular file, and the file holds exactly what was written.
    fn file_read_write_at_offsets(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "file_read_write_at_offsets");
        rt.block_on(async {
            let tmp = TempFile::new("rw");
            let fd = tmp.file.as_raw_fd();

            let (res, _) = op::write_at(fd, b"hello world".to_vec(), 0).await;
            assert_eq!(res.expect("write_at"), 11);
            let (res, buf) = op::read_at(fd, Vec::with_capacity(5), 6).await;
            assert_eq!(res.expect("read_at"), 5);
            assert_eq!(buf, b"world");

            // The file position is still 0: write_at/read_at do not move it.
            let (res, _) = op::write(fd, b"HEL".to_vec()).await;
            assert_eq!(res.expect("write"), 3);
            let (res, buf) = op::read(fd, Vec::with_capacity(4)).await;
            assert_eq!(res.expect("read"), 4);
            assert_eq!(buf, b"lo w");

            let (res, _) = op::writev_at(fd, vec![b"ab".to_vec(), b"cd".to_vec()], 11).await;
            assert_eq!(res.expect("writev_at"), 4);
            let (res, bufs) =
                op::readv_at(fd, vec![Vec::with_capacity(3), Vec::with_capacity(16)], 8).await;
            assert_eq!(res.expect("readv_at"), 7);
            assert_eq!(bufs[0], b"rld");
            assert_eq!(bufs[1], b"abcd");

            let (res, buf) = op::read_at(fd, Vec::with_capacity(8), 15).await;
            assert_eq!(res.expect("read_at at EOF"), 0);
            assert!(buf.is_empty());

            assert_eq!(std::fs::read(&tmp.path).expect("read back"), b"HELlo worldabcd");
            support::settle_inflight(0).await;
        });
    }

    /// writev gathers several buffers into a pipe in order; readv scatters the bytes across its
    /// buffers, filling each to capacity before the next.
    fn readv_writev_on_pipes(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "readv_writev_on_pipes");
        rt.block_on(async {
            let (r, w) = support::pipe();
            let (res, bufs) =
                op::writev(w.as_raw_fd(), vec![b"scatter ".to_vec(), b"gather".to_vec()]).await;
            assert_eq!(res.expect("writev"), 14);
            assert_eq!(bufs.len(), 2, "the buffers come back");
            let (res, bufs) =
                op::readv(r.as_raw_fd(), vec![Vec::with_capacity(4), Vec::with_capacity(32)])
                    .await;
            assert_eq!(res.expect("readv"), 14);
            assert_eq!(bufs[0], b"scat");
            assert_eq!(bufs[1], b"ter gather");
        });
    }

    /// poll_add on an empty pipe stays pending until a write, then reports readable without
    /// consuming the data; a pipe's write end is reported writable.
    fn poll_add_reports_readiness(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "poll_add_reports_readiness");
        rt.block_on(async {
            let (r, w) = support::pipe();
            let mut poll = op::poll_add(r.as_raw_fd(), Interest::READABLE);
            assert!(poll_once(&mut poll).await.is_none(), "empty pipe is not readable");
            support::yield_turns(5).await;
            assert!(poll_once(&mut poll).await.is_none(), "still nothing written");
            support::write_all(&w, b"!");
            let seen = poll.await.expect("poll_add");
            assert!(seen.is_readable(), "{seen:?}");
            let (res, buf) = op::read(r.as_raw_fd(), Vec::with_capacity(8)).await;
            assert_eq!(res.expect("read"), 1);
            assert_eq!(buf, b"!");

            let seen = op::poll_add(w.as_raw_fd(), Interest::WRITABLE).await.expect("poll_add");
            assert!(seen.is_writable(), "{seen:?}");
            support::settle_inflight(0).await;
        });
    }

    /// `op::close` closes the fd it is given: closing a pipe's only write end makes a read on
    /// the read end return end-of-file.
    fn close_op_closes_the_fd(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "close_op_closes_the_fd");
        rt.block_on(async {
            let (r, w) = support::pipe();
            op::close(w).await.expect("close");
            let (res, buf) = op::read(r.as_raw_fd(), Vec::with_capacity(8)).await;
            assert_eq!(res.expect("read"), 0, "EOF once the write end is closed");
            assert!(buf.is_empty());
        });
    }
}
