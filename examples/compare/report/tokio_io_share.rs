//! What the `tokio-io` traits cost: `echo/16conn/64B` served through tokio's
//! `AsyncRead`/`AsyncWrite` on ringloop against ringloop's native echo server of the same run,
//! per backend, in req/s and in server CPU per request.

use super::{Row, median};
use crate::runtimes::RuntimeId;
use crate::workload::TOKIO_IO_ECHO;

/// Each backend's native runtime and its tokio-io twin.
const PAIRS: [(RuntimeId, RuntimeId); 2] = [
    (
        RuntimeId::RingloopIoUring,
        RuntimeId::RingloopIoUringTokioIo,
    ),
    (RuntimeId::RingloopEpoll, RuntimeId::RingloopEpollTokioIo),
];

/// One backend's medians, native and through tokio-io.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Share {
    pub runtime: RuntimeId,
    pub req_per_sec: (f64, f64),
    /// Server CPU microseconds per request, where measured.
    pub us_per_req: Option<(f64, f64)>,
}

impl Share {
    /// tokio-io's req/s over native's: above 1.00x, tokio-io is faster.
    pub fn req_ratio(self) -> f64 {
        self.req_per_sec.1 / self.req_per_sec.0
    }

    /// Native's CPU per request over tokio-io's: above 1.00x, tokio-io is cheaper.
    pub fn cpu_ratio(self) -> Option<f64> {
        self.us_per_req.map(|(native, compat)| native / compat)
    }
}

/// One share per backend with both rows sampled, in [`PAIRS`] order.
pub fn tokio_io_shares(rows: &[&Row]) -> Vec<Share> {
    let row_of = |runtime: RuntimeId| {
        rows.iter()
            .find(|row| row.workload == TOKIO_IO_ECHO && row.runtime == runtime)
    };
    let positive = |values: &[f64]| median(values).filter(|&m| m > 0.0);
    PAIRS
        .into_iter()
        .filter_map(|(native, compat)| {
            let (native_row, compat_row) = (row_of(native)?, row_of(compat)?);
            let both = |pick: fn(&Row) -> &[f64]| {
                Some((positive(pick(native_row))?, positive(pick(compat_row))?))
            };
            Some(Share {
                runtime: compat,
                req_per_sec: both(|row| &row.samples)?,
                us_per_req: both(|row| &row.cpu_us_per_unit),
            })
        })
        .collect()
}

/// Prints the shares under the networking table, when the tokio-io rows were run.
pub fn print_tokio_io_shares(rows: &[&Row]) {
    let shares = tokio_io_shares(rows);
    if shares.is_empty() {
        return;
    }
    println!(
        "\n{TOKIO_IO_ECHO} through tokio-io against the native API of this run (medians:\n\
         tokio-io/native req/s, native/tokio-io us/req; above 1.00x the compat layer is better;\n\
         the goal is 0.95x or more):"
    );
    for share in shares {
        let cpu = match (share.cpu_ratio(), share.us_per_req) {
            (Some(ratio), Some((native, compat))) => format!(
                "{ratio:.2}x us/req ({} vs {})",
                super::number(compat),
                super::number(native)
            ),
            _ => "us/req not measured".to_owned(),
        };
        println!(
            "  {:<26} {:.2}x req/s ({} of {}), {cpu}",
            share.runtime.name(),
            share.req_ratio(),
            super::number(share.req_per_sec.1),
            super::number(share.req_per_sec.0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Kind, Metric, TOKIO_IO_ECHO_KIND};

    fn row(runtime: RuntimeId, req: &[f64], us: &[f64]) -> Row {
        let kind = Kind::Net(TOKIO_IO_ECHO_KIND);
        let mut row = Row::new(TOKIO_IO_ECHO, kind, Metric::ReqPerSec, runtime);
        row.samples = req.to_vec();
        row.cpu_us_per_unit = us.to_vec();
        row
    }

    /// Each tokio-io row against its own backend's native row; a backend missing either row
    /// has no share.
    #[test]
    fn shares_pair_each_backend_with_its_native_row() {
        let rows = [
            row(RuntimeId::RingloopIoUring, &[100.0, 200.0, 300.0], &[2.0]),
            row(RuntimeId::RingloopEpoll, &[100.0], &[4.0]),
            row(RuntimeId::RingloopIoUringTokioIo, &[190.0], &[2.5]),
            row(RuntimeId::Tokio, &[50.0], &[8.0]),
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        let shares = tokio_io_shares(&refs);
        assert_eq!(shares.len(), 1);
        assert_eq!(shares[0].runtime, RuntimeId::RingloopIoUringTokioIo);
        assert_eq!(shares[0].req_ratio(), 0.95);
        assert_eq!(shares[0].cpu_ratio(), Some(0.8));
        assert!(tokio_io_shares(&refs[..2]).is_empty());
    }
}
