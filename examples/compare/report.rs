//! Turning samples into the printed tables and the JSON file.
//!
//! A [`Row`] holds every sample of one runtime on one workload: the workload's own number and,
//! from the same runs, the side numbers that were measured (kernel entries, server CPU time,
//! server memory). Each of these is a series with its own unit (`lines.rs`), summarized over the
//! rounds on its own and set against the baseline's series of the same unit. The compute table
//! prints one line per row, with the kernel entries as a column; the networking table and the
//! JSON file print one line per series.

mod json;
mod lines;
mod tls_share;
mod tokio_io_share;

pub use json::write_json;

use crate::runtimes::RuntimeId;
use crate::workload::{Better, Kind, Metric};
use lines::print_net_table;
use tls_share::print_tls_stream_shares;
use tokio_io_share::print_tokio_io_shares;

/// Every sample of one runtime on one workload.
#[derive(Debug)]
pub struct Row {
    pub workload: &'static str,
    pub kind: Kind,
    pub runtime: RuntimeId,
    pub metric: Metric,
    pub samples: Vec<f64>,
    /// Kernel entries per unit of work, one per sample, where the contender counts them.
    pub enters_per_unit: Vec<f64>,
    /// Server CPU microseconds per unit of work, one per sample (networking workloads).
    pub cpu_us_per_unit: Vec<f64>,
    /// Server RSS growth per connection in KiB, one per sample (networking workloads).
    pub kib_per_conn: Vec<f64>,
    /// The p50 and p99 of the requests' latencies in microseconds, one per sample, where
    /// measured (`http/1conn`).
    pub p50_us: Vec<f64>,
    pub p99_us: Vec<f64>,
}

/// Median, min and max of a row's samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Row {
    /// An empty row for `runtime` on a workload.
    pub fn new(workload: &'static str, kind: Kind, metric: Metric, runtime: RuntimeId) -> Row {
        Row {
            workload,
            kind,
            runtime,
            metric,
            samples: Vec::new(),
            enters_per_unit: Vec::new(),
            cpu_us_per_unit: Vec::new(),
            kib_per_conn: Vec::new(),
            p50_us: Vec::new(),
            p99_us: Vec::new(),
        }
    }

    /// `None` when the row has no sample (its runtime failed on the first try).
    pub fn summary(&self) -> Option<Summary> {
        summarize(&self.samples)
    }

    /// Whether the row belongs in the networking table.
    fn is_net(&self) -> bool {
        matches!(self.kind, Kind::Net(_))
    }
}

/// The median of `values`, if there are any.
fn median(values: &[f64]) -> Option<f64> {
    summarize(values).map(|summary| summary.median)
}

pub fn summarize(samples: &[f64]) -> Option<Summary> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (&min, &max) = (sorted.first()?, sorted.last()?);
    let mid = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    };
    Some(Summary { median, min, max })
}

/// How many times better `value` is than `baseline`, whichever way `better` points.
pub fn times_better(value: f64, baseline: f64, better: Better) -> f64 {
    match better {
        Better::Higher => value / baseline,
        Better::Lower => baseline / value,
    }
}

/// The row a workload's ratios are taken against: tokio, or else the raw loop.
fn baseline<'a>(group: &[&'a Row]) -> Option<&'a Row> {
    let find = |id| group.iter().copied().find(|row| row.runtime == id);
    find(RuntimeId::Tokio).or_else(|| find(RuntimeId::Raw))
}

/// Three significant digits or so, whatever the magnitude; from a million up in exponent form
/// (`1.61e9`), which stays short and readable in a column of bytes per second.
fn number(value: f64) -> String {
    match value.abs() {
        v if v >= 1e6 => format!("{value:.2e}"),
        v if v >= 1000.0 => format!("{value:.0}"),
        v if v >= 100.0 => format!("{value:.1}"),
        v if v >= 10.0 => format!("{value:.2}"),
        _ => format!("{value:.3}"),
    }
}

