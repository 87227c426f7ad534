//! The core every socket transport shares with its task, stream or datagram: the lifecycle
//! [`Phase`], the write buffer's size and its flow control, the reading switch, the extra info,
//! and the wake-up that tells the task to look again.
//!
//! A handle ([`Transport`](super::Transport), [`DatagramTransport`](super::DatagramTransport))
//! holds the core and its task holds it too, through a [`TaskCore`]. Handle methods only change
//! the core and [`wake`](Core::wake) the task; they never call the protocol. The task reads the
//! core between protocol callbacks and does the I/O and the callbacks itself: it delivers the
//! [`Note`]s flow control queued ([`deliver_note`]), ends when the phase asks it to
//! ([`Core::take_end`]), and otherwise waits for I/O or [`Core::poll_changed`].
//!
//! What differs between the kinds is only what waits to be sent, a [`SendBuffer`]: the
//! stream's bytes or the datagram queue.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::extra::{ExtraInfo, SocketInfo, TransportAddr};
use super::flow::{FlowControl, Note, WaterMarks};
use super::phase::Phase;
use super::shared::OwnedProtocol;

/// What a transport holds to send: written and not yet sent.
pub(crate) trait SendBuffer: Default {
    /// Bytes buffered or handed to the op in flight and not yet sent (asyncio's
    /// `get_write_buffer_size`).
    fn size(&self) -> usize;

    /// `abort`: drops what no op has taken yet. What is in flight is counted until its op
    /// ends.
    fn drop_unsent(&mut self);
}

/// Everything a transport handle and its task share.
pub(crate) struct Core<B> {
    pub(crate) phase: Phase,
    /// What waits to be sent.
    pub(crate) outgoing: B,
    pub(crate) flow: FlowControl,
    /// `pause_reading`/`resume_reading` (a datagram endpoint cannot pause: always on).
    pub(crate) reading: bool,
    info: SocketInfo,
    /// Set by every handle method that changes something the task acts on.
    changed: bool,
    /// The task's waker while it waits.
    waker: Option<Waker>,
}

impl<B: SendBuffer> Core<B> {
    /// The core of a transport on the socket `info` describes, shared by its handle and task.
    pub(crate) fn shared(info: SocketInfo) -> Rc<RefCell<Core<B>>> {
        Rc::new(RefCell::new(Core {
            phase: Phase::Open,
            outgoing: B::default(),
            flow: FlowControl::new(),
            reading: true,
            info,
            changed: false,
            waker: None,
        }))
    }

