//! [`StreamWriter`]: asyncio's writing end of a connection, a [`Transport`] plus the waits
//! that make its flow control usable from async code (`drain`, `wait_closed`).

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use futures_io::AsyncWrite;

use super::protocol::{CloseOnDrop, SharedWriteState};
use crate::transport::{ExtraInfo, Transport};

/// The writing end of a connection (asyncio's `StreamWriter`).
///
/// [`write`](Self::write) never blocks: it copies the bytes into the transport's buffer. Call
/// [`drain`](Self::drain) after writing to wait while that buffer is above its high-water
/// mark — the peer is not keeping up — so a fast writer cannot grow it without bound:
///
/// ```
/// use ringloop::streams::{open_connection, start_server};
/// # ringloop::run(async {
/// let server = start_server(
///     |mut reader, writer| async move {
///         while let Ok(line) = reader.readline().await {
///             if line.is_empty() || writer.write(&line).is_err() || writer.drain().await.is_err() {
///                 break;
///             }
///         }
///     },
///     "127.0.0.1:0",
/// )
/// .await
/// .unwrap();
/// let addr = server.local_addrs()[0].as_inet().unwrap();
/// let (mut reader, writer) = open_connection(addr).await.unwrap();
/// writer.write(b"ping\n").unwrap();
/// writer.drain().await.unwrap();
/// assert_eq!(reader.readline().await.unwrap(), b"ping\n");
/// writer.close();
/// writer.wait_closed().await.unwrap();
/// server.close();
/// # });
/// ```
///
/// It implements futures-io's [`AsyncWrite`]: `poll_write` waits (as `drain` does) while the
/// buffer is above the high-water mark and then takes the whole slice; `poll_flush` is
/// `drain` — it does not wait for every byte to reach the kernel, the transport sends the
/// rest on its own; `poll_close` is `close` then `wait_closed`, so every byte has been sent
/// when it returns `Ok`.
///
/// Dropping both the writer and its reader closes the connection (after the buffered bytes
/// are sent), as dropping a socket would.
pub struct StreamWriter {
    transport: Transport,
    state: SharedWriteState,
    _close_on_drop: Rc<CloseOnDrop>,
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl StreamWriter {
    pub(crate) fn new(
        transport: Transport,
        state: SharedWriteState,
        close_on_drop: Rc<CloseOnDrop>,
    ) -> StreamWriter {
        StreamWriter {
            transport,
            state,
            _close_on_drop: close_on_drop,
        }
    }

    /// Queues `data` to be sent (it is copied); follow with [`drain`](Self::drain).
    ///
    /// # Errors
    ///
    /// `NotConnected` once the writer is closing or the connection is lost, `InvalidInput`
    /// after [`write_eof`](Self::write_eof): those bytes will not be sent.
    pub fn write(&self, data: &[u8]) -> io::Result<()> {
        self.transport.write(data)
    }

    /// Queues each of `chunks`, in order.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub fn writelines<'a>(&self, chunks: impl IntoIterator<Item = &'a [u8]>) -> io::Result<()> {
        self.transport.writelines(chunks)
    }

