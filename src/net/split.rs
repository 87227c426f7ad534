//! Owned halves of a byte stream: [`OwnedReadHalf`] and [`OwnedWriteHalf`], for a task that
//! reads while another writes.
//!
//! The runtime is single-threaded, so the halves share the stream through an `Rc`; reads and
//! writes are independent ops in the kernel, so the two directions never wait on each other.
//! As in tokio, dropping the write half shuts down the write direction, so the peer sees EOF
//! even while the read half lives on.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::rc::Rc;

use super::stream::StreamSocket;
use crate::buf::{IoBuf, IoBufMut};

pub(crate) mod sealed {
    /// Streams that can be split (sealed: [`TcpStream`](crate::net::TcpStream) and
    /// [`UnixStream`](crate::net::UnixStream)).
    pub trait Sealed: 'static {
        /// The shared stream core.
        fn stream_socket(&self) -> &super::StreamSocket;
    }
}

/// A stream that [`into_split`](crate::net::TcpStream::into_split) can divide: `TcpStream`
/// or `UnixStream`.
pub trait SplitStream: sealed::Sealed {}
impl<S: sealed::Sealed> SplitStream for S {}

pub(crate) fn split<S: SplitStream>(stream: S) -> (OwnedReadHalf<S>, OwnedWriteHalf<S>) {
    let stream = Rc::new(stream);
    (
        OwnedReadHalf {
            stream: Rc::clone(&stream),
        },
        OwnedWriteHalf {
            stream,
            shutdown_on_drop: true,
        },
    )
}

/// The reading half of a split stream; see [`TcpStream::into_split`](crate::net::TcpStream::into_split).
///
/// `as_ref()` gives the stream itself, for its addresses and options.
pub struct OwnedReadHalf<S: SplitStream> {
    stream: Rc<S>,
}

/// The writing half of a split stream; see [`TcpStream::into_split`](crate::net::TcpStream::into_split).
/// Dropping it shuts down the write direction of the stream.
pub struct OwnedWriteHalf<S: SplitStream> {
    stream: Rc<S>,
    shutdown_on_drop: bool,
}

/// The halves given to `reunite` came from different streams; here they are, unchanged.
pub struct ReuniteError<S: SplitStream>(pub OwnedReadHalf<S>, pub OwnedWriteHalf<S>);

impl<S: SplitStream> fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<S: SplitStream> fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves of two different streams")
    }
}

impl<S: SplitStream> std::error::Error for ReuniteError<S> {}

fn reunite<S: SplitStream>(
    read: OwnedReadHalf<S>,
    mut write: OwnedWriteHalf<S>,
) -> Result<S, ReuniteError<S>> {
    if !Rc::ptr_eq(&read.stream, &write.stream) {
        return Err(ReuniteError(read, write));
    }
    write.shutdown_on_drop = false;
    drop(write);
    match Rc::try_unwrap(read.stream) {
        Ok(stream) => Ok(stream),
        Err(_) => unreachable!("the two halves held the only references"),
    }
}

impl<S: SplitStream> OwnedReadHalf<S> {
    pub(super) fn core(&self) -> &StreamSocket {
        self.stream.stream_socket()
    }

    /// Reads into the spare capacity of `buf`; `Ok(0)` is EOF. As the stream's `read`.
    pub async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.core().read(buf).await
    }

    /// Reads into each buffer in turn. As the stream's `readv`.
    pub async fn readv<B: IoBufMut>(&self, bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
        self.core().readv(bufs).await
    }

    /// Reads until the spare capacity of `buf` is full. As the stream's `read_exact`.
    pub async fn read_exact<B: IoBufMut>(&self, buf: B) -> (io::Result<()>, B) {
        self.core().read_exact(buf).await
    }

    /// Puts the stream back together.
    ///
    /// # Errors
    ///
    /// [`ReuniteError`] (holding both halves) if `write` belongs to another stream.
    pub fn reunite(self, write: OwnedWriteHalf<S>) -> Result<S, ReuniteError<S>> {
        reunite(self, write)
    }
}

impl<S: SplitStream> OwnedWriteHalf<S> {
    pub(super) fn core(&self) -> &StreamSocket {
        self.stream.stream_socket()
    }

    /// Writes the initialised bytes of `buf`; may write fewer. As the stream's `write`.
    pub async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.core().write(buf).await
    }

    /// Writes each buffer in turn in one `sendmsg`. As the stream's `writev`.
    pub async fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
        self.core().writev(bufs).await
    }

    /// Writes all initialised bytes of `buf`. As the stream's `write_all`.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        self.core().write_all(buf).await
    }

    /// Shuts down the write direction now (the peer sees EOF); dropping the half does the
    /// same.
    pub fn shutdown(&self) -> io::Result<()> {
        self.core().socket().shutdown(Shutdown::Write)
    }

    /// Puts the stream back together (see [`OwnedReadHalf::reunite`]).
    ///
    /// # Errors
    ///
    /// [`ReuniteError`] if `read` belongs to another stream.
    pub fn reunite(self, read: OwnedReadHalf<S>) -> Result<S, ReuniteError<S>> {
        reunite(read, self)
    }
}

impl<S: SplitStream> Drop for OwnedWriteHalf<S> {
    fn drop(&mut self) {
        if !self.shutdown_on_drop {
            return;
        }
        if self.core().write_unsent() {
            // Bytes `poll_write` accepted go first: a task sends them, then shuts down.
            let stream = Rc::clone(&self.stream);
            let spawned = crate::runtime::with_context(|cx| {
                (!cx.shutting_down.get()).then(|| {
                    cx.spawn(async move {
                        let core = stream.stream_socket();
                        let _ = std::future::poll_fn(|cx| core.poll_flush(cx)).await;
                        let _ = core.socket().shutdown(Shutdown::Write);
                    })
                })
            });
            if let Some(Some(_detached)) = spawned {
                return;
            }
        }
        // The peer may be gone already (ENOTCONN): nothing left to shut down.
        let _ = self.core().socket().shutdown(Shutdown::Write);
    }
}

impl<S: SplitStream> AsRef<S> for OwnedReadHalf<S> {
    fn as_ref(&self) -> &S {
        &self.stream
    }
}

impl<S: SplitStream> AsRef<S> for OwnedWriteHalf<S> {
    fn as_ref(&self) -> &S {
        &self.stream
    }
}

impl<S: SplitStream + fmt::Debug> fmt::Debug for OwnedReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OwnedReadHalf").field(&self.stream).finish()
    }
}

impl<S: SplitStream + fmt::Debug> fmt::Debug for OwnedWriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OwnedWriteHalf").field(&self.stream).finish()
    }
}
