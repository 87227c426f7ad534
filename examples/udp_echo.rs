//! A UDP echo server on the DatagramProtocol API: every datagram goes back to its sender.
//!
//! ```text
//! cargo run --example udp_echo -- [ADDR]        # default 127.0.0.1:7000
//! RINGLOOP_BACKEND=epoll cargo run --example udp_echo
//! nc -u 127.0.0.1 7000
//! ```
//!
//! Runs until SIGINT (Ctrl-C) or SIGTERM, then closes cleanly and exits 0 (see
//! `common/shutdown.rs` for why that matters on io_uring).

use std::io;
use std::net::SocketAddr;

use ringloop::transport::{self, DatagramProtocol, DatagramTransport};

// Only `Stop` is used here: `close_server` and `serve_until_stopped` are for TCP servers.
#[allow(dead_code)]
#[path = "common/shutdown.rs"]
mod shutdown;

/// Sends each datagram back where it came from.
#[derive(Default)]
pub struct UdpEcho {
    transport: Option<DatagramTransport>,
}

impl DatagramProtocol for UdpEcho {
    fn connection_made(&mut self, transport: DatagramTransport) {
        self.transport = Some(transport);
    }

    fn datagram_received(&mut self, data: &[u8], from: SocketAddr) {
        if let Some(t) = &self.transport {
            // Fails only when the endpoint is closing.
            let _ = t.sendto(data, Some(from));
        }
    }

    /// An ICMP error for an earlier reply (the sender went away): nothing to do.
    fn error_received(&mut self, err: io::Error) {
        eprintln!("udp_echo: {err}");
    }
}

/// Starts the echo endpoint on `addr`.
pub async fn start(addr: SocketAddr) -> io::Result<DatagramTransport> {
    let (transport, _protocol) =
        transport::create_datagram_endpoint(UdpEcho::default, Some(addr), None)?;
    Ok(transport)
}

/// Serves on `addr` until SIGINT or SIGTERM, then closes the endpoint and returns.
pub async fn serve(addr: SocketAddr) -> io::Result<()> {
    let endpoint = start(addr).await?;
    let stop = shutdown::Stop::new()?;
    println!("echoing datagrams on {}", endpoint.sockname().unwrap());
    stop.wait().await?;
    // The socket closes with the endpoint's task; dropping the runtime (when `main` returns)
    // cancels and drains its receive first.
    endpoint.close();
    Ok(())
}

fn main() -> io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".into())
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("address: {e}")))?;
    let rt = ringloop::Runtime::builder().build()?;
    println!("{}", rt.backend_report());
    rt.block_on(serve(addr))
}
