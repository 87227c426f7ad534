//! The workloads: their names, sizes, units, and the one loop body every runtime runs.
//!
//! The portable workloads are written once, in [`portable_workloads!`], and expanded inside each
//! runtime's module, where the names `spawn`, `join`, `yield_now`, `sleep`, `timeout` and
//! `unconstrained` resolve to that runtime's own items. So the measured loops are the same
//! source text for every runtime; only the library underneath changes.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::asyncio::AsyncioKind;

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
    /// A networking workload: a server in a child process, a load generator in this one.
    Net(NetKind),
    /// Spawn `true` and wait for it, [`Sizes::process_spawns`] times in a row.
    ProcessSpawn,
    /// `depth` tasks doing random 4 KiB reads of a page-cached file (see `file.rs`).
    FileRead { depth: usize },
    /// asyncio's high-level layer: locks, queues, task groups (see `asyncio.rs`).
    Asyncio(AsyncioKind),
}

/// The networking workloads (see `net/mod.rs` for how they run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetKind {
    /// `conns` connections, each with one `msg`-byte message in flight, echoed back.
    Echo { conns: usize, msg: usize },
    /// One connection streaming `chunk`-byte writes that the server reads and discards.
    Stream { chunk: usize },
    /// `conns` idle connections, each with a pending 4 KiB read on the server: its RSS growth.
    IdleRss { conns: usize },
    /// [`Echo`](Self::Echo) over TLS: `conns` TLS connections, one `msg`-byte message each.
    TlsEcho { conns: usize, msg: usize },
    /// [`Stream`](Self::Stream) over TLS: `chunk`-byte plaintext writes, read and discarded.
    TlsStream { chunk: usize },
    /// Full TLS handshakes one after another, each on a new connection (no resumption).
    TlsHandshake,
    /// `conns` HTTP/1.1 keep-alive connections to a hyper server, each with one `GET /` in
    /// flight, answered with a 13-byte body.
    Http { conns: usize },
}

impl NetKind {
    /// Whether the workload runs over TLS (its server needs a certificate).
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            NetKind::TlsEcho { .. } | NetKind::TlsStream { .. } | NetKind::TlsHandshake
        )
    }
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
    /// Requests (units) per second of wall time, higher is better.
    ReqPerSec,
    /// Bytes per second of wall time, each unit carrying `unit_bytes` bytes; higher is better.
    BytesPerSec { unit_bytes: usize },
    /// Full TLS handshakes (units) per second of wall time, higher is better.
    HandshakesPerSec,
    /// The server's RSS growth per connection in KiB, lower is better.
    KibPerConn,
}

