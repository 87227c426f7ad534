//! The workloads: their names, sizes, units, and the one loop body every runtime runs.
//!
//! The portable workloads are written once, in [`portable_workloads!`], and expanded inside each
//! runtime's module, where the names `spawn`, `join`, `yield_now`, `sleep`, `timeout` and
//! `unconstrained` resolve to that runtime's own items. So the measured loops are the same
//! source text for every runtime; only the library underneath changes.

use std::future::Future;
use std::time::{Duration, Instant};

/// Number of sleeping tasks in `sleep/10000`; the name carries it, so it does not shrink in
/// `--quick`.
pub const SLEEP_TASKS: usize = 10_000;

/// The longest sleep of `sleep/10000`, and so the least wall time the workload can take.
pub const SLEEP_LONGEST: Duration = Duration::from_millis(10);

/// The shortest sleep of `sleep/10000`; the others are spread evenly up to [`SLEEP_LONGEST`].
pub const SLEEP_SHORTEST: Duration = Duration::from_millis(1);

/// Which loop a workload runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `depth` tasks each awaiting `op::nop()` in a loop: `depth` NOPs in flight.
    Nop { depth: usize },
    /// Spawn every task, then await every join handle.
    SpawnJoin,
    /// [`SLEEP_TASKS`] tasks, each sleeping a distinct duration, all awaited.
    Sleep,
    /// Create a 10 s timeout around `yield_now()`, poll it once (the timer registers), drop it.
    TimeoutCancel,
    /// One task calling `yield_now().await` in a loop.
    Yield,
}

/// Which direction of a number is good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

impl Better {
    /// The word used in the JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Better::Higher => "higher",
            Better::Lower => "lower",
        }
    }
}

/// How a timed run becomes the number in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Nanoseconds of wall time per unit of work (unit name given), lower is better.
    NanosPer(&'static str),
    /// Millions of units per second of wall time, higher is better.
    MillionsPerSec,
    /// Total wall time in milliseconds, lower is better.
    WallMillis,
}

impl Metric {
    pub fn unit(self) -> &'static str {
        match self {
            Metric::NanosPer(unit) => unit,
            Metric::MillionsPerSec => "Mops/s",
            Metric::WallMillis => "ms",
        }
    }

    pub fn better(self) -> Better {
        match self {
            Metric::MillionsPerSec => Better::Higher,
            Metric::NanosPer(_) | Metric::WallMillis => Better::Lower,
        }
    }

    /// The table's number for one timed run.
    pub fn value(self, measured: Measured) -> f64 {
        let secs = measured.elapsed.as_secs_f64();
        let units = measured.units.max(1) as f64;
        match self {
            Metric::NanosPer(_) => secs * 1e9 / units,
            Metric::MillionsPerSec => units / secs / 1e6,
            Metric::WallMillis => secs * 1e3,
        }
    }
}

/// One row group of the table.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub name: &'static str,
    pub kind: Kind,
    pub metric: Metric,
}

/// Every workload, in the order the table prints them.
pub fn all() -> Vec<Workload> {
    let nop = |name, depth| Workload {
        name,
        kind: Kind::Nop { depth },
        metric: Metric::MillionsPerSec,
    };
    vec![
        nop("nop/1", 1),
        nop("nop/32", 32),
        nop("nop/256", 256),
        Workload {
            name: "spawn_join",
            kind: Kind::SpawnJoin,
            metric: Metric::NanosPer("ns/task"),
        },
        Workload {
            name: "sleep/10000",
            kind: Kind::Sleep,
            metric: Metric::WallMillis,
        },
        Workload {
            name: "timeout_cancel",
            kind: Kind::TimeoutCancel,
            metric: Metric::NanosPer("ns/op"),
        },
        Workload {
            name: "yield",
            kind: Kind::Yield,
            metric: Metric::NanosPer("ns/yield"),
        },
    ]
}

/// How much work each workload does in one timed run.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// NOPs completed per `nop/N` run, over all its tasks.
    pub nop_ops: usize,
    pub spawn_tasks: usize,
    pub sleep_tasks: usize,
    pub timeouts: usize,
    pub yields: usize,
}

impl Sizes {
    pub fn normal() -> Self {
        Sizes {
            nop_ops: 200_000,
            spawn_tasks: 100_000,
            sleep_tasks: SLEEP_TASKS,
            timeouts: 100_000,
            yields: 1_000_000,
        }
    }

    pub fn quick() -> Self {
        Sizes {
            nop_ops: 20_000,
            spawn_tasks: 10_000,
            sleep_tasks: SLEEP_TASKS,
            timeouts: 10_000,
            yields: 100_000,
        }
    }
}

/// One timed run: how long it took and how many units of work it did.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    pub elapsed: Duration,
    pub units: u64,
    /// Kernel entries (`io_uring_enter`, `epoll_wait`) the run made, where the contender counts
    /// them (ringloop's `Runtime::stats`, the raw loop); `None` elsewhere.
    pub kernel_enters: Option<u64>,
}

impl Measured {
    /// Kernel entries per unit of work, where counted.
    pub fn enters_per_unit(self) -> Option<f64> {
        Some(self.kernel_enters? as f64 / self.units.max(1) as f64)
    }
}

