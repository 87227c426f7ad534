//! The task of a stream transport: it owns the socket and the protocol, does every read and
//! write, and makes every protocol callback, one at a time.
//!
//! One turn of [`run`] takes the first of these that applies:
//!
//! 1. a flow-control note is queued: deliver `pause_writing`/`resume_writing` (an abort
//!    clears them; see [`deliver_note`]);
//! 2. the [`Phase`] asks for an end (`Aborting`, or `Closing` with nothing left to send):
//!    stop I/O, deliver `connection_lost`, finish (the socket closes with the task);
//!    `EofPending` with nothing left to send: shut down the write half;
//! 3. a read held back while reading was paused can now be delivered: deliver it;
//! 4. otherwise start a write if bytes wait and none is in flight, then wait for the first of:
//!    the read completing, the write completing, or a handle method changing the state.
//!
//! Callbacks run only in steps 1–3 and in the handling of a completed read, never from inside
//! a handle method, so a protocol calling `write` (or `close`, `pause_reading`...) from a
//! callback never re-enters itself.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::rc::Rc;
use std::task::{Context, Poll};

use socket2::SockRef;

use super::core::{Core, TaskCore, deliver_note};
use super::phase::Phase;
use super::protocol::{BufferedProtocol, Protocol};
use super::reader::{Reader, Received};
use super::shared::OwnedProtocol;
use super::socket::{LocalBoxFuture, StreamSocket, WriteResult};
use super::stream::StreamBuffer;
use crate::buf::IoBuf;

/// Largest buffer the writer keeps for reuse after a write: a connection that once sent a
/// burst of megabytes should not hold that much memory while idle.
const MAX_SPARE: usize = 256 * 1024;

/// What one wait of the task ended with.
enum Event {
    Received(Received),
    Wrote(WriteResult),
    Changed,
}

/// What the phase asks the task to do before anything else.
enum PhaseStep {
    Lost(Option<io::Error>),
    ShutdownWrite,
}

/// The stream core, as the task sees it.
type StreamCore = RefCell<Core<StreamBuffer>>;

/// What a stream transport's task reads from and writes to: the socket itself
/// ([`PlainLink`]), or a TLS session over it (`tls_link`), whose chunks in and out are
/// plaintext.
pub(crate) trait Link: 'static {
    /// The next chunk received; `reading` false stops receiving (chunks already received
    /// are still returned).
    fn poll_receive(&mut self, cx: &mut Context<'_>, reading: bool) -> Poll<Received>;
    /// Whether a receive is live or draining what it got before a pause.
    fn is_receiving(&self) -> bool;
    /// Whether no write is in flight.
    fn write_idle(&self) -> bool;
    /// The emptied buffer of the last finished write, for the next chunk.
    fn take_spare(&mut self) -> Vec<u8>;
    /// Starts writing `chunk` (the write must be idle).
    fn start_write(&mut self, chunk: Vec<u8>);
    /// The write in flight's outcome: how much of its chunk was sent, and the chunk.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<WriteResult>;
    /// Accounts for a finished write and sends the rest of its chunk, if any.
    fn finish_write(&mut self, result: WriteResult, core: &mut Core<StreamBuffer>);
    /// Shuts the write direction down (`write_eof` with everything sent; TLS sends
    /// close_notify first).
    fn shutdown_write(&mut self) -> LocalBoxFuture<io::Result<()>>;
    /// A clean close with everything sent: what the link must still say (TLS: close_notify).
    fn close(&mut self) -> LocalBoxFuture<()> {
        Box::pin(async {})
    }
    /// Drops every op in flight: the connection ends.
    fn stop(&mut self);

    /// Upgrades this link to TLS (`Transport::start_tls`), `received` being bytes the task
    /// held back since the upgrade was asked for. Only a plain link can.
    #[cfg(feature = "tls")]
    fn start_tls(
        self: Box<Self>,
        _tls: super::StartTls,
        _received: Vec<u8>,
    ) -> LocalBoxFuture<super::socket::Upgraded> {
        Box::pin(std::future::ready(Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "start_tls: the transport already runs TLS",
        ))))
    }
}

