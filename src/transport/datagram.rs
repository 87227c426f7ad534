//! [`DatagramTransport`]: a UDP endpoint driven by a [`DatagramProtocol`] (asyncio's
//! `DatagramTransport`), and the task that runs it.
//!
//! The task mirrors the stream task (see `task.rs`) with a simpler life: `Open`, then
//! `Closing` (queued datagrams are still sent) or `Aborting` (they are dropped), then `Closed`.
//! Send and receive errors go to `error_received` and the endpoint goes on, as in asyncio,
//! unless the error means the socket itself is unusable.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::extra::{ExtraInfo, SocketInfo, TransportAddr};
use super::protocol::DatagramProtocol;
use super::shared::SharedProtocol;
use super::socket::LocalBoxFuture;
use super::state::{FlowControl, Note};
use crate::net::UdpSocket;

/// Room for the largest UDP payload (65,507 bytes over IPv4), so no datagram is truncated.
const DATAGRAM_BUFFER: usize = 64 * 1024;

/// The life of a datagram endpoint.
#[derive(Debug)]
enum Phase {
    /// Sending and receiving.
    Open,
    /// `close` was called: nothing more is accepted or received; queued datagrams are sent,
    /// then `connection_lost(None)`.
    Closing,
    /// `abort` was called or the socket failed: queued datagrams are dropped; the task's next
    /// step is `connection_lost` with this error. Taken once, by the task.
    Aborting(Option<io::Error>),
    /// The socket is closed: `connection_lost` was delivered, or the task ended without it (a
    /// callback panicked, the runtime was dropped). Final.
    Closed,
}

/// What the handle and the task share.
struct Core {
    phase: Phase,
    queue: VecDeque<(Vec<u8>, Option<SocketAddr>)>,
    /// Bytes in `queue` plus the datagram being sent.
    buffered: usize,
    flow: FlowControl,
    /// The peer of a connected endpoint.
    peer: Option<SocketAddr>,
    info: SocketInfo,
    changed: bool,
    waker: Option<Waker>,
}

/// The task's hold on the shared state: however the task ends, the handles then see a
/// closed endpoint (see the stream task's `TaskCore`).
struct TaskCore(Rc<RefCell<Core>>);

impl Drop for TaskCore {
    fn drop(&mut self) {
        if let Ok(mut core) = self.0.try_borrow_mut() {
            core.phase = Phase::Closed;
            core.queue.clear();
            core.buffered = 0;
            core.flow.notes.clear();
            core.waker = None;
        }
    }
}

impl Core {
    fn wake(&mut self) {
        self.changed = true;
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
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
    core: Rc<RefCell<Core>>,
}

impl fmt::Debug for DatagramTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.core.borrow();
        f.debug_struct("DatagramTransport")
            .field("phase", &core.phase)
            .field("sockname", &core.info.sockname)
            .field("buffered", &core.buffered)
            .finish_non_exhaustive()
    }
}

/// Creates the transport for a bound (and maybe connected) socket, calls `connection_made`,
/// and spawns its task.
pub(crate) fn start<P: DatagramProtocol>(
    socket: UdpSocket,
    protocol: P,
) -> (DatagramTransport, SharedProtocol<P>) {
    let info = SocketInfo::capture(&socket);
    let peer = info.peername.as_ref().and_then(TransportAddr::as_inet);
    let transport = DatagramTransport {
        core: Rc::new(RefCell::new(Core {
            phase: Phase::Open,
            queue: VecDeque::new(),
            buffered: 0,
            flow: FlowControl::new(),
            peer,
            info,
            changed: false,
            waker: None,
        })),
    };
    let protocol = SharedProtocol::new(protocol);
    protocol.borrow_mut().connection_made(transport.clone());
    crate::spawn(run(
        Rc::new(socket),
        TaskCore(Rc::clone(&transport.core)),
        protocol.clone(),
    ));
    (transport, protocol)
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
        let mut core = self.core.borrow_mut();
        if !matches!(core.phase, Phase::Open) {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "sendto on a closing datagram transport",
            ));
        }
        match (addr, core.peer) {
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
        core.queue.push_back((data.to_vec(), addr));
        core.buffered += data.len();
        let size = core.buffered;
        core.flow.after_growth(size);
        core.wake();
        Ok(())
    }

    /// Closes the endpoint: receiving stops, queued datagrams are sent, then the protocol
    /// gets `connection_lost(None)`. Idempotent.
    pub fn close(&self) {
        let mut core = self.core.borrow_mut();
        if let Phase::Open = core.phase {
            core.phase = Phase::Closing;
            core.wake();
        }
    }

    /// Closes the endpoint now, dropping queued datagrams.
    pub fn abort(&self) {
        let mut core = self.core.borrow_mut();
        if matches!(core.phase, Phase::Open | Phase::Closing) {
            core.phase = Phase::Aborting(None);
            core.queue.clear();
            core.flow.notes.clear();
            core.wake();
        }
    }

    /// Whether the endpoint is closing or closed.
    pub fn is_closing(&self) -> bool {
        !matches!(self.core.borrow().phase, Phase::Open)
    }

    /// Bytes queued and not yet sent.
    pub fn get_write_buffer_size(&self) -> usize {
        self.core.borrow().buffered
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
        let mut core = self.core.borrow_mut();
        core.flow.marks = super::state::WaterMarks::new(high, low)?;
        let size = core.buffered;
        core.flow.after_growth(size);
        core.flow.after_drain(size);
        core.wake();
        Ok(())
    }

    /// The `(low, high)` water marks.
    pub fn get_write_buffer_limits(&self) -> (usize, usize) {
        let marks = self.core.borrow().flow.marks;
        (marks.low, marks.high)
    }

    /// As [`Transport::get_extra_info`](super::Transport::get_extra_info); `"peername"` only
    /// for a connected endpoint.
    pub fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        let core = self.core.borrow();
        core.info.get(name, !matches!(core.phase, Phase::Closed))
    }

    /// The connected peer's address.
    pub fn peername(&self) -> Option<TransportAddr> {
        self.core.borrow().info.peername.clone()
    }

    /// The local address.
    pub fn sockname(&self) -> Option<TransportAddr> {
        self.core.borrow().info.sockname.clone()
    }

    /// The socket's descriptor, until the endpoint closes.
    pub fn fd(&self) -> Option<RawFd> {
        let core = self.core.borrow();
        (!matches!(core.phase, Phase::Closed)).then_some(core.info.fd)
    }
}

