//! [`Incoming`]: a listener's connections from one multishot accept.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{TcpListener, TcpStream};
use crate::op::{self, AcceptMulti, OpStream};

/// The connections arriving at a [`TcpListener`], from one multishot accept
/// (`IORING_ACCEPT_MULTISHOT`; on epoll, `accept4` until `EAGAIN` on each readiness report).
///
/// An error (such as `EMFILE`, too many open files) is yielded and the next poll re-arms the
/// accept, as a server loop expects. Dropping the stream cancels the accept; a connection the
/// kernel accepted for it in the meantime is closed, never leaked. On a kernel without
/// multishot accept (before 5.19: the first accept fails with `EINVAL`) it falls back to one
/// [`accept`](TcpListener::accept) at a time.
pub struct Incoming<'a> {
    listener: &'a TcpListener,
    accept: Option<OpStream<AcceptMulti>>,
    /// Single-shot fallback: the accept in flight, once multishot proved unsupported.
    single: Option<SingleAccept<'a>>,
    /// Multishot accept is unsupported here.
    fallback: bool,
    /// A multishot accept has delivered a connection (so `EINVAL` is not "unsupported").
    delivered: bool,
}

type SingleAccept<'a> =
    Pin<Box<dyn std::future::Future<Output = io::Result<(TcpStream, std::net::SocketAddr)>> + 'a>>;

impl Incoming<'_> {
    /// The next connection.
    pub async fn next(&mut self) -> io::Result<TcpStream> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next connection.
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        // An accept a timed-out `accept()` left in flight comes first: it may be the older
        // waiter for the next connection (the epoll backend serves waiters in order).
        match self.listener.poll_adopted_accept(cx) {
            Poll::Ready(Some(Ok((fd, _)))) => return Poll::Ready(TcpStream::from_owned(fd)),
            // Cancelled by runtime shutdown: nothing was accepted.
            Poll::Ready(Some(Err(e))) if e.raw_os_error() == Some(libc::ECANCELED) => {}
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
            Poll::Ready(None) | Poll::Pending => {}
        }
        if self.fallback {
            let listener = self.listener;
            let single = self
                .single
                .get_or_insert_with(|| Box::pin(listener.accept()));
            let accepted = std::task::ready!(single.as_mut().poll(cx));
            self.single = None;
            return Poll::Ready(accepted.map(|(stream, _)| stream));
        }
        loop {
            let accept = self
                .accept
                .get_or_insert_with(|| op::accept_multishot(self.listener.as_raw_fd()));
            match std::task::ready!(accept.poll_next_item(cx)) {
                Some(Ok(fd)) => {
                    self.delivered = true;
                    return Poll::Ready(TcpStream::from_owned(fd));
                }
                Some(Err(e)) if !self.delivered && e.raw_os_error() == Some(libc::EINVAL) => {
                    // No multishot accept in this kernel: one accept at a time from now on.
                    self.accept = None;
                    self.fallback = true;
                    return self.poll_accept(cx);
                }
                Some(Err(e)) => {
                    // The error ended the multishot accept: re-arm on the next poll.
                    self.accept = None;
                    return Poll::Ready(Err(e));
                }
                // Ended without an error (the kernel may stop a multishot op): re-arm.
                None => self.accept = None,
            }
        }
    }
}

impl futures_core::Stream for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_accept(cx).map(Some)
    }
}

impl TcpListener {
    /// The connections arriving, from one multishot accept; see [`Incoming`].
    ///
    /// ```
    /// use ringloop::net::{TcpListener, TcpStream};
    /// # ringloop::run(async {
    /// let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let clients = ringloop::spawn(async move {
    ///     let mut v = Vec::new();
    ///     for _ in 0..3 {
    ///         v.push(TcpStream::connect(addr).await.unwrap());
    ///     }
    ///     v
    /// });
    /// let mut incoming = listener.incoming();
    /// for _ in 0..3 {
    ///     let stream = incoming.next().await.unwrap();
    ///     assert_eq!(stream.local_addr().unwrap(), addr);
    /// }
    /// clients.await.unwrap();
    /// # });
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming {
            listener: self,
            accept: None,
            single: None,
            fallback: false,
            delivered: false,
        }
    }
}
