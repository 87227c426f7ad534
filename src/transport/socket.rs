//! The socket kinds transports run on, as two small traits over the public `net` types:
//! [`StreamSocket`] (a connected stream: TCP or Unix) and [`SocketListener`] (what a
//! [`Server`](super::Server) accepts from: TCP, or a Unix socket file it cleans up). Adding a
//! socket family is one impl of each.
//!
//! The futures are boxed because a transport keeps an op in flight across loop turns while it
//! also waits for other events, so it must store the op's future by value.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;

#[cfg(feature = "tls")]
use super::StartTls;
#[cfg(feature = "tls")]
use super::task::{Link, PlainLink};
use crate::buf::Slice;
use crate::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A boxed future local to the loop thread.
pub(crate) type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// What a write op gives back: the result and the buffer slice it sent from.
pub(crate) type WriteResult = (io::Result<usize>, Slice<Vec<u8>>);

/// A connected stream socket a [`Transport`](super::Transport) can drive.
pub(crate) trait StreamSocket: AsFd + 'static {
    /// Writes the bytes of `buf`; may write fewer.
    fn write_owned(self: Rc<Self>, buf: Slice<Vec<u8>>) -> LocalBoxFuture<WriteResult>;

    /// Upgrades a plain link over this socket to TLS (see `tls::upgrade`).
    #[cfg(feature = "tls")]
    fn upgrade(link: PlainLink<Self>, tls: StartTls, received: Vec<u8>) -> LocalBoxFuture<Upgraded>
    where
        Self: Sized;
}

/// A link upgraded to TLS, and what its handshake negotiated.
#[cfg(feature = "tls")]
pub(crate) type Upgraded = io::Result<(Box<dyn Link>, crate::tls::TlsInfo)>;

/// Both socket kinds run TLS the same way.
#[cfg(feature = "tls")]
fn upgrade_tls<S: StreamSocket + crate::tls::TlsSocket>(
    link: PlainLink<S>,
    tls: StartTls,
    received: Vec<u8>,
) -> LocalBoxFuture<Upgraded> {
    Box::pin(async move {
        let (link, info) = super::tls::upgrade(link, tls, received).await?;
        Ok((Box::new(link) as Box<dyn Link>, info))
    })
}

/// A listening socket whose connections become transports.
pub(crate) trait SocketListener: AsFd + 'static {
    /// The connected socket `accept` gives.
    type Stream: StreamSocket;
    /// Accepts one connection.
    fn accept_stream(&self) -> Pin<Box<dyn Future<Output = io::Result<Self::Stream>> + '_>>;
}

impl StreamSocket for TcpStream {
    fn write_owned(self: Rc<Self>, buf: Slice<Vec<u8>>) -> LocalBoxFuture<WriteResult> {
        Box::pin(async move { self.write(buf).await })
    }

    #[cfg(feature = "tls")]
    fn upgrade(
        link: PlainLink<Self>,
        tls: StartTls,
        received: Vec<u8>,
    ) -> LocalBoxFuture<Upgraded> {
        upgrade_tls(link, tls, received)
    }
}

impl SocketListener for TcpListener {
    type Stream = TcpStream;
    fn accept_stream(&self) -> Pin<Box<dyn Future<Output = io::Result<TcpStream>> + '_>> {
        Box::pin(async move { self.accept().await.map(|(stream, _)| stream) })
    }
}

impl StreamSocket for UnixStream {
    fn write_owned(self: Rc<Self>, buf: Slice<Vec<u8>>) -> LocalBoxFuture<WriteResult> {
        Box::pin(async move { self.write(buf).await })
    }

    #[cfg(feature = "tls")]
    fn upgrade(
        link: PlainLink<Self>,
        tls: StartTls,
        received: Vec<u8>,
    ) -> LocalBoxFuture<Upgraded> {
        upgrade_tls(link, tls, received)
    }
}

/// A Unix listener bound to a socket file, which it removes when dropped if the file is still
/// the one it created (asyncio's `cleanup_socket`, Python 3.13+).
pub(crate) struct UnixSocketFile {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file at bind time.
    file_id: Option<(u64, u64)>,
}

impl UnixSocketFile {
    /// Binds `path`, first removing a stale socket file there (as asyncio does; any other kind
    /// of file is left alone and the bind fails).
    pub(crate) fn bind(path: &Path) -> io::Result<UnixSocketFile> {
        if let Ok(meta) = std::fs::symlink_metadata(path)
            && meta.file_type().is_socket()
        {
            std::fs::remove_file(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("remove stale socket {}: {e}", path.display()),
                )
            })?;
        }
        let listener = UnixListener::bind(path)?;
        let file_id = std::fs::symlink_metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        Ok(UnixSocketFile {
            listener,
            path: path.to_owned(),
            file_id,
        })
    }
}

impl Drop for UnixSocketFile {
    fn drop(&mut self) {
        let current = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if current.is_some() && current == self.file_id {
            // Best effort, as in asyncio: the file may be gone already.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl AsFd for UnixSocketFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

impl SocketListener for UnixSocketFile {
    type Stream = UnixStream;
    fn accept_stream(&self) -> Pin<Box<dyn Future<Output = io::Result<UnixStream>> + '_>> {
        Box::pin(async move { self.listener.accept().await.map(|(stream, _)| stream) })
    }
}
