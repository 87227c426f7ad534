//! An axum app on ringloop: a `Router` served by `ringloop::hyper::serve` (HTTP/1 and
//! HTTP/2), as `axum::serve` serves one on tokio.
//!
//! ```text
//! cargo run --features hyper --example axum_server -- [ADDR]    # default 127.0.0.1:3000
//! RINGLOOP_BACKEND=epoll cargo run --features hyper --example axum_server
//! curl http://127.0.0.1:3000/
//! curl --data-binary @Cargo.toml http://127.0.0.1:3000/echo
//! curl http://127.0.0.1:3000/slow
//! curl --http2-prior-knowledge http://127.0.0.1:3000/
//! ```
//!
//! Routes: `GET /` says hello, `POST /echo` returns the body, `GET /slow` answers after
//! [`SLOW`] on one of ringloop's timers. Runs until SIGINT (Ctrl-C) or SIGTERM, then stops
//! accepting, lets the requests in flight finish and exits 0.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use ringloop::net::TcpListener;

// Only `Stop` is used: hyper's graceful shutdown closes the connections.
#[allow(dead_code)]
#[path = "common/shutdown.rs"]
mod shutdown;

/// How long `GET /slow` takes.
pub const SLOW: Duration = Duration::from_millis(300);

/// `GET /slow`: waits on a ringloop timer.
///
/// axum wants handlers whose futures are `Send`, and ringloop's own futures (timers, files,
/// sockets) are not: they belong to their loop. `ringloop::on_loop` makes them `Send` by a
/// check (it panics if polled off the loop's thread), which holds here: `serve` runs every
/// connection, and so every handler, on the loop's thread.
async fn slow() -> String {
    ringloop::on_loop(async {
        ringloop::time::sleep(SLOW).await;
        format!("slept {} ms\n", SLOW.as_millis())
    })
    .await
}

/// The app.
pub fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "Hello, world!\n" }))
        .route("/echo", post(|body: Bytes| async move { body }))
        .route("/slow", get(slow))
}

/// Serves the app on `addr` (`"host:port"`) until SIGINT or SIGTERM, then drains and returns.
pub async fn serve(addr: &str) -> io::Result<()> {
    let addr: SocketAddr = addr.parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("address {addr:?}: {e}"),
        )
    })?;
    let stop = shutdown::Stop::new()?;
    let listener = TcpListener::bind(addr)?;
    println!("serving axum on {}", listener.local_addr()?);
    ringloop::hyper::serve(listener, app())
        .with_graceful_shutdown(async move {
            if let Err(e) = stop.wait().await {
                eprintln!("listening for signals: {e}");
            }
        })
        .await
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let rt = ringloop::Runtime::builder().build()?;
    println!("{}", rt.backend_report());
    rt.block_on(serve(&addr))
}
