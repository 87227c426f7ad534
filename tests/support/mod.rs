//! Shared helpers for ringloop's behavioural tests.
//!
//! Every integration test file is its own crate and starts with `mod support;`. That brings in:
//!
//! - [`both_backends!`](crate::both_backends): one test body, expanded into a module with an
//!   `io_uring` and an `epoll` test, so `cargo test` alone checks both backends;
//! - [`runtime`]: a runtime on an explicit backend (explicit choices ignore `RINGLOOP_BACKEND`),
//!   wrapped in the fault injector when `RINGLOOP_FAULT_SEED` is set ([`fault_seed`]): then
//!   every behavioural test runs over the injector around each of the two real backends;
//! - fault helpers: [`open_fds`] (counts `/proc/self/fd`), [`watchdog`] (aborts a hung test),
//!   [`pipe`], and [`run_child`] / [`assert_child_passed`] for tests that must run in a fresh
//!   process (seccomp filters, rlimits, environment variables);
//! - loop helpers: [`yield_turns`] (lets the loop run, before checking that something did NOT
//!   happen), [`yield_until`] / [`yield_until_deadline`] / [`yield_until_within`] (waits on the
//!   running loop for a condition, bounded by time, never by a count of turns),
//!   [`settle_inflight`] (waits for the op table to reach a size);
//! - I/O helpers: [`write_all`] (blocking write into a test pipe), [`read_fd_exact`] (reads
//!   on until it has the bytes, as a read may be short) and [`CountedBuf`] (a read buffer
//!   that counts its drops, to catch a buffer freed twice, never, or while in flight).
//!
//! Not every test file uses every helper, hence `dead_code` is allowed for this module.
#![allow(dead_code)]

use std::io::Write as _;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use ringloop::buf::{IoBuf, IoBufMut};

#[cfg(feature = "tls")]
pub mod tls;

/// Name of the environment variable that tells a re-executed test binary which child role to
/// play. A child test returns at once when it is unset, so it is a no-op in a normal run.
pub const CHILD_ENV: &str = "RINGLOOP_TEST_CHILD";