impl Metric {
    pub fn unit(self) -> &'static str {
        match self {
            Metric::NanosPer(unit) => unit,
            Metric::MillionsPerSec => "Mops/s",
            Metric::WallMillis => "ms",
            Metric::ReqPerSec => "req/s",
            Metric::BytesPerSec { .. } => "bytes/s",
            Metric::HandshakesPerSec => "hs/s",
            Metric::KibPerConn => "KiB/conn",
        }
    }

    pub fn better(self) -> Better {
        match self {
            Metric::MillionsPerSec
            | Metric::ReqPerSec
            | Metric::BytesPerSec { .. }
            | Metric::HandshakesPerSec => Better::Higher,
            Metric::NanosPer(_) | Metric::WallMillis | Metric::KibPerConn => Better::Lower,
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
            Metric::ReqPerSec | Metric::HandshakesPerSec => units / secs,
            Metric::BytesPerSec { unit_bytes } => units * unit_bytes as f64 / secs,
            Metric::KibPerConn => measured.kib_per_conn().unwrap_or(f64::NAN),
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

/// Idle connections in `idle_rss/N`: fewer with `--quick`, and the name says how many.
pub const IDLE_CONNS: usize = 10_000;
/// Idle connections in `idle_rss/N` with `--quick`.
pub const IDLE_CONNS_QUICK: usize = 1_000;

/// The name of the plain streaming row, which the TLS stream row is set against.
pub const STREAM: &str = "stream/64KiB";
/// The name of the TLS streaming row.
pub const TLS_STREAM: &str = "tls_stream/64KiB";

/// The echo row also served through the `tokio-io` traits (ringloop's `+tokio-io` columns),
/// so the compat layer's cost shows next to the native API's.
pub const TOKIO_IO_ECHO: &str = "echo/16conn/64B";
/// [`TOKIO_IO_ECHO`]'s kind.
pub const TOKIO_IO_ECHO_KIND: NetKind = NetKind::Echo { conns: 16, msg: 64 };

/// Every workload, in the order the table prints them; `quick` shrinks `idle_rss`. The TLS
/// rows are there when ringloop is built with its `tls` feature (the default).
pub fn all(quick: bool) -> Vec<Workload> {
    let nop = |name, depth| Workload {
        name,
        kind: Kind::Nop { depth },
        metric: Metric::MillionsPerSec,
    };
    let mut workloads = vec![
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
        echo("echo/1conn/64B", 1, 64),
        Workload {
            name: TOKIO_IO_ECHO,
            kind: Kind::Net(TOKIO_IO_ECHO_KIND),
            metric: Metric::ReqPerSec,
        },
        echo("echo/128conn/64B", 128, 64),
        echo("echo/1conn/4KiB", 1, 4096),
        echo("echo/16conn/4KiB", 16, 4096),
        echo("echo/128conn/4KiB", 128, 4096),
        Workload {
            name: STREAM,
            kind: Kind::Net(NetKind::Stream { chunk: 64 * 1024 }),
            metric: Metric::BytesPerSec {
                unit_bytes: 64 * 1024,
            },
        },
        http("http/1conn", 1),
        http("http/64conn", 64),
    ];
    if cfg!(feature = "tls") {
        workloads.extend(tls_workloads());
    }
    workloads.extend([
        Workload {
            name: if quick {
                "idle_rss/1000"
            } else {
                "idle_rss/10000"
            },
            kind: Kind::Net(NetKind::IdleRss {
                conns: if quick { IDLE_CONNS_QUICK } else { IDLE_CONNS },
            }),
            metric: Metric::KibPerConn,
        },
        Workload {
            name: "process_spawn",
            kind: Kind::ProcessSpawn,
            metric: Metric::NanosPer("ns/process"),
        },
        file_read("file_read/qd1", 1),
        file_read("file_read/qd32", 32),
        Workload {
            name: "lock/uncontended",
            kind: Kind::Asyncio(AsyncioKind::LockUncontended),
            metric: Metric::NanosPer("ns/lock"),
        },
        Workload {
            name: "lock/contended/16",
            kind: Kind::Asyncio(AsyncioKind::LockContended { tasks: 16 }),
            metric: Metric::NanosPer("ns/lock"),
        },
        Workload {
            name: "queue/1M",
            kind: Kind::Asyncio(AsyncioKind::Queue { capacity: 128 }),
            metric: Metric::NanosPer("ns/item"),
        },
        Workload {
            name: "queue/1M/mpsc",
            kind: Kind::Asyncio(AsyncioKind::QueueMpsc { capacity: 128 }),
            metric: Metric::NanosPer("ns/item"),
        },
        Workload {
            name: "taskgroup/10000",
            kind: Kind::Asyncio(AsyncioKind::TaskGroup { children: 10_000 }),
            metric: Metric::NanosPer("ns/child"),
        },
        Workload {
            name: "spawn_threadsafe",
            kind: Kind::Asyncio(AsyncioKind::SpawnThreadsafe),
            metric: Metric::NanosPer("ns/trip"),
        },
    ]);
    workloads
}

/// The TLS rows: echo, stream and handshakes over rustls with the *ring* provider.
fn tls_workloads() -> [Workload; 3] {
    [
        Workload {
            name: "tls_echo/16conn/4KiB",
            kind: Kind::Net(NetKind::TlsEcho {
                conns: 16,
                msg: 4096,
            }),
            metric: Metric::ReqPerSec,
        },
        Workload {
            name: TLS_STREAM,
            kind: Kind::Net(NetKind::TlsStream { chunk: 64 * 1024 }),
            metric: Metric::BytesPerSec {
                unit_bytes: 64 * 1024,
            },
        },
        Workload {
            name: "tls_handshake",
            kind: Kind::Net(NetKind::TlsHandshake),
            metric: Metric::HandshakesPerSec,
        },
    ]
}

fn file_read(name: &'static str, depth: usize) -> Workload {
    Workload {
        name,
        kind: Kind::FileRead { depth },
        metric: Metric::NanosPer("ns/read"),
    }
}

fn http(name: &'static str, conns: usize) -> Workload {
    Workload {
        name,
        kind: Kind::Net(NetKind::Http { conns }),
        metric: Metric::ReqPerSec,
    }
}

fn echo(name: &'static str, conns: usize, msg: usize) -> Workload {
    Workload {
        name,
        kind: Kind::Net(NetKind::Echo { conns, msg }),
        metric: Metric::ReqPerSec,
    }
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
    /// Untimed load before a networking window (connections warm, buffers grown).
    pub net_warmup: Duration,
    /// The timed window of a networking workload.
    pub net_window: Duration,
    /// Children spawned and waited for per `process_spawn` run.
    pub process_spawns: usize,
    /// Reads per `file_read/*` run, and the size of the file they read.
    pub file_reads: usize,
    pub file_bytes: u64,
}

impl Sizes {
    pub fn normal() -> Self {
        Sizes {
            nop_ops: 200_000,
            spawn_tasks: 100_000,
            sleep_tasks: SLEEP_TASKS,
            timeouts: 100_000,
            yields: 1_000_000,
            net_warmup: Duration::from_millis(100),
            net_window: Duration::from_millis(300),
            process_spawns: 1_000,
            file_reads: 200_000,
            file_bytes: 256 << 20,
        }
    }

    pub fn quick() -> Self {
        Sizes {
            nop_ops: 20_000,
            spawn_tasks: 10_000,
            sleep_tasks: SLEEP_TASKS,
            timeouts: 10_000,
            yields: 100_000,
            net_warmup: Duration::from_millis(10),
            net_window: Duration::from_millis(30),
            process_spawns: 100,
            file_reads: 5_000,
            file_bytes: 64 << 20,
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
    /// CPU time (user + system) of the server thread over the run: networking workloads only.
    pub server_cpu: Option<Duration>,
    /// Growth of the server process's RSS in KiB, and over how many connections.
    pub server_rss: Option<RssGrowth>,
    /// Request latency percentiles seen by the load generator, where measured (`http/1conn`).
    pub latency: Option<Latency>,
}

/// Percentiles of the time from sending a request to receiving its whole answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
}

impl Latency {
    /// The nearest-rank 50th and 99th percentiles of `samples` (reordered); `None` if empty.
    pub fn of(samples: &mut [Duration]) -> Option<Latency> {
        samples.sort_unstable();
        let rank = |p: usize| {
            // Nearest rank: the smallest value with at least p % of the samples at or below it.
            let index = (samples.len() * p).div_ceil(100).max(1) - 1;
            samples[index].as_secs_f64() * 1e6
        };
        (!samples.is_empty()).then(|| Latency {
            p50_us: rank(50),
            p99_us: rank(99),
        })
    }
}

/// Growth of a server's resident memory while it held `conns` connections.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RssGrowth {
    pub kib: i64,
    pub conns: usize,
}

impl Measured {
    /// A run timed by wall clock alone (the compute workloads).
    pub fn timed(elapsed: Duration, units: u64) -> Measured {
        Measured {
            elapsed,
            units,
            kernel_enters: None,
            server_cpu: None,
            server_rss: None,
            latency: None,
        }
    }

    /// Kernel entries per unit of work, where counted.
    pub fn enters_per_unit(self) -> Option<f64> {
        Some(self.kernel_enters? as f64 / self.units.max(1) as f64)
    }

    /// Microseconds of server CPU time per unit of work, where measured.
    pub fn cpu_us_per_unit(self) -> Option<f64> {
        Some(self.server_cpu?.as_secs_f64() * 1e6 / self.units.max(1) as f64)
    }

    /// The server's RSS growth per connection in KiB, where measured.
    pub fn kib_per_conn(self) -> Option<f64> {
        let rss = self.server_rss?;
        Some(rss.kib as f64 / rss.conns.max(1) as f64)
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
    Measured::timed(start.elapsed(), units)
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
                Kind::Net(_) => unreachable!("networking workloads run in net/"),
                Kind::ProcessSpawn => unreachable!("process_spawn runs in process.rs"),
                Kind::FileRead { .. } => unreachable!("file_read runs in file.rs"),
                Kind::Asyncio(_) => unreachable!("the asyncio-layer rows run in asyncio.rs"),
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
            kernel_enters: Some(10),
            ..Measured::timed(Duration::from_millis(2), 1_000)
        };
        assert_eq!(Metric::NanosPer("ns/op").value(measured), 2_000.0);
        assert!((Metric::MillionsPerSec.value(measured) - 0.5).abs() < 1e-9);
        assert_eq!(Metric::WallMillis.value(measured), 2.0);
        assert_eq!(measured.enters_per_unit(), Some(0.01));
        assert_eq!(measured.cpu_us_per_unit(), None);
        assert_eq!(measured.kib_per_conn(), None);
    }

    #[test]
    fn network_metric_values() {
        let measured = Measured {
            server_cpu: Some(Duration::from_millis(5)),
            server_rss: Some(RssGrowth {
                kib: 4_000,
                conns: 1_000,
            }),
            ..Measured::timed(Duration::from_millis(500), 1_000)
        };
        assert_eq!(Metric::ReqPerSec.value(measured), 2_000.0);
        // 1 000 chunks of 64 KiB in half a second: 65 536 000 bytes in 0.5 s.
        let stream = Metric::BytesPerSec {
            unit_bytes: 64 * 1024,
        };
        assert_eq!(stream.value(measured), 131_072_000.0);
        assert_eq!(stream.unit(), "bytes/s");
        assert_eq!(stream.better(), Better::Higher);
        assert_eq!(measured.cpu_us_per_unit(), Some(5.0));
        assert_eq!(Metric::KibPerConn.value(measured), 4.0);
        assert_eq!(Metric::KibPerConn.better(), Better::Lower);
        assert_eq!(Metric::ReqPerSec.better(), Better::Higher);
    }

    #[test]
    fn latency_percentiles_are_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=200).rev().map(Duration::from_micros).collect();
        let latency = Latency::of(&mut samples).unwrap();
        assert_eq!((latency.p50_us, latency.p99_us), (100.0, 198.0));
        let mut one = [Duration::from_micros(7)];
        assert_eq!(Latency::of(&mut one).map(|l| l.p99_us), Some(7.0));
        assert_eq!(Latency::of(&mut []), None);
    }

    #[test]
    fn http_rows_and_the_tokio_io_echo_row_exist() {
        let workloads = all(true);
        let names: Vec<_> = workloads.iter().map(|w| w.name).collect();
        assert!(names.contains(&"http/1conn") && names.contains(&"http/64conn"));
        let echo = workloads.iter().find(|w| w.name == TOKIO_IO_ECHO).unwrap();
        assert_eq!(echo.kind, Kind::Net(TOKIO_IO_ECHO_KIND));
    }

    #[test]
    fn names_are_unique_and_idle_rss_names_its_count() {
        for quick in [false, true] {
            let workloads = all(quick);
            let mut names: Vec<_> = workloads.iter().map(|w| w.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), workloads.len());
            let idle = workloads
                .iter()
                .find(|w| w.name.starts_with("idle_rss/"))
                .expect("an idle_rss workload");
            let Kind::Net(NetKind::IdleRss { conns }) = idle.kind else {
                panic!("idle_rss is not an IdleRss workload");
            };
            assert_eq!(idle.name, format!("idle_rss/{conns}"));
        }
    }
}
