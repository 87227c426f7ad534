//! The driver: rings, completion tokens and wakers; nothing about tasks or sockets.
//!
//! # The backend contract
//!
//! A backend implements [`Proactor`] (`proactor.rs`, which states what every backend
//! guarantees); the driver holds it as a `Box<dyn Proactor>` and never asks which one it is:
//!
//! * `submit(table, submission)` — start an op; the driver builds only the half the backend
//!   runs (`half()`: SQE or readiness), where the op's type is known. io_uring (`uring.rs`) queues
//!   its SQE (plus a linked timeout when there is a deadline) in the tick's local queue; epoll
//!   (`epoll.rs`) tries its [`Syscall`] at once (unless `defer`: the task's budget is spent),
//!   parks it on its fd's queue until ready, or hands it to the blocking pool when the fd
//!   cannot be polled. An op whose opcode the backend cannot run goes to the blocking pool
//!   instead, before any backend sees it (see below).
//! * `cancel(table, token)` — an op whose SQE is still in the local queue is removed from it
//!   (it never reaches the kernel); otherwise io_uring queues `IORING_OP_ASYNC_CANCEL`. epoll
//!   completes a waiting op with `ECANCELED` at once. Either way the op's own completion is
//!   what frees its slot.
//! * `park(table, timeout)` — flush submissions and collect completions, sleeping up to
//!   `timeout` when asked; a wake-up from another thread ([`Unparker`]) ends the sleep.
//!   Transient errors are retried inside the backend; a wait that fails for good leaves the
//!   driver running without its backend (see `failed.rs`), never panicking.
//! * `shutdown(table, grace)` — cancel everything and wait for the completions, so that no
//!   buffer is freed while the kernel may still use it.
//!
//! Completions are written into the [`OpTable`], which wakes the parked task. The fault
//! injector (`faults.rs`) is a third backend: it wraps either real one and perturbs it only in
//! ways the kernel may (`RINGLOOP_FAULT_SEED`, `RINGLOOP_BACKEND=faults[+epoll]`).
//!
//! # What an op gives the driver
//!
//! Each op owns both of its halves ([`Describe`], implemented in `op/`, one file per family):
//! the io_uring SQE, and its readiness half, a [`Syscall`]: the fd it waits on and for what
//! ([`syscall::Wait`]: readiness, nothing, or the blocking pool), a few flags (it closes its
//! fd; a multishot call drains until `EAGAIN`; end of file ends its stream; a read or write
//! that may need a [`NoWaitFallback`]), and its arguments stored with the op's own function
//! that performs them ([`Perform`], in a [`Mode`]: non-blocking, blocking, or a fallback).
//! The driver names no socket or file call: a backend performs any op through its
//! `Syscall`, and a new op works on every backend by describing both halves.
//!
//! The op also declares its opcode ([`Describe::opcode`]). Where the backend cannot run it
//! (an io_uring kernel without `IORING_OP_FTRUNCATE`: see `ring_has_op`), the driver performs
//! the op's `Syscall` on the blocking pool instead (`pool_calls.rs`), with its slot in the
//! table like any op's; the op's caller never asks. [`Describe::limit`] lets a backend make a
//! transfer short, as the kernel may.
//!
//! The driver lives in a [`DriverCell`]: work asked of it while it is borrowed (an op dropped
//! by a waker or a `Drop` the driver runs) waits there and runs when the borrow ends.

pub(crate) mod buf_ring;
mod cell;
mod coalesce;
pub(crate) mod context;
mod epoll;
mod failed;
mod faults;
pub use coalesce::{DEFAULT_MAX_BATCH, DEFAULT_MAX_DELAY};
mod pool_calls;
mod proactor;
mod select;
pub(crate) mod signal;
mod syscall;
mod token;
mod uring;
mod wake;

use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

