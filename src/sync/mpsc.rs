//! Channels between threads and loops: many senders, many receivers (each message goes to one
//! receiver), bounded or unbounded. These are the `async-channel` crate's, which wakes any
//! task — a ringloop task on a loop parked in the kernel is woken at once through its loop's
//! remote queue — and has blocking `send_blocking`/`recv_blocking` for plain threads.
//!
//! Between the tasks of one loop, [`queue::Queue`](crate::queue::Queue) is the cheaper choice:
//! it needs no atomics (see `compare`'s `queue/1M` rows).
//!
//! ```
//! use ringloop::sync::mpsc;
//!
//! let (tx, rx) = mpsc::channel(16);
//! let producer = std::thread::spawn(move || {
//!     for n in 1..=100u32 {
//!         tx.send_blocking(n).unwrap();
//!     }
//!     // Dropping the last sender closes the channel.
//! });
//! let sum = ringloop::run(async move {
//!     let mut sum = 0;
//!     while let Ok(n) = rx.recv().await {
//!         sum += n;
//!     }
//!     sum
//! });
//! producer.join().unwrap();
//! assert_eq!(sum, 5050);
//! ```

pub use async_channel::{
    Receiver, RecvError, SendError, Sender, TryRecvError, TrySendError, unbounded,
};

/// A channel holding at most `capacity` messages: `send` waits while it is full.
///
/// # Panics
///
/// When `capacity` is zero.
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    async_channel::bounded(capacity)
}
