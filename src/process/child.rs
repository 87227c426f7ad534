//! [`Child`]: a running (or reaped) child process, named by its pidfd.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::pipe::{ChildStderr, ChildStdin, ChildStdout, PipeEnd};
use super::{ExitStatus, Output};
use crate::op::waitid;

/// A child process started by [`Command::spawn`](super::Command::spawn).
///
/// ```
/// use std::os::unix::process::ExitStatusExt;
/// use ringloop::process::Command;
/// # ringloop::run(async {
/// let mut child = Command::new("sleep").arg("30").spawn().unwrap();
/// assert!(child.id() > 0);
/// assert!(child.try_wait().unwrap().is_none());
/// child.kill().unwrap();
/// let status = child.wait().await.unwrap();
/// assert_eq!(status.signal(), Some(libc::SIGKILL));
/// # });
/// ```
#[derive(Debug)]
pub struct Child {
    /// The parent's end of the child's stdin, if it was piped.
    pub stdin: Option<ChildStdin>,
    /// The parent's end of the child's stdout, if it was piped.
    pub stdout: Option<ChildStdout>,
    /// The parent's end of the child's stderr, if it was piped.
    pub stderr: Option<ChildStderr>,
    pid: u32,
    /// Names the child (no pid-reuse race). Taken only by `drop`, for the background reaper.
    pidfd: Option<OwnedFd>,
    status: Option<ExitStatus>,
}

impl Child {
    /// Takes over a child std just spawned: opens its pidfd, adopts its pipes. If any step
    /// fails, the child is killed and reaped before the error is returned: nobody could ever
    /// wait for it otherwise, so it would run on unsupervised and then stay a zombie.
    pub(crate) fn adopt(mut child: std::process::Child) -> io::Result<Child> {
        match Child::take_over(&mut child) {
            Ok(adopted) => Ok(adopted),
            Err(e) => {
                // SIGKILL cannot be caught, so the blocking wait is short: the child is gone
                // as soon as the kernel tears it down.
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// The fallible part of [`adopt`](Self::adopt); on error, `child` still owns the process.
    fn take_over(child: &mut std::process::Child) -> io::Result<Child> {
        let pid = child.id();
        // The child is ours and unreaped, so its pid cannot have been reused yet.
        let pidfd = waitid::pidfd_open(pid)
            .map_err(|e| io::Error::new(e.kind(), format!("pidfd_open({pid}): {e}")))?;
        let adopt = |fd: Option<OwnedFd>, name: &str| {
            fd.map(PipeEnd::new).transpose().map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot adopt the {name} pipe of child {pid}: {e}"),
                )
            })
        };
        Ok(Child {
            stdin: adopt(child.stdin.take().map(OwnedFd::from), "stdin")?.map(ChildStdin),
            stdout: adopt(child.stdout.take().map(OwnedFd::from), "stdout")?.map(ChildStdout),
            stderr: adopt(child.stderr.take().map(OwnedFd::from), "stderr")?.map(ChildStderr),
            pid,
            pidfd: Some(pidfd),
            status: None,
        })
    }

    fn pidfd(&self) -> RawFd {
        self.pidfd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Sends `signal` to the child (`pidfd_send_signal`: never a recycled pid). Does nothing
    /// once the child has been reaped.
    pub fn send_signal(&mut self, signal: i32) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        waitid::pidfd_send_signal(self.pidfd(), signal).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot send signal {signal} to {}: {e}", self.pid),
            )
        })
    }

    /// A second handle for signalling the child while a task awaits [`wait`](Self::wait)
    /// (the subprocess transport's `kill`). It holds its own pidfd.
    pub(crate) fn signaller(&self) -> io::Result<Signaller> {
        let pidfd = match &self.pidfd {
            Some(fd) => fd.try_clone()?,
            None => return Err(io::Error::other("the child's pidfd is gone")),
        };
        Ok(Signaller {
            pid: self.pid,
            pidfd,
        })
    }

    /// Kills the child with SIGKILL (it cannot be caught). Await [`wait`](Self::wait) after.
    pub fn kill(&mut self) -> io::Result<()> {
        self.send_signal(libc::SIGKILL)
    }

    /// Asks the child to stop with SIGTERM (asyncio's `terminate`).
    pub fn terminate(&mut self) -> io::Result<()> {
        self.send_signal(libc::SIGTERM)
    }

    /// The exit status if the child has exited (reaping it), without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = waitid::try_reap(self.pidfd())?;
        }
        Ok(self.status)
    }

    /// Waits for the child to exit and reaps it. Closes the child's stdin first (as std
    /// does), so a child reading it to the end does not wait for us forever.
    ///
    /// A signal death shows in the status (`ExitStatusExt::signal`). Cancel-safe: dropping
    /// the future cancels the kernel wait and a later call starts a new one.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = waitid::reap(self.pidfd())
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("waiting for {}: {e}", self.pid)))?;
        self.status = Some(status);
        Ok(status)
    }

    /// Writes `input` (if any) to the child's stdin and closes it, while reading its stdout
    /// and stderr to the end, all at once: no deadlock however much flows each way. Then
    /// waits for the exit. A child that stops reading early is fine: the rest of the input is
    /// dropped (asyncio's `communicate` does the same). Streams that were not piped come back
    /// empty.
    ///
    /// ```
    /// use ringloop::process::{Command, Stdio};
    /// # ringloop::run(async {
    /// let child = Command::new("tr").arg("a-z").arg("A-Z")
    ///     .stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    /// let out = child.communicate(Some(b"quiet".to_vec())).await.unwrap();
    /// assert_eq!(out.stdout, b"QUIET");
    /// # });
    /// ```
    pub async fn communicate(mut self, input: Option<Vec<u8>>) -> io::Result<Output> {
        let (stdout, stderr) = super::communicate::exchange(
            self.stdin.take(),
            input,
            self.stdout.take(),
            self.stderr.take(),
        )
        .await?;
        let status = self.wait().await?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Reads stdout and stderr to the end and waits for the exit, like std's
    /// `wait_with_output` (stdin is closed first).
    pub async fn wait_with_output(self) -> io::Result<Output> {
        self.communicate(None).await
    }
}

impl Drop for Child {
    /// Reaps a child nobody waited for in a background task on the current loop, so it does
    /// not stay a zombie.
    fn drop(&mut self) {
        if self.status.is_some() || !matches!(self.try_wait(), Ok(None)) {
            return;
        }
        let Some(pidfd) = self.pidfd.take() else {
            return;
        };
        let reaper = async move {
            let _ = waitid::reap(pidfd.as_raw_fd()).await;
        };
        crate::runtime::with_context(move |cx| drop(cx.spawn(reaper)));
    }
}

/// Sends signals to a child through its own pidfd; see [`Child::signaller`].
#[derive(Debug)]
pub(crate) struct Signaller {
    pid: u32,
    pidfd: OwnedFd,
}

impl Signaller {
    /// Sends `signal`; the caller must know the child is not reaped yet (else: `ESRCH`).
    pub(crate) fn send(&self, signal: i32) -> io::Result<()> {
        waitid::pidfd_send_signal(self.pidfd.as_raw_fd(), signal).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot send signal {signal} to {}: {e}", self.pid),
            )
        })
    }
}
