//! [`DatagramTransport`]: a UDP endpoint driven by a [`DatagramProtocol`] (asyncio's
//! `DatagramTransport`), its [`DatagramQueue`], and the task that runs it.
//!
//! The endpoint shares the stream transport's core (see `core.rs`) and its task mirrors the
//! stream task (see `task.rs`) with a simpler life: `Open`, then `Closing` (queued datagrams
//! are still sent) or `Aborting` (they are dropped), then `Closed`. Send and receive errors go
//! to `error_received` and the endpoint goes on, as in asyncio, unless the error means the
//! socket itself is unusable.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::core::{Core, SendBuffer, TaskCore, deliver_note};
use super::extra::{ExtraInfo, SocketInfo, TransportAddr};
use super::protocol::DatagramProtocol;
use super::shared::{OwnedProtocol, SharedProtocol};
use super::socket::LocalBoxFuture;
use crate::net::UdpSocket;

/// Room for the largest UDP payload (65,507 bytes over IPv4), so no datagram is truncated.
const DATAGRAM_BUFFER: usize = 64 * 1024;

/// The datagrams an endpoint has to send, each with its address (`None`: the connected peer).
#[derive(Default)]
pub(crate) struct DatagramQueue {
    queue: VecDeque<(Vec<u8>, Option<SocketAddr>)>,
    /// Bytes in `queue`.
    queued: usize,
    /// Bytes of the datagram being sent.
    in_flight: usize,
}

impl SendBuffer for DatagramQueue {
    fn size(&self) -> usize {
        self.queued + self.in_flight
    }

    fn drop_unsent(&mut self) {
        self.queue.clear();
        self.queued = 0;
    }
}

/// The datagram core, as the handle and the task see it.
type DatagramCore = RefCell<Core<DatagramQueue>>;

impl Core<DatagramQueue> {
    fn sendto(&mut self, data: &[u8], addr: Option<SocketAddr>) -> io::Result<()> {
        self.check_writable("sendto")?;
        let peer = self.peername().as_ref().and_then(TransportAddr::as_inet);
        match (addr, peer) {
            (None, None) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "sendto without an address on an unconnected datagram transport",
                ));
            }
            (Some(to), Some(peer)) if to != peer => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("sendto {to}: the transport is connected to {peer}"),
                ));
            }
            _ => {}
        }
        self.outgoing.queue.push_back((data.to_vec(), addr));
        self.outgoing.queued += data.len();
        self.grew();
        Ok(())
    }

    /// The next datagram to send, now counted as in flight.
    fn next_datagram(&mut self) -> Option<(Vec<u8>, Option<SocketAddr>)> {
        let (datagram, to) = self.outgoing.queue.pop_front()?;
        self.outgoing.queued -= datagram.len();
        self.outgoing.in_flight = datagram.len();
        Some((datagram, to))
    }

    /// The datagram in flight is done with (sent or failed).
    fn sent(&mut self) {
        self.outgoing.in_flight = 0;
        self.drained();
    }
}

/// The handle of a datagram endpoint. Clones are cheap and share the endpoint.
///
/// ```
/// use std::net::SocketAddr;
/// use ringloop::transport::{self, DatagramProtocol, DatagramTransport};
///
/// #[derive(Default)]
/// struct Inbox(Vec<(Vec<u8>, SocketAddr)>);
/// impl DatagramProtocol for Inbox {
///     fn datagram_received(&mut self, data: &[u8], from: SocketAddr) {
///         self.0.push((data.to_vec(), from));
///     }
/// }
///
/// # ringloop::run(async {
/// let any = "127.0.0.1:0".parse().unwrap();
/// let (server, inbox) = transport::create_datagram_endpoint(Inbox::default, Some(any), None).unwrap();
/// let to = server.sockname().unwrap().as_inet().unwrap();
/// let (client, _) = transport::create_datagram_endpoint(Inbox::default, None, Some(to)).unwrap();
/// client.sendto(b"ping", None).unwrap();
/// # while inbox.borrow().0.is_empty() { ringloop::time::sleep(std::time::Duration::from_millis(1)).await; }
/// assert_eq!(inbox.borrow().0[0].0, b"ping");
/// client.close();
/// server.close();
/// # });
/// ```
#[derive(Clone)]
pub struct DatagramTransport {
    core: Rc<DatagramCore>,
}

