//! [`serve`]: accept connections and serve each with hyper, HTTP/1 or HTTP/2, on its own task;
//! what `axum::serve` is on tokio.
//!
//! The accept loop races the shutdown signal. Each accepted connection gets a clone of the
//! service and a task that drives hyper-util's auto connection (HTTP/2 when the client opens
//! with the HTTP/2 preface, HTTP/1 otherwise) with ringloop's [`Executor`] and [`Timer`]. On
//! the signal the listener is dropped (no new connections, the port is free), a shared
//! [`Event`] tells every connection task to start hyper's graceful shutdown (an idle HTTP/1
//! connection closes at once, a busy one after its response, HTTP/2 sends GOAWAY and finishes
//! its open streams), and the serve future waits until the count of live connection tasks
//! drops to zero.

use std::cell::Cell;
use std::error::Error as StdError;
use std::fmt;
use std::future::{Future, IntoFuture, Pending, pending, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ::hyper::body::{Body, Incoming};
use ::hyper::{Request, Response};
use hyper_util::server::conn::auto;

use super::{Executor, Timer};
use crate::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use crate::sync::Event;

/// How long the accept loop pauses after an error that says the process or the system is out
/// of a resource (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`, or an error it does not know):
/// retrying at once would spin while nothing is freed; a short pause lets connections close.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A listening socket [`serve`] accepts from: [`TcpListener`] and [`UnixListener`].
///
/// Implement it for your own type to serve over something else (a listener that sets
/// `TCP_NODELAY` on each stream, say); `accept` must be cancel-safe (a dropped accept loses no
/// connection), as ringloop's listeners are.
///
/// ```
/// use ringloop::hyper::Listener;
/// use ringloop::net::{TcpListener, TcpStream};
///
/// struct NoDelay(TcpListener);
///
/// impl Listener for NoDelay {
///     type Io = TcpStream;
///     type Addr = std::net::SocketAddr;
///     async fn accept(&self) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
///         let (stream, peer) = self.0.accept().await?;
///         stream.set_nodelay(true)?;
///         Ok((stream, peer))
///     }
/// }
/// # ringloop::run(async {
/// # let listener = NoDelay(TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap());
/// # let app = axum::Router::new();
/// # let _serve = ringloop::hyper::serve(listener, app);
/// # });
/// ```
pub trait Listener: 'static {
    /// The connection a successful accept gives.
    type Io: ::hyper::rt::Read + ::hyper::rt::Write + Unpin + 'static;
    /// The peer's address.
    type Addr;
    /// Accepts one connection.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Io, Self::Addr)>>;
}

impl Listener for TcpListener {
    type Io = TcpStream;
    type Addr = std::net::SocketAddr;
    fn accept(&self) -> impl Future<Output = io::Result<(TcpStream, std::net::SocketAddr)>> {
        TcpListener::accept(self)
    }
}

impl Listener for UnixListener {
    type Io = UnixStream;
    type Addr = std::os::unix::net::SocketAddr;
    fn accept(&self) -> impl Future<Output = io::Result<(UnixStream, Self::Addr)>> {
        UnixListener::accept(self)
    }
}

