//! Clean shutdown for the server examples: serve until SIGINT (Ctrl-C) or SIGTERM, then close
//! the listening sockets and the connections and return, so `main` returns and the runtime is
//! dropped: every I/O request still in the kernel is cancelled and drained, and the sockets
//! close while the process still runs.
//!
//! This matters on io_uring. A process killed by a signal it does not handle (or by
//! `kill -9`) leaves its ring to the kernel, which tears it down after the process is gone;
//! the requests still in flight (a listener's accept, a socket's receive) hold their sockets
//! until then, so the port stays bound for a little while and an immediate restart fails with
//! `EADDRINUSE`. On epoll the sockets close with the process.

use std::io;
use std::time::Duration;

use ringloop::signal::{self, Signals};
use ringloop::transport::Server;

/// How long connections get to flush and close before they are aborted.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Listening for SIGINT and SIGTERM. Create it before announcing the server, so a signal sent
/// as soon as the server is known is handled, not fatal.
pub struct Stop(Signals);

impl Stop {
    /// Starts listening (blocks both signals in this loop thread: see `ringloop::signal`).
    pub fn new() -> io::Result<Stop> {
        Ok(Stop(Signals::new([libc::SIGINT, libc::SIGTERM])?))
    }

    /// Waits for SIGINT or SIGTERM and says which arrived.
    pub async fn wait(mut self) -> io::Result<()> {
        let sig = self.0.recv().await?;
        println!("{}: shutting down", signal::name(sig));
        Ok(())
    }
}

/// Closes `server`: its listeners first (the port is free once `wait_closed` returns), then
/// its connections, flushed and closed, or aborted after [`CLOSE_GRACE`].
pub async fn close_server(server: &Server) {
    server.close();
    server.close_clients();
    if ringloop::time::timeout(CLOSE_GRACE, server.wait_closed())
        .await
        .is_err()
    {
        server.abort_clients();
        server.wait_closed().await;
    }
}

/// Announces `server` as `what` and serves until SIGINT or SIGTERM, then closes it (see
/// [`close_server`]) and returns.
pub async fn serve_until_stopped(server: &Server, what: &str) -> io::Result<()> {
    let stop = Stop::new()?;
    println!("{what} on {}", server.local_addrs()[0]);
    stop.wait().await?;
    close_server(server).await;
    Ok(())
}
