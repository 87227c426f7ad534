//! [`StreamFeeder`], the side that puts data into a [`StreamReader`](super::StreamReader), and the state the two
//! share.
//!
//! # How it works
//!
//! The feeding side (a protocol's `data_received`, or a test) appends to a shared *inbox*;
//! the reader moves the inbox into its own buffer whenever it looks for data. Keeping the
//! buffer the reader searches out of the shared cell is what lets the reader's
//! `AsyncBufRead` hand out a plain `&[u8]`.
//!
//! One count, `buffered` (inbox + the reader's unread bytes), drives flow control: past
//! 2 × `limit` the feeder asks the transport to pause reading; once the reader has consumed
//! down to `limit` it asks it to resume. A reader that must wait for more data while paused
//! (a `readexactly` larger than the window) resumes the transport first, so a large frame can
//! never deadlock against the pause.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// What a reader asks of the transport that feeds it (implemented by the stream protocol).
pub(crate) trait ReadFlowControl {
    /// Stop delivering data until `resume_reading`.
    fn pause_reading(&self);
    /// Deliver data again.
    fn resume_reading(&self);
}

/// State shared by a reader and its feeders.
pub(super) struct Incoming {
    /// Bytes fed and not yet moved into the reader's buffer.
    pub(super) inbox: Vec<u8>,
    /// Inbox plus the reader's unread bytes: the measure of flow control.
    pub(super) buffered: usize,
    /// `feed_eof` was called.
    pub(super) eof: bool,
    /// Set by `set_exception`; every read reports it once the buffered bytes are gone.
    pub(super) exception: Option<io::Error>,
    /// The reader waiting for data.
    pub(super) waker: Option<Waker>,
    pub(super) limit: usize,
    pub(super) flow: Option<Rc<dyn ReadFlowControl>>,
    /// The transport was asked to pause and has not been asked to resume.
    pub(super) paused: bool,
    /// The reader was dropped: nobody can read what is fed any more.
    pub(super) reader_gone: bool,
}

pub(super) type Shared = Rc<RefCell<Incoming>>;

/// A feeding handle of a [`StreamReader`](super::StreamReader): what a protocol's `data_received`, `eof_received`
/// and `connection_lost` call. Clones feed the same reader.
///
/// ```
/// use ringloop::streams::StreamReader;
/// # ringloop::run(async {
/// let mut reader = StreamReader::new();
/// let feeder = reader.feeder();
/// ringloop::spawn(async move {
///     feeder.feed_data(b"hello ");
///     ringloop::yield_now().await;
///     feeder.feed_data(b"world\n");
///     feeder.feed_eof();
/// });
/// assert_eq!(reader.readline().await.unwrap(), b"hello world\n");
/// assert_eq!(reader.readline().await.unwrap(), b"");
/// assert!(reader.at_eof());
/// # });
/// ```
#[derive(Clone)]
pub struct StreamFeeder {
    pub(super) shared: Shared,
}

impl std::fmt::Debug for StreamFeeder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.borrow();
        f.debug_struct("StreamFeeder")
            .field("buffered", &st.buffered)
            .field("eof", &st.eof)
            .finish_non_exhaustive()
    }
}

impl StreamFeeder {
    /// Disconnects flow control (the connection is gone; the hook may hold its transport).
    pub(crate) fn clear_flow_control(&self) {
        let mut st = self.shared.borrow_mut();
        st.flow = None;
        st.paused = false;
    }

