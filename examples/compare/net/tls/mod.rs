//! The TLS rows: `tls_echo/16conn/4KiB`, `tls_stream/64KiB` and `tls_handshake`, sampled as the
//! plain networking rows are (a server process per sample, one load generator), with rustls on
//! both ends.
//!
//! # Certificate and configs
//!
//! This process generates one ECDSA P-256 certificate for `localhost` when the first TLS
//! sample starts (rcgen; nothing is stored) and hands it with its key, as PEM, to every server
//! process on its stdin; the load generator trusts that certificate alone. Every config is
//! built by `ringloop::tls::server_config` / `client_config`, so with
//! `builder_with_provider(ringloop::tls::provider())`: the same rustls and the same *ring*
//! provider for ringloop's `TlsAcceptor` and for tokio-rustls, whose acceptor takes the very
//! same `ServerConfig`. The server issues no session tickets and keeps no session cache, and
//! the client has resumption disabled, so every handshake is a full one (TLS 1.3, an ECDSA
//! P-256 signature) and no ticket crosses the echo and stream connections either. The key
//! exchange is the provider's first choice: with rustls 0.23.48's *ring* provider that is
//! secp384r1 (it lists P-384 before X25519), whose arithmetic is most of a handshake's CPU on
//! both ends; the cipher suite is TLS13_AES_256_GCM_SHA384.
//!
//! # The servers
//!
//! `server_ringloop.rs` (`ringloop::tls::TlsStream`, io_uring or epoll) and `server_tokio.rs`
//! (tokio-rustls on the current-thread runtime); monoio has no TLS server here. Every data
//! connection handshakes, writes the hello byte through TLS (so the client knows the server
//! finished its handshake) and then echoes, discards, or waits for the client's close_notify.

mod loadgen;
mod server_ringloop;
mod server_tokio;

use super::{Session, measured};
use crate::net::spec::ServerSpec;
use crate::runtimes::RuntimeId;
use crate::workload::{Measured, NetKind, Sizes};
use ringloop::Backend;
use ringloop::tls::rustls::client::Resumption;
use ringloop::tls::rustls::pki_types::pem::PemObject as _;
use ringloop::tls::rustls::server::NoServerSessionStorage;
use ringloop::tls::{CertificateDer, ClientConfig, PrivateKeyDer, RootCertStore, ServerConfig};
use std::sync::{Arc, OnceLock};

/// The name the certificate is for and the client asks for (SNI, verified).
const SERVER_NAME: &str = "localhost";

/// The certificate every TLS server presents, and its PEM with the key for the server
/// processes.
struct Identity {
    cert: CertificateDer<'static>,
    /// The certificate, then the PKCS#8 private key.
    pem: String,
}

/// This run's identity, generated on first use.
fn identity() -> Result<&'static Identity, String> {
    static IDENTITY: OnceLock<Result<Identity, String>> = OnceLock::new();
    IDENTITY
        .get_or_init(generate)
        .as_ref()
        .map_err(Clone::clone)
}

/// A self-signed ECDSA P-256 certificate for [`SERVER_NAME`].
fn generate() -> Result<Identity, String> {
    let fail = |e: rcgen::Error| format!("generating the TLS certificate: {e}");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(fail)?;
    let cert = rcgen::CertificateParams::new(vec![SERVER_NAME.to_owned()])
        .map_err(fail)?
        .self_signed(&key)
        .map_err(fail)?;
    Ok(Identity {
        cert: cert.der().clone(),
        pem: format!("{}{}", cert.pem(), key.serialize_pem()),
    })
}

/// The load generator's config: trusts `identity` only, never resumes a session.
fn client_config(identity: &Identity) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    roots
        .add(identity.cert.clone())
        .map_err(|e| format!("trusting the generated certificate: {e}"))?;
    let mut config = ringloop::tls::client_config(roots);
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// A server's config from the PEM on its stdin: no tickets, no session cache.
fn server_config(pem: &str) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate on stdin: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("the private key on stdin: {e}"))?;
    let mut config = ringloop::tls::server_config(chain, key).map_err(|e| e.to_string())?;
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    Ok(Arc::new(config))
}

