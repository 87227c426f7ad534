//! tokio's I/O traits on the net, fs, process and streams types, each through the type's
//! futures-io impl (see the [module docs](super)).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_io::{
    AsyncBufRead as FuturesBufRead, AsyncRead as FuturesRead, AsyncWrite as FuturesWrite,
};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};

use super::READ_MAX;
use crate::fs::File;
use crate::net::{OwnedReadHalf, OwnedWriteHalf, SplitStream, TcpStream, UnixStream};
use crate::process::{ChildStderr, ChildStdin, ChildStdout};
use crate::streams::{Duplex, StreamReader, StreamWriter};

/// A tokio read through futures-io: fills the unfilled part of `buf`, initialising only
/// what is not initialised yet (at most [`READ_MAX`] bytes).
pub(crate) fn poll_read_buf<R: FuturesRead + ?Sized>(
    reader: Pin<&mut R>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let want = buf.remaining().min(READ_MAX);
    if want == 0 {
        return Poll::Ready(Ok(()));
    }
    let n = ready!(reader.poll_read(cx, buf.initialize_unfilled_to(want)))?;
    buf.advance(n);
    Poll::Ready(Ok(()))
}

/// tokio's `AsyncRead` for types whose futures-io `AsyncRead` does the work.
macro_rules! tokio_read {
    ($(impl[$($g:tt)*] $ty:ty;)*) => {$(
        impl<$($g)*> AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                poll_read_buf(self, cx, buf)
            }
        }
    )*};
}

/// tokio's `AsyncWrite` for types whose futures-io `AsyncWrite` does the work;
/// `poll_shutdown` is futures-io's `poll_close`.
macro_rules! tokio_write {
    ($(impl[$($g:tt)*] $ty:ty;)*) => {$(
        impl<$($g)*> AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                FuturesWrite::poll_write(self, cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                FuturesWrite::poll_write_vectored(self, cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                FuturesWrite::poll_flush(self, cx)
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                FuturesWrite::poll_close(self, cx)
            }
        }
    )*};
}

/// tokio's `AsyncBufRead` for types with futures-io's.
macro_rules! tokio_buf_read {
    ($(impl[$($g:tt)*] $ty:ty;)*) => {$(
        impl<$($g)*> AsyncBufRead for $ty {
            fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
                FuturesBufRead::poll_fill_buf(self, cx)
            }

            fn consume(self: Pin<&mut Self>, amt: usize) {
                FuturesBufRead::consume(self, amt)
            }
        }
    )*};
}

tokio_read! {
    impl[] TcpStream;
    impl[] UnixStream;
    impl[S: SplitStream] OwnedReadHalf<S>;
    impl[] File;
    impl[] ChildStdout;
    impl[] ChildStderr;
    impl[] StreamReader;
    impl[] Duplex;
}

tokio_write! {
    impl[] TcpStream;
    impl[] UnixStream;
    impl[S: SplitStream] OwnedWriteHalf<S>;
    impl[] File;
    impl[] ChildStdin;
    impl[] StreamWriter;
    impl[] Duplex;
}

tokio_buf_read! {
    impl[] StreamReader;
    impl[] Duplex;
}
