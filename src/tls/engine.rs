//! The TLS engine as a memory BIO (asyncio's `sslproto` shape) over rustls's unbuffered
//! API: ciphertext goes in as the chunks the socket received, plaintext comes out into the
//! caller's buffer, and ciphertext to send comes out as owned bytes. Nothing here does I/O;
//! [`TlsStream`](super::TlsStream) and the TLS transport drive it.
//!
//! # Where ciphertext is decrypted
//!
//! rustls is handed a received chunk as it is — the ring buffer the kernel wrote — and
//! decrypts every whole record in it in place: nothing is copied into an engine buffer
//! first. A record the chunk ends in the middle of is copied into `carry` and completed from
//! the next chunk with only the bytes that complete it; the rest of that chunk is again
//! decrypted in place. (rustls 0.23 then moves each record's plaintext into a buffer of its
//! own, which a read copies into the caller's buffer.)
//!
//! rustls asks that the bytes it has not discarded stay at the front of the buffer it is
//! given next (a handshake message split over records is kept there until complete): the
//! engine always hands it `carry` when that holds anything, else the rest of the chunk, so
//! what it kept is always where it left it.

use std::io;
use std::ops::{Deref, DerefMut};

use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError, ReadTraffic,
    UnbufferedStatus, WriteTraffic,
};

use super::sni::{self, Sni};
use crate::buf::{self, IoBufMut, RingBuf};

/// A TLS record's header: type, version, length.
const HEADER: usize = 5;
/// The largest record length rustls accepts (it rejects a header declaring more).
const MAX_RECORD: usize = 16_384 + 2048;
/// Room reserved per record when encrypting: header, content type, tag, explicit nonce.
const RECORD_OVERHEAD: usize = 64;

/// A received ciphertext chunk.
pub(crate) enum Chunk {
    /// Received by the multishot receive into the loop's buffer ring.
    Ring(RingBuf),
    /// Received by a plain read (bytes a dropped read of the socket left behind), or before
    /// the engine existed (STARTTLS).
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

impl DerefMut for Chunk {
    fn deref_mut(&mut self) -> &mut [u8] {
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

/// The connection: rustls's client or server state machine.
pub(crate) enum Conn {
    Client(UnbufferedClientConnection),
    Server(UnbufferedServerConnection),
}

impl From<UnbufferedClientConnection> for Conn {
    fn from(conn: UnbufferedClientConnection) -> Conn {
        Conn::Client(conn)
    }
}

impl From<UnbufferedServerConnection> for Conn {
    fn from(conn: UnbufferedServerConnection) -> Conn {
        Conn::Server(conn)
    }
}

/// Why a run of the state machine stopped.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    /// It needs more ciphertext (the handshake waits, or every whole record was processed).
    Input,
    /// Decrypted plaintext waits for a reader (feeding stops here: it is the backpressure).
    Plaintext,
    /// The reader's buffer is full.
    Full,
    /// The write was encrypted: this many plaintext bytes.
    Wrote(usize),
    /// close_notify was queued.
    CloseQueued,
    /// Both sides sent close_notify: nothing more can be written.
    Closed,
}

/// What a run is for.
enum Mode<'a> {
    /// Process received ciphertext; stop where plaintext waits.
    Feed,
    /// Hand plaintext to a reader.
    Read(&'a mut dyn Reader),
    /// Encrypt this plaintext (plaintext decrypted on the way is kept for the reader).
    Write(&'a [u8]),
    /// Queue close_notify.
    Close,
}

/// Where a read puts plaintext.
trait Reader {
    /// Bytes it can still take.
    fn room(&self) -> usize;
    /// Takes what fits of `plain`; returns how much.
    fn put(&mut self, plain: &[u8]) -> usize;
}

/// What one step of the state machine did.
enum Step {
    Continue,
    /// No whole record left in the buffer it was given.
    Starved,
    Stop(Stop),
}

/// The fields a step writes to, apart from the buffer rustls is reading.
struct Io<'a> {
    out: &'a mut Vec<u8>,
    stash: &'a mut Vec<u8>,
    peer_closed: &'a mut bool,
}

/// One TLS connection's state machine and the ciphertext it has not consumed yet.
pub(crate) struct Engine {
    conn: Conn,
    /// The chunk being processed in place, and where its unprocessed bytes start.
    input: Option<(Chunk, usize)>,
    /// Ciphertext rustls kept or that a chunk ended in the middle of (see the module docs).
    carry: Vec<u8>,
    /// `carry` holds no whole record rustls can use: it needs bytes from the next chunk.
    starved: bool,
    /// Plaintext decrypted while no reader could take it (a record bigger than the reader's
    /// buffer, or records decrypted on the way to encrypting a write), from `stash_at`.
    stash: Vec<u8>,
    stash_at: usize,
    /// Ciphertext to send.
    out: Vec<u8>,
    /// The peer sent close_notify.
    peer_closed: bool,
    /// The socket reached end of file (the engine was told).
    eof: bool,
    /// The engine failed (a bad record, a failed handshake): every later call reports it.
    failed: Option<rustls::Error>,
    /// The server name the client asked for (server side), once read from its hello.
    sni: Option<String>,
    /// The server still looks for the client's server name.
    sni_wanted: bool,
}

impl Engine {
    pub(crate) fn new(conn: Conn) -> Engine {
        let sni_wanted = matches!(conn, Conn::Server(_));
        let mut engine = Engine {
            conn,
            input: None,
            carry: Vec::new(),
            starved: false,
            stash: Vec::new(),
            stash_at: 0,
            out: Vec::new(),
            peer_closed: false,
            eof: false,
            failed: None,
            sni: None,
            sni_wanted,
        };
        // A client's hello goes out before anything is received.
        let _ = engine.run(&mut Mode::Feed);
        engine
    }

