//! [`Executor`]: hyper's `rt::Executor` as the loop's `spawn`.

use std::future::Future;

/// hyper's [`rt::Executor`](::hyper::rt::Executor) on the loop running on this thread: each
/// future hyper hands it (an HTTP/2 connection's stream tasks, a client's connection task)
/// becomes a detached task, as [`spawn`](crate::spawn) makes one. The futures need not be
/// `Send`: the loop is single-threaded, and hyper's HTTP/2 takes `!Send` executors.
///
/// It must be used on a loop thread (hyper calls it from the connection futures, which run
/// there).
///
/// ```
/// use hyper::rt::Executor as _;
/// # ringloop::run(async {
/// let done = ringloop::Handle::current().create_future::<u32>();
/// let d = done.clone();
/// ringloop::hyper::Executor.execute(async move { d.set_result(7).unwrap() });
/// assert_eq!(done.await.unwrap(), 7);
/// # });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Executor;

impl<F> ::hyper::rt::Executor<F> for Executor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, fut: F) {
        // Detached: hyper keeps track of the work through its own channels.
        drop(crate::spawn(fut));
    }
}
