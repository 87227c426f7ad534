//! The loop under ring pressure: a tiny submission queue that is full most of the time, and a
//! completion queue far smaller than one tick's completions. Nothing may be lost or completed
//! twice. The ring sizes are io_uring knobs; the epoll backend ignores them and must pass too.

mod support;

use std::cell::Cell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_lite::future::poll_once;
use ringloop::buf::{IoBuf, IoBufMut};
use ringloop::{Backend, BackendKind, Handle, Runtime, op, yield_now};

/// A runtime on exactly `backend` with an SQ of `entries` and, if given, a CQ of `cq_entries`.
fn small_ring(backend: Backend, entries: u32, cq_entries: Option<u32>) -> Runtime {
    let mut builder = Runtime::builder().backend(backend).entries(entries);
    if let Some(cq) = cq_entries {
        builder = builder.cq_entries(cq);
    }
    builder
        .build()
        .unwrap_or_else(|e| panic!("runtime on {backend:?} with entries({entries}): {e}"))
}

/// On io_uring, checks that `ops` submissions took at least `ops / entries` kernel enters since
/// `enters_before`: the small SQ was really in force and was flushed each time it filled.
fn assert_sq_was_small(rt: &Runtime, enters_before: u64, ops: usize, entries: u32) {
    if rt.backend_report().backend() == BackendKind::IoUring {
        let enters = rt.stats().kernel_enters - enters_before;
        assert!(
            enters >= (ops / entries as usize) as u64,
            "{ops} ops went in {enters} enters through a {entries}-entry SQ"
        );
    }
}

/// Yields to the loop until `cond` holds; panics (naming `what`) after 100 000 turns or 5 s.
async fn yield_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    for _ in 0..100_000 {
        if cond() || Instant::now() > deadline {
            break;
        }
        yield_now().await;
    }
    assert!(cond(), "gave up waiting until {what}");
}

/// Yields until the op table is empty (bounded, see [`yield_until`]).
async fn settle_inflight_zero() {
    let h = Handle::current();
    yield_until("inflight_ops() == 0", || h.inflight_ops() == 0).await;
}

/// Writes all of `data` to the pipe's write end with plain blocking `write(2)`.
fn write_all(fd: &OwnedFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: `fd` is an open descriptor borrowed for the call; `data` is valid for reads of
        // `data.len()` bytes.
        let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            assert_eq!(err.kind(), std::io::ErrorKind::Interrupted, "write: {err}");
            continue;
        }
        data = &data[n as usize..];
    }
}

/// A one-byte read buffer that counts its drops, so a completion delivered twice (or never)
/// shows up as a wrong count.
struct CountedByte {
    bytes: Vec<u8>,
    drops: Arc<AtomicUsize>,
}

impl Drop for CountedByte {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: the pointer is the Vec's heap allocation, which does not move when the buffer moves
// and is never reallocated while lent out; len/capacity bound it.
unsafe impl IoBuf for CountedByte {
    fn stable_ptr(&self) -> *const u8 {
        self.bytes.as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.bytes.len()
    }

    fn bytes_total(&self) -> usize {
        self.bytes.capacity()
    }
}

// SAFETY: as for `IoBuf`; `set_init` only grows `len` up to bytes the kernel initialised.
unsafe impl IoBufMut for CountedByte {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.bytes.as_mut_ptr()
    }

    unsafe fn set_init(&mut self, pos: usize) {
        if pos > self.bytes.len() {
            // SAFETY: the caller guarantees the first `pos` bytes are initialised, and `pos` is
            // within `bytes_total()`, the Vec's capacity.
            unsafe { self.bytes.set_len(pos) };
        }
    }
}

