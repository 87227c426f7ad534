//! The fault injector: a backend that wraps a real one and perturbs it, deterministically from
//! a seed, only in ways the kernel is allowed to.
//!
//! It is what `RINGLOOP_BACKEND=faults` (over io_uring) or `faults+epoll` runs, and what
//! `RINGLOOP_FAULT_SEED` turns on over whichever backend a runtime picks. Each runtime draws
//! its decisions from its own generator seeded with the seed, so a single-threaded test makes
//! the same decisions in the same order on every run (the kernel's timing still varies).
//!
//! | fault | how | the kernel's licence for it |
//! | --- | --- | --- |
//! | short transfer | the op is asked to move at most a few bytes ([`Describe::limit`]) | a stream read or write may move fewer bytes than asked |
//! | interrupted wait | the next `io_uring_enter` / `epoll_wait` returns `EINTR` unentered | signals interrupt waits |
//! | busy submit | the next `io_uring_enter` returns `EBUSY` unentered (io_uring) | CQ backlog, no memory for requests |
//! | `ENOBUFS` | a receive from a shared buffer ring (the loop's, for transports and streams) completes with `ENOBUFS` instead of being submitted | other sockets may have taken the last buffer when data arrives |
//! | delayed, reordered completions | completions are held for a few parks and released shuffled (one op's own stay in order) | completion order across ops is not specified |
//! | lost cancel race | the cancel of an op the kernel holds is forwarded only after the next park, which may complete the op | a cancel races the op it targets (an op not yet handed to the kernel is still removed at once, as ringloop promises) |
//! | CQ overflow, full SQ | the io_uring ring is made tiny (at most 8 entries) | overflow is kept (`IORING_FEAT_NODROP`) and the SQ can fill |
//! | spurious readiness | epoll re-tries the ops waiting on a busy fd as if it were ready | edge-triggered reports may be stale |
//!
//! Every fault injected is counted ([`Proactor::faults_injected`], shown in
//! `Runtime::stats()`), so a run can show it really perturbed something.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::Describe;
use super::buf_ring::KernelBufRing;
use super::proactor::{Half, Inject, Proactor, Submission};
use super::select::BackendKind;
use super::token::{CompletionToken, OpTable};

/// Entries of the io_uring ring under the injector: small enough that the SQ fills and the CQ
/// overflows whenever a test has a few ops in flight.
pub const TINY_RING: u32 = 8;

/// One chance in `n` per decision.
const SHORT_TRANSFER: u64 = 4;
const INTERRUPT_WAIT: u64 = 8;
const BUSY_SUBMIT: u64 = 16;
const NO_BUFFERS: u64 = 8;
const HOLD_COMPLETION: u64 = 4;
const DELAY_CANCEL: u64 = 3;
const SPURIOUS_READY: u64 = 4;

/// splitmix64: a small, well-mixed generator whose whole state is the seed, so a run replays.
/// (A generator crate would add a dependency to every user for a test tool.)
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.next_u64().is_multiple_of(n)
    }

    /// A number in `1..=max`.
    pub fn upto(&mut self, max: u64) -> u64 {
        1 + self.next_u64() % max
    }
}

/// The injector around a real backend.
pub struct Faults {
    inner: Box<dyn Proactor>,
    rng: Rng,
    /// Completions held back, in the order the backend posted them.
    held: Vec<(CompletionToken, i32, u32)>,
    /// Cancels held back until after the next park.
    cancels: Vec<CompletionToken>,
    /// The capture buffer, kept to reuse its allocation.
    spare: Vec<(CompletionToken, i32, u32)>,
    injected: u64,
}

/// `backend`, wrapped in the injector when there is a seed.
pub fn wrap(backend: Box<dyn Proactor>, seed: Option<u64>) -> Box<dyn Proactor> {
    match seed {
        Some(seed) => Box::new(Faults::new(backend, seed)),
        None => backend,
    }
}

impl Faults {
    pub fn new(inner: Box<dyn Proactor>, seed: u64) -> Faults {
        Faults {
            inner,
            rng: Rng::new(seed),
            held: Vec::new(),
            cancels: Vec::new(),
            spare: Vec::new(),
            injected: 0,
        }
    }

    /// Runs `f` on the inner backend with its completions captured, then holds some of them
    /// back and delivers the rest (see [`release`](Self::release)).
    fn captured<R>(
        &mut self,
        table: &mut OpTable,
        f: impl FnOnce(&mut dyn Proactor, &mut OpTable) -> R,
    ) -> R {
        table.start_capture(std::mem::take(&mut self.spare));
        let r = f(&mut *self.inner, table);
        let mut fresh = table.end_capture();
        self.held.append(&mut fresh);
        self.spare = fresh;
        r
    }

    /// Delivers held completions: each with one chance in [`HOLD_COMPLETION`] to stay held,
    /// except that an op's completions stay in order (once one of an op's stays, so do its
    /// later ones). The released ones are delivered shuffled across ops.
    fn release(&mut self, table: &mut OpTable, all: bool) {
        if self.held.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(self.held.len());
        let mut stay = Vec::new();
        let mut kept_back: Vec<CompletionToken> = Vec::new();
        for c in std::mem::take(&mut self.held) {
            let keep = !all && (kept_back.contains(&c.0) || self.rng.one_in(HOLD_COMPLETION));
            if keep {
                if !kept_back.contains(&c.0) {
                    kept_back.push(c.0);
                    self.injected += 1;
                }
                stay.push(c);
            } else {
                out.push(c);
            }
        }
        self.held = stay;
        // Shuffle across ops, keeping each op's own completions in order: repeatedly take the
        // first remaining completion of a randomly chosen op.
        while !out.is_empty() {
            let pick = out[(self.rng.next_u64() % out.len() as u64) as usize].0;
            let i = out.iter().position(|c| c.0 == pick).unwrap_or(0);
            let (token, result, flags) = out.remove(i);
            table.deliver(token, result, flags);
        }
    }