pub use cell::DriverCell;
pub use failed::ParkFailure;
use proactor::{Half, Proactor, Submission, Work};
pub use select::{Backend, BackendKind, BackendReport};
pub use syscall::{
    BUFFER_SHIFT, BufferSource, F_BUFFER, Mode, NoWaitFallback, Perform, Performed, Syscall,
    socket_type,
};
pub use token::{Completion, CompletionToken, Orphan};
pub use wake::Unparker;

use crate::blocking::Pool;
use token::OpTable;

/// How [`Driver::submit`] starts an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Handed to the backend.
    Submit,
    /// The submitting task's cooperative budget is spent: the op must not complete inside
    /// this poll (only the epoll backend ever completes an op at submission).
    Defer,
    /// Performed at once, without waiting, on io_uring too: the kernel gets the op only if
    /// the call would wait (`EAGAIN`). For a send the loop would otherwise hand the kernel
    /// just before it waits: such a send completes inside the enter that submits it, which
    /// then returns at once with its completion, and the loop enters again to wait. Done at
    /// once, the send costs one `send` call and the wait one enter.
    AtOnce,
}

/// How an op describes itself to each backend: both halves of it, owned by the op (`op/`).
pub trait Describe {
    /// The io_uring opcode of the op's SQE. Where the backend cannot run it (an io_uring
    /// kernel without it), the driver performs the op's [`syscall`](Self::syscall) on the
    /// blocking pool instead, in [`Mode::Blocking`].
    fn opcode(&self) -> u8;
    /// The SQE for io_uring (its `user_data` is set by the driver).
    fn uring_entry(&mut self) -> io_uring::squeue::Entry;
    /// The readiness half: the call epoll (and the blocking pool) performs.
    fn syscall(&mut self) -> Syscall;
    /// Whether the op posts a stream of completions (`IORING_CQE_F_MORE`) rather than one.
    fn multishot(&self) -> bool {
        false
    }
    /// The provided-buffer group the op selects its buffers from (io_uring), if any: the
    /// driver counts the buffers its completions carry (see `buf_ring`).
    fn buf_group(&self) -> Option<u16> {
        None
    }
    /// Whether the op receives into a buffer ring other sockets share, so that the ring may be
    /// empty when its data arrives (`ENOBUFS`) however few buffers it holds itself.
    fn shares_buffers(&self) -> bool {
        false
    }
    /// Makes the op transfer at most `max` bytes (`max >= 1`), as the kernel may for a stream:
    /// a short read, write, send or receive (vectored or not, or by message). Called before
    /// the op is submitted, it changes both halves built afterwards. Returns true when the op
    /// asked for more and is now capped; false, changing nothing, where it asked for no more,
    /// or where a short transfer is not something the kernel would do: datagram and seqpacket
    /// sockets (whose messages are never split), ops without a length, buffer-select receives.
    fn limit(&mut self, max: usize) -> bool {
        let _ = max;
        false
    }
}

/// How many times in a row an op the kernel cancelled unasked is submitted again before its
/// `ECANCELED` is returned (see [`Driver::poll_op`]); the bound keeps a kernel that refuses
/// the work for good (no io-wq worker can be created) from holding the op forever.
pub const MAX_UNASKED_CANCEL_RESUBMITS: u32 = 16;

/// One loop thread's driver.
pub struct Driver {
    table: OpTable,
    backend: Box<dyn Proactor>,
    /// The half of an op the backend runs, and whether it prepares ops: asked once.
    half: Half,
    prepares: bool,
    /// The io_uring opcodes the backend lacks, one bit each (asked once: a call through the
    /// backend's vtable per submit cost more than the rest of the check).
    missing_ops: OpcodeSet,
    unparker: Arc<Unparker>,
    ops_submitted: u64,
    /// Ops performed at once on io_uring ([`Start::AtOnce`]).
    ops_at_once: u64,
    closed: bool,
    /// The backend's wait failed for good: the loop runs on without it (see `failed.rs`).
    failed: Option<ParkFailure>,
    shutdown_grace: Duration,
    id: u64,
    /// Ops whose opcode the backend lacks (an io_uring kernel without `FTRUNCATE`), performed
    /// on the blocking pool instead; their slots are in `table` like any op's.
    pool_calls: pool_calls::PoolCalls,
}

