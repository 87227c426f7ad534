//! What TLS costs a stream: the median of `tls_stream/64KiB` (plaintext bytes per second) as
//! a share of the plain `stream/64KiB` median of the same run, per runtime.

use super::{Row, median};
use crate::runtimes::RuntimeId;
use crate::workload::{STREAM, TLS_STREAM};

/// The share the TLS stream keeps of the plain stream's throughput, and the two medians.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Share {
    pub runtime: RuntimeId,
    pub tls: f64,
    pub plain: f64,
}

impl Share {
    pub fn ratio(self) -> f64 {
        self.tls / self.plain
    }
}

/// One share per runtime that has both rows with samples, in the order of `rows`.
pub fn tls_stream_shares(rows: &[&Row]) -> Vec<Share> {
    let median_of = |workload: &str, runtime: RuntimeId| {
        let row = rows
            .iter()
            .find(|row| row.workload == workload && row.runtime == runtime)?;
        median(&row.samples).filter(|&m| m > 0.0)
    };
    rows.iter()
        .filter(|row| row.workload == TLS_STREAM)
        .filter_map(|row| {
            Some(Share {
                runtime: row.runtime,
                tls: median_of(TLS_STREAM, row.runtime)?,
                plain: median_of(STREAM, row.runtime)?,
            })
        })
        .collect()
}

/// Prints the shares under the networking table, or how to get them when the plain row was
/// not run.
pub fn print_tls_stream_shares(rows: &[&Row]) {
    if !rows.iter().any(|row| row.workload == TLS_STREAM) {
        return;
    }
    let shares = tls_stream_shares(rows);
    println!();
    if shares.is_empty() {
        println!("{TLS_STREAM} against {STREAM}: not both run (`--filter stream` runs the two).");
        return;
    }
    println!(
        "{TLS_STREAM} against {STREAM} of this run (TLS plaintext bytes/s over plain bytes/s, \
         medians; the goal is 0.80x or more):"
    );
    for share in shares {
        println!(
            "  {:<18} {:>5.2}x  ({} of {} bytes/s)",
            share.runtime.name(),
            share.ratio(),
            super::number(share.tls),
            super::number(share.plain),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Kind, Metric, NetKind};

    fn row(workload: &'static str, runtime: RuntimeId, samples: &[f64]) -> Row {
        let kind = Kind::Net(NetKind::Stream { chunk: 65_536 });
        let metric = Metric::BytesPerSec { unit_bytes: 65_536 };
        let mut row = Row::new(workload, kind, metric, runtime);
        row.samples = samples.to_vec();
        row
    }

    /// Each runtime's TLS median over its own plain median; a runtime missing either row, or
    /// without samples, has no share.
    #[test]
    fn shares_pair_each_runtime_with_its_own_plain_stream() {
        let rows = [
            row(STREAM, RuntimeId::RingloopIoUring, &[4e9, 5e9, 6e9]),
            row(STREAM, RuntimeId::Tokio, &[2e9]),
            row(STREAM, RuntimeId::Monoio, &[3e9]),
            row(TLS_STREAM, RuntimeId::RingloopIoUring, &[4e9, 3e9, 5e9]),
            row(TLS_STREAM, RuntimeId::RingloopEpoll, &[1e9]),
            row(TLS_STREAM, RuntimeId::Tokio, &[1e9]),
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        let shares = tls_stream_shares(&refs);
        assert_eq!(shares.len(), 2);
        assert_eq!(shares[0].runtime, RuntimeId::RingloopIoUring);
        assert_eq!(shares[0].ratio(), 0.8);
        assert_eq!(
            (shares[1].runtime, shares[1].ratio()),
            (RuntimeId::Tokio, 0.5)
        );
        assert!(tls_stream_shares(&refs[..3]).is_empty());
    }
}