    /// Tells the task to look at the core again.
    pub(crate) fn wake(&mut self) {
        self.changed = true;
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// The task's side of [`wake`](Self::wake): ready if the core changed since the task last
    /// looked, else the task's waker is kept for the next change.
    pub(crate) fn poll_changed(&mut self, cx: &Context<'_>) -> Poll<()> {
        if self.changed {
            self.changed = false;
            return Poll::Ready(());
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Refuses a write (`op`: `write`, `sendto`) the phase does not accept.
    pub(crate) fn check_writable(&self, op: &str) -> io::Result<()> {
        match self.phase.write_refusal(op) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    /// The handle added to the buffer: flow control may pause the protocol; the task sends.
    pub(crate) fn grew(&mut self) {
        self.flow.after_growth(self.outgoing.size());
        self.wake();
    }

    /// The task sent part of the buffer: flow control may resume the protocol.
    pub(crate) fn drained(&mut self) {
        self.flow.after_drain(self.outgoing.size());
    }

    /// Closes once the buffer is sent. Idempotent.
    pub(crate) fn close(&mut self) {
        if !self.phase.is_closing() {
            self.phase = Phase::Closing;
            self.wake();
        }
    }

    /// Ends the connection now, dropping the buffer; `err` goes to `connection_lost`.
    pub(crate) fn abort(&mut self, err: Option<io::Error>) {
        if matches!(self.phase, Phase::Aborting(_) | Phase::Closed) {
            return;
        }
        self.phase = Phase::Aborting(err);
        self.outgoing.drop_unsent();
        self.flow.clear_notes();
        self.wake();
    }

    /// The end the phase asks the task for, with the error for `connection_lost`: aborting,
    /// or closing with everything sent (`drained`: nothing buffered, no op in flight). The
    /// error is taken: the task asks once.
    pub(crate) fn take_end(&mut self, drained: bool) -> Option<Option<io::Error>> {
        match &mut self.phase {
            Phase::Aborting(err) => Some(err.take()),
            Phase::Closing if drained => Some(None),
            _ => None,
        }
    }

    /// The end: the socket is closed (or about to be); nothing buffered will be sent.
    pub(crate) fn mark_closed(&mut self) {
        self.phase = Phase::Closed;
        self.outgoing = B::default();
        self.flow.clear_notes();
        self.waker = None;
    }

    /// Whether received data goes to the protocol now (not paused, not closing).
    pub(crate) fn delivers_reads(&self) -> bool {
        self.reading && self.phase.reads()
    }

    /// Switches reading on or off; the task starts or stops its receive.
    pub(crate) fn set_reading(&mut self, reading: bool) {
        if self.reading != reading {
            self.reading = reading;
            self.wake();
        }
    }

    pub(crate) fn set_write_buffer_limits(
        &mut self,
        high: Option<usize>,
        low: Option<usize>,
    ) -> io::Result<()> {
        self.flow.marks = WaterMarks::new(high, low)?;
        let size = self.outgoing.size();
        self.flow.after_growth(size);
        self.flow.after_drain(size);
        self.wake();
        Ok(())
    }

    /// Bytes written and not yet sent (asyncio's `get_write_buffer_size`).
    pub(crate) fn write_buffer_size(&self) -> usize {
        self.outgoing.size()
    }

    /// The `(low, high)` water marks, in asyncio's order.
    pub(crate) fn write_buffer_limits(&self) -> (usize, usize) {
        (self.flow.marks.low, self.flow.marks.high)
    }

    /// asyncio's name-based lookup; the descriptor only until the socket closes.
    /// Records what a TLS upgrade negotiated, for `get_extra_info`.
    #[cfg(feature = "tls")]
    pub(crate) fn set_tls_info(&mut self, tls: crate::tls::TlsInfo) {
        self.info.tls = Some(tls);
    }

    pub(crate) fn extra_info(&self, name: &str) -> Option<ExtraInfo> {
        self.info.get(name, !self.phase.is_closed())
    }

    pub(crate) fn peername(&self) -> Option<TransportAddr> {
        self.info.peername.clone()
    }

    pub(crate) fn sockname(&self) -> Option<TransportAddr> {
        self.info.sockname.clone()
    }

    /// The socket's descriptor, until the socket closes.
    pub(crate) fn fd(&self) -> Option<RawFd> {
        (!self.phase.is_closed()).then_some(self.info.fd)
    }

    /// The `Debug` of a handle named `name`.
    pub(crate) fn fmt_handle(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("phase", &self.phase)
            .field("sockname", &self.info.sockname)
            .field("peername", &self.info.peername)
            .field("buffered", &self.outgoing.size())
            .finish_non_exhaustive()
    }
}

/// The task's hold on the core. However the task ends (finished, a callback panicked, or the
/// runtime dropped it) the handles then see a closed transport, so a write fails instead of
/// buffering bytes nobody will send. An argument of the task's future, so it is in the future
/// from the start, even if the task is dropped before it first runs.
pub(crate) struct TaskCore<B: SendBuffer>(pub(crate) Rc<RefCell<Core<B>>>);

impl<B: SendBuffer> Drop for TaskCore<B> {
    fn drop(&mut self) {
        if let Ok(mut core) = self.0.try_borrow_mut() {
            core.mark_closed();
        }
    }
}

/// A task's first step on every turn: delivers the flow-control note due, if any, with the
/// protocol's `pause_writing` or `resume_writing` (each protocol trait has its own). Returns
/// whether it delivered one.
///
/// Notes come first so that a `resume_writing` due when the buffer drained precedes the
/// `connection_lost` of a close (an abort clears them).
pub(crate) async fn deliver_note<B: SendBuffer, P>(
    core: &RefCell<Core<B>>,
    protocol: &OwnedProtocol<P>,
    pause_writing: fn(&mut P),
    resume_writing: fn(&mut P),
) -> bool {
    let note = core.borrow_mut().flow.next_note();
    let callback = match note {
        None => return false,
        Some(Note::PauseWriting) => pause_writing,
        Some(Note::ResumeWriting) => resume_writing,
    };
    protocol.call(callback).await;
    true
}
