//! The `--json` file: one record per line of the tables' data, each with its own unit.

use super::Row;
use super::lines::lines;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// Writes every series of every row with samples as a JSON array of
/// `{"workload","runtime","unit","better","median","min","max","ratio","baseline"}` objects, in
/// the networking table's order (for each workload, for each unit, the runtimes).
///
/// A networking row gives one record per unit it measured (`req/s` or `bytes/s`, `us/req`,
/// `enters/req`, `KiB/conn`); a compute row gives its own unit and, where counted,
/// `enters/unit`. `ratio` is how many times better than `baseline` (tokio, or raw for nop/*),
/// above 1 better whichever way `better` points; both are `null` where there is no ratio.
pub fn write_json(path: &Path, rows: &[Row]) -> io::Result<()> {
    std::fs::write(path, to_json(rows))
}

pub fn to_json(rows: &[Row]) -> String {
    let rows: Vec<&Row> = rows.iter().collect();
    let objects: Vec<String> = lines(&rows)
        .iter()
        .map(|line| {
            let (ratio, baseline) = match line.versus {
                Some((ratio, id)) => (json_number(ratio), json_string(id.name())),
                None => ("null".to_owned(), "null".to_owned()),
            };
            format!(
                "  {{\"workload\": {}, \"runtime\": {}, \"unit\": {}, \"better\": {}, \"median\": {}, \"min\": {}, \"max\": {}, \"ratio\": {ratio}, \"baseline\": {baseline}}}",
                json_string(line.workload),
                json_string(line.runtime.name()),
                json_string(line.unit),
                json_string(line.better.as_str()),
                json_number(line.summary.median),
                json_number(line.summary.min),
                json_number(line.summary.max),
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
    use crate::runtimes::RuntimeId;
    use crate::workload::{Kind, Metric, NetKind};

    /// A networking row becomes one record per measured unit, each with its own summary;
    /// units nobody measured have no record, and a unit tokio lacks has a null ratio.
    #[test]
    fn json_has_one_record_per_unit() {
        let kind = Kind::Net(NetKind::Echo { conns: 1, msg: 64 });
        let mut tokio = Row::new("echo/1conn/64B", kind, Metric::ReqPerSec, RuntimeId::Tokio);
        tokio.samples = vec![100.0, 300.0, 200.0];
        tokio.cpu_us_per_unit = vec![5.0, 7.0, 6.0];
        let mut uring = Row::new(
            "echo/1conn/64B",
            kind,
            Metric::ReqPerSec,
            RuntimeId::RingloopIoUring,
        );
        uring.samples = vec![400.0];
        uring.enters_per_unit = vec![2.0];
        let json = to_json(&[uring, tokio]);
        let records: Vec<&str> = json.lines().filter(|l| l.contains('{')).collect();
        assert_eq!(records.len(), 4, "{json}");
        assert!(records[0].contains("\"runtime\": \"ringloop-io_uring\", \"unit\": \"req/s\", \"better\": \"higher\", \"median\": 400,"), "{json}");
        assert!(
            records[0].contains("\"ratio\": 2, \"baseline\": \"tokio\""),
            "{json}"
        );
        assert!(records[1].contains("\"unit\": \"req/s\""), "{json}");
        assert!(
            records[1].contains("\"median\": 200, \"min\": 100, \"max\": 300"),
            "{json}"
        );
        assert!(records[2].contains("\"runtime\": \"tokio\", \"unit\": \"us/req\", \"better\": \"lower\", \"median\": 6,"), "{json}");
        assert!(records[3].contains("\"unit\": \"enters/req\""), "{json}");
        assert!(
            records[3].contains("\"ratio\": null, \"baseline\": null"),
            "{json}"
        );
        assert!(!json.contains("KiB/conn"), "{json}");
    }

    #[test]
    fn json_escapes_strings_and_nonfinite_numbers() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
        assert_eq!(json_number(f64::NAN), "null");
        assert_eq!(json_number(1.5), "1.5");
    }
}
