//! A TLS echo server: every byte a client sends comes back, encrypted.
//!
//! ```text
//! cargo run --example tls_echo_server -- [ADDR] [CERT.pem KEY.pem]   # default 127.0.0.1:7443
//! RINGLOOP_BACKEND=epoll cargo run --example tls_echo_server
//! openssl s_client -connect 127.0.0.1:7443 -servername localhost
//! ```
//!
//! Without a certificate and key it makes a self-signed pair for `localhost` and `127.0.0.1`
//! and prints the certificate's SHA-256 fingerprint, so a client can check what it talks to
//! (`openssl s_client` shows the same fingerprint with `| openssl x509 -noout -fingerprint
//! -sha256`). ALPN offers `http/1.1`. Runs until SIGINT (Ctrl-C) or SIGTERM, then stops
//! accepting, closes every connection with close_notify and exits 0.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use ringloop::net::{TcpListener, TcpStream};
use ringloop::task::TaskGroup;
use ringloop::tls::{self, CertificateDer, PrivateKeyDer, TlsAcceptor, TlsStream};

// Only `Stop` is used: this server closes its own connections (with close_notify).
#[allow(dead_code)]
#[path = "common/shutdown.rs"]
mod shutdown;

/// The server's certificate chain and key: from PEM files, or a fresh self-signed pair.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Set when the pair was generated here: the certificate's SHA-256 fingerprint.
    pub generated_fingerprint: Option<String>,
}

impl Identity {
    pub fn from_pem_files(cert: &str, key: &str) -> io::Result<Identity> {
        Ok(Identity {
            chain: tls::load_certs(cert)?,
            key: tls::load_private_key(key)?,
            generated_fingerprint: None,
        })
    }

    /// A self-signed ECDSA P-256 certificate for `localhost` and `127.0.0.1`.
    pub fn self_signed() -> io::Result<Identity> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let made = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
        let der = made.cert.der().clone();
        let key =
            PrivateKeyDer::try_from(made.signing_key.serialize_der()).map_err(io::Error::other)?;
        Ok(Identity {
            generated_fingerprint: Some(fingerprint(&der)),
            chain: vec![der],
            key,
        })
    }

    pub fn acceptor(&self) -> io::Result<TlsAcceptor> {
        let mut config = tls::server_config(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::new(Arc::new(config)))
    }
}

/// SHA-256 of a certificate, as `AB:CD:...` (the form `openssl x509 -fingerprint` prints).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// Echoes one connection until the client's close_notify (or an error), then closes with
/// close_notify.
async fn echo(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    open: Rc<RefCell<Vec<Rc<TlsStream<TcpStream>>>>>,
) {
    let peer = tcp
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let tls = match acceptor.accept(tcp).await {
        Ok(tls) => Rc::new(tls),
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    open.borrow_mut().push(tls.clone());
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        buf.clear();
        let (n, b) = tls.read(buf).await;
        buf = b;
        match n {
            Ok(0) => break,
            Ok(_) => {
                let (res, b) = tls.write_all(buf).await;
                buf = b;
                if let Err(e) = res {
                    eprintln!("{peer}: {e}");
                    break;
                }
            }
            Err(e) => {
                eprintln!("{peer}: {e}");
                break;
            }
        }
    }
    open.borrow_mut().retain(|t| !Rc::ptr_eq(t, &tls));
    let _ = tls.shutdown().await;
}

/// A running server: its address, and what stops it.
pub struct Running {
    pub addr: SocketAddr,
    stop: ringloop::sync::oneshot::Sender<()>,
    done: ringloop::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, closes every open connection with close_notify, waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.done.await;
    }
}

/// Starts the server on `addr` (`"host:port"`).
pub async fn start(addr: &str, acceptor: TlsAcceptor) -> io::Result<Running> {
    let addr: SocketAddr = addr.parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("address {addr:?}: {e}"),
        )
    })?;
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = ringloop::sync::oneshot::channel::<()>();
    let done = ringloop::spawn(async move {
        let open = Rc::new(RefCell::new(Vec::new()));
        let connections = TaskGroup::<()>::new();
        let accepting = async {
            loop {
                match listener.accept().await {
                    Ok((tcp, _)) => {
                        let (acceptor, open) = (acceptor.clone(), open.clone());
                        connections.spawn(async move {
                            echo(acceptor, tcp, open).await;
                            Ok(())
                        });
                    }
                    Err(e) => eprintln!("accept: {e}"),
                }
            }
        };
        futures_lite::future::or(accepting, async {
            let _ = stopped.await;
        })
        .await;
        drop(listener);
        // close_notify to every client; their tasks end when the clients close.
        let open: Vec<_> = open.borrow().clone();
        for tls in open {
            let _ = tls.shutdown().await;
        }
        let _ =
            ringloop::time::timeout(std::time::Duration::from_secs(5), connections.join()).await;
    });
    Ok(Running { addr, stop, done })
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:7443".into());
    let identity = match (args.get(1), args.get(2)) {
        (Some(cert), Some(key)) => Identity::from_pem_files(cert, key)?,
        (Some(_), None) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a certificate needs its key: tls_echo_server [ADDR] [CERT.pem KEY.pem]",
            ));
        }
        _ => Identity::self_signed()?,
    };
    let rt = ringloop::Runtime::builder().build()?;
    println!("{}", rt.backend_report());
    if let Some(fp) = &identity.generated_fingerprint {
        println!("self-signed certificate for localhost, SHA-256 fingerprint {fp}");
    }
    rt.block_on(async {
        let stop = shutdown::Stop::new()?;
        let server = start(&addr, identity.acceptor()?).await?;
        println!("echoing over TLS on {}", server.addr);
        stop.wait().await?;
        server.stop().await;
        Ok(())
    })
}
