//! [`StreamReader`]: asyncio's buffered reading end of a connection, and [`StreamFeeder`], the
//! handle that puts data into it.
//!
//! # How it works
//!
//! The feeding side (a protocol's `data_received`, or a test) appends to a shared *inbox*;
//! the reader moves the inbox into its own buffer whenever it looks for data. Keeping the
//! buffer the reader searches out of the shared cell is what lets [`AsyncBufRead`] hand out
//! a plain `&[u8]`.
//!
//! One count, `buffered` (inbox + the reader's unread bytes), drives flow control: past
//! 2 × `limit` the feeder asks the transport to pause reading; once the reader has consumed
//! down to `limit` it asks it to resume. A reader that must wait for more data while paused
//! (a `readexactly` larger than the window) resumes the transport first, so a large frame can
//! never deadlock against the pause.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker, ready};

use futures_io::{AsyncBufRead, AsyncRead};

use super::error::{IncompleteReadError, LimitOverrunError, ReadError, copy_error};

/// The default limit of a [`StreamReader`]: 64 KiB, as in asyncio.
pub const DEFAULT_LIMIT: usize = 64 * 1024;

/// What a reader asks of the transport that feeds it (implemented by the stream protocol).
pub(crate) trait ReadFlowControl {
    /// Stop delivering data until `resume_reading`.
    fn pause_reading(&self);
    /// Deliver data again.
    fn resume_reading(&self);
}

/// State shared by a reader and its feeders.
struct Incoming {
    /// Bytes fed and not yet moved into the reader's buffer.
    inbox: Vec<u8>,
    /// Inbox plus the reader's unread bytes: the measure of flow control.
    buffered: usize,
    /// `feed_eof` was called.
    eof: bool,
    /// Set by `set_exception`; every read reports it once the buffered bytes are gone.
    exception: Option<io::Error>,
    /// The reader waiting for data.
    waker: Option<Waker>,
    limit: usize,
    flow: Option<Rc<dyn ReadFlowControl>>,
    /// The transport was asked to pause and has not been asked to resume.
    paused: bool,
}

type Shared = Rc<RefCell<Incoming>>;

/// A feeding handle of a [`StreamReader`]: what a protocol's `data_received`, `eof_received`
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
    shared: Shared,
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
    /// Appends `data` to the reader's buffer and wakes a waiting read. Past 2 × limit buffered
    /// bytes, asks the transport (if any) to pause reading.
    ///
    /// Data fed after [`feed_eof`](Self::feed_eof) is still delivered: the end of the stream
    /// takes effect once the buffer is empty.
    pub fn feed_data(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let mut st = self.shared.borrow_mut();
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
    #[allow(dead_code)] // Until the stream protocol (which calls it) lands.
    pub(crate) fn set_flow_control(&self, flow: Rc<dyn ReadFlowControl>) {
        let mut st = self.shared.borrow_mut();
        let pause = !st.paused && st.buffered > 2 * st.limit;
        st.paused = pause;
        st.flow = Some(Rc::clone(&flow));
        drop(st);
        if pause {
            flow.pause_reading();
        }
    }
}

