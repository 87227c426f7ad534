//! The parent's ends of a child's standard pipes: [`ChildStdin`], [`ChildStdout`],
//! [`ChildStderr`].
//!
//! Each owns a non-blocking, close-on-exec pipe end. Reads are ring ops (`op::read`) that fall
//! back to waiting for readiness when the kernel answers `EAGAIN`; writes are always a
//! readiness wait (`op::poll_add`) plus a `write(2)` on the loop thread that cannot raise
//! SIGPIPE (see `op::pipe`): writing to a child that has exited gives
//! [`io::ErrorKind::BrokenPipe`] and never kills this process. The futures-io traits are
//! implemented on the same readiness path.
//!
//! # Cancellation
//!
//! Dropping an owned-buffer `read` while the kernel owns it cancels the ring read; if the
//! kernel had already filled the buffer, those bytes go with it (see [`crate::op`]). Where a
//! read may be abandoned (a `timeout`, a `select`), use the `AsyncRead` impl instead: it only
//! waits for readiness in the kernel and reads on the loop thread, so dropping it loses
//! nothing. Writes never lose track of bytes: an abandoned `write_all` has written a prefix
//! of the buffer, as with any `write_all`.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::buf::{self, IoBuf, IoBufMut};
use crate::op::{self, Interest, Op, PollAdd};

/// A pipe end plus the readiness wait a futures-io poll left in flight.
pub(crate) struct PipeEnd {
    /// Waiting for readiness between `poll_*` calls of the futures-io traits.
    ready: Option<Op<PollAdd>>,
    /// Dropped before `fd` (field order): unregisters from epoll while the fd is open.
    _registration: op::Registration,
    fd: OwnedFd,
}

impl PipeEnd {
    /// Adopts a pipe end: makes it non-blocking (std creates it close-on-exec).
    pub(crate) fn new(fd: OwnedFd) -> io::Result<PipeEnd> {
        op::pipe::set_nonblocking(fd.as_raw_fd())?;
        Ok(PipeEnd {
            ready: None,
            _registration: op::Registration::new(fd.as_raw_fd()),
            fd,
        })
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub(crate) async fn read<B: IoBufMut>(&mut self, mut buf: B) -> (io::Result<usize>, B) {
        loop {
            let (res, back) = op::read(self.raw(), buf).await;
            buf = back;
            match res {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = op::poll_add(self.raw(), Interest::READABLE).await {
                        return (Err(e), buf);
                    }
                }
                res => return (res, buf),
            }
        }
    }

    pub(crate) async fn write<B: IoBuf>(&mut self, buf: B) -> (io::Result<usize>, B) {
        loop {
            match op::pipe::write_now(self.raw(), buf::init_bytes(&buf, 0)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = op::poll_add(self.raw(), Interest::WRITABLE).await {
                        return (Err(e), buf);
                    }
                }
                res => return (res, buf),
            }
        }
    }

    pub(crate) async fn write_all<B: IoBuf>(&mut self, buf: B) -> (io::Result<()>, B) {
        let mut written = 0;
        while written < buf.bytes_init() {
            match op::pipe::write_now(self.raw(), buf::init_bytes(&buf, written)) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = op::poll_add(self.raw(), Interest::WRITABLE).await {
                        return (Err(e), buf);
                    }
                }
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Runs `attempt` until it stops saying `WouldBlock`, waiting for `interest` between tries.
    fn poll_io<T>(
        &mut self,
        cx: &mut Context<'_>,
        interest: Interest,
        mut attempt: impl FnMut(RawFd) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        loop {
            if let Some(ready) = &mut self.ready {
                let seen = std::task::ready!(Pin::new(ready).poll(cx));
                self.ready = None;
                seen?;
            }
            match attempt(self.raw()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ready = Some(op::poll_add(self.raw(), interest));
                }
                res => return Poll::Ready(res),
            }
        }
    }

    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, Interest::READABLE, |fd| op::pipe::read_now(fd, out))
    }

    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, Interest::WRITABLE, |fd| op::pipe::write_now(fd, data))
    }

    pub(crate) fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

