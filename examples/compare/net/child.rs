//! The client's side of a server process: starting it, asking it for snapshots, stopping it.

use super::control::{self, SNAPSHOT, Snapshot};
use super::spec::ServerSpec;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the client waits for any one answer from the server before calling it stuck.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A running server process; killed if dropped before [`finish`](Self::finish).
pub struct ServerProcess {
    child: Child,
    /// Where it listens (loopback).
    pub addr: SocketAddr,
    /// Kept open so the server's stdout never breaks.
    _stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    /// Starts `spec` in a child process, writes `input` to its stdin (a TLS server's
    /// certificate and key; nothing, and stdin is closed, for the others) and waits for it to
    /// listen.
    pub fn start(spec: ServerSpec, input: &[u8]) -> Result<ServerProcess, String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find the compare binary to start a server: {e}"))?;
        let mut child = Command::new(&exe)
            .args(spec.to_args())
            .stdin(if input.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            // Dropped at the end of this block: the server reads to the end of its stdin.
            // A failed write shows as a server that did not start, with its stderr.
            let _ = stdin.write_all(input);
        }
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        let port = match stdout.read_line(&mut line) {
            Ok(_) => control::parse_port_line(&line),
            Err(_) => None,
        };
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            _stdout: stdout,
        };
        match port {
            Some(port) => {
                server.addr.set_port(port);
                Ok(server)
            }
            None => Err(server.failure("did not start")),
        }
    }

    /// Waits for the server to exit (it does once the control connection closes).
    pub fn finish(mut self) -> Result<(), String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(_)) => return Err(self.failure("failed")),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Ok(None) => return Err(self.failure("did not exit")),
                Err(e) => return Err(format!("waiting for the server process: {e}")),
            }
        }
    }

    /// Kills the process and describes what went wrong, with what it wrote to stderr.
    pub fn failure(&mut self, what: &str) -> String {
        let _ = self.child.kill();
        let status = self.child.wait();
        let mut stderr = String::new();
        if let Some(pipe) = self.child.stderr.as_mut() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        format!("server process {what} ({status}): {}", stderr.trim())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The control connection: the first one the server accepts.
pub struct Control {
    reader: BufReader<TcpStream>,
}

impl Control {
    pub fn connect(addr: SocketAddr) -> Result<Control, String> {
        let stream =
            TcpStream::connect(addr).map_err(|e| format!("control connect to {addr}: {e}"))?;
        stream
            .set_nodelay(true)
            .and_then(|()| stream.set_read_timeout(Some(PATIENCE)))
            .map_err(|e| format!("control connection setup: {e}"))?;
        Ok(Control {
            reader: BufReader::new(stream),
        })
    }

    /// Asks the server for its counters and waits for the answer.
    pub fn snapshot(&mut self) -> Result<Snapshot, String> {
        self.reader
            .get_mut()
            .write_all(&[SNAPSHOT])
            .map_err(|e| format!("control request: {e}"))?;
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err("the server closed the control connection".to_owned()),
            Ok(_) => Snapshot::parse(&line),
            Err(e) => Err(format!("control answer: {e}")),
        }
    }
}
