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

/// Writes all of `data` to file `fd` at `offset`, in as many `write_at`s as the file takes.
async fn write_all_at(fd: std::os::fd::RawFd, data: &[u8], offset: u64) {
    let mut done = 0;
    while done < data.len() {
        let (res, _) = op::write_at(fd, data[done..].to_vec(), offset + done as u64).await;
        let n = res.expect("write_at");
        assert!(
            n > 0,
            "a write_at of {} bytes wrote none",
            data.len() - done
        );
        done += n;
    }
}

/// Writes all of `data` to `fd` at its position, in as many `write`s as it takes.
async fn write_all(fd: std::os::fd::RawFd, data: &[u8]) {
    let mut done = 0;
    while done < data.len() {
        let (res, _) = op::write(fd, data[done..].to_vec()).await;
        let n = res.expect("write");
        assert!(n > 0, "a write of {} bytes wrote none", data.len() - done);
        done += n;
    }
}

/// Reads `len` bytes of file `fd` at `offset` (fewer only at end-of-file), in as many
/// `read_at`s as the file gives them in.
async fn read_at_most(fd: std::os::fd::RawFd, len: usize, offset: u64) -> Vec<u8> {
    let mut got = Vec::with_capacity(len);
    while got.len() < len {
        let at = offset + got.len() as u64;
        let (res, buf) = op::read_at(fd, Vec::with_capacity(len - got.len()), at).await;
        if res.expect("read_at") == 0 {
            break;
        }
        got.extend_from_slice(&buf);
    }
    got
}

