//! The shared cell a loop's driver lives in, and the work that waits for it to be free.
//!
//! The driver is borrowed while it runs: `park` reaps completions, which wake tasks (any
//! waker may run user code) and drop the resources of finished orphans (a buffer's `Drop` may
//! run user code too). That code can drop another op's future, whose drop must hand the op to
//! the driver — which is borrowed. Such requests go to [`DriverCell`]'s queue of deferred
//! work instead, and the queue is drained the moment the mutable borrow that blocked them ends
//! ([`DriverMut`]'s drop), so an op orphaned from inside the driver is cancelled and its slot
//! freed exactly as if it had been dropped anywhere else. A socket closed or opened from
//! such code likewise queues the unpin or pin of its descriptor, and a buffer ring whose last
//! owner goes away there queues its unregistration.
//!
//! This queue is the one place such work waits: it belongs to this driver, so a request
//! reaches the right driver whichever loop is entered on the thread when it is made (a
//! buffer ring of runtime A dropped while runtime B runs goes to A's queue, or to A at once).
//!
//! # Order
//!
//! The queue is first in, first out, and a mutable borrow that finds work queued does it
//! before handing out the driver. So every request reaches the driver before anything asked
//! of it later, whichever path that takes. This is what makes a deferred unpin safe although
//! the descriptor is closed before it runs: the number can only be reused after the close,
//! and whatever is asked of the driver about the new file (its pin, its ops) comes after the
//! unpin of the old one, which is done first, so it never undoes the new file's pin nor
//! leaves the old file's registration standing in for the new file's.
//!
//! A request made during a shared borrow ([`DriverCell::borrow`]) waits for the next mutable
//! one; the loop takes one every turn (`park`).

use std::cell::{Ref, RefCell, RefMut};
use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::RawFd;

use super::Driver;
use super::token::{CompletionToken, Orphan};

/// Work asked of the driver while it was borrowed.
enum Deferred {
    /// An op's future was dropped: keep its resources until the kernel is done, cancel it.
    Orphan(CompletionToken, Box<dyn Orphan>),
    /// A long-lived descriptor was opened: keep it registered (see [`Driver::pin_fd`]).
    PinFd(RawFd),
    /// A pinned descriptor is being closed (see [`Driver::unpin_fd`]).
    UnpinFd(RawFd),
    /// A provided-buffer ring lost its last owner (see [`Driver::unregister_buf_ring`]).
    UnregisterBufRing(u16),
}

/// A driver and the work that waits for it to be free.
pub struct DriverCell {
    driver: RefCell<Driver>,
    deferred: RefCell<Vec<Deferred>>,
}

/// A mutable borrow of the driver; the deferred work queued meanwhile runs when it ends.
pub struct DriverMut<'a> {
    cell: &'a DriverCell,
    borrow: Option<RefMut<'a, Driver>>,
}

impl DriverCell {
    pub fn new(driver: Driver) -> DriverCell {
        DriverCell {
            driver: RefCell::new(driver),
            deferred: RefCell::new(Vec::new()),
        }
    }