/// Expands each `fn name(rt) { body }` into `mod name { #[test] fn io_uring() .. #[test] fn epoll() .. }`.
///
/// Two parameter forms are accepted:
///
/// - `fn name(rt) { .. }`: `rt` is a [`ringloop::Runtime`] already built for the backend;
/// - `fn name(backend: Backend) { .. }`: `backend` is the [`ringloop::Backend`] to use, for tests
///   that must control when the runtime is created and dropped (fd counting, drop counting).
///
/// Attributes (doc comments stating the property, `#[ignore]`, `#[should_panic]`, ...) are copied
/// onto both generated tests. Several functions may appear in one invocation.
///
/// ```ignore
/// mod support;
/// both_backends! {
///     /// `call_soon` callbacks run in the order they were scheduled.
///     fn call_soon_is_fifo(rt) { rt.block_on(async { /* ... */ }); }
/// }
/// ```
#[macro_export]
macro_rules! both_backends {
    () => {};
    (
        $(#[$meta:meta])*
        fn $name:ident($backend:ident : Backend) $(-> $ret:ty)? $body:block
        $($rest:tt)*
    ) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            #[test]
            fn io_uring() $(-> $ret)? {
                let $backend = ::ringloop::Backend::IoUring;
                $body
            }

            $(#[$meta])*
            #[test]
            fn epoll() $(-> $ret)? {
                let $backend = ::ringloop::Backend::Epoll;
                $body
            }
        }
        $crate::both_backends! { $($rest)* }
    };
    (
        $(#[$meta:meta])*
        fn $name:ident($rt:ident) $(-> $ret:ty)? $body:block
        $($rest:tt)*
    ) => {
        // The `Backend` form, with the runtime built from the backend before the body runs.
        $crate::both_backends! {
            $(#[$meta])*
            fn $name(backend: Backend) $(-> $ret)? {
                let $rt = $crate::support::runtime(backend);
                $body
            }
            $($rest)*
        }
    };
}

/// The fault injector's seed from `RINGLOOP_FAULT_SEED`, when a run asks for it.
pub fn fault_seed() -> Option<u64> {
    let seed = std::env::var("RINGLOOP_FAULT_SEED").ok()?;
    Some(seed.trim().parse().unwrap_or_else(|e| {
        panic!("RINGLOOP_FAULT_SEED={seed:?} is not an unsigned 64-bit number: {e}")
    }))
}

/// Builds a runtime on exactly `backend`, panicking with the reason if that backend cannot start.
/// With `RINGLOOP_FAULT_SEED` set, the fault injector wraps the backend (ringloop's builder
/// honours the variable too, so runtimes a test builds itself are wrapped as well).
pub fn runtime(backend: ringloop::Backend) -> ringloop::Runtime {
    let mut builder = ringloop::Runtime::builder().backend(backend);
    if let Some(seed) = fault_seed() {
        builder = builder.fault_injection(seed);
    }
    match builder.build() {
        Ok(rt) => rt,
        Err(err) => panic!(
            "cannot build a ringloop runtime on backend {backend:?}: {err}\n\
             (the io_uring tests need a kernel with io_uring enabled: check \
             /proc/sys/kernel/io_uring_disabled and any seccomp profile)"
        ),
    }
}

/// Builds a runtime on exactly `backend` whose drop waits up to `grace` for its cancelled ops
/// (`Builder::io_shutdown_timeout`). Tests that must catch a drop waiting for an op that never
/// finishes give a grace far beyond their watchdog, so the hang trips the watchdog instead of
/// passing slowly.
pub fn runtime_with_shutdown_grace(
    backend: ringloop::Backend,
    grace: Duration,
) -> ringloop::Runtime {
    ringloop::Runtime::builder()
        .backend(backend)
        .io_shutdown_timeout(grace)
        .build()
        .unwrap_or_else(|e| panic!("cannot build a runtime on {backend:?}: {e}"))
}

/// Serialises the tests of one test binary that count process-wide resources (open fds).
///
/// libtest runs tests on parallel threads; a test counting `/proc/self/fd` must hold this guard,
/// and so must every other test in the same binary that opens fds. A panicking holder does not
/// poison the lock for the others.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Number of open file descriptors of this process, from `/proc/self/fd`.
pub fn open_fds() -> usize {
    let entries = std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count();
    // The directory stream itself holds one fd while it is being listed.
    entries - 1
}

/// Paths of the open fds, for a failure message that shows what leaked.
pub fn describe_open_fds() -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(Result::ok)
        .map(|entry| {
            let target = std::fs::read_link(entry.path())
                .map(|p| p.display().to_string())
                .unwrap_or_else(|e| format!("<{e}>"));
            format!("{} -> {target}", entry.file_name().to_string_lossy())
        })
        .collect();
    fds.sort();
    fds
}

/// Aborts the process if it is still armed when its time limit passes.
///
/// A hang in the runtime would otherwise stall the whole test run; aborting names the culprit.
/// Dropping the watchdog (or calling [`Watchdog::disarm`]) disarms it.
pub struct Watchdog {
    disarm: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    /// Disarms the watchdog; same as dropping it.
    pub fn disarm(self) {}
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Disconnecting the channel wakes the watchdog thread, which then exits quietly.
        drop(self.disarm.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Name of the environment variable that stretches the tests' time limits (a whole number,
/// default 1). `ci/old-kernel.sh` sets it when the guest runs on QEMU's software CPU, where
/// the same test takes 50-200 times longer than on the host.
pub const TIME_SCALE_ENV: &str = "RINGLOOP_TEST_TIME_SCALE";

/// The factor the watchdogs and `yield_until*` limits are multiplied by (see
/// [`TIME_SCALE_ENV`]); 1 when unset or not a positive whole number.
pub fn time_scale() -> u32 {
    std::env::var(TIME_SCALE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// `limit` multiplied by [`time_scale`].
pub fn scaled(limit: Duration) -> Duration {
    limit.saturating_mul(time_scale())
}

/// Starts a [`Watchdog`] that aborts the process with a message naming `what` after `limit`.
///
/// The limit is multiplied by [`time_scale`], so a run on an emulated CPU keeps its meaning.
pub fn watchdog(limit: Duration, what: &str) -> Watchdog {
    let limit = scaled(limit);
    let (disarm, armed) = mpsc::channel::<()>();
    let what = what.to_owned();
    let thread = thread::Builder::new()
        .name(format!("watchdog: {what}"))
        .spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = armed.recv_timeout(limit) {
                // Written straight to stderr: libtest's output capture would be lost by abort().
                let seed = fault_seed()
                    .map(|s| format!(" (faults injected: RINGLOOP_FAULT_SEED={s})"))
                    .unwrap_or_default();
                let _ = writeln!(
                    std::io::stderr(),
                    "\nWATCHDOG: `{what}` did not finish within {limit:?}{seed}; aborting the test process"
                );
                std::process::abort();
            }
        })
        .expect("spawn watchdog thread");
    Watchdog {
        disarm: Some(disarm),
        thread: Some(thread),
    }
}

/// A pipe as `(read end, write end)`, both close-on-exec.
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two c_ints, which is what pipe2(2) fills in.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2(2) succeeded, so both fds are open and nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// The child role this process was started for (the value of [`CHILD_ENV`]), if any.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// The child role that asks a child to run on `backend`; see [`child_backend`].
pub fn backend_role(backend: ringloop::Backend) -> &'static str {
    match backend {
        ringloop::Backend::IoUring => "io_uring",
        _ => "epoll",
    }
}

/// The backend this child process was started for with [`backend_role`], if it is a child.
pub fn child_backend() -> Option<ringloop::Backend> {
    Some(match child_role()?.as_str() {
        "io_uring" => ringloop::Backend::IoUring,
        _ => ringloop::Backend::Epoll,
    })
}

/// Re-executes the current test binary to run only the test `test_name`, with `env` added.
///
/// `test_name` is the full libtest path (e.g. `child_under_seccomp` or `module::io_uring`).
/// `RINGLOOP_BACKEND` and [`CHILD_ENV`] are cleared first so the parent's environment cannot leak
/// into the child's role; pass them in `env` to set them.
pub fn run_child(test_name: &str, env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("current test executable");
    let mut cmd = Command::new(exe);
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env_remove("RINGLOOP_BACKEND")
        .env_remove(CHILD_ENV);
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("re-executing the test binary for `{test_name}`: {e}"))
}

/// Panics, showing the child's output, unless the child exited successfully having run exactly one
/// test (so a misspelt test name cannot pass by running nothing).
pub fn assert_child_passed(test_name: &str, output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let ran_one = stdout.contains("test result: ok. 1 passed");
    assert!(
        output.status.success() && ran_one,
        "child test `{test_name}` failed ({}; ran exactly one test: {ran_one})\n\
         ---- child stdout ----\n{stdout}\n---- child stderr ----\n{stderr}",
        output.status,
    );
}

/// Text of the child's stdout and stderr, for assertions on what it printed.
pub fn child_output_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A small generator (xorshift64*) for tests that vary timings or pick victims: reproducible
/// from its seed, which a test prints or fixes so that a failing run repeats.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; 0 is replaced, as xorshift never leaves 0).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The next number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Yields to the running loop `turns` times.
///
/// Not a way to wait *for* something (use [`yield_until`]): how much happens in a number of
/// turns depends on the machine's load. It is for letting the loop run a while before checking
/// that something did *not* happen, and for varying where an event lands in a test.
pub async fn yield_turns(turns: usize) {
    for _ in 0..turns {
        ringloop::yield_now().await;
    }
}

/// How long [`yield_until`] waits before it gives up: generous, because the machine running the
/// tests may be shared and busy (a blocking-pool thread or the kernel may not get a CPU for a
/// while). Waits are bounded by time only, never by a count of loop turns: how many turns fit
/// in a wait depends on the machine's load, so a turn bound fails on a busy machine.
pub const YIELD_UNTIL_TIME: Duration = Duration::from_secs(10);

/// Yields to the loop until `cond` holds; panics (naming `what`) after [`YIELD_UNTIL_TIME`].
pub async fn yield_until(what: &str, cond: impl FnMut() -> bool) {
    yield_until_within(YIELD_UNTIL_TIME, what, cond).await;
}

/// Same as [`yield_until`] (the name older tests use for waits on the kernel).
pub async fn yield_until_deadline(what: &str, cond: impl FnMut() -> bool) {
    yield_until_within(YIELD_UNTIL_TIME, what, cond).await;
}

/// Yields to the loop until `cond` holds; panics with "gave up waiting until {what}" once
/// `limit` has passed without it holding.
/// The limit is multiplied by [`time_scale`].
pub async fn yield_until_within(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + scaled(limit);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "gave up waiting until {what} (waited {limit:?})"
        );
        ringloop::yield_now().await;
    }
}

