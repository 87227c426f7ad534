//! # ringloop
//!
//! An asyncio-style event loop for Rust on an **io_uring proactor**, with an **epoll**
//! fallback that runs the same program where io_uring cannot (old kernels, seccomp profiles
//! that deny it, memlock limits).
//!
//! A task that starts an I/O operation hands the kernel the operation *and the buffers it
//! owns*, and is parked on the operation's completion token until the kernel posts the result.
//! Dropping an operation cancels it in the kernel (`IORING_OP_ASYNC_CANCEL`); its buffers stay
//! with the runtime until the kernel is done with them.
//!
//! ```
//! use std::os::fd::AsRawFd;
//! use std::time::Duration;
//!
//! ringloop::run(async {
//!     let (rx, tx) = std::io::pipe().unwrap();
//!     let reader = ringloop::spawn(async move {
//!         let (n, buf) = ringloop::op::read(rx.as_raw_fd(), Vec::with_capacity(64)).await;
//!         (n.unwrap(), buf)
//!     });
//!     ringloop::time::sleep(Duration::from_millis(1)).await;
//!     let (n, _) = ringloop::op::write(tx.as_raw_fd(), b"hello ring".as_slice()).await;
//!     assert_eq!(n.unwrap(), 10);
//!     let (n, buf) = reader.await.unwrap();
//!     assert_eq!(&buf[..n], b"hello ring");
//! });
//! ```
//!
//! # Layers
//!
//! * [`op`] — owned-buffer operations; each describes itself to both backends.
//! * [`net`] — TCP, UDP and Unix sockets built on those operations, with multishot accept
//!   ([`net::Incoming`]) and multishot receive into buffer rings ([`net::RecvStream`]).
//! * the runtime — [`Runtime`], [`spawn`], [`Handle`] (asyncio's loop methods), [`LoopFuture`].
//! * [`process`] — child processes with pipes: [`process::Command`], [`process::Child`].
//! * [`fs`] — files and directories: [`fs::File`], [`fs::OpenOptions`], `fs::read`, ...
//! * [`time`] — sleep, timeout, interval.
//! * [`transport`] — asyncio's Transports and Protocols over those sockets.
//! * [`streams`] — asyncio's Streams on those transports: `open_connection`, `start_server`,
//!   `StreamReader`, `StreamWriter`.
//! * [`task`] — asyncio's task layer: [`task::TaskGroup`], `gather`, `wait`, `as_completed`,
//!   `shield`, `wait_for`, movable timeouts.
//! * [`sync`] — asyncio's Lock, Event, Condition, Semaphore, BoundedSemaphore and Barrier,
//!   and channels between threads ([`sync::mpsc`], [`sync::oneshot`]).
//! * [`queue`] — asyncio's Queue, LifoQueue and PriorityQueue.
//! * [`Runner`] and [`Handle::spawn`] — one loop for several runs, and work handed to a loop
//!   from other threads.
//! * [`signal`] — signals read from a signalfd: [`signal::ctrl_c`], [`signal::Signals`], and
//!   asyncio's `add_signal_handler` on the [`Handle`].
//! * [`buf`] — the owned-buffer traits, and provided-buffer rings ([`buf::BufRing`]).
//!
//! # Features
//!
//! * `tls` (default) — the [`tls`] module: rustls with its *ring* provider.
//! * `tokio-io` — tokio's `AsyncRead`/`AsyncWrite`/`AsyncBufRead` on [`net::TcpStream`],
//!   [`net::UnixStream`], their owned halves, [`fs::File`], the child pipes, the
//!   [`streams`] reader, writer and [`streams::Duplex`], and the TLS stream, each through
//!   its futures-io impl (tokio itself comes with its default features off: no runtime).
//!   tokio's `ReadBuf` may hold uninitialised memory and futures-io reads into initialised
//!   slices, so a read zeroes the part of the `ReadBuf` not initialised yet (once per
//!   buffer, at most 64 KiB per read); the bytes are then copied once, from the receive
//!   buffer into it.
//!
//! ```
//! # #[cfg(feature = "tokio-io")]
//! # fn main() {
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//! use ringloop::net::UnixStream;
//!
//! ringloop::run(async {
//!     let (mut a, b) = UnixStream::pair().unwrap();
//!     AsyncWriteExt::write_all(&mut a, b"one\ntwo\n").await.unwrap();
//!     AsyncWriteExt::shutdown(&mut a).await.unwrap();
//!     let mut lines = BufReader::new(b).lines();
//!     assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("one"));
//!     assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("two"));
//!     assert_eq!(lines.next_line().await.unwrap(), None);
//! });
//! # }
//! # #[cfg(not(feature = "tokio-io"))]
//! # fn main() {}
//! ```
//!
//! # Choosing a backend
//!
//! [`Backend::Auto`] (the default) probes io_uring and falls back to epoll, saying why in
//! [`Runtime::backend_report`]. `RINGLOOP_BACKEND=io_uring|epoll|auto` overrides `Auto`.

mod blocking;
pub mod buf;
mod compat;
#[cfg(feature = "hyper")]
pub use compat::hyper;
mod driver;
pub mod fs;
pub mod net;
pub mod op;
pub mod process;
pub mod queue;
mod runtime;
pub mod signal;
pub mod streams;
pub mod sync;
pub mod task;
pub mod time;
#[cfg(feature = "tls")]
pub mod tls;
pub mod transport;

pub use driver::{Backend, BackendKind, BackendReport};
pub use runtime::{
    Builder, CallbackHandle, Cancelled, Handle, InvalidStateError, JoinError, JoinHandle,
    LoopFuture, OnLoop, Runner, Runtime, Stats, TimerHandle, on_loop, run, spawn, spawn_blocking,
    yield_now,
};

/// The README's code blocks, compiled and run as doc tests so they stay true (with the
/// default features: its TLS example needs `tls`).
#[cfg(all(doctest, feature = "tls"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
