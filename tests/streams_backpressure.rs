//! Flow control in both directions. Writing: `drain` blocks while the peer does not read,
//! and once it reads it gets every byte, in order. Reading: a reader that is not read from
//! pauses its transport, so its buffer stays bounded while the sender's writes back up.

mod support;

use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::rc::Rc;
use std::time::Duration;

use ringloop::streams::{StreamReader, StreamWriter, open_connection, start_server_with_limit};
use ringloop::transport::Server;
use ringloop::{Handle, LoopFuture, time};
use support::{yield_turns, yield_until_deadline};

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// `len` bytes of a pattern that does not repeat every power of two.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// A server (reader limit `limit`) that hands its first connection to the test unread.
async fn parked_server(limit: usize) -> (Server, SocketAddr, LoopFuture<Rc<Parked>>) {
    let parked = Handle::current().create_future::<Rc<Parked>>();
    let setter = parked.clone();
    let server = start_server_with_limit(
        move |reader, writer| {
            let _ = setter.set_result(Rc::new(Parked(std::cell::RefCell::new(Some((
                reader, writer,
            ))))));
            async {}
        },
        "127.0.0.1:0",
        limit,
    )
    .await
    .expect("start_server on 127.0.0.1:0");
    let addr = server.local_addrs()[0].as_inet().expect("an IP address");
    (server, addr, parked)
}

/// How long the loop must sit idle, nothing written, for the writer to count as stalled.
const STALL_CHECK: Duration = Duration::from_millis(50);

/// Small kernel buffers on both ends (`SO_SNDBUF` of the sender, `SO_RCVBUF` of the
/// receiver; explicit sizes also switch off autotuning), so that a few megabytes are far more
/// than the kernel can hold in flight.
fn shrink_socket_buffers(sender: &StreamWriter, receiver: &StreamWriter) {
    let set = |writer: &StreamWriter, send: bool| {
        let fd = writer.transport().fd().expect("an open transport");
        // SAFETY: the transport is open, so `fd` stays a valid socket for this call.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        let res = if send {
            sock.set_send_buffer_size(16 * 1024)
        } else {
            sock.set_recv_buffer_size(16 * 1024)
        };
        res.expect("shrink a socket buffer");
    };
    set(sender, true);
    set(receiver, false);
}

/// A connection's reader and writer, passed out of the server callback through a future.
struct Parked(std::cell::RefCell<Option<(StreamReader, StreamWriter)>>);

impl Parked {
    fn take(&self) -> (StreamReader, StreamWriter) {
        self.0.borrow_mut().take().expect("taken once")
    }
}

both_backends! {
    /// A writer that drains after every chunk stalls in `drain` while the peer reads
    /// nothing (the write buffer stays above the low-water mark, the writer does not finish);
    /// when the peer reads, the writer finishes and the peer gets every byte exactly.
    fn drain_blocks_until_the_peer_reads(rt) {
        let _w = support::watchdog(TEST_LIMIT, "drain_blocks_until_the_peer_reads");
        rt.block_on(async {
            const CHUNK: usize = 64 * 1024;
            // Far beyond what the (shrunk) socket buffers and the peer's reader hold: the
            // writer stalls within 192 KiB. (Sized for Linux 6.1 under QEMU's TCG too, where
            // each MiB takes seconds.)
            const TOTAL: usize = 2 * 1024 * 1024;
            let (server, addr, parked) = parked_server(64 * 1024).await;
            let (_client_reader, writer) = open_connection(addr).await.unwrap();
            let (mut peer_reader, peer_writer) = parked.await.unwrap().take();
            shrink_socket_buffers(&writer, &peer_writer);
            let (low, high) = writer.transport().get_write_buffer_limits();

            let data = Rc::new(pattern(TOTAL));
            let written = Rc::new(Cell::new(0usize));
            let client_transport = writer.transport().clone();
            let writing = {
                let (data, written) = (data.clone(), written.clone());
                ringloop::spawn(async move {
                    for chunk in data.chunks(CHUNK) {
                        writer.write(chunk).unwrap();
                        writer.drain().await.unwrap();
                        written.set(written.get() + chunk.len());
                    }
                    writer
                })
            };
            // Everything runs on this loop: while it sleeps, the writer and the transports
            // do all they can. Progress stops once the kernel's buffers are full.
            let mut stalled_at = written.get();
            loop {
                time::sleep(STALL_CHECK).await;
                if written.get() == stalled_at {
                    break;
                }
                stalled_at = written.get();
            }
            assert!(stalled_at < TOTAL, "the writer finished without the peer reading");
            assert!(!writing.is_finished());
            let held = client_transport.get_write_buffer_size();
            assert!(held > low, "drain waits with {held} bytes buffered (low-water mark {low})");
            time::sleep(STALL_CHECK).await;
            assert_eq!(written.get(), stalled_at, "drain returned while nobody read");

            let got = peer_reader.readexactly(TOTAL).await.unwrap();
            support::assert_bytes_eq("bytes the peer read", &got, &data);
            let writer = writing.await.unwrap();
            assert_eq!(written.get(), TOTAL);
            // The last `drain` returned: the buffer was at most the high-water mark.
            assert!(writer.transport().get_write_buffer_size() <= high);
            writer.close();
            server.close();
        });
    }

    /// A reader nobody reads from pauses its transport: with limit 1 KiB its buffer stops
    /// growing at 2 × limit plus one socket read, though a megabyte is on its way; reading
    /// resumes the transport and every byte arrives in order.
    fn unread_reader_pauses_its_transport(rt) {
        let _w = support::watchdog(TEST_LIMIT, "unread_reader_pauses_its_transport");
        rt.block_on(async {
            const LIMIT: usize = 1024;
            /// The most a transport reads from its socket at once.
            const ONE_READ: usize = 64 * 1024;
            // 15 times what the paused reader may hold.
            const TOTAL: usize = 1024 * 1024;
            let (server, addr, parked) = parked_server(LIMIT).await;
            let (_client_reader, writer) = open_connection(addr).await.unwrap();
            let (mut peer_reader, peer_writer) = parked.await.unwrap().take();
            shrink_socket_buffers(&writer, &peer_writer);

            let data = pattern(TOTAL);
            writer.write(&data).unwrap();
            let peer_transport = peer_writer.transport().clone();
            yield_until_deadline("the peer's transport is paused", || !peer_transport.is_reading()).await;
            yield_turns(200).await;
            let buffered = peer_reader.buffered();
            assert!(
                buffered <= 2 * LIMIT + ONE_READ,
                "the paused reader buffered {buffered} bytes"
            );
            assert!(!peer_transport.is_reading(), "still paused");
            assert!(writer.transport().get_write_buffer_size() > 0, "the sender is held up");

            let got = peer_reader.readexactly(TOTAL).await.unwrap();
            support::assert_bytes_eq("bytes the paused reader got", &got, &data);
            writer.drain().await.unwrap();
            writer.close();
            server.close();
        });
    }
}
