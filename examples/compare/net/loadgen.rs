//! The load generator: one thread, the same for every server runtime.
//!
//! Echo is a bare edge-triggered epoll loop over non-blocking std sockets ([`ping_pong`]):
//! each connection has one message in flight; when its echo is back in full, the next one goes
//! out. That is the least a client can do per request, so the server is the side being
//! measured. HTTP (`http/loadgen.rs`) runs the same loop with a request and a parsed response
//! in place of the message and its echo. Streaming is a blocking `write_all` loop on one
//! socket.

use super::child::PATIENCE;
use super::os::Epoll;
use crate::workload::Latency;
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
    /// Percentiles of the requests' latencies, where asked for.
    pub latency: Option<Latency>,
}

impl Done {
    /// `units` done in `elapsed`, latency not measured.
    pub fn new(elapsed: Duration, units: u64) -> Done {
        Done {
            elapsed,
            units,
            latency: None,
        }
    }
}

/// One connection's side of a request-answer protocol, driven by [`ping_pong`]: one request
/// in flight at a time.
pub trait Exchange {
    /// The non-blocking socket.
    fn stream(&self) -> &TcpStream;
    /// Starts the next request: writes what the socket takes of it.
    fn begin(&mut self) -> io::Result<()>;
    /// Writes what the socket takes of the rest of the request, reads what has arrived of
    /// the answer; `true` once the whole answer is in. `scratch` is shared by every
    /// connection, for bytes read and dropped at once.
    fn advance(&mut self, scratch: &mut [u8]) -> io::Result<bool>;
}

/// Runs requests on every connection until `window` has passed, each connection sending its
/// next request as soon as the answer to the last one is in; then lets each connection finish
/// the request it has in flight, so the server did all the work counted. With `latency`, the
/// time from each request's start to its whole answer is recorded and summarized (the same
/// clock readings the loop takes anyway: no extra cost per request).
pub fn ping_pong<E: Exchange>(
    conns: &mut [E],
    scratch: &mut [u8],
    window: Duration,
    latency: bool,
) -> io::Result<Done> {
    let epoll = Epoll::new()?;
    let start = Instant::now();
    let deadline = start + window;
    let mut sent_at = vec![start; conns.len()];
    let mut latencies = Vec::new();
    for (key, conn) in conns.iter_mut().enumerate() {
        let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLET) as u32;
        epoll.add(conn.stream().as_raw_fd(), events, key as u64)?;
        conn.begin()?;
    }
    // A connection whose last answer came after the deadline has nothing in flight.
    let mut finished = vec![false; conns.len()];
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
                format!("no answer for {PATIENCE:?}, {in_flight} requests in flight"),
            ));
        }
        for event in &events[..ready] {
            let key = event.u64 as usize;
            if finished[key] || !conns[key].advance(scratch)? {
                continue;
            }
            completed += 1;
            last_progress = Instant::now();
            if latency {
                latencies.push(last_progress - sent_at[key]);
                sent_at[key] = last_progress;
            }
            if last_progress < deadline {
                conns[key].begin()?;
            } else {
                finished[key] = true;
                in_flight -= 1;
            }
        }
    }
    Ok(Done {
        elapsed: start.elapsed(),
        units: completed,
        latency: Latency::of(&mut latencies),
    })
}

/// One echo connection's progress on its message in flight.
struct Echoing<'a> {
    stream: &'a TcpStream,
    message: &'a [u8],
    /// Bytes of the message not yet written.
    unsent: usize,
    /// Bytes of the echo not yet read.
    unread: usize,
}

impl Exchange for Echoing<'_> {
    fn stream(&self) -> &TcpStream {
        self.stream
    }

    fn begin(&mut self) -> io::Result<()> {
        self.unsent = self.message.len();
        self.unread = self.message.len();
        send(self.stream, self.message, &mut self.unsent)
    }

    fn advance(&mut self, scratch: &mut [u8]) -> io::Result<bool> {
        send(self.stream, self.message, &mut self.unsent)?;
        self.receive(scratch)?;
        Ok(self.unread == 0)
    }
}

impl Echoing<'_> {
    /// Reads what has arrived of the echo (never past it: nothing else is in flight).
    fn receive(&mut self, scratch: &mut [u8]) -> io::Result<()> {
        while self.unread > 0 {
            match (&*self.stream).read(&mut scratch[..self.unread]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed a connection mid-echo",
                    ));
                }
                Ok(n) => self.unread -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Ping-pong of `msg`-byte messages on every connection until `window` has passed (see
/// [`ping_pong`]). The streams must be non-blocking.
pub fn echo(conns: &[TcpStream], msg: usize, window: Duration) -> Result<Done, String> {
    let message = vec![0x5Au8; msg];
    let mut scratch = vec![0u8; msg];
    let mut states: Vec<Echoing> = conns
        .iter()
        .map(|stream| Echoing {
            stream,
            message: &message,
            unsent: 0,
            unread: 0,
        })
        .collect();
    ping_pong(&mut states, &mut scratch, window, false)
        .map_err(|e| format!("echo load generator: {e}"))
}

/// Writes what the socket takes of the last `unsent` bytes of `message`.
pub fn send(mut stream: &TcpStream, message: &[u8], unsent: &mut usize) -> io::Result<()> {
    while *unsent > 0 {
        match stream.write(&message[message.len() - *unsent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *unsent -= n,
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
    Ok(Done::new(start.elapsed(), chunks))
}
