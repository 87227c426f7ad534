//! The epoll backend: completions emulated from readiness.
//!
//! An op arrives as a [`Syscall`], which says what it waits for; the backend never knows which
//! call it is. Calls that wait for nothing (nop, close) run at once; calls that may block
//! (filesystem calls) run on the blocking pool ([`PoolCalls`]). A call that waits for its fd is
//! first tried without blocking (a read or write with `RWF_NOWAIT`, which never blocks whatever
//! the fd's `O_NONBLOCK` flag, so ringloop never changes flags on a descriptor it was lent); on
//! `EAGAIN` the op waits in its fd's FIFO queue until epoll reports the fd ready, then is tried
//! again. Descriptors epoll cannot poll (regular files: `EPERM`) go to the blocking pool too. A
//! pollable fd whose kernel refuses `RWF_NOWAIT` (`EOPNOTSUPP`: pipes and sockets before Linux
//! 6.x, 6.1 among them) never goes to the pool, where a read nobody writes would block a pool
//! thread forever, uncancellable: its queue remembers a [`NoWaitFallback`] (probed once, on the
//! first `EOPNOTSUPP`) and has the op's reads and writes performed that way, so on a kernel
//! with `RWF_NOWAIT` the fast path is unchanged.
//!
//! Registration is edge-triggered (`EPOLLET`) for read and write at once. A descriptor number can
//! be closed and reused behind our back, so an fd queue that goes idle is re-registered
//! (`EPOLL_CTL_ADD`; `EEXIST` means the same open file) the next time an op must wait on it.
//! Descriptors whose owner tells us when they close — ringloop's own sockets, through
//! [`Epoll::pin`] and [`Epoll::unpin`] — stay registered for their whole life instead, saving
//! that `epoll_ctl` on every wait.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pool_calls::PoolCalls;
use super::proactor::{Half, Inject, Proactor, Submission, Work};
use super::select::BackendKind;
use super::syscall::{Direction, Mode, NoWaitFallback, Performed, Syscall, Wait};
use super::token::{CompletionToken, F_MORE, OpTable};
use super::wake::Unparker;
use crate::blocking::Pool;

const WAKE_KEY: u64 = u64::MAX;
/// Busy ticks between two non-blocking `epoll_wait`s while ops wait.
const BUSY_WAIT_INTERVAL: u32 = 32;
/// Most events one `epoll_wait` returns (the rest stay ready in the kernel for the next one).
/// A readiness event performs its receive here, in the driver, and the task that consumes it
/// answers on the same socket when it runs after the park: the fewer sockets between the two,
/// the warmer the socket still is. With 256, 128 busy echo connections cost ~5 % more CPU
/// per request than with 16 (`echo/128conn/64B`: 5.76 vs 5.41 us, tokio 5.37); a wait that
/// returns at once with the next 16 costs far less than that.
const EVENTS_PER_WAIT: usize = 16;

pub struct Epoll {
    epfd: OwnedFd,
    unparker: Arc<Unparker>,
    fds: Vec<FdQueue>,
    events: Vec<libc::epoll_event>,
    deadlines: BinaryHeap<Reverse<(Instant, u64, RawFd)>>,
    /// Calls that may block, and calls on fds epoll cannot poll.
    pool: PoolCalls,
    waiting: usize,
    /// Ops without an fd whose task's budget was spent: performed at the next `park`.
    deferred: Vec<(CompletionToken, Syscall)>,
    /// Fds with deferred ops queued: driven at the next `park`.
    recheck: Vec<RawFd>,
    busy_ticks: u32,
    pub waits: u64,
    /// The fault injector asked the next wait to be interrupted (see [`Proactor::inject`]).
    interrupt_next_wait: bool,
}

#[derive(Default)]
struct FdQueue {
    /// Registered with epoll since the queue last went idle.
    armed: bool,
    /// Registered for as long as its owner keeps it open (see `pin`).
    pinned: bool,
    /// The peer shut down (or the socket failed): no further edge will come for reading, so
    /// a short receive must not be taken to mean "wait for the next edge".
    read_closed: bool,
    /// Urgent data came (`EPOLLPRI`, TCP): a receive stops short at it, so a short receive
    /// must not be taken to mean the socket is empty either.
    urgent: bool,
    readable: bool,
    writable: bool,
    /// The kernel refused `RWF_NOWAIT` on this (pollable) open file: how its reads and writes
    /// are performed instead. Forgotten when the number turns out to name a new file.
    fallback: Option<NoWaitFallback>,
    waiters: VecDeque<Waiter>,
}

