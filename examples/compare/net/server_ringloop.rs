//! The ringloop server: `ringloop::net`, one task per connection, owned-buffer reads and
//! writes reusing one buffer per connection.

use super::control::{DONE, HELLO};
use super::server::{BACKLOG, LOOPBACK, announce, finish, snapshot_line, touched_buffer};
use super::spec::{Mode, ServerSpec};
use ringloop::net::{ListenOptions, TcpListener, TcpStream};
use ringloop::{Backend, Runtime, spawn};

// Owned-buffer writes take `'static` buffers.
const HELLO_BYTE: &[u8] = &[HELLO];
const DONE_BYTE: &[u8] = &[DONE];

/// Serves `spec` on a ringloop runtime forced onto `backend`; returns only on error.
pub fn serve(backend: Backend, spec: ServerSpec) -> Result<(), String> {
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
        spawn(accept_all(listener, spec, backend));
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
async fn accept_all(listener: TcpListener, spec: ServerSpec, backend: Backend) {
    for _ in 0..spec.conns {
        let (stream, _) = listener.accept().await.expect("accept failed");
        stream.set_nodelay(true).expect("TCP_NODELAY failed");
        spawn(connection(stream, spec, backend));
    }
}

/// One data connection, from hello to the client's end of stream. An I/O error ends it
/// quietly: the client sees the connection close and reports the failure.
async fn connection(stream: TcpStream, spec: ServerSpec, backend: Backend) {
    let (hello, _) = stream.write_all(HELLO_BYTE).await;
    if hello.is_err() {
        return;
    }
    match (spec.mode, backend) {
        (Mode::Echo, _) => echo(&stream, spec.buffer).await,
        (Mode::Discard, _) => {
            if discard(&stream, spec.buffer).await {
                let _ = stream.write_all(DONE_BYTE).await;
            }
        }
        (Mode::Idle, Backend::IoUring) => idle_connection_io_uring(&stream, spec.buffer).await,
        (Mode::Idle, _) => echo(&stream, spec.buffer).await,
    }
}

// ---------------------------------------------------------------------------------------------
// LEAD: the ringloop/io_uring idle server. This is the one function to change when the buffer
// ring lands: replace the owned 4 KiB Vec read with the buffer-ring recv, so an idle
// connection holds no buffer while its read is pending. `idle_rss/N` on ringloop-io_uring then
// shows the saving next to ringloop-epoll and tokio, which keep their 4 KiB read.
// ---------------------------------------------------------------------------------------------
/// An idle connection on io_uring: a read pending in the kernel until the client closes.
async fn idle_connection_io_uring(stream: &TcpStream, buffer: usize) {
    echo(stream, buffer).await
}

/// Reads and writes back what was read, until end of stream.
async fn echo(stream: &TcpStream, size: usize) {
    let mut buffer = touched_buffer(size);
    loop {
        buffer.clear();
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
async fn discard(stream: &TcpStream, size: usize) -> bool {
    let mut buffer = touched_buffer(size);
    loop {
        buffer.clear();
        let (read, returned) = stream.read(buffer).await;
        buffer = returned;
        match read {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}
