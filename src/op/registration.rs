//! Keeping a long-lived descriptor registered with the readiness backend.

use std::os::fd::RawFd;

use crate::driver::{self, DriverRef};

/// While alive, keeps `fd` registered with the epoll backend, so waiting on it costs no
/// `epoll_ctl`. Its owner must drop it *before* closing the fd (declare it before the fd in
/// the owning struct: fields drop in order). Does nothing on io_uring or outside a runtime.
///
/// Made or dropped while the driver is busy (by a waker or a `Drop` the driver runs), the pin
/// or unpin waits in the driver's queue of deferred work and is done when the driver is free,
/// before anything asked of it later (see `driver/cell.rs`). An unpin that was skipped
/// instead would leave the number marked registered after the close removed the file from
/// epoll, and the next file to get that number would wait for readiness that never comes.
pub(crate) struct Registration {
    fd: RawFd,
    /// The driver that pinned `fd` (or will, once free); `None` if there is none to undo.
    driver: Option<DriverRef>,
}

impl Registration {
    pub(crate) fn new(fd: RawFd) -> Registration {
        // A pin that fails leaves `fd` registered per wait: slower, as correct.
        let driver = driver::current().filter(|d| d.pin_fd(fd).is_ok());
        Registration { fd, driver }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(driver) = &self.driver {
            driver.unpin_fd(self.fd);
        }
    }
}