struct Waiter {
    token: CompletionToken,
    syscall: Syscall,
    /// Stays queued after each result (multishot poll), until cancelled or failed.
    multishot: bool,
}

impl FdQueue {
    /// A stream receive got less than it asked for, so the socket is empty: the next receive
    /// waits for the next edge rather than try for an `EAGAIN` (tokio makes the same
    /// inference). Only while registered, so that edge will be reported, and not after the
    /// peer shut down, when none will come (the next receive must find the end of file), nor
    /// after urgent data, at which a receive stops short.
    /// Returns whether it did take the socket to be empty.
    fn saw_drained(&mut self) -> bool {
        let empty = self.armed && !self.read_closed && !self.urgent;
        if empty {
            self.readable = false;
        }
        empty
    }
}

fn ready_for(q: &FdQueue, dir: Direction) -> bool {
    (dir.read && q.readable) || (dir.write && q.writable)
}

impl Epoll {
    pub fn new(unparker: Arc<Unparker>, pool: Pool) -> io::Result<Self> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: epoll_create1(2) returned a fresh descriptor that we own.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: WAKE_KEY,
        };
        // SAFETY: both fds are valid; `ev` lives across the call.
        if unsafe {
            libc::epoll_ctl(
                epfd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                unparker.fd(),
                &mut ev,
            )
        } < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll {
            epfd,
            pool: PoolCalls::new(pool, unparker.clone()),
            unparker,
            fds: Vec::new(),
            events: Vec::with_capacity(EVENTS_PER_WAIT),
            deadlines: BinaryHeap::new(),
            waiting: 0,
            deferred: Vec::new(),
            recheck: Vec::new(),
            busy_ticks: 0,
            waits: 0,
            interrupt_next_wait: false,
        })
    }

    fn queue(&mut self, fd: RawFd) -> &mut FdQueue {
        let i = fd as usize;
        if self.fds.len() <= i {
            self.fds.resize_with(i + 1, FdQueue::default);
        }
        &mut self.fds[i]
    }

    /// Registers `fd` for edge-triggered readiness. `Ok(false)`: `EEXIST`, this open file
    /// already is registered (its queue's state still holds); `Ok(true)`: a new registration
    /// (possibly a new file behind a reused number: its queue's state starts afresh).
    fn arm(&mut self, fd: RawFd) -> io::Result<bool> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN
                | libc::EPOLLOUT
                | libc::EPOLLRDHUP
                | libc::EPOLLPRI
                | libc::EPOLLET) as u32,
            u64: fd as u64,
        };
        // SAFETY: `ev` lives across the call; a bad fd is reported as an error.
        let r = unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
            return Ok(false);
        }
        Ok(true)
    }

    /// Registers `fd`'s queue (see [`arm`](Self::arm)) and marks it ready both ways, to be
    /// tried. A new registration may be a new file behind a reused number: what was learnt
    /// about the old one is forgotten.
    fn arm_queue(&mut self, fd: RawFd) -> io::Result<()> {
        let fresh = self.arm(fd)?;
        let q = self.queue(fd);
        q.armed = true;
        q.readable = true;
        q.writable = true;
        q.read_closed &= !fresh;
        q.urgent &= !fresh;
        if fresh {
            q.fallback = None;
        }
        Ok(())
    }

    /// Tries `syscall` on `fd` without blocking: `RWF_NOWAIT` first, or the fd's remembered
    /// fallback. A call that may fall back, refused with `EOPNOTSUPP` on a registered
    /// (pollable) fd, finds its fallback, remembers it and is tried that way; an unregistered
    /// fd's `EOPNOTSUPP` is returned (the caller registers it first, or sends it to the pool if
    /// it cannot).
    ///
    /// # Safety
    ///
    /// As for [`Syscall::perform`]: the op's memory is owned by the table.
    unsafe fn perform_ready(&mut self, fd: RawFd, syscall: &Syscall) -> Performed {
        let q = self.queue(fd);
        let may_fall_back = syscall.has_nowait_fallback();
        if let Some(how) = q.fallback.filter(|_| may_fall_back) {
            // SAFETY: the caller keeps the op's memory, owned by the table, valid until completion.
            return unsafe { syscall.perform(Mode::Fallback(how)) };
        }
        // The no-wait mode keeps the call from blocking.
        // SAFETY: the caller keeps the op's memory, owned by the table, valid until completion.
        let done = unsafe { syscall.perform(Mode::NoWait) };
        if done.result != -libc::EOPNOTSUPP || !may_fall_back || !q.armed {
            return done;
        }
        let how = NoWaitFallback::probe(fd);
        q.fallback = Some(how);
        // SAFETY: the caller keeps the op's memory, owned by the table, valid until completion.
        unsafe { syscall.perform(Mode::Fallback(how)) }
    }

    /// Starts an op. With `defer` (the task's cooperative budget is spent) the op is not tried
    /// at once: it waits for the next `park`, which tries it, so a task of back-to-back ready
    /// ops yields to the loop without holding a result it might then drop.
    #[inline]
    pub fn submit(
        &mut self,
        table: &mut OpTable,
        token: CompletionToken,
        syscall: &Syscall,
        multishot: bool,
        deadline: Option<Duration>,
        defer: bool,
    ) {
        let dir = match syscall.wait() {
            // Calls that may block (on the disk): never on the loop thread.
            Wait::Pool => return self.pool.submit(table, token, *syscall),
            Wait::Nothing if defer => return self.deferred.push((token, *syscall)),
            Wait::Nothing => return self.perform_now(table, token, syscall),
            Wait::Ready(dir) => dir,
        };
        let fd = syscall.fd();
        if fd < 0 {
            table.complete(token, -libc::EBADF, 0);
            return;
        }
        let q = self.queue(fd);
        let mut was_armed = q.armed;
        if !was_armed && q.fallback.is_some() && syscall.has_nowait_fallback() {
            // The fallback was found for the file this number named when its queue was last
            // busy: registering again tells whether it still does (`EEXIST`) before it is used.
            match self.arm_queue(fd) {
                Ok(()) => was_armed = true,
                Err(e) => return self.arm_failed(table, token, *syscall, multishot, e),
            }
        }
        let q = self.queue(fd);
        // Ops of one direction complete in FIFO order: queue behind earlier ones.
        let behind = was_armed
            && q.waiters.iter().any(|w| {
                !w.multishot
                    && matches!(w.syscall.wait(),
                        Wait::Ready(d) if (d.read && dir.read) || (d.write && dir.write))
            });
        // A receive on a registered fd that an earlier one left empty (`readable` cleared by
        // its EAGAIN or short stream receive, and no edge since) would only find EAGAIN.
        let known_empty = was_armed && dir.read && !dir.write && !q.readable;
        // Try it at once unless it must queue: a stream, FIFO behind earlier ops, deferred, or
        // known to find nothing.
        let attempt = !multishot && !behind && !defer && !known_empty;
        if attempt {
            // SAFETY: the op's memory is owned by the table until completion.
            let mut p = unsafe { self.perform_ready(fd, syscall) };
            if p.result == -libc::EOPNOTSUPP && syscall.has_nowait_fallback() && !was_armed {
                // No RWF_NOWAIT for this file: a pollable one takes its fallback, the others
                // (regular files: EPERM) the pool.
                if let Err(e) = self.arm_queue(fd) {
                    return self.arm_failed(table, token, *syscall, multishot, e);
                }
                was_armed = true;
                // SAFETY: the op's memory is owned by the table until completion.
                p = unsafe { self.perform_ready(fd, syscall) };
            }
            match p {
                p if p.result == -libc::EAGAIN => {}
                p if p.result == -libc::EOPNOTSUPP => {
                    self.settle(fd);
                    return self.pool.submit(table, token, *syscall);
                }
                p => {
                    if p.drained {
                        let _ = self.queue(fd).saw_drained();
                    }
                    self.settle(fd);
                    return table.complete(token, p.result, p.flags);
                }
            }
        }
        if !was_armed && let Err(e) = self.arm_queue(fd) {
            return self.arm_failed(table, token, *syscall, multishot, e);
        }
        let q = self.queue(fd);
        if attempt {
            // It just said EAGAIN: wait for the next edge in that direction.
            q.readable &= !dir.read;
            q.writable &= !dir.write;
        }
        q.waiters.push_back(Waiter {
            token,
            syscall: *syscall,
            multishot,
        });
        self.waiting += 1;
        table.set_note(token, i64::from(fd));
        if let Some(d) = deadline {
            self.deadlines
                .push(Reverse((Instant::now() + d, token.user_data(), fd)));
        }
        if defer {
            self.recheck.push(fd);
        } else if ready_for(self.queue(fd), dir) {
            self.drive(table, fd);
        }
    }

    /// `fd` could not be registered: a file epoll cannot poll (a regular file, a directory:
    /// `EPERM`) goes to the pool; any other error fails the op.
    fn arm_failed(
        &mut self,
        table: &mut OpTable,
        token: CompletionToken,
        syscall: Syscall,
        multishot: bool,
        e: io::Error,
    ) {
        if e.raw_os_error() == Some(libc::EPERM) && !multishot {
            return self.pool.submit(table, token, syscall);
        }
        table.complete(token, -e.raw_os_error().unwrap_or(libc::EIO), 0);
    }

    /// Performs a call that waits for nothing (nop, close).
    #[inline]
    fn perform_now(&mut self, table: &mut OpTable, token: CompletionToken, syscall: &Syscall) {
        if syscall.closes_fd() {
            self.forget_fd(table, syscall.fd());
        }
        // SAFETY: the op's memory is owned by the table until completion (now).
        let done = unsafe { syscall.perform(Mode::NoWait) };
        table.complete(token, done.result, done.flags);
    }

    /// Tries the ops deferred by a spent budget. True if there were any.
    fn run_deferred(&mut self, table: &mut OpTable) -> bool {
        if self.deferred.is_empty() && self.recheck.is_empty() {
            return false;
        }
        for (token, syscall) in std::mem::take(&mut self.deferred) {
            self.perform_now(table, token, &syscall);
        }
        for fd in std::mem::take(&mut self.recheck) {
            if !self.queue(fd).waiters.is_empty() {
                self.drive(table, fd);
            }
        }
        true
    }

    /// Retries the waiting ops of `fd` in FIFO order while it stays ready.
    fn drive(&mut self, table: &mut OpTable, fd: RawFd) {
        let mut i = 0;
        loop {
            let q = self.queue(fd);
            let Some(w) = q.waiters.get(i) else { break };
            let dir = match w.syscall.wait() {
                Wait::Ready(d) => d,
                Wait::Nothing | Wait::Pool => Direction {
                    read: true,
                    write: true,
                },
            };
            if !ready_for(q, dir) {
                i += 1;
                continue;
            }
            let (token, syscall, multishot) = (w.token, w.syscall, w.multishot);
            // SAFETY: the op's memory is owned by the table while it waits here.
            let done = unsafe { self.perform_ready(fd, &syscall) };
            let (result, flags) = (done.result, done.flags);
            let q = self.queue(fd);
            if result == -libc::EAGAIN {
                if dir.read && !dir.write {
                    q.readable = false;
                } else if dir.write && !dir.read {
                    q.writable = false;
                } else {
                    q.readable = false;
                    q.writable = false;
                }
                i += 1;
                continue;
            }
            if multishot && !syscall.ends_stream(result) {
                // The waiter stays for the next result. Receives and accepts repeat until
                // EAGAIN (an edge is not reported again for data already there); a poll
                // reports once per edge.
                table.complete(token, result, flags | F_MORE);
                // A receive that emptied the socket waits for the next edge rather than try
                // again; a draining one otherwise goes on.
                if (done.drained && self.queue(fd).saw_drained()) || !syscall.drains() {
                    i += 1;
                }
                continue;
            }
            q.waiters.remove(i);
            self.waiting -= 1;
            if done.drained {
                let _ = self.queue(fd).saw_drained();
            }
            if result == -libc::EOPNOTSUPP {
                self.pool.submit(table, token, syscall);
            } else {
                table.complete(token, result, flags);
            }
        }
        self.settle(fd);
    }

    /// A queue with no op waiting that is not pinned is not taken as registered any more: its
    /// fd may be closed, and the number reused by another file, before an op must wait on it
    /// again, which then registers it (`EEXIST`: still the same file). Called wherever an op
    /// leaves the queue, including one that completed as it was submitted after its queue was
    /// registered to find a `NoWaitFallback`.
    fn settle(&mut self, fd: RawFd) {
        let q = self.queue(fd);
        if q.waiters.is_empty() && !q.pinned {
            q.armed = false;
        }
    }

    /// Keeps `fd` registered until [`unpin`](Self::unpin), which its owner must call before
    /// closing it. Registers it in any case: the fd is new, and its number may have named
    /// another file whose queue state is stale.
    pub fn pin(&mut self, fd: RawFd) -> io::Result<()> {
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        self.arm_queue(fd)?;
        self.queue(fd).pinned = true;
        Ok(())
    }

    /// `fd` is about to be closed: back to registering it per wait.
    pub fn unpin(&mut self, fd: RawFd) {
        if fd >= 0 && (fd as usize) < self.fds.len() {
            let q = &mut self.fds[fd as usize];
            q.pinned = false;
            if q.waiters.is_empty() {
                q.armed = false;
            }
        }
    }

    fn remove_waiter(&mut self, fd: RawFd, token: CompletionToken) -> bool {
        let q = self.queue(fd);
        if let Some(pos) = q.waiters.iter().position(|w| w.token == token) {
            q.waiters.remove(pos);
            self.waiting -= 1;
            self.settle(fd);
            true
        } else {
            false
        }
    }

    /// Cancels an op: a waiting one completes with `ECANCELED` at once; one on the pool
    /// cannot be interrupted and completes when the pool is done.
    pub fn cancel(&mut self, table: &mut OpTable, token: CompletionToken) {
        if let Some(fd) = table.note(token)
            && self.remove_waiter(fd as RawFd, token)
        {
            table.complete(token, -libc::ECANCELED, 0);
        }
    }

    /// The fd is being closed: its waiting ops are cancelled and its state forgotten.
    fn forget_fd(&mut self, table: &mut OpTable, fd: RawFd) {
        if fd < 0 || fd as usize >= self.fds.len() {
            return;
        }
        let q = std::mem::take(&mut self.fds[fd as usize]);
        for w in q.waiters {
            self.waiting -= 1;
            table.complete(w.token, -libc::ECANCELED, 0);
        }
    }

    fn expire_deadlines(&mut self, table: &mut OpTable) -> Option<Instant> {
        if self.deadlines.is_empty() {
            return None;
        }
        let now = Instant::now();
        while let Some(&Reverse((when, data, fd))) = self.deadlines.peek() {
            let token = CompletionToken::from_user_data(data);
            if !table.is_pending(token) {
                self.deadlines.pop();
                continue;
            }
            if when > now {
                return Some(when);
            }
            self.deadlines.pop();
            if self.remove_waiter(fd, token) {
                // The table turns an ECANCELED it did not ask for into ETIMEDOUT.
                table.complete(token, -libc::ECANCELED, 0);
            }
        }
        None
    }

    pub fn park(&mut self, table: &mut OpTable, timeout: Option<Duration>) -> io::Result<()> {
        let mut timeout = timeout;
        let ran_deferred = self.run_deferred(table);
        if self.pool.collect(table) || ran_deferred {
            timeout = Some(Duration::ZERO);
        }
        if let Some(next) = self.expire_deadlines(table) {
            let until = next.saturating_duration_since(Instant::now());
            timeout = Some(timeout.map_or(until, |t| t.min(until)));
        }
        if timeout == Some(Duration::ZERO) {
            self.busy_ticks += 1;
            if self.waiting == 0 || self.busy_ticks < BUSY_WAIT_INTERVAL {
                return Ok(());
            }
        }
        self.busy_ticks = 0;
        // `Duration::as_millis` truncates, so round up: a sub-millisecond timer must not
        // turn into a busy loop of zero timeouts.
        let ms = match timeout {
            None => -1,
            Some(t) => t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32,
        };
        self.events.clear();
        self.waits += 1;
        if std::mem::take(&mut self.interrupt_next_wait) {
            // As an EINTR from epoll_wait: back to the loop, nothing collected.
            return Ok(());
        }
        // SAFETY: `events` has room for `capacity` entries; the kernel writes at most that many.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.capacity() as i32,
                ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                return Ok(());
            }
            return Err(e);
        }
        // SAFETY: epoll_wait initialised the first `n` entries.
        unsafe { self.events.set_len(n as usize) };
        for i in 0..n as usize {
            let ev = self.events[i];
            let key = ev.u64;
            if key == WAKE_KEY {
                self.unparker.drain_eventfd();
                continue;
            }
            let fd = key as RawFd;
            let bits = ev.events as i32;
            let q = self.queue(fd);
            if bits & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP) != 0 {
                q.readable = true;
            }
            if bits & (libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP) != 0 {
                q.read_closed = true;
            }
            if bits & libc::EPOLLPRI != 0 {
                q.urgent = true;
            }
            if bits & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) != 0 {
                q.writable = true;
            }
            if !q.waiters.is_empty() {
                self.drive(table, fd);
            }
        }
        self.pool.collect(table);
        self.expire_deadlines(table);
        Ok(())
    }

    /// The epoll instance's descriptor (for messages).
    pub fn fd(&self) -> RawFd {
        self.epfd.as_raw_fd()
    }

    /// The wait failed for good: every op waiting here (for readiness, or deferred by a spent
    /// budget) fails with `errno`. Their memory was never lent to the kernel, so handing it
    /// back is safe; ops on the blocking pool complete as usual.
    pub fn fail_waiting(&mut self, table: &mut OpTable, errno: i32) {
        for (token, _) in std::mem::take(&mut self.deferred) {
            table.complete(token, -errno, 0);
        }
        self.recheck.clear();
        for q in &mut self.fds {
            for w in std::mem::take(&mut q.waiters) {
                self.waiting -= 1;
                table.complete(w.token, -errno, 0);
            }
            q.armed = false;
            q.pinned = false;
        }
    }

    /// A park after the wait failed: completions posted by the blocking pool are collected
    /// (no op waits for readiness any more).
    pub fn collect_after_failure(&mut self, table: &mut OpTable) {
        self.pool.collect(table);
    }

    /// Completes every waiting op with `ECANCELED` and waits up to `grace` for the pool's.
    pub fn shutdown(&mut self, table: &mut OpTable, grace: Duration) {
        for fd in 0..self.fds.len() {
            self.forget_fd(table, fd as RawFd);
        }
        self.pool.drain(table, grace);
        table.leak_remaining();
    }
}

