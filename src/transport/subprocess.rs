//! asyncio's subprocess transports: [`subprocess_exec`], [`subprocess_shell`] and the
//! [`SubprocessTransport`] handle, which drive a [`SubprocessProtocol`].
//!
//! # How it works
//!
//! The child is a [`process::Child`](crate::process::Child). Its stdout and stderr each get a
//! reader task that hands every chunk to `pipe_data_received(fd, ..)` and reports the end of
//! the pipe with `pipe_connection_lost(fd, ..)` (a [`SubprocessPipeReader`] pauses it: no
//! reads while paused, so the child blocks on a full pipe). Its stdin gets a writer task that
//! sends what [`SubprocessPipeWriter::write`] buffered. A supervisor task waits for the
//! exit, then closes stdin (once its buffer is sent), waits for both readers, and then for the
//! writer. So the callbacks come in this order:
//!
//! ```text
//! connection_made(transport)
//!   pipe_data_received(1 | 2, data)*        stdout and stderr chunks, each pipe in order
//!   pipe_connection_lost(1 | 2, err)        once per piped output, after its last chunk
//!   pipe_connection_lost(0, err)            once, when stdin closes: close(), a broken pipe,
//!                                           or the child's exit (may follow process_exited)
//! process_exited()                          after the exit and after every output pipe ended
//! connection_lost(None)                     last
//! ```
//!
//! Because the outputs are drained before `process_exited`, a protocol has all the data when
//! it learns of the exit (asyncio allows data after `process_exited`; this order is
//! stricter). A grandchild that keeps the child's stdout open delays `process_exited` until it
//! closes it, as it delays end of file for any reader; [`SubprocessTransport::get_returncode`]
//! is set as soon as the child itself is reaped.
//!
//! Callbacks are made from the transport's tasks, one at a time, never from inside another
//! callback; the transport's methods never call the protocol, so a callback may use them. If
//! the caller holds a borrow of the protocol while a callback is due, the callback waits for
//! the borrow to end.

use std::cell::{Cell, RefCell};
use std::ffi::OsStr;
use std::future::poll_fn;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;
use std::task::{Poll, Waker};

use super::protocol::SubprocessProtocol;
use super::shared::{OwnedProtocol, SharedProtocol};
use super::subprocess_pipe::{
    OutputPipe, SubprocessPipeReader, SubprocessPipeWriter, WriterState, drain, feed,
};
use crate::process::{Command, ExitStatus, Signaller, Stdio};

/// The handle to a child started by [`subprocess_exec`] or [`subprocess_shell`],
/// asyncio's `asyncio.SubprocessTransport`. Cloning it is cheap.
#[derive(Clone)]
pub struct SubprocessTransport {
    shared: Rc<Shared>,
}

struct Shared {
    pid: u32,
    signaller: Signaller,
    status: Cell<Option<ExitStatus>>,
    stdin: Option<SubprocessPipeWriter>,
    stdout: Option<SubprocessPipeReader>,
    stderr: Option<SubprocessPipeReader>,
    /// `connection_lost` has been delivered.
    finished: Cell<bool>,
    finish_waiters: RefCell<Vec<Waker>>,
}

impl std::fmt::Debug for SubprocessTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubprocessTransport")
            .field("pid", &self.shared.pid)
            .field("status", &self.shared.status.get())
            .finish()
    }
}

impl SubprocessTransport {
    /// The child's process id.
    pub fn get_pid(&self) -> u32 {
        self.shared.pid
    }

    /// The exit code once the child has exited, as asyncio reports it: the code, or minus
    /// the signal number that killed it. `None` while it runs.
    pub fn get_returncode(&self) -> Option<i32> {
        let status = self.shared.status.get()?;
        status.code().or(status.signal().map(|s| -s))
    }

    /// The full exit status once the child has exited.
    pub fn get_exit_status(&self) -> Option<ExitStatus> {
        self.shared.status.get()
    }

