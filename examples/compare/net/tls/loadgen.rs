//! The TLS load generator: the plain one (`net/loadgen.rs`) with a rustls client on each
//! connection, the same for every server. Echo is the same edge-triggered epoll loop over
//! non-blocking sockets, rustls encrypting into and decrypting from its own buffers; streaming
//! is a blocking `write_all` loop through `rustls::Stream`; handshakes open one connection
//! after another, each handshaking, reading the server's hello and sending close_notify.

use super::SERVER_NAME;
use crate::net::child::PATIENCE;
use crate::net::control::{DONE, HELLO};
use crate::net::loadgen::Done;
use crate::net::os::Epoll;
use ringloop::tls::ClientConfig;
use ringloop::tls::rustls::{self, ClientConnection, pki_types::ServerName};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One TLS connection of the load generator.
pub struct TlsClient {
    conn: ClientConnection,
    sock: TcpStream,
}

impl TlsClient {
    /// Connects (blocking, with timeouts, `TCP_NODELAY`), runs the handshake and reads the
    /// server's hello through TLS: the server has finished its side of the handshake too.
    fn connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> io::Result<TlsClient> {
        let sock = TcpStream::connect(addr)?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(PATIENCE))?;
        sock.set_write_timeout(Some(PATIENCE))?;
        let name = ServerName::try_from(SERVER_NAME).map_err(io::Error::other)?;
        let conn = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
        let mut client = TlsClient { conn, sock };
        let mut hello = [0u8; 1];
        client.blocking().read_exact(&mut hello)?;
        if hello[0] != HELLO {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "no hello"));
        }
        Ok(client)
    }

    /// The connection as a blocking `Read + Write` of plaintext.
    fn blocking(&mut self) -> rustls::Stream<'_, ClientConnection, TcpStream> {
        rustls::Stream::new(&mut self.conn, &mut self.sock)
    }

    pub fn set_nonblocking(&self) -> Result<(), String> {
        self.sock
            .set_nonblocking(true)
            .map_err(|e| format!("set_nonblocking: {e}"))
    }

    /// Writes what the socket takes of the ciphertext rustls has ready.
    fn send(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads the socket until it would block (edge-triggered), decrypting as records
    /// complete; returns how much plaintext went into `dst` (never past it: nothing else is
    /// in flight).
    fn receive(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        let mut got = self.plaintext(dst)?;
        loop {
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => return Err(closed()),
                Ok(_) => {
                    self.conn
                        .process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    got += self.plaintext(&mut dst[got..])?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(got),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Copies decrypted plaintext into `dst`.
    fn plaintext(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        let mut got = 0;
        while got < dst.len() {
            match self.conn.reader().read(&mut dst[got..]) {
                Ok(0) => return Err(closed()),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    /// Sends close_notify (blocking): the server reads a clean end of the stream.
    fn close_notify(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.blocking().flush()
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed a connection mid-echo",
    )
}

/// Opens `count` TLS connections to `addr`, each past its handshake and the server's hello.
pub fn connect_all(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    count: usize,
) -> Result<Vec<TlsClient>, String> {
    (0..count)
        .map(|index| {
            TlsClient::connect(addr, config)
                .map_err(|e| format!("TLS connection {index} to {addr}: {e}"))
        })
        .collect()
}

/// Ping-pong on every connection until `window` has passed, then lets each connection finish
/// the message it has in flight (as the plain echo does). The sockets must be non-blocking.
pub fn echo(clients: &mut [TlsClient], msg: usize, window: Duration) -> Result<Done, String> {
    echo_inner(clients, msg, window).map_err(|e| format!("TLS echo load generator: {e}"))
}

fn echo_inner(clients: &mut [TlsClient], msg: usize, window: Duration) -> io::Result<Done> {
    let epoll = Epoll::new()?;
    let message = vec![0x5Au8; msg];
    let mut scratch = vec![0u8; msg];
    // Bytes of each connection's echo not yet read.
    let mut unread = vec![msg; clients.len()];
    let start = Instant::now();
    let deadline = start + window;
    for (key, client) in clients.iter_mut().enumerate() {
        let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLET) as u32;
        epoll.add(client.sock.as_raw_fd(), events, key as u64)?;
        client.conn.writer().write_all(&message)?;
        client.send()?;
    }
    let mut in_flight = clients.len();
    let mut completed = 0u64;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; clients.len().clamp(1, 1024)];
    let mut last_progress = Instant::now();
    while in_flight > 0 {
        let now = Instant::now();
        let wait = if now < deadline {
            deadline - now
        } else {
            PATIENCE
        };
        let ready = epoll.wait(&mut events, wait)?;
        if last_progress.elapsed() >= PATIENCE {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no echo for {PATIENCE:?}, {in_flight} requests in flight"),
            ));
        }
        for event in &events[..ready] {
            let key = event.u64 as usize;
            if unread[key] == 0 {
                continue; // finished after the window: nothing more to do here
            }
            let client = &mut clients[key];
            client.send()?;
            unread[key] -= client.receive(&mut scratch[..unread[key]])?;
            if unread[key] > 0 {
                continue;
            }
            completed += 1;
            last_progress = Instant::now();
            if last_progress < deadline {
                unread[key] = msg;
                client.conn.writer().write_all(&message)?;
                client.send()?;
            } else {
                in_flight -= 1;
            }
        }
    }
    Ok(Done::new(start.elapsed(), completed))
}

/// Writes `chunk`-byte blocks of plaintext (blocking) until `window` has passed, then sends
/// close_notify and waits for the server's `DONE`: it has read every byte.
pub fn stream(client: &mut TlsClient, chunk: usize, window: Duration) -> Result<Done, String> {
    stream_inner(client, chunk, window).map_err(|e| format!("TLS stream load generator: {e}"))
}

fn stream_inner(client: &mut TlsClient, chunk: usize, window: Duration) -> io::Result<Done> {
    let block = vec![0x5Au8; chunk];
    let start = Instant::now();
    let mut chunks = 0u64;
    while start.elapsed() < window {
        client.blocking().write_all(&block)?;
        chunks += 1;
    }
    client.close_notify()?;
    let mut done = [0u8; 1];
    client.blocking().read_exact(&mut done)?;
    if done[0] != DONE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected DONE from the server, got {:#04x}", done[0]),
        ));
    }
    Ok(Done::new(start.elapsed(), chunks))
}

/// Full handshakes one after another until `window` has passed: each connects, handshakes,
/// reads the server's hello and sends close_notify.
pub fn handshakes(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    window: Duration,
) -> Result<Done, String> {
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < window {
        TlsClient::connect(addr, config)
            .and_then(|mut client| client.close_notify())
            .map_err(|e| format!("TLS handshake {count}: {e}"))?;
        count += 1;
    }
    Ok(Done::new(start.elapsed(), count))
}
