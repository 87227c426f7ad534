//! asyncio's `gather`, `as_completed` and `wait`, over futures polled in the calling task.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

/// Polls every future of `futures` not yet done; calls `done(index, output)` for each that
/// finishes. Returns how many are left.
fn poll_all<F: Future>(
    futures: &mut [Option<Pin<Box<F>>>],
    cx: &mut Context<'_>,
    mut done: impl FnMut(usize, F::Output),
) -> usize {
    let mut left = 0;
    for (i, slot) in futures.iter_mut().enumerate() {
        let Some(fut) = slot else { continue };
        match fut.as_mut().poll(cx) {
            Poll::Ready(out) => {
                *slot = None;
                done(i, out);
            }
            Poll::Pending => left += 1,
        }
    }
    left
}

fn boxed<I: IntoIterator>(futures: I) -> Vec<Option<Pin<Box<I::Item>>>>
where
    I::Item: Future,
{
    futures.into_iter().map(|f| Some(Box::pin(f))).collect()
}

/// Runs `futures` concurrently in this task and returns their values in input order, or the
/// first error (asyncio's `gather`). On an error the others are dropped — cancelled, their
/// ring ops with them — when `gather` returns.
///
/// ```
/// use std::time::Duration;
/// use ringloop::task::gather;
///
/// ringloop::run(async {
///     let slow_then_fast = [30u64, 10, 20].map(|ms| async move {
///         ringloop::time::sleep(Duration::from_millis(ms)).await;
///         Ok::<_, std::io::Error>(ms)
///     });
///     assert_eq!(gather(slow_then_fast).await.unwrap(), [30, 10, 20]);
/// });
/// ```
///
/// # Differences from asyncio
///
/// asyncio wraps each awaitable in a task, and after the first exception the others keep
/// running unobserved; here the futures run inside the caller's task, need not be `'static`,
/// and stop with it. Gather [`JoinHandle`](crate::JoinHandle)s to run them as tasks. Every
/// wake-up polls every pending future: for thousands, a [`TaskGroup`](super::TaskGroup)
/// scales better.
pub async fn gather<I, F, T, E>(futures: I) -> Result<Vec<T>, E>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<T, E>>,
{
    let mut futures = boxed(futures);
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    let mut failed = None;
    poll_fn(|cx| {
        let left = poll_all(&mut futures, cx, |i, result| match result {
            Ok(v) => out[i] = Some(v),
            Err(e) => {
                failed.get_or_insert(e);
            }
        });
        if let Some(e) = failed.take() {
            return Poll::Ready(Err(e));
        }
        if left > 0 {
            return Poll::Pending;
        }
        let values = out
            .iter_mut()
            .map(|v| v.take().expect("every future finished"));
        Poll::Ready(Ok(values.collect()))
    })
    .await
}

/// As [`gather`], but waits for every future and returns each one's result, error or not
/// (asyncio's `gather(..., return_exceptions=True)`).
///
/// ```
/// use ringloop::task::gather_return_exceptions;
///
/// ringloop::run(async {
///     let results = gather_return_exceptions([
///         Box::pin(async { Ok(1) }) as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>,
///         Box::pin(async { Err("no") }),
///     ])
///     .await;
///     assert_eq!(results, [Ok(1), Err("no")]);
/// });
/// ```
pub async fn gather_return_exceptions<I, F, T, E>(futures: I) -> Vec<Result<T, E>>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<T, E>>,
{
    let mut futures = boxed(futures);
    let mut out: Vec<Option<Result<T, E>>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        if poll_all(&mut futures, cx, |i, result| out[i] = Some(result)) > 0 {
            return Poll::Pending;
        }
        let results = out
            .iter_mut()
            .map(|r| r.take().expect("every future finished"));
        Poll::Ready(results.collect())
    })
    .await
}

/// The outputs of `futures` in the order they finish, as a [`Stream`] (asyncio's
/// `as_completed`); the futures run inside the task polling the stream.
///
/// ```
/// use std::time::Duration;
/// use futures_lite::StreamExt;
///
/// ringloop::run(async {
///     let mut done = ringloop::task::as_completed([30u64, 10, 20].map(|ms| async move {
///         ringloop::time::sleep(Duration::from_millis(ms)).await;
///         ms
///     }));
///     let mut order = Vec::new();
///     while let Some(ms) = done.next().await {
///         order.push(ms);
///     }
///     assert_eq!(order, [10, 20, 30]);
/// });
/// ```
pub fn as_completed<I>(futures: I) -> AsCompleted<I::Item>
where
    I: IntoIterator,
    I::Item: Future,
{
    let futures = boxed(futures);
    AsCompleted {
        left: futures.len(),
        futures,
        ready: Vec::new(),
    }
}