    /// The transport of stdin (`fd` 0), a write handle; `None` for other fds, or when stdin
    /// was not piped. (asyncio returns a read or a write transport from one method; here the
    /// output pipes' handles come from [`get_read_pipe_transport`](Self::get_read_pipe_transport).)
    pub fn get_pipe_transport(&self, fd: i32) -> Option<SubprocessPipeWriter> {
        match fd {
            0 => self.shared.stdin.clone(),
            _ => None,
        }
    }

    /// The transport of stdout (`fd` 1) or stderr (`fd` 2), for flow control
    /// ([`SubprocessPipeReader::pause_reading`]); `None` for other fds or streams not piped.
    pub fn get_read_pipe_transport(&self, fd: i32) -> Option<SubprocessPipeReader> {
        match fd {
            1 => self.shared.stdout.clone(),
            2 => self.shared.stderr.clone(),
            _ => None,
        }
    }

    /// Sends `signal` to the child; a no-op once it has exited (its pid may be reused, but
    /// the transport signals through a pidfd, which cannot hit another process).
    pub fn send_signal(&self, signal: i32) -> io::Result<()> {
        if self.shared.status.get().is_some() {
            return Ok(());
        }
        match self.shared.signaller.send(signal) {
            // Exited and reaped between the check and the call.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            res => res,
        }
    }

    /// Kills the child with SIGKILL.
    pub fn kill(&self) -> io::Result<()> {
        self.send_signal(libc::SIGKILL)
    }

    /// Asks the child to stop with SIGTERM.
    pub fn terminate(&self) -> io::Result<()> {
        self.send_signal(libc::SIGTERM)
    }

    /// Closes stdin and kills the child if it is still running (asyncio's `close`). The
    /// callbacks still run to `connection_lost`.
    pub fn close(&self) {
        if let Some(stdin) = &self.shared.stdin {
            stdin.close();
        }
        let _ = self.kill();
    }

    /// Whether `connection_lost` has been delivered.
    pub fn is_closing(&self) -> bool {
        self.shared.finished.get()
    }

