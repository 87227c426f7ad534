//! The little protocol between the load generator and a server process.
//!
//! - The server prints `port N` on stdout once it listens.
//! - The first connection it accepts is the *control* connection. Each byte the client sends
//!   there asks for a [`Snapshot`], which the server takes on its loop thread and answers with
//!   one text line. The client takes one before opening the data connections (memory
//!   baseline), one when the timed window starts and one when it ends.
//! - Every data connection starts with the server writing [`HELLO`], so the client knows the
//!   connection was accepted and its task runs.
//! - A discarding server answers the client's end of stream with [`DONE`] once it has read
//!   every byte, so the timed window covers all the work it counts.
//! - When the control connection closes, the server process exits at once: tearing down
//!   10 000 connections is neither measured nor waited for.

use std::time::Duration;

/// The first byte a server writes on every data connection.
pub const HELLO: u8 = b'H';

/// What a discarding server writes once it has read its connection to the end.
pub const DONE: u8 = b'D';

/// What the client writes on the control connection to ask for a snapshot.
pub const SNAPSHOT: u8 = b'?';

/// The server's counters at one instant, taken on its loop thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The loop thread's CPU time, user + system (`getrusage(RUSAGE_THREAD)`).
    pub cpu: Duration,
    /// ringloop's `Runtime::stats().kernel_enters`; `None` where not counted (tokio).
    pub enters: Option<u64>,
    /// The server process's `VmRSS`.
    pub rss_kib: u64,
}

impl Snapshot {
    /// Takes one now, on the calling (loop) thread.
    pub fn take(enters: Option<u64>) -> Result<Snapshot, String> {
        Ok(Snapshot {
            cpu: super::os::thread_cpu_time().map_err(|e| format!("getrusage: {e}"))?,
            enters,
            rss_kib: super::os::vm_rss_kib().map_err(|e| format!("VmRSS: {e}"))?,
        })
    }

    /// The answer line: `cpu_ns=N enters=N|- rss_kib=N` and a newline.
    pub fn to_line(self) -> String {
        let enters = self
            .enters
            .map_or_else(|| "-".to_owned(), |n| n.to_string());
        format!(
            "cpu_ns={} enters={enters} rss_kib={}\n",
            self.cpu.as_nanos(),
            self.rss_kib
        )
    }

    /// Reads a line written by [`to_line`](Self::to_line).
    pub fn parse(line: &str) -> Result<Snapshot, String> {
        let bad = || format!("malformed snapshot line {line:?}");
        let mut fields = line.split_whitespace();
        let mut field = |name: &str| {
            fields
                .next()
                .and_then(|f| f.strip_prefix(name))
                .and_then(|f| f.strip_prefix('='))
                .ok_or_else(bad)
        };
        let cpu_ns: u64 = field("cpu_ns")?.parse().map_err(|_| bad())?;
        let enters = match field("enters")? {
            "-" => None,
            n => Some(n.parse().map_err(|_| bad())?),
        };
        let rss_kib = field("rss_kib")?.parse().map_err(|_| bad())?;
        if fields.next().is_some() {
            return Err(bad());
        }
        Ok(Snapshot {
            cpu: Duration::from_nanos(cpu_ns),
            enters,
            rss_kib,
        })
    }
}

/// The `port N` line a server prints once it listens.
pub fn port_line(port: u16) -> String {
    format!("port {port}\n")
}

/// The port in a `port N` line.
pub fn parse_port_line(line: &str) -> Option<u16> {
    line.trim_end().strip_prefix("port ")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_line_round_trips_with_and_without_enters() {
        for enters in [Some(12_345), None] {
            let snapshot = Snapshot {
                cpu: Duration::from_nanos(987_654_321),
                enters,
                rss_kib: 4_096,
            };
            assert_eq!(Snapshot::parse(&snapshot.to_line()), Ok(snapshot));
        }
    }

    #[test]
    fn malformed_snapshot_lines_are_errors() {
        for line in [
            "",
            "cpu_ns=1 enters=2",
            "cpu_ns=x enters=2 rss_kib=3",
            "cpu_ns=1 rss_kib=3 enters=2",
            "cpu_ns=1 enters=2 rss_kib=3 extra=4",
        ] {
            assert!(Snapshot::parse(line).is_err(), "{line:?} parsed");
        }
    }

    #[test]
    fn port_line_round_trips() {
        assert_eq!(parse_port_line(&port_line(40_123)), Some(40_123));
        assert_eq!(parse_port_line("error: bind failed\n"), None);
        assert_eq!(parse_port_line("port 70000\n"), None);
    }
}
