//! Streams over Unix sockets: `start_unix_server`/`open_unix_connection` echo lines, carry a
//! half-close, and apply the same backpressure as TCP; the server's socket file is gone after
//! it closes.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use ringloop::Backend;
use ringloop::streams::{open_unix_connection, start_unix_server};

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// A socket path unique to this process, test and backend.
fn socket_path(test: &str, backend: Backend) -> PathBuf {
    std::env::temp_dir().join(format!(
        "ringloop-streams-{test}-{backend:?}-{}.sock",
        std::process::id()
    ))
}

both_backends! {
    /// Lines sent over a Unix socket come back whole from a `start_unix_server` echo; after
    /// the client's `write_eof` the server reads EOF, answers, and closes; the peer name is
    /// the socket's path; closing the server removes its socket file.
    fn unix_echo_and_half_close(backend: Backend) {
        let _w = support::watchdog(TEST_LIMIT, "unix_echo_and_half_close");
        let rt = support::runtime(backend);
        let path = socket_path("echo", backend);
        rt.block_on(async {
            let server = start_unix_server(
                |mut reader, writer| async move {
                    let mut lines = 0;
                    while let Ok(line) = reader.readline().await {
                        if line.is_empty() {
                            break;
                        }
                        lines += 1;
                        writer.write(&line).unwrap();
                        writer.drain().await.unwrap();
                    }
                    assert!(reader.at_eof());
                    writer.write(format!("{lines} lines\n").as_bytes()).unwrap();
                    writer.close();
                },
                &path,
            )
            .await
            .unwrap();
            let (mut reader, writer) = open_unix_connection(&path).await.unwrap();
            let peer = writer.get_extra_info("peername").expect("peername");
            let peer_path = peer.as_addr().and_then(|a| a.as_unix()).and_then(|a| a.as_pathname());
            assert_eq!(peer_path, Some(path.as_path()));
            for i in 0..100 {
                let line = format!("unix line {i}\n");
                writer.write(line.as_bytes()).unwrap();
                assert_eq!(reader.readline().await.unwrap(), line.as_bytes());
            }
            writer.write_eof();
            assert_eq!(reader.readline().await.unwrap(), b"100 lines\n");
            assert_eq!(reader.readline().await.unwrap(), b"");
            assert!(reader.at_eof());
            writer.close();
            writer.wait_closed().await.unwrap();
            server.close();
            server.wait_closed().await;
            assert!(!path.exists(), "the closed server removed {}", path.display());
        });
    }

    /// `open_unix_connection` to a path with no socket fails with `NotFound`, naming it.
    fn unix_connect_to_missing_path(backend: Backend) {
        let _w = support::watchdog(TEST_LIMIT, "unix_connect_to_missing_path");
        let rt = support::runtime(backend);
        let path = socket_path("missing", backend);
        rt.block_on(async {
            let err = open_unix_connection(&path).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
            assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        });
    }

    /// 4 MiB written through a Unix socket with a `drain` after each 64 KiB arrive in full
    /// and in order, and every `drain` returns with the write buffer at or below the
    /// high-water mark.
    fn unix_drain_applies_backpressure(backend: Backend) {
        let _w = support::watchdog(TEST_LIMIT, "unix_drain_applies_backpressure");
        let rt = support::runtime(backend);
        let path = socket_path("drain", backend);
        rt.block_on(async {
            const TOTAL: usize = 4 * 1024 * 1024;
            let data: Vec<u8> = (0..TOTAL).map(|i| (i * 31 % 251) as u8).collect();
            let expected = data.clone();
            let got = ringloop::Handle::current().create_future::<Vec<u8>>();
            let setter = got.clone();
            let server = start_unix_server(
                move |mut reader, _writer| {
                    let setter = setter.clone();
                    async move {
                        let _ = setter.set_result(reader.read_until_eof().await.unwrap());
                    }
                },
                &path,
            )
            .await
            .unwrap();
            let (_reader, writer) = open_unix_connection(&path).await.unwrap();
            let (_low, high) = writer.transport().get_write_buffer_limits();
            for chunk in data.chunks(64 * 1024) {
                writer.write(chunk).unwrap();
                writer.drain().await.unwrap();
                let held = writer.transport().get_write_buffer_size();
                assert!(held <= high, "drain returned with {held} bytes buffered");
            }
            writer.write_eof();
            support::assert_bytes_eq("bytes through the unix socket", &got.await.unwrap(), &expected);
            writer.close();
            server.close();
            server.wait_closed().await;
        });
    }
}
