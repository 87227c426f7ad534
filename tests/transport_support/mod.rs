//! Helpers shared by the `transport_*` tests: a [`Recorder`] protocol that logs every callback,
//! an [`Echo`] server protocol, and small waits.
//!
//! Each test file uses a subset, hence `dead_code` is allowed.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use ringloop::transport::{DatagramProtocol, DatagramTransport, Protocol, Transport};

/// How long one transport test may run before its watchdog aborts the process.
pub const TEST_LIMIT: Duration = Duration::from_secs(30);

/// `127.0.0.1:0`: loopback, any free port.
pub fn any_loopback_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// `len` bytes of a pattern that does not repeat every power of two.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// One protocol callback, as a [`Recorder`] logs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Callback {
    Made,
    /// `data_received`, with how many bytes.
    Data(usize),
    Eof,
    /// `connection_lost`, with the error's kind.
    Lost(Option<ErrorKind>),
    PauseWriting,
    ResumeWriting,
}

/// A protocol that logs its callbacks and keeps what it receives. Optionally echoes, and
/// answers `eof_received` with `keep_open`.
#[derive(Debug, Default)]
pub struct Recorder {
    pub transport: Option<Transport>,
    pub log: Vec<Callback>,
    pub received: Vec<u8>,
    pub echo: bool,
    pub keep_open: bool,
    /// Written (then the transport closed) on the first `data_received`.
    pub reply: Option<Vec<u8>>,
    /// Set while a callback runs: a nested callback would find it set and panic.
    pub in_callback: bool,
}

impl Recorder {
    /// A recorder that echoes what it receives.
    pub fn echoing() -> Recorder {
        Recorder {
            echo: true,
            ..Recorder::default()
        }
    }

    /// Whether `connection_lost` was called.
    pub fn lost(&self) -> bool {
        self.log.iter().any(|c| matches!(c, Callback::Lost(_)))
    }

    /// The error kind `connection_lost` got (outer `None`: not called yet).
    pub fn lost_with(&self) -> Option<Option<ErrorKind>> {
        self.log.iter().find_map(|c| match c {
            Callback::Lost(kind) => Some(*kind),
            _ => None,
        })
    }

    /// How many times `cb` was logged.
    pub fn count(&self, cb: &Callback) -> usize {
        self.log.iter().filter(|c| *c == cb).count()
    }

    fn enter(&mut self, cb: Callback) {
        assert!(!self.in_callback, "callback {cb:?} re-entered the protocol");
        assert!(!self.lost(), "callback {cb:?} after connection_lost");
        self.in_callback = true;
        self.log.push(cb);
    }

    fn leave(&mut self) {
        self.in_callback = false;
    }
}

impl Protocol for Recorder {
    fn connection_made(&mut self, transport: Transport) {
        self.enter(Callback::Made);
        self.transport = Some(transport);
        self.leave();
    }
    fn data_received(&mut self, data: &[u8]) {
        self.enter(Callback::Data(data.len()));
        self.received.extend_from_slice(data);
        if self.echo {
            self.transport
                .as_ref()
                .unwrap()
                .write(data)
                .expect("echo write");
        }
        if let Some(reply) = self.reply.take() {
            let t = self.transport.as_ref().unwrap();
            t.write(&reply).expect("reply write");
            t.close();
        }
        self.leave();
    }
    fn eof_received(&mut self) -> bool {
        self.enter(Callback::Eof);
        self.leave();
        self.keep_open
    }
    fn connection_lost(&mut self, err: Option<std::io::Error>) {
        self.enter(Callback::Lost(err.map(|e| e.kind())));
        self.leave();
    }
    fn pause_writing(&mut self) {
        self.enter(Callback::PauseWriting);
        self.leave();
    }
    fn resume_writing(&mut self) {
        self.enter(Callback::ResumeWriting);
        self.leave();
    }
}

/// A `Recorder` also records datagram endpoints: `Made`, `Data(len)` per datagram, and `Lost`.
impl Recorder {
    /// A recorder for a datagram endpoint.
    pub fn datagram() -> Recorder {
        Recorder::default()
    }
}

impl DatagramProtocol for Recorder {
    fn connection_made(&mut self, _transport: DatagramTransport) {
        self.enter(Callback::Made);
        self.leave();
    }
    fn datagram_received(&mut self, data: &[u8], _addr: std::net::SocketAddr) {
        self.enter(Callback::Data(data.len()));
        self.received.extend_from_slice(data);
        self.leave();
    }
    fn connection_lost(&mut self, err: Option<std::io::Error>) {
        self.enter(Callback::Lost(err.map(|e| e.kind())));
        self.leave();
    }
}

/// A protocol shared with the test: the factory hands out clones of one `Rc`, so the test sees
/// every server-side connection's recorder.
#[derive(Clone, Default)]
pub struct Shared(pub Rc<RefCell<Vec<Rc<RefCell<Recorder>>>>>);

impl Shared {
    /// Registers a new recorder (built by `make`) and returns a protocol forwarding to it.
    pub fn add(&self, make: impl FnOnce() -> Recorder) -> Forward {
        let recorder = Rc::new(RefCell::new(make()));
        self.0.borrow_mut().push(Rc::clone(&recorder));
        Forward(recorder)
    }

    /// The recorder of the `i`th connection.
    pub fn get(&self, i: usize) -> Rc<RefCell<Recorder>> {
        Rc::clone(&self.0.borrow()[i])
    }

    /// Connections seen so far.
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }
}

/// A protocol that forwards every callback to a shared [`Recorder`].
pub struct Forward(pub Rc<RefCell<Recorder>>);

impl Protocol for Forward {
    fn connection_made(&mut self, transport: Transport) {
        Protocol::connection_made(&mut *self.0.borrow_mut(), transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        Protocol::data_received(&mut *self.0.borrow_mut(), data);
    }
    fn eof_received(&mut self) -> bool {
        Protocol::eof_received(&mut *self.0.borrow_mut())
    }
    fn connection_lost(&mut self, err: Option<std::io::Error>) {
        Protocol::connection_lost(&mut *self.0.borrow_mut(), err);
    }
    fn pause_writing(&mut self) {
        Protocol::pause_writing(&mut *self.0.borrow_mut());
    }
    fn resume_writing(&mut self) {
        Protocol::resume_writing(&mut *self.0.borrow_mut());
    }
}

/// Waits (bounded, on the loop's clock) until `cond` holds; panics naming `what` otherwise.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting until {what}"
        );
        ringloop::time::sleep(Duration::from_millis(1)).await;
    }
}
