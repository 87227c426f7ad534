//! ringloop on a chosen backend: the portable workloads plus the awaited NOP.

use crate::workload::{Kind, Measured, Sizes, measure, portable_workloads};
use ringloop::time::{sleep, timeout};
use ringloop::{Backend, Runtime, spawn, yield_now};
use std::fmt::Debug;
use std::future::Future;

/// Awaits a task and unwraps its output.
async fn join<T, E: Debug>(handle: impl Future<Output = Result<T, E>>) -> T {
    handle.await.expect("ringloop task failed")
}

/// ringloop has no cooperative budget: the identity.
fn unconstrained<F: Future>(future: F) -> F {
    future
}

portable_workloads!();

/// `depth` tasks, each awaiting `op::nop()` in a loop, `nop_ops` NOPs in all.
async fn awaited_nops(depth: usize, nop_ops: usize) -> u64 {
    let per_task = (nop_ops / depth).max(1);
    let handles: Vec<_> = (0..depth)
        .map(|_| {
            spawn(async move {
                for _ in 0..per_task {
                    ringloop::op::nop().await.expect("nop failed");
                }
            })
        })
        .collect();
    for handle in handles {
        join(handle).await;
    }
    (depth * per_task) as u64
}

async fn run(kind: Kind, sizes: Sizes) -> u64 {
    match kind {
        Kind::Nop { depth } => awaited_nops(depth, sizes.nop_ops).await,
        _ => run_portable(kind, sizes).await,
    }
}

fn build(backend: Backend) -> Result<Runtime, String> {
    Runtime::builder()
        .backend(backend)
        .build()
        .map_err(|e| format!("ringloop ({backend:?}) failed to build: {e}"))
}

pub fn probe(backend: Backend) -> Result<(), String> {
    build(backend).map(drop)
}

/// One sample; its kernel entries are counted by the runtime over warm-up and timed run
/// together, which do the same work, so the timed run's share is half.
pub fn sample(backend: Backend, kind: Kind, sizes: Sizes) -> Result<Measured, String> {
    let runtime = build(backend)?;
    let before = runtime.stats().kernel_enters;
    let measured = runtime.block_on(measure(|| run(kind, sizes)));
    let enters = runtime.stats().kernel_enters - before;
    Ok(Measured {
        kernel_enters: Some(enters / 2),
        ..measured
    })
}

pub fn auto_backend_report() -> String {
    match build(Backend::Auto) {
        Ok(runtime) => runtime.backend_report().to_string(),
        Err(error) => error,
    }
}