/// An upgraded task runs its new link through a box.
impl Link for Box<dyn Link> {
    fn poll_receive(&mut self, cx: &mut Context<'_>, reading: bool) -> Poll<Received> {
        (**self).poll_receive(cx, reading)
    }
    fn is_receiving(&self) -> bool {
        (**self).is_receiving()
    }
    fn write_idle(&self) -> bool {
        (**self).write_idle()
    }
    fn take_spare(&mut self) -> Vec<u8> {
        (**self).take_spare()
    }
    fn start_write(&mut self, chunk: Vec<u8>) {
        (**self).start_write(chunk);
    }
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<WriteResult> {
        (**self).poll_write(cx)
    }
    fn finish_write(&mut self, result: WriteResult, core: &mut Core<StreamBuffer>) {
        (**self).finish_write(result, core);
    }
    fn shutdown_write(&mut self) -> LocalBoxFuture<io::Result<()>> {
        (**self).shutdown_write()
    }
    fn close(&mut self) -> LocalBoxFuture<()> {
        (**self).close()
    }
    fn stop(&mut self) {
        (**self).stop();
    }
    #[cfg(feature = "tls")]
    fn start_tls(
        self: Box<Self>,
        tls: super::StartTls,
        received: Vec<u8>,
    ) -> LocalBoxFuture<super::socket::Upgraded> {
        (*self).start_tls(tls, received)
    }
}

/// The link of a plain socket.
pub(crate) struct PlainLink<S> {
    socket: Rc<S>,
    reader: Reader,
    writer: Writer<S>,
}

impl<S: StreamSocket> PlainLink<S> {
    pub(crate) fn new(socket: S) -> PlainLink<S> {
        let socket = Rc::new(socket);
        PlainLink {
            reader: Reader::new(Rc::clone(&socket)),
            writer: Writer::new(Rc::clone(&socket)),
            socket,
        }
    }
}

impl<S: StreamSocket> Link for PlainLink<S> {
    fn poll_receive(&mut self, cx: &mut Context<'_>, reading: bool) -> Poll<Received> {
        self.reader.poll_receive(cx, reading)
    }
    fn is_receiving(&self) -> bool {
        self.reader.is_in_flight()
    }
    fn write_idle(&self) -> bool {
        self.writer.is_idle()
    }
    fn take_spare(&mut self) -> Vec<u8> {
        self.writer.take_spare()
    }
    fn start_write(&mut self, chunk: Vec<u8>) {
        self.writer.start(chunk);
    }
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<WriteResult> {
        self.writer.poll(cx)
    }
    fn finish_write(&mut self, result: WriteResult, core: &mut Core<StreamBuffer>) {
        self.writer.finish(result, core);
    }
    fn shutdown_write(&mut self) -> LocalBoxFuture<io::Result<()>> {
        Box::pin(std::future::ready(
            SockRef::from(&*self.socket).shutdown(Shutdown::Write),
        ))
    }
    fn stop(&mut self) {
        self.reader.stop();
        self.writer.stop();
    }

    #[cfg(feature = "tls")]
    fn start_tls(
        self: Box<Self>,
        tls: super::StartTls,
        received: Vec<u8>,
    ) -> LocalBoxFuture<super::socket::Upgraded> {
        S::upgrade(*self, tls, received)
    }
}

impl<S: StreamSocket> PlainLink<S> {
    /// Stops the link and gives its socket back, with `received` followed by what the
    /// receive had already received (a TLS upgrade's first handshake bytes).
    #[cfg(feature = "tls")]
    pub(crate) async fn into_parts(mut self, mut received: Vec<u8>) -> io::Result<(S, Vec<u8>)> {
        self.reader.drain(&mut received).await?;
        let PlainLink {
            socket,
            reader,
            writer,
        } = self;
        drop((reader, writer));
        let socket = Rc::try_unwrap(socket).map_err(|_| {
            io::Error::other("start_tls: the socket is still shared with an op in flight")
        })?;
        Ok((socket, received))
    }
}

