//! The fault injector (`Builder::fault_injection`, `RINGLOOP_FAULT_SEED`,
//! `RINGLOOP_BACKEND=faults[+epoll]`): it really perturbs the backend it wraps, the runtime
//! loses nothing under it, the same seed makes the same decisions, and the environment selects
//! it with errors that name the variable.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd as _;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future::poll_once;
use ringloop::net::{TcpListener, TcpStream};
use ringloop::{Backend, BackendKind, Runtime, op, time};
use support::{CHILD_ENV, assert_child_passed, child_role, run_child};

/// The seed of this run: `RINGLOOP_FAULT_SEED` when set, so CI's seeds reach these tests too.
fn seed() -> u64 {
    support::fault_seed().unwrap_or(7)
}

fn faulty(backend: Backend, seed: u64) -> Runtime {
    Runtime::builder()
        .backend(backend)
        .fault_injection(seed)
        .build()
        .unwrap_or_else(|e| panic!("runtime on {backend:?} with faults: {e}"))
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

both_backends! {
    /// 1 MiB echoed over TCP in 4 KiB writes, with reads timed out and cancelled along the way:
    /// every byte comes back in order, and the injector counted faults.
    fn echo_loses_nothing_under_faults(backend: Backend) {
        let _wd = support::watchdog(Duration::from_secs(60), "echo_loses_nothing_under_faults");
        let rt = faulty(backend, seed());
        assert_eq!(rt.backend_report().fault_seed(), Some(seed()));
        let sent = pattern(1 << 20);
        let got = rt.block_on(async {
            let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
            let addr = listener.local_addr().unwrap();
            let server = ringloop::spawn(async move {
                let (conn, _) = listener.accept().await.unwrap();
                let mut buf = Vec::with_capacity(4096);
                loop {
                    // A read cut short by a timeout hands what it got to the next one.
                    let (res, b) = match time::timeout(Duration::from_micros(50), conn.read(buf)).await {
                        Ok(done) => done,
                        Err(_) => {
                            buf = Vec::with_capacity(4096);
                            continue;
                        }
                    };
                    let n = res.expect("server read");
                    if n == 0 {
                        return;
                    }
                    let (res, b) = conn.write_all(b).await;
                    res.expect("server write");
                    buf = b;
                    buf.clear();
                }
            });
            let client = Rc::new(TcpStream::connect(addr).await.unwrap());
            let reader = {
                let client = client.clone();
                let len = sent.len();
                ringloop::spawn(async move {
                    let mut got = Vec::with_capacity(len);
                    while got.len() < len {
                        let (res, buf) = client.read(Vec::with_capacity(8192)).await;
                        assert!(res.expect("client read") > 0, "EOF after {} bytes", got.len());
                        got.extend_from_slice(&buf);
                    }
                    got
                })
            };
            for chunk in sent.chunks(4096) {
                let (res, _) = client.write_all(chunk.to_vec()).await;
                res.expect("client write");
            }
            let got = reader.await.unwrap();
            client.shutdown(std::net::Shutdown::Write).unwrap();
            server.await.unwrap();
            got
        });
        support::assert_bytes_eq("echoed", &got, &sent);
        assert!(rt.stats().faults_injected > 0, "no fault injected: {:?}", rt.stats());
    }

    /// Reads on an empty pipe, cancelled: each cancel reports ECANCELED (or the data, had any
    /// arrived), none hangs, and the op table drains.
    fn cancels_complete_under_faults(backend: Backend) {
        let _wd = support::watchdog(Duration::from_secs(30), "cancels_complete_under_faults");
        let rt = faulty(backend, seed());
        rt.block_on(async {
            let (r, _w) = support::pipe();
            for _ in 0..200 {
                let mut read = op::read(r.as_raw_fd(), Vec::with_capacity(8));
                assert!(poll_once(&mut read).await.is_none(), "empty pipe: the read must pend");
                let (res, _) = read.cancel().await;
                let err = res.expect_err("nothing was written, so the read cannot succeed");
                assert_eq!(err.raw_os_error(), Some(libc::ECANCELED), "{err}");
            }
            support::settle_inflight(0).await;
        });
    }

    /// Timers fire under faults, in deadline order, none early. Deadlines are fixed from one
    /// instant, a margin ahead, and each task checks that its timer really was pending when it
    /// registered it: on a slow machine (the old-kernel run under TCG polls one task every
    /// ~3 ms) a deadline already past at registration completes at once, in poll order, which
    /// says nothing about the timers. Such a round is retried with a wider margin.
    fn timers_fire_in_order_under_faults(backend: Backend) {
        let _wd = support::watchdog(Duration::from_secs(60), "timers_fire_in_order_under_faults");
        let rt = faulty(backend, seed());
        let mut margin = Duration::from_millis(20);
        let order = loop {
            let (order, all_pending) = rt.block_on(timers_in_order_round(margin));
            if all_pending {
                break order;
            }
            assert!(margin < Duration::from_secs(10), "20 timers never registered in time");
            margin *= 4;
        };
        assert_eq!(order, (0..20).collect::<Vec<_>>());
    }
}

/// One round of `timers_fire_in_order_under_faults`: twenty tasks spawned in reverse deadline
/// order sleep until `start + margin + 2i ms`; returns the order they woke in and whether every
/// timer was pending when registered.
async fn timers_in_order_round(margin: Duration) -> (Vec<u64>, bool) {
    let start = std::time::Instant::now() + margin;
    let order = Rc::new(std::cell::RefCell::new(Vec::new()));
    let tasks: Vec<_> = (0..20u64)
        .rev()
        .map(|i| {
            let order = order.clone();
            ringloop::spawn(async move {
                let deadline = start + Duration::from_millis(2 * i);
                let mut sleep = std::pin::pin!(time::sleep_until(deadline));
                let pending = poll_once(&mut sleep).await.is_none();
                sleep.await;
                assert!(std::time::Instant::now() >= deadline, "early");
                order.borrow_mut().push(i);
                pending
            })
        })
        .collect();
    let mut all_pending = true;
    for t in tasks {
        all_pending &= t.await.unwrap();
    }
    (Rc::try_unwrap(order).unwrap().into_inner(), all_pending)
}

/// On epoll, where no completion depends on the kernel's timing in a single-task run of nops,
/// the same seed injects the same faults, and other seeds others. (On io_uring the decisions
/// replay too, but which park sees which completion is the kernel's timing.)
#[test]
fn the_same_seed_replays_on_epoll() {
    let run = |seed| {
        let rt = faulty(Backend::Epoll, seed);
        rt.block_on(async {
            for _ in 0..2000 {
                op::nop().await.unwrap();
                ringloop::yield_now().await;
            }
        });
        rt.stats().faults_injected
    };
    let (a, b) = (run(11), run(11));
    assert!(a > 0, "no fault injected");
    assert_eq!(a, b, "the same seed injected different faults");
    let others: Vec<u64> = (12..16).map(run).collect();
    assert!(
        others.iter().any(|&c| c != a),
        "seeds 12..16 all injected {a} faults, as 11 did"
    );
}

/// `RINGLOOP_BACKEND=faults` runs the injector over io_uring, `faults+epoll` over epoll, with
/// the seed from `RINGLOOP_FAULT_SEED`; the report shows it.
#[test]
fn the_environment_selects_the_injector() {
    for (value, kind) in [("faults", "io_uring"), ("faults+epoll", "epoll")] {
        let env = [
            (CHILD_ENV, kind),
            ("RINGLOOP_BACKEND", value),
            ("RINGLOOP_FAULT_SEED", "5"),
        ];
        let out = run_child("child_reports_the_injector", &env);
        assert_child_passed("child_reports_the_injector", &out);
    }
}

#[test]
fn child_reports_the_injector() {
    let Some(kind) = child_role() else { return };
    let rt = Runtime::builder()
        .build()
        .expect("runtime from the environment");
    let report = rt.backend_report();
    let want = if kind == "epoll" {
        BackendKind::Epoll
    } else {
        BackendKind::IoUring
    };
    assert_eq!(report.backend(), want);
    assert_eq!(report.fault_seed(), Some(5));
    assert!(
        report.to_string().contains("RINGLOOP_FAULT_SEED=5"),
        "{report}"
    );
    rt.block_on(async { op::nop().await.unwrap() });
}

/// A seed that is not a number is an error naming the variable, not a panic or a silent default.
#[test]
fn a_bad_seed_is_an_error() {
    let out = run_child(
        "child_bad_seed",
        &[(CHILD_ENV, "bad"), ("RINGLOOP_FAULT_SEED", "soon")],
    );
    assert_child_passed("child_bad_seed", &out);
}

#[test]
fn child_bad_seed() {
    if child_role().is_none() {
        return;
    }
    let err = Runtime::builder()
        .build()
        .err()
        .expect("a bad seed must fail the build");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("RINGLOOP_FAULT_SEED=\"soon\""),
        "{err}"
    );
}
