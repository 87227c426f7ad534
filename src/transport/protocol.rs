//! The callback traits a transport drives: [`Protocol`], [`BufferedProtocol`],
//! [`DatagramProtocol`] and [`SubprocessProtocol`]. Nothing else lives here.
//!
//! Every method has a default body (but `BufferedProtocol`'s two buffer methods), so a
//! protocol implements only what it needs. The transport calls them from its own task, one at
//! a time, never from inside another callback: a protocol may call any [`Transport`] method
//! from any callback (see the module docs on re-entrancy).

use std::io;
use std::net::SocketAddr;

use super::datagram::DatagramTransport;
use super::stream::Transport;
use super::subprocess::SubprocessTransport;

/// Callbacks of a stream connection (TCP or Unix), asyncio's `asyncio.Protocol`.
///
/// The order is fixed: `connection_made` once, then any number of `data_received`, at most one
/// `eof_received`, and `connection_lost` once, last. `pause_writing` and `resume_writing`
/// alternate (starting with a pause) anywhere between `connection_made` and `connection_lost`.
///
/// ```
/// use ringloop::transport::{Protocol, Transport};
///
/// /// Sends every byte back.
/// struct Echo(Option<Transport>);
///
/// impl Protocol for Echo {
///     fn connection_made(&mut self, transport: Transport) {
///         self.0 = Some(transport);
///     }
///     fn data_received(&mut self, data: &[u8]) {
///         if let Some(t) = &self.0 {
///             // Fails only once the transport is closing; nothing to do then.
///             let _ = t.write(data);
///         }
///     }
/// }
/// # let _ = Echo(None);
/// ```
pub trait Protocol: 'static {
    /// The connection is up. Keep `transport` (a cheap clone handle) to write and close.
    fn connection_made(&mut self, transport: Transport) {
        let _ = transport;
    }

    /// Bytes arrived. The slice is only valid for the call: copy what must be kept.
    fn data_received(&mut self, data: &[u8]) {
        let _ = data;
    }

    /// The peer closed its write side (a half-close); called at most once. Return `true` to
    /// keep this side open for writing (close it later with [`Transport::close`]); `false`
    /// (the default) closes the transport once its write buffer is flushed.
    fn eof_received(&mut self) -> bool {
        false
    }

    /// The connection is gone, always the last call: `None` after an orderly close or
    /// [`Transport::abort`], `Some(err)` after an I/O error such as a reset by the peer.
    fn connection_lost(&mut self, err: Option<io::Error>) {
        let _ = err;
    }

    /// The write buffer rose above the high-water mark: stop writing until `resume_writing`.
    fn pause_writing(&mut self) {}

    /// The write buffer drained to the low-water mark: writing may go on.
    fn resume_writing(&mut self) {}

    /// How the transport hands received bytes to the protocol. The default calls
    /// `data_received`; [`BufferedProtocol`] types copy through `get_buffer` instead and fail
    /// the connection (an `Err`) when `get_buffer` offers no room.
    ///
    /// Not part of the asyncio surface: a hook that lets `BufferedProtocol` report a broken
    /// `get_buffer` to the transport, since `data_received` returns nothing.
    #[doc(hidden)]
    fn deliver(&mut self, data: &[u8]) -> io::Result<()> {
        self.data_received(data);
        Ok(())
    }
}

/// A stream protocol that receives into buffers it provides, asyncio's
/// `asyncio.BufferedProtocol`. Every `BufferedProtocol` is a [`Protocol`], so it goes to the
/// same loop functions ([`create_connection`](super::create_connection), ...).
///
/// Received bytes land in a loop-owned buffer first (the kernel must own the memory it writes
/// into, so it cannot write into a borrowed `&mut [u8]`) and are then copied into the slices
/// `get_buffer` returns, as many as it takes: no byte is dropped.
///
/// ```
/// use ringloop::transport::{BufferedProtocol, Transport};
///
/// /// Collects everything into one fixed buffer, then echoes it on EOF.
/// struct Collect { buf: Vec<u8>, filled: usize, transport: Option<Transport> }
///
/// impl BufferedProtocol for Collect {
///     fn connection_made(&mut self, transport: Transport) {
///         self.transport = Some(transport);
///     }
///     fn get_buffer(&mut self, _size_hint: usize) -> &mut [u8] {
///         if self.filled == self.buf.len() {
///             self.buf.resize(self.buf.len() * 2 + 64, 0);
///         }
///         &mut self.buf[self.filled..]
///     }
///     fn buffer_updated(&mut self, n: usize) {
///         self.filled += n;
///     }
///     fn eof_received(&mut self) -> bool {
///         if let Some(t) = &self.transport {
///             let _ = t.write(&self.buf[..self.filled]);
///         }
///         false
///     }
/// }
/// # let _ = Collect { buf: Vec::new(), filled: 0, transport: None };
/// ```
pub trait BufferedProtocol: 'static {
    /// As [`Protocol::connection_made`].
    fn connection_made(&mut self, transport: Transport) {
        let _ = transport;
    }

    /// A buffer for the next received bytes; `size_hint` is how many are waiting. It must not
    /// be empty: an empty buffer fails the connection (`connection_lost(Some(InvalidData))`).
    fn get_buffer(&mut self, size_hint: usize) -> &mut [u8];

    /// The first `n` bytes of the last buffer from `get_buffer` were filled.
    fn buffer_updated(&mut self, n: usize);

    /// As [`Protocol::eof_received`].
    fn eof_received(&mut self) -> bool {
        false
    }

    /// As [`Protocol::connection_lost`].
    fn connection_lost(&mut self, err: Option<io::Error>) {
        let _ = err;
    }

    /// As [`Protocol::pause_writing`].
    fn pause_writing(&mut self) {}

    /// As [`Protocol::resume_writing`].
    fn resume_writing(&mut self) {}
}

