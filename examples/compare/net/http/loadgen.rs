//! The HTTP/1.1 load generator: the echo rows' epoll loop ([`ping_pong`]) with a fixed
//! `GET /` as the request and one whole response, parsed just enough to know where it ends,
//! as the answer.

use super::BODY;
use crate::net::loadgen::{Done, Exchange, ping_pong, send};
use std::io::{self, Read};
use std::net::TcpStream;
use std::time::Duration;

/// Every request: keep-alive is HTTP/1.1's default, so the connection stays open.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Room for one response (about 90 bytes: status line, `content-length`, `date`, body).
const RESPONSE_ROOM: usize = 1024;

/// Requests on every connection (non-blocking) until `window` has passed, one in flight per
/// connection; with `latency`, each request's latency is recorded and summarized.
pub fn load(conns: &[TcpStream], window: Duration, latency: bool) -> Result<Done, String> {
    let mut states: Vec<Requesting> = conns
        .iter()
        .map(|stream| Requesting {
            stream,
            unsent: 0,
            response: vec![0; RESPONSE_ROOM],
            filled: 0,
        })
        .collect();
    ping_pong(&mut states, &mut [], window, latency)
        .map_err(|e| format!("HTTP load generator: {e}"))
}

/// One connection's progress on its request in flight.
struct Requesting<'a> {
    stream: &'a TcpStream,
    /// Bytes of [`REQUEST`] not yet written.
    unsent: usize,
    /// What has arrived of the response, in `response[..filled]`.
    response: Vec<u8>,
    filled: usize,
}

impl Exchange for Requesting<'_> {
    fn stream(&self) -> &TcpStream {
        self.stream
    }

    fn begin(&mut self) -> io::Result<()> {
        self.unsent = REQUEST.len();
        self.filled = 0;
        send(self.stream, REQUEST, &mut self.unsent)
    }

    fn advance(&mut self, _: &mut [u8]) -> io::Result<bool> {
        send(self.stream, REQUEST, &mut self.unsent)?;
        loop {
            if self.filled == self.response.len() {
                return Err(invalid(format!("a response over {RESPONSE_ROOM} bytes")));
            }
            match (&*self.stream).read(&mut self.response[self.filled..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed a connection mid-response",
                    ));
                }
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let received = &self.response[..self.filled];
            match response_len(received).map_err(invalid)? {
                Some(len) if len == received.len() => {
                    if !received.ends_with(BODY) {
                        return Err(invalid("a response without the expected body".into()));
                    }
                    return Ok(true);
                }
                // No pipelining: nothing may follow the response.
                Some(len) if len < received.len() => {
                    return Err(invalid(format!(
                        "{} bytes after a response",
                        received.len() - len
                    )));
                }
                _ => {}
            }
        }
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// The length of the response that `received` starts with, once its head is complete: the
/// head up to and with its blank line, plus `Content-Length`. `None` while the head is
/// incomplete; an error for anything but `200` with a `Content-Length`.
fn response_len(received: &[u8]) -> Result<Option<usize>, String> {
    let Some(head_end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&received[..head_end])
        .map_err(|_| "a response head that is not UTF-8".to_owned())?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200 ") {
        return Err(format!("unexpected status line {status:?}"));
    }
    let length = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .ok_or_else(|| "a response without Content-Length".to_owned())?
        .1
        .trim()
        .parse::<usize>()
        .map_err(|_| "a malformed Content-Length".to_owned())?;
    Ok(Some(head_end + 4 + length))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESPONSE: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\ndate: x\r\n\r\nHello, world!";

    #[test]
    fn a_response_ends_after_its_content_length() {
        assert_eq!(response_len(RESPONSE), Ok(Some(RESPONSE.len())));
        // Any split of the head is incomplete; from the blank line on, the length is known.
        let head = RESPONSE.len() - BODY.len();
        for end in 0..head {
            assert_eq!(response_len(&RESPONSE[..end]), Ok(None), "at {end}");
        }
        assert_eq!(response_len(&RESPONSE[..head]), Ok(Some(RESPONSE.len())));
        let lower = b"HTTP/1.1 200 OK\r\ncontent-length:0\r\n\r\n";
        assert_eq!(response_len(lower), Ok(Some(lower.len())));
    }

    #[test]
    fn other_statuses_and_missing_lengths_are_errors() {
        assert!(response_len(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").is_err());
        assert!(response_len(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(response_len(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
    }
}
