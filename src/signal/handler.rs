//! asyncio's `loop.add_signal_handler` / `remove_signal_handler` on the loop [`Handle`].
//!
//! A handler is a [`Signals`] for one signal plus a task that runs the callback on the loop for
//! each signal read. The `Signals` sits in a shared slot the task borrows only while polling,
//! so removing the handler closes the signalfd and restores the mask at once, not on the
//! task's next turn.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::task::Poll;

use super::Signals;
use crate::{Handle, JoinHandle};

/// One `add_signal_handler` registration; dropping it stops the handler.
struct SignalHandler {
    signals: Rc<RefCell<Option<Signals>>>,
    task: JoinHandle<()>,
}

impl Drop for SignalHandler {
    fn drop(&mut self) {
        drop(self.signals.borrow_mut().take());
        self.task.cancel();
    }
}

impl Handle {
    /// Runs `callback` on the loop each time the process receives `sig` (asyncio's
    /// `add_signal_handler`). Replaces an earlier handler of `sig` on this loop. The signal is
    /// blocked in the loop thread and read from a signalfd (see [`crate::signal`]); a panic in
    /// the callback is caught and the handler stays installed, as a failing asyncio callback
    /// does.
    ///
    /// ```
    /// # ringloop::run(async {
    /// let h = ringloop::Handle::current();
    /// let fut = h.create_future::<()>();
    /// let f = fut.clone();
    /// h.add_signal_handler(libc::SIGUSR2, move || { let _ = f.set_result(()); }).unwrap();
    /// // SAFETY: kill(2) on our own pid with a signal we handle.
    /// unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
    /// fut.await.unwrap();
    /// assert!(h.remove_signal_handler(libc::SIGUSR2));
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Signals::new`]: `InvalidInput` for an invalid signal number, `SIGKILL`, `SIGSTOP`
    /// and the other signals that cannot be listened for.
    ///
    /// # Panics
    ///
    /// When called from a thread other than the loop's.
    pub fn add_signal_handler(
        &self,
        sig: i32,
        mut callback: impl FnMut() + 'static,
    ) -> io::Result<()> {
        let cx = self.local("Handle::add_signal_handler");
        // The old handler goes first, so the new registration is not one of two competing for
        // the same signals.
        drop(cx.signal_handlers.borrow_mut().remove(&sig));
        let signals = Rc::new(RefCell::new(Some(Signals::new([sig])?)));
        let slot = signals.clone();
        let task = cx.spawn(async move {
            loop {
                let next = poll_fn(|task_cx| match slot.borrow_mut().as_mut() {
                    Some(signals) => signals.poll_recv(task_cx).map(Some),
                    None => Poll::Ready(None),
                })
                .await;
                match next {
                    Some(Ok(_)) => {
                        let _ = catch_unwind(AssertUnwindSafe(&mut callback));
                    }
                    // Removed, or the signalfd failed (the handler cannot go on).
                    _ => break,
                }
            }
        });
        cx.signal_handlers
            .borrow_mut()
            .insert(sig, Box::new(SignalHandler { signals, task }));
        Ok(())
    }

    /// Removes the handler of `sig` (asyncio's `remove_signal_handler`); true if there was
    /// one. The mask and the disposition of `sig` are restored at once when this was the last
    /// listener (see [`crate::signal`]).
    ///
    /// ```
    /// # ringloop::run(async {
    /// let h = ringloop::Handle::current();
    /// assert!(!h.remove_signal_handler(libc::SIGHUP));
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// When called from a thread other than the loop's.
    pub fn remove_signal_handler(&self, sig: i32) -> bool {
        let cx = self.local("Handle::remove_signal_handler");
        let removed = cx.signal_handlers.borrow_mut().remove(&sig);
        removed.is_some()
    }
}
