//! The limit for `nop/N`: a bare io_uring loop, no runtime at all.
//!
//! Each batch pushes `depth` NOP SQEs, enters the kernel once to submit them and wait for all
//! `depth` completions, then reaps the CQ: the least work any io_uring runtime can do to keep
//! `depth` NOPs in flight. A runtime's `nop/N` throughput over this one's is the share of the
//! limit it reaches. The ring is a plain one (no SINGLE_ISSUER / DEFER_TASKRUN): a NOP completes
//! inline during submission, so those flags changed these numbers by 5% at most when tried.

use crate::workload::{Kind, Measured, Sizes};
use io_uring::{IoUring, opcode, squeue};
use std::io;
use std::time::Instant;

pub fn probe() -> Result<(), String> {
    IoUring::new(8)
        .map(drop)
        .map_err(|e| format!("io_uring_setup failed: {e}"))
}

pub fn sample(kind: Kind, sizes: Sizes) -> Result<Measured, String> {
    let Kind::Nop { depth } = kind else {
        return Err(format!("the raw loop has no {kind:?} workload"));
    };
    nop_sample(depth, sizes).map_err(|e| format!("raw io_uring loop failed: {e}"))
}

fn nop_sample(depth: usize, sizes: Sizes) -> io::Result<Measured> {
    let entries = u32::try_from(depth.next_power_of_two()).map_err(io::Error::other)?;
    let mut ring = IoUring::new(entries)?;
    run_nops(&mut ring, depth, sizes.nop_ops)?; // warm-up, as for the runtimes
    let start = Instant::now();
    let (units, enters) = run_nops(&mut ring, depth, sizes.nop_ops)?;
    Ok(Measured {
        kernel_enters: Some(enters),
        ..Measured::timed(start.elapsed(), units)
    })
}

/// Completes about `nop_ops` NOPs, `depth` at a time; returns how many it completed and how
/// many times it entered the kernel.
fn run_nops(ring: &mut IoUring, depth: usize, nop_ops: usize) -> io::Result<(u64, u64)> {
    let batches = (nop_ops / depth).max(1);
    let nop = opcode::Nop::new().build();
    let mut enters = 0;
    for _ in 0..batches {
        push_nops(ring, depth, &nop)?;
        submit_and_wait(ring, depth)?;
        enters += 1 + reap(ring, depth)?;
    }
    Ok(((batches * depth) as u64, enters))
}

fn push_nops(ring: &mut IoUring, depth: usize, nop: &squeue::Entry) -> io::Result<()> {
    let mut submission = ring.submission();
    for index in 0..depth {
        let entry = nop.clone().user_data(index as u64);
        // SAFETY: a NOP SQE points at no memory, so nothing it refers to can be freed or moved
        // before its completion arrives.
        unsafe { submission.push(&entry) }
            .map_err(|_| io::Error::other("submission queue full: ring smaller than depth"))?;
    }
    Ok(())
}

/// One `io_uring_enter` that submits what is queued and waits for `want` completions;
/// `EINTR` (a signal arrived) is retried.
fn submit_and_wait(ring: &mut IoUring, want: usize) -> io::Result<()> {
    loop {
        match ring.submit_and_wait(want) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Drains `depth` completions, waiting for more if the kernel posted fewer; returns how many
/// extra waits that took.
fn reap(ring: &mut IoUring, depth: usize) -> io::Result<u64> {
    let mut reaped = 0;
    let mut waits = 0;
    loop {
        for cqe in ring.completion() {
            if cqe.result() < 0 {
                return Err(io::Error::from_raw_os_error(-cqe.result()));
            }
            reaped += 1;
        }
        if reaped >= depth {
            return Ok(waits);
        }
        submit_and_wait(ring, depth - reaped)?;
        waits += 1;
    }
}
