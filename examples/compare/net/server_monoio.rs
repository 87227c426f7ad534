//! The monoio server: io_uring driver, `monoio::net`, one task per connection, owned-buffer
//! reads and `write_all` reusing one buffer per connection (as the ringloop server does).

use super::control::{DONE, HELLO};
use super::server::{BACKLOG, LOOPBACK, announce, finish, snapshot_line, touched_buffer};
use super::spec::{Mode, ServerSpec};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{ListenerOpts, TcpListener, TcpStream};
use monoio::{IoUringDriver, RuntimeBuilder};

// Owned-buffer writes take `'static` buffers.
const HELLO_BYTE: &[u8] = &[HELLO];
const DONE_BYTE: &[u8] = &[DONE];

/// Serves `spec` on monoio's io_uring driver; returns only on error.
pub fn serve(spec: ServerSpec) -> Result<(), String> {
    let mut runtime = RuntimeBuilder::<IoUringDriver>::new()
        .enable_timer()
        .build()
        .map_err(|e| format!("monoio (io_uring driver) failed to build: {e}"))?;
    runtime.block_on(async {
        let options = ListenerOpts::new().reuse_port(false).backlog(BACKLOG);
        let listener = TcpListener::bind_with_config(LOOPBACK, &options)
            .map_err(|e| format!("bind {LOOPBACK}: {e}"))?;
        announce(listener.local_addr().map_err(|e| e.to_string())?)?;
        let (mut control, _) = listener
            .accept()
            .await
            .map_err(|e| format!("accepting the control connection: {e}"))?;
        monoio::spawn(accept_all(listener, spec));
        loop {
            let (read, _) = control.read(Vec::with_capacity(1)).await;
            match read {
                Ok(0) => finish(),
                Ok(_) => {}
                Err(e) => return Err(format!("control connection: {e}")),
            }
            // monoio does not count its kernel entries: none to report.
            let (wrote, _) = control.write_all(snapshot_line(None)?).await;
            wrote.map_err(|e| format!("control connection: {e}"))?;
        }
    })
}

/// Accepts the data connections and starts a task for each.
async fn accept_all(listener: TcpListener, spec: ServerSpec) {
    for _ in 0..spec.accepts() {
        let (stream, _) = listener.accept().await.expect("accept failed");
        stream.set_nodelay(true).expect("TCP_NODELAY failed");
        monoio::spawn(connection(stream, spec));
    }
}

/// One data connection, from hello to the client's end of stream. An I/O error ends it
/// quietly: the client sees the connection close and reports the failure.
async fn connection(mut stream: TcpStream, spec: ServerSpec) {
    let (hello, _) = stream.write_all(HELLO_BYTE).await;
    if hello.is_err() {
        return;
    }
    match spec.mode {
        // An idle connection is an echo connection whose client never writes.
        Mode::Echo | Mode::Idle => echo(&mut stream, spec.buffer).await,
        Mode::Discard => {
            if discard(&mut stream, spec.buffer).await {
                let _ = stream.write_all(DONE_BYTE).await;
            }
        }
        Mode::TlsEcho | Mode::TlsDiscard | Mode::TlsHandshake | Mode::Http => {
            unreachable!("TLS servers are in net/tls/, HTTP servers in net/http/")
        }
    }
}

/// Reads and writes back what was read, until end of stream. (monoio reads into the start of
/// a `Vec` and sets its length, so there is nothing to clear between reads.)
async fn echo(stream: &mut TcpStream, size: usize) {
    let mut buffer = touched_buffer(size);
    loop {
        let (read, returned) = stream.read(buffer).await;
        buffer = returned;
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let (wrote, returned) = stream.write_all(buffer).await;
        buffer = returned;
        if wrote.is_err() {
            return;
        }
    }
}

/// Reads and drops everything until end of stream; `true` if it got there without an error.
async fn discard(stream: &mut TcpStream, size: usize) -> bool {
    let mut buffer = touched_buffer(size);
    loop {
        let (read, returned) = stream.read(buffer).await;
        buffer = returned;
        match read {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}