    /// What the handshake negotiated and who the peer is.
    pub(crate) fn common(&self) -> &rustls::CommonState {
        match &self.conn {
            Conn::Client(c) => c,
            Conn::Server(s) => s,
        }
    }

    pub(crate) fn is_client(&self) -> bool {
        matches!(self.conn, Conn::Client(_))
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.common().is_handshaking()
    }

    /// Whether more ciphertext can be fed now: what was fed is all processed (or waits for
    /// more bytes), and the socket has not ended.
    pub(crate) fn wants_chunk(&self) -> bool {
        self.input.is_none() && (self.carry.is_empty() || self.starved) && !self.eof
    }

    /// Bytes received before the engine existed (a connection upgraded by STARTTLS): fed
    /// before anything the socket receives next.
    pub(crate) fn preload(&mut self, bytes: Vec<u8>) {
        debug_assert!(self.input.is_none());
        if !bytes.is_empty() {
            self.input = Some((Chunk::Owned(bytes), 0));
        }
    }

    /// Feeds a received chunk (the engine keeps what it does not process yet).
    pub(crate) fn feed(&mut self, chunk: Chunk) -> Result<(), rustls::Error> {
        debug_assert!(self.input.is_none());
        if !chunk.is_empty() {
            self.input = Some((chunk, 0));
        }
        self.process_pending()
    }

    /// Tells the engine the socket reached end of file.
    pub(crate) fn feed_eof(&mut self) -> Result<(), rustls::Error> {
        self.eof = true;
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Processes what was fed, until it is all processed or plaintext waits for a reader.
    pub(crate) fn process_pending(&mut self) -> Result<(), rustls::Error> {
        self.run(&mut Mode::Feed).map(drop)
    }

    /// Copies decrypted plaintext into the spare capacity of `buf` (nothing is zeroed).
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

    /// Hands plaintext to `take` (it returns how much it took) until `room` bytes were taken
    /// or none is left; says what the stream holds otherwise.
    fn read_with(&mut self, room: usize, take: impl FnMut(&[u8]) -> usize) -> io::Result<Plain> {
        if room == 0 {
            return Ok(Plain::Data(0));
        }
        let mut reader = Taker {
            take,
            room,
            taken: 0,
        };
        if self.stash_at < self.stash.len() {
            let n = reader.put(&self.stash[self.stash_at..]);
            self.stash_at += n;
            if self.stash_at == self.stash.len() {
                self.stash.clear();
                self.stash_at = 0;
            }
        }
        let mut failed = None;
        if reader.room() > 0
            && self.stash.is_empty()
            && let Err(e) = self.run(&mut Mode::Read(&mut reader))
        {
            failed = Some(e);
        }
        if reader.taken > 0 {
            return Ok(Plain::Data(reader.taken));
        }
        if self.peer_closed {
            return Ok(Plain::Eof);
        }
        if let Some(e) = failed.or_else(|| self.failed.clone()) {
            // A bad record ended the stream: say so to every later read.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                super::TlsError::new(e),
            ));
        }
        if self.eof {
            return Err(truncated());
        }
        Ok(Plain::WouldBlock)
    }

