//! One line per measured quantity: a row's series, summarized and set against the baseline,
//! and the networking table that prints them.

use super::{Row, Summary, group_by_workload, number, summarize, times_better};
use crate::runtimes::RuntimeId;
use crate::workload::Better;

/// Server CPU microseconds per request (networking).
pub const US_PER_REQ: &str = "us/req";
/// Kernel entries per request (networking).
pub const ENTERS_PER_REQ: &str = "enters/req";
/// Kernel entries per unit of work (compute).
pub const ENTERS_PER_UNIT: &str = "enters/unit";
/// Server RSS growth per connection in KiB (networking).
pub const KIB_PER_CONN: &str = "KiB/conn";
/// The median request latency in microseconds, as the load generator saw it (`http/1conn`).
pub const P50_US: &str = "p50 us";
/// The 99th percentile of the request latency in microseconds (`http/1conn`).
pub const P99_US: &str = "p99 us";

/// One measured quantity of a row: its unit, which way is better, one value per sample.
#[derive(Debug)]
pub struct Series<'a> {
    pub unit: &'static str,
    pub better: Better,
    pub values: &'a [f64],
}

impl Row {
    /// The row's series: the workload's own metric first, then each side number that was
    /// measured, every one of them better lower. A side number in the workload's own unit is
    /// left out (idle_rss/N's own metric is already `KiB/conn`).
    pub fn series(&self) -> Vec<Series<'_>> {
        let own = Series {
            unit: self.metric.unit(),
            better: self.metric.better(),
            values: &self.samples,
        };
        let [us, p50, p99, enters, kib] = side_units(self.is_net());
        let side = [
            (us, &self.cpu_us_per_unit),
            (p50, &self.p50_us),
            (p99, &self.p99_us),
            (enters, &self.enters_per_unit),
            (kib, &self.kib_per_conn),
        ];
        let mut series = vec![own];
        for (unit, values) in side {
            if !values.is_empty() && unit != self.metric.unit() {
                series.push(Series {
                    unit,
                    better: Better::Lower,
                    values,
                });
            }
        }
        series
    }
}

/// The side numbers' units, in the order a row's series and the table give them.
fn side_units(net: bool) -> [&'static str; 5] {
    let enters = if net { ENTERS_PER_REQ } else { ENTERS_PER_UNIT };
    [US_PER_REQ, P50_US, P99_US, enters, KIB_PER_CONN]
}

/// Where `unit` goes among a workload's units: its own metric first, then the side numbers.
fn unit_rank(unit: &str) -> usize {
    let side = [
        US_PER_REQ,
        P50_US,
        P99_US,
        ENTERS_PER_REQ,
        ENTERS_PER_UNIT,
        KIB_PER_CONN,
    ];
    side.iter()
        .position(|&s| s == unit)
        .map_or(0, |index| index + 1)
}

/// One series of one row, summarized over the rounds, with its ratio to the baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line {
    pub workload: &'static str,
    pub runtime: RuntimeId,
    pub unit: &'static str,
    pub better: Better,
    pub summary: Summary,
    /// How many times better than the baseline's median (above 1 is better, whichever way
    /// the unit points), and the baseline; `None` where the baseline has no series in this
    /// unit or a median is not above zero.
    pub versus: Option<(f64, RuntimeId)>,
}

/// Every series of `rows` as lines, for each workload (in the order of `rows`) for each unit
/// (the workload's own first, then `us/req`, `p50 us`, `p99 us`, `enters/*`, `KiB/conn`) the
/// runtimes (in the order of `rows`). The baseline of a
/// workload and unit is tokio's line, or else the raw loop's.
pub fn lines(rows: &[&Row]) -> Vec<Line> {
    let mut lines = Vec::new();
    for group in group_by_workload(rows) {
        let series: Vec<(&Row, Vec<Series>)> = group.iter().map(|&r| (r, r.series())).collect();
        let mut units: Vec<&str> = Vec::new();
        for one in series.iter().flat_map(|(_, all)| all) {
            if !units.contains(&one.unit) {
                units.push(one.unit);
            }
        }
        // Not in order of appearance: a unit only a later runtime measured keeps its place.
        units.sort_by_key(|unit| unit_rank(unit));
        for unit in units {
            let summarized: Vec<(&Row, Better, Summary)> = series
                .iter()
                .filter_map(|(row, all)| {
                    let one = all.iter().find(|one| one.unit == unit)?;
                    Some((*row, one.better, summarize(one.values)?))
                })
                .collect();
            let base = [RuntimeId::Tokio, RuntimeId::Raw]
                .into_iter()
                .find_map(|id| {
                    let (row, _, summary) =
                        summarized.iter().find(|(row, ..)| row.runtime == id)?;
                    Some((row.runtime, summary.median))
                });
            for (row, better, summary) in summarized {
                let versus = base.and_then(|(id, base)| {
                    let positive = summary.median > 0.0 && base > 0.0;
                    let ratio = times_better(summary.median, base, better);
                    (positive && ratio.is_finite()).then_some((ratio, id))
                });
                lines.push(Line {
                    workload: row.workload,
                    runtime: row.runtime,
                    unit,
                    better,
                    summary,
                    versus,
                });
            }
        }
    }
    lines
}