    /// Borrows the driver mutably, after doing the work queued for it; panics if it is
    /// borrowed already.
    #[inline]
    pub fn borrow_mut(&self) -> DriverMut<'_> {
        self.ready(self.driver.borrow_mut())
    }

    /// Borrows the driver mutably if nobody else does, after doing the work queued for it.
    #[inline]
    pub fn try_borrow_mut(&self) -> Result<DriverMut<'_>, std::cell::BorrowMutError> {
        Ok(self.ready(self.driver.try_borrow_mut()?))
    }

    /// Wraps a fresh borrow, doing the queued work first: nothing asked of the driver now may
    /// overtake a request made earlier (see the module docs).
    #[inline]
    fn ready<'a>(&'a self, mut borrow: RefMut<'a, Driver>) -> DriverMut<'a> {
        if !self.deferred.borrow().is_empty() {
            self.do_deferred(&mut borrow);
        }
        DriverMut {
            cell: self,
            borrow: Some(borrow),
        }
    }

    /// Borrows the driver for reading; panics if it is borrowed mutably.
    #[inline]
    pub fn borrow(&self) -> Ref<'_, Driver> {
        self.driver.borrow()
    }

    /// Borrows the driver for reading if nobody borrows it mutably.
    #[inline]
    pub fn try_borrow(&self) -> Result<Ref<'_, Driver>, std::cell::BorrowError> {
        self.driver.try_borrow()
    }

    /// The op behind `token` lost its future: its resources go to the op table, which keeps
    /// them until the kernel is done and cancels the op — now if the driver is free, else as
    /// soon as the borrow that holds it ends.
    pub fn orphan(&self, token: CompletionToken, resources: Box<dyn Orphan>) {
        // The borrow's end does the work the release of an orphan's resources may queue.
        match self.try_borrow_mut() {
            Ok(mut d) => d.orphan(token, resources),
            Err(_) => self.defer(Deferred::Orphan(token, resources)),
        }
    }

    /// Keeps `fd` registered with the readiness backend (see [`Driver::pin_fd`]): now if the
    /// driver is free, else as soon as the borrow that holds it ends. `Ok` when queued: a pin
    /// that then fails leaves `fd` registered per wait, which is slower but as correct.
    ///
    /// # Errors
    ///
    /// The backend could not register `fd` (a pin done now).
    pub fn pin_fd(&self, fd: RawFd) -> io::Result<()> {
        match self.try_borrow_mut() {
            Ok(mut d) => d.pin_fd(fd),
            Err(_) => {
                self.defer(Deferred::PinFd(fd));
                Ok(())
            }
        }
    }

    /// Undoes [`pin_fd`](Self::pin_fd) before `fd` is closed: now if the driver is free, else
    /// as soon as the borrow that holds it ends — after the fd is closed, but before anything
    /// asked of the driver later, such as the pin of a new file that reuses the number.
    pub fn unpin_fd(&self, fd: RawFd) {
        match self.try_borrow_mut() {
            Ok(mut d) => d.unpin_fd(fd),
            Err(_) => self.defer(Deferred::UnpinFd(fd)),
        }
    }

    /// Unregisters buffer ring `bgid` (see [`Driver::unregister_buf_ring`]) once nothing may
    /// select from it any more: now if the driver is free, else as soon as the borrow that
    /// holds it ends (an orphaned op released inside `park` may hold a ring's last owner).
    pub fn unregister_buf_ring(&self, bgid: u16) {
        match self.try_borrow_mut() {
            Ok(mut d) => d.unregister_buf_ring(bgid),
            Err(_) => self.defer(Deferred::UnregisterBufRing(bgid)),
        }
    }

    /// Cancels every op and waits for their completions (see [`Driver::shutdown`]), after
    /// the work deferred so far.
    pub fn shutdown(&self) {
        self.borrow_mut().shutdown();
    }

    fn defer(&self, work: Deferred) {
        self.deferred.borrow_mut().push(work);
    }

    /// Does the deferred work if the driver is free; leaves it queued if not.
    fn run_deferred(&self) {
        if let Ok(mut d) = self.driver.try_borrow_mut() {
            self.do_deferred(&mut d);
        }
    }

    /// Does the deferred work in the order it was asked for, including any it queues in turn
    /// (an orphan released here may drop further ops or sockets): those come after.
    #[cold]
    fn do_deferred(&self, d: &mut Driver) {
        loop {
            let work = std::mem::take(&mut *self.deferred.borrow_mut());
            if work.is_empty() {
                return;
            }
            for item in work {
                match item {
                    Deferred::Orphan(token, resources) => d.orphan(token, resources),
                    // A failure leaves the fd registered per wait: correct, only slower.
                    Deferred::PinFd(fd) => {
                        let _ = d.pin_fd(fd);
                    }
                    Deferred::UnpinFd(fd) => d.unpin_fd(fd),
                    Deferred::UnregisterBufRing(bgid) => d.unregister_buf_ring(bgid),
                }
            }
        }
    }
}

impl Deref for DriverMut<'_> {
    type Target = Driver;

    #[inline]
    fn deref(&self) -> &Driver {
        self.borrow.as_ref().expect("borrowed until dropped")
    }
}

impl DerefMut for DriverMut<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Driver {
        self.borrow.as_mut().expect("borrowed until dropped")
    }
}

impl Drop for DriverMut<'_> {
    #[inline]
    fn drop(&mut self) {
        drop(self.borrow.take());
        // While unwinding, leave the queue alone: the next borrow (or shutdown) drains it.
        if !std::thread::panicking() && !self.cell.deferred.borrow().is_empty() {
            self.cell.run_deferred();
        }
    }
}