    /// The server name a client asked for (SNI), on the server side.
    pub(crate) fn sni(&self) -> Option<String> {
        self.sni.clone()
    }

    /// Encrypts `data` (all of it: callers bound its size) into the ciphertext to send.
    pub(crate) fn write_plain(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        match self.run(&mut Mode::Write(data)) {
            Ok(Stop::Wrote(n)) => Ok(n),
            Ok(Stop::Closed) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "TLS connection closed: both sides sent close_notify",
            )),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "TLS connection: the handshake is not complete",
            )),
            Err(e) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                super::TlsError::new(e),
            )),
        }
    }

    /// Queues close_notify (sent by the next [`take_ciphertext`](Self::take_ciphertext)); a
    /// connection still in its handshake, closed or failed has none to send.
    pub(crate) fn close_notify(&mut self) {
        let _ = self.run(&mut Mode::Close);
    }

    /// Whether ciphertext waits to be sent.
    pub(crate) fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }

    /// Moves every ciphertext byte waiting to be sent to the end of `out`.
    pub(crate) fn take_ciphertext(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() {
            std::mem::swap(out, &mut self.out);
        } else {
            out.extend_from_slice(&self.out);
        }
        self.out.clear();
    }

    /// Runs the state machine over the ciphertext fed so far, for `mode`.
    fn run(&mut self, mode: &mut Mode<'_>) -> Result<Stop, rustls::Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        loop {
            if self.starved && top_up(&mut self.carry, &mut self.input) {
                self.starved = false;
            }
            let in_carry = !self.carry.is_empty();
            let Engine {
                conn,
                input,
                carry,
                stash,
                out,
                peer_closed,
                sni,
                sni_wanted,
                ..
            } = self;
            let buf: &mut [u8] = match input {
                _ if in_carry => carry,
                Some((chunk, at)) => &mut chunk[*at..],
                None => &mut [],
            };
            if *sni_wanted {
                match sni::server_name(buf) {
                    Sni::Incomplete => {}
                    Sni::Name(name) => {
                        *sni = Some(name);
                        *sni_wanted = false;
                    }
                    Sni::None => *sni_wanted = false,
                }
            }
            let mut io = Io {
                out,
                stash,
                peer_closed,
            };
            let (discard, step) = match conn {
                Conn::Client(c) => step(c.process_tls_records(buf), &mut io, mode),
                Conn::Server(s) => step(s.process_tls_records(buf), &mut io, mode),
            };
            self.discard(in_carry, discard);
            match step {
                Ok(Step::Continue) => {}
                Ok(Step::Stop(stop)) => return Ok(stop),
                Ok(Step::Starved) => {
                    if let Some(stop) = self.starved_at(in_carry) {
                        return Ok(stop);
                    }
                }
                Err(e) => {
                    self.fail(&e);
                    return Err(e);
                }
            }
        }
    }

    /// Removes `n` processed bytes from the front of the buffer rustls was given.
    fn discard(&mut self, in_carry: bool, n: usize) {
        if n == 0 {
            return;
        }
        if in_carry {
            self.carry.drain(..n);
            if self.carry.is_empty() {
                self.starved = false;
            }
        } else if let Some((_, at)) = &mut self.input {
            *at += n;
        }
    }

    /// The buffer rustls was given holds no whole record it can use: move on to the next
    /// bytes, or say that more must be received.
    fn starved_at(&mut self, in_carry: bool) -> Option<Stop> {
        if in_carry {
            if self.carry.is_empty() {
                // rustls used all of it: go on with the chunk in place.
                return self.input.is_none().then_some(Stop::Input);
            }
            self.starved = true;
            if self.input.as_ref().is_some_and(|(c, at)| *at < c.len()) {
                return None;
            }
            self.input = None;
            return Some(Stop::Input);
        }
        // The chunk's tail is the start of a record: it waits in `carry` for the rest, and
        // the ring buffer goes back to the kernel.
        if let Some((chunk, at)) = self.input.take()
            && at < chunk.len()
        {
            self.carry.extend_from_slice(&chunk[at..]);
            self.starved = true;
        }
        Some(Stop::Input)
    }

    /// Records a failure and queues the alert rustls prepared saying why.
    fn fail(&mut self, e: &rustls::Error) {
        self.failed = Some(e.clone());
        // rustls queued its fatal alert: the next step hands it over before looking at the
        // buffer again. One step only: a second would process the bad bytes again.
        let in_carry = !self.carry.is_empty();
        let buf: &mut [u8] = match &mut self.input {
            _ if in_carry => &mut self.carry,
            Some((chunk, at)) => &mut chunk[*at..],
            None => &mut [],
        };
        match &mut self.conn {
            Conn::Client(c) => encode_alert(c.process_tls_records(buf), &mut self.out),
            Conn::Server(s) => encode_alert(s.process_tls_records(buf), &mut self.out),
        }
    }
}