/// The stream of [`as_completed`].
pub struct AsCompleted<F: Future> {
    futures: Vec<Option<Pin<Box<F>>>>,
    /// Outputs of futures that finished in the same poll as the one returned, next out.
    ready: Vec<F::Output>,
    left: usize,
}

// Nothing in it is pinned in place: the futures are boxed, the outputs plain values.
impl<F: Future> Unpin for AsCompleted<F> {}

impl<F: Future> Stream for AsCompleted<F> {
    type Item = F::Output;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        let this = &mut *self;
        if this.ready.is_empty() && this.left > 0 {
            let ready = &mut this.ready;
            this.left = poll_all(&mut this.futures, cx, |_, out| ready.push(out));
            // First finished, first out.
            ready.reverse();
        }
        match this.ready.pop() {
            Some(out) => Poll::Ready(Some(out)),
            None if this.left == 0 => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.left + self.ready.len();
        (n, Some(n))
    }
}

/// When [`wait`] returns (asyncio's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as one future has finished.
    FirstCompleted,
    /// As soon as one future has returned `Err`, or all have finished. For
    /// [`JoinHandle`](crate::JoinHandle)s that is a task that panicked or was cancelled (a
    /// `JoinError`); map the futures to count errors a task returns.
    FirstException,
    /// When every future has finished.
    AllCompleted,
}

/// What [`wait`] returns: the outputs of the futures that finished, and the futures that did
/// not, each with its index in the input.
#[derive(Debug)]
pub struct Waited<F: Future> {
    pub done: Vec<(usize, F::Output)>,
    pub pending: Vec<(usize, F)>,
}

/// Polls `futures` until `when` says to stop or `timeout` passes, and returns which finished
/// and which did not, cancelling nothing (asyncio's `wait`): pending futures are handed back,
/// to be awaited or dropped. [`JoinHandle`](crate::JoinHandle)s are the usual input, so the
/// pending ones go on running as tasks.
///
/// ```
/// use std::time::Duration;
/// use ringloop::task::{ReturnWhen, wait};
///
/// ringloop::run(async {
///     let sleeper = |ms: u64| ringloop::spawn(async move {
///         ringloop::time::sleep(Duration::from_millis(ms)).await;
///         ms
///     });
///     let tasks = vec![sleeper(5), sleeper(60_000)];
///     let waited = wait(tasks, ReturnWhen::FirstCompleted, None).await;
///     assert_eq!(waited.done.len(), 1);
///     assert_eq!(waited.done[0].0, 0);
///     assert_eq!(waited.pending.len(), 1); // still running: cancel it or await it
///     waited.pending[0].1.cancel();
/// });
/// ```
pub async fn wait<F, T, E>(
    futures: Vec<F>,
    when: ReturnWhen,
    timeout: Option<Duration>,
) -> Waited<F>
where
    F: Future<Output = Result<T, E>> + Unpin,
{
    let mut pending: Vec<Option<F>> = futures.into_iter().map(Some).collect();
    let mut done = Vec::new();
    let mut deadline = timeout.map(crate::time::sleep);
    poll_fn(|cx| {
        let mut left = 0;
        let mut failed = false;
        for (i, slot) in pending.iter_mut().enumerate() {
            let Some(fut) = slot else { continue };
            match Pin::new(fut).poll(cx) {
                Poll::Ready(out) => {
                    failed |= out.is_err();
                    done.push((i, out));
                    *slot = None;
                }
                Poll::Pending => left += 1,
            }
        }
        let finished = match when {
            _ if left == 0 => true,
            ReturnWhen::FirstCompleted => !done.is_empty(),
            ReturnWhen::FirstException => failed,
            ReturnWhen::AllCompleted => false,
        };
        let timed_out = deadline
            .as_mut()
            .is_some_and(|sleep| Pin::new(sleep).poll(cx).is_ready());
        if finished || timed_out {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    let pending = pending
        .into_iter()
        .enumerate()
        .filter_map(|(i, f)| Some((i, f?)))
        .collect();
    Waited { done, pending }
}
