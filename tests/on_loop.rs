//! `ringloop::on_loop`: a loop-bound future made `Send` runs ringloop I/O where `Send` is
//! required, panics before touching the future when polled off its loop, and is never
//! dropped on a thread that does not run its loop. `Handle::backend_report` from inside `run`.

mod support;

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Waker};
use std::time::Duration;

use ringloop::Backend;
use ringloop::net::{TcpListener, TcpStream};

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Reads exactly `n` bytes (a read may return fewer, e.g. under the fault injector).
async fn read_n(stream: &TcpStream, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        let (res, buf) = stream.read(Vec::with_capacity(n - got.len())).await;
        let k = res.unwrap();
        assert!(k > 0, "EOF after {} of {n} bytes", got.len());
        got.extend_from_slice(&buf);
    }
    got
}

/// What a framework that requires `Send` does with a handler's future: boxes it as `Send`.
fn boxed_send<F>(f: F) -> std::pin::Pin<Box<dyn Future<Output = F::Output> + Send>>
where
    F: Future + Send + 'static,
{
    Box::pin(f)
}

both_backends! {
    /// A future holding `Rc`s, a timer, a file read and a socket round trip is `Send` once
    /// wrapped: it runs as a `Send` boxed future and through `Handle::spawn` (which requires
    /// `Send`) on the loop, and produces the real results.
    fn send_wrapper_runs_loop_io(rt) {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = listener.local_addr().unwrap();
            let echo = ringloop::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                let got = read_n(&stream, 4).await;
                let (res, _) = stream.write_all(got).await;
                res.unwrap();
            });

            let local = Rc::new(Cell::new(0u32));
            let seen = local.clone();
            let handler = boxed_send(ringloop::on_loop(async move {
                ringloop::time::sleep(Duration::from_millis(2)).await;
                let manifest = ringloop::fs::read("Cargo.toml").await.unwrap();
                let stream = TcpStream::connect(addr).await.unwrap();
                let (res, _) = stream.write_all(b"ping".to_vec()).await;
                res.unwrap();
                let reply = read_n(&stream, 4).await;
                seen.set(seen.get() + 1);
                (manifest.len(), reply)
            }));
            let (manifest_len, reply) = handler.await;
            assert!(manifest_len > 0);
            assert_eq!(reply, b"ping");
            assert_eq!(local.get(), 1);
            echo.await.unwrap();

            // `Handle::spawn` demands `Send + 'static`; from the loop thread it runs here.
            let flag = Rc::new(Cell::new(false));
            let set = flag.clone();
            let joined = ringloop::Handle::current()
                .spawn(ringloop::on_loop(async move {
                    ringloop::time::sleep(Duration::from_millis(1)).await;
                    set.set(true);
                    7
                }))
                .await
                .unwrap();
            assert_eq!(joined, 7);
            assert!(flag.get());
        });
    }

    /// Polled on a thread that does not run its loop, it panics with a message that says
    /// so, before polling the future inside; dropped there, it leaks the future instead of
    /// running its destructor off the loop.
    fn off_loop_poll_panics_and_drop_leaks(rt) {
        rt.block_on(async {
            let polled = Arc::new(AtomicBool::new(false));
            let dropped = Arc::new(AtomicBool::new(false));
            let guard = DropFlag(dropped.clone());
            let p = polled.clone();
            let wrapped = ringloop::on_loop(async move {
                let _guard = guard;
                let _loop_bound = Rc::new(());
                p.store(true, Ordering::SeqCst);
                ringloop::time::sleep(Duration::from_secs(60)).await;
            });
            let message = std::thread::spawn(move || {
                let mut wrapped = Box::pin(wrapped);
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let mut cx = Context::from_waker(Waker::noop());
                    let _ = wrapped.as_mut().poll(&mut cx);
                }));
                drop(wrapped); // off the loop: leaked, not dropped
                let payload = result.expect_err("polling off the loop must panic");
                payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            })
            .join()
            .unwrap();
            assert!(message.contains("does not run its loop"), "{message}");
            assert!(!polled.load(Ordering::SeqCst), "the inner future was polled off its loop");
            assert!(!dropped.load(Ordering::SeqCst), "the inner future was dropped off its loop");
        });
    }

    /// Dropped on its loop before completing (a cancelled handler), the future inside is
    /// dropped at once: its timer and its guard go with it.
    fn drop_on_loop_drops_the_future(rt) {
        rt.block_on(async {
            let dropped = Arc::new(AtomicBool::new(false));
            let guard = DropFlag(dropped.clone());
            let mut wrapped = Box::pin(ringloop::on_loop(async move {
                let _guard = guard;
                ringloop::time::sleep(Duration::from_secs(60)).await;
            }));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(wrapped.as_mut().poll(&mut cx).is_pending());
            assert!(!dropped.load(Ordering::SeqCst));
            drop(wrapped);
            assert!(dropped.load(Ordering::SeqCst));
        });
    }

    /// A wrapper made on one loop panics when polled by a task of another loop, even on the
    /// same thread (it holds the first loop's I/O); dropped on that thread, it drops its
    /// future (the thread is the right one), rather than leaking it.
    fn other_loop_on_same_thread_panics(backend: Backend) {
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = DropFlag(dropped.clone());
        let first = support::runtime(backend);
        // The wrapper itself is the output: made on the first loop, awaited on the second.
        #[allow(clippy::async_yields_async)]
        let wrapped = first.block_on(async move {
            ringloop::on_loop(async move {
                let _guard = guard;
                1
            })
        });
        let second = support::runtime(backend);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            second.block_on(async move { pin!(wrapped).await })
        }));
        assert!(result.is_err(), "a second loop polled the first loop's future");
        assert!(dropped.load(Ordering::SeqCst), "dropped on its own thread, yet leaked");
    }

    /// The backend report is reachable from inside `run`, through the handle, and is the
    /// runtime's own.
    fn backend_report_through_handle(backend: Backend) {
        let rt = support::runtime(backend);
        let from_runtime = rt.backend_report().backend();
        let (inside, from_thread) = rt.block_on(async {
            let handle = ringloop::Handle::current();
            let inside = handle.backend_report().backend();
            let from_thread = std::thread::spawn(move || handle.backend_report().backend())
                .join()
                .unwrap();
            (inside, from_thread)
        });
        assert_eq!(inside, from_runtime);
        assert_eq!(from_thread, from_runtime);
        let expected = match backend {
            Backend::Epoll => ringloop::BackendKind::Epoll,
            _ => ringloop::BackendKind::IoUring,
        };
        assert_eq!(from_runtime, expected);
    }
}

/// Outside a loop there is no loop to bind to.
#[test]
fn outside_a_loop_panics() {
    let result = std::panic::catch_unwind(|| ringloop::on_loop(async {}));
    assert!(result.is_err());
}
