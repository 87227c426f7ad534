//! hyper's [`rt::Read`](::hyper::rt::Read) and [`rt::Write`](::hyper::rt::Write) on
//! [`TcpStream`], [`UnixStream`] and their owned halves.
//!
//! - A socket's `poll_read` copies received bytes once, from the stream's receive buffer
//!   straight into the unfilled part of hyper's `ReadBufCursor` (`put_slice`, which writes
//!   into uninitialised memory without zeroing it first); bytes that do not fit stay in the
//!   stream for the next read, poll-based or owned-buffer. The receive lives in the stream,
//!   never in a future made per poll (see `net/stream/poll_read.rs`).
//! - Writes are the futures-io impls': `poll_write` accepts up to 64 KiB into the stream's
//!   send buffer (an error sending it is reported by the next call), `poll_flush` waits until
//!   every accepted byte is in the kernel, `poll_shutdown` is `poll_close` (flush, then shut
//!   the write direction down). Sockets and write halves are vectored: one call gathers
//!   every slice into the send buffer, so hyper's head and body go out in one send.
//! - The TLS stream's impls are in `tls.rs`: one copy of plaintext into the cursor, no
//!   zero-fill, writes not vectored.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use ::hyper::rt::{Read, ReadBufCursor, Write};
use futures_io::AsyncWrite;

use crate::net::{OwnedReadHalf, OwnedWriteHalf, PollReadWith, SplitStream, TcpStream, UnixStream};

/// Reads into hyper's cursor through `fill`: copies what fits, advancing the cursor.
fn poll_read_cursor<T: PollReadWith + ?Sized>(
    io: &T,
    cx: &mut Context<'_>,
    mut cursor: ReadBufCursor<'_>,
) -> Poll<io::Result<()>> {
    let room = cursor.remaining();
    io.poll_read_with(cx, room, |src| {
        let n = src.len().min(cursor.remaining());
        cursor.put_slice(&src[..n]);
        n
    })
    .map_ok(drop)
}

/// `rt::Read` through [`poll_read_cursor`].
macro_rules! hyper_read {
    ($ty:ty $(, $gen:ident)?) => {
        impl$(<$gen: SplitStream>)? Read for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: ReadBufCursor<'_>,
            ) -> Poll<io::Result<()>> {
                poll_read_cursor(&*self, cx, buf)
            }
        }
    };
}

hyper_read!(TcpStream);
hyper_read!(UnixStream);
hyper_read!(OwnedReadHalf<S>, S);

/// `rt::Write` through the type's futures-io `AsyncWrite`, vectored.
macro_rules! hyper_write_vectored {
    ($ty:ty $(, $gen:ident)?) => {
        impl$(<$gen: SplitStream>)? Write for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                AsyncWrite::poll_write(self, cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                AsyncWrite::poll_write_vectored(self, cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                AsyncWrite::poll_flush(self, cx)
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                AsyncWrite::poll_close(self, cx)
            }
        }
    };
}

hyper_write_vectored!(TcpStream);
hyper_write_vectored!(UnixStream);
hyper_write_vectored!(OwnedWriteHalf<S>, S);
