//! Poll-based writes (`futures_io::AsyncWrite`, and tokio's through it) on the stream core.
//!
//! # When a write's error is reported
//!
//! The kernel takes an owned buffer, so `poll_write` copies what it accepts (up to 64 KiB)
//! into a buffer the stream keeps, starts the send, and returns `Ready(Ok(n))` at once: the
//! bytes are *accepted*, and their send belongs to the stream, not to a future a caller may
//! drop. One send is in flight at a time; a short send is continued with the rest.
//!
//! - If the send fails before `poll_write` returns (the epoll backend sends at once when
//!   the socket has room), `poll_write` returns that error.
//! - Otherwise the error of an accepted write is reported by the stream's **next**
//!   `poll_write`, `poll_flush` or `poll_close` (or owned-buffer `write`), exactly once;
//!   the accepted bytes not sent by then are dropped with it.
//! - `poll_flush` is ready when every accepted byte is in the kernel; `poll_close` flushes,
//!   then shuts the write direction down (the peer sees end of file).
//!
//! So a writer that flushes (as hyper, tokio-util's codecs and `BufWriter` users do) sees
//! every error by its flush at the latest.
//!
//! # Accepted bytes go out without further polls
//!
//! A writer need not flush for its bytes to leave: tokio's `write_all` followed by a read
//! of the reply is a common pattern, and the reply may depend on every byte written. So the
//! send is not left to the writer's later polls: a small task of the stream's own, the
//! *pump*, is woken by every completion of the send and continues a short send with the
//! rest. The pump is spawned the first time a send does not complete as it is made (on the
//! epoll backend a send to a socket with room does, and then no pump is ever needed; so does
//! one on io_uring made by a task that runs alone, see [`at_once_if_alone`]), and lives as
//! long as the stream.
//!
//! The send is polled with one waker, whoever polls it, which wakes the pump and every
//! caller waiting for the send to finish (a `poll_write` with a send in flight, a
//! `poll_flush`, an owned-buffer write) together: a caller sees the completion in the same
//! turn of the loop as the pump, and a caller that stopped waiting (a flush dropped by a
//! timeout) cannot strand the send.
//!
//! # Order with the owned-buffer API and drops
//!
//! An owned-buffer `write`, `writev`, `write_all` or `send_with_fds` first waits until the
//! bytes `poll_write` accepted are sent (reporting their error, if any, instead of
//! writing), so bytes reach the peer in the order they were written.
//!
//! Dropping a stream whose accepted bytes are still being sent does not lose them: the pump
//! goes on sending them with the socket, which closes once they are sent (or the loop shuts
//! down). Dropping an [`OwnedWriteHalf`](crate::net::OwnedWriteHalf) likewise shuts the
//! write direction down only after them.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker, ready};

use socket2::Socket;

use super::StreamSocket;
use crate::buf::{IoBuf, Slice};
use crate::op::{self, Op};

/// The most one `poll_write` accepts.
const POLL_WRITE_MAX: usize = 64 * 1024;

/// The write state a stream shares with its pump.
pub(super) type SharedWrite = Rc<RefCell<PolledWrite>>;

/// Bytes `poll_write` accepted and the send carrying them; see the module docs.
pub(super) struct PolledWrite {
    /// The socket the sends go to (its number stays valid while a send is in flight: a
    /// dropped stream hands the socket itself to the pump, see `lingering`).
    fd: RawFd,
    /// Accepted bytes: `buf[at..]` are not sent yet. Kept (empty) for the next write.
    buf: Vec<u8>,
    at: usize,
    /// The send in flight, carrying `buf` (which is then empty here).
    op: Option<Op<op::Send<Slice<Vec<u8>>>>>,
    /// The error of an accepted write, for the next call.
    failed: Option<io::Error>,
    /// The pump and the callers waiting for the send; `waker` wakes them all, and the send
    /// is polled with it, whoever polls it.
    wakers: Arc<Wakers>,
    waker: Waker,
    /// Whether a pump task runs (it may not have run yet).
    pumped: bool,
    /// The stream is gone: the pump ends once nothing accepted is unsent.
    detached: bool,
    /// The socket of a stream dropped with bytes unsent: closed by the pump when they are.
    lingering: Option<Socket>,
}