/// The reading end of a connection (asyncio's `StreamReader`): a buffer with framed reads.
///
/// Data comes from a [`StreamFeeder`] (the connection's protocol, or
/// [`feed_data`](Self::feed_data) directly). Reads take `&mut self`: one task reads at a time.
/// Every read is cancel-safe: a read future dropped before it completes consumes nothing.
///
/// Framed reads ([`readline`](Self::readline), [`readuntil`](Self::readuntil)) refuse frames
/// longer than the *limit* (default [`DEFAULT_LIMIT`]) with [`LimitOverrunError`], leaving the
/// bytes in the buffer. The type also implements futures-io's [`AsyncRead`] and
/// [`AsyncBufRead`], so codecs and `futures-lite`/`futures` helpers work on it.
///
/// After [`set_exception`](Self::set_exception) (a connection error), reads still return the
/// bytes that arrived before it, then the error. (asyncio raises at once; here no received
/// byte is lost.)
///
/// ```
/// use ringloop::streams::StreamReader;
/// # ringloop::run(async {
/// let mut reader = StreamReader::new();
/// reader.feed_data(b"GET / HTTP/1.1\r\nbody");
/// reader.feed_eof();
/// assert_eq!(reader.readuntil(b"\r\n").await.unwrap(), b"GET / HTTP/1.1\r\n");
/// assert_eq!(reader.read(2).await.unwrap(), b"bo");
/// assert_eq!(reader.read_until_eof().await.unwrap(), b"dy");
/// assert!(reader.at_eof());
/// # });
/// ```
pub struct StreamReader {
    shared: Shared,
    /// Bytes moved out of the inbox; `buf[pos..]` are unread.
    buf: Vec<u8>,
    pos: usize,
    limit: usize,
}

impl std::fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.borrow();
        f.debug_struct("StreamReader")
            .field("limit", &self.limit)
            .field("buffered", &st.buffered)
            .field("eof", &st.eof)
            .field("exception", &st.exception)
            .field("paused", &st.paused)
            .finish_non_exhaustive()
    }
}

impl Default for StreamReader {
    fn default() -> Self {
        StreamReader::new()
    }
}

impl StreamReader {
    /// An empty reader with the [`DEFAULT_LIMIT`].
    pub fn new() -> StreamReader {
        StreamReader::with_limit(DEFAULT_LIMIT)
    }

    /// An empty reader whose framed reads accept frames up to `limit` bytes (a limit of 0 is
    /// taken as 1). The transport is paused past 2 × `limit` buffered bytes.
    pub fn with_limit(limit: usize) -> StreamReader {
        let limit = limit.max(1);
        let shared = Rc::new(RefCell::new(Incoming {
            inbox: Vec::new(),
            buffered: 0,
            eof: false,
            exception: None,
            waker: None,
            limit,
            flow: None,
            paused: false,
        }));
        StreamReader {
            shared,
            buf: Vec::new(),
            pos: 0,
            limit,
        }
    }

    /// The limit of framed reads.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A handle that feeds this reader from elsewhere (another task, a protocol).
    pub fn feeder(&self) -> StreamFeeder {
        StreamFeeder {
            shared: Rc::clone(&self.shared),
        }
    }

    /// Appends `data` (see [`StreamFeeder::feed_data`]).
    pub fn feed_data(&self, data: &[u8]) {
        self.feeder().feed_data(data);
    }

    /// Marks the end of the stream (see [`StreamFeeder::feed_eof`]).
    pub fn feed_eof(&self) {
        self.feeder().feed_eof();
    }

    /// Sets the error reads report (see [`StreamFeeder::set_exception`]).
    pub fn set_exception(&self, error: io::Error) {
        self.feeder().set_exception(error);
    }

    /// A copy of the error set by [`set_exception`](Self::set_exception), if any.
    pub fn exception(&self) -> Option<io::Error> {
        self.shared.borrow().exception.as_ref().map(copy_error)
    }

    /// Whether the stream has ended and every byte has been read.
    pub fn at_eof(&self) -> bool {
        let st = self.shared.borrow();
        st.eof && st.buffered == 0
    }

    /// Bytes received and not yet read.
    pub fn buffered(&self) -> usize {
        self.shared.borrow().buffered
    }