/// Runs `run` twice: once untimed to warm up, then once timed.
///
/// The warm-up is full-size so the timed run finds memory already faulted in and pools, timer
/// wheels and rings grown to size: it measures the steady state. (At a tenth of the size,
/// first-touch page faults added about a third to `spawn_join` on every runtime.)
/// `run` returns how many units of work it did.
pub async fn measure<F, Fut>(mut run: F) -> Measured
where
    F: FnMut() -> Fut,
    Fut: Future<Output = u64>,
{
    run().await;
    let start = Instant::now();
    let units = run().await;
    Measured {
        elapsed: start.elapsed(),
        units,
        kernel_enters: None,
    }
}

/// The sleep of task `index` out of `tasks`: evenly spread from [`SLEEP_SHORTEST`] to
/// [`SLEEP_LONGEST`], so no two tasks share a deadline.
pub fn sleep_duration(index: usize, tasks: usize) -> Duration {
    let span = SLEEP_LONGEST - SLEEP_SHORTEST;
    let steps = tasks.saturating_sub(1).max(1) as u32;
    SLEEP_SHORTEST + span * index as u32 / steps
}

/// Expands the portable workloads in the calling module.
///
/// The caller's scope must provide:
/// - `spawn(future) -> handle`, eager, like `tokio::spawn`;
/// - `async fn join(handle) -> T`, which awaits a handle and unwraps the task's output;
/// - `yield_now()`, `sleep(Duration)`, `timeout(Duration, future)`;
/// - `unconstrained(future) -> future`: opts out of a cooperative budget (tokio's `coop`) and is
///   the identity for runtimes without one.
///
/// It defines `async fn run_portable(kind: Kind, sizes: Sizes) -> u64` (units of work done).
macro_rules! portable_workloads {
    () => {
        /// Runs one portable workload; `Kind::Nop` is not portable and is handled by the caller.
        pub async fn run_portable(
            kind: $crate::workload::Kind,
            sizes: $crate::workload::Sizes,
        ) -> u64 {
            use $crate::workload::Kind;
            match kind {
                Kind::SpawnJoin => spawn_join(sizes.spawn_tasks).await,
                Kind::Sleep => sleep_all(sizes.sleep_tasks).await,
                Kind::TimeoutCancel => timeout_cancel(sizes.timeouts).await,
                Kind::Yield => yield_loop(sizes.yields).await,
                Kind::Nop { .. } => unreachable!("nop is not a portable workload"),
            }
        }

        /// Spawns `tasks` tasks that each return their index, then awaits them all in order.
        async fn spawn_join(tasks: usize) -> u64 {
            let handles: Vec<_> = (0..tasks).map(|i| spawn(async move { i })).collect();
            let mut sum = 0usize;
            for handle in handles {
                sum = sum.wrapping_add(join(handle).await);
            }
            std::hint::black_box(sum);
            tasks as u64
        }

        /// `tasks` tasks, each sleeping its own duration; returns when the last one woke.
        async fn sleep_all(tasks: usize) -> u64 {
            let handles: Vec<_> = (0..tasks)
                .map(|i| spawn(sleep($crate::workload::sleep_duration(i, tasks))))
                .collect();
            for handle in handles {
                join(handle).await;
            }
            tasks as u64
        }

        /// Registers and cancels `count` timeouts, in one task.
        ///
        /// tokio's cooperative budget would make `Sleep` return `Pending` *without* registering
        /// its timer after 128 polls in one task poll; `unconstrained` keeps every iteration
        /// doing the work being measured.
        async fn timeout_cancel(count: usize) -> u64 {
            let task = spawn(unconstrained(async move {
                for _ in 0..count {
                    let guarded = timeout(std::time::Duration::from_secs(10), yield_now());
                    // The first poll registers the timer; dropping the future then cancels it.
                    let polled = futures_lite::future::poll_once(guarded).await;
                    std::hint::black_box(polled.is_some());
                }
            }));
            join(task).await;
            count as u64
        }

        /// One task yielding `yields` times.
        async fn yield_loop(yields: usize) -> u64 {
            let task = spawn(async move {
                for _ in 0..yields {
                    yield_now().await;
                }
            });
            join(task).await;
            yields as u64
        }
    };
}

pub(crate) use portable_workloads;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_span_shortest_to_longest_and_are_distinct() {
        assert_eq!(sleep_duration(0, SLEEP_TASKS), SLEEP_SHORTEST);
        assert_eq!(sleep_duration(SLEEP_TASKS - 1, SLEEP_TASKS), SLEEP_LONGEST);
        assert!(sleep_duration(1, SLEEP_TASKS) > sleep_duration(0, SLEEP_TASKS));
    }

    #[test]
    fn metric_values() {
        let measured = Measured {
            elapsed: Duration::from_millis(2),
            units: 1_000,
            kernel_enters: Some(10),
        };
        assert_eq!(Metric::NanosPer("ns/op").value(measured), 2_000.0);
        assert!((Metric::MillionsPerSec.value(measured) - 0.5).abs() < 1e-9);
        assert_eq!(Metric::WallMillis.value(measured), 2.0);
        assert_eq!(measured.enters_per_unit(), Some(0.01));
    }
}
