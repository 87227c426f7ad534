//! All socket reading of a stream transport happens here, in [`Reader::poll_receive`].
//!
//! A transport receives with one multishot receive into the loop's shared
//! [`BufRing`](crate::buf::BufRing): the kernel (or, on epoll, the backend's user-space pool)
//! picks a buffer only when data arrives, so an idle connection holds no buffer, and one
//! submission serves every chunk. Pausing reading stops the receive (the kernel stops taking
//! data, so TCP flow control slows the peer); chunks it had already received are still handed
//! out, and resuming arms a new receive. Nothing received is dropped.

use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::socket::StreamSocket;
use crate::buf::RingBuf;
use crate::net::RecvStream;

/// What one receive gave.
#[derive(Debug)]
pub(crate) enum Received {
    /// Bytes, in a ring buffer that goes back to the ring when dropped.
    Data(RingBuf),
    /// Bytes decrypted by a TLS link.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Plain(Vec<u8>),
    /// The peer shut down its write side.
    Eof,
    /// The receive failed (reset, ...).
    Failed(io::Error),
}

/// The read side of one stream transport.
pub(crate) struct Reader {
    recv: Option<RecvStream<'static>>,
}

impl Reader {
    pub(crate) fn new<S: StreamSocket>(socket: Rc<S>) -> Reader {
        // Without a ring (this cannot fail on a running loop short of memory exhaustion) the
        // first poll reports the error as a failed receive.
        let recv = crate::buf::loop_ring()
            .ok()
            .map(|ring| RecvStream::owning(socket, &ring));
        Reader { recv }
    }

    /// Whether a receive is live or draining what it got before a pause.
    pub(crate) fn is_in_flight(&self) -> bool {
        self.recv.as_ref().is_some_and(RecvStream::is_active)
    }

    /// The next chunk. `reading` false (paused) stops the receive: chunks already received
    /// are still returned, then this stays pending until reading resumes.
    pub(crate) fn poll_receive(&mut self, cx: &mut Context<'_>, reading: bool) -> Poll<Received> {
        let Some(recv) = &mut self.recv else {
            return Poll::Ready(Received::Failed(io::Error::other(
                "the loop's receive buffer ring could not be created",
            )));
        };
        if reading {
            recv.resume();
        } else if recv.is_receiving() {
            recv.stop();
        }
        loop {
            return match std::task::ready!(recv.poll_next_chunk(cx)) {
                Some(Ok(buf)) => Poll::Ready(Received::Data(buf)),
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Some(Err(e)) => Poll::Ready(Received::Failed(e)),
                None if recv.is_finished() => Poll::Ready(Received::Eof),
                // Stopped and drained: the task polls again once reading resumes.
                None => Poll::Pending,
            };
        }
    }

    /// Stops receiving and collects what the receive had already received, for a TLS
    /// upgrade (those bytes are the peer's first handshake bytes); an error ends it.
    #[cfg(feature = "tls")]
    pub(crate) async fn drain(&mut self, into: &mut Vec<u8>) -> io::Result<()> {
        let Some(recv) = &mut self.recv else {
            return Ok(());
        };
        recv.stop();
        while let Some(chunk) = recv.next().await {
            into.extend_from_slice(&chunk?);
        }
        self.recv = None;
        Ok(())
    }

    /// Stops receiving for good (the socket is about to close).
    pub(crate) fn stop(&mut self) {
        self.recv = None;
    }
}
