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
//! - `queue/1M/mpsc`: the same through ringloop's thread-safe `sync::mpsc` (async-channel):
//!   what a single-loop queue saves.
//! - `taskgroup/10000`: spawn 10 000 children (each yields once and returns a value) into a
//!   `task::TaskGroup` and join it, ns per child; vs `tokio::task::JoinSet` (spawn all, then
//!   `join_next` until empty).
//! - `spawn_threadsafe`: a plain thread spawns a task onto the loop and blocks until its result
//!   is back, 10 000 times (1 000 with `--quick`): µs per round trip. ringloop's
//!   `Handle::spawn` + `JoinHandle::wait` vs tokio's `Handle::spawn` + a blocking wait on the
//!   `JoinHandle`; the loop thread meanwhile waits on a channel for the end.

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
    QueueMpsc { capacity: usize },
    TaskGroup { children: usize },
    SpawnThreadsafe,
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

/// Acquire + release pairs (or items) per run: `yields` sized (a million, or 100 000 with
/// `--quick`); a hundredth of that for `spawn_threadsafe`'s round trips.
fn rounds(sizes: Sizes) -> usize {
    sizes.yields
}

fn round_trips(sizes: Sizes) -> usize {
    sizes.yields / 100
}

/// Times `round_trips` spawn-and-wait round trips made by a plain thread with `spawn_wait`,
/// while `serve` runs the loop on this thread until it is told the thread is done.
fn threadsafe_round_trips(
    trips: usize,
    spawn_wait: impl Fn(u64) -> u64 + Send + 'static,
    serve: impl FnOnce(ringloop::sync::oneshot::Receiver<()>),
) -> Measured {
    let (done, finished) = ringloop::sync::oneshot::channel();
    let client = std::thread::spawn(move || {
        let run = |n: usize| {
            for i in 0..n as u64 {
                assert_eq!(spawn_wait(i), i + 1);
            }
        };
        run(trips); // warm-up
        let start = std::time::Instant::now();
        run(trips);
        let elapsed = start.elapsed();
        done.send(()).expect("the loop stopped waiting");
        Measured::timed(elapsed, trips as u64)
    });
    serve(finished);
    client.join().expect("the spawning thread panicked")
}

fn ringloop_sample(backend: Backend, kind: AsyncioKind, sizes: Sizes) -> Result<Measured, String> {
    let runtime = ringloop::Runtime::builder()
        .backend(backend)
        .build()
        .map_err(|e| format!("ringloop ({backend:?}) failed to build: {e}"))?;
    if kind == AsyncioKind::SpawnThreadsafe {
        let handle = runtime.handle();
        return Ok(threadsafe_round_trips(
            round_trips(sizes),
            move |i| {
                handle
                    .spawn(async move { i + 1 })
                    .wait()
                    .expect("task failed")
            },
            |finished| runtime.block_on(finished).expect("the thread went away"),
        ));
    }
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
            AsyncioKind::QueueMpsc { capacity } => {
                let (tx, rx) = ringloop::sync::mpsc::channel(capacity);
                let consumer = ringloop::spawn(async move {
                    let mut sum = 0u64;
                    for _ in 0..n {
                        sum += rx.recv().await.expect("channel closed");
                    }
                    sum
                });
                for i in 0..n as u64 {
                    tx.send(i).await.expect("channel closed");
                }
                std::hint::black_box(consumer.await.expect("consumer failed"));
                n as u64
            }
            AsyncioKind::TaskGroup { children } => {
                let group = ringloop::task::TaskGroup::<()>::new();
                let kids: Vec<_> = (0..children as u64)
                    .map(|i| {
                        group.spawn(async move {
                            ringloop::yield_now().await;
                            Ok(i)
                        })
                    })
                    .collect();
                group.join().await.expect("no child fails");
                let sum: u64 = kids.iter().map(|k| k.result().expect("a value")).sum();
                std::hint::black_box(sum);
                children as u64
            }
            AsyncioKind::SpawnThreadsafe => unreachable!("timed on its own thread above"),
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
    if kind == AsyncioKind::SpawnThreadsafe {
        let handle = runtime.handle().clone();
        return Ok(threadsafe_round_trips(
            round_trips(sizes),
            move |i| {
                let task = handle.spawn(async move { i + 1 });
                futures_lite::future::block_on(task).expect("task failed")
            },
            |finished| runtime.block_on(finished).expect("the thread went away"),
        ));
    }
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
            AsyncioKind::Queue { capacity } | AsyncioKind::QueueMpsc { capacity } => {
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
            AsyncioKind::TaskGroup { children } => {
                let mut set = tokio::task::JoinSet::new();
                for i in 0..children as u64 {
                    set.spawn(async move {
                        tokio::task::yield_now().await;
                        i
                    });
                }
                let mut sum = 0u64;
                while let Some(out) = set.join_next().await {
                    sum += out.expect("no child fails");
                }
                std::hint::black_box(sum);
                children as u64
            }
            AsyncioKind::SpawnThreadsafe => unreachable!("timed on its own thread above"),
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
