//! An HTTPS GET: prints the response's status line and headers, then how long the body was.
//!
//! ```text
//! cargo run --example https_get -- https://example.com/            # the system's roots
//! cargo run --example https_get -- https://localhost:7443/ --ca ca.pem   # a private CA
//! RINGLOOP_BACKEND=epoll cargo run --example https_get -- https://example.com/
//! ```
//!
//! HTTP/1.1 with `Connection: close`; the body is read to its `Content-Length`, through
//! chunked encoding, or to the end of the connection.

use std::io;
use std::sync::Arc;

use ringloop::net::TcpStream;
use ringloop::tls::{self, TlsConnector, TlsStream};

/// The parts of an `https://` URL a GET needs.
#[derive(Debug, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub target: String,
}

impl Url {
    /// Parses `https://host[:port][/path][?query]` (an IPv6 host in brackets).
    pub fn parse(url: &str) -> io::Result<Url> {
        let bad =
            |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("URL {url:?}: {why}"));
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| bad("only https:// URLs are supported"))?;
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        if authority.contains('@') {
            return Err(bad("user information is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or_else(|| bad("unclosed '[' in the host"))?;
            (&v6[..end], v6[end + 1..].strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => 443,
            Some(p) => p
                .parse()
                .map_err(|_| bad("the port is not a number from 0 to 65535"))?,
        };
        Ok(Url {
            host: host.to_owned(),
            port,
            target,
        })
    }
}

/// What the server answered.
#[derive(Debug)]
pub struct Response {
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The ALPN protocol and TLS version negotiated.
    pub tls_version: Option<&'static str>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// GETs `url` with `connector`.
pub async fn get(url: &Url, connector: &TlsConnector) -> io::Result<Response> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port)).await?;
    let tls = connector.connect(&url.host, tcp).await?;
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ringloop-https-get\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.target
    );
    tls.write_all(request.into_bytes()).await.0?;
    let mut reader = Reader {
        tls,
        buf: Vec::new(),
        eof: false,
    };
    let head = reader.until(b"\r\n\r\n", 64 * 1024).await?;
    let head = String::from_utf8_lossy(&head[..head.len() - 4]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_owned();
    if !status_line.starts_with("HTTP/1.") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an HTTP/1 response: {status_line:?}"),
        ));
    }
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut response = Response {
        status_line,
        headers,
        body: Vec::new(),
        tls_version: reader.tls.info().version,
    };
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = response
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    response.body = if chunked {
        reader.chunked().await?
    } else if let Some(len) = length {
        reader.exactly(len).await?
    } else {
        reader.rest().await?
    };
    // Servers often close without close_notify after `Connection: close`; the body is
    // complete by then, so that is not an error here.
    let _ = reader.tls.shutdown().await;
    Ok(response)
}

/// Buffered reads over the TLS stream.
struct Reader {
    tls: TlsStream<TcpStream>,
    buf: Vec<u8>,
    eof: bool,
}

impl Reader {
    /// Reads more; false at the end of the stream.
    async fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let (n, chunk) = self.tls.read(Vec::with_capacity(16 * 1024)).await;
        match n {
            Ok(0) => self.eof = true,
            Ok(_) => self.buf.extend_from_slice(&chunk),
            // Connection: close without close_notify: the end, for a body read to the end.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => self.eof = true,
            Err(e) => return Err(e),
        }
        Ok(!self.eof)
    }

    /// Everything up to and including `delim`.
    async fn until(&mut self, delim: &[u8], limit: usize) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(delim.len()).position(|w| w == delim) {
                return Ok(self.buf.drain(..i + delim.len()).collect());
            }
            if self.buf.len() > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "response head too long",
                ));
            }
            if !self.fill().await? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the response ended early",
                ));
            }
        }
    }

    async fn exactly(&mut self, len: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < len {
            if !self.fill().await? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the body ended early",
                ));
            }
        }
        Ok(self.buf.drain(..len).collect())
    }

    async fn rest(&mut self) -> io::Result<Vec<u8>> {
        while self.fill().await? {}
        Ok(std::mem::take(&mut self.buf))
    }

    async fn chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.until(b"\r\n", 1024).await?;
            let size = String::from_utf8_lossy(&line[..line.len() - 2]);
            let size = size.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad chunk size {size:?}"),
                )
            })?;
            if size == 0 {
                // Trailers, then the blank line.
                while self.until(b"\r\n", 64 * 1024).await?.len() > 2 {}
                return Ok(body);
            }
            body.extend(self.exactly(size + 2).await?.drain(..size));
        }
    }
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(url) = args.first() else {
        eprintln!("usage: https_get URL [--ca CA.pem]");
        std::process::exit(2);
    };
    let url = Url::parse(url)?;
    let connector = match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("--ca"), Some(ca)) => {
            TlsConnector::new(Arc::new(tls::client_config(tls::roots_from_pem(ca)?)))
        }
        (None, _) => TlsConnector::with_native_roots()?,
        _ => {
            eprintln!("usage: https_get URL [--ca CA.pem]");
            std::process::exit(2);
        }
    };
    let rt = ringloop::Runtime::builder().build()?;
    eprintln!("{}", rt.backend_report());
    let response = rt.block_on(get(&url, &connector))?;
    println!("{}", response.status_line);
    for (name, value) in &response.headers {
        println!("{name}: {value}");
    }
    println!();
    println!(
        "({} bytes of body over {})",
        response.body.len(),
        response.tls_version.unwrap_or("TLS")
    );
    Ok(())
}