impl<T: BufferedProtocol> Protocol for T {
    fn connection_made(&mut self, transport: Transport) {
        BufferedProtocol::connection_made(self, transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        // Only reached when called directly; the transport uses `deliver`.
        let _ = self.deliver(data);
    }
    fn eof_received(&mut self) -> bool {
        BufferedProtocol::eof_received(self)
    }
    fn connection_lost(&mut self, err: Option<io::Error>) {
        BufferedProtocol::connection_lost(self, err);
    }
    fn pause_writing(&mut self) {
        BufferedProtocol::pause_writing(self);
    }
    fn resume_writing(&mut self) {
        BufferedProtocol::resume_writing(self);
    }
    fn deliver(&mut self, data: &[u8]) -> io::Result<()> {
        super::task::fill_buffers(self, data)
    }
}

/// Callbacks of a datagram endpoint (UDP), asyncio's `asyncio.DatagramProtocol`.
///
/// ```
/// use std::net::SocketAddr;
/// use ringloop::transport::{DatagramProtocol, DatagramTransport};
///
/// /// Sends every datagram back to its sender.
/// struct Echo(Option<DatagramTransport>);
///
/// impl DatagramProtocol for Echo {
///     fn connection_made(&mut self, transport: DatagramTransport) {
///         self.0 = Some(transport);
///     }
///     fn datagram_received(&mut self, data: &[u8], from: SocketAddr) {
///         if let Some(t) = &self.0 {
///             let _ = t.sendto(data, Some(from));
///         }
///     }
/// }
/// # let _ = Echo(None);
/// ```
pub trait DatagramProtocol: 'static {
    /// The endpoint is up. Keep `transport` to send and close.
    fn connection_made(&mut self, transport: DatagramTransport) {
        let _ = transport;
    }

    /// A datagram arrived from `addr`.
    fn datagram_received(&mut self, data: &[u8], addr: SocketAddr) {
        let _ = (data, addr);
    }

    /// A send or receive failed without ending the endpoint (for example `ConnectionRefused`
    /// after an ICMP port-unreachable for an earlier datagram).
    fn error_received(&mut self, err: io::Error) {
        let _ = err;
    }

    /// The endpoint is closed, always the last call: `None` after `close`/`abort`, `Some` after
    /// an error that made the socket unusable.
    fn connection_lost(&mut self, err: Option<io::Error>) {
        let _ = err;
    }

    /// The send buffer rose above the high-water mark.
    fn pause_writing(&mut self) {}

    /// The send buffer drained to the low-water mark.
    fn resume_writing(&mut self) {}
}

/// Callbacks of a child process, asyncio's `asyncio.SubprocessProtocol`. File descriptor
/// numbers name the pipes: 0 stdin, 1 stdout, 2 stderr. Every method has a default body.
///
/// ```
/// use ringloop::transport::{self, SubprocessProtocol};
///
/// #[derive(Default)]
/// struct Collect { out: Vec<u8>, exited: bool }
/// impl SubprocessProtocol for Collect {
///     fn pipe_data_received(&mut self, fd: i32, data: &[u8]) {
///         if fd == 1 { self.out.extend_from_slice(data); }
///     }
///     fn process_exited(&mut self) { self.exited = true; }
/// }
///
/// # ringloop::run(async {
/// let (t, proto) = transport::subprocess_shell(Collect::default, "echo hello").await.unwrap();
/// t.wait_closed().await;
/// assert_eq!(proto.borrow().out, b"hello\n");
/// assert!(proto.borrow().exited);
/// assert_eq!(t.get_returncode(), Some(0));
/// # });
/// ```
pub trait SubprocessProtocol: 'static {
    /// The child is running. Keep `transport` (a cheap clone handle) to write or signal.
    fn connection_made(&mut self, transport: SubprocessTransport) {
        let _ = transport;
    }

    /// The child wrote `data` to stdout (`fd` 1) or stderr (`fd` 2). Copy what must be kept.
    fn pipe_data_received(&mut self, fd: i32, data: &[u8]) {
        let _ = (fd, data);
    }

    /// Pipe `fd` closed: `None` at end of file (or an orderly close of stdin), `Some(err)`
    /// after an error (e.g. `BrokenPipe` when writing to a child that stopped reading).
    fn pipe_connection_lost(&mut self, fd: i32, err: Option<io::Error>) {
        let _ = (fd, err);
    }

    /// The child exited; [`SubprocessTransport::get_returncode`] has its status.
    fn process_exited(&mut self) {}

    /// Everything is over (the child reaped and every pipe closed); always the last call.
    fn connection_lost(&mut self, err: Option<io::Error>) {
        let _ = err;
    }
}
