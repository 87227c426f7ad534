//! tokio's I/O traits (feature `tokio-io`) on both backends: tokio-util's `LinesCodec`
//! framed over a `TcpStream` and over owned halves, a `UnixStream` copied through tokio's
//! `copy`, `fs::File` written, sought and read back, a child's pipes, `StreamReader` /
//! `StreamWriter` joined into a `Duplex` read line by line, and a TLS stream.
#![cfg(feature = "tokio-io")]

mod net_support;
mod support;

use futures_util::{SinkExt, StreamExt};
use net_support::*;
use ringloop::net::UnixStream;
use ringloop::time;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Framed, FramedRead, FramedWrite, LinesCodec};

both_backends! {
    /// tokio-util's `LinesCodec` framed over a `TcpStream` through the tokio traits: 1 000
    /// lines of growing length go to an upper-casing server (framed over its owned halves)
    /// and come back upper-cased, in order; the server sees end of file when the client
    /// closes.
    fn lines_codec_over_tcp(backend: Backend) {
        let fx = fixture(backend, "lines_codec_over_tcp");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let server = ringloop::spawn(async move {
                let (r, w) = server.into_split();
                let mut lines = FramedRead::new(r, LinesCodec::new());
                let mut out = FramedWrite::new(w, LinesCodec::new());
                let mut n = 0;
                while let Some(line) = lines.next().await {
                    out.send(line.expect("server line").to_uppercase()).await.expect("server send");
                    n += 1;
                }
                SinkExt::<String>::close(&mut out).await.expect("server close");
                n
            });
            let mut framed = Framed::new(client, LinesCodec::new());
            let sent: Vec<String> = (0..1000).map(|i| format!("line {i} {}", "x".repeat(i % 200))).collect();
            let writer = async {
                for line in &sent {
                    framed.feed(line.clone()).await.expect("feed");
                }
                SinkExt::<String>::flush(&mut framed).await.expect("flush");
            };
            writer.await;
            for (i, want) in sent.iter().enumerate() {
                let got = time::timeout(READ_LIMIT, framed.next()).await.expect("a line in time");
                assert_eq!(got.expect("a line").expect("line"), want.to_uppercase(), "line {i}");
            }
            SinkExt::<String>::close(&mut framed).await.expect("client close");
            assert!(framed.next().await.is_none(), "end of file after the server closed");
            assert_eq!(server.await.expect("server task"), 1000);
        });
    }

    /// A `UnixStream` through tokio's `copy` and `read_to_end`: 1 MiB arrives byte for byte,
    /// and `shutdown` gives the reader end of file.
    fn unix_stream_through_tokio_copy(backend: Backend) {
        let fx = fixture(backend, "unix_stream_through_tokio_copy");
        fx.rt.block_on(async {
            let (a, b) = UnixStream::pair().expect("socketpair");
            let data = pattern(1024 * 1024);
            let sent = data.clone();
            let writer = ringloop::spawn(async move {
                let mut a = a;
                let mut src: &[u8] = &sent;
                tokio::io::copy(&mut src, &mut a).await.expect("copy");
                AsyncWriteExt::shutdown(&mut a).await.expect("shutdown");
            });
            let mut b = b;
            let mut got = Vec::new();
            time::timeout(READ_LIMIT * 3, b.read_to_end(&mut got))
                .await
                .expect("end of file in time")
                .expect("read_to_end");
            support::assert_bytes_eq("through tokio copy", &got, &data);
            writer.await.expect("writer task");
        });
    }

    /// `fs::File` through the tokio traits: written, flushed, sought back and read to the end;
    /// a second handle reads it line by line through a `BufReader`.
    fn file_through_tokio_traits(backend: Backend) {
        let fx = fixture(backend, "file_through_tokio_traits");
        fx.rt.block_on(async {
            let dir = std::env::temp_dir().join(format!(
                "ringloop-tokio-io-{}-{}",
                std::process::id(),
                variant_name(backend)
            ));
            std::fs::create_dir_all(&dir).expect("scratch dir");
            let path = dir.join("lines.txt");
            let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
            let mut file = ringloop::fs::File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .await
                .expect("open");
            AsyncWriteExt::write_all(&mut file, text.as_bytes()).await.expect("write_all");
            AsyncWriteExt::flush(&mut file).await.expect("flush");
            assert_eq!(file.stream_position(), text.len() as u64);
            file.seek(std::io::SeekFrom::Start(0)).await.expect("seek");
            let mut back = String::new();
            file.read_to_string(&mut back).await.expect("read_to_string");
            assert_eq!(back, text, "read back through tokio's AsyncRead");
            file.close().await.expect("close");

            let file = ringloop::fs::File::open(&path).await.expect("open again");
            let mut lines = tokio::io::BufReader::new(file).lines();
            let mut n = 0;
            while let Some(line) = lines.next_line().await.expect("next_line") {
                assert_eq!(line, format!("line {n}"));
                n += 1;
            }
            assert_eq!(n, 5000);
            std::fs::remove_dir_all(&dir).expect("remove scratch dir");
        });
    }

    /// A child's pipes through the tokio traits: `cat` echoes what is written to its stdin
    /// (shut down to end it) on its stdout; `sh` writes to its stderr.
    fn child_pipes_through_tokio_traits(backend: Backend) {
        let fx = fixture(backend, "child_pipes_through_tokio_traits");
        fx.rt.block_on(async {
            use ringloop::process::{Command, Stdio};
            let mut child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn cat");
            let mut stdin = child.stdin.take().expect("stdin");
            let mut stdout = child.stdout.take().expect("stdout");
            let data = pattern(300 * 1024);
            let sent = data.clone();
            let feeder = ringloop::spawn(async move {
                AsyncWriteExt::write_all(&mut stdin, &sent).await.expect("write to cat");
                stdin.shutdown().await.expect("shutdown stdin");
                drop(stdin);
            });
            let mut got = Vec::new();
            time::timeout(READ_LIMIT * 3, AsyncReadExt::read_to_end(&mut stdout, &mut got))
                .await
                .expect("cat's output in time")
                .expect("read cat's stdout");
            support::assert_bytes_eq("cat's echo", &got, &data);
            feeder.await.expect("feeder");
            assert!(child.wait().await.expect("wait cat").success());

            let mut child = Command::new("sh")
                .args(["-c", "echo oops >&2"])
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn sh");
            let mut err = String::new();
            child.stderr.take().expect("stderr").read_to_string(&mut err).await.expect("read stderr");
            assert_eq!(err, "oops\n");
            child.wait().await.expect("wait sh");
        });
    }

    /// A `StreamReader` and `StreamWriter` joined into a `Duplex` are read line by line with
    /// tokio's `AsyncBufReadExt` and written with its `AsyncWriteExt`.
    fn duplex_streams_through_tokio_traits(backend: Backend) {
        let fx = fixture(backend, "duplex_streams_through_tokio_traits");
        fx.rt.block_on(async {
            use ringloop::streams::{open_connection, start_server};
            let server = start_server(
                |reader, writer| async move {
                    let mut conn = reader.join(writer);
                    let mut line = String::new();
                    while conn.read_line(&mut line).await.unwrap_or(0) > 0 {
                        conn.write_all(line.to_uppercase().as_bytes()).await.expect("echo");
                        line.clear();
                    }
                    let _ = conn.shutdown().await;
                },
                "127.0.0.1:0",
            )
            .await
            .expect("start_server");
            let addr = server.local_addrs()[0].as_inet().expect("inet address");
            let (reader, writer) = open_connection(addr).await.expect("connect");
            let mut conn = reader.join(writer);
            for i in 0..50 {
                conn.write_all(format!("hello {i}\n").as_bytes()).await.expect("write");
                let mut line = String::new();
                time::timeout(READ_LIMIT, conn.read_line(&mut line))
                    .await
                    .expect("a line in time")
                    .expect("read_line");
                assert_eq!(line, format!("HELLO {i}\n"));
            }
            conn.shutdown().await.expect("shutdown");
            server.close();
            server.wait_closed().await;
        });
    }
}

