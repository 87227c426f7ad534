//! The networking workloads: a server on the runtime under test, in a child process, and one
//! load generator, identical for every runtime, on this process's sample thread.
//!
//! # One sample
//!
//! 1. Pick two CPUs (the first two this process may use): the load generator's thread is
//!    pinned to the first, the server's loop thread to the second. With one CPU, nothing is
//!    pinned.
//! 2. Start the server (the compare binary again, with the hidden `--net-server` arguments)
//!    and open its control connection; take a snapshot (the memory baseline).
//! 3. Open the data connections in batches, each announced by the server's hello byte.
//! 4. Run the load untimed for `net_warmup`, snapshot, run it for `net_window` timed,
//!    snapshot. Between the two snapshots the server did exactly the counted work: echo lets
//!    every message in flight come back, streaming waits for the server's `DONE`.
//! 5. Close the control connection (the server exits), then the data connections.
//!
//! The sample's numbers, each a line of its own in the table: requests (or bytes) per second
//! of the timed window; `us/req`, the server thread's CPU time (user + system,
//! `getrusage(RUSAGE_THREAD)`) between the two snapshots per request; `enters/req`, ringloop's
//! `Runtime::stats().kernel_enters` over the same span per request; `KiB/conn`, the growth of
//! the server's `VmRSS` from the baseline to the end, per connection; for `http/1conn`, the
//! p50 and p99 of the requests' latencies the load generator saw in the window.

mod child;
mod control;
mod http;
mod loadgen;
mod os;
mod server;
mod server_monoio;
mod server_ringloop;
mod server_tokio;
mod server_tokio_io;
pub mod spec;
#[cfg(feature = "tls")]
mod tls;

pub use server::main as server_main;
#[cfg(feature = "tls")]
use tls::sample as tls_sample;

use crate::runtimes::RuntimeId;
use crate::workload::{Measured, NetKind, RssGrowth, Sizes};
use child::{Control, PATIENCE, ServerProcess};
use control::{HELLO, Snapshot};
use loadgen::Done;
use spec::ServerSpec;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Connections opened before waiting for their hellos: well below the listen backlog, so the
/// kernel never drops a connect (whose retry would stall a second).
const CONNECT_BATCH: usize = 256;

/// Where the networking workloads run, for the preamble.
pub fn placement() -> String {
    match os::allowed_cpus().as_deref().map(os::cpu_pair) {
        Ok(Some((client, server))) => {
            format!("networking: load generator pinned to CPU {client}, server to CPU {server}")
        }
        Ok(None) => "networking: one CPU, so load generator and server share it (unpinned)".into(),
        Err(e) => format!("networking: CPUs unknown (sched_getaffinity: {e})"),
    }
}

/// Takes one sample of `kind` with the server on `runtime`.
pub fn sample(runtime: RuntimeId, kind: NetKind, sizes: Sizes) -> Result<Measured, String> {
    let spec = prepare(runtime, kind)?;
    if kind.is_tls() {
        return tls_sample(spec, kind, sizes);
    }
    let mut session = Session::start(spec, &[])?;
    let base = session.control.snapshot()?;
    let conns = connect_all(session.server.addr, spec.conns)?;
    let (start, done, end) = match kind {
        NetKind::Echo { msg, .. } => {
            for conn in &conns {
                conn.set_nonblocking(true)
                    .map_err(|e| format!("set_nonblocking: {e}"))?;
            }
            session.window(sizes, |window, _| loadgen::echo(&conns, msg, window))?
        }
        NetKind::Http { conns: count } => {
            for conn in &conns {
                conn.set_nonblocking(true)
                    .map_err(|e| format!("set_nonblocking: {e}"))?;
            }
            // Latency at one connection only: with more, it is the queue's length over the rate.
            let latency = count == 1;
            session.window(sizes, |window, _| http::load(&conns, window, latency))?
        }
        NetKind::Stream { chunk } => session.window(sizes, |window, timed| {
            loadgen::stream(&conns[usize::from(timed)], chunk, window)
        })?,
        NetKind::IdleRss { conns } => {
            let idle = Done::new(Duration::ZERO, conns as u64);
            (base, idle, session.control.snapshot()?)
        }
        _ => unreachable!("TLS workloads are sampled in tls/"),
    };
    session.close(conns)?;
    Ok(measured(kind, spec.conns, [base, start, end], done))
}

/// The server's spec for one sample of `kind`, with this thread pinned to the client's CPU
/// and the open-file limit raised for its connections.
fn prepare(runtime: RuntimeId, kind: NetKind) -> Result<ServerSpec, String> {
    let allowed = os::allowed_cpus().map_err(|e| format!("sched_getaffinity: {e}"))?;
    let cpus = os::cpu_pair(&allowed);
    let spec = ServerSpec::for_kind(runtime, kind, cpus.map(|(_, server)| server));
    os::raise_nofile(spec.conns as u64 + server::SPARE_FDS)?;
    if let Some((client, _)) = cpus {
        // The sample thread is fresh for every sample, so the pin goes with it.
        os::pin_current_thread(client).map_err(|e| e.to_string())?;
    }
    Ok(spec)
}

/// A server process and its control connection.
struct Session {
    server: ServerProcess,
    control: Control,
}

impl Session {
    /// Starts the server for `spec` (with `input` on its stdin) and opens its control
    /// connection.
    fn start(spec: ServerSpec, input: &[u8]) -> Result<Session, String> {
        let server = ServerProcess::start(spec, input)?;
        let control = Control::connect(server.addr)?;
        Ok(Session { server, control })
    }

