//! Streams through the futures-io traits, as codecs and `futures-lite` helpers use them: an
//! echo server that is just `io::copy(reader, writer)`, a client that talks to it with
//! `write_all`/`flush`/`read_line`/`read_exact`/`close`, and a payload larger than every
//! buffer on the way, which the traits' backpressure carries through intact.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt, io};
use ringloop::streams::{open_connection, start_server};
use ringloop::transport::Server;

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// An echo server built from `futures_lite::io::copy`; closes after the client's EOF.
async fn copy_server() -> (Server, SocketAddr) {
    let server = start_server(
        |reader, mut writer| async move {
            let _ = io::copy(reader, &mut writer).await;
            let _ = AsyncWriteExt::close(&mut writer).await;
        },
        "127.0.0.1:0",
    )
    .await
    .expect("start_server on 127.0.0.1:0");
    let addr = server.local_addrs()[0].as_inet().expect("an IP address");
    (server, addr)
}

both_backends! {
    /// Lines written with `AsyncWriteExt::write_all` + `flush` (and one `write_vectored`,
    /// which takes every slice) come back through `AsyncBufReadExt::read_line` and `lines`; after `AsyncWriteExt::close` (which waits for the close) the
    /// writer refuses writes.
    fn line_codec_over_the_traits(rt) {
        let _w = support::watchdog(TEST_LIMIT, "line_codec_over_the_traits");
        rt.block_on(async {
            let (server, addr) = copy_server().await;
            let (mut reader, mut writer) = open_connection(addr).await.unwrap();
            for i in 0..20 {
                let line = format!("message {i}\n");
                writer.write_all(line.as_bytes()).await.unwrap();
                writer.flush().await.unwrap();
                let mut got = String::new();
                reader.read_line(&mut got).await.unwrap();
                assert_eq!(got, line);
            }
            let parts = [std::io::IoSlice::new(b"vec"), std::io::IoSlice::new(b"tored\n")];
            assert_eq!(writer.write_vectored(&parts).await.unwrap(), 9, "every slice taken");
            let mut got = String::new();
            reader.read_line(&mut got).await.unwrap();
            assert_eq!(got, "vectored\n");
            let mut lines = (&mut reader).lines();
            writer.write_all(b"a\nb\n").await.unwrap();
            assert_eq!(futures_lite::StreamExt::next(&mut lines).await.unwrap().unwrap(), "a");
            assert_eq!(futures_lite::StreamExt::next(&mut lines).await.unwrap().unwrap(), "b");
            AsyncWriteExt::close(&mut writer).await.unwrap();
            assert!(writer.is_closing());
            assert!(writer.write_all(b"after close").await.is_err());
            server.close();
            server.wait_closed().await;
        });
    }

    /// A 4 MiB payload written with one `write_all` while another task reads it back with
    /// `read_exact` arrives byte for byte: `poll_write` waits for the buffer to drain
    /// instead of growing it, and the server's `io::copy` is held back the same way.
    fn large_payload_through_copy(rt) {
        let _w = support::watchdog(TEST_LIMIT, "large_payload_through_copy");
        rt.block_on(async {
            const TOTAL: usize = 4 * 1024 * 1024;
            let (server, addr) = copy_server().await;
            let (mut reader, mut writer) = open_connection(addr).await.unwrap();
            let data: Vec<u8> = (0..TOTAL).map(|i| (i * 31 % 251) as u8).collect();
            let reading = ringloop::spawn(async move {
                let mut got = vec![0; TOTAL];
                reader.read_exact(&mut got).await.unwrap();
                let mut rest = Vec::new();
                reader.read_to_end(&mut rest).await.unwrap();
                (got, rest)
            });
            let (_low, high) = writer.transport().get_write_buffer_limits();
            let mut most_buffered = 0;
            for chunk in data.chunks(256 * 1024) {
                writer.write_all(chunk).await.unwrap();
                most_buffered = most_buffered.max(writer.transport().get_write_buffer_size());
            }
            assert!(
                most_buffered <= high + 256 * 1024,
                "poll_write let the buffer grow to {most_buffered} bytes"
            );
            writer.write_eof();
            let (got, rest) = reading.await.unwrap();
            support::assert_bytes_eq("echoed payload", &got, &data);
            assert!(rest.is_empty(), "{} bytes after the payload", rest.len());
            AsyncWriteExt::close(&mut writer).await.unwrap();
            server.close();
            server.wait_closed().await;
        });
    }
}