/// The networking table explained, printed above it.
const NET_LEGEND: &str = "\
Networking: the server runs on the runtime named, in a child process, its loop thread pinned
to one CPU; one load generator (a bare epoll loop, the same for every server) on another.
The tls_* rows run the same over TLS 1.3 (rustls with the ring provider on both ends; tokio's
server is tokio-rustls; the client is the same loop with a rustls client, itself doing as much
crypto as the server, so it may bound the rate: us/req shows the server's cost).
The http/* rows serve HTTP/1.1 keep-alive `GET /` (a 13-byte body) with hyper's http1 server:
on ringloop through its `hyper` feature, on tokio through hyper-util's TokioIo; the client is
the same loop sending a fixed request and reading one whole response, one in flight per
connection. `ringloop-*+tokio-io` is ringloop's echo server written against tokio's
AsyncRead/AsyncWrite (ringloop's `tokio-io` impls), on echo/16conn/64B only.
One line per workload, unit and runtime; median, min and max are over the rounds (one sample
per round) of that unit alone. Numbers of a million or more are written 1.61e9 (= 1.61 x 10^9).
  req/s       HIGHER is better: echo round trips (http: responses) per second of the window
  bytes/s     HIGHER is better: stream/64KiB, bytes written to the server (which reads and
              discards them) per second; tls_stream/64KiB counts plaintext bytes
  hs/s        HIGHER is better: tls_handshake, full handshakes (connect, ECDSA P-256
              certificate, no resumption, one byte back) per second, one connection at a time
  us/req      lower is better: server loop thread CPU time (user + sys, getrusage) per request
              (stream: per 64 KiB write; tls_handshake: per handshake) over the timed window
  p50 us      lower is better: http/1conn, the median request latency the client saw, from a
              request's first write to its response's last byte, in microseconds
  p99 us      lower is better: the same, 99th percentile
  enters/req  lower is better: ringloop's Runtime::stats().kernel_enters per request; ringloop
              lines only (tokio and monoio do not count them), so no ratio (n/a)
  KiB/conn    lower is better: growth of the server's VmRSS from before the first connection
              to the end of the window, per connection; idle_rss/N's only unit (each idle
              connection has a 4 KiB read pending)
`ratio` = how many times BETTER than tokio in the same unit: this/tokio for req/s and bytes/s,
tokio/this for the lower-is-better units, so above 1.00x is always better (2.00x = twice as
good). n/a where tokio has no such line or a median is zero or below (RSS growth can be 0).";

/// Prints the networking table, with its legend: the lines of `rows`, a blank line between
/// workloads.
pub fn print_net_table(rows: &[&Row]) {
    println!("{NET_LEGEND}\n");
    println!(
        "{:<20} {:<26} {:>10} {:>10} {:>10}  {:<10} {:>12}",
        "workload", "runtime", "median", "min", "max", "unit", "ratio"
    );
    let lines = lines(rows);
    for (index, line) in lines.iter().enumerate() {
        if index > 0 && lines[index - 1].workload != line.workload {
            println!();
        }
        let ratio = line.versus.map_or_else(
            || "n/a".to_owned(),
            |(ratio, id)| format!("{ratio:.2}x {}", id.name()),
        );
        println!(
            "{:<20} {:<26} {:>10} {:>10} {:>10}  {:<10} {:>12}",
            line.workload,
            line.runtime.name(),
            number(line.summary.median),
            number(line.summary.min),
            number(line.summary.max),
            line.unit,
            ratio,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Kind, Metric, NetKind};

    fn echo_row(runtime: RuntimeId, req_per_sec: &[f64], us: &[f64], enters: &[f64]) -> Row {
        let kind = Kind::Net(NetKind::Echo { conns: 16, msg: 64 });
        let mut row = Row::new("echo/16conn/64B", kind, Metric::ReqPerSec, runtime);
        row.samples = req_per_sec.to_vec();
        row.cpu_us_per_unit = us.to_vec();
        row.enters_per_unit = enters.to_vec();
        row.kib_per_conn = vec![2.0, 4.0, 3.0];
        row
    }

    /// The side numbers become their own series; the idle workload's own unit is not repeated.
    #[test]
    fn series_have_their_own_units_without_repeats() {
        let row = echo_row(RuntimeId::RingloopIoUring, &[1.0], &[2.0], &[0.5]);
        let units: Vec<_> = row.series().iter().map(|s| s.unit).collect();
        assert_eq!(units, ["req/s", US_PER_REQ, ENTERS_PER_REQ, KIB_PER_CONN]);

        let mut http = echo_row(RuntimeId::Tokio, &[1.0], &[2.0], &[]);
        http.p50_us = vec![50.0];
        http.p99_us = vec![90.0];
        let units: Vec<_> = http.series().iter().map(|s| s.unit).collect();
        assert_eq!(units, ["req/s", US_PER_REQ, P50_US, P99_US, KIB_PER_CONN]);

        let kind = Kind::Net(NetKind::IdleRss { conns: 1_000 });
        let mut idle = Row::new("idle_rss/1000", kind, Metric::KibPerConn, RuntimeId::Tokio);
        idle.samples = vec![8.0];
        idle.kib_per_conn = vec![8.0];
        let units: Vec<_> = idle.series().iter().map(|s| s.unit).collect();
        assert_eq!(units, [KIB_PER_CONN]);

        let mut spawn = Row::new(
            "spawn_join",
            Kind::SpawnJoin,
            Metric::NanosPer("ns/task"),
            RuntimeId::Raw,
        );
        spawn.enters_per_unit = vec![0.1];
        let units: Vec<_> = spawn.series().iter().map(|s| s.unit).collect();
        assert_eq!(units, ["ns/task", ENTERS_PER_UNIT]);
    }

    /// Lines come per workload, then per unit, then per runtime; each unit is summarized from
    /// its own samples (not from the throughput's median round), and ratios are oriented so
    /// that above 1 is better; a unit tokio lacks has no ratio.
    #[test]
    fn lines_group_by_unit_and_summarize_each_series_on_its_own() {
        // Round 3 is the io_uring row's median req/s round but not its median us/req round.
        let uring = echo_row(
            RuntimeId::RingloopIoUring,
            &[300.0, 100.0, 200.0],
            &[4.0, 9.0, 1.0],
            &[0.5, 0.25, 1.0],
        );
        let tokio = echo_row(RuntimeId::Tokio, &[100.0, 100.0, 100.0], &[8.0; 3], &[]);
        let lines = lines(&[&uring, &tokio]);
        let order: Vec<_> = lines.iter().map(|l| (l.unit, l.runtime)).collect();
        assert_eq!(
            order,
            [
                ("req/s", RuntimeId::RingloopIoUring),
                ("req/s", RuntimeId::Tokio),
                (US_PER_REQ, RuntimeId::RingloopIoUring),
                (US_PER_REQ, RuntimeId::Tokio),
                (ENTERS_PER_REQ, RuntimeId::RingloopIoUring),
                (KIB_PER_CONN, RuntimeId::RingloopIoUring),
                (KIB_PER_CONN, RuntimeId::Tokio),
            ]
        );
        let req = lines[0];
        assert_eq!(
            req.summary,
            Summary {
                median: 200.0,
                min: 100.0,
                max: 300.0
            }
        );
        assert_eq!(req.versus, Some((2.0, RuntimeId::Tokio)));
        let us = lines[2];
        assert_eq!(
            us.summary,
            Summary {
                median: 4.0,
                min: 1.0,
                max: 9.0
            }
        );
        assert_eq!(us.better, Better::Lower);
        assert_eq!(us.versus, Some((2.0, RuntimeId::Tokio))); // 8 us at tokio / 4 us here
        assert_eq!(lines[3].versus, Some((1.0, RuntimeId::Tokio)));
        assert_eq!(lines[4].summary.median, 0.5);
        assert_eq!(lines[4].versus, None);
    }

    /// Latency is better lower: the ratio is tokio's over this row's, as for `us/req`.
    #[test]
    fn latency_lines_are_oriented_like_cpu_time() {
        let mut uring = echo_row(RuntimeId::RingloopIoUring, &[1.0], &[1.0], &[]);
        uring.p50_us = vec![40.0];
        uring.p99_us = vec![200.0];
        let mut tokio = echo_row(RuntimeId::Tokio, &[1.0], &[1.0], &[]);
        tokio.p50_us = vec![50.0];
        tokio.p99_us = vec![100.0];
        let lines = lines(&[&uring, &tokio]);
        let find = |unit| lines.iter().find(|l| l.unit == unit).unwrap();
        assert_eq!(find(P50_US).better, Better::Lower);
        assert_eq!(find(P50_US).versus, Some((1.25, RuntimeId::Tokio)));
        assert_eq!(find(P99_US).versus, Some((0.5, RuntimeId::Tokio)));
    }

    /// A median of zero (no RSS growth) gets no ratio rather than an infinite one.
    #[test]
    fn zero_medians_have_no_ratio() {
        let mut uring = echo_row(RuntimeId::RingloopIoUring, &[1.0], &[1.0], &[1.0]);
        uring.kib_per_conn = vec![0.0];
        let tokio = echo_row(RuntimeId::Tokio, &[1.0], &[1.0], &[]);
        let lines = lines(&[&uring, &tokio]);
        let kib = lines.iter().find(|l| l.unit == KIB_PER_CONN).unwrap();
        assert_eq!(kib.summary.median, 0.0);
        assert_eq!(kib.versus, None);
    }
}
