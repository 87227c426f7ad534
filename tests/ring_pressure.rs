//! The loop under ring pressure: a tiny submission queue that is full most of the time, and a
//! completion queue far smaller than one tick's completions. Nothing may be lost or completed
//! twice. The ring sizes are io_uring knobs; the epoll backend ignores them and must pass too.

mod support;

use std::cell::Cell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_lite::future::poll_once;
use ringloop::{Backend, BackendKind, Runtime, op};

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

/// Spawns `n` tasks that each await one nop and waits for them all: each completed exactly
/// once, and on io_uring the `entries`-entry SQ was in force (see [`assert_sq_was_small`]).
/// Returns the completion count, for checks that no completion arrives later.
async fn nops_from_tasks(rt: &Runtime, n: usize, entries: u32) -> Rc<Cell<usize>> {
    let enters_before = rt.stats().kernel_enters;
    let completions = Rc::new(Cell::new(0usize));
    let tasks: Vec<_> = (0..n)
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
    assert_eq!(completions.get(), n);
    assert_sq_was_small(rt, enters_before, n, entries);
    completions
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
        support::write_all(w, &payload);
    }
    let readers: Vec<Vec<_>> = pipes
        .iter()
        .map(|(r, _)| {
            (0..reads_per_pipe)
                .map(|_| {
                    let fd = r.as_raw_fd();
                    let buf = support::CountedBuf::new(1, &drops);
                    let completions = completions.clone();
                    ringloop::spawn(async move {
                        let (res, buf) = op::read(fd, buf).await;
                        completions.set(completions.get() + 1);
                        (res.map_err(|e| e.to_string()), buf.bytes().to_vec())
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
    support::settle_inflight(0).await;
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
            nops_from_tasks(&rt, N, 4).await;

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
            support::settle_inflight(0).await;
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
            let completions = nops_from_tasks(&rt, N, 4).await;
            support::settle_inflight(0).await;
            support::yield_turns(10).await;
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
