//! The ringloop TLS server: `ringloop::tls::TlsAcceptor` over `ringloop::net`, one task per
//! connection, as a ringloop user would write it. `TlsStream` receives ciphertext with the
//! socket's multishot receive into the loop's buffer ring and decrypts into the task's
//! plaintext buffer, which an echo writes back as it is.

use crate::net::control::{DONE, HELLO};
use crate::net::server_ringloop::serve_with;
use crate::net::spec::{Mode, ServerSpec};
use ringloop::net::{TcpListener, TcpStream};
use ringloop::tls::{ServerConfig, TlsAcceptor, TlsStream};
use ringloop::{Backend, spawn};
use std::sync::Arc;

// Owned-buffer writes take `'static` buffers.
const HELLO_BYTE: &[u8] = &[HELLO];
const DONE_BYTE: &[u8] = &[DONE];

/// Serves `spec` over TLS on a ringloop runtime forced onto `backend`; returns only on error.
pub fn serve(backend: Backend, spec: ServerSpec, config: Arc<ServerConfig>) -> Result<(), String> {
    let acceptor = TlsAcceptor::new(config);
    serve_with(backend, move |listener| {
        Ok(accept_all(listener, spec, acceptor))
    })
}

/// Accepts the data connections and starts a task for each.
async fn accept_all(listener: TcpListener, spec: ServerSpec, acceptor: TlsAcceptor) {
    let mut incoming = listener.incoming();
    for _ in 0..spec.accepts() {
        let stream = incoming.next().await.expect("accept failed");
        stream.set_nodelay(true).expect("TCP_NODELAY failed");
        spawn(connection(stream, spec, acceptor.clone()));
    }
}

/// One data connection, from the handshake to the client's close_notify. A failure ends it
/// quietly: the client sees the connection close and reports it.
async fn connection(stream: TcpStream, spec: ServerSpec, acceptor: TlsAcceptor) {
    let Ok(tls) = acceptor.accept(stream).await else {
        return;
    };
    let (hello, _) = tls.write_all(HELLO_BYTE).await;
    if hello.is_err() {
        return;
    }
    let buffer = Vec::with_capacity(spec.buffer);
    match spec.mode {
        Mode::TlsEcho => echo(&tls, buffer).await,
        Mode::TlsDiscard => {
            if discard(&tls, buffer).await {
                let _ = tls.write_all(DONE_BYTE).await;
            }
        }
        Mode::TlsHandshake => {
            discard(&tls, buffer).await;
        }
        other => unreachable!("not a TLS mode: {other:?}"),
    }
}

/// Reads plaintext and writes back what was read, until the end of the stream.
async fn echo(tls: &TlsStream<TcpStream>, mut buffer: Vec<u8>) {
    loop {
        buffer.clear();
        let (read, returned) = tls.read(buffer).await;
        buffer = returned;
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let (wrote, returned) = tls.write_all(buffer).await;
        buffer = returned;
        if wrote.is_err() {
            return;
        }
    }
}

/// Reads and drops plaintext until the end of the stream; `true` if it got there cleanly (the
/// client's close_notify).
async fn discard(tls: &TlsStream<TcpStream>, mut buffer: Vec<u8>) -> bool {
    loop {
        buffer.clear();
        let (read, returned) = tls.read(buffer).await;
        buffer = returned;
        match read {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}
