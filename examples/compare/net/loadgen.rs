//! The load generator: one thread, the same for every server runtime.
//!
//! Echo is a bare edge-triggered epoll loop over non-blocking std sockets: each connection has
//! one message in flight; when its echo is back in full, the next one goes out. That is the
//! least a client can do per request, so the server is the side being measured. Streaming is
//! a blocking `write_all` loop on one socket.

use super::child::PATIENCE;
use super::os::Epoll;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// What a timed run of the load generator did.
#[derive(Clone, Copy, Debug)]
pub struct Done {
    /// From the first byte sent to the last byte of the answer received.
    pub elapsed: Duration,
    /// Requests (echo round trips) or chunks (stream) completed.
    pub units: u64,
}

/// One echo connection's progress on its message in flight.
struct Echoing<'a> {
    stream: &'a TcpStream,
    /// Bytes of the message not yet written.
    unsent: usize,
    /// Bytes of the echo not yet read.
    unread: usize,
}

/// Ping-pong on every connection until `window` has passed; then lets each connection finish
/// the message it has in flight, so the server did all the work counted. The streams must be
/// non-blocking.
pub fn echo(conns: &[TcpStream], msg: usize, window: Duration) -> Result<Done, String> {
    echo_inner(conns, msg, window).map_err(|e| format!("echo load generator: {e}"))
}

fn echo_inner(conns: &[TcpStream], msg: usize, window: Duration) -> io::Result<Done> {
    let epoll = Epoll::new()?;
    let message = vec![0x5Au8; msg];
    let mut scratch = vec![0u8; msg];
    let mut states: Vec<Echoing> = Vec::with_capacity(conns.len());
    let start = Instant::now();
    let deadline = start + window;
    for (key, stream) in conns.iter().enumerate() {
        let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLET) as u32;
        epoll.add(stream.as_raw_fd(), events, key as u64)?;
        let mut state = Echoing {
            stream,
            unsent: msg,
            unread: msg,
        };
        send(&mut state, &message)?;
        states.push(state);
    }
    let mut in_flight = conns.len();
    let mut completed = 0u64;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; conns.len().clamp(1, 1024)];
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
            let state = &mut states[event.u64 as usize];
            if state.unread == 0 {
                continue; // finished after the window: nothing more to do here
            }
            send(state, &message)?;
            receive(state, &mut scratch)?;
            if state.unread > 0 {
                continue;
            }
            completed += 1;
            last_progress = Instant::now();
            if last_progress < deadline {
                state.unsent = msg;
                state.unread = msg;
                send(state, &message)?;
            } else {
                in_flight -= 1;
            }
        }
    }
    Ok(Done {
        elapsed: start.elapsed(),
        units: completed,
    })
}

/// Writes what the socket takes of the rest of the message.
fn send(state: &mut Echoing, message: &[u8]) -> io::Result<()> {
    while state.unsent > 0 {
        match state.stream.write(&message[message.len() - state.unsent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => state.unsent -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads what has arrived of the echo (never past it: nothing else is in flight).
fn receive(state: &mut Echoing, scratch: &mut [u8]) -> io::Result<()> {
    while state.unread > 0 {
        match state.stream.read(&mut scratch[..state.unread]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed a connection mid-echo",
                ));
            }
            Ok(n) => state.unread -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `chunk`-byte blocks on `stream` (blocking) until `window` has passed, then closes
/// the writing side and waits for the server's `DONE`: it has read every byte.
pub fn stream(stream: &TcpStream, chunk: usize, window: Duration) -> Result<Done, String> {
    stream_inner(stream, chunk, window).map_err(|e| format!("stream load generator: {e}"))
}

fn stream_inner(mut stream: &TcpStream, chunk: usize, window: Duration) -> io::Result<Done> {
    let block = vec![0x5Au8; chunk];
    let start = Instant::now();
    let mut chunks = 0u64;
    while start.elapsed() < window {
        stream.write_all(&block)?;
        chunks += 1;
    }
    stream.shutdown(Shutdown::Write)?;
    let mut done = [0u8; 1];
    stream.read_exact(&mut done)?;
    if done[0] != super::control::DONE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected DONE from the server, got {:#04x}", done[0]),
        ));
    }
    Ok(Done {
        elapsed: start.elapsed(),
        units: chunks,
    })
}