static NEXT_DRIVER_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Shared handle to the current thread's driver.
pub type DriverRef = Rc<DriverCell>;

pub use context::{current, current_id};

/// Settings for building a driver.
pub struct Config {
    pub backend: Backend,
    pub entries: u32,
    pub cq_entries: u32,
    /// io_uring completion coalescing: most completions per wait, longest wait for them.
    pub max_batch: u32,
    pub max_delay: std::time::Duration,
    /// How long shutdown waits for the kernel to finish the ops it cancels.
    pub shutdown_grace: Duration,
    /// Wrap the backend in the fault injector with this seed (see `faults.rs`).
    pub fault_seed: Option<u64>,
}

impl Config {
    fn coalesce(&self) -> coalesce::Coalesce {
        coalesce::Coalesce::new(self.max_batch, self.max_delay)
    }
}

/// A set of io_uring opcodes (a `u8` each), as a 256-bit map.
#[derive(Clone, Copy, Debug, Default)]
struct OpcodeSet([u64; 4]);

impl OpcodeSet {
    /// The opcodes `backend` cannot run (none unless it runs SQEs).
    fn missing_from(backend: &dyn Proactor) -> OpcodeSet {
        let mut set = OpcodeSet::default();
        if backend.half() == Half::Sqe {
            for code in 0..=u8::MAX {
                if !backend.has_op(code) {
                    set.0[usize::from(code >> 6)] |= 1 << (code & 63);
                }
            }
        }
        set
    }

