//! The shared cell a loop's driver lives in, and the work that waits for it to be free.
//!
//! The driver is borrowed while it runs: `park` reaps completions, which wake tasks (any
//! waker may run user code) and drop the resources of finished orphans (a buffer's `Drop` may
//! run user code too). That code can drop another op's future, whose drop must hand the op to
//! the driver — which is borrowed. Such requests go to [`DriverCell`]'s queue of deferred
//! work instead, and the queue is drained the moment the mutable borrow that blocked them ends
//! ([`DriverMut`]'s drop), so an op orphaned from inside the driver is cancelled and its slot
//! freed exactly as if it had been dropped anywhere else.
//!
//! A request made during a shared borrow ([`DriverCell::borrow`]) waits for the next mutable
//! one to end; the loop takes one every turn (`park`).

use std::cell::{Ref, RefCell, RefMut};
use std::ops::{Deref, DerefMut};

use super::Driver;
use super::token::{CompletionToken, Orphan};

/// Work asked of the driver while it was borrowed.
enum Deferred {
    /// An op's future was dropped: keep its resources until the kernel is done, cancel it.
    Orphan(CompletionToken, Box<dyn Orphan>),
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

    /// Borrows the driver mutably; panics if it is borrowed already.
    #[inline]
    pub fn borrow_mut(&self) -> DriverMut<'_> {
        DriverMut {
            cell: self,
            borrow: Some(self.driver.borrow_mut()),
        }
    }

    /// Borrows the driver mutably if nobody else does.
    #[inline]
    pub fn try_borrow_mut(&self) -> Result<DriverMut<'_>, std::cell::BorrowMutError> {
        Ok(DriverMut {
            cell: self,
            borrow: Some(self.driver.try_borrow_mut()?),
        })
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
        match self.driver.try_borrow_mut() {
            Ok(mut d) => {
                d.orphan(token, resources);
                drop(d);
                self.run_deferred();
            }
            Err(_) => self
                .deferred
                .borrow_mut()
                .push(Deferred::Orphan(token, resources)),
        }
    }

    /// Cancels every op and waits for their completions (see [`Driver::shutdown`]), after
    /// the work deferred so far.
    pub fn shutdown(&self) {
        self.run_deferred();
        self.borrow_mut().shutdown();
    }

    /// Does the deferred work, including any it queues in turn (an orphan released here may
    /// drop further ops). Leaves it queued if the driver is borrowed.
    fn run_deferred(&self) {
        loop {
            let work = std::mem::take(&mut *self.deferred.borrow_mut());
            if work.is_empty() {
                return;
            }
            let Ok(mut d) = self.driver.try_borrow_mut() else {
                // Still borrowed (a shared borrow outlived the mutable one): the next one ends
                // later.
                *self.deferred.borrow_mut() = work;
                return;
            };
            for item in work {
                match item {
                    Deferred::Orphan(token, resources) => d.orphan(token, resources),
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
