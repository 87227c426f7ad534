//! TLS transports: asyncio's `create_connection(..., ssl=...)` and `create_server(...,
//! ssl=...)`, for TCP and Unix sockets. The handshake runs first (bounded by the connector's
//! or acceptor's handshake timeout); `connection_made` comes after it, and the protocol sees
//! plaintext only. The transport is the same [`Transport`] as a plain one, with the TLS keys of
//! `get_extra_info`.

use std::io;
use std::path::Path;
use std::rc::Rc;

use super::extra::SocketInfo;
use super::protocol::Protocol;
use super::shared::SharedProtocol;
use super::socket::{self, SocketListener};
use super::tls_link::TlsLink;
use super::{HostAddr, Server, Transport, stream};
use crate::net::{TcpListener, UnixStream};
use crate::tls::{TlsAcceptor, TlsConnector, TlsSocket, TlsStream};

/// Connects to `addr` (each address it resolves to in turn, as
/// [`create_connection`](super::create_connection) does), runs a TLS client handshake
/// verifying `server_name`, then creates the protocol and starts its transport.
///
/// ```
/// # use std::sync::Arc;
/// use ringloop::transport::{self, Protocol, Transport};
/// use ringloop::tls::{self, TlsAcceptor, TlsConnector};
///
/// struct Echo(Option<Transport>);
/// impl Protocol for Echo {
///     fn connection_made(&mut self, t: Transport) { self.0 = Some(t); }
///     fn data_received(&mut self, data: &[u8]) { let _ = self.0.as_ref().unwrap().write(data); }
/// }
/// #[derive(Default)]
/// struct Collect(Vec<u8>);
/// impl Protocol for Collect {
///     fn data_received(&mut self, data: &[u8]) { self.0.extend_from_slice(data); }
/// }
///
/// # let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
/// # let cert = made.cert.der().clone();
/// # let key = tls::PrivateKeyDer::try_from(made.signing_key.serialize_der()).unwrap();
/// # let mut roots = tls::RootCertStore::empty();
/// # roots.add(cert.clone()).unwrap();
/// let acceptor = TlsAcceptor::new(Arc::new(tls::server_config(vec![cert], key).unwrap()));
/// let connector = TlsConnector::new(Arc::new(tls::client_config(roots)));
/// # ringloop::run(async move {
/// let server = transport::create_tls_server(|| Echo(None), "127.0.0.1:0", acceptor).await.unwrap();
/// let addr = server.local_addrs()[0].as_inet().unwrap();
/// let (t, got) = transport::create_tls_connection(Collect::default, addr, &connector, "localhost")
///     .await
///     .unwrap();
/// assert_eq!(t.get_extra_info("tls_version").unwrap().as_text(), Some("TLSv1.3"));
/// t.write(b"over TLS").unwrap();
/// # while got.borrow().0.len() < 8 { ringloop::time::sleep(std::time::Duration::from_millis(1)).await; }
/// assert_eq!(got.borrow().0, b"over TLS");
/// t.close();
/// server.close();
/// server.wait_closed().await;
/// # });
/// ```
///
/// # Errors
///
/// Connect errors (the last address's), and handshake failures: a certificate not valid for
/// `server_name` or not trusted, a peer that does not speak TLS (`InvalidData`, naming the
/// reason), the handshake timeout (`TimedOut`).
pub async fn create_tls_connection<P, F>(
    protocol_factory: F,
    addr: impl Into<HostAddr>,
    connector: &TlsConnector,
    server_name: &str,
) -> io::Result<(Transport, SharedProtocol<P>)>
where
    P: Protocol,
    F: FnOnce() -> P,
{
    let tcp = super::connect_any(addr).await?;
    let tls = connector.connect(server_name, tcp).await?;
    Ok(start(tls, protocol_factory()))
}

/// [`create_tls_connection`] over the Unix socket at `path`.
pub async fn create_unix_tls_connection<P, F>(
    protocol_factory: F,
    path: impl AsRef<Path>,
    connector: &TlsConnector,
    server_name: &str,
) -> io::Result<(Transport, SharedProtocol<P>)>
where
    P: Protocol,
    F: FnOnce() -> P,
{
    let unix = UnixStream::connect(path).await?;
    let tls = connector.connect(server_name, unix).await?;
    Ok(start(tls, protocol_factory()))
}