impl fmt::Debug for DatagramTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.borrow().fmt_handle("DatagramTransport", f)
    }
}

/// Creates the transport for a bound (and maybe connected) socket, calls `connection_made`,
/// and spawns its task, which owns the protocol; the [`SharedProtocol`] returned is the
/// caller's view of it.
pub(crate) fn start<P: DatagramProtocol>(
    socket: UdpSocket,
    mut protocol: P,
) -> (DatagramTransport, SharedProtocol<P>) {
    let transport = DatagramTransport {
        core: Core::shared(SocketInfo::capture(&socket)),
    };
    protocol.connection_made(transport.clone());
    let protocol = OwnedProtocol::new(protocol);
    let view = protocol.view();
    crate::spawn(run(
        Rc::new(socket),
        TaskCore(Rc::clone(&transport.core)),
        protocol,
    ));
    (transport, view)
}

impl DatagramTransport {
    /// Queues `data` as one datagram to `addr`, or to the connected peer when `addr` is
    /// `None` (asyncio's `sendto`).
    ///
    /// # Errors
    ///
    /// `NotConnected` once closing or closed; `InvalidInput` without an address on an
    /// unconnected endpoint, or with an address other than the connected peer.
    pub fn sendto(&self, data: &[u8], addr: Option<SocketAddr>) -> io::Result<()> {
        self.core.borrow_mut().sendto(data, addr)
    }

    /// Closes the endpoint: receiving stops, queued datagrams are sent, then the protocol
    /// gets `connection_lost(None)`. Idempotent.
    pub fn close(&self) {
        self.core.borrow_mut().close();
    }

    /// Closes the endpoint now, dropping queued datagrams.
    pub fn abort(&self) {
        self.core.borrow_mut().abort(None);
    }

    /// Whether the endpoint is closing or closed.
    pub fn is_closing(&self) -> bool {
        self.core.borrow().phase.is_closing()
    }

    /// Bytes queued and not yet sent.
    pub fn get_write_buffer_size(&self) -> usize {
        self.core.borrow().write_buffer_size()
    }

    /// As [`Transport::set_write_buffer_limits`](super::Transport::set_write_buffer_limits).
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

    /// The `(low, high)` water marks.
    pub fn get_write_buffer_limits(&self) -> (usize, usize) {
        self.core.borrow().write_buffer_limits()
    }

    /// As [`Transport::get_extra_info`](super::Transport::get_extra_info); `"peername"` only
    /// for a connected endpoint.
    pub fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        self.core.borrow().extra_info(name)
    }

    /// The connected peer's address.
    pub fn peername(&self) -> Option<TransportAddr> {
        self.core.borrow().peername()
    }

    /// The local address.
    pub fn sockname(&self) -> Option<TransportAddr> {
        self.core.borrow().sockname()
    }

    /// The socket's descriptor, until the endpoint closes.
    pub fn fd(&self) -> Option<RawFd> {
        self.core.borrow().fd()
    }
}

type RecvResult = (io::Result<(usize, SocketAddr)>, Vec<u8>);
type SendResult = (io::Result<usize>, Vec<u8>);

enum Event {
    Received(RecvResult),
    Sent(SendResult),
    Changed,
}

