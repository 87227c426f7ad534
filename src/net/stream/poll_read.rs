//! Poll-based reads (`futures_io::AsyncRead`, and tokio's through it) on the stream core.
//!
//! A poll cannot lend the kernel the caller's slice: the slice is borrowed for one call,
//! and an op may outlive it. So the receive goes into a buffer the stream owns, and the op
//! lives in the stream too — in the same adopted slot that holds a dropped owned-buffer
//! read (see [`adopt`](crate::net::adopt)), not in a future made per poll. A poll that
//! returns `Pending` leaves the op there; the next poll, or the next owned-buffer `read`,
//! takes its bytes first. Bytes the caller's slice has no room for stay in the stream's
//! leftover buffer, which *is* the receive buffer (moved, not copied): each byte is copied
//! once, from that buffer into the caller's slice. Once read out, the buffer is kept for the
//! next receive.
//!
//! A poll-based read holds no turn across polls: it runs only while the turn is free and
//! waits for it otherwise, so an owned-buffer read in progress finishes first, and an
//! owned-buffer read started while a poll's op is in flight resumes that op first. Either
//! way the bytes come out in the order the kernel delivered them.

use std::io;
use std::task::{Context, Poll, ready};

use super::{Arrived, Rescued, StreamSocket};

/// The smallest receive a poll-based read starts: a caller reading a few bytes at a time
/// (a length prefix, a header) is served from the leftover, not by an op per call.
const POLL_READ_MIN: usize = 8 * 1024;

/// The largest: a buffer the stream keeps between reads, so bounded.
const POLL_READ_MAX: usize = 64 * 1024;

impl StreamSocket {
    /// Reads into `out`: bytes a dropped read left first, else the bytes of the receive this
    /// stream keeps in flight for poll-based reads (started if there is none). `Ok(0)` is end
    /// of file, or an empty `out`.
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let room = out.len();
        self.poll_read_with(cx, room, |src| {
            let n = src.len().min(out.len());
            out[..n].copy_from_slice(&src[..n]);
            n
        })
    }

    /// [`poll_read`](Self::poll_read) for a destination that is not a slice (hyper's read
    /// cursor, which may be uninitialised): `fill` gets received bytes, copies what fits of
    /// them (at most `room`) and returns how many it took; the rest stays for the next read.
    /// `room` sizes the receive started, as `out.len()` does for `poll_read`.
    pub(crate) fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        room: usize,
        mut fill: impl FnMut(&[u8]) -> usize,
    ) -> Poll<io::Result<usize>> {
        if room == 0 {
            return Poll::Ready(Ok(0));
        }
        if !self.rescue.adopted.poll_turn_free(cx.waker()) {
            return Poll::Pending;
        }
        let mut started = false;
        loop {
            match ready!(self.rescue.poll_take(cx, &mut fill)) {
                Rescued::Bytes(n) => return Poll::Ready(Ok(n)),
                Rescued::Eof => return Poll::Ready(Ok(0)),
                Rescued::Failed(e) => return Poll::Ready(Err(e)),
                // The receive this poll started was cancelled (runtime shutdown): report it
                // rather than start another.
                Rescued::Nothing if started => {
                    return Poll::Ready(Err(io::Error::from_raw_os_error(libc::ECANCELED)));
                }
                Rescued::Nothing => {
                    let want = room.clamp(POLL_READ_MIN, POLL_READ_MAX);
                    let recv = self.recv_op(self.rescue.spare(want));
                    self.rescue
                        .adopted
                        .put(Box::pin(async move { arrived_in(recv.await) }));
                    started = true;
                }
            }
        }
    }
}

/// What a poll-based receive got: its buffer, which it filled from empty, as it is.
fn arrived_in((res, bytes): (io::Result<usize>, Vec<u8>)) -> io::Result<Arrived> {
    res.map(|_| Arrived {
        bytes,
        fds: Vec::new(),
        control_truncated: false,
    })
}
