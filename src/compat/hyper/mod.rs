//! hyper on ringloop (feature `hyper`): hyper's `rt` traits, so its HTTP/1 and HTTP/2
//! servers and clients run on ringloop's sockets with no glue.
//!
//! - [`rt::Read`](::hyper::rt::Read) and [`rt::Write`](::hyper::rt::Write) on
//!   [`TcpStream`](crate::net::TcpStream), [`UnixStream`](crate::net::UnixStream), their
//!   owned halves and (feature `tls`) `tls::TlsStream`: hand them to hyper's `serve_connection`
//!   or `handshake` as they are.
//! - [`Executor`]: hyper's executor as the loop's [`spawn`](crate::spawn), for `!Send` futures
//!   (HTTP/2 needs one).
//! - [`Timer`]: hyper's timer on the loop's timers, with a `Send + Sync` [`Sleep`] (hyper
//!   needs one for `header_read_timeout`, which it turns on by default for HTTP/1 servers,
//!   and for HTTP/2 keep-alive).
//! - [`serve`]: a listener and a tower `Service` (an axum `Router`) served with HTTP/1 and
//!   HTTP/2, one task per connection, with graceful shutdown: `axum::serve` for ringloop.
//!
//! A server and a client on one loop, over HTTP/1.1:
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use hyper::{Request, Response, body::Incoming, service::service_fn};
//! use ringloop::net::{TcpListener, TcpStream};
//!
//! # ringloop::run(async {
//! let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
//! let addr = listener.local_addr().unwrap();
//! ringloop::spawn(async move {
//!     let (stream, _) = listener.accept().await.unwrap();
//!     let hello = service_fn(|_req: Request<Incoming>| async {
//!         Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from("hello"))))
//!     });
//!     hyper::server::conn::http1::Builder::new()
//!         .timer(ringloop::hyper::Timer::new())
//!         .serve_connection(stream, hello)
//!         .await
//!         .unwrap();
//! });
//!
//! let stream = TcpStream::connect(addr).await.unwrap();
//! let (mut sender, conn) = hyper::client::conn::http1::handshake(stream).await.unwrap();
//! ringloop::spawn(conn);
//! let req = Request::get("/").body(Full::new(Bytes::new())).unwrap();
//! let body = sender.send_request(req).await.unwrap().into_body();
//! assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
//! # });
//! ```
//!
//! # Implementation
//!
//! Reads take bytes from the stream's own receive buffer (a TLS stream's: its decrypted
//! plaintext) into hyper's cursor, once, without zeroing the cursor first; writes go through
//! the futures-io impls (see `io.rs` and `tls.rs`; only the TLS read needs `unsafe`, to lend
//! the cursor's uninitialised memory to the TLS engine's copy). The
//! timer's sleep holds the loop's [`Handle`](crate::Handle) (an `Arc`) and a timer key rather
//! than the loop itself (an `Rc`), which is what makes it `Send + Sync`; it registers, moves
//! and removes its timer in the loop's timer table on the loop's thread (see [`Sleep`]).

mod executor;
mod io;
mod serve;
mod timer;
#[cfg(feature = "tls")]
mod tls;

pub use executor::Executor;
pub use serve::{Listener, Serve, ServeFuture, serve};
pub use timer::{Sleep, Timer};