    fn forward_cancels(&mut self, table: &mut OpTable) {
        for token in std::mem::take(&mut self.cancels) {
            self.captured(table, |inner, table| inner.cancel(table, token));
        }
    }
}

impl Proactor for Faults {
    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }

    fn half(&self) -> Half {
        self.inner.half()
    }

    fn prepares(&self) -> bool {
        true
    }

    fn prepare(
        &mut self,
        _table: &mut OpTable,
        token: CompletionToken,
        op: &mut dyn Describe,
    ) -> bool {
        if self.rng.one_in(NO_BUFFERS) && op.multishot() && op.shares_buffers() {
            self.injected += 1;
            self.held.push((token, -libc::ENOBUFS, 0));
            return false;
        }
        if self.rng.one_in(SHORT_TRANSFER) {
            let max = self.rng.upto(16) as usize;
            if op.limit(max) {
                self.injected += 1;
            }
        }
        true
    }

    fn submit(&mut self, table: &mut OpTable, op: Submission) {
        // Not captured: what a backend completes inside `submit` (epoll, on a ready fd) the
        // submitting task sees in the same poll, which ringloop promises (a read dropped
        // after its first poll consumed nothing it did not return).
        self.inner.submit(table, op);
    }

    fn has_op(&self, code: u8) -> bool {
        self.inner.has_op(code)
    }

    fn cancel(&mut self, table: &mut OpTable, token: CompletionToken) {
        if self.inner.cancel_may_race(table, token) && self.rng.one_in(DELAY_CANCEL) {
            self.injected += 1;
            self.cancels.push(token);
            return;
        }
        self.captured(table, |inner, table| inner.cancel(table, token));
    }

    fn park(&mut self, table: &mut OpTable, timeout: Option<Duration>) -> io::Result<()> {
        for (chance, what) in [
            (INTERRUPT_WAIT, Inject::WaitInterrupted),
            (BUSY_SUBMIT, Inject::SubmitBusy),
        ] {
            if self.rng.one_in(chance) && self.inner.inject(table, what) {
                self.injected += 1;
            }
        }
        if self.rng.one_in(SPURIOUS_READY) {
            let what = Inject::SpuriousReadiness {
                pick: self.rng.next_u64(),
            };
            if self.captured(table, |inner, table| inner.inject(table, what)) {
                self.injected += 1;
            }
        }
        // Something held must not wait behind a sleep that only it could end.
        let timeout = if self.held.is_empty() && self.cancels.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        let r = self.captured(table, |inner, table| inner.park(table, timeout));
        // After the park, which may have completed the op: the cancel lost the race.
        self.forward_cancels(table);
        self.release(table, false);
        r
    }

    fn shutdown(&mut self, table: &mut OpTable, grace: Duration) {
        self.forward_cancels(table);
        self.release(table, true);
        self.inner.shutdown(table, grace);
    }

    fn kernel_enters(&self) -> u64 {
        self.inner.kernel_enters()
    }

    fn wait_call(&self) -> String {
        self.inner.wait_call()
    }

    fn fail_waiting(&mut self, table: &mut OpTable, errno: i32) {
        self.forward_cancels(table);
        self.release(table, true);
        self.inner.fail_waiting(table, errno);
    }

    fn collect_after_failure(&mut self, table: &mut OpTable) {
        self.release(table, true);
        self.inner.collect_after_failure(table);
    }

    fn unasked_cancel_is_retryable(&self) -> bool {
        self.inner.unasked_cancel_is_retryable()
    }

    fn pin_fd(&mut self, fd: RawFd) -> io::Result<()> {
        self.inner.pin_fd(fd)
    }

    fn unpin_fd(&mut self, fd: RawFd) {
        self.inner.unpin_fd(fd);
    }

    fn register_buf_ring(&mut self, len: u16, driver_id: u64) -> io::Result<Option<KernelBufRing>> {
        self.inner.register_buf_ring(len, driver_id)
    }

    fn buf_ring_head(&self, bgid: u16) -> io::Result<u16> {
        self.inner.buf_ring_head(bgid)
    }

    fn unregister_buf_ring(&mut self, bgid: u16) {
        self.inner.unregister_buf_ring(bgid);
    }

    fn faults_injected(&self) -> u64 {
        self.injected
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn the_same_seed_gives_the_same_decisions() {
        let (mut a, mut b, mut c) = (Rng::new(7), Rng::new(7), Rng::new(8));
        let xs: Vec<u64> = (0..64).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..64).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..64).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn one_in_n_happens_about_once_in_n() {
        let mut rng = Rng::new(1);
        let hits = (0..40_000).filter(|_| rng.one_in(4)).count();
        assert!((9_000..11_000).contains(&hits), "{hits} of 40000");
    }
}
