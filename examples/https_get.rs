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

use ringloop::streams::{self, StreamReader};
use ringloop::tls::{self, TlsConnector};
use ringloop::transport::ExtraInfo;

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

/// GETs `url` with `connector`, over ringloop's TLS streams.
pub async fn get(url: &Url, connector: &TlsConnector) -> io::Result<Response> {
    let (mut reader, writer) =
        streams::open_tls_connection((url.host.as_str(), url.port), connector, &url.host).await?;
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ringloop-https-get\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.target
    );
    writer.write(request.as_bytes())?;
    writer.drain().await?;
    let head = reader.readuntil(b"\r\n\r\n").await?;
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
    let tls_version = match writer.get_extra_info("ssl_object") {
        Some(ExtraInfo::Tls(info)) => info.version,
        _ => None,
    };
    let mut response = Response {
        status_line,
        headers,
        body: Vec::new(),
        tls_version,
    };
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = response
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    response.body = if chunked {
        chunked_body(&mut reader).await?
    } else if let Some(len) = length {
        reader.readexactly(len).await?
    } else {
        body_to_end(&mut reader).await?
    };
    writer.close();
    Ok(response)
}

/// A body that ends with the connection. Servers often close without close_notify after
/// `Connection: close`: that truncation ends the body here rather than failing it.
async fn body_to_end(reader: &mut StreamReader) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        match reader.read(64 * 1024).await {
            Ok(bytes) if bytes.is_empty() => return Ok(body),
            Ok(bytes) => body.extend_from_slice(&bytes),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(body),
            Err(e) => return Err(e),
        }
    }
}

/// A chunked body (`Transfer-Encoding: chunked`), trailers skipped.
async fn chunked_body(reader: &mut StreamReader) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = reader.readuntil(b"\r\n").await?;
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
            while reader.readuntil(b"\r\n").await?.len() > 2 {}
            return Ok(body);
        }
        body.extend_from_slice(&reader.readexactly(size + 2).await?[..size]);
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
