//! Write-side flow control, the same for every transport: the water marks of the write buffer
//! and the `pause_writing`/`resume_writing` notes they cause.

use std::collections::VecDeque;
use std::io;

/// asyncio's default high-water mark of the write buffer.
pub(crate) const DEFAULT_HIGH_WATER: usize = 64 * 1024;

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

/// Decides when the protocol is told to pause and resume writing, as notes for the task to
/// deliver.
#[derive(Debug)]
pub(crate) struct FlowControl {
    pub(crate) marks: WaterMarks,
    /// `pause_writing` is due or delivered and `resume_writing` is not.
    paused: bool,
    notes: VecDeque<Note>,
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

    /// The next note for the task to deliver.
    pub(crate) fn next_note(&mut self) -> Option<Note> {
        self.notes.pop_front()
    }

    /// Forgets the notes not yet delivered: the transport is ending and `connection_lost` is
    /// the next callback.
    pub(crate) fn clear_notes(&mut self) {
        self.notes.clear();
    }
}
