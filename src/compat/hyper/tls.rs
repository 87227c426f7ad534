//! hyper's `rt::Read`/`rt::Write` on [`TlsStream`] (features `hyper` and `tls`).
//!
//! A read decrypts in the engine and copies the plaintext once, straight into the unfilled,
//! possibly uninitialised part of hyper's cursor, which is lent to the engine as a
//! [`CursorSpare`] for the length of the call; nothing is zeroed. Writes are the futures-io
//! impl's, not vectored: each slice of a vectored write would become a TLS record of its own.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::hyper::rt::{Read, ReadBufCursor, Write};
use futures_io::AsyncWrite;

use crate::buf::{IoBuf, IoBufMut};
use crate::tls::{TlsSocket, TlsStream};

/// The unfilled part of hyper's cursor as the spare capacity of an owned buffer, for the
/// engine's copy of plaintext. It lives only inside [`Read::poll_read`] below, which holds
/// the cursor's borrow for all of its life; it is never handed to an op.
struct CursorSpare {
    ptr: *mut u8,
    len: usize,
    /// Bytes written from the start, all initialised.
    filled: usize,
}

impl CursorSpare {
    fn new(spare: &mut [MaybeUninit<u8>]) -> CursorSpare {
        CursorSpare {
            ptr: spare.as_mut_ptr().cast(),
            len: spare.len(),
            filled: 0,
        }
    }
}

// A `CursorSpare` is made and dropped inside one `poll_read`, which holds the cursor's borrow
// all that time; the first `filled` bytes were written by `set_init`'s caller.
// SAFETY: `ptr` points to the cursor's `len` unfilled bytes, borrowed for our life, unmoved.
unsafe impl IoBuf for CursorSpare {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr
    }
    fn bytes_init(&self) -> usize {
        self.filled
    }
    fn bytes_total(&self) -> usize {
        self.len
    }
}

// SAFETY: as for `IoBuf`; `set_init` only records what the caller initialised.
unsafe impl IoBufMut for CursorSpare {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }
    unsafe fn set_init(&mut self, pos: usize) {
        self.filled = self.filled.max(pos);
    }
}

impl<S: TlsSocket> Read for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // The engine only writes plaintext into this memory, through `CursorSpare`.
        // SAFETY: nothing here de-initialises a byte of the cursor's unfilled part.
        let unfilled = unsafe { buf.as_mut() };
        let mut spare = CursorSpare::new(unfilled);
        std::task::ready!(self.get_mut().poll_read_spare(cx, &mut spare))?;
        // The engine calls `set_init` after each copy into the spare part.
        // SAFETY: the first `filled` bytes of the unfilled part were written, so are initialised.
        unsafe { buf.advance(spare.filled) };
        Poll::Ready(Ok(()))
    }
}

impl<S: TlsSocket> Write for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(self, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(self, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_close(self, cx)
    }
}