macro_rules! pipe_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(pub(crate) PipeEnd);

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.0.raw()
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0.fd.as_fd()
            }
        }

        impl From<$name> for OwnedFd {
            /// Gives up the pipe end, still non-blocking (to pass it to another child, convert
            /// into [`Stdio`](super::Stdio) instead).
            fn from(pipe: $name) -> OwnedFd {
                pipe.0.into_fd()
            }
        }

        impl TryFrom<$name> for super::Stdio {
            type Error = io::Error;
            /// Hands the pipe end to another child (a shell's `a | b`), blocking again as
            /// children expect.
            fn try_from(pipe: $name) -> io::Result<super::Stdio> {
                let fd = pipe.0.into_fd();
                op::pipe::set_blocking(fd.as_raw_fd())?;
                Ok(super::Stdio::from(fd))
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0.raw()).finish()
            }
        }
    };
}

macro_rules! readable_pipe {
    ($name:ident) => {
        impl $name {
            /// Reads into the spare capacity of `buf`; `Ok(0)` once the child has closed
            /// its end (usually: it exited) and everything was read.
            pub async fn read<B: IoBufMut>(&mut self, buf: B) -> (io::Result<usize>, B) {
                self.0.read(buf).await
            }

            /// Reads until end of file, appending to `buf`; returns the count read.
            pub async fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
                let start = buf.len();
                loop {
                    let mut chunk = std::mem::take(buf);
                    chunk.reserve(64 * 1024);
                    let (res, back) = self.0.read(chunk).await;
                    *buf = back;
                    if res? == 0 {
                        return Ok(buf.len() - start);
                    }
                }
            }
        }

        impl futures_io::AsyncRead for $name {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                out: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.get_mut().0.poll_read(cx, out)
            }
        }
    };
}

pipe_type! {
    /// The parent's write end of a child's standard input ([`Stdio::piped`](super::Stdio::piped)).
    /// Dropping it closes the pipe: the child reads end of file.
    ///
    /// ```
    /// use ringloop::process::{Command, Stdio};
    /// # ringloop::run(async {
    /// let mut child = Command::new("cat")
    ///     .stdin(Stdio::piped())
    ///     .stdout(Stdio::piped())
    ///     .spawn()
    ///     .unwrap();
    /// let mut stdin = child.stdin.take().unwrap();
    /// stdin.write_all(b"meow".to_vec()).await.0.unwrap();
    /// drop(stdin);
    /// let out = child.wait_with_output().await.unwrap();
    /// assert_eq!(out.stdout, b"meow");
    /// # });
    /// ```
    ChildStdin
}

impl ChildStdin {
    /// Writes some of the initialised bytes of `buf`; returns how many. A child that has
    /// closed its standard input (or exited) gives [`io::ErrorKind::BrokenPipe`].
    pub async fn write<B: IoBuf>(&mut self, buf: B) -> (io::Result<usize>, B) {
        self.0.write(buf).await
    }

    /// Writes all initialised bytes of `buf`, waiting for room in the pipe as needed.
    pub async fn write_all<B: IoBuf>(&mut self, buf: B) -> (io::Result<()>, B) {
        self.0.write_all(buf).await
    }
}

impl futures_io::AsyncWrite for ChildStdin {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().0.poll_write(cx, data)
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is buffered on our side.
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The pipe closes when the handle is dropped.
        Poll::Ready(Ok(()))
    }
}

pipe_type! {
    /// The parent's read end of a child's standard output ([`Stdio::piped`](super::Stdio::piped)).
    ///
    /// ```
    /// use ringloop::process::{Command, Stdio};
    /// # ringloop::run(async {
    /// let mut child = Command::new("echo").arg("hi").stdout(Stdio::piped()).spawn().unwrap();
    /// let mut out = Vec::new();
    /// child.stdout.as_mut().unwrap().read_to_end(&mut out).await.unwrap();
    /// assert_eq!(out, b"hi\n");
    /// assert!(child.wait().await.unwrap().success());
    /// # });
    /// ```
    ChildStdout
}
readable_pipe!(ChildStdout);

pipe_type! {
    /// The parent's read end of a child's standard error ([`Stdio::piped`](super::Stdio::piped)).
    ///
    /// ```
    /// use ringloop::process::{Command, Stdio};
    /// # ringloop::run(async {
    /// let mut child = Command::new("sh")
    ///     .args(["-c", "echo oops >&2"])
    ///     .stderr(Stdio::piped())
    ///     .spawn()
    ///     .unwrap();
    /// let mut err = Vec::new();
    /// child.stderr.as_mut().unwrap().read_to_end(&mut err).await.unwrap();
    /// assert_eq!(err, b"oops\n");
    /// child.wait().await.unwrap();
    /// # });
    /// ```
    ChildStderr
}
readable_pipe!(ChildStderr);