/// Runs a stream transport until `connection_lost` was delivered. The task owns the link (the
/// socket), its side of the core, and the protocol.
pub(crate) async fn run<L: Link, P: Protocol>(
    mut link: L,
    task_core: TaskCore<StreamBuffer>,
    protocol: OwnedProtocol<P>,
) {
    let core: &StreamCore = &task_core.0;
    // A read that completed while reading was paused, delivered on resume.
    let mut held: Option<Received> = None;
    let mut eof_seen = false;
    let mut read_first = false;
    loop {
        if deliver_note(core, &protocol, P::pause_writing, P::resume_writing).await {
            continue;
        }
        let step = phase_step(&mut core.borrow_mut(), link.write_idle());
        match step {
            Some(PhaseStep::Lost(err)) => {
                if err.is_none() {
                    // A clean close: the link has its last word (TLS's close_notify).
                    link.close().await;
                }
                link.stop();
                core.borrow_mut().mark_closed();
                // Close the socket before telling the protocol, as asyncio does.
                drop(link);
                protocol.call(|p| p.connection_lost(err)).await;
                return;
            }
            Some(PhaseStep::ShutdownWrite) => {
                let shut = link.shutdown_write().await;
                let mut core = core.borrow_mut();
                match shut {
                    Ok(()) => core.phase = Phase::WriteShut,
                    Err(e) => core.abort(Some(e)),
                }
                continue;
            }
            None => {}
        }
        #[cfg(feature = "tls")]
        if link.write_idle() && core.borrow().nothing_buffered() {
            let upgrade = core.borrow_mut().outgoing.upgrade.take();
            if let Some(upgrade) = upgrade {
                let next = upgrade_link(link, held, upgrade, core).await;
                if let Some(link) = next {
                    // The rest of the connection runs on the TLS link.
                    return Box::pin(run(link, task_core, protocol)).await;
                }
                lose(core, &protocol, None).await;
                return;
            }
        }
        if delivers_reads(core)
            && let Some(received) = held.take()
        {
            deliver(received, core, &protocol).await;
            continue;
        }
        if link.write_idle() {
            let chunk = core.borrow_mut().take_buffer(link.take_spare());
            if let Some(chunk) = chunk {
                link.start_write(chunk);
            }
        }
        let event = poll_fn(|cx| {
            let held = &held;
            wait(cx, core, &mut link, eof_seen, held, &mut read_first)
        })
        .await;
        match event {
            Event::Changed => {}
            Event::Received(received) => {
                eof_seen |= matches!(received, Received::Eof);
                if delivers_reads(core) {
                    deliver(received, core, &protocol).await;
                } else if core.borrow().phase.reads() {
                    held = Some(received);
                } else {
                    // Closing: asyncio stops reading at `close`; late bytes are not delivered
                    // (a chunk's buffer goes back to the ring as it drops).
                    drop(received);
                }
            }
            Event::Wrote(result) => link.finish_write(result, &mut core.borrow_mut()),
        }
    }
}

/// Whether reads go to the protocol now: reading, and no TLS upgrade waiting (bytes after
/// `start_tls` are the peer's handshake).
fn delivers_reads(core: &StreamCore) -> bool {
    let core = core.borrow();
    core.delivers_reads() && !upgrading(&core)
}

#[cfg(feature = "tls")]
fn upgrading(core: &Core<StreamBuffer>) -> bool {
    core.outgoing.upgrade.is_some()
}

#[cfg(not(feature = "tls"))]
fn upgrading(_core: &Core<StreamBuffer>) -> bool {
    false
}

/// Makes a TLS upgrade (`Transport::start_tls`): the new link, or `None` after a failure
/// (told to the caller of `start_tls`; the transport is aborted with it).
#[cfg(feature = "tls")]
async fn upgrade_link<L: Link>(
    link: L,
    held: Option<Received>,
    upgrade: super::tls::Upgrade,
    core: &StreamCore,
) -> Option<Box<dyn Link>> {
    let received = match held {
        None => Ok(Vec::new()),
        Some(Received::Data(buf)) => Ok(buf.to_vec()),
        Some(Received::Plain(bytes)) => Ok(bytes),
        Some(Received::Eof) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "start_tls: the peer closed the connection",
        )),
        Some(Received::Failed(e)) => Err(e),
    };
    let outcome = match received {
        Ok(received) => {
            let boxed: Box<dyn Link> = Box::new(link);
            boxed.start_tls(upgrade.tls, received).await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok((link, info)) => {
            core.borrow_mut().set_tls_info(info);
            let _ = upgrade.reply.send(Ok(()));
            Some(link)
        }
        Err(e) => {
            let told = io::Error::new(e.kind(), e.to_string());
            let _ = upgrade.reply.send(Err(told));
            core.borrow_mut().abort(Some(e));
            None
        }
    }
}

/// Ends the task after its link is gone: `connection_lost` with the phase's error.
#[cfg(feature = "tls")]
async fn lose<P: Protocol>(core: &StreamCore, protocol: &OwnedProtocol<P>, err: Option<io::Error>) {
    let err = match core.borrow_mut().take_end(false) {
        Some(Some(e)) => Some(e),
        _ => err,
    };
    core.borrow_mut().mark_closed();
    protocol.call(|p| p.connection_lost(err)).await;
}

/// Step 2 of a turn (see the module docs).
fn phase_step(core: &mut Core<StreamBuffer>, write_idle: bool) -> Option<PhaseStep> {
    let drained = write_idle && core.nothing_buffered();
    if let Some(err) = core.take_end(drained) {
        return Some(PhaseStep::Lost(err));
    }
    (drained && matches!(core.phase, Phase::EofPending)).then_some(PhaseStep::ShutdownWrite)
}

