//! TLS streams: asyncio's `open_connection(..., ssl=...)` and `start_server(..., ssl=...)`,
//! for TCP and Unix sockets. The reader and writer are the plain ones, over a TLS transport
//! ([`crate::transport::create_tls_connection`]): they see plaintext only.

use std::future::Future;
use std::io;
use std::path::Path;

use super::protocol::StreamProtocol;
use super::{DEFAULT_LIMIT, StreamReader, StreamWriter, into_pair, server_protocols};
use crate::tls::{TlsAcceptor, TlsConnector};
use crate::transport::{self, HostAddr, Server};

/// Connects to `addr`, runs a TLS handshake verifying `server_name`, and gives the stream's
/// reader and writer.
///
/// ```
/// # use std::sync::Arc;
/// use ringloop::streams;
/// use ringloop::tls::{self, TlsAcceptor, TlsConnector};
/// # let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
/// # let cert = made.cert.der().clone();
/// # let key = tls::PrivateKeyDer::try_from(made.signing_key.serialize_der()).unwrap();
/// # let mut roots = tls::RootCertStore::empty();
/// # roots.add(cert.clone()).unwrap();
/// let acceptor = TlsAcceptor::new(Arc::new(tls::server_config(vec![cert], key).unwrap()));
/// let connector = TlsConnector::new(Arc::new(tls::client_config(roots)));
///
/// # ringloop::run(async move {
/// let server = streams::start_tls_server(
///     |mut reader, writer| async move {
///         let line = reader.readline().await.unwrap();
///         writer.write(&line).unwrap();
///         writer.drain().await.unwrap();
///         writer.close();
///     },
///     "127.0.0.1:0",
///     acceptor,
/// )
/// .await
/// .unwrap();
/// let addr = server.local_addrs()[0].as_inet().unwrap();
/// let (mut reader, writer) = streams::open_tls_connection(addr, &connector, "localhost").await.unwrap();
/// writer.write(b"hello TLS\n").unwrap();
/// assert_eq!(reader.readline().await.unwrap(), b"hello TLS\n");
/// server.close();
/// # });
/// ```
pub async fn open_tls_connection(
    addr: impl Into<HostAddr>,
    connector: &TlsConnector,
    server_name: &str,
) -> io::Result<(StreamReader, StreamWriter)> {
    let made = transport::create_tls_connection(
        || StreamProtocol::new(DEFAULT_LIMIT, None),
        addr,
        connector,
        server_name,
    )
    .await?;
    into_pair(made)
}

/// [`open_tls_connection`] over the Unix socket at `path`.
pub async fn open_unix_tls_connection(
    path: impl AsRef<Path>,
    connector: &TlsConnector,
    server_name: &str,
) -> io::Result<(StreamReader, StreamWriter)> {
    let made = transport::create_unix_tls_connection(
        || StreamProtocol::new(DEFAULT_LIMIT, None),
        path,
        connector,
        server_name,
    )
    .await?;
    into_pair(made)
}

/// Serves each TLS connection to `addr`, after its handshake, by running
/// `client_connected_cb(reader, writer)` as a new task (a failed handshake closes that
/// connection only). See [`open_tls_connection`] for an example.
pub async fn start_tls_server<F, Fut>(
    client_connected_cb: F,
    addr: impl Into<HostAddr>,
    acceptor: TlsAcceptor,
) -> io::Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let factory = server_protocols(client_connected_cb, DEFAULT_LIMIT);
    transport::create_tls_server(factory, addr, acceptor).await
}

/// [`start_tls_server`] on the Unix socket file `path`.
pub async fn start_unix_tls_server<F, Fut>(
    client_connected_cb: F,
    path: impl AsRef<Path>,
    acceptor: TlsAcceptor,
) -> io::Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let factory = server_protocols(client_connected_cb, DEFAULT_LIMIT);
    transport::create_unix_tls_server(factory, path, acceptor).await
}