/// Handles one state rustls reached; returns the bytes to discard and what happened.
fn step<Data>(
    status: UnbufferedStatus<'_, '_, Data>,
    io: &mut Io<'_>,
    mode: &mut Mode<'_>,
) -> (usize, Result<Step, rustls::Error>) {
    let mut discard = status.discard;
    let step = match status.state {
        Err(e) => Err(e),
        Ok(ConnectionState::ReadTraffic(mut traffic)) => {
            read_records(&mut traffic, io, mode, &mut discard)
        }
        Ok(ConnectionState::EncodeTlsData(mut data)) => {
            encode(&mut data, io.out).map(|()| Step::Continue)
        }
        Ok(ConnectionState::TransmitTlsData(data)) => {
            // The bytes are queued in `out`, which goes out in order before anything
            // encoded later.
            data.done();
            Ok(Step::Continue)
        }
        Ok(ConnectionState::BlockedHandshake) => Ok(Step::Starved),
        Ok(ConnectionState::WriteTraffic(mut traffic)) => write_traffic(&mut traffic, io, mode),
        Ok(ConnectionState::PeerClosed) => {
            *io.peer_closed = true;
            Ok(Step::Continue)
        }
        Ok(ConnectionState::Closed) => {
            *io.peer_closed = true;
            Ok(match mode {
                Mode::Feed | Mode::Read(_) => Step::Starved,
                Mode::Write(_) | Mode::Close => Step::Stop(Stop::Closed),
            })
        }
        Ok(_) => Err(rustls::Error::General(
            "TLS early data (0-RTT) is not supported: set the ServerConfig's \
             max_early_data_size to 0"
                .to_owned(),
        )),
    };
    (discard, step)
}

/// Application data arrived: hand it to the reader, keep it for one, or stash it.
fn read_records<Data>(
    traffic: &mut ReadTraffic<'_, '_, Data>,
    io: &mut Io<'_>,
    mode: &mut Mode<'_>,
    discard: &mut usize,
) -> Result<Step, rustls::Error> {
    match mode {
        // Left with rustls until a reader comes.
        Mode::Feed => Ok(Step::Stop(Stop::Plaintext)),
        Mode::Read(reader) => {
            while reader.room() > 0 {
                let Some(record) = traffic.next_record() else {
                    return Ok(Step::Continue);
                };
                let record = record?;
                *discard += record.discard;
                let n = reader.put(record.payload);
                io.stash.extend_from_slice(&record.payload[n..]);
            }
            Ok(Step::Stop(Stop::Full))
        }
        // On the way to encrypting: kept, in order, for the next read.
        Mode::Write(_) | Mode::Close => {
            while let Some(record) = traffic.next_record() {
                let record = record?;
                *discard += record.discard;
                io.stash.extend_from_slice(record.payload);
            }
            Ok(Step::Continue)
        }
    }
}

