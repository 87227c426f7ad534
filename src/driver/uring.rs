//! The io_uring backend.
//!
//! One ring per loop thread. Ops queue SQEs during a loop tick in a local queue; [`Uring::park`]
//! moves them into the SQ and hands them all to the kernel in one `io_uring_enter`, waiting
//! (with the next timer deadline as timeout) when the loop has nothing else to do. Every
//! `io_uring_enter` goes through [`Uring::enter`], the one place where `EINTR`, `EBUSY` and
//! `EAGAIN` are handled.
//!
//! * Cancelling before submission: an op dropped or cancelled while its SQE is still in the
//!   local queue is removed from it and completes with `ECANCELED` — it never reaches the
//!   kernel, so a read dropped in the tick that started it cannot consume data.
//! * SQ full: [`Uring::flush`] enters the kernel to make room and goes on; a linked pair
//!   (op + `LINK_TIMEOUT`) is never split across two submissions.
//! * CQ overflow: with `IORING_FEAT_NODROP` the kernel keeps overflowed CQEs and sets
//!   `IORING_SQ_CQ_OVERFLOW`; [`Uring::reap`] drains the CQ and enters again until the flag
//!   clears, so nothing is lost.
//! * Waiting coalesces completions (Linux 6.12+, [`Coalesce`]): under load a wait asks for
//!   several completions, bounded by a short `min_wait`, so one enter serves a batch.
//! * Deferred task-work (`DEFER_TASKRUN`) only runs on an enter with `GETEVENTS`; when the loop
//!   is busy and has ops in flight, it enters every [`BUSY_ENTER_INTERVAL`] ticks so I/O is not
//!   starved by ready tasks.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use io_uring::types::{CancelBuilder, Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, opcode, squeue};

use super::buf_ring::{KernelBufRing, Region};
use super::coalesce::Coalesce;
use super::proactor::{Half, Inject, Proactor, Submission, Work};
use super::select::BackendKind;
use super::syscall::F_BUFFER;
use super::token::{CompletionToken, F_MORE, OpTable};
use super::wake::Unparker;

/// Busy ticks between two enters that only collect completions.
pub const BUSY_ENTER_INTERVAL: u32 = 32;

pub struct Uring {
    ring: IoUring,
    wake_fd: i32,
    /// Target of the in-flight read on the wake eventfd; owned by the kernel while in flight.
    wake_buf: Box<u64>,
    wake_in_flight: bool,
    /// Link-timeout specs the kernel reads at submission; kept until everything queued has
    /// been submitted. Boxed so their addresses survive the Vec growing.
    #[allow(clippy::vec_box)]
    timespecs: Vec<Box<Timespec>>,
    /// SQEs of this tick not yet in the SQ, each flagged when linked to the next one.
    pending: Vec<(squeue::Entry, bool)>,
    /// Bumped each time `pending` moves into the SQ; an op's table note is the epoch its SQE
    /// was queued in, so "still in `pending`" is one comparison.
    epoch: u32,
    busy_ticks: u32,
    pub enters: u64,
    /// Registered provided-buffer rings; their memory is unmapped only after unregistering.
    buf_rings: Vec<Rc<Region>>,
    /// Ops that select buffers (user_data → group id), until their final completion: each
    /// completion carrying a buffer moves that ring's counted head (see `buf_ring`).
    buffer_ops: HashMap<u64, u16>,
    /// Whether the kernel reports a ring's head (`IORING_REGISTER_PBUF_STATUS`, 6.8+), asked
    /// when the first ring is registered; `Some(false)`: heads are counted from completions.
    pbuf_status: Option<bool>,
    /// `IORING_REGISTER_PBUF_RING` failed once (old kernel), or the kernel has no multishot
    /// receive to consume a kernel ring (before 6.0): serve buffers from user space.
    buf_ring_unsupported: bool,
    /// How many completions a blocking wait asks for (always one without
    /// `IORING_FEAT_MIN_TIMEOUT`).
    coalesce: Coalesce,
    /// The last enter was a blocking wait: the next reap reports what it found to `coalesce`.
    observe_wait: bool,
    /// An errno the fault injector asked the next enter to return instead of entering
    /// (see [`Proactor::inject`]).
    injected: Option<i32>,
}

