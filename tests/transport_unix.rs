//! Unix-socket transports on both backends: `create_unix_server`/`create_unix_connection`
//! echo byte-exact with half-close; addresses are Unix paths; a stale socket file is replaced,
//! another kind of file is not; the server removes its socket file when it closes.

mod support;
mod transport_support;

use std::io::ErrorKind;
use std::path::PathBuf;

use ringloop::transport;
use support::assert_bytes_eq;
use transport_support::{Callback, Recorder, Shared, TEST_LIMIT, pattern, wait_until};

/// A socket path unique to this process, test and backend.
fn socket_path(test: &str, backend: ringloop::Backend) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "ringloop-{test}-{backend:?}-{}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

both_backends! {
    /// An echo server on a Unix socket returns every byte in order; after the client's
    /// `write_eof` both sides see one `eof_received` and `connection_lost(None)`. The client's
    /// `peername` is the server's path; once the server has closed, the file is gone.
    fn unix_echo_round_trip(backend: Backend) {
        let _watchdog = support::watchdog(TEST_LIMIT, "unix_echo_round_trip");
        let rt = support::runtime(backend);
        let path = socket_path("unix-echo", backend);
        rt.block_on(async {
            let shared = Shared::default();
            let factory = shared.clone();
            let server = transport::create_unix_server(move || factory.add(Recorder::echoing), &path)
                .await
                .expect("create_unix_server");
            let listening = server.local_addrs()[0].clone();
            assert_eq!(listening.as_unix().unwrap().as_pathname(), Some(path.as_path()));

            let (client, recorder) = transport::create_unix_connection(Recorder::default, &path)
                .await
                .expect("create_unix_connection");
            let peer = client.peername().unwrap();
            assert_eq!(peer.as_unix().unwrap().as_pathname(), Some(path.as_path()));
            assert!(client.fd().is_some());

            let data = pattern(512 * 1024 + 5);
            client.write(&data).unwrap();
            client.write_eof();
            wait_until("the client's connection_lost", || recorder.borrow().lost()).await;
            {
                let r = recorder.borrow();
                assert_bytes_eq("echo", &r.received, &data);
                assert_eq!(r.count(&Callback::Eof), 1);
                assert_eq!(r.lost_with(), Some(None));
            }
            wait_until("the server side's connection_lost", || shared.get(0).borrow().lost()).await;
            server.close();
            server.wait_closed().await;
        });
        assert!(!path.exists(), "the server's socket file remains after wait_closed");
    }

    /// A stale socket file (left by a listener that is gone) does not stop
    /// `create_unix_server`; a regular file at the path does, and is left untouched.
    fn stale_socket_is_replaced_but_other_files_are_not(backend: Backend) {
        let _watchdog = support::watchdog(TEST_LIMIT, "stale_socket_is_replaced_but_other_files_are_not");
        let rt = support::runtime(backend);
        let path = socket_path("unix-stale", backend);
        rt.block_on(async {
            drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
            assert!(path.exists(), "std leaves the socket file behind");
            let server = transport::create_unix_server(Recorder::default, &path)
                .await
                .expect("bind over a stale socket file");
            let (client, _) = transport::create_unix_connection(Recorder::default, &path).await.unwrap();
            client.close();
            server.close();
            server.wait_closed().await;

            std::fs::write(&path, b"not a socket").unwrap();
            let err = transport::create_unix_server(Recorder::default, &path).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
            assert!(err.to_string().contains(&path.display().to_string()), "{err}");
            assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
            std::fs::remove_file(&path).unwrap();

            let err = transport::create_unix_connection(Recorder::default, &path).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        });
    }
}
