//! tokio, current-thread runtime with every driver enabled.

use crate::workload::{Kind, Measured, Sizes, measure, portable_workloads};
use std::fmt::Debug;
use std::future::Future;
use tokio::task::{spawn, unconstrained, yield_now};
use tokio::time::{sleep, timeout};

/// Awaits a task and unwraps its output.
async fn join<T, E: Debug>(handle: impl Future<Output = Result<T, E>>) -> T {
    handle.await.expect("tokio task failed")
}

portable_workloads!();

fn build() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime failed to build: {e}"))
}

pub fn probe() -> Result<(), String> {
    build().map(drop)
}

pub fn sample(kind: Kind, sizes: Sizes) -> Result<Measured, String> {
    let runtime = build()?;
    Ok(runtime.block_on(measure(|| run_portable(kind, sizes))))
}