/// `pipes` pipes each holding the bytes `0..reads_per_pipe`; `tasks` spawned tasks each read
/// one byte from its pipe; every read must complete exactly once with one byte, each pipe's
/// bytes must come back exactly once, and every buffer must be dropped exactly once.
async fn one_byte_reads_on_ready_pipes(pipes: usize, reads_per_pipe: usize) {
    let drops = Arc::new(AtomicUsize::new(0));
    let completions = Rc::new(Cell::new(0usize));
    let pipes: Vec<(OwnedFd, OwnedFd)> = (0..pipes).map(|_| support::pipe()).collect();
    let payload: Vec<u8> = (0..reads_per_pipe).map(|b| b as u8).collect();
    for (_, w) in &pipes {
        write_all(w, &payload);
    }
    let readers: Vec<Vec<_>> = pipes
        .iter()
        .map(|(r, _)| {
            (0..reads_per_pipe)
                .map(|_| {
                    let fd = r.as_raw_fd();
                    let buf = CountedByte {
                        bytes: Vec::with_capacity(1),
                        drops: drops.clone(),
                    };
                    let completions = completions.clone();
                    ringloop::spawn(async move {
                        let (res, buf) = op::read(fd, buf).await;
                        completions.set(completions.get() + 1);
                        (res.map_err(|e| e.to_string()), buf.bytes.clone())
                    })
                })
                .collect()
        })
        .collect();
    for (pipe, tasks) in readers.into_iter().enumerate() {
        let mut got = Vec::with_capacity(reads_per_pipe);
        for task in tasks {
            let (res, bytes) = task.await.expect("reader task");
            assert_eq!(res, Ok(1), "pipe {pipe}");
            assert_eq!(bytes.len(), 1, "pipe {pipe}");
            got.push(bytes[0]);
        }
        got.sort_unstable();
        assert_eq!(got, payload, "pipe {pipe}: bytes lost or duplicated");
    }
    settle_inflight_zero().await;
    let total = pipes.len() * reads_per_pipe;
    assert_eq!(completions.get(), total);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        total,
        "each buffer dropped exactly once"
    );
}

both_backends! {
    /// With a 4-entry submission queue, 10 000 concurrent nops (from tasks and from ops polled
    /// in one go) all complete exactly once: a full SQ is flushed and retried, never dropped.
    fn sq_full_ten_thousand_nops(backend: Backend) {
        let _wd = support::watchdog(Duration::from_secs(30), "sq_full_ten_thousand_nops");
        let rt = small_ring(backend, 4, None);
        rt.block_on(async {
            const N: usize = 10_000;
            let enters_before = rt.stats().kernel_enters;
            let completions = Rc::new(Cell::new(0usize));
            let tasks: Vec<_> = (0..N)
                .map(|_| {
                    let completions = completions.clone();
                    ringloop::spawn(async move {
                        op::nop().await.expect("nop");
                        completions.set(completions.get() + 1);
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("nop task");
            }
            assert_eq!(completions.get(), N);
            assert_sq_was_small(&rt, enters_before, N, 4);

            // All submitted from one poll of this task, so the SQ overflows within one tick.
            let mut pending = Vec::new();
            let mut completed = 0;
            for mut nop in (0..N).map(|_| op::nop()) {
                match poll_once(&mut nop).await {
                    Some(res) => {
                        res.expect("nop");
                        completed += 1;
                    }
                    None => pending.push(nop),
                }
            }
            for nop in pending {
                nop.await.expect("nop");
                completed += 1;
            }
            assert_eq!(completed, N);
            settle_inflight_zero().await;
        });
    }

    /// With a 4-entry submission queue, 10 000 concurrent reads (100 ready pipes × 100 one-byte
    /// reads) complete exactly once each and return every byte exactly once.
    fn sq_full_ten_thousand_reads(backend: Backend) {
        let _wd = support::watchdog(Duration::from_secs(30), "sq_full_ten_thousand_reads");
        let rt = small_ring(backend, 4, None);
        rt.block_on(one_byte_reads_on_ready_pipes(100, 100));
    }

    /// With a 4-entry SQ and an 8-entry CQ, thousands of completions arriving in one tick (2 000
    /// nops submitted together) overflow the CQ; every op still completes exactly once.
    fn cq_overflow_nops_complete_once(backend: Backend) {
        let _wd = support::watchdog(Duration::from_secs(30), "cq_overflow_nops_complete_once");
        let rt = small_ring(backend, 4, Some(8));
        rt.block_on(async {
            const N: usize = 2_000;
            let enters_before = rt.stats().kernel_enters;
            let completions = Rc::new(Cell::new(0usize));
            let tasks: Vec<_> = (0..N)
                .map(|_| {
                    let completions = completions.clone();
                    ringloop::spawn(async move {
                        op::nop().await.expect("nop");
                        completions.set(completions.get() + 1);
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("nop task");
            }
            assert_eq!(completions.get(), N);
            assert_sq_was_small(&rt, enters_before, N, 4);
            settle_inflight_zero().await;
            for _ in 0..10 {
                yield_now().await;
            }
            assert_eq!(completions.get(), N, "a completion was delivered twice");
        });
    }

    /// With a 4-entry SQ and an 8-entry CQ, 2 000 one-byte reads on ready pipes (20 pipes ×
    /// 100) complete exactly once each and return every byte exactly once.
    fn cq_overflow_reads_complete_once(backend: Backend) {
        let _wd = support::watchdog(Duration::from_secs(30), "cq_overflow_reads_complete_once");
        let rt = small_ring(backend, 4, Some(8));
        rt.block_on(one_byte_reads_on_ready_pipes(20, 100));
    }
}
