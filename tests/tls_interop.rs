//! TLS against peers ringloop did not write: Python's `ssl` module (OpenSSL) as a server
//! for the ringloop client and as a client of the ringloop server, TLS 1.2 and 1.3, ALPN
//! negotiated, 1 MiB each way byte-exact, clean closes both ways; and `openssl s_client`
//! against the ringloop server where the `openssl` tool is installed (CI installs it).
#![cfg(feature = "tls")]

mod support;

use std::io::{self, BufRead as _, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use ringloop::net::{TcpListener, TcpStream};
use ringloop::tls::{TlsAcceptor, TlsConnector, TlsStream};
use support::tls::Pki;

const MIB: usize = 1 << 20;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls_peer.py")
}

fn python() -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(peer_script());
    cmd
}

/// Starts the Python echo server; returns it and its port.
fn python_server(
    cert: &Path,
    key: &Path,
    version: &str,
    alpn: &str,
) -> (Child, u16, BufReader<std::process::ChildStdout>) {
    let mut child = python()
        .args(["server"])
        .arg(cert)
        .arg(key)
        .args([version, alpn])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (it is on the machine; CI checks)");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let port = line
        .strip_prefix("port ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("the Python server did not say its port: {line:?}"));
    (child, port, out)
}

/// Writes `data` from one task while reading the echo in another; closes cleanly.
async fn round_trip(tls: TlsStream<TcpStream>, data: Vec<u8>) -> Vec<u8> {
    let tls = Rc::new(tls);
    let writer = {
        let (tls, data) = (tls.clone(), data.clone());
        ringloop::spawn(async move {
            for piece in data.chunks(16 * 1024) {
                tls.write_all(piece.to_vec())
                    .await
                    .0
                    .expect("write to the Python server");
            }
            tls.shutdown()
                .await
                .expect("close_notify to the Python server");
        })
    };
    let mut got = Vec::with_capacity(data.len());
    loop {
        let (n, buf) = tls.read(Vec::with_capacity(32 * 1024)).await;
        match n.expect("read from the Python server") {
            0 => break,
            _ => got.extend_from_slice(&buf),
        }
    }
    writer.await.unwrap();
    got
}

/// Echoes until the peer's close_notify, then sends ours; returns the bytes echoed.
async fn echo(tls: TlsStream<TcpStream>) -> io::Result<usize> {
    let mut total = 0;
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        let (n, b) = tls.read(buf).await;
        buf = b;
        match n? {
            0 => break,
            n => total += n,
        }
        let (res, b) = tls.write_all(buf).await;
        res?;
        buf = b;
    }
    tls.shutdown().await?;
    Ok(total)
}