    /// Waits until `connection_lost` has been delivered (the child reaped, pipes closed).
    pub async fn wait_closed(&self) {
        poll_fn(|cx| {
            if self.shared.finished.get() {
                return Poll::Ready(());
            }
            self.shared
                .finish_waiters
                .borrow_mut()
                .push(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
}

/// Runs `program` with `args`, stdin, stdout and stderr piped, and connects it to the
/// protocol `factory` makes (asyncio's `loop.subprocess_exec`). Returns the transport and
/// the protocol, shared with the transport's tasks. Spawn errors name the program.
///
/// ```
/// use ringloop::transport::{self, SubprocessProtocol};
///
/// struct Quiet;
/// impl SubprocessProtocol for Quiet {}
///
/// # ringloop::run(async {
/// let (t, _) = transport::subprocess_exec(|| Quiet, "sh", ["-c", "exit 4"]).await.unwrap();
/// t.wait_closed().await;
/// assert_eq!(t.get_returncode(), Some(4));
/// # });
/// ```
pub async fn subprocess_exec<P, F, I, S>(
    factory: F,
    program: impl AsRef<OsStr>,
    args: I,
) -> io::Result<(SubprocessTransport, SharedProtocol<P>)>
where
    P: SubprocessProtocol,
    F: FnOnce() -> P,
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    subprocess_command(factory, &mut cmd).await
}

/// Runs `command` with `sh -c`, pipes as in [`subprocess_exec`] (asyncio's
/// `loop.subprocess_shell`). See [`SubprocessProtocol`] for an example.
pub async fn subprocess_shell<P, F>(
    factory: F,
    command: impl AsRef<OsStr>,
) -> io::Result<(SubprocessTransport, SharedProtocol<P>)>
where
    P: SubprocessProtocol,
    F: FnOnce() -> P,
{
    subprocess_exec(factory, "/bin/sh", [OsStr::new("-c"), command.as_ref()]).await
}

/// Like [`subprocess_exec`] for a [`Command`] set up by the caller: only the streams it
/// pipes are connected to the protocol (the others have no `pipe_*` callbacks).
///
/// ```
/// use ringloop::process::{Command, Stdio};
/// use ringloop::transport::{self, SubprocessProtocol};
///
/// #[derive(Default)]
/// struct Lines(Vec<u8>);
/// impl SubprocessProtocol for Lines {
///     fn pipe_data_received(&mut self, _fd: i32, data: &[u8]) { self.0.extend_from_slice(data); }
/// }
///
/// # ringloop::run(async {
/// let mut cmd = Command::new("printf");
/// cmd.arg("a\\nb\\n").stdout(Stdio::piped());
/// let (t, lines) = transport::subprocess_command(Lines::default, &mut cmd).await.unwrap();
/// t.wait_closed().await;
/// assert_eq!(lines.borrow().0, b"a\nb\n");
/// # });
/// ```
pub async fn subprocess_command<P, F>(
    factory: F,
    command: &mut Command,
) -> io::Result<(SubprocessTransport, SharedProtocol<P>)>
where
    P: SubprocessProtocol,
    F: FnOnce() -> P,
{
    let mut child = command.spawn()?;
    let signaller = child.signaller()?;
    let stdin = child.stdin.take();
    let writer = stdin.as_ref().map(|_| SubprocessPipeWriter {
        state: Rc::new(WriterState::default()),
    });
    let stdout = child.stdout.take().map(OutputPipe::Stdout);
    let stderr = child.stderr.take().map(OutputPipe::Stderr);
    let out_reader = stdout.as_ref().map(|_| SubprocessPipeReader::default());
    let err_reader = stderr.as_ref().map(|_| SubprocessPipeReader::default());
    let transport = SubprocessTransport {
        shared: Rc::new(Shared {
            pid: child.id(),
            signaller,
            status: Cell::new(None),
            stdin: writer.clone(),
            stdout: out_reader.clone(),
            stderr: err_reader.clone(),
            finished: Cell::new(false),
            finish_waiters: RefCell::new(Vec::new()),
        }),
    };
    let mut protocol = factory();
    protocol.connection_made(transport.clone());
    // The transport's tasks own the protocol (each holds a share); the caller gets a view.
    let protocol = OwnedProtocol::new(protocol);
    let view = protocol.view();

    let mut readers = Vec::new();
    for (pipe, reader) in [(stdout, out_reader), (stderr, err_reader)] {
        if let (Some(pipe), Some(reader)) = (pipe, reader) {
            readers.push(crate::spawn(drain(pipe, reader, protocol.clone())));
        }
    }
    let feeder = match (stdin, &writer) {
        (Some(stdin), Some(writer)) => Some(crate::spawn(feed(
            stdin,
            writer.state.clone(),
            protocol.clone(),
        ))),
        _ => None,
    };

    let shared = transport.shared.clone();
    crate::spawn(async move {
        let status = child.wait().await;
        shared.status.set(status.as_ref().ok().copied());
        // The child is gone: close stdin (after what is buffered), so that a grandchild that
        // inherited it (`sh -c "cat; ..."` killed while `cat` runs) sees end of file and
        // releases the output pipes the readers wait on.
        if let Some(writer) = &shared.stdin {
            writer.close();
        }
        for reader in readers {
            let _ = reader.await;
        }
        protocol.call(|p| p.process_exited()).await;
        if let Some(feeder) = feeder {
            let _ = feeder.await;
        }
        protocol.call(|p| p.connection_lost(status.err())).await;
        shared.finished.set(true);
        for waker in shared.finish_waiters.take() {
            waker.wake();
        }
    });
    Ok((transport, view))
}
