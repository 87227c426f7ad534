//! The backend contract: what a backend does for the driver, and nothing the driver knows
//! about sockets or files.
//!
//! A backend takes ops described by [`Describe`] (each op owns both its SQE and its readiness
//! syscall) and posts their results to the driver's [`OpTable`]. io_uring ([`super::uring`])
//! hands them to the kernel; epoll ([`super::epoll`]) performs them when their fd is ready;
//! the fault injector ([`super::faults`]) wraps either and perturbs it the ways the kernel may.
//! The driver ([`super::Driver`]) owns the table, the shutdown and failure policy, and the
//! bookkeeping every backend shares; it holds its backend as a `Box<dyn Proactor>` and never
//! asks which one it is.
//!
//! # What every backend guarantees
//!
//! * Each op submitted gets exactly one final completion (`IORING_CQE_F_MORE` clear) in the
//!   table, whether it ran, failed, was cancelled or timed out; until then the table owns its
//!   memory, and the backend may use it.
//! * [`cancel`](Proactor::cancel) never completes an op by itself: the op's own completion
//!   carries the outcome, which may be success if the op won the race.
//! * [`park`](Proactor::park) retries transient errors itself; an error it returns is for good.
//! * [`shutdown`](Proactor::shutdown) returns only when every op has completed or `grace` has
//!   passed; what is left then is leaked by the table, never freed.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::squeue;

use super::Describe;
use super::buf_ring::KernelBufRing;
use super::select::BackendKind;
use super::syscall::Syscall;
use super::token::{CompletionToken, OpTable};

/// Which half of an op a backend runs (see [`Describe`]): the driver builds only that one,
/// where the op's type is known, so an op's code inlines into the submit path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    /// The op's SQE (io_uring).
    Sqe,
    /// The op's readiness half (epoll).
    Readiness,
}

/// An op to start, as the driver hands it to the backend: its token (already in the table),
/// the half the backend runs, and how it is to run.
pub struct Submission {
    pub token: CompletionToken,
    pub work: Work,
    /// The op posts a stream of completions (`IORING_CQE_F_MORE`) rather than one.
    pub multishot: bool,
    /// The op completes with `ETIMEDOUT` if it has not finished by then.
    pub deadline: Option<Duration>,
    /// The submitting task's budget is spent: the op must not complete inside `submit`.
    pub defer: bool,
}

/// The half of an op a backend runs.
pub enum Work {
    /// Its SQE, whose `user_data` the driver already set to the op's token (where the entry
    /// is built, so it is not copied again to set it), and the provided-buffer group it selects
    /// from, if any.
    Sqe {
        entry: squeue::Entry,
        buf_group: Option<u16>,
    },
    /// Its readiness half.
    Readiness(Syscall),
}

/// A perturbation the fault injector asks a backend to make inside itself, where only the
/// backend can (see [`Proactor::inject`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inject {
    /// The next kernel wait is interrupted (`EINTR`) before it waits.
    WaitInterrupted,
    /// The next submission finds the kernel out of room (`EAGAIN`/`EBUSY`): io_uring reaps and
    /// retries.
    SubmitBusy,
    /// Report readiness that is not there (epoll): ops waiting on `fd` are tried again.
    SpuriousReadiness { pick: u64 },
}

/// A backend: io_uring, epoll, or a wrapper around one of them.
pub trait Proactor {
    /// The real backend underneath (a wrapper reports the backend it wraps).
    fn kind(&self) -> BackendKind;

    /// The half of an op this backend runs.
    fn half(&self) -> Half;

    /// Starts an op (see [`Submission`]).
    fn submit(&mut self, table: &mut OpTable, op: Submission);

    /// Whether [`prepare`](Self::prepare) must see each op before it is built (a wrapper that
    /// changes ops, like the fault injector); asked once, when the driver is built.
    fn prepares(&self) -> bool {
        false
    }

