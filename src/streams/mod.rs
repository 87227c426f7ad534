//! asyncio's Streams: [`StreamReader`] (buffered, framed reads: `readline`, `readuntil`,
//! `readexactly`) and, on top of the transport layer, `StreamWriter`, `open_connection` and
//! `start_server`.
//!
//! # How it works
//!
//! As in asyncio, streams are a protocol on a transport. The connection's protocol feeds
//! every received chunk into the reader through a [`StreamFeeder`], the end of the stream
//! into `feed_eof` and a connection error into `set_exception`. The reader's buffer is
//! bounded by flow control: past twice its limit the protocol pauses the transport's reading,
//! and resumes it when the reader has drained the buffer to the limit.
//!
//! ```
//! use ringloop::streams::StreamReader;
//! # ringloop::run(async {
//! let mut reader = StreamReader::new();
//! reader.feed_data(b"one\ntwo\n");
//! reader.feed_eof();
//! assert_eq!(reader.readline().await.unwrap(), b"one\n");
//! assert_eq!(reader.readline().await.unwrap(), b"two\n");
//! assert!(reader.at_eof());
//! # });
//! ```

mod error;
mod reader;

pub use error::{IncompleteReadError, LimitOverrunError, ReadError};
pub use reader::{DEFAULT_LIMIT, StreamFeeder, StreamReader};
