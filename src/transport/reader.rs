//! All socket reading of a stream transport happens here, in [`Reader::poll_receive`].
//!
//! Today it keeps one owned-buffer read op in flight and reuses its buffer. This is the one
//! place to swap for a multishot receive on a provided buffer ring (so an idle connection holds
//! no buffer): the task only sees [`Received`] events and hands buffers back with
//! [`Reader::recycle`], and pausing only stops it from calling `poll_receive` for new reads.

use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::socket::{LocalBoxFuture, ReadResult, StreamSocket};

/// Bytes asked for per read (asyncio's selector transports read up to 256 KiB; 64 KiB keeps
/// the per-connection buffer modest while a buffer ring is not in use).
const READ_SIZE: usize = 64 * 1024;

/// What one read gave.
#[derive(Debug)]
pub(crate) enum Received {
    /// Bytes; the whole vector is the data. Hand it back with [`Reader::recycle`].
    Data(Vec<u8>),
    /// The peer shut down its write side.
    Eof,
    /// The read failed (reset, ...).
    Failed(io::Error),
}

/// The read side of one stream transport.
pub(crate) struct Reader<S> {
    socket: Rc<S>,
    in_flight: Option<LocalBoxFuture<ReadResult>>,
    spare: Option<Vec<u8>>,
}

impl<S: StreamSocket> Reader<S> {
    pub(crate) fn new(socket: Rc<S>) -> Reader<S> {
        Reader {
            socket,
            in_flight: None,
            spare: None,
        }
    }

    /// Whether a read op is in flight (it may complete even while reading is paused).
    pub(crate) fn is_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Polls the read in flight, starting one first if there is none.
    pub(crate) fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<Received> {
        loop {
            let read = self.in_flight.get_or_insert_with(|| {
                let buf = self
                    .spare
                    .take()
                    .unwrap_or_else(|| Vec::with_capacity(READ_SIZE));
                Rc::clone(&self.socket).read_owned(buf)
            });
            let (res, buf) = std::task::ready!(read.as_mut().poll(cx));
            self.in_flight = None;
            return Poll::Ready(match res {
                Ok(0) => {
                    self.recycle(buf);
                    Received::Eof
                }
                Ok(_) => Received::Data(buf),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    self.recycle(buf);
                    continue;
                }
                Err(e) => {
                    self.recycle(buf);
                    Received::Failed(e)
                }
            });
        }
    }

    /// Takes back the buffer of a [`Received::Data`] once its bytes were delivered.
    pub(crate) fn recycle(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        self.spare = Some(buf);
    }

    /// Drops the read in flight (the stream adopts it; the socket is about to close anyway).
    pub(crate) fn stop(&mut self) {
        self.in_flight = None;
    }
}
