//! Completion coalescing (`Builder::completion_batching`): a loop that batches its waits under
//! load still delivers a lone completion, loses nothing in a burst, and fires its timers on
//! time. The batch window is set very long (half a second) so that a wait which honoured it
//! where it must not would show up as a hang (watchdog) or a timer seconds late.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use ringloop::net::UnixStream;
use ringloop::{Backend, Runtime};
use support::watchdog;

/// Long enough that honouring it by mistake is unmistakable, short enough that the wait that
/// legitimately sits it out (the one ending a burst) keeps the test quick.
const WINDOW: Duration = Duration::from_millis(500);
const CONNS: usize = 16;
const ROUNDS: usize = 50;

fn batching_runtime(backend: Backend) -> Runtime {
    Runtime::builder()
        .backend(backend)
        .completion_batching(8, WINDOW)
        .build()
        .expect("runtime")
}

/// `CONNS` socket pairs: the loop's ends, and the ends a plain thread drives.
fn pairs() -> (Vec<Rc<UnixStream>>, Vec<StdUnixStream>) {
    (0..CONNS)
        .map(|_| {
            let (ours, theirs) = StdUnixStream::pair().expect("socketpair");
            (
                Rc::new(UnixStream::from_std(ours).expect("from_std")),
                theirs,
            )
        })
        .unzip()
}

/// Receives `ROUNDS` bursts: the driver thread writes byte `round` to every connection, round
/// after round, as fast as it can, so the loop's waits find many completions at once and the
/// batch target climbs. Checks every connection got every round's byte, in order.
async fn bursts(conns: &[Rc<UnixStream>]) {
    let readers: Vec<_> = conns
        .iter()
        .map(|conn| {
            let conn = conn.clone();
            ringloop::spawn(async move {
                let mut got = Vec::new();
                let mut buf = Vec::with_capacity(64);
                while got.len() < ROUNDS {
                    buf.clear();
                    let (n, b) = conn.read(buf).await;
                    buf = b;
                    let n = n.expect("read a burst byte");
                    assert!(n > 0, "the driver thread hung up early");
                    got.extend_from_slice(&buf[..n]);
                }
                got
            })
        })
        .collect();
    let expected: Vec<u8> = (0..ROUNDS as u8).collect();
    for (i, reader) in readers.into_iter().enumerate() {
        let got = reader.await.expect("reader task");
        assert_eq!(
            got, expected,
            "connection {i} lost or reordered a burst byte"
        );
    }
}

/// The driver thread's side of [`bursts`].
fn drive_bursts(mut theirs: Vec<StdUnixStream>) -> Vec<StdUnixStream> {
    for round in 0..ROUNDS {
        for conn in &mut theirs {
            conn.write_all(&[round as u8]).expect("write burst byte");
        }
    }
    theirs
}

both_backends! {
    /// After bursts that raise the batch target, a single request/response exchange still
    /// completes at once: the wait asks for a batch but returns with the one completion
    /// there is (without the kernel's min_wait bound this would hang for good).
    fn a_lone_completion_after_bursts_is_delivered(backend: Backend) {
        let _dog = watchdog(Duration::from_secs(60), "coalesced wait hung on a lone completion");
        let rt = batching_runtime(backend);
        let (ours, theirs) = pairs();
        let driver = thread::spawn(move || {
            let mut theirs = drive_bursts(theirs);
            // Then echo single bytes on the first connection until the loop hangs up.
            let mut byte = [0u8; 1];
            while theirs[0].read(&mut byte).expect("read ping") == 1 {
                theirs[0].write_all(&byte).expect("write pong");
            }
        });
        rt.block_on(async {
            bursts(&ours).await;
            for i in 0..20u8 {
                let (wrote, _) = ours[0].write_all(vec![i]).await;
                wrote.expect("ping");
                let (n, buf) = ours[0].read(Vec::with_capacity(1)).await;
                assert_eq!(n.expect("pong"), 1);
                assert_eq!(buf[0], i, "pong {i} came back wrong");
            }
        });
        drop(ours);
        drop(rt);
        driver.join().expect("driver thread");
    }

    /// A timer due sooner than the batch window fires on time even while the batch target is
    /// high: the loop waits plainly rather than letting the kernel sit out the window first.
    fn a_timer_is_not_held_back_by_the_batch_window(backend: Backend) {
        let _dog = watchdog(Duration::from_secs(60), "timer held back by coalescing");
        let rt = batching_runtime(backend);
        let (ours, theirs) = pairs();
        let driver = thread::spawn(move || drive_bursts(theirs));
        let slept = rt.block_on(async {
            bursts(&ours).await;
            let start = Instant::now();
            ringloop::time::sleep(Duration::from_millis(20)).await;
            start.elapsed()
        });
        // Generous: the failure this catches is a timer WINDOW (5 s) late.
        assert!(
            slept < WINDOW / 2,
            "a 20 ms sleep took {slept:?} with a {WINDOW:?} batch window"
        );
        drop(driver.join().expect("driver thread"));
    }
}

/// The setting is accepted in every form, including off and nonsense values, on the backend
/// the machine picks.
#[test]
fn batching_settings_build_and_run() {
    for (batch, delay) in [
        (1, Duration::ZERO),
        (0, Duration::from_micros(20)),
        (u32::MAX, Duration::from_secs(u64::MAX / 4)),
        (8, Duration::from_nanos(1)),
    ] {
        let rt = Runtime::builder()
            .completion_batching(batch, delay)
            .build()
            .expect("runtime");
        let v = rt.block_on(async {
            ringloop::time::sleep(Duration::from_millis(1)).await;
            7
        });
        assert_eq!(v, 7, "batch {batch}, delay {delay:?}");
    }
}
