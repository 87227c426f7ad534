//! The state a stream [`Transport`](super::Transport) handle shares with its task: the
//! lifecycle [`Phase`], the write buffer and its flow control, the reading switch, and the
//! notifications waiting to reach the protocol.
//!
//! Handle methods only change this state and wake the task; they never call the protocol. The
//! task reads the state between protocol callbacks and does the I/O and the callbacks itself.

use std::collections::VecDeque;
use std::io;
use std::task::Waker;

use super::extra::SocketInfo;

/// asyncio's default high-water mark of the write buffer.
pub(crate) const DEFAULT_HIGH_WATER: usize = 64 * 1024;

/// The lifecycle of a stream transport. The read direction has its own switch
/// ([`Core::reading`]) and the peer's EOF is the task's; this enum is everything that decides
/// whether `write` is accepted and when the socket closes.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Writes accepted; reads issued while reading is not paused and the peer has not sent EOF.
    Open,
    /// `write_eof` was called: writes are refused; once the buffer and the write in flight are
    /// done the task shuts down the write half and moves to `WriteShut`. Reads go on.
    EofPending,
    /// The write half is shut down. Reads go on until the peer's EOF; the transport stays open
    /// until `close`, as in asyncio.
    WriteShut,
    /// `close` was called (or `eof_received` returned `false`): writes are refused and reading
    /// has stopped; once the buffer is flushed the task calls `connection_lost(None)`.
    Closing,
    /// `abort` was called or I/O failed: the buffer is dropped and the task's next step is
    /// `connection_lost` with this error (`None` for `abort`). Taken once, by the task.
    Aborting(Option<io::Error>),
    /// `connection_lost` was delivered and the socket closed. Final.
    Closed,
}

impl Phase {
    /// Whether the transport still reads in this phase.
    pub(crate) fn reads(&self) -> bool {
        matches!(self, Phase::Open | Phase::EofPending | Phase::WriteShut)
    }

    /// Whether `close`/`abort` were called or the connection is gone (asyncio's `is_closing`).
    pub(crate) fn is_closing(&self) -> bool {
        matches!(self, Phase::Closing | Phase::Aborting(_) | Phase::Closed)
    }

    /// The error `write` gives in this phase, or `None` if it accepts data.
    pub(crate) fn write_refusal(&self) -> Option<io::Error> {
        let (kind, why) = match self {
            Phase::Open => return None,
            Phase::EofPending | Phase::WriteShut => {
                (io::ErrorKind::InvalidInput, "write after write_eof")
            }
            Phase::Closing => (io::ErrorKind::NotConnected, "write on a closing transport"),
            Phase::Aborting(_) | Phase::Closed => {
                (io::ErrorKind::NotConnected, "write on a closed transport")
            }
        };
        Some(io::Error::new(kind, why))
    }
}

/// A protocol callback that the task delivers after the current callback returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Note {
    /// The buffer rose above the high-water mark.
    PauseWriting,
    /// The buffer drained to the low-water mark.
    ResumeWriting,
}

/// High- and low-water marks of a write buffer, in bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WaterMarks {
    pub(crate) high: usize,
    pub(crate) low: usize,
}

impl WaterMarks {
    /// asyncio's rule: high defaults to 64 KiB (or `4 * low`), low to `high / 4`.
    pub(crate) fn new(high: Option<usize>, low: Option<usize>) -> io::Result<WaterMarks> {
        let high = high.unwrap_or_else(|| low.map_or(DEFAULT_HIGH_WATER, |l| l.saturating_mul(4)));
        let low = low.unwrap_or(high / 4);
        if low > high {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("write buffer limits: low ({low}) must not exceed high ({high})"),
            ));
        }
        Ok(WaterMarks { high, low })
    }
}

/// Write-side flow control shared by the stream and datagram transports: decides when the
/// protocol is told to pause and resume, as notes for the task to deliver.
#[derive(Debug)]
pub(crate) struct FlowControl {
    pub(crate) marks: WaterMarks,
    /// `pause_writing` is due or delivered and `resume_writing` is not.
    paused: bool,
    pub(crate) notes: VecDeque<Note>,
}

