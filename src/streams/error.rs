//! The errors of [`StreamReader`](super::StreamReader)'s framed reads, asyncio's
//! `IncompleteReadError` and `LimitOverrunError`, and [`ReadError`], which is one of them or an
//! I/O error. Each converts into [`io::Error`] with a kind a caller of `std::io` expects.

use std::fmt;
use std::io;

/// The stream ended before a framed read was complete (asyncio's `IncompleteReadError`).
///
/// The bytes that did arrive are in [`partial`](Self::partial): they have left the reader's
/// buffer and are handed over here, so nothing is lost.
///
/// ```
/// use ringloop::streams::{ReadError, StreamReader};
/// # ringloop::run(async {
/// let mut reader = StreamReader::new();
/// reader.feed_data(b"abc");
/// reader.feed_eof();
/// match reader.readexactly(5).await {
///     Err(ReadError::Incomplete(e)) => {
///         assert_eq!(e.partial, b"abc");
///         assert_eq!(e.expected, Some(5));
///     }
///     other => panic!("want an incomplete read, got {other:?}"),
/// }
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncompleteReadError {
    /// The bytes read before the end of the stream.
    pub partial: Vec<u8>,
    /// How many bytes were wanted (`None` for a read up to a separator).
    pub expected: Option<usize>,
}

impl fmt::Display for IncompleteReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expected {
            Some(n) => write!(
                f,
                "stream ended after {} of {n} expected bytes",
                self.partial.len()
            ),
            None => write!(
                f,
                "stream ended after {} bytes, before the separator",
                self.partial.len()
            ),
        }
    }
}

impl std::error::Error for IncompleteReadError {}

impl From<IncompleteReadError> for io::Error {
    /// [`io::ErrorKind::UnexpectedEof`]; the partial bytes stay reachable through
    /// [`io::Error::into_inner`] and a downcast.
    fn from(e: IncompleteReadError) -> io::Error {
        io::Error::new(io::ErrorKind::UnexpectedEof, e)
    }
}

/// No separator within the reader's limit (asyncio's `LimitOverrunError`).
///
/// The bytes stay in the reader's buffer: read them with [`read`](super::StreamReader::read) or
/// [`readexactly`](super::StreamReader::readexactly)`(consumed)` (or skip them), or the next
/// framed read fails the same way.
///
/// ```
/// use ringloop::streams::{ReadError, StreamReader};
/// # ringloop::run(async {
/// let mut reader = StreamReader::with_limit(4);
/// reader.feed_data(b"too long\n");
/// let Err(ReadError::LimitOverrun(e)) = reader.readline().await else { panic!() };
/// assert_eq!(e.consumed, 8);
/// // Nothing was lost: the line is still there.
/// assert_eq!(reader.readexactly(9).await.unwrap(), b"too long\n");
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitOverrunError {
    /// How many buffered bytes the overrun spans: up to the separator when it was found
    /// (beyond the limit), else the bytes searched so far.
    pub consumed: usize,
    /// The reader's limit.
    pub limit: usize,
    /// Whether the separator was found (beyond the limit).
    pub separator_found: bool,
}

impl fmt::Display for LimitOverrunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.separator_found {
            write!(
                f,
                "separator found after {} bytes, beyond the limit of {}",
                self.consumed, self.limit
            )
        } else {
            write!(
                f,
                "no separator in the first {} bytes, beyond the limit of {}",
                self.consumed, self.limit
            )
        }
    }
}

impl std::error::Error for LimitOverrunError {}

impl From<LimitOverrunError> for io::Error {
    /// [`io::ErrorKind::InvalidData`]: the peer sent a frame longer than allowed.
    fn from(e: LimitOverrunError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Why a framed read ([`readuntil`](super::StreamReader::readuntil),
/// [`readline`](super::StreamReader::readline),
/// [`readexactly`](super::StreamReader::readexactly)) failed.
///
/// `?` turns it into an [`io::Error`]:
///
/// ```
/// use ringloop::streams::StreamReader;
/// # ringloop::run(async {
/// async fn first_line(reader: &mut StreamReader) -> std::io::Result<Vec<u8>> {
///     Ok(reader.readuntil(b"\r\n").await?)
/// }
/// let mut reader = StreamReader::new();
/// reader.feed_data(b"partial");
/// reader.feed_eof();
/// let err = first_line(&mut reader).await.unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
/// # });
/// ```
#[derive(Debug)]
pub enum ReadError {
    /// The stream ended first; the bytes that arrived are in the error.
    Incomplete(IncompleteReadError),
    /// No separator within the limit; the bytes stay buffered.
    LimitOverrun(LimitOverrunError),
    /// The connection failed (or the read was invalid, e.g. an empty separator).
    Io(io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Incomplete(e) => e.fmt(f),
            ReadError::LimitOverrun(e) => e.fmt(f),
            ReadError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Incomplete(e) => Some(e),
            ReadError::LimitOverrun(e) => Some(e),
            ReadError::Io(e) => Some(e),
        }
    }
}

impl From<IncompleteReadError> for ReadError {
    fn from(e: IncompleteReadError) -> ReadError {
        ReadError::Incomplete(e)
    }
}

impl From<LimitOverrunError> for ReadError {
    fn from(e: LimitOverrunError) -> ReadError {
        ReadError::LimitOverrun(e)
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        ReadError::Io(e)
    }
}

impl From<ReadError> for io::Error {
    /// `UnexpectedEof`, `InvalidData`, or the I/O error itself.
    fn from(e: ReadError) -> io::Error {
        match e {
            ReadError::Incomplete(e) => e.into(),
            ReadError::LimitOverrun(e) => e.into(),
            ReadError::Io(e) => e,
        }
    }
}

/// A copy of `e` for a reader that reports one stored error to every later read: an OS error
/// keeps its errno, any other keeps its kind and message.
pub(crate) fn copy_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) if e.get_ref().is_none() => io::Error::from_raw_os_error(code),
        _ => io::Error::new(e.kind(), e.to_string()),
    }
}
