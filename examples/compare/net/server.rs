//! The server process: the compare binary re-executed with `--net-server ...`.
//!
//! It runs in a process of its own so that its RSS counts only the server, and pins its loop
//! thread to a CPU of its own so that the load generator does not share it. Everything it
//! measures is taken on its loop thread, at the client's request (see `control.rs`).

use super::control::{self, Snapshot};
use super::os;
use super::spec::{Mode, ServerSpec};
use crate::runtimes::RuntimeId;
use ringloop::Backend;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

/// The server binds here, port chosen by the system.
pub const LOOPBACK: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// The listen backlog: large enough for a batch of connects (the client connects in batches
/// smaller than this), capped by the kernel at `net.core.somaxconn`.
pub const BACKLOG: i32 = 4096;

/// Open files beyond the data connections: std streams, listener, control, ring, epoll...
pub const SPARE_FDS: u64 = 64;

/// Runs the server process; its exit code reports success.
pub fn main(spec: ServerSpec) -> ExitCode {
    match run(spec) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("compare net server ({}): {error}", spec.runtime.name());
            ExitCode::FAILURE
        }
    }
}

fn run(spec: ServerSpec) -> Result<(), String> {
    os::die_with_parent().map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    if let Some(cpu) = spec.cpu {
        os::pin_current_thread(cpu).map_err(|e| e.to_string())?;
    }
    os::raise_nofile(spec.conns as u64 + SPARE_FDS)?;
    if spec.mode.is_tls() {
        return tls_serve(spec);
    }
    if spec.mode == Mode::Http {
        return super::http::serve(spec);
    }
    match spec.runtime {
        RuntimeId::RingloopIoUring => super::server_ringloop::serve(Backend::IoUring, spec),
        RuntimeId::RingloopEpoll => super::server_ringloop::serve(Backend::Epoll, spec),
        RuntimeId::RingloopIoUringTokioIo => super::server_tokio_io::serve(Backend::IoUring, spec),
        RuntimeId::RingloopEpollTokioIo => super::server_tokio_io::serve(Backend::Epoll, spec),
        RuntimeId::Tokio => super::server_tokio::serve(spec),
        RuntimeId::Monoio => super::server_monoio::serve(spec),
        other => Err(format!("no networking server for {}", other.name())),
    }
}

#[cfg(feature = "tls")]
use super::tls::serve as tls_serve;

#[cfg(not(feature = "tls"))]
fn tls_serve(_: ServerSpec) -> Result<(), String> {
    Err("ringloop was built without its `tls` feature".to_owned())
}

/// Tells the client where to connect: `port N` on stdout.
pub fn announce(addr: SocketAddr) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(control::port_line(addr.port()).as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot announce the port: {e}"))
}

/// The answer to one snapshot request; a failure becomes the server's error.
pub fn snapshot_line(enters: Option<u64>) -> Result<Vec<u8>, String> {
    Ok(Snapshot::take(enters)?.to_line().into_bytes())
}

/// The control connection closed: the run is over. Exits without tearing the connections
/// down (the kernel closes them), which is neither measured nor worth waiting for.
pub fn finish() -> ! {
    std::process::exit(0)
}

/// A read buffer of `size` bytes, written once so its pages are resident from the start (as
/// they are once the first message has arrived). Not zeros: the compiler may turn an
/// allocation filled with zeros into `calloc`, which can hand back untouched pages.
pub fn touched_buffer(size: usize) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(size);
    buffer.resize(size, 0xA5);
    buffer
}