/// Who the send's completion wakes: the pump, and the callers waiting until nothing is
/// unsent. Both at once, so a waiting caller learns of the completion in the same turn of
/// the loop as the pump does, not a turn later (as it would if the pump passed it on): an
/// HTTP server's flush must be seen done before a close the peer sent right after reading
/// the response.
#[derive(Default)]
struct Wakers(Mutex<WakersInner>);

#[derive(Default)]
struct WakersInner {
    pump: Option<Waker>,
    waiting: Vec<Waker>,
}

impl Wakers {
    fn lock(&self) -> std::sync::MutexGuard<'_, WakersInner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parks `waker` until the send's next completion (once).
    fn wait(&self, waker: &Waker) {
        let mut inner = self.lock();
        if !inner.waiting.iter().any(|w| w.will_wake(waker)) {
            inner.waiting.push(waker.clone());
        }
    }

    /// The pump's waker, kept for every completion.
    fn set_pump(&self, waker: &Waker) {
        self.lock().pump = Some(waker.clone());
    }

    /// Wakes the callers waiting (not the pump). Their wakers are called outside the lock,
    /// and the emptied list goes back for its capacity.
    fn wake_waiting(&self) {
        let mut waiting = std::mem::take(&mut self.lock().waiting);
        if waiting.is_empty() {
            return;
        }
        for w in waiting.drain(..) {
            w.wake();
        }
        let mut inner = self.lock();
        if inner.waiting.is_empty() {
            inner.waiting = waiting;
        }
    }
}

impl Wake for Wakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let inner = self.lock();
        // The pump is a task of this loop: waking it only queues it, so it may be done
        // under the lock. A waiting caller's waker may be anyone's, so not those.
        if let Some(pump) = &inner.pump {
            pump.wake_by_ref();
        }
        if inner.waiting.is_empty() {
            return;
        }
        drop(inner);
        self.wake_waiting();
    }
}

impl PolledWrite {
    pub(super) fn new(fd: RawFd) -> SharedWrite {
        let wakers = Arc::new(Wakers::default());
        Rc::new(RefCell::new(PolledWrite {
            fd,
            buf: Vec::new(),
            at: 0,
            op: None,
            failed: None,
            waker: Waker::from(Arc::clone(&wakers)),
            wakers,
            pumped: false,
            detached: false,
            lingering: None,
        }))
    }

    /// Whether accepted bytes are still to be sent or an error is still to be reported.
    pub(super) fn is_pending(&self) -> bool {
        self.has_unsent() || self.failed.is_some()
    }

    /// Whether accepted bytes are still to be sent.
    pub(super) fn has_unsent(&self) -> bool {
        self.op.is_some() || self.at < self.buf.len()
    }

    /// Sends what is accepted, as far as it goes without waiting; ready when nothing is
    /// unsent (all sent, or the sending failed). Whoever calls it, the send is polled with
    /// `waker`, so its completion reaches the pump and every caller waiting.
    fn drive(&mut self) -> Poll<()> {
        loop {
            if let Some(send) = &mut self.op {
                let done = Pin::new(send).poll(&mut Context::from_waker(&self.waker));
                let (res, slice) = ready!(done);
                self.op = None;
                self.buf = slice.into_inner();
                match res {
                    Ok(0) => self.fail(io::ErrorKind::WriteZero.into()),
                    Ok(n) => self.at += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => self.fail(e),
                }
                continue;
            }
            if self.at == self.buf.len() {
                self.buf.clear();
                self.at = 0;
                return Poll::Ready(());
            }
            let slice = std::mem::take(&mut self.buf).slice(self.at..);
            // `at` stays where the slice starts: the send's count is added to it.
            self.op = Some(at_once_if_alone(op::send(self.fd, slice)));
        }
    }

