//! The socket kinds transports run on, as two small traits over the public `net` types:
//! [`StreamSocket`] (a connected stream: TCP, later Unix) and [`SocketListener`] (what a
//! [`Server`](super::Server) accepts from). Adding a socket family is one impl of each.
//!
//! The futures are boxed because a transport keeps an op in flight across loop turns while it
//! also waits for other events, so it must store the op's future by value.

use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::rc::Rc;

use crate::buf::Slice;
use crate::net::{TcpListener, TcpStream};

/// A boxed future local to the loop thread.
pub(crate) type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// What a read op gives back: the result and the buffer.
pub(crate) type ReadResult = (io::Result<usize>, Vec<u8>);
/// What a write op gives back: the result and the buffer slice it sent from.
pub(crate) type WriteResult = (io::Result<usize>, Slice<Vec<u8>>);

/// A connected stream socket a [`Transport`](super::Transport) can drive.
pub(crate) trait StreamSocket: AsFd + 'static {
    /// Reads into the spare capacity of `buf`; `Ok(0)` is the peer's EOF.
    fn read_owned(self: Rc<Self>, buf: Vec<u8>) -> LocalBoxFuture<ReadResult>;
    /// Writes the bytes of `buf`; may write fewer.
    fn write_owned(self: Rc<Self>, buf: Slice<Vec<u8>>) -> LocalBoxFuture<WriteResult>;
}

/// A listening socket whose connections become transports.
pub(crate) trait SocketListener: AsFd + 'static {
    /// The connected socket `accept` gives.
    type Stream: StreamSocket;
    /// Accepts one connection.
    fn accept_stream(&self) -> Pin<Box<dyn Future<Output = io::Result<Self::Stream>> + '_>>;
}

impl StreamSocket for TcpStream {
    fn read_owned(self: Rc<Self>, buf: Vec<u8>) -> LocalBoxFuture<ReadResult> {
        Box::pin(async move { self.read(buf).await })
    }
    fn write_owned(self: Rc<Self>, buf: Slice<Vec<u8>>) -> LocalBoxFuture<WriteResult> {
        Box::pin(async move { self.write(buf).await })
    }
}

impl SocketListener for TcpListener {
    type Stream = TcpStream;
    fn accept_stream(&self) -> Pin<Box<dyn Future<Output = io::Result<TcpStream>> + '_>> {
        Box::pin(async move { self.accept().await.map(|(stream, _)| stream) })
    }
}