/// The handshake is done and nothing else waits: encrypt, queue close_notify, or starve.
fn write_traffic<Data>(
    traffic: &mut WriteTraffic<'_, Data>,
    io: &mut Io<'_>,
    mode: &mut Mode<'_>,
) -> Result<Step, rustls::Error> {
    match mode {
        Mode::Feed | Mode::Read(_) => Ok(Step::Starved),
        Mode::Write(data) => {
            let records = data.len() / 16_384 + 1;
            let estimate = data.len() + records * RECORD_OVERHEAD;
            fill_with(io.out, estimate, |dst| traffic.encrypt(data, dst)).map_err(encrypt_err)?;
            Ok(Step::Stop(Stop::Wrote(data.len())))
        }
        Mode::Close => {
            fill_with(io.out, RECORD_OVERHEAD, |dst| {
                traffic.queue_close_notify(dst)
            })
            .map_err(encrypt_err)?;
            Ok(Step::Stop(Stop::CloseQueued))
        }
    }
}

/// Appends what `write` puts into a slice of `out` (first `estimate` bytes long, longer if
/// it asks for more).
fn fill_with(
    out: &mut Vec<u8>,
    estimate: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
) -> Result<(), EncryptError> {
    let len = out.len();
    out.resize(len + estimate, 0);
    let res = match write(&mut out[len..]) {
        Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
            out.resize(len + required_size, 0);
            write(&mut out[len..])
        }
        other => other,
    };
    match res {
        Ok(n) => {
            out.truncate(len + n);
            Ok(())
        }
        Err(e) => {
            out.truncate(len);
            Err(e)
        }
    }
}

/// Appends a handshake record (or alert) rustls encoded.
fn encode<Data>(
    data: &mut EncodeTlsData<'_, Data>,
    out: &mut Vec<u8>,
) -> Result<(), rustls::Error> {
    let len = out.len();
    let required = match data.encode(&mut []) {
        Ok(_) => return Ok(()),
        Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
            required_size
        }
        Err(e) => return Err(rustls::Error::General(format!("TLS encoding failed: {e}"))),
    };
    out.resize(len + required, 0);
    match data.encode(&mut out[len..]) {
        Ok(n) => {
            out.truncate(len + n);
            Ok(())
        }
        Err(e) => {
            out.truncate(len);
            Err(rustls::Error::General(format!("TLS encoding failed: {e}")))
        }
    }
}

/// After a failure: appends the alert rustls queued, if this step is it.
fn encode_alert<Data>(status: UnbufferedStatus<'_, '_, Data>, out: &mut Vec<u8>) {
    if let Ok(ConnectionState::EncodeTlsData(mut data)) = status.state {
        let _ = encode(&mut data, out);
    }
}

fn encrypt_err(e: EncryptError) -> rustls::Error {
    match e {
        EncryptError::EncryptExhausted => rustls::Error::EncryptError,
        other => rustls::Error::General(format!("TLS encryption failed: {other}")),
    }
}

/// How many more bytes `buf` needs before its last record is whole: 0 when it ends at a
/// record boundary, or when a record's header declares more than rustls accepts (rustls
/// rejects the header as it is).
fn missing(buf: &[u8]) -> usize {
    let mut at = 0;
    loop {
        let rest = buf.len() - at;
        if rest == 0 {
            return 0;
        }
        if rest < HEADER {
            return HEADER - rest;
        }
        let len = usize::from(u16::from_be_bytes([buf[at + 3], buf[at + 4]]));
        if len > MAX_RECORD {
            return 0;
        }
        if rest < HEADER + len {
            return HEADER + len - rest;
        }
        at += HEADER + len;
    }
}

