//! `ringloop::hyper::serve`: an axum `Router` (and a hand-written tower service with `!Send`
//! futures) served over HTTP/1 and HTTP/2 (prior knowledge, through the auto builder), with
//! handlers awaiting ringloop's timers and files through `ringloop::on_loop`; the
//! graceful shutdown closes the listener, lets requests in flight finish on both protocols and
//! resolves once every connection is done, leaving no descriptor; accept errors that do not
//! concern the listener (a real `EMFILE` included) do not end the server, and those that do
//! end it with the error. On both backends.
//!
//! Every test takes `support::serial()` before it builds its runtime: the descriptor tests
//! count (and exhaust) the process's descriptors.
#![cfg(feature = "hyper")]

mod support;

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use ringloop::hyper::{Executor, Listener, Timer, serve};
use ringloop::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use ringloop::sync::Event;

fn local() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// `GET /` hello, `POST /echo` the body back, `GET /version` the request's HTTP version.
fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "Hello, world!\n" }))
        .route("/echo", post(|body: Bytes| async move { body }))
        .route(
            "/version",
            get(|version: axum::http::Version| async move { format!("{version:?}") }),
        )
}

/// Spawns `serve(listener, service)` until `stop` is set.
fn spawn_server<L, S>(
    listener: L,
    service: S,
    stop: &Rc<Event>,
) -> ringloop::JoinHandle<io::Result<()>>
where
    L: Listener,
    S: tower_service::Service<Request<Incoming>, Response = Response<axum::body::Body>>
        + Clone
        + 'static,
    S::Future: 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stop = stop.clone();
    ringloop::spawn(async move {
        serve(listener, service)
            .with_graceful_shutdown(async move { stop.wait().await })
            .await
    })
}

async fn http1_client(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(stream).await.unwrap();
    ringloop::spawn(async move {
        let _ = conn.await;
    });
    sender
}

async fn http2_client(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::Builder::new(Executor)
        .timer(Timer::new())
        .handshake(stream)
        .await
        .unwrap();
    ringloop::spawn(async move {
        let _ = conn.await;
    });
    sender
}

async fn body_of(resp: Response<Incoming>) -> Bytes {
    resp.into_body().collect().await.unwrap().to_bytes()
}

/// Writes `request` on `stream` and reads until the server closes the connection.
async fn raw_exchange<S>(stream: S, request: &[u8]) -> String
where
    S: RawStream,
{
    stream.send(request.to_vec()).await;
    let mut response = Vec::new();
    loop {
        let got = stream.receive().await;
        if got.is_empty() {
            break;
        }
        response.extend_from_slice(&got);
    }
    String::from_utf8(response).unwrap()
}

/// The owned-buffer calls [`raw_exchange`] needs, on TCP and Unix streams.
trait RawStream {
    async fn send(&self, data: Vec<u8>);
    async fn receive(&self) -> Vec<u8>;
}

impl RawStream for TcpStream {
    async fn send(&self, data: Vec<u8>) {
        self.write_all(data).await.0.unwrap();
    }
    async fn receive(&self) -> Vec<u8> {
        let (n, buf) = self.read(Vec::with_capacity(4096)).await;
        n.unwrap();
        buf
    }
}

impl RawStream for UnixStream {
    async fn send(&self, data: Vec<u8>) {
        self.write_all(data).await.0.unwrap();
    }
    async fn receive(&self) -> Vec<u8> {
        let (n, buf) = self.read(Vec::with_capacity(4096)).await;
        n.unwrap();
        buf
    }
}

/// Waits (bounded by time) until connecting to `addr` is refused: the listener is closed.
async fn until_refused(addr: SocketAddr) {
    let deadline = std::time::Instant::now() + support::scaled(Duration::from_secs(10));
    loop {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return,
            other => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "connecting to {addr} still gives {other:?}"
                );
                ringloop::yield_now().await;
            }
        }
    }
}

