//! Signals arriving while the loop waits or does I/O never lose, duplicate or fail an operation:
//! the runtime retries `EINTR` itself (from `io_uring_enter`, `epoll_wait` and the non-blocking
//! syscalls alike).
//!
//! A helper thread sends SIGUSR1 to the loop thread every 100 µs with `pthread_kill`. The handler
//! does nothing and is installed *without* `SA_RESTART`, so every interrupted syscall really
//! fails with `EINTR`.

mod support;

use std::cell::Cell;
use std::os::fd::{AsRawFd as _, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ringloop::{op, time};
use support::{pipe, watchdog};

/// Messages sent through the pipe in the message test.
const MESSAGES: u64 = 20_000;
/// Bytes per message: a little-endian u64 sequence number.
const MESSAGE_LEN: usize = 8;
/// The writer pauses after every this many messages, so the loop also waits idle.
const PAUSE_EVERY: u64 = 64;
/// Length of the writer's pauses.
const PAUSE: Duration = Duration::from_micros(200);
/// Interval between two signals.
const SIGNAL_EVERY: Duration = Duration::from_micros(100);
/// Upper bound on the signals one test sends (a safety net; the tests stop it much earlier).
const MAX_SIGNALS: u64 = 1_000_000;

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Installs the no-op SIGUSR1 handler, without `SA_RESTART`, once per process.
fn install_sigusr1_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: an all-zero sigaction is a valid value (empty mask, no flags) to fill in.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = 0; // deliberately no SA_RESTART
        // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: `action` is fully initialised and the handler is async-signal-safe (it does
        // nothing); the old action is not needed.
        let rc = unsafe { libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()) };
        assert_eq!(rc, 0, "sigaction: {}", std::io::Error::last_os_error());
    });
}

/// Sends SIGUSR1 to one thread every [`SIGNAL_EVERY`] until dropped. Dropping stops and joins
/// the sender, so the target thread (which drops it) is alive for every `pthread_kill`.
struct Signaller {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Signaller {
    /// Starts signalling the calling thread.
    fn start_on_current_thread() -> Signaller {
        install_sigusr1_handler();
        // SAFETY: pthread_self has no preconditions.
        let target = unsafe { libc::pthread_self() };
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
            thread::Builder::new()
                .name("sigusr1 sender".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed)
                        && sent.load(Ordering::Relaxed) < MAX_SIGNALS
                    {
                        // SAFETY: `target` is alive: it owns this Signaller and joins this thread
                        // before it can exit.
                        let rc = unsafe { libc::pthread_kill(target, libc::SIGUSR1) };
                        assert_eq!(rc, 0, "pthread_kill failed: {rc}");
                        sent.fetch_add(1, Ordering::Relaxed);
                        // Paces the signals; nothing waits on this sleep.
                        thread::sleep(SIGNAL_EVERY);
                    }
                })
                .expect("spawn signal sender")
        };
        Signaller {
            stop,
            sent,
            thread: Some(thread),
        }
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for Signaller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes all of `bytes` to `fd`, resubmitting the rest after a short write; any error fails the
/// test.
async fn write_all(fd: RawFd, bytes: Vec<u8>) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let (result, mut buf) = op::write(fd, rest).await;
        let n = result.unwrap_or_else(|e| panic!("write escaped an error under signals: {e}"));
        assert!(n > 0, "write returned 0");
        buf.drain(..n);
        rest = buf;
    }
}

/// Reads `fd` to EOF, checking that it carries the numbers `0..MESSAGES` in order, each once;
/// returns how many were seen.
async fn read_sequence(fd: RawFd) -> u64 {
    let mut pending: Vec<u8> = Vec::new();
    let mut next = 0u64;
    loop {
        let (result, buf) = op::read(fd, Vec::with_capacity(4096)).await;
        let n = result.unwrap_or_else(|e| panic!("read escaped an error under signals: {e}"));
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf);
        let whole = pending.len() / MESSAGE_LEN * MESSAGE_LEN;
        for chunk in pending[..whole].chunks_exact(MESSAGE_LEN) {
            let value = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            assert_eq!(value, next, "message lost, duplicated or reordered");
            next += 1;
        }
        pending.drain(..whole);
        assert!(next <= MESSAGES, "more messages than were sent");
    }
    assert!(pending.is_empty(), "{} stray bytes at EOF", pending.len());
    next
}

