//! TLS over the proactor, with [rustls](https://docs.rs/rustls) and its *ring* crypto
//! provider (feature `tls`, on by default).
//!
//! A [`TlsConnector`] (client side, from a [`ClientConfig`]) or a [`TlsAcceptor`] (server
//! side, from a [`ServerConfig`]) runs the handshake over a connected
//! [`TcpStream`](crate::net::TcpStream) or [`UnixStream`](crate::net::UnixStream) and gives a
//! [`TlsStream`] with the plain streams' owned-buffer `read`/`write`/`write_all` plus
//! `shutdown` (close_notify) and the futures-io traits. Ciphertext arrives through the
//! socket's multishot receive into the loop's buffer ring and is fed to the engine as it
//! comes (asyncio's memory-BIO design): no extra read syscall, records decrypted in place in
//! the ring buffer the kernel filled (rustls's unbuffered API), plaintext copied into the
//! caller's buffer.
//!
//! # A server and a client
//!
//! ```
//! use std::sync::Arc;
//! use ringloop::net::{TcpListener, TcpStream};
//! use ringloop::tls::{self, TlsAcceptor, TlsConnector};
//!
//! # fn main() -> std::io::Result<()> {
//! // A self-signed certificate for "localhost" (a real server loads its PEM files with
//! // `tls::load_certs` and `tls::load_private_key`).
//! let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
//! let cert_der = cert.cert.der().clone();
//! let key_der = tls::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
//!
//! let acceptor = TlsAcceptor::new(Arc::new(tls::server_config(vec![cert_der.clone()], key_der)?));
//! let mut roots = tls::RootCertStore::empty();
//! roots.add(cert_der).unwrap();
//! let connector = TlsConnector::new(Arc::new(tls::client_config(roots)));
//!
//! ringloop::run(async move {
//!     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
//!     let addr = listener.local_addr()?;
//!     let server = ringloop::spawn(async move {
//!         let (tcp, _) = listener.accept().await?;
//!         let tls = acceptor.accept(tcp).await?;
//!         let (n, buf) = tls.read(Vec::with_capacity(64)).await;
//!         n?;
//!         tls.write_all(buf).await.0?; // echo
//!         tls.shutdown().await
//!     });
//!
//!     let tls = connector.connect("localhost", TcpStream::connect(addr).await?).await?;
//!     tls.write_all(&b"hello over TLS"[..]).await.0?;
//!     let (n, buf) = tls.read(Vec::with_capacity(64)).await;
//!     assert_eq!(&buf[..n?], b"hello over TLS");
//!     assert_eq!(tls.info().version, Some("TLSv1.3"));
//!     server.await.unwrap()
//! })
//! # }
//! ```
//!
//! # Certificates
//!
//! - A server's chain and key come from PEM files ([`load_certs`], [`load_private_key`]) or
//!   from DER bytes (rcgen, a secrets store) through [`CertificateDer`] and [`PrivateKeyDer`].
//! - A client trusts the system's roots ([`native_roots`], through `rustls-native-certs`:
//!   the platform's CA bundle, `SSL_CERT_FILE`/`SSL_CERT_DIR` honoured), or the CAs in a PEM
//!   file ([`roots_from_pem`]) — a private CA, a test certificate.
//! - [`client_config`] and [`server_config`] build configs with ringloop's provider and safe
//!   defaults (TLS 1.2 and 1.3); set fields such as `alpn_protocols` on them before wrapping
//!   them in an `Arc`. Anything rustls can configure works: the whole of rustls is re-exported
//!   as [`rustls`].
//!
//! # Errors
//!
//! A failure the TLS engine reports (a certificate not valid for the name, an unknown
//! issuer, an expired certificate, a peer speaking something else than TLS, a bad record) is
//! an [`InvalidData`](io::ErrorKind::InvalidData) error whose message says what was being
//! done, with whom, and why, and whose inner error is a [`TlsError`] carrying rustls's reason.
//! A handshake that does not finish within the handshake timeout (60 s by default, as
//! asyncio's) is a [`TimedOut`](io::ErrorKind::TimedOut) error. A peer that closes the
//! connection without close_notify makes a read fail with
//! [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) — distinguishable from the clean end of
//! the stream, `Ok(0)`, as asyncio distinguishes them.

