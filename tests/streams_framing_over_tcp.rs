//! Framed reads on a real connection: lines and records sent a byte at a time (`TCP_NODELAY`,
//! one send each) come out whole, a line longer than the server's limit is an error that
//! keeps its bytes, and `readexactly` at the peer's early EOF hands over the partial bytes.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use ringloop::net::TcpStream;
use ringloop::streams::{ReadError, StreamReader, StreamWriter, start_server_with_limit};
use ringloop::transport::Server;
use ringloop::{Handle, LoopFuture};

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// A server with reader limit `limit` whose first connection is handed to `handler`; the
/// returned future gets the handler's result.
async fn serve_once<T, F, Fut>(limit: usize, handler: F) -> (Server, SocketAddr, LoopFuture<T>)
where
    T: 'static,
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future<Output = T> + 'static,
{
    let result = Handle::current().create_future::<T>();
    let setter = result.clone();
    let handler = std::rc::Rc::new(handler);
    let server = start_server_with_limit(
        move |reader, writer| {
            let (setter, handler) = (setter.clone(), handler.clone());
            async move {
                let out = handler(reader, writer).await;
                let _ = setter.set_result(out);
            }
        },
        "127.0.0.1:0",
        limit,
    )
    .await
    .expect("start_server on 127.0.0.1:0");
    let addr = server.local_addrs()[0].as_inet().expect("an IP address");
    (server, addr, result)
}

/// Sends `data` one byte per `send`, with Nagle off so each byte may travel alone.
async fn send_bytewise(client: &TcpStream, data: &[u8]) {
    client.set_nodelay(true).unwrap();
    for &b in data {
        let (res, _) = client.write_all(vec![b]).await;
        res.unwrap();
        ringloop::yield_now().await;
    }
}

both_backends! {
    /// Lines and `\r\n` records sent one byte at a time are read whole and in order by
    /// `readline` and `readuntil`; the last, unterminated line comes at EOF.
    fn records_sent_bytewise_arrive_whole(rt) {
        let _w = support::watchdog(TEST_LIMIT, "records_sent_bytewise_arrive_whole");
        rt.block_on(async {
            let (server, addr, got) = serve_once(1024, |mut reader, _writer| async move {
                let mut records = Vec::new();
                for _ in 0..3 {
                    records.push(reader.readline().await.unwrap());
                }
                records.push(reader.readuntil(b"\r\n").await.unwrap());
                records.push(reader.readline().await.unwrap());
                records.push(reader.readline().await.unwrap());
                records
            })
            .await;
            let client = TcpStream::connect(addr).await.unwrap();
            send_bytewise(&client, b"first\nsecond line\n\nGET / HTTP/1.1\r\ntail").await;
            client.shutdown(std::net::Shutdown::Write).unwrap();
            let records = got.await.unwrap();
            let want: [&[u8]; 6] =
                [b"first\n", b"second line\n", b"\n", b"GET / HTTP/1.1\r\n", b"tail", b""];
            assert_eq!(records, want);
            server.close();
        });
    }

    /// A line longer than the reader's limit fails `readline` with `LimitOverrun`; the whole
    /// line is still buffered (read back with `readexactly`), and the next line is fine.
    /// (The overrun may be reported before the whole line arrived — the fault injector
    /// delivers it in pieces — so the line is read back by its length, not by `consumed`.)
    fn line_over_limit_keeps_bytes(rt) {
        let _w = support::watchdog(TEST_LIMIT, "line_over_limit_keeps_bytes");
        rt.block_on(async {
            let long_line = [vec![b'x'; 100], b"\n".to_vec()].concat();
            let len = long_line.len();
            let (server, addr, got) = serve_once(16, move |mut reader, _writer| async move {
                let err = match reader.readline().await {
                    Err(ReadError::LimitOverrun(e)) => e,
                    other => panic!("want LimitOverrun, got {other:?}"),
                };
                assert!(err.consumed > 16);
                // Nothing was taken: every byte of the line reads back.
                let line = reader.readexactly(len).await.unwrap();
                let next = reader.readline().await.unwrap();
                (line, next)
            })
            .await;
            let client = TcpStream::connect(addr).await.unwrap();
            let (res, _) = client.write_all([&long_line[..], b"short\n"].concat()).await;
            res.unwrap();
            let (line, next) = got.await.unwrap();
            support::assert_bytes_eq("the long line", &line, &long_line);
            assert_eq!(next, b"short\n");
            server.close();
        });
    }

    /// `readexactly(n)` when the peer sends fewer than `n` bytes and closes fails with
    /// `Incomplete`, whose `partial` holds exactly the bytes sent.
    fn readexactly_at_early_eof_returns_partial(rt) {
        let _w = support::watchdog(TEST_LIMIT, "readexactly_at_early_eof_returns_partial");
        rt.block_on(async {
            let (server, addr, got) = serve_once(1024, |mut reader, _writer| async move {
                let head = reader.readexactly(4).await.unwrap();
                let rest = match reader.readexactly(1000).await {
                    Err(ReadError::Incomplete(e)) => Err(e),
                    other => Ok(format!("want Incomplete, got {other:?}")),
                };
                (head, rest)
            })
            .await;
            let client = TcpStream::connect(addr).await.unwrap();
            send_bytewise(&client, b"headpartial body").await;
            drop(client);
            let (head, rest) = got.await.unwrap();
            assert_eq!(head, b"head");
            let e = rest.unwrap_err();
            assert_eq!(e.partial, b"partial body");
            assert_eq!(e.expected, Some(1000));
            server.close();
        });
    }
}
