//! The HTTP examples work as servers, checked by a client that speaks HTTP/1.1 itself over a
//! std `TcpStream` (no curl, no hyper): `http_server` (hyper directly) and `axum_server` (an
//! axum Router through `ringloop::hyper::serve`) each run in a child process (this test
//! binary, re-executed) on the backend named by `RINGLOOP_BACKEND`, and answer `GET /`, a
//! 100 KiB `POST /echo` byte-exact, a chunked `POST /echo`, a 404, two requests on one
//! keep-alive connection (and `GET /slow` for axum); on SIGINT a request already in flight
//! still gets its whole answer, the process exits 0 within a time bound and its port is free.

#![cfg(feature = "hyper")]
// Each example includes its own copy of `examples/common/shutdown.rs`, as when it is built
// alone.
#![allow(clippy::duplicate_mod)]

mod support;

#[allow(dead_code)]
#[path = "../examples/axum_server.rs"]
mod axum_server;
#[allow(dead_code)]
#[path = "../examples/http_server.rs"]
mod http_server;

use std::io::{BufRead, BufReader, Lines, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// How long the child may take to exit after SIGINT (its request in flight is answered by
/// then; idle connections close at once).
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// The child side: builds a runtime as the examples' `main` does (so `RINGLOOP_BACKEND`
/// picks the backend), prints its report and serves the example named by the role on a
/// free port until a signal.
#[test]
fn child_example_server() {
    let Some(example) = support::child_role() else {
        return; // only meaningful when re-executed by a test below
    };
    let rt = ringloop::Runtime::builder()
        .build()
        .expect("building the runtime");
    println!("{}", rt.backend_report());
    let any = "127.0.0.1:0";
    rt.block_on(async {
        match example.as_str() {
            "http_server" => http_server::serve(any).await,
            "axum_server" => axum_server::serve(any).await,
            other => panic!("unknown example {other}"),
        }
    })
    .expect("the example server");
}

/// A child process, killed (and reaped) when dropped, so a failed test leaves no server
/// running.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An example running in a child process.
struct Server {
    child: Killed,
    addr: SocketAddr,
    lines: Lines<BufReader<ChildStdout>>,
    what: String,
}

impl Server {
    /// Starts `example` on `backend` and waits until it announces its address.
    fn start(example: &str, backend: ringloop::Backend) -> Server {
        let role = support::backend_role(backend);
        let what = format!("{example} on {role}");
        let child = Command::new(std::env::current_exe().expect("current test executable"))
            .args([
                "child_example_server",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("RINGLOOP_BACKEND", role)
            .env(support::CHILD_ENV, example)
            .stdout(Stdio::piped())
            .spawn()
            .expect("re-executing the test binary");
        let mut child = Killed(child);
        let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
        let mut report = None;
        let addr = loop {
            let line = match lines.next() {
                Some(Ok(line)) => line,
                _ => panic!("{what}: no address announced"),
            };
            // (libtest's "test child_example_server ... " may come first on the line.)
            if let Some(at) = line.find("backend: ") {
                report = Some(line[at..].to_string());
            }
            if let Some(addr) = line
                .rsplit(" on ")
                .next()
                .and_then(|a| a.trim().parse().ok())
            {
                break addr;
            }
        };
        // The backend the child runs is the one RINGLOOP_BACKEND asked for.
        let report = report.unwrap_or_else(|| panic!("{what}: no backend report"));
        assert!(
            report.starts_with(&format!("backend: {role} ")),
            "{what}: {report}"
        );
        Server {
            child,
            addr,
            lines,
            what,
        }
    }

    /// Sends SIGINT, waits (bounded) for the child to exit 0, and checks that its port can
    /// be bound at once; returns what it printed after the address.
    fn interrupt_and_wait(mut self) -> Vec<String> {
        // SAFETY: kill(2) on our own child, which has not been waited for (its pid is ours).
        let rc = unsafe { libc::kill(self.child.0.id() as libc::pid_t, libc::SIGINT) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
        let deadline = Instant::now() + support::scaled(EXIT_LIMIT);
        let status = loop {
            if let Some(status) = self.child.0.try_wait().expect("waiting for the child") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: still running {EXIT_LIMIT:?} after SIGINT",
                self.what
            );
            thread::sleep(Duration::from_millis(10));
        };
        let rest: Vec<String> = self.lines.by_ref().map_while(Result::ok).collect();
        assert!(
            status.success(),
            "{}: exited with {status}; output: {rest:?}",
            self.what
        );
        if let Err(e) = std::net::TcpListener::bind(self.addr) {
            panic!("{}: binding {} after it exited: {e}", self.what, self.addr);
        }
        rest
    }
}

/// An HTTP response as read off the wire.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One client connection, speaking HTTP/1.1 by hand.
struct Conn {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connecting to the example");
        stream
            .set_read_timeout(Some(support::scaled(Duration::from_secs(20))))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Conn { stream, reader }
    }

    /// Writes `bytes` from another thread (a large body is echoed while it is being sent, so
    /// writing it all before reading could fill both directions' buffers).
    fn send(&self, bytes: Vec<u8>) -> thread::JoinHandle<()> {
        let mut stream = self.stream.try_clone().unwrap();
        thread::spawn(move || stream.write_all(&bytes).expect("sending"))
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("reading a line");
        assert!(line.ends_with("\r\n"), "a line ended early: {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    /// Reads the headers after `status_line`.
    fn head_after(&mut self, status_line: &str) -> (u16, Vec<(String, String)>) {
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
        let status = parts.next().and_then(|s| s.parse().ok()).expect("a status");
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                return (status, headers);
            }
            let (name, value) = line.split_once(':').expect("a header");
            headers.push((name.to_string(), value.trim().to_string()));
        }
    }

    /// Reads one final response (skipping `100 Continue`), its body by Content-Length,
    /// chunked, or to the end of the connection.
    fn response(&mut self) -> Response {
        let status_line = self.line();
        self.response_from(status_line)
    }

    /// [`Conn::response`] when its first status line has been read already.
    fn response_from(&mut self, mut status_line: String) -> Response {
        let (status, headers) = loop {
            let (status, headers) = self.head_after(&status_line);
            if status != 100 {
                break (status, headers);
            }
            status_line = self.line();
        };
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if let Some(len) = response.header("content-length") {
            let mut body = vec![0; len.parse().expect("a length")];
            self.reader.read_exact(&mut body).expect("reading the body");
            response.body = body;
        } else if response.header("transfer-encoding") == Some("chunked") {
            loop {
                let size_line = self.line();
                let size = size_line.split(';').next().unwrap().trim();
                let size = usize::from_str_radix(size, 16).expect("a chunk size");
                if size == 0 {
                    while !self.line().is_empty() {} // trailers
                    break;
                }
                let start = response.body.len();
                response.body.resize(start + size, 0);
                self.reader
                    .read_exact(&mut response.body[start..])
                    .expect("reading a chunk");
                assert_eq!(self.line(), "", "a chunk ends with CRLF");
            }
        } else {
            self.reader.read_to_end(&mut response.body).unwrap();
        }
        response
    }

    /// Whether the server has closed the connection (reads the end of it).
    fn closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0))
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

const GET_ROOT: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

/// What every example must do, before the signal.
fn check_routes(server: &Server) {
    let what = &server.what;
    // GET / and then, on the same connection, a 100 KiB POST byte-exact (keep-alive).
    let mut conn = Conn::open(server.addr);
    conn.send(GET_ROOT.to_vec()).join().unwrap();
    let hello = conn.response();
    assert_eq!(hello.status, 200, "{what}: {hello:?}");
    assert_eq!(hello.body, b"Hello, world!\n", "{what}");
    let data = pattern(100 * 1024);
    let sending = conn.send(post("/echo", &data));
    let echoed = conn.response();
    sending.join().unwrap();
    assert_eq!(echoed.status, 200, "{what}");
    assert_eq!(echoed.body.len(), data.len(), "{what}");
    assert!(echoed.body == data, "{what}: the echoed body differs");
    // A third request on that connection still works.
    conn.send(GET_ROOT.to_vec()).join().unwrap();
    assert_eq!(conn.response().body, b"Hello, world!\n", "{what}");

    // A chunked POST, in pieces with a pause between them.
    let mut conn = Conn::open(server.addr);
    let head = b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n";
    conn.send(head.to_vec()).join().unwrap();
    let pieces: [&[u8]; 3] = [b"hello ", b"chunked ", b"world"];
    for piece in pieces {
        let chunk = [
            format!("{:x}\r\n", piece.len()).as_bytes(),
            piece,
            b"\r\n".as_slice(),
        ]
        .concat();
        conn.send(chunk).join().unwrap();
    }
    conn.send(b"0\r\n\r\n".to_vec()).join().unwrap();
    let echoed = conn.response();
    assert_eq!(echoed.status, 200, "{what}");
    assert_eq!(echoed.body, b"hello chunked world", "{what}");

    // Anything else is 404.
    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /nowhere HTTP/1.1\r\nHost: test\r\n\r\n".to_vec())
        .join()
        .unwrap();
    assert_eq!(conn.response().status, 404, "{what}");
}

/// SIGINT while a request is in flight: the request (a POST whose body is sent only after
/// the signal) is answered in full, then the connection closes and the child exits 0.
fn check_interrupt_with_request_in_flight(server: Server) {
    let what = server.what.clone();
    // An idle keep-alive connection, which the shutdown must close.
    let mut idle = Conn::open(server.addr);
    idle.send(GET_ROOT.to_vec()).join().unwrap();
    assert_eq!(idle.response().status, 200);

    let mut conn = Conn::open(server.addr);
    let data = pattern(64 * 1024);
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        data.len()
    );
    conn.send(head.into_bytes()).join().unwrap();
    // The server answers `100 Continue` (or the final head, for a streamed echo) once the
    // handler reads the body: the request is in flight.
    let first = conn.line();
    assert!(first.starts_with("HTTP/1.1 "), "{what}: {first}");

    let waiting = thread::spawn(move || server.interrupt_and_wait());
    // The child is now shutting down, with this request in flight.
    conn.send(data.clone()).join().unwrap();
    let echoed = conn.response_from(first);
    assert_eq!(echoed.status, 200, "{what}");
    assert!(echoed.body == data, "{what}: the echoed body differs");
    assert!(conn.closed_by_server(), "{what}: connection left open");
    assert!(idle.closed_by_server(), "{what}: idle connection left open");
    let rest = waiting.join().unwrap();
    assert!(
        rest.iter().any(|l| l.contains("SIGINT: shutting down")),
        "{what}: {rest:?}"
    );
}