    /// Sees `op` before its half is built (only if [`prepares`](Self::prepares)): it may
    /// change it ([`Describe::limit`]), or complete `token` itself and return `false`, and the
    /// op is then not submitted.
    fn prepare(
        &mut self,
        _table: &mut OpTable,
        _token: CompletionToken,
        _op: &mut dyn Describe,
    ) -> bool {
        true
    }

    /// Whether the backend can run ops of io_uring opcode `code` (the driver runs the others'
    /// readiness half, blocking, on the pool); asked for every opcode once, when the driver is
    /// built.
    fn has_op(&self, _code: u8) -> bool {
        true
    }

    /// Asks for `token`'s op to be cancelled; its completion still arrives and carries the
    /// outcome (`ECANCELED`, or its result if it finished first).
    fn cancel(&mut self, table: &mut OpTable, token: CompletionToken);

    /// Flushes submissions and collects completions into `table`, sleeping up to `timeout`
    /// (`None`: until something happens) when there is nothing to collect.
    ///
    /// # Errors
    ///
    /// When the wait fails for a reason that will not pass; transient errors are retried.
    fn park(&mut self, table: &mut OpTable, timeout: Option<Duration>) -> io::Result<()>;

    /// Cancels every op and waits up to `grace` for their completions.
    fn shutdown(&mut self, table: &mut OpTable, grace: Duration);

    /// Kernel entries so far (`io_uring_enter` or `epoll_wait` calls).
    fn kernel_enters(&self) -> u64;

    /// The call [`park`](Self::park) waits in and its descriptor, for error messages.
    fn wait_call(&self) -> String;

    /// The wait failed for good: fail every op whose memory the kernel does not hold with
    /// `errno`. Ops the kernel holds are left pending (their buffers stay with the table).
    fn fail_waiting(&mut self, _table: &mut OpTable, _errno: i32) {}

    /// A park after the wait failed: collect what can still complete without the wait
    /// (results posted by the blocking pool).
    fn collect_after_failure(&mut self, _table: &mut OpTable) {}

    /// Whether a cancel of `token`'s op now races its completion (the kernel holds the op);
    /// `false` where the cancel takes effect at once (an op still queued in user space).
    fn cancel_may_race(&self, _table: &OpTable, _token: CompletionToken) -> bool {
        false
    }

    /// Whether an op this backend cancelled without being asked was never started, so it may
    /// be submitted again (io_uring's io-wq; see `Driver::poll_op`).
    fn unasked_cancel_is_retryable(&self) -> bool {
        false
    }

    /// Keeps `fd` registered until [`unpin_fd`](Self::unpin_fd) (readiness backends).
    ///
    /// # Errors
    ///
    /// The backend could not register `fd`.
    fn pin_fd(&mut self, _fd: RawFd) -> io::Result<()> {
        Ok(())
    }

    /// Undoes [`pin_fd`](Self::pin_fd); called before `fd` is closed.
    fn unpin_fd(&mut self, _fd: RawFd) {}

    /// Registers a provided-buffer ring of `len` descriptors; `Ok(None)` where the backend has
    /// none (buffers then come from user space).
    ///
    /// # Errors
    ///
    /// The kernel refused the registration for a reason other than not supporting it.
    fn register_buf_ring(
        &mut self,
        _len: u16,
        _driver_id: u64,
    ) -> io::Result<Option<KernelBufRing>> {
        Ok(None)
    }

    /// The kernel's head of buffer ring `bgid`.
    ///
    /// # Errors
    ///
    /// `EINVAL` where the backend has no buffer rings.
    fn buf_ring_head(&self, _bgid: u16) -> io::Result<u16> {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }

    /// Unregisters a ring from [`register_buf_ring`](Self::register_buf_ring).
    fn unregister_buf_ring(&mut self, _bgid: u16) {}

    /// Makes the perturbation `what` happen inside the backend; `false` where this backend has
    /// no such thing (the injector then does not count it).
    fn inject(&mut self, _table: &mut OpTable, _what: Inject) -> bool {
        false
    }

    /// Faults injected so far, by a wrapper that injects them (0 for a real backend).
    fn faults_injected(&self) -> u64 {
        0
    }
}