/// Yields until the current loop's op table holds exactly `expected` ops (bounded by time, see
/// [`yield_until`]), and asserts that it does.
pub async fn settle_inflight(expected: usize) {
    let h = ringloop::Handle::current();
    yield_until(&format!("inflight_ops() == {expected}"), || {
        h.inflight_ops() == expected
    })
    .await;
    assert_eq!(h.inflight_ops(), expected);
}

/// Runs `rt` until no op is in flight and no spawned task is alive, bounded by time (a leak
/// still shows in the caller's assertions): the tasks that finish a dropped stream's work (the
/// pump sending accepted bytes, the drain of a receive) end a loop turn after their last op,
/// so "no op in flight" alone can still see them.
pub fn settle_tasks_and_ops(rt: &ringloop::Runtime) {
    rt.block_on(settle_inflight(0));
    let deadline = Instant::now() + scaled(YIELD_UNTIL_TIME);
    while rt.stats().tasks != 0 && Instant::now() < deadline {
        rt.block_on(ringloop::yield_now());
    }
    rt.block_on(settle_inflight(0));
}

/// Writes all of `data` to a pipe's write end with plain blocking `write(2)`, retrying `EINTR`
/// and short writes; any other error fails the test.
pub fn write_all(fd: &OwnedFd, mut data: &[u8]) {
    while !data.is_empty() {
        // `fd` is an open descriptor, borrowed for the call.
        // SAFETY: `data` is valid for reads of `data.len()` bytes during the call.
        let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            assert_eq!(err.kind(), std::io::ErrorKind::Interrupted, "write: {err}");
            continue;
        }
        data = &data[n as usize..];
    }
}