type RecvResult = (io::Result<(usize, SocketAddr)>, Vec<u8>);
type SendResult = (io::Result<usize>, Vec<u8>);

enum Event {
    Received(RecvResult),
    Sent(SendResult),
    Changed,
}

/// Runs the endpoint until `connection_lost` was delivered.
async fn run<P: DatagramProtocol>(
    socket: Rc<UdpSocket>,
    core: TaskCore,
    protocol: SharedProtocol<P>,
) {
    let core: &RefCell<Core> = &core.0;
    let mut receiving: Option<LocalBoxFuture<RecvResult>> = None;
    let mut sending: Option<LocalBoxFuture<SendResult>> = None;
    let mut spare = Some(Vec::with_capacity(DATAGRAM_BUFFER));
    let mut receive_first = false;
    loop {
        // Notes first, so `resume_writing` precedes the `connection_lost` of a close.
        let note = core.borrow_mut().flow.notes.pop_front();
        if let Some(note) = note {
            protocol
                .call(|p| match note {
                    Note::PauseWriting => p.pause_writing(),
                    Note::ResumeWriting => p.resume_writing(),
                })
                .await;
            continue;
        }
        let lost = {
            let mut core = core.borrow_mut();
            let drained = sending.is_none() && core.queue.is_empty();
            match &mut core.phase {
                Phase::Aborting(err) => Some(err.take()),
                Phase::Closing if drained => Some(None),
                _ => None,
            }
        };
        if let Some(err) = lost {
            core.borrow_mut().phase = Phase::Closed;
            drop((receiving, sending, socket));
            protocol.call(|p| p.connection_lost(err)).await;
            return;
        }
        if sending.is_none() {
            let next = core.borrow_mut().queue.pop_front();
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
        let open = matches!(core.borrow().phase, Phase::Open);
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
                    Ok((n, from)) if open_now(core) => {
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
            Event::Sent((res, datagram)) => {
                {
                    let mut core = core.borrow_mut();
                    core.buffered -= datagram.len().min(core.buffered);
                    let size = core.buffered;
                    core.flow.after_drain(size);
                }
                if let Err(e) = res {
                    report(core, &protocol, e).await;
                }
            }
        }
    }
}

fn open_now(core: &RefCell<Core>) -> bool {
    matches!(core.borrow().phase, Phase::Open)
}

/// The first of: a datagram received, a datagram sent, a handle method changing the state.
fn wait(
    cx: &mut Context<'_>,
    core: &RefCell<Core>,
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
    let mut core = core.borrow_mut();
    if core.changed {
        core.changed = false;
        return Poll::Ready(Event::Changed);
    }
    core.waker = Some(cx.waker().clone());
    Poll::Pending
}

/// An I/O error: `error_received` if the endpoint can go on, else the end of the endpoint.
async fn report<P: DatagramProtocol>(
    core: &RefCell<Core>,
    protocol: &SharedProtocol<P>,
    err: io::Error,
) {
    let fatal = matches!(
        err.raw_os_error(),
        Some(libc::EBADF | libc::ENOTSOCK | libc::EFAULT | libc::EINVAL)
    );
    if fatal {
        let mut core = core.borrow_mut();
        if matches!(core.phase, Phase::Open | Phase::Closing) {
            core.phase = Phase::Aborting(Some(err));
            core.queue.clear();
            core.flow.notes.clear();
        }
    } else if err.kind() != io::ErrorKind::Interrupted {
        protocol.call(|p| p.error_received(err)).await;
    }
}