enum Wait {
    /// Submit and collect what is ready, without blocking.
    No,
    /// Block until a completion arrives or the timeout passes.
    For(Option<Duration>),
}

impl Uring {
    pub fn new(ring: IoUring, unparker: &Unparker, coalesce: Coalesce) -> Self {
        let coalesce = if ring.params().is_feature_min_timeout() {
            coalesce
        } else {
            Coalesce::off()
        };
        Uring {
            ring,
            wake_fd: unparker.fd(),
            wake_buf: Box::new(0),
            wake_in_flight: false,
            timespecs: Vec::new(),
            pending: Vec::with_capacity(64),
            epoch: 0,
            busy_ticks: 0,
            enters: 0,
            buf_rings: Vec::new(),
            buffer_ops: HashMap::new(),
            pbuf_status: None,
            buf_ring_unsupported: false,
            coalesce,
            observe_wait: false,
            injected: None,
        }
    }

    /// Maps and registers a ring of `len` buffer descriptors. `Ok(None)`: the kernel has no
    /// provided-buffer rings (the caller serves buffers from user space instead).
    pub fn register_buf_ring(
        &mut self,
        len: u16,
        driver_id: u64,
    ) -> io::Result<Option<KernelBufRing>> {
        if self.buf_ring_unsupported {
            return Ok(None);
        }
        let bgid = (0..=u16::MAX)
            .find(|id| self.buf_rings.iter().all(|r| r.bgid != *id))
            .ok_or_else(|| io::Error::other("every buffer group id is in use"))?;
        let region = Region::map(bgid, len)?;
        // The region stays mapped until after `unregister_buf_ring` (or the ring's close).
        // SAFETY: the region is page-aligned memory for `len` descriptors, mapped throughout.
        let registered = unsafe {
            self.ring
                .submitter()
                .register_buf_ring_with_flags(region.addr(), len, bgid, 0)
        };
        match registered {
            Ok(()) => {
                if self.pbuf_status.is_none() {
                    // Asked once, of the first ring, before any op selects from it: where
                    // the kernel cannot say, every buffer must be counted from the start.
                    let known = self.ask_pbuf_status(bgid).is_ok();
                    self.pbuf_status = Some(known);
                }
                let region = Rc::new(region);
                self.buf_rings.push(region.clone());
                Ok(Some(KernelBufRing::new(region, len, driver_id)))
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {
                self.buf_ring_unsupported = true;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the kernel's ring runs ops of opcode `code` (see `select::ring_has_op`).
    #[inline]
    pub fn has_op(&self, code: u8) -> bool {
        super::select::ring_has_op(code)
    }

    /// The ring's descriptor (for messages).
    pub fn fd(&self) -> i32 {
        self.ring.as_raw_fd()
    }

    /// Records that the kernel lacks multishot receive (see `select::has_recv_multishot`).
    pub fn set_no_recv_multishot(&mut self) {
        self.buf_ring_unsupported = true;
    }

    /// Unregisters ring `bgid` and unmaps its memory.
    pub fn unregister_buf_ring(&mut self, bgid: u16) {
        let Some(i) = self.buf_rings.iter().position(|r| r.bgid == bgid) else {
            return;
        };
        if self.ring.submitter().unregister_buf_ring(bgid).is_ok() {
            drop(self.buf_rings.swap_remove(i));
        } else {
            // The kernel may still know the ring: keep its memory rather than unmap it.
            std::mem::forget(self.buf_rings.swap_remove(i));
        }
    }

    /// Counts the buffers the completions of op `token` carry against ring `bgid`, where the
    /// kernel cannot report a ring's head (before 6.8); a no-op where it can.
    #[inline]
    pub fn track_buffers(&mut self, token: CompletionToken, bgid: u16) {
        if self.pbuf_status == Some(false) {
            self.buffer_ops.insert(token.user_data(), bgid);
        }
    }

    /// The kernel's head of ring `bgid`: the descriptors from there to the tail are still
    /// available to it. Asked of the kernel (`IORING_REGISTER_PBUF_STATUS`, Linux 6.8+), else
    /// counted from completions (see `buf_ring`).
    pub fn buf_ring_head(&self, bgid: u16) -> io::Result<u16> {
        if self.pbuf_status == Some(false) {
            return self
                .buf_rings
                .iter()
                .find(|r| r.bgid == bgid)
                .map(|r| r.counted_head())
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT));
        }
        self.ask_pbuf_status(bgid)
    }

    /// `IORING_REGISTER_PBUF_STATUS`: the kernel's head of ring `bgid` (`EINVAL` before 6.8).
    fn ask_pbuf_status(&self, bgid: u16) -> io::Result<u16> {
        #[repr(C)]
        struct BufStatus {
            buf_group: u32,
            head: u32,
            resv: [u32; 8],
        }
        const IORING_REGISTER_PBUF_STATUS: libc::c_long = 26;
        let mut status = BufStatus {
            buf_group: u32::from(bgid),
            head: 0,
            resv: [0; 8],
        };
        // SAFETY: `status` is a valid io_uring_buf_status the kernel fills in; one argument.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                self.ring.as_raw_fd() as libc::c_long,
                IORING_REGISTER_PBUF_STATUS,
                &raw mut status,
                1 as libc::c_long,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(status.head as u16)
    }

    /// Queues one SQE, or a linked pair, in the local queue (flushing it first when it holds
    /// a full SQ's worth).
    #[inline]
    fn queue(&mut self, table: &mut OpTable, group: &[squeue::Entry]) {
        let capacity = self.ring.params().sq_entries() as usize;
        if self.pending.len() + group.len() > capacity
            && let Err(e) = self.flush(table)
        {
            // The kernel refuses submissions for a reason that will not pass (the ring is
            // gone): fail these ops rather than leave their tasks waiting forever.
            for entry in group {
                table.complete(
                    CompletionToken::from_user_data(entry.get_user_data()),
                    -e.raw_os_error().unwrap_or(libc::EIO),
                    0,
                );
            }
            return;
        }
        for (i, entry) in group.iter().enumerate() {
            self.pending.push((entry.clone(), i + 1 < group.len()));
        }
    }

    /// Moves the local queue into the SQ, entering the kernel whenever the SQ fills up.
    fn flush(&mut self, table: &mut OpTable) -> io::Result<()> {
        let mut done = 0;
        let result = loop {
            {
                let mut sq = self.ring.submission();
                while done < self.pending.len() {
                    let n = if self.pending[done].1 { 2 } else { 1 };
                    if sq.capacity() - sq.len() < n {
                        break;
                    }
                    for (entry, _) in &self.pending[done..done + n] {
                        // Every SQE's buffers are owned by the op table (or by this driver:
                        // wake read, timespecs) until its completion arrives.
                        // SAFETY: those buffers outlive the op; there is room (checked above).
                        unsafe { sq.push(entry).expect("SQ has room") };
                    }
                    done += n;
                }
            }
            if done == self.pending.len() {
                break Ok(());
            }
            if let Err(e) = self.enter(table, Wait::No) {
                break Err(e);
            }
        };
        if let Err(e) = &result {
            for (entry, _) in &self.pending[done..] {
                table.complete(
                    CompletionToken::from_user_data(entry.get_user_data()),
                    -e.raw_os_error().unwrap_or(libc::EIO),
                    0,
                );
            }
        }
        self.pending.clear();
        self.epoch = self.epoch.wrapping_add(1);
        result
    }

    #[inline]
    pub fn submit_entry(
        &mut self,
        table: &mut OpTable,
        token: CompletionToken,
        entry: &squeue::Entry,
        deadline: Option<Duration>,
    ) {
        match deadline {
            // By reference: the 64-byte entry is copied once, into the queue.
            None => self.queue(table, std::slice::from_ref(entry)),
            Some(d) => {
                let ts = Box::new(Timespec::from(d));
                let link = opcode::LinkTimeout::new(&*ts)
                    .build()
                    .user_data(CompletionToken::IGNORED);
                self.timespecs.push(ts);
                self.queue(table, &[entry.clone().flags(squeue::Flags::IO_LINK), link]);
            }
        }
        // After `queue`, which may have flushed: the SQE sits in this epoch's queue.
        table.set_note(token, i64::from(self.epoch));
    }

    /// Cancels an op: removed from the local queue if it is still there (it completes with
    /// `ECANCELED` and never reaches the kernel), else an `IORING_OP_ASYNC_CANCEL` is queued.
    pub fn cancel(&mut self, table: &mut OpTable, token: CompletionToken) {
        if self.queued_this_tick(table, token)
            && let Some(i) = self
                .pending
                .iter()
                .position(|(e, _)| e.get_user_data() == token.user_data())
        {
            let n = if self.pending[i].1 { 2 } else { 1 };
            self.pending.drain(i..i + n);
            self.buffer_ops.remove(&token.user_data());
            table.complete(token, -libc::ECANCELED, 0);
            return;
        }
        self.cancel_user_data(table, token.user_data());
    }

    /// Whether `token`'s SQE was queued in this epoch: it may still be in `pending`, not yet
    /// handed to the kernel.
    fn queued_this_tick(&self, table: &OpTable, token: CompletionToken) -> bool {
        table.note(token) == Some(i64::from(self.epoch))
    }

    fn cancel_user_data(&mut self, table: &mut OpTable, user_data: u64) {
        let entry = opcode::AsyncCancel::new(user_data)
            .build()
            .user_data(CompletionToken::IGNORED);
        self.queue(table, &[entry]);
    }

    fn arm_wake(&mut self, table: &mut OpTable) {
        if self.wake_in_flight {
            return;
        }
        let ptr: *mut u64 = &mut *self.wake_buf;
        let entry = opcode::Read::new(Fd(self.wake_fd), ptr.cast(), 8)
            .build()
            .user_data(CompletionToken::WAKE);
        self.queue(table, &[entry]);
        self.wake_in_flight = true;
    }

    /// Submits everything queued and collects completions, sleeping up to `timeout`
    /// (None = until something completes) when the loop has nothing else to do.
    pub fn park(&mut self, table: &mut OpTable, timeout: Option<Duration>) -> io::Result<()> {
        self.arm_wake(table);
        self.flush(table)?;
        let queued = self.ring.submission().len();
        let ready = !self.ring.completion().is_empty();
        let flags_need_enter = {
            let sq = self.ring.submission();
            sq.cq_overflow() || sq.taskrun()
        };
        if timeout == Some(Duration::ZERO) || ready {
            self.busy_ticks += 1;
            let busy_due = !table.is_empty() && self.busy_ticks >= BUSY_ENTER_INTERVAL;
            if queued > 0 || flags_need_enter || busy_due {
                self.enter(table, Wait::No)?;
            }
        } else {
            self.enter(table, Wait::For(timeout))?;
        }
        self.reap(table)
    }

    /// The one place that calls `io_uring_enter`.
    fn enter(&mut self, table: &mut OpTable, mut wait: Wait) -> io::Result<()> {
        const GETEVENTS: u32 = 1; // IORING_ENTER_GETEVENTS
        loop {
            let to_submit = self.ring.submission().len() as u32;
            self.enters += 1;
            self.busy_ticks = 0;
            let res = match wait {
                // The fault injector's errno, as if the kernel had returned it (nothing is
                // submitted; the SQEs wait in the SQ for the next enter).
                _ if self.injected.is_some() => Err(io::Error::from_raw_os_error(
                    self.injected.take().unwrap_or(0),
                )),
                // SAFETY: no extra argument is passed; flags are valid for this ring.
                Wait::No => unsafe {
                    self.ring
                        .submitter()
                        .enter::<libc::sigset_t>(to_submit, 0, GETEVENTS, None)
                },
                // A batch: wait for `target` completions, for `min_wait` at most, then for one.
                Wait::For(timeout) if self.coalesce.applies_to(timeout) => {
                    let ts = timeout.map(Timespec::from);
                    let mut args = SubmitArgs::new().min_wait_usec(self.coalesce.min_wait_usec());
                    if let Some(ts) = &ts {
                        args = args.timespec(ts);
                    }
                    self.ring
                        .submitter()
                        .submit_with_args(self.coalesce.target() as usize, &args)
                }
                // GETEVENTS with a minimum of one completion is a valid flag set for this ring.
                // SAFETY: no extra argument (null sigset) is passed to io_uring_enter.
                Wait::For(None) => unsafe {
                    self.ring
                        .submitter()
                        .enter::<libc::sigset_t>(to_submit, 1, GETEVENTS, None)
                },
                Wait::For(Some(d)) => {
                    let ts = Timespec::from(d);
                    let args = SubmitArgs::new().timespec(&ts);
                    self.ring.submitter().submit_with_args(1, &args)
                }
            };
            self.observe_wait = matches!(wait, Wait::For(_)) && self.coalesce.enabled();
            match res {
                Ok(_) => break,
                Err(e) => match e.raw_os_error() {
                    // The wait timed out, or a signal interrupted it: return to the loop,
                    // which recomputes its deadline before waiting again.
                    Some(libc::ETIME) | Some(libc::EINTR) => break,
                    // CQ overflow backlog (EBUSY) or no memory for requests (EAGAIN): make
                    // room by reaping, then retry without blocking.
                    Some(libc::EBUSY) | Some(libc::EAGAIN) => {
                        self.reap_cq(table);
                        wait = Wait::No;
                    }
                    _ => return Err(e),
                },
            }
        }
        if self.pending.is_empty() && self.ring.submission().is_empty() {
            self.timespecs.clear();
        }
        Ok(())
    }

    /// A completion for `user_data` arrived: if it carries a buffer of a tracked op, that
    /// ring's head moved; the op's final completion ends the tracking.
    fn count_buffer(
        buffer_ops: &mut HashMap<u64, u16>,
        buf_rings: &[Rc<Region>],
        user_data: u64,
        flags: u32,
    ) {
        if flags & F_BUFFER != 0
            && let Some(&bgid) = buffer_ops.get(&user_data)
            && let Some(region) = buf_rings.iter().find(|r| r.bgid == bgid)
        {
            region.buffer_taken();
        }
        if flags & F_MORE == 0 {
            buffer_ops.remove(&user_data);
        }
    }

    fn reap_cq(&mut self, table: &mut OpTable) {
        // After a blocking wait, count the ops that completed: consecutive completions of one
        // multishot op (a stream's chunks) are one source, and batching a single source only
        // delays it.
        let observe = std::mem::take(&mut self.observe_wait);
        let (mut sources, mut last) = (0usize, None);
        for cqe in self.ring.completion() {
            if observe && last != Some(cqe.user_data()) {
                sources += 1;
                last = Some(cqe.user_data());
            }
            match cqe.user_data() {
                CompletionToken::IGNORED => {}
                CompletionToken::WAKE => self.wake_in_flight = false,
                data => {
                    if !self.buffer_ops.is_empty() {
                        Self::count_buffer(
                            &mut self.buffer_ops,
                            &self.buf_rings,
                            data,
                            cqe.flags(),
                        );
                    }
                    table.complete(
                        CompletionToken::from_user_data(data),
                        cqe.result(),
                        cqe.flags(),
                    )
                }
            }
        }
        if observe {
            self.coalesce.observe(sources);
        }
    }

    /// Drains the CQ, and the kernel's overflow list behind it.
    fn reap(&mut self, table: &mut OpTable) -> io::Result<()> {
        loop {
            self.reap_cq(table);
            if !self.ring.submission().cq_overflow() {
                return Ok(());
            }
            self.enter(table, Wait::No)?;
        }
    }

    /// Cancels every op the kernel owns and waits up to `grace` for their completions, so their
    /// resources are released exactly once; what does not finish in time is leaked, never freed.
    pub fn shutdown(&mut self, table: &mut OpTable, grace: Duration) {
        let cancel_all = opcode::AsyncCancel2::new(CancelBuilder::any())
            .build()
            .user_data(CompletionToken::IGNORED);
        self.queue(table, &[cancel_all]);
        for token in table.pending_tokens() {
            self.cancel(table, token);
        }
        if self.wake_in_flight {
            self.cancel_user_data(table, CompletionToken::WAKE);
        }
        let started = std::time::Instant::now();
        while (table.live() > 0 || self.wake_in_flight) && started.elapsed() < grace {
            if self.flush(table).is_err() {
                break;
            }
            if self
                .enter(table, Wait::For(Some(Duration::from_millis(50))))
                .is_err()
            {
                break;
            }
            if self.reap(table).is_err() {
                break;
            }
        }
        table.leak_remaining();
        if self.wake_in_flight {
            // The kernel may still write here: leak rather than free.
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new(0)));
        }
    }
}

