//! monoio on its io_uring driver, with the timer enabled.

use crate::workload::{Kind, Measured, Sizes, measure, portable_workloads};
use futures_lite::future::yield_now;
use monoio::time::{sleep, timeout};
use monoio::{IoUringDriver, RuntimeBuilder, spawn};
use std::future::Future;

// monoio 0.2 has no public `yield_now`; futures-lite's is the usual one (wake yourself, return
// `Pending` once), which is what the other runtimes' `yield_now` do too, minus tokio's deferral.

/// Awaits a task; monoio's join handle yields the output itself.
async fn join<F: Future>(handle: F) -> F::Output {
    handle.await
}

/// monoio has no cooperative budget: the identity.
fn unconstrained<F: Future>(future: F) -> F {
    future
}

portable_workloads!();

type MonoioRuntime = monoio::Runtime<monoio::time::TimeDriver<IoUringDriver>>;

fn build() -> Result<MonoioRuntime, String> {
    RuntimeBuilder::<IoUringDriver>::new()
        .enable_timer()
        .build()
        .map_err(|e| format!("monoio (io_uring driver) failed to build: {e}"))
}

pub fn probe() -> Result<(), String> {
    build().map(drop)
}

pub fn sample(kind: Kind, sizes: Sizes) -> Result<Measured, String> {
    let mut runtime = build()?;
    Ok(runtime.block_on(measure(|| run_portable(kind, sizes))))
}
