//! What a server process is asked to run: the hidden `--net-server` arguments.

use crate::runtimes::RuntimeId;
use crate::workload::NetKind;

/// The hidden first argument that turns the compare binary into a server process.
pub const SERVER_FLAG: &str = "--net-server";

/// The read buffer of every idle connection.
pub const IDLE_BUFFER: usize = 4096;

/// The read buffer of an echo connection: one 4 KiB page, or the message if larger.
pub const ECHO_BUFFER: usize = 4096;

/// What each data connection's task does after writing its hello byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Read into its buffer, write back what was read, until end of stream.
    Echo,
    /// Read into its buffer and drop it, until end of stream; then write `DONE`.
    Discard,
    /// A read that stays pending (the client never writes): what an idle connection costs.
    Idle,
    /// [`Echo`](Self::Echo) over TLS: handshake, hello, then echo the plaintext.
    TlsEcho,
    /// [`Discard`](Self::Discard) over TLS: the end of stream is the client's close_notify.
    TlsDiscard,
    /// Handshake, hello, then read until the client's close_notify; connections come one at
    /// a time, for as long as the process runs.
    TlsHandshake,
    /// Hello, then hyper's HTTP/1.1 server on the connection: `GET /` answered with 13 bytes.
    Http,
}

impl Mode {
    const ALL: [Mode; 7] = [
        Mode::Echo,
        Mode::Discard,
        Mode::Idle,
        Mode::TlsEcho,
        Mode::TlsDiscard,
        Mode::TlsHandshake,
        Mode::Http,
    ];

    fn name(self) -> &'static str {
        match self {
            Mode::Echo => "echo",
            Mode::Discard => "discard",
            Mode::Idle => "idle",
            Mode::TlsEcho => "tls_echo",
            Mode::TlsDiscard => "tls_discard",
            Mode::TlsHandshake => "tls_handshake",
            Mode::Http => "http",
        }
    }

    fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|mode| mode.name() == name)
    }

    /// Whether the connections speak TLS (the server reads its certificate from stdin).
    pub fn is_tls(self) -> bool {
        matches!(self, Mode::TlsEcho | Mode::TlsDiscard | Mode::TlsHandshake)
    }
}

/// One server process's job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerSpec {
    pub runtime: RuntimeId,
    pub mode: Mode,
    /// Data connections to accept (the control connection comes on top).
    pub conns: usize,
    /// Bytes of the read buffer each data connection keeps.
    pub buffer: usize,
    /// The CPU to pin the server's loop thread to, if any.
    pub cpu: Option<usize>,
}

impl ServerSpec {
    /// The server for one sample of `kind` on `runtime`.
    pub fn for_kind(runtime: RuntimeId, kind: NetKind, cpu: Option<usize>) -> ServerSpec {
        let (mode, conns, buffer) = match kind {
            NetKind::Echo { conns, msg } => (Mode::Echo, conns, msg.max(ECHO_BUFFER)),
            // One connection to warm up on, one to time.
            NetKind::Stream { chunk } => (Mode::Discard, 2, chunk),
            NetKind::IdleRss { conns } => (Mode::Idle, conns, IDLE_BUFFER),
            NetKind::TlsEcho { conns, msg } => (Mode::TlsEcho, conns, msg.max(ECHO_BUFFER)),
            NetKind::TlsStream { chunk } => (Mode::TlsDiscard, 2, chunk),
            // One connection open at a time; each reads only the client's close_notify.
            NetKind::TlsHandshake => (Mode::TlsHandshake, 1, ECHO_BUFFER),
            // hyper keeps its own buffers: `buffer` is not used.
            NetKind::Http { conns } => (Mode::Http, conns, ECHO_BUFFER),
        };
        ServerSpec {
            runtime,
            mode,
            conns,
            buffer,
            cpu,
        }
    }

    /// How many data connections the server accepts: `conns`, or for handshakes as many as
    /// come until the process exits.
    pub fn accepts(self) -> usize {
        match self.mode {
            Mode::TlsHandshake => usize::MAX,
            _ => self.conns,
        }
    }

