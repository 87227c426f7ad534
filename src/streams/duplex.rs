//! [`Duplex`]: a [`StreamReader`] and a [`StreamWriter`] joined into one object that reads
//! and writes, for code that takes a single `AsyncRead + AsyncWrite` value.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncBufRead, AsyncRead, AsyncWrite};

use super::{StreamReader, StreamWriter};

/// A connection's reader and writer as one value: futures-io's `AsyncRead`, `AsyncBufRead`
/// and `AsyncWrite` (and tokio's, with the `tokio-io` feature), each delegated to the half
/// that does it. Made by [`StreamReader::join`] or [`Duplex::new`];
/// [`into_parts`](Self::into_parts) gives the halves back.
///
/// ```
/// use futures_lite::{AsyncBufReadExt, AsyncWriteExt};
/// use ringloop::streams::{Duplex, open_connection, start_server};
/// # ringloop::run(async {
/// // An echo server, written against one read-and-write object.
/// let server = start_server(
///     |reader, writer| async move {
///         let mut conn: Duplex = reader.join(writer);
///         let mut line = String::new();
///         while conn.read_line(&mut line).await.unwrap_or(0) > 0 {
///             conn.write_all(line.as_bytes()).await.unwrap();
///             line.clear();
///         }
///     },
///     "127.0.0.1:0",
/// )
/// .await
/// .unwrap();
/// let addr = server.local_addrs()[0].as_inet().unwrap();
/// let (reader, writer) = open_connection(addr).await.unwrap();
/// let mut conn = Duplex::new(reader, writer);
/// conn.write_all(b"hello\n").await.unwrap();
/// let mut echo = String::new();
/// conn.read_line(&mut echo).await.unwrap();
/// assert_eq!(echo, "hello\n");
/// AsyncWriteExt::close(&mut conn).await.unwrap();
/// server.close();
/// # });
/// ```
#[derive(Debug)]
pub struct Duplex {
    reader: StreamReader,
    writer: StreamWriter,
}

impl Duplex {
    /// Joins a reader and a writer (usually of one connection).
    pub fn new(reader: StreamReader, writer: StreamWriter) -> Duplex {
        Duplex { reader, writer }
    }

    /// The reader.
    pub fn reader(&mut self) -> &mut StreamReader {
        &mut self.reader
    }

    /// The writer.
    pub fn writer(&self) -> &StreamWriter {
        &self.writer
    }

    /// The reader and the writer, apart again.
    ///
    /// ```
    /// use ringloop::streams::{Duplex, open_connection};
    /// # ringloop::run(async {
    /// # let listener = ringloop::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let addr = listener.local_addr().unwrap();
    /// let (reader, writer) = open_connection(addr).await.unwrap();
    /// let mut conn = Duplex::new(reader, writer);
    /// conn.reader().feed_data(b"fed by hand\n");
    /// conn.writer().write(b"hello\n").unwrap();
    /// let (mut reader, writer) = conn.into_parts();
    /// assert_eq!(reader.readline().await.unwrap(), b"fed by hand\n");
    /// writer.close();
    /// # });
    /// ```
    pub fn into_parts(self) -> (StreamReader, StreamWriter) {
        (self.reader, self.writer)
    }
}

impl StreamReader {
    /// Joins this reader and `writer` into one [`Duplex`] value that reads and writes (see
    /// there for an example).
    pub fn join(self, writer: StreamWriter) -> Duplex {
        Duplex::new(self, writer)
    }
}

impl AsyncRead for Duplex {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl AsyncBufRead for Duplex {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().reader).poll_fill_buf(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        Pin::new(&mut self.get_mut().reader).consume(amt)
    }
}

impl AsyncWrite for Duplex {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_close(cx)
    }
}
