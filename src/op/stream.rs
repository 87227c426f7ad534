//! Multishot operations: one submission, a stream of completions.
//!
//! io_uring posts each result with `IORING_CQE_F_MORE` until a final completion without it;
//! the op's slot is in the `Streaming` state meanwhile. The epoll backend emulates this by
//! keeping the op queued on its fd and posting one result per readiness report.
//! Dropping the stream cancels the op; its resources stay in the op table until the final
//! completion arrives.

use std::pin::Pin;
use std::task::{Context, Poll};

use super::sealed::OperationImpl;
use crate::driver::{self, CompletionToken, DriverRef};

pub(crate) mod sealed {
    use crate::driver::Completion;

    /// The stream-specific half of a multishot op.
    pub trait MultishotImpl: super::OperationImpl {
        /// What each completion becomes.
        type Item;
        /// Converts one completion.
        fn item(&mut self, done: Completion) -> Self::Item;
    }
}

/// A multishot operation ringloop can run; implemented by this module's stream ops.
pub trait Multishot: sealed::MultishotImpl {}
impl<T: sealed::MultishotImpl> Multishot for T {}

/// The completions of a multishot op, as a [`Stream`](futures_core::Stream).
#[must_use = "a stream does nothing until polled"]
pub struct OpStream<T: Multishot> {
    data: Option<T>,
    state: StreamState,
}

enum StreamState {
    Idle,
    Live {
        token: CompletionToken,
        driver: DriverRef,
    },
    Ended,
}

impl<T: Multishot> OpStream<T> {
    pub(crate) fn new(data: T) -> Self {
        OpStream {
            data: Some(data),
            state: StreamState::Idle,
        }
    }

    /// Polls for the next completion; `None` once the op has ended (cancelled or failed).
    pub fn poll_next_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        if let StreamState::Idle = self.state {
            let driver = driver::current().expect(
                "a ringloop multishot op was polled outside a ringloop runtime (use ringloop::run)",
            );
            let Some(data) = self.data.as_mut() else {
                return Poll::Ready(None);
            };
            let token = driver
                .borrow_mut()
                .submit(data, None, driver::Start::Submit);
            self.state = StreamState::Live { token, driver };
        }
        let StreamState::Live { token, driver } = &self.state else {
            return Poll::Ready(None);
        };
        let next = driver.borrow_mut().poll_stream(*token, cx.waker());
        match next {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(done)) => {
                let data = self.data.as_mut().expect("stream data present while live");
                Poll::Ready(Some(data.item(done)))
            }
            Poll::Ready(None) => {
                self.state = StreamState::Ended;
                Poll::Ready(None)
            }
        }
    }

    /// The next completion; `None` once the op has ended.
    pub async fn next(&mut self) -> Option<T::Item> {
        std::future::poll_fn(|cx| self.poll_next_item(cx)).await
    }

    /// Asks the backend to stop the op. Completions already posted are still delivered, then
    /// the stream ends.
    pub fn cancel(&mut self) {
        match &self.state {
            StreamState::Live { token, driver } => driver.borrow_mut().cancel(*token),
            StreamState::Idle => self.state = StreamState::Ended,
            StreamState::Ended => {}
        }
    }
}

impl<T: Multishot> futures_core::Stream for OpStream<T> {
    type Item = T::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        self.get_mut().poll_next_item(cx)
    }
}

impl<T: Multishot> Drop for OpStream<T> {
    fn drop(&mut self) {
        if let StreamState::Live { token, driver } = &self.state
            && let Some(data) = self.data.take()
        {
            super::orphan(driver, *token, data);
        }
    }
}
