//! A chat server on asyncio-style streams: each line a client sends goes to every other
//! client.
//!
//! ```text
//! cargo run --example chat -- [ADDR]               # default 127.0.0.1:7000
//! nc 127.0.0.1 7000                                # in two or more terminals
//! ```
//!
//! Runs until SIGINT (Ctrl-C) or SIGTERM, then closes cleanly and exits 0 (see
//! `common/shutdown.rs` for why that matters on io_uring).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use ringloop::streams::{StreamReader, StreamWriter, start_server};
use ringloop::transport::Server;

#[path = "common/shutdown.rs"]
mod shutdown;

/// A client that lets this much pile up unsent (it stopped reading) is disconnected.
const MAX_BACKLOG: usize = 1024 * 1024;

/// The writers of the connected clients, by client number.
type Clients = Rc<RefCell<HashMap<u64, StreamWriter>>>;

/// Sends `text` to every client but `from`.
fn broadcast(clients: &Clients, from: u64, text: &[u8]) {
    for (&id, writer) in clients.borrow().iter() {
        if id == from {
            continue;
        }
        // `write` never blocks; a client that does not keep up is dropped instead.
        if writer.write(text).is_err() || writer.transport().get_write_buffer_size() > MAX_BACKLOG {
            writer.close();
        }
    }
}

/// Serves one client until it leaves.
async fn chat(mut reader: StreamReader, writer: StreamWriter, clients: Clients, id: u64) {
    let name = match writer
        .get_extra_info("peername")
        .and_then(|p| p.as_addr().cloned())
    {
        Some(addr) => addr.to_string(),
        None => format!("client {id}"),
    };
    broadcast(&clients, id, format!("* {name} joined\n").as_bytes());
    clients.borrow_mut().insert(id, writer);
    // Any error (a line over 64 KiB, a reset) ends the session like EOF does.
    while let Ok(line) = reader.readline().await {
        if line.is_empty() {
            break;
        }
        broadcast(
            &clients,
            id,
            &[format!("{name}: ").as_bytes(), &line].concat(),
        );
    }
    clients.borrow_mut().remove(&id);
    broadcast(&clients, id, format!("* {name} left\n").as_bytes());
}

/// Starts the chat server on `addr` (`"host:port"`).
pub async fn start(addr: &str) -> std::io::Result<Server> {
    let clients = Clients::default();
    let next_id = Cell::new(0);
    let on_connect = move |reader, writer| {
        next_id.set(next_id.get() + 1);
        chat(reader, writer, clients.clone(), next_id.get())
    };
    start_server(on_connect, addr).await
}

/// Serves on `addr` until SIGINT or SIGTERM, then closes the server and returns.
pub async fn serve(addr: &str) -> std::io::Result<()> {
    let server = start(addr).await?;
    shutdown::serve_until_stopped(&server, "chat").await
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".into());
    let rt = ringloop::Runtime::builder().build()?;
    println!("{}", rt.backend_report());
    rt.block_on(serve(&addr))
}
