//! TCP data paths on both backends: echo round trips and addresses, many concurrent
//! connections, half-close, `read_exact` at an early EOF, a large write through a tiny send
//! buffer, vectored reads and writes, and connecting by host name.
//!
//! Every test holds the fd lock through `net_support::fixture` (see `tests/net_support`).

mod net_support;
mod support;

use std::cell::RefCell;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;

use net_support::*;
use ringloop::net::TcpStream;
use ringloop::time;
use support::yield_turns;

/// Whether each buffer is full before the next one holds anything: a vectored read fills its
/// buffers in order.
fn filled_in_order(bufs: &[Vec<u8>]) -> bool {
    bufs.windows(2)
        .all(|w| w[1].is_empty() || w[0].len() == w[0].capacity())
}

both_backends! {
    /// Messages of 1 byte to 64 KiB written with `write_all` come back byte for byte through an
    /// echo server, and the two ends agree on addresses: the client's `local_addr` is the address
    /// `accept` returned and the server's `peer_addr`; the client's `peer_addr` is the server's
    /// `local_addr` and the listener's address.
    fn echo_round_trip_and_addresses(backend: Backend) {
        let fx = fixture(backend, "echo_round_trip_and_addresses");
        fx.rt.block_on(async {
            let (listener, addr) = listen();
            let server = ringloop::spawn(async move {
                let (stream, accepted_from) = listener.accept().await.expect("accept");
                let peer = stream.peer_addr().expect("server peer_addr");
                let local = stream.local_addr().expect("server local_addr");
                let echoed = echo(&stream).await.expect("server echo");
                (accepted_from, peer, local, echoed.len())
            });

            let client = TcpStream::connect(addr).await.expect("connect");
            let messages = [
                b"x".to_vec(),
                b"hello, ring".to_vec(),
                pattern(64 * 1024),
                pattern(1000),
            ];
            for msg in &messages {
                let (written, sent) = client.write_all(msg.clone()).await;
                written.expect("client write_all");
                support::assert_bytes_eq("buffer given back by write_all", &sent, msg);
                let back = read_exactly(&client, msg.len(), "echo").await;
                support::assert_bytes_eq("echoed message", &back, msg);
            }
            let client_local = client.local_addr().expect("client local_addr");
            let client_peer = client.peer_addr().expect("client peer_addr");
            // EOF ends the server's echo loop.
            drop(client);

            let (accepted_from, server_peer, server_local, echoed) =
                server.await.expect("server task");
            let total: usize = messages.iter().map(Vec::len).sum();
            assert_eq!(echoed, total, "bytes the server echoed");
            assert_eq!(accepted_from, client_local, "accept's address vs client local_addr");
            assert_eq!(server_peer, client_local, "server peer_addr vs client local_addr");
            assert_eq!(server_local, client_peer, "server local_addr vs client peer_addr");
            assert_eq!(client_peer, addr, "client peer_addr vs listener local_addr");
        });
    }

    /// 100 clients connect at once (one task each), each sends its numbered message and reads
    /// it back; every client finishes exactly once and the server sees each message exactly once.
    fn hundred_concurrent_connections(backend: Backend) {
        const CLIENTS: usize = 100;
        let fx = fixture(backend, "hundred_concurrent_connections");
        fx.rt.block_on(async {
            let (listener, addr) = listen();
            let received = Rc::new(RefCell::new(Vec::new()));
            let server = {
                let received = Rc::clone(&received);
                ringloop::spawn(async move {
                    let mut handlers = Vec::with_capacity(CLIENTS);
                    for _ in 0..CLIENTS {
                        let (stream, _) = listener.accept().await.expect("accept");
                        let received = Rc::clone(&received);
                        handlers.push(ringloop::spawn(async move {
                            let seen = echo(&stream).await.expect("server echo");
                            received.borrow_mut().push(seen);
                        }));
                    }
                    for handler in handlers {
                        handler.await.expect("connection handler task");
                    }
                })
            };

            let clients: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    ringloop::spawn(async move {
                        let msg = numbered_message(i);
                        let client = TcpStream::connect(addr)
                            .await
                            .unwrap_or_else(|e| panic!("client {i}: connect: {e}"));
                        let (written, _) = client.write_all(msg.clone()).await;
                        written.unwrap_or_else(|e| panic!("client {i}: write_all: {e}"));
                        let back = read_exactly(&client, msg.len(), "echo").await;
                        support::assert_bytes_eq(&format!("client {i}: echo"), &back, &msg);
                        client.shutdown(Shutdown::Write).expect("shutdown(Write)");
                        let (n, _) = client.read(Vec::with_capacity(16)).await;
                        assert_eq!(n.expect("read after the server closed"), 0, "client {i}: EOF");
                        i
                    })
                })
                .collect();
            let mut finished = Vec::with_capacity(CLIENTS);
            for client in clients {
                finished.push(client.await.expect("client task"));
            }
            server.await.expect("server task");

            finished.sort_unstable();
            assert_eq!(finished, (0..CLIENTS).collect::<Vec<_>>(), "clients finished");
            let mut seen = received.borrow().clone();
            seen.sort();
            let mut sent: Vec<_> = (0..CLIENTS).map(numbered_message).collect();
            sent.sort();
            assert_eq!(seen.len(), CLIENTS, "connections the server handled");
            assert!(seen == sent, "the server saw each client's message exactly once");
        });
    }

    /// A TCP receive stops short at urgent data (out of band, not inline), so a short receive
    /// does not always mean the socket is empty: the bytes behind the urgent byte arrive by
    /// every way of reading, with nothing more sent.
    fn bytes_behind_urgent_data_arrive(backend: Backend) {
        let fx = fixture(backend, "bytes_behind_urgent_data_arrive");
        fx.rt.block_on(async {
            let expected = [[b'a'; 10], [b'c'; 10]].concat();
            for way in ["read", "recv_multishot", "poll_read"] {
                let (a, mut b) = connected_pair().await;
                let (res, _) = a.write_all(vec![b'a'; 10]).await;
                res.expect("write_all");
                let fd = a.as_raw_fd();
                // SAFETY: a one-byte buffer that outlives the call, on a socket `a` keeps open.
                let sent = unsafe { libc::send(fd, b"u".as_ptr().cast(), 1, libc::MSG_OOB) };
                assert_eq!(sent, 1, "urgent send: {}", std::io::Error::last_os_error());
                let (res, _) = a.write_all(vec![b'c'; 10]).await;
                res.expect("write_all");
                // A short timer parks the loop in the kernel, so the epoll backend takes the
                // readiness these bytes raised before the read starts; nothing more is sent.
                time::sleep(std::time::Duration::from_millis(1)).await;
                let got = time::timeout(READ_LIMIT, read_len(&mut b, expected.len(), way)).await;
                let got = got.unwrap_or_else(|_| {
                    panic!("{way}: the bytes behind the urgent data never arrived")
                });
                support::assert_bytes_eq(way, &got, &expected);
            }
        });
    }

    /// After the client's `shutdown(Write)` the server reads the data then EOF, and a second read
    /// is EOF again (not an error); the server can still write and the client reads it all.
    fn half_close_keeps_the_other_direction(backend: Backend) {
        let fx = fixture(backend, "half_close_keeps_the_other_direction");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let (written, _) = client.write_all(b"request".as_slice()).await;
            written.expect("client write_all");
            client.shutdown(Shutdown::Write).expect("client shutdown(Write)");

            // Small reads, so EOF comes after several data reads.
            let request = read_to_end(&server, 3).await.expect("server reads to EOF");
            support::assert_bytes_eq("request", &request, b"request");
            let (n, buf) = server.read(Vec::with_capacity(16)).await;
            assert_eq!(n.expect("a second read after EOF is EOF again, not an error"), 0);
            assert!(buf.is_empty(), "EOF fills nothing");

            let (written, _) = server.write_all(b"response".as_slice()).await;
            written.expect("the server can still write after the client's half-close");
            server.shutdown(Shutdown::Write).expect("server shutdown(Write)");
            let response = read_to_end(&client, 64).await.expect("client reads to EOF");
            support::assert_bytes_eq("response", &response, b"response");
        });
    }

    /// `read_exact` into a 100-byte buffer when the peer sends 10 bytes and closes fails with
    /// `UnexpectedEof`, and the buffer it gives back holds exactly those 10 bytes.
    fn read_exact_at_early_eof_keeps_the_partial_bytes(backend: Backend) {
        let fx = fixture(backend, "read_exact_at_early_eof_keeps_the_partial_bytes");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let (written, _) = server.write_all(b"ten bytes!".as_slice()).await;
            written.expect("server write_all");
            drop(server);

            let read = time::timeout(READ_LIMIT, client.read_exact(Vec::with_capacity(100))).await;
            let (result, buf) = read.expect("read_exact did not see the EOF");
            let err = result.expect_err("read_exact of 100 bytes from a 10-byte stream");
            assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
            support::assert_bytes_eq("partial bytes given back", &buf, b"ten bytes!");
        });
    }

    /// `write_all` of 1 MiB through a 4 KiB send buffer, to a server reading 7 KiB at a time
    /// and yielding between reads, delivers exactly the 1 MiB pattern, in order.
    fn one_mib_write_all_through_a_tiny_send_buffer(backend: Backend) {
        const TOTAL: usize = 1 << 20;
        const CHUNK: usize = 7 * 1024;
        let fx = fixture(backend, "one_mib_write_all_through_a_tiny_send_buffer");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            client.set_send_buffer_size(4096).expect("set_send_buffer_size");
            let reader = ringloop::spawn(async move {
                let mut received = Vec::with_capacity(TOTAL);
                // Bounded: every read but the last (EOF) returns at least one byte.
                for _ in 0..=TOTAL {
                    let (n, buf) = server.read(Vec::with_capacity(CHUNK)).await;
                    if n.expect("server read") == 0 {
                        break;
                    }
                    received.extend_from_slice(&buf);
                    yield_turns(2).await;
                }
                received
            });

            let (written, sent) = client.write_all(pattern(TOTAL)).await;
            written.expect("write_all of 1 MiB through a 4 KiB send buffer");
            assert_eq!(sent.len(), TOTAL, "write_all gives the whole buffer back");
            client.shutdown(Shutdown::Write).expect("shutdown(Write)");
            let received = reader.await.expect("reader task");
            support::assert_bytes_eq("bytes received", &received, &pattern(TOTAL));
        });
    }

    /// `writev` of three buffers sends their bytes in order; `readv` into buffers of 3, 5 000
    /// and 20 000 bytes fills them in order; together they carry exactly the bytes written.
    fn vectored_reads_and_writes_keep_order(backend: Backend) {
        let fx = fixture(backend, "vectored_reads_and_writes_keep_order");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let parts = vec![b"alpha".to_vec(), pattern(10_000), b"omega".to_vec()];
            let whole = parts.concat();
            let (n, given_back) = client.writev(parts.clone()).await;
            let n = n.expect("writev");
            assert_eq!(given_back, parts, "writev gives its buffers back unchanged");
            if n < whole.len() {
                let (rest, _) = client.write_all(whole[n..].to_vec()).await;
                rest.expect("write_all of what writev left");
            }
            client.shutdown(Shutdown::Write).expect("shutdown(Write)");

            let mut got = Vec::new();
            // Bounded: every readv but the last (EOF) returns at least one byte.
            for _ in 0..=whole.len() {
                let bufs = vec![
                    Vec::with_capacity(3),
                    Vec::with_capacity(5_000),
                    Vec::with_capacity(20_000),
                ];
                let (n, bufs) = time::timeout(READ_LIMIT, server.readv(bufs))
                    .await
                    .expect("readv finishes");
                let n = n.expect("readv");
                if n == 0 {
                    break;
                }
                assert_eq!(bufs.iter().map(Vec::len).sum::<usize>(), n, "readv's count");
                assert!(filled_in_order(&bufs), "readv filled its buffers out of order");
                got.extend(bufs.concat());
            }
            support::assert_bytes_eq("bytes through writev/readv", &got, &whole);
        });
    }

    /// `connect` accepts `"localhost:PORT"`, `("localhost", PORT)` and a `String`, resolving
    /// the name off the loop; given several addresses, it tries each in turn, so a refused
    /// first address still connects to the live second one.
    fn connect_by_host_name_and_address_list(backend: Backend) {
        let fx = fixture(backend, "connect_by_host_name_and_address_list");
        fx.rt.block_on(async {
            let (listener, addr) = listen();
            let port = addr.port();
            let by_str = TcpStream::connect(format!("localhost:{port}").as_str()).await;
            let by_tuple = TcpStream::connect(("localhost", port)).await;
            let by_string = TcpStream::connect(format!("127.0.0.1:{port}")).await;
            for (what, stream) in [("&str", by_str), ("tuple", by_tuple), ("String", by_string)] {
                let stream = stream.unwrap_or_else(|e| panic!("connect by {what}: {e}"));
                assert_eq!(stream.peer_addr().expect("peer_addr").port(), port, "{what}");
                let (_, peer) = listener.accept().await.expect("accept");
                assert_eq!(peer, stream.local_addr().expect("local_addr"), "{what}");
            }

            let refused = {
                let free = std::net::TcpListener::bind(any_loopback_port()).expect("std bind");
                free.local_addr().expect("std local_addr")
            };
            let list = [refused, SocketAddr::from((Ipv4Addr::LOCALHOST, port))];
            let stream = TcpStream::connect(&list[..]).await.expect("the second address connects");
            assert_eq!(stream.peer_addr().expect("peer_addr"), list[1]);

            let err = TcpStream::connect([refused]).await.expect_err("only a refused address");
            assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        });
    }
}
