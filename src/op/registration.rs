//! Keeping a long-lived descriptor registered with the readiness backend.

use std::os::fd::RawFd;

use crate::driver::{self, DriverRef};

/// While alive, keeps `fd` registered with the epoll backend, so waiting on it costs no
/// `epoll_ctl`. Its owner must drop it *before* closing the fd (declare it before the fd in
/// the owning struct: fields drop in order). Does nothing on io_uring or outside a runtime.
pub(crate) struct Registration {
    fd: RawFd,
    driver: Option<DriverRef>,
}

impl Registration {
    pub(crate) fn new(fd: RawFd) -> Registration {
        let driver = driver::current()
            .filter(|d| d.try_borrow_mut().is_ok_and(|mut d| d.pin_fd(fd).is_ok()));
        Registration { fd, driver }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(driver) = &self.driver
            && let Ok(mut d) = driver.try_borrow_mut()
        {
            d.unpin_fd(self.fd);
        }
    }
}
