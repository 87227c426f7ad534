//! [`Phase`]: the lifecycle every socket transport goes through, stream or datagram.

use std::io;

/// The lifecycle of a transport. The read direction has its own switch
/// ([`Core::reading`](super::core::Core)) and a stream's peer EOF is its task's; this enum is
/// everything that decides whether a write is accepted and when the socket closes.
///
/// A datagram endpoint has no `write_eof`, so it only goes `Open`, then `Closing` or
/// `Aborting`, then `Closed`; a stream may pass through `EofPending` and `WriteShut` first.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Writes accepted; reads issued while reading is not paused (and, for a stream, the peer
    /// has not sent EOF).
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
    /// The socket is closed: `connection_lost` was delivered, or the task ended without it (a
    /// callback panicked, the runtime was dropped). Final.
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

    /// Whether the socket is closed (its descriptor may already belong to another file).
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self, Phase::Closed)
    }

    /// The error a write (`op`: `write`, `sendto`) gives in this phase, or `None` if it
    /// accepts data.
    pub(crate) fn write_refusal(&self, op: &str) -> Option<io::Error> {
        let (kind, why) = match self {
            Phase::Open => return None,
            Phase::EofPending | Phase::WriteShut => {
                (io::ErrorKind::InvalidInput, "after write_eof")
            }
            Phase::Closing => (io::ErrorKind::NotConnected, "on a closing transport"),
            Phase::Aborting(_) | Phase::Closed => {
                (io::ErrorKind::NotConnected, "on a closed transport")
            }
        };
        Some(io::Error::new(kind, format!("{op} {why}")))
    }
}
