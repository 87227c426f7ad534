//! An HTTP/1.1 server on hyper directly, no framework: `GET /` says hello, `POST /echo`
//! streams the request body back as it arrives, anything else is 404.
//!
//! ```text
//! cargo run --features hyper --example http_server -- [ADDR]    # default 127.0.0.1:8080
//! RINGLOOP_BACKEND=epoll cargo run --features hyper --example http_server
//! curl http://127.0.0.1:8080/
//! curl --data-binary @Cargo.toml http://127.0.0.1:8080/echo
//! ```
//!
//! ringloop's sockets are hyper's I/O as they are, and `ringloop::hyper::Timer` is hyper's
//! timer (for its header-read timeout): no adapter. Runs until SIGINT (Ctrl-C) or SIGTERM,
//! then stops accepting, lets every request in flight finish (hyper's graceful shutdown closes
//! each connection after its current response) and exits 0. For HTTP/2 as well, and a tower
//! service such as an axum `Router`, see `ringloop::hyper::serve` (examples/axum_server.rs).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use ringloop::net::{TcpListener, TcpStream};
use ringloop::sync::Event;
use ringloop::task::TaskGroup;

// Only `Stop` is used: hyper's graceful shutdown closes the connections.
#[allow(dead_code)]
#[path = "common/shutdown.rs"]
mod shutdown;

/// How long connections get to finish their requests after the signal.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// A response body: the request's own (streamed back) or a ready-made one.
type Body = Either<Incoming, Full<Bytes>>;

/// The routes.
async fn route(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => Response::new(Either::Right(Full::from("Hello, world!\n"))),
        // hyper streams the body back as it reads it, with the request's Content-Length (or
        // chunked, as the request was).
        (&Method::POST, "/echo") => Response::new(Either::Left(req.into_body())),
        _ => {
            let mut not_found = Response::new(Either::Right(Full::default()));
            *not_found.status_mut() = StatusCode::NOT_FOUND;
            not_found
        }
    };
    Ok(response)
}

/// Serves one connection until it ends; once `stopping` is set, shuts it down gracefully.
async fn connection(stream: TcpStream, stopping: Rc<Event>) -> Result<(), Infallible> {
    let mut conn = pin!(
        http1::Builder::new()
            .timer(ringloop::hyper::Timer::new())
            .serve_connection(stream, service_fn(route))
    );
    let stopped = future::or(async { Some(conn.as_mut().await) }, async {
        stopping.wait().await;
        None
    })
    .await;
    if stopped.is_none() {
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    }
    // A connection's error (a client gone mid-request, a bad request) is its own business.
    Ok(())
}

/// Serves HTTP on `addr` (`"host:port"`) until SIGINT or SIGTERM, then drains and returns.
pub async fn serve(addr: &str) -> io::Result<()> {
    let addr: SocketAddr = addr.parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("address {addr:?}: {e}"),
        )
    })?;
    let stop = shutdown::Stop::new()?;
    let listener = TcpListener::bind(addr)?;
    println!("serving HTTP on {}", listener.local_addr()?);
    let stopping = Rc::new(Event::new());
    let connections = TaskGroup::<Infallible>::new();
    let accepting = async {
        loop {
            match listener.accept().await {
                Ok((stream, _peer)) => {
                    connections.spawn(connection(stream, stopping.clone()));
                }
                Err(e) => {
                    // Out of descriptors, or a client gone before it was accepted: go on.
                    eprintln!("accept: {e}");
                    ringloop::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    future::or(accepting, stop.wait()).await?;
    drop(listener);
    stopping.set();
    // Past the grace, returning drops (and so closes) the connections left.
    let _ = ringloop::time::timeout(DRAIN_GRACE, connections.join()).await;
    Ok(())
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let rt = ringloop::Runtime::builder().build()?;
    println!("{}", rt.backend_report());
    rt.block_on(serve(&addr))
}
