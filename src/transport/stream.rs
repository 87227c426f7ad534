//! [`Transport`]: the handle of a stream connection (asyncio's `Transport`), and [`start`],
//! which wires a socket and a protocol to a new transport.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;

use super::extra::{ExtraInfo, SocketInfo, TransportAddr};
use super::protocol::Protocol;
use super::shared::SharedProtocol;
use super::socket::StreamSocket;
use super::state::{Core, Phase};
use super::task;

/// The handle of a stream connection. Clones are cheap and share the connection.
///
/// Writes are copied into the transport's write buffer and sent in the background by the
/// transport's task; flow control tells the protocol when the buffer runs high
/// ([`Protocol::pause_writing`]). No method calls the protocol: callbacks come from the task,
/// after the current one returns.
///
/// ```
/// use ringloop::transport::{self, Protocol, Transport};
///
/// struct Echo(Option<Transport>);
/// impl Protocol for Echo {
///     fn connection_made(&mut self, t: Transport) { self.0 = Some(t); }
///     fn data_received(&mut self, data: &[u8]) {
///         let _ = self.0.as_ref().unwrap().write(data);
///     }
/// }
///
/// #[derive(Default)]
/// struct Client { got: Vec<u8>, eof: bool }
/// impl Protocol for Client {
///     fn data_received(&mut self, data: &[u8]) { self.got.extend_from_slice(data); }
///     fn eof_received(&mut self) -> bool { self.eof = true; false }
/// }
///
/// # ringloop::run(async {
/// let server = transport::create_server(|| Echo(None), "127.0.0.1:0").await.unwrap();
/// let addr = server.local_addrs()[0].as_inet().unwrap();
/// let (client, protocol) = transport::create_connection(Client::default, addr).await.unwrap();
/// client.write(b"hello").unwrap();
/// # while protocol.borrow().got.len() < 5 { ringloop::time::sleep(std::time::Duration::from_millis(1)).await; }
/// assert_eq!(protocol.borrow().got, b"hello");
/// client.close();
/// server.close();
/// server.wait_closed().await;
/// # });
/// ```
#[derive(Clone)]
pub struct Transport {
    core: Rc<RefCell<Core>>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.core.borrow();
        f.debug_struct("Transport")
            .field("phase", &core.phase)
            .field("peername", &core.info.peername)
            .field("buffered", &core.buffer_size())
            .finish_non_exhaustive()
    }
}

/// Creates the transport for `socket`, calls `connection_made` on `protocol`, and returns the
/// future that runs the transport (spawn it) with the handles.
///
/// For code in the crate that serves connections itself (see
/// [`Server::start`](super::Server::start)).
pub(crate) fn start<S: StreamSocket, P: Protocol>(
    socket: S,
    protocol: P,
) -> (Transport, SharedProtocol<P>, impl Future<Output = ()>) {
    let info = SocketInfo::capture(&socket);
    let transport = Transport {
        core: Rc::new(RefCell::new(Core::new(info))),
    };
    let protocol = SharedProtocol::new(protocol);
    protocol.borrow_mut().connection_made(transport.clone());
    let run = task::run(
        Rc::new(socket),
        task::TaskCore(Rc::clone(&transport.core)),
        protocol.clone(),
    );
    (transport, protocol, run)
}

impl Transport {
    /// Queues `data` to be sent (copied into the write buffer).
    ///
    /// # Errors
    ///
    /// `NotConnected` once the transport is closing or closed (after `close`, `abort`, or a
    /// lost connection: nothing is sent then); `InvalidInput` after `write_eof`.
    pub fn write(&self, data: &[u8]) -> io::Result<()> {
        self.core.borrow_mut().write(data)
    }