mod engine;
mod sni;
mod stream;

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use rustls;
pub use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
pub use rustls::{ClientConfig, RootCertStore, ServerConfig};
pub use stream::{TlsSocket, TlsStream};

use rustls::pki_types::pem::PemObject as _;

/// How long a handshake may take unless configured: asyncio's `ssl_handshake_timeout`.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a closing handshake may take unless configured: asyncio's
/// `ssl_shutdown_timeout`.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// The crypto provider ringloop's configs use: rustls's *ring* provider, offering X25519
/// first for key exchange, then P-256 and P-384. It builds with the Rust toolchain and a C
/// compiler alone, in seconds (see the crate's Cargo.toml).
///
/// rustls 0.23.48 deprecates it for lacking post-quantum key exchange (X25519MLKEM768). To get
/// that, enable rustls's `aws_lc_rs` feature in your own Cargo.toml and build the config with
/// its provider: [`TlsConnector::new`] and [`TlsAcceptor::new`] take any rustls config.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    // Deprecated only for the missing post-quantum groups; see above.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    // X25519 first (ring's list starts with P-384, about three times slower per handshake
    // here), then the NIST curves for peers without it.
    use rustls::crypto::ring::kx_group;
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    Arc::new(provider)
}

/// A client config trusting `roots`, with ringloop's provider and rustls's safe default
/// protocol versions (TLS 1.2 and 1.3). Set `alpn_protocols` and other fields before
/// wrapping it in an `Arc` for a [`TlsConnector`].
pub fn client_config(roots: RootCertStore) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A server config presenting `chain` (end entity first) signed by `key`, with ringloop's
/// provider and the safe default protocol versions. Fails if the key does not match the
/// certificate or is of a kind the provider cannot sign with.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> io::Result<ServerConfig> {
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                TlsError::new(e).with_context("server certificate and key".to_owned()),
            )
        })
}

/// Every certificate in the PEM file at `path`, in order (a server's chain: end entity
/// first). An error names the file: unreadable, not PEM, or holding no certificate.
pub fn load_certs(path: impl AsRef<Path>) -> io::Result<Vec<CertificateDer<'static>>> {
    let path = path.as_ref();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, "certificates", e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, "certificates", e))?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no certificate in PEM file {}", path.display()),
        ));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 RSA or SEC1 EC) in the PEM file at `path`.
pub fn load_private_key(path: impl AsRef<Path>) -> io::Result<PrivateKeyDer<'static>> {
    let path = path.as_ref();
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, "a private key", e))
}

/// The certificate authorities in the PEM file at `path`, as roots a client trusts.
pub fn roots_from_pem(path: impl AsRef<Path>) -> io::Result<RootCertStore> {
    let path = path.as_ref();
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                TlsError::new(e).with_context(format!("a CA certificate in {}", path.display())),
            )
        })?;
    }
    Ok(roots)
}

/// The system's trusted roots (through `rustls-native-certs`). Fails only if none could be
/// loaded; certificates it cannot parse are skipped.
pub fn native_roots() -> io::Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (_added, _skipped) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = match found.errors.first() {
            Some(e) => e.to_string(),
            None => "the platform's store is empty".to_owned(),
        };
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no trusted root certificates found on this system: {why}"),
        ));
    }
    Ok(roots)
}

fn pem_error(path: &Path, what: &str, e: rustls::pki_types::pem::Error) -> io::Error {
    let kind = match &e {
        rustls::pki_types::pem::Error::Io(e) => e.kind(),
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(
        kind,
        format!("reading {what} from PEM file {}: {e}", path.display()),
    )
}

/// The client side: runs handshakes as a client of one config.
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    handshake_timeout: Duration,
    shutdown_timeout: Duration,
}