#[cfg(feature = "tls")]
both_backends! {
    /// A TLS stream through the tokio traits: `LinesCodec` framed over it both ways.
    fn tls_stream_through_tokio_traits(backend: Backend) {
        let fx = fixture(backend, "tls_stream_through_tokio_traits");
        fx.rt.block_on(async {
            let pair = support::tls::Pair::new(&[], &[]);
            let (listener, addr) = listen();
            let acceptor = pair.acceptor.clone();
            let server = ringloop::spawn(async move {
                let (tcp, _) = listener.accept().await.expect("accept");
                let tls = acceptor.accept(tcp).await.expect("TLS accept");
                let mut framed = Framed::new(tls, LinesCodec::new());
                while let Some(line) = framed.next().await {
                    framed.send(line.expect("line").to_uppercase()).await.expect("send");
                }
            });
            let tcp = ringloop::net::TcpStream::connect(addr).await.expect("connect");
            let tls = pair.connector.connect("localhost", tcp).await.expect("TLS connect");
            let mut framed = Framed::new(tls, LinesCodec::new());
            for i in 0..50 {
                framed.send(format!("secret {i}")).await.expect("send");
                let got = time::timeout(READ_LIMIT, framed.next()).await.expect("a line in time");
                assert_eq!(got.expect("a line").expect("line"), format!("SECRET {i}"));
            }
            SinkExt::<String>::close(&mut framed).await.expect("close");
            server.await.expect("server task");
        });
    }
}

