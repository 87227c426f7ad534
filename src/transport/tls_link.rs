//! The link of a TLS transport: the task's reads and writes go through a [`TlsStream`], so the
//! protocol sees plaintext only (asyncio's `SSLProtocol` between the socket and the app
//! protocol, here inside the transport's task).
//!
//! Flow control counts plaintext: a chunk taken from the write buffer stays counted until its
//! ciphertext is all in the kernel, so `get_write_buffer_size` is the plaintext not yet sent,
//! whether it waits in the buffer or in sealed records.

use std::io;
use std::task::{Context, Poll, ready};

use super::core::Core;
use super::reader::Received;
use super::socket::{LocalBoxFuture, WriteResult};
use super::stream::StreamBuffer;
use super::task::Link;
use crate::buf::IoBuf as _;
use crate::tls::{TlsSocket, TlsStream};

/// The most plaintext one delivery to the protocol carries.
const DELIVERY: usize = 64 * 1024;

pub(crate) struct TlsLink<S: TlsSocket> {
    tls: std::rc::Rc<TlsStream<S>>,
    /// The plaintext chunk being encrypted and sent, and how much of it the engine took.
    writing: Option<(Vec<u8>, usize)>,
    spare: Vec<u8>,
    /// The receive ended (end of stream or an error): nothing more is polled.
    received_end: bool,
}

impl<S: TlsSocket> TlsLink<S> {
    pub(crate) fn new(tls: TlsStream<S>) -> TlsLink<S> {
        TlsLink {
            tls: std::rc::Rc::new(tls),
            writing: None,
            spare: Vec::new(),
            received_end: false,
        }
    }
}

impl<S: TlsSocket> Link for TlsLink<S> {
    fn poll_receive(&mut self, cx: &mut Context<'_>, reading: bool) -> Poll<Received> {
        if self.received_end {
            return Poll::Pending;
        }
        let received = match ready!(self.tls.poll_plain(cx, reading, DELIVERY)) {
            Ok(Some(plain)) => return Poll::Ready(Received::Plain(plain)),
            // close_notify: the peer's clean end of the stream.
            Ok(None) => Received::Eof,
            // A truncation (no close_notify), a bad record, a failed receive.
            Err(e) => Received::Failed(e),
        };
        self.received_end = true;
        Poll::Ready(received)
    }

    fn is_receiving(&self) -> bool {
        self.tls.is_receiving()
    }

    fn write_idle(&self) -> bool {
        self.writing.is_none()
    }

    fn take_spare(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.spare)
    }

    fn start_write(&mut self, chunk: Vec<u8>) {
        self.writing = Some((chunk, 0));
    }

    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<WriteResult> {
        let Some((chunk, taken)) = &mut self.writing else {
            return Poll::Pending;
        };
        loop {
            if let Err(e) = ready!(self.tls.poll_send(cx)) {
                let (chunk, _) = self.writing.take().expect("checked above");
                let len = chunk.len();
                return Poll::Ready((Err(e), chunk.slice(..len)));
            }
            if *taken == chunk.len() {
                let (chunk, _) = self.writing.take().expect("checked above");
                let len = chunk.len();
                return Poll::Ready((Ok(len), chunk.slice(..len)));
            }
            match self.tls.encrypt(&chunk[*taken..]) {
                Ok(n) => *taken += n,
                Err(e) => {
                    let (chunk, _) = self.writing.take().expect("checked above");
                    let len = chunk.len();
                    return Poll::Ready((Err(e), chunk.slice(..len)));
                }
            }
        }
    }

    fn finish_write(&mut self, (res, slice): WriteResult, core: &mut Core<StreamBuffer>) {
        match res {
            Ok(n) => {
                core.sent(n);
                let mut chunk = slice.into_inner();
                if chunk.capacity() <= 256 * 1024 {
                    chunk.clear();
                    self.spare = chunk;
                }
            }
            Err(e) => core.abort(Some(e)),
        }
    }

    fn shutdown_write(&mut self) -> LocalBoxFuture<io::Result<()>> {
        let tls = std::rc::Rc::clone(&self.tls);
        Box::pin(async move { tls.shutdown().await })
    }

    fn close(&mut self) -> LocalBoxFuture<()> {
        let tls = std::rc::Rc::clone(&self.tls);
        Box::pin(async move {
            // Best effort, bounded by the shutdown timeout: the connection closes either way.
            let _ = tls.shutdown().await;
        })
    }

    fn stop(&mut self) {
        self.writing = None;
    }
}