/// Serves `service` on every connection `listener` accepts, HTTP/1 or HTTP/2 (told apart by
/// the first bytes), each connection on its own task: `axum::serve(listener, app)` for
/// ringloop. Await it (it is [`IntoFuture`]) on a loop thread.
///
/// `service` is a tower `Service` that can be cloned (an axum `Router` is one; each
/// connection gets a clone, each request is called on a clone of that, after `poll_ready`).
/// Its futures need not be `Send` (axum asks its handlers for `Send` futures anyway: a
/// handler awaits ringloop's own timers, files and sockets inside [`on_loop`](crate::on_loop),
/// which holds because every connection, and so every handler, runs on the loop's thread).
/// Connections use ringloop's [`Timer`] (so hyper's HTTP/1
/// `header_read_timeout`, 30 s by default, cuts off clients that send half a request head)
/// and [`Executor`] (HTTP/2 streams run as tasks on the loop). HTTP upgrades (WebSocket,
/// `CONNECT`) are not served: hyper hands an upgraded connection on only if it is `Send`, and
/// ringloop's sockets belong to their loop.
///
/// # Errors
///
/// It runs until [`with_graceful_shutdown`](Serve::with_graceful_shutdown)'s signal, and
/// resolves to `Ok(())` once every connection has finished. Errors of one connection (a
/// client gone, a bad request) end that connection only. Failed accepts do not end it
/// either: one that says the connection died before it was accepted (`ECONNABORTED`,
/// `ECONNRESET`, `EPROTO`, `EPERM`, the network errors accept(2) lists, `EINTR`) is retried
/// at once; one that says a resource ran out (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) or
/// any other is retried after a pause of 100 ms. Only errors that say the listener itself is
/// unusable (`EBADF`, `EINVAL`: not listening, `ENOTSOCK`, `EFAULT`) end it: it then stops as
/// on the signal (connections shut down gracefully) and resolves to that error.
///
/// Dropping the future stops accepting; the connection tasks already started run on.
///
/// ```
/// use std::rc::Rc;
/// use axum::{Router, routing::get};
/// use ringloop::net::{TcpListener, TcpStream};
/// use ringloop::sync::Event;
///
/// ringloop::run(async {
///     let app = Router::new().route("/", get(|| async { "Hello, world!\n" }));
///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
///     let addr = listener.local_addr().unwrap();
///     let stop = Rc::new(Event::new());
///     let server = ringloop::spawn({
///         let stop = stop.clone();
///         async move {
///             ringloop::hyper::serve(listener, app)
///                 .with_graceful_shutdown(async move { stop.wait().await })
///                 .await
///         }
///     });
///
///     // A client that speaks HTTP/1.1 itself.
///     let client = TcpStream::connect(addr).await.unwrap();
///     let request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
///     client.write_all(request.to_vec()).await.0.unwrap();
///     let mut response = Vec::new();
///     loop {
///         let (n, buf) = client.read(Vec::with_capacity(4096)).await;
///         if n.unwrap() == 0 {
///             break;
///         }
///         response.extend_from_slice(&buf);
///     }
///     let response = String::from_utf8(response).unwrap();
///     assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
///     assert!(response.ends_with("\r\n\r\nHello, world!\n"), "{response}");
///
///     stop.set();
///     server.await.unwrap().unwrap();
/// });
/// ```
pub fn serve<L, S, B>(listener: L, service: S) -> Serve<L, S>
where
    L: Listener,
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + 'static,
    S::Future: 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    Serve {
        listener,
        service,
        signal: pending(),
    }
}

/// The server [`serve`] makes: await it, or first give it a shutdown signal with
/// [`with_graceful_shutdown`](Serve::with_graceful_shutdown).
#[must_use = "a server does nothing until awaited"]
pub struct Serve<L, S, G = Pending<()>> {
    listener: L,
    service: S,
    signal: G,
}

impl<L, S> Serve<L, S> {
    /// Serves until `signal` resolves, then stops accepting (the listener is closed), asks
    /// every connection to shut down gracefully (hyper's `graceful_shutdown`: requests in
    /// flight get their responses, idle connections close) and resolves once all have
    /// finished. To bound that wait, wrap the server in
    /// [`time::timeout`](crate::time::timeout). See [`serve`] for an example.
    pub fn with_graceful_shutdown<G>(self, signal: G) -> Serve<L, S, G>
    where
        G: Future<Output = ()> + 'static,
    {
        Serve {
            listener: self.listener,
            service: self.service,
            signal,
        }
    }
}

impl<L, S, G> fmt::Debug for Serve<L, S, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve").finish_non_exhaustive()
    }
}

impl<L, S, B, G> IntoFuture for Serve<L, S, G>
where
    L: Listener,
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + 'static,
    S::Future: 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    G: Future<Output = ()> + 'static,
{
    type Output = io::Result<()>;
    type IntoFuture = ServeFuture;

    fn into_future(self) -> ServeFuture {
        ServeFuture(Box::pin(run(self.listener, self.service, self.signal)))
    }
}

/// The future a [`Serve`] turns into: resolves when the server has stopped (see [`serve`]).
#[must_use = "a server does nothing until awaited"]
pub struct ServeFuture(Pin<Box<dyn Future<Output = io::Result<()>>>>);

impl Future for ServeFuture {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for ServeFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeFuture").finish_non_exhaustive()
    }
}

/// What to do after a failed accept (see [`serve`]'s errors).
enum AcceptError {
    Retry,
    BackOff,
    Fatal(io::Error),
}

fn classify(e: io::Error) -> AcceptError {
    match e.raw_os_error() {
        Some(
            libc::ECONNABORTED
            | libc::ECONNRESET
            | libc::ECONNREFUSED
            | libc::EPROTO
            | libc::EPERM
            | libc::ENETDOWN
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::ENONET
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ENETUNREACH
            | libc::ETIMEDOUT
            | libc::EINTR
            | libc::EAGAIN,
        ) => AcceptError::Retry,
        Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EFAULT) => AcceptError::Fatal(e),
        _ => AcceptError::BackOff,
    }
}

/// The live connection tasks, and the serve future waiting for there to be none.
#[derive(Default)]
struct Connections {
    live: Cell<usize>,
    waiter: Cell<Option<Waker>>,
}

/// Counts one connection task as live until dropped (so a task dropped by a closing loop
/// counts down too).
struct Live(Rc<Connections>);