    /// [`drive`](Self::drive) for a caller that waits if the send is not done: `waker` is
    /// woken by its completion.
    fn poll_sent(&mut self, waker: &Waker) -> Poll<()> {
        if self.drive().is_ready() {
            return Poll::Ready(());
        }
        self.wakers.wait(waker);
        Poll::Pending
    }

    fn fail(&mut self, e: io::Error) {
        self.buf.clear();
        self.at = 0;
        self.failed = Some(e);
    }

    /// Takes up to [`POLL_WRITE_MAX`] bytes of `data` (nothing is pending).
    fn accept(&mut self, data: &[&[u8]]) -> usize {
        debug_assert!(!self.is_pending());
        for chunk in data {
            let room = POLL_WRITE_MAX - self.buf.len();
            let n = chunk.len().min(room);
            self.buf.extend_from_slice(&chunk[..n]);
            if n < chunk.len() {
                break;
            }
        }
        self.buf.len()
    }
}

/// Marks `send` to be made at once (see [`Op::at_once`]) when its task runs alone: the only
/// entry of this turn of the loop, nothing else ready. The loop's next step would be to hand
/// the kernel this send and wait; made at once, the send does not end that wait by its own
/// completion. In a busy turn the sends of all its tasks go to the kernel together.
pub(super) fn at_once_if_alone<T: op::Operation>(send: Op<T>) -> Op<T> {
    if crate::runtime::with_context(|cx| cx.runs_alone()) == Some(true) {
        send.at_once()
    } else {
        send
    }
}

/// Starts sending what is accepted, and the pump if the send did not complete at once (with
/// no live loop to run one, shutting down, the send is polled by the next call).
fn start(shared: &SharedWrite, write: &mut PolledWrite) {
    if write.drive().is_ready() || write.pumped {
        return;
    }
    let pump = pump(Rc::clone(shared));
    let spawned =
        crate::runtime::with_context(|cx| (!cx.shutting_down.get()).then(|| drop(cx.spawn(pump))));
    write.pumped = matches!(spawned, Some(Some(())));
}

/// The pump: drives the send whenever it completes, wakes the callers waiting once nothing
/// is unsent, and ends when the stream is gone and nothing is unsent (closing a lingering
/// socket).
async fn pump(shared: SharedWrite) {
    let guard = PumpGuard(shared);
    let mut registered = false;
    std::future::poll_fn(|cx| {
        let mut write = guard.0.borrow_mut();
        if !registered {
            // A task's waker stays the same: kept once, not locked for on every poll.
            write.wakers.set_pump(cx.waker());
            registered = true;
        }
        ready!(write.drive());
        // Done here (the send completed as the pump polled it): tell the callers waiting.
        write.wakers.wake_waiting();
        if write.detached {
            return Poll::Ready(());
        }
        Poll::Pending
    })
    .await;
}

/// Marks the pump gone when its task ends (done, or dropped as the loop shuts down), and
/// closes a lingering socket — after dropping a send still in flight, so no op is left
/// naming a closed descriptor.
struct PumpGuard(SharedWrite);

impl Drop for PumpGuard {
    fn drop(&mut self) {
        let Ok(mut write) = self.0.try_borrow_mut() else {
            return;
        };
        write.pumped = false;
        write.wakers.lock().pump = None;
        if let Some(socket) = write.lingering.take() {
            write.op = None;
            drop(socket);
        }
    }
}

impl StreamSocket {
    /// The write state, made on the first `poll_write`.
    fn shared_write(&self) -> &SharedWrite {
        self.write
            .get_or_init(|| PolledWrite::new(self.socket.as_raw_fd()))
    }

