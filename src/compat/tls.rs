//! tokio's `AsyncRead`/`AsyncWrite` on [`TlsStream`] (feature `tokio-io`), through its
//! futures-io impls: a read decrypts into the engine's plaintext buffer and is copied once
//! into the caller's `ReadBuf`; a write is taken as futures-io's `poll_write` takes it, and
//! `poll_shutdown` is its `poll_close` (close_notify, then the write side shut down). Not
//! vectored: each slice a vectored write hands over would become a TLS record of its own.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::AsyncWrite as FuturesWrite;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::tls::{TlsSocket, TlsStream};

impl<S: TlsSocket> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        super::tokio_io::poll_read_buf(self, cx, buf)
    }
}

impl<S: TlsSocket> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        FuturesWrite::poll_write(self, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        FuturesWrite::poll_flush(self, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        FuturesWrite::poll_close(self, cx)
    }
}