both_backends! {
    /// A read dropped right after its first poll, with data already waiting, consumes nothing
    /// unless it returned the data: on io_uring the SQE never leaves the loop's queue (it is
    /// removed, not cancelled after the fact), on epoll the data came back in that poll. (A
    /// read that returned data may have returned fewer bytes than waited: the next reads get
    /// the rest.)
    fn read_dropped_in_its_first_tick_consumes_nothing(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "read dropped in first tick");
        rt.block_on(async {
            let (r, w) = support::pipe();
            let mut delivered = Vec::new();
            for round in 0..200u32 {
                let msg = round.to_le_bytes();
                support::write_all(&w, &msg);
                let mut read = op::read(r.as_raw_fd(), Vec::with_capacity(4));
                let returned = match poll_once(&mut read).await {
                    Some((res, buf)) => {
                        let n = res.expect("read");
                        assert!(n > 0, "round {round}: a read of a non-empty pipe gave EOF");
                        delivered.extend_from_slice(&buf);
                        n
                    }
                    None => {
                        drop(read);
                        support::settle_inflight(0).await;
                        0
                    }
                };
                // All of the round's bytes after a drop, the rest after a short read.
                let what = format!("round {round}, after a read that returned {returned} bytes");
                let rest = msg.len() - returned;
                let rest = support::read_fd_exact(r.as_raw_fd(), rest, &what).await;
                delivered.extend_from_slice(&rest);
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
            let what = "the pipe after the drops";
            let got = support::read_fd_exact(r.as_raw_fd(), 12, what).await;
            assert_eq!(got, b"still intact");
        });
    }

    /// `cancel().await` racing a completion returns the op's real outcome: either `Ok(n)` with
    /// the first `n` bytes written (all of them unless the read was short) and the rest still
    /// in the pipe, or `ECANCELED` with all the bytes still in the pipe. Over many rounds no
    /// byte is lost or duplicated.
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
                        assert!((1..=message.len()).contains(&n), "round {round}: read {n}");
                        assert_eq!(buf, &message.as_bytes()[..n], "round {round}");
                        received.extend_from_slice(&buf);
                        let what = format!("round {round}, after a read of {n} bytes");
                        let rest = message.len() - n;
                        received.extend(support::read_fd_exact(fd, rest, &what).await);
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
                        let what = format!("round {round}, after a cancelled read");
                        let all = message.len();
                        received.extend(support::read_fd_exact(fd, all, &what).await);
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
    /// unaffected (it returns the bytes, or their first few if it is short, and the rest wait
    /// for the next read).
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
            let n = res.expect("data was ready");
            assert!((1..=7).contains(&n), "read {n} bytes");
            assert_eq!(buf, &b"on time"[..n]);
            let rest = support::read_fd_exact(fd, 7 - n, "the rest").await;
            assert_eq!(rest, &b"on time"[n..]);
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
    /// work on a regular file, and the file holds exactly what was written. (Each may move
    /// fewer bytes than asked, as `read(2)` and `write(2)` may: the rest follows in further
    /// calls, and a short vectored transfer fills its buffers in order.)
    fn file_read_write_at_offsets(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "file_read_write_at_offsets");
        rt.block_on(async {
            let tmp = TempFile::new("rw");
            let fd = tmp.file.as_raw_fd();

            write_all_at(fd, b"hello world", 0).await;
            assert_eq!(read_at_most(fd, 5, 6).await, b"world");

            // The file position is still 0: write_at/read_at do not move it.
            write_all(fd, b"HEL").await;
            assert_eq!(support::read_fd_exact(fd, 4, "read at the position").await, b"lo w");

            let (res, _) = op::writev_at(fd, vec![b"ab".to_vec(), b"cd".to_vec()], 11).await;
            let n = res.expect("writev_at");
            assert!((1..=4).contains(&n), "writev_at wrote {n} bytes");
            write_all_at(fd, &b"abcd"[n..], 11 + n as u64).await;
            let (res, bufs) =
                op::readv_at(fd, vec![Vec::with_capacity(3), Vec::with_capacity(16)], 8).await;
            let n = res.expect("readv_at");
            let want = b"rldabcd";
            assert!((1..=want.len()).contains(&n), "readv_at read {n} bytes");
            let in_first = n.min(3);
            assert_eq!(bufs[0], &want[..in_first]);
            assert_eq!(bufs[1], &want[in_first..n]);
            assert_eq!(read_at_most(fd, want.len() - n, 8 + n as u64).await, &want[n..]);

            let (res, buf) = op::read_at(fd, Vec::with_capacity(8), 15).await;
            assert_eq!(res.expect("read_at at EOF"), 0);
            assert!(buf.is_empty());

            assert_eq!(std::fs::read(&tmp.path).expect("read back"), b"HELlo worldabcd");
            support::settle_inflight(0).await;
        });
    }

    /// writev gathers several buffers into a pipe in order; readv scatters the bytes across its
    /// buffers, filling each to capacity before the next. (A pipe may take or give fewer bytes
    /// than asked: the rest follows in further calls.)
    fn readv_writev_on_pipes(rt) {
        let _wd = support::watchdog(Duration::from_secs(10), "readv_writev_on_pipes");
        rt.block_on(async {
            let (r, w) = support::pipe();
            let sent = b"scatter gather";
            let (res, bufs) =
                op::writev(w.as_raw_fd(), vec![b"scatter ".to_vec(), b"gather".to_vec()]).await;
            let n = res.expect("writev");
            assert!((1..=sent.len()).contains(&n), "writev wrote {n} bytes");
            assert_eq!(bufs.len(), 2, "the buffers come back");
            write_all(w.as_raw_fd(), &sent[n..]).await;
            let (res, bufs) =
                op::readv(r.as_raw_fd(), vec![Vec::with_capacity(4), Vec::with_capacity(32)])
                    .await;
            let n = res.expect("readv");
            assert!((1..=sent.len()).contains(&n), "readv read {n} bytes");
            let in_first = n.min(4);
            assert_eq!(bufs[0], &sent[..in_first]);
            assert_eq!(bufs[1], &sent[in_first..n]);
            let rest = support::read_fd_exact(r.as_raw_fd(), sent.len() - n, "the rest").await;
            assert_eq!(rest, &sent[n..]);
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