async fn close(fd: OwnedFd) {
    op::close(fd).await.expect("close under signals");
}

both_backends! {
    /// 20 000 numbered messages written by one task and read by another through a pipe, with
    /// timers running beside them and SIGUSR1 hitting the loop thread every 100 µs, arrive
    /// complete, in order, once each, and no operation reports an error.
    fn pipe_messages_survive_sigusr1_storm(rt) {
        let dog = watchdog(Duration::from_secs(120), "20 000 messages under SIGUSR1");
        let signaller = Signaller::start_on_current_thread();
        let (reader, writer) = pipe();

        let (received, sleeps) = rt.block_on(async move {
            let writing = Rc::new(Cell::new(true));
            let writer_task = {
                let writing = Rc::clone(&writing);
                ringloop::spawn(async move {
                    for i in 0..MESSAGES {
                        write_all(writer.as_raw_fd(), i.to_le_bytes().to_vec()).await;
                        if i % PAUSE_EVERY == 0 {
                            // Lets the reader drain the pipe so the loop goes idle and waits in
                            // the kernel, where the signals interrupt it (not a synchronisation).
                            time::sleep(PAUSE).await;
                        }
                    }
                    close(writer).await;
                    writing.set(false);
                })
            };
            let reader_task = ringloop::spawn(async move {
                let seen = read_sequence(reader.as_raw_fd()).await;
                close(reader).await;
                seen
            });
            let sleeper_task = ringloop::spawn(async move {
                let mut sleeps = 0u32;
                while writing.get() && sleeps < 100_000 {
                    let nap = Duration::from_micros(50 + 50 * u64::from(sleeps % 10));
                    let start = Instant::now();
                    time::sleep(nap).await;
                    assert!(start.elapsed() >= nap, "a sleep ended early under signals");
                    sleeps += 1;
                }
                sleeps
            });
            writer_task.await.expect("writer task");
            let received = reader_task.await.expect("reader task");
            let sleeps = sleeper_task.await.expect("sleeper task");
            (received, sleeps)
        });

        let signals = signaller.sent();
        drop(signaller);
        dog.disarm();
        println!(
            "{}: {received} messages, {sleeps} sleeps, {signals} signals",
            rt.backend_report().backend()
        );
        assert_eq!(received, MESSAGES);
        assert!(signals > 0, "no signal was sent during the run");
    }

    /// Sleeps are neither cut short nor lost when the loop's wait is interrupted by signals:
    /// 200 sleeps of 1 ms each all complete, none early.
    fn sleeps_survive_sigusr1_storm(rt) {
        let dog = watchdog(Duration::from_secs(60), "200 sleeps under SIGUSR1");
        let signaller = Signaller::start_on_current_thread();
        rt.block_on(async {
            for _ in 0..200 {
                let start = Instant::now();
                time::sleep(Duration::from_millis(1)).await;
                assert!(
                    start.elapsed() >= Duration::from_millis(1),
                    "a sleep ended early under signals"
                );
            }
        });
        let signals = signaller.sent();
        drop(signaller);
        dog.disarm();
        assert!(signals > 0, "no signal was sent during the run");
    }

    /// Cross-thread wake-ups (blocking-pool results) are not lost when signals interrupt the
    /// loop's wait: 500 `spawn_blocking` jobs each deliver their own result.
    fn blocking_results_survive_sigusr1_storm(rt) {
        let dog = watchdog(Duration::from_secs(60), "500 spawn_blocking jobs under SIGUSR1");
        let signaller = Signaller::start_on_current_thread();
        rt.block_on(async {
            for i in 0..500u32 {
                let got = ringloop::spawn_blocking(move || i * 2)
                    .await
                    .expect("blocking job");
                assert_eq!(got, i * 2);
            }
        });
        drop(signaller);
        dog.disarm();
    }
}
