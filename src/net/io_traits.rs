//! futures-io's [`AsyncRead`] and [`AsyncWrite`] on [`TcpStream`], [`UnixStream`] and their
//! owned halves. The work is the stream core's (`stream/poll_read.rs`,
//! `stream/poll_write.rs`): the receive and the send live in the stream, never in a future
//! made per poll, so a poll abandoned while the kernel holds an op loses nothing.
//!
//! - `poll_read` copies bytes once, from the stream's receive buffer into the caller's
//!   slice; bytes that do not fit wait for the next read, poll-based or owned-buffer.
//! - `poll_write` accepts up to 64 KiB (copied into the stream's send buffer) and returns at
//!   once; the bytes go out without further polls (a task of the stream's own continues a
//!   short send). An error sending them is reported by the next `poll_write`, `poll_flush`
//!   or `poll_close`. `poll_flush` waits until every accepted byte is in the kernel.
//! - `poll_close` flushes, then shuts the write direction down (the peer sees end of file).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use super::split::sealed::Sealed;
use super::split::{OwnedReadHalf, OwnedWriteHalf, SplitStream};
use super::{TcpStream, UnixStream};

/// The slices of a vectored write, for the core's `poll_write_slices`.
fn slices<'a>(bufs: &'a [IoSlice<'a>]) -> Vec<&'a [u8]> {
    bufs.iter().map(|b| &b[..]).collect()
}

macro_rules! stream_io {
    ($ty:ty) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.stream_socket().poll_read(cx, buf)
            }
        }

        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.stream_socket().poll_write_slices(cx, &[buf])
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.stream_socket().poll_write_slices(cx, &slices(bufs))
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.stream_socket().poll_flush(cx)
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.stream_socket().poll_shutdown(cx)
            }
        }
    };
}

stream_io!(TcpStream);
stream_io!(UnixStream);

impl<S: SplitStream> AsyncRead for OwnedReadHalf<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.core().poll_read(cx, buf)
    }
}

impl<S: SplitStream> AsyncWrite for OwnedWriteHalf<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.core().poll_write_slices(cx, &[buf])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.core().poll_write_slices(cx, &slices(bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.core().poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.core().poll_shutdown(cx)
    }
}

/// Poll-based reads that hand received bytes to a closure rather than copy them into a
/// slice, for destinations that are not one (hyper's read cursor, possibly uninitialised):
/// `fill` copies what fits, at most `room` bytes, and returns how many it took; the rest stays
/// in the stream for the next read. Still one copy, from the receive buffer to wherever
/// `fill` puts it.
#[cfg(feature = "hyper")]
pub(crate) trait PollReadWith {
    fn poll_read_with<F: FnMut(&[u8]) -> usize>(
        &self,
        cx: &mut Context<'_>,
        room: usize,
        fill: F,
    ) -> Poll<io::Result<usize>>;
}

#[cfg(feature = "hyper")]
impl<S: Sealed> PollReadWith for S {
    fn poll_read_with<F: FnMut(&[u8]) -> usize>(
        &self,
        cx: &mut Context<'_>,
        room: usize,
        fill: F,
    ) -> Poll<io::Result<usize>> {
        self.stream_socket().poll_read_with(cx, room, fill)
    }
}

#[cfg(feature = "hyper")]
impl<S: SplitStream> PollReadWith for OwnedReadHalf<S> {
    fn poll_read_with<F: FnMut(&[u8]) -> usize>(
        &self,
        cx: &mut Context<'_>,
        room: usize,
        fill: F,
    ) -> Poll<io::Result<usize>> {
        self.core().poll_read_with(cx, room, fill)
    }
}
