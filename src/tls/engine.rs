//! The TLS engine as a memory BIO (asyncio's `sslproto` shape): ciphertext goes in as chunks
//! the socket received, plaintext comes out into the caller's buffer, and ciphertext to send
//! comes out as owned bytes. Nothing here does I/O; [`TlsStream`](super::TlsStream) and the
//! TLS transport drive it.

use std::io::{self, Read as _, Write as _};
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
}

impl Engine {
    pub(crate) fn new(conn: Connection) -> Engine {
        Engine {
            conn,
            pending: None,
            eof: false,
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
        self.conn.process_new_packets().map(|_| ())
    }

    /// Feeds what is left of the pending chunk, as far as the engine's plaintext buffer
    /// allows: it stops while decrypted plaintext waits for the application.
    pub(crate) fn process_pending(&mut self) -> Result<(), rustls::Error> {
        while let Some((chunk, at)) = &mut self.pending {
            let mut rest = &chunk[*at..];
            match self.conn.read_tls(&mut rest) {
                Ok(n) => *at += n,
                // Its plaintext buffer is full: the application reads first.
                Err(_) => break,
            }
            let state = self.conn.process_new_packets()?;
            if *at == chunk.len() {
                self.pending = None;
            }
            if state.plaintext_bytes_to_read() > 0 {
                break;
            }
        }
        Ok(())
    }

    /// Copies decrypted plaintext into the spare capacity of `buf`.
    pub(crate) fn read_plain<B: IoBufMut>(&mut self, buf: &mut B) -> io::Result<Plain> {
        if buf.bytes_init() == buf.bytes_total() {
            return Ok(Plain::Data(0));
        }
        match self.available()? {
            0 => self.no_plaintext(),
            n => buf::fill_with(buf, n, |dst| self.conn.reader().read(dst)).map(Plain::Data),
        }
    }

    /// Copies decrypted plaintext into `dst`.
    pub(crate) fn read_plain_slice(&mut self, dst: &mut [u8]) -> io::Result<Plain> {
        if dst.is_empty() {
            return Ok(Plain::Data(0));
        }
        match self.available()? {
            0 => self.no_plaintext(),
            _ => self.conn.reader().read(dst).map(Plain::Data),
        }
    }

    /// How many decrypted bytes wait.
    fn available(&mut self) -> io::Result<usize> {
        let state = self
            .conn
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, super::TlsError::new(e)))?;
        Ok(state.plaintext_bytes_to_read())
    }

    /// With nothing decrypted: whether the stream ended, cleanly or not, or more is needed.
    fn no_plaintext(&mut self) -> io::Result<Plain> {
        match self.conn.reader().into_first_chunk() {
            Ok(_) => Ok(Plain::Eof),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Plain::WouldBlock),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(truncated()),
            Err(e) => Err(e),
        }
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