/// The table explained, printed above it.
const LEGEND: &str = "\
Each cell is over the rounds: median, min and max of one sample per round. `unit` says what the
number is; `Mops/s` is better higher, every other unit better lower.
`ratio` = how many times BETTER than the baseline, taking that direction into account
(2.00x = twice as good, 0.50x = half as good). The baseline is tokio (current-thread); the nop/*
workloads have no tokio row (tokio has no NOP op), so there the baseline is `raw`, the bare
io_uring loop: the limit, so ringloop-io_uring's `x raw` is the share of the limit it reaches
(ringloop-epoll's NOP completes at once without a syscall, so it can beat the limit).
`enters/unit` = kernel entries (io_uring_enter / epoll_wait) per unit of work, median over the
rounds, where counted: ringloop's Runtime::stats and the raw loop; `-` elsewhere.";

/// Prints the tables: one for the compute workloads, one for the networking workloads, each
/// with its legend, one block per workload in the order of `rows`; under the networking table,
/// the TLS stream's share of the plain stream's throughput and the tokio-io echo's share of
/// the native echo's.
pub fn print_table(rows: &[Row]) {
    let (net, compute): (Vec<&Row>, Vec<&Row>) = rows.iter().partition(|row| row.is_net());
    if !compute.is_empty() {
        println!("{LEGEND}\n");
        print_compute_table(&compute);
    }
    if !net.is_empty() {
        if !compute.is_empty() {
            println!();
        }
        print_net_table(&net);
        print_tls_stream_shares(&net);
        print_tokio_io_shares(&net);
    }
}

/// `1.23x tokio`: the row's median against its group's baseline.
fn ratio(row: &Row, summary: Summary, base: Option<(RuntimeId, Summary)>) -> String {
    match base {
        Some((id, base)) => format!(
            "{:.2}x {}",
            times_better(summary.median, base.median, row.metric.better()),
            id.name()
        ),
        None => "-".to_owned(),
    }
}

fn print_compute_table(rows: &[&Row]) {
    println!(
        "{:<16} {:<18} {:>10} {:>10} {:>10}  {:<9} {:>12} {:>12}",
        "workload", "runtime", "median", "min", "max", "unit", "ratio", "enters/unit"
    );
    for group in group_by_workload(rows) {
        let base = baseline(&group).and_then(|row| Some((row.runtime, row.summary()?)));
        for row in group {
            let Some(summary) = row.summary() else {
                continue;
            };
            let versus = ratio(row, summary, base);
            let enters = median(&row.enters_per_unit).map_or_else(|| "-".to_owned(), number);
            println!(
                "{:<16} {:<18} {:>10} {:>10} {:>10}  {:<9} {:>12} {:>12}",
                row.workload,
                row.runtime.name(),
                number(summary.median),
                number(summary.min),
                number(summary.max),
                row.metric.unit(),
                versus,
                enters
            );
        }
    }
}

/// Rows split into consecutive runs of the same workload.
fn group_by_workload<'a>(rows: &[&'a Row]) -> Vec<Vec<&'a Row>> {
    let mut groups: Vec<Vec<&Row>> = Vec::new();
    for &row in rows {
        match groups.last_mut() {
            Some(group) if group[0].workload == row.workload => group.push(row),
            _ => groups.push(vec![row]),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let odd = summarize(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        assert_eq!(summarize(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(summarize(&[]), None);
    }

    #[test]
    fn ratio_respects_direction() {
        assert_eq!(times_better(50.0, 100.0, Better::Lower), 2.0);
        assert_eq!(times_better(50.0, 100.0, Better::Higher), 0.5);
    }

    #[test]
    fn numbers_keep_three_digits_and_big_ones_use_an_exponent() {
        assert_eq!(number(1_610_612_736.0), "1.61e9");
        assert_eq!(number(2_500_000.0), "2.50e6");
        assert_eq!(number(191_145.4), "191145");
        assert_eq!(number(27.84), "27.84");
        assert_eq!(number(0.351), "0.351");
    }
}
