//! Unit tests of the rings a loop owns: the shared receive ring is kept per loop, and a kernel
//! ring is unregistered from the driver it was registered with, whichever loop (if any) is
//! entered when its last owner goes, and once that driver is free.

use std::rc::Rc;

use super::{BufRing, Mode, loop_ring};
use crate::driver;
use crate::{Backend, Runtime};

fn runtime(backend: Backend) -> Runtime {
    Runtime::builder()
        .backend(backend)
        .build()
        .unwrap_or_else(|e| panic!("a runtime on {backend:?}: {e}"))
}

/// Whether ring `bgid` is registered with the current loop's driver.
fn registered(bgid: u16) -> bool {
    let driver = driver::current().expect("inside a runtime");
    driver.borrow().buf_ring_head(bgid).is_ok()
}

/// A kernel ring on the current (io_uring) loop, and its group id.
fn kernel_ring() -> (BufRing, u16) {
    let ring = BufRing::builder().build().expect("BufRing::build");
    let Mode::Kernel(k) = &ring.shared.mode else {
        panic!("io_uring registers buffer rings (Linux 5.19+)");
    };
    let bgid = k.bgid;
    (ring, bgid)
}

/// Two runtimes on one thread taking turns each keep their own shared receive ring: a loop
/// asking again gets the ring it made, not a new one, and never the other loop's.
#[test]
fn each_loop_keeps_its_own_receive_ring() {
    for backend in [Backend::IoUring, Backend::Epoll] {
        let a = runtime(backend);
        let b = runtime(backend);
        let a_ring = a.block_on(async { loop_ring() }).expect("A's ring");
        let b_ring = b.block_on(async { loop_ring() }).expect("B's ring");
        let a_again = a.block_on(async { loop_ring() }).expect("A's ring again");
        assert!(Rc::ptr_eq(&a_ring.shared, &a_again.shared), "{backend:?}");
        assert!(!Rc::ptr_eq(&a_ring.shared, &b_ring.shared), "{backend:?}");
        // A kernel ring names its group on its own loop only.
        assert_eq!(
            a.block_on(async { a_ring.group().is_some() }),
            a_ring.is_kernel()
        );
        assert_eq!(b.block_on(async { a_ring.group() }), None);
    }
}

/// A kernel ring whose last owner goes while another loop is entered, or none is, is
/// unregistered from its own driver at once.
#[test]
fn a_ring_dropped_off_its_loop_leaves_its_driver() {
    let a = runtime(Backend::IoUring);
    let b = runtime(Backend::IoUring);
    let (ring, bgid) = a.block_on(async { kernel_ring() });
    assert!(a.block_on(async { registered(bgid) }));
    b.block_on(async { drop(ring) });
    assert!(!a.block_on(async { registered(bgid) }), "dropped under B");

    let (ring, bgid) = a.block_on(async { kernel_ring() });
    drop(ring);
    assert!(!a.block_on(async { registered(bgid) }), "dropped outside");
}

/// A kernel ring whose last owner goes while its driver is borrowed is unregistered through
/// the driver's queue of deferred work, when the borrow ends.
#[test]
fn a_ring_dropped_while_its_driver_is_busy_leaves_it_after() {
    let a = runtime(Backend::IoUring);
    a.block_on(async {
        let (ring, bgid) = kernel_ring();
        let driver = driver::current().expect("inside a runtime");
        let busy = driver.borrow_mut();
        drop(ring);
        assert!(
            busy.buf_ring_head(bgid).is_ok(),
            "still registered while busy"
        );
        drop(busy);
        assert!(!registered(bgid), "unregistered once the driver is free");
    });
}
