//! Child processes with pipes on the proactor: [`Command`], [`Child`], and the pipe ends
//! [`ChildStdin`], [`ChildStdout`], [`ChildStderr`].
//!
//! ```
//! use ringloop::process::Command;
//! # ringloop::run(async {
//! let out = Command::new("sh")
//!     .args(["-c", "echo out; echo err >&2; exit 3"])
//!     .output()
//!     .await
//!     .unwrap();
//! assert_eq!(out.stdout, b"out\n");
//! assert_eq!(out.stderr, b"err\n");
//! assert_eq!(out.status.code(), Some(3));
//! # });
//! ```
//!
//! # How it works
//!
//! Spawning is `std::process::Command::spawn` (fork/exec done safely by std; it blocks the
//! loop thread only until the child has exec'd). Right after, the child gets a **pidfd**
//! (`pidfd_open`), which names this very process however pids are reused: signals go through
//! `pidfd_send_signal`, and [`Child::wait`] submits `IORING_OP_WAITID` on the pidfd where the
//! kernel has it (6.7+), else waits for the pidfd to become readable (a ring poll, or epoll);
//! then it reaps with `waitid(P_PIDFD, WNOHANG)`. The ring's waitid uses `WNOWAIT`, so a wait
//! cancelled just as the child exits consumes nothing and the next wait gets the status.
//! Nothing here installs a SIGCHLD handler.
//!
//! The parent's pipe ends are made non-blocking (std makes them close-on-exec); writes to the
//! child's stdin can never raise SIGPIPE: a child that has gone gives `BrokenPipe`.
//!
//! A [`Child`] dropped before it was reaped is reaped in the background by a task on the
//! current loop, so it does not stay a zombie (it is not killed: use [`Child::kill`] first).

mod child;
mod communicate;
mod pipe;

use std::ffi::OsStr;
use std::io;
use std::path::Path;

pub use child::Child;
pub(crate) use child::Signaller;
pub use pipe::{ChildStderr, ChildStdin, ChildStdout};
pub use std::process::{ExitStatus, Output};

/// How a child's standard stream is set up: [`piped`](Stdio::piped), [`inherit`](Stdio::inherit)
/// or [`null`](Stdio::null); any `std::process::Stdio` (from a file, an fd) converts into it.
///
/// ```
/// use ringloop::process::{Command, Stdio};
/// # ringloop::run(async {
/// let status = Command::new("true").stdout(Stdio::null()).status().await.unwrap();
/// assert!(status.success());
/// # });
/// ```
#[derive(Debug)]
pub struct Stdio(std::process::Stdio);

impl Stdio {
    /// A new pipe between parent and child; the parent's end appears on [`Child`].
    pub fn piped() -> Stdio {
        Stdio(std::process::Stdio::piped())
    }
    /// The child uses the parent's stream.
    pub fn inherit() -> Stdio {
        Stdio(std::process::Stdio::inherit())
    }
    /// The child's stream is `/dev/null`.
    pub fn null() -> Stdio {
        Stdio(std::process::Stdio::null())
    }
}

impl From<std::process::Stdio> for Stdio {
    fn from(stdio: std::process::Stdio) -> Stdio {
        Stdio(stdio)
    }
}

impl From<std::fs::File> for Stdio {
    fn from(file: std::fs::File) -> Stdio {
        Stdio(file.into())
    }
}

impl From<std::os::fd::OwnedFd> for Stdio {
    fn from(fd: std::os::fd::OwnedFd) -> Stdio {
        Stdio(fd.into())
    }
}

/// A process builder, like `std::process::Command`, whose children are awaited on the loop.
///
/// ```
/// use ringloop::process::Command;
/// # ringloop::run(async {
/// let status = Command::new("sh").arg("-c").arg("exit 7").status().await.unwrap();
/// assert_eq!(status.code(), Some(7));
/// # });
/// ```
#[derive(Debug)]
pub struct Command {
    std: std::process::Command,
    /// Whether [`stdin`](Self::stdin) was called ([`output`](Self::output) defaults it to null).
    stdin_set: bool,
}

impl Command {
    /// A command running `program` (looked up in `PATH` when it has no slash).
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            std: std::process::Command::new(program),
            stdin_set: false,
        }
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.std.arg(arg);
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.std.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.std.env(key, val);
        self
    }

    /// Sets several environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.std.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what [`env`](Self::env) adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.std.env_clear();
        self
    }

    /// The child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.std.current_dir(dir);
        self
    }

    /// The child's standard input (default for [`spawn`](Self::spawn): inherit).
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdin(cfg.into().0);
        self.stdin_set = true;
        self
    }

    /// The child's standard output (default for [`spawn`](Self::spawn): inherit).
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdout(cfg.into().0);
        self
    }

    /// The child's standard error (default for [`spawn`](Self::spawn): inherit).
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stderr(cfg.into().0);
        self
    }

    /// The std builder underneath, for settings this type does not mirror (`uid`,
    /// `process_group`, `pre_exec`, ...).
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.std
    }

    /// Starts the child. Must run inside a ringloop runtime (its pipes join the loop).
    /// Errors name the program (e.g. `NotFound` for a missing executable).
    ///
    /// ```
    /// use ringloop::process::Command;
    /// # ringloop::run(async {
    /// let mut child = Command::new("true").spawn().unwrap();
    /// assert!(child.wait().await.unwrap().success());
    /// let err = Command::new("/no/such/program").spawn().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// # });
    /// ```
    pub fn spawn(&mut self) -> io::Result<Child> {
        let child = self.std.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot spawn {:?}: {e}", self.std.get_program()),
            )
        })?;
        Child::adopt(child).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "spawned {:?} but could not take it over (it was killed): {e}",
                    self.std.get_program()
                ),
            )
        })
    }

    /// Runs the child to completion, with stdout and stderr piped and collected (stdin is
    /// `/dev/null` unless set), like `std::process::Command::output`. Unlike std, those
    /// settings stay on this builder afterwards.
    pub async fn output(&mut self) -> io::Result<Output> {
        if !self.stdin_set {
            self.std.stdin(std::process::Stdio::null());
        }
        self.std
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        self.spawn()?.wait_with_output().await
    }

    /// Runs the child to completion and returns its exit status (streams inherited unless
    /// set).
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait().await
    }
}
