//! The tokio TLS server: tokio-rustls on the current-thread runtime, one task per connection
//! with `read` into one reused buffer, `write_all` and `flush` (tokio-rustls may keep
//! ciphertext buffered until flushed).

use crate::net::control::{DONE, HELLO};
use crate::net::server::touched_buffer;
use crate::net::server_tokio::serve_with;
use crate::net::spec::{Mode, ServerSpec};
use ringloop::tls::ServerConfig;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Serves `spec` over TLS on a current-thread tokio runtime; returns only on error.
pub fn serve(spec: ServerSpec, config: Arc<ServerConfig>) -> Result<(), String> {
    let acceptor = TlsAcceptor::from(config);
    serve_with(move |listener| accept_all(listener, spec, acceptor))
}

/// Accepts the data connections and starts a task for each.
async fn accept_all(listener: TcpListener, spec: ServerSpec, acceptor: TlsAcceptor) {
    for _ in 0..spec.accepts() {
        let (stream, _) = listener.accept().await.expect("accept failed");
        stream.set_nodelay(true).expect("TCP_NODELAY failed");
        tokio::spawn(connection(stream, spec, acceptor.clone()));
    }
}

/// One data connection, from the handshake to the client's close_notify. A failure ends it
/// quietly: the client sees the connection close and reports it.
async fn connection(stream: TcpStream, spec: ServerSpec, acceptor: TlsAcceptor) {
    let Ok(mut tls) = acceptor.accept(stream).await else {
        return;
    };
    if send(&mut tls, &[HELLO]).await.is_err() {
        return;
    }
    match spec.mode {
        Mode::TlsEcho => echo(&mut tls, spec.buffer).await,
        Mode::TlsDiscard => {
            if discard(&mut tls, spec.buffer).await {
                let _ = send(&mut tls, &[DONE]).await;
            }
        }
        Mode::TlsHandshake => {
            discard(&mut tls, spec.buffer).await;
        }
        other => unreachable!("not a TLS mode: {other:?}"),
    }
}

/// Writes all of `data` and flushes it to the socket.
async fn send<S: AsyncWrite + Unpin>(tls: &mut S, data: &[u8]) -> std::io::Result<()> {
    tls.write_all(data).await?;
    tls.flush().await
}

/// Reads plaintext and writes back what was read, until the end of the stream.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(tls: &mut S, size: usize) {
    let mut buffer = touched_buffer(size);
    loop {
        let n = match tls.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if send(tls, &buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// Reads and drops plaintext until the end of the stream; `true` if it got there cleanly (the
/// client's close_notify).
async fn discard<S: AsyncRead + Unpin>(tls: &mut S, size: usize) -> bool {
    let mut buffer = touched_buffer(size);
    loop {
        match tls.read(&mut buffer).await {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}
