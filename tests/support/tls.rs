//! TLS test helpers: a throwaway certificate authority (rcgen; nothing is checked in), PEM
//! files in a temporary directory for peers ringloop did not write (Python's `ssl`,
//! `openssl s_client`), and configs built from them.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use ringloop::tls::{self, CertificateDer, ClientConfig, PrivateKeyDer, ServerConfig};

// The fs tests' scratch directory. Their binaries load that file as their own module too,
// which is harmless (a separate copy of a small type).
#[allow(clippy::duplicate_mod)]
#[path = "../fs_support/mod.rs"]
mod fs_support;
pub use fs_support::TempDir;

/// A certificate authority made for one test, and the leaf certificates it signs.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    pub dir: TempDir,
}

/// A leaf certificate with its key, as DER and as PEM files.
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key_der: Vec<u8>,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

impl Leaf {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::try_from(self.key_der.clone()).expect("a PKCS#8 key")
    }
}

impl Pki {
    pub fn new() -> Pki {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        // A name of its own: a client trusting another test CA must find no issuer at all.
        params.distinguished_name.push(
            DnType::CommonName,
            format!("ringloop test CA {} {n}", std::process::id()),
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = TempDir::new("tls");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Pki { ca, dir }
    }

    /// The CA certificate's PEM file (what a peer trusts).
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// A P-256 leaf for `names`, valid now.
    pub fn leaf(&self, file: &str, names: &[&str]) -> Leaf {
        self.leaf_with(file, names, |_| {})
    }

    /// A leaf whose validity ended in 2021.
    pub fn expired_leaf(&self, file: &str, names: &[&str]) -> Leaf {
        self.leaf_with(file, names, |p| {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        })
    }

    fn leaf_with(
        &self,
        file: &str,
        names: &[&str],
        tweak: impl FnOnce(&mut CertificateParams),
    ) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, file);
        tweak(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let cert_pem = self.dir.path().join(format!("{file}.crt"));
        let key_pem = self.dir.path().join(format!("{file}.key"));
        std::fs::write(&cert_pem, cert.pem()).unwrap();
        std::fs::write(&key_pem, key.serialize_pem()).unwrap();
        Leaf {
            chain: vec![cert.der().clone()],
            key_der: key.serialize_der(),
            cert_pem,
            key_pem,
        }
    }

    /// A client config trusting this CA, offering `alpn`.
    pub fn client(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut roots = tls::RootCertStore::empty();
        roots.add(self.ca_der()).unwrap();
        let mut config = tls::client_config(roots);
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A client config trusting this CA that speaks TLS 1.2 only.
    pub fn client_tls12(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut roots = tls::RootCertStore::empty();
        roots.add(self.ca_der()).unwrap();
        let mut config = ClientConfig::builder_with_provider(tls::provider())
            .with_protocol_versions(&[&tls::rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A server config presenting `leaf`, accepting `alpn`.
    pub fn server(&self, leaf: &Leaf, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let mut config = tls::server_config(leaf.chain.clone(), leaf.key()).unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// A CA, a leaf for `localhost` signed by it, and a server and a client for it (no ALPN
/// unless given): what most TLS tests start from.
pub struct Pair {
    pub pki: Pki,
    pub acceptor: ringloop::tls::TlsAcceptor,
    pub connector: ringloop::tls::TlsConnector,
}

impl Pair {
    pub fn new(server_alpn: &[&[u8]], client_alpn: &[&[u8]]) -> Pair {
        let pki = Pki::new();
        let leaf = pki.leaf("server", &["localhost"]);
        Pair {
            acceptor: ringloop::tls::TlsAcceptor::new(pki.server(&leaf, server_alpn)),
            connector: ringloop::tls::TlsConnector::new(pki.client(client_alpn)),
            pki,
        }
    }
}