/// Step 4's wait: the first of a completed read, a completed write, or a state change.
fn wait<L: Link>(
    cx: &mut Context<'_>,
    core: &StreamCore,
    link: &mut L,
    eof_seen: bool,
    held: &Option<Received>,
    read_first: &mut bool,
) -> Poll<Event> {
    let (phase_reads, reading) = {
        let core = core.borrow();
        (core.phase.reads(), core.reading && !upgrading(&core))
    };
    // Paused: no new read is issued, but one already in flight is allowed to finish.
    let poll_reader =
        phase_reads && !eof_seen && held.is_none() && (reading || link.is_receiving());
    // Alternate which side is polled first: on epoll an op can complete as it is issued, so a
    // flood of incoming bytes must not keep the writer's completion from being seen (nor the
    // other way round).
    *read_first = !*read_first;
    for read_turn in [*read_first, !*read_first] {
        if read_turn {
            if poll_reader && let Poll::Ready(received) = link.poll_receive(cx, reading) {
                return Poll::Ready(Event::Received(received));
            }
        } else if let Poll::Ready(result) = link.poll_write(cx) {
            return Poll::Ready(Event::Wrote(result));
        }
    }
    core.borrow_mut().poll_changed(cx).map(|()| Event::Changed)
}

/// Hands one read's outcome to the protocol.
async fn deliver<P: Protocol>(received: Received, core: &StreamCore, protocol: &OwnedProtocol<P>) {
    match received {
        Received::Data(buf) => {
            let delivered = protocol.call(|p| p.deliver(&buf)).await;
            drop(buf);
            if let Err(e) = delivered {
                core.borrow_mut().abort(Some(e));
            }
        }
        Received::Plain(bytes) => {
            if let Err(e) = protocol.call(|p| p.deliver(&bytes)).await {
                core.borrow_mut().abort(Some(e));
            }
        }
        Received::Eof => {
            let keep_open = protocol.call(|p| p.eof_received()).await;
            if !keep_open {
                core.borrow_mut().close();
            }
        }
        Received::Failed(e) => core.borrow_mut().abort(Some(e)),
    }
}

/// How a [`BufferedProtocol`] receives `data` (its [`Protocol::deliver`]): copied into the
/// buffers `get_buffer` offers, as many as it takes, so no byte is dropped.
///
/// # Errors
///
/// `InvalidData` when `get_buffer` offers an empty buffer (the connection then fails).
pub(crate) fn fill_buffers<P: BufferedProtocol + ?Sized>(
    protocol: &mut P,
    mut data: &[u8],
) -> io::Result<()> {
    while !data.is_empty() {
        let room = protocol.get_buffer(data.len());
        if room.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "BufferedProtocol::get_buffer returned an empty buffer with {} bytes waiting",
                    data.len()
                ),
            ));
        }
        let n = room.len().min(data.len());
        room[..n].copy_from_slice(&data[..n]);
        protocol.buffer_updated(n);
        data = &data[n..];
    }
    Ok(())
}

/// The write side of a plain link: at most one write op in flight, sending one chunk of the
/// buffer.
struct Writer<S> {
    socket: Rc<S>,
    in_flight: Option<LocalBoxFuture<WriteResult>>,
    /// The buffer of the last finished chunk, emptied, to swap in for the next.
    spare: Vec<u8>,
}

impl<S: StreamSocket> Writer<S> {
    fn new(socket: Rc<S>) -> Writer<S> {
        Writer {
            socket,
            in_flight: None,
            spare: Vec::new(),
        }
    }

    fn is_idle(&self) -> bool {
        self.in_flight.is_none()
    }

    fn take_spare(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.spare)
    }

    fn start(&mut self, chunk: Vec<u8>) {
        let len = chunk.len();
        self.send(chunk.slice(..len));
    }

    fn send(&mut self, slice: crate::buf::Slice<Vec<u8>>) {
        self.in_flight = Some(Rc::clone(&self.socket).write_owned(slice));
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<WriteResult> {
        let Some(write) = &mut self.in_flight else {
            return Poll::Pending;
        };
        let result = std::task::ready!(write.as_mut().poll(cx));
        self.in_flight = None;
        Poll::Ready(result)
    }

    /// Accounts for a finished write op and sends the rest of its chunk, if any.
    fn finish(&mut self, (res, slice): WriteResult, core: &mut Core<StreamBuffer>) {
        match res {
            Ok(0) => core.abort(Some(io::Error::new(
                io::ErrorKind::WriteZero,
                "the socket accepted no bytes",
            ))),
            Ok(n) => {
                core.sent(n);
                let (begin, end) = (slice.begin() + n, slice.end());
                let chunk = slice.into_inner();
                if begin < end {
                    self.send(chunk.slice(begin..end));
                } else if chunk.capacity() <= MAX_SPARE {
                    let mut chunk = chunk;
                    chunk.clear();
                    self.spare = chunk;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.send(slice),
            Err(e) => core.abort(Some(e)),
        }
    }

    /// Drops the write in flight (abort).
    fn stop(&mut self) {
        self.in_flight = None;
    }
}