    /// Runs `load` untimed for the warm-up, then timed for the window, with a snapshot on each
    /// side of the timed run: `(start, done, end)`. `load` gets the length of the run and
    /// whether it is the timed one.
    fn window(
        &mut self,
        sizes: Sizes,
        mut load: impl FnMut(Duration, bool) -> Result<Done, String>,
    ) -> Result<(Snapshot, Done, Snapshot), String> {
        load(sizes.net_warmup, false)?;
        let start = self.control.snapshot()?;
        let done = load(sizes.net_window, true)?;
        Ok((start, done, self.control.snapshot()?))
    }

    /// Closes the control connection, waits for the server to exit, then drops `conns`.
    fn close<T>(self, conns: T) -> Result<(), String> {
        drop(self.control);
        self.server.finish()?;
        // Closed after the server exited: its side closes first and keeps the TIME_WAIT
        // entries, so the client's ephemeral ports are free again for the next sample.
        drop(conns);
        Ok(())
    }
}

#[cfg(not(feature = "tls"))]
fn tls_sample(_: ServerSpec, _: NetKind, _: Sizes) -> Result<Measured, String> {
    Err("ringloop was built without its `tls` feature".to_owned())
}

/// The sample's numbers from the snapshots (baseline, window start, window end) and the load
/// generator's count.
fn measured(kind: NetKind, conns: usize, snapshots: [Snapshot; 3], done: Done) -> Measured {
    let [base, start, end] = snapshots;
    let timed = !matches!(kind, NetKind::IdleRss { .. });
    let per_connection = matches!(
        kind,
        NetKind::Echo { .. }
            | NetKind::IdleRss { .. }
            | NetKind::TlsEcho { .. }
            | NetKind::Http { .. }
    );
    Measured {
        elapsed: done.elapsed,
        units: done.units,
        kernel_enters: match (start.enters, end.enters) {
            (Some(start), Some(end)) if timed => Some(end.saturating_sub(start)),
            _ => None,
        },
        server_cpu: timed.then(|| end.cpu.saturating_sub(start.cpu)),
        // The stream's two connections were used one after the other, the handshakes' one at
        // a time: no per-connection cost.
        server_rss: per_connection.then(|| RssGrowth {
            kib: end.rss_kib as i64 - base.rss_kib as i64,
            conns,
        }),
        latency: done.latency,
    }
}

/// Opens `count` connections to `addr` (blocking, with timeouts, `TCP_NODELAY`), each one
/// accepted and greeted by the server before this returns.
fn connect_all(addr: SocketAddr, count: usize) -> Result<Vec<TcpStream>, String> {
    let mut conns: Vec<TcpStream> = Vec::with_capacity(count);
    while conns.len() < count {
        let first = conns.len();
        for _ in first..count.min(first + CONNECT_BATCH) {
            let conn = TcpStream::connect(addr)
                .map_err(|e| format!("connect to {addr} (connection {}): {e}", conns.len()))?;
            conn.set_nodelay(true)
                .and_then(|()| conn.set_read_timeout(Some(PATIENCE)))
                .and_then(|()| conn.set_write_timeout(Some(PATIENCE)))
                .map_err(|e| format!("connection setup: {e}"))?;
            conns.push(conn);
        }
        for (index, mut conn) in conns[first..].iter().enumerate() {
            let mut hello = [0u8; 1];
            conn.read_exact(&mut hello)
                .map_err(|e| format!("hello on connection {}: {e}", first + index))?;
            if hello[0] != HELLO {
                return Err(format!("connection {}: no hello", first + index));
            }
        }
    }
    Ok(conns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(cpu_ms: u64, enters: Option<u64>, rss_kib: u64) -> Snapshot {
        Snapshot {
            cpu: Duration::from_millis(cpu_ms),
            enters,
            rss_kib,
        }
    }

    #[test]
    fn echo_sample_counts_the_window_and_memory_from_the_baseline() {
        let done = Done::new(Duration::from_millis(100), 1_000);
        let snaps = [
            snapshot(1, Some(5), 1_000),
            snapshot(10, Some(100), 1_200),
            snapshot(30, Some(600), 1_256),
        ];
        let kind = NetKind::Echo { conns: 16, msg: 64 };
        let m = measured(kind, 16, snaps, done);
        assert_eq!(m.cpu_us_per_unit(), Some(20.0));
        assert_eq!(m.enters_per_unit(), Some(0.5));
        assert_eq!(m.kib_per_conn(), Some(16.0));
    }

    #[test]
    fn idle_and_stream_samples_leave_out_what_does_not_apply() {
        let snaps = [
            snapshot(1, None, 1_000),
            snapshot(1, None, 1_000),
            snapshot(2, None, 9_000),
        ];
        let done = Done::new(Duration::ZERO, 1_000);
        let idle = measured(NetKind::IdleRss { conns: 1_000 }, 1_000, snaps, done);
        assert_eq!(idle.server_cpu, None);
        assert_eq!(idle.kernel_enters, None);
        assert_eq!(idle.kib_per_conn(), Some(8.0));
        let stream = measured(NetKind::Stream { chunk: 65_536 }, 2, snaps, done);
        assert_eq!(stream.server_rss, None);
        assert_eq!(stream.enters_per_unit(), None); // tokio: not counted
        assert_eq!(stream.server_cpu, Some(Duration::from_millis(1)));
        let handshakes = measured(NetKind::TlsHandshake, 1, snaps, done);
        assert_eq!(handshakes.server_rss, None);
        assert_eq!(handshakes.cpu_us_per_unit(), Some(1.0)); // 1 ms over 1 000 handshakes
        let tls_echo = measured(
            NetKind::TlsEcho {
                conns: 16,
                msg: 4096,
            },
            16,
            snaps,
            done,
        );
        assert_eq!(tls_echo.kib_per_conn(), Some(500.0));
    }
}