/// How long [`read_fd_exact`] waits for bytes that are already on their way before it counts
/// them as lost.
pub const READ_FD_LIMIT: Duration = Duration::from_secs(5);

/// Reads exactly `len` bytes from `fd` (a pipe, a file, a stream socket) with `op::read`, in
/// as many reads as the kernel gives them in: a read may return fewer bytes than are waiting.
/// Fails the test, naming `what`, on an error, on end-of-file, or when the bytes have not all
/// arrived within [`READ_FD_LIMIT`] (they were lost).
pub async fn read_fd_exact(fd: std::os::fd::RawFd, len: usize, what: &str) -> Vec<u8> {
    let mut got = Vec::with_capacity(len);
    while got.len() < len {
        let read = ringloop::op::read(fd, Vec::with_capacity(len - got.len()));
        let Ok((res, buf)) = ringloop::time::timeout(scaled(READ_FD_LIMIT), read).await else {
            panic!(
                "{what}: {} of {len} bytes arrived, the rest were lost",
                got.len()
            );
        };
        let n = res.unwrap_or_else(|e| panic!("{what}: read: {e}"));
        assert!(
            n > 0,
            "{what}: end-of-file after {} of {len} bytes",
            got.len()
        );
        got.extend_from_slice(&buf);
    }
    got
}

/// A read buffer (a `Vec` with `capacity` bytes of room) that counts its drops in a per-test
/// counter, so a buffer freed twice, never, or while the kernel still holds it shows up as a
/// wrong count. The counter is per test because tests run on parallel threads: a process-wide
/// static would mix the two backends' counts.
pub struct CountedBuf {
    bytes: Vec<u8>,
    drops: Arc<AtomicUsize>,
}

impl CountedBuf {
    /// An empty buffer with room for `capacity` bytes, counting its drop in `drops`.
    pub fn new(capacity: usize, drops: &Arc<AtomicUsize>) -> Self {
        CountedBuf {
            bytes: Vec::with_capacity(capacity),
            drops: Arc::clone(drops),
        }
    }

    /// The bytes a read has filled in so far.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for CountedBuf {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: the pointer is the Vec's heap allocation, which does not move when the CountedBuf
// moves and is never reallocated while the buffer is lent out; len/capacity bound it.
unsafe impl IoBuf for CountedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.bytes.as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.bytes.len()
    }

    fn bytes_total(&self) -> usize {
        self.bytes.capacity()
    }
}

// SAFETY: as for `IoBuf`; `set_init` only grows `len` up to bytes the kernel initialised.
unsafe impl IoBufMut for CountedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.bytes.as_mut_ptr()
    }

    unsafe fn set_init(&mut self, pos: usize) {
        if pos > self.bytes.len() {
            // `pos` is within `bytes_total()`, the Vec's capacity.
            // SAFETY: the caller guarantees the first `pos` bytes are initialised.
            unsafe { self.bytes.set_len(pos) };
        }
    }
}

/// Asserts `got == want`, reporting lengths and the first differing offset rather than dumping
/// the bytes.
pub fn assert_bytes_eq(what: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let first_difference = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    panic!(
        "{what}: got {} bytes, want {}; first difference at offset {first_difference}",
        got.len(),
        want.len()
    );
}