    /// Reads up to `n` bytes: whatever is buffered (waiting for data if nothing is). An empty
    /// result for `n > 0` means the end of the stream.
    ///
    /// # Errors
    ///
    /// The error set by [`set_exception`](Self::set_exception), once the buffer is empty.
    pub async fn read(&mut self, n: usize) -> io::Result<Vec<u8>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        loop {
            self.pull();
            let unread = self.buf.len() - self.pos;
            if unread > 0 {
                return Ok(self.take(n.min(unread)));
            }
            if let Some(e) = self.stored_error() {
                return Err(e);
            }
            if self.shared.borrow().eof {
                return Ok(Vec::new());
            }
            self.wait_for_data().await;
        }
    }

    /// Reads until the end of the stream (asyncio's `read(-1)`); no limit applies.
    ///
    /// # Errors
    ///
    /// The error set by [`set_exception`](Self::set_exception); the bytes buffered so far stay
    /// in the reader.
    pub async fn read_until_eof(&mut self) -> io::Result<Vec<u8>> {
        loop {
            self.pull();
            if let Some(e) = self.stored_error() {
                return Err(e);
            }
            if self.shared.borrow().eof {
                let unread = self.buf.len() - self.pos;
                return Ok(self.take(unread));
            }
            self.wait_for_data().await;
        }
    }

    /// Reads one line, `\n` included. At the end of the stream, returns the last bytes
    /// without a `\n` (empty once everything was read).
    ///
    /// # Errors
    ///
    /// [`ReadError::LimitOverrun`] for a line longer than the limit (unlike asyncio, the bytes
    /// stay buffered), or [`ReadError::Io`] for a connection error.
    pub async fn readline(&mut self) -> Result<Vec<u8>, ReadError> {
        match self.readuntil(b"\n").await {
            Err(ReadError::Incomplete(e)) => Ok(e.partial),
            other => other,
        }
    }

    /// Reads up to and including `separator`.
    ///
    /// ```
    /// use ringloop::streams::StreamReader;
    /// # ringloop::run(async {
    /// let mut reader = StreamReader::new();
    /// reader.feed_data(b"key=value;rest");
    /// assert_eq!(reader.readuntil(b";").await.unwrap(), b"key=value;");
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// - [`ReadError::LimitOverrun`]: the separator is not within the limit; the bytes stay
    ///   buffered.
    /// - [`ReadError::Incomplete`]: the stream ended first; the error carries the bytes
    ///   (taken out of the buffer).
    /// - [`ReadError::Io`]: a connection error, or an empty separator (`InvalidInput`).
    pub async fn readuntil(&mut self, separator: &[u8]) -> Result<Vec<u8>, ReadError> {
        if separator.is_empty() {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "readuntil: empty separator");
            return Err(ReadError::Io(e));
        }
        // Unread bytes before `from` hold no separator: each wake searches only what is new.
        let mut from = 0;
        loop {
            self.pull();
            let unread = self.buf.len() - self.pos;
            if let Some(at) = find(&self.buf[self.pos + from..], separator).map(|i| i + from) {
                if at > self.limit {
                    return Err(self.overrun(at, true));
                }
                return Ok(self.take(at + separator.len()));
            }
            from = (unread + 1).saturating_sub(separator.len());
            if from > self.limit {
                return Err(self.overrun(from, false));
            }
            if let Some(e) = self.stored_error() {
                return Err(ReadError::Io(e));
            }
            if self.shared.borrow().eof {
                let partial = self.take(unread);
                let e = IncompleteReadError {
                    partial,
                    expected: None,
                };
                return Err(ReadError::Incomplete(e));
            }
            self.wait_for_data().await;
        }
    }

    /// Reads exactly `n` bytes.
    ///
    /// # Errors
    ///
    /// - [`ReadError::Incomplete`]: the stream ended first; the error carries the bytes that
    ///   arrived and `expected == Some(n)`.
    /// - [`ReadError::Io`]: a connection error; the bytes that arrived stay buffered.
    pub async fn readexactly(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        loop {
            self.pull();
            let unread = self.buf.len() - self.pos;
            if unread >= n {
                return Ok(self.take(n));
            }
            if let Some(e) = self.stored_error() {
                return Err(ReadError::Io(e));
            }
            if self.shared.borrow().eof {
                let partial = self.take(unread);
                let e = IncompleteReadError {
                    partial,
                    expected: Some(n),
                };
                return Err(ReadError::Incomplete(e));
            }
            self.wait_for_data().await;
        }
    }

    fn overrun(&self, consumed: usize, separator_found: bool) -> ReadError {
        ReadError::LimitOverrun(LimitOverrunError {
            consumed,
            limit: self.limit,
            separator_found,
        })
    }

    fn stored_error(&self) -> Option<io::Error> {
        self.shared.borrow().exception.as_ref().map(copy_error)
    }

    /// Moves the inbox into the reader's buffer.
    fn pull(&mut self) {
        let mut st = self.shared.borrow_mut();
        if st.inbox.is_empty() {
            return;
        }
        if self.pos == self.buf.len() {
            // Everything was read: take the inbox whole and give it our empty buffer to fill.
            self.buf.clear();
            self.pos = 0;
            std::mem::swap(&mut self.buf, &mut st.inbox);
            return;
        }
        if self.pos >= self.buf.len() / 2 {
            // Reclaim the read prefix once it is at least half the buffer: amortised O(1).
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(&st.inbox);
        st.inbox.clear();
    }

    /// Takes `n` unread bytes (`n` ≤ unread).
    fn take(&mut self, n: usize) -> Vec<u8> {
        let out = if self.pos == 0 && n == self.buf.len() {
            std::mem::take(&mut self.buf)
        } else {
            let out = self.buf[self.pos..self.pos + n].to_vec();
            self.pos += n;
            out
        };
        self.consumed(n);
        out
    }

    /// Marks `n` unread bytes as read (already advanced in `buf`); resumes the transport once
    /// the buffer has drained to the limit.
    fn consumed(&mut self, n: usize) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let mut st = self.shared.borrow_mut();
        st.buffered -= n;
        let resume = if st.paused && st.buffered <= st.limit {
            st.paused = false;
            st.flow.clone()
        } else {
            None
        };
        drop(st);
        if let Some(flow) = resume {
            flow.resume_reading();
        }
    }

    /// Waits until more data, the end of the stream or an error arrives.
    async fn wait_for_data(&mut self) {
        poll_fn(|cx| self.poll_wait_for_data(cx)).await
    }

    fn poll_wait_for_data(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.shared.borrow_mut();
        if !st.inbox.is_empty() || st.eof || st.exception.is_some() {
            return Poll::Ready(());
        }
        match &mut st.waker {
            Some(w) => w.clone_from(cx.waker()),
            None => st.waker = Some(cx.waker().clone()),
        }
        // The reader needs more than is buffered: a paused transport would never send it.
        let resume = if st.paused {
            st.paused = false;
            st.flow.clone()
        } else {
            None
        };
        drop(st);
        if let Some(flow) = resume {
            flow.resume_reading();
        }
        Poll::Pending
    }

    /// The unread bytes, waiting for some unless the stream ended; an error only once the
    /// buffer is empty.
    fn poll_unread(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        loop {
            self.pull();
            if self.pos < self.buf.len() {
                break;
            }
            if let Some(e) = self.stored_error() {
                return Poll::Ready(Err(e));
            }
            if self.shared.borrow().eof {
                break;
            }
            ready!(self.poll_wait_for_data(cx));
        }
        Poll::Ready(Ok(&self.buf[self.pos..]))
    }
}

impl AsyncRead for StreamReader {
    /// Copies buffered bytes into `out`, waiting if there are none; `Ok(0)` at the end of the
    /// stream.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let unread = ready!(this.poll_unread(cx))?;
        let n = unread.len().min(out.len());
        out[..n].copy_from_slice(&unread[..n]);
        this.pos += n;
        this.consumed(n);
        Poll::Ready(Ok(n))
    }
}

impl AsyncBufRead for StreamReader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.get_mut().poll_unread(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        let amt = amt.min(this.buf.len() - this.pos);
        this.pos += amt;
        this.consumed(amt);
    }
}

/// Index of the first `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return haystack.iter().position(|&b| b == needle[0]);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
