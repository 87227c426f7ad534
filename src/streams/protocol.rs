//! The protocol between a [`Transport`] and a reader/writer pair (asyncio's
//! `StreamReaderProtocol` with its `FlowControlMixin`), and the state it shares with the
//! [`StreamWriter`](super::StreamWriter).
//!
//! - Received bytes, the peer's EOF and a lost connection go to the reader's [`StreamFeeder`].
//! - The reader pauses and resumes the transport's reading through [`PauseReading`].
//! - `pause_writing`/`resume_writing` and `connection_lost` go to [`WriteState`], where the
//!   writer's `drain` and `wait_closed` wait.
//! - [`CloseOnDrop`], held by both the reader and the writer, closes the transport when the
//!   last of the two is dropped, so a forgotten connection does not stay open forever.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::error::copy_error;
use super::feeder::{ReadFlowControl, StreamFeeder};
use super::reader::StreamReader;
use super::writer::StreamWriter;
use crate::transport::{Protocol, Transport};

/// What the writer waits on, updated by the protocol's callbacks.
#[derive(Default)]
pub(crate) struct WriteState {
    /// Between `pause_writing` and `resume_writing`.
    paused: bool,
    /// `connection_lost` was called: `Some(None)` after an orderly close, `Some(Some(e))`
    /// after an error.
    lost: Option<Option<io::Error>>,
    /// Tasks in `drain` (or a pending `poll_write`).
    drain_waiters: Vec<Waker>,
    /// Tasks in `wait_closed` (or `poll_close`).
    close_waiters: Vec<Waker>,
}

pub(crate) type SharedWriteState = Rc<RefCell<WriteState>>;

impl WriteState {
    /// Ready once writing may go on: `Ok` while the transport is below its high-water mark
    /// (or resumed after a pause), the connection error (or `ConnectionReset`) once lost.
    pub(crate) fn poll_drain(
        &mut self,
        transport: &Transport,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(lost) = &self.lost {
            return Poll::Ready(Err(match lost {
                Some(e) => copy_error(e),
                None => io::Error::new(io::ErrorKind::ConnectionReset, "connection lost"),
            }));
        }
        // The transport queues `pause_writing` for its task to deliver, so right after a
        // `write` the callback may not have arrived yet: a buffer above the high-water mark
        // counts as paused too (its `resume_writing` is then certain to follow).
        let (_, high) = transport.get_write_buffer_limits();
        if !self.paused && transport.get_write_buffer_size() <= high {
            return Poll::Ready(Ok(()));
        }
        if !self.drain_waiters.iter().any(|w| w.will_wake(cx.waker())) {
            self.drain_waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Ready once the connection is lost: `Ok` after an orderly close, else its error.
    pub(crate) fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &self.lost {
            Some(None) => Poll::Ready(Ok(())),
            Some(Some(e)) => Poll::Ready(Err(copy_error(e))),
            None => {
                if !self.close_waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    self.close_waiters.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// The error of a lost connection, if it was lost with one.
    pub(crate) fn lost_error(&self) -> Option<io::Error> {
        self.lost.as_ref()?.as_ref().map(copy_error)
    }

    fn wake_drain(&mut self) {
        for w in self.drain_waiters.drain(..) {
            w.wake();
        }
    }
}

/// Pauses and resumes a transport's reading for the reader's flow control.
struct PauseReading(Transport);

impl ReadFlowControl for PauseReading {
    fn pause_reading(&self) {
        self.0.pause_reading();
    }
    fn resume_reading(&self) {
        self.0.resume_reading();
    }
}

/// Closes the transport when dropped: held by a reader and its writer, so the connection
/// closes (after sending what was written) once both are gone.
pub(crate) struct CloseOnDrop(pub(crate) Transport);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Runs when the transport is made: receives the reader and the writer of the connection.
type OnConnect = Box<dyn FnOnce(StreamReader, StreamWriter)>;

/// The stream protocol of one connection.
pub(crate) struct StreamProtocol {
    feeder: StreamFeeder,
    write_state: SharedWriteState,
    /// The reader until `connection_made` pairs it with its writer.
    reader: Option<StreamReader>,
    /// Where the pair goes (a server's client callback); without it the pair is kept in
    /// `made` for the caller of `create_connection`.
    on_connect: Option<OnConnect>,
    made: Option<(StreamReader, StreamWriter)>,
}

impl StreamProtocol {
    /// A protocol for a new reader with `limit` whose pair goes to `on_connect` (a server's
    /// callback), or is kept for [`take_pair`](Self::take_pair) when `on_connect` is `None`.
    pub(crate) fn new(limit: usize, on_connect: Option<OnConnect>) -> StreamProtocol {
        let reader = StreamReader::with_limit(limit);
        StreamProtocol {
            feeder: reader.feeder(),
            write_state: SharedWriteState::default(),
            reader: Some(reader),
            on_connect,
            made: None,
        }
    }

    /// The reader and writer made in `connection_made` (once).
    pub(crate) fn take_pair(&mut self) -> Option<(StreamReader, StreamWriter)> {
        self.made.take()
    }
}

impl Protocol for StreamProtocol {
    fn connection_made(&mut self, transport: Transport) {
        self.feeder
            .set_flow_control(Rc::new(PauseReading(transport.clone())));
        let Some(mut reader) = self.reader.take() else {
            return;
        };
        let guard = Rc::new(CloseOnDrop(transport.clone()));
        reader.keep_alive(guard.clone());
        let writer = StreamWriter::new(transport, Rc::clone(&self.write_state), guard);
        match self.on_connect.take() {
            Some(on_connect) => on_connect(reader, writer),
            None => self.made = Some((reader, writer)),
        }
    }

    fn data_received(&mut self, data: &[u8]) {
        self.feeder.feed_data(data);
    }

    fn eof_received(&mut self) -> bool {
        self.feeder.feed_eof();
        // Keep the write side open: the other direction may still have a lot to say.
        true
    }

    fn connection_lost(&mut self, err: Option<io::Error>) {
        match &err {
            None => self.feeder.feed_eof(),
            Some(e) => self.feeder.set_exception(copy_error(e)),
        }
        // The flow-control hook holds the transport: let it go with the connection.
        self.feeder.clear_flow_control();
        let mut st = self.write_state.borrow_mut();
        st.lost = Some(err);
        st.wake_drain();
        for w in st.close_waiters.drain(..) {
            w.wake();
        }
    }

    fn pause_writing(&mut self) {
        self.write_state.borrow_mut().paused = true;
    }

    fn resume_writing(&mut self) {
        let mut st = self.write_state.borrow_mut();
        st.paused = false;
        st.wake_drain();
    }
}
