//! [`Runner`]: asyncio's `asyncio.Runner`.

use std::fmt;
use std::future::Future;
use std::io;

use super::{Builder, Handle, Runtime};

/// One loop reused for several top-level futures, as asyncio's `asyncio.Runner`: each
/// [`run`](Runner::run) runs a future to completion on the same loop, so tasks spawned by one
/// run keep running in the next, and [`close`](Runner::close) (or dropping the runner) cancels
/// the tasks left, waits for their ops, and shuts the blocking pool down.
///
/// ```
/// use std::time::Duration;
///
/// let runner = ringloop::Runner::new().unwrap();
/// let (tx, rx) = ringloop::sync::oneshot::channel();
/// runner.run(async move {
///     // A background task outlives this run ...
///     ringloop::spawn(async move {
///         ringloop::time::sleep(Duration::from_millis(1)).await;
///         tx.send("from the first run").unwrap();
///     });
/// });
/// // ... and finishes during the next one.
/// assert_eq!(runner.run(rx), Ok("from the first run"));
/// runner.close();
/// ```
///
/// It is a [`Runtime`] under asyncio's name and contract: [`Runtime::block_on`] may also be
/// called many times. Closing takes the runner by value, so a closed runner cannot be run
/// (asyncio raises `RuntimeError`).
pub struct Runner {
    runtime: Runtime,
}

impl Runner {
    /// A runner with the default settings ([`Backend::Auto`](crate::Backend::Auto), or
    /// `RINGLOOP_BACKEND`).
    ///
    /// # Errors
    ///
    /// When no backend can start; see [`Builder::build`].
    pub fn new() -> io::Result<Runner> {
        Builder::default().build_runner()
    }

    /// Runs `fut` to completion on the runner's loop and returns its output; tasks it spawned
    /// and did not await stay on the loop for the next run.
    ///
    /// # Panics
    ///
    /// When called from inside a ringloop loop (a loop cannot block itself).
    pub fn run<F: Future>(&self, fut: F) -> F::Output {
        self.runtime.block_on(fut)
    }

    /// A handle to the runner's loop (asyncio's `Runner.get_loop()`), usable from other threads.
    pub fn handle(&self) -> Handle {
        self.runtime.handle()
    }

    /// The runtime underneath.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Closes the loop: the tasks left are cancelled (their ops cancelled in the kernel and
    /// waited for), tasks posted from other threads are refused from now on, and the blocking
    /// pool is shut down. Dropping the runner does the same.
    pub fn close(self) {
        drop(self);
    }
}

impl Builder {
    /// Builds a [`Runner`] with these settings.
    ///
    /// # Errors
    ///
    /// As [`build`](Builder::build).
    pub fn build_runner(self) -> io::Result<Runner> {
        Ok(Runner {
            runtime: self.build()?,
        })
    }
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner").finish_non_exhaustive()
    }
}
