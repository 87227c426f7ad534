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
//! # Order with the owned-buffer API and drops
//!
//! An owned-buffer `write`, `writev`, `write_all` or `send_with_fds` first waits until the
//! bytes `poll_write` accepted are sent (reporting their error, if any, instead of
//! writing), so bytes reach the peer in the order they were written.
//!
//! Dropping a stream whose accepted bytes are still being sent does not lose them: the send
//! goes on in a task that owns the socket, which closes once they are sent (or the loop
//! shuts down). Dropping an [`OwnedWriteHalf`](crate::net::OwnedWriteHalf) likewise shuts
//! the write direction down only after them.
//!
//! # Implementation
//!
//! The send is polled with a waker of its own that wakes every task waiting on it (a
//! `poll_write` and an owned-buffer write of two tasks sharing the stream), so its
//! completion reaches them whichever polled it last.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use super::StreamSocket;
use crate::buf::{IoBuf, Slice};
use crate::net::waiters::Waiters;
use crate::op::{self, Op};

/// The most one `poll_write` accepts.
const POLL_WRITE_MAX: usize = 64 * 1024;

/// Bytes `poll_write` accepted and the send carrying them; see the module docs.
pub(super) struct PolledWrite {
    /// Accepted bytes: `buf[at..]` are not sent yet. Kept (empty) for the next write.
    buf: Vec<u8>,
    at: usize,
    /// The send in flight, carrying `buf` (which is then empty here).
    op: Option<Op<op::Send<Slice<Vec<u8>>>>>,
    /// The error of an accepted write, for the next call.
    failed: Option<io::Error>,
    waiters: Arc<Waiters>,
    /// Wakes `waiters`; the send is polled with it.
    waker: Waker,
}

impl Default for PolledWrite {
    fn default() -> Self {
        let waiters = Arc::new(Waiters::default());
        PolledWrite {
            buf: Vec::new(),
            at: 0,
            op: None,
            failed: None,
            waker: Waker::from(Arc::clone(&waiters)),
            waiters,
        }
    }
}

impl PolledWrite {
    /// Whether accepted bytes are still to be sent or an error is still to be reported.
    pub(super) fn is_pending(&self) -> bool {
        self.has_unsent() || self.failed.is_some()
    }

    /// Whether accepted bytes are still to be sent.
    fn has_unsent(&self) -> bool {
        self.op.is_some() || self.at < self.buf.len()
    }

    /// Sends what is accepted; ready when all of it is in the kernel, or with the error that
    /// ended the sending (reported once).
    fn poll_sent(&mut self, fd: RawFd, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Some(e) = self.failed.take() {
                return Poll::Ready(Err(e));
            }
            if let Some(send) = &mut self.op {
                self.waiters.add(cx.waker());
                let (res, slice) =
                    ready!(Pin::new(send).poll(&mut Context::from_waker(&self.waker)));
                self.op = None;
                // Done without a wake-up (an op can complete as it is polled): the others
                // waiting learn it now.
                self.waiters.wake_others(cx.waker());
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
                return Poll::Ready(Ok(()));
            }
            let slice = std::mem::take(&mut self.buf).slice(self.at..);
            // `at` stays where the slice starts: the send's count is added to it.
            self.op = Some(op::send(fd, slice));
        }
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

impl StreamSocket {
    /// Accepts bytes of `data` (the slices in turn) for sending; see the module docs.
    pub(crate) fn poll_write_slices(
        &self,
        cx: &mut Context<'_>,
        data: &[&[u8]],
    ) -> Poll<io::Result<usize>> {
        if data.iter().all(|d| d.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        let fd = self.socket.as_raw_fd();
        let mut write = self.write.borrow_mut();
        let write = write.get_or_insert_with(Box::default);
        ready!(write.poll_sent(fd, cx))?;
        let n = write.accept(data);
        // Start the send. A failure already known is this write's; a later one is reported
        // by the next call.
        if let Poll::Ready(Err(e)) = write.poll_sent(fd, cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    /// Ready when every accepted byte is in the kernel; an accepted write's error.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let fd = self.socket.as_raw_fd();
        match self.write.borrow_mut().as_mut() {
            Some(write) => write.poll_sent(fd, cx),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Flushes, then shuts the write direction down. A peer that already closed the
    /// connection (`ENOTCONN`) leaves nothing to shut down.
    pub(crate) fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_flush(cx))?;
        Poll::Ready(shutdown_write(&self.socket))
    }

    /// Whether `poll_write` accepted bytes not yet sent (or an error to report).
    pub(crate) fn write_pending(&self) -> bool {
        self.write.borrow().as_ref().is_some_and(|w| w.is_pending())
    }

    /// Whether `poll_write` accepted bytes not yet sent.
    pub(crate) fn write_unsent(&self) -> bool {
        self.write.borrow().as_ref().is_some_and(|w| w.has_unsent())
    }

    /// For owned-buffer writes: waits until what `poll_write` accepted is sent.
    pub(super) async fn flush_accepted(&self) -> io::Result<()> {
        if !self.write_pending() {
            return Ok(());
        }
        std::future::poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// At drop: hands accepted bytes still being sent, with the socket, to a task that
    /// finishes sending them; the socket closes when it is done. Leaves a duplicate of the
    /// descriptor in the stream to be closed in its place.
    pub(super) fn linger(&mut self) {
        let Some(mut write) = self.write.take().filter(|w| w.has_unsent()) else {
            return;
        };
        let live = crate::runtime::with_context(|cx| !cx.shutting_down.get()).unwrap_or(false);
        if !live {
            return;
        }
        let Ok(dup) = self.socket.try_clone() else {
            return;
        };
        let socket = std::mem::replace(&mut self.socket, dup);
        let task = async move {
            let fd = socket.as_raw_fd();
            let _ = std::future::poll_fn(|cx| write.poll_sent(fd, cx)).await;
            drop(write);
            drop(socket);
        };
        crate::runtime::with_context(|cx| cx.spawn(task));
    }
}

/// `shutdown(SHUT_WR)`, with a peer gone already (`ENOTCONN`) not an error.
pub(crate) fn shutdown_write(socket: &socket2::Socket) -> io::Result<()> {
    match socket.shutdown(std::net::Shutdown::Write) {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}