/// Listens on every address `addr` resolves to and serves each connection over TLS: the
/// handshake first (bounded by the acceptor's handshake timeout), then a new protocol from
/// `protocol_factory` and its transport. A connection whose handshake fails (a client that
/// does not speak TLS, a timeout) is closed, after the acceptor's
/// [`on_handshake_error`](TlsAcceptor::on_handshake_error) hook is told; the server goes on
/// serving. See
/// [`create_tls_connection`] for an example.
pub async fn create_tls_server<P, F>(
    protocol_factory: F,
    addr: impl Into<HostAddr>,
    acceptor: TlsAcceptor,
) -> io::Result<Server>
where
    P: Protocol,
    F: Fn() -> P + 'static,
{
    let addrs = addr.into().resolve().await?;
    let listeners = addrs
        .into_iter()
        .map(TcpListener::bind)
        .collect::<io::Result<Vec<_>>>()?;
    Ok(serve(listeners, acceptor, protocol_factory))
}

/// [`create_tls_server`] on the Unix socket file `path` (removed when the listener closes, as
/// [`create_unix_server`](super::create_unix_server) does).
pub async fn create_unix_tls_server<P, F>(
    protocol_factory: F,
    path: impl AsRef<Path>,
    acceptor: TlsAcceptor,
) -> io::Result<Server>
where
    P: Protocol,
    F: Fn() -> P + 'static,
{
    let listener = socket::UnixSocketFile::bind(path.as_ref())?;
    Ok(serve(vec![listener], acceptor, protocol_factory))
}

/// Starts the transport of a TLS stream whose handshake is done.
fn start<S: TlsSocket, P: Protocol>(
    tls: TlsStream<S>,
    protocol: P,
) -> (Transport, SharedProtocol<P>) {
    let (transport, view, run) = prepare(tls, protocol);
    crate::spawn(run);
    (transport, view)
}

/// The transport of a TLS stream whose handshake is done, and the future that runs it.
fn prepare<S: TlsSocket, P: Protocol>(
    tls: TlsStream<S>,
    protocol: P,
) -> (
    Transport,
    SharedProtocol<P>,
    impl std::future::Future<Output = ()>,
) {
    let mut info = SocketInfo::capture(tls.get_ref());
    info.tls = Some(tls.info());
    stream::start_link(TlsLink::new(tls), info, protocol)
}

fn serve<L, P, F>(listeners: Vec<L>, acceptor: TlsAcceptor, factory: F) -> Server
where
    L: SocketListener,
    L::Stream: TlsSocket,
    P: Protocol,
    F: Fn() -> P + 'static,
{
    let factory = Rc::new(factory);
    Server::start(listeners, move |stream, slot| {
        let (factory, acceptor) = (Rc::clone(&factory), acceptor.clone());
        async move {
            // A failed handshake ends this connection only (its socket closes here), once the
            // acceptor's hook has heard of it.
            let tls = match acceptor.accept(stream).await {
                Ok(tls) => tls,
                Err(e) => return acceptor.report_handshake_error(&e),
            };
            let (transport, _protocol, run) = prepare(tls, factory());
            let _registration = slot.register(transport);
            run.await;
        }
    })
}

/// What [`Transport::start_tls`] upgrades to: the client or the server side of a handshake.
#[derive(Clone, Debug)]
pub enum StartTls {
    /// The client side, verifying `server_name`.
    Client {
        connector: TlsConnector,
        server_name: String,
    },
    /// The server side.
    Server(TlsAcceptor),
}

impl StartTls {
    /// The client side of the handshake, verifying `server_name`.
    pub fn client(connector: &TlsConnector, server_name: &str) -> StartTls {
        StartTls::Client {
            connector: connector.clone(),
            server_name: server_name.to_owned(),
        }
    }

    /// The server side of the handshake.
    pub fn server(acceptor: &TlsAcceptor) -> StartTls {
        StartTls::Server(acceptor.clone())
    }
}

/// An upgrade the transport's task is asked to make, and where its outcome goes.
pub(crate) struct Upgrade {
    pub(crate) tls: StartTls,
    pub(crate) reply: crate::sync::oneshot::Sender<io::Result<()>>,
}

/// Turns a plain link into a TLS one: stops its receive (what it had received goes to the
/// engine first), takes the socket back, runs the handshake.
pub(crate) async fn upgrade<S: TlsSocket + socket::StreamSocket>(
    link: super::task::PlainLink<S>,
    tls: StartTls,
    received: Vec<u8>,
) -> io::Result<(TlsLink<S>, crate::tls::TlsInfo)> {
    let (socket, received) = link.into_parts(received).await?;
    let stream = match tls {
        StartTls::Client {
            connector,
            server_name,
        } => {
            connector
                .connect_after(&server_name, socket, received)
                .await?
        }
        StartTls::Server(acceptor) => acceptor.accept_after(socket, received).await?,
    };
    let info = stream.info();
    Ok((TlsLink::new(stream), info))
}