impl TlsConnector {
    /// A connector for `config`, with the default handshake timeout (60 s).
    pub fn new(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector {
            config,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// A connector trusting the system's roots ([`native_roots`]).
    pub fn with_native_roots() -> io::Result<TlsConnector> {
        Ok(TlsConnector::new(Arc::new(client_config(native_roots()?))))
    }

    /// Sets how long a handshake may take.
    pub fn handshake_timeout(mut self, timeout: Duration) -> TlsConnector {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets how long closing a stream (sending close_notify: `TlsStream::shutdown`, a TLS
    /// transport's `close` or `write_eof`) may take; 30 s by default, asyncio's
    /// `ssl_shutdown_timeout`.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> TlsConnector {
        self.shutdown_timeout = timeout;
        self
    }

    /// The config handshakes use.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Runs a client handshake over `stream`, asking for and verifying `server_name` (a DNS
    /// name, sent as SNI, or an IP address).
    pub async fn connect<S: TlsSocket>(
        &self,
        server_name: &str,
        stream: S,
    ) -> io::Result<TlsStream<S>> {
        self.connect_after(server_name, stream, Vec::new()).await
    }

    /// [`connect`](Self::connect) on a connection that already received `received` (a
    /// STARTTLS upgrade: the server's first handshake bytes may have arrived with the plain
    /// data).
    pub(crate) async fn connect_after<S: TlsSocket>(
        &self,
        server_name: &str,
        stream: S,
        received: Vec<u8>,
    ) -> io::Result<TlsStream<S>> {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "TLS server name {server_name:?} is neither a DNS name nor an IP address: {e}"
                ),
            )
        })?;
        let conn = rustls::client::UnbufferedClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    TlsError::new(e).with_context(format!("TLS client for {server_name:?}")),
                )
            })?;
        let stream = TlsStream::new(stream, conn.into(), Some(server_name.to_owned()), received);
        stream.set_shutdown_timeout(self.shutdown_timeout);
        handshake(stream, self.handshake_timeout, "with").await
    }
}

impl From<Arc<ClientConfig>> for TlsConnector {
    fn from(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector::new(config)
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

/// The server side: runs handshakes as the server of one config.
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
    shutdown_timeout: Duration,
    on_handshake_error: Option<HandshakeErrorHook>,
}

/// What a TLS server calls with each failed handshake.
type HandshakeErrorHook = Arc<dyn Fn(&io::Error) + Send + Sync>;

impl TlsAcceptor {
    /// An acceptor for `config`, with the default handshake timeout (60 s).
    pub fn new(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor {
            config,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            on_handshake_error: None,
        }
    }

    /// An acceptor presenting the chain in the PEM file `cert` with the key in `key`.
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<TlsAcceptor> {
        let config = server_config(load_certs(cert)?, load_private_key(key)?)?;
        Ok(TlsAcceptor::new(Arc::new(config)))
    }

