//! [`StreamReader`]: asyncio's buffered reading end of a connection. The feeding side and
//! flow control are in `feeder.rs`.

use std::any::Any;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use futures_io::{AsyncBufRead, AsyncRead};

use super::error::{IncompleteReadError, LimitOverrunError, ReadError, copy_error};
use super::feeder::{self, Incoming, Shared, StreamFeeder};

/// The default limit of a [`StreamReader`]: 64 KiB, as in asyncio.
pub const DEFAULT_LIMIT: usize = 64 * 1024;

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
    /// Keeps the connection open while the reader lives (see the stream protocol).
    _keep_alive: Option<Rc<dyn Any>>,
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

impl Drop for StreamReader {
    fn drop(&mut self) {
        feeder::reader_dropped(&self.shared);
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
        let shared = Incoming::new_shared(limit);
        StreamReader {
            shared,
            buf: Vec::new(),
            pos: 0,
            limit,
            _keep_alive: None,
        }
    }

    /// Holds `owner` for as long as the reader lives.
    pub(crate) fn keep_alive(&mut self, owner: Rc<dyn Any>) {
        self._keep_alive = Some(owner);
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

    /// Marks `n` unread bytes as read (already advanced in `buf`).
    fn consumed(&mut self, n: usize) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        feeder::consumed(&self.shared, n);
    }

    /// Waits until more data, the end of the stream or an error arrives.
    async fn wait_for_data(&mut self) {
        poll_fn(|cx| feeder::poll_more(&self.shared, cx)).await
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
            ready!(feeder::poll_more(&self.shared, cx));
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
