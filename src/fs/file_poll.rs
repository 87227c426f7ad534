//! Poll-based I/O on a [`File`](super::File): futures-io's `AsyncRead`/`AsyncWrite` (and
//! tokio's through them, feature `tokio-io`).
//!
//! As on sockets, the ops live in the `File`, never in a future made per poll, and each byte
//! is copied once: a read goes into a buffer the `File` owns, at the cursor, and is copied
//! from there into the caller's slice (what does not fit is read ahead, served by the next
//! poll); a write copies what it accepts (up to 64 KiB) into a buffer the `File` owns and
//! returns at once, its write op in flight at the cursor.
//!
//! - The cursor ([`stream_position`](super::File::stream_position)) counts bytes handed to
//!   the caller and bytes accepted, not bytes read ahead: discarding the read-ahead loses
//!   nothing, the bytes are still in the file.
//! - An error of an accepted write is reported by the next `poll_write`, `poll_flush`,
//!   `poll_close` or `poll_read`, or by the next cursor method (`read`, `write`, `seek`...),
//!   each of which first waits for accepted bytes to be written, and drops the read-ahead.
//! - A `File` dropped with accepted bytes still being written finishes writing them in a
//!   task (the op holds the descriptor open); [`close`](super::File::close) waits for them
//!   and reports their error.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use crate::buf::{IoBuf, Slice};
use crate::op::{self, KeepFd, Op, keep_fd};

/// The smallest read a poll starts (a caller reading a few bytes at a time is served from
/// the read-ahead).
const POLL_READ_MIN: usize = 8 * 1024;
/// The largest read a poll starts, and the most one `poll_write` accepts.
const POLL_IO_MAX: usize = 64 * 1024;

/// A read at the cursor into the read-ahead buffer, holding the descriptor open.
type ReadOp = Op<KeepFd<op::Read<Vec<u8>>>>;
/// A write of accepted bytes, holding the descriptor open.
type WriteOp = Op<KeepFd<op::Write<Slice<Vec<u8>>>>>;

/// A file's poll-based reads and writes; see the module docs.
pub(super) struct FilePoll {
    fd: Arc<OwnedFd>,
    /// Read ahead from the cursor: `ahead[at..]` not yet handed out.
    ahead: Vec<u8>,
    ahead_at: usize,
    /// The read in flight, at the cursor.
    reading: Option<ReadOp>,
    /// Accepted bytes: `out[out_at..]` not yet written, at file offset `out_offset`
    /// (`None`: appending).
    out: Vec<u8>,
    out_at: usize,
    out_offset: Option<u64>,
    writing: Option<WriteOp>,
    failed: Option<io::Error>,
}

impl std::fmt::Debug for FilePoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilePoll")
            .field("read_ahead", &(self.ahead.len() - self.ahead_at))
            .field("write_pending", &self.write_pending())
            .finish_non_exhaustive()
    }
}

impl FilePoll {
    pub(super) fn new(fd: &Arc<OwnedFd>) -> FilePoll {
        FilePoll {
            fd: Arc::clone(fd),
            ahead: Vec::new(),
            ahead_at: 0,
            reading: None,
            out: Vec::new(),
            out_at: 0,
            out_offset: None,
            writing: None,
            failed: None,
        }
    }

    /// Whether accepted bytes wait to be written, or an error to be reported.
    pub(super) fn write_pending(&self) -> bool {
        self.writing.is_some() || self.out_at < self.out.len() || self.failed.is_some()
    }

    /// Drops the read-ahead and a read in flight (the bytes stay in the file).
    pub(super) fn forget_reads(&mut self) {
        self.ahead.clear();
        self.ahead_at = 0;
        self.reading = None;
    }

    /// Reads into `out` at `*pos`, advancing it by what was handed out.
    pub(super) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        pos: &mut u64,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_written(cx))?;
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            if self.ahead_at < self.ahead.len() {
                let src = &self.ahead[self.ahead_at..];
                let n = src.len().min(out.len());
                out[..n].copy_from_slice(&src[..n]);
                self.ahead_at += n;
                *pos += n as u64;
                return Poll::Ready(Ok(n));
            }
            if let Some(read) = &mut self.reading {
                let (res, buf) = ready!(Pin::new(read).poll(cx));
                self.reading = None;
                self.ahead = buf;
                self.ahead_at = 0;
                if res? == 0 {
                    return Poll::Ready(Ok(0));
                }
                continue;
            }
            let mut buf = std::mem::take(&mut self.ahead);
            buf.clear();
            buf.reserve(out.len().clamp(POLL_READ_MIN, POLL_IO_MAX));
            let read = op::read_at(self.fd.as_raw_fd(), buf, *pos);
            self.reading = Some(keep_fd(read, &self.fd));
        }
    }

    /// Accepts up to 64 KiB of `data` for writing at `*pos` (at the end when `append`),
    /// advancing `*pos` by what was accepted.
    pub(super) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        pos: &mut u64,
        append: bool,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_written(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.forget_reads();
        let n = data.len().min(POLL_IO_MAX);
        self.out.clear();
        self.out.extend_from_slice(&data[..n]);
        self.out_at = 0;
        self.out_offset = (!append).then_some(*pos);
        if !append {
            *pos += n as u64;
        }
        // Start the write; a failure already known is this write's.
        if let Poll::Ready(Err(e)) = self.poll_written(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    /// Writes what was accepted; ready when all of it is written, or with the error that
    /// ended the writing (reported once).
    pub(super) fn poll_written(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Some(e) = self.failed.take() {
                return Poll::Ready(Err(e));
            }
            if let Some(write) = &mut self.writing {
                let (res, slice) = ready!(Pin::new(write).poll(cx));
                self.writing = None;
                self.out = slice.into_inner();
                match res {
                    Ok(0) => self.fail(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        self.out_at += n;
                        if let Some(offset) = &mut self.out_offset {
                            *offset += n as u64;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => self.fail(e),
                }
                continue;
            }
            if self.out_at == self.out.len() {
                self.out.clear();
                self.out_at = 0;
                return Poll::Ready(Ok(()));
            }
            let fd = self.fd.as_raw_fd();
            let slice = std::mem::take(&mut self.out).slice(self.out_at..);
            let write = match self.out_offset {
                Some(offset) => op::write_at(fd, slice, offset),
                None => op::write(fd, slice),
            };
            self.writing = Some(keep_fd(write, &self.fd));
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.out.clear();
        self.out_at = 0;
        self.failed = Some(e);
    }
}

impl Drop for FilePoll {
    /// Accepted bytes still being written are written by a task (their op holds the
    /// descriptor open); outside a live loop (or when that task is itself dropped by the
    /// loop's shutdown) they are dropped with the op, which cancels it.
    fn drop(&mut self) {
        if self.writing.is_none() && self.out_at == self.out.len() {
            return;
        }
        let live = crate::runtime::with_context(|cx| !cx.shutting_down.get()).unwrap_or(false);
        if !live {
            return;
        }
        let mut rest = FilePoll {
            fd: Arc::clone(&self.fd),
            ahead: Vec::new(),
            ahead_at: 0,
            reading: None,
            out: std::mem::take(&mut self.out),
            out_at: self.out_at,
            out_offset: self.out_offset,
            writing: self.writing.take(),
            failed: None,
        };
        self.out_at = 0;
        crate::runtime::with_context(|cx| {
            cx.spawn(async move {
                // Written or failed: either way nothing is left for its drop.
                let _ = std::future::poll_fn(|cx| rest.poll_written(cx)).await;
            })
        });
    }
}
