//! The TLS engine as a memory BIO (asyncio's `sslproto` shape): ciphertext goes in as chunks
//! the socket received, plaintext comes out into the caller's buffer, and ciphertext to send
//! comes out as owned bytes. Nothing here does I/O; [`TlsStream`](super::TlsStream) and the
//! TLS transport drive it.

use std::io::{self, BufRead as _, Write as _};
use std::ops::Deref;

use rustls::Connection;

use crate::buf::{self, IoBufMut, RingBuf};

/// A received ciphertext chunk the engine could not take whole (its plaintext buffer was
/// full): the rest waits here until the application reads.
pub(crate) enum Chunk {
    /// Received by the multishot receive into the loop's buffer ring.
    Ring(RingBuf),
    /// Received by a plain read (bytes a dropped read of the socket left behind).
    Owned(Vec<u8>),
}

impl Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Chunk::Ring(b) => b,
            Chunk::Owned(v) => v,
        }
    }
}

/// What a plaintext read found.
pub(crate) enum Plain {
    /// This many bytes were copied into the caller's buffer.
    Data(usize),
    /// Nothing yet: feed more ciphertext.
    WouldBlock,
    /// The peer sent close_notify: a clean end of the stream.
    Eof,
}

/// One TLS connection's state machine and the ciphertext it has not consumed yet.
pub(crate) struct Engine {
    conn: Connection,
    /// The unconsumed rest of a received chunk, and where it starts.
    pending: Option<(Chunk, usize)>,
    /// The socket reached end of file (the engine was told).
    eof: bool,
    /// The engine failed (a bad record, a failed handshake): every later call reports it.
    failed: Option<rustls::Error>,
}

impl Engine {
    pub(crate) fn new(conn: Connection) -> Engine {
        Engine {
            conn,
            pending: None,
            eof: false,
            failed: None,
        }
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether more ciphertext can be fed now: nothing left over from the last chunk, and the
    /// socket has not ended.
    pub(crate) fn wants_chunk(&self) -> bool {
        self.pending.is_none() && !self.eof
    }

    /// Bytes received before the engine existed (a connection upgraded by STARTTLS): fed
    /// before anything the socket receives next.
    pub(crate) fn preload(&mut self, bytes: Vec<u8>) {
        debug_assert!(self.pending.is_none());
        if !bytes.is_empty() {
            self.pending = Some((Chunk::Owned(bytes), 0));
        }
    }

    /// Feeds a received chunk (the engine keeps what it cannot take yet).
    pub(crate) fn feed(&mut self, chunk: Chunk) -> Result<(), rustls::Error> {
        debug_assert!(self.pending.is_none());
        if !chunk.is_empty() {
            self.pending = Some((chunk, 0));
        }
        self.process_pending()
    }

    /// Tells the engine the socket reached end of file.
    pub(crate) fn feed_eof(&mut self) -> Result<(), rustls::Error> {
        self.eof = true;
        // An empty read is how rustls learns of end of file.
        let _ = self.conn.read_tls(&mut io::empty());
        match self.conn.process_new_packets() {
            Ok(_) => Ok(()),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Feeds what is left of the pending chunk, as far as the engine's buffers allow: as
    /// many reads of it as the engine takes, then one pass over the records they completed;
    /// it stops while decrypted plaintext waits for the application.
    pub(crate) fn process_pending(&mut self) -> Result<(), rustls::Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        while let Some((chunk, at)) = &mut self.pending {
            let before = *at;
            while *at < chunk.len() {
                let mut rest = &chunk[*at..];
                match self.conn.read_tls(&mut rest) {
                    Ok(0) => break,
                    Ok(n) => *at += n,
                    // Its buffers are full: process what it has, or wait for the reader.
                    Err(_) => break,
                }
            }
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    self.failed = Some(e.clone());
                    return Err(e);
                }
            };
            let (done, progressed) = (*at == chunk.len(), *at != before);
            if done {
                self.pending = None;
            }
            if state.plaintext_bytes_to_read() > 0 || !progressed {
                break;
            }
        }
        Ok(())
    }

    /// Copies decrypted plaintext into the spare capacity of `buf` (straight from the
    /// engine's buffer: nothing is zeroed or copied twice).
    pub(crate) fn read_plain<B: IoBufMut>(&mut self, buf: &mut B) -> io::Result<Plain> {
        self.read_with(buf.bytes_total() - buf.bytes_init(), |plain| {
            buf::fill_from(buf, plain)
        })
    }

    /// Copies decrypted plaintext into `dst`.
    pub(crate) fn read_plain_slice(&mut self, dst: &mut [u8]) -> io::Result<Plain> {
        let mut filled = 0;
        self.read_with(dst.len(), |plain| {
            let n = plain.len().min(dst.len() - filled);
            dst[filled..filled + n].copy_from_slice(&plain[..n]);
            filled += n;
            n
        })
    }

    /// Appends up to `max` bytes of decrypted plaintext to `out` (which grows by what there
    /// is, not by `max`).
    pub(crate) fn read_plain_vec(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<Plain> {
        let start = out.len();
        self.read_with(max, |plain| {
            let n = plain.len().min(max - (out.len() - start));
            out.extend_from_slice(&plain[..n]);
            n
        })
    }

    /// Hands the engine's plaintext to `take` chunk by chunk (it returns how much it took)
    /// until `room` bytes were taken or none is left; says what the stream holds otherwise.
    fn read_with(
        &mut self,
        room: usize,
        mut take: impl FnMut(&[u8]) -> usize,
    ) -> io::Result<Plain> {
        if room == 0 {
            return Ok(Plain::Data(0));
        }
        let mut taken = 0;
        let mut reader = self.conn.reader();
        while taken < room {
            let n = match reader.fill_buf() {
                Ok([]) => break,
                Ok(plain) => take(plain),
                Err(_) if taken > 0 => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return match &self.failed {
                        // A bad record ended the stream: say so to every later read.
                        Some(e) => Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            super::TlsError::new(e.clone()),
                        )),
                        None => Ok(Plain::WouldBlock),
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(truncated()),
                Err(e) => return Err(e),
            };
            reader.consume(n);
            taken += n;
        }
        // `fill_buf` gives an empty chunk only at the clean end (close_notify).
        Ok(if taken > 0 {
            Plain::Data(taken)
        } else {
            Plain::Eof
        })
    }

    /// The server name a client asked for (SNI), on the server side.
    pub(crate) fn sni(&self) -> Option<String> {
        match &self.conn {
            Connection::Server(s) => s.server_name().map(str::to_owned),
            Connection::Client(_) => None,
        }
    }

    /// Encrypts as much of `data` as the engine buffers; returns how much.
    pub(crate) fn write_plain(&mut self, data: &[u8]) -> io::Result<usize> {
        self.conn.writer().write(data)
    }

    /// Queues close_notify (sent by the next [`take_ciphertext`](Self::take_ciphertext)).
    pub(crate) fn close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    /// Whether ciphertext waits to be sent.
    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Appends every ciphertext byte waiting to be sent to `out`.
    pub(crate) fn take_ciphertext(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            if self.conn.write_tls(out).is_err() {
                break;
            }
        }
    }
}

/// The error for a peer that closed the connection without close_notify.
pub(crate) fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the peer closed the connection without a TLS close_notify (the data may be truncated)",
    )
}
