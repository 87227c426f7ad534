//! The server name a client asks for (SNI), read from its ClientHello.
//!
//! rustls's unbuffered server connection does not expose the name it saw, so the engine
//! reads it from the first handshake record itself: every length is checked against what
//! is there, and anything unexpected gives `None` (rustls, which validates the hello,
//! decides whether the handshake goes on).

/// What reading the hello found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sni {
    /// The first record is not complete yet: try again with more bytes.
    Incomplete,
    /// The hello names this server.
    Name(String),
    /// No server name (none sent, not a ClientHello, or a hello this reader does not
    /// follow, such as one split over several records).
    None,
}

/// TLS record type of a handshake record.
const HANDSHAKE: u8 = 22;
/// Handshake message type of a ClientHello.
const CLIENT_HELLO: u8 = 1;
/// Extension type of `server_name`.
const SERVER_NAME: u16 = 0;
/// Name type of a DNS host name in the `server_name` list.
const HOST_NAME: u8 = 0;

/// Reads the server name from `received`, the first bytes the server received.
pub(crate) fn server_name(received: &[u8]) -> Sni {
    if received.len() < 5 {
        return Sni::Incomplete;
    }
    if received[0] != HANDSHAKE {
        return Sni::None;
    }
    let len = usize::from(u16::from_be_bytes([received[3], received[4]]));
    let Some(record) = received.get(5..5 + len) else {
        return Sni::Incomplete;
    };
    parse_hello(record).map_or(Sni::None, |name| match name {
        Some(name) => Sni::Name(name),
        None => Sni::None,
    })
}

/// The name in a ClientHello message (`None` in the outer option when it does not parse).
fn parse_hello(record: &[u8]) -> Option<Option<String>> {
    let mut r = Reader(record);
    if r.u8()? != CLIENT_HELLO {
        return None;
    }
    let body_len = r.u24()?;
    let mut hello = Reader(r.take(body_len)?);
    hello.take(2 + 32)?; // legacy_version, random
    hello.vec8()?; // legacy_session_id
    hello.vec16()?; // cipher_suites
    hello.vec8()?; // legacy_compression_methods
    if hello.0.is_empty() {
        return Some(None); // no extensions
    }
    let mut extensions = Reader(hello.vec16()?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let data = extensions.vec16()?;
        if kind == SERVER_NAME {
            return parse_server_name(data).map(Some);
        }
    }
    Some(None)
}

/// The first host name in a `server_name` extension's list.
fn parse_server_name(data: &[u8]) -> Option<String> {
    let mut list = Reader(Reader(data).vec16()?);
    while !list.0.is_empty() {
        let kind = list.u8()?;
        let name = list.vec16()?;
        if kind == HOST_NAME {
            return std::str::from_utf8(name).ok().map(str::to_owned);
        }
    }
    None
}

/// A cursor over bytes whose every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }

    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The first flight of a rustls client connecting to `name`.
    fn client_hello(name: &str) -> Vec<u8> {
        let provider = crate::tls::provider();
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }

    #[test]
    fn reads_the_name_from_a_real_hello() {
        let hello = client_hello("example.test");
        assert_eq!(server_name(&hello), Sni::Name("example.test".to_owned()));
    }

    #[test]
    fn an_ip_address_sends_no_name() {
        let hello = client_hello("127.0.0.1");
        assert_eq!(server_name(&hello), Sni::None);
    }

    #[test]
    fn a_partial_record_asks_for_more() {
        let hello = client_hello("example.test");
        for cut in [0, 3, 5, 40, hello.len() - 1] {
            assert_eq!(server_name(&hello[..cut]), Sni::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn garbage_gives_no_name_and_no_panic() {
        assert_eq!(server_name(b"GET / HTTP/1.1\r\n\r\n"), Sni::None);
        let hello = client_hello("example.test");
        // Every truncation of the message inside a complete record header.
        for cut in 5..hello.len() {
            let mut bad = hello[..cut].to_vec();
            let len = (cut - 5) as u16;
            bad[3..5].copy_from_slice(&len.to_be_bytes());
            let _ = server_name(&bad);
        }
        // Every single-byte corruption.
        for i in 5..hello.len() {
            let mut bad = hello.clone();
            bad[i] ^= 0xff;
            let _ = server_name(&bad);
        }
    }
}
