//! The pipe transports of a subprocess transport: the stdin writer handle
//! ([`SubprocessPipeWriter`]) and its writer task, the output reader handle
//! ([`SubprocessPipeReader`], for flow control) and the reader tasks.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Poll, Waker};

use super::protocol::SubprocessProtocol;
use super::shared::OwnedProtocol;
use crate::process::{ChildStderr, ChildStdin, ChildStdout};

/// The write handle of a child's stdin (asyncio's `WriteTransport` for pipe 0). Writes are
/// buffered and sent by the transport's writer task; they never block and never raise
/// SIGPIPE. Cloning it is cheap.
#[derive(Clone)]
pub struct SubprocessPipeWriter {
    pub(super) state: Rc<WriterState>,
}

#[derive(Default)]
pub(super) struct WriterState {
    buffer: RefCell<Vec<u8>>,
    /// Bytes handed to the kernel write in progress.
    in_flight: Cell<usize>,
    /// No more writes accepted; the pipe closes once the buffer is sent.
    closing: Cell<bool>,
    /// The pipe is closed.
    closed: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl std::fmt::Debug for SubprocessPipeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubprocessPipeWriter")
            .field("buffered", &self.get_write_buffer_size())
            .field("closing", &self.is_closing())
            .finish()
    }
}

impl SubprocessPipeWriter {
    /// Queues `data` for the child's stdin. Fails with `NotConnected` once the pipe is
    /// closing or closed (the child's broken pipe is reported to `pipe_connection_lost`).
    pub fn write(&self, data: &[u8]) -> io::Result<()> {
        let state = &self.state;
        if state.closing.get() || state.closed.get() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the child's stdin is closing or closed",
            ));
        }
        state.buffer.borrow_mut().extend_from_slice(data);
        state.wake();
        Ok(())
    }

    /// Closes stdin once the buffered bytes are sent (the child then reads end of file).
    pub fn close(&self) {
        self.state.closing.set(true);
        self.state.wake();
    }

    /// asyncio's `write_eof`: for a pipe, the same as [`close`](Self::close).
    pub fn write_eof(&self) {
        self.close();
    }

    /// Whether the pipe is closing or closed.
    pub fn is_closing(&self) -> bool {
        self.state.closing.get() || self.state.closed.get()
    }

    /// Bytes buffered or being written.
    pub fn get_write_buffer_size(&self) -> usize {
        self.state.buffer.borrow().len() + self.state.in_flight.get()
    }
}

impl WriterState {
    fn wake(&self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// The stdin writer task: sends what the handle buffered until closed or broken, then
/// reports `pipe_connection_lost(0, ..)`.
pub(super) async fn feed<P: SubprocessProtocol>(
    mut stdin: ChildStdin,
    state: Rc<WriterState>,
    proto: OwnedProtocol<P>,
) {
    let err = loop {
        poll_fn(|cx| {
            if state.closing.get() || !state.buffer.borrow().is_empty() {
                return Poll::Ready(());
            }
            state.waker.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await;
        let chunk = std::mem::take(&mut *state.buffer.borrow_mut());
        if chunk.is_empty() {
            break None; // closing, and everything is sent
        }
        state.in_flight.set(chunk.len());
        let (res, _) = stdin.write_all(chunk).await;
        state.in_flight.set(0);
        if let Err(e) = res {
            break Some(e);
        }
    };
    state.closed.set(true);
    state.buffer.borrow_mut().clear();
    drop(stdin);
    proto.call(|p| p.pipe_connection_lost(0, err)).await;
}

/// A child's output pipe, named by its fd number in the callbacks.
pub(super) enum OutputPipe {
    Stdout(ChildStdout),
    Stderr(ChildStderr),
}

impl OutputPipe {
    fn fd(&self) -> i32 {
        match self {
            OutputPipe::Stdout(_) => 1,
            OutputPipe::Stderr(_) => 2,
        }
    }

    async fn read(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        match self {
            OutputPipe::Stdout(pipe) => pipe.read(buf).await,
            OutputPipe::Stderr(pipe) => pipe.read(buf).await,
        }
    }
}

/// An output reader task: hands each chunk to `pipe_data_received`, then reports the end.
pub(super) async fn drain<P: SubprocessProtocol>(
    mut pipe: OutputPipe,
    reader: SubprocessPipeReader,
    proto: OwnedProtocol<P>,
) {
    let fd = pipe.fd();
    let mut buf = Vec::with_capacity(64 * 1024);
    let err = loop {
        // Paused: no read is issued, so the pipe fills and the child blocks (backpressure).
        reader.unpaused().await;
        buf.clear();
        let (res, back) = pipe.read(buf).await;
        buf = back;
        match res {
            Ok(0) => break None,
            Ok(_) => {
                // A chunk read just before a pause is held until the resume.
                reader.unpaused().await;
                proto.call(|p| p.pipe_data_received(fd, &buf)).await;
            }
            Err(e) => break Some(e),
        }
    };
    drop(pipe);
    proto.call(|p| p.pipe_connection_lost(fd, err)).await;
}

/// The read handle of a child's stdout or stderr (asyncio's `ReadTransport` for pipes 1 and
/// 2): pauses and resumes delivery. Cloning it is cheap.
///
/// While paused, the transport reads nothing from the pipe: once it is full, the child blocks
/// on its next write, which is the backpressure asyncio's `pause_reading` gives.
///
/// ```
/// use ringloop::transport::{self, SubprocessProtocol, SubprocessTransport};
///
/// #[derive(Default)]
/// struct Slow(usize);
/// impl SubprocessProtocol for Slow {
///     fn connection_made(&mut self, t: SubprocessTransport) {
///         t.get_read_pipe_transport(1).unwrap().pause_reading();
///     }
///     fn pipe_data_received(&mut self, _fd: i32, data: &[u8]) { self.0 += data.len(); }
/// }
///
/// # ringloop::run(async {
/// let (t, slow) = transport::subprocess_shell(Slow::default, "echo hi").await.unwrap();
/// ringloop::op::nop().await.unwrap();
/// assert_eq!(slow.borrow().0, 0);
/// t.get_read_pipe_transport(1).unwrap().resume_reading();
/// t.wait_closed().await;
/// assert_eq!(slow.borrow().0, 3);
/// # });
/// ```
#[derive(Clone, Default)]
pub struct SubprocessPipeReader {
    state: Rc<ReaderState>,
}

#[derive(Default)]
struct ReaderState {
    paused: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl std::fmt::Debug for SubprocessPipeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubprocessPipeReader")
            .field("reading", &self.is_reading())
            .finish()
    }
}

impl SubprocessPipeReader {
    /// Stops delivering data from this pipe until [`resume_reading`](Self::resume_reading).
    pub fn pause_reading(&self) {
        self.state.paused.set(true);
    }

    /// Delivers data again, starting with anything held back by the pause.
    pub fn resume_reading(&self) {
        self.state.paused.set(false);
        if let Some(waker) = self.state.waker.take() {
            waker.wake();
        }
    }

    /// Whether data is being delivered (not paused).
    pub fn is_reading(&self) -> bool {
        !self.state.paused.get()
    }

    /// Resolves at once when not paused, else at the next resume.
    async fn unpaused(&self) {
        poll_fn(|cx| {
            if !self.state.paused.get() {
                return Poll::Ready(());
            }
            self.state.waker.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await;
    }
}
