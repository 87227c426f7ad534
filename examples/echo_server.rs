//! An echo server on asyncio-style streams: every byte a client sends comes back.
//!
//! ```text
//! cargo run --example echo_server -- [ADDR]        # default 127.0.0.1:7000
//! RINGLOOP_BACKEND=epoll cargo run --example echo_server
//! nc 127.0.0.1 7000
//! ```
//!
//! Runs until SIGINT (Ctrl-C) or SIGTERM, then closes cleanly and exits 0 (see
//! `common/shutdown.rs` for why that matters on io_uring).

use ringloop::streams::{StreamReader, StreamWriter, start_server};
use ringloop::transport::Server;

#[path = "common/shutdown.rs"]
mod shutdown;

/// Serves one client: read what is there, write it back, wait while the client is slow.
async fn echo(mut reader: StreamReader, writer: StreamWriter) {
    while let Ok(data) = reader.read(64 * 1024).await {
        if data.is_empty() || writer.write(&data).is_err() || writer.drain().await.is_err() {
            break;
        }
    }
    writer.close();
}

/// Starts the echo server on `addr` (`"host:port"`).
pub async fn start(addr: &str) -> std::io::Result<Server> {
    start_server(echo, addr).await
}

/// Serves on `addr` until SIGINT or SIGTERM, then closes the server and returns.
pub async fn serve(addr: &str) -> std::io::Result<()> {
    let server = start(addr).await?;
    shutdown::serve_until_stopped(&server, "echoing").await
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".into());
    let rt = ringloop::Runtime::builder().build()?;
    println!("{}", rt.backend_report());
    rt.block_on(serve(&addr))
}
