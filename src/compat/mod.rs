//! Other runtimes' I/O traits on ringloop's types. Feature `tokio-io`: tokio's
//! `AsyncRead`/`AsyncWrite`/`AsyncBufRead`, each mapped onto the type's futures-io impl.
//! Feature `hyper`: hyper's `rt` traits, in [`ringloop::hyper`](crate::hyper) (its own docs).
//!
//! # Implementation
//!
//! A tokio read hands a `ReadBuf`: possibly uninitialised memory plus a count of how much
//! is filled and how much initialised. futures-io reads into an initialised `&mut [u8]`, so
//! [`poll_read_buf`] initialises (zeroes) only the part of the unfilled region that is not
//! initialised yet, and at most [`READ_MAX`] bytes of it: a `ReadBuf` reused across reads
//! (a codec's `BytesMut`) is zeroed once, not per read, and a huge one is not zeroed in
//! full for a read that returns a few bytes. The bytes then come straight from the type's
//! own receive buffer into that slice: one copy, as through futures-io. No `unsafe` is
//! needed.

#[cfg(feature = "tokio-io")]
mod tokio_io;

#[cfg(all(feature = "tokio-io", feature = "tls"))]
mod tls;

#[cfg(feature = "hyper")]
pub mod hyper;

/// The most one tokio read asks of the futures-io read under it: the largest receive the
/// sockets and files start.
#[cfg(feature = "tokio-io")]
pub(crate) const READ_MAX: usize = 64 * 1024;