    /// Waits until writing may go on: at once while the write buffer is at or below its
    /// high-water mark, else until it has drained to the low-water mark.
    ///
    /// # Errors
    ///
    /// Once the connection is lost: its error (a reset, ...), or `ConnectionReset` after an
    /// orderly close.
    pub async fn drain(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_drain(cx)).await
    }

    fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.state.borrow_mut().poll_drain(&self.transport, cx)
    }

    /// Ready when an `AsyncWrite` write may queue its bytes: after a drain, or at once on a
    /// closing transport (whose `write` then refuses them with its own error).
    fn poll_ready_to_write(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.state.borrow().lost_error() {
            return Poll::Ready(Err(e));
        }
        if self.transport.is_closing() {
            return Poll::Ready(Ok(()));
        }
        self.poll_drain(cx)
    }

    /// Shuts down the write side once the buffered bytes are sent: the peer reads EOF, and
    /// this side can still read. Later writes fail.
    pub fn write_eof(&self) {
        self.transport.write_eof();
    }

    /// Whether [`write_eof`](Self::write_eof) is supported (always, for TCP and Unix).
    pub fn can_write_eof(&self) -> bool {
        self.transport.can_write_eof()
    }

    /// Upgrades the connection to TLS in place (STARTTLS; asyncio's `StreamWriter.start_tls`,
    /// Python 3.11): what was written before is sent, then the handshake runs as `tls` says;
    /// afterwards this writer and its reader carry plaintext through TLS. Bytes the reader
    /// already buffered stay readable. See
    /// [`Transport::start_tls`](crate::transport::Transport::start_tls) for the errors.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use ringloop::streams;
    /// use ringloop::tls::{self, TlsAcceptor, TlsConnector};
    /// use ringloop::transport::StartTls;
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    /// # let cert = made.cert.der().clone();
    /// # let key = tls::PrivateKeyDer::try_from(made.signing_key.serialize_der()).unwrap();
    /// # let mut roots = tls::RootCertStore::empty();
    /// # roots.add(cert.clone()).unwrap();
    /// let acceptor = TlsAcceptor::new(Arc::new(tls::server_config(vec![cert], key).unwrap()));
    /// let connector = TlsConnector::new(Arc::new(tls::client_config(roots)));
    ///
    /// # ringloop::run(async move {
    /// let server = streams::start_server(
    ///     move |mut reader, writer| {
    ///         let acceptor = acceptor.clone();
    ///         async move {
    ///             assert_eq!(reader.readline().await.unwrap(), b"STARTTLS\n");
    ///             writer.write(b"go ahead\n").unwrap();
    ///             writer.start_tls(StartTls::server(&acceptor)).await.unwrap();
    ///             let secret = reader.readline().await.unwrap();
    ///             writer.write(&secret).unwrap();
    ///             writer.drain().await.unwrap();
    ///         }
    ///     },
    ///     "127.0.0.1:0",
    /// )
    /// .await
    /// .unwrap();
    /// let addr = server.local_addrs()[0].as_inet().unwrap();
    /// let (mut reader, writer) = streams::open_connection(addr).await.unwrap();
    /// writer.write(b"STARTTLS\n").unwrap();
    /// assert_eq!(reader.readline().await.unwrap(), b"go ahead\n");
    /// writer.start_tls(StartTls::client(&connector, "localhost")).await.unwrap();
    /// writer.write(b"now encrypted\n").unwrap();
    /// assert_eq!(reader.readline().await.unwrap(), b"now encrypted\n");
    /// server.close();
    /// # });
    /// ```
    #[cfg(feature = "tls")]
    pub async fn start_tls(&self, tls: crate::transport::StartTls) -> io::Result<()> {
        self.transport.start_tls(tls).await
    }

    /// Closes the connection: the buffered bytes are sent, then the socket closes. Reading
    /// stops too. Idempotent; see [`wait_closed`](Self::wait_closed).
    pub fn close(&self) {
        self.transport.close();
    }

    /// Whether the connection is closing or closed.
    pub fn is_closing(&self) -> bool {
        self.transport.is_closing()
    }

    /// Waits until the connection is closed (by [`close`](Self::close), the peer or an error).
    ///
    /// # Errors
    ///
    /// The error the connection was lost with, if any.
    pub async fn wait_closed(&self) -> io::Result<()> {
        poll_fn(|cx| self.state.borrow_mut().poll_closed(cx)).await
    }

    /// asyncio's `get_extra_info`: `"peername"`, `"sockname"`, `"socket"` (see
    /// [`Transport::get_extra_info`]).
    pub fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        self.transport.get_extra_info(name)
    }

    /// The transport underneath (for its buffer limits, `abort`, ...).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }
}

impl AsyncWrite for StreamWriter {
    /// Waits while the buffer is above the high-water mark, then queues all of `buf`.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_ready_to_write(cx))?;
        this.transport.write(buf)?;
        Poll::Ready(Ok(buf.len()))
    }

    /// As `poll_write`, queueing every slice (asyncio's `writelines`).
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_ready_to_write(cx))?;
        this.transport.writelines(bufs.iter().map(|b| &b[..]))?;
        Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()))
    }

    /// [`drain`](StreamWriter::drain).
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_drain(cx)
    }

    /// [`close`](StreamWriter::close), then [`wait_closed`](StreamWriter::wait_closed).
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.transport.close();
        this.state.borrow_mut().poll_closed(cx)
    }
}
