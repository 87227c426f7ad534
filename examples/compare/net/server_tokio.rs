//! The tokio server: current-thread runtime, `tokio::net`, one task per connection with
//! `read` into one reused buffer and `write_all`.

use super::control::{DONE, HELLO};
use super::server::{BACKLOG, LOOPBACK, announce, finish, snapshot_line, touched_buffer};
use super::spec::{Mode, ServerSpec};
use std::future::Future;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Serves `spec` on a current-thread tokio runtime; returns only on error.
pub fn serve(spec: ServerSpec) -> Result<(), String> {
    serve_with(move |listener| accept_all(listener, spec))
}

/// Runs a server on a current-thread tokio runtime: binds, announces the port, accepts the
/// control connection, then spawns what `accept` makes of the listener and answers snapshot
/// requests until the control connection closes. Returns only on error.
pub fn serve_with<F, A>(accept: F) -> Result<(), String>
where
    F: FnOnce(TcpListener) -> A,
    A: Future<Output = ()> + 'static + Send,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime failed to build: {e}"))?;
    runtime.block_on(async {
        let listener = listen().map_err(|e| format!("bind {LOOPBACK}: {e}"))?;
        announce(listener.local_addr().map_err(|e| e.to_string())?)?;
        let (mut control, _) = listener
            .accept()
            .await
            .map_err(|e| format!("accepting the control connection: {e}"))?;
        tokio::spawn(accept(listener));
        loop {
            let mut request = [0u8; 1];
            match control.read(&mut request).await {
                Ok(0) => finish(),
                Ok(_) => {}
                Err(e) => return Err(format!("control connection: {e}")),
            }
            // tokio counts no kernel entries without `tokio_unstable`: none to report.
            let line = snapshot_line(None)?;
            control
                .write_all(&line)
                .await
                .map_err(|e| format!("control connection: {e}"))?;
        }
    })
}

fn listen() -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(LOOPBACK)?;
    socket.listen(BACKLOG as u32)
}

/// Accepts the data connections and starts a task for each.
async fn accept_all(listener: TcpListener, spec: ServerSpec) {
    for _ in 0..spec.accepts() {
        let (stream, _) = listener.accept().await.expect("accept failed");
        stream.set_nodelay(true).expect("TCP_NODELAY failed");
        tokio::spawn(connection(stream, spec));
    }
}

/// One data connection, from hello to the client's end of stream. An I/O error ends it
/// quietly: the client sees the connection close and reports the failure.
async fn connection(mut stream: TcpStream, spec: ServerSpec) {
    if stream.write_all(&[HELLO]).await.is_err() {
        return;
    }
    match spec.mode {
        // An idle connection is an echo connection whose client never writes.
        Mode::Echo | Mode::Idle => echo(&mut stream, spec.buffer).await,
        Mode::Discard => {
            if discard(&mut stream, spec.buffer).await {
                let _ = stream.write_all(&[DONE]).await;
            }
        }
        Mode::TlsEcho | Mode::TlsDiscard | Mode::TlsHandshake | Mode::Http => {
            unreachable!("TLS servers are in net/tls/, HTTP servers in net/http/")
        }
    }
}

/// Reads and writes back what was read, until end of stream.
async fn echo(stream: &mut TcpStream, size: usize) {
    let mut buffer = touched_buffer(size);
    loop {
        let n = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// Reads and drops everything until end of stream; `true` if it got there without an error.
async fn discard(stream: &mut TcpStream, size: usize) -> bool {
    let mut buffer = touched_buffer(size);
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}
