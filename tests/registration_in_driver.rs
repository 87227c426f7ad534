//! A socket dropped (or created) while the driver itself is running — from a waker the driver
//! calls — still unpins (or pins) its descriptor: a new descriptor that reuses the number
//! afterwards gets its readiness like any other, so I/O on it completes instead of hanging.
//!
//! On epoll the pin is what keeps a socket registered for its whole life; an unpin that was
//! skipped leaves the number marked registered after the kernel dropped the closed file's
//! registration, so a wait on the next file with that number was never armed. On io_uring
//! pinning does nothing; the tests run there too, as every behavioural test does.

mod support;

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd as _, RawFd};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use ringloop::net::UdpSocket;
use ringloop::{Backend, Runtime, op};
use support::{pipe, serial, watchdog, write_all, yield_until_deadline};

/// How long I/O on the reused descriptor may take before the test calls it stuck.
const IO_LIMIT: Duration = Duration::from_secs(2);
/// How long a whole test may take before the watchdog aborts it.
const TEST_LIMIT: Duration = Duration::from_secs(20);

thread_local! {
    /// Work a [`RunOnWake`] waker does when woken.
    static ON_WAKE: RefCell<Vec<Box<dyn FnOnce()>>> = const { RefCell::new(Vec::new()) };
}

/// A waker that runs [`ON_WAKE`]'s work when woken: the driver wakes it while it is borrowed,
/// reaping the completion of the op it was given to.
struct RunOnWake;

impl Wake for RunOnWake {
    fn wake(self: Arc<Self>) {
        let work = ON_WAKE.with(|w| std::mem::take(&mut *w.borrow_mut()));
        for f in work {
            f();
        }
    }
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().expect("an address")
}

fn runtime(backend: Backend) -> Runtime {
    support::runtime(backend)
}

/// Polls `fut` once with the current task's context.
async fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    let mut fut = fut;
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// Runs `work` inside the driver: from the waker of a pipe read, which the driver wakes while
/// it reaps the read's completion.
async fn run_inside_driver(work: impl FnOnce() + 'static) {
    let (rx, tx) = pipe();
    let mut read = op::read(rx.as_raw_fd(), Vec::with_capacity(8));
    let waker = Waker::from(Arc::new(RunOnWake));
    let polled = Pin::new(&mut read).poll(&mut Context::from_waker(&waker));
    assert!(polled.is_pending(), "nobody wrote to the pipe yet");
    ON_WAKE.with(|w| w.borrow_mut().push(Box::new(work)));
    write_all(&tx, b"x");
    yield_until_deadline("the driver woke the read's waker", || {
        ON_WAKE.with(|w| w.borrow().is_empty())
    })
    .await;
    let (res, buf) = read.await;
    assert_eq!(res.expect("read the pipe"), 1);
    assert_eq!(buf, b"x");
}

/// Binds a socket and drops it inside the driver; returns its descriptor number.
async fn socket_dropped_inside_driver() -> RawFd {
    let victim = UdpSocket::bind(localhost()).expect("bind the socket to drop");
    let fd = victim.as_raw_fd();
    run_inside_driver(move || drop(victim)).await;
    fd
}

/// A datagram sent to `socket` after its receive started waits for readiness and arrives
/// within [`IO_LIMIT`].
async fn assert_receives(socket: &UdpSocket, what: &str) {
    let addr = socket.local_addr().expect("local address");
    let peer = UdpSocket::bind(localhost()).expect("bind the peer");
    let mut recv = pin!(socket.recv_from(Vec::with_capacity(16)));
    // Started before anything was sent: it must wait for the socket to become readable.
    assert!(
        poll_once(recv.as_mut()).await.is_pending(),
        "{what}: nothing was sent yet"
    );
    let (sent, _) = peer.send_to(b"ping".as_slice(), addr).await;
    assert_eq!(sent.expect("send the datagram"), 4);
    let (res, buf) = ringloop::time::timeout(IO_LIMIT, recv)
        .await
        .unwrap_or_else(|_| panic!("{what}: no datagram within {IO_LIMIT:?}: never armed?"));
    let (n, from) = res.expect("receive the datagram");
    assert_eq!(
        (&buf[..n], from),
        (&b"ping"[..], peer.local_addr().unwrap())
    );
}

both_backends! {
    /// A socket dropped inside the driver, then a new socket on the same descriptor number:
    /// a receive on the new socket that waits for readiness completes.
    fn socket_reuses_the_number_of_one_dropped_in_the_driver(backend: Backend) {
        let _fds = serial();
        let dog = watchdog(TEST_LIMIT, "socket reusing a number dropped in the driver");
        let rt = runtime(backend);
        rt.block_on(async {
            let old = socket_dropped_inside_driver().await;
            let new = UdpSocket::bind(localhost()).expect("bind the new socket");
            assert_eq!(new.as_raw_fd(), old, "the new socket did not reuse the number");
            assert_receives(&new, "new socket on a reused number").await;
        });
        drop(rt);
        dog.disarm();
    }

    /// A socket dropped inside the driver, then a pipe (not pinned: registered per wait) on
    /// the same descriptor number: a read that waits for readiness completes.
    fn pipe_reuses_the_number_of_a_socket_dropped_in_the_driver(backend: Backend) {
        let _fds = serial();
        let dog = watchdog(TEST_LIMIT, "pipe reusing a number dropped in the driver");
        let rt = runtime(backend);
        rt.block_on(async {
            let old = socket_dropped_inside_driver().await;
            let (rx, tx) = pipe();
            assert_eq!(rx.as_raw_fd(), old, "the pipe did not reuse the number");
            let mut read = pin!(op::read(rx.as_raw_fd(), Vec::with_capacity(8)));
            assert!(
                poll_once(read.as_mut()).await.is_pending(),
                "nothing was written yet"
            );
            write_all(&tx, b"pong");
            let (res, buf) = ringloop::time::timeout(IO_LIMIT, read)
                .await
                .unwrap_or_else(|_| panic!("no bytes on the pipe within {IO_LIMIT:?}"));
            // The bytes, or their first few when the read is short.
            let n = res.expect("read the pipe");
            assert!((1..=4).contains(&n), "read {n} bytes");
            assert_eq!(buf, &b"pong"[..n]);
        });
        drop(rt);
        dog.disarm();
    }

    /// Inside the driver, a socket is dropped and a new one bound on its number (its pin
    /// requested while the driver is busy too): the new socket's receive completes.
    fn socket_bound_in_the_driver_on_the_number_of_one_dropped_there(backend: Backend) {
        let _fds = serial();
        let dog = watchdog(TEST_LIMIT, "socket bound in the driver on a reused number");
        let rt = runtime(backend);
        rt.block_on(async {
            let victim = UdpSocket::bind(localhost()).expect("bind the socket to drop");
            let old = victim.as_raw_fd();
            let bound = std::rc::Rc::new(RefCell::new(None));
            let slot = bound.clone();
            run_inside_driver(move || {
                drop(victim);
                *slot.borrow_mut() = Some(UdpSocket::bind(localhost()));
            })
            .await;
            let new = bound
                .borrow_mut()
                .take()
                .expect("the waker ran")
                .expect("bind the new socket inside the driver");
            assert_eq!(new.as_raw_fd(), old, "the new socket did not reuse the number");
            assert_receives(&new, "socket bound in the driver on a reused number").await;
        });
        drop(rt);
        dog.disarm();
    }
}
