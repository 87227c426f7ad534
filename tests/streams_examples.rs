//! The streams examples work: the code of `examples/echo_server.rs` and `examples/chat.rs`
//! is compiled into this test (their `main` is not run) and their servers, started on a free
//! port, echo and relay chat lines on both backends.

// Each example includes its own copy of `examples/common/shutdown.rs`, as when it is built
// alone.
#![allow(clippy::duplicate_mod)]

mod support;

#[allow(dead_code)]
#[path = "../examples/chat.rs"]
mod chat;
#[allow(dead_code)]
#[path = "../examples/echo_server.rs"]
mod echo_server;

use std::time::Duration;

use ringloop::streams::{StreamReader, StreamWriter, open_connection};

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// A chat client: its reader, its writer, and the name the server gives it (its address).
async fn join(addr: std::net::SocketAddr) -> (StreamReader, StreamWriter, String) {
    let (reader, writer) = open_connection(addr).await.unwrap();
    let name = writer.get_extra_info("sockname").unwrap();
    let name = name.as_addr().unwrap().to_string();
    (reader, writer, name)
}

both_backends! {
    /// The `echo_server` example sends back 1 MiB byte-exact and closes after the client's
    /// half-close.
    fn echo_server_example_echoes(rt) {
        let _w = support::watchdog(TEST_LIMIT, "echo_server_example_echoes");
        rt.block_on(async {
            let server = echo_server::start("127.0.0.1:0").await.unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let (mut reader, writer) = open_connection(addr).await.unwrap();
            let data: Vec<u8> = (0..1024 * 1024).map(|i: usize| (i * 31 % 251) as u8).collect();
            let payload = data.clone();
            ringloop::spawn(async move {
                for chunk in payload.chunks(64 * 1024) {
                    writer.write(chunk).unwrap();
                    writer.drain().await.unwrap();
                }
                writer.write_eof();
                writer.wait_closed().await.unwrap();
            });
            let echoed = reader.read_until_eof().await.unwrap();
            support::assert_bytes_eq("echo", &echoed, &data);
            server.close();
            server.wait_closed().await;
        });
    }

    /// The `chat` example announces arrivals and departures to the others, and relays each
    /// line, prefixed with its sender's name, to every client but the sender.
    fn chat_example_relays_lines(rt) {
        let _w = support::watchdog(TEST_LIMIT, "chat_example_relays_lines");
        rt.block_on(async {
            let server = chat::start("127.0.0.1:0").await.unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let (mut a, a_writer, a_name) = join(addr).await;
            let (mut b, b_writer, b_name) = join(addr).await;
            let line = |text: String| text.into_bytes();
            assert_eq!(a.readline().await.unwrap(), line(format!("* {b_name} joined\n")));
            let (mut c, c_writer, c_name) = join(addr).await;
            assert_eq!(a.readline().await.unwrap(), line(format!("* {c_name} joined\n")));
            assert_eq!(b.readline().await.unwrap(), line(format!("* {c_name} joined\n")));

            a_writer.write(b"hello all\n").unwrap();
            for reader in [&mut b, &mut c] {
                assert_eq!(reader.readline().await.unwrap(), line(format!("{a_name}: hello all\n")));
            }
            b_writer.write(b"hi a\n").unwrap();
            // A's next line is B's, not its own echo.
            assert_eq!(a.readline().await.unwrap(), line(format!("{b_name}: hi a\n")));
            assert_eq!(c.readline().await.unwrap(), line(format!("{b_name}: hi a\n")));

            c_writer.close();
            drop(c);
            for reader in [&mut a, &mut b] {
                assert_eq!(reader.readline().await.unwrap(), line(format!("* {c_name} left\n")));
            }
            drop((a, a_writer, b, b_writer));
            server.close();
            server.wait_closed().await;
        });
    }
}