both_backends! {
    /// `http_server` (hyper directly): the routes, keep-alive, and SIGINT with a request
    /// in flight.
    fn http_server_example_serves_and_drains(backend: Backend) {
        let _wd = support::watchdog(TEST_LIMIT, "http_server_example_serves_and_drains");
        let server = Server::start("http_server", backend);
        check_routes(&server);
        check_interrupt_with_request_in_flight(server);
    }

    /// `axum_server` (an axum Router through `ringloop::hyper::serve`): the routes,
    /// keep-alive, `GET /slow` (a ringloop timer inside the handler), and SIGINT with a
    /// request in flight.
    fn axum_server_example_serves_and_drains(backend: Backend) {
        let _wd = support::watchdog(TEST_LIMIT, "axum_server_example_serves_and_drains");
        let server = Server::start("axum_server", backend);
        check_routes(&server);
        let mut conn = Conn::open(server.addr);
        let start = Instant::now();
        conn.send(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n".to_vec()).join().unwrap();
        let slow = conn.response();
        assert!(start.elapsed() >= axum_server::SLOW, "answered after {:?}", start.elapsed());
        assert_eq!(slow.status, 200);
        assert_eq!(slow.body, format!("slept {} ms\n", axum_server::SLOW.as_millis()).as_bytes());
        check_interrupt_with_request_in_flight(server);
    }
}
