//! The HTTP rows: `http/1conn` and `http/64conn`, sampled as the echo rows are (a server
//! process per sample, pinned; one load generator), with hyper's HTTP/1.1 server.
//!
//! # The servers
//!
//! Every data connection writes the hello byte, then is served by hyper's
//! `server::conn::http1` with the same handler ([`hello`]: any request gets `200` and the
//! 13-byte body `Hello, world!`) and hyper's default settings, keep-alive on:
//!
//! - ringloop (io_uring or epoll): the `TcpStream` itself, through ringloop's `hyper` feature
//!   (`hyper::rt::Read`/`Write` on the socket, no adapter), with `ringloop::hyper::Timer`;
//!   each connection a task of `ringloop::spawn`.
//! - tokio (current-thread): `hyper_util::rt::TokioIo` around tokio's `TcpStream`, with
//!   `hyper_util::rt::TokioTimer`; each connection a task of `tokio::spawn`.
//!
//! Both have a timer, so both do the same work per request: with a timer, hyper arms its 30 s
//! header-read timeout for each request it waits for (without one it leaves the timeout out).
//!
//! # The load generator
//!
//! `loadgen.rs`: the echo rows' bare epoll loop, sending a fixed `GET /` and reading one whole
//! response per request (headers up to the blank line, then `Content-Length` bytes of body),
//! one request in flight per connection (no pipelining). At one connection it also records
//! each request's latency, from the request's first write to its response's last byte.

mod loadgen;

use super::control::HELLO;
use super::server_ringloop;
use super::server_tokio;
use super::spec::ServerSpec;
use crate::runtimes::RuntimeId;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use ringloop::Backend;
use std::convert::Infallible;

pub use loadgen::load;

/// The body of every answer.
pub const BODY: &[u8] = b"Hello, world!";

/// The handler of every server: `200 OK` with [`BODY`], whatever the request.
async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(BODY))))
}

/// Runs the HTTP server process of `spec`; returns only on error.
pub fn serve(spec: ServerSpec) -> Result<(), String> {
    match spec.runtime {
        RuntimeId::RingloopIoUring => on_ringloop::serve(Backend::IoUring, spec),
        RuntimeId::RingloopEpoll => on_ringloop::serve(Backend::Epoll, spec),
        RuntimeId::Tokio => on_tokio::serve(spec),
        other => Err(format!("no HTTP server for {}", other.name())),
    }
}

/// hyper on ringloop, through ringloop's own `hyper` impls.
mod on_ringloop {
    use super::{HELLO, ServerSpec, hello, server_ringloop, service_fn};
    use ringloop::hyper::Timer;
    use ringloop::net::{TcpListener, TcpStream};
    use ringloop::{Backend, spawn};

    const HELLO_BYTE: &[u8] = &[HELLO];

    pub fn serve(backend: Backend, spec: ServerSpec) -> Result<(), String> {
        server_ringloop::serve_with(backend, move |listener| Ok(accept_all(listener, spec)))
    }

    async fn accept_all(listener: TcpListener, spec: ServerSpec) {
        let mut incoming = listener.incoming();
        for _ in 0..spec.accepts() {
            let stream = incoming.next().await.expect("accept failed");
            stream.set_nodelay(true).expect("TCP_NODELAY failed");
            spawn(connection(stream));
        }
    }

    /// Hello, then HTTP/1.1 until the client closes; an error ends the connection quietly
    /// (the client reports it).
    async fn connection(stream: TcpStream) {
        let (wrote, _) = stream.write_all(HELLO_BYTE).await;
        if wrote.is_err() {
            return;
        }
        let _ = hyper::server::conn::http1::Builder::new()
            .timer(Timer::new())
            .serve_connection(stream, service_fn(hello))
            .await;
    }
}

/// hyper on tokio, through hyper-util's `TokioIo` and `TokioTimer`.
mod on_tokio {
    use super::{HELLO, ServerSpec, hello, server_tokio, service_fn};
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    pub fn serve(spec: ServerSpec) -> Result<(), String> {
        server_tokio::serve_with(move |listener| accept_all(listener, spec))
    }

    async fn accept_all(listener: TcpListener, spec: ServerSpec) {
        for _ in 0..spec.accepts() {
            let (stream, _) = listener.accept().await.expect("accept failed");
            stream.set_nodelay(true).expect("TCP_NODELAY failed");
            tokio::spawn(connection(stream));
        }
    }

    /// Hello, then HTTP/1.1 until the client closes; an error ends the connection quietly.
    async fn connection(mut stream: TcpStream) {
        if stream.write_all(&[HELLO]).await.is_err() {
            return;
        }
        let _ = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(stream), service_fn(hello))
            .await;
    }
}