impl FlowControl {
    pub(crate) fn new() -> FlowControl {
        FlowControl {
            marks: WaterMarks {
                high: DEFAULT_HIGH_WATER,
                low: DEFAULT_HIGH_WATER / 4,
            },
            paused: false,
            notes: VecDeque::new(),
        }
    }

    /// Queues `pause_writing` if `size` rose above the high-water mark.
    pub(crate) fn after_growth(&mut self, size: usize) {
        if !self.paused && size > self.marks.high {
            self.paused = true;
            self.notes.push_back(Note::PauseWriting);
        }
    }

    /// Queues `resume_writing` if `size` drained to the low-water mark.
    pub(crate) fn after_drain(&mut self, size: usize) {
        if self.paused && size <= self.marks.low {
            self.paused = false;
            self.notes.push_back(Note::ResumeWriting);
        }
    }
}

/// Everything a [`Transport`](super::Transport) handle and its task share.
pub(crate) struct Core {
    pub(crate) phase: Phase,
    /// Bytes accepted by `write` and not yet handed to a write op.
    pub(crate) buffer: Vec<u8>,
    /// Bytes handed to the write op in flight and not yet sent.
    pub(crate) in_flight: usize,
    pub(crate) flow: FlowControl,
    /// `pause_reading`/`resume_reading`.
    pub(crate) reading: bool,
    pub(crate) info: SocketInfo,
    /// Set by every handle method that changes something the task acts on.
    pub(crate) changed: bool,
    /// The task's waker while it waits.
    pub(crate) waker: Option<Waker>,
}

impl Core {
    pub(crate) fn new(info: SocketInfo) -> Core {
        Core {
            phase: Phase::Open,
            buffer: Vec::new(),
            in_flight: 0,
            flow: FlowControl::new(),
            reading: true,
            info,
            changed: false,
            waker: None,
        }
    }

    /// Tells the task to look at the state again.
    pub(crate) fn wake(&mut self) {
        self.changed = true;
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Bytes written and not yet sent (asyncio's `get_write_buffer_size`).
    pub(crate) fn buffer_size(&self) -> usize {
        self.buffer.len() + self.in_flight
    }

    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some(refusal) = self.phase.write_refusal() {
            return Err(refusal);
        }
        if data.is_empty() {
            return Ok(());
        }
        self.buffer.extend_from_slice(data);
        self.flow.after_growth(self.buffer_size());
        self.wake();
        Ok(())
    }

    pub(crate) fn write_eof(&mut self) {
        if let Phase::Open = self.phase {
            self.phase = Phase::EofPending;
            self.wake();
        }
    }

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
        self.buffer = Vec::new();
        self.flow.notes.clear();
        self.wake();
    }

    /// Moves the buffered bytes out for a write op, leaving `spare` (empty) in their place.
    pub(crate) fn take_buffer(&mut self, spare: Vec<u8>) -> Option<Vec<u8>> {
        if self.buffer.is_empty() {
            return None;
        }
        let chunk = std::mem::replace(&mut self.buffer, spare);
        self.in_flight += chunk.len();
        Some(chunk)
    }

    /// `n` bytes of the write in flight were sent.
    pub(crate) fn sent(&mut self, n: usize) {
        self.in_flight -= n;
        self.flow.after_drain(self.buffer_size());
    }

    /// The write in flight was dropped unfinished (abort): its bytes no longer count.
    pub(crate) fn write_dropped(&mut self) {
        self.in_flight = 0;
    }

    pub(crate) fn set_write_buffer_limits(
        &mut self,
        high: Option<usize>,
        low: Option<usize>,
    ) -> io::Result<()> {
        self.flow.marks = WaterMarks::new(high, low)?;
        let size = self.buffer_size();
        self.flow.after_growth(size);
        self.flow.after_drain(size);
        self.wake();
        Ok(())
    }
}
