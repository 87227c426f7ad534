//! An echo server on the Protocol API: every byte a client sends comes back.
//!
//! ```text
//! cargo run --example echo_protocol -- [ADDR]        # default 127.0.0.1:7000
//! RINGLOOP_BACKEND=epoll cargo run --example echo_protocol
//! nc 127.0.0.1 7000
//! ```
//!
//! Runs until SIGINT (Ctrl-C) or SIGTERM, then closes cleanly and exits 0 (see
//! `common/shutdown.rs` for why that matters on io_uring). It also shows flow control: while a slow client makes the write buffer
//! run high, the server stops reading from that client.

use std::io;

use ringloop::transport::{self, Protocol, Server, Transport};

#[path = "common/shutdown.rs"]
mod shutdown;

/// Writes back whatever arrives; closes (after flushing) when the client half-closes.
#[derive(Default)]
pub struct Echo {
    transport: Option<Transport>,
}

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Transport) {
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            // Fails only when the transport is already closing: nothing left to do then.
            let _ = t.write(data);
        }
    }

    /// The client is not reading fast enough: stop reading from it until it catches up.
    fn pause_writing(&mut self) {
        if let Some(t) = &self.transport {
            t.pause_reading();
        }
    }

    fn resume_writing(&mut self) {
        if let Some(t) = &self.transport {
            t.resume_reading();
        }
    }
}

/// Starts the echo server on `addr` ("host:port").
pub async fn start(addr: &str) -> io::Result<Server> {
    transport::create_server(Echo::default, addr).await
}

/// Serves on `addr` until SIGINT or SIGTERM, then closes the server and returns.
pub async fn serve(addr: &str) -> io::Result<()> {
    let server = start(addr).await?;
    shutdown::serve_until_stopped(&server, "echoing").await
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".into());
    let rt = ringloop::Runtime::builder().build()?;
    println!("{}", rt.backend_report());
    rt.block_on(serve(&addr))
}
