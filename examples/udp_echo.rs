//! A UDP echo server on the DatagramProtocol API: every datagram goes back to its sender.
//!
//! ```text
//! cargo run --example udp_echo -- [ADDR]        # default 127.0.0.1:7000
//! RINGLOOP_BACKEND=epoll cargo run --example udp_echo
//! nc -u 127.0.0.1 7000
//! ```
//!
//! Runs until killed.

use std::io;
use std::net::SocketAddr;

use ringloop::transport::{self, DatagramProtocol, DatagramTransport};

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

fn main() -> io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".into())
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("address: {e}")))?;
    let rt = ringloop::Runtime::builder().build()?;
    println!("{}", rt.backend_report());
    rt.block_on(async {
        let endpoint = start(addr).await?;
        println!("echoing datagrams on {}", endpoint.sockname().unwrap());
        std::future::pending::<io::Result<()>>().await
    })
}
