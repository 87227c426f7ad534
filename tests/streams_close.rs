//! How stream connections end: a write after `close` is an error, `write_eof` is a
//! half-close (the peer reads to EOF and can still answer), dropping both halves closes the
//! connection, and a reset reaches the reader after the bytes that preceded it.

mod support;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::AsyncWriteExt as _;
use ringloop::net::TcpListener;
use ringloop::streams::{ReadError, open_connection, start_server};
use ringloop::transport::Server;
use ringloop::{Handle, LoopFuture};

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// A server that reads its client to EOF, answers with how many bytes it got, and closes;
/// the future gets whether its reader was `at_eof` after the read (and not before).
async fn counting_server() -> (Server, SocketAddr, LoopFuture<(bool, bool)>) {
    let seen = Handle::current().create_future::<(bool, bool)>();
    let setter = seen.clone();
    let server = start_server(
        move |mut reader, writer| {
            let setter = setter.clone();
            async move {
                let before = reader.at_eof();
                let got = reader.read_until_eof().await.unwrap();
                let _ = setter.set_result((before, reader.at_eof()));
                writer
                    .write(format!("got {}\n", got.len()).as_bytes())
                    .unwrap();
                writer.close();
            }
        },
        "127.0.0.1:0",
    )
    .await
    .expect("start_server on 127.0.0.1:0");
    let addr = server.local_addrs()[0].as_inet().expect("an IP address");
    (server, addr, seen)
}

both_backends! {
    /// After `close`, `write` fails with `NotConnected` (the bytes are not silently
    /// dropped), `AsyncWrite` writes fail too, `wait_closed` succeeds, and `drain` then
    /// reports the lost connection.
    fn write_after_close_is_an_error(rt) {
        let _w = support::watchdog(TEST_LIMIT, "write_after_close_is_an_error");
        rt.block_on(async {
            let (server, addr, _seen) = counting_server().await;
            let (_reader, mut writer) = open_connection(addr).await.unwrap();
            writer.write(b"before").unwrap();
            writer.close();
            assert!(writer.is_closing());
            assert_eq!(writer.write(b"after").unwrap_err().kind(), ErrorKind::NotConnected);
            assert_eq!(writer.writelines([&b"x"[..]]).unwrap_err().kind(), ErrorKind::NotConnected);
            assert!(writer.write_all(b"after").await.is_err());
            writer.wait_closed().await.unwrap();
            assert_eq!(writer.drain().await.unwrap_err().kind(), ErrorKind::ConnectionReset);
            server.close();
        });
    }

    /// `write_eof` is a half-close: the peer's reader gets every byte, then EOF (`at_eof`
    /// false before, true after), and its answer still reaches this side's reader.
    fn write_eof_is_a_half_close(rt) {
        let _w = support::watchdog(TEST_LIMIT, "write_eof_is_a_half_close");
        rt.block_on(async {
            let (server, addr, seen) = counting_server().await;
            let (mut reader, writer) = open_connection(addr).await.unwrap();
            assert!(writer.can_write_eof());
            writer.write(&[7; 1000]).unwrap();
            writer.write_eof();
            assert_eq!(writer.write(b"late").unwrap_err().kind(), ErrorKind::InvalidInput);
            assert_eq!(seen.await.unwrap(), (false, true));
            assert_eq!(reader.readline().await.unwrap(), b"got 1000\n");
            assert_eq!(reader.readline().await.unwrap(), b"");
            assert!(reader.at_eof());
            writer.close();
            writer.wait_closed().await.unwrap();
            server.close();
        });
    }

    /// Dropping a connection's reader and writer without `close` still closes it: the
    /// bytes written before are delivered, then the peer reads EOF.
    fn dropping_both_halves_closes(rt) {
        let _w = support::watchdog(TEST_LIMIT, "dropping_both_halves_closes");
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = listener.local_addr().unwrap();
            let (reader, writer) = open_connection(addr).await.unwrap();
            let (peer, _) = listener.accept().await.unwrap();
            writer.write(b"last words").unwrap();
            drop(writer);
            let (res, buf) = peer.read_exact(Vec::with_capacity(10)).await;
            res.unwrap();
            assert_eq!(buf, b"last words");
            let peer = std::rc::Rc::new(peer);
            let next_read = {
                let peer = peer.clone();
                ringloop::spawn(async move { peer.read(Vec::with_capacity(16)).await.0 })
            };
            // The reader alone keeps the connection open: no EOF while it lives.
            ringloop::time::sleep(Duration::from_millis(20)).await;
            assert!(!next_read.is_finished(), "EOF while the reader was alive");
            drop(reader);
            let res = ringloop::time::timeout(Duration::from_secs(5), next_read)
                .await
                .expect("no EOF after both halves were dropped")
                .unwrap();
            assert_eq!(res.unwrap(), 0, "the peer reads EOF");
        });
    }

    /// A reset by the peer: the reader first returns the bytes sent before it, then the
    /// reset as an error; `wait_closed` reports the reset too.
    fn reset_reaches_reader_after_data(rt) {
        let _w = support::watchdog(TEST_LIMIT, "reset_reaches_reader_after_data");
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = listener.local_addr().unwrap();
            let (mut reader, writer) = open_connection(addr).await.unwrap();
            let (peer, _) = listener.accept().await.unwrap();
            let (res, _) = peer.write_all(b"line before reset\npartial".as_slice()).await;
            res.unwrap();
            assert_eq!(reader.readline().await.unwrap(), b"line before reset\n");
            peer.set_linger(Some(Duration::ZERO)).unwrap();
            drop(peer); // SO_LINGER 0: close sends a reset
            let err = writer.wait_closed().await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionReset);
            match reader.readline().await {
                Err(ReadError::Io(e)) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
                other => panic!("want the reset, got {other:?}"),
            }
            assert_eq!(reader.read(100).await.unwrap(), b"partial");
            assert_eq!(reader.read(100).await.unwrap_err().kind(), ErrorKind::ConnectionReset);
            assert_eq!(writer.drain().await.unwrap_err().kind(), ErrorKind::ConnectionReset);
        });
    }
}
