//! [`RecvStream`]: a socket's incoming bytes as a stream of [`RingBuf`]s from a [`BufRing`].

use std::any::Any;
use std::cell::RefCell;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::split::sealed::Sealed as _;
use super::stream::ReceiveSlot;
use crate::buf::{BufRing, PooledBuf, RingBuf};
use crate::op::{self, Cancel, Op, OpStream, Recv, RecvMulti};
use crate::runtime::JoinHandle;

/// A socket's incoming bytes, each chunk in a buffer the kernel picked from a [`BufRing`]
/// when the data arrived (see [`TcpStream::recv_multishot`](super::TcpStream::recv_multishot)).
///
/// One multishot receive runs for as long as the stream is polled; a waiting stream holds no
/// buffer. When every buffer is in use the receive ends with `ENOBUFS` inside the kernel; the
/// stream then grows the ring (up to its cap) or waits until a [`RingBuf`] is dropped, and
/// re-arms. The bytes wait in the socket meanwhile, so nothing is lost — the peer is slowed
/// down by TCP flow control instead.
///
/// # Stopping without losing data
///
/// [`stop`](Self::stop) cancels the receive; chunks the kernel had already received are still
/// yielded, then the stream ends. [`resume`](Self::resume) starts receiving again. Dropping a
/// stream that is receiving cancels it too; what it had received and not yielded — chunks
/// queued before the cancel took effect — goes to the socket's next
/// [`read`](super::TcpStream::read), in order, so nothing is lost. (A stream of a transport,
/// which owns its socket, has no next read: its bytes go with it.)
pub struct RecvStream<'a> {
    fd: RawFd,
    /// The socket is borrowed for `'a` (or kept open by `_owner`).
    _socket: PhantomData<BorrowedFd<'a>>,
    /// For a stream that owns a share of its socket: keeps the socket open while it lives.
    _owner: Option<Rc<dyn Any>>,
    /// Where what this stream received goes if it is dropped mid-receive (streams borrowed
    /// from a `TcpStream` or `UnixStream`).
    slot: Option<ReceiveSlot<'a>>,
    ring: BufRing,
    state: RecvState,
    /// `stop` was called: the receive in flight is being cancelled and drained.
    stopping: bool,
    /// The socket is TCP, where a short receive means it is empty (see
    /// [`op::recv_stream`](crate::op::recv_stream)).
    tcp: bool,
    /// The receive in flight was asked to cancel (by `stop`): its `ECANCELED` is ours, not
    /// an error, even if `resume` came since.
    cancelled: bool,
}

enum RecvState {
    /// Nothing in flight; the next poll arms a receive.
    Idle,
    /// A multishot receive (kernel ring, or the epoll backend's pool).
    Multishot(OpStream<RecvMulti>),
    /// io_uring without buffer rings: one receive into a pool buffer at a time. (Boxed, as
    /// the next variant: the rare path should not grow every stream.)
    Single(Box<Op<Recv<PooledBuf>>>),
    /// A single receive being cancelled by `stop`; its real outcome is still delivered.
    Cancelling(Box<Cancel<Recv<PooledBuf>>>),
    /// Every buffer is in use: waiting for one to come back.
    WaitBuffer,
    /// Stopped, and everything received before the stop was yielded.
    Stopped,
    /// End of file or an error: nothing more will come.
    Finished,
}

impl<'a> RecvStream<'a> {
    pub(crate) fn new(
        fd: BorrowedFd<'a>,
        slot: ReceiveSlot<'a>,
        ring: &BufRing,
        tcp: bool,
    ) -> Self {
        let mut stream = RecvStream::with(fd.as_raw_fd(), None, ring, tcp);
        stream.slot = Some(slot);
        stream
    }

    fn with(fd: RawFd, owner: Option<Rc<dyn Any>>, ring: &BufRing, tcp: bool) -> Self {
        RecvStream {
            tcp,
            fd,
            _socket: PhantomData,
            _owner: owner,
            slot: None,
            ring: ring.clone(),
            state: RecvState::Idle,
            stopping: false,
            cancelled: false,
        }
    }

