//! Turning samples into the printed table and the JSON file.

use crate::runtimes::RuntimeId;
use crate::workload::{Better, Kind, Metric};
use std::fmt::Write as _;
use std::io;
use std::path::Path;

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

/// Three significant digits or so, whatever the magnitude.
fn number(value: f64) -> String {
    match value.abs() {
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

/// The networking table explained, printed above it.
const NET_LEGEND: &str = "\
Networking: the server runs on the runtime named, in a child process, its loop thread pinned
to one CPU; one load generator (a bare epoll loop, the same for every server) on another.
`median`/`min`/`max`/`ratio` are the throughput (`req/s`: echo round trips per second; `MiB/s`
for stream/64KiB, whose server reads and discards) or, for idle_rss/N, the server's RSS growth
per idle connection, each with a 4 KiB read pending (lower is better). Then, as medians:
`us/req` = server loop thread CPU time (user + sys, getrusage) per request (stream: per 64 KiB
write) over the timed window; `enters/req` = ringloop's Runtime::stats().kernel_enters per
request (n/a: tokio and monoio do not count them); `KiB/conn` = growth of the server's VmRSS
from before the first connection to the end of the window, per connection.";

/// Prints the tables: one for the compute workloads, one for the networking workloads, each
/// with its legend, one block per workload in the order of `rows`.
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
        println!("{NET_LEGEND}\n");
        print_net_table(&net);
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

fn print_net_table(rows: &[&Row]) {
    println!(
        "{:<18} {:<18} {:>10} {:>10} {:>10}  {:<8} {:>12} {:>8} {:>10} {:>9}",
        "workload",
        "runtime",
        "median",
        "min",
        "max",
        "unit",
        "ratio",
        "us/req",
        "enters/req",
        "KiB/conn"
    );
    let cell = |values: &[f64]| median(values).map_or_else(|| "n/a".to_owned(), number);
    for group in group_by_workload(rows) {
        let base = baseline(&group).and_then(|row| Some((row.runtime, row.summary()?)));
        for row in group {
            let Some(summary) = row.summary() else {
                continue;
            };
            println!(
                "{:<18} {:<18} {:>10} {:>10} {:>10}  {:<8} {:>12} {:>8} {:>10} {:>9}",
                row.workload,
                row.runtime.name(),
                number(summary.median),
                number(summary.min),
                number(summary.max),
                row.metric.unit(),
                ratio(row, summary, base),
                cell(&row.cpu_us_per_unit),
                cell(&row.enters_per_unit),
                cell(&row.kib_per_conn),
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

/// Writes every row with samples as a JSON array of `{"workload","runtime","median","min",
/// "max","unit","better","enters_per_unit","us_per_unit","kib_per_conn"}` objects; the last
/// three are medians, `null` where not measured.
pub fn write_json(path: &Path, rows: &[Row]) -> io::Result<()> {
    std::fs::write(path, to_json(rows))
}

pub fn to_json(rows: &[Row]) -> String {
    let objects: Vec<String> = rows
        .iter()
        .filter_map(|row| Some((row, row.summary()?)))
        .map(|(row, summary)| {
            format!(
                "  {{\"workload\": {}, \"runtime\": {}, \"median\": {}, \"min\": {}, \"max\": {}, \"unit\": {}, \"better\": {}, \"enters_per_unit\": {}, \"us_per_unit\": {}, \"kib_per_conn\": {}}}",
                json_string(row.workload),
                json_string(row.runtime.name()),
                json_number(summary.median),
                json_number(summary.min),
                json_number(summary.max),
                json_string(row.metric.unit()),
                json_string(row.metric.better().as_str()),
                json_median(&row.enters_per_unit),
                json_median(&row.cpu_us_per_unit),
                json_median(&row.kib_per_conn),
            )
        })
        .collect();
    if objects.is_empty() {
        "[]\n".to_owned()
    } else {
        format!("[\n{}\n]\n", objects.join(",\n"))
    }
}

/// A JSON string literal: quotes, backslashes and control characters escaped.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The median of `values` as JSON, `null` if there are none.
fn json_median(values: &[f64]) -> String {
    median(values).map_or_else(|| "null".to_owned(), json_number)
}

/// JSON has no NaN or infinity; those become `null`. Rust's `Display` for `f64` never uses an
/// exponent, so finite values are valid JSON numbers as printed.
fn json_number(value: f64) -> String {
    if value.is_finite() {
        format!("{value}")
    } else {
        "null".to_owned()
    }
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
    fn json_carries_the_network_medians_and_null_where_unmeasured() {
        use crate::workload::NetKind;
        let kind = Kind::Net(NetKind::Echo { conns: 1, msg: 64 });
        let mut row = Row::new("echo/1conn/64B", kind, Metric::ReqPerSec, RuntimeId::Tokio);
        row.samples = vec![100.0, 300.0, 200.0];
        row.cpu_us_per_unit = vec![5.0, 7.0, 6.0];
        row.kib_per_conn = vec![8.0];
        let json = to_json(&[row]);
        assert!(json.contains("\"median\": 200,"), "{json}");
        assert!(json.contains("\"enters_per_unit\": null"), "{json}");
        assert!(json.contains("\"us_per_unit\": 6,"), "{json}");
        assert!(json.contains("\"kib_per_conn\": 8}"), "{json}");
        assert!(json.contains("\"better\": \"higher\""), "{json}");
    }

    #[test]
    fn json_escapes_strings_and_nonfinite_numbers() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
        assert_eq!(json_number(f64::NAN), "null");
        assert_eq!(json_number(1.5), "1.5");
    }
}
