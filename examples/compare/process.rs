//! The `process_spawn` workload: spawn `true` and wait for it, one child after another.
//!
//! ringloop spawns with `std::process::Command` and waits through the child's pidfd
//! (`IORING_OP_WAITID` on io_uring, pidfd readiness on epoll); tokio::process spawns with std
//! too and waits through its own reaper. Both sides are timed the same way as the compute
//! workloads ([`measure`]: a full-size warm-up, then the timed run), so the number is mostly
//! fork/exec cost plus each runtime's wait path.

use ringloop::Backend;

use crate::runtimes::RuntimeId;
use crate::workload::{Measured, Sizes, measure};

/// One sample of `process_spawn` on `runtime`.
pub fn sample(runtime: RuntimeId, sizes: Sizes) -> Result<Measured, String> {
    let count = sizes.process_spawns;
    match runtime {
        RuntimeId::RingloopIoUring => ringloop(Backend::IoUring, count),
        RuntimeId::RingloopEpoll => ringloop(Backend::Epoll, count),
        RuntimeId::Tokio => tokio(count),
        other => Err(format!("{} has no process_spawn row", other.name())),
    }
}

fn ringloop(backend: Backend, count: usize) -> Result<Measured, String> {
    let runtime = ringloop::Runtime::builder()
        .backend(backend)
        .build()
        .map_err(|e| format!("ringloop ({backend:?}) failed to build: {e}"))?;
    let before = runtime.stats().kernel_enters;
    let measured = runtime.block_on(async {
        let failure = std::cell::RefCell::new(None);
        let failed = &failure;
        let measured = measure(|| async move {
            for _ in 0..count {
                let status = ringloop::process::Command::new("true").status().await;
                if !matches!(&status, Ok(s) if s.success()) {
                    *failed.borrow_mut() = Some(format!("ringloop: `true` failed: {status:?}"));
                }
            }
            count as u64
        })
        .await;
        failure.into_inner().map_or(Ok(measured), Err)
    })?;
    // Warm-up and timed run do the same work: the timed run's share is half.
    let enters = runtime.stats().kernel_enters - before;
    Ok(Measured {
        kernel_enters: Some(enters / 2),
        ..measured
    })
}

fn tokio(count: usize) -> Result<Measured, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime failed to build: {e}"))?;
    runtime.block_on(async {
        let failure = std::cell::RefCell::new(None);
        let failed = &failure;
        let measured = measure(|| async move {
            for _ in 0..count {
                let status = tokio::process::Command::new("true").status().await;
                if !matches!(&status, Ok(s) if s.success()) {
                    *failed.borrow_mut() = Some(format!("tokio: `true` failed: {status:?}"));
                }
            }
            count as u64
        })
        .await;
        failure.into_inner().map_or(Ok(measured), Err)
    })
}