impl Proactor for Uring {
    fn kind(&self) -> BackendKind {
        BackendKind::IoUring
    }

    fn half(&self) -> Half {
        Half::Sqe
    }

    #[inline]
    fn submit(&mut self, table: &mut OpTable, op: Submission) {
        let Work::Sqe {
            ref entry,
            buf_group,
        } = op.work
        else {
            // The driver builds the half `half()` names; anything else fails loudly but safely.
            return table.complete(op.token, -libc::EINVAL, 0);
        };
        self.submit_entry(table, op.token, entry, op.deadline);
        if let Some(bgid) = buf_group {
            self.track_buffers(op.token, bgid);
        }
    }

    fn cancel(&mut self, table: &mut OpTable, token: CompletionToken) {
        Uring::cancel(self, table, token);
    }

    fn park(&mut self, table: &mut OpTable, timeout: Option<Duration>) -> io::Result<()> {
        Uring::park(self, table, timeout)
    }

    fn shutdown(&mut self, table: &mut OpTable, grace: Duration) {
        Uring::shutdown(self, table, grace);
    }

    fn kernel_enters(&self) -> u64 {
        self.enters
    }

    fn wait_call(&self) -> String {
        format!("io_uring_enter on ring fd {}", self.fd())
    }

    fn unasked_cancel_is_retryable(&self) -> bool {
        true
    }

    #[inline]
    fn has_op(&self, code: u8) -> bool {
        Uring::has_op(self, code)
    }

    fn cancel_may_race(&self, table: &OpTable, token: CompletionToken) -> bool {
        table.is_pending(token) && !self.queued_this_tick(table, token)
    }

    fn register_buf_ring(&mut self, len: u16, driver_id: u64) -> io::Result<Option<KernelBufRing>> {
        Uring::register_buf_ring(self, len, driver_id)
    }

    fn buf_ring_head(&self, bgid: u16) -> io::Result<u16> {
        Uring::buf_ring_head(self, bgid)
    }

    fn unregister_buf_ring(&mut self, bgid: u16) {
        Uring::unregister_buf_ring(self, bgid);
    }

    fn inject(&mut self, _table: &mut OpTable, what: Inject) -> bool {
        match what {
            Inject::WaitInterrupted => self.injected = Some(libc::EINTR),
            Inject::SubmitBusy => self.injected = Some(libc::EBUSY),
            Inject::SpuriousReadiness { .. } => return false,
        }
        true
    }
}
