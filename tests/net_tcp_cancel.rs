//! Cancelling TCP ops by drop loses nothing on both backends: cancelled accepts leak no fd and
//! drop no connection, and reads cut short by timeouts (one, many, racing a writer, thousands
//! at random) lose and duplicate no byte.
//!
//! Every test holds the fd lock through `net_support::fixture` (see `tests/net_support`).

mod net_support;
mod support;

use std::time::Duration;

use futures_lite::future::poll_once;
use net_support::*;
use ringloop::net::TcpStream;
use ringloop::{Handle, time};
use support::{open_fds, settle_inflight};

both_backends! {
    /// 1 000 accepts polled once and dropped, with a client connecting just before every 5th
    /// drop (half of those after a loop wait, so the accept completes in the kernel before the
    /// drop): the listener keeps at most the one adopted accept in flight, no connection is
    /// closed on the client's back, once the clients and the listener are dropped exactly the
    /// fds open before are open, and the listener still accepts after all the cancellations.
    fn cancelled_accepts_leak_no_fd(backend: Backend) {
        const ACCEPTS: usize = 1000;
        let fx = fixture(backend, "cancelled_accepts_leak_no_fd");
        fx.rt.block_on(async {
            settle_inflight(0).await;
            let before = open_fds();
            let (listener, addr) = listen();
            let mut clients = Vec::new();
            let mut ready_at_once = 0;
            for i in 0..ACCEPTS {
                let mut accept = Box::pin(listener.accept());
                if let Some(accepted) = poll_once(&mut accept).await {
                    // A connection left in the backlog by an earlier iteration.
                    drop(accepted.expect("accept"));
                    ready_at_once += 1;
                    continue;
                }
                if i % 10 == 0 || i % 10 == 5 {
                    // A loopback connect completes from the backlog: blocking here is brief.
                    let client = std::net::TcpStream::connect(addr).expect("std connect");
                    clients.push(client);
                }
                if i % 10 == 5 {
                    // Not synchronisation (no event shows an accept completing for nobody): a
                    // timer makes the loop really wait on the kernel, so the accept completes
                    // before the drop on both backends, and its fd is the orphan's to close.
                    time::sleep(Duration::from_millis(1)).await;
                }
                drop(accept);
            }
            // A dropped accept the kernel owned is adopted by the listener: at most one op.
            support::yield_turns(10).await;
            assert!(
                Handle::current().inflight_ops() <= 1,
                "only the listener's adopted accept stays in flight"
            );

            // An adopted accept hands its connection to the next accept, so the only closed
            // connections are the ones this test accepted and dropped itself.
            let closed_by_server = clients.iter().filter(|c| peer_has_closed(c)).count();
            eprintln!(
                "{backend:?}: {} clients; {ready_at_once} accepts were ready at the first poll",
                clients.len()
            );
            assert_eq!(
                closed_by_server, ready_at_once,
                "a connection was closed by a dropped accept instead of reaching the next one"
            );

            // The listener survives the cancellations.
            let late = TcpStream::connect(addr).await.expect("connect after the cancellations");
            let mut accepted = None;
            // Bounded: each accept takes one connection out of the finite backlog.
            for _ in 0..=clients.len() {
                let (stream, peer) = time::timeout(READ_LIMIT, listener.accept())
                    .await
                    .expect("the listener accepts after 1 000 cancelled accepts")
                    .expect("accept");
                if peer == late.local_addr().expect("local_addr") {
                    accepted = Some(stream);
                    break;
                }
            }
            assert!(accepted.is_some(), "the late client was accepted");

            drop((late, accepted, clients, listener));
            settle_inflight(0).await;
            assert_fd_count_returns_to(before, "after 1 000 cancelled accepts").await;
        });
    }

    /// `time::timeout` around a read on an idle connection gives `Elapsed`; bytes the peer
    /// writes right afterwards all arrive in a new read (none went to the cancelled read).
    fn read_timeout_loses_no_data(backend: Backend) {
        let fx = fixture(backend, "read_timeout_loses_no_data");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let timed_out =
                time::timeout(Duration::from_millis(50), client.read(Vec::with_capacity(64))).await;
            if let Ok((read, buf)) = timed_out {
                panic!("a read on an idle connection finished: {read:?}, {buf:?}");
            }

            let msg = b"written after the timeout";
            let (written, _) = server.write_all(msg.as_slice()).await;
            written.expect("server write_all");
            let got = read_exactly(&client, msg.len(), "the read after a timed-out read").await;
            support::assert_bytes_eq("bytes after the timeout", &got, msg);
        });
    }

    /// A read whose timeout has already passed when it is first polled (zero duration), with the
    /// peer's bytes already waiting in the socket: either the read returns them, or `Elapsed`
    /// and they all reach the next read. (On io_uring the read's SQE may still be queued, not yet
    /// submitted, when the timeout drops it.)
    fn read_timed_out_at_its_first_poll_loses_no_data(backend: Backend) {
        let fx = fixture(backend, "read_timed_out_at_its_first_poll_loses_no_data");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            let msg = b"already waiting";
            let (written, _) = server.write_all(msg.as_slice()).await;
            written.expect("server write_all");
            support::yield_until_deadline("the bytes wait in the client's socket", || {
                bytes_waiting(&client) == msg.len()
            })
            .await;

            let mut got = Vec::new();
            match time::timeout(Duration::ZERO, client.read(Vec::with_capacity(64))).await {
                Ok((read, buf)) => {
                    read.expect("client read");
                    got.extend_from_slice(&buf);
                }
                Err(_elapsed) => {}
            }
            if got.len() < msg.len() {
                let rest = read_exactly(&client, msg.len() - got.len(), "the read after").await;
                got.extend_from_slice(&rest);
            }
            support::assert_bytes_eq("bytes after a read timed out at its first poll", &got, msg);
        });
    }

    /// 200 rounds of: a read timed out after 1 ms, then the peer writes at once, then a new read.
    /// Every round's bytes arrive in full and in order: a cancelled read never swallows data,
    /// even when the data lands while its cancellation is still on the way to the kernel.
    fn repeated_read_timeouts_lose_no_data(backend: Backend) {
        const ROUNDS: usize = 200;
        let fx = fixture(backend, "repeated_read_timeouts_lose_no_data");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            for round in 0..ROUNDS {
                let timed_out =
                    time::timeout(Duration::from_millis(1), client.read(Vec::with_capacity(64)))
                        .await;
                if let Ok((read, buf)) = timed_out {
                    panic!("round {round}: an idle read finished: {read:?}, {buf:?}");
                }
                let msg = format!("round {round:03}").into_bytes();
                let (written, _) = server.write_all(msg.clone()).await;
                written.expect("server write_all");
                let got = read_exactly(&client, msg.len(), &format!("round {round}")).await;
                support::assert_bytes_eq(&format!("round {round}"), &got, &msg);
            }
        });
    }

    /// Reads cut short by timeouts of 50–450 µs while a peer thread writes 2 000 numbered
    /// 8-byte messages about every 200 µs (3 ms every 50th): the bytes read add up to exactly what was sent, in
    /// order. Data that arrives while a timed-out read's cancellation is on its way to the kernel
    /// must reach a later read, not vanish with the cancelled one.
    fn read_timeouts_racing_a_writer_lose_no_data(backend: Backend) {
        const MESSAGES: usize = 2000;
        let fx = fixture(backend, "read_timeouts_racing_a_writer_lose_no_data");
        let std_listener = std::net::TcpListener::bind(any_loopback_port()).expect("std bind");
        let addr = std_listener.local_addr().expect("std local_addr");
        let sent: Vec<u8> = (0..MESSAGES).flat_map(|i| format!("{i:07}\n").into_bytes()).collect();
        let writer = {
            let sent = sent.clone();
            std::thread::spawn(move || {
                use std::io::Write as _;
                let (mut peer, _) = std_listener.accept().expect("std accept");
                for (i, msg) in sent.chunks(8).enumerate() {
                    peer.write_all(msg).expect("peer write");
                    // Pacing, not synchronisation: spread the bytes over many read timeouts,
                    // with a longer gap now and then that even millisecond timers see.
                    let gap = if i % 50 == 49 { 3_000 } else { 200 };
                    std::thread::sleep(Duration::from_micros(gap));
                }
                // Dropping `peer` closes it: the reader's EOF.
            })
        };
        let (received, timeouts) = fx.rt.block_on(async {
            let client = TcpStream::connect(addr).await.expect("connect");
            let mut received = Vec::with_capacity(sent.len());
            let mut timeouts = 0usize;
            // Bounded: each round either times out or reads; the peer's close ends it.
            for round in 0..1_000_000usize {
                let limit = Duration::from_micros(50 + (round * 37 % 400) as u64);
                match time::timeout(limit, client.read(Vec::with_capacity(64))).await {
                    Err(_) => timeouts += 1,
                    Ok((read, buf)) => {
                        if read.expect("client read") == 0 {
                            break;
                        }
                        received.extend_from_slice(&buf);
                    }
                }
            }
            (received, timeouts)
        });
        writer.join().expect("writer thread");
        eprintln!("{backend:?}: {timeouts} reads timed out");
        assert!(timeouts > 0, "no read timed out: the test raced nothing");
        support::assert_bytes_eq("bytes read around the timeouts", &received, &sent);
    }

    /// 10 000 reads, each under a random timeout of 0–300 µs, on a stream of numbered bytes a
    /// peer thread writes in random chunks: the bytes read, in order, are exactly the bytes
    /// sent — none lost with a timed-out read, none delivered twice.
    fn ten_thousand_reads_with_random_timeouts_lose_and_duplicate_nothing(backend: Backend) {
        const READS: usize = 10_000;
        const CHUNKS: usize = 6_000;
        let fx = fixture(backend, "ten_thousand_reads_with_random_timeouts");
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        eprintln!("{backend:?}: seed {seed}");
        let std_listener = std::net::TcpListener::bind(any_loopback_port()).expect("std bind");
        let addr = std_listener.local_addr().expect("std local_addr");
        let writer = std::thread::spawn(move || {
            use std::io::Write as _;
            let (mut peer, _) = std_listener.accept().expect("std accept");
            let mut rng = support::Rng::new(seed);
            let mut sent = 0usize;
            for _ in 0..CHUNKS {
                let len = 1 + (rng.next() % 64) as usize;
                let chunk: Vec<u8> = (sent..sent + len).map(|i| (i % 251) as u8).collect();
                peer.write_all(&chunk).expect("peer write");
                sent += len;
                // Pacing, not synchronisation: spread the bytes over the reads' timeouts.
                std::thread::sleep(Duration::from_micros(rng.next() % 400));
            }
            sent
        });
        let (received, timeouts) = fx.rt.block_on(async {
            let client = TcpStream::connect(addr).await.expect("connect");
            let mut rng = support::Rng::new(seed.rotate_left(17));
            let mut received = Vec::new();
            let mut timeouts = 0usize;
            for _ in 0..READS {
                let limit = Duration::from_micros(rng.next() % 300);
                let cap = 1 + (rng.next() % 96) as usize;
                match time::timeout(limit, client.read(Vec::with_capacity(cap))).await {
                    Err(_) => timeouts += 1,
                    Ok((read, buf)) => {
                        if read.expect("client read") == 0 {
                            break;
                        }
                        received.extend_from_slice(&buf);
                    }
                }
            }
            // The rest, without timeouts, until the peer's close.
            loop {
                let (read, buf) = time::timeout(READ_LIMIT, client.read(Vec::with_capacity(4096)))
                    .await
                    .expect("the peer's bytes or close arrive");
                if read.expect("client read") == 0 {
                    break;
                }
                received.extend_from_slice(&buf);
            }
            (received, timeouts)
        });
        let sent = writer.join().expect("writer thread");
        eprintln!("{backend:?}: {timeouts} of {READS} reads timed out");
        assert!(timeouts > 0, "no read timed out: the test raced nothing");
        let want: Vec<u8> = (0..sent).map(|i| (i % 251) as u8).collect();
        support::assert_bytes_eq("numbered bytes read around random timeouts", &received, &want);
    }

    /// 20 rounds of: a read submitted (polled once), the peer's bytes (or the first few, when
    /// the read is short) consumed by it in the kernel, then the read future dropped without
    /// being polled again. The bytes it received reach the next read in full: the stream
    /// adopted the dropped read instead of letting its buffer go with the data in it.
    fn read_dropped_after_it_completed_loses_nothing(backend: Backend) {
        let fx = fixture(backend, "read_dropped_after_it_completed_loses_nothing");
        fx.rt.block_on(async {
            let (client, server) = connected_pair().await;
            for round in 0..20 {
                let mut read = Box::pin(client.read(Vec::with_capacity(64)));
                assert!(poll_once(&mut read).await.is_none(), "round {round}: nothing sent yet");
                let msg = format!("round {round:02}").into_bytes();
                let (written, _) = server.write_all(msg.clone()).await;
                written.expect("server write_all");
                // No event says a read completed for a future nobody polls: wait on the loop
                // (timers park it in the kernel, where the read completes) until bytes have
                // left the socket's queue: all of them, or the first few if the read was short.
                let deadline = std::time::Instant::now() + READ_LIMIT;
                while bytes_waiting(&client) == msg.len() && std::time::Instant::now() < deadline
                {
                    time::sleep(Duration::from_millis(1)).await;
                }
                assert!(bytes_waiting(&client) < msg.len(), "round {round}: the read took no bytes");
                // Let the completion reach the op table too.
                time::sleep(Duration::from_millis(1)).await;
                drop(read);
                let got = read_exactly(&client, msg.len(), &format!("round {round}")).await;
                support::assert_bytes_eq(&format!("round {round}"), &got, &msg);
            }
        });
    }
}