    /// The arguments (after the program name) that start a server process for this spec.
    pub fn to_args(self) -> Vec<String> {
        vec![
            SERVER_FLAG.to_owned(),
            self.runtime.name().to_owned(),
            self.mode.name().to_owned(),
            self.conns.to_string(),
            self.buffer.to_string(),
            self.cpu
                .map_or_else(|| "-".to_owned(), |cpu| cpu.to_string()),
        ]
    }

    /// Parses what follows [`SERVER_FLAG`]: `RUNTIME MODE CONNS BUFFER CPU|-`.
    pub fn from_args(args: &[String]) -> Result<ServerSpec, String> {
        let [runtime, mode, conns, buffer, cpu] = args else {
            return Err(format!(
                "{SERVER_FLAG} takes RUNTIME MODE CONNS BUFFER CPU, got {args:?}"
            ));
        };
        let number = |what: &str, text: &str| {
            text.parse::<usize>()
                .map_err(|_| format!("{SERVER_FLAG}: {what} `{text}` is not a number"))
        };
        Ok(ServerSpec {
            runtime: RuntimeId::from_name(runtime)
                .ok_or_else(|| format!("{SERVER_FLAG}: unknown runtime `{runtime}`"))?,
            mode: Mode::from_name(mode)
                .ok_or_else(|| format!("{SERVER_FLAG}: unknown mode `{mode}`"))?,
            conns: number("CONNS", conns)?,
            buffer: number("BUFFER", buffer)?,
            cpu: match cpu.as_str() {
                "-" => None,
                cpu => Some(number("CPU", cpu)?),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_through_its_arguments() {
        let kinds = [
            NetKind::Echo { conns: 16, msg: 64 },
            NetKind::Stream { chunk: 65_536 },
            NetKind::IdleRss { conns: 10_000 },
            NetKind::TlsEcho {
                conns: 16,
                msg: 4096,
            },
            NetKind::TlsStream { chunk: 65_536 },
            NetKind::TlsHandshake,
            NetKind::Http { conns: 64 },
        ];
        let cpus = [Some(1), None, Some(0), Some(1), None, Some(0), Some(1)];
        for (kind, cpu) in kinds.into_iter().zip(cpus) {
            let spec = ServerSpec::for_kind(RuntimeId::RingloopEpoll, kind, cpu);
            let args = spec.to_args();
            assert_eq!(args[0], SERVER_FLAG);
            assert_eq!(ServerSpec::from_args(&args[1..]), Ok(spec));
        }
    }

    #[test]
    fn spec_for_each_kind() {
        let echo =
            ServerSpec::for_kind(RuntimeId::Tokio, NetKind::Echo { conns: 1, msg: 64 }, None);
        assert_eq!((echo.mode, echo.conns, echo.buffer), (Mode::Echo, 1, 4096));
        let stream =
            ServerSpec::for_kind(RuntimeId::Tokio, NetKind::Stream { chunk: 65_536 }, None);
        assert_eq!(
            (stream.mode, stream.conns, stream.buffer),
            (Mode::Discard, 2, 65_536)
        );
        assert_eq!(stream.accepts(), 2);
        let tls_stream =
            ServerSpec::for_kind(RuntimeId::Tokio, NetKind::TlsStream { chunk: 65_536 }, None);
        assert_eq!(tls_stream.mode, Mode::TlsDiscard);
        assert!(tls_stream.mode.is_tls() && !stream.mode.is_tls());
        let handshakes = ServerSpec::for_kind(RuntimeId::Tokio, NetKind::TlsHandshake, None);
        assert_eq!((handshakes.mode, handshakes.conns), (Mode::TlsHandshake, 1));
        assert_eq!(handshakes.accepts(), usize::MAX);
    }

    #[test]
    fn bad_server_arguments_are_errors() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(ServerSpec::from_args(&args(&["tokio", "echo", "1", "4096"])).is_err());
        assert!(ServerSpec::from_args(&args(&["nginx", "echo", "1", "4096", "-"])).is_err());
        assert!(ServerSpec::from_args(&args(&["tokio", "chat", "1", "4096", "-"])).is_err());
        assert!(ServerSpec::from_args(&args(&["tokio", "echo", "x", "4096", "-"])).is_err());
        assert!(ServerSpec::from_args(&args(&["tokio", "echo", "1", "4096", "cpu0"])).is_err());
    }
}