    /// Whether nothing more will come (end of file or an error was yielded).
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.state, RecvState::Finished)
    }

    /// Whether a receive is live or still draining after `stop` (not idle, stopped or
    /// finished).
    pub(crate) fn is_active(&self) -> bool {
        !matches!(
            self.state,
            RecvState::Idle | RecvState::Stopped | RecvState::Finished
        )
    }

    /// The next chunk of bytes; `None` at end of file, after an error was yielded, or once
    /// a [`stop`](Self::stop) has drained.
    pub async fn next(&mut self) -> Option<io::Result<RingBuf>> {
        std::future::poll_fn(|cx| self.poll_next_chunk(cx)).await
    }

    /// Cancels the receive. Chunks already received are still yielded by [`next`](Self::next),
    /// which then returns `None` until [`resume`](Self::resume).
    pub fn stop(&mut self) {
        self.stopping = true;
        self.state = match std::mem::replace(&mut self.state, RecvState::Stopped) {
            RecvState::Multishot(mut s) => {
                s.cancel();
                self.cancelled = true;
                RecvState::Multishot(s)
            }
            RecvState::Single(op) => {
                self.cancelled = true;
                RecvState::Cancelling(Box::new((*op).cancel()))
            }
            RecvState::Idle | RecvState::WaitBuffer => RecvState::Stopped,
            other => other,
        };
    }

    /// Receives again after [`stop`](Self::stop). No effect after end of file or an error.
    pub fn resume(&mut self) {
        self.stopping = false;
        if let RecvState::Stopped = self.state {
            self.state = RecvState::Idle;
        }
    }

    /// Whether the stream is receiving (not stopped, not finished).
    pub fn is_receiving(&self) -> bool {
        !self.stopping && !matches!(self.state, RecvState::Stopped | RecvState::Finished)
    }

    /// Polls for the next chunk; see [`next`](Self::next).
    pub fn poll_next_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<RingBuf>>> {
        loop {
            match &mut self.state {
                RecvState::Idle => {
                    if let Err(e) = self.ring.check_runtime() {
                        return self.finish(Some(e));
                    }
                    let fd = self.fd;
                    self.cancelled = false;
                    self.state = if !self.ring.single_shot() {
                        RecvState::Multishot(op::recv_multishot_stream(fd, &self.ring, self.tcp))
                    } else if let Some(buf) = self.ring.take_pooled() {
                        RecvState::Single(Box::new(op::recv_stream(fd, buf, self.tcp)))
                    } else {
                        RecvState::WaitBuffer
                    };
                }
                RecvState::Multishot(s) => match std::task::ready!(s.poll_next_item(cx)) {
                    Some(Ok(Some(buf))) => return Poll::Ready(Some(Ok(buf))),
                    Some(Ok(None)) => return self.finish(None),
                    Some(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        // The data waits in the socket; get a buffer, then re-arm.
                        self.state = self.after_receive(RecvState::WaitBuffer);
                    }
                    Some(Err(e)) if self.cancelled && e.raw_os_error() == Some(libc::ECANCELED) => {
                        self.state = self.after_receive(RecvState::Idle);
                    }
                    Some(Err(e)) => return self.finish(Some(e)),
                    // Ended without a final error (the kernel may end a multishot receive,
                    // e.g. under CQ pressure): re-arm unless stopping.
                    None => self.state = self.after_receive(RecvState::Idle),
                },
                RecvState::Single(op) => {
                    let (res, buf) = std::task::ready!(Pin::new(&mut **op).poll(cx));
                    self.state = RecvState::Idle;
                    return self.single_outcome(res, buf);
                }
                RecvState::Cancelling(c) => {
                    let (res, buf) = std::task::ready!(Pin::new(&mut **c).poll(cx));
                    self.state = self.after_receive(RecvState::Idle);
                    if matches!(&res, Err(e) if e.raw_os_error() == Some(libc::ECANCELED)) {
                        continue;
                    }
                    return self.single_outcome(res, buf);
                }
                RecvState::WaitBuffer => {
                    if !self.ring.replenish(cx.waker()) {
                        return Poll::Pending;
                    }
                    self.state = RecvState::Idle;
                }
                RecvState::Stopped | RecvState::Finished => return Poll::Ready(None),
            }
        }
    }

    /// The state after a receive ended without data: `next` unless `stop` was called.
    fn after_receive(&self, next: RecvState) -> RecvState {
        if self.stopping {
            RecvState::Stopped
        } else {
            next
        }
    }

    fn single_outcome(
        &mut self,
        res: io::Result<usize>,
        buf: PooledBuf,
    ) -> Poll<Option<io::Result<RingBuf>>> {
        match res {
            Ok(0) => self.finish(None),
            Ok(_) => Poll::Ready(Some(Ok(buf.into_ring_buf()))),
            Err(e) => self.finish(Some(e)),
        }
    }

    fn finish(&mut self, error: Option<io::Error>) -> Poll<Option<io::Result<RingBuf>>> {
        self.state = RecvState::Finished;
        Poll::Ready(error.map(Err))
    }
}

impl RecvStream<'static> {
    /// A stream that keeps a share of its socket, for owners that hold both (a transport).
    pub(crate) fn owning<S: AsFd + 'static>(socket: Rc<S>, ring: &BufRing) -> Self {
        let fd = socket.as_fd().as_raw_fd();
        let socket: Rc<dyn Any> = socket;
        let tcp = socket.is::<super::TcpStream>();
        RecvStream::with(fd, Some(socket), ring, tcp)
    }
}