    /// Accepts bytes of `data` (the slices in turn) for sending; see the module docs.
    pub(crate) fn poll_write_slices(
        &self,
        cx: &mut Context<'_>,
        data: &[&[u8]],
    ) -> Poll<io::Result<usize>> {
        if data.iter().all(|d| d.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        let shared = self.shared_write();
        let mut write = shared.borrow_mut();
        ready!(write.poll_sent(cx.waker()));
        if let Some(e) = write.failed.take() {
            return Poll::Ready(Err(e));
        }
        let n = write.accept(data);
        // Start the send. A failure already known is this write's; a later one is reported
        // by the next call.
        start(shared, &mut write);
        Poll::Ready(write.failed.take().map_or(Ok(n), Err))
    }

    /// Hands the bytes of `data` to the send if nothing accepted is unsent (as after a ready
    /// `poll_flush`), leaving `data` empty: it gets the writer's spare buffer, so nothing is
    /// copied. Takes nothing and returns false otherwise. Errors, including one the send
    /// meets at once, are reported by the next `poll_flush`.
    #[cfg(feature = "tls")]
    pub(crate) fn write_vec(&self, data: &mut Vec<u8>) -> bool {
        let shared = self.shared_write();
        let mut write = shared.borrow_mut();
        if write.has_unsent() {
            return false;
        }
        write.buf.clear();
        write.at = 0;
        std::mem::swap(&mut write.buf, data);
        start(shared, &mut write);
        true
    }

    /// Ready when every accepted byte is in the kernel; an accepted write's error.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(shared) = self.write.get() else {
            return Poll::Ready(Ok(()));
        };
        let mut write = shared.borrow_mut();
        ready!(write.poll_sent(cx.waker()));
        Poll::Ready(write.failed.take().map_or(Ok(()), Err))
    }

    /// Flushes, then shuts the write direction down. A peer that already closed the
    /// connection (`ENOTCONN`) leaves nothing to shut down.
    pub(crate) fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_flush(cx))?;
        Poll::Ready(shutdown_write(&self.socket))
    }

    /// Whether `poll_write` accepted bytes not yet sent (or an error to report).
    pub(crate) fn write_pending(&self) -> bool {
        self.write.get().is_some_and(|w| w.borrow().is_pending())
    }

    /// Whether `poll_write` accepted bytes not yet sent.
    pub(crate) fn write_unsent(&self) -> bool {
        self.write.get().is_some_and(|w| w.borrow().has_unsent())
    }

    /// For owned-buffer writes: waits until what `poll_write` accepted is sent.
    pub(super) async fn flush_accepted(&self) -> io::Result<()> {
        if !self.write_pending() {
            return Ok(());
        }
        std::future::poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// At drop: accepted bytes still being sent go on with the socket in the pump, which
    /// closes it once they are sent; a duplicate of the descriptor is left in the stream to
    /// be closed in its place. Otherwise (nothing unsent, or no live loop) the send, if any,
    /// is dropped now, before the socket closes, and the pump ends.
    pub(super) fn detach_write(&mut self) {
        let Some(shared) = self.write.take() else {
            return;
        };
        let mut write = shared.borrow_mut();
        write.detached = true;
        if write.has_unsent() {
            start(&shared, &mut write);
        }
        let lingers = write.has_unsent()
            && write.pumped
            && match self.socket.try_clone() {
                Ok(dup) => {
                    write.lingering = Some(std::mem::replace(&mut self.socket, dup));
                    true
                }
                Err(_) => false,
            };
        if !lingers {
            // Nothing may be sent after the socket closes.
            write.op = None;
            write.buf = Vec::new();
            write.at = 0;
        }
        // A pump waiting for the next send learns that there is none.
        let pump = write.wakers.lock().pump.clone();
        if let Some(pump) = pump {
            pump.wake();
        }
    }
}

/// `shutdown(SHUT_WR)`, with a peer gone already (`ENOTCONN`) not an error.
pub(crate) fn shutdown_write(socket: &socket2::Socket) -> io::Result<()> {
    match socket.shutdown(std::net::Shutdown::Write) {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}