/// A tower service with `!Send` futures (they hold `Rc`s): `/slow` counts itself as
/// started, waits until `release` is set, then answers "slow done"; anything else "quick".
#[derive(Clone)]
struct Gate {
    started: Rc<Cell<usize>>,
    release: Rc<Event>,
}

impl tower_service::Service<Request<Incoming>> for Gate {
    type Response = Response<axum::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>>>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let gate = self.clone();
        Box::pin(async move {
            if req.uri().path() != "/slow" {
                return Ok(Response::new("quick".into()));
            }
            gate.started.set(gate.started.get() + 1);
            gate.release.wait().await;
            Ok(Response::new("slow done".into()))
        })
    }
}

/// A listener that fails with the given errors first, then accepts from `inner`.
struct Failing {
    errors: std::cell::RefCell<Vec<i32>>,
    inner: TcpListener,
}

impl Listener for Failing {
    type Io = TcpStream;
    type Addr = SocketAddr;
    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let next = self.errors.borrow_mut().pop();
        match next {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => self.inner.accept().await,
        }
    }
}

both_backends! {
    /// An axum Router over HTTP/1.1 (hello, a 256 KiB body echoed byte-exact, keep-alive)
    /// and over HTTP/2 with prior knowledge (20 concurrent requests on one connection, each
    /// answered as HTTP/2): the auto builder tells them apart. Stopping resolves to Ok.
    fn axum_router_over_http1_and_http2(backend: Backend) {
        let _serial = support::serial();
        let rt = support::runtime(backend);
        let _wd = support::watchdog(Duration::from_secs(60), "axum_router_over_http1_and_http2");
        rt.block_on(async {
            let listener = TcpListener::bind(local()).unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = Rc::new(Event::new());
            let server = spawn_server(listener, app(), &stop);

            let mut h1 = http1_client(addr).await;
            let resp = h1.send_request(Request::get("/").body(Full::default()).unwrap()).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(body_of(resp).await, "Hello, world!\n");
            let sent: Bytes = (0..256 * 1024).map(|i: u32| (i % 251) as u8).collect::<Vec<u8>>().into();
            h1.ready().await.unwrap();
            let resp = h1.send_request(Request::post("/echo").body(Full::new(sent.clone())).unwrap()).await.unwrap();
            assert!(body_of(resp).await == sent, "the echoed body differs");
            h1.ready().await.unwrap();
            let resp = h1.send_request(Request::get("/version").body(Full::default()).unwrap()).await.unwrap();
            assert_eq!(body_of(resp).await, "HTTP/1.1");

            let h2 = http2_client(addr).await;
            let requests: Vec<_> = (0..20)
                .map(|i| {
                    let mut h2 = h2.clone();
                    ringloop::spawn(async move {
                        let body = Full::new(Bytes::from(format!("stream {i}")));
                        let req = Request::post("http://localhost/echo").body(body).unwrap();
                        let resp = h2.send_request(req).await.unwrap();
                        assert_eq!(resp.version(), hyper::Version::HTTP_2);
                        body_of(resp).await
                    })
                })
                .collect();
            for (i, request) in requests.into_iter().enumerate() {
                assert_eq!(request.await.unwrap(), format!("stream {i}"));
            }
            let mut h2v = h2.clone();
            let req = Request::get("http://localhost/version").body(Full::default()).unwrap();
            assert_eq!(body_of(h2v.send_request(req).await.unwrap()).await, "HTTP/2.0");

            stop.set();
            server.await.unwrap().unwrap();
        });
    }

    /// An axum handler awaits ringloop's own timer and file read through `ringloop::on_loop`
    /// (axum wants `Send` handler futures), over HTTP/1 and over HTTP/2 (where hyper runs
    /// each stream as a task of its own through ringloop's Executor, on the same loop).
    fn axum_handler_awaits_ringloop_io_through_on_loop(backend: Backend) {
        let _serial = support::serial();
        let rt = support::runtime(backend);
        let _wd = support::watchdog(Duration::from_secs(60), "axum_handler_awaits_ringloop_io_through_on_loop");
        let path = std::env::temp_dir().join(format!(
            "ringloop-serve-on-loop-{}-{}",
            std::process::id(),
            support::backend_role(backend)
        ));
        std::fs::write(&path, b"read by ringloop::fs").unwrap();
        rt.block_on(async {
            const NAP: Duration = Duration::from_millis(50);
            let file = path.clone();
            let app = Router::new().route(
                "/file",
                get(move || {
                    let file = file.clone();
                    async move {
                        ringloop::on_loop(async move {
                            ringloop::time::sleep(NAP).await;
                            ringloop::fs::read(&file).await.unwrap()
                        })
                        .await
                    }
                }),
            );
            let listener = TcpListener::bind(local()).unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = Rc::new(Event::new());
            let server = spawn_server(listener, app, &stop);

            let start = std::time::Instant::now();
            let mut h1 = http1_client(addr).await;
            let resp = h1.send_request(Request::get("/file").body(Full::default()).unwrap()).await.unwrap();
            assert_eq!(body_of(resp).await, "read by ringloop::fs");
            assert!(start.elapsed() >= NAP);
            let mut h2 = http2_client(addr).await;
            let req = Request::get("http://localhost/file").body(Full::default()).unwrap();
            let resp = h2.send_request(req).await.unwrap();
            assert_eq!(resp.version(), hyper::Version::HTTP_2);
            assert_eq!(body_of(resp).await, "read by ringloop::fs");

            stop.set();
            server.await.unwrap().unwrap();
        });
        std::fs::remove_file(&path).unwrap();
    }

    /// Graceful shutdown: with a request in flight on HTTP/1 and one on HTTP/2, and an idle
    /// HTTP/1 connection, the signal closes the listener and the idle connection at once;
    /// the server does not resolve until both requests have been answered, and then does.
    fn graceful_shutdown_waits_for_requests_in_flight(backend: Backend) {
        let _serial = support::serial();
        let rt = support::runtime(backend);
        let _wd = support::watchdog(Duration::from_secs(60), "graceful_shutdown_waits_for_requests_in_flight");
        rt.block_on(async {
            let listener = TcpListener::bind(local()).unwrap();
            let addr = listener.local_addr().unwrap();
            let gate = Gate { started: Rc::new(Cell::new(0)), release: Rc::new(Event::new()) };
            let stop = Rc::new(Event::new());
            let stop2 = stop.clone();
            let server = ringloop::spawn({
                let gate = gate.clone();
                async move { serve(listener, gate).with_graceful_shutdown(async move { stop2.wait().await }).await }
            });

            // An idle keep-alive connection (one request answered, then nothing).
            let idle = TcpStream::connect(addr).await.unwrap();
            idle.write_all(b"GET /quick HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()).await.0.unwrap();
            // The whole response (a read may return part of it, e.g. under the fault injector).
            let mut first = Vec::new();
            while !first.ends_with(b"quick") {
                let (n, got) = idle.read(Vec::with_capacity(4096)).await;
                assert!(n.unwrap() > 0, "EOF after {:?}", String::from_utf8_lossy(&first));
                first.extend_from_slice(&got);
            }

            let mut h1 = http1_client(addr).await;
            let slow1 = ringloop::spawn(async move {
                let resp = h1.send_request(Request::get("/slow").body(Full::default()).unwrap()).await.unwrap();
                body_of(resp).await
            });
            let mut h2 = http2_client(addr).await;
            let slow2 = ringloop::spawn(async move {
                let req = Request::get("http://localhost/slow").body(Full::default()).unwrap();
                let resp = h2.send_request(req).await.unwrap();
                body_of(resp).await
            });
            let started = gate.started.clone();
            support::yield_until("both slow requests are being handled", || started.get() == 2).await;

            stop.set();
            until_refused(addr).await;
            // The idle connection is closed by the server.
            let (n, _) = idle.read(Vec::with_capacity(64)).await;
            assert_eq!(n.unwrap(), 0, "the idle connection stays open");
            support::yield_turns(50).await;
            assert!(!server.is_finished(), "the server ended with requests in flight");
            assert!(!slow1.is_finished() && !slow2.is_finished());

            gate.release.set();
            assert_eq!(slow1.await.unwrap(), "slow done");
            assert_eq!(slow2.await.unwrap(), "slow done");
            let done = ringloop::time::timeout(support::scaled(Duration::from_secs(10)), server).await;
            done.expect("the server resolves once its connections are done").unwrap().unwrap();
        });
    }

    /// Once the server has resolved, its listening socket is closed: the process has the
    /// descriptors it had before the listener was bound, and connecting is refused.
    fn listener_closed_when_serve_ends(backend: Backend) {
        let _serial = support::serial();
        let rt = support::runtime(backend);
        let _wd = support::watchdog(Duration::from_secs(60), "listener_closed_when_serve_ends");
        rt.block_on(async {
            let before = support::open_fds();
            let listener = TcpListener::bind(local()).unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = Rc::new(Event::new());
            let server = spawn_server(listener, app(), &stop);
            let client = TcpStream::connect(addr).await.unwrap();
            let text = raw_exchange(client, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
            assert!(text.ends_with("\r\n\r\nHello, world!\n"), "{text}");
            stop.set();
            server.await.unwrap().unwrap();
            assert_eq!(support::open_fds(), before, "fds: {:?}", support::describe_open_fds());
            // The descriptor is closed; the socket stops listening once the accept the
            // kernel held is cancelled, which a delayed cancel (the fault injector's, or a
            // real race) may leave to the next turn of the loop: a connect in between is
            // accepted and dropped. Refused within a bounded time is the promise.
            until_refused(addr).await;
        });
    }

    /// A Unix listener is served the same way.
    fn unix_listener_served(backend: Backend) {
        let _serial = support::serial();
        let rt = support::runtime(backend);
        let _wd = support::watchdog(Duration::from_secs(60), "unix_listener_served");
        let path = std::env::temp_dir().join(format!(
            "ringloop-serve-{}-{}",
            std::process::id(),
            support::backend_role(backend)
        ));
        let _ = std::fs::remove_file(&path);
        rt.block_on(async {
            let listener = UnixListener::bind(&path).unwrap();
            let stop = Rc::new(Event::new());
            let server = spawn_server(listener, app(), &stop);
            let client = UnixStream::connect(&path).await.unwrap();
            let request = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nping";
            let text = raw_exchange(client, request).await;
            assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
            assert!(text.ends_with("\r\n\r\nping"), "{text}");
            stop.set();
            server.await.unwrap().unwrap();
        });
        std::fs::remove_file(&path).unwrap();
    }

    /// Accept errors about one connection or a shortage (ECONNABORTED, EMFILE, ENFILE,
    /// ENOBUFS, EPROTO) do not end the server, which then serves as usual; an error that says
    /// the listener is unusable (EINVAL: not listening) ends it with that error.
    fn accept_errors_retried_or_fatal(backend: Backend) {
        let _serial = support::serial();
        let rt = support::runtime(backend);
        let _wd = support::watchdog(Duration::from_secs(60), "accept_errors_retried_or_fatal");
        rt.block_on(async {
            let inner = TcpListener::bind(local()).unwrap();
            let addr = inner.local_addr().unwrap();
            // Popped from the end: these come first, then real accepts.
            let errors = vec![libc::EPROTO, libc::ENOBUFS, libc::ENFILE, libc::EMFILE, libc::ECONNABORTED];
            let listener = Failing { errors: errors.into(), inner };
            let stop = Rc::new(Event::new());
            let server = spawn_server(listener, app(), &stop);
            let client = TcpStream::connect(addr).await.unwrap();
            let text = raw_exchange(client, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
            assert!(text.ends_with("\r\n\r\nHello, world!\n"), "{text}");
            assert!(!server.is_finished());
            stop.set();
            server.await.unwrap().unwrap();

            let inner = TcpListener::bind(local()).unwrap();
            let listener = Failing { errors: vec![libc::EINVAL, libc::ECONNABORTED].into(), inner };
            let never = Rc::new(Event::new());
            let err = spawn_server(listener, app(), &never).await.unwrap().expect_err("EINVAL ends it");
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        });
    }

    /// A real EMFILE: a client waits in the backlog while the process has no descriptor to
    /// spare. The server's accepts fail meanwhile (the client gets no answer) but it goes on,
    /// and once descriptors are free it accepts and answers the client.
    fn accept_emfile_does_not_end_server(backend: Backend) {
        let _serial = support::serial();
        let rt = support::runtime(backend);
        let _wd = support::watchdog(Duration::from_secs(60), "accept_emfile_does_not_end_server");
        rt.block_on(async {
            let listener = TcpListener::bind(local()).unwrap();
            let addr = listener.local_addr().unwrap();
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            client.set_read_timeout(Some(support::scaled(Duration::from_secs(20)))).unwrap();
            client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let answered = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let reader = {
                let answered = answered.clone();
                std::thread::spawn(move || {
                    let mut response = String::new();
                    let res = client.read_to_string(&mut response);
                    answered.store(true, std::sync::atomic::Ordering::SeqCst);
                    res.map(|_| response)
                })
            };
            let stop = Rc::new(Event::new());
            let exhausted = Exhausted::new();
            let server = spawn_server(listener, app(), &stop);
            // Long enough for several accepts (and back-offs) to fail.
            ringloop::time::sleep(Duration::from_millis(400)).await;
            if answered.load(std::sync::atomic::Ordering::SeqCst) {
                drop(exhausted);
                panic!("answered without a descriptor: {:?}", reader.join());
            }
            assert!(!server.is_finished(), "EMFILE ended the server");
            drop(exhausted);
            let response = ringloop::spawn_blocking(move || reader.join().unwrap()).await.unwrap().unwrap();
            assert!(response.ends_with("\r\n\r\nHello, world!\n"), "{response}");
            stop.set();
            server.await.unwrap().unwrap();
        });
    }
}

/// Every descriptor the process may open, taken (with the soft limit lowered so that is a
/// few); dropping it closes them and restores the limit.
struct Exhausted {
    fds: Vec<OwnedFd>,
    limit: libc::rlimit,
}

impl Exhausted {
    fn new() -> Exhausted {
        let null = std::fs::File::open("/dev/null").unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit(2) writes one rlimit into the valid struct it is given.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        assert_eq!(rc, 0);
        let highest = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
            .max()
            .unwrap();
        let lowered = libc::rlimit {
            rlim_cur: highest + 8,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit(2) reads the valid struct it is given.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) };
        assert_eq!(rc, 0);
        let mut fds = Vec::new();
        loop {
            // SAFETY: dup(2) of an open descriptor (or a failure) has no memory effects.
            let fd = unsafe { libc::dup(std::os::fd::AsRawFd::as_raw_fd(&null)) };
            if fd < 0 {
                assert_eq!(
                    io::Error::last_os_error().raw_os_error(),
                    Some(libc::EMFILE)
                );
                break;
            }
            // SAFETY: dup(2) returned a new descriptor that nothing else owns.
            fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        fds.push(null.into());
        Exhausted { fds, limit }
    }
}

impl Drop for Exhausted {
    fn drop(&mut self) {
        self.fds.clear();
        // SAFETY: setrlimit(2) reads the valid struct it is given.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.limit) };
    }
}