    /// Queues each of `chunks`, in order (asyncio's `writelines`).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write); chunks before a refusal stay queued (a refusal only comes
    /// from the transport's state, so it refuses the first chunk or none).
    pub fn writelines<'a>(&self, chunks: impl IntoIterator<Item = &'a [u8]>) -> io::Result<()> {
        let mut core = self.core.borrow_mut();
        for chunk in chunks {
            core.write(chunk)?;
        }
        Ok(())
    }

    /// Shuts down the write side once the buffer is sent (the peer reads EOF); reading goes on.
    /// Later writes fail. Does nothing if the transport is closing or EOF was already asked for.
    pub fn write_eof(&self) {
        self.core.borrow_mut().write_eof();
    }

    /// Whether [`write_eof`](Self::write_eof) is supported: always, for TCP and Unix streams.
    pub fn can_write_eof(&self) -> bool {
        true
    }

    /// Closes the transport: reading stops now, the buffered bytes are sent, then the socket
    /// closes and the protocol gets `connection_lost(None)`. Idempotent.
    pub fn close(&self) {
        self.core.borrow_mut().close();
    }

    /// Closes the transport now: buffered bytes are dropped, and the protocol gets
    /// `connection_lost(None)` on the task's next turn.
    pub fn abort(&self) {
        self.core.borrow_mut().abort(None);
    }

    /// Whether the transport is closing or closed.
    pub fn is_closing(&self) -> bool {
        self.core.borrow().phase.is_closing()
    }

    /// Stops reading: no `data_received` (or `eof_received`) until
    /// [`resume_reading`](Self::resume_reading). A read already in flight may complete; its
    /// bytes are held and delivered on resume, so nothing is lost.
    pub fn pause_reading(&self) {
        let mut core = self.core.borrow_mut();
        if core.reading {
            core.reading = false;
            core.wake();
        }
    }

    /// Resumes reading after [`pause_reading`](Self::pause_reading).
    pub fn resume_reading(&self) {
        let mut core = self.core.borrow_mut();
        if !core.reading {
            core.reading = true;
            core.wake();
        }
    }

    /// Whether the transport delivers received data (not paused, not closing).
    pub fn is_reading(&self) -> bool {
        let core = self.core.borrow();
        core.reading && core.phase.reads()
    }

    /// Sets the write buffer's high- and low-water marks (asyncio's rule: `high` defaults to
    /// 64 KiB, or `4 * low` if only `low` is given; `low` defaults to `high / 4`).
    /// `pause_writing` follows when the buffer rises above `high`, `resume_writing` when it
    /// drains to `low`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `low > high`.
    pub fn set_write_buffer_limits(
        &self,
        high: Option<usize>,
        low: Option<usize>,
    ) -> io::Result<()> {
        self.core.borrow_mut().set_write_buffer_limits(high, low)
    }

    /// The `(low, high)` water marks, in asyncio's order.
    pub fn get_write_buffer_limits(&self) -> (usize, usize) {
        let marks = self.core.borrow().flow.marks;
        (marks.low, marks.high)
    }

    /// Bytes written and not yet sent (buffered, or in a write op the kernel has not finished).
    pub fn get_write_buffer_size(&self) -> usize {
        self.core.borrow().buffer_size()
    }

    /// asyncio's name-based lookup: `"peername"`, `"sockname"` (an [`ExtraInfo::Addr`]) and
    /// `"socket"` (an [`ExtraInfo::Fd`], until the transport closes). Other names: `None`.
    pub fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        let core = self.core.borrow();
        core.info.get(name, !matches!(core.phase, Phase::Closed))
    }

    /// The peer's address.
    pub fn peername(&self) -> Option<TransportAddr> {
        self.core.borrow().info.peername.clone()
    }

    /// The local address.
    pub fn sockname(&self) -> Option<TransportAddr> {
        self.core.borrow().info.sockname.clone()
    }

    /// The socket's descriptor, until the transport closes (for socket options; do not close
    /// it or read from it).
    pub fn fd(&self) -> Option<RawFd> {
        let core = self.core.borrow();
        (!matches!(core.phase, Phase::Closed)).then_some(core.info.fd)
    }
}