    #[inline]
    fn contains(&self, code: u8) -> bool {
        self.0[usize::from(code >> 6)] & (1 << (code & 63)) != 0
    }
}
impl Driver {
    /// Builds the driver the config asks for, probing io_uring when needed.
    pub fn new(config: &Config, pool: Pool) -> io::Result<(Driver, BackendReport)> {
        let (requested, source, env_faults) = match config.backend {
            Backend::Auto => match select::backend_from_env()? {
                Some((b, faults)) => (b, "RINGLOOP_BACKEND", faults),
                None => (Backend::Auto, "builder", false),
            },
            b => (b, "builder", false),
        };
        let fault_seed = match (config.fault_seed, select::fault_seed_from_env()?) {
            (Some(seed), _) | (None, Some(seed)) => Some(seed),
            // `RINGLOOP_BACKEND=faults` without a seed: one from the clock, shown in the
            // report (and by a panicking runtime) so the run can be replayed.
            (None, None) if env_faults => Some(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64),
            ),
            (None, None) => None,
        };
        let (entries, cq_entries) = match fault_seed {
            Some(_) => (
                config.entries.min(faults::TINY_RING),
                config.cq_entries.min(faults::TINY_RING),
            ),
            None => (config.entries, config.cq_entries),
        };
        let id = NEXT_DRIVER_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut report = BackendReport {
            backend: BackendKind::Epoll,
            requested,
            source,
            fallback_reason: None,
            errno: None,
            features: Vec::new(),
            fault_seed,
        };
        let skip_probe = match (requested, select::AUTO_SKIPS_PROBE) {
            (Backend::Auto, Some(why)) => {
                report.fallback_reason = Some(why.to_owned());
                true
            }
            _ => false,
        };
        if requested != Backend::Epoll && !skip_probe {
            match select::probe_uring(entries, cq_entries) {
                Ok((ring, features)) => {
                    let unparker = Arc::new(Unparker::new(false)?);
                    report.backend = BackendKind::IoUring;
                    report.features = features;
                    let mut uring = Box::new(uring::Uring::new(ring, &unparker, config.coalesce()));
                    if report.features.contains(&("recv_multishot", false)) {
                        uring.set_no_recv_multishot();
                    }
                    let backend = faults::wrap(uring, fault_seed);
                    let driver = Driver::with(backend, unparker, pool, id, config.shutdown_grace);
                    return Ok((driver, report));
                }
                Err(why) if requested == Backend::IoUring => return Err(why.into_io_error()),
                Err(why) => {
                    report.errno = why.errno;
                    report.fallback_reason = Some(why.message);
                }
            }
        }
        let unparker = Arc::new(Unparker::new(true)?);
        // Probed on a pipe, honestly (6.1 refuses it there and on sockets): without it, pipes
        // and sockets lent as plain fds are read and written the `NoWaitFallback` way.
        report.features = vec![
            ("edge_triggered", true),
            ("rwf_nowait", syscall::rwf_nowait_on_pipes()),
        ];
        let epoll = Box::new(epoll::Epoll::new(unparker.clone(), pool.clone())?);
        let backend = faults::wrap(epoll, fault_seed);
        let driver = Driver::with(backend, unparker, pool, id, config.shutdown_grace);
        Ok((driver, report))
    }

    fn with(
        backend: Box<dyn Proactor>,
        unparker: Arc<Unparker>,
        pool: Pool,
        id: u64,
        shutdown_grace: Duration,
    ) -> Driver {
        Driver {
            table: OpTable::new(),
            half: backend.half(),
            prepares: backend.prepares(),
            missing_ops: OpcodeSet::missing_from(&*backend),
            backend,
            pool_calls: pool_calls::PoolCalls::new(pool, unparker.clone()),
            unparker,
            ops_submitted: 0,
            ops_at_once: 0,
            closed: false,
            failed: None,
            shutdown_grace,
            id,
        }
    }

    /// Distinguishes drivers that lived on one thread at different times.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn unparker(&self) -> &Arc<Unparker> {
        &self.unparker
    }

    /// Starts an op the way `start` says; the returned token is what its future polls.
    #[inline]
    pub fn submit<D: Describe>(
        &mut self,
        op: &mut D,
        deadline: Option<Duration>,
        start: Start,
    ) -> CompletionToken {
        let defer = start == Start::Defer;
        let multishot = op.multishot();
        let token = self.table.insert(deadline.is_some(), multishot);
        self.ops_submitted += 1;
        if self.closed {
            // Cancelled by the shutdown, not timed out: mark it so a deadline does not turn
            // the ECANCELED into ETIMEDOUT.
            self.table.request_cancel(token);
            self.table.complete(token, -libc::ECANCELED, 0);
            return token;
        }
        if let Some(failure) = &self.failed {
            self.table.complete(token, -failure.errno, 0);
            return token;
        }
        if self.half == Half::Sqe && self.missing_ops.contains(op.opcode()) {
            // Opcode missing: the op's readiness half, blocking, on the pool.
            self.pool_calls.submit(&mut self.table, token, op.syscall());
            return token;
        }
        if self.prepares && !self.backend.prepare(&mut self.table, token, op) {
            return token;
        }
        if start == Start::AtOnce && self.half == Half::Sqe && deadline.is_none() && !multishot {
            // The op is complete now unless the call would wait; then the kernel gets it below.
            // SAFETY: the op's memory is owned by the table until its completion.
            let done = unsafe { op.syscall().perform(Mode::NoWait) };
            if done.result != -libc::EAGAIN {
                self.ops_at_once += 1;
                self.table.complete(token, done.result, done.flags);
                return token;
            }
        }
        // Only the half the backend runs is built, here where the op's type is known, and
        // each arm builds its submission in place (one `work` moved into a shared
        // `Submission` was a copy of the whole op description per submit).
        let submission = match self.half {
            Half::Sqe => Submission {
                token,
                work: Work::Sqe {
                    entry: op.uring_entry().user_data(token.user_data()),
                    buf_group: op.buf_group(),
                },
                multishot,
                deadline,
                defer,
            },
            Half::Readiness => Submission {
                token,
                work: Work::Readiness(op.syscall()),
                multishot,
                deadline,
                defer,
            },
        };
        self.backend.submit(&mut self.table, submission);
        token
    }

    /// A single-shot op's completion if it has arrived (its slot is then freed); else parks
    /// `waker`. On io_uring, an op the kernel cancelled without being asked is first submitted
    /// again (under a new `token`), while `resubmits` is below [`MAX_UNASKED_CANCEL_RESUBMITS`].
    ///
    /// Why that is safe: with no cancel requested and no linked timeout, io_uring completes a
    /// single-shot op with `-ECANCELED` only when io-wq gives up on work it has not started.
    /// The case met in practice: before running a request that cannot complete inline (a pipe
    /// write on Linux 6.1, whose pipes lack `FMODE_NOWAIT`), io-wq creates a worker thread from
    /// the submitting task; `copy_process` fails with `-ERESTARTNOINTR` while that task has a
    /// signal pending, io-wq retries at most `WORKER_INIT_LIMIT` (3) times (stable kernels since
    /// 2024), and when every try meets a signal it cancels its pending work
    /// (`io_acct_cancel_pending_work`): the request is failed with `-ECANCELED` before it was
    /// issued. So nothing was read, written, closed or accepted, and the same request may be
    /// made again. An `ECANCELED` after a requested cancel (explicit, drop, shutdown) or from a
    /// linked timeout is the caller's answer and is returned as is; epoll never resubmits (its
    /// unasked `ECANCELED` means the fd went away).
    #[inline]
    pub fn poll_op<D: Describe>(
        &mut self,
        token: &mut CompletionToken,
        op: &mut D,
        resubmits: &mut u32,
        waker: &Waker,
    ) -> Option<Completion> {
        if !self.closed
            && self.failed.is_none()
            && *resubmits < MAX_UNASKED_CANCEL_RESUBMITS
            && !op.multishot()
            && self.table.cancelled_unasked(*token)
            && self.backend.unasked_cancel_is_retryable()
        {
            *resubmits += 1;
            self.table.discard_completed(*token);
            *token = self.submit(op, None, Start::Submit);
        }
        self.table.poll(*token, waker)
    }

    /// The next completion of a multishot op; `None` once its final one was taken.
    pub fn poll_stream(
        &mut self,
        token: CompletionToken,
        waker: &Waker,
    ) -> std::task::Poll<Option<Completion>> {
        self.table.poll_stream(token, waker)
    }

    /// The op's future is gone: keep `resources` until the kernel is done, and cancel the op.
    /// Ops reach this through [`DriverCell::orphan`], which defers it while the driver is busy.
    pub fn orphan(&mut self, token: CompletionToken, resources: Box<dyn Orphan>) {
        if self.closed && !self.table.is_finished(token) {
            // Shutdown is over and the kernel never reported this op done (shutdown gave up
            // waiting for it): it may still write into the resources, so they are leaked.
            std::mem::forget(resources);
            return;
        }
        if self.table.orphan(token, resources) {
            self.cancel_op(token);
        }
    }

    /// Asks the backend to cancel an op; its completion still arrives and carries the outcome.
    pub fn cancel(&mut self, token: CompletionToken) {
        if self.table.request_cancel(token) {
            self.cancel_op(token);
        }
    }

    fn cancel_op(&mut self, token: CompletionToken) {
        self.backend.cancel(&mut self.table, token);
    }

    /// Flushes submissions and collects completions, sleeping up to `timeout` (None: until
    /// something happens).
    ///
    /// # Errors
    ///
    /// When the backend's wait fails for a reason that will not pass (transient errors are
    /// retried by the backends): the driver then records the [`ParkFailure`], fails the ops it
    /// safely can, and later parks wait without the backend (see `failed.rs`). Only the park
    /// that fails returns the error; [`failure`](Self::failure) keeps it.
    pub fn park(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        // What the pool posted since the last park is taken first, and the park then does not
        // sleep: a post made while the loop's wake-up was still marked pending (its eventfd
        // count already consumed) wakes nothing, so it must not wait for the next wake-up.
        let timeout = if self.pool_calls.collect(&mut self.table) {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        if self.failed.is_some() {
            failed::park_on_eventfd(&self.unparker, timeout);
            self.backend.collect_after_failure(&mut self.table);
            self.pool_calls.collect(&mut self.table);
            return Ok(());
        }
        let result = self.backend.park(&mut self.table, timeout);
        self.pool_calls.collect(&mut self.table);
        let Err(e) = result else {
            return Ok(());
        };
        let failure = ParkFailure::new(&self.backend.wait_call(), &e);
        failed::prepare_eventfd(self.unparker.fd());
        self.backend.fail_waiting(&mut self.table, failure.errno);
        let err = failure.to_io_error();
        self.failed = Some(failure);
        Err(err)
    }

    /// Why the backend's wait failed for good, if it did.
    pub fn failure(&self) -> Option<&ParkFailure> {
        self.failed.as_ref()
    }

    /// Keeps `fd` registered with the readiness backend until [`unpin_fd`](Self::unpin_fd),
    /// which the owner must call before closing it (epoll; nothing to do on io_uring).
    pub fn pin_fd(&mut self, fd: std::os::fd::RawFd) -> io::Result<()> {
        self.backend.pin_fd(fd)
    }

    /// Undoes [`pin_fd`](Self::pin_fd); call before closing `fd`.
    pub fn unpin_fd(&mut self, fd: std::os::fd::RawFd) {
        self.backend.unpin_fd(fd);
    }

    /// Whether the io_uring backend runs (possibly wrapped by the fault injector).
    pub fn is_uring(&self) -> bool {
        self.backend.kind() == BackendKind::IoUring
    }

    /// Registers a provided-buffer ring of `len` descriptors (a power of two). `Ok(None)`
    /// when the backend has none (epoll, or an old kernel): buffers then come from user space.
    pub fn register_buf_ring(&mut self, len: u16) -> io::Result<Option<buf_ring::KernelBufRing>> {
        if self.closed {
            return Ok(None);
        }
        self.backend.register_buf_ring(len, self.id)
    }

    /// The kernel's head of buffer ring `bgid` (io_uring; asked of the kernel on Linux 6.8+,
    /// counted from completions before).
    pub fn buf_ring_head(&self, bgid: u16) -> io::Result<u16> {
        self.backend.buf_ring_head(bgid)
    }

    /// Unregisters a ring from [`register_buf_ring`](Self::register_buf_ring).
    pub fn unregister_buf_ring(&mut self, bgid: u16) {
        self.backend.unregister_buf_ring(bgid);
    }

    /// Ops the backend owns, orphans included, and those on the pool for a missing opcode.
    pub fn inflight(&self) -> usize {
        self.table.len()
    }

    /// Faults the injector made so far (0 without it).
    pub fn faults_injected(&self) -> u64 {
        self.backend.faults_injected()
    }

    /// Kernel entries so far (`io_uring_enter` or `epoll_wait` calls).
    pub fn kernel_enters(&self) -> u64 {
        self.backend.kernel_enters()
    }

    pub fn ops_submitted(&self) -> u64 {
        self.ops_submitted
    }

    /// Ops performed at once on io_uring ([`Start::AtOnce`]).
    pub fn ops_at_once(&self) -> u64 {
        self.ops_at_once
    }

    /// Cancels every op and waits for their completions; later submissions fail at once.
    pub fn shutdown(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        // The ops are cancelled by the shutdown: each reports ECANCELED (what adopters and
        // `Op::cancel` callers look for), never ETIMEDOUT for an op that had a deadline.
        for token in self.table.pending_tokens() {
            self.table.request_cancel(token);
        }
        // The ops on the pool for a missing opcode cannot be cancelled: waited for first, so
        // that the backend's shutdown, which waits for every op in the table, finds them done
        // (a job not started within the grace is dropped by the pool's own shutdown, never
        // run; the backend's shutdown then leaks what the op holds).
        self.pool_calls.drain(&mut self.table, self.shutdown_grace);
        self.backend.shutdown(&mut self.table, self.shutdown_grace);
    }
}