both_backends! {
    /// Bytes a `poll_write` accepted reach the peer without a flush, while the writer waits
    /// on something else (the peer task): the writer's send buffer is tiny, so the send of
    /// the last accepted chunk comes back short, and the rest must still go out.
    fn accepted_bytes_are_sent_without_a_flush(backend: Backend) {
        let fx = fixture(backend, "accepted_bytes_are_sent_without_a_flush");
        fx.rt.block_on(async {
            const LEN: usize = 256 * 1024;
            let (mut writer, reader) = UnixStream::pair().expect("pair");
            socket2::SockRef::from(&writer).set_send_buffer_size(4096).expect("SO_SNDBUF");
            let data = pattern(LEN);
            let expected = data.clone();
            let peer = ringloop::spawn(async move {
                let mut got = Vec::with_capacity(LEN);
                while got.len() < LEN {
                    let (res, buf) = reader.read(Vec::with_capacity(LEN - got.len())).await;
                    let n = res.expect("peer read");
                    assert!(n > 0, "end of file after {} of {LEN} bytes", got.len());
                    got.extend_from_slice(&buf);
                }
                assert!(got == expected, "the bytes arrived changed");
                reader
            });
            AsyncWriteExt::write_all(&mut writer, &data).await.expect("write_all");
            let done = time::timeout(READ_LIMIT, peer).await;
            let _reader = done.expect("the peer got every byte in time").expect("peer task");
            // Dropped with nothing unsent: the stream's sending task ends with it.
            drop(writer);
        });
    }
}

#[cfg(feature = "tls")]
both_backends! {
    /// The same over TLS: plaintext a `poll_write` accepted is encrypted and sent without a
    /// flush, although the client's send buffer is tiny and its sends come back short.
    fn accepted_tls_bytes_are_sent_without_a_flush(backend: Backend) {
        let fx = fixture(backend, "accepted_tls_bytes_are_sent_without_a_flush");
        fx.rt.block_on(async {
            const LEN: usize = 256 * 1024;
            let pair = support::tls::Pair::new(&[], &[]);
            let (client, server) = UnixStream::pair().expect("pair");
            let acceptor = pair.acceptor.clone();
            let data = pattern(LEN);
            let expected = data.clone();
            let server = ringloop::spawn(async move {
                let mut tls = acceptor.accept(server).await.expect("TLS accept");
                let mut got = vec![0u8; LEN];
                AsyncReadExt::read_exact(&mut tls, &mut got).await.expect("server read_exact");
                assert!(got == expected, "the bytes arrived changed");
                tls
            });
            let mut tls = pair.connector.connect("localhost", client).await.expect("TLS connect");
            socket2::SockRef::from(tls.get_ref()).set_send_buffer_size(4096).expect("SO_SNDBUF");
            AsyncWriteExt::write_all(&mut tls, &data).await.expect("write_all");
            let done = time::timeout(READ_LIMIT, server).await;
            let _server_tls = done.expect("the server got every byte in time").expect("server task");
        });
    }
}
