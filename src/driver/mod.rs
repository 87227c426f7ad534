//! The driver: rings, completion tokens and wakers; nothing about tasks or sockets.
//!
//! # The backend contract
//!
//! Both backends take the same requests from the op layer and post results to the same
//! [`OpTable`]:
//!
//! * `submit(token, op, deadline, defer)` — start an op. io_uring queues its SQE (plus a
//!   linked timeout when there is a deadline) in the tick's local queue; epoll tries its
//!   [`Syscall`] at once (unless `defer`: the task's budget is spent), parks it on its fd's
//!   queue until ready, or hands it to the blocking pool when the fd cannot be polled.
//! * `cancel(token)` — an op whose SQE is still in the local queue is removed from it (it
//!   never reaches the kernel); otherwise io_uring queues `IORING_OP_ASYNC_CANCEL`. epoll
//!   completes a waiting op with `ECANCELED` at once. Either way the op's own completion is
//!   what frees its slot.
//! * `park(timeout)` — flush submissions and collect completions, sleeping up to `timeout`
//!   when asked; a wake-up from another thread ([`Unparker`]) ends the sleep.
//!   Transient errors are retried inside the backend; a wait that fails for good leaves the
//!   driver running without its backend (see `failed.rs`), never panicking.
//! * `shutdown()` — cancel everything and wait for the completions, so that no buffer is
//!   freed while the kernel may still use it.
//!
//! Completions are written into the [`OpTable`], which wakes the parked task.
//!
//! The driver lives in a [`DriverCell`]: work asked of it while it is borrowed (an op dropped
//! by a waker or a `Drop` the driver runs) waits there and runs when the borrow ends.

pub(crate) mod buf_ring;
mod cell;
mod coalesce;
pub(crate) mod context;
mod epoll;
mod failed;
pub use coalesce::{DEFAULT_MAX_BATCH, DEFAULT_MAX_DELAY};
mod fs_call;
mod select;
pub(crate) mod signal;
mod syscall;
mod token;
mod uring;
mod wake;

use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Waker;
use std::time::Duration;

pub use cell::DriverCell;
pub use failed::ParkFailure;
pub use fs_call::FsCall;
pub use select::{Backend, BackendKind, BackendReport, ring_has_op};
pub use syscall::{BUFFER_SHIFT, BufferSource, F_BUFFER, Syscall};
pub use token::{Completion, CompletionToken, Orphan};
pub use wake::Unparker;

use crate::blocking::Pool;
use token::OpTable;

/// How an op describes itself to each backend.
pub trait Describe {
    /// The SQE for io_uring (its `user_data` is set by the driver).
    fn uring_entry(&mut self) -> io_uring::squeue::Entry;
    /// The syscall for epoll and the blocking pool.
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
}

enum Inner {
    // Boxed: the ring state is twice the epoll state, and the driver is moved at build time.
    Uring(Box<uring::Uring>),
    Epoll(epoll::Epoll),
}

/// How many times in a row an op the kernel cancelled unasked is submitted again before its
/// `ECANCELED` is returned (see [`Driver::poll_op`]); the bound keeps a kernel that refuses
/// the work for good (no io-wq worker can be created) from holding the op forever.
pub const MAX_UNASKED_CANCEL_RESUBMITS: u32 = 16;

/// One loop thread's driver.
pub struct Driver {
    table: OpTable,
    inner: Inner,
    unparker: Arc<Unparker>,
    ops_submitted: u64,
    closed: bool,
    /// The backend's wait failed for good: the loop runs on without it (see `failed.rs`).
    failed: Option<ParkFailure>,
    shutdown_grace: Duration,
    id: u64,
    /// Ops of an io_uring loop that run on the blocking pool because the ring lacks their
    /// opcode (see [`PoolOp`]); epoll's pool ops have table slots instead.
    pool_ops: Arc<AtomicUsize>,
}

/// An op that stands in for a ring op on the blocking pool (its opcode is missing): counted in
/// [`Driver::inflight`] and waited for by [`Driver::shutdown`] like the ring op it replaces,
/// until dropped. The job holds it, so drop it after everything else the job holds (the
/// descriptor an op keeps open).
pub struct PoolOp {
    count: Arc<AtomicUsize>,
    unparker: Arc<Unparker>,
}

