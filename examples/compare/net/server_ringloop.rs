//! The ringloop server: `ringloop::net`, one task per connection, written as a ringloop user
//! would for throughput: every connection receives with a multishot receive into one shared
//! [`BufRing`] (io_uring: a registered provided-buffer ring; epoll: the same API from a
//! user-space pool), and echoes the very buffer it received. An idle connection holds no
//! buffer. (tokio's and monoio's servers keep one buffer per connection, their idiom.)

use super::control::{DONE, HELLO};
use super::server::{BACKLOG, LOOPBACK, announce, finish, snapshot_line};
use super::spec::{Mode, ServerSpec};
use ringloop::buf::BufRing;
use ringloop::net::{ListenOptions, TcpListener, TcpStream};
use ringloop::{Backend, Runtime, spawn};
use std::future::Future;

// Owned-buffer writes take `'static` buffers.
const HELLO_BYTE: &[u8] = &[HELLO];
const DONE_BYTE: &[u8] = &[DONE];

/// Serves `spec` on a ringloop runtime forced onto `backend`; returns only on error.
pub fn serve(backend: Backend, spec: ServerSpec) -> Result<(), String> {
    serve_with(backend, move |listener| {
        let ring = BufRing::builder()
            .buf_size(spec.buffer)
            .initial(16)
            .max(4096)
            .build()
            .map_err(|e| format!("buffer ring: {e}"))?;
        Ok(accept_all(listener, spec, ring))
    })
}

/// Runs a server on a ringloop runtime forced onto `backend`: binds, announces the port,
/// accepts the control connection, then spawns what `accept` makes of the listener (called
/// on the loop) and answers snapshot requests until the control connection closes. Returns
/// only on error.
pub fn serve_with<F, A>(backend: Backend, accept: F) -> Result<(), String>
where
    F: FnOnce(TcpListener) -> Result<A, String>,
    A: Future<Output = ()> + 'static,
{
    let runtime = Runtime::builder()
        .backend(backend)
        .build()
        .map_err(|e| format!("ringloop ({backend:?}) failed to build: {e}"))?;
    let options = ListenOptions::new().backlog(BACKLOG);
    let listener = TcpListener::bind_with(LOOPBACK, &options).map_err(|e| e.to_string())?;
    announce(listener.local_addr().map_err(|e| e.to_string())?)?;
    runtime.block_on(async {
        let (control, _) = listener
            .accept()
            .await
            .map_err(|e| format!("accepting the control connection: {e}"))?;
        spawn(accept(listener)?);
        // The control loop runs in `block_on`'s own future, so it may read the runtime's stats.
        let enters = || Some(runtime.stats().kernel_enters);
        loop {
            let (read, _) = control.read(Vec::with_capacity(1)).await;
            match read {
                Ok(0) => finish(),
                Ok(_) => {}
                Err(e) => return Err(format!("control connection: {e}")),
            }
            let (wrote, _) = control.write_all(snapshot_line(enters())?).await;
            wrote.map_err(|e| format!("control connection: {e}"))?;
        }
    })
}

/// Accepts the data connections and starts a task for each.
async fn accept_all(listener: TcpListener, spec: ServerSpec, ring: BufRing) {
    let mut incoming = listener.incoming();
    for _ in 0..spec.accepts() {
        let stream = incoming.next().await.expect("accept failed");
        stream.set_nodelay(true).expect("TCP_NODELAY failed");
        spawn(connection(stream, spec, ring.clone()));
    }
}

/// One data connection, from hello to the client's end of stream. An I/O error ends it
/// quietly: the client sees the connection close and reports the failure.
async fn connection(stream: TcpStream, spec: ServerSpec, ring: BufRing) {
    let (hello, _) = stream.write_all(HELLO_BYTE).await;
    if hello.is_err() {
        return;
    }
    match spec.mode {
        // An idle connection is an echo connection that receives nothing: its multishot
        // receive waits in the kernel (or the epoll queue) holding no buffer.
        Mode::Echo | Mode::Idle => echo(&stream, &ring).await,
        Mode::Discard => {
            if discard(&stream, &ring).await {
                let _ = stream.write_all(DONE_BYTE).await;
            }
        }
        Mode::TlsEcho | Mode::TlsDiscard | Mode::TlsHandshake | Mode::Http => {
            unreachable!("TLS servers are in net/tls/, HTTP servers in net/http/")
        }
    }
}

/// Writes back each received buffer as it is, until end of stream.
async fn echo(stream: &TcpStream, ring: &BufRing) {
    let mut chunks = stream.recv_multishot(ring);
    while let Some(Ok(chunk)) = chunks.next().await {
        let (wrote, _) = stream.write_all(chunk).await;
        if wrote.is_err() {
            return;
        }
    }
}

/// Receives and drops everything until end of stream; `true` if it got there without an error.
async fn discard(stream: &TcpStream, ring: &BufRing) -> bool {
    let mut chunks = stream.recv_multishot(ring);
    while let Some(chunk) = chunks.next().await {
        if chunk.is_err() {
            return false;
        }
    }
    true
}