/// Moves into `carry` the bytes of the current chunk that complete the record `carry` ends
/// in the middle of — or, when `carry` holds only whole records rustls keeps (a handshake
/// message split over records), the next record. Whether anything moved.
fn top_up(carry: &mut Vec<u8>, input: &mut Option<(Chunk, usize)>) -> bool {
    let Some((chunk, at)) = input else {
        return false;
    };
    let mut moved = false;
    loop {
        let avail = &chunk[*at..];
        if avail.is_empty() {
            break;
        }
        let want = match missing(carry) {
            0 if moved => break,
            // A new record: its header first.
            0 => HEADER,
            n => n,
        };
        let n = want.min(avail.len());
        carry.extend_from_slice(&avail[..n]);
        *at += n;
        moved = true;
    }
    if *at == chunk.len() {
        *input = None;
    }
    moved
}

/// A reader over a closure that takes plaintext.
struct Taker<F> {
    take: F,
    room: usize,
    taken: usize,
}

impl<F: FnMut(&[u8]) -> usize> Reader for Taker<F> {
    fn room(&self) -> usize {
        self.room - self.taken
    }

    fn put(&mut self, plain: &[u8]) -> usize {
        let n = (self.take)(plain);
        self.taken += n;
        n
    }
}

/// The error for a peer that closed the connection without close_notify.
pub(crate) fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the peer closed the connection without a TLS close_notify (the data may be truncated)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A small deterministic generator (the tests need no crate for it).
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// A client and a server engine for "localhost", on `version`.
    fn pair(version: &'static rustls::SupportedProtocolVersion) -> (Engine, Engine) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let der = cert.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
        let provider = crate::tls::provider();
        let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let client = UnbufferedClientConnection::new(Arc::new(client), name).unwrap();
        let server = UnbufferedServerConnection::new(Arc::new(server)).unwrap();
        (Engine::new(client.into()), Engine::new(server.into()))
    }

    /// Moves what `from` has to send into `to`, in chunks of random sizes (each fed only
    /// when `to` wants one, as a socket would deliver them).
    fn transfer(from: &mut Engine, to: &mut Engine, wire: &mut Vec<u8>, rng: &mut Rng, max: usize) {
        from.take_ciphertext(wire);
        while !wire.is_empty() && to.wants_chunk() {
            let n = (1 + rng.below(max)).min(wire.len());
            let chunk: Vec<u8> = wire.drain(..n).collect();
            to.feed(Chunk::Owned(chunk)).unwrap();
        }
    }

    /// Handshakes `client` and `server` through chunks of at most `max` bytes.
    fn handshake(client: &mut Engine, server: &mut Engine, rng: &mut Rng, max: usize) {
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for _ in 0..10_000 {
            if !client.is_handshaking() && !server.is_handshaking() && up.is_empty() {
                return;
            }
            transfer(client, server, &mut up, rng, max);
            transfer(server, client, &mut down, rng, max);
        }
        panic!("the handshake did not finish");
    }

    /// Sends `len` numbered bytes from `from` to `to` in writes and reads of random sizes
    /// and chunks of at most `max` bytes; checks every byte.
    fn stream(from: &mut Engine, to: &mut Engine, len: usize, rng: &mut Rng, max: usize) {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let (mut sent, mut wire, mut got) = (0, Vec::new(), Vec::new());
        while got.len() < len {
            if sent < len {
                let n = (1 + rng.below(40_000)).min(len - sent);
                assert_eq!(from.write_plain(&data[sent..sent + n]).unwrap(), n);
                sent += n;
            }
            from.take_ciphertext(&mut wire);
            loop {
                let mut buf = Vec::with_capacity(1 + rng.below(70_000));
                match to.read_plain(&mut buf).unwrap() {
                    Plain::Data(n) => {
                        assert_eq!(n, buf.len());
                        got.extend_from_slice(&buf);
                    }
                    Plain::WouldBlock => {
                        if wire.is_empty() {
                            break;
                        }
                        let n = (1 + rng.below(max)).min(wire.len());
                        let chunk: Vec<u8> = wire.drain(..n).collect();
                        if to.wants_chunk() {
                            to.feed(Chunk::Owned(chunk)).unwrap();
                        } else {
                            to.process_pending().unwrap();
                            wire.splice(0..0, chunk);
                        }
                    }
                    Plain::Eof => panic!("end of stream before the data"),
                }
            }
        }
        assert!(got == data, "the bytes differ");
    }

    #[test]
    fn random_chunks_and_reads_carry_every_byte() {
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            for (seed, max) in [(1, 1), (2, 7), (3, 300), (4, 16_384), (5, 70_000)] {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
                let (mut client, mut server) = pair(version);
                handshake(&mut client, &mut server, &mut rng, max);
                let len = if max < 10 { 50_000 } else { 700_000 };
                stream(&mut client, &mut server, len, &mut rng, max);
                stream(&mut server, &mut client, len, &mut rng, max);
            }
        }
    }

    #[test]
    fn close_notify_is_a_clean_end_and_eof_without_it_is_truncation() {
        let mut rng = Rng(7);
        let (mut client, mut server) = pair(&rustls::version::TLS13);
        handshake(&mut client, &mut server, &mut rng, 1000);
        client.write_plain(b"last words").unwrap();
        client.close_notify();
        let mut wire = Vec::new();
        client.take_ciphertext(&mut wire);
        // Three bytes at a time, as the reader asks for them.
        let mut buf = Vec::with_capacity(64);
        let end = loop {
            match server.read_plain(&mut buf).unwrap() {
                Plain::WouldBlock if server.wants_chunk() => {
                    let n = wire.len().min(3);
                    server
                        .feed(Chunk::Owned(wire.drain(..n).collect()))
                        .unwrap();
                }
                Plain::WouldBlock => server.process_pending().unwrap(),
                Plain::Data(_) => {}
                Plain::Eof => break buf,
            }
        };
        assert_eq!(end, b"last words");
        assert!(wire.is_empty());

        let (mut client, mut server) = pair(&rustls::version::TLS13);
        handshake(&mut client, &mut server, &mut rng, 1000);
        client.write_plain(b"cut short").unwrap();
        let mut wire = Vec::new();
        client.take_ciphertext(&mut wire);
        wire.truncate(wire.len() - 3);
        server.feed(Chunk::Owned(wire)).unwrap();
        server.feed_eof().unwrap();
        let mut buf = Vec::with_capacity(64);
        let err = server
            .read_plain(&mut buf)
            .err()
            .expect("truncation is an error");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_record_with_a_flipped_bit_fails_and_queues_an_alert() {
        let mut rng = Rng(11);
        let (mut client, mut server) = pair(&rustls::version::TLS13);
        handshake(&mut client, &mut server, &mut rng, 1000);
        client.write_plain(&[7; 3000]).unwrap();
        let mut wire = Vec::new();
        client.take_ciphertext(&mut wire);
        wire[100] ^= 1;
        assert!(server.feed(Chunk::Owned(wire)).is_err());
        let mut buf = Vec::with_capacity(4096);
        let err = server
            .read_plain(&mut buf)
            .err()
            .expect("a bad record is an error");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(server.wants_write(), "the alert waits to be sent");
        // Every later read says so too.
        assert!(server.read_plain(&mut buf).is_err());
    }

    #[test]
    fn missing_counts_what_completes_the_last_record() {
        assert_eq!(missing(&[]), 0);
        assert_eq!(missing(&[23, 3, 3]), 2);
        assert_eq!(missing(&[23, 3, 3, 0, 10, 1, 2]), 8);
        assert_eq!(missing(&[23, 3, 3, 0, 2, 1, 2]), 0);
        assert_eq!(missing(&[23, 3, 3, 0, 2, 1, 2, 23]), 4);
        // A header declaring more than rustls accepts is left for rustls to reject.
        assert_eq!(missing(&[23, 3, 3, 0xff, 0xff]), 0);
    }
}
