//! A channel for one value, between threads or loops: the [`Receiver`] is a future of the
//! value, or of [`RecvError`] when the [`Sender`] is dropped without sending.
//!
//! ```
//! let (tx, rx) = ringloop::sync::oneshot::channel();
//! std::thread::spawn(move || tx.send("from a thread").unwrap());
//! assert_eq!(ringloop::run(rx), Ok("from a thread"));
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

pub use async_channel::RecvError;

/// Sends the one value; see [`channel`].
pub struct Sender<T>(async_channel::Sender<T>);

pin_project_lite::pin_project! {
    /// Receives the one value: awaiting it gives the value, or [`RecvError`] if the sender was
    /// dropped without sending.
    pub struct Receiver<T> {
        #[pin]
        inner: async_channel::Receiver<T>,
    }
}

/// A channel for one value.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = async_channel::bounded(1);
    (Sender(tx), Receiver { inner: rx })
}

impl<T> Sender<T> {
    /// Sends the value; gives it back if the receiver is gone.
    pub fn send(self, value: T) -> Result<(), T> {
        // The channel holds one message and this is the only send: never full.
        self.0.try_send(value).map_err(|e| e.into_inner())
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

impl<T> Receiver<T> {
    /// The value if it was sent; `Ok(None)` if not yet.
    pub fn try_recv(&mut self) -> Result<Option<T>, RecvError> {
        match self.inner.try_recv() {
            Ok(value) => Ok(Some(value)),
            Err(async_channel::TryRecvError::Empty) => Ok(None),
            Err(async_channel::TryRecvError::Closed) => Err(RecvError),
        }
    }

    /// Blocks this thread until the value comes (for threads that run no loop).
    pub fn recv_blocking(self) -> Result<T, RecvError> {
        self.inner.recv_blocking()
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .inner
            .poll_next(cx)
            .map(|v| v.ok_or(RecvError))
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Receiver").finish_non_exhaustive()
    }
}
