//! What `get_extra_info` answers: a transport's addresses and descriptor, captured when the
//! transport is made (so they stay readable after the peer is gone, as in asyncio).

use std::fmt;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use socket2::SockRef;

/// A socket address of either family a transport runs on.
///
/// ```
/// use ringloop::transport::TransportAddr;
/// let addr = TransportAddr::Inet("127.0.0.1:7000".parse().unwrap());
/// assert_eq!(addr.as_inet().unwrap().port(), 7000);
/// assert_eq!(addr.to_string(), "127.0.0.1:7000");
/// ```
#[derive(Clone, Debug)]
pub enum TransportAddr {
    /// An IPv4 or IPv6 address.
    Inet(SocketAddr),
    /// A Unix-domain address (a path, an abstract name, or unnamed).
    Unix(std::os::unix::net::SocketAddr),
}

impl TransportAddr {
    /// The IP address, if this is one.
    pub fn as_inet(&self) -> Option<SocketAddr> {
        match self {
            TransportAddr::Inet(addr) => Some(*addr),
            TransportAddr::Unix(_) => None,
        }
    }

    /// The Unix-domain address, if this is one.
    pub fn as_unix(&self) -> Option<&std::os::unix::net::SocketAddr> {
        match self {
            TransportAddr::Inet(_) => None,
            TransportAddr::Unix(addr) => Some(addr),
        }
    }
}

impl fmt::Display for TransportAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportAddr::Inet(addr) => addr.fmt(f),
            TransportAddr::Unix(addr) => match addr.as_pathname() {
                Some(path) => path.display().fmt(f),
                None => f.write_str("(unnamed unix socket)"),
            },
        }
    }
}

/// One answer of `get_extra_info(name)`.
///
/// ```
/// use ringloop::transport::{ExtraInfo, TransportAddr};
/// let info = ExtraInfo::Addr(TransportAddr::Inet("127.0.0.1:1".parse().unwrap()));
/// assert!(info.as_addr().is_some() && info.as_fd().is_none());
/// ```
#[derive(Clone, Debug)]
pub enum ExtraInfo {
    /// `"peername"` or `"sockname"`.
    Addr(TransportAddr),
    /// `"socket"`: the descriptor, valid until the transport closes.
    Fd(RawFd),
    /// Text: `"cipher"`, `"server_hostname"`, `"tls_version"` of a TLS transport.
    Text(String),
    /// Bytes: `"alpn_protocol"` of a TLS transport.
    Bytes(Vec<u8>),
    /// `"peercert"`: the peer's certificate chain, end entity first (DER).
    #[cfg(feature = "tls")]
    Certificates(Vec<crate::tls::CertificateDer<'static>>),
    /// `"ssl_object"` (or `"tls"`): everything the handshake negotiated.
    #[cfg(feature = "tls")]
    Tls(crate::tls::TlsInfo),
}

impl ExtraInfo {
    /// The address, for `"peername"` and `"sockname"`.
    pub fn as_addr(&self) -> Option<&TransportAddr> {
        match self {
            ExtraInfo::Addr(addr) => Some(addr),
            _ => None,
        }
    }

    /// The descriptor, for `"socket"`.
    pub fn as_fd(&self) -> Option<RawFd> {
        match self {
            ExtraInfo::Fd(fd) => Some(*fd),
            _ => None,
        }
    }

    /// The text of a text value (`"cipher"`, `"server_hostname"`, `"tls_version"`).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            ExtraInfo::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The bytes of a bytes value (`"alpn_protocol"`).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            ExtraInfo::Bytes(bytes) => Some(bytes),
            _ => None,
        }
    }
}

/// The extra info of one socket.
#[derive(Clone, Debug)]
pub(crate) struct SocketInfo {
    pub(crate) sockname: Option<TransportAddr>,
    pub(crate) peername: Option<TransportAddr>,
    pub(crate) fd: RawFd,
    /// What the TLS handshake negotiated, on a TLS transport.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsInfo>,
}

impl SocketInfo {
    /// Reads the addresses of `socket` (an unconnected socket has no peer name).
    pub(crate) fn capture(socket: &impl AsFd) -> SocketInfo {
        let sock = SockRef::from(socket);
        SocketInfo {
            sockname: sock.local_addr().ok().and_then(|a| to_transport_addr(&a)),
            peername: sock.peer_addr().ok().and_then(|a| to_transport_addr(&a)),
            fd: socket.as_fd().as_raw_fd(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The answer to asyncio's name, for the names this transport knows.
    pub(crate) fn get(&self, name: &str, open: bool) -> Option<ExtraInfo> {
        match name {
            "peername" => self.peername.clone().map(ExtraInfo::Addr),
            "sockname" => self.sockname.clone().map(ExtraInfo::Addr),
            "socket" if open => Some(ExtraInfo::Fd(self.fd)),
            #[cfg(feature = "tls")]
            _ => self.tls_info(name),
            #[cfg(not(feature = "tls"))]
            _ => None,
        }
    }

    /// asyncio's SSL keys, from the handshake's outcome.
    #[cfg(feature = "tls")]
    fn tls_info(&self, name: &str) -> Option<ExtraInfo> {
        let tls = self.tls.as_ref()?;
        match name {
            "peercert" => Some(ExtraInfo::Certificates(tls.peer_certificates.clone())),
            "cipher" => tls.cipher.clone().map(ExtraInfo::Text),
            "alpn_protocol" => tls.alpn_protocol.clone().map(ExtraInfo::Bytes),
            "server_hostname" => tls.server_name.clone().map(ExtraInfo::Text),
            "tls_version" => tls.version.map(|v| ExtraInfo::Text(v.to_owned())),
            "ssl_object" | "tls" => Some(ExtraInfo::Tls(tls.clone())),
            _ => None,
        }
    }
}

fn to_transport_addr(addr: &socket2::SockAddr) -> Option<TransportAddr> {
    if let Some(inet) = addr.as_socket() {
        return Some(TransportAddr::Inet(inet));
    }
    addr.as_unix().map(TransportAddr::Unix)
}