    /// Appends `data` to the reader's buffer and wakes a waiting read. Past 2 × limit buffered
    /// bytes, asks the transport (if any) to pause reading.
    ///
    /// Data fed after [`feed_eof`](Self::feed_eof) is still delivered: the end of the stream
    /// takes effect once the buffer is empty.
    ///
    /// Once the reader is dropped, data is discarded (nobody can read it) and never pauses
    /// the transport.
    pub fn feed_data(&self, data: &[u8]) {
        let mut st = self.shared.borrow_mut();
        if data.is_empty() || st.reader_gone {
            return;
        }
        st.inbox.extend_from_slice(data);
        st.buffered += data.len();
        let waker = st.waker.take();
        let pause = if !st.paused && st.buffered > 2 * st.limit {
            st.flow.clone().inspect(|_| st.paused = true)
        } else {
            None
        };
        drop(st);
        if let Some(flow) = pause {
            flow.pause_reading();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Marks the end of the stream and wakes a waiting read.
    pub fn feed_eof(&self) {
        let waker = {
            let mut st = self.shared.borrow_mut();
            st.eof = true;
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Makes every read fail with `error` once the bytes already buffered have been read
    /// (asyncio's `set_exception`; a later call replaces the error). Wakes a waiting read.
    pub fn set_exception(&self, error: io::Error) {
        let waker = {
            let mut st = self.shared.borrow_mut();
            st.exception = Some(error);
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Connects flow control: the reader pauses and resumes `flow` from now on.
    pub(crate) fn set_flow_control(&self, flow: Rc<dyn ReadFlowControl>) {
        let mut st = self.shared.borrow_mut();
        let pause = !st.paused && st.buffered > 2 * st.limit;
        st.paused |= pause;
        st.flow = Some(Rc::clone(&flow));
        drop(st);
        if pause {
            flow.pause_reading();
        }
    }
}

impl Incoming {
    /// Empty shared state for a reader with `limit`.
    pub(super) fn new_shared(limit: usize) -> Shared {
        Rc::new(RefCell::new(Incoming {
            inbox: Vec::new(),
            buffered: 0,
            eof: false,
            exception: None,
            waker: None,
            limit,
            flow: None,
            paused: false,
            reader_gone: false,
        }))
    }
}

/// The reader is gone: drops what it had not read and resumes a paused transport, so a
/// connection kept for writing alone still sees its peer's EOF or reset.
pub(super) fn reader_dropped(shared: &Shared) {
    let mut st = shared.borrow_mut();
    st.reader_gone = true;
    st.inbox = Vec::new();
    st.buffered = 0;
    resume_paused(st);
}

/// The reader has read `n` more bytes: resumes the transport once the buffer has drained to
/// the limit.
pub(super) fn consumed(shared: &Shared, n: usize) {
    let mut st = shared.borrow_mut();
    st.buffered -= n;
    if st.buffered <= st.limit {
        resume_paused(st);
    }
}

/// Ready once the inbox has bytes, the stream ended or an error was set; else registers the
/// reader's waker and returns `Pending`.
pub(super) fn poll_more(shared: &Shared, cx: &mut Context<'_>) -> Poll<()> {
    let mut st = shared.borrow_mut();
    if !st.inbox.is_empty() || st.eof || st.exception.is_some() {
        return Poll::Ready(());
    }
    match &mut st.waker {
        Some(w) => w.clone_from(cx.waker()),
        None => st.waker = Some(cx.waker().clone()),
    }
    // The reader needs more than is buffered: a paused transport would never send it.
    resume_paused(st);
    Poll::Pending
}

/// Resumes the transport if the reader had paused it. The state is released first: the
/// transport may call back into it.
fn resume_paused(mut st: std::cell::RefMut<'_, Incoming>) {
    if !st.paused {
        return;
    }
    st.paused = false;
    let flow = st.flow.clone();
    drop(st);
    if let Some(flow) = flow {
        flow.resume_reading();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::StreamReader;
    use std::cell::Cell;

    /// Counts pause and resume requests and whether the transport is paused.
    #[derive(Default)]
    struct FakeTransport {
        paused: Cell<bool>,
        pauses: Cell<usize>,
        resumes: Cell<usize>,
    }

    impl ReadFlowControl for FakeTransport {
        fn pause_reading(&self) {
            assert!(!self.paused.replace(true), "paused twice");
            self.pauses.set(self.pauses.get() + 1);
        }
        fn resume_reading(&self) {
            assert!(self.paused.replace(false), "resumed while not paused");
            self.resumes.set(self.resumes.get() + 1);
        }
    }

    /// Past 2 × limit buffered bytes the transport is paused; reading down to the limit
    /// resumes it, and a pause is never requested twice.
    #[test]
    fn pauses_above_twice_the_limit_and_resumes_at_the_limit() {
        let mut reader = StreamReader::with_limit(10);
        let transport = Rc::new(FakeTransport::default());
        reader.feeder().set_flow_control(transport.clone());
        reader.feed_data(&[b'x'; 20]);
        assert!(!transport.paused.get(), "20 bytes is not above 2 x 10");
        reader.feed_data(b"y");
        assert!(transport.paused.get());
        reader.feed_data(b"z");
        assert_eq!(transport.pauses.get(), 1);
        futures_lite::future::block_on(async {
            reader.readexactly(11).await.unwrap();
            assert!(transport.paused.get(), "11 left is still above the limit");
            reader.readexactly(1).await.unwrap();
            assert!(!transport.paused.get(), "10 left is at the limit");
        });
        assert_eq!(transport.resumes.get(), 1);
    }

    /// A read that needs more than the pause window resumes the transport instead of waiting
    /// forever on a paused one.
    #[test]
    fn waiting_read_resumes_a_paused_transport() {
        let mut reader = StreamReader::with_limit(4);
        let transport = Rc::new(FakeTransport::default());
        reader.feeder().set_flow_control(transport.clone());
        reader.feed_data(&[0; 9]);
        assert!(transport.paused.get());
        let mut read = std::pin::pin!(reader.readexactly(20));
        assert!(
            futures_lite::future::block_on(futures_lite::future::poll_once(&mut read)).is_none()
        );
        assert!(
            !transport.paused.get(),
            "the waiting read resumed the transport"
        );
    }

    /// Dropping a reader resumes a paused transport, and later data neither accumulates nor
    /// pauses it again.
    #[test]
    fn dropped_reader_resumes_and_discards() {
        let reader = StreamReader::with_limit(4);
        let feeder = reader.feeder();
        let transport = Rc::new(FakeTransport::default());
        feeder.set_flow_control(transport.clone());
        feeder.feed_data(&[0; 9]);
        assert!(transport.paused.get());
        drop(reader);
        assert!(
            !transport.paused.get(),
            "the dropped reader resumed the transport"
        );
        feeder.feed_data(&[0; 100]);
        assert!(!transport.paused.get());
        assert_eq!(feeder.shared.borrow().buffered, 0);
    }
}
