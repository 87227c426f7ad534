//! The workloads of asyncio's high-level layer (`ringloop::sync`, ...) against their tokio
//! counterparts on tokio's current-thread runtime: ringloop's primitives are single-loop
//! types, tokio's are thread-safe, so these rows show what that costs.
//!
//! - `lock/uncontended`: one task takes and releases a lock in a loop (ns per
//!   acquire + release); ringloop's `sync::Lock` vs `tokio::sync::Mutex<()>`.
//! - `lock/contended/16`: 16 tasks take turns: each takes the lock, yields while holding it
//!   (so the others queue up), and releases it (ns per acquire + release, over all tasks).
//! - `queue/1M`: one producer and one consumer task move 1 000 000 integers (100 000 with
//!   `--quick`) through a bounded queue of 128 (ns per item); ringloop's `queue::Queue` vs
//!   `tokio::sync::mpsc::channel(128)`.

use std::rc::Rc;

use ringloop::Backend;

use crate::runtimes::RuntimeId;
use crate::workload::{Measured, Sizes, measure};

/// The asyncio-layer workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsyncioKind {
    LockUncontended,
    LockContended { tasks: usize },
    Queue { capacity: usize },
}

/// One sample of `kind` on `runtime` (ringloop on either backend, or tokio).
pub fn sample(runtime: RuntimeId, kind: AsyncioKind, sizes: Sizes) -> Result<Measured, String> {
    match runtime {
        RuntimeId::RingloopIoUring => ringloop_sample(Backend::IoUring, kind, sizes),
        RuntimeId::RingloopEpoll => ringloop_sample(Backend::Epoll, kind, sizes),
        RuntimeId::Tokio => tokio_sample(kind, sizes),
        other => Err(format!("{} has no {kind:?} row", other.name())),
    }
}

/// Acquire + release pairs per run: `yields` sized (a million, or 100 000 with `--quick`).
fn rounds(sizes: Sizes) -> usize {
    sizes.yields
}

fn ringloop_sample(backend: Backend, kind: AsyncioKind, sizes: Sizes) -> Result<Measured, String> {
    let runtime = ringloop::Runtime::builder()
        .backend(backend)
        .build()
        .map_err(|e| format!("ringloop ({backend:?}) failed to build: {e}"))?;
    let n = rounds(sizes);
    Ok(runtime.block_on(measure(|| async move {
        match kind {
            AsyncioKind::LockUncontended => {
                let lock = ringloop::sync::Lock::new();
                for _ in 0..n {
                    drop(std::hint::black_box(lock.acquire().await));
                }
                n as u64
            }
            AsyncioKind::Queue { capacity } => {
                let queue = Rc::new(ringloop::queue::Queue::new(capacity));
                let consumer = ringloop::spawn({
                    let queue = queue.clone();
                    async move {
                        let mut sum = 0u64;
                        for _ in 0..n {
                            sum += queue.get().await.expect("queue shut down");
                        }
                        sum
                    }
                });
                for i in 0..n as u64 {
                    queue.put(i).await.expect("queue shut down");
                }
                std::hint::black_box(consumer.await.expect("consumer failed"));
                n as u64
            }
            AsyncioKind::LockContended { tasks } => {
                let lock = Rc::new(ringloop::sync::Lock::new());
                let per_task = n / tasks;
                let handles: Vec<_> = (0..tasks)
                    .map(|_| {
                        let lock = lock.clone();
                        ringloop::spawn(async move {
                            for _ in 0..per_task {
                                let held = lock.acquire().await;
                                ringloop::yield_now().await;
                                drop(held);
                            }
                        })
                    })
                    .collect();
                for handle in handles {
                    handle.await.expect("lock task failed");
                }
                (per_task * tasks) as u64
            }
        }
    })))
}

fn tokio_sample(kind: AsyncioKind, sizes: Sizes) -> Result<Measured, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime failed to build: {e}"))?;
    let n = rounds(sizes);
    Ok(runtime.block_on(measure(|| async move {
        match kind {
            AsyncioKind::LockUncontended => {
                let lock = tokio::sync::Mutex::new(());
                for _ in 0..n {
                    drop(std::hint::black_box(lock.lock().await));
                }
                n as u64
            }
            AsyncioKind::Queue { capacity } => {
                let (tx, mut rx) = tokio::sync::mpsc::channel(capacity);
                let consumer = tokio::spawn(tokio::task::unconstrained(async move {
                    let mut sum = 0u64;
                    for _ in 0..n {
                        sum += rx.recv().await.expect("channel closed");
                    }
                    sum
                }));
                tokio::task::unconstrained(async {
                    for i in 0..n as u64 {
                        tx.send(i).await.expect("channel closed");
                    }
                })
                .await;
                std::hint::black_box(consumer.await.expect("consumer failed"));
                n as u64
            }
            AsyncioKind::LockContended { tasks } => {
                let lock = std::sync::Arc::new(tokio::sync::Mutex::new(()));
                let per_task = n / tasks;
                let handles: Vec<_> = (0..tasks)
                    .map(|_| {
                        let lock = lock.clone();
                        tokio::spawn(tokio::task::unconstrained(async move {
                            for _ in 0..per_task {
                                let held = lock.lock().await;
                                tokio::task::yield_now().await;
                                drop(held);
                            }
                        }))
                    })
                    .collect();
                for handle in handles {
                    handle.await.expect("lock task failed");
                }
                (per_task * tasks) as u64
            }
        }
    })))
}
