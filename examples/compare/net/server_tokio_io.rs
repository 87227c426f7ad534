//! The ringloop echo server written against tokio's I/O traits: ringloop's `TcpStream` through
//! its `tokio-io` impls (`tokio::io::AsyncRead`/`AsyncWrite`), with tokio's `AsyncReadExt::read`
//! into one reused buffer and `AsyncWriteExt::write_all`, as tokio's own server does. Set next
//! to the native server (multishot receive into a `BufRing`, owned-buffer writes) in the same
//! run, it shows what code written for tokio's traits costs on ringloop.

use super::control::HELLO;
use super::server::touched_buffer;
use super::server_ringloop::serve_with;
use super::spec::{Mode, ServerSpec};
use ringloop::net::{TcpListener, TcpStream};
use ringloop::{Backend, spawn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `spec` (echo only) on a ringloop runtime forced onto `backend`; returns only on
/// error.
pub fn serve(backend: Backend, spec: ServerSpec) -> Result<(), String> {
    if spec.mode != Mode::Echo {
        return Err(format!(
            "the tokio-io server only echoes, not {:?}",
            spec.mode
        ));
    }
    serve_with(backend, move |listener| Ok(accept_all(listener, spec)))
}

/// Accepts the data connections and starts a task for each.
async fn accept_all(listener: TcpListener, spec: ServerSpec) {
    let mut incoming = listener.incoming();
    for _ in 0..spec.accepts() {
        let stream = incoming.next().await.expect("accept failed");
        stream.set_nodelay(true).expect("TCP_NODELAY failed");
        spawn(echo(stream, spec.buffer));
    }
}

/// Hello, then reads and writes back what was read until end of stream; an I/O error ends the
/// connection quietly (the client reports it).
///
/// The trait methods are called by their path: `TcpStream`'s own (owned-buffer) `read` and
/// `write_all` take precedence over the extension traits' in method-call syntax.
async fn echo(mut stream: TcpStream, size: usize) {
    if AsyncWriteExt::write_all(&mut stream, &[HELLO])
        .await
        .is_err()
    {
        return;
    }
    let mut buffer = touched_buffer(size);
    loop {
        let n = match AsyncReadExt::read(&mut stream, &mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if AsyncWriteExt::write_all(&mut stream, &buffer[..n])
            .await
            .is_err()
        {
            return;
        }
    }
}