impl Proactor for Epoll {
    fn kind(&self) -> BackendKind {
        BackendKind::Epoll
    }

    fn half(&self) -> Half {
        Half::Readiness
    }

    #[inline]
    fn submit(&mut self, table: &mut OpTable, op: Submission) {
        let Work::Readiness(syscall) = &op.work else {
            // The driver builds the half `half()` names; anything else fails loudly but safely.
            return table.complete(op.token, -libc::EINVAL, 0);
        };
        Epoll::submit(
            self,
            table,
            op.token,
            syscall,
            op.multishot,
            op.deadline,
            op.defer,
        );
    }

    fn cancel(&mut self, table: &mut OpTable, token: CompletionToken) {
        Epoll::cancel(self, table, token);
    }

    fn park(&mut self, table: &mut OpTable, timeout: Option<Duration>) -> io::Result<()> {
        Epoll::park(self, table, timeout)
    }

    fn shutdown(&mut self, table: &mut OpTable, grace: Duration) {
        Epoll::shutdown(self, table, grace);
    }

    fn kernel_enters(&self) -> u64 {
        self.waits
    }

    fn wait_call(&self) -> String {
        format!("epoll_wait on epoll fd {}", self.fd())
    }

    fn fail_waiting(&mut self, table: &mut OpTable, errno: i32) {
        Epoll::fail_waiting(self, table, errno);
    }

    fn collect_after_failure(&mut self, table: &mut OpTable) {
        Epoll::collect_after_failure(self, table);
    }

    fn pin_fd(&mut self, fd: RawFd) -> io::Result<()> {
        self.pin(fd)
    }

    fn unpin_fd(&mut self, fd: RawFd) {
        self.unpin(fd);
    }

    fn inject(&mut self, table: &mut OpTable, what: Inject) -> bool {
        match what {
            Inject::WaitInterrupted => self.interrupt_next_wait = true,
            Inject::SubmitBusy => return false,
            Inject::SpuriousReadiness { pick } => {
                // Readiness that is not there: the ops waiting on one fd are tried again, and
                // must find EAGAIN and wait on (edge-triggered epoll allows such a report).
                let busy: Vec<RawFd> = (0..self.fds.len())
                    .filter(|&i| !self.fds[i].waiters.is_empty())
                    .map(|i| i as RawFd)
                    .collect();
                if busy.is_empty() {
                    return false;
                }
                let fd = busy[(pick % busy.len() as u64) as usize];
                let q = self.queue(fd);
                q.readable = true;
                q.writable = true;
                self.drive(table, fd);
            }
        }
        true
    }
}