/// Runs the endpoint until `connection_lost` was delivered. The task owns the socket, its side
/// of the core, and the protocol.
async fn run<P: DatagramProtocol>(
    socket: Rc<UdpSocket>,
    core: TaskCore<DatagramQueue>,
    protocol: OwnedProtocol<P>,
) {
    let core: &DatagramCore = &core.0;
    let mut receiving: Option<LocalBoxFuture<RecvResult>> = None;
    let mut sending: Option<LocalBoxFuture<SendResult>> = None;
    let mut spare = Some(Vec::with_capacity(DATAGRAM_BUFFER));
    let mut receive_first = false;
    loop {
        if deliver_note(core, &protocol, P::pause_writing, P::resume_writing).await {
            continue;
        }
        let end = {
            let mut core = core.borrow_mut();
            let drained = sending.is_none() && core.outgoing.queue.is_empty();
            core.take_end(drained)
        };
        if let Some(err) = end {
            core.borrow_mut().mark_closed();
            drop((receiving, sending, socket));
            protocol.call(|p| p.connection_lost(err)).await;
            return;
        }
        if sending.is_none() {
            let next = core.borrow_mut().next_datagram();
            if let Some((datagram, to)) = next {
                let socket = Rc::clone(&socket);
                sending = Some(Box::pin(async move {
                    match to {
                        Some(to) => socket.send_to(datagram, to).await,
                        None => socket.send(datagram).await,
                    }
                }));
            }
        }
        let open = core.borrow().delivers_reads();
        if open && receiving.is_none() {
            let buf = spare
                .take()
                .unwrap_or_else(|| Vec::with_capacity(DATAGRAM_BUFFER));
            let socket = Rc::clone(&socket);
            receiving = Some(Box::pin(async move { socket.recv_from(buf).await }));
        }
        let event = poll_fn(|cx| {
            wait(
                cx,
                core,
                open,
                &mut receiving,
                &mut sending,
                &mut receive_first,
            )
        })
        .await;
        match event {
            Event::Changed => {}
            Event::Received((res, mut buf)) => {
                match res {
                    Ok((n, from)) if core.borrow().delivers_reads() => {
                        protocol
                            .call(|p| p.datagram_received(&buf[..n], from))
                            .await;
                    }
                    Ok(_) => {}
                    Err(e) => report(core, &protocol, e).await,
                }
                buf.clear();
                spare = Some(buf);
            }
            Event::Sent((res, _datagram)) => {
                core.borrow_mut().sent();
                if let Err(e) = res {
                    report(core, &protocol, e).await;
                }
            }
        }
    }
}

/// The first of: a datagram received, a datagram sent, a handle method changing the state.
fn wait(
    cx: &mut Context<'_>,
    core: &DatagramCore,
    open: bool,
    receiving: &mut Option<LocalBoxFuture<RecvResult>>,
    sending: &mut Option<LocalBoxFuture<SendResult>>,
    receive_first: &mut bool,
) -> Poll<Event> {
    // Alternate which side goes first, so a flood of datagrams one way cannot hide the other
    // way's completions (see the stream task).
    *receive_first = !*receive_first;
    for receive_turn in [*receive_first, !*receive_first] {
        if receive_turn {
            if open
                && let Some(recv) = receiving
                && let Poll::Ready(result) = recv.as_mut().poll(cx)
            {
                *receiving = None;
                return Poll::Ready(Event::Received(result));
            }
        } else if let Some(send) = sending
            && let Poll::Ready(result) = send.as_mut().poll(cx)
        {
            *sending = None;
            return Poll::Ready(Event::Sent(result));
        }
    }
    core.borrow_mut().poll_changed(cx).map(|()| Event::Changed)
}

/// An I/O error: `error_received` if the endpoint can go on, else the end of the endpoint.
async fn report<P: DatagramProtocol>(
    core: &DatagramCore,
    protocol: &OwnedProtocol<P>,
    err: io::Error,
) {
    let fatal = matches!(
        err.raw_os_error(),
        Some(libc::EBADF | libc::ENOTSOCK | libc::EFAULT | libc::EINVAL)
    );
    if fatal {
        core.borrow_mut().abort(Some(err));
    } else if err.kind() != io::ErrorKind::Interrupted {
        protocol.call(|p| p.error_received(err)).await;
    }
}