impl Drop for RecvStream<'_> {
    /// Hands a receive still in flight, and what it received, to the socket's next read. A
    /// task drains it at once, so its buffers go back to the ring now, not at that read; if
    /// the socket is dropped first, the receive is dropped (cancelled) with it.
    fn drop(&mut self) {
        let Some(slot) = self.slot else {
            return;
        };
        if !slot.is_free() {
            // A dropped read still in flight keeps the slot; this stream's bytes go with it,
            // as a stream without a slot's do.
            return;
        }
        let drain: Drain = match std::mem::replace(&mut self.state, RecvState::Finished) {
            RecvState::Multishot(mut s) => {
                s.cancel();
                Box::pin(drain_multishot(s))
            }
            // A single receive is left to complete, as a dropped read is.
            RecvState::Single(op) => Box::pin(async move {
                let (res, buf) = (*op).await;
                single_bytes(res, buf)
            }),
            RecvState::Cancelling(c) => Box::pin(async move {
                let (res, buf) = (*c).await;
                single_bytes(res, buf)
            }),
            _ => return,
        };
        let drain = Rc::new(RefCell::new(Some(drain)));
        let spawned = crate::runtime::with_context(|cx| {
            (!cx.shutting_down.get()).then(|| cx.spawn(run_drain(Rc::clone(&drain))))
        });
        // Outside a live loop the receive is simply dropped (the op table cancels it).
        if let Some(Some(task)) = spawned {
            let mut draining = Draining { drain, task };
            slot.adopt(async move {
                (&mut draining.task)
                    .await
                    .unwrap_or_else(|_| Err(io::Error::from_raw_os_error(libc::ECANCELED)))
            });
        }
    }
}

/// What a dropped receive stream had in flight: the bytes it will yield (see
/// [`drain_multishot`]).
type Drain = Pin<Box<dyn Future<Output = io::Result<Vec<u8>>>>>;

/// A drain shared by the task that runs it and the socket's slot, which can take it away.
type SharedDrain = Rc<RefCell<Option<Drain>>>;

/// Runs the drain in `shared` until it ends, or until the socket took it away
/// (`ECANCELED`).
async fn run_drain(shared: SharedDrain) -> io::Result<Vec<u8>> {
    std::future::poll_fn(|cx| {
        let mut slot = shared.borrow_mut();
        let Some(drain) = slot.as_mut() else {
            return Poll::Ready(Err(io::Error::from_raw_os_error(libc::ECANCELED)));
        };
        let out = std::task::ready!(drain.as_mut().poll(cx));
        *slot = None;
        Poll::Ready(out)
    })
    .await
}

/// The drain of a dropped receive stream, held in its socket's slot. If the socket goes
/// before a read took the bytes, dropping this drops the drain's receive at once — which
/// cancels it in the kernel, so the socket closes now, not when data next arrives (and the
/// receive can never run on a reused descriptor number) — and cancels the drain's task.
struct Draining {
    drain: SharedDrain,
    task: JoinHandle<io::Result<Vec<u8>>>,
}

impl Drop for Draining {
    fn drop(&mut self) {
        // The task polls the drain only while it runs, never while a socket is dropped.
        let drain = self.drain.try_borrow_mut().ok().and_then(|mut d| d.take());
        drop(drain);
        self.task.cancel();
    }
}

/// Collects the chunks of a cancelled multishot receive until it ends: the bytes (empty at end
/// of file), or `ECANCELED` if it had received nothing, or its error if that came first.
async fn drain_multishot(mut s: OpStream<RecvMulti>) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    loop {
        match s.next().await {
            Some(Ok(Some(chunk))) => bytes.extend_from_slice(&chunk),
            // End of file: what came before it, or the end itself.
            Some(Ok(None)) => return Ok(bytes),
            Some(Err(e)) if bytes.is_empty() && !ends_quietly(&e) => return Err(e),
            Some(Err(_)) | None => break,
        }
    }
    if bytes.is_empty() {
        Err(io::Error::from_raw_os_error(libc::ECANCELED))
    } else {
        Ok(bytes)
    }
}

/// The ends of a multishot receive that leave the socket's data where it is.
fn ends_quietly(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECANCELED) | Some(libc::ENOBUFS)
    )
}

/// What a single receive into a pool buffer took from the socket.
fn single_bytes(res: io::Result<usize>, buf: PooledBuf) -> io::Result<Vec<u8>> {
    res.map(|_| buf.into_ring_buf().to_vec())
}

impl futures_core::Stream for RecvStream<'_> {
    type Item = io::Result<RingBuf>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_chunk(cx)
    }
}

impl super::TcpStream {
    /// Receives with a multishot receive into buffers `ring` picks when data arrives; see
    /// [`RecvStream`] and [`BufRing`](crate::buf::BufRing) (whose docs have an example).
    /// Bytes a dropped [`read`](Self::read) left behind are not seen here: use one way of
    /// reading per stream. (The other way round works: what a dropped receive stream had
    /// received goes to the next `read`.)
    pub fn recv_multishot(&self, ring: &BufRing) -> RecvStream<'_> {
        let socket = self.stream_socket();
        RecvStream::new(self.as_fd(), socket.receive_slot(), ring, socket.is_tcp())
    }
}

impl super::UnixStream {
    /// Receives with a multishot receive into buffers `ring` picks when data arrives; see
    /// [`RecvStream`] and [`TcpStream::recv_multishot`](super::TcpStream::recv_multishot).
    pub fn recv_multishot(&self, ring: &BufRing) -> RecvStream<'_> {
        let socket = self.stream_socket();
        RecvStream::new(self.as_fd(), socket.receive_slot(), ring, socket.is_tcp())
    }
}