    /// Sets how long a handshake may take.
    pub fn handshake_timeout(mut self, timeout: Duration) -> TlsAcceptor {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets how long closing a stream (sending close_notify: `TlsStream::shutdown`, a TLS
    /// transport's `close` or `write_eof`) may take; 30 s by default, asyncio's
    /// `ssl_shutdown_timeout`.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> TlsAcceptor {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sets what a TLS server ([`create_tls_server`](crate::transport::create_tls_server),
    /// [`start_tls_server`](crate::streams::start_tls_server) and their Unix variants) calls
    /// with each connection whose handshake fails — a client that does not speak TLS, an
    /// unknown certificate, the handshake timeout — before it closes that connection and goes
    /// on serving (asyncio reports these to the loop's exception handler). The error names the
    /// peer and the reason. Not called by [`accept`](Self::accept), which returns the error.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    /// # let key = ringloop::tls::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    /// # let config = std::sync::Arc::new(ringloop::tls::server_config(vec![cert.cert.der().clone()], key)?);
    /// let acceptor = ringloop::tls::TlsAcceptor::new(config)
    ///     .on_handshake_error(|e| eprintln!("TLS handshake failed: {e}"));
    /// # let _ = acceptor;
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_handshake_error(
        mut self,
        hook: impl Fn(&io::Error) + Send + Sync + 'static,
    ) -> TlsAcceptor {
        self.on_handshake_error = Some(Arc::new(hook));
        self
    }

    /// Tells the hook set by [`on_handshake_error`](Self::on_handshake_error), if any.
    pub(crate) fn report_handshake_error(&self, e: &io::Error) {
        if let Some(hook) = &self.on_handshake_error {
            hook(e);
        }
    }

    /// The config handshakes use.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Runs a server handshake over an accepted `stream`.
    pub async fn accept<S: TlsSocket>(&self, stream: S) -> io::Result<TlsStream<S>> {
        self.accept_after(stream, Vec::new()).await
    }

    /// [`accept`](Self::accept) on a connection that already received `received` (a
    /// STARTTLS upgrade: the client's hello may have arrived right after the plain data).
    pub(crate) async fn accept_after<S: TlsSocket>(
        &self,
        stream: S,
        received: Vec<u8>,
    ) -> io::Result<TlsStream<S>> {
        let conn = rustls::server::UnbufferedServerConnection::new(Arc::clone(&self.config))
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    TlsError::new(e).with_context("TLS server".to_owned()),
                )
            })?;
        let stream = TlsStream::new(stream, conn.into(), None, received);
        stream.set_shutdown_timeout(self.shutdown_timeout);
        handshake(stream, self.handshake_timeout, "from").await
    }
}

impl From<Arc<ServerConfig>> for TlsAcceptor {
    fn from(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor::new(config)
    }
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("on_handshake_error", &self.on_handshake_error.is_some())
            .finish_non_exhaustive()
    }
}

/// Runs `stream`'s handshake within `timeout`.
async fn handshake<S: TlsSocket>(
    stream: TlsStream<S>,
    timeout: Duration,
    direction: &str,
) -> io::Result<TlsStream<S>> {
    match crate::time::timeout(timeout, stream.handshake()).await {
        Ok(Ok(())) => Ok(stream),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "TLS handshake {direction} {}: did not finish within {timeout:?}",
                stream.peer()
            ),
        )),
    }
}

/// A failure of the TLS engine, with what was being done: the inner error of the
/// `io::Error`s this module returns for it (`err.get_ref()` and `downcast_ref`).
#[derive(Debug)]
pub struct TlsError {
    context: String,
    reason: rustls::Error,
}

impl TlsError {
    pub(crate) fn new(reason: rustls::Error) -> TlsError {
        TlsError {
            context: String::new(),
            reason,
        }
    }

    pub(crate) fn with_context(mut self, context: String) -> TlsError {
        self.context = context;
        self
    }

    /// rustls's reason.
    pub fn reason(&self) -> &rustls::Error {
        &self.reason
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.context.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.context, self.reason)
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.reason)
    }
}

/// What a handshake negotiated (asyncio's `get_extra_info` keys `ssl_object`, `peercert`,
/// `cipher`, `server_hostname`, and the protocol version and ALPN protocol).
#[derive(Clone, Debug, Default)]
pub struct TlsInfo {
    /// `"TLSv1.2"` or `"TLSv1.3"` (the names Python's `SSLSocket.version()` uses).
    pub version: Option<&'static str>,
    /// The cipher suite's IANA name, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: Option<String>,
    /// The application protocol ALPN agreed on.
    pub alpn_protocol: Option<Vec<u8>>,
    /// The peer's certificate chain (end entity first); empty if it sent none.
    pub peer_certificates: Vec<CertificateDer<'static>>,
    /// The server name: on a client, the one it connected to; on a server, the client's SNI.
    pub server_name: Option<String>,
}

impl TlsInfo {
    pub(crate) fn of(conn: &rustls::CommonState, server_name: Option<String>) -> TlsInfo {
        TlsInfo {
            version: conn.protocol_version().map(|v| match v {
                rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
                rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
                _ => "unknown",
            }),
            cipher: conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite())),
            alpn_protocol: conn.alpn_protocol().map(<[u8]>::to_vec),
            peer_certificates: conn
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
            server_name,
        }
    }
}
