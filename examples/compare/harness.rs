//! The sampling schedule: workloads one after another; within a workload, `rounds` rounds in
//! which every runtime takes one sample, the order rotating by one each round so no runtime is
//! always first (cold caches, CPU frequency ramp) or last.
//!
//! Each sample runs on a thread of its own under a watchdog: a panic becomes a note and drops
//! that runtime from the workload; a sample that hangs stops the whole run (its thread cannot be
//! killed and would skew every later number).

use crate::report::Row;
use crate::runtimes::RuntimeId;
use crate::workload::{Kind, Measured, Sizes, Workload};
use std::any::Any;
use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

/// What to run.
pub struct Plan {
    pub workloads: Vec<Workload>,
    /// The runtimes that started on this machine.
    pub runtimes: Vec<RuntimeId>,
    pub rounds: usize,
    pub sizes: Sizes,
    /// A sample taking longer than this is taken for a hang.
    pub hang_limit: Duration,
}

/// What came out: rows in table order, notes on anything that went wrong.
#[derive(Default)]
pub struct Outcome {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
    /// A sample hung; the rows stop at that workload.
    pub hung: bool,
}

enum SampleError {
    Failed(String),
    Hung,
}

pub fn run(plan: &Plan) -> Outcome {
    let mut outcome = Outcome::default();
    let mut progress = Progress::new();
    for (index, workload) in plan.workloads.iter().enumerate() {
        let contenders: Vec<RuntimeId> = plan
            .runtimes
            .iter()
            .copied()
            .filter(|id| id.runs(workload.kind))
            .collect();
        let mut rows: Vec<Row> = contenders
            .iter()
            .map(|&runtime| Row::new(workload.name, workload.kind, workload.metric, runtime))
            .collect();
        let header = format!("[{}/{}] {}", index + 1, plan.workloads.len(), workload.name);
        let completed = run_rounds(
            plan,
            workload,
            &mut rows,
            &mut outcome.notes,
            |round, id| {
                progress.show(&format!(
                    "{header} round {}/{} {} ...",
                    round + 1,
                    plan.rounds,
                    id.name()
                ))
            },
        );
        outcome.rows.extend(rows);
        if !completed {
            outcome.hung = true;
            break;
        }
    }
    progress.finish();
    outcome
}

/// Fills `rows` (one per contender) round by round; returns `false` if a sample hung.
fn run_rounds(
    plan: &Plan,
    workload: &Workload,
    rows: &mut [Row],
    notes: &mut Vec<String>,
    mut show: impl FnMut(usize, RuntimeId),
) -> bool {
    let mut dropped = vec![false; rows.len()];
    for round in 0..plan.rounds {
        for slot in rotated(rows.len(), round) {
            if dropped[slot] {
                continue;
            }
            let id = rows[slot].runtime;
            show(round, id);
            match sample_with_watchdog(id, workload.kind, plan.sizes, plan.hang_limit) {
                Ok(measured) => record(&mut rows[slot], measured),
                Err(SampleError::Failed(why)) => {
                    notes.push(format!(
                        "{} on {}: {why}; row dropped",
                        workload.name,
                        id.name()
                    ));
                    dropped[slot] = true;
                }
                Err(SampleError::Hung) => {
                    notes.push(format!(
                        "{} on {}: no result after {:?}; run stopped here",
                        workload.name,
                        id.name(),
                        plan.hang_limit
                    ));
                    return false;
                }
            }
        }
    }
    true
}

fn record(row: &mut Row, measured: Measured) {
    row.samples.push(row.metric.value(measured));
    row.enters_per_unit.extend(measured.enters_per_unit());
    row.cpu_us_per_unit.extend(measured.cpu_us_per_unit());
    row.kib_per_conn.extend(measured.kib_per_conn());
    if let Some(latency) = measured.latency {
        row.p50_us.push(latency.p50_us);
        row.p99_us.push(latency.p99_us);
    }
}

/// The slots `0..len` starting at `round % len`, wrapping around.
fn rotated(len: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..len).map(move |k| (k + round) % len)
}

/// Takes one sample on a fresh thread and waits at most `limit` for it.
fn sample_with_watchdog(
    id: RuntimeId,
    kind: Kind,
    sizes: Sizes,
    limit: Duration,
) -> Result<Measured, SampleError> {
    let (sender, receiver) = mpsc::channel();
    let worker = thread::Builder::new()
        .name(format!("sample-{}", id.name()))
        .spawn(move || {
            // The receiver only goes away after a hang, when nobody reads this any more.
            let _ = sender.send(id.sample(kind, sizes));
        })
        .map_err(|e| SampleError::Failed(format!("could not start a sample thread: {e}")))?;
    match receiver.recv_timeout(limit) {
        Ok(result) => {
            let _ = worker.join();
            result.map_err(SampleError::Failed)
        }
        // The sender was dropped without sending: the sample panicked.
        Err(RecvTimeoutError::Disconnected) => {
            let why = match worker.join() {
                Err(payload) => format!("panicked: {}", panic_message(&*payload)),
                Ok(()) => "sample thread ended without a result".to_owned(),
            };
            Err(SampleError::Failed(why))
        }
        Err(RecvTimeoutError::Timeout) => Err(SampleError::Hung),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(non-string panic payload)"
    }
}

/// Progress on stderr: one line rewritten in place on a terminal, one line per step otherwise.
struct Progress {
    in_place: bool,
}

impl Progress {
    fn new() -> Self {
        Progress {
            in_place: std::io::stderr().is_terminal(),
        }
    }

    fn show(&mut self, line: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = if self.in_place {
            write!(stderr, "\r\x1b[2K{line}")
        } else {
            writeln!(stderr, "{line}")
        };
        let _ = stderr.flush();
    }

    fn finish(&mut self) {
        if self.in_place {
            eprint!("\r\x1b[2K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_starts_one_later_each_round() {
        assert_eq!(rotated(3, 0).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(rotated(3, 1).collect::<Vec<_>>(), [1, 2, 0]);
        assert_eq!(rotated(3, 4).collect::<Vec<_>>(), [1, 2, 0]);
    }
}