impl Drop for PoolOp {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
        // A shutdown waiting for the pool's ops sleeps on the unparker.
        self.unparker.unpark();
    }
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
}

impl Config {
    fn coalesce(&self) -> coalesce::Coalesce {
        coalesce::Coalesce::new(self.max_batch, self.max_delay)
    }
}

impl Driver {
    /// Builds the driver the config asks for, probing io_uring when needed.
    pub fn new(config: &Config, pool: Pool) -> io::Result<(Driver, BackendReport)> {
        let (requested, source) = match config.backend {
            Backend::Auto => match select::backend_from_env()? {
                Some(b) => (b, "RINGLOOP_BACKEND"),
                None => (Backend::Auto, "builder"),
            },
            b => (b, "builder"),
        };
        let id = NEXT_DRIVER_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut report = BackendReport {
            backend: BackendKind::Epoll,
            requested,
            source,
            fallback_reason: None,
            errno: None,
            features: Vec::new(),
        };
        let skip_probe = match (requested, select::AUTO_SKIPS_PROBE) {
            (Backend::Auto, Some(why)) => {
                report.fallback_reason = Some(why.to_owned());
                true
            }
            _ => false,
        };
        if requested != Backend::Epoll && !skip_probe {
            match select::probe_uring(config.entries, config.cq_entries) {
                Ok((ring, features)) => {
                    let unparker = Arc::new(Unparker::new(false)?);
                    report.backend = BackendKind::IoUring;
                    report.features = features;
                    let mut uring = Box::new(uring::Uring::new(ring, &unparker, config.coalesce()));
                    if report.features.contains(&("recv_multishot", false)) {
                        uring.set_no_recv_multishot();
                    }
                    let inner = Inner::Uring(uring);
                    let driver = Driver::with(inner, unparker, id, config.shutdown_grace);
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
        let inner = Inner::Epoll(epoll::Epoll::new(unparker.clone(), pool)?);
        let driver = Driver::with(inner, unparker, id, config.shutdown_grace);
        Ok((driver, report))
    }

    fn with(inner: Inner, unparker: Arc<Unparker>, id: u64, shutdown_grace: Duration) -> Driver {
        Driver {
            table: OpTable::new(),
            inner,
            unparker,
            ops_submitted: 0,
            closed: false,
            failed: None,
            shutdown_grace,
            id,
            pool_ops: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Distinguishes drivers that lived on one thread at different times.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn unparker(&self) -> &Arc<Unparker> {
        &self.unparker
    }

    /// Starts an op; the returned token is what its future polls. `defer`: the submitting
    /// task's cooperative budget is spent, so the op must not complete inside this poll (only
    /// the epoll backend ever completes an op at submission).
    #[inline]
    pub fn submit<D: Describe + ?Sized>(
        &mut self,
        op: &mut D,
        deadline: Option<Duration>,
        defer: bool,
    ) -> CompletionToken {
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
        match &mut self.inner {
            Inner::Uring(u) => {
                u.submit(&mut self.table, token, op.uring_entry(), deadline);
                if let Some(bgid) = op.buf_group() {
                    u.track_buffers(token, bgid);
                }
            }
            Inner::Epoll(e) => e.submit(
                &mut self.table,
                token,
                op.syscall(),
                multishot,
                deadline,
                defer,
            ),
        }
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
    pub fn poll_op<D: Describe + ?Sized>(
        &mut self,
        token: &mut CompletionToken,
        op: &mut D,
        resubmits: &mut u32,
        waker: &Waker,
    ) -> Option<Completion> {
        if matches!(self.inner, Inner::Uring(_))
            && !self.closed
            && self.failed.is_none()
            && *resubmits < MAX_UNASKED_CANCEL_RESUBMITS
            && !op.multishot()
            && self.table.cancelled_unasked(*token)
        {
            *resubmits += 1;
            self.table.discard_completed(*token);
            *token = self.submit(op, None, false);
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
        match &mut self.inner {
            Inner::Uring(u) => u.cancel(&mut self.table, token),
            Inner::Epoll(e) => e.cancel(&mut self.table, token),
        }
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
        if self.failed.is_some() {
            failed::park_on_eventfd(&self.unparker, timeout);
            if let Inner::Epoll(e) = &mut self.inner {
                e.collect_after_failure(&mut self.table);
            }
            return Ok(());
        }
        let result = match &mut self.inner {
            Inner::Uring(u) => u.park(&mut self.table, timeout),
            Inner::Epoll(e) => e.park(&mut self.table, timeout),
        };
        let Err(e) = result else { return Ok(()) };
        let failure = match &mut self.inner {
            Inner::Uring(u) => {
                ParkFailure::new(&format!("io_uring_enter on ring fd {}", u.fd()), &e)
            }
            Inner::Epoll(ep) => {
                ParkFailure::new(&format!("epoll_wait on epoll fd {}", ep.fd()), &e)
            }
        };
        failed::prepare_eventfd(self.unparker.fd());
        if let Inner::Epoll(ep) = &mut self.inner {
            ep.fail_waiting(&mut self.table, failure.errno);
        }
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
        match &mut self.inner {
            Inner::Epoll(e) => e.pin(fd),
            Inner::Uring(_) => Ok(()),
        }
    }

    /// Undoes [`pin_fd`](Self::pin_fd); call before closing `fd`.
    pub fn unpin_fd(&mut self, fd: std::os::fd::RawFd) {
        if let Inner::Epoll(e) = &mut self.inner {
            e.unpin(fd);
        }
    }

    /// Whether the io_uring backend runs.
    pub fn is_uring(&self) -> bool {
        matches!(self.inner, Inner::Uring(_))
    }

    /// Registers a provided-buffer ring of `len` descriptors (a power of two). `Ok(None)`
    /// when the backend has none (epoll, or an old kernel): buffers then come from user space.
    pub fn register_buf_ring(&mut self, len: u16) -> io::Result<Option<buf_ring::KernelBufRing>> {
        match &mut self.inner {
            Inner::Uring(u) if !self.closed => u.register_buf_ring(len, self.id),
            _ => Ok(None),
        }
    }

    /// The kernel's head of buffer ring `bgid` (io_uring; asked of the kernel on Linux 6.8+,
    /// counted from completions before).
    pub fn buf_ring_head(&self, bgid: u16) -> io::Result<u16> {
        match &self.inner {
            Inner::Uring(u) => u.buf_ring_head(bgid),
            Inner::Epoll(_) => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }

    /// Unregisters a ring from [`register_buf_ring`](Self::register_buf_ring).
    pub fn unregister_buf_ring(&mut self, bgid: u16) {
        if let Inner::Uring(u) = &mut self.inner {
            u.unregister_buf_ring(bgid);
        }
    }

    /// Ops the backend owns, orphans included, and the pool's stand-ins for missing opcodes.
    pub fn inflight(&self) -> usize {
        self.table.len() + self.pool_ops.load(Ordering::Acquire)
    }

    /// Counts an op that runs on the blocking pool in place of a ring op until the returned
    /// guard is dropped.
    pub fn pool_op(&self) -> PoolOp {
        self.pool_ops.fetch_add(1, Ordering::AcqRel);
        PoolOp {
            count: self.pool_ops.clone(),
            unparker: self.unparker.clone(),
        }
    }

    /// Kernel entries so far (`io_uring_enter` or `epoll_wait` calls).
    pub fn kernel_enters(&self) -> u64 {
        match &self.inner {
            Inner::Uring(u) => u.enters,
            Inner::Epoll(e) => e.waits,
        }
    }

    pub fn ops_submitted(&self) -> u64 {
        self.ops_submitted
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
        match &mut self.inner {
            Inner::Uring(u) => u.shutdown(&mut self.table, self.shutdown_grace),
            Inner::Epoll(e) => e.shutdown(&mut self.table, self.shutdown_grace),
        }
        // The pool's stand-ins for missing opcodes get the same grace as the ring's ops (a
        // job not started by then is dropped by the pool's own shutdown, never run).
        let started = std::time::Instant::now();
        while self.pool_ops.load(Ordering::Acquire) > 0 {
            let Some(left) = self.shutdown_grace.checked_sub(started.elapsed()) else {
                break;
            };
            failed::park_on_eventfd(&self.unparker, Some(left.min(Duration::from_millis(50))));
            self.unparker.take_notification();
        }
    }
}