impl Live {
    fn new(connections: &Rc<Connections>) -> Live {
        connections.live.set(connections.live.get() + 1);
        Live(connections.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let live = self.0.live.get() - 1;
        self.0.live.set(live);
        if live == 0
            && let Some(waker) = self.0.waiter.take()
        {
            waker.wake();
        }
    }
}

impl Connections {
    async fn all_done(&self) {
        poll_fn(|cx| {
            if self.live.get() == 0 {
                return Poll::Ready(());
            }
            self.waiter.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await;
    }
}

/// Polls `step` until it or `signal` resolves; `None` when the signal came first.
async fn unless_stopped<G, F>(mut signal: Pin<&mut G>, step: F) -> Option<F::Output>
where
    G: Future<Output = ()>,
    F: Future,
{
    let mut step = pin!(step);
    poll_fn(|cx| {
        if signal.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        step.as_mut().poll(cx).map(Some)
    })
    .await
}

async fn run<L, S, B, G>(listener: L, service: S, signal: G) -> io::Result<()>
where
    L: Listener,
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + 'static,
    S::Future: 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    G: Future<Output = ()>,
{
    let mut builder = auto::Builder::new(Executor);
    builder.http1().timer(Timer::new());
    builder.http2().timer(Timer::new());
    let builder = Rc::new(builder);
    let stopping = Rc::new(Event::new());
    let connections = Rc::new(Connections::default());
    let mut signal = pin!(signal);

    let outcome = loop {
        let accepted = unless_stopped(signal.as_mut(), async {
            match listener.accept().await {
                Ok((io, _peer)) => Ok(Some(io)),
                Err(e) => match classify(e) {
                    AcceptError::Retry => Ok(None),
                    AcceptError::BackOff => {
                        crate::time::sleep(ACCEPT_BACKOFF).await;
                        Ok(None)
                    }
                    AcceptError::Fatal(e) => Err(e),
                },
            }
        })
        .await;
        match accepted {
            None => break Ok(()),
            Some(Err(e)) => break Err(e),
            Some(Ok(None)) => {}
            Some(Ok(Some(io))) => {
                let live = Live::new(&connections);
                let (builder, stopping) = (builder.clone(), stopping.clone());
                let service = TowerService(service.clone());
                drop(crate::spawn(async move {
                    // Errors end this connection only (see `serve`).
                    let _ = serve_connection(&builder, io, service, &stopping).await;
                    drop(live);
                }));
            }
        }
    };
    drop(listener);
    stopping.set();
    connections.all_done().await;
    outcome
}

/// Serves one connection until it ends, shutting it down gracefully once `stopping` is set.
async fn serve_connection<I, S, B>(
    builder: &auto::Builder<Executor>,
    io: I,
    service: TowerService<S>,
    stopping: &Event,
) -> Result<(), Box<dyn StdError + Send + Sync>>
where
    I: ::hyper::rt::Read + ::hyper::rt::Write + Unpin + 'static,
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + 'static,
    S::Future: 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut stop = pin!(stopping.wait());
    let mut shutting_down = false;
    poll_fn(|cx| {
        if !shutting_down && stop.as_mut().poll(cx).is_ready() {
            shutting_down = true;
            conn.as_mut().graceful_shutdown();
        }
        conn.as_mut().poll(cx)
    })
    .await
}

/// A tower service as a hyper service: each request is called on a clone, once it is ready
/// (what hyper-util's `TowerToHyperService` does, without its `service` feature's box).
struct TowerService<S>(S);

impl<S, B> ::hyper::service::Service<Request<Incoming>> for TowerService<S>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = TowerCall<S>;

    fn call(&self, req: Request<Incoming>) -> TowerCall<S> {
        TowerCall::Readying {
            service: self.0.clone(),
            req: Some(req),
        }
    }
}

pin_project_lite::pin_project! {
    /// One request through a [`TowerService`]: `poll_ready`, then `call`'s future.
    #[project = TowerCallProj]
    enum TowerCall<S: tower_service::Service<Request<Incoming>>> {
        Readying { service: S, req: Option<Request<Incoming>> },
        Calling { #[pin] fut: S::Future },
    }
}

impl<S> Future for TowerCall<S>
where
    S: tower_service::Service<Request<Incoming>>,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                TowerCallProj::Readying { service, req } => {
                    if let Err(e) = std::task::ready!(service.poll_ready(cx)) {
                        return Poll::Ready(Err(e));
                    }
                    // The state becomes `Calling` right after the take.
                    let req = req.take().expect("a TowerCall calls its service once");
                    let fut = service.call(req);
                    self.set(TowerCall::Calling { fut });
                }
                TowerCallProj::Calling { fut } => return fut.poll(cx),
            }
        }
    }
}