both_backends! {
    /// The ringloop client against Python's ssl server, TLS 1.3 then 1.2: ALPN h2 chosen from
    /// the server's list, 1 MiB echoed byte-exact, a clean close both ways.
    fn ringloop_client_python_server(rt) {
        let _wd = support::watchdog(Duration::from_secs(120), "ringloop_client_python_server");
        let pki = Pki::new();
        let leaf = pki.leaf("server", &["localhost"]);
        let connector = TlsConnector::new(pki.client(&[b"h2", b"http/1.1"]));
        for version in ["1.3", "1.2"] {
            let (mut child, port, mut out) =
                python_server(&leaf.cert_pem, &leaf.key_pem, version, "h2");
            let data = pattern(MIB);
            let (got, info) = rt.block_on(async {
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                let tls = connector
                    .connect("localhost", TcpStream::connect(addr).await.unwrap())
                    .await
                    .unwrap_or_else(|e| panic!("TLS {version} handshake with Python: {e}"));
                let info = tls.info();
                (round_trip(tls, data.clone()).await, info)
            });
            support::assert_bytes_eq("echoed by Python", &got, &data);
            assert_eq!(info.version, Some(if version == "1.3" { "TLSv1.3" } else { "TLSv1.2" }));
            assert_eq!(info.alpn_protocol.as_deref(), Some(&b"h2"[..]));
            let mut summary = String::new();
            out.read_line(&mut summary).unwrap();
            let status = child.wait().unwrap();
            assert!(status.success(), "the Python server failed: {summary}");
            assert_eq!(
                summary.trim(),
                format!("version TLSv{version} alpn h2 bytes {MIB}"),
                "what Python saw"
            );
        }
    }

    /// Python's ssl client against the ringloop server, TLS 1.3 then 1.2: ALPN http/1.1 (the
    /// one protocol both offer), 1 MiB echoed byte-exact, a clean close both ways.
    fn python_client_ringloop_server(rt) {
        let _wd = support::watchdog(Duration::from_secs(120), "python_client_ringloop_server");
        let pki = Pki::new();
        let leaf = pki.leaf("server", &["localhost"]);
        let acceptor = TlsAcceptor::new(pki.server(&leaf, &[b"http/1.1"]));
        for version in ["1.3", "1.2"] {
            rt.block_on(async {
                let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
                let port = listener.local_addr().unwrap().port().to_string();
                let ca = pki.ca_pem();
                let client = std::thread::spawn(move || {
                    python()
                        .arg("client")
                        .arg(&port)
                        .arg(&ca)
                        .args([version, "h2,http/1.1", &MIB.to_string()])
                        .output()
                        .expect("python3 runs")
                });
                let (tcp, _) = listener.accept().await.unwrap();
                let tls = acceptor
                    .accept(tcp)
                    .await
                    .unwrap_or_else(|e| panic!("TLS {version} handshake from Python: {e}"));
                let info = tls.info();
                assert_eq!(info.alpn_protocol.as_deref(), Some(&b"http/1.1"[..]));
                assert_eq!(info.server_name.as_deref(), Some("localhost"), "Python's SNI");
                let echoed = echo(tls).await;
                support::yield_until_within(Duration::from_secs(60), "the Python client", || {
                    client.is_finished()
                })
                .await;
                let output = client.join().unwrap();
                let stdout = String::from_utf8_lossy(&output.stdout);
                let stderr = String::from_utf8_lossy(&output.stderr);
                assert!(
                    output.status.success() && matches!(echoed, Ok(MIB)),
                    "echoed: {echoed:?}; the Python client said: {stdout}{stderr}"
                );
                assert_eq!(
                    stdout.trim(),
                    format!("version TLSv{version} alpn http/1.1 ok {MIB}")
                );
            });
        }
    }

    /// `openssl s_client` verifies the ringloop server's chain against the test CA, gets
    /// ALPN h2, and prints what the server sent before its clean close. Skipped (with a note)
    /// where the tool is not installed.
    fn openssl_s_client_against_ringloop_server(rt) {
        let _wd = support::watchdog(Duration::from_secs(60), "openssl_s_client_against_ringloop_server");
        if Command::new("openssl").arg("version").output().is_err() {
            eprintln!("openssl is not installed: skipped (CI installs it)");
            return;
        }
        let pki = Pki::new();
        let leaf = pki.leaf("server", &["localhost"]);
        let acceptor = TlsAcceptor::new(pki.server(&leaf, &[b"h2"]));
        rt.block_on(async {
            let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let ca = pki.ca_pem();
            let client = std::thread::spawn(move || -> io::Result<(String, String)> {
                let mut child = Command::new("openssl")
                    .args(["s_client", "-connect", &addr, "-servername", "localhost"])
                    .arg("-CAfile")
                    .arg(&ca)
                    .args(["-verify_return_error", "-alpn", "h2"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()?;
                // Its stdin stays open (s_client ends the connection at end of input), so it
                // ends when the server closes. The output is small: read one pipe, then the
                // other.
                let stdin = child.stdin.take();
                let mut stdout = String::new();
                io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout)?;
                let mut stderr = String::new();
                io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)?;
                child.wait()?;
                drop(stdin);
                Ok((stdout, stderr))
            });
            let (tcp, _) = listener.accept().await.unwrap();
            let tls = acceptor.accept(tcp).await.expect("handshake from openssl");
            tls.write_all(&b"hello from ringloop\n"[..]).await.0.unwrap();
            tls.shutdown().await.unwrap();
            support::yield_until_within(Duration::from_secs(30), "openssl s_client", || {
                client.is_finished()
            })
            .await;
            let (stdout, stderr) = client.join().unwrap().unwrap();
            assert!(stdout.contains("hello from ringloop"), "stdout: {stdout}\nstderr: {stderr}");
            assert!(stdout.contains("Verify return code: 0 (ok)"), "{stdout}\n{stderr}");
            assert!(stdout.contains("ALPN protocol: h2"), "{stdout}\n{stderr}");
            assert!(stdout.contains("TLSv1.3"), "{stdout}\n{stderr}");
        });
    }
}