/// Takes one sample of a TLS workload (the server's `spec` is made and this thread pinned).
pub fn sample(spec: ServerSpec, kind: NetKind, sizes: Sizes) -> Result<Measured, String> {
    let identity = identity()?;
    let config = client_config(identity)?;
    let mut session = Session::start(spec, identity.pem.as_bytes())?;
    let base = session.control.snapshot()?;
    let addr = session.server.addr;
    let connect = |count| loadgen::connect_all(addr, &config, count);
    let (clients, (start, done, end)) = match kind {
        NetKind::TlsEcho { conns, msg } => {
            let mut clients = connect(conns)?;
            for client in &clients {
                client.set_nonblocking()?;
            }
            let timed =
                session.window(sizes, |window, _| loadgen::echo(&mut clients, msg, window))?;
            (clients, timed)
        }
        NetKind::TlsStream { chunk } => {
            let mut clients = connect(2)?;
            let timed = session.window(sizes, |window, timed| {
                loadgen::stream(&mut clients[usize::from(timed)], chunk, window)
            })?;
            (clients, timed)
        }
        NetKind::TlsHandshake => {
            let timed = session.window(sizes, |window, _| {
                loadgen::handshakes(addr, &config, window)
            })?;
            (Vec::new(), timed)
        }
        _ => unreachable!("not a TLS workload: {kind:?}"),
    };
    session.close(clients)?;
    Ok(measured(kind, spec.conns, [base, start, end], done))
}

/// Runs a TLS server process: reads its certificate and key from stdin, then serves.
pub fn serve(spec: ServerSpec) -> Result<(), String> {
    let pem = std::io::read_to_string(std::io::stdin())
        .map_err(|e| format!("reading the certificate from stdin: {e}"))?;
    let config = server_config(&pem)?;
    match spec.runtime {
        RuntimeId::RingloopIoUring => server_ringloop::serve(Backend::IoUring, spec, config),
        RuntimeId::RingloopEpoll => server_ringloop::serve(Backend::Epoll, spec, config),
        RuntimeId::Tokio => server_tokio::serve(spec, config),
        other => Err(format!("no TLS server for {}", other.name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringloop::tls::rustls::{self, ClientConnection, HandshakeKind, ServerConnection};

    /// Moves records between the two ends in memory until both finished their handshake.
    fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) {
        let mut wire = Vec::new();
        while client.is_handshaking() || server.is_handshaking() {
            while client.wants_write() {
                client.write_tls(&mut wire).unwrap();
            }
            server.read_tls(&mut &wire[..]).unwrap();
            server.process_new_packets().unwrap();
            wire.clear();
            while server.wants_write() {
                server.write_tls(&mut wire).unwrap();
            }
            client.read_tls(&mut &wire[..]).unwrap();
            client.process_new_packets().unwrap();
            wire.clear();
        }
    }

    /// The PEM a server gets makes its config, the client trusts the certificate for
    /// `localhost`, and a second connection's handshake is a full one again.
    #[test]
    fn every_handshake_with_the_generated_identity_is_full() {
        let identity = identity().expect("a certificate");
        let server_config = server_config(&identity.pem).expect("a server config");
        let client_config = client_config(identity).expect("a client config");
        for _ in 0..2 {
            let name = rustls::pki_types::ServerName::try_from(SERVER_NAME).unwrap();
            let mut client = ClientConnection::new(Arc::clone(&client_config), name).unwrap();
            let mut server = ServerConnection::new(Arc::clone(&server_config)).unwrap();
            handshake(&mut client, &mut server);
            assert_eq!(client.handshake_kind(), Some(HandshakeKind::Full));
            assert_eq!(server.handshake_kind(), Some(HandshakeKind::Full));
            assert_eq!(
                client.protocol_version(),
                Some(rustls::ProtocolVersion::TLSv1_3)
            );
        }
    }

    #[test]
    fn a_server_without_a_key_on_stdin_fails_to_start() {
        let identity = identity().expect("a certificate");
        let cert_only = identity.pem.split("-----BEGIN PRIVATE KEY").next().unwrap();
        assert!(server_config(cert_only).is_err());
        assert!(server_config("not PEM").is_err());
    }
}
